//! The AI assistant as an XMPP contact (`assistant@component`; `chatbot.rs` answers its
//! messages): what it says about itself (a bot, by disco#info), its vCard (name and picture
//! from the config), its presence for the XMPP users who subscribe (available while the
//! provider answers, away with a note when not — the state its Matrix presence shows), and its
//! entry in the component's user search.

use crate::bridge::Bridge;
use crate::core::ids::BareJid;
use crate::core::presence::{PhotoHash, Presence, State};
use crate::core::refusal::Refusal;
use crate::core::xmpp_in::SubscriptionKind;
use crate::xmpp::out::Outgoing;
use crate::xmpp::reply::{Answer, Envelope, PresenceAnswer};
use crate::xmpp::search::Found;

impl Bridge {
    /// disco#info of the assistant's address.
    pub(super) fn chatbot_info(&self, node: Option<String>) -> Answer {
        match self.chatbot.get() {
            Some(bot) => Answer::AssistantInfo { name: bot.settings.display_name.clone(), node },
            None => Answer::Refused(Refusal::not_found("The AI assistant is off.")),
        }
    }

    /// The assistant's vCard: its display name and picture (`chatbot.avatar_file`).
    pub(super) fn chatbot_card(&self) -> Answer {
        match self.chatbot.get() {
            Some(bot) => Answer::VCard { name: Some(bot.settings.display_name.clone()), photo: bot.avatar.clone() },
            None => Answer::Refused(Refusal::not_found("The AI assistant is off.")),
        }
    }

    /// The XEP-0153 hash of the assistant's vCard photo, for its presence.
    fn chatbot_photo(&self) -> PhotoHash {
        match self.chatbot.get().and_then(|bot| bot.avatar.as_ref()) {
            Some((bytes, _)) => crate::xmpp::outbound::hash_photo(bytes),
            None => PhotoHash::None,
        }
    }

    /// What XMPP users see of the assistant: available, or away with a note while its provider
    /// does not answer (before the first check it is taken to be available).
    pub(super) fn chatbot_presence(&self, reachable: Option<bool>) -> Presence {
        match reachable {
            Some(false) => Presence { state: State::Away, note: Some(super::chatbot::AWAY_NOTE.to_owned()) },
            _ => Presence { state: State::Available, note: None },
        }
    }

    /// A subscription request or probe from `sender` to the assistant's address. Everyone the
    /// bridge serves (the usage policy let the stanza in) may see whether it is there.
    pub(super) async fn chatbot_subscription(
        &self,
        kind: SubscriptionKind,
        sender: &BareJid,
        reply: Option<&Envelope>,
    ) {
        let (Some(me), Some(bot)) = (self.map.chatbot_jid(), self.chatbot.get()) else { return };
        let (contact, subscriber) = (me.to_string(), sender.to_string());
        let current = self.chatbot_presence(bot.reachable());
        match kind {
            SubscriptionKind::Subscribe => {
                if let Err(e) = self.store.add_subscription(&contact, &subscriber).await {
                    return tracing::warn!(%sender, error = %e, "chatbot: cannot store a subscription");
                }
                tracing::info!(%sender, "chatbot: subscribed to its presence");
                self.xmpp
                    .post(Outgoing::SubscriptionGranted {
                        contact: me,
                        subscriber: sender.clone(),
                        current,
                        photo: self.chatbot_photo(),
                    })
                    .await;
            }
            SubscriptionKind::Unsubscribe => {
                if let Err(e) = self.store.remove_subscription(&contact, &subscriber).await {
                    tracing::warn!(%sender, error = %e, "chatbot: cannot remove a subscription");
                }
                self.answer(reply, Answer::Presence(PresenceAnswer::Unsubscribed)).await;
                self.answer(reply, Answer::Presence(PresenceAnswer::Unavailable)).await;
            }
            SubscriptionKind::Probe => match self.store.is_subscribed(&contact, &subscriber).await {
                Ok(true) => {
                    self.xmpp
                        .post(Outgoing::Presence {
                            from: me,
                            to: sender.clone(),
                            presence: current,
                            photo: self.chatbot_photo(),
                        })
                        .await
                }
                Ok(false) => self.answer(reply, Answer::Presence(PresenceAnswer::Unsubscribed)).await,
                Err(e) => tracing::warn!(%sender, error = %e, "chatbot: cannot read a subscription"),
            },
            // It keeps no roster of its own: their presence is no use to it.
            SubscriptionKind::Subscribed | SubscriptionKind::Unsubscribed => {}
        }
    }

    /// Tell every XMPP subscriber the assistant's presence (after a change, or on connecting).
    pub(super) async fn announce_chatbot_presence(&self, reachable: Option<bool>) {
        let Some(me) = self.map.chatbot_jid() else { return };
        let subscribers = match self.store.subscribers(&me.to_string()).await {
            Ok(s) => s,
            Err(e) => return tracing::warn!(error = %e, "chatbot: cannot read its subscribers"),
        };
        let (presence, photo) = (self.chatbot_presence(reachable), self.chatbot_photo());
        for subscriber in subscribers {
            let Ok(to) = BareJid::parse(&subscriber) else { continue };
            self.xmpp.post(Outgoing::Presence { from: me.clone(), to, presence: presence.clone(), photo }).await;
        }
    }

    /// The assistant as a search result, when `term` names it (its display name, localpart or
    /// one of its room keywords, case ignored).
    pub(super) fn chatbot_found(&self, term: &str) -> Option<Found> {
        let (Some(jid), Some(user), Some(bot)) = (self.map.chatbot_jid(), self.map.chatbot(), self.chatbot.get())
        else {
            return None;
        };
        let term = term.trim().to_lowercase();
        let s = &bot.settings;
        let names = [s.display_name.clone(), s.localpart.clone()];
        let hit =
            !term.is_empty() && names.iter().chain(s.room_keywords().iter()).any(|n| n.to_lowercase().contains(&term));
        hit.then(|| Found { jid: jid.to_string(), matrix_id: user.to_string(), name: Some(s.display_name.clone()) })
    }

    /// A line for the `help` answer on XMPP: where the assistant is.
    pub(super) fn chatbot_help_line(&self) -> Option<String> {
        let (jid, bot) = (self.map.chatbot_jid()?, self.chatbot.get()?);
        Some(format!(
            "The AI assistant {}: write to {jid} (on Matrix: {}); in a room, start a message with {}.",
            bot.settings.display_name,
            self.map.chatbot()?,
            bot.settings.room_keywords().join(" or ")
        ))
    }
}
