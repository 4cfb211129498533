//! Stanzas the bridge sends, built with xmpp-parsers types (never string templates).

use xmpp_parsers::chatstates::ChatState;
use xmpp_parsers::disco::{DiscoInfoResult, DiscoItemsResult, Identity};
use xmpp_parsers::displayed_markers::{Displayed, Markable};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Id, Lang, Message, MessageType};
use xmpp_parsers::nick::Nick;
use xmpp_parsers::ns;
use xmpp_parsers::presence::{Presence as Presence_, Show as XmppShow, Type as PresenceType};
use xmpp_parsers::receipts::{Received, Request};
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use xmpp_parsers::stanza_id::OriginId;
use xmpp_parsers::vcard_update::{Photo, VCardUpdate};

use crate::core::action::{Extras, Text, TextKind};
use crate::core::ids::{BareJid, StanzaId};
use crate::core::outbox::DeliveryError;
use crate::core::presence::{PhotoHash, Presence, Show};
use crate::core::refusal::RefusalKind;

/// What an XMPP presence stanza says, in the core's terms (an unavailable presence's status is
/// the note of "offline").
pub fn reading(presence: &Presence_) -> crate::core::presence::XmppPresence {
    crate::core::presence::XmppPresence {
        available: presence.type_ == PresenceType::None,
        show: match presence.show {
            None => Show::None,
            Some(XmppShow::Chat) => Show::Chat,
            Some(XmppShow::Away) => Show::Away,
            Some(XmppShow::Xa) => Show::Xa,
            Some(XmppShow::Dnd) => Show::Dnd,
        },
        status: presence.statuses.values().next().cloned(),
    }
}

/// Ask `to` for their vCard (XEP-0054), from the component.
pub fn vcard_query(component: &str, to: &BareJid, id: &str) -> Result<Stanza, DeliveryError> {
    let mut iq = Iq::from_get(id, xmpp_parsers::vcard::VCardQuery);
    *iq.from_mut() = Some(Jid::new(component).map_err(|e| DeliveryError::Permanent(e.to_string()))?);
    *iq.to_mut() = Some(to_jid(to)?);
    Ok(Stanza::Iq(iq))
}

/// The vCard of a Matrix user: full name and photo.
pub fn vcard(from: Jid, to: Jid, id: String, name: Option<&str>, photo: Option<(Vec<u8>, String)>) -> Stanza {
    use xmpp_parsers::vcard::{Binval, Photo, Type, VCard};
    let mut payloads = vec![];
    if let Some(name) = name {
        payloads.push(xmpp_parsers::minidom::Element::builder("FN", ns::VCARD).append(name).build());
    }
    let photo = photo.map(|(data, ty)| Photo { type_: Type { data: ty }, binval: Binval { data } });
    let mut iq = Iq::from_result(id, Some(VCard { photo, payloads }));
    *iq.from_mut() = Some(from);
    *iq.to_mut() = Some(to);
    Stanza::Iq(iq)
}

/// The RFC 6120 error condition for a refusal. Every refusal said to an XMPP sender is built
/// here, so it is counted here.
pub fn stanza_error(refusal: RefusalKind, text: &str) -> StanzaError {
    crate::core::metrics::refused(refusal);
    let (kind, condition) = match refusal {
        RefusalKind::BadRequest => (ErrorType::Modify, DefinedCondition::BadRequest),
        RefusalKind::BadAddress => (ErrorType::Modify, DefinedCondition::JidMalformed),
        RefusalKind::NotFound => (ErrorType::Cancel, DefinedCondition::ItemNotFound),
        // not-acceptable (not policy-violation): known to RFC 3920-era clients too.
        RefusalKind::Policy => (ErrorType::Modify, DefinedCondition::NotAcceptable),
        RefusalKind::Unsupported => (ErrorType::Cancel, DefinedCondition::FeatureNotImplemented),
        RefusalKind::Forbidden => (ErrorType::Auth, DefinedCondition::Forbidden),
        RefusalKind::MembersOnly => (ErrorType::Auth, DefinedCondition::RegistrationRequired),
        RefusalKind::Full => (ErrorType::Wait, DefinedCondition::ServiceUnavailable),
        RefusalKind::Conflict => (ErrorType::Cancel, DefinedCondition::Conflict),
        RefusalKind::Internal => (ErrorType::Wait, DefinedCondition::InternalServerError),
        RefusalKind::Busy => (ErrorType::Wait, DefinedCondition::ResourceConstraint),
    };
    StanzaError::new(kind, condition, "en", text)
}

