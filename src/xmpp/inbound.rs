//! Handling what arrives on the component stream, in order: each stanza is read into the
//! request it makes of the bridge (`core::xmpp_in::XmppIn`, with an [`Envelope`] to answer it)
//! and handed to an [`XmppHandler`] (the bridge, `bridge::xmpp_in`), which decides; what needs
//! no decision (service discovery, pings, malformed or unsupported requests) is answered here
//! with a reply that says why.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::mpsc;
use xmpp_parsers::chatstates::ChatState;
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoItemsQuery};
use xmpp_parsers::displayed_markers::{Displayed, Markable};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::minidom::Element;
use xmpp_parsers::nick::Nick;
use xmpp_parsers::ns;
use xmpp_parsers::ping::Ping;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::receipts::{Received as ReceiptReceived, Request};
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::StanzaError;
use xmpp_parsers::vcard::VCard;
use xmpp_parsers::vcard_update::VCardUpdate;

use crate::core::ids::{BareJid, StanzaId};
use crate::core::inbound::XmppChatIn;
use crate::core::mapping::IdentityMap;
use crate::core::refusal::RefusalKind;
use crate::core::xmpp_in::{Marker, SubscriptionKind, XmppIn};
use crate::xmpp::connection::{Received, XmppSender};
use crate::xmpp::dispatch::Ordered;
use crate::xmpp::reply::{Envelope, PresenceAnswer};
use crate::xmpp::{adhoc, assistant, hosted_muc, linked_muc, outbound};

/// What decides on the XMPP side's requests (the bridge). The adapter asks it only in the
/// core's terms; it answers through the [`Envelope`] it is given and the sender.
pub trait XmppHandler: Send + Sync + 'static {
    /// The identity mapping (Matrix users' addresses under the component).
    fn identities(&self) -> &IdentityMap;
    /// Is a Matrix room linked to this MUC? (Its room messages and occupant presence then go
    /// to the linked MUC's path.)
    fn is_linked_muc(&self, muc: &BareJid) -> impl Future<Output = bool> + Send;
    /// The usage policy: why `sender` may not write to the address `to_local` (under the
    /// component; `None`: the component itself), or `None` when they may.
    fn usage_refusal(&self, sender: &BareJid, to_local: Option<&str>) -> impl Future<Output = Option<String>> + Send;
    /// Decide on one request; `reply` answers the stanza it came in (if it may be answered).
    fn accept(self: Arc<Self>, input: XmppIn, reply: Option<Envelope>) -> impl Future<Output = ()> + Send;
}

/// What a stanza comes to.
pub enum Read {
    /// A request for the bridge.
    Bridge(XmppIn, Option<Envelope>),
    /// An answer given here.
    Reply(Stanza),
    /// An answer of several stanzas, given here.
    Replies(Vec<Stanza>),
    /// Nothing to do.
    Nothing,
}

/// Stanzas running or waiting at once; beyond it the reader waits.
const IN_FLIGHT: usize = 4096;
/// Unfinished stanzas one conversation may have; beyond it the sender is asked to wait.
const PER_CONVERSATION: usize = 256;

