//! XEP-0153 photo hashes of Matrix users, for their XMPP presence: the SHA-1 of the photo their
//! vCard carries (see `avatars.rs`), so clients know when to fetch it again. Hashes are kept per
//! user with the `mxc://` URL they were computed from: the avatar is downloaded again only when
//! the URL changes. A Matrix user's avatar change (seen in a membership event) sends their
//! subscribers a presence with the new hash.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::bridge::Bridge;
use crate::core::ids::{BareJid, MatrixUserId};
use crate::core::presence::PhotoHash;
use crate::matrix::client::MatrixError;

/// A hash is taken as current this long without asking the homeserver for the avatar URL
/// again (avatar changes seen in membership events refresh it at once).
const FRESH: Duration = Duration::from_secs(600);
/// Users whose hash is kept (the least recently used are forgotten first).
const MAX_USERS: usize = 10_000;

impl Bridge {
    /// What is known of `user`'s photo hash without asking the homeserver (`Unknown` if
    /// nothing): for presence sent while a database transaction is open.
    pub(super) fn matrix_photo_hash_known(&self, user: &MatrixUserId) -> PhotoHash {
        self.photos.lock().ok().and_then(|p| p.known(user)).unwrap_or_default()
    }

    /// The photo hash of `user`'s avatar as their vCard shows it. Downloads the avatar only
    /// when its URL is new; a homeserver that does not answer gives the last known hash (or
    /// `Unknown`).
    pub(super) async fn matrix_photo_hash(&self, user: &MatrixUserId) -> PhotoHash {
        self.cached_photo_hash(&self.photos, user, self.matrix.avatar_url(user)).await
    }

    /// The photo hash kept in `cache` for `key` (a user, a room), whose avatar URL `url` reads
    /// (awaited only when the hash is not fresh).
    pub(super) async fn cached_photo_hash<K: std::hash::Hash + Eq + Clone + std::fmt::Display + Sync>(
        &self,
        cache: &Mutex<PhotoHashes<K>>,
        key: &K,
        url: impl Future<Output = Result<Option<String>, MatrixError>>,
    ) -> PhotoHash {
        let now = Instant::now();
        if let Some(hash) = cache.lock().ok().and_then(|p| p.fresh(key, now)) {
            return hash;
        }
        let known = || cache.lock().ok().and_then(|p| p.known(key)).unwrap_or_default();
        let mxc = match url.await {
            // An empty URL is how an avatar is removed.
            Ok(mxc) => mxc.filter(|m| !m.is_empty()),
            Err(e) => {
                tracing::debug!(%key, error = %e, "cannot read the avatar URL");
                return known();
            }
        };
        if let Some(hash) = cache.lock().ok().and_then(|mut p| p.same_url(key, mxc.as_deref(), now)) {
            return hash;
        }
        let hash = match &mxc {
            None => PhotoHash::None,
            Some(mxc) => match self.matrix_photo(key, mxc).await {
                Ok(Some((bytes, _))) => crate::xmpp::outbound::hash_photo(&bytes),
                Ok(None) => PhotoHash::None,
                // Not remembered: the next presence tries again.
                Err(_) => return known(),
            },
        };
        if let Ok(mut p) = cache.lock() {
            p.insert(key.clone(), mxc, hash, now);
        }
        hash
    }

    /// A membership event showed `user` with the avatar `mxc`. If that is not the avatar the
    /// last hash was computed from, compute it again and, if it changed, tell their subscribers
    /// (in the background: the transaction is not held up by downloads).
    pub(super) fn matrix_avatar_seen(self: &Arc<Self>, user: MatrixUserId, mxc: Option<String>) {
        let mxc = mxc.filter(|m| !m.is_empty());
        let stale = self.photos.lock().map(|mut p| p.stale(&user, mxc.as_deref())).unwrap_or(false);
        if !stale {
            return;
        }
        let bridge = self.clone();
        tokio::spawn(async move {
            let before = bridge.photos.lock().ok().and_then(|p| p.known(&user));
            let after = bridge.matrix_photo_hash(&user).await;
            if before == Some(after) {
                return;
            }
            tracing::info!(%user, "avatar changed: telling XMPP subscribers the new photo hash");
            bridge.tell_subscribers_presence(&user).await;
        });
    }

    /// Send `user`'s current presence (with the photo hash) to each subscriber allowed to see it.
    async fn tell_subscribers_presence(&self, user: &MatrixUserId) {
        let contact = self.map.jid_for_matrix(user);
        let subscribers = match self.store.subscribers(&contact.to_string()).await {
            Ok(s) => s,
            Err(e) => return tracing::warn!(%user, error = %e, "cannot read subscribers"),
        };
        for subscriber in subscribers {
            let Ok(to) = BareJid::parse(&subscriber) else { continue };
            if self.presence_visible_to(user, &to).await {
                self.send_current_presence(user, &to).await;
            }
        }
    }
}

