//! Stanzas of the bridge's MUC service (XEP-0045) and its archive (XEP-0313), built with
//! xmpp-parsers types.

use crate::core::mentions::Span;
use xmpp_parsers::data_forms::DataForm;
use xmpp_parsers::delay::Delay;
use xmpp_parsers::disco::{DiscoInfoResult, Identity};
use xmpp_parsers::forwarding::Forwarded;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::{FullJid, Jid};
use xmpp_parsers::mam;
use xmpp_parsers::message::{Id, Lang, Message, MessageType};
use xmpp_parsers::minidom::Element;
use xmpp_parsers::muc::user::{Affiliation, Invite, Item, MucUser, Role as MucRole, Status};
use xmpp_parsers::ns;
use xmpp_parsers::presence::{Presence, Show as XmppShow, Type as PresenceType};
use xmpp_parsers::rsm::{First, SetResult};
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_id::{OriginId, StanzaId};

use crate::core::action::{Extras, Text, TextKind};
use crate::core::ids::{self, ArchiveId, BareJid};
use crate::core::outbox::DeliveryError;
use crate::core::presence::Show;
use crate::core::room::Role;
use crate::store::{ArchivedAct, ArchivedMessage};
use crate::xmpp::content::stamp;
pub use crate::xmpp::out::OccupantPresence;
use crate::xmpp::xep::retract::Retracted;

pub const MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
pub const MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";

fn jid(s: &str) -> Result<Jid, DeliveryError> {
    Jid::new(s).map_err(|e| DeliveryError::Permanent(format!("invalid JID {s}: {e}")))
}

/// `room@component/nick`.
pub fn occupant_jid(room: &BareJid, nick: &str) -> Result<Jid, DeliveryError> {
    let bare = xmpp_parsers::jid::BareJid::new(&room.to_string())
        .map_err(|e| DeliveryError::Permanent(format!("invalid room JID {room}: {e}")))?;
    let resource = xmpp_parsers::jid::ResourcePart::new(nick)
        .map_err(|e| DeliveryError::Permanent(format!("invalid nick {nick:?}: {e}")))?;
    Ok(Jid::from(FullJid::from_parts(bare.node(), bare.domain(), &resource)))
}

fn status(code: u16) -> Option<Status> {
    Some(match code {
        100 => Status::NonAnonymousRoom,
        110 => Status::SelfPresence,
        201 => Status::RoomHasBeenCreated,
        210 => Status::AssignedNick,
        301 => Status::Banned,
        303 => Status::NewNick,
        307 => Status::Kicked,
        321 => Status::RemovalFromRoom,
        _ => return None,
    })
}

/// XEP-0045 affiliation and role of a participant (`None`: no longer one).
pub fn affiliation_and_role(role: Option<Role>) -> (Affiliation, MucRole) {
    match role {
        Some(Role::Owner) => (Affiliation::Owner, MucRole::Moderator),
        Some(Role::Moderator) => (Affiliation::Admin, MucRole::Moderator),
        Some(Role::Participant) => (Affiliation::Member, MucRole::Participant),
        None => (Affiliation::None, MucRole::None),
    }
}

/// An occupant's presence from `room/nick` to one client.
pub fn occupant_presence(room: &BareJid, nick: &str, to: &str, p: &OccupantPresence) -> Result<Stanza, DeliveryError> {
    let available = p.role.is_some() && p.new_nick.is_none();
    let kind = if available { PresenceType::None } else { PresenceType::Unavailable };
    let mut presence = Presence::new(kind).with_from(occupant_jid(room, nick)?).with_to(jid(to)?);
    if let (Some(core), true) = (&p.presence, available) {
        let x = core.to_xmpp();
        presence.show = match x.show {
            // An offline participant is still one (the suite keeps them in the conversation):
            // shown as extended away.
            _ if !x.available => Some(XmppShow::Xa),
            Show::None | Show::Chat => None,
            Show::Away => Some(XmppShow::Away),
            Show::Xa => Some(XmppShow::Xa),
            Show::Dnd => Some(XmppShow::Dnd),
        };
        let status = if x.available { x.status } else { Some(x.status.unwrap_or_else(|| "offline".to_owned())) };
        if let Some(s) = status {
            presence.statuses.insert(Lang::default(), s);
        }
    }
    let (affiliation, role) = affiliation_and_role(p.role);
    let mut item = Item::new(affiliation, role);
    if let Some(real) = p.real_jid.as_deref() {
        item.jid = Jid::new(real).ok().and_then(|j| j.try_into_full().ok());
        if item.jid.is_none() {
            // A bare real JID: XEP-0045 allows it, but the type wants a full JID.
            item.jid = FullJid::new(&format!("{real}/bridge")).ok();
        }
    }
    if let Some(n) = &p.new_nick {
        item.nick = Some(n.to_owned());
    }
    if let Some(r) = p.reason.as_deref() {
        item = item.with_reason(r);
    }
    let mut x = MucUser::new().with_items(vec![item]);
    x.status = p.statuses.iter().filter_map(|c| status(*c)).collect();
    presence.payloads.push(x.into());
    Ok(Stanza::Presence(presence))
}

