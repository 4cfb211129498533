//! The personal journal beside the calls (`calls.rs`): each person's chats per conversation and
//! day, what is still unread in them (for missed-chat summaries), their notes on entries, and the
//! tokens that read one person's journal over HTTP (stored as hashes only).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::batch::{Arg, Stmt};
use super::{Context, Result, Store, StoreTx, now_ms};
use crate::core::journal::{self, ChatTouch};

/// Messages counted by one statement (8 parameters each, at most).
const TOUCHES_PER_STATEMENT: usize = 1_000;

/// The statement that counts `touches` (at most [`TOUCHES_PER_STATEMENT`]): a message to
/// someone keeps the first unread time; one from them clears it (and the day's missed mark:
/// answering means they read it).
fn touch_stmt(touches: &[ChatTouch]) -> Stmt {
    let sums = journal::sums(touches);
    let values: Vec<String> = (0..sums.len())
        .map(|i| {
            let b = i * 8;
            let p: Vec<String> = (1..=8).map(|k| format!("${}", b + k)).collect();
            format!("({})", p.join(", "))
        })
        .collect();
    let sql = format!(
        "INSERT INTO chat_journal (party, conversation, kind, day, first_at, last_at, messages, unread_since) \
         VALUES {} ON CONFLICT (party, conversation, day) DO UPDATE SET \
         last_at = excluded.last_at, messages = chat_journal.messages + excluded.messages, \
         unread_since = CASE WHEN excluded.unread_since IS NULL THEN NULL \
         ELSE COALESCE(chat_journal.unread_since, excluded.unread_since) END, \
         missed = CASE WHEN excluded.unread_since IS NULL THEN 0 ELSE chat_journal.missed END, \
         notified = CASE WHEN excluded.unread_since IS NULL THEN 0 ELSE chat_journal.notified END",
        values.join(", ")
    );
    let mut args = Vec::with_capacity(sums.len() * 8);
    for s in sums {
        args.extend([
            Arg::Text(s.party),
            Arg::Text(s.conversation),
            Arg::Text(s.kind.to_owned()),
            Arg::Int(s.day),
            Arg::Int(s.first_at),
            Arg::Int(s.last_at),
            Arg::Int(s.messages),
            Arg::OptInt(s.unread_since),
        ]);
    }
    Stmt { sql, args }
}

/// The statements that count `touches`, in chunks PostgreSQL takes (it binds at most 65535
/// parameters).
pub(super) fn touch_stmts(touches: &[ChatTouch]) -> Vec<Stmt> {
    touches.chunks(TOUCHES_PER_STATEMENT).map(touch_stmt).collect()
}

/// A stored chat entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatEntry {
    pub id: i64,
    pub party: String,
    pub conversation: String,
    pub kind: String,
    pub first_at: i64,
    pub last_at: i64,
    pub messages: i64,
    /// The first message to them not yet read, if any.
    pub unread_since: Option<i64>,
    /// A missed-chat summary went out and it is still unread.
    pub missed: bool,
}

/// What to list of a person's chats.
#[derive(Debug, Clone, Default)]
pub struct ChatQuery {
    pub party: String,
    /// Entries whose last message is at or after this time (ms).
    pub since: i64,
    /// Only conversations whose key contains this (lower-case).
    pub contact: Option<String>,
    pub missed_only: bool,
    pub limit: i64,
}

/// Nothing in a person's conversation waits any more (they read it, or wrote in it).
const MARK_READ: &str = "UPDATE chat_journal SET unread_since = NULL, missed = 0, notified = 0 \
     WHERE party = $1 AND conversation = $2 AND (unread_since IS NOT NULL OR missed = 1)";

const CHAT_COLUMNS: &str = "id, party, conversation, kind, first_at, last_at, messages, unread_since, missed";

fn chat_entry(row: &AnyRow) -> Result<ChatEntry> {
    Ok(ChatEntry {
        id: row.try_get(0).ctx("chat entry id")?,
        party: row.try_get(1).ctx("chat entry party")?,
        conversation: row.try_get(2).ctx("chat entry conversation")?,
        kind: row.try_get(3).ctx("chat entry kind")?,
        first_at: row.try_get(4).ctx("chat entry first")?,
        last_at: row.try_get(5).ctx("chat entry last")?,
        messages: row.try_get(6).ctx("chat entry count")?,
        unread_since: row.try_get(7).ctx("chat entry unread")?,
        missed: row.try_get::<i64, _>(8).ctx("chat entry missed")? != 0,
    })
}

impl StoreTx {
    /// Count messages in the journal: one statement for all of them (the message hot path pays
    /// one round trip, in the transaction that accepts the message). A message to someone marks
    /// the day's entry unread; one from them clears it (answering means it was read).
    pub async fn touch_chats(&mut self, touches: &[ChatTouch]) -> Result<()> {
        self.batch(touch_stmts(touches)).await?;
        Ok(())
    }

    /// `party` wrote in `conversation` (a hosted room, where their own message is not counted
    /// for them): what was waiting there for them is read.
    pub async fn chat_answered(&mut self, party: &str, conversation: &str) -> Result<()> {
        sqlx::query(MARK_READ).bind(party).bind(conversation).execute(&mut *self.tx).await.ctx("mark chat answered")?;
        Ok(())
    }

