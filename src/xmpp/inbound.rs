//! Handling what arrives on the component stream, in order: 1:1 messages go to the bridge;
//! service discovery, pings, presence probes and subscriptions are answered here; anything the
//! bridge cannot take gets an error reply that says why.

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

use crate::bridge::Bridge;
use crate::core::action::Refusal;
use crate::core::ids::{BareJid, MatrixUserId};
use crate::core::inbound::XmppChatIn;
use crate::core::presence::{Consent, OnSubscribe};
use crate::xmpp::connection::Received;
use crate::xmpp::dispatch::Ordered;
use crate::xmpp::{adhoc, hosted_muc, linked_muc, outbound};

/// Stanzas running or waiting at once; beyond it the reader waits.
const IN_FLIGHT: usize = 4096;
/// Unfinished stanzas one conversation may have; beyond it the sender is asked to wait.
const PER_CONVERSATION: usize = 256;

/// Handle stanzas as they arrive: concurrently across conversations, in arrival order within
/// one (see [`conversation`]), until the connection task stops.
pub async fn run(bridge: Arc<Bridge>, mut received: mpsc::Receiver<Received>) {
    let mut ordered = Ordered::new(IN_FLIGHT, PER_CONVERSATION);
    while let Some(item) = received.recv().await {
        match item {
            Received::Stanza(stanza) => {
                let route = route(&bridge, &stanza).await;
                let key = conversation(&route, &stanza);
                let refusal = busy_reply(&stanza);
                let b = bridge.clone();
                if ordered.run(key.clone(), async move { handle(&b, route, *stanza).await }).await.is_err() {
                    tracing::info!(key, "a conversation has too many stanzas waiting; refused");
                    if let Some(reply) = refusal {
                        bridge.xmpp.send_reply(reply).await;
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
                    "message" => outbound::message_error(Some(to), from, header.id, Refusal::BadRequest, &text),
                    "presence" => outbound::presence_error(Some(to), from, header.id, Refusal::BadRequest, &text),
                    _ => match header.id {
                        Some(id) => outbound::iq_error(Some(to), from, id, Refusal::BadRequest, &text),
                        None => continue,
                    },
                };
                bridge.xmpp.send_reply(reply).await;
            }
            Received::Connected => {
                let b = bridge.clone();
                let job = async move {
                    announce_presence(&b).await;
                    b.rejoin_linked_mucs().await;
                };
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
    /// Anything else: to a Matrix user's address or to the component.
    Direct,
}

async fn route(bridge: &Bridge, stanza: &Stanza) -> Route {
    let (from, to) = addresses(stanza);
    if to.is_some_and(hosted_muc::is_room) {
        return Route::HostedRoom;
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
        Route::Direct => format!("pair:{}>{}", bare(from), bare(to)),
    }
}

async fn handle(bridge: &Arc<Bridge>, route: Route, stanza: Stanza) {
    // A remote MUC is the authority over who is in it; everywhere else the usage policy applies.
    if !matches!(route, Route::LinkedMuc(_))
        && let Some(reply) = crate::xmpp::access::refuse(bridge, &stanza).await
    {
        if let Some(reply) = reply {
            bridge.xmpp.send_reply(reply).await;
        }
        return;
    }
    match (route, stanza) {
        (Route::HostedRoom, Stanza::Message(m)) => hosted_muc::on_message(bridge, m).await,
        (Route::HostedRoom, Stanza::Presence(p)) => hosted_muc::on_presence(bridge, p).await,
        (Route::HostedRoom, Stanza::Iq(iq)) => hosted_muc::on_iq(bridge, iq).await,
        (Route::LinkedMuc(muc), Stanza::Message(m)) => linked_muc::on_message(bridge, muc, m).await,
        (Route::LinkedMuc(muc), Stanza::Presence(p)) => linked_muc::on_presence(bridge, muc, p).await,
        (_, Stanza::Message(m)) => on_message(bridge, m).await,
        (_, Stanza::Presence(p)) => on_presence(bridge, p).await,
        (_, Stanza::Iq(iq)) => on_iq(bridge, iq).await,
    }
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
            Refusal::Busy,
            text,
        )),
        Stanza::Iq(Iq::Get { from, to, id, .. } | Iq::Set { from, to, id, .. }) => {
            Some(outbound::iq_error(to.clone(), from.clone()?, id.clone(), Refusal::Busy, text))
        }
        _ => None,
    }
}

/// The linked MUC a stanza comes from, if it comes from one.
async fn from_linked_muc(bridge: &Bridge, from: Option<&Jid>) -> Option<BareJid> {
    linked_muc::linked_muc_of(bridge, from?).await
}

/// An XEP-0153 photo hash in a presence: the bridge fetches the vCard when it is new.
pub async fn announced_photo(bridge: &Bridge, from: &BareJid, presence: &Presence) {
    let hash = presence.payloads.iter().find_map(|p| VCardUpdate::try_from(p.clone()).ok()).and_then(|u| u.photo?.data);
    if let Some(hash) = hash {
        bridge.xmpp_photo_hash(from, hash).await;
    }
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

/// After (re)connecting, tell subscribers the presence of their Matrix contacts.
async fn announce_presence(bridge: &Arc<Bridge>) {
    let subscriptions = match bridge.store.subscriptions().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read subscriptions");
            return;
        }
    };
    for (contact, subscriber) in subscriptions {
        let Ok(contact) = BareJid::parse(&contact) else { continue };
        let Some(Ok(user)) = contact.local().map(|n| bridge.map.matrix_for_jid(n)) else { continue };
        let Ok(subscriber) = BareJid::parse(&subscriber) else { continue };
        // A subscription stays while its reason may lapse: only those allowed now hear.
        if bridge.presence_visible_to(&user, &subscriber).await {
            send_current_presence(bridge, &user, &subscriber).await;
        }
    }
}

