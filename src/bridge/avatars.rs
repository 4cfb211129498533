//! Avatars between the networks. An XMPP user's avatar (vCard photo, announced by its hash in
//! presence, XEP-0153) becomes their ghost's Matrix avatar; a Matrix user's avatar is the photo
//! of the vCard the component answers for their address (XEP-0054).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bridge::Bridge;
use crate::config::BotAvatar;
use crate::core::ids::{BareJid, MatrixUserId};
use crate::matrix::client::MatrixError;

use crate::core::picture::MAX_AVATAR;

/// Why the bot's profile could not be set.
#[derive(Debug, thiserror::Error)]
pub enum BotProfileError {
    #[error("appservice.bot_avatar: {0}")]
    Avatar(String),
    #[error(transparent)]
    Matrix(#[from] MatrixError),
}

/// A Matrix user's vCard: display name and photo (bytes, type).
pub struct MatrixCard {
    pub name: Option<String>,
    pub photo: Option<(Vec<u8>, String)>,
}

impl Bridge {
    /// An XMPP user announced a photo hash: fetch their vCard if the hash is new.
    pub async fn xmpp_photo_hash(&self, jid: &BareJid, hash: [u8; 20]) {
        let now = Instant::now();
        let id = match self.avatars.lock() {
            Ok(mut a) => a.request(jid, hash, now),
            Err(_) => return,
        };
        let Some(id) = id else { return };
        self.xmpp.post(crate::xmpp::out::Outgoing::VCardQuery { to: jid.clone(), id }).await;
    }

    /// Is this iq (`id`, from `from`) the answer to a vCard request of ours? Then the photo (if
    /// any) becomes the ghost's avatar. An answer from anyone but the queried JID is ignored.
    pub async fn xmpp_vcard_result(
        self: &Arc<Self>,
        id: &str,
        from: Option<&BareJid>,
        photo: Option<(Vec<u8>, String)>,
    ) -> bool {
        let Some(jid) = self.avatars.lock().ok().and_then(|mut a| a.answer(id, from)) else { return false };
        let Some((bytes, content_type)) = photo.filter(|(b, _)| !b.is_empty() && b.len() <= MAX_AVATAR) else {
            return true;
        };
        let bridge = self.clone();
        tokio::spawn(async move {
            let ghost = bridge.map.ghost_for(&jid);
            let result: Result<(), MatrixError> = async {
                bridge.matrix.register_ghost(&ghost).await?;
                let mxc = bridge.matrix.upload(&ghost, bytes, &content_type).await?;
                bridge.matrix.set_avatar_url(&ghost, &mxc).await
            }
            .await;
            match result {
                Ok(()) => tracing::info!(%ghost, "ghost avatar set from the vCard photo"),
                Err(e) => tracing::warn!(%ghost, error = %e, "cannot set the ghost's avatar"),
            }
        });
        true
    }

    /// Forget unanswered vCard requests and old photo hashes.
    pub(super) fn sweep_avatars(&self) {
        if let Ok(mut a) = self.avatars.lock() {
            a.sweep(Instant::now());
        }
    }

    /// The bridge bot's Matrix profile from the config (`appservice.bot_display_name`,
    /// `bot_avatar`); the component's vCard is this profile. Only what differs is changed, so a
    /// restart does not upload the same avatar again.
    pub async fn set_bot_profile(&self) -> Result<(), BotProfileError> {
        let bot = self.map.bot();
        if self.config.appservice.bot_display_name.is_none() && self.config.appservice.bot_avatar.is_none() {
            return Ok(());
        }
        // The homeserver may know the bot's account without a profile (404) until it is set.
        self.matrix.register_ghost(&bot).await?;
        let absent = |e: MatrixError| if e.errcode() == Some("M_NOT_FOUND") { Ok(None) } else { Err(e) };
        if let Some(name) = &self.config.appservice.bot_display_name
            && self.matrix.displayname(&bot).await.or_else(absent)?.as_deref() != Some(name.as_str())
        {
            self.matrix.set_displayname(&bot, name).await?;
            tracing::info!(%bot, name, "bot display name set");
        }
        match self.config.bot_avatar().map_err(BotProfileError::Avatar)? {
            None => {}
            Some(BotAvatar::Mxc(mxc)) => {
                let current = self.matrix.avatar_url(&bot).await.or_else(absent)?;
                if current.as_deref() != Some(mxc.as_str()) {
                    self.matrix.set_avatar_url(&bot, &mxc).await?;
                    tracing::info!(%bot, %mxc, "bot avatar set");
                }
            }
            Some(BotAvatar::File { path, content_type }) => {
                let bytes = std::fs::read(&path)
                    .map_err(|e| BotProfileError::Avatar(format!("cannot read {}: {e}", path.display())))?;
                self.set_avatar_picture(&bot, bytes, content_type).await?;
            }
        }
        Ok(())
    }

