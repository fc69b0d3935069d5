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
mod cities;
mod error;
mod loops;
mod mailbox_state;
mod messages;
mod outbox;
mod owner;
mod participants;
mod requests;
pub mod schema;
mod staff;
mod threading;
mod timeline;
mod tracking;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions as _, Sqlite, SqlitePool, Transaction};

/// Moved to [`crate::domain::city`]; re-exported while callers move.
pub use crate::domain::city::CityRow;
pub use admin::AdminToken;
pub use cities::ContactRow;
pub use error::{Fault, StoreError, fault_of, is_transient};
pub use mailbox_state::MailboxState;
use mailbox_state::Position;
pub use messages::{ConversationMessage, Handled, NewAttachment, NewMessage, QuarantineRow};
pub use outbox::{NewOutbox, OutboxRow, OutboxStats, Recovered};
pub use requests::{IllegalTransition, NewRequest, RequestRow};
pub use staff::{StaffMember, StaffRole};
pub use timeline::{NewEvent, RequestEvent};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

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
    pool: SqlitePool,
    /// SQLite has one writer at a time. Writers of this process queue here, woken in turn the
    /// moment the lock is free, instead of in SQLite's busy handler, which sleeps and polls
    /// (1 ms, 2 ms, 5 ms, … 100 ms) and so adds tens of milliseconds under load. Other processes
    /// (the CLI, a second daemon) still meet on SQLite's lock and `busy_timeout`.
    write_lock: Arc<tokio::sync::Mutex<()>>,
    /// This process's claim identity: its random id (an outbox row's `lease_owner`) and the
    /// locked file that tells other processes it is alive.
    owner: Arc<owner::Owner>,
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
    tx: Transaction<'static, Sqlite>,
    _writer: tokio::sync::OwnedMutexGuard<()>,
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
    /// Opens (creating the file if missing) and configures the database. Does not migrate.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Store> {
        let opts = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("database.url `{url}` is not a valid sqlite URL"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // Savepoint sub-journals (one per message of a group commit) and temporary sort
            // structures stay in memory instead of a temp file written through syscalls: a
            // sub-journal holds only the pages one message changed.
            .pragma("temp_store", "memory")
            // Every statement would otherwise be formatted for a debug log line nobody reads;
            // statements slower than a second are still logged as warnings.
            .log_statements(log::LevelFilter::Off);
        let opts_path = opts.get_filename().to_path_buf();
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(opts)
            .await
            .with_context(|| format!("opening database {url}"))?;
        let on_disk = !(url.contains(":memory:") || url.contains("mode=memory"));
        // Every process must name the same owner files, however it reached the database.
        let db_path = std::fs::canonicalize(&opts_path).unwrap_or(opts_path);
        let owner = owner::Owner::new(on_disk.then_some(db_path));
        Ok(Store { pool, write_lock: Arc::new(tokio::sync::Mutex::new(())), owner: Arc::new(owner) })
    }

    /// A migrated database in a temporary directory (removed when the guard drops).
    #[cfg(test)]
    pub(crate) async fn for_test() -> anyhow::Result<(tempfile::TempDir, Store)> {
        let dir = tempfile::tempdir()?;
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("t.db").display()), 2).await?;
        store.migrate().await?;
        Ok((dir, store))
    }

    /// Applies every migration not yet applied. Safe to run at every start.
    pub async fn migrate(&self) -> anyhow::Result<usize> {
        let before = self.applied_migrations().await.unwrap_or(0);
        SQLITE_MIGRATIONS.run(&self.pool).await.context("running database migrations")?;
        let after = self.applied_migrations().await?;
        Ok(after.saturating_sub(before))
    }

    async fn applied_migrations(&self) -> anyhow::Result<usize> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success").fetch_one(&self.pool).await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Opens a write transaction (`BEGIN IMMEDIATE`), after this process's other writers.
    pub async fn begin(&self) -> anyhow::Result<StoreTx> {
        let writer = Arc::clone(&self.write_lock).lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await.context("starting a transaction")?;
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

    /// Waits for this process's turn to write, for a single-statement write outside [`StoreTx`].
    async fn writer(&self) -> tokio::sync::OwnedMutexGuard<()> {
        Arc::clone(&self.write_lock).lock_owned().await
    }

    /// Size of the database in bytes (page_count * page_size), for stats and benchmarks.
    pub async fn size_bytes(&self) -> anyhow::Result<i64> {
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(&self.pool).await?;
        let size: i64 = sqlx::query_scalar("PRAGMA page_size").fetch_one(&self.pool).await?;
        Ok(pages * size)
    }

    /// Figures for `intake311 stats` and the stall watchdog.
    pub async fn stats(&self) -> anyhow::Result<Stats> {
        let by_status: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) AS n FROM requests GROUP BY status ORDER BY status")
                .fetch_all(&self.pool)
                .await?;
        let last_poll: Option<i64> =
            sqlx::query_scalar("SELECT MAX(last_poll_at) FROM mailbox_state").fetch_one(&self.pool).await?;
        let held: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM quarantine WHERE status = 'held'").fetch_one(&self.pool).await?;
        let suppressed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM suppressions WHERE until > $1")
            .bind(now_ms())
            .fetch_one(&self.pool)
            .await?;
        let review: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM requests WHERE review_reason <> ''").fetch_one(&self.pool).await?;
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

/// Blobs larger than this are written in pieces with SQLite's incremental blob I/O instead of
/// being bound whole: a bound 20 MB blob is copied by sqlx, by SQLite's bind and again into the
/// record, which with the mail itself held over 100 MB at once.
pub(crate) const STREAM_BLOB_MIN: usize = 1024 * 1024;

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
    /// Writes `data` into the (zero-filled, same-sized) blob at `table.column`, row `rowid`, in
    /// 1 MiB pieces, on this transaction's connection.
    async fn write_blob(&mut self, table: &str, column: &str, rowid: i64, data: &[u8]) -> anyhow::Result<()> {
        use libsqlite3_sys as ffi;
        use std::ffi::{CStr, CString};
        let table_c = CString::new(table).context("table name")?;
        let column_c = CString::new(column).context("column name")?;
        let mut handle = self.tx.lock_handle().await.context("locking the SQLite handle")?;
        let db = handle.as_raw_handle().as_ptr();
        let errmsg = |db: *mut ffi::sqlite3| -> String {
            // SAFETY: `db` is the live handle we hold the lock on; sqlite3_errmsg returns a
            // NUL-terminated string owned by SQLite, copied out at once.
            unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)).to_string_lossy().into_owned() }
        };
        let mut blob: *mut ffi::sqlite3_blob = std::ptr::null_mut();
        // SAFETY: the handle is locked for us (no other thread uses it), the names are
        // NUL-terminated, and `blob` is closed on every path below.
        let rc = unsafe {
            ffi::sqlite3_blob_open(db, c"main".as_ptr(), table_c.as_ptr(), column_c.as_ptr(), rowid, 1, &mut blob)
        };
        let fail = |what: &str, code: i32, message: String| StoreError::Sqlite {
            what: format!("{what} blob {table}.{column} #{rowid}"),
            code,
            message,
        };
        if rc != ffi::SQLITE_OK {
            return Err(fail("opening", rc, errmsg(db)).into());
        }
        let mut failure = None;
        for (i, piece) in data.chunks(STREAM_BLOB_MIN).enumerate() {
            let (Ok(len), Ok(offset)) = (i32::try_from(piece.len()), i32::try_from(i * STREAM_BLOB_MIN)) else {
                failure = Some((ffi::SQLITE_TOOBIG, "blob over 2 GiB".to_string()));
                break;
            };
            // SAFETY: `blob` is open for writing and `piece` is valid for `len` bytes.
            let rc = unsafe { ffi::sqlite3_blob_write(blob, piece.as_ptr().cast(), len, offset) };
            if rc != ffi::SQLITE_OK {
                failure = Some((rc, errmsg(db)));
                break;
            }
        }
        // SAFETY: `blob` came from a successful sqlite3_blob_open and is closed exactly once.
        let rc = unsafe { ffi::sqlite3_blob_close(blob) };
        if let Some((code, e)) = failure {
            return Err(fail("writing", code, e).into());
        }
        if rc != ffi::SQLITE_OK {
            return Err(fail("closing", rc, errmsg(db)).into());
        }
        Ok(())
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
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *self.tx).await.context(what)?;
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