/// A message said in the room, to one client. `origin_id` is the sender's id (so their client
/// recognises its own message); `archive_id` is the room's stanza id (XEP-0359) and MAM id.
#[allow(clippy::too_many_arguments)]
pub fn groupchat(
    room: &BareJid,
    nick: &str,
    to: &str,
    text: &Text,
    id: &str,
    archive_id: ArchiveId,
    extras: &Extras<ids::StanzaId>,
    mentions: &[Span],
) -> Result<Stanza, DeliveryError> {
    let body = match text.kind {
        TextKind::Emote => format!("/me {}", text.body),
        _ => text.body.clone(),
    };
    let message = crate::xmpp::content::apply(Message::groupchat(Some(jid(to)?)), &body, extras);
    let mut message = crate::xmpp::content::add_mentions(message, text, mentions);
    // Set only when the message leaves late (the delivery decides): held by the component.
    if let Some(ms) = extras.sent_at
        && let Some(delay) = crate::xmpp::content::delay(&jid(room.domain())?, ms)
    {
        message = message.with_payload(delay);
    }
    message.from = Some(occupant_jid(room, nick)?);
    message.id = Some(Id(id.to_owned()));
    message = message
        .with_payload(StanzaId { id: archive_id.to_string(), by: jid(&room.to_string())? })
        .with_payload(OriginId { id: id.to_owned() });
    Ok(Stanza::Message(message))
}

/// An occupant's reactions (XEP-0444) to the archived message `archive_id`, or (`keys` `None`)
/// their retraction of it (XEP-0424), to one client.
pub fn group_act(
    room: &BareJid,
    nick: &str,
    to: &str,
    id: &str,
    archive_id: ArchiveId,
    keys: Option<&[String]>,
) -> Result<Stanza, DeliveryError> {
    let target = archive_id.to_string();
    let mut message = match keys {
        Some(keys) => crate::xmpp::content::reactions(MessageType::Groupchat, jid(to)?, &target, keys),
        None => crate::xmpp::content::retraction(MessageType::Groupchat, jid(to)?, &target),
    };
    message.from = Some(occupant_jid(room, nick)?);
    message.id = Some(Id(id.to_owned()));
    Ok(Stanza::Message(message.with_payload(OriginId { id: id.to_owned() })))
}

/// An archived message, reactions, retraction or tombstone, as XMPP shows it. References name
/// the room's stanza id (the archive id), as they do live.
fn archived_message(room: &BareJid, m: &ArchivedMessage) -> Result<Message, DeliveryError> {
    let room_jid = jid(&room.to_string())?;
    let mut message = match (&m.act, &m.retracted) {
        (Some(ArchivedAct::Reactions { target, keys }), _) => {
            crate::xmpp::content::reactions(MessageType::Groupchat, room_jid, &target.to_string(), keys)
        }
        (Some(ArchivedAct::Retract { target }), _) => {
            crate::xmpp::content::retraction(MessageType::Groupchat, room_jid, &target.to_string())
        }
        // XEP-0424 tombstone: the envelope stays, the content is gone.
        (None, Some(r)) => {
            let stamp = stamp(r.at).ok_or_else(|| DeliveryError::Permanent("bad retraction time".into()))?;
            Message::new_with_type(MessageType::Groupchat, Some(room_jid))
                .with_payload(Retracted { id: r.by.to_string(), stamp })
        }
        (None, None) => {
            let body = match m.kind {
                TextKind::Emote => format!("/me {}", m.body),
                _ => m.body.clone(),
            };
            Message::new_with_type(MessageType::Groupchat, None).with_body(Lang::default(), body)
        }
    };
    // The result's envelope (or history's) names the recipient.
    message.to = None;
    message.from = Some(occupant_jid(room, &m.nick)?);
    message.id = Some(Id(m.xmpp_id()));
    message = message.with_payload(StanzaId { id: m.id.to_string(), by: jid(&room.to_string())? });
    if let Some((_, original)) = &m.replaces {
        message = message.with_payload(xmpp_parsers::message_correct::Replace { id: Id(original.clone()) });
    }
    Ok(message)
}

