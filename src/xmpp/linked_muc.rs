//! Stanzas to and from MUCs on XMPP servers that Matrix users are occupants of (through the
//! bridge, as linked MUCs): occupant presence and room messages, received at the Matrix users'
//! addresses and read here into `XmppIn::Linked*` (the bridge decides, in `bridge::linked`);
//! joining, leaving and speaking, sent from them.

use xmpp_parsers::delay::Delay;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Id, Lang, Message, MessageType};
use xmpp_parsers::muc::MucUser;
use xmpp_parsers::muc::user::Status;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::StanzaError;
use xmpp_parsers::stanza_id::{OriginId, StanzaId};

use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult};
use xmpp_parsers::iq::Iq;

use crate::core::action::{Text, TextKind};
use crate::core::ids::BareJid;
use crate::core::mapping::IdentityMap;
use crate::core::outbox::DeliveryError;
use crate::core::xmpp_in::{RemotePresence, XmppIn};
use crate::xmpp::connection::XmppSender;
use crate::xmpp::hosted_muc_out::occupant_jid;

/// Ask `muc` (service discovery, XEP-0030) whether it is a multi-user chat room: only a room
/// answers with the `conference` identity and the MUC feature. Anything else (a person's
/// address, a silent server) is not made into a linked MUC.
pub async fn is_muc(xmpp: &XmppSender, component: &str, muc: &BareJid) -> Result<bool, DiscoError> {
    let from = Jid::new(component)?;
    let to = Jid::new(&muc.to_string())?;
    let request = Iq::from_get(String::new(), DiscoInfoQuery { node: None });
    let answer = xmpp.query(request, from, to, std::time::Duration::from_secs(10)).await?;
    let Iq::Result { payload: Some(payload), .. } = answer else { return Ok(false) };
    let Ok(info) = DiscoInfoResult::try_from(payload) else { return Ok(false) };
    Ok(info.identities.iter().any(|i| i.category == "conference" && i.type_ == "text")
        && info.features.contains("http://jabber.org/protocol/muc"))
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
/// history sent on joining, no body).
pub fn read_message(muc: BareJid, message: &Message) -> Option<XmppIn> {
    let from = message.from.as_ref()?;
    let nick = from.resource()?; // from the room itself (subject, notices)
    if message.type_ != MessageType::Groupchat {
        return None;
    }
    // History sent on joining is what was said before the Matrix user came: not bridged.
    if message.payloads.iter().any(|p| Delay::try_from(p.clone()).is_ok()) {
        return None;
    }
    let (_, body) = message.get_best_body_cloned(vec![])?;
    let muc_jid = muc.to_string();
    let room_id = message
        .payloads
        .iter()
        .filter_map(|p| StanzaId::try_from(p.clone()).ok())
        .find(|s| s.by.to_string() == muc_jid)
        .map(|s| s.id);
    let dedupe = room_id.or_else(|| message.id.as_ref().map(|i| i.0.clone()));
    Some(XmppIn::LinkedMessage { muc, nick: nick.as_str().to_owned(), dedupe, body })
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

/// A Matrix user's message in a remote MUC.
pub fn say_remote(user: &BareJid, muc: &BareJid, text: &Text, id: &str) -> Result<Stanza, DeliveryError> {
    let body = match text.kind {
        TextKind::Emote => format!("/me {}", text.body),
        _ => text.body.clone(),
    };
    let to = Jid::new(&muc.to_string()).map_err(|e| DeliveryError::Permanent(format!("invalid JID {muc}: {e}")))?;
    let mut message = Message::groupchat(Some(to)).with_body(Lang::default(), body);
    message.from = Some(linked_from(user)?);
    message.id = Some(Id(id.to_owned()));
    message = message.with_payload(OriginId { id: id.to_owned() });
    Ok(Stanza::Message(message))
}