async fn on_message(bridge: &Arc<Bridge>, message: Message) {
    let (Some(from), Some(to)) = (message.from.clone(), message.to.clone()) else {
        return;
    };
    match message.type_ {
        MessageType::Error => return on_bounce(bridge, &message).await,
        MessageType::Groupchat => {
            let text = "This address is not a room; rooms are at #alias\\40server@ the bridge.";
            let reply = outbound::message_error(Some(to), from, message.id.map(|i| i.0), Refusal::Unsupported, text);
            return bridge.xmpp.send_reply(reply).await;
        }
        _ => {}
    }
    let Some(sender) = core_jid(&from) else {
        return;
    };
    let read = crate::xmpp::content::read(&message);
    let id = message.id.clone().map(|i| i.0);
    if let (Some(act), Some(to_local)) = (read.act.clone(), to.node().map(|n| n.as_str().to_owned())) {
        // Reactions or a retraction (its body is only a fallback for other clients).
        if let Err((refusal, text)) = bridge.accept_xmpp_act(&sender, &to_local, id.clone(), act).await {
            bridge.xmpp.send_reply(outbound::message_error(Some(to), from, id, refusal, &text)).await;
        }
        return;
    }
    // A file announced without a body still says something: its URL.
    let body = read.body.clone().or_else(|| read.extras.file.as_ref().map(|f| f.url.clone()));
    let Some(body) = body else {
        // No body: a chat state or a marker about a message from a Matrix user.
        return on_markers(bridge, &sender, &to, &message).await;
    };
    let Some(to_local) = to.node().map(|n| n.as_str().to_owned()) else {
        // A message to the component itself: a command (`help` lists them).
        if let Err(e) = bridge.xmpp_command(&sender, &body).await {
            tracing::warn!(%from, error = %e, "command failed");
            let text = "The bridge could not run your command; please try again later.";
            bridge.xmpp.send_reply(outbound::message_error(Some(to), from, id, Refusal::Internal, text)).await;
        }
        return;
    };
    let nick = message.payloads.iter().find_map(|p| Nick::try_from(p.clone()).ok()).map(|n| n.0);
    let has = |p: fn(&Element) -> bool| message.payloads.iter().any(p);
    let chat = XmppChatIn {
        from: sender,
        to_local,
        stanza_id: id.clone(),
        body,
        nick,
        wants_receipt: has(|p| Request::try_from(p.clone()).is_ok()),
        markable: has(|p| Markable::try_from(p.clone()).is_ok()),
        extras: read.extras,
    };
    if let Err((refusal, text)) = bridge.accept_xmpp_chat(chat).await {
        tracing::info!(%from, %to, ?refusal, text, "refused an XMPP message");
        bridge.xmpp.send_reply(outbound::message_error(Some(to), from, id, refusal, &text)).await;
    }
}

/// Chat states (XEP-0085) and read markers (XEP-0333) sent to a Matrix user's address.
async fn on_markers(bridge: &Arc<Bridge>, from: &BareJid, to: &Jid, message: &Message) {
    let Some(Ok(matrix_user)) = to.node().map(|n| bridge.map.matrix_for_jid(n.as_str())) else { return };
    for payload in &message.payloads {
        if let Ok(state) = ChatState::try_from(payload.clone()) {
            let composing = matches!(state, ChatState::Composing);
            bridge.xmpp_chat_state(from, &matrix_user, composing).await;
        } else if let Ok(displayed) = Displayed::try_from(payload.clone()) {
            bridge.xmpp_displayed(from, &displayed.id.0).await;
        } else if let Ok(received) = ReceiptReceived::try_from(payload.clone()) {
            // Matrix has no "delivered" receipt to show this as: it is recorded (the read
            // marker that usually follows is shown).
            match bridge.store.mark_delivered(from, &received.id).await {
                Ok(known) => tracing::debug!(%from, id = received.id, known, "XMPP client confirmed delivery"),
                Err(e) => tracing::warn!(%from, error = %e, "cannot record a delivery receipt"),
            }
        }
    }
}