    /// Store (or with `None`, remove) a person's note on an entry (`c12`, `m7`).
    pub async fn set_journal_note(&mut self, party: &str, entry: &str, note: Option<&str>) -> Result<()> {
        match note {
            Some(note) => sqlx::query(
                "INSERT INTO journal_note (party, entry, note, set_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (party, entry) DO UPDATE SET note = $3, set_at = $4",
            )
            .bind(party)
            .bind(entry)
            .bind(note)
            .bind(now_ms())
            .execute(&mut *self.tx)
            .await
            .ctx("set journal note")?,
            None => sqlx::query("DELETE FROM journal_note WHERE party = $1 AND entry = $2")
                .bind(party)
                .bind(entry)
                .execute(&mut *self.tx)
                .await
                .ctx("remove journal note")?,
        };
        Ok(())
    }

    /// Store a new journal token (its hash) for a person.
    pub async fn add_journal_token(&mut self, token_hash: &str, party: &str) -> Result<()> {
        sqlx::query("INSERT INTO journal_token (token_hash, party, created_at) VALUES ($1, $2, $3)")
            .bind(token_hash)
            .bind(party)
            .bind(now_ms())
            .execute(&mut *self.tx)
            .await
            .ctx("add journal token")?;
        Ok(())
    }

    /// Revoke all of a person's journal tokens; how many there were.
    pub async fn revoke_journal_tokens(&mut self, party: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM journal_token WHERE party = $1")
            .bind(party)
            .execute(&mut *self.tx)
            .await
            .ctx("revoke journal tokens")?;
        Ok(done.rows_affected())
    }

    /// These entries were settled by the sweep: a summary queued (`missed`: in the transaction
    /// that queues it, and they show as missed), or none wanted.
    pub async fn mark_chats_notified(&mut self, ids: &[i64], missed: bool) -> Result<()> {
        for id in ids {
            sqlx::query("UPDATE chat_journal SET notified = 1, missed = $2 WHERE id = $1")
                .bind(*id)
                .bind(i64::from(missed))
                .execute(&mut *self.tx)
                .await
                .ctx("mark chat notified")?;
        }
        Ok(())
    }
}

impl Store {
    /// A person's chat entries, newest first.
    pub async fn chat_journal(&self, q: &ChatQuery) -> Result<Vec<ChatEntry>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CHAT_COLUMNS} FROM chat_journal WHERE party = $1 AND last_at >= $2 \
             AND ($3 = '' OR LOWER(conversation) LIKE $3) AND ($4 = 0 OR missed = 1) \
             ORDER BY last_at DESC, id DESC LIMIT $5"
        )))
        .bind(&q.party)
        .bind(q.since)
        .bind(q.contact.as_deref().map(|c| format!("%{}%", like_escape(c))).unwrap_or_default())
        .bind(i64::from(q.missed_only))
        .bind(if q.limit > 0 { q.limit } else { 100 })
        .fetch_all(&self.pool)
        .await
        .ctx("chat journal")?;
        rows.iter().map(chat_entry).collect()
    }

    /// The person has read the conversation (a read receipt, a displayed marker): nothing in it
    /// is waiting any more, and it no longer shows as missed.
    pub async fn mark_chat_read(&self, party: &str, conversation: &str) -> Result<u64> {
        let done = sqlx::query(MARK_READ)
            .bind(party)
            .bind(conversation)
            .execute(&mut *self.writer().await?)
            .await
            .ctx("mark chat read")?;
        Ok(done.rows_affected())
    }

    /// Entries with a message unread since before `before` and no summary yet, oldest first.
    pub async fn due_missed_chats(&self, before: i64, limit: i64) -> Result<Vec<ChatEntry>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CHAT_COLUMNS} FROM chat_journal WHERE unread_since IS NOT NULL AND unread_since <= $1 \
             AND notified = 0 ORDER BY unread_since LIMIT $2"
        )))
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .ctx("due missed chats")?;
        rows.iter().map(chat_entry).collect()
    }

    /// Whose chat entry `id` is.
    pub async fn chat_entry_owner(&self, id: i64) -> Result<Option<String>> {
        let row = sqlx::query("SELECT party FROM chat_journal WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .ctx("chat entry owner")?;
        row.map(|r| r.try_get(0).ctx("chat entry owner")).transpose()
    }

    /// Whose call journal row `id` is (the line owner's id).
    pub async fn call_entry_owner(&self, id: i64) -> Result<Option<String>> {
        let row = sqlx::query("SELECT user_id FROM call_journal WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .ctx("call entry owner")?;
        row.map(|r| r.try_get(0).ctx("call entry owner")).transpose()
    }

    /// A person's notes: `(entry, note)`.
    pub async fn journal_notes(&self, party: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT entry, note FROM journal_note WHERE party = $1")
            .bind(party)
            .fetch_all(&self.pool)
            .await
            .ctx("journal notes")?;
        rows.iter().map(|r| Ok((r.try_get(0).ctx("note entry")?, r.try_get(1).ctx("note")?))).collect()
    }

    /// Whose journal a token (by its hash) reads.
    pub async fn journal_token_party(&self, token_hash: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT party FROM journal_token WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .ctx("journal token")?;
        row.map(|r| r.try_get(0).ctx("journal token party")).transpose()
    }
}

/// A contact filter as a LIKE pattern's middle: `%` and `\` are dropped (the databases differ in
/// escaping, and a filter never needs them); `_` stays, matching any one character, which only
/// widens a filter by a little.
fn like_escape(s: &str) -> String {
    s.chars().filter(|c| !matches!(c, '%' | '\\')).collect::<String>().to_lowercase()
}
