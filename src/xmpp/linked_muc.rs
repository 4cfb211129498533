//! Stanzas to and from MUCs on XMPP servers that Matrix users are occupants of (through the
//! bridge, as linked MUCs): occupant presence and room messages, received at the Matrix users'
//! addresses and read here into `XmppIn::Linked*` (the bridge decides, in `bridge::linked`);
//! joining, leaving and speaking, sent from them.

use xmpp_parsers::chatstates::ChatState;
use xmpp_parsers::delay::Delay;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Id, Message, MessageType};
use xmpp_parsers::muc::MucUser;
use xmpp_parsers::muc::user::Status;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::StanzaError;
use xmpp_parsers::stanza_id::{OriginId, StanzaId};

use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult};
use xmpp_parsers::iq::Iq;

use crate::core::action::{Extras, Text, TextKind};
use crate::core::ids::{BareJid, StanzaId as StanzaIdRef};
use crate::core::inbound::XmppAct;
use crate::core::mapping::IdentityMap;
use crate::core::mentions::Span;
use crate::core::muc_features::MucFeatures;
use crate::core::outbox::DeliveryError;
use crate::core::xmpp_in::{LinkedSaid, RemotePresence, XmppIn};
use crate::xmpp::connection::XmppSender;
use crate::xmpp::hosted_muc_out::occupant_jid;

/// Ask `muc` (service discovery, XEP-0030) whether it is a multi-user chat room, and what it
/// supports: only a room answers with the `conference` identity and the MUC feature (`None`
/// otherwise). Anything else (a person's address, a silent server) is not made into a linked MUC.
pub async fn muc_features(
    xmpp: &XmppSender,
    component: &str,
    muc: &BareJid,
) -> Result<Option<MucFeatures>, DiscoError> {
    let from = Jid::new(component)?;
    let to = Jid::new(&muc.to_string())?;
    let request = Iq::from_get(String::new(), DiscoInfoQuery { node: None });
    let answer = xmpp.query(request, from, to, std::time::Duration::from_secs(10)).await?;
    let Iq::Result { payload: Some(payload), .. } = answer else { return Ok(None) };
    let Ok(info) = DiscoInfoResult::try_from(payload) else { return Ok(None) };
    let is_muc = info.identities.iter().any(|i| i.category == "conference" && i.type_ == "text")
        && info.features.contains("http://jabber.org/protocol/muc");
    Ok(is_muc.then(|| MucFeatures::from_disco(info.features.iter().map(|f| f.as_str()))))
}

/// Names of the disco#info field that holds a room's avatar hash: XEP-0486's, and the one
/// Prosody's mod_vcard_muc (0.12) uses.
const AVATAR_HASH_FIELDS: [&str; 2] =
    ["muc#roominfo_avatarhash", "{http://modules.prosody.im/mod_vcard_muc}avatar#sha1"];

/// The hash of `muc`'s avatar as its disco#info shows it (`None`: it shows none).
pub async fn avatar_hash(xmpp: &XmppSender, component: &str, muc: &BareJid) -> Result<Option<[u8; 20]>, DiscoError> {
    let (from, to) = (Jid::new(component)?, Jid::new(&muc.to_string())?);
    let request = Iq::from_get(String::new(), DiscoInfoQuery { node: None });
    let answer = xmpp.query(request, from, to, std::time::Duration::from_secs(10)).await?;
    let Iq::Result { payload: Some(payload), .. } = answer else { return Ok(None) };
    let Ok(info) = DiscoInfoResult::try_from(payload) else { return Ok(None) };
    let value = info
        .extensions
        .iter()
        .flat_map(|form| form.fields.iter())
        .filter(|f| f.var.as_deref().is_some_and(|v| AVATAR_HASH_FIELDS.contains(&v)))
        .find_map(|f| f.values.first());
    // A hash that is not 40 hex digits is no hash (a hostile room may say anything).
    Ok(value.and_then(|v| <[u8; 20]>::try_from(hex::decode(v.trim()).ok()?).ok()))
}

/// The photo of `muc`'s vCard (bytes as sent); `None` when it has none or does not say.
pub async fn vcard_photo(xmpp: &XmppSender, component: &str, muc: &BareJid) -> Result<Option<Vec<u8>>, DiscoError> {
    let (from, to) = (Jid::new(component)?, Jid::new(&muc.to_string())?);
    let request = Iq::from_get(String::new(), xmpp_parsers::vcard::VCardQuery);
    let answer = xmpp.query(request, from, to, std::time::Duration::from_secs(20)).await?;
    let Iq::Result { payload: Some(payload), .. } = answer else { return Ok(None) };
    let card = xmpp_parsers::vcard::VCard::try_from(payload).ok();
    Ok(card.and_then(|c| c.photo).map(|p| p.binval.data))
}

