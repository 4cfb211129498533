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

/// The current direct chat per (XMPP user, Matrix user), found by the pair or by its room, and
/// the generation that a membership change bumps.
#[derive(Default)]
struct DmCache {
    generation: u64,
    by_pair: HashMap<(BareJid, MatrixUserId), DirectChat>,
    /// The pair whose current chat a room was when cached (checked against `by_pair`).
    by_room: HashMap<RoomId, (BareJid, MatrixUserId)>,
}

/// What the bridge keeps in memory about direct chats.
#[derive(Default)]
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

impl Bridge {
    /// The cached direct chat of a pair, and the cache generation to pass to [`Self::cache_dm`].
    pub(in crate::bridge) fn cached_dm(&self, xmpp: &BareJid, matrix: &MatrixUserId) -> (u64, Option<DirectChat>) {
        match self.direct.dms.lock() {
            Ok(d) => (d.generation, d.by_pair.get(&(xmpp.clone(), matrix.clone())).cloned()),
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
                Some(p) if d.generation == generation => {
                    d.by_room.insert(p.room.clone(), key.clone());
                    d.by_pair.insert(key, p.clone())
                }
                _ => d.by_pair.remove(&key),
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

    /// The cached direct chat held in `room`, if it is its pair's current one.
    pub(in crate::bridge) fn cached_dm_in(&self, room: &RoomId) -> Option<DirectChat> {
        let d = self.direct.dms.lock().ok()?;
        let chat = d.by_pair.get(d.by_room.get(room)?)?;
        (&chat.room == room).then(|| chat.clone())
    }

    /// Memberships changed: cached direct chats may be stale.
    pub(in crate::bridge) fn forget_cached_dms(&self) {
        if let Ok(mut d) = self.direct.dms.lock() {
            d.generation = d.generation.wrapping_add(1);
            d.by_pair.clear();
            d.by_room.clear();
        }
    }
}
