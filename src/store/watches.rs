//! Status-change notifications (watches), and each Matrix user's direct chat with the bot.

use sqlx::Row;

use super::{Context, Result, Store, StoreTx, now_ms};
use crate::core::ids::{MatrixUserId, RoomId};
use crate::core::watch::Party;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    pub watcher: Party,
    pub target: Party,
    pub on_available: bool,
    pub on_offline: bool,
    /// "A call to pick up": a call rings at the target while they are not available.
    pub on_pickup: bool,
}

fn watches_from(rows: Vec<sqlx::any::AnyRow>) -> Result<Vec<Watch>> {
    let mut out = Vec::new();
    for row in rows {
        let watcher: String = row.try_get(0).ctx("watcher")?;
        let target: String = row.try_get(1).ctx("target")?;
        // A row whose parties no longer parse is skipped rather than failing every lookup.
        if let (Some(watcher), Some(target)) = (Party::from_key(&watcher), Party::from_key(&target)) {
            out.push(Watch {
                watcher,
                target,
                on_available: row.try_get::<i64, _>(2).ctx("on_available")? != 0,
                on_offline: row.try_get::<i64, _>(3).ctx("on_offline")? != 0,
                on_pickup: row.try_get::<i64, _>(4).ctx("on_pickup")? != 0,
            });
        }
    }
    Ok(out)
}

impl StoreTx {
    pub async fn add_watch(&mut self, w: &Watch) -> Result<()> {
        sqlx::query(
            "INSERT INTO presence_watch (watcher, target, on_available, on_offline, on_pickup, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (watcher, target) DO UPDATE SET on_available = $3, on_offline = $4, on_pickup = $5",
        )
        .bind(w.watcher.key())
        .bind(w.target.key())
        .bind(i64::from(w.on_available))
        .bind(i64::from(w.on_offline))
        .bind(i64::from(w.on_pickup))
        .bind(now_ms())
        .execute(&mut *self.tx)
        .await
        .ctx("add watch")?;
        Ok(())
    }

    /// `false` if there was no such watch.
    pub async fn remove_watch(&mut self, watcher: &Party, target: &Party) -> Result<bool> {
        let done = sqlx::query("DELETE FROM presence_watch WHERE watcher = $1 AND target = $2")
            .bind(watcher.key())
            .bind(target.key())
            .execute(&mut *self.tx)
            .await
            .ctx("remove watch")?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn watches_by(&mut self, watcher: &Party) -> Result<Vec<Watch>> {
        let rows = sqlx::query(
            "SELECT watcher, target, on_available, on_offline, on_pickup FROM presence_watch WHERE watcher = $1 ORDER BY target",
        )
        .bind(watcher.key())
        .fetch_all(&mut *self.tx)
        .await
        .ctx("watches by")?;
        watches_from(rows)
    }

    /// Remember the room in which a Matrix user talks to the bot.
    pub async fn save_bot_dm(&mut self, user: &MatrixUserId, room: &RoomId) -> Result<()> {
        sqlx::query(
            "INSERT INTO bot_dm (matrix_user, room_id, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (matrix_user) DO UPDATE SET room_id = $2, updated_at = $3",
        )
        .bind(user.to_string())
        .bind(room.as_str())
        .bind(now_ms())
        .execute(&mut *self.tx)
        .await
        .ctx("save bot dm")?;
        Ok(())
    }

    /// Is this room the user's direct chat with the bot?
    pub async fn is_bot_dm(&mut self, user: &MatrixUserId, room: &RoomId) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM bot_dm WHERE matrix_user = $1 AND room_id = $2")
            .bind(user.to_string())
            .bind(room.as_str())
            .fetch_optional(&mut *self.tx)
            .await
            .ctx("is bot dm")?;
        Ok(row.is_some())
    }
}

impl Store {
    /// Who watches `target`.
    pub async fn watchers_of(&self, target: &Party) -> Result<Vec<Watch>> {
        let rows = sqlx::query(
            "SELECT watcher, target, on_available, on_offline, on_pickup FROM presence_watch WHERE target = $1 ORDER BY watcher",
        )
        .bind(target.key())
        .fetch_all(&self.pool)
        .await
        .ctx("watchers of")?;
        watches_from(rows)
    }

    /// The room in which a Matrix user talks to the bot, if any.
    pub async fn bot_dm(&self, user: &MatrixUserId) -> Result<Option<RoomId>> {
        let row = sqlx::query("SELECT room_id FROM bot_dm WHERE matrix_user = $1")
            .bind(user.to_string())
            .fetch_optional(&self.pool)
            .await
            .ctx("bot dm")?;
        row.map(|r| r.try_get::<String, _>(0).ctx("room"))
            .transpose()?
            .map(|r| {
                RoomId::parse(&r).map_err(|e| super::StoreError::Corrupt { context: "bot_dm", reason: e.to_string() })
            })
            .transpose()
    }
}
