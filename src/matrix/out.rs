//! The client-server calls the bridge makes, as a port: [`MatrixOut`], implemented by
//! [`MatrixClient`](crate::matrix::client::MatrixClient) (in `client/out.rs`). The bridge holds it
//! as `Arc<dyn MatrixOut>`, so that its code can run against an in-memory fake.

use crate::core::action::Text;
use crate::core::adopt::RoomSetup;
use crate::core::bridge_info::BridgeInfo;
use crate::core::ids::{MatrixUserId, RoomId};
use crate::core::inbound::MatrixIn;
use crate::core::presence::{MatrixState, Presence};
use crate::matrix::client::{MatrixError, Relations, RoomOrigin, UploadedFile};

/// What the bridge asks of the homeserver. `txn_id` makes a send idempotent; `user` is whom
/// the call is made as (a ghost, or the bot). Texts come with their HTML (`formatted_body`)
/// decided by the bridge.
#[async_trait::async_trait]
pub trait MatrixOut: Send + Sync {
    // Sending.
    async fn send_text(
        &self,
        room: &RoomId,
        user: &MatrixUserId,
        text: &Text,
        html: Option<&str>,
        txn_id: &str,
    ) -> Result<String, MatrixError>;
    async fn send_message(
        &self,
        room: &RoomId,
        user: &MatrixUserId,
        text: &Text,
        html: Option<&str>,
        relations: Relations<'_>,
        txn_id: &str,
    ) -> Result<String, MatrixError>;
    async fn send_file(
        &self,
        room: &RoomId,
        user: &MatrixUserId,
        file: &UploadedFile,
        relations: Relations<'_>,
        txn_id: &str,
    ) -> Result<String, MatrixError>;
    async fn send_reaction(
        &self,
        room: &RoomId,
        user: &MatrixUserId,
        target: &str,
        key: &str,
        txn_id: &str,
    ) -> Result<String, MatrixError>;
    async fn redact(&self, room: &RoomId, user: &MatrixUserId, event_id: &str, txn_id: &str)
    -> Result<(), MatrixError>;
    async fn send_notice(
        &self,
        room: &RoomId,
        user: &MatrixUserId,
        body: &str,
        html: Option<&str>,
        reply_to: Option<&str>,
        txn_id: &str,
    ) -> Result<(), MatrixError>;

    // Users, presence, media.
    async fn register_ghost(&self, user: &MatrixUserId) -> Result<(), MatrixError>;
    async fn set_presence(
        &self,
        user: &MatrixUserId,
        state: MatrixState,
        status_msg: Option<String>,
    ) -> Result<(), MatrixError>;
    async fn presence(&self, user: &MatrixUserId, viewer: &MatrixUserId) -> Result<Presence, MatrixError>;
    async fn set_typing(&self, room: &RoomId, user: &MatrixUserId, typing: bool) -> Result<(), MatrixError>;
    async fn send_read_receipt(&self, room: &RoomId, user: &MatrixUserId, event_id: &str) -> Result<(), MatrixError>;
    async fn displayname(&self, user: &MatrixUserId) -> Result<Option<String>, MatrixError>;
    /// The homeserver's user directory as the bot sees it: at most `limit` users matching
    /// `term`, with their display names.
    async fn search_users(&self, term: &str, limit: u32) -> Result<Vec<(MatrixUserId, Option<String>)>, MatrixError>;
    async fn set_displayname(&self, user: &MatrixUserId, name: &str) -> Result<(), MatrixError>;
    async fn upload(&self, user: &MatrixUserId, bytes: Vec<u8>, content_type: &str) -> Result<String, MatrixError>;
    async fn set_avatar_url(&self, user: &MatrixUserId, mxc: &str) -> Result<(), MatrixError>;
    async fn avatar_url(&self, user: &MatrixUserId) -> Result<Option<String>, MatrixError>;
    async fn download(&self, mxc: &str) -> Result<(Vec<u8>, Option<String>), MatrixError>;

    // Rooms.
    async fn create_direct_room(&self, creator: &MatrixUserId, peer: &MatrixUserId) -> Result<RoomId, MatrixError>;
    async fn create_group_room(
        &self,
        name: &str,
        alias: &str,
        open: bool,
        invite: &[MatrixUserId],
        moderators: &[MatrixUserId],
        marker: &str,
    ) -> Result<RoomId, MatrixError>;
    async fn create_linked_room(&self, name: &str, alias_localpart: &str) -> Result<RoomId, MatrixError>;
    async fn invite(&self, room: &RoomId, by: &MatrixUserId, user: &MatrixUserId) -> Result<(), MatrixError>;
    async fn join(&self, room: &RoomId, user: &MatrixUserId) -> Result<(), MatrixError>;
    async fn leave(&self, room: &RoomId, user: &MatrixUserId) -> Result<(), MatrixError>;
    /// Remove `user` (or withdraw their invitation) as `by` (`None`: the bot).
    async fn kick(
        &self,
        room: &RoomId,
        by: Option<&MatrixUserId>,
        user: &MatrixUserId,
        reason: &str,
    ) -> Result<(), MatrixError>;
    async fn set_power_level(&self, room: &RoomId, user: &MatrixUserId, level: i64) -> Result<(), MatrixError>;
    async fn set_topic(&self, room: &RoomId, topic: &str) -> Result<(), MatrixError>;
    async fn set_name(&self, room: &RoomId, name: &str) -> Result<(), MatrixError>;
    /// Set (`Some` mxc URL) or remove the room's avatar, as the bot.
    async fn set_room_avatar(&self, room: &RoomId, mxc: Option<&str>) -> Result<(), MatrixError>;
    /// The room's avatar (`mxc://` URL), read as the bot; `None` when it has none.
    async fn room_avatar(&self, room: &RoomId) -> Result<Option<String>, MatrixError>;
    async fn set_room_displayname(&self, room: &RoomId, user: &MatrixUserId, name: &str) -> Result<(), MatrixError>;
    async fn room_origin(&self, room: &RoomId) -> Result<Option<RoomOrigin>, MatrixError>;
    async fn resolve_alias(&self, alias: &str) -> Result<Option<RoomId>, MatrixError>;
    async fn joined_members(&self, room: &RoomId) -> Result<Vec<(MatrixUserId, Option<String>)>, MatrixError>;
    /// A room's power levels, alias, name, topic and join rule, read as the bot (`None`: it
    /// cannot read them).
    async fn room_setup(&self, room: &RoomId) -> Result<Option<RoomSetup>, MatrixError>;
    async fn room_event(&self, room: &RoomId, event_id: &str) -> Result<Option<MatrixIn>, MatrixError>;
    async fn room_event_as(
        &self,
        room: &RoomId,
        event_id: &str,
        user: Option<&MatrixUserId>,
    ) -> Result<Option<MatrixIn>, MatrixError>;

    /// Describe a bridged room for clients (MSC2346 `m.bridge` and `uk.half-shot.bridge`
    /// state events under `info`'s state key for `bridge_id`), as the bot.
    async fn set_bridge_info(&self, room: &RoomId, bridge_id: &str, info: &BridgeInfo) -> Result<(), MatrixError>;
    /// Does the room hold exactly these bridge-info events (both types)?
    async fn has_bridge_info(&self, room: &RoomId, bridge_id: &str, info: &BridgeInfo) -> Result<bool, MatrixError>;

    // The appservice itself.
    async fn ping_homeserver(&self, transaction_id: &str) -> Result<(), MatrixError>;
    /// Whether the homeserver answers a cheap request now (the link watch and `/health`).
    async fn reachable(&self) -> Result<(), MatrixError>;
}