/// A message from the archive as history on join (XEP-0203 delay).
pub fn history(room: &BareJid, to: &str, m: &ArchivedMessage) -> Result<Stanza, DeliveryError> {
    let mut message = archived_message(room, m)?;
    message.to = Some(jid(to)?);
    if let Some(stamp) = stamp(m.ts) {
        message = message.with_payload(Delay { from: Some(jid(&room.to_string())?), stamp, data: None });
    }
    Ok(Stanza::Message(message))
}

/// The room's subject (sent last when joining, and when it changes).
pub fn subject(room: &BareJid, to: &str, subject: &str) -> Result<Stanza, DeliveryError> {
    let mut message = Message::groupchat(Some(jid(to)?));
    message.from = Some(jid(&room.to_string())?);
    message.subjects.insert(Lang::default(), subject.to_owned());
    Ok(Stanza::Message(message))
}

/// A mediated invitation (XEP-0045 §7.8.2) from the room to `to`.
pub fn invite(room: &BareJid, to: &BareJid, from: &str, reason: Option<&str>) -> Result<Stanza, DeliveryError> {
    let x = MucUser {
        invite: Some(Invite { from: Jid::new(from).ok(), to: None, reason: reason.map(str::to_owned) }),
        ..MucUser::new()
    };
    let mut message = Message::new(Some(jid(&to.to_string())?)).with_payload(x);
    message.from = Some(jid(&room.to_string())?);
    let mut body = format!("You are invited to the room {room}");
    if let Some(r) = reason {
        body.push_str(&format!(": {r}"));
    }
    message.bodies.insert(Lang::default(), body);
    Ok(Stanza::Message(message))
}

/// One archived message as a MAM result (XEP-0313).
pub fn mam_result(
    room: &BareJid,
    to: &Jid,
    queryid: Option<&str>,
    m: &ArchivedMessage,
) -> Result<Stanza, DeliveryError> {
    let inner = archived_message(room, m)?;
    let stamp = stamp(m.ts).ok_or_else(|| DeliveryError::Permanent("bad archive time".into()))?;
    let result = mam::Result_ {
        id: m.id.to_string(),
        queryid: queryid.map(|q| mam::QueryId(q.to_owned())),
        forwarded: Forwarded { delay: Some(Delay { from: None, stamp, data: None }), message: inner },
    };
    // The forwarded message must be in the client namespace: the component's own namespace
    // would reach the client unchanged, and clients ignore a message they do not recognise.
    let result = in_client_namespace(Element::from(result));
    let mut message = Message::new_with_type(MessageType::Normal, Some(to.clone()));
    message.payloads.push(result);
    message.from = Some(jid(&room.to_string())?);
    Ok(Stanza::Message(message))
}

const COMPONENT_NS: &str = "jabber:component:accept";

/// A copy of `e` with every element of the component namespace moved to `jabber:client`.
fn in_client_namespace(e: Element) -> Element {
    let ns = if e.ns() == COMPONENT_NS { "jabber:client".to_owned() } else { e.ns() };
    let mut out = Element::builder(e.name(), ns).build();
    for ((attr_ns, name), value) in e.attrs() {
        out.set_attr(attr_ns.clone(), name.clone(), value.clone());
    }
    for node in e.nodes() {
        match node {
            xmpp_parsers::minidom::Node::Element(child) => {
                out.append_child(in_client_namespace(child.clone()));
            }
            xmpp_parsers::minidom::Node::Text(t) => out.append_text_node(t.clone()),
        }
    }
    out
}

/// The end of a MAM query: the page's first and last ids and the total count.
pub fn mam_fin(
    room: &BareJid,
    to: Jid,
    id: String,
    page: &[ArchivedMessage],
    count: i64,
    complete: bool,
) -> Result<Stanza, DeliveryError> {
    let set = SetResult {
        first: page.first().map(|m| First { index: None, item: m.id.to_string() }),
        last: page.last().map(|m| m.id.to_string()),
        count: usize::try_from(count).ok(),
    };
    let mut iq = Iq::from_result(id, Some(mam::Fin { complete, set }));
    *iq.from_mut() = Some(jid(&room.to_string())?);
    *iq.to_mut() = Some(to);
    Ok(Stanza::Iq(iq))
}

