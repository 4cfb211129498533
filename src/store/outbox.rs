//! The outbox table: every outbound action is stored before it is attempted and removed only
//! after it succeeded (or was given up with a notice to its sender).

use sqlx::Row;

use super::batch::{Arg, Stmt};
use super::{Context, Result, Store, StoreError, StoreTx, now_ms};
use crate::core::action::Action;
use crate::core::journal::ChatTouch;

/// One pending action.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub action: Action,
    pub attempts: u32,
    pub next_attempt_at: i64,
    /// When it was queued (ms since the epoch): its delivery latency is measured from here.
    pub created_at: i64,
}

impl StoreTx {
    /// Queue an action; returns its id (the base of its idempotency key).
    pub async fn enqueue(&mut self, action: &Action) -> Result<i64> {
        let mut ids = self.claim_count_enqueue(None, &[], std::slice::from_ref(action)).await?.unwrap_or_default();
        ids.pop().ok_or(StoreError::Corrupt { context: "enqueue", reason: "no id returned".into() })
    }

    /// What accepting a message writes, in one batch (one round trip on SQLite): the claim of
    /// its stanza id (`(sender, id)`), its count in the journals and its actions. Their ids, in
    /// order; `None` when the stanza id was claimed before: then nothing may be committed (the
    /// caller drops the transaction, which undoes the rest of the batch).
    pub async fn claim_count_enqueue(
        &mut self,
        claim: Option<(&str, &str)>,
        touches: &[ChatTouch],
        actions: &[Action],
    ) -> Result<Option<Vec<i64>>> {
        let mut stmts = Vec::with_capacity(actions.len() + 2);
        let now = now_ms();
        if let Some((sender, stanza_id)) = claim {
            stmts.push(super::dedupe::claim_stanza_stmt(sender, stanza_id, now));
        }
        stmts.extend(super::journal::touch_stmts(touches));
        for action in actions {
            let json = serde_json::to_string(action)
                .map_err(|e| StoreError::Corrupt { context: "encode action", reason: e.to_string() })?;
            stmts.push(Stmt {
                sql: "INSERT INTO outbox (lane, action, created_at) VALUES ($1, $2, $3) RETURNING id".into(),
                args: vec![Arg::Text(action.lane().to_string()), Arg::Text(json), Arg::Int(now)],
            });
        }
        let outcomes = self.batch(stmts).await?;
        if claim.is_some() && outcomes.first().is_none_or(|o| o.rows.is_empty()) {
            return Ok(None);
        }
        let queued = &outcomes[outcomes.len() - actions.len()..];
        queued
            .iter()
            .map(|o| match o.rows.first() {
                Some(row) => row.try_get::<i64, _>(0).ctx("enqueue id"),
                None => Err(StoreError::Corrupt { context: "enqueue", reason: "no id returned".into() }),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// Remove a delivered (or given up) action.
    pub async fn complete(&mut self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM outbox WHERE id = $1").bind(id).execute(&mut *self.tx).await.ctx("complete")?;
        Ok(())
    }
}

impl Store {
    /// Lanes that have work queued.
    pub async fn pending_lanes(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT DISTINCT lane FROM outbox").fetch_all(&self.pool).await.ctx("pending lanes")?;
        rows.iter().map(|r| r.try_get::<String, _>(0).ctx("lane")).collect()
    }

    /// The oldest action of a lane (the only one that may run: order within a lane is strict).
    pub async fn head_of_lane(&self, lane: &str) -> Result<Option<OutboxRow>> {
        Ok(self.lane_rows(lane, 1).await?.into_iter().next())
    }

    /// Up to `limit` actions of a lane, oldest first.
    pub async fn lane_rows(&self, lane: &str, limit: i64) -> Result<Vec<OutboxRow>> {
        let rows = sqlx::query(
            "SELECT id, action, attempts, next_attempt_at, created_at FROM outbox WHERE lane = $1 ORDER BY id LIMIT $2",
        )
        .bind(lane)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .ctx("lane rows")?;
        rows.iter()
            .map(|row| {
                let json: String = row.try_get(1).ctx("action")?;
                let action = serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt { context: "outbox action", reason: e.to_string() })?;
                Ok(OutboxRow {
                    id: row.try_get(0).ctx("id")?,
                    action,
                    attempts: u32::try_from(row.try_get::<i64, _>(2).ctx("attempts")?).unwrap_or(u32::MAX),
                    next_attempt_at: row.try_get(3).ctx("next attempt")?,
                    created_at: row.try_get(4).ctx("created at")?,
                })
            })
            .collect()
    }

    /// Remove a delivered action (one statement, no explicit transaction).
    pub async fn complete(&self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM outbox WHERE id = $1")
            .bind(id)
            .execute(&mut *self.writer().await?)
            .await
            .ctx("complete")?;
        Ok(())
    }

    /// Remember a failed attempt and when to try again.
    pub async fn retry_later(&self, id: i64, attempts: u32, at_ms: i64, error: &str) -> Result<()> {
        sqlx::query("UPDATE outbox SET attempts = $1, next_attempt_at = $2, last_error = $3 WHERE id = $4")
            .bind(i64::from(attempts))
            .bind(at_ms)
            .bind(error)
            .bind(id)
            .execute(&mut *self.writer().await?)
            .await
            .ctx("retry later")?;
        Ok(())
    }

    /// Number of queued actions (for health and metrics).
    pub async fn outbox_len(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM outbox").fetch_one(&self.pool).await.ctx("count")?;
        row.try_get::<i64, _>(0).ctx("count")
    }

    /// Per lane: the actions waiting and when the oldest was queued (ms), for the metrics.
    pub async fn outbox_lanes(&self) -> Result<Vec<(String, i64, i64)>> {
        let rows = sqlx::query("SELECT lane, COUNT(*), MIN(created_at) FROM outbox GROUP BY lane")
            .fetch_all(&self.pool)
            .await
            .ctx("outbox lanes")?;
        rows.iter()
            .map(|r| Ok((r.try_get(0).ctx("lane")?, r.try_get(1).ctx("count")?, r.try_get(2).ctx("oldest")?)))
            .collect()
    }
}