/// Why an address could not be asked what it is.
#[derive(Debug, thiserror::Error)]
pub enum DiscoError {
    #[error(transparent)]
    Address(#[from] xmpp_parsers::jid::Error),
    #[error(transparent)]
    Query(#[from] DeliveryError),
}

/// A linked MUC's presence for one of its occupants, received at a Matrix user's address.
pub fn read_presence(map: &IdentityMap, muc: BareJid, presence: &Presence) -> Option<XmppIn> {
    let (Some(from), Some(to)) = (&presence.from, &presence.to) else { return None };
    // From the room itself, with a photo hash: its avatar (mod_vcard_muc announces it so).
    if from.resource().is_none() {
        return crate::xmpp::inbound::photo_hash(presence).map(|_| XmppIn::LinkedRoomChanged { muc });
    }
    let nick = from.resource()?;
    let user = to.node().and_then(|n| map.matrix_for_jid(n.as_str()).ok())?;
    let x = presence.payloads.iter().find_map(|p| MucUser::try_from(p.clone()).ok());
    let real = x.as_ref().and_then(|x| x.items.first()).and_then(|i| i.jid.as_ref()).map(|j| j.to_bare().to_string());
    let real = real.and_then(|r| BareJid::parse(&r).ok());
    let own = x.as_ref().is_some_and(|x| x.status.contains(&Status::SelfPresence))
        || real.as_ref().is_some_and(|r| r.domain() == map.component);
    let reading = match presence.type_ {
        PresenceType::None => RemotePresence::Available { real, own },
        PresenceType::Unavailable => RemotePresence::Unavailable { own },
        PresenceType::Error => {
            let error = presence.payloads.iter().find_map(|p| StanzaError::try_from(p.clone()).ok());
            let (condition, text) = match error {
                Some(e) => (
                    format!("{:?}", e.defined_condition).to_lowercase(),
                    e.texts.values().next().cloned().unwrap_or_default(),
                ),
                None => ("error".to_owned(), String::new()),
            };
            RemotePresence::Error { condition, text }
        }
        _ => return None,
    };
    Some(XmppIn::LinkedPresence { muc, nick: nick.as_str().to_owned(), user, presence: reading })
}

/// A linked MUC's room message; `None` for what is not bridged (the room's own messages,
/// history sent on joining, nothing to carry).
pub fn read_message(muc: BareJid, message: &Message) -> Option<XmppIn> {
    let from = message.from.as_ref()?;
    if from.resource().is_none() {
        // From the room itself: a configuration change (104) may be a new avatar (XEP-0486).
        let x = message.payloads.iter().find_map(|p| MucUser::try_from(p.clone()).ok());
        let changed = x.is_some_and(|x| x.status.contains(&Status::ConfigNonPrivacyRelated));
        return changed.then_some(XmppIn::LinkedRoomChanged { muc });
    }
    let nick = from.resource()?; // from the room itself (subject, notices)
    if message.type_ != MessageType::Groupchat {
        return None;
    }
    // History sent on joining is what was said before the Matrix user came: not bridged. The
    // room marks it with its own `<delay>`; one from elsewhere (the sender's client or server
    // held the message) is a live message that waited, and carries its original time.
    let muc_address = muc.to_string();
    let history = message.payloads.iter().filter_map(|p| Delay::try_from(p.clone()).ok()).any(|d| match &d.from {
        Some(from) => from.to_bare().to_string() == muc_address,
        None => true,
    });
    if history {
        return None;
    }
    let read = crate::xmpp::content::read(message);
    let body = read.body.unwrap_or_default();
    if body.is_empty() && read.act.is_none() && read.extras.file.is_none() {
        return None;
    }
    // Only the room's own stanza id names a message: one `by` someone else is anyone's say-so.
    let muc_jid = muc.to_string();
    let stanza_id = message
        .payloads
        .iter()
        .filter_map(|p| StanzaId::try_from(p.clone()).ok())
        .find(|s| s.by.to_string() == muc_jid)
        .map(|s| s.id);
    let origin = message.payloads.iter().find_map(|p| OriginId::try_from(p.clone()).ok()).map(|o| o.id);
    let message_id = origin.or_else(|| message.id.as_ref().map(|i| i.0.clone()));
    Some(XmppIn::LinkedMessage(Box::new(LinkedSaid {
        muc,
        nick: nick.as_str().to_owned(),
        stanza_id,
        message_id,
        body,
        extras: read.extras,
        act: read.act,
        mentions: read.mentions,
    })))
}

// ------------------------------------------------------------------ outgoing --

/// The resource under which Matrix users are occupants of MUCs on XMPP servers.
pub const LINKED_RESOURCE: &str = "ucbridge";

fn linked_from(user: &BareJid) -> Result<Jid, DeliveryError> {
    let s = format!("{user}/{LINKED_RESOURCE}");
    Jid::new(&s).map_err(|e| DeliveryError::Permanent(format!("invalid JID {s}: {e}")))
}

/// A Matrix user (at `user`, their address under the component) joins a remote MUC. No
/// history: what was said before is not theirs to see on Matrix.
pub fn join_remote(user: &BareJid, muc: &BareJid, nick: &str) -> Result<Stanza, DeliveryError> {
    let x = xmpp_parsers::muc::Muc::new().with_history(xmpp_parsers::muc::muc::History::new().with_maxstanzas(0));
    let mut presence =
        Presence::new(PresenceType::None).with_from(linked_from(user)?).with_to(occupant_jid(muc, nick)?);
    presence.payloads.push(x.into());
    Ok(Stanza::Presence(presence))
}

pub fn leave_remote(user: &BareJid, muc: &BareJid, nick: &str) -> Result<Stanza, DeliveryError> {
    let presence =
        Presence::new(PresenceType::Unavailable).with_from(linked_from(user)?).with_to(occupant_jid(muc, nick)?);
    Ok(Stanza::Presence(presence))
}

/// A Matrix user's message in a remote MUC, with its reply, correction or file (references in
/// the room's terms) and a XEP-0372 reference for each mention.
pub fn say_remote(
    user: &BareJid,
    muc: &BareJid,
    text: &Text,
    id: &str,
    extras: &Extras<StanzaIdRef>,
    spans: &[Span],
) -> Result<Stanza, DeliveryError> {
    let body = match text.kind {
        TextKind::Emote => format!("/me {}", text.body),
        _ => text.body.clone(),
    };
    let message = crate::xmpp::content::apply(Message::groupchat(Some(muc_jid(muc)?)), &body, extras);
    let mut message = crate::xmpp::content::add_mentions(message, text, spans);
    // Set only when the message leaves late (the delivery decides): held by the component.
    if let Some(ms) = extras.sent_at
        && let Some(delay) = crate::xmpp::content::delay(&component_jid(user)?, ms)
    {
        message = message.with_payload(delay);
    }
    message.from = Some(linked_from(user)?);
    message.id = Some(Id(id.to_owned()));
    message = message.with_payload(OriginId { id: id.to_owned() });
    Ok(Stanza::Message(message))
}

/// An XEP-0085 chat state of a Matrix user in a remote MUC: a bodiless groupchat message.
pub fn chat_state_remote(user: &BareJid, muc: &BareJid, composing: bool) -> Result<Stanza, DeliveryError> {
    let state = if composing { ChatState::Composing } else { ChatState::Paused };
    let mut message = Message::groupchat(Some(muc_jid(muc)?)).with_payload(state);
    message.from = Some(linked_from(user)?);
    Ok(Stanza::Message(message))
}

/// A Matrix user's reactions (the full set) or retraction in a remote MUC; `target` is the
/// room's stanza id of the message.
pub fn act_remote(user: &BareJid, muc: &BareJid, id: &str, act: &XmppAct) -> Result<Stanza, DeliveryError> {
    let to = muc_jid(muc)?;
    let mut message = match act {
        XmppAct::Reactions { id: target, keys } => {
            crate::xmpp::content::reactions(MessageType::Groupchat, to, target, keys)
        }
        XmppAct::Retract { id: target } => crate::xmpp::content::retraction(MessageType::Groupchat, to, target),
    };
    message.from = Some(linked_from(user)?);
    message.id = Some(Id(id.to_owned()));
    Ok(Stanza::Message(message.with_payload(OriginId { id: id.to_owned() })))
}

/// The component's address (the domain of a Matrix user's address under it).
fn component_jid(user: &BareJid) -> Result<Jid, DeliveryError> {
    Jid::new(user.domain()).map_err(|e| DeliveryError::Permanent(format!("invalid domain {}: {e}", user.domain())))
}

fn muc_jid(muc: &BareJid) -> Result<Jid, DeliveryError> {
    Jid::new(&muc.to_string()).map_err(|e| DeliveryError::Permanent(format!("invalid JID {muc}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::action::Reply;
    use xmpp_parsers::minidom::Element;

    fn message(xml: &str) -> Message {
        Message::try_from(xml.parse::<Element>().unwrap()).unwrap()
    }

    fn said(xml: &str) -> LinkedSaid {
        let muc = BareJid::parse("room@conf.x").unwrap();
        match read_message(muc, &message(xml)) {
            Some(XmppIn::LinkedMessage(s)) => *s,
            other => panic!("not a linked message: {other:?}"),
        }
    }

    const HEAD: &str = "<message xmlns='jabber:component:accept' type='groupchat' from='room@conf.x/ann' id='m1'";

    #[test]
    fn only_the_rooms_own_stanza_id_names_a_message() {
        let s = said(&format!(
            "{HEAD}><body>hi</body><stanza-id xmlns='urn:xmpp:sid:0' by='evil@x' id='forged'/>\
             <stanza-id xmlns='urn:xmpp:sid:0' by='room@conf.x' id='s1'/><origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>"
        ));
        assert_eq!((s.stanza_id.as_deref(), s.message_id.as_deref()), (Some("s1"), Some("o1")));
        let s =
            said(&format!("{HEAD}><body>hi</body><stanza-id xmlns='urn:xmpp:sid:0' by='evil@x' id='f'/></message>"));
        assert_eq!((s.stanza_id, s.message_id.as_deref()), (None, Some("m1")));
    }

    #[test]
    fn the_room_itself_says_when_its_avatar_may_have_changed() {
        let muc = BareJid::parse("room@conf.x").unwrap();
        let changed = Some(XmppIn::LinkedRoomChanged { muc: muc.clone() });
        let from_room =
            "<message xmlns='jabber:component:accept' type='groupchat' from='room@conf.x' to='a@bridge.x/ucbridge'>";
        let status = |code: &str| {
            let xml = format!(
                "{from_room}<x xmlns='http://jabber.org/protocol/muc#user'><status code='{code}'/></x></message>"
            );
            read_message(muc.clone(), &message(&xml))
        };
        assert_eq!(status("104"), changed);
        assert_eq!(status("170"), None);
        assert_eq!(read_message(muc.clone(), &message(&format!("{from_room}<body>notice</body></message>"))), None);
        // mod_vcard_muc's presence from the room with the avatar's hash.
        let map = IdentityMap {
            homeserver: "hs".into(),
            component: "bridge.x".into(),
            ghost_prefix: "_xmpp_".into(),
            bot_localpart: "ucbridge".into(),
            chatbot_localpart: None,
        };
        let presence = |photo: &str| {
            let xml = format!(
                "<presence xmlns='jabber:component:accept' from='room@conf.x' to='a@bridge.x/ucbridge'>\
                 <x xmlns='vcard-temp:x:update'>{photo}</x></presence>"
            );
            read_presence(&map, muc.clone(), &Presence::try_from(xml.parse::<Element>().unwrap()).unwrap())
        };
        assert_eq!(presence("<photo>a9993e364706816aba3e25717850c26c9cd0d89d</photo>"), changed);
        assert_eq!(presence("<photo/>"), None);
    }

    #[test]
    fn reactions_and_mentions_are_read() {
        let s = said(&format!(
            "{HEAD}><reactions xmlns='urn:xmpp:reactions:0' id='s1'><reaction>👍</reaction></reactions></message>"
        ));
        assert_eq!(s.act, Some(XmppAct::Reactions { id: "s1".into(), keys: vec!["👍".into()] }));
        let s = said(&format!(
            "{HEAD}><body>👋 bob</body><reference xmlns='urn:xmpp:reference:0' type='mention' uri='xmpp:room@conf.x/bob' begin='2' end='5'/>\
             <reference xmlns='urn:xmpp:reference:0' type='mention' uri='xmpp:c@x' begin='2' end='9'/></message>"
        ));
        assert_eq!(s.mentions, ["xmpp:room@conf.x/bob"], "the second reference ends past the body");
        // Nothing to carry: no body, act or file.
        let muc = BareJid::parse("room@conf.x").unwrap();
        assert_eq!(read_message(muc, &message(&format!("{HEAD}/>"))), None);
    }

    #[test]
    fn references_move_with_a_replys_quote() {
        let (user, muc) = (BareJid::parse("a@bridge.x").unwrap(), BareJid::parse("room@conf.x").unwrap());
        let extras = Extras {
            reply_to: Some(Reply { id: StanzaIdRef::new("s1"), author: None, quote: Some("q".into()) }),
            ..Extras::default()
        };
        let span = Span { begin: 0, end: 3, uri: "xmpp:room@conf.x/bob".into() };
        let Stanza::Message(m) = say_remote(&user, &muc, &Text::plain("bob: hi"), "i1", &extras, &[span]).unwrap()
        else {
            panic!("a message")
        };
        let xml = String::from(&Element::from(m));
        // "> q\n" (4 code points) goes before the text.
        assert!(xml.contains("begin='4'") && xml.contains("end='7'"), "{xml}");
        assert!(xml.contains("&gt; q\nbob: hi"), "{xml}");
    }
}