/// An error came back for a message we sent (e.g. no such XMPP user): tell the Matrix sender.
async fn on_bounce(bridge: &Arc<Bridge>, message: &Message) {
    let (Some(from), Some(to)) = (&message.from, &message.to) else {
        return;
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
        return;
    };
    let Ok(matrix_user) = bridge.map.matrix_for_jid(local.as_str()) else {
        return;
    };
    if let Err(e) = bridge.report_xmpp_bounce(&xmpp_user, &matrix_user, &reason).await {
        tracing::warn!(error = %e, "could not report an XMPP delivery error");
    }
}

async fn on_presence(bridge: &Arc<Bridge>, presence: Presence) {
    let (Some(from), Some(to)) = (presence.from.clone(), presence.to.clone()) else {
        return;
    };
    let subscriber = from.to_bare().to_string();
    let contact = to.to_bare().to_string();
    let user = to.node().and_then(|n| bridge.map.matrix_for_jid(n.as_str()).ok());
    let to_bare = Jid::from(to.to_bare());
    let from_bare = Jid::from(from.to_bare());
    let reply = |kind: PresenceType| outbound::presence(kind, to_bare.clone(), from_bare.clone(), None);
    let (Some(user), Some(sender)) = (user, core_jid(&from)) else {
        if presence.type_ == PresenceType::Subscribe {
            let text = Some("No such Matrix user address.");
            let refusal = outbound::presence(PresenceType::Unsubscribed, to_bare.clone(), from_bare.clone(), text);
            bridge.xmpp.send_reply(refusal).await;
        }
        return;
    };
    match presence.type_ {
        PresenceType::Subscribe => {
            // Deciding and recording go together: requests handled concurrently (other
            // conversations) must not each see room under a cap and all be asked.
            let _one_at_a_time = bridge.consent_gate.lock().await;
            // A conversation partner is accepted; anyone else needs the Matrix user's approval.
            let decision = match bridge.subscription_decision(&user, &sender).await {
                Ok(d) => d,
                Err(e) => return tracing::warn!(error = %e, "cannot decide on a subscription"),
            };
            tracing::info!(%user, %sender, ?decision, "subscription request");
            match decision {
                OnSubscribe::Accept => {
                    if let Err(e) = bridge.store.add_subscription(&contact, &subscriber).await {
                        tracing::warn!(error = %e, "cannot store subscription");
                        return;
                    }
                    let presence = bridge.presence_of_matrix_user(&user, &sender).await;
                    for stanza in outbound::subscription_granted(&bridge.map.jid_for_matrix(&user), &sender, &presence)
                    {
                        bridge.xmpp.send_reply(stanza).await;
                    }
                }
                OnSubscribe::Refuse => bridge.xmpp.send_reply(reply(PresenceType::Unsubscribed)).await,
                // Pending (RFC 6121 3.1.3): no answer until the Matrix user answers.
                OnSubscribe::Wait | OnSubscribe::Drop => {}
                OnSubscribe::Ask => {
                    if let Err(e) = bridge.ask_presence_consent(&user, &sender).await {
                        tracing::warn!(%user, %sender, error = %e, "cannot ask for consent to presence");
                    }
                }
            }
        }
        PresenceType::Unsubscribe => {
            if let Err(e) = bridge.store.remove_subscription(&contact, &subscriber).await {
                tracing::warn!(error = %e, "cannot remove subscription");
            }
            bridge.xmpp.send_reply(reply(PresenceType::Unsubscribed)).await;
            bridge.xmpp.send_reply(reply(PresenceType::Unavailable)).await;
        }
        // She shares her presence with the Matrix user (usually answering the bridge's request).
        PresenceType::Subscribed => bridge.xmpp_shares_presence(&sender, &user, true).await,
        PresenceType::Unsubscribed => bridge.xmpp_shares_presence(&sender, &user, false).await,
        PresenceType::Probe => {
            let subscribed = bridge.store.is_subscribed(&contact, &subscriber).await.unwrap_or(false);
            if subscribed && bridge.presence_visible_to(&user, &sender).await {
                send_current_presence(bridge, &user, &sender).await;
            } else if subscribed || matches!(bridge.store.consent(&user, &sender).await, Ok(Some(Consent::Pending))) {
                // Not (or no longer) allowed, or still waiting for an answer: a bare
                // "unavailable" says nothing and keeps the request standing.
                bridge.xmpp.send_reply(reply(PresenceType::Unavailable)).await;
            } else {
                bridge.xmpp.send_reply(reply(PresenceType::Unsubscribed)).await;
            }
        }
        PresenceType::None | PresenceType::Unavailable => {
            // An XMPP user's own presence, shared with a Matrix contact: her ghost's presence.
            // Taken only from someone related to that Matrix user (each one costs a ghost and
            // state kept alive).
            let going = presence.type_ == PresenceType::Unavailable && bridge.tracks_xmpp_presence(&sender);
            if !going && !bridge.takes_presence_from(&sender, &user).await {
                return tracing::debug!(%sender, %user, "presence from an unrelated JID ignored");
            }
            let resource = from.resource().map(|r| r.as_str().to_owned()).unwrap_or_default();
            // Unavailable presence is passed on too: its status is the note of "offline".
            let state = Some(outbound::reading(&presence));
            announced_photo(bridge, &sender, &presence).await;
            bridge.xmpp_presence(sender, resource, state).await;
        }
        _ => {}
    }
}

