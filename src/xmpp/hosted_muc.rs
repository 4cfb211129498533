//! Stanzas addressed to the rooms the bridge hosts (`#alias\40hs@component[/nick]`): read here
//! into the bridge's MUC requests (`core::xmpp_in::XmppIn::Muc*`, decided in `bridge::hosted`);
//! what needs no decision (a join without a nick, disco#items, pings) is answered here.

use xmpp_parsers::chatstates::ChatState;
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoItemsQuery};
use xmpp_parsers::displayed_markers::Displayed;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::mam;
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::minidom::Element;
use xmpp_parsers::muc::Muc;
use xmpp_parsers::muc::user::MucUser;
use xmpp_parsers::ping::Ping;
use xmpp_parsers::presence::{Presence, Type as PresenceType};

use crate::core::ids::BareJid;
use crate::core::refusal::RefusalKind;
use crate::core::xmpp_in::{AdminItem, Affiliation, Marker, MucJoin, MucRole, XmppIn};
use crate::xmpp::hosted_muc_out::{MUC_ADMIN, MUC_OWNER};
use crate::xmpp::inbound::{Read, photo_hash};
use crate::xmpp::outbound;
use crate::xmpp::reply::Envelope;

/// Is this an address of a room (rather than of a Matrix user)?
pub fn is_room(to: &Jid) -> bool {
    to.node().is_some_and(|n| n.as_str().starts_with(['#', '!']))
}

fn bare(jid: &Jid) -> Option<BareJid> {
    BareJid::parse(jid.to_bare().as_str()).ok()
}

fn room_local(to: &Jid) -> String {
    to.node().map(|n| n.as_str().to_owned()).unwrap_or_default()
}

/// A presence to a room: joining (at room/nick) or leaving.
pub fn read_presence(presence: Presence) -> Read {
    let (Some(from), Some(to)) = (presence.from.clone(), presence.to.clone()) else { return Read::Nothing };
    let Some(sender) = bare(&from) else { return Read::Nothing };
    let room_local = room_local(&to);
    match presence.type_ {
        PresenceType::None => {
            let Some(nick) = to.resource().map(|r| r.as_str().to_owned()) else {
                let text = "Join a room at room-address/nick: a nick is needed.";
                return Read::Reply(outbound::presence_error(
                    Some(to),
                    from,
                    presence.id,
                    RefusalKind::BadAddress,
                    text,
                ));
            };
            let max_history = presence
                .payloads
                .iter()
                .find_map(|p| Muc::try_from(p.clone()).ok())
                .and_then(|m| m.history)
                .and_then(|h| h.maxstanzas);
            let shown = outbound::reading(&presence);
            let photo = photo_hash(&presence);
            let join =
                MucJoin { room_local, full: from.to_string(), bare: sender, nick, max_history, presence: Some(shown) };
            Read::Bridge(XmppIn::MucJoin { join, photo }, Some(Envelope::presence(from, to, presence.id)))
        }
        PresenceType::Unavailable => {
            Read::Bridge(XmppIn::MucLeave { room_local, full: from.to_string(), sender }, None)
        }
        _ => Read::Nothing,
    }
}

/// A message to a room (or, at room/nick, to an occupant).
pub fn read_message(message: Message) -> Read {
    let (Some(from), Some(to)) = (message.from.clone(), message.to.clone()) else { return Read::Nothing };
    let Some(sender) = bare(&from) else { return Read::Nothing };
    let room_local = room_local(&to);
    let full = from.to_string();
    let id = message.id.clone().map(|i| i.0);
    let read = crate::xmpp::content::read(&message);
    let body = read.body.clone().or_else(|| read.extras.file.as_ref().map(|f| f.url.clone()));
    let envelope = Envelope::message(from, to.clone(), id.clone());
    let input = match message.type_ {
        MessageType::Error => return Read::Nothing,
        MessageType::Groupchat if read.act.is_some() => match read.act {
            Some(act) => XmppIn::MucAct { room_local, full, sender, id, act },
            None => return Read::Nothing,
        },
        MessageType::Groupchat => match (body, message.get_best_subject(vec![])) {
            (Some(body), _) => {
                XmppIn::MucMessage { room_local, full, sender, id, body, extras: read.extras, mentions: read.mentions }
            }
            (None, Some((_, subject))) => XmppIn::MucSubject { room_local, full, sender, subject: subject.clone() },
            // Chat states and read markers.
            (None, None) => {
                let markers: Vec<Marker> = message
                    .payloads
                    .iter()
                    .filter_map(|p| {
                        if let Ok(state) = ChatState::try_from(p.clone()) {
                            Some(Marker::ChatState { composing: matches!(state, ChatState::Composing) })
                        } else {
                            Displayed::try_from(p.clone()).ok().map(|d| Marker::Displayed { id: d.id.0 })
                        }
                    })
                    .collect();
                if markers.is_empty() {
                    return Read::Nothing;
                }
                return Read::Bridge(XmppIn::MucMarkers { room_local, full, sender, markers }, None);
            }
        },
        MessageType::Chat if to.resource().is_some() => match body {
            Some(body) => {
                let nick = to.resource().map(|r| r.as_str().to_owned()).unwrap_or_default();
                XmppIn::MucPrivate { room_local, full, sender, nick, id, body }
            }
            None => return Read::Nothing, // chat states in private messages are not carried
        },
        _ => {
            let invite = message.payloads.iter().find_map(|p| MucUser::try_from(p.clone()).ok()).and_then(|x| x.invite);
            match invite.and_then(|i| i.to) {
                Some(invitee) => XmppIn::MucInvite { room_local, sender, invitee: invitee.to_bare().to_string() },
                None => {
                    let text = "Send messages to a room as type groupchat.";
                    return Read::Reply(envelope.error(RefusalKind::BadRequest, text));
                }
            }
        }
    };
    Read::Bridge(input, Some(envelope))
}

