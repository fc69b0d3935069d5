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
mod mailbox_state;
mod messages;
mod outbox;
mod requests;
mod staff;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

pub use admin::AdminToken;
pub use cities::{CityRow, ContactRow};
pub use mailbox_state::MailboxState;
pub use messages::{Handled, NewAttachment, NewMessage, QuarantineRow};
pub use outbox::{NewOutbox, OutboxRow, OutboxStats};
pub use requests::{IllegalTransition, NewRequest, RequestEvent, RequestRow};
pub use staff::{StaffMember, StaffRole};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Milliseconds since the Unix epoch, as stored in every timestamp column.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

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

/// The pool. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

/// Writes that commit together or not at all. Dropping it without [`StoreTx::commit`] rolls back.
pub struct StoreTx {
    tx: Transaction<'static, Sqlite>,
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
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(opts)
            .await
            .with_context(|| format!("opening database {url}"))?;
        Ok(Store { pool })
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

    /// Opens a write transaction (`BEGIN IMMEDIATE`).
    pub async fn begin(&self) -> anyhow::Result<StoreTx> {
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await.context("starting a transaction")?;
        Ok(StoreTx { tx })
    }

    /// Size of the database in bytes (page_count * page_size), for stats and benchmarks.
    pub async fn size_bytes(&self) -> anyhow::Result<i64> {
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(&self.pool).await?;
        let size: i64 = sqlx::query_scalar("PRAGMA page_size").fetch_one(&self.pool).await?;
        Ok(pages * size)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl StoreTx {
    pub async fn commit(self) -> anyhow::Result<()> {
        self.tx.commit().await.context("committing the transaction")
    }
}
