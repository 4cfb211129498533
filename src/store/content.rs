//! Message content beyond text: each person's reactions to a message (with the Matrix event of
//! each, to redact it when the reaction is taken back), and the links under which the bridge
//! serves Matrix files to XMPP clients.

use sqlx::Row;

use super::{Context, Result, Store, StoreTx, now_ms};
use crate::core::ids::RoomId;

/// One reaction of one person to one message (the message by its Matrix event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    pub room: RoomId,
    pub target_event: String,
    /// The Matrix user who reacted (a ghost for an XMPP user).
    pub reactor: String,
    pub key: String,
    /// The `m.reaction` event, once it exists.
    pub event_id: Option<String>,
}

/// A Matrix file served to XMPP clients under `/media/<token>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLink {
    pub token: String,
    pub mxc: String,
    pub name: String,
    pub mimetype: Option<String>,
    pub size: Option<u64>,
    pub room: RoomId,
    pub event_id: String,
    /// When the link was made (ms since the Unix epoch): it expires `media.link_lifetime_days`
    /// later.
    pub created_at: i64,
}

async fn save_reaction<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(exec: E, r: &Reaction) -> Result<()> {
    sqlx::query(
        "INSERT INTO reaction (room_id, target_event, reactor, reaction_key, event_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (room_id, target_event, reactor, reaction_key) \
         DO UPDATE SET event_id = $5",
    )
    .bind(r.room.as_str())
    .bind(&r.target_event)
    .bind(&r.reactor)
    .bind(&r.key)
    .bind(&r.event_id)
    .bind(now_ms())
    .execute(exec)
    .await
    .ctx("save reaction")?;
    Ok(())
}

async fn reactions_of<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    room: &RoomId,
    target_event: &str,
    reactor: &str,
) -> Result<Vec<Reaction>> {
    let rows = sqlx::query(
        "SELECT reaction_key, event_id FROM reaction WHERE room_id = $1 AND target_event = $2 AND reactor = $3 \
         ORDER BY created_at, reaction_key",
    )
    .bind(room.as_str())
    .bind(target_event)
    .bind(reactor)
    .fetch_all(exec)
    .await
    .ctx("reactions of")?;
    rows.iter()
        .map(|row| {
            Ok(Reaction {
                room: room.clone(),
                target_event: target_event.to_owned(),
                reactor: reactor.to_owned(),
                key: row.try_get(0).ctx("reaction_key")?,
                event_id: row.try_get(1).ctx("event_id")?,
            })
        })
        .collect()
}

async fn remove_reaction<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(exec: E, r: &Reaction) -> Result<()> {
    sqlx::query("DELETE FROM reaction WHERE room_id = $1 AND target_event = $2 AND reactor = $3 AND reaction_key = $4")
        .bind(r.room.as_str())
        .bind(&r.target_event)
        .bind(&r.reactor)
        .bind(&r.key)
        .execute(exec)
        .await
        .ctx("remove reaction")?;
    Ok(())
}

impl StoreTx {
    pub async fn save_reaction(&mut self, r: &Reaction) -> Result<()> {
        save_reaction(&mut *self.tx, r).await
    }

    /// One person's reactions to a message, oldest first.
    pub async fn reactions_of(&mut self, room: &RoomId, target_event: &str, reactor: &str) -> Result<Vec<Reaction>> {
        reactions_of(&mut *self.tx, room, target_event, reactor).await
    }

    pub async fn remove_reaction(&mut self, r: &Reaction) -> Result<()> {
        remove_reaction(&mut *self.tx, r).await
    }

    /// The reaction an `m.reaction` event is, if it is one the bridge knows.
    pub async fn reaction_by_event(&mut self, room: &RoomId, event_id: &str) -> Result<Option<Reaction>> {
        let row = sqlx::query(
            "SELECT target_event, reactor, reaction_key FROM reaction WHERE room_id = $1 AND event_id = $2",
        )
        .bind(room.as_str())
        .bind(event_id)
        .fetch_optional(&mut *self.tx)
        .await
        .ctx("reaction by event")?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Reaction {
            room: room.clone(),
            target_event: row.try_get(0).ctx("target_event")?,
            reactor: row.try_get(1).ctx("reactor")?,
            key: row.try_get(2).ctx("reaction_key")?,
            event_id: Some(event_id.to_owned()),
        }))
    }

    pub async fn save_media(&mut self, m: &MediaLink) -> Result<()> {
        sqlx::query(
            "INSERT INTO media_link (token, mxc, name, mimetype, size, room_id, event_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&m.token)
        .bind(&m.mxc)
        .bind(&m.name)
        .bind(&m.mimetype)
        .bind(m.size.and_then(|s| i64::try_from(s).ok()))
        .bind(m.room.as_str())
        .bind(&m.event_id)
        .bind(m.created_at)
        .execute(&mut *self.tx)
        .await
        .ctx("save media link")?;
        Ok(())
    }

    /// Forget the links of a redacted file event (the file is no longer served).
    pub async fn forget_media(&mut self, room: &RoomId, event_id: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM media_link WHERE room_id = $1 AND event_id = $2")
            .bind(room.as_str())
            .bind(event_id)
            .execute(&mut *self.tx)
            .await
            .ctx("forget media")?;
        Ok(done.rows_affected())
    }
}

impl Store {
    pub async fn save_reaction(&self, r: &Reaction) -> Result<()> {
        save_reaction(&self.pool, r).await
    }

    pub async fn reactions_of(&self, room: &RoomId, target_event: &str, reactor: &str) -> Result<Vec<Reaction>> {
        reactions_of(&self.pool, room, target_event, reactor).await
    }

    pub async fn remove_reaction(&self, r: &Reaction) -> Result<()> {
        remove_reaction(&self.pool, r).await
    }

    pub async fn media_by_token(&self, token: &str) -> Result<Option<MediaLink>> {
        let row = sqlx::query(
            "SELECT token, mxc, name, mimetype, size, room_id, event_id, created_at FROM media_link WHERE token = $1",
        )
        .bind(token)
        .fetch_optional(&self.pool)
        .await
        .ctx("media by token")?;
        let Some(row) = row else { return Ok(None) };
        let room: String = row.try_get(5).ctx("room_id")?;
        Ok(Some(MediaLink {
            token: row.try_get(0).ctx("token")?,
            mxc: row.try_get(1).ctx("mxc")?,
            name: row.try_get(2).ctx("name")?,
            mimetype: row.try_get(3).ctx("mimetype")?,
            size: row.try_get::<Option<i64>, _>(4).ctx("size")?.and_then(|s| u64::try_from(s).ok()),
            room: RoomId::parse(&room)
                .map_err(|e| super::StoreError::Corrupt { context: "media_link", reason: e.to_string() })?,
            event_id: row.try_get(6).ctx("event_id")?,
            created_at: row.try_get(7).ctx("created_at")?,
        }))
    }
}
