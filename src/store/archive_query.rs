//! Reading a hosted room's archive with XEP-0313 filters (time range, one sender, id range)
//! and XEP-0059 paging within what they leave.

use super::hosted_rooms::{ARCHIVE_COLUMNS, LIVE_MESSAGE, message_from_row};
use super::{Context, Result, Store};
use crate::core::ids::RoomId;
use crate::store::{ArchivedMessage, Page};

/// What a MAM query keeps of an archive; `None` keeps everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveFilter {
    /// Sent at or after this time (ms since the epoch).
    pub start_ms: Option<i64>,
    /// Sent at or before this time (ms since the epoch).
    pub end_ms: Option<i64>,
    /// Sent under this nick in the room.
    pub nick: Option<String>,
    /// Sent by this participant (a party key, `xmpp:…` / `matrix:…`).
    pub sender: Option<String>,
    /// After this archive id (exclusive): XEP-0313 `after-id`.
    pub after_id: Option<i64>,
    /// Before this archive id (exclusive): XEP-0313 `before-id`.
    pub before_id: Option<i64>,
    /// Messages only: no reactions, retractions or tombstones (history on join).
    pub messages_only: bool,
}

enum Bind {
    Int(i64),
    Text(String),
}

impl ArchiveFilter {
    /// The filter's SQL conditions (after `room_id = $1`) and their values, numbered on from $2.
    fn conditions(&self) -> (String, Vec<Bind>) {
        let mut sql = String::new();
        let mut binds = vec![];
        let mut add = |column: &str, op: &str, value: Bind| {
            binds.push(value);
            sql.push_str(&format!(" AND {column} {op} ${}", binds.len() + 1));
        };
        if let Some(v) = self.start_ms {
            add("ts", ">=", Bind::Int(v));
        }
        if let Some(v) = self.end_ms {
            add("ts", "<=", Bind::Int(v));
        }
        if let Some(v) = &self.nick {
            add("nick", "=", Bind::Text(v.clone()));
        }
        if let Some(v) = &self.sender {
            add("sender", "=", Bind::Text(v.clone()));
        }
        if let Some(v) = self.after_id {
            add("id", ">", Bind::Int(v));
        }
        if let Some(v) = self.before_id {
            add("id", "<", Bind::Int(v));
        }
        if self.messages_only {
            sql.push_str(&format!(" AND {LIVE_MESSAGE}"));
        }
        (sql, binds)
    }
}

fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for b in binds {
        query = match b {
            Bind::Int(v) => query.bind(v),
            Bind::Text(v) => query.bind(v),
        };
    }
    query
}

impl Store {
    /// A page of the messages of a room's archive that `filter` keeps, in chronological order,
    /// and whether it reaches the end of them (XEP-0313 `complete`).
    pub async fn archive_search(
        &self,
        room: &RoomId,
        page: Page,
        filter: &ArchiveFilter,
    ) -> Result<(Vec<ArchivedMessage>, bool)> {
        let (conditions, mut binds) = filter.conditions();
        let (op, order, bound, max) = match page {
            Page::After(after, max) => (">", "ASC", after, max),
            Page::Before(before, max) => ("<", "DESC", before, max),
        };
        let n = binds.len() + 2;
        let sql = format!(
            "SELECT {ARCHIVE_COLUMNS} FROM room_archive WHERE room_id = $1{conditions} AND id {op} ${n} \
             ORDER BY id {order} LIMIT ${}",
            n + 1
        );
        binds.push(Bind::Int(bound));
        // One more than asked tells whether more remain.
        binds.push(Bind::Int(max + 1));
        let query = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(room.as_str()), binds);
        let rows = query.fetch_all(&self.pool).await.ctx("archive")?;
        let mut messages = rows.iter().map(message_from_row).collect::<Result<Vec<_>>>()?;
        let complete = messages.len() as i64 <= max;
        messages.truncate(usize::try_from(max).unwrap_or(0));
        if matches!(page, Page::Before(..)) {
            messages.reverse();
        }
        Ok((messages, complete))
    }

    /// How many messages of a room's archive `filter` keeps (the RSM `count`).
    pub async fn archive_count_matching(&self, room: &RoomId, filter: &ArchiveFilter) -> Result<i64> {
        let (conditions, binds) = filter.conditions();
        let sql = format!("SELECT COUNT(*) FROM room_archive WHERE room_id = $1{conditions}");
        let query = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(room.as_str()), binds);
        let row = query.fetch_one(&self.pool).await.ctx("archive count")?;
        sqlx::Row::try_get::<i64, _>(&row, 0).ctx("count")
    }
}