/// Handle stanzas as they arrive: concurrently across conversations, in arrival order within
/// one (see [`conversation`]), until the connection task stops.
pub async fn run<H: XmppHandler>(bridge: Arc<H>, sender: XmppSender, mut received: mpsc::Receiver<Received>) {
    let mut ordered = Ordered::new(IN_FLIGHT, PER_CONVERSATION);
    while let Some(item) = received.recv().await {
        match item {
            Received::Stanza(stanza) => {
                let route = route(bridge.as_ref(), &stanza).await;
                let key = conversation(&route, &stanza);
                let refusal = busy_reply(&stanza);
                let (b, s) = (bridge.clone(), sender.clone());
                if ordered.run(key.clone(), async move { handle(&b, &s, route, *stanza).await }).await.is_err() {
                    tracing::info!(key, "a conversation has too many stanzas waiting; refused");
                    if let Some(reply) = refusal {
                        sender.send_reply(reply).await;
                    }
                }
            }
            Received::Invalid { kind, header, error } => {
                if header.type_.as_deref() == Some("error") {
                    continue;
                }
                let (Some(from), Some(to)) =
                    (header.from.and_then(|f| Jid::new(&f).ok()), header.to.and_then(|t| Jid::new(&t).ok()))
                else {
                    continue;
                };
                let text = format!("The bridge could not parse this {kind}: {error}");
                let reply = match kind {
                    "message" => outbound::message_error(Some(to), from, header.id, RefusalKind::BadRequest, &text),
                    "presence" => outbound::presence_error(Some(to), from, header.id, RefusalKind::BadRequest, &text),
                    _ => match header.id {
                        Some(id) => outbound::iq_error(Some(to), from, id, RefusalKind::BadRequest, &text),
                        None => continue,
                    },
                };
                sender.send_reply(reply).await;
            }
            Received::Connected => {
                // Announcing presence and rejoining linked MUCs: the bridge's.
                let job = bridge.clone().accept(XmppIn::Connected, None);
                if ordered.run("connected".into(), job).await.is_err() {
                    tracing::warn!("cannot announce presence after connecting: too many pending");
                }
            }
        }
    }
}

/// Which handler a stanza goes to.
enum Route {
    /// To a room the bridge hosts.
    HostedRoom,
    /// From a MUC on an XMPP server that a Matrix room is linked to.
    LinkedMuc(BareJid),
    /// To the AI assistant's address (from people, or from a MUC it is invited into or in).
    Assistant,
    /// Anything else: to a Matrix user's address or to the component.
    Direct,
}

async fn route<H: XmppHandler>(bridge: &H, stanza: &Stanza) -> Route {
    let (from, to) = addresses(stanza);
    if to.is_some_and(hosted_muc::is_room) {
        return Route::HostedRoom;
    }
    if assistant::is_addressed(bridge.identities(), to) {
        return Route::Assistant;
    }
    if from_room_occupant(stanza)
        && let Some(muc) = from_linked_muc(bridge, from).await
    {
        return Route::LinkedMuc(muc);
    }
    Route::Direct
}

/// Only what a MUC sends as a room (groupchat messages, occupant presence, a refused join)
/// takes the linked MUC's path; anything else from the same address is handled as a person's.
pub fn from_room_occupant(stanza: &Stanza) -> bool {
    let is_muc_user = |payloads: &[Element]| payloads.iter().any(|p| p.is("x", ns::MUC_USER));
    match stanza {
        Stanza::Message(m) => m.type_ == MessageType::Groupchat || is_muc_user(&m.payloads),
        Stanza::Presence(p) => p.type_ == PresenceType::Error || is_muc_user(&p.payloads),
        Stanza::Iq(_) => false,
    }
}

/// The conversation a stanza belongs to: a hosted room, a linked MUC, or the pair of
/// addresses (sender's bare JID, addressee).
fn conversation(route: &Route, stanza: &Stanza) -> String {
    let bare = |j: Option<&Jid>| j.map(|j| j.to_bare().to_string()).unwrap_or_default();
    let (from, to) = addresses(stanza);
    match route {
        Route::HostedRoom => format!("muc:{}", bare(to)),
        Route::LinkedMuc(muc) => format!("portal:{muc}"),
        Route::Direct | Route::Assistant => format!("pair:{}>{}", bare(from), bare(to)),
    }
}