/// Tell `to` (an XMPP user allowed to see it) the current presence of the Matrix user `user`,
/// from their address.
async fn send_current_presence(bridge: &Arc<Bridge>, user: &MatrixUserId, to: &BareJid) {
    let presence = bridge.presence_of_matrix_user(user, to).await;
    if let Ok(stanza) = outbound::presence_between(&bridge.map.jid_for_matrix(user), to, &presence) {
        bridge.xmpp.send_reply(stanza).await;
    }
}

async fn on_iq(bridge: &Arc<Bridge>, iq: Iq) {
    let (from, to, id, payload) = match iq {
        Iq::Get { from: Some(from), to: Some(to), id, payload } => (from, to, id, payload),
        Iq::Set { from: Some(from), to: Some(to), id, payload }
            if to.node().is_none() && payload.is("command", adhoc::COMMANDS) =>
        {
            return bridge.adhoc_command(adhoc::Request::read(from, to, id, &payload)).await;
        }
        Iq::Set { from: Some(from), to: Some(to), id, .. } => {
            let reply = outbound::iq_error(Some(to), from, id, Refusal::Unsupported, "This request is not supported.");
            return bridge.xmpp.send_reply(reply).await;
        }
        // Answers to the bridge's own requests (vCards for avatars).
        // Only the queried JID's answer counts (its server answers for the bare JID).
        Iq::Result { id, from, payload, .. } => {
            let photo = payload
                .and_then(|p| VCard::try_from(p).ok())
                .and_then(|v| v.photo)
                .map(|p| (p.binval.data, p.type_.data));
            bridge.xmpp_vcard_result(&id, from.as_ref().and_then(core_jid).as_ref(), photo).await;
            return;
        }
        Iq::Error { id, from, .. } => {
            bridge.xmpp_vcard_result(&id, from.as_ref().and_then(core_jid).as_ref(), None).await;
            return;
        }
        _ => return,
    };
    let is_component = to.node().is_none();
    let valid_user = to.node().map(|n| bridge.map.matrix_for_jid(n.as_str()));
    if let Some(Err(e)) = &valid_user {
        let reply = outbound::iq_error(Some(to), from, id, Refusal::NotFound, &e.to_string());
        return bridge.xmpp.send_reply(reply).await;
    }
    let reply = if let (Some(Ok(user)), true) = (&valid_user, payload.is("vCard", xmpp_parsers::ns::VCARD)) {
        let card = bridge.matrix_card(user).await;
        outbound::vcard(to, from, id, card.name.as_deref(), card.photo)
    } else if let Ok(query) = DiscoInfoQuery::try_from(payload.clone()) {
        let name = match &valid_user {
            Some(Ok(user)) => format!("{user} (Matrix)"),
            _ => "ucbridge Matrix gateway".into(),
        };
        outbound::disco_info(to, from, id, query.node, is_component, &name)
    } else if let Ok(query) = DiscoItemsQuery::try_from(payload.clone()) {
        if is_component && query.node.as_deref() == Some(adhoc::COMMANDS) {
            let admin = core_jid(&from).is_some_and(|j| bridge.is_admin(&crate::core::watch::Party::Xmpp(j)));
            adhoc::items(to, from, id, admin)
        } else {
            outbound::disco_items(to, from, id, query.node)
        }
    } else if Ping::try_from(payload).is_ok() {
        outbound::iq_result(to, from, id)
    } else {
        outbound::iq_error(Some(to), from, id, Refusal::Unsupported, "This request is not supported.")
    };
    bridge.xmpp.send_reply(reply).await;
}