/// A 1:1 chat message. `id` is stable across retries (derived from the outbox row) and is
/// repeated as XEP-0359 origin-id so clients can recognise a repeat.
pub fn chat(from: Jid, to: Jid, text: &Text, id: String, nick: Option<&str>, extras: &Extras<StanzaId>) -> Stanza {
    let body = match text.kind {
        TextKind::Emote => format!("/me {}", text.body),
        TextKind::Text | TextKind::Notice => text.body.clone(),
    };
    let mut message = crate::xmpp::content::apply(Message::chat(Some(to)), &body, extras);
    // Set only when the message leaves late (the delivery decides): held by the component.
    if let Some(ms) = extras.sent_at
        && let Ok(by) = Jid::new(from.domain().as_str())
        && let Some(delay) = crate::xmpp::content::delay(&by, ms)
    {
        message = message.with_payload(delay);
    }
    message.from = Some(from);
    message.id = Some(Id(id.clone()));
    message = message.with_payload(OriginId { id });
    // Ask for delivery receipts (XEP-0184) and read markers (XEP-0333).
    message = message.with_payload(Request).with_payload(Markable);
    if let Some(nick) = nick {
        message.payloads.push(Nick(nick.to_owned()).into());
    }
    Stanza::Message(message)
}

/// The core's address as a JID; an address that is no valid JID cannot be delivered, ever.
fn to_jid(address: &BareJid) -> Result<Jid, DeliveryError> {
    Jid::new(&address.to_string()).map_err(|e| DeliveryError::Permanent(format!("invalid JID {address}: {e}")))
}

/// [`chat`] between the core's addresses.
pub fn chat_between(
    from: &BareJid,
    to: &BareJid,
    text: &Text,
    id: String,
    nick: Option<&str>,
) -> Result<Stanza, DeliveryError> {
    chat_with(from, to, text, id, nick, &Extras::default())
}

/// [`chat`] with a reply, correction or file.
pub fn chat_with(
    from: &BareJid,
    to: &BareJid,
    text: &Text,
    id: String,
    nick: Option<&str>,
    extras: &Extras<StanzaId>,
) -> Result<Stanza, DeliveryError> {
    Ok(chat(to_jid(from)?, to_jid(to)?, text, id, nick, extras))
}

/// Reactions (XEP-0444) or a retraction (XEP-0424) in a 1:1 chat, with a stable id.
pub fn chat_act(
    from: &BareJid,
    to: &BareJid,
    id: String,
    act: &crate::core::inbound::XmppAct,
) -> Result<Stanza, DeliveryError> {
    use crate::core::inbound::XmppAct;
    let to = to_jid(to)?;
    let mut message = match act {
        XmppAct::Reactions { id, keys } => crate::xmpp::content::reactions(MessageType::Chat, to, id, keys),
        XmppAct::Retract { id } => crate::xmpp::content::retraction(MessageType::Chat, to, id),
    };
    message.from = Some(to_jid(from)?);
    message.id = Some(Id(id.clone()));
    Ok(Stanza::Message(message.with_payload(OriginId { id })))
}

/// A presence of `from` for `to`, written as the presence table says, with the avatar's hash.
pub fn presence_between(from: &BareJid, to: &BareJid, p: &Presence, photo: PhotoHash) -> Result<Stanza, DeliveryError> {
    let x = p.to_xmpp();
    let mut presence = Presence_::new(if x.available { PresenceType::None } else { PresenceType::Unavailable })
        .with_from(to_jid(from)?);
    presence = presence.with_to(to_jid(to)?);
    presence.show = match x.show {
        Show::None => None,
        Show::Chat => Some(XmppShow::Chat),
        Show::Away => Some(XmppShow::Away),
        Show::Xa => Some(XmppShow::Xa),
        Show::Dnd => Some(XmppShow::Dnd),
    };
    if let Some(status) = x.status {
        presence.statuses.insert(Lang::default(), status);
    }
    if x.available
        && let Some(caps) = from.local().and_then(account_name).and_then(|name| caps(false, &name))
    {
        presence.payloads.push(caps.into());
    }
    presence.payloads.push(photo_update(photo).into());
    Ok(Stanza::Presence(presence))
}

/// XEP-0153's `<x xmlns='vcard-temp:x:update'/>`: the hash, an empty `<photo/>` for no avatar,
/// or no `<photo/>` at all while it is not known.
fn photo_update(photo: PhotoHash) -> VCardUpdate {
    let photo = match photo {
        PhotoHash::Unknown => None,
        PhotoHash::None => Some(Photo { data: None }),
        PhotoHash::Sha1(hash) => Some(Photo { data: Some(hash) }),
    };
    VCardUpdate { photo }
}