async fn handle<H: XmppHandler>(bridge: &Arc<H>, sender: &XmppSender, route: Route, stanza: Stanza) {
    // A remote MUC is the authority over who is in it (the assistant's too: who invited it into
    // one is checked by the bridge); everywhere else the usage policy applies.
    let from_muc =
        matches!(route, Route::LinkedMuc(_)) || (matches!(route, Route::Assistant) && from_room_occupant(&stanza));
    if !from_muc && let Some(reply) = crate::xmpp::access::refuse(bridge.as_ref(), &stanza).await {
        if let Some(reply) = reply {
            sender.send_reply(reply).await;
        }
        return;
    }
    let map = bridge.identities();
    let read = match (route, stanza) {
        (Route::HostedRoom, Stanza::Message(m)) => hosted_muc::read_message(m),
        (Route::HostedRoom, Stanza::Presence(p)) => hosted_muc::read_presence(p),
        (Route::HostedRoom, Stanza::Iq(iq)) => hosted_muc::read_iq(iq),
        // A remote MUC refusing a Matrix user's message: reported like any bounce.
        (Route::LinkedMuc(_), Stanza::Message(m)) if m.type_ == MessageType::Error => read_bounce(&m),
        (Route::LinkedMuc(muc), Stanza::Message(m)) => bridged(linked_muc::read_message(muc, &m)),
        (Route::LinkedMuc(muc), Stanza::Presence(p)) => bridged(linked_muc::read_presence(map, muc, &p)),
        (Route::Assistant, stanza) => assistant::read(stanza),
        (_, Stanza::Message(m)) => read_message(m),
        (_, Stanza::Presence(p)) => read_presence(map, p),
        (_, Stanza::Iq(iq)) => read_iq(map, iq),
    };
    match read {
        Read::Bridge(input, reply) => bridge.clone().accept(input, reply).await,
        Read::Reply(stanza) => sender.send_reply(stanza).await,
        Read::Replies(stanzas) => {
            for stanza in stanzas {
                sender.send_reply(stanza).await;
            }
        }
        Read::Nothing => {}
    }
}

/// A request that is not answered.
fn bridged(input: Option<XmppIn>) -> Read {
    input.map_or(Read::Nothing, |i| Read::Bridge(i, None))
}

/// What a sender is told when their conversation has too many stanzas waiting
/// (`resource-constraint`: try again later). Presence and answers get nothing.
pub fn busy_reply(stanza: &Stanza) -> Option<Stanza> {
    let text = "The bridge is busy with this conversation; try again in a moment.";
    match stanza {
        Stanza::Message(m) if m.type_ != MessageType::Error => Some(outbound::message_error(
            m.to.clone(),
            m.from.clone()?,
            m.id.as_ref().map(|i| i.0.clone()),
            RefusalKind::Busy,
            text,
        )),
        Stanza::Iq(Iq::Get { from, to, id, .. } | Iq::Set { from, to, id, .. }) => {
            Some(outbound::iq_error(to.clone(), from.clone()?, id.clone(), RefusalKind::Busy, text))
        }
        _ => None,
    }
}

/// The linked MUC a stanza comes from, if it comes from one.
async fn from_linked_muc<H: XmppHandler>(bridge: &H, from: Option<&Jid>) -> Option<BareJid> {
    let muc = core_jid(from?)?;
    bridge.is_linked_muc(&muc).await.then_some(muc)
}

/// An XEP-0153 photo hash in a presence (the bridge fetches the vCard when it is new).
pub fn photo_hash(presence: &Presence) -> Option<[u8; 20]> {
    presence.payloads.iter().find_map(|p| VCardUpdate::try_from(p.clone()).ok()).and_then(|u| u.photo?.data)
}

/// A stanza's sender and addressee.
pub fn addresses(stanza: &Stanza) -> (Option<&Jid>, Option<&Jid>) {
    match stanza {
        Stanza::Message(m) => (m.from.as_ref(), m.to.as_ref()),
        Stanza::Presence(p) => (p.from.as_ref(), p.to.as_ref()),
        Stanza::Iq(iq) => (iq.from(), iq.to()),
    }
}

