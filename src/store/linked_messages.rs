//! The messages of linked MUCs: which Matrix event each one is, and the two ids the MUC's
//! clients name it by — the room's XEP-0359 stanza id (replies, reactions, retractions) and the
//! sender's own id (corrections, XEP-0308). A message from Matrix learns its stanza id when the
//! MUC reflects it back.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Context, Result, Store, StoreError, now_ms};
use crate::core::ids::{BareJid, MatrixUserId, RoomId};

/// One message of a linked MUC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedMessage {
    pub room: RoomId,
    pub event_id: String,
    pub muc: BareJid,
    /// Who said it in the MUC.
    pub nick: String,
    /// Who posted it on Matrix: the Matrix user, or the ghost (or bot) for an XMPP occupant.
    pub matrix_user: MatrixUserId,
    pub message_id: Option<String>,
    pub stanza_id: Option<String>,
    pub from_xmpp: bool,
}

/// The columns `from_row` reads, in its order (a macro: the queries stay literal SQL).
macro_rules! columns {
    () => {
        "room_id, event_id, muc, nick, matrix_user, message_id, stanza_id, from_xmpp"
    };
}

fn corrupt(reason: impl ToString) -> StoreError {
    StoreError::Corrupt { context: "linked_message", reason: reason.to_string() }
}

fn from_row(row: &AnyRow) -> Result<LinkedMessage> {
    let room: String = row.try_get(0).ctx("room_id")?;
    let muc: String = row.try_get(2).ctx("muc")?;
    let user: String = row.try_get(4).ctx("matrix_user")?;
    Ok(LinkedMessage {
        room: RoomId::parse(&room).map_err(corrupt)?,
        event_id: row.try_get(1).ctx("event_id")?,
        muc: BareJid::parse(&muc).map_err(corrupt)?,
        nick: row.try_get(3).ctx("nick")?,
        matrix_user: MatrixUserId::parse(&user).map_err(corrupt)?,
        message_id: row.try_get(5).ctx("message_id")?,
        stanza_id: row.try_get(6).ctx("stanza_id")?,
        from_xmpp: row.try_get::<i64, _>(7).ctx("from_xmpp")? != 0,
    })
}

impl Store {
    /// Record a message (a repeat of the same event is ignored).
    pub async fn save_linked_message(&self, m: &LinkedMessage) -> Result<()> {
        sqlx::query(concat!(
            "INSERT INTO linked_message (",
            columns!(),
            ", created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING"
        ))
        .bind(m.room.as_str())
        .bind(&m.event_id)
        .bind(m.muc.to_string())
        .bind(&m.nick)
        .bind(m.matrix_user.to_string())
        .bind(&m.message_id)
        .bind(&m.stanza_id)
        .bind(i64::from(m.from_xmpp))
        .bind(now_ms())
        .execute(&mut *self.writer().await?)
        .await
        .ctx("save linked message")?;
        Ok(())
    }

    /// The message an event of a linked MUC's room is.
    pub async fn linked_message_by_event(&self, room: &RoomId, event_id: &str) -> Result<Option<LinkedMessage>> {
        let row =
            sqlx::query(concat!("SELECT ", columns!(), " FROM linked_message WHERE room_id = $1 AND event_id = $2"))
                .bind(room.as_str())
                .bind(event_id)
                .fetch_optional(&self.pool)
                .await
                .ctx("linked message by event")?;
        row.as_ref().map(from_row).transpose()
    }

    /// The message the MUC knows by its stanza id.
    pub async fn linked_message_by_stanza(&self, muc: &BareJid, stanza_id: &str) -> Result<Option<LinkedMessage>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM linked_message WHERE muc = $1 AND stanza_id = $2 ORDER BY created_at DESC LIMIT 1"
        ))
        .bind(muc.to_string())
        .bind(stanza_id)
        .fetch_optional(&self.pool)
        .await
        .ctx("linked message by stanza id")?;
        row.as_ref().map(from_row).transpose()
    }

    /// The message `nick` sent with their own id `message_id` (what a correction names).
    pub async fn linked_message_by_own_id(
        &self,
        muc: &BareJid,
        nick: &str,
        message_id: &str,
    ) -> Result<Option<LinkedMessage>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM linked_message WHERE muc = $1 AND nick = $2 AND message_id = $3 ORDER BY created_at DESC LIMIT 1"
        ))
        .bind(muc.to_string())
        .bind(nick)
        .bind(message_id)
        .fetch_optional(&self.pool)
        .await
        .ctx("linked message by own id")?;
        row.as_ref().map(from_row).transpose()
    }

    /// The MUC reflected a message from Matrix with its stanza id; `false` if none waited for it.
    pub async fn set_linked_stanza_id(&self, muc: &BareJid, message_id: &str, stanza_id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE linked_message SET stanza_id = $1 WHERE muc = $2 AND message_id = $3 AND from_xmpp = 0 \
             AND stanza_id IS NULL",
        )
        .bind(stanza_id)
        .bind(muc.to_string())
        .bind(message_id)
        .execute(&mut *self.writer().await?)
        .await
        .ctx("set linked stanza id")?;
        Ok(done.rows_affected() > 0)
    }
}
