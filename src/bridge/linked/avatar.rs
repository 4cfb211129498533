//! A linked MUC's avatar (XEP-0486; Prosody's mod_vcard_muc names the hash its own way) becomes
//! its room's `m.room.avatar`: checked when a Matrix user joins the MUC and when the MUC says
//! its configuration changed. The MUC is the authority: a Matrix change of the room's avatar is
//! not carried to it. The hash is remembered per MUC, so the same picture is not fetched again,
//! and a picture the room shows already (after a restart) is not uploaded again.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, bail};

use crate::bridge::Bridge;
use crate::core::ids::BareJid;
use crate::core::picture::check_avatar;
use crate::core::presence::PhotoHash;

/// MUCs whose avatar hash is kept (linked MUCs are few: their creation is budgeted).
const MAX_MUCS: usize = 10_000;

/// Avatar checks per linked MUC: one at a time (each Matrix user in the MUC gets the same
/// notice), and the hash last carried.
#[derive(Default)]
pub(super) struct AvatarChecks {
    mucs: HashMap<BareJid, Check>,
}

#[derive(Default)]
struct Check {
    running: bool,
    /// Asked for again while running: one more check when this one ends.
    again: bool,
    /// The hash last carried to the room (`Some(None)`: the MUC showed none).
    hash: Option<Option<[u8; 20]>>,
}

impl AvatarChecks {
    /// Start a check of `muc`'s avatar, unless one runs (it then runs once more when done).
    fn begin(&mut self, muc: &BareJid) -> bool {
        if !self.mucs.contains_key(muc) && self.mucs.len() >= MAX_MUCS {
            return false;
        }
        let check = self.mucs.entry(muc.clone()).or_default();
        if check.running {
            check.again = true;
            return false;
        }
        check.running = true;
        true
    }

    /// A check ended: whether to run another (asked for while it ran).
    fn end(&mut self, muc: &BareJid) -> bool {
        let Some(check) = self.mucs.get_mut(muc) else { return false };
        if std::mem::take(&mut check.again) {
            return true;
        }
        check.running = false;
        false
    }

    fn hash(&self, muc: &BareJid) -> Option<Option<[u8; 20]>> {
        self.mucs.get(muc).and_then(|c| c.hash)
    }

    fn carried(&mut self, muc: &BareJid, hash: Option<[u8; 20]>) {
        if let Some(check) = self.mucs.get_mut(muc) {
            check.hash = Some(hash);
        }
    }
}

impl Bridge {
    /// Check `muc`'s avatar in the background, and carry it to its room if it changed.
    pub(in crate::bridge) fn linked_avatar_check(self: &Arc<Self>, muc: BareJid) {
        if !self.linked.avatars.lock().map(|mut a| a.begin(&muc)).unwrap_or(false) {
            return;
        }
        let bridge = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = bridge.linked_avatar_once(&muc).await {
                    tracing::info!(%muc, error = format!("{e:#}"), "cannot carry a MUC's avatar");
                }
                if !bridge.linked.avatars.lock().map(|mut a| a.end(&muc)).unwrap_or(false) {
                    break;
                }
            }
        });
    }

    async fn linked_avatar_once(&self, muc: &BareJid) -> anyhow::Result<()> {
        let Some(room) = self.linked_room_of(muc).await? else { return Ok(()) };
        let hash = self.xmpp.muc_avatar_hash(muc).await.context("disco#info")?;
        let known = self.linked.avatars.lock().ok().and_then(|a| a.hash(muc));
        if known == Some(hash) {
            return Ok(());
        }
        match hash {
            // Removed only where the bridge had set it: an avatar a Matrix user gave stays.
            None if matches!(known, Some(Some(_))) => self.matrix.set_room_avatar(&room, None).await?,
            None => {}
            Some(hash) => {
                let bytes = self.xmpp.muc_photo(muc).await.context("vCard")?.context("the vCard has no photo")?;
                let kind = check_avatar(&bytes)?;
                // The photo must be the one the hash announced (XEP-0486 §3.3).
                if crate::xmpp::outbound::hash_photo(&bytes) != PhotoHash::Sha1(hash) {
                    bail!("the vCard's photo is not the one its hash announced");
                }
                let current = self.matrix.room_avatar(&room).await?;
                let shown = match current {
                    Some(mxc) => self.matrix.download(&mxc).await.is_ok_and(|(have, _)| have == bytes),
                    None => false,
                };
                if !shown {
                    let mxc = self.matrix.upload(&self.map.bot(), bytes, kind).await?;
                    self.matrix.set_room_avatar(&room, Some(&mxc)).await?;
                    tracing::info!(%muc, %room, %mxc, "the MUC's avatar is its room's avatar");
                }
            }
        }
        if let Ok(mut a) = self.linked.avatars.lock() {
            a.carried(muc, hash);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_check_at_a_time_and_one_more_when_asked_meanwhile() {
        let mut a = AvatarChecks::default();
        let muc = BareJid::parse("room@conference.x.example").unwrap();
        assert!(a.begin(&muc));
        // Every Matrix user in the MUC gets the same notice: they wait for the running check.
        assert!(!a.begin(&muc));
        assert!(!a.begin(&muc));
        assert!(a.end(&muc), "asked for meanwhile: once more");
        assert!(!a.end(&muc));
        assert!(a.begin(&muc));
        a.carried(&muc, Some([1; 20]));
        assert!(!a.end(&muc));
        assert_eq!(a.hash(&muc), Some(Some([1; 20])));
        // Bounded: a MUC beyond the cap is not checked.
        let mut a = AvatarChecks::default();
        for i in 0..MAX_MUCS {
            a.mucs.insert(BareJid::parse(&format!("r{i}@c.x")).unwrap(), Check::default());
        }
        assert!(!a.begin(&muc));
        assert!(a.begin(&BareJid::parse("r1@c.x").unwrap()));
    }
}
