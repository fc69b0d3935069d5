//! Recovering the claims of a process that died holding them: rows its journal names were
//! accepted by the server and are marked sent, the rest are freed at once; a clean stop settles
//! its own claims the same way.
//!
//! Owns: claims of other (dead) processes. Talks to: SQLite and the owner files next to the
//! database ([`crate::store::owner`]).

use crate::store::backend::{on_pool, on_tx};
use anyhow::Context as _;

use super::{MARK_SENT, Recovered, id_list};
use crate::store::{Engine, Store, now_ms, owner};

impl Store {
    /// Finds the claimants of pending rows (and the owner files next to the database) whose
    /// process was killed, by their owner file that nobody holds locked: rows in a dead
    /// claimant's journal were accepted by the server and are marked sent; its other claims are
    /// freed to be claimed at once. Its file is removed.
    pub async fn recover_dead_claims(&self) -> anyhow::Result<Recovered> {
        let mut out = Recovered::default();
        if self.engine() == Engine::Postgres {
            return self.recover_silent_claimants().await;
        }
        if self.owner.db().is_none() {
            return Ok(out);
        }
        // Claimants from the database first, then their files: one that starts in between has
        // its lock before it writes a claim, so it is never taken for dead.
        let mut candidates: std::collections::BTreeSet<String> = on_pool!(self.pool, db => sqlx::query_scalar(
            "SELECT DISTINCT lease_owner FROM outbox WHERE status = 'pending' AND lease_owner <> '' AND lease_owner <> $1",
        )
        .bind(self.owner.id())
        .fetch_all(db)
        .await)
        .context("listing outbox claimants")?
        .into_iter()
        .collect();
        candidates.extend(self.owner.files_on_disk());
        for id in candidates {
            // One claimant we cannot read does not stop the others' recovery.
            match self.recover_claimant(&id).await {
                Ok(Some((marked_sent, released))) => {
                    out.claimants += 1;
                    out.marked_sent += marked_sent;
                    out.released += released;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), claimant = %id, "recovering a claimant's mail failed")
                }
            }
        }
        Ok(out)
    }

    /// Recovers `id`'s claims if it is dead (its owner file there and unlocked): `(marked
    /// sent, freed)`. `None` when it is alive, or has no file and is left to its lease.
    async fn recover_claimant(&self, id: &str) -> anyhow::Result<Option<(u64, u64)>> {
        let mut journal = match self.owner.probe(id).context("checking whether it is alive")? {
            owner::Probe::Dead(journal) => journal,
            owner::Probe::Alive | owner::Probe::NoFile => return Ok(None),
        };
        let accepted = journal.ids().unwrap_or_else(|e| {
            tracing::warn!(error = %e, claimant = %id, "reading a dead claimant's journal failed; its mail is sent again");
            Vec::new()
        });
        let settled = self.settle_claims(id, &accepted).await?;
        if let Err(e) = journal.remove() {
            tracing::warn!(error = %e, claimant = %id, "removing a dead claimant's file failed");
        }
        Ok(Some(settled))
    }

    /// Settles `owner`'s claims in one transaction: its rows in `accepted` (its journal) that
    /// are still pending and still its own are marked sent, its other claims freed. Returns
    /// `(marked sent, freed)`.
    async fn settle_claims(&self, owner: &str, accepted: &[i64]) -> anyhow::Result<(u64, u64)> {
        let (mut marked_sent, now) = (0, now_ms());
        let mut tx = self.begin().await?;
        for chunk in accepted.chunks(500) {
            // Only rows still claimed by that owner: one it never claimed, or that another
            // worker took over after its lease, is not its to mark.
            let sql = format!(
                "{MARK_SENT}, lease_owner = '' WHERE status = 'pending' AND lease_owner = $2 AND id IN ({})",
                id_list(chunk)
            );
            let done = on_tx!(tx.tx, db => sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(now)
                .bind(owner)
                .execute(db)
                .await.map(|r| r.rows_affected()))
            .context("marking journaled rows sent")?;
            marked_sent += done;
        }
        let freed = on_tx!(tx.tx, db => sqlx::query(
            "UPDATE outbox SET lease_until = 0, lease_owner = '' WHERE status = 'pending' AND lease_owner = $1",
        )
        .bind(owner)
        .execute(db)
        .await.map(|r| r.rows_affected()))
        .context("freeing outbox claims")?;
        tx.commit().await?;
        Ok((marked_sent, freed))
    }

    /// PostgreSQL: daemons may run on other hosts, so liveness is the heartbeat in the
    /// database, not a locked file. Rows a silent daemon's server accepted were marked sent
    /// at once (see [`Store::journal_sent`]); its other claims are freed now.
    async fn recover_silent_claimants(&self) -> anyhow::Result<Recovered> {
        let mut out = Recovered::default();
        for id in self.silent_claimants(self.lease_ms).await.context("listing silent claimants")? {
            let (_, released) = self.settle_claims(&id, &[]).await?;
            tracing::info!(claimant = %id, released, "a daemon stopped sending heartbeats: its mail is sent by the others");
            out.claimants += 1;
            out.released += released;
        }
        self.forget_daemons(self.lease_ms * 4, None).await.context("forgetting silent daemons")?;
        Ok(out)
    }

    /// Settles this process's remaining claims for a clean stop: rows its journal names that a
    /// failed mark left pending are marked sent, the rest (handed over and not yet read) freed
    /// for the next daemon to send at once. Returns how many were freed.
    pub async fn release_own_claims(&self) -> anyhow::Result<u64> {
        let accepted = self.owner.unmarked_journal().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "reading our journal failed; unmarked sent mail is sent again");
            Vec::new()
        });
        let (_, freed) = self.settle_claims(self.owner.id(), &accepted).await?;
        self.owner.settled();
        self.forget_daemons(self.lease_ms * 4, Some(self.owner.id())).await?;
        Ok(freed)
    }
}