    /// Give `user` (the bot, the assistant) the picture `bytes` as their avatar, unless the one
    /// they have is the same picture: a restart does not upload it again.
    pub(super) async fn set_avatar_picture(
        &self,
        user: &MatrixUserId,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), MatrixError> {
        let absent = |e: MatrixError| if e.errcode() == Some("M_NOT_FOUND") { Ok(None) } else { Err(e) };
        let current = self.matrix.avatar_url(user).await.or_else(absent)?;
        if let Some(mxc) = &current
            && self.matrix.download(mxc).await.is_ok_and(|(have, _)| have == bytes)
        {
            return Ok(());
        }
        let mxc = self.matrix.upload(user, bytes, content_type).await?;
        self.matrix.set_avatar_url(user, &mxc).await?;
        tracing::info!(%user, %mxc, "avatar set");
        Ok(())
    }

    /// What the component answers for a Matrix user's vCard.
    pub async fn matrix_card(&self, user: &MatrixUserId) -> MatrixCard {
        let name = self.matrix.displayname(user).await.ok().flatten();
        let photo = match self.matrix.avatar_url(user).await {
            Ok(Some(mxc)) => self.matrix_photo(user, &mxc).await.ok().flatten(),
            _ => None,
        };
        MatrixCard { name, photo }
    }

    /// `user`'s (or a room's) avatar `mxc` as their vCard's photo (bytes, type): `None` when it
    /// is too large to carry. (Their presence's photo hash is computed from the same bytes.)
    pub(super) async fn matrix_photo(
        &self,
        user: &(dyn std::fmt::Display + Sync),
        mxc: &str,
    ) -> Result<Option<(Vec<u8>, String)>, MatrixError> {
        let (bytes, ty) = self.matrix.download(mxc).await.inspect_err(|e| {
            tracing::debug!(%user, error = %e, "cannot download the avatar");
        })?;
        Ok((bytes.len() <= MAX_AVATAR).then(|| (bytes, ty.unwrap_or_else(|| "image/png".to_owned()))))
    }
}

/// Unanswered vCard requests are forgotten after this long.
const PENDING_TTL: Duration = Duration::from_secs(60);
/// At most this many vCard requests in flight (more wait for a later presence).
const MAX_PENDING: usize = 256;
/// Photo hashes remembered (the least recently announced are forgotten first).
const MAX_HASHES: usize = 10_000;
/// A hash not announced again for this long is forgotten.
const HASH_TTL: Duration = Duration::from_secs(24 * 3600);

/// Avatar bookkeeping: the last photo hash per XMPP user, and vCard requests in flight. Both
/// maps are bounded, since remote presence fills them. Request ids are random (an id that can be
/// guessed could be answered by anyone) and an answer counts only from the queried JID.
#[derive(Default)]
pub(super) struct AvatarState {
    hashes: HashMap<BareJid, ([u8; 20], Instant)>,
    pending: HashMap<String, (BareJid, Instant)>,
}

impl AvatarState {
    /// `jid` announced `hash`: the id of a vCard request to send, if the hash is new and there
    /// is room for a request.
    fn request(&mut self, jid: &BareJid, hash: [u8; 20], now: Instant) -> Option<String> {
        if let Some((known, seen)) = self.hashes.get_mut(jid) {
            *seen = now;
            if *known == hash {
                return None;
            }
        }
        self.expire_requests(now);
        if self.pending.len() >= MAX_PENDING {
            // Not noted: a later presence with the hash tries again.
            return None;
        }
        if !self.hashes.contains_key(jid)
            && self.hashes.len() >= MAX_HASHES
            && let Some(oldest) = self.hashes.iter().min_by_key(|(_, (_, seen))| *seen).map(|(j, _)| j.clone())
        {
            self.hashes.remove(&oldest);
        }
        self.hashes.insert(jid.clone(), (hash, now));
        let id = crate::xmpp::connection::random_id("vcard");
        self.pending.insert(id.clone(), (jid.clone(), now));
        Some(id)
    }

