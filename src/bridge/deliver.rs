//! Carrying out one outbox action: each conversation kind's actions go to its folder's delivery
//! (`direct/`, `hosted/`, `linked/`, SMS, mail); what any kind may ask (join, post, notice) is
//! done here. Retries are idempotent: Matrix sends use the txnId `ucb<db id>-<row id>`, stanzas
//! the id `ucb-<db id>-<row id>` (`Bridge::txn_id`, `Bridge::stanza_id`; the db id keeps a new
//! database from repeating an old one's ids).

use crate::bridge::Bridge;
use crate::core::action::{Action, Text};
use crate::core::ids::EventId;
use crate::core::outbox::DeliveryError;
use crate::matrix::client::MatrixError;
use crate::xmpp::out::Outgoing;

impl Bridge {
    /// The `formatted_body` of a text to Matrix: its links made HTML (`None`: it has none, or
    /// the event would not fit the homeserver's limit with it). Decided at delivery, so a
    /// queued text gets the rules the bridge runs with then.
    pub(super) fn html_of(&self, text: &Text) -> Option<String> {
        self.html_fitting(text, false)
    }

    /// A text's links made HTML, whatever its size.
    pub(super) fn links_html(&self, text: &Text) -> Option<String> {
        crate::links::to_html(&text.body, &self.links)
    }

