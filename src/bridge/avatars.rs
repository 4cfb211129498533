//! Avatars between the networks. An XMPP user's avatar (vCard photo, announced by its hash in
//! presence, XEP-0153) becomes their ghost's Matrix avatar; a Matrix user's avatar is the photo
//! of the vCard the component answers for their address (XEP-0054).

use std::sync::Arc;

use crate::bridge::Bridge;
use crate::core::ids::{BareJid, MatrixUserId};
use crate::matrix::client::MatrixError;

/// Largest avatar carried either way (bytes).
const MAX_AVATAR: usize = 1024 * 1024;

/// A Matrix user's vCard: display name and photo (bytes, type).
pub struct MatrixCard {
    pub name: Option<String>,
    pub photo: Option<(Vec<u8>, String)>,
}

impl Bridge {
    /// An XMPP user announced a photo hash: fetch their vCard if the hash is new.
    pub async fn xmpp_photo_hash(&self, jid: &BareJid, hash: [u8; 20]) {
        let new = self.avatars.lock().map(|mut a| a.hashes.insert(jid.clone(), hash) != Some(hash)).unwrap_or(false);
        if !new {
            return;
        }
        let id = match self.avatars.lock() {
            Ok(mut a) => {
                a.seq += 1;
                let id = format!("ucb-vcard-{}", a.seq);
                a.pending.insert(id.clone(), jid.clone());
                id
            }
            Err(_) => return,
        };
        if let Ok(stanza) = crate::xmpp::outbound::vcard_query(&self.map.component, jid, &id) {
            self.xmpp.send_reply(stanza).await;
        }
    }

    /// Is this iq id a vCard request of ours? Then the photo (if any) becomes the ghost's avatar.
    pub async fn xmpp_vcard_result(self: &Arc<Self>, id: &str, photo: Option<(Vec<u8>, String)>) -> bool {
        let Some(jid) = self.avatars.lock().ok().and_then(|mut a| a.pending.remove(id)) else { return false };
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

    /// What the component answers for a Matrix user's vCard.
    pub async fn matrix_card(&self, user: &MatrixUserId) -> MatrixCard {
        let name = self.matrix.displayname(user).await.ok().flatten();
        let photo = match self.matrix.avatar_url(user).await {
            Ok(Some(mxc)) => match self.matrix.download(&mxc).await {
                Ok((bytes, ty)) if bytes.len() <= MAX_AVATAR => {
                    Some((bytes, ty.unwrap_or_else(|| "image/png".to_owned())))
                }
                Ok(_) => None,
                Err(e) => {
                    tracing::debug!(%user, error = %e, "cannot download the avatar");
                    None
                }
            },
            _ => None,
        };
        MatrixCard { name, photo }
    }
}

/// Avatar bookkeeping: the last photo hash per XMPP user, and vCard requests in flight.
#[derive(Default)]
pub(super) struct AvatarState {
    hashes: std::collections::HashMap<BareJid, [u8; 20]>,
    pending: std::collections::HashMap<String, BareJid>,
    seq: u64,
}
