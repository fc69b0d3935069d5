//! Several daemons on one database: each one's heartbeat (the `daemons` table), and who polls a
//! mailbox (`mailbox_leases`).
//!
//! A daemon writes its heartbeat every third of `database.lease`; one silent for longer than
//! the lease is dead, and on PostgreSQL (where daemons may run on several hosts) its outbox
//! claims are freed by whoever notices first (see [`Store::recover_dead_claims`]). A mailbox's
//! lease is held by exactly one daemon, which renews it well before it runs out; the others
//! stand by and take it once it has. Both work the same on SQLite, where they cost a write
//! every few seconds. Talks to: the database.

use anyhow::Context as _;

use super::backend::{on_pool, on_tx};
use super::{Store, now_ms};

/// A daemon as its heartbeat row shows it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct DaemonRow {
    pub owner: String,
    pub host: String,
    pub pid: i64,
    pub started_at: i64,
    pub heartbeat_at: i64,
}

/// Who holds a mailbox's lease.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct LeaseRow {
    pub mailbox: String,
    pub owner: String,
    pub host: String,
    pub acquired_at: i64,
    pub expires_at: i64,
}

/// This machine's name, for the rows other hosts read.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

impl Store {
    /// This process's claim id (its `daemons.owner` and `outbox.lease_owner`).
    pub fn owner_id(&self) -> &str {
        self.owner.id()
    }

    /// Records that this daemon is alive, now.
    pub async fn heartbeat(&self) -> anyhow::Result<()> {
        let now = now_ms();
        let _writer = self.writer().await;
        on_pool!(self.pool, db => sqlx::query(
            "INSERT INTO daemons (owner, host, pid, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (owner) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        )
        .bind(self.owner.id())
        .bind(host_name())
        .bind(i64::from(std::process::id()))
        .bind(now)
        .execute(db)
        .await
        .map(|_| ()))
        .context("recording the daemon's heartbeat")
    }

    /// Takes or renews the lease on `mailbox` for `lease_ms` from now. True when this daemon
    /// holds it now (it held it, or the holder's ran out); false when another daemon does.
    pub async fn hold_mailbox(&self, mailbox: &str, lease_ms: i64) -> anyhow::Result<bool> {
        let now = now_ms();
        let _writer = self.writer().await;
        let held: Option<String> = on_pool!(self.pool, db => sqlx::query_scalar(
            "INSERT INTO mailbox_leases (mailbox, owner, host, acquired_at, expires_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (mailbox) DO UPDATE SET owner = excluded.owner, host = excluded.host, \
             acquired_at = CASE WHEN mailbox_leases.owner = excluded.owner THEN mailbox_leases.acquired_at \
                                ELSE excluded.acquired_at END, \
             expires_at = excluded.expires_at \
             WHERE mailbox_leases.owner = excluded.owner OR mailbox_leases.expires_at <= $4 \
             RETURNING owner",
        )
        .bind(mailbox)
        .bind(self.owner.id())
        .bind(host_name())
        .bind(now)
        .bind(now + lease_ms)
        .fetch_optional(db)
        .await)
        .context("taking the mailbox lease")?;
        Ok(held.is_some())
    }

    /// Gives the lease on `mailbox` up, if this daemon holds it, so a stand-by takes over at
    /// once instead of when it runs out.
    pub async fn release_mailbox(&self, mailbox: &str) -> anyhow::Result<()> {
        let _writer = self.writer().await;
        on_pool!(self.pool, db => sqlx::query("DELETE FROM mailbox_leases WHERE mailbox = $1 AND owner = $2")
            .bind(mailbox)
            .bind(self.owner.id())
            .execute(db)
            .await
            .map(|_| ()))
        .context("giving the mailbox lease up")
    }

    /// The daemons that wrote a heartbeat, and the mailbox leases, for `check` and `stats`.
    pub async fn daemons_and_leases(&self) -> anyhow::Result<(Vec<DaemonRow>, Vec<LeaseRow>)> {
        let daemons = on_pool!(self.pool, db => {
            sqlx::query_as("SELECT owner, host, pid, started_at, heartbeat_at FROM daemons ORDER BY started_at")
                .fetch_all(db)
                .await
        })?;
        let leases = on_pool!(self.pool, db => {
            sqlx::query_as("SELECT mailbox, owner, host, acquired_at, expires_at FROM mailbox_leases ORDER BY mailbox")
                .fetch_all(db)
                .await
        })?;
        Ok((daemons, leases))
    }

    /// Claimants of pending outbox rows (other than this process) whose heartbeat is older than
    /// `lease_ms`, or who have none: they are dead.
    pub(crate) async fn silent_claimants(&self, lease_ms: i64) -> anyhow::Result<Vec<String>> {
        Ok(on_pool!(self.pool, db => sqlx::query_scalar(
            "SELECT DISTINCT o.lease_owner FROM outbox o LEFT JOIN daemons d ON d.owner = o.lease_owner \
             WHERE o.status = 'pending' AND o.lease_owner <> '' AND o.lease_owner <> $1 \
             AND (d.owner IS NULL OR d.heartbeat_at < $2)",
        )
        .bind(self.owner.id())
        .bind(now_ms() - lease_ms)
        .fetch_all(db)
        .await)?)
    }

    /// Forgets the heartbeat rows of daemons silent for longer than `lease_ms` (and `owner`'s,
    /// when given: a daemon stopping cleanly).
    pub(crate) async fn forget_daemons(&self, lease_ms: i64, owner: Option<&str>) -> anyhow::Result<u64> {
        let mut tx = self.begin().await?;
        let n = on_tx!(tx.tx, db => sqlx::query("DELETE FROM daemons WHERE heartbeat_at < $1 OR owner = $2")
            .bind(now_ms() - lease_ms)
            .bind(owner.unwrap_or(""))
            .execute(db)
            .await
            .map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(n)
    }
}
