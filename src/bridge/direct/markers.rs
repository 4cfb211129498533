//! Typing notifications and delivery status between Matrix and XMPP in direct chats:
//! `m.typing` ↔ XEP-0085 chat states; XEP-0184 receipts once the homeserver accepted a message;
//! Matrix `m.read` ↔ XEP-0333 `displayed`. Like presence these are sent directly: a lost tick
//! costs a moment's display, never a message.

use crate::bridge::Bridge;
use crate::bridge::direct::delivery::Asked;
use crate::core::ids::{BareJid, MatrixUserId, RoomId};
use crate::core::watch::Party;
use crate::store::{DirectChat, MappedMessage};
use crate::xmpp::out::Outgoing;

impl Bridge {
    async fn dm_of_room(&self, room: &RoomId) -> Option<DirectChat> {
        match self.store.dm_by_room(room).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(%room, error = %e, "cannot look up room");
                None
            }
        }
    }

    /// The Matrix side of a DM started or stopped typing: a chat state to the XMPP side.
    pub(in crate::bridge) async fn matrix_typing(&self, room: RoomId, users: Vec<MatrixUserId>) {
        let Some(chat) = self.dm_of_room(&room).await else { return };
        let typing = users.contains(&chat.matrix);
        let changed = match self.direct.typing.lock() {
            Ok(mut rooms) => rooms.insert(room, typing).unwrap_or(false) != typing,
            Err(_) => false,
        };
        if !changed {
            return;
        }
        let from = self.map.jid_for_matrix(&chat.matrix);
        self.xmpp.post(Outgoing::ChatState { from, to: chat.xmpp, composing: typing }).await;
    }

    /// A Matrix user read up to `event_id`: mark the XMPP messages it covers as displayed.
    pub(in crate::bridge) async fn matrix_read(&self, room: RoomId, user: MatrixUserId, event_id: String) {
        let target = match self.store.message_by_event(&room, &event_id).await {
            Ok(Some(m)) if m.from_xmpp => Some(m),
            // A receipt on a later event (e.g. the reader's own reply) covers what came before.
            Ok(_) => self.store.latest_from_xmpp(&room).await.ok().flatten(),
            Err(e) => return tracing::warn!(%room, error = %e, "cannot look up a read event"),
        };
        if let Some(m) = target.as_ref().filter(|m| m.matrix == user) {
            self.chat_read(Party::Matrix(user.clone()), Party::Xmpp(m.xmpp.clone())).await;
        }
        let Some(m) = target.filter(|m| m.markable && m.matrix == user) else { return };
        let first_time = match self.direct.displayed.lock() {
            Ok(mut last) => last.insert(room, m.stanza_id.clone()).as_ref() != Some(&m.stanza_id),
            Err(_) => true,
        };
        if first_time {
            let from = self.map.jid_for_matrix(&user);
            self.xmpp.post(Outgoing::Displayed { from, to: m.xmpp, id: m.stanza_id }).await;
        }
    }

    /// An XMPP message reached Matrix as `event_id`: remember the pair, and send the receipt
    /// the sender asked for.
    pub(in crate::bridge) async fn delivered_to_matrix(
        &self,
        id: i64,
        chat: &DirectChat,
        event_id: String,
        asked: Asked<'_>,
    ) {
        // A message ends the sender's typing notification.
        self.stop_ghost_typing(&chat.room, &self.map.ghost_for(&chat.xmpp)).await;
        self.reassert_ghost_presence(&chat.xmpp).await;
        let Some(stanza_id) = asked.stanza_id else { return };
        let mapped = MappedMessage {
            room: chat.room.clone(),
            event_id,
            xmpp: chat.xmpp.clone(),
            matrix: chat.matrix.clone(),
            stanza_id: stanza_id.to_owned(),
            from_xmpp: true,
            markable: asked.markable,
            edit_of: asked.edit_of.map(str::to_owned),
        };
        // Recorded with the action's completion, in the same round trip.
        self.record_on_completion(id, mapped);
        if asked.receipt {
            let (from, to) = (self.map.jid_for_matrix(&chat.matrix), chat.xmpp.clone());
            self.xmpp.post(Outgoing::Receipt { from, to, id: stanza_id.to_owned() }).await;
        }
    }

    /// An XMPP user's chat state towards a Matrix user: the ghost's typing notification.
    pub async fn xmpp_chat_state(&self, from: &BareJid, to: &MatrixUserId, composing: bool) {
        let chat = match self.current_dm(from, to).await {
            Ok((_, Some(p))) => p,
            _ => return,
        };
        let ghost = self.map.ghost_for(from);
        if composing {
            if let Ok(mut typing) = self.direct.ghost_typing.lock() {
                typing.insert(chat.room.clone());
            }
            if let Err(e) = self.matrix.set_typing(&chat.room, &ghost, true).await {
                tracing::debug!(%ghost, error = %e, "cannot set typing");
            }
            self.reassert_ghost_presence(from).await;
        } else {
            self.stop_ghost_typing(&chat.room, &ghost).await;
        }
    }

    async fn stop_ghost_typing(&self, room: &RoomId, ghost: &MatrixUserId) {
        let was_typing = self.direct.ghost_typing.lock().map(|mut t| t.remove(room)).unwrap_or(false);
        if was_typing && let Err(e) = self.matrix.set_typing(room, ghost, false).await {
            tracing::debug!(%ghost, error = %e, "cannot clear typing");
        }
    }

    /// An XMPP user displayed a message from a Matrix user: the ghost's read receipt.
    pub async fn xmpp_displayed(&self, from: &BareJid, stanza_id: &str) {
        let m = match self.store.message_by_stanza(from, stanza_id).await {
            Ok(Some(m)) if !m.from_xmpp => m,
            Ok(_) => return tracing::debug!(%from, stanza_id, "displayed marker for an unknown message"),
            Err(e) => return tracing::warn!(error = %e, "cannot look up a displayed message"),
        };
        self.chat_read(Party::Xmpp(from.clone()), Party::Matrix(m.matrix.clone())).await;
        let ghost = self.map.ghost_for(from);
        if let Err(e) = self.matrix.send_read_receipt(&m.room, &ghost, &m.event_id).await {
            tracing::warn!(%ghost, error = %e, "cannot send read receipt");
        }
        self.reassert_ghost_presence(from).await;
    }
}
