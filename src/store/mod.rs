//! The database: connection pool, migrations, and one file per table group, all returning domain
//! types.
//!
//! Owns: every SQL statement. Callers use [`Store`] (reads and one-statement writes) and
//! [`StoreTx`] (several writes that must land together); neither leaks sqlx types, so a
//! PostgreSQL backend can be added behind the same methods. The SQL is written to run on both:
//! `$N` placeholders, `RETURNING`, `ON CONFLICT`, timestamps as Unix milliseconds.
//!
//! SQLite runs in WAL mode with `synchronous = FULL`: every commit is fsynced to the WAL before
//! `COMMIT` returns, so a committed request survives a power cut. Write transactions start with
//! `BEGIN IMMEDIATE` so two writers queue on the busy timeout instead of failing on upgrade.
//! Talks to: the database only.

mod admin;
pub(crate) mod backend;
mod cities;
mod copy;
mod error;
mod experts;
mod leases;
mod loops;
mod mailbox_state;
mod messages;
mod notices;
mod outbox;
mod owner;
mod participants;
mod report;
mod requests;
pub mod schema;
mod staff;
mod threading;
mod timeline;
mod topics;
mod tracking;

use std::sync::Arc;

use anyhow::Context as _;
pub use backend::Engine;
use backend::{Pool, Tx, on_pool};

/// Moved to [`crate::domain::city`]; re-exported while callers move.
pub use crate::domain::city::CityRow;
pub use admin::AdminToken;
pub use cities::ContactRow;
pub use copy::{CopyError, CopyReport, TableCount, check_direction, copy_database, open_for_copy, redact_url};
pub use error::{Fault, StoreError, fault_of, is_transient};
pub use experts::{ExpertRow, FoundExpert, NewReferral, ReferralRow};
pub use leases::{DaemonRow, LeaseRow};
pub use mailbox_state::MailboxState;
use mailbox_state::Position;
pub use messages::{ConversationMessage, Handled, NewAttachment, NewMessage, QuarantineRow};
pub use notices::NoticeRow;
pub use outbox::{NewOutbox, OutboxRow, OutboxStats, Recovered};
pub use report::{CityFirstRow, ReportRows, ReportSpan, TopicRow};
#[cfg(test)]
pub(crate) use requests::sample_row;
pub use requests::{ClockFields, IllegalTransition, NewRequest, RequestRow};
pub use staff::{StaffMember, StaffRole};
pub use timeline::{NewEvent, RequestEvent};
pub use topics::RequestTopics;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The migrations embedded for `engine`.
pub(crate) fn migrations_of(engine: Engine) -> &'static sqlx::migrate::Migrator {
    match engine {
        Engine::Sqlite => &SQLITE_MIGRATIONS,
        Engine::Postgres => &POSTGRES_MIGRATIONS,
    }
}

/// Moved to [`crate::domain::time`]; re-exported while callers move.
pub use crate::domain::time::{ms_of, now_ms};

/// Where mail or a CLI action came from, for the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Mail,
    Cli,
    System,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Mail => "mail",
            Source::Cli => "cli",
            Source::System => "system",
        }
    }
}

/// What `intake311 stats` prints.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stats {
    /// `(kind, count)` of inbound mail: question, follow_up, staff_reply, automatic, bounce, …
    pub inbound: Vec<(String, i64)>,
    pub requests_by_status: Vec<(String, i64)>,
    pub outbox: OutboxStats,
    pub quarantine_held: i64,
    pub suppressed_addresses: i64,
    pub in_review: i64,
    /// Unix ms of the last successful poll of any mailbox.
    pub last_poll_at: Option<i64>,
}

/// The pool. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
    /// SQLite has one writer at a time. Writers of this process queue here (on SQLite only), woken in turn the
    /// moment the lock is free, instead of in SQLite's busy handler, which sleeps and polls
    /// (1 ms, 2 ms, 5 ms, … 100 ms) and so adds tens of milliseconds under load. Other processes
    /// (the CLI, a second daemon) still meet on SQLite's lock and `busy_timeout`.
    write_lock: Arc<tokio::sync::Mutex<()>>,
    /// This process's claim identity: its random id (an outbox row's `lease_owner`) and the
    /// locked file that tells other processes it is alive.
    owner: Arc<owner::Owner>,
    /// `database.lease` in ms: a daemon whose heartbeat is older is dead.
    lease_ms: i64,
}

