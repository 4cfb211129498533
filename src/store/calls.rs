//! Missed calls (see `src/calls/`): telephony events of calls still in progress (replayed into
//! the call tracker after a restart), the calls already handled, every person's call journal,
//! and when each person was last seen available ("repeated calls while the user has not
//! logged on").
//!
//! A finished call is handled in one transaction: its journal rows, the outbox rows of its
//! notices, its `call_done` mark and the removal of its events land together, so a crash
//! before the commit replays the call and a crash after it changes nothing.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Context, Result, Store, StoreTx, now_ms};

/// A journal row to write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewJournalRow {
    pub user: String,
    /// `missed`, `answered` or `outgoing`.
    pub kind: String,
    pub call_id: String,
    /// `inbound`, `outbound` or `internal`.
    pub direction: String,
    /// The other party's number (the caller, or for an outgoing call the number dialled).
    pub number: Option<String>,
    /// `number` reduced for comparisons (`calls::rules::number_key`); empty when hidden.
    pub number_key: String,
    pub name: Option<String>,
    pub contact_id: Option<String>,
    /// The person's extension that rang (or called).
    pub extension: Option<String>,
    pub started_at: i64,
    pub ended_at: i64,
    pub ring_ms: i64,
    pub answered_by: Option<String>,
    pub notified: bool,
    /// Channels a notice was queued on, comma separated.
    pub channels: String,
    /// Why no notice was sent (`calls::rules::SkipReason::code`), for a missed call.
    pub skip_reason: Option<String>,
}

/// A stored journal row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRow {
    pub id: i64,
    pub entry: NewJournalRow,
    pub processed: bool,
    /// The outgoing call that settled this missed call.
    pub processed_by: Option<String>,
    pub processed_at: Option<i64>,
}

/// What to list from the journal.
#[derive(Debug, Clone, Default)]
pub struct JournalQuery {
    pub user: Option<String>,
    /// Calls that started at or after this time (ms).
    pub from: Option<i64>,
    /// Calls that started before this time (ms).
    pub to: Option<i64>,
    pub kind: Option<String>,
    pub limit: i64,
}

const JOURNAL_COLUMNS: &str = "id, user_id, kind, call_id, direction, number, number_key, name, contact_id, \
     extension, started_at, ended_at, ring_ms, answered_by, notified, channels, skip_reason, processed, \
     processed_by, processed_at";

fn journal_row(row: &AnyRow) -> Result<JournalRow> {
    Ok(JournalRow {
        id: row.try_get(0).ctx("journal id")?,
        entry: NewJournalRow {
            user: row.try_get(1).ctx("journal user")?,
            kind: row.try_get(2).ctx("journal kind")?,
            call_id: row.try_get(3).ctx("journal call")?,
            direction: row.try_get(4).ctx("journal direction")?,
            number: row.try_get(5).ctx("journal number")?,
            number_key: row.try_get(6).ctx("journal number key")?,
            name: row.try_get(7).ctx("journal name")?,
            contact_id: row.try_get(8).ctx("journal contact")?,
            extension: row.try_get(9).ctx("journal extension")?,
            started_at: row.try_get(10).ctx("journal start")?,
            ended_at: row.try_get(11).ctx("journal end")?,
            ring_ms: row.try_get(12).ctx("journal ring")?,
            answered_by: row.try_get(13).ctx("journal answered by")?,
            notified: row.try_get::<i64, _>(14).ctx("journal notified")? != 0,
            channels: row.try_get(15).ctx("journal channels")?,
            skip_reason: row.try_get(16).ctx("journal skip")?,
        },
        processed: row.try_get::<i64, _>(17).ctx("journal processed")? != 0,
        processed_by: row.try_get(18).ctx("journal processed by")?,
        processed_at: row.try_get(19).ctx("journal processed at")?,
    })
}

