//! Persistence with sqlx: one code path for SQLite (the embedded default) and PostgreSQL,
//! through `AnyPool`. Migrations are embedded (`migrations.rs`) and run at
//! start. Times are stored as BIGINT milliseconds (the `Any` driver has no date type).

mod admin;
mod archive_query;
mod batch;
mod calls;
mod chatbot;
mod command_data;
mod consent;
mod content;
mod dedupe;
mod direct_chats;
mod ghosts;
mod hosted_rooms;
mod journal;
mod linked_messages;
mod linked_mucs;
mod messages;
mod migrations;
mod notification_choices;
mod outbox;
mod own_groups;
mod phone_busy;
mod presence;
mod room_phones;
mod sms;
mod subscriptions;
mod watches;

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::SqlStr;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Any, AnyPool, Connection, Executor, Transaction};

pub use archive_query::ArchiveFilter;
pub use calls::{JournalQuery, JournalRow, NewJournalRow};
pub use chatbot::{ChatTurn, ChatbotRoom, ChatbotUsage};
pub use command_data::{BlockEntry, ContactImport};
pub use content::{MediaLink, Reaction};
pub use direct_chats::{DirectChat, PeerMembership};
pub use hosted_rooms::{
    ArchiveKey, ArchivedAct, ArchivedMessage, HostedRoom, NewArchived, Page, Retracted, RoomMember,
};
pub use journal::{ChatEntry, ChatQuery};
pub use linked_messages::LinkedMessage;
pub use messages::MappedMessage;
pub use outbox::OutboxRow;
pub use phone_busy::PhoneBusy;
pub use sms::SentSms;
pub use watches::Watch;

/// A storage failure, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {context}: {source}")]
    Db { context: &'static str, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored row is invalid ({context}): {reason}")]
    Corrupt { context: &'static str, reason: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// The database cannot be reached for a moment (a restart, a dropped connection, a
    /// serialization conflict): the same work succeeds once it is back.
    pub fn is_transient(&self) -> bool {
        let StoreError::Db { source, .. } = self else { return false };
        match source {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed | sqlx::Error::Protocol(_) => {
                true
            }
            sqlx::Error::Database(db) => db.code().is_some_and(|c| {
                // PostgreSQL: connection exceptions (08), admin/crash shutdown and "starting up"
                // (57P01-03), serialization failure and deadlock; SQLite: busy (5) and locked (6).
                c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "5" | "6")
            }),
            _ => false,
        }
    }

    /// The database refuses the data itself (PostgreSQL data exceptions, class 22: bytes that
    /// are not text, a value out of range; SQLite: too big, type mismatch): trying again fails
    /// again.
    pub fn is_bad_data(&self) -> bool {
        let StoreError::Db { source: sqlx::Error::Database(db), .. } = self else { return false };
        db.code().is_some_and(|c| c.starts_with("22") || matches!(&*c, "18" | "20"))
    }

    /// The disk under the database is full: nothing new can be stored until space is freed.
    pub fn is_full(&self) -> bool {
        let StoreError::Db { source, .. } = self else { return false };
        match source {
            // SQLite's SQLITE_FULL (13), PostgreSQL's disk_full (53100).
            sqlx::Error::Database(db) => db.code().is_some_and(|c| matches!(&*c, "13" | "53100")),
            sqlx::Error::Io(e) => e.raw_os_error() == Some(28), // ENOSPC
            _ => false,
        }
    }
}

/// How long work is retried while the database is unreachable before the error is passed on.
const RETRY_FOR: Duration = Duration::from_secs(30);

