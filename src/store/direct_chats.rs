//! Direct chats: the Matrix room in which an XMPP user's ghost and a Matrix user talk.
//! A pair may have several rooms (the Matrix user may start a new DM); the most recently
//! active one receives messages from XMPP, and messages from any of them reach XMPP. The table
//! keeps its first name, `dm_portal` (migrations are append-only).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Context, Result, Store, StoreError, StoreTx, now_ms};
use crate::core::ids::{BareJid, MatrixUserId, RoomId};

/// Where the Matrix user stands in a DM room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerMembership {
    Invited,
    Joined,
    Left,
}

impl PeerMembership {
    fn as_str(self) -> &'static str {
        match self {
            Self::Invited => "invite",
            Self::Joined => "join",
            Self::Left => "leave",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "invite" => Self::Invited,
            "join" => Self::Joined,
            "leave" => Self::Left,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectChat {
    pub room: RoomId,
    pub xmpp: BareJid,
    pub matrix: MatrixUserId,
    pub peer: PeerMembership,
}

fn corrupt(reason: impl ToString) -> StoreError {
    StoreError::Corrupt { context: "dm_portal", reason: reason.to_string() }
}

fn chat_from_row(row: &AnyRow) -> Result<DirectChat> {
    let room: String = row.try_get(0).ctx("room")?;
    let xmpp: String = row.try_get(1).ctx("jid")?;
    let matrix: String = row.try_get(2).ctx("mxid")?;
    let peer: String = row.try_get(3).ctx("membership")?;
    Ok(DirectChat {
        room: RoomId::parse(&room).map_err(corrupt)?,
        xmpp: BareJid::parse(&xmpp).map_err(corrupt)?,
        matrix: MatrixUserId::parse(&matrix).map_err(corrupt)?,
        peer: PeerMembership::parse(&peer).ok_or_else(|| corrupt(peer))?,
    })
}

const DM_BY_ROOM: &str = "SELECT room_id, xmpp_jid, matrix_user, peer_membership FROM dm_portal WHERE room_id = $1";

impl StoreTx {
    /// Record (or refresh) a DM room and make it the pair's current one.
    pub async fn save_dm(&mut self, chat: &DirectChat) -> Result<()> {
        sqlx::query(
            "INSERT INTO dm_portal (room_id, xmpp_jid, matrix_user, peer_membership, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (room_id) DO UPDATE SET xmpp_jid = $2, matrix_user = $3, peer_membership = $4, updated_at = $5",
        )
        .bind(chat.room.as_str())
        .bind(chat.xmpp.to_string())
        .bind(chat.matrix.to_string())
        .bind(chat.peer.as_str())
        .bind(now_ms())
        .execute(&mut *self.tx)
        .await
        .ctx("save dm")?;
        Ok(())
    }

    /// The Matrix user's membership changed in a DM room; `false` if the room is no DM.
    pub async fn set_peer_membership(&mut self, room: &RoomId, user: &MatrixUserId, m: PeerMembership) -> Result<bool> {
        let done = sqlx::query("UPDATE dm_portal SET peer_membership = $1 WHERE room_id = $2 AND matrix_user = $3")
            .bind(m.as_str())
            .bind(room.as_str())
            .bind(user.to_string())
            .execute(&mut *self.tx)
            .await
            .ctx("set membership")?;
        Ok(done.rows_affected() > 0)
    }

    /// The direct chat of a room, inside this transaction.
    pub async fn dm_by_room(&mut self, room: &RoomId) -> Result<Option<DirectChat>> {
        let row = sqlx::query(DM_BY_ROOM).bind(room.as_str()).fetch_optional(&mut *self.tx).await.ctx("dm by room")?;
        row.as_ref().map(chat_from_row).transpose()
    }
}

impl Store {
    /// The room the pair currently talks in.
    pub async fn current_dm(&self, xmpp: &BareJid, matrix: &MatrixUserId) -> Result<Option<DirectChat>> {
        let row = sqlx::query(
            "SELECT room_id, xmpp_jid, matrix_user, peer_membership FROM dm_portal \
             WHERE xmpp_jid = $1 AND matrix_user = $2 ORDER BY updated_at DESC, room_id LIMIT 1",
        )
        .bind(xmpp.to_string())
        .bind(matrix.to_string())
        .fetch_optional(&self.pool)
        .await
        .ctx("current dm")?;
        row.as_ref().map(chat_from_row).transpose()
    }

    /// The direct chat of a room.
    pub async fn dm_by_room(&self, room: &RoomId) -> Result<Option<DirectChat>> {
        let row = sqlx::query(DM_BY_ROOM).bind(room.as_str()).fetch_optional(&self.pool).await.ctx("dm by room")?;
        row.as_ref().map(chat_from_row).transpose()
    }

    pub async fn save_dm(&self, chat: &DirectChat) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.save_dm(chat).await?;
        tx.commit().await
    }

    /// Forget a room (the bridge can no longer post there).
    pub async fn forget_dm(&self, room: &RoomId) -> Result<()> {
        sqlx::query("DELETE FROM dm_portal WHERE room_id = $1")
            .bind(room.as_str())
            .execute(&mut *self.writer().await?)
            .await
            .ctx("forget dm")?;
        Ok(())
    }
}
