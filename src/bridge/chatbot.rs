//! The chatbot as a user of both networks (`crate::chatbot` is the library): a Matrix user in
//! the appservice namespace (`@assistant:hs`) whom people invite to a one-to-one room, and an
//! address under the component (`assistant@component`) XMPP users write to. A message to it is
//! queued as an `Action::ChatbotMessage` on the person's own lane; delivering that action checks
//! the `chatbot` permission, runs `/clear` or asks the provider with the person's stored context,
//! and sends the answer (or a short friendly error) back as the chatbot.

use std::sync::Arc;

use crate::bridge::Bridge;
use crate::chatbot::Input;
use crate::core::action::{Action, Refusal, Text};
use crate::core::ids::{MatrixUserId, RoomId};
use crate::core::inbound::XmppChatIn;
use crate::core::outbox::DeliveryError;
use crate::core::watch::Party;
use crate::matrix::client::MatrixError;
use crate::store::StoreTx;
use crate::xmpp::outbound;

/// The permission admins grant (`permissions grant USER chatbot`).
const PERMISSION: &str = "chatbot";

const REFUSAL: &str = "Sorry, you may not use the AI assistant. An administrator can allow it \
                       (the chatbot permission).";
const CLEARED: &str = "Done: I have forgotten our conversation. The next question starts afresh.";

impl Bridge {
    /// A Matrix user invited the chatbot: the room becomes their chat with it.
    pub(super) async fn chatbot_invite(
        &self,
        tx: &mut StoreTx,
        room: RoomId,
        sender: MatrixUserId,
        chatbot: MatrixUserId,
    ) -> crate::store::Result<Vec<Action>> {
        let party = Party::Matrix(sender);
        tx.save_chatbot_room(&room, &party).await?;
        let welcome = if self.chatbot_permitted(&party).await? {
            "Hello! I am an AI assistant. Ask me anything; /clear makes me forget our conversation."
        } else {
            REFUSAL
        };
        Ok(vec![
            Action::MatrixJoin { room: room.clone(), user: chatbot.clone() },
            Action::MatrixPost { room, user: chatbot, text: Text::notice(welcome), nick: None },
        ])
    }

    /// A Matrix message: if it is someone's message in their chat with the chatbot, the action
    /// that answers it (`None`: not a chatbot room, or not its owner's message).
    pub(super) async fn chatbot_matrix_message(
        &self,
        tx: &mut StoreTx,
        room: &RoomId,
        sender: &MatrixUserId,
        body: &str,
    ) -> crate::store::Result<Option<Vec<Action>>> {
        if self.map.chatbot().is_none() {
            return Ok(None);
        }
        let from = Party::Matrix(sender.clone());
        match tx.chatbot_room_owner(room).await? {
            Some(owner) if owner == from => {
                Ok(Some(vec![Action::ChatbotMessage { from, room: Some(room.clone()), text: body.to_owned() }]))
            }
            // Someone else in a person's chat with the chatbot: rooms are not served yet.
            Some(_) => Ok(Some(vec![])),
            None => Ok(None),
        }
    }

    /// An XMPP message to the chatbot's address: queued like any accepted message (a resent
    /// stanza is not asked twice).
    pub(super) async fn accept_chatbot_xmpp(self: &Arc<Self>, chat: XmppChatIn) -> Result<(), (Refusal, String)> {
        let max = self.current_config().limits.max_message_bytes;
        if chat.body.len() > max {
            return Err((
                Refusal::Policy,
                format!("Message too long: {} bytes; the bridge carries at most {max} bytes.", chat.body.len()),
            ));
        }
        let from = chat.from.to_string();
        let action = Action::ChatbotMessage { from: Party::Xmpp(chat.from.clone()), room: None, text: chat.body };
        let (from, action, stanza_id) = (&from, &action, chat.stanza_id.as_deref());
        let stored = crate::store::retrying("accept a message to the chatbot", || async move {
            let mut tx = self.store.begin().await?;
            if let Some(id) = stanza_id
                && !tx.claim_stanza(from, id).await?
            {
                return Ok(None);
            }
            let row = tx.enqueue_row(action.clone()).await?;
            tx.commit().await?;
            Ok(Some(row))
        })
        .await
        .map_err(|e| crate::bridge::store_refusal(&e, "a message to the chatbot"))?;
        if let Some(row) = stored {
            self.dispatch(vec![row]);
        }
        Ok(())
    }

