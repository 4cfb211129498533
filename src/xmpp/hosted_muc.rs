//! Stanzas addressed to the rooms the bridge hosts (`#alias\40hs@component[/nick]`): parsed
//! here into the bridge's MUC requests (`bridge::hosted::muc`), answered with errors that say why.

use std::sync::Arc;

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

use crate::bridge::Bridge;
use crate::bridge::hosted::muc::{AdminItem, ArchiveQuery};
use crate::bridge::hosted::occupants::MucJoin;
use crate::core::action::Refusal;
use crate::core::ids::BareJid;
use crate::xmpp::hosted_muc_out::{self, MUC_ADMIN, MUC_OWNER};
use crate::xmpp::outbound;

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

pub async fn on_presence(bridge: &Arc<Bridge>, presence: Presence) {
    let (Some(from), Some(to)) = (presence.from.clone(), presence.to.clone()) else { return };
    let Some(sender) = bare(&from) else { return };
    let local = room_local(&to);
    match presence.type_ {
        PresenceType::None => {
            let Some(nick) = to.resource().map(|r| r.as_str().to_owned()) else {
                let text = "Join a room at room-address/nick: a nick is needed.";
                let reply = outbound::presence_error(Some(to), from, presence.id, Refusal::BadAddress, text);
                return bridge.xmpp.send_reply(reply).await;
            };
            let max_history = presence
                .payloads
                .iter()
                .find_map(|p| Muc::try_from(p.clone()).ok())
                .and_then(|m| m.history)
                .and_then(|h| h.maxstanzas);
            let shown = outbound::reading(&presence);
            crate::xmpp::inbound::announced_photo(bridge, &sender, &presence).await;
            let join = MucJoin {
                room_local: local,
                full: from.to_string(),
                bare: sender,
                nick,
                max_history,
                presence: Some(shown),
            };
            if let Err((refusal, text)) = bridge.muc_join(join).await {
                tracing::info!(%from, %to, ?refusal, text, "refused a MUC join");
                bridge.xmpp.send_reply(outbound::presence_error(Some(to), from, presence.id, refusal, &text)).await;
            }
        }
        PresenceType::Unavailable => bridge.muc_leave(&local, &from.to_string(), &sender).await,
        _ => {}
    }
}

pub async fn on_message(bridge: &Arc<Bridge>, message: Message) {
    let (Some(from), Some(to)) = (message.from.clone(), message.to.clone()) else { return };
    let Some(sender) = bare(&from) else { return };
    let local = room_local(&to);
    let id = message.id.clone().map(|i| i.0);
    let read = crate::xmpp::content::read(&message);
    let body = read.body.clone().or_else(|| read.extras.file.as_ref().map(|f| f.url.clone()));
    let result = match message.type_ {
        MessageType::Error => return,
        MessageType::Groupchat if read.act.is_some() => match read.act {
            Some(act) => bridge.muc_act(&local, &from.to_string(), &sender, id.clone(), act).await,
            None => return,
        },
        MessageType::Groupchat => match (body, message.get_best_subject(vec![])) {
            (Some(body), _) => {
                bridge.muc_message(&local, &from.to_string(), &sender, id.clone(), body, read.extras).await
            }
            (None, Some((_, subject))) => bridge.muc_subject(&local, &from.to_string(), &sender, subject.clone()).await,
            // Chat states and read markers.
            (None, None) => {
                for p in &message.payloads {
                    if let Ok(state) = ChatState::try_from(p.clone()) {
                        let composing = matches!(state, ChatState::Composing);
                        bridge.muc_chat_state(&local, &from.to_string(), &sender, composing).await;
                    } else if let Ok(d) = Displayed::try_from(p.clone()) {
                        bridge.muc_displayed(&local, &sender, &d.id.0).await;
                    }
                }
                return;
            }
        },
        MessageType::Chat if to.resource().is_some() => match body {
            Some(body) => {
                let nick = to.resource().map(|r| r.as_str().to_owned()).unwrap_or_default();
                bridge.muc_private(&local, &from.to_string(), &sender, &nick, id.clone(), body).await
            }
            None => return, // chat states in private messages are not carried
        },
        _ => {
            let invite = message.payloads.iter().find_map(|p| MucUser::try_from(p.clone()).ok()).and_then(|x| x.invite);
            match invite.and_then(|i| i.to) {
                Some(invitee) => bridge.muc_invite(&local, &sender, &invitee.to_bare().to_string()).await,
                None => Err((Refusal::BadRequest, "Send messages to a room as type groupchat.".to_owned())),
            }
        }
    };
    if let Err((refusal, text)) = result {
        tracing::info!(%from, %to, ?refusal, text, "refused a MUC message");
        bridge.xmpp.send_reply(outbound::message_error(Some(to), from, id, refusal, &text)).await;
    }
}