/// The XEP-0153 hash of a photo: SHA-1 of its bytes.
pub fn hash_photo(bytes: &[u8]) -> PhotoHash {
    let hash = xmpp_parsers::caps::hash_caps(bytes, xmpp_parsers::hashes::Algo::Sha_1).ok();
    match hash.and_then(|h| <[u8; 20]>::try_from(h.hash).ok()) {
        Some(hash) => PhotoHash::Sha1(hash),
        None => PhotoHash::Unknown,
    }
}

/// A chat state notification (XEP-0085): composing, or paused.
pub fn chat_state_between(from: &BareJid, to: &BareJid, composing: bool) -> Result<Stanza, DeliveryError> {
    let state = if composing { ChatState::Composing } else { ChatState::Paused };
    let mut message = Message::chat(Some(to_jid(to)?)).with_payload(state);
    message.from = Some(to_jid(from)?);
    Ok(Stanza::Message(message))
}

/// A delivery receipt (XEP-0184) for the message `id`.
pub fn receipt_between(from: &BareJid, to: &BareJid, id: &str) -> Result<Stanza, DeliveryError> {
    let mut message = Message::chat(Some(to_jid(to)?)).with_payload(Received { id: id.to_owned() });
    message.from = Some(to_jid(from)?);
    Ok(Stanza::Message(message))
}

/// A read marker (XEP-0333 `displayed`) for the message `id` and all before it.
pub fn displayed_between(from: &BareJid, to: &BareJid, id: &str) -> Result<Stanza, DeliveryError> {
    let mut message = Message::chat(Some(to_jid(to)?)).with_payload(Displayed { id: Id(id.to_owned()) });
    message.from = Some(to_jid(from)?);
    Ok(Stanza::Message(message))
}

/// Error reply to a message.
pub fn message_error(from: Option<Jid>, to: Jid, id: Option<String>, refusal: RefusalKind, text: &str) -> Stanza {
    let mut message = Message::new_with_type(MessageType::Error, Some(to)).with_payload(stanza_error(refusal, text));
    message.from = from;
    message.id = id.map(Id);
    Stanza::Message(message)
}

/// Error reply to a presence.
pub fn presence_error(from: Option<Jid>, to: Jid, id: Option<String>, refusal: RefusalKind, text: &str) -> Stanza {
    let mut presence = Presence_::new(PresenceType::Error).with_to(to);
    presence.from = from;
    presence.id = id;
    presence.payloads.push(stanza_error(refusal, text).into());
    Stanza::Presence(presence)
}

/// Error reply to an iq request.
pub fn iq_error(from: Option<Jid>, to: Jid, id: String, refusal: RefusalKind, text: &str) -> Stanza {
    let mut iq = Iq::from_error(id, stanza_error(refusal, text));
    *iq.from_mut() = from;
    *iq.to_mut() = Some(to);
    Stanza::Iq(iq)
}

/// A result carrying `payload`.
pub fn iq_payload<P: xmpp_parsers::iq::IqResultPayload>(from: Jid, to: Jid, id: String, payload: P) -> Stanza {
    let mut iq = Iq::from_result(id, Some(payload));
    *iq.from_mut() = Some(from);
    *iq.to_mut() = Some(to);
    Stanza::Iq(iq)
}

pub fn iq_result(from: Jid, to: Jid, id: String) -> Stanza {
    let mut iq = Iq::empty_result(to, id);
    *iq.from_mut() = Some(from);
    Stanza::Iq(iq)
}

pub fn presence(kind: PresenceType, from: Jid, to: Jid, status: Option<&str>) -> Stanza {
    let mut presence = Presence_::new(kind).with_from(from).with_to(to);
    if let Some(status) = status {
        presence.statuses.insert(Lang::default(), status.to_owned());
    }
    Stanza::Presence(presence)
}

/// `kind` (a subscription state change or `unavailable`) between the core's addresses.
fn presence_kind_between(kind: PresenceType, from: &BareJid, to: &BareJid) -> Result<Stanza, DeliveryError> {
    Ok(presence(kind, to_jid(from)?, to_jid(to)?, None))
}