/// The hash per user (or per room: a hosted room's avatar, `hosted/avatar.rs`), with the avatar
/// URL it was computed from and when that URL was read.
pub(super) struct PhotoHashes<K = MatrixUserId> {
    users: HashMap<K, Entry>,
}

impl<K> Default for PhotoHashes<K> {
    fn default() -> Self {
        Self { users: HashMap::new() }
    }
}

struct Entry {
    mxc: Option<String>,
    hash: PhotoHash,
    /// `None`: the URL must be read again before the hash is used.
    checked: Option<Instant>,
}

impl<K: std::hash::Hash + Eq + Clone> PhotoHashes<K> {
    /// The hash, if its URL was read lately.
    pub(super) fn fresh(&self, user: &K, now: Instant) -> Option<PhotoHash> {
        let entry = self.users.get(user)?;
        entry.checked.filter(|at| now.saturating_duration_since(*at) < FRESH).map(|_| entry.hash)
    }

    /// The last hash known, however old.
    pub(super) fn known(&self, user: &K) -> Option<PhotoHash> {
        self.users.get(user).map(|e| e.hash)
    }

    /// The avatar URL read now is `mxc`: the hash, if it was computed from that URL.
    pub(super) fn same_url(&mut self, user: &K, mxc: Option<&str>, now: Instant) -> Option<PhotoHash> {
        let entry = self.users.get_mut(user).filter(|e| e.mxc.as_deref() == mxc)?;
        entry.checked = Some(now);
        Some(entry.hash)
    }

    /// Was the hash kept for `user` computed from another URL than `mxc`? Then it is marked
    /// for a new reading. A user without a hash has told nobody one: nothing is stale.
    pub(super) fn stale(&mut self, user: &K, mxc: Option<&str>) -> bool {
        let Some(entry) = self.users.get_mut(user) else { return false };
        if entry.mxc.as_deref() == mxc {
            return false;
        }
        entry.checked = None;
        true
    }

    pub(super) fn insert(&mut self, user: K, mxc: Option<String>, hash: PhotoHash, now: Instant) {
        if !self.users.contains_key(&user)
            && self.users.len() >= MAX_USERS
            && let Some(oldest) = self.users.iter().min_by_key(|(_, e)| e.checked).map(|(u, _)| u.clone())
        {
            self.users.remove(&oldest);
        }
        self.users.insert(user, Entry { mxc, hash, checked: Some(now) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> MatrixUserId {
        MatrixUserId::parse(s).unwrap()
    }

    #[test]
    fn a_hash_is_reused_while_its_url_stays_and_stale_when_the_url_changes() {
        let mut p = PhotoHashes::default();
        let (bob, now) = (user("@bob:hs"), Instant::now());
        assert_eq!(p.fresh(&bob, now), None);
        // Nobody was told a hash of an unknown user: a membership event asks nothing.
        assert!(!p.stale(&bob, Some("mxc://hs/a")));
        p.insert(bob.clone(), Some("mxc://hs/a".into()), PhotoHash::Sha1([1; 20]), now);
        assert_eq!(p.fresh(&bob, now + Duration::from_secs(1)), Some(PhotoHash::Sha1([1; 20])));
        // Later the URL is read again; the same URL needs no download.
        let later = now + FRESH + Duration::from_secs(1);
        assert_eq!(p.fresh(&bob, later), None);
        assert_eq!(p.same_url(&bob, Some("mxc://hs/a"), later), Some(PhotoHash::Sha1([1; 20])));
        assert_eq!(p.fresh(&bob, later), Some(PhotoHash::Sha1([1; 20])));
        assert_eq!(p.same_url(&bob, Some("mxc://hs/b"), later), None);
        assert_eq!(p.same_url(&bob, None, later), None);
        // A membership event with the same avatar changes nothing; another one makes it stale.
        assert!(!p.stale(&bob, Some("mxc://hs/a")));
        assert!(p.stale(&bob, None));
        assert_eq!(p.fresh(&bob, later), None);
        assert_eq!(p.known(&bob), Some(PhotoHash::Sha1([1; 20])));
    }

    #[test]
    fn the_users_kept_are_bounded_least_recently_checked_first() {
        let mut p = PhotoHashes::default();
        let now = Instant::now();
        for i in 0..(MAX_USERS + 5) {
            p.insert(user(&format!("@u{i}:hs")), None, PhotoHash::None, now + Duration::from_millis(i as u64));
        }
        assert_eq!(p.users.len(), MAX_USERS);
        assert_eq!(p.known(&user("@u0:hs")), None);
        assert_eq!(p.known(&user(&format!("@u{}:hs", MAX_USERS + 4))), Some(PhotoHash::None));
    }
}