/// Run `work` again while it fails with a transient error (see [`StoreError::is_transient`]),
/// for up to 30 s with growing pauses. `work` must be one whole transaction, so that a retry
/// repeats it from the start; work that claims a de-duplication key is safe to repeat even
/// when an earlier commit's answer was lost.
pub async fn retrying<T, F, Fut>(what: &'static str, mut work: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let deadline = tokio::time::Instant::now() + RETRY_FOR;
    let mut pause = Duration::from_millis(50);
    loop {
        match work().await {
            Err(e) if e.is_transient() && tokio::time::Instant::now() < deadline => {
                tracing::warn!(what, error = %e, "database unavailable; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            result => return result,
        }
    }
}

pub(crate) trait Context<T> {
    fn ctx(self, context: &'static str) -> Result<T>;
}

/// A store failure while carrying out an action is transient: the action stays in the outbox
/// and is tried again (a full disk too: it waits until there is space).
impl From<StoreError> for crate::core::outbox::DeliveryError {
    fn from(e: StoreError) -> Self {
        crate::core::outbox::DeliveryError::Transient(e.to_string())
    }
}

impl<T> Context<T> for std::result::Result<T, sqlx::Error> {
    fn ctx(self, context: &'static str) -> Result<T> {
        self.map_err(|source| StoreError::Db { context, source })
    }
}

/// Which SQL dialect the pool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The bridge's database.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite only: its writers, one at a time (see [`Store::write_gate`]).
    writers: Option<Arc<tokio::sync::Mutex<()>>>,
}

/// How long a writer waits for the one before it, as SQLite's `busy_timeout` did.
const WRITE_WAIT: Duration = Duration::from_secs(10);

/// A pooled connection held with SQLite's write turn, for a write outside a transaction.
pub(crate) struct Writer {
    conn: sqlx::pool::PoolConnection<Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl std::ops::Deref for Writer {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl std::ops::DerefMut for Writer {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}

/// A database transaction: everything done through it lands together or not at all.
pub struct StoreTx {
    tx: Transaction<'static, Any>,
    backend: Backend,
    /// Declared after `tx`: the write turn passes on once the transaction has ended.
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Store {
    /// Connect (creating a SQLite file if needed) and run pending migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url).ctx("URL")?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { max_connections.min(4) } else { max_connections })
            .acquire_timeout(Duration::from_secs(30))
            // No ping before every checkout: it doubles the round trips per query, and a dead
            // connection shows up as an error that the caller retries anyway.
            .test_before_acquire(false)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers never block the writer; NORMAL sync survives a process
                        // crash (the durability the outbox promises) without an fsync per commit.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                    }
                    Ok(())
                })
            })
            .after_release(move |conn, _meta| {
                Box::pin(async move {
                    if backend != Backend::Sqlite {
                        return Ok(true);
                    }
                    // A COMMIT that fails (a full disk) leaves sqlx counting a transaction that
                    // SQLite already rolled back, and every later BEGIN IMMEDIATE on that
                    // connection fails: close it instead of pooling it. The ping lets a rollback
                    // queued by a dropped transaction run first. The count only falls when the
                    // connection's thread has run the COMMIT or ROLLBACK, so a connection that
                    // shows none needs no ping (a round trip per query, most of them).
                    if !conn.is_in_transaction() {
                        return Ok(true);
                    }
                    conn.ping().await?;
                    Ok(!conn.is_in_transaction())
                })
            })
            .connect_with(options)
            .await
            .ctx("connect")?;
        let writers = (backend == Backend::Sqlite).then(|| Arc::new(tokio::sync::Mutex::new(())));
        let store = Self { pool, backend, writers };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let migrations = migrations::for_backend(self.backend)
            .map(|(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    SqlStr::from_static(sql),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations).run(&self.pool).await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Start a transaction.
    /// Start a transaction. Nothing has happened yet, so a transient failure (the database
    /// restarting, a pooled connection that died with it) is retried here for everyone.
    pub async fn begin(&self) -> Result<StoreTx> {
        retrying("begin", || async move {
            let turn = self.write_gate().await?;
            let tx = match self.backend {
                // A deferred SQLite transaction that reads and then writes cannot wait for another
                // writer (it fails at once with "database is locked"); an immediate one takes the
                // write lock up front and waits for it (busy_timeout), so concurrent work queues.
                Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
                Backend::Postgres => self.pool.begin().await,
            };
            Ok(StoreTx { tx: tx.ctx("begin")?, backend: self.backend, _turn: turn })
        })
        .await
    }

    /// SQLite's turn to write. SQLite takes one writer at a time, and a second one waits in its
    /// busy handler, which sleeps 1, 2, 5, 10… ms between tries: under a burst that sleeping
    /// was most of the time a message spent. Writers queue here instead and go the moment the
    /// one before them is done. PostgreSQL needs no turn.
    async fn write_gate(&self) -> Result<Option<tokio::sync::OwnedMutexGuard<()>>> {
        let Some(writers) = &self.writers else { return Ok(None) };
        match tokio::time::timeout(WRITE_WAIT, writers.clone().lock_owned()).await {
            Ok(turn) => Ok(Some(turn)),
            // As SQLite's own wait would have ended: busy, which callers treat as transient.
            Err(_) => Err(StoreError::Db { context: "waiting to write", source: sqlx::Error::PoolTimedOut }),
        }
    }

    /// A connection with the turn to write, for one statement outside a transaction.
    pub(crate) async fn writer(&self) -> Result<Writer> {
        let turn = self.write_gate().await?;
        let conn = self.pool.acquire().await.ctx("acquire")?;
        Ok(Writer { conn, _turn: turn })
    }

    /// This database's random id (made on first use; see migration 0009).
    pub async fn instance_id(&self) -> Result<String> {
        let fresh = format!("{:08x}", rand::random::<u32>());
        sqlx::query("INSERT INTO bridge_instance (id) SELECT $1 WHERE NOT EXISTS (SELECT 1 FROM bridge_instance)")
            .bind(&fresh)
            .execute(&mut *self.writer().await?)
            .await
            .ctx("instance id")?;
        let row = sqlx::query("SELECT id FROM bridge_instance").fetch_one(&self.pool).await.ctx("instance id")?;
        sqlx::Row::try_get::<String, _>(&row, 0).ctx("instance id")
    }

    /// A cheap query, for the health endpoint.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.ctx("ping")?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl StoreTx {
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await.ctx("commit")
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}
