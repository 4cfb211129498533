//! Handling what the XMPP side asks (`core::xmpp_in::XmppIn`, read from stanzas by `xmpp/`):
//! each request goes to its kind — 1:1 (`direct/`), hosted rooms (`hosted/`), linked MUCs
//! (`linked/`), presence and subscriptions (`subscriptions.rs`) — and a refusal goes back
//! through the request's `Envelope`, which the adapter writes as a stanza. The bridge is the
//! adapter's `XmppHandler`; the adapter keeps the order per conversation.

mod search;
mod subscriptions;

use std::sync::Arc;

use crate::bridge::Bridge;
use crate::core::ids::BareJid;
use crate::core::mapping::IdentityMap;
use crate::core::refusal::Refusal;
use crate::core::watch::Party;
use crate::core::xmpp_in::{Marker, XmppIn};
use crate::xmpp::inbound::XmppHandler;
use crate::xmpp::reply::{Answer, Envelope};

impl XmppHandler for Bridge {
    fn identities(&self) -> &IdentityMap {
        &self.map
    }

    async fn is_linked_muc(&self, muc: &BareJid) -> bool {
        self.linked_room_of(muc).await.ok().flatten().is_some()
    }

    async fn usage_refusal(&self, sender: &BareJid, to_local: Option<&str>) -> Option<String> {
        let who = Party::Xmpp(sender.clone());
        if !self.may_use(&who).await {
            return Some(self.not_served(&who));
        }
        let target = to_local.and_then(|n| self.map.matrix_for_jid(n).ok())?;
        let config = self.current_config();
        if config.matrix_server_allowed(target.server()) || self.may_use(&Party::Matrix(target.clone())).await {
            return None;
        }
        Some(format!("{target} is on a server this bridge does not serve."))
    }

    async fn accept(self: Arc<Self>, input: XmppIn, reply: Option<Envelope>) {
        self.accept_xmpp(input, reply).await;
    }
}