fn admin_items(query: &Element) -> Vec<AdminItem> {
    query
        .children()
        .filter(|c| c.is("item", MUC_ADMIN))
        .map(|item| AdminItem {
            nick: item.attr("nick").map(str::to_owned),
            jid: item.attr("jid").map(str::to_owned),
            affiliation: item.attr("affiliation").map(Affiliation::parse),
            role: item.attr("role").map(MucRole::parse),
            reason: item.get_child("reason", MUC_ADMIN).map(|r| r.text()),
        })
        .collect()
}

/// An iq to a room: archive, configuration, moderation, disco, ping.
pub fn read_iq(iq: Iq) -> Read {
    let (from, to, id, payload, is_set) = match iq {
        Iq::Get { from: Some(from), to: Some(to), id, payload } => (from, to, id, payload, false),
        Iq::Set { from: Some(from), to: Some(to), id, payload } => (from, to, id, payload, true),
        _ => return Read::Nothing,
    };
    let Some(sender) = bare(&from) else { return Read::Nothing };
    let room_local = room_local(&to);
    let envelope = Envelope::iq(from.clone(), to.clone(), id.clone());
    let input = if payload.is("query", xmpp_parsers::ns::MAM) {
        let query = match mam::Query::try_from(payload) {
            Ok(query) => query,
            Err(e) => {
                let text = format!("Cannot read this archive query: {e}");
                return Read::Reply(envelope.error(RefusalKind::BadRequest, &text));
            }
        };
        // A get asks which filters the archive applies (XEP-0313 §5.1).
        if !is_set {
            return Read::Reply(outbound::iq_payload(to, from, id, crate::xmpp::mam::form()));
        }
        match crate::xmpp::mam::read(&query) {
            Ok(q) => {
                let envelope = envelope.with_queryid(query.queryid.as_ref().map(|q| q.0.clone()));
                return Read::Bridge(XmppIn::MucArchive { room_local, sender, query: q }, Some(envelope));
            }
            Err((kind, text)) => return Read::Reply(envelope.error(kind, &text)),
        }
    } else if payload.is("query", MUC_OWNER) {
        if is_set {
            let form = payload
                .get_child("x", xmpp_parsers::ns::DATA_FORMS)
                .and_then(|x| xmpp_parsers::data_forms::DataForm::try_from(x.clone()).ok());
            let value = |var: &str| {
                form.as_ref()?.fields.iter().find(|f| f.var.as_deref() == Some(var))?.values.first().cloned()
            };
            let (name, desc) = (value("muc#roomconfig_roomname"), value("muc#roomconfig_roomdesc"));
            XmppIn::MucConfigure { room_local, sender, name, desc }
        } else {
            XmppIn::MucConfig { room_local, sender }
        }
    } else if payload.is("query", MUC_ADMIN) {
        if is_set {
            XmppIn::MucAdmin { room_local, sender, items: admin_items(&payload) }
        } else {
            XmppIn::MucAdminList { room_local, sender }
        }
    } else if payload.is("vCard", xmpp_parsers::ns::VCARD) {
        if !is_set {
            XmppIn::MucAvatar { room_local }
        } else {
            // The BINVAL is base64 (checked by the parser); the picture itself by the bridge.
            match xmpp_parsers::vcard::VCard::try_from(payload) {
                Ok(card) => XmppIn::MucSetAvatar { room_local, sender, photo: card.photo.map(|p| p.binval.data) },
                Err(e) => {
                    let text = format!("Cannot read this vCard: {e}");
                    return Read::Reply(envelope.error(RefusalKind::BadRequest, &text));
                }
            }
        }
    } else if is_set {
        return Read::Reply(envelope.error(RefusalKind::Unsupported, "This request is not supported by the room."));
    } else if DiscoInfoQuery::try_from(payload.clone()).is_ok() {
        XmppIn::MucInfo { room_local }
    } else if let Ok(query) = DiscoItemsQuery::try_from(payload.clone()) {
        return Read::Reply(outbound::disco_items(to, from, id, query.node));
    } else if Ping::try_from(payload).is_ok() {
        return Read::Reply(envelope.done());
    } else {
        return Read::Reply(envelope.error(RefusalKind::Unsupported, "This request is not supported by the room."));
    };
    Read::Bridge(input, Some(envelope))
}
