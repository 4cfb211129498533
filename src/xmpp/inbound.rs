//! Handling what arrives on the component stream, in order: 1:1 messages go to the bridge;
//! service discovery, pings, presence probes and subscriptions are answered here; anything the
//! bridge cannot take gets an error reply that says why.

use std::sync::Arc;

use tokio::sync::mpsc;
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoItemsQuery};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::nick::Nick;
use xmpp_parsers::ping::Ping;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::StanzaError;

use crate::bridge::Bridge;
use crate::core::action::Refusal;
use crate::core::ids::BareJid;
use crate::core::inbound::XmppChatIn;
use crate::xmpp::connection::Received;
use crate::xmpp::outbound;

/// Process stanzas one at a time, in arrival order, until the connection task stops.
pub async fn run(bridge: Arc<Bridge>, mut received: mpsc::Receiver<Received>) {
    while let Some(item) = received.recv().await {
        match item {
            Received::Stanza(stanza) => match *stanza {
                Stanza::Message(m) => on_message(&bridge, m).await,
                Stanza::Presence(p) => on_presence(&bridge, p).await,
                Stanza::Iq(iq) => on_iq(&bridge, iq).await,
            },
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
            Received::Connected => announce_presence(&bridge).await,
        }
    }
}

fn core_jid(jid: &Jid) -> Option<BareJid> {
    BareJid::parse(jid.to_bare().as_str()).ok()
}

/// After (re)connecting, tell subscribers that their Matrix contacts are reachable.
async fn announce_presence(bridge: &Bridge) {
    let subscriptions = match bridge.store.subscriptions().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read subscriptions");
            return;
        }
    };
    for (contact, subscriber) in subscriptions {
        if let (Ok(from), Ok(to)) = (Jid::new(&contact), Jid::new(&subscriber)) {
            bridge.xmpp.send_reply(outbound::presence(PresenceType::None, from, to, None)).await;
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
            let text = "This bridge does not host group chats yet.";
            let reply = outbound::message_error(Some(to), from, message.id.map(|i| i.0), Refusal::Unsupported, text);
            return bridge.xmpp.send_reply(reply).await;
        }
        _ => {}
    }
    // Messages without a body (chat states, receipts) carry nothing to bridge yet.
    let Some((_, body)) = message.get_best_body_cloned(vec![]) else {
        return;
    };
    let Some(sender) = core_jid(&from) else {
        return;
    };
    let id = message.id.clone().map(|i| i.0);
    let Some(to_local) = to.node().map(|n| n.as_str().to_owned()) else {
        let help = format!(
            "This is the ucbridge gateway. To write to the Matrix user @user:server, send your message to user\\40server@{}.",
            bridge.map.component
        );
        let reply = outbound::chat(
            to,
            from,
            &crate::core::action::Text::notice(help),
            format!("ucb-help-{}", id.unwrap_or_default()),
            None,
        );
        return bridge.xmpp.send_reply(reply).await;
    };
    let nick = message.payloads.iter().find_map(|p| Nick::try_from(p.clone()).ok()).map(|n| n.0);
    let chat = XmppChatIn { from: sender, to_local, stanza_id: id.clone(), body, nick };
    if let Err((refusal, text)) = bridge.accept_xmpp_chat(chat).await {
        tracing::info!(%from, %to, ?refusal, text, "refused an XMPP message");
        bridge.xmpp.send_reply(outbound::message_error(Some(to), from, id, refusal, &text)).await;
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
    let is_user_address = to.node().map(|n| bridge.map.matrix_for_jid(n.as_str()).is_ok());
    let to_bare = Jid::from(to.to_bare());
    let from_bare = Jid::from(from.to_bare());
    match presence.type_ {
        PresenceType::Subscribe => {
            if is_user_address != Some(true) {
                let reply = outbound::presence(
                    PresenceType::Unsubscribed,
                    to_bare,
                    from_bare,
                    Some("No such Matrix user address."),
                );
                return bridge.xmpp.send_reply(reply).await;
            }
            if let Err(e) = bridge.store.add_subscription(&contact, &subscriber).await {
                tracing::warn!(error = %e, "cannot store subscription");
                return;
            }
            bridge
                .xmpp
                .send_reply(outbound::presence(PresenceType::Subscribed, to_bare.clone(), from_bare.clone(), None))
                .await;
            bridge.xmpp.send_reply(outbound::presence(PresenceType::None, to_bare, from_bare, None)).await;
        }
        PresenceType::Unsubscribe => {
            if let Err(e) = bridge.store.remove_subscription(&contact, &subscriber).await {
                tracing::warn!(error = %e, "cannot remove subscription");
            }
            bridge
                .xmpp
                .send_reply(outbound::presence(PresenceType::Unsubscribed, to_bare.clone(), from_bare.clone(), None))
                .await;
            bridge.xmpp.send_reply(outbound::presence(PresenceType::Unavailable, to_bare, from_bare, None)).await;
        }
        PresenceType::Probe => {
            let subscribed = bridge.store.is_subscribed(&contact, &subscriber).await.unwrap_or(false);
            // Matrix presence itself is bridged later; for now a subscribed contact is reachable.
            let kind = if subscribed { PresenceType::None } else { PresenceType::Unsubscribed };
            bridge.xmpp.send_reply(outbound::presence(kind, to_bare, from_bare, None)).await;
        }
        _ => {}
    }
}

async fn on_iq(bridge: &Arc<Bridge>, iq: Iq) {
    let (from, to, id, payload) = match iq {
        Iq::Get { from: Some(from), to: Some(to), id, payload } => (from, to, id, payload),
        Iq::Set { from: Some(from), to: Some(to), id, .. } => {
            let reply = outbound::iq_error(Some(to), from, id, Refusal::Unsupported, "This request is not supported.");
            return bridge.xmpp.send_reply(reply).await;
        }
        _ => return,
    };
    let is_component = to.node().is_none();
    let valid_user = to.node().map(|n| bridge.map.matrix_for_jid(n.as_str()));
    if let Some(Err(e)) = &valid_user {
        let reply = outbound::iq_error(Some(to), from, id, Refusal::NotFound, &e.to_string());
        return bridge.xmpp.send_reply(reply).await;
    }
    let reply = if let Ok(query) = DiscoInfoQuery::try_from(payload.clone()) {
        let name = match &valid_user {
            Some(Ok(user)) => format!("{user} (Matrix)"),
            _ => "ucbridge Matrix gateway".into(),
        };
        outbound::disco_info(to, from, id, query.node, is_component, &name)
    } else if let Ok(query) = DiscoItemsQuery::try_from(payload.clone()) {
        outbound::disco_items(to, from, id, query.node)
    } else if Ping::try_from(payload).is_ok() {
        outbound::iq_result(to, from, id)
    } else {
        outbound::iq_error(Some(to), from, id, Refusal::Unsupported, "This request is not supported.")
    };
    bridge.xmpp.send_reply(reply).await;
}