/// An outbox row handed from the intake to the worker of the same process after the commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handoff {
    pub id: i64,
    /// Mail to staff (notices) rather than to a city: under a backlog it waits for city mail.
    pub staff: bool,
}

/// Writes that commit together or not at all. Dropping it without [`StoreTx::commit`] rolls back.
pub struct StoreTx {
    tx: Tx,
    /// This process's turn to write, on SQLite (PostgreSQL has many writers).
    _writer: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// Outbox rows born leased to this process, for the worker once this commits.
    handoff: Vec<Handoff>,
    /// Open savepoints, each with what ROLLBACK TO it must restore on this side.
    savepoints: Vec<Mark>,
    /// A RELEASE not yet sent: it goes with the next savepoint statement (one round trip to the
    /// SQLite thread instead of two per message), and COMMIT releases everything anyway.
    release_pending: Option<String>,
    /// The furthest IMAP position handled in this transaction, written once at commit (see
    /// [`StoreTx::advance_position`]).
    position: Option<Position>,
    /// The last tracking number handed out in this transaction, written once at commit (see
    /// [`StoreTx::next_tracking_number`]).
    tracking: Option<tracking::Counter>,
    /// Requests created in this transaction, and (request, staff?) threads that got outbox rows
    /// in it: a thread of a request created here with no row yet has no pending mail, without a
    /// query. (A rollback can leave stale entries; they only cost the query.)
    fresh_requests: std::collections::HashSet<i64>,
    queued_threads: std::collections::HashSet<(i64, bool)>,
    /// The registry as read in this transaction (see [`StoreTx::list_cities`]), with each mail
    /// domain's index in it.
    cities: Option<cities::Registry>,
    /// Active staff by address, read once per transaction (see [`StoreTx::staff_member`]).
    staff: Option<std::collections::HashMap<String, staff::StaffMember>>,
    /// The process's claim identity, for the claims it writes (see `Store::owner`).
    owner: Arc<owner::Owner>,
}