impl Bridge {
    /// Decide on one request from the XMPP side; `reply` answers the stanza it came in.
    pub async fn accept_xmpp(self: &Arc<Self>, input: XmppIn, reply: Option<Envelope>) {
        let reply = reply.as_ref();
        match input {
            XmppIn::Connected => {
                self.announce_presence().await;
                self.rejoin_linked_mucs().await;
                self.chatbot_rejoin_mucs().await;
            }
            // 1:1 and the component.
            XmppIn::Chat(chat) => {
                let result = self.accept_xmpp_chat(chat).await;
                self.refused(reply, result, "refused an XMPP message").await;
            }
            XmppIn::DirectAct { from, to_local, id, act } => {
                let result = match self.map.phone_for_local(&to_local) {
                    Some(phone) => Err(self.sms_act_refusal(&phone, &act)),
                    None => self.accept_xmpp_act(&from, &to_local, id, act).await,
                };
                if let Err(refusal) = result {
                    self.answer(reply, Answer::Refused(refusal)).await;
                }
            }
            XmppIn::DirectInvite { from, to_local, room } => {
                if let Err(refusal) = self.direct_room_invite(&from, &to_local, &room).await {
                    self.answer(reply, Answer::Refused(refusal)).await;
                }
            }
            XmppIn::DirectMarkers { from, to_local, markers } => self.direct_markers(&from, to_local, markers).await,
            XmppIn::AdhocCommand(command) => self.adhoc_command(command, reply).await,
            XmppIn::Command { from, body } => {
                if let Err(e) = self.xmpp_command(&from, &body).await {
                    let sender = reply.map(|r| r.sender().to_string()).unwrap_or_default();
                    tracing::warn!(from = sender, error = %e, "command failed");
                    let text = "The bridge could not run your command; please try again later.";
                    self.answer(reply, Answer::Refused(Refusal::internal(text))).await;
                }
            }
            XmppIn::Bounce { from, to_local, reason } => {
                let Ok(matrix_user) = self.map.matrix_for_jid(&to_local) else { return };
                if let Err(e) = self.report_xmpp_bounce(&from, &matrix_user, &reason).await {
                    tracing::warn!(error = %e, "could not report an XMPP delivery error");
                }
            }
            XmppIn::Subscription { kind, sender, user, subscriber, contact } => {
                self.xmpp_subscription(kind, sender, user, &subscriber, &contact, reply).await;
            }
            XmppIn::Availability { sender, user, resource, state, photo } => {
                self.xmpp_availability(sender, user, resource, state, photo).await;
            }
            XmppIn::UserSearch { sender, term } => {
                let answer = self.search_matrix_users(&sender, &term).await;
                self.answer(reply, answer).await;
            }
            XmppIn::VCardRequest { user } => {
                let card = self.matrix_card(&user).await;
                self.answer(reply, Answer::VCard { name: card.name, photo: card.photo }).await;
            }
            XmppIn::IqAnswer { id, from, photo } => {
                self.xmpp_vcard_result(&id, from.as_ref(), photo).await;
            }
            XmppIn::AssistantInfo { node } => self.answer(reply, self.chatbot_info(node)).await,
            XmppIn::AssistantCard => self.answer(reply, self.chatbot_card()).await,
            XmppIn::AssistantPresence { kind, sender } => self.chatbot_subscription(kind, &sender, reply).await,
            XmppIn::AssistantInvite { muc, inviter, mediated } => self.chatbot_muc_invite(muc, inviter, mediated).await,
            XmppIn::AssistantMucMessage { muc, nick, id, body } => self.chatbot_muc_message(muc, &nick, id, body).await,
            XmppIn::AssistantMucGone { muc, why } => self.chatbot_muc_gone(&muc, &why).await,
            XmppIn::CommandList { from } => {
                let admin = from.is_some_and(|j| self.is_admin(&Party::Xmpp(j)));
                self.answer(reply, Answer::CommandItems { admin }).await;
            }
            // Hosted rooms.
            XmppIn::MucJoin { join, photo } => {
                if let Some(hash) = photo {
                    self.xmpp_photo_hash(&join.bare, hash).await;
                }
                let result = self.muc_join(join).await;
                self.refused(reply, result, "refused a MUC join").await;
            }
            XmppIn::MucLeave { room_local, full, sender } => self.muc_leave(&room_local, &full, &sender).await,
            XmppIn::MucMessage { room_local, full, sender, id, body, extras, mentions } => {
                let result = self.muc_message(&room_local, &full, &sender, id, body, extras, mentions).await;
                self.refused(reply, result, "refused a MUC message").await;
            }
            XmppIn::MucAct { room_local, full, sender, id, act } => {
                let result = self.muc_act(&room_local, &full, &sender, id, act).await;
                self.refused(reply, result, "refused a MUC message").await;
            }
            XmppIn::MucSubject { room_local, full, sender, subject } => {
                let result = self.muc_subject(&room_local, &full, &sender, subject).await;
                self.refused(reply, result, "refused a MUC message").await;
            }
            XmppIn::MucPrivate { room_local, full, sender, nick, id, body } => {
                let result = self.muc_private(&room_local, &full, &sender, &nick, id, body).await;
                self.refused(reply, result, "refused a MUC message").await;
            }
            XmppIn::MucInvite { room_local, sender, invitee } => {
                let result = self.muc_invite(&room_local, &sender, &invitee).await;
                self.refused(reply, result, "refused a MUC message").await;
            }
            XmppIn::MucMarkers { room_local, full, sender, markers } => {
                for marker in markers {
                    match marker {
                        Marker::ChatState { composing } => {
                            self.muc_chat_state(&room_local, &full, &sender, composing).await;
                        }
                        Marker::Displayed { id } => self.muc_displayed(&room_local, &sender, &id).await,
                        Marker::Received { .. } => {}
                    }
                }
            }
            XmppIn::MucConfigure { room_local, sender, name, desc } => {
                let result = self.muc_configure(&room_local, &sender, name, desc).await;
                let answer = match result {
                    Ok(()) => Answer::Done,
                    Err(refusal) => Answer::Refused(refusal),
                };
                self.answer(reply, answer).await;
            }
            XmppIn::MucConfig { room_local, sender } => {
                let result = self.muc_config(&room_local, &sender).await;
                let answer = match result {
                    Ok((name, description)) => Answer::RoomConfig { name, description },
                    Err(refusal) => Answer::Refused(refusal),
                };
                self.answer(reply, answer).await;
            }
            XmppIn::MucAdmin { room_local, sender, items } => {
                let result = self.muc_admin(&room_local, &sender, items).await;
                let answer = match result {
                    Ok(()) => Answer::Done,
                    Err(refusal) => Answer::Refused(refusal),
                };
                self.answer(reply, answer).await;
            }
            XmppIn::MucAdminList { room_local, sender } => {
                let result = self.muc_admin_list(&room_local, &sender).await;
                let answer = match result {
                    Ok(items) => Answer::AdminList(items),
                    Err(refusal) => Answer::Refused(refusal),
                };
                self.answer(reply, answer).await;
            }
            XmppIn::MucInfo { room_local } => {
                let result = self.muc_info(&room_local).await;
                let answer = match result {
                    Ok((name, open, avatar)) => Answer::RoomInfo { name, open, avatar },
                    Err(refusal) => Answer::Refused(refusal),
                };
                self.answer(reply, answer).await;
            }
            XmppIn::MucAvatar { room_local } => {
                let answer = match self.muc_avatar(&room_local).await {
                    Ok((name, photo)) => Answer::VCard { name, photo },
                    Err(refusal) => Answer::Refused(refusal),
                };
                self.answer(reply, answer).await;
            }
            XmppIn::MucSetAvatar { room_local, sender, photo } => {
                let answer = match self.muc_set_avatar(&room_local, &sender, photo).await {
                    Ok(()) => Answer::Done,
                    Err(refusal) => Answer::Refused(refusal),
                };
                self.answer(reply, answer).await;
            }
            XmppIn::MucArchive { room_local, sender, query } => {
                let answer = match self.muc_archive(&room_local, &sender, query).await {
                    Ok(page) => Answer::Archive {
                        muc: page.muc,
                        messages: page.messages,
                        count: page.count,
                        complete: page.complete,
                    },
                    Err(refusal) => Answer::Refused(refusal),
                };
                self.answer(reply, answer).await;
            }
            // Linked MUCs.
            XmppIn::LinkedPresence { muc, nick, user, presence } => {
                self.linked_presence(&muc, &nick, &user, presence).await;
            }
            XmppIn::LinkedRoomChanged { muc } => self.linked_avatar_check(muc),
            XmppIn::LinkedMessage(said) => {
                let muc = said.muc.clone();
                if let Err(e) = self.linked_message(*said).await {
                    tracing::warn!(%muc, error = %e, "cannot bridge a MUC message");
                }
            }
        }
    }

