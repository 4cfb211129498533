//! Accepting a 1:1 message from XMPP: validate, de-duplicate by stanza id, queue for Matrix.
//! Once this returns `Ok`, the message is the bridge's responsibility (it is in the outbox).

use std::sync::Arc;

use crate::bridge::Bridge;
use crate::core::action::{Action, Text};
use crate::core::ids::StanzaId;
use crate::core::inbound::XmppChatIn;
use crate::core::refusal::Refusal;

impl Bridge {
    pub async fn accept_xmpp_chat(self: &Arc<Self>, chat: XmppChatIn) -> Result<(), Refusal> {
        if let Some(phone) = self.map.phone_for_local(&chat.to_local) {
            return self.accept_xmpp_sms(chat, phone).await;
        }
        if self.map.is_chatbot_local(&chat.to_local) {
            return self.accept_chatbot_xmpp(chat).await;
        }
        let to = self.map.matrix_for_jid(&chat.to_local).map_err(|e| {
            Refusal::bad_address(format!(
                "{e}. To reach @user:server on Matrix, write to user\\40server@{}.",
                self.map.component
            ))
        })?;
        // Refused here, while the sender's full address is known: a later bounce to the bare
        // JID would be dropped by the sender's server (RFC 6121 8.5.2.1.1).
        let ghost = self.map.ghost_for_checked(&chat.from).map_err(|e| Refusal::bad_address(format!("{e}.")))?;
        let (reply, replaces) = (chat.extras.reply_to.is_some(), chat.extras.replaces.is_some());
        if let Some(why) = self.too_large_for_matrix(&Text::plain(chat.body.as_str()), &ghost, reply, replaces) {
            return Err(Refusal::policy(why));
        }
        self.check_dm_correction(&chat.from, &to, &chat.extras).await?;
        // Its time on Matrix: when it was written (a believable `<delay>`), else now, so that
        // waiting in the outbox does not make it newer.
        let mut extras = chat.extras;
        extras.sent_at = Some(crate::core::delay::written_at(extras.sent_at, crate::store::now_ms()));
        let action = Action::MatrixDirect {
            from: chat.from.clone(),
            to,
            nick: chat.nick,
            stanza_id: chat.stanza_id.clone(),
            text: Text::plain(chat.body),
            wants_receipt: chat.wants_receipt,
            markable: chat.markable,
            extras,
        };
        let stanza_id = chat.stanza_id.as_ref().map(StanzaId::as_str);
        if !self.queue_claimed(&chat.from.to_string(), stanza_id, action, "an XMPP message").await? {
            tracing::debug!(from = %chat.from, id = stanza_id, "duplicate stanza ignored");
        }
        Ok(())
    }
}

impl Bridge {
    /// An XMPP error came back for a message from `matrix_user` to `xmpp_user`: post a notice
    /// in their direct chat so the Matrix side knows it did not arrive.
    pub async fn report_xmpp_bounce(
        self: &Arc<Self>,
        xmpp_user: &crate::core::ids::BareJid,
        matrix_user: &crate::core::ids::MatrixUserId,
        reason: &str,
    ) -> crate::store::Result<()> {
        if let Some(room) = self.linked_room_of(xmpp_user).await? {
            // A remote MUC refused what a Matrix user said in it: told in the room (the error
            // names no message; the bot names the person).
            let text = format!("{matrix_user}: your message did not reach {xmpp_user}: {reason}");
            let action = Action::MatrixPost { room, user: self.map.bot(), text: Text::notice(text), nick: None };
            let mut tx = self.store.begin().await?;
            let row = tx.enqueue_row(action).await?;
            tx.commit().await?;
            self.dispatch(vec![row]);
            return Ok(());
        }
        let (_, Some(chat)) = self.current_dm(xmpp_user, matrix_user).await? else {
            tracing::info!(%xmpp_user, %matrix_user, reason, "a delivery error with nobody to tell");
            return Ok(());
        };
        let action = Action::MatrixPost {
            room: chat.room,
            user: self.map.ghost_for(xmpp_user),
            text: Text::notice(format!("A message to {xmpp_user} was not delivered: {reason}")),
            nick: None,
        };
        let mut tx = self.store.begin().await?;
        let row = tx.enqueue_row(action).await?;
        tx.commit().await?;
        self.dispatch(vec![row]);
        Ok(())
    }
}
