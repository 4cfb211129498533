//! Presence from XMPP users to Matrix users' addresses: subscription requests and answers
//! (RFC 6121), probes, an XMPP user's own presence (her ghost's), and, after (re)connecting,
//! the Matrix users' presence told to their subscribers.

use std::sync::Arc;

use crate::bridge::Bridge;
use crate::core::ids::{BareJid, MatrixUserId};
use crate::core::presence::{Consent, OnSubscribe, XmppPresence};
use crate::core::xmpp_in::SubscriptionKind;
use crate::xmpp::out::Outgoing;
use crate::xmpp::reply::{Answer, Envelope, PresenceAnswer};

impl Bridge {
    /// A subscription request, answer or probe from `sender` about the Matrix user `user`
    /// (`subscriber`, `contact`: the two bare addresses as written).
    pub(super) async fn xmpp_subscription(
        self: &Arc<Self>,
        kind: SubscriptionKind,
        sender: BareJid,
        user: MatrixUserId,
        subscriber: &str,
        contact: &str,
        reply: Option<&Envelope>,
    ) {
        match kind {
            SubscriptionKind::Subscribe => {
                // Deciding and recording go together: requests handled concurrently (other
                // conversations) must not each see room under a cap and all be asked.
                let _one_at_a_time = self.consent_gate.lock().await;
                // A conversation partner is accepted; anyone else needs the Matrix user's approval.
                let decision = match self.subscription_decision(&user, &sender).await {
                    Ok(d) => d,
                    Err(e) => return tracing::warn!(error = %e, "cannot decide on a subscription"),
                };
                tracing::info!(%user, %sender, ?decision, "subscription request");
                match decision {
                    OnSubscribe::Accept => {
                        if let Err(e) = self.store.add_subscription(contact, subscriber).await {
                            tracing::warn!(error = %e, "cannot store subscription");
                            return;
                        }
                        let presence = self.presence_of_matrix_user(&user, &sender).await;
                        let (contact, subscriber) = (self.map.jid_for_matrix(&user), sender.clone());
                        let photo = self.matrix_photo_hash(&user).await;
                        let granted = Outgoing::SubscriptionGranted { contact, subscriber, current: presence, photo };
                        self.xmpp.post(granted).await;
                    }
                    OnSubscribe::Refuse => self.answer(reply, Answer::Presence(PresenceAnswer::Unsubscribed)).await,
                    // Pending (RFC 6121 3.1.3): no answer until the Matrix user answers.
                    OnSubscribe::Wait | OnSubscribe::Drop => {}
                    OnSubscribe::Ask => {
                        if let Err(e) = self.ask_presence_consent(&user, &sender).await {
                            tracing::warn!(%user, %sender, error = %e, "cannot ask for consent to presence");
                        }
                    }
                }
            }
            SubscriptionKind::Unsubscribe => {
                if let Err(e) = self.store.remove_subscription(contact, subscriber).await {
                    tracing::warn!(error = %e, "cannot remove subscription");
                }
                self.answer(reply, Answer::Presence(PresenceAnswer::Unsubscribed)).await;
                self.answer(reply, Answer::Presence(PresenceAnswer::Unavailable)).await;
            }
            // She shares her presence with the Matrix user (usually answering the bridge's request).
            SubscriptionKind::Subscribed => self.xmpp_shares_presence(&sender, &user, true).await,
            SubscriptionKind::Unsubscribed => self.xmpp_shares_presence(&sender, &user, false).await,
            SubscriptionKind::Probe => {
                let subscribed = self.store.is_subscribed(contact, subscriber).await.unwrap_or(false);
                if subscribed && self.presence_visible_to(&user, &sender).await {
                    self.send_current_presence(&user, &sender).await;
                } else if subscribed || matches!(self.store.consent(&user, &sender).await, Ok(Some(Consent::Pending))) {
                    // Not (or no longer) allowed, or still waiting for an answer: a bare
                    // "unavailable" says nothing and keeps the request standing.
                    self.answer(reply, Answer::Presence(PresenceAnswer::Unavailable)).await;
                } else {
                    self.answer(reply, Answer::Presence(PresenceAnswer::Unsubscribed)).await;
                }
            }
        }
    }

    /// An XMPP user's own presence, shared with a Matrix contact: her ghost's presence. Taken
    /// only from someone related to that Matrix user (each one costs a ghost and state kept
    /// alive). Unavailable presence is passed on too: its status is the note of "offline".
    pub(super) async fn xmpp_availability(
        self: &Arc<Self>,
        sender: BareJid,
        user: MatrixUserId,
        resource: String,
        state: XmppPresence,
        photo: Option<[u8; 20]>,
    ) {
        let going = !state.available && self.tracks_xmpp_presence(&sender);
        if !going && !self.takes_presence_from(&sender, &user).await {
            return tracing::debug!(%sender, %user, "presence from an unrelated JID ignored");
        }
        if let Some(hash) = photo {
            self.xmpp_photo_hash(&sender, hash).await;
        }
        self.xmpp_presence(sender, resource, Some(state)).await;
    }

    /// After (re)connecting, tell subscribers the presence of their Matrix contacts.
    pub(super) async fn announce_presence(self: &Arc<Self>) {
        let subscriptions = match self.store.subscriptions().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read subscriptions");
                return;
            }
        };
        for (contact, subscriber) in subscriptions {
            let Ok(contact) = BareJid::parse(&contact) else { continue };
            let Some(Ok(user)) = contact.local().map(|n| self.map.matrix_for_jid(n)) else { continue };
            let Ok(subscriber) = BareJid::parse(&subscriber) else { continue };
            // A subscription stays while its reason may lapse: only those allowed now hear.
            if self.presence_visible_to(&user, &subscriber).await {
                self.send_current_presence(&user, &subscriber).await;
            }
        }
        if let Some(bot) = self.chatbot.get() {
            self.announce_chatbot_presence(bot.reachable()).await;
        }
    }

    /// Tell `to` (an XMPP user allowed to see it) the current presence of the Matrix user
    /// `user`, from their address, with their photo hash.
    pub(in crate::bridge) async fn send_current_presence(&self, user: &MatrixUserId, to: &BareJid) {
        let presence = self.presence_of_matrix_user(user, to).await;
        let photo = self.matrix_photo_hash(user).await;
        let from = self.map.jid_for_matrix(user);
        self.xmpp.post(Outgoing::Presence { from, to: to.clone(), presence, photo }).await;
    }
}