    /// May `who` use the chatbot?
    async fn chatbot_permitted(&self, who: &Party) -> crate::store::Result<bool> {
        let everyone = self.chatbot.get().is_some_and(|c| c.settings.everyone);
        Ok(everyone || self.store.has_permission(who, PERMISSION).await?)
    }

    /// Deliver `Action::ChatbotMessage` `id`: refuse, clear, or ask and answer. A retry after
    /// the answer was stored (its sending failed) sends the stored answer, without asking again.
    pub(super) async fn deliver_chatbot(
        &self,
        id: i64,
        from: &Party,
        room: Option<&RoomId>,
        text: &str,
    ) -> Result<(), DeliveryError> {
        let Some(bot) = self.chatbot.get() else {
            return Err(DeliveryError::Permanent("the chatbot is off".into()));
        };
        if let Some(answer) = self.store.chatbot_answer_of(id).await? {
            return self.chatbot_say(id, from, room, Text::plain(answer)).await;
        }
        if !self.chatbot_permitted(from).await? {
            tracing::info!(%from, "chatbot: refused (no permission)");
            return self.chatbot_say(id, from, room, Text::notice(REFUSAL)).await;
        }
        let context = from.key();
        let question = match Input::parse(text) {
            Input::Clear => {
                let forgotten = self.store.chatbot_clear(&context).await?;
                tracing::info!(%from, forgotten, "chatbot: context cleared");
                return self.chatbot_say(id, from, room, Text::notice(CLEARED)).await;
            }
            Input::Ask(question) => question,
        };
        let turns = self.store.chatbot_turns(&context).await?;
        let history: Vec<_> = turns.iter().map(|t| t.message.clone()).collect();
        let (messages, dropped) = bot.prompt(&history, question);
        self.chatbot_typing(room, true).await;
        let result = bot.provider.complete(&messages).await;
        self.chatbot_typing(room, false).await;
        match result {
            Ok(answer) => {
                tracing::info!(
                    %from,
                    turns_sent = messages.len(),
                    prompt_tokens = answer.usage.prompt_tokens,
                    completion_tokens = answer.usage.completion_tokens,
                    "chatbot: answered"
                );
                let keep_from = turns.get(dropped).map(|t| t.id);
                self.store.chatbot_record(&context, keep_from, question, &answer.content, id).await?;
                self.chatbot_say(id, from, room, Text::plain(answer.content)).await
            }
            Err(e) => {
                tracing::warn!(%from, error = %e, "chatbot: no answer from the provider");
                self.chatbot_say(id, from, room, Text::notice(e.friendly())).await
            }
        }
    }

    /// Send `text` from the chatbot: into `room` on Matrix, else to the person's XMPP address.
    /// The ids come from the action's, so a retried send is dropped as a repeat.
    async fn chatbot_say(&self, id: i64, to: &Party, room: Option<&RoomId>, text: Text) -> Result<(), DeliveryError> {
        match (room, to) {
            (Some(room), _) => {
                let me = self.chatbot_user().await?;
                self.matrix
                    .send_text(room, &me, &text, self.html_of(&text).as_deref(), &self.txn_id(id))
                    .await
                    .map(|_| ())
                    .map_err(MatrixError::into_delivery)
            }
            (None, Party::Xmpp(jid)) => {
                let me = self.map.chatbot_jid().ok_or_else(|| DeliveryError::Permanent("the chatbot is off".into()))?;
                self.xmpp.send(outbound::chat_between(&me, jid, &text, self.stanza_id(id), None)?).await
            }
            (None, Party::Matrix(user)) => Err(DeliveryError::Permanent(format!("no chatbot room of {user}"))),
        }
    }

    /// The chatbot's Matrix user, registered with its display name.
    pub(super) async fn chatbot_user(&self) -> Result<MatrixUserId, DeliveryError> {
        let (Some(me), Some(bot)) = (self.map.chatbot(), self.chatbot.get()) else {
            return Err(DeliveryError::Permanent("the chatbot is off".into()));
        };
        self.ensure_ghost(&me, &bot.settings.display_name).await?;
        Ok(me)
    }

    /// Show (or stop showing) the chatbot typing in a Matrix room while it thinks; cosmetic, so
    /// a failure is only logged.
    async fn chatbot_typing(&self, room: Option<&RoomId>, typing: bool) {
        let (Some(room), Some(me)) = (room, self.map.chatbot()) else { return };
        if let Err(e) = self.matrix.set_typing(room, &me, typing).await {
            tracing::debug!(%room, error = %e, "chatbot: cannot set typing");
        }
    }
}