fn core_jid(jid: &Jid) -> Option<BareJid> {
    BareJid::parse(jid.to_bare().as_str()).ok()
}

/// A message to a Matrix user's address or to the component.
pub fn read_message(message: Message) -> Read {
    let (Some(from), Some(to)) = (message.from.clone(), message.to.clone()) else {
        return Read::Nothing;
    };
    match message.type_ {
        MessageType::Error => return read_bounce(&message),
        MessageType::Groupchat => {
            let text = "This address is not a room; rooms are at #alias\\40server@ the bridge.";
            return Read::Reply(outbound::message_error(
                Some(to),
                from,
                message.id.map(|i| i.0),
                RefusalKind::Unsupported,
                text,
            ));
        }
        _ => {}
    }
    let Some(sender) = core_jid(&from) else {
        return Read::Nothing;
    };
    let read = crate::xmpp::content::read(&message);
    let id = message.id.clone().map(|i| i.0);
    let to_local = to.node().map(|n| n.as_str().to_owned());
    if let (Some(room), Some(to_local)) = (assistant::direct_invitation(&message), to_local.clone()) {
        // An invitation of a Matrix user into a room (it may carry a body for other clients).
        let Ok(room) = BareJid::parse(room) else {
            let text = format!("'{room}' is not a room address.");
            return Read::Reply(outbound::message_error(Some(to), from, id, RefusalKind::BadRequest, &text));
        };
        let envelope = Envelope::message(from, to, id);
        return Read::Bridge(XmppIn::DirectInvite { from: sender, to_local, room }, Some(envelope));
    }
    let envelope = Envelope::message(from, to, id.clone());
    if let (Some(act), Some(to_local)) = (read.act.clone(), to_local.clone()) {
        // Reactions or a retraction (its body is only a fallback for other clients).
        return Read::Bridge(XmppIn::DirectAct { from: sender, to_local, id, act }, Some(envelope));
    }
    // A file announced without a body still says something: its URL.
    let body = read.body.clone().or_else(|| read.extras.file.as_ref().map(|f| f.url.clone()));
    let Some(body) = body else {
        // No body: a chat state or a marker about a message from a Matrix user.
        let markers = markers(&message);
        if markers.is_empty() {
            return Read::Nothing;
        }
        return Read::Bridge(XmppIn::DirectMarkers { from: sender, to_local, markers }, None);
    };
    let Some(to_local) = to_local else {
        // A message to the component itself: a command (`help` lists them).
        return Read::Bridge(XmppIn::Command { from: sender, body }, Some(envelope));
    };
    let nick = message.payloads.iter().find_map(|p| Nick::try_from(p.clone()).ok()).map(|n| n.0);
    let has = |p: fn(&Element) -> bool| message.payloads.iter().any(p);
    let chat = XmppChatIn {
        from: sender,
        to_local,
        stanza_id: id.map(StanzaId::new),
        body,
        nick,
        wants_receipt: has(|p| Request::try_from(p.clone()).is_ok()),
        markable: has(|p| Markable::try_from(p.clone()).is_ok()),
        extras: read.extras,
    };
    Read::Bridge(XmppIn::Chat(chat), Some(envelope))
}

/// Chat states (XEP-0085), read markers (XEP-0333) and delivery receipts (XEP-0184).
fn markers(message: &Message) -> Vec<Marker> {
    let mut markers = vec![];
    for payload in &message.payloads {
        if let Ok(state) = ChatState::try_from(payload.clone()) {
            markers.push(Marker::ChatState { composing: matches!(state, ChatState::Composing) });
        } else if let Ok(displayed) = Displayed::try_from(payload.clone()) {
            markers.push(Marker::Displayed { id: displayed.id.0 });
        } else if let Ok(received) = ReceiptReceived::try_from(payload.clone()) {
            markers.push(Marker::Received { id: received.id });
        }
    }
    markers
}