/// What a room says about itself (XEP-0045 §6.4).
pub fn room_disco_info(room: Jid, to: Jid, id: String, name: &str, open: bool, avatar: Option<[u8; 20]>) -> Stanza {
    let mut features: std::collections::BTreeSet<String> = [
        ns::DISCO_INFO,
        ns::MUC,
        ns::MAM,
        // before-id / after-id filters and flip-page (XEP-0313 §7.1).
        "urn:xmpp:mam:2#extended",
        ns::SID,
        ns::PING,
        // The room's avatar is its vCard's photo (XEP-0486).
        ns::VCARD,
        "muc_nonanonymous",
        "muc_persistent",
        "muc_unsecured",
        if open { "muc_open" } else { "muc_membersonly" },
    ]
    .map(String::from)
    .into();
    // Not listed anywhere (the component's disco#items is empty): found by address only.
    features.insert("muc_hidden".to_owned());
    let result = DiscoInfoResult {
        node: None,
        identities: vec![Identity::new("conference", "text", "en", name)],
        features,
        extensions: room_info_form(avatar),
    };
    let mut iq = Iq::from_result(id, Some(result));
    *iq.from_mut() = Some(room);
    *iq.to_mut() = Some(to);
    Stanza::Iq(iq)
}

/// The `muc#roominfo` form: the avatar's hash (XEP-0486; no field without an avatar).
fn room_info_form(avatar: Option<[u8; 20]>) -> Vec<DataForm> {
    use xmpp_parsers::data_forms::{DataFormType, Field, FieldType};
    let Some(hash) = avatar else { return vec![] };
    let mut field = Field::new("muc#roominfo_avatarhash", FieldType::TextMulti).with_value(&hex::encode(hash));
    field.label = Some("Avatar hash".to_owned());
    vec![DataForm::new(DataFormType::Result_, "http://jabber.org/protocol/muc#roominfo", vec![field])]
}

/// A configuration change (status 104) from the room itself to one client: its avatar
/// changed, and clients that show it ask for the room's vCard again (XEP-0486).
pub fn config_changed(room: &BareJid, to: &str) -> Result<Stanza, DeliveryError> {
    let x = MucUser { status: vec![Status::ConfigNonPrivacyRelated], ..MucUser::new() };
    let mut message = Message::new(Some(jid(to)?));
    message.type_ = MessageType::Groupchat;
    message.from = Some(jid(&room.to_string())?);
    message.payloads.push(x.into());
    Ok(Stanza::Message(message))
}

/// An affiliation list (answer to a muc#admin query): (real JID, nick, role).
pub fn admin_list(room: Jid, to: Jid, id: String, items: &[(String, String, Role)]) -> Stanza {
    let mut query = Element::builder("query", MUC_ADMIN);
    for (real, nick, role) in items {
        let (affiliation, muc_role) = affiliation_and_role(Some(*role));
        let name = |n: &str| xmpp_parsers::minidom::rxml::NcName::try_from(n).expect("a literal attribute name");
        let item: Element = Element::builder("item", MUC_ADMIN)
            .attr(name("affiliation"), affiliation)
            .attr(name("role"), muc_role)
            .attr(name("jid"), real.as_str())
            .attr(name("nick"), nick.as_str())
            .build();
        query = query.append(item);
    }
    let mut iq = Iq::from_result(id, Some(Raw(query.build())));
    *iq.from_mut() = Some(room);
    *iq.to_mut() = Some(to);
    Stanza::Iq(iq)
}

/// An arbitrary element as an iq result payload.
struct Raw(Element);
impl From<Raw> for Element {
    fn from(r: Raw) -> Element {
        r.0
    }
}
impl TryFrom<Element> for Raw {
    type Error = xmpp_parsers::FromElementError;
    fn try_from(e: Element) -> Result<Self, Self::Error> {
        Ok(Raw(e))
    }
}
impl xmpp_parsers::iq::IqResultPayload for Raw {}

/// A chat state (XEP-0085) of an occupant, to one client.
pub fn chat_state(room: &BareJid, nick: &str, to: &str, composing: bool) -> Result<Stanza, DeliveryError> {
    let state = if composing {
        xmpp_parsers::chatstates::ChatState::Composing
    } else {
        xmpp_parsers::chatstates::ChatState::Active
    };
    let mut message = Message::groupchat(Some(jid(to)?)).with_payload(state);
    message.from = Some(occupant_jid(room, nick)?);
    Ok(Stanza::Message(message))
}