    /// Give the answer, if the request can be answered.
    pub(in crate::bridge) async fn answer(&self, reply: Option<&Envelope>, answer: Answer) {
        if let Some(reply) = reply {
            self.xmpp.answer(reply, answer).await;
        }
    }

    /// A refused request is logged and answered with an error that says why.
    async fn refused(&self, reply: Option<&Envelope>, result: Result<(), Refusal>, what: &'static str) {
        let Err(refusal) = result else { return };
        let Some(reply) = reply else { return };
        let (from, to) = (reply.sender(), reply.addressee());
        tracing::info!(%from, %to, kind = ?refusal.kind, text = refusal.text, "{what}");
        self.xmpp.answer(reply, Answer::Refused(refusal)).await;
    }

    /// Chat states, read markers and receipts sent to a Matrix user's address.
    async fn direct_markers(&self, from: &BareJid, to_local: Option<String>, markers: Vec<Marker>) {
        let Some(Ok(matrix_user)) = to_local.map(|n| self.map.matrix_for_jid(&n)) else { return };
        for marker in markers {
            match marker {
                Marker::ChatState { composing } => self.xmpp_chat_state(from, &matrix_user, composing).await,
                Marker::Displayed { id } => self.xmpp_displayed(from, &id).await,
                Marker::Received { id } => {
                    // Matrix has no "delivered" receipt to show this as: it is recorded (the
                    // read marker that usually follows is shown).
                    match self.store.mark_delivered(from, &id).await {
                        Ok(known) => tracing::debug!(%from, id, known, "XMPP client confirmed delivery"),
                        Err(e) => tracing::warn!(%from, error = %e, "cannot record a delivery receipt"),
                    }
                }
            }
        }
    }
}