impl StoreTx {
    /// Store accepted telephony events (`(call id, event JSON)`), in order; returns their ids.
    /// Events of calls already handled are skipped (`None` in their place).
    pub async fn add_call_events(&mut self, events: &[(String, String)]) -> Result<Vec<Option<i64>>> {
        let now = now_ms();
        let mut ids = Vec::with_capacity(events.len());
        for (call_id, json) in events {
            // One statement that writes: a read first would make SQLite's deferred transaction
            // fail with SQLITE_BUSY when it upgrades to a write while another one committed.
            let row = sqlx::query(
                "INSERT INTO call_event (call_id, event, received_at) SELECT $1, $2, $3 \
                 WHERE NOT EXISTS (SELECT 1 FROM call_done WHERE call_id = $1) RETURNING id",
            )
            .bind(call_id)
            .bind(json)
            .bind(now)
            .fetch_optional(&mut *self.tx)
            .await
            .ctx("add call event")?;
            ids.push(row.map(|r| r.try_get::<i64, _>(0).ctx("call event id")).transpose()?);
        }
        Ok(ids)
    }

    /// Mark a call handled and drop its stored events. `false` if it was handled before (then
    /// nothing else of it may be written).
    pub async fn finish_call(&mut self, call_id: &str) -> Result<bool> {
        let done = sqlx::query("INSERT INTO call_done (call_id, done_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(call_id)
            .bind(now_ms())
            .execute(&mut *self.tx)
            .await
            .ctx("finish call")?;
        sqlx::query("DELETE FROM call_event WHERE call_id = $1")
            .bind(call_id)
            .execute(&mut *self.tx)
            .await
            .ctx("drop call events")?;
        Ok(done.rows_affected() == 1)
    }

    /// Write a journal row; returns its id.
    pub async fn add_journal(&mut self, e: &NewJournalRow) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO call_journal (user_id, kind, call_id, direction, number, number_key, name, contact_id, \
             extension, started_at, ended_at, ring_ms, answered_by, notified, channels, skip_reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id",
        )
        .bind(&e.user)
        .bind(&e.kind)
        .bind(&e.call_id)
        .bind(&e.direction)
        .bind(e.number.as_deref())
        .bind(&e.number_key)
        .bind(e.name.as_deref())
        .bind(e.contact_id.as_deref())
        .bind(e.extension.as_deref())
        .bind(e.started_at)
        .bind(e.ended_at)
        .bind(e.ring_ms)
        .bind(e.answered_by.as_deref())
        .bind(i64::from(e.notified))
        .bind(&e.channels)
        .bind(e.skip_reason.as_deref())
        .fetch_one(&mut *self.tx)
        .await
        .ctx("add journal row")?;
        row.try_get::<i64, _>(0).ctx("journal row id")
    }

    /// A person's missed calls not yet processed that started before `before`.
    pub async fn open_missed_calls(&mut self, user: &str, before: i64) -> Result<Vec<JournalRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOURNAL_COLUMNS} FROM call_journal WHERE user_id = $1 AND kind = 'missed' AND processed = 0 \
             AND started_at < $2 ORDER BY id"
        )))
        .bind(user)
        .bind(before)
        .fetch_all(&mut *self.tx)
        .await
        .ctx("open missed calls")?;
        rows.iter().map(journal_row).collect()
    }

    /// Mark missed calls processed by an outgoing call.
    pub async fn mark_processed(&mut self, ids: &[i64], by_call: &str, at: i64) -> Result<()> {
        for id in ids {
            sqlx::query(
                "UPDATE call_journal SET processed = 1, processed_by = $1, processed_at = $2 \
                 WHERE id = $3 AND processed = 0",
            )
            .bind(by_call)
            .bind(at)
            .bind(*id)
            .execute(&mut *self.tx)
            .await
            .ctx("mark processed")?;
        }
        Ok(())
    }
}