/// Granting `subscriber` a subscription to `contact` (RFC 6121 §3.1.5): `subscribed`, a
/// `subscribe` in return (so their presence can be shown on Matrix), and `contact`'s current
/// presence.
pub fn subscription_granted(
    contact: &BareJid,
    subscriber: &BareJid,
    current: &Presence,
    photo: PhotoHash,
) -> Vec<Stanza> {
    [
        presence_kind_between(PresenceType::Subscribed, contact, subscriber),
        presence_kind_between(PresenceType::Subscribe, contact, subscriber),
        presence_between(contact, subscriber, current, photo),
    ]
    .into_iter()
    .filter_map(Result::ok)
    .collect()
}

/// Taking a subscription back: `unsubscribed`, and `unavailable` so the contact shows offline.
pub fn subscription_withdrawn(contact: &BareJid, subscriber: &BareJid) -> Vec<Stanza> {
    [
        presence_kind_between(PresenceType::Unsubscribed, contact, subscriber),
        presence_kind_between(PresenceType::Unavailable, contact, subscriber),
    ]
    .into_iter()
    .filter_map(Result::ok)
    .collect()
}

/// `from` asks `to` to share their presence (`subscribe`).
pub fn subscription_request(from: &BareJid, to: &BareJid) -> Result<Stanza, DeliveryError> {
    presence_kind_between(PresenceType::Subscribe, from, to)
}

/// XEP-0115: the node naming the bridge in its capabilities.
/// (The project has no public address: `.invalid` says so.)
pub const CAPS_NODE: &str = "https://ucbridge.invalid";

/// What a Matrix user's address handles in a 1:1 chat: what the bridge carries both ways.
const ACCOUNT_FEATURES: [&str; 13] = [
    ns::DISCO_INFO,
    ns::PING,
    ns::SID,
    ns::CAPS,
    ns::VCARD,
    ns::RECEIPTS,
    ns::CHATSTATES,
    "urn:xmpp:chat-markers:0",
    "urn:xmpp:message-correct:0",
    "urn:xmpp:reactions:0",
    crate::xmpp::xep::retract::NS,
    crate::xmpp::xep::reply::NS,
    "jabber:x:oob",
];

/// What the component itself answers.
const COMPONENT_FEATURES: [&str; 7] = [
    ns::DISCO_INFO,
    ns::DISCO_ITEMS,
    ns::PING,
    ns::CAPS,
    crate::xmpp::adhoc::COMMANDS,
    crate::xmpp::xep::gateway::NS,
    crate::xmpp::search::NS,
];

/// The name a Matrix user's address shows (`@bob:hs (Matrix)`), `None` for an address that is
/// no Matrix user's.
pub fn account_name(local: &str) -> Option<String> {
    let raw = crate::core::mapping::xep0106_unescape(local).ok()?;
    let (localpart, server) = raw.rsplit_once('@')?;
    Some(format!("@{localpart}:{server} (Matrix)"))
}

/// What the component (`is_component`) or a Matrix user's address says about itself (XEP-0030).
pub fn disco(is_component: bool, name: &str) -> DiscoInfoResult {
    let (identity, features) = if is_component {
        (Identity::new("gateway", "matrix", "en", name), &COMPONENT_FEATURES[..])
    } else {
        (Identity::new("account", "registered", "en", name), &ACCOUNT_FEATURES[..])
    };
    let features = features.iter().map(|f| (*f).to_owned()).collect();
    DiscoInfoResult { node: None, identities: vec![identity], features, extensions: vec![] }
}

/// XEP-0115 capabilities of what [`disco`] says: clients that have seen the hash need not ask.
pub fn caps(is_component: bool, name: &str) -> Option<xmpp_parsers::caps::Caps> {
    use xmpp_parsers::caps::{Caps, compute_disco, hash_caps};
    let hash = hash_caps(&compute_disco(&disco(is_component, name)), xmpp_parsers::hashes::Algo::Sha_1).ok()?;
    Some(Caps::new(CAPS_NODE, hash))
}

/// The disco#info answer of the component or of a Matrix user's address.
pub fn disco_info(from: Jid, to: Jid, id: String, node: Option<String>, is_component: bool, name: &str) -> Stanza {
    let result = DiscoInfoResult { node, ..disco(is_component, name) };
    let mut iq = Iq::from_result(id, Some(result));
    *iq.from_mut() = Some(from);
    *iq.to_mut() = Some(to);
    Stanza::Iq(iq)
}

pub fn disco_items(from: Jid, to: Jid, id: String, node: Option<String>) -> Stanza {
    let result = DiscoItemsResult { node, items: vec![], rsm: None };
    let mut iq = Iq::from_result(id, Some(result));
    *iq.from_mut() = Some(from);
    *iq.to_mut() = Some(to);
    Stanza::Iq(iq)
}

