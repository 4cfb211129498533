//! Which Matrix event a bridged 1:1 message became, and the id the XMPP side knows it by:
//! read markers and receipts travel between the two.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::batch::{Arg, Stmt};
use super::{Context, Result, Store, StoreError, now_ms};
use crate::core::ids::{BareJid, MatrixUserId, RoomId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedMessage {
    pub room: RoomId,
    pub event_id: String,
    pub xmpp: BareJid,
    pub matrix: MatrixUserId,
    pub stanza_id: String,
    /// Written on XMPP (and bridged to Matrix), or the other way round.
    pub from_xmpp: bool,
    /// The XMPP sender asked for chat markers (XEP-0333).
    pub markable: bool,
    /// For a correction: the event of the message it corrects.
    pub edit_of: Option<String>,
}

fn map_stmt(m: &MappedMessage) -> Stmt {
    Stmt {
        sql: "INSERT INTO message_map (room_id, event_id, xmpp_jid, matrix_user, stanza_id, from_xmpp, markable, created_at, edit_of) \
              VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING"
            .into(),
        args: vec![
            Arg::Text(m.room.as_str().to_owned()),
            Arg::Text(m.event_id.clone()),
            Arg::Text(m.xmpp.to_string()),
            Arg::Text(m.matrix.to_string()),
            Arg::Text(m.stanza_id.clone()),
            Arg::Int(i64::from(m.from_xmpp)),
            Arg::Int(i64::from(m.markable)),
            Arg::Int(now_ms()),
            Arg::OptText(m.edit_of.clone()),
        ],
    }
}

fn corrupt(reason: impl ToString) -> StoreError {
    StoreError::Corrupt { context: "message_map", reason: reason.to_string() }
}

fn from_row(row: &AnyRow) -> Result<MappedMessage> {
    let room: String = row.try_get(0).ctx("room")?;
    let xmpp: String = row.try_get(2).ctx("jid")?;
    let matrix: String = row.try_get(3).ctx("mxid")?;
    Ok(MappedMessage {
        room: RoomId::parse(&room).map_err(corrupt)?,
        event_id: row.try_get(1).ctx("event")?,
        xmpp: BareJid::parse(&xmpp).map_err(corrupt)?,
        matrix: MatrixUserId::parse(&matrix).map_err(corrupt)?,
        stanza_id: row.try_get(4).ctx("stanza id")?,
        from_xmpp: row.try_get::<i64, _>(5).ctx("from_xmpp")? != 0,
        markable: row.try_get::<i64, _>(6).ctx("markable")? != 0,
        edit_of: row.try_get(7).ctx("edit_of")?,
    })
}

impl Store {
    pub async fn map_message(&self, m: &MappedMessage) -> Result<()> {
        self.batch(vec![map_stmt(m)]).await?;
        Ok(())
    }

    /// Record what a delivered action became and remove it from the outbox, in one batch (one
    /// round trip on SQLite). Repeating it after a failure is harmless.
    pub async fn complete_mapped(&self, id: i64, m: &MappedMessage) -> Result<()> {
        let done = Stmt { sql: "DELETE FROM outbox WHERE id = $1".into(), args: vec![Arg::Int(id)] };
        self.batch(vec![map_stmt(m), done]).await?;
        Ok(())
    }

    /// The message an event of a room stands for.
    pub async fn message_by_event(&self, room: &RoomId, event_id: &str) -> Result<Option<MappedMessage>> {
        let row = sqlx::query(
            "SELECT room_id, event_id, xmpp_jid, matrix_user, stanza_id, from_xmpp, markable, edit_of FROM message_map \
             WHERE room_id = $1 AND event_id = $2",
        )
        .bind(room.as_str())
        .bind(event_id)
        .fetch_optional(&self.pool)
        .await
        .ctx("message by event")?;
        row.as_ref().map(from_row).transpose()
    }

    /// The message an XMPP user knows by `stanza_id`.
    pub async fn message_by_stanza(&self, xmpp: &BareJid, stanza_id: &str) -> Result<Option<MappedMessage>> {
        let row = sqlx::query(
            "SELECT room_id, event_id, xmpp_jid, matrix_user, stanza_id, from_xmpp, markable, edit_of FROM message_map \
             WHERE xmpp_jid = $1 AND stanza_id = $2 ORDER BY created_at DESC LIMIT 1",
        )
        .bind(xmpp.to_string())
        .bind(stanza_id)
        .fetch_optional(&self.pool)
        .await
        .ctx("message by stanza")?;
        row.as_ref().map(from_row).transpose()
    }

    /// The original of a message: itself, or for a correction the message it corrects.
    pub async fn original(&self, m: MappedMessage) -> Result<MappedMessage> {
        match &m.edit_of {
            Some(event) => Ok(self.message_by_event(&m.room, event).await?.unwrap_or(m)),
            None => Ok(m),
        }
    }

    /// The original (see `original`) of the bridged message `event` of `room`, if it is one.
    pub async fn original_by_event(&self, room: &RoomId, event: &str) -> Result<Option<MappedMessage>> {
        match self.message_by_event(room, event).await? {
            Some(m) => self.original(m).await.map(Some),
            None => Ok(None),
        }
    }

    /// The newest message written on XMPP in a room (what a read receipt on a later event covers).
    pub async fn latest_from_xmpp(&self, room: &RoomId) -> Result<Option<MappedMessage>> {
        let row = sqlx::query(
            "SELECT room_id, event_id, xmpp_jid, matrix_user, stanza_id, from_xmpp, markable, edit_of FROM message_map \
             WHERE room_id = $1 AND from_xmpp = 1 AND edit_of IS NULL ORDER BY created_at DESC LIMIT 1",
        )
        .bind(room.as_str())
        .fetch_optional(&self.pool)
        .await
        .ctx("latest from xmpp")?;
        row.as_ref().map(from_row).transpose()
    }

    /// The XMPP recipient's client confirmed receiving a message from Matrix (XEP-0184);
    /// `false` if no such message is known.
    pub async fn mark_delivered(&self, xmpp: &BareJid, stanza_id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE message_map SET delivered_at = $1 WHERE xmpp_jid = $2 AND stanza_id = $3 AND from_xmpp = 0 \
             AND delivered_at IS NULL",
        )
        .bind(now_ms())
        .bind(xmpp.to_string())
        .bind(stanza_id)
        .execute(&mut *self.writer().await?)
        .await
        .ctx("mark delivered")?;
        Ok(done.rows_affected() > 0)
    }

    /// When a message from Matrix was confirmed received on XMPP, if it was.
    pub async fn delivered_at(&self, room: &RoomId, event_id: &str) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT delivered_at FROM message_map WHERE room_id = $1 AND event_id = $2")
            .bind(room.as_str())
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await
            .ctx("delivered at")?;
        Ok(row.map(|r| r.try_get::<Option<i64>, _>(0)).transpose().ctx("delivered_at")?.flatten())
    }
}
