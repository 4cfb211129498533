//! Typing notifications and read markers in the rooms the bridge hosts: `m.typing` ↔ XEP-0085
//! chat states in the MUC, `m.read` ↔ XEP-0333 `displayed` for the room's stanza id (the archive
//! id). Sent directly, like the 1:1 markers: a lost one costs a moment's display.

use std::collections::HashSet;
use std::sync::Arc;

use crate::bridge::Bridge;
use crate::core::ids::{BareJid, MatrixUserId, RoomId};
use crate::core::watch::Party;
use crate::xmpp::out::Outgoing;

impl Bridge {
    /// `m.typing` in a hosted room; `false` if the room is not one.
    pub(in crate::bridge) async fn room_typing(&self, room: &RoomId, users: &[MatrixUserId]) -> bool {
        let Ok(Some(r)) = self.hosted_room(room).await else { return false };
        // The assistant is a participant: its typing while it thinks is shown too.
        let now: HashSet<MatrixUserId> = users.iter().filter(|u| !self.is_echo(u)).cloned().collect();
        let before = match self.hosted.typing.lock() {
            Ok(mut t) => t.insert(room.clone(), now.clone()).unwrap_or_default(),
            Err(_) => return true,
        };
        let started: Vec<_> = now.difference(&before).map(|u| (u.clone(), true)).collect();
        let stopped: Vec<_> = before.difference(&now).map(|u| (u.clone(), false)).collect();
        if started.is_empty() && stopped.is_empty() {
            return true;
        }
        let muc = self.muc_of(&r);
        let members = self.store.room_members(room).await.unwrap_or_default();
        let occupants = self.store.occupants(room).await.unwrap_or_default();
        for (user, composing) in started.into_iter().chain(stopped) {
            let who = Party::Matrix(user);
            let Some(m) = members.iter().find(|m| m.party == who) else { continue };
            for (full, _) in &occupants {
                let (room, nick, to) = (muc.clone(), m.nick.clone(), full.clone());
                self.xmpp.post(Outgoing::RoomChatState { room, nick, to, composing }).await;
            }
        }
        true
    }

    /// `m.read` in a hosted room; `false` if the room is not one.
    pub(in crate::bridge) async fn room_read(&self, room: &RoomId, user: &MatrixUserId, event_id: &str) -> bool {
        let Ok(Some(r)) = self.hosted_room(room).await else { return false };
        let who = Party::Matrix(user.clone());
        if !self.map.is_bridge_user(user) {
            self.room_read_by(&who, &r).await;
        }
        let Ok(Some(archive_id)) = self.store.archive_id_of_event(room, event_id).await else { return true };
        let members = self.store.room_members(room).await.unwrap_or_default();
        let Some(m) = members.iter().find(|m| m.party == who) else { return true };
        let muc = self.muc_of(&r);
        for (to, _) in self.store.occupants(room).await.unwrap_or_default() {
            let (room, nick, id) = (muc.clone(), m.nick.clone(), archive_id.to_string());
            self.xmpp.post(Outgoing::RoomDisplayed { room, nick, to, id }).await;
        }
        true
    }

    /// A chat state an XMPP occupant sent to the room: their ghost types on Matrix, and the
    /// other clients in the MUC see it.
    pub async fn muc_chat_state(self: &Arc<Self>, room_local: &str, full: &str, bare: &BareJid, composing: bool) {
        let Ok(Some(r)) = self.room_by_muc(room_local).await else { return };
        let me = Party::Xmpp(bare.clone());
        let members = self.store.room_members(&r.room).await.unwrap_or_default();
        let Some(m) = members.iter().find(|m| m.party == me) else { return };
        let occupants = self.store.occupants(&r.room).await.unwrap_or_default();
        if !occupants.iter().any(|(f, _)| f == full) {
            return;
        }
        let ghost = self.map.ghost_for(bare);
        if let Err(e) = self.matrix.set_typing(&r.room, &ghost, composing).await {
            tracing::debug!(%ghost, error = %e, "cannot set typing in a room");
        }
        let muc = self.muc_of(&r);
        for (other, party) in &occupants {
            if party != &me {
                let (room, nick, to) = (muc.clone(), m.nick.clone(), other.clone());
                self.xmpp.post(Outgoing::RoomChatState { room, nick, to, composing }).await;
            }
        }
    }

    /// An XMPP occupant displayed the room's message `stanza_id` (an archive id): their ghost's
    /// read receipt on its event.
    pub async fn muc_displayed(self: &Arc<Self>, room_local: &str, bare: &BareJid, stanza_id: &str) {
        let Ok(Some(r)) = self.room_by_muc(room_local).await else { return };
        let Ok(archive_id) = stanza_id.parse::<i64>() else { return };
        let me = Party::Xmpp(bare.clone());
        if !self.store.room_members(&r.room).await.unwrap_or_default().iter().any(|m| m.party == me) {
            return;
        }
        self.room_read_by(&me, &r).await;
        let Ok(Some((event_id, sender))) = self.store.event_of_archived(&r.room, archive_id).await else { return };
        if sender == me {
            return;
        }
        let ghost = self.map.ghost_for(bare);
        if let Err(e) = self.matrix.send_read_receipt(&r.room, &ghost, &event_id).await {
            tracing::debug!(%ghost, error = %e, "cannot send a read receipt in a room");
        }
    }
}