    /// An answer to `id` from `from`: the JID the request was for, if it is that JID answering.
    fn answer(&mut self, id: &str, from: Option<&BareJid>) -> Option<BareJid> {
        let (jid, _) = self.pending.get(id)?;
        if from != Some(jid) {
            tracing::info!(id, from = ?from.map(ToString::to_string), queried = %jid, "vCard answer from someone else ignored");
            return None;
        }
        self.pending.remove(id).map(|(jid, _)| jid)
    }

    fn expire_requests(&mut self, now: Instant) {
        self.pending.retain(|_, (_, at)| now.saturating_duration_since(*at) < PENDING_TTL);
    }

    fn sweep(&mut self, now: Instant) {
        self.expire_requests(now);
        self.hashes.retain(|_, (_, seen)| now.saturating_duration_since(*seen) < HASH_TTL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> BareJid {
        BareJid::parse(s).unwrap()
    }

    #[test]
    fn only_the_queried_jid_answers_and_ids_are_not_guessable() {
        let mut a = AvatarState::default();
        let now = Instant::now();
        let alice = jid("alice@example.org");
        let id = a.request(&alice, [1; 20], now).unwrap();
        let other = a.request(&jid("mallory@evil.example"), [2; 20], now).unwrap();
        assert_ne!(id, other);
        assert!(id.len() > "ucb-vcard-".len() + 16, "{id}");
        // Somebody else answering alice's id (or nobody named) changes nothing, and does not
        // cancel the request.
        assert_eq!(a.answer(&id, Some(&jid("mallory@evil.example"))), None);
        assert_eq!(a.answer(&id, None), None);
        // A guessed id is unknown.
        assert_eq!(a.answer("ucb-vcard-1", Some(&alice)), None);
        // Alice's own answer counts, once.
        assert_eq!(a.answer(&id, Some(&alice)), Some(alice.clone()));
        assert_eq!(a.answer(&id, Some(&alice)), None);
        // The same hash again asks nothing; a new one asks again.
        assert_eq!(a.request(&alice, [1; 20], now), None);
        assert!(a.request(&alice, [3; 20], now).is_some());
    }

    #[test]
    fn requests_and_hashes_are_bounded() {
        let mut a = AvatarState::default();
        let now = Instant::now();
        for i in 0..(MAX_PENDING + 50) {
            let asked = a.request(&jid(&format!("u{i}@flood.example")), [9; 20], now);
            assert_eq!(asked.is_some(), i < MAX_PENDING, "request {i}");
        }
        assert_eq!(a.pending.len(), MAX_PENDING);
        // Unanswered requests expire, and make room again.
        let later = now + PENDING_TTL + Duration::from_secs(1);
        assert!(a.request(&jid("late@example.org"), [9; 20], later).is_some());
        assert_eq!(a.pending.len(), 1);
        // Hashes: at most MAX_HASHES, the least recently seen go first.
        let mut a = AvatarState::default();
        for i in 0..(MAX_HASHES + 10) {
            let t = now + Duration::from_millis(i as u64);
            a.request(&jid(&format!("h{i}@flood.example")), [7; 20], t);
            a.pending.clear();
        }
        assert_eq!(a.hashes.len(), MAX_HASHES);
        assert!(!a.hashes.contains_key(&jid("h0@flood.example")));
        assert!(a.hashes.contains_key(&jid(&format!("h{}@flood.example", MAX_HASHES + 9))));
        // And forgotten after a day without being announced.
        a.sweep(now + HASH_TTL + Duration::from_secs(60));
        assert!(a.hashes.is_empty());
    }
}