fn admin_items(query: &Element) -> Vec<AdminItem> {
    query
        .children()
        .filter(|c| c.is("item", MUC_ADMIN))
        .map(|item| AdminItem {
            nick: item.attr("nick").map(str::to_owned),
            jid: item.attr("jid").map(str::to_owned),
            affiliation: item.attr("affiliation").map(str::to_owned),
            role: item.attr("role").map(str::to_owned),
            reason: item.get_child("reason", MUC_ADMIN).map(|r| r.text()),
        })
        .collect()
}

pub async fn on_iq(bridge: &Arc<Bridge>, iq: Iq) {
    let (from, to, id, payload, is_set) = match iq {
        Iq::Get { from: Some(from), to: Some(to), id, payload } => (from, to, id, payload, false),
        Iq::Set { from: Some(from), to: Some(to), id, payload } => (from, to, id, payload, true),
        _ => return,
    };
    let Some(sender) = bare(&from) else { return };
    let local = room_local(&to);
    let error = |refusal, text: &str| outbound::iq_error(Some(to.clone()), from.clone(), id.clone(), refusal, text);
    let reply = if payload.is("query", xmpp_parsers::ns::MAM) {
        match mam::Query::try_from(payload) {
            Ok(query) => return archive_query(bridge, from, to, id, &sender, query).await,
            Err(e) => error(Refusal::BadRequest, &format!("Cannot read this archive query: {e}")),
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
            match bridge.muc_configure(&local, &sender, name, desc).await {
                Ok(()) => outbound::iq_result(to, from, id),
                Err((refusal, text)) => error(refusal, &text),
            }
        } else {
            match bridge.muc_config(&local, &sender).await {
                Ok((name, desc)) => hosted_muc_out::config_form(to, from, id, &name, &desc),
                Err((refusal, text)) => error(refusal, &text),
            }
        }
    } else if payload.is("query", MUC_ADMIN) {
        if is_set {
            match bridge.muc_admin(&local, &sender, admin_items(&payload)).await {
                Ok(()) => outbound::iq_result(to, from, id),
                Err((refusal, text)) => error(refusal, &text),
            }
        } else {
            match bridge.muc_admin_list(&local, &sender).await {
                Ok(items) => hosted_muc_out::admin_list(to, from, id, &items),
                Err((refusal, text)) => error(refusal, &text),
            }
        }
    } else if is_set {
        error(Refusal::Unsupported, "This request is not supported by the room.")
    } else if DiscoInfoQuery::try_from(payload.clone()).is_ok() {
        match bridge.muc_info(&local).await {
            Ok((name, open)) => hosted_muc_out::room_disco_info(to, from, id, &name, open),
            Err((refusal, text)) => error(refusal, &text),
        }
    } else if let Ok(query) = DiscoItemsQuery::try_from(payload.clone()) {
        outbound::disco_items(to, from, id, query.node)
    } else if Ping::try_from(payload).is_ok() {
        outbound::iq_result(to, from, id)
    } else {
        error(Refusal::Unsupported, "This request is not supported by the room.")
    };
    bridge.xmpp.send_reply(reply).await;
}

async fn archive_query(bridge: &Arc<Bridge>, from: Jid, to: Jid, id: String, sender: &BareJid, query: mam::Query) {
    let set = query.set.as_ref();
    let q = ArchiveQuery {
        max: set.and_then(|s| s.max),
        after: set.and_then(|s| s.after.clone()),
        before: set.and_then(|s| s.before.clone()),
    };
    let local = room_local(&to);
    let page = match bridge.muc_archive(&local, sender, q).await {
        Ok(p) => p,
        Err((refusal, text)) => {
            return bridge.xmpp.send_reply(outbound::iq_error(Some(to), from, id, refusal, &text)).await;
        }
    };
    let queryid = query.queryid.as_ref().map(|q| q.0.as_str());
    for m in &page.messages {
        match hosted_muc_out::mam_result(&page.muc, &from, queryid, m) {
            Ok(s) => bridge.xmpp.send_reply(s).await,
            Err(e) => tracing::warn!(error = %e, "cannot build a MAM result"),
        }
    }
    match hosted_muc_out::mam_fin(&page.muc, from, id, &page.messages, page.count, page.complete) {
        Ok(s) => bridge.xmpp.send_reply(s).await,
        Err(e) => tracing::warn!(error = %e, "cannot build a MAM fin"),
    }
}