/// An occupant displayed the room's message `id` (XEP-0333 in a groupchat: the room's stanza id).
pub fn displayed_in_room(room: &BareJid, nick: &str, to: &str, id: &str) -> Result<Stanza, DeliveryError> {
    let marker = xmpp_parsers::displayed_markers::Displayed { id: Id(id.to_owned()) };
    let mut message = Message::groupchat(Some(jid(to)?)).with_payload(marker);
    message.from = Some(occupant_jid(room, nick)?);
    Ok(Stanza::Message(message))
}

/// A private message between occupants (XEP-0045 §7.5), from `room/nick` with the MUC user
/// marker clients use to show it as such.
pub fn private(room: &BareJid, nick: &str, to: &str, text: &Text, id: Option<&str>) -> Result<Stanza, DeliveryError> {
    let mut message = Message::chat(Some(jid(to)?)).with_body(Lang::default(), text.body.clone());
    message.from = Some(occupant_jid(room, nick)?);
    message.id = id.map(|i| Id(i.to_owned()));
    message = message.with_payload(MucUser::new());
    Ok(Stanza::Message(message))
}

/// The room configuration form (XEP-0045 §10.2) with what the bridge lets moderators change.
pub fn config_form(room: Jid, to: Jid, id: String, name: &str, description: &str) -> Stanza {
    use xmpp_parsers::data_forms::{DataFormType, Field, FieldType};
    let mut form = DataForm::new(
        DataFormType::Form,
        "http://jabber.org/protocol/muc#roomconfig",
        vec![
            Field::text_single("muc#roomconfig_roomname", name),
            Field::text_single("muc#roomconfig_roomdesc", description),
        ],
    );
    form.title = Some("Room configuration".to_owned());
    for f in &mut form.fields {
        if f.var.as_deref() == Some("muc#roomconfig_roomname") {
            f.label = Some("Name".to_owned());
        } else if f.var.as_deref() == Some("muc#roomconfig_roomdesc") {
            f.label = Some("Description (the topic)".to_owned());
            f.type_ = FieldType::TextSingle;
        }
    }
    let query = Element::builder("query", MUC_OWNER).append(Element::from(form)).build();
    let mut iq = Iq::from_result(id, Some(Raw(query)));
    *iq.from_mut() = Some(room);
    *iq.to_mut() = Some(to);
    Stanza::Iq(iq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::watch::Party;
    use crate::store::Retracted as Tombstone;

    fn archived(id: i64, body: &str, act: Option<ArchivedAct>, retracted: Option<Tombstone>) -> ArchivedMessage {
        ArchivedMessage {
            id,
            sender: Party::from_key("xmpp:cid@x.example").expect("a party"),
            nick: "cid".into(),
            body: body.into(),
            kind: TextKind::Text,
            origin_id: Some(format!("o{id}")),
            ts: 1_800_000_000_000,
            event_id: None,
            replaces: None,
            act,
            retracted,
        }
    }

    fn xml(m: &ArchivedMessage) -> String {
        let room = BareJid::parse("#r\\40hs@bridge.example").expect("a JID");
        String::from(&Element::from(archived_message(&room, m).expect("a message")))
    }

    #[test]
    fn acts_and_tombstones_are_archived_as_xmpp_shows_them() {
        let reactions =
            xml(&archived(5, "[]", Some(ArchivedAct::Reactions { target: 3, keys: vec!["👍".into()] }), None));
        assert!(reactions.contains("<reactions xmlns='urn:xmpp:reactions:0' id='3'>"), "{reactions}");
        assert!(reactions.contains("👍") && reactions.contains("stanza-id"), "{reactions}");
        let retract = xml(&archived(6, "", Some(ArchivedAct::Retract { target: 3 }), None));
        assert!(retract.contains("<retract xmlns='urn:xmpp:message-retract:1' id='3'/>"), "{retract}");
        let tomb = xml(&archived(3, "", None, Some(Tombstone { by: 6, at: 1_800_000_000_000 })));
        assert!(
            tomb.contains("<retracted xmlns='urn:xmpp:message-retract:1' id='6' stamp='2027-01-15T08:00:00"),
            "{tomb}"
        );
        assert!(!tomb.contains("<body"), "{tomb}");
        assert!(tomb.contains("id='o3'"), "the envelope stays: {tomb}");
        let message = xml(&archived(4, "hello", None, None));
        assert!(message.contains(">hello</body>") && !message.contains(" to="), "{message}");
    }
}