/// An error came back for a message we sent (e.g. no such XMPP user): the Matrix sender is told.
fn read_bounce(message: &Message) -> Read {
    let (Some(from), Some(to)) = (&message.from, &message.to) else {
        return Read::Nothing;
    };
    let reason = message
        .payloads
        .iter()
        .find_map(|p| StanzaError::try_from(p.clone()).ok())
        .map(|e| {
            let text = e.texts.values().next().cloned().unwrap_or_default();
            format!("{:?} {text}", e.defined_condition)
        })
        .unwrap_or_else(|| "unknown error".into());
    tracing::info!(%from, %to, reason, "XMPP delivery error");
    let (Some(xmpp_user), Some(local)) = (core_jid(from), to.node()) else {
        return Read::Nothing;
    };
    Read::Bridge(XmppIn::Bounce { from: xmpp_user, to_local: local.as_str().to_owned(), reason }, None)
}

/// A presence to a Matrix user's address: subscriptions, probes, an XMPP user's own presence.
pub fn read_presence(map: &IdentityMap, presence: Presence) -> Read {
    let (Some(from), Some(to)) = (presence.from.clone(), presence.to.clone()) else {
        return Read::Nothing;
    };
    if to.node().is_none() {
        return Read::Replies(crate::xmpp::gateway::presence_answer(from, to, presence.type_));
    }
    let subscriber = from.to_bare().to_string();
    let contact = to.to_bare().to_string();
    let user = to.node().and_then(|n| map.matrix_for_jid(n.as_str()).ok());
    let resource = from.resource().map(|r| r.as_str().to_owned()).unwrap_or_default();
    let sender = core_jid(&from);
    let envelope = Envelope::presence(from, to, presence.id.clone());
    let (Some(user), Some(sender)) = (user, sender) else {
        if presence.type_ == PresenceType::Subscribe {
            let text = Some("No such Matrix user address.");
            return Read::Reply(envelope.presence_answer(PresenceAnswer::Unsubscribed, text));
        }
        return Read::Nothing;
    };
    let kind = match presence.type_ {
        PresenceType::Subscribe => SubscriptionKind::Subscribe,
        PresenceType::Unsubscribe => SubscriptionKind::Unsubscribe,
        PresenceType::Subscribed => SubscriptionKind::Subscribed,
        PresenceType::Unsubscribed => SubscriptionKind::Unsubscribed,
        PresenceType::Probe => SubscriptionKind::Probe,
        PresenceType::None | PresenceType::Unavailable => {
            // Unavailable presence is passed on too: its status is the note of "offline".
            let state = outbound::reading(&presence);
            let photo = photo_hash(&presence);
            return Read::Bridge(XmppIn::Availability { sender, user, resource, state, photo }, None);
        }
        _ => return Read::Nothing,
    };
    Read::Bridge(XmppIn::Subscription { kind, sender, user, subscriber, contact }, Some(envelope))
}

/// The component's name in disco#info.
pub const COMPONENT_NAME: &str = "ucbridge Matrix gateway";