impl Store {
    /// Stored events of calls in progress, oldest first: `(id, event JSON)`.
    pub async fn pending_call_events(&self) -> Result<Vec<(i64, String)>> {
        let rows = sqlx::query("SELECT id, event FROM call_event ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .ctx("pending call events")?;
        rows.iter().map(|r| Ok((r.try_get(0).ctx("event id")?, r.try_get(1).ctx("event")?))).collect()
    }

    /// Drop one stored event (it cannot be applied: an unknown or finished call).
    pub async fn drop_call_event(&self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM call_event WHERE id = $1")
            .bind(id)
            .execute(&mut *self.writer().await?)
            .await
            .ctx("drop call event")?;
        Ok(())
    }

    /// Notices about calls from `number_key` a person got since `since`: how many, and when the
    /// last one was.
    pub async fn notices_since(&self, user: &str, number_key: &str, since: i64) -> Result<(u32, Option<i64>)> {
        let row = sqlx::query(
            "SELECT COUNT(*), MAX(started_at) FROM call_journal \
             WHERE user_id = $1 AND number_key = $2 AND notified = 1 AND started_at >= $3",
        )
        .bind(user)
        .bind(number_key)
        .bind(since)
        .fetch_one(&self.pool)
        .await
        .ctx("notices since")?;
        let count: i64 = row.try_get(0).ctx("notice count")?;
        Ok((u32::try_from(count).unwrap_or(u32::MAX), row.try_get(1).ctx("last notice")?))
    }

    /// When a person was last told about a call from `number_key`, at any time.
    pub async fn last_notice(&self, user: &str, number_key: &str) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT MAX(started_at) FROM call_journal WHERE user_id = $1 AND number_key = $2 AND notified = 1",
        )
        .bind(user)
        .bind(number_key)
        .fetch_one(&self.pool)
        .await
        .ctx("last notice")?;
        row.try_get(0).ctx("last notice")
    }

    /// Journal rows, newest first.
    pub async fn journal(&self, q: &JournalQuery) -> Result<Vec<JournalRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOURNAL_COLUMNS} FROM call_journal \
             WHERE ($1 = '' OR user_id = $1) AND started_at >= $2 AND started_at < $3 AND ($4 = '' OR kind = $4) \
             ORDER BY started_at DESC, id DESC LIMIT $5"
        )))
        .bind(q.user.clone().unwrap_or_default())
        .bind(q.from.unwrap_or(i64::MIN))
        .bind(q.to.unwrap_or(i64::MAX))
        .bind(q.kind.clone().unwrap_or_default())
        .bind(if q.limit > 0 { q.limit } else { 10_000 })
        .fetch_all(&self.pool)
        .await
        .ctx("journal")?;
        rows.iter().map(journal_row).collect()
    }

    /// Remember that a person (`Party::key`) was seen available at `at`.
    pub async fn record_logon(&self, party: &str, at: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO user_logon (party, last_seen_at) VALUES ($1, $2) \
             ON CONFLICT (party) DO UPDATE SET last_seen_at = $2 WHERE user_logon.last_seen_at < $2",
        )
        .bind(party)
        .bind(at)
        .execute(&mut *self.writer().await?)
        .await
        .ctx("record logon")?;
        Ok(())
    }

    /// The latest time any of these parties was seen available.
    pub async fn last_logon(&self, parties: &[String]) -> Result<Option<i64>> {
        let mut last = None;
        for p in parties {
            let row = sqlx::query("SELECT last_seen_at FROM user_logon WHERE party = $1")
                .bind(p)
                .fetch_optional(&self.pool)
                .await
                .ctx("last logon")?;
            if let Some(row) = row {
                let at: i64 = row.try_get(0).ctx("last logon")?;
                last = last.max(Some(at));
            }
        }
        Ok(last)
    }

    /// Forget handled-call marks older than `before` (a webhook replay that late is refused by
    /// its signature's timestamp anyway).
    pub async fn prune_calls_done(&self, before: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM call_done WHERE done_at < $1")
            .bind(before)
            .execute(&mut *self.writer().await?)
            .await
            .ctx("prune calls done")?;
        Ok(done.rows_affected())
    }
}