#[cfg(test)]
mod tests {
    use xmpp_parsers::minidom::Element;

    use super::*;

    fn xml(stanza: Stanza) -> String {
        let element: Element = match stanza {
            Stanza::Message(m) => m.into(),
            Stanza::Presence(p) => p.into(),
            Stanza::Iq(iq) => iq.into(),
        };
        String::from(&element)
    }

    fn jid(s: &str) -> Jid {
        Jid::new(s).unwrap()
    }

    #[test]
    fn chat_carries_stable_id_origin_id_and_nick() {
        let text = Text::plain("a <b> & \"c\"\nzwei 👋");
        let out = xml(chat(
            jid("bob\\40hs@bridge.x"),
            jid("alice@x"),
            &text,
            "ucb-7".into(),
            Some("Bob"),
            &Extras::default(),
        ));
        for part in [
            "type='chat'",
            "id='ucb-7'",
            "<origin-id xmlns='urn:xmpp:sid:0' id='ucb-7'/>",
            "<nick xmlns='http://jabber.org/protocol/nick'>Bob</nick>",
            // Escaped by the serializer, never by us.
            "a &lt;b&gt; &amp; \"c\"\nzwei 👋",
        ] {
            assert!(out.contains(part), "{part} not in {out}");
        }
        let back = Message::try_from(out.parse::<Element>().unwrap()).unwrap();
        assert_eq!(back.bodies.values().next().unwrap(), &text.body);
    }

    #[test]
    fn emotes_use_the_me_convention() {
        let text = Text { body: "waves".into(), kind: TextKind::Emote };
        assert!(
            xml(chat(jid("a@b"), jid("c@d"), &text, "i".into(), None, &Extras::default()))
                .contains("<body>/me waves</body>")
        );
    }

    #[test]
    fn refusals_map_to_rfc6120_conditions() {
        let cases = [
            (RefusalKind::BadRequest, "bad-request"),
            (RefusalKind::BadAddress, "jid-malformed"),
            (RefusalKind::NotFound, "item-not-found"),
            (RefusalKind::Policy, "not-acceptable"),
            (RefusalKind::Unsupported, "feature-not-implemented"),
            (RefusalKind::Internal, "internal-server-error"),
        ];
        for (refusal, condition) in cases {
            let out = xml(message_error(Some(jid("a@b")), jid("c@d"), Some("x1".into()), refusal, "why"));
            for part in [
                "type='error'".to_owned(),
                "id='x1'".to_owned(),
                format!("<{condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"),
                ">why</text>".to_owned(),
            ] {
                assert!(out.contains(&part), "{part} not in {out}");
            }
        }
    }

    #[test]
    fn presence_carries_the_photo_hash_empty_photo_or_no_photo_while_unknown() {
        let (from, to) = (BareJid::parse("bob\\40hs@bridge.x").unwrap(), BareJid::parse("alice@x").unwrap());
        let online = Presence::new(crate::core::presence::State::Available, None);
        let with = |photo| xml(presence_between(&from, &to, &online, photo).unwrap());
        let PhotoHash::Sha1(abc) = hash_photo(b"abc") else { panic!("a hash") };
        // SHA-1("abc"), FIPS 180-2 appendix A.1.
        assert_eq!(hex::encode(abc), "a9993e364706816aba3e25717850c26c9cd0d89d");
        let hashed = with(PhotoHash::Sha1(abc));
        assert!(
            hashed
                .contains("<x xmlns='vcard-temp:x:update'><photo>a9993e364706816aba3e25717850c26c9cd0d89d</photo></x>"),
            "{hashed}"
        );
        assert!(with(PhotoHash::None).contains("<x xmlns='vcard-temp:x:update'><photo/></x>"));
        let unknown = with(PhotoHash::Unknown);
        assert!(unknown.contains("<x xmlns='vcard-temp:x:update'/>") && !unknown.contains("photo"), "{unknown}");
    }

    #[test]
    fn disco_identities() {
        let component = xml(disco_info(jid("bridge.x"), jid("a@b/r"), "q".into(), None, true, "gw"));
        assert!(component.contains("category='gateway'"), "{component}");
        let user = xml(disco_info(jid("u\\40hs@bridge.x"), jid("a@b/r"), "q".into(), None, false, "u"));
        assert!(user.contains("category='account'"), "{user}");
    }
}
