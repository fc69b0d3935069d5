//! A worker's side of the outbox: rows handed over after an intake commit, the claim of due
//! rows, lease renewal, the journal of accepted rows, and the end of a pass.
//!
//! Owns: claims held by this process. Talks to: SQLite through the pool and the process's owner
//! file ([`crate::store::owner`]).

use crate::store::backend::{on_pool, on_tx};
use anyhow::Context as _;

use super::{MARK_SENT, OUTBOX_ROW, OutboxRow, StoredOutbox, id_list};
use crate::store::{Engine, Store, now_ms};

impl Store {
    /// Rows handed over by the intake after its commit, still pending and still held by us until
    /// after `held_past` (Unix ms): a row whose lease ran short is left to expire and to the
    /// ordinary claim. A read: no write lock, so sending never waits on intake. Oldest first.
    pub async fn handed_over_outbox(&self, ids: &[i64], held_past: i64) -> anyhow::Result<Vec<OutboxRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {OUTBOX_ROW} FROM outbox WHERE id IN ({}) AND status = 'pending' AND lease_owner = $2 AND lease_until > $1 \
             ORDER BY id",
            id_list(ids)
        );
        let rows: Vec<StoredOutbox> = on_pool!(self.pool, db => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(held_past)
            .bind(self.owner.id())
            .fetch_all(db)
            .await)
        .context("reading handed-over outbox rows")?;
        Ok(rows.into_iter().map(OutboxRow::from).collect())
    }

    /// Claims up to `limit` pending rows due by `now` that no other worker holds, for `lease_ms`.
    /// Only the oldest pending row of each request can be claimed, so mail within a thread goes
    /// out in order even across failures. The claim is one statement, so two daemons never send
    /// the same row; a worker that dies holding a claim lets it expire and the row is sent again
    /// (with the same bytes and Message-ID). Oldest first.
    pub async fn claim_due_outbox(&self, now: i64, limit: i64, lease_ms: i64) -> anyhow::Result<Vec<OutboxRow>> {
        self.owner.ensure()?;
        let _writer = self.writer().await;
        // On PostgreSQL several workers claim at once: rows another worker is claiming right
        // now are skipped rather than waited for, and the outer condition is checked again on
        // the locked row.
        let skip_locked = if self.engine() == Engine::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        let rows: Vec<StoredOutbox> = on_pool!(self.pool, db => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE outbox SET lease_until = $1, lease_owner = $4 WHERE id IN (SELECT id FROM outbox \
             WHERE status = 'pending' AND next_attempt_at <= $2 AND lease_until <= $2 \
             AND NOT EXISTS (SELECT 1 FROM outbox AS earlier WHERE earlier.request_id = outbox.request_id \
             AND earlier.status = 'pending' AND earlier.id < outbox.id) ORDER BY id LIMIT $3{skip_locked}) \
             AND status = 'pending' AND lease_until <= $2 \
             RETURNING {OUTBOX_ROW}"
        )))
        .bind(now + lease_ms)
        .bind(now)
        .bind(limit)
        .bind(self.owner.id())
        .fetch_all(db)
        .await)
        .context("claiming due outbox rows")?;
        let mut out: Vec<OutboxRow> = rows.into_iter().map(OutboxRow::from).collect();
        out.sort_by_key(|r| r.id);
        Ok(out)
    }

    /// When the next pending row falls due, if any.
    pub async fn next_outbox_due(&self) -> anyhow::Result<Option<i64>> {
        Ok(on_pool!(self.pool, db => sqlx::query_scalar(
            "SELECT MIN(CASE WHEN lease_until > next_attempt_at THEN lease_until ELSE next_attempt_at END) \
             FROM outbox WHERE status = 'pending'",
        )
        .fetch_one(db)
        .await)?)
    }

    /// Extends this worker's claim on pending rows it still holds.
    pub async fn renew_outbox_leases(&self, ids: &[i64], until: i64) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        let now = now_ms();
        for chunk in ids.chunks(500) {
            // Only claims that are ours and still running: one that ran out may have been taken.
            let sql = format!(
                "UPDATE outbox SET lease_until = $1 WHERE status = 'pending' AND lease_owner = $2 \
                 AND lease_until > $3 AND id IN ({})",
                id_list(chunk)
            );
            on_tx!(tx.tx, db => sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(until)
                .bind(self.owner.id())
                .bind(now)
                .execute(db)
                .await.map(|r| r.rows_affected()))
            .context("renewing outbox claims")?;
        }
        tx.commit().await
    }

    /// Ends a worker pass in one transaction: `sent` rows were accepted by the server
    /// (`journaled` of them already written to this process's journal by
    /// [`Store::journal_sent`]), `released` rows were not tried and are free to claim again at
    /// once. When marking fails, the journal keeps them for the clean stop or the next daemon
    /// (see [`Store::release_own_claims`]).
    pub async fn finish_outbox_pass(&self, sent: &[i64], released: &[i64], journaled: usize) -> anyhow::Result<()> {
        self.mark_sent_and_released(sent, released).await?;
        self.owner.marked(journaled);
        Ok(())
    }

    /// Writes rows the server accepted to this process's journal and syncs it (see
    /// [`crate::store::owner`]), without waiting for the write lock: from then on a crash before
    /// they are marked sent does not send them again. Returns how many were journaled (none
    /// for an in-memory database, or when the write failed: then only their lease decides).
    ///
    /// On PostgreSQL, where a daemon's files are out of other hosts' reach, the rows are marked
    /// sent in the database at once instead.
    pub async fn journal_sent(&self, sent: &[i64]) -> usize {
        if sent.is_empty() {
            return 0;
        }
        if self.engine() == Engine::Postgres {
            return match self.mark_sent_and_released(sent, &[]).await {
                Ok(()) => sent.len(),
                Err(e) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "marking sent mail failed; a crash before it is marked resends it"
                    );
                    0
                }
            };
        }
        let (owner, ids) = (std::sync::Arc::clone(&self.owner), sent.to_vec());
        let job = tokio::task::spawn_blocking(move || owner.journal_sent(&ids)).await;
        match job.map_err(std::io::Error::other).and_then(|r| r) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "journaling sent mail failed; a crash before it is marked resends it");
                0
            }
        }
    }

    async fn mark_sent_and_released(&self, sent: &[i64], released: &[i64]) -> anyhow::Result<()> {
        let mut tx = self.begin().await?;
        let now = now_ms();
        for chunk in sent.chunks(500) {
            // Only rows still pending: a row marked when the server accepted it is not counted twice.
            let sql = format!("{MARK_SENT} WHERE status = 'pending' AND id IN ({})", id_list(chunk));
            on_tx!(tx.tx, db => sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(now)
                .execute(db)
                .await.map(|r| r.rows_affected()))
            .context("marking outbox rows sent")?;
        }
        for chunk in released.chunks(500) {
            let sql = format!("UPDATE outbox SET lease_until = 0 WHERE id IN ({})", id_list(chunk));
            on_tx!(tx.tx, db => sqlx::query(sqlx::AssertSqlSafe(sql)).execute(db).await.map(|r| r.rows_affected()))
                .context("releasing outbox rows")?;
        }
        tx.commit().await
    }

    /// Takes this process's claim lock now rather than at its first claim, so that a database
    /// directory it cannot write to fails the start instead of the first mail.
    /// On PostgreSQL the heartbeat does that: it is written before any claim.
    pub async fn hold_claims(&self) -> anyhow::Result<()> {
        self.owner.ensure()?;
        self.heartbeat().await
    }

    /// Records a failed attempt and when to try again; `permanent` marks the row failed for good.
    pub async fn mark_attempt_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: i64,
        permanent: bool,
    ) -> anyhow::Result<()> {
        let _writer = self.writer().await;
        on_pool!(self.pool, db => sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2, lease_until = 0, \
             status = CASE WHEN $3 THEN 'failed' ELSE status END WHERE id = $4",
        )
        .bind(error)
        .bind(next_attempt_at)
        .bind(permanent)
        .bind(id)
        .execute(db)
        .await.map(|r| r.rows_affected()))
        .context("recording a failed send")?;
        Ok(())
    }
}
