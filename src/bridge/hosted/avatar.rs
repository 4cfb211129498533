//! A hosted room's avatar both ways (XEP-0486, MUC avatars). Its `m.room.avatar` is the photo of
//! the vCard the MUC answers with, and its hash is in the room's disco#info; a change tells the
//! MUC's clients (status 104) so that they ask again. A moderator's vCard set with a photo
//! (checked: size, image type by its bytes) is uploaded and becomes the room's `m.room.avatar`.

use std::sync::Arc;

use crate::bridge::Bridge;
use crate::core::action::{Action, RoomOp};
use crate::core::ids::{BareJid, RoomId};
use crate::core::outbox::DeliveryError;
use crate::core::picture::check_avatar;
use crate::core::presence::PhotoHash;
use crate::core::refusal::Refusal;
use crate::xmpp::out::Outgoing;

/// A vCard: display name and photo (bytes, type).
type Card = (Option<String>, Option<(Vec<u8>, String)>);

impl Bridge {
    /// The room's vCard: its name and avatar. Anyone may ask, as anyone may ask its disco#info.
    pub async fn muc_avatar(&self, room_local: &str) -> Result<Card, Refusal> {
        let r = self.muc_room(room_local).await?;
        let name = r.name.clone().or(r.alias.clone());
        let unreadable = |e: crate::matrix::client::MatrixError| {
            tracing::warn!(room = %r.room, error = %e, "cannot read the room's avatar");
            Refusal::internal("The room's avatar cannot be read now; please try again later.")
        };
        let Some(mxc) = self.matrix.room_avatar(&r.room).await.map_err(unreadable)? else {
            return Ok((name, None));
        };
        Ok((name, self.matrix_photo(&r.room, &mxc).await.map_err(unreadable)?))
    }

    /// The hash of the room's avatar for its disco#info (`None`: none, or not known now). The
    /// avatar is downloaded only when its URL changed.
    pub(in crate::bridge) async fn room_avatar_hash(&self, room: &RoomId) -> Option<[u8; 20]> {
        match self.cached_photo_hash(&self.room_photos, room, self.matrix.room_avatar(room)).await {
            PhotoHash::Sha1(hash) => Some(hash),
            PhotoHash::None | PhotoHash::Unknown => None,
        }
    }

    /// An `m.room.avatar` event showed `url`: whether the MUC's clients are to be told (it is
    /// not the avatar whose hash they were last shown, or none was shown since the start).
    pub(in crate::bridge) fn room_avatar_seen(&self, room: &RoomId, url: Option<String>) -> bool {
        let url = url.filter(|u| !u.is_empty());
        self.room_photos.lock().map(|mut p| p.known(room).is_none() || p.stale(room, url.as_deref())).unwrap_or(true)
    }

    /// A moderator set the room's vCard: its photo becomes the room's avatar (`None`: removed).
    pub async fn muc_set_avatar(
        self: &Arc<Self>,
        room_local: &str,
        bare: &BareJid,
        photo: Option<Vec<u8>>,
    ) -> Result<(), Refusal> {
        let r = self.muc_room(room_local).await?;
        self.require_moderator(&r, bare, "Only moderators can change the room's avatar.").await?;
        let url = match photo {
            None => None,
            Some(bytes) => {
                let kind = check_avatar(&bytes).map_err(|e| Refusal::policy(format!("Not taken: {e}.")))?;
                let mxc = self.matrix.upload(&self.map.bot(), bytes, kind).await.map_err(|e| {
                    tracing::warn!(room = %r.room, error = %e, "cannot upload a room avatar");
                    Refusal::internal("The picture could not be stored; please try again later.")
                })?;
                Some(mxc)
            }
        };
        tracing::info!(room = %r.room, %bare, removed = url.is_none(), "room avatar set from XMPP");
        self.queue(vec![Action::MatrixRoomAct { room: r.room.clone(), op: RoomOp::SetAvatar { url } }]).await
    }

    /// Tell every client in the room's MUC that its configuration (its avatar) changed.
    pub(in crate::bridge) async fn send_room_changed(&self, room: &RoomId) -> Result<(), DeliveryError> {
        let r = self.room_for_delivery(room).await?;
        let muc = self.muc_of(&r);
        for (to, _) in self.store.occupants(room).await? {
            self.xmpp.deliver(Outgoing::RoomChanged { room: muc.clone(), to }).await?;
        }
        Ok(())
    }
}