impl Store {
    /// Connects to the database `url` names (`sqlite://…`, `postgres://…` or
    /// `postgresql://…`); a SQLite file is created if missing. Does not migrate.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Store> {
        let (pool, owner) = match Engine::of_url(url) {
            Some(Engine::Sqlite) => {
                let (pool, path) = backend::sqlite::connect(url, max_connections).await?;
                (Pool::Sqlite(pool), owner::Owner::new(path))
            }
            Some(Engine::Postgres) => {
                let pool = backend::postgres::connect(url, max_connections).await?;
                (Pool::Postgres(pool), owner::Owner::new(None))
            }
            None => anyhow::bail!(
                "database.url `{}` names no engine intake311 knows: use sqlite://PATH or postgres://…",
                backend::postgres::redact(url)
            ),
        };
        Ok(Store { pool, write_lock: Arc::new(tokio::sync::Mutex::new(())), owner: Arc::new(owner), lease_ms: 15_000 })
    }

    /// Sets `database.lease`: how long a daemon's heartbeat and mailbox lease last.
    pub fn with_lease(mut self, lease: std::time::Duration) -> Store {
        self.lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        self
    }

    /// `database.lease` in milliseconds.
    pub fn lease_ms(&self) -> i64 {
        self.lease_ms
    }

    /// The engine behind this store.
    pub fn engine(&self) -> Engine {
        self.pool.engine()
    }

    /// A migrated database in a temporary directory (removed when the guard drops).
    #[cfg(test)]
    pub(crate) async fn for_test() -> anyhow::Result<(tempfile::TempDir, Store)> {
        let dir = tempfile::tempdir()?;
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("t.db").display()), 2).await?;
        store.migrate().await?;
        Ok((dir, store))
    }

    /// The SQLite pool of a test store (tests reach into tables directly).
    #[cfg(test)]
    pub(crate) fn sqlite(&self) -> &sqlx::SqlitePool {
        match &self.pool {
            Pool::Sqlite(p) => p,
            Pool::Postgres(_) => panic!("a SQLite test store was expected"),
        }
    }

    /// Applies every migration not yet applied. Safe to run at every start.
    pub async fn migrate(&self) -> anyhow::Result<usize> {
        let before = self.applied_migrations().await.unwrap_or(0);
        let migrator = migrations_of(self.engine());
        on_pool!(self.pool, db => migrator.run(db).await).context("running database migrations")?;
        let after = self.applied_migrations().await?;
        Ok(after.saturating_sub(before))
    }

    async fn applied_migrations(&self) -> anyhow::Result<usize> {
        let n: i64 = on_pool!(self.pool, db => sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success").fetch_one(db).await)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Opens a write transaction: on SQLite `BEGIN IMMEDIATE`, after this process's other
    /// writers; on PostgreSQL a plain `BEGIN` (READ COMMITTED), whose conflicts are settled by
    /// row locks.
    pub async fn begin(&self) -> anyhow::Result<StoreTx> {
        let (tx, writer) = match &self.pool {
            Pool::Sqlite(p) => {
                let writer = Arc::clone(&self.write_lock).lock_owned().await;
                let tx = p.begin_with("BEGIN IMMEDIATE").await.context("starting a transaction")?;
                (Tx::Sqlite(tx), Some(writer))
            }
            Pool::Postgres(p) => (Tx::Postgres(p.begin().await.context("starting a transaction")?), None),
        };
        Ok(StoreTx {
            tx,
            _writer: writer,
            handoff: Vec::new(),
            savepoints: Vec::new(),
            release_pending: None,
            position: None,
            tracking: None,
            fresh_requests: Default::default(),
            queued_threads: Default::default(),
            cities: None,
            staff: None,
            owner: Arc::clone(&self.owner),
        })
    }

    /// Waits for this process's turn to write, for a single-statement write outside [`StoreTx`]
    /// (SQLite only: PostgreSQL has many writers).
    async fn writer(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.pool {
            Pool::Sqlite(_) => Some(Arc::clone(&self.write_lock).lock_owned().await),
            Pool::Postgres(_) => None,
        }
    }

    /// Size of the database in bytes, for stats and benchmarks.
    pub async fn size_bytes(&self) -> anyhow::Result<i64> {
        match &self.pool {
            Pool::Sqlite(p) => backend::sqlite::size_bytes(p).await,
            Pool::Postgres(p) => backend::postgres::size_bytes(p).await,
        }
    }

    /// The engine and its version ("SQLite 3.50.2", "PostgreSQL 15.8 (Debian …)"), for `check`.
    pub async fn server_version(&self) -> anyhow::Result<String> {
        match &self.pool {
            Pool::Sqlite(p) => backend::sqlite::version(p).await,
            Pool::Postgres(p) => backend::postgres::version(p).await,
        }
    }

    /// Figures for `intake311 stats` and the stall watchdog.
    pub async fn stats(&self) -> anyhow::Result<Stats> {
        let by_status: Vec<(String, i64)> = on_pool!(self.pool, db => sqlx::query_as("SELECT status, COUNT(*) AS n FROM requests GROUP BY status ORDER BY status")
                .fetch_all(db)
                .await)?;
        let last_poll: Option<i64> = on_pool!(self.pool, db => sqlx::query_scalar("SELECT MAX(last_poll_at) FROM mailbox_state").fetch_one(db).await)?;
        let held: i64 = on_pool!(self.pool, db => sqlx::query_scalar("SELECT COUNT(*) FROM quarantine WHERE status = 'held'").fetch_one(db).await)?;
        let suppressed: i64 = on_pool!(self.pool, db => sqlx::query_scalar("SELECT COUNT(*) FROM suppressions WHERE until > $1")
            .bind(now_ms())
            .fetch_one(db)
            .await)?;
        let review: i64 = on_pool!(self.pool, db => sqlx::query_scalar("SELECT COUNT(*) FROM requests WHERE review_reason <> ''").fetch_one(db).await)?;
        Ok(Stats {
            inbound: self.inbound_counts().await?,
            requests_by_status: by_status,
            outbox: self.outbox_stats().await?,
            quarantine_held: held,
            suppressed_addresses: suppressed,
            in_review: review,
            last_poll_at: last_poll,
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

pub(crate) use backend::sqlite::STREAM_BLOB_MIN;

/// The row a streamed blob is written into.
#[derive(Debug, Clone, Copy)]
enum BlobRow<'a> {
    /// SQLite: the rowid.
    Rowid(i64),
    /// PostgreSQL: the row whose integer column is this.
    Id(&'static str, i64),
    /// PostgreSQL: the row whose text column is this.
    Text(&'static str, &'a str),
}

/// A savepoint, and the state kept on this side of the connection when it was taken: how many
/// handoff ids existed, the pending position and the tracking counter, which a ROLLBACK TO it
/// puts back as the database puts back its rows.
struct Mark {
    name: String,
    handoff: usize,
    position: Option<Position>,
    tracking: Option<tracking::Counter>,
}

impl StoreTx {
    /// The engine this transaction runs on.
    pub(crate) fn engine(&self) -> Engine {
        self.tx.engine()
    }

    /// Writes `data` into the blob at `table.column` of the row `key`, which was inserted
    /// zero-filled (SQLite: the row by its rowid) or empty (PostgreSQL: the row whose
    /// `key_column` is `key`), in 1 MiB pieces.
    async fn write_blob(&mut self, table: &str, column: &str, key: BlobRow<'_>, data: &[u8]) -> anyhow::Result<()> {
        match (&mut self.tx, key) {
            (Tx::Sqlite(t), BlobRow::Rowid(id)) => backend::sqlite::write_blob(t, table, column, id, data).await,
            (Tx::Postgres(t), BlobRow::Id(col, id)) => {
                backend::postgres::write_blob(t, table, column, col, id, data).await
            }
            (Tx::Postgres(t), BlobRow::Text(col, id)) => {
                backend::postgres::write_blob(t, table, column, col, id.to_string(), data).await
            }
            _ => anyhow::bail!("blob row {key:?} does not fit this engine"),
        }
    }

    pub async fn commit(mut self) -> anyhow::Result<()> {
        if let Some(p) = self.position.take() {
            self.write_position(&p).await?;
        }
        if let Some(c) = self.tracking.take() {
            self.write_counter(&c).await?;
        }
        self.tx.commit().await.context("committing the transaction")
    }

    /// The savepoint statement `sql`, after a pending RELEASE, in one round trip.
    async fn savepoint_statement(&mut self, sql: String, what: &'static str) -> anyhow::Result<()> {
        let sql = match self.release_pending.take() {
            Some(name) => format!("RELEASE {name}; {sql}"),
            None => sql,
        };
        match &mut self.tx {
            Tx::Sqlite(t) => {
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut **t).await.context(what)?;
            }
            // PostgreSQL refuses two commands in one prepared statement; the simple protocol
            // takes both in one round trip.
            Tx::Postgres(t) => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut **t).await.context(what)?;
            }
        }
        Ok(())
    }

    /// The ids of outbox rows queued leased in this transaction (see `NewOutbox::lease_until`);
    /// hand them to the worker only after [`StoreTx::commit`] returned.
    pub fn take_handoff(&mut self) -> Vec<Handoff> {
        std::mem::take(&mut self.handoff)
    }

    /// Marks a point this transaction can return to ([`StoreTx::rollback_to`]) without giving up
    /// what came before it: one message in a group commit, one all-or-nothing staff command.
    pub async fn savepoint(&mut self, name: &str) -> anyhow::Result<()> {
        self.savepoint_statement(format!("SAVEPOINT {name}"), "SAVEPOINT").await?;
        self.savepoints.push(Mark {
            name: name.to_string(),
            handoff: self.handoff.len(),
            position: self.position.clone(),
            tracking: self.tracking.clone(),
        });
        Ok(())
    }

    /// Keeps what was written since [`StoreTx::savepoint`] (it commits with the transaction).
    /// The RELEASE itself is sent with the next savepoint statement, or not at all when COMMIT
    /// comes first: statements in between stay inside the savepoint, which only matters to a
    /// later ROLLBACK TO it, and that sends the RELEASE first.
    pub fn release(&mut self, name: &str) {
        // A RELEASE still pending is of a savepoint taken inside this one (an outer one
        // released would have released this one too): releasing this one covers it.
        self.release_pending = Some(name.to_string());
        // Releasing a savepoint also releases the ones taken after it.
        if let Some(at) = self.savepoints.iter().rposition(|m| m.name == name) {
            self.savepoints.truncate(at);
        }
    }

    /// Undoes what was written since [`StoreTx::savepoint`]; the savepoint stays, to write
    /// something else under it and [`StoreTx::release`] it.
    pub async fn rollback_to(&mut self, name: &str) -> anyhow::Result<()> {
        self.savepoint_statement(format!("ROLLBACK TO {name}"), "ROLLBACK TO").await?;
        // What was queued under it is gone, and so are the savepoints taken after it.
        self.cities = None;
        if let Some(at) = self.savepoints.iter().rposition(|m| m.name == name) {
            let mark = &self.savepoints[at];
            self.handoff.truncate(mark.handoff);
            self.position = mark.position.clone();
            self.tracking = mark.tracking.clone();
            self.savepoints.truncate(at + 1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod ids_tests;
