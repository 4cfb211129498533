//! Direct chats (`Conversation::DirectChat`): one XMPP address and one Matrix user, in a Matrix
//! room where the XMPP side is a ghost. Both directions live here: accepting XMPP messages
//! (`xmpp_in`) and Matrix events (`matrix_in`, including the invitation that makes a room a
//! direct chat), carrying them out (`delivery`: creating the room, re-inviting), content beyond
//! text (`content`), and typing and read markers (`markers`).

mod content;
mod delivery;
mod markers;
mod matrix_in;
mod xmpp_in;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::bridge::Bridge;
use crate::core::ids::{BareJid, MatrixUserId, RoomId};
use crate::store::DirectChat;

/// Cache generation and the current direct chat per (XMPP user, Matrix user).
type DmCache = (u64, HashMap<(BareJid, MatrixUserId), DirectChat>);

/// What the bridge keeps in memory about direct chats.
pub(in crate::bridge) struct State {
    /// Current direct chat per pair, with a generation that a membership change bumps
    /// (clearing the map), so a lookup that raced with the change is not cached.
    dms: Mutex<DmCache>,
    /// Whether the Matrix side of a direct chat was typing at the last `m.typing`.
    typing: Mutex<HashMap<RoomId, bool>>,
    /// Rooms where a ghost's typing notification is on.
    ghost_typing: Mutex<HashSet<RoomId>>,
    /// The last stanza id marked displayed per room.
    displayed: Mutex<HashMap<RoomId, String>>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            dms: Mutex::new((0, HashMap::new())),
            typing: Mutex::default(),
            ghost_typing: Mutex::default(),
            displayed: Mutex::default(),
        }
    }
}

impl Bridge {
    /// The cached direct chat of a pair, and the cache generation to pass to [`Self::cache_dm`].
    pub(in crate::bridge) fn cached_dm(&self, xmpp: &BareJid, matrix: &MatrixUserId) -> (u64, Option<DirectChat>) {
        match self.direct.dms.lock() {
            Ok(d) => (d.0, d.1.get(&(xmpp.clone(), matrix.clone())).cloned()),
            Err(_) => (u64::MAX, None),
        }
    }

    /// Cache (or with `None` drop) a pair's direct chat, unless memberships changed since
    /// `generation` was read.
    pub(in crate::bridge) fn cache_dm(
        &self,
        generation: u64,
        chat: Option<&DirectChat>,
        xmpp: &BareJid,
        matrix: &MatrixUserId,
    ) {
        if let Ok(mut d) = self.direct.dms.lock() {
            let key = (xmpp.clone(), matrix.clone());
            match chat {
                Some(p) if d.0 == generation => d.1.insert(key, p.clone()),
                _ => d.1.remove(&key),
            };
        }
    }

    /// The pair's current direct chat, from the cache or else the database (then cached), with
    /// the cache generation to pass to [`Self::cache_dm`] for a chat derived from it.
    pub(in crate::bridge) async fn current_dm(
        &self,
        xmpp: &BareJid,
        matrix: &MatrixUserId,
    ) -> crate::store::Result<(u64, Option<DirectChat>)> {
        let (generation, cached) = self.cached_dm(xmpp, matrix);
        if cached.is_some() {
            return Ok((generation, cached));
        }
        let chat = self.store.current_dm(xmpp, matrix).await?;
        if let Some(p) = &chat {
            self.cache_dm(generation, Some(p), xmpp, matrix);
        }
        Ok((generation, chat))
    }

    /// Memberships changed: cached direct chats may be stale.
    pub(in crate::bridge) fn forget_cached_dms(&self) {
        if let Ok(mut d) = self.direct.dms.lock() {
            d.0 = d.0.wrapping_add(1);
            d.1.clear();
        }
    }
}
