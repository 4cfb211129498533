//! Linked MUCs: a Matrix room standing for a MUC on an XMPP server, and the Matrix users who
//! are occupants of that MUC through the bridge (with the nick they have there). The tables keep
//! their first names, `xmpp_room` and `xmpp_room_occupant` (migrations are append-only).

use sqlx::Row;

use super::{Context, Result, Store, StoreError, now_ms};
use crate::core::ids::{BareJid, MatrixUserId, RoomId};

fn corrupt(reason: impl ToString) -> StoreError {
    StoreError::Corrupt { context: "xmpp_room", reason: reason.to_string() }
}

impl Store {
    pub async fn save_linked_muc(&self, room: &RoomId, muc: &BareJid) -> Result<()> {
        sqlx::query(
            "INSERT INTO xmpp_room (room_id, muc_jid, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (room_id) DO UPDATE SET muc_jid = $2",
        )
        .bind(room.as_str())
        .bind(muc.to_string())
        .bind(now_ms())
        .execute(&mut *self.writer().await?)
        .await
        .ctx("save xmpp room")?;
        Ok(())
    }

    /// Every linked MUC: (room, MUC).
    /// When a room was linked to its MUC (ms): no message in it is older on Matrix.
    pub async fn linked_since(&self, room: &RoomId) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT created_at FROM xmpp_room WHERE room_id = $1")
            .bind(room.as_str())
            .fetch_optional(&self.pool)
            .await
            .ctx("linked since")?;
        row.map(|r| r.try_get::<i64, _>(0).ctx("created_at")).transpose()
    }

    pub async fn linked_mucs(&self) -> Result<Vec<(RoomId, BareJid)>> {
        let rows =
            sqlx::query("SELECT room_id, muc_jid FROM xmpp_room").fetch_all(&self.pool).await.ctx("xmpp rooms")?;
        rows.iter()
            .map(|r| {
                let room: String = r.try_get(0).ctx("room_id")?;
                let muc: String = r.try_get(1).ctx("muc_jid")?;
                Ok((RoomId::parse(&room).map_err(corrupt)?, BareJid::parse(&muc).map_err(corrupt)?))
            })
            .collect()
    }

    /// Forget a linked MUC's room and its Matrix occupants (`rooms unlink`); `false` if it was none.
    pub async fn delete_linked_muc(&self, room: &RoomId) -> Result<bool> {
        let mut tx = self.pool.begin().await.ctx("begin")?;
        sqlx::query("DELETE FROM xmpp_room_occupant WHERE room_id = $1")
            .bind(room.as_str())
            .execute(&mut *tx)
            .await
            .ctx("delete xmpp occupants")?;
        let done = sqlx::query("DELETE FROM xmpp_room WHERE room_id = $1")
            .bind(room.as_str())
            .execute(&mut *tx)
            .await
            .ctx("delete xmpp room")?;
        tx.commit().await.ctx("commit")?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn save_xmpp_occupant(&self, room: &RoomId, user: &MatrixUserId, nick: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO xmpp_room_occupant (room_id, matrix_user, nick, joined_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (room_id, matrix_user) DO UPDATE SET nick = $3",
        )
        .bind(room.as_str())
        .bind(user.to_string())
        .bind(nick)
        .bind(now_ms())
        .execute(&mut *self.writer().await?)
        .await
        .ctx("save xmpp occupant")?;
        Ok(())
    }

    pub async fn remove_xmpp_occupant(&self, room: &RoomId, user: &MatrixUserId) -> Result<Option<String>> {
        let row = sqlx::query("DELETE FROM xmpp_room_occupant WHERE room_id = $1 AND matrix_user = $2 RETURNING nick")
            .bind(room.as_str())
            .bind(user.to_string())
            .fetch_optional(&mut *self.writer().await?)
            .await
            .ctx("remove xmpp occupant")?;
        row.map(|r| r.try_get::<String, _>(0).ctx("nick")).transpose()
    }

    /// The Matrix occupants of a linked MUC's room: (user, nick), oldest first.
    pub async fn xmpp_occupants(&self, room: &RoomId) -> Result<Vec<(MatrixUserId, String)>> {
        let rows = sqlx::query(
            "SELECT matrix_user, nick FROM xmpp_room_occupant WHERE room_id = $1 ORDER BY joined_at, matrix_user",
        )
        .bind(room.as_str())
        .fetch_all(&self.pool)
        .await
        .ctx("xmpp occupants")?;
        rows.iter()
            .map(|r| {
                let user: String = r.try_get(0).ctx("matrix_user")?;
                Ok((MatrixUserId::parse(&user).map_err(corrupt)?, r.try_get(1).ctx("nick")?))
            })
            .collect()
    }
}