/// An iq to a Matrix user's address or to the component, or an answer to one of the bridge's.
pub fn read_iq(map: &IdentityMap, iq: Iq) -> Read {
    let (from, to, id, payload) = match iq {
        Iq::Get { from: Some(from), to: Some(to), id, payload } => (from, to, id, payload),
        Iq::Set { from: Some(from), to: Some(to), id, payload }
            if to.node().is_none() && payload.is("command", adhoc::COMMANDS) =>
        {
            return adhoc::read(from, to, id, &payload);
        }
        Iq::Set { from: Some(from), to: Some(to), id, payload }
            if to.node().is_none() && payload.is("query", crate::xmpp::xep::gateway::NS) =>
        {
            return Read::Reply(crate::xmpp::gateway::answer(map, from, to, id, payload, true));
        }
        Iq::Set { from: Some(from), to: Some(to), id, payload }
            if to.node().is_none() && payload.is("query", crate::xmpp::search::NS) =>
        {
            return crate::xmpp::search::read(from, to, id, &payload, true);
        }
        Iq::Set { from: Some(from), to: Some(to), id, .. } => {
            let text = "This request is not supported.";
            return Read::Reply(outbound::iq_error(Some(to), from, id, RefusalKind::Unsupported, text));
        }
        // Answers to the bridge's own requests (vCards for avatars).
        // Only the queried JID's answer counts (its server answers for the bare JID).
        Iq::Result { id, from, payload, .. } => {
            let photo = payload
                .and_then(|p| VCard::try_from(p).ok())
                .and_then(|v| v.photo)
                .map(|p| (p.binval.data, p.type_.data));
            return Read::Bridge(XmppIn::IqAnswer { id, from: from.as_ref().and_then(core_jid), photo }, None);
        }
        Iq::Error { id, from, .. } => {
            return Read::Bridge(XmppIn::IqAnswer { id, from: from.as_ref().and_then(core_jid), photo: None }, None);
        }
        _ => return Read::Nothing,
    };
    let is_component = to.node().is_none();
    let valid_user = to.node().map(|n| map.matrix_for_jid(n.as_str()));
    if let Some(Err(e)) = &valid_user {
        return Read::Reply(outbound::iq_error(Some(to), from, id, RefusalKind::NotFound, &e.to_string()));
    }
    if let (Some(Ok(user)), true) = (&valid_user, payload.is("vCard", xmpp_parsers::ns::VCARD)) {
        return Read::Bridge(XmppIn::VCardRequest { user: user.clone() }, Some(Envelope::iq(from, to, id)));
    }
    // The component's own vCard is the bridge bot's Matrix profile (`appservice.bot_*`).
    if is_component && payload.is("vCard", xmpp_parsers::ns::VCARD) {
        return Read::Bridge(XmppIn::VCardRequest { user: map.bot() }, Some(Envelope::iq(from, to, id)));
    }
    if is_component && payload.is("query", crate::xmpp::xep::gateway::NS) {
        return Read::Reply(crate::xmpp::gateway::answer(map, from, to, id, payload, false));
    }
    if is_component && payload.is("query", crate::xmpp::search::NS) {
        return crate::xmpp::search::read(from, to, id, &payload, false);
    }
    let reply = if let Ok(query) = DiscoInfoQuery::try_from(payload.clone()) {
        let name = match to.node() {
            Some(local) => outbound::account_name(local.as_str()).unwrap_or_default(),
            None => COMPONENT_NAME.into(),
        };
        outbound::disco_info(to, from, id, query.node, is_component, &name)
    } else if let Ok(query) = DiscoItemsQuery::try_from(payload.clone()) {
        if is_component && query.node.as_deref() == Some(adhoc::COMMANDS) {
            let who = core_jid(&from);
            return Read::Bridge(XmppIn::CommandList { from: who }, Some(Envelope::iq(from, to, id)));
        }
        outbound::disco_items(to, from, id, query.node)
    } else if Ping::try_from(payload).is_ok() {
        outbound::iq_result(to, from, id)
    } else {
        outbound::iq_error(Some(to), from, id, RefusalKind::Unsupported, "This request is not supported.")
    };
    Read::Reply(reply)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::core::xmpp_in::{Affiliation, MucRole};

    /// The component stream's namespace, for stanzas written in tests.
    pub(crate) const NS: &str = "xmlns='jabber:component:accept'";

    fn map() -> IdentityMap {
        IdentityMap {
            homeserver: "hs.example".into(),
            component: "matrix.xmpp.example".into(),
            ghost_prefix: "_xmpp_".into(),
            bot_localpart: "ucbridge".into(),
            chatbot_localpart: None,
        }
    }

    /// A stanza from its XML (tests only).
    pub(crate) fn stanza(xml: &str) -> Stanza {
        let element: Element = xml.parse().expect("test XML parses");
        Stanza::try_from(element).expect("a stanza")
    }

    #[test]
    fn a_chat_message_is_read_into_the_request_with_its_receipt_request() {
        let Stanza::Message(m) = stanza(&format!(
            "<message {NS} type='chat' id='m1' from='juliet@x.example/phone' to='bob\\40hs.example@matrix.xmpp.example'>\
             <body>hi</body><request xmlns='urn:xmpp:receipts'/></message>"
        )) else {
            panic!("a message")
        };
        let Read::Bridge(XmppIn::Chat(chat), Some(_)) = read_message(m) else { panic!("a chat request") };
        assert_eq!(
            (chat.from.to_string(), chat.to_local.as_str(), chat.body.as_str()),
            ("juliet@x.example".into(), "bob\\40hs.example", "hi")
        );
        assert!(chat.wants_receipt && !chat.markable);
        assert_eq!(chat.stanza_id.as_ref().map(StanzaId::as_str), Some("m1"));
    }

    #[test]
    fn a_groupchat_message_to_a_person_is_answered_here_without_the_bridge() {
        let Stanza::Message(m) = stanza(&format!(
            "<message {NS} type='groupchat' from='juliet@x.example/phone' to='bob\\40hs.example@matrix.xmpp.example'>\
             <body>hi</body></message>"
        )) else {
            panic!("a message")
        };
        assert!(matches!(read_message(m), Read::Reply(Stanza::Message(_))));
    }

    #[test]
    fn a_direct_invitation_of_a_matrix_user_is_read_with_its_room() {
        let invite = |room: &str| {
            let Stanza::Message(m) = stanza(&format!(
                "<message {NS} id='i1' from='juliet@x.example/phone' to='bob\\40hs.example@matrix.xmpp.example'>\
                 <body>join us</body><x xmlns='jabber:x:conference' jid='{room}'/></message>"
            )) else {
                panic!("a message")
            };
            read_message(m)
        };
        let Read::Bridge(XmppIn::DirectInvite { from, to_local, room }, Some(_)) =
            invite("#r\\40hs.example@matrix.xmpp.example")
        else {
            panic!("a direct invitation")
        };
        assert_eq!(from.to_string(), "juliet@x.example");
        assert_eq!(
            (to_local.as_str(), room.to_string().as_str()),
            ("bob\\40hs.example", "#r\\40hs.example@matrix.xmpp.example")
        );
        // A room address that does not read is answered here.
        assert!(matches!(invite("@"), Read::Reply(Stanza::Message(_))));
    }

    #[test]
    fn a_subscription_to_no_matrix_user_is_declined_here() {
        let Stanza::Presence(p) = stanza(&format!(
            "<presence {NS} type='subscribe' from='juliet@x.example' to='no-matrix-id@matrix.xmpp.example'/>"
        )) else {
            panic!("a presence")
        };
        assert!(matches!(read_presence(&map(), p), Read::Reply(Stanza::Presence(_))));
    }

    #[test]
    fn a_rooms_vcard_is_asked_or_set_and_a_broken_one_refused_here() {
        let iq = |kind: &str, payload: &str| {
            let Stanza::Iq(iq) = stanza(&format!(
                "<iq {NS} type='{kind}' id='v1' from='juliet@x.example/phone' to='#r\\40hs.example@matrix.xmpp.example'>\
                 {payload}</iq>"
            )) else {
                panic!("an iq")
            };
            hosted_muc::read_iq(iq)
        };
        let get = iq("get", "<vCard xmlns='vcard-temp'/>");
        assert!(
            matches!(get, Read::Bridge(XmppIn::MucAvatar { room_local }, Some(_)) if room_local == "#r\\40hs.example")
        );
        let set =
            iq("set", "<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>aGk=</BINVAL></PHOTO></vCard>");
        let Read::Bridge(XmppIn::MucSetAvatar { sender, photo, .. }, Some(_)) = set else { panic!("a set") };
        assert_eq!((sender.to_string(), photo), ("juliet@x.example".into(), Some(b"hi".to_vec())));
        // An empty vCard removes the avatar.
        let remove = iq("set", "<vCard xmlns='vcard-temp'/>");
        assert!(matches!(remove, Read::Bridge(XmppIn::MucSetAvatar { photo: None, .. }, _)));
        // A BINVAL that is not base64 is refused before the bridge sees it.
        let bad =
            iq("set", "<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>%%%</BINVAL></PHOTO></vCard>");
        assert!(matches!(bad, Read::Reply(Stanza::Iq(Iq::Error { .. }))));
    }

    #[test]
    fn muc_admin_items_carry_typed_affiliations_and_roles() {
        let Stanza::Iq(iq) = stanza(&format!(
            "<iq {NS} type='set' id='a1' from='juliet@x.example/phone' to='#r\\40hs.example@matrix.xmpp.example'>\
             <query xmlns='http://jabber.org/protocol/muc#admin'><item nick='bob' affiliation='outcast'/>\
             <item jid='ann@x.example' role='bogus'/></query></iq>"
        )) else {
            panic!("an iq")
        };
        let Read::Bridge(XmppIn::MucAdmin { room_local, items, .. }, Some(_)) = hosted_muc::read_iq(iq) else {
            panic!("a muc#admin request")
        };
        assert_eq!(room_local, "#r\\40hs.example");
        assert_eq!(items[0].affiliation, Some(Affiliation::Outcast));
        assert_eq!(items[1].role, Some(MucRole::Other("bogus".into())));
    }

    #[test]
    fn history_from_a_linked_muc_is_not_read() {
        let muc = BareJid::parse("room@conference.x.example").expect("a JID");
        let Stanza::Message(m) = stanza(&format!(
            "<message {NS} type='groupchat' from='room@conference.x.example/ann' to='bob\\40hs.example@matrix.xmpp.example/ucbridge'>\
             <body>old</body><delay xmlns='urn:xmpp:delay' stamp='2020-01-01T00:00:00Z'/></message>"
        )) else {
            panic!("a message")
        };
        assert_eq!(linked_muc::read_message(muc.clone(), &m), None);
        // The room's own <delay> marks history; the sender's (their server held it) does not.
        let delayed = |from: &str| {
            let Stanza::Message(m) = stanza(&format!(
                "<message {NS} type='groupchat' from='room@conference.x.example/ann' to='bob\\40hs.example@matrix.xmpp.example/ucbridge'>\
                 <body>held</body><delay xmlns='urn:xmpp:delay' from='{from}' stamp='2020-01-01T00:00:00Z'/></message>"
            )) else {
                panic!("a message")
            };
            linked_muc::read_message(muc.clone(), &m)
        };
        assert_eq!(delayed("room@conference.x.example"), None);
        let Some(XmppIn::LinkedMessage(held)) = delayed("x.example") else { panic!("a live message") };
        assert_eq!(held.extras.sent_at, Some(1_577_836_800_000));
        let Stanza::Message(m) = stanza(&format!(
            "<message {NS} type='groupchat' id='x1' from='room@conference.x.example/ann' to='bob\\40hs.example@matrix.xmpp.example/ucbridge'>\
             <body>new</body></message>"
        )) else {
            panic!("a message")
        };
        let expected = XmppIn::LinkedMessage(Box::new(crate::core::xmpp_in::LinkedSaid {
            muc,
            nick: "ann".into(),
            stanza_id: None,
            message_id: Some("x1".into()),
            body: "new".into(),
            extras: Default::default(),
            act: None,
            mentions: vec![],
        }));
        assert_eq!(
            linked_muc::read_message(BareJid::parse("room@conference.x.example").expect("a JID"), &m),
            Some(expected)
        );
    }
}