    pub(super) async fn deliver(self: &std::sync::Arc<Self>, id: i64, action: &Action) -> Result<(), DeliveryError> {
        match action {
            Action::MatrixDirect { .. } | Action::XmppChat { .. } => self.deliver_direct(id, action).await,
            Action::MatrixReactions { target, user, keys, .. } => {
                self.ensure_xmpp_ghost(user).await?;
                self.deliver_reactions(id, target, user, keys).await
            }
            Action::MatrixRetract { target, user, .. } => self.deliver_retract(id, target, user).await,
            Action::MatrixRoomName { room, user, name } => {
                self.matrix.set_room_displayname(room, user, name).await.map_err(MatrixError::into_delivery)
            }
            Action::MatrixJoin { room, user } => {
                if let Some(Ok(jid)) = self.map.jid_for_ghost(user) {
                    self.ensure_ghost(user, &jid.to_string()).await?;
                } else if let Some(phone) = self.map.phone_for_ghost(user) {
                    // The contact's name only in a permitted person's SMS chat (L4).
                    self.prepare_sms_ghost(room, user, &phone).await?;
                } else if self.map.chatbot().as_ref() == Some(user) {
                    self.chatbot_user().await?;
                }
                match self.matrix.join(room, user).await {
                    // A linked MUC's room that is not public (linked with `rooms link`): the bot
                    // invites the MUC occupant's ghost first.
                    Err(e) if e.errcode() == Some("M_FORBIDDEN") && self.linked_muc_of(room).await?.is_some() => {
                        if let Err(e) = self.matrix.invite(room, &self.map.bot(), user).await {
                            tracing::info!(%room, %user, error = %e, "cannot invite a ghost into a linked MUC's room");
                        }
                        self.matrix.join(room, user).await.map_err(MatrixError::into_delivery)
                    }
                    other => other.map_err(MatrixError::into_delivery),
                }
            }
            Action::MatrixPost { room, user, text, nick } => {
                if let Some(Ok(jid)) = self.map.jid_for_ghost(user) {
                    let name = match (nick, self.cached_ghost(user)) {
                        (Some(n), _) => n.clone(),
                        (None, Some(Some(known))) => known,
                        (None, _) => jid.to_string(),
                    };
                    self.ensure_ghost(user, &name).await?;
                    return self.post_as_ghost(id, room, user, text).await.map(|_| ());
                }
                self.matrix
                    .send_text(room, user, text, self.html_of(text).as_deref(), &self.txn_id(id))
                    .await
                    .map(|_| ())
                    .map_err(MatrixError::into_delivery)
            }
            Action::MatrixNotice { room, body, html, reply_to } => self
                .matrix
                .send_notice(
                    room,
                    &self.map.bot(),
                    body,
                    html.as_deref(),
                    reply_to.as_ref().map(EventId::as_str),
                    &self.txn_id(id),
                )
                .await
                .map_err(MatrixError::into_delivery),
            Action::MatrixRoomSay { room, user, text, nick, archive_id, extras, mentions } => {
                self.ensure_ghost(user, nick).await?;
                let event_id = self.room_say(id, room, user, text, extras, mentions).await?;
                if let Err(e) = self.store.set_archive_event(room, archive_id.get(), &event_id).await {
                    tracing::warn!(%room, error = %e, "cannot record the event of an archived message");
                }
                Ok(())
            }
            Action::MatrixLinkedSay { room, user, muc, nick, text, stanza_id, message_id, extras, mentions } => {
                let say = crate::bridge::linked::LinkedSay {
                    room,
                    user,
                    muc,
                    nick,
                    text,
                    stanza_id: stanza_id.as_ref(),
                    message_id: message_id.as_ref(),
                    extras,
                    mentions,
                };
                self.deliver_linked_say(id, say).await
            }
            Action::MatrixCreateRoom { initiator, name, alias, open, reply_room, members } => {
                self.create_room(initiator, name, alias, *open, reply_room.as_ref(), members, id).await
            }
            Action::MatrixRoomAct { room, op } => self.room_act(room, op).await,
            Action::MatrixAdoptOffer { room, inviter, invited } => {
                self.adoption_offer(id, room, inviter, *invited).await
            }
            Action::MatrixAdopt { room, by } => self.adopt_room(id, room, by).await,
            Action::XmppGroupchat { room, nick, text, archive_id, origin_id, extras, mentions } => {
                self.send_groupchat(room, nick, text, *archive_id, origin_id.as_ref(), extras, mentions).await
            }
            Action::XmppGroupReactions { room, nick, archive_id, keys } => {
                self.send_group_act(id, room, nick, *archive_id, Some(keys)).await
            }
            Action::XmppGroupRetract { room, nick, archive_id } => {
                self.send_group_act(id, room, nick, *archive_id, None).await
            }
            Action::XmppReactions { from, to, room, target, keys } => {
                self.send_xmpp_reactions(id, from, to, room, target, keys).await
            }
            Action::XmppRetract { from, to, room, target } => self.send_xmpp_retract(id, from, to, room, target).await,
            Action::XmppOccupant { room, who, nick, change } => {
                self.send_occupant_change(room, who, nick, change).await
            }
            Action::XmppSubject { room, subject } => self.send_subject(room, subject).await,
            Action::XmppRoomChanged { room } => self.send_room_changed(room).await,
            Action::LinkedMucJoin { .. }
            | Action::LinkedMucLeave { .. }
            | Action::LinkedMucMessage { .. }
            | Action::LinkedMucReactions { .. }
            | Action::LinkedMucRetract { .. }
            | Action::MatrixLeave { .. } => self.deliver_linked(id, action).await,
            Action::XmppMucInvite { room, to, from, reason } => {
                self.send_muc_invite(room, to, from, reason.as_deref()).await
            }
            Action::XmppNotice { to, text } => {
                let from = crate::core::ids::BareJid::parse(&self.map.component)
                    .map_err(|e| DeliveryError::Permanent(e.to_string()))?;
                self.xmpp.deliver(Outgoing::chat(from, to.clone(), text.clone(), self.stanza_id(id))).await
            }
            Action::XmppBounce { from, to, reason, quote, .. } => {
                let from = self.map.jid_for_matrix(from);
                let body = match quote {
                    Some(q) => format!("{reason}\nYour message: “{q}”"),
                    None => reason.clone(),
                };
                self.xmpp.deliver(Outgoing::chat(from, to.clone(), Text::notice(body), self.stanza_id(id))).await
            }
            Action::Mail { from, to, raw, .. } => self.deliver_mail(from, to, raw).await,
            Action::SmsSend { .. }
            | Action::SmsToMatrix { .. }
            | Action::XmppFromPhone { .. }
            | Action::XmppPhoneBounce { .. } => self.deliver_sms(id, action).await,
            Action::ChatbotMessage { from, room, text, in_room, muc } => {
                let to = super::chatbot::To {
                    party: from,
                    room: room.as_ref(),
                    reply_to: in_room.as_ref(),
                    muc: muc.as_ref(),
                };
                self.deliver_chatbot(id, &to, text).await
            }
        }
    }
}
