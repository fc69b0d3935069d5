//! The outbox: fully rendered mail waiting to be sent, with its attempts and last error.

use anyhow::Context as _;
use serde::Serialize;
use sqlx::Row as _;

use sqlx::Sqlite;
use sqlx::sqlite::SqliteArguments;

use super::messages::NewMessage;
use super::{Store, StoreTx, now_ms};
use crate::domain::RequestId;

#[derive(Debug, Clone)]
pub struct NewOutbox<'a> {
    pub request_id: Option<RequestId>,
    pub kind: &'a str,
    /// Without angle brackets.
    pub message_id: &'a str,
    pub envelope_from: &'a str,
    pub recipients: &'a [String],
    pub raw: &'a [u8],
    /// The recipient of automatic city-facing mail ('' for everything else).
    pub rate_key: &'a str,
    /// Non-zero: the row is born claimed by this process until this Unix ms, and its id is
    /// handed to the outbox worker once the transaction commits (see [`StoreTx::take_handoff`]).
    pub lease_until: i64,
}

/// Binds an outbox row's ten values in [`OUTBOX_INSERT`]'s order.
fn bind_outbox<'q, O>(
    q: sqlx::query::QueryScalar<'q, Sqlite, O, SqliteArguments>,
    m: &NewOutbox<'q>,
    instance: &'q str,
) -> sqlx::query::QueryScalar<'q, Sqlite, O, SqliteArguments> {
    q.bind(m.request_id.map(|r| r.0))
        .bind(m.kind)
        .bind(m.message_id)
        .bind(m.envelope_from)
        .bind(m.recipients.join("\n"))
        .bind(m.raw)
        .bind(m.rate_key)
        .bind(now_ms())
        .bind(m.lease_until)
        .bind(instance)
}

#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub request_id: Option<i64>,
    pub kind: String,
    pub message_id: String,
    pub envelope_from: String,
    pub recipients: Vec<String>,
    pub raw: Vec<u8>,
    pub attempts: i64,
    /// Unix ms until which this worker holds the row.
    pub lease_until: i64,
}

/// What [`Store::recover_dead_claims`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Dead claimants found (with claims, or only a file left behind).
    pub claimants: usize,
    /// Their rows the server had accepted, now marked sent.
    pub marked_sent: u64,
    /// Their other rows, free to claim now.
    pub released: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutboxStats {
    pub pending: i64,
    pub sent: i64,
    pub failed: i64,
    /// created_at of the oldest pending row.
    pub oldest_pending_at: Option<i64>,
}

const OUTBOX_INSERT: &str = "INSERT INTO outbox (request_id, kind, message_id, envelope_from, recipients, raw, \
     rate_key, next_attempt_at, created_at, lease_until, lease_owner) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, CASE WHEN $9 > 0 THEN $10 ELSE '' END) RETURNING id";

impl StoreTx {
    /// Queues a message, due now, with the messages row that records it (its `outbox_id` set to
    /// the new row) and, for mail of a request, a line of its timeline, in one round trip to
    /// SQLite. Returns the outbox row's id.
    pub async fn enqueue_recorded(
        &mut self,
        m: &NewOutbox<'_>,
        record: &NewMessage<'_>,
        event: Option<&super::NewEvent<'_>>,
    ) -> anyhow::Result<i64> {
        let mut sql = format!("{OUTBOX_INSERT}; {}", super::messages::message_insert(11, Some("last_insert_rowid()")));
        let event = event.filter(|_| m.request_id.is_some());
        if event.is_some() {
            // The outbox row's request ($1) and creation time ($8); the messages row took $11..$31.
            sql.push_str(&format!("; {}($1, $8, $32, $33, $34, $35)", super::requests::EVENT_INSERT));
        }
        if m.lease_until > 0 {
            self.owner.ensure()?;
        }
        let owner = std::sync::Arc::clone(&self.owner);
        let q = bind_outbox(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)), m, owner.id());
        let mut q = super::messages::bind_message(q, record, None);
        if let Some(e) = event {
            q = q.bind(e.actor).bind(e.source.as_str()).bind(e.event).bind(e.detail);
        }
        // fetch_all: every statement must run (a fetch_one could stop at the first row).
        let ids: Vec<i64> =
            q.fetch_all(&mut *self.tx).await.with_context(|| format!("queueing {} {}", m.kind, m.message_id))?;
        let id = ids.first().copied().context("the outbox insert returned no id")?;
        self.enqueued(m, id);
        Ok(id)
    }

    /// The bookkeeping of a queued row: the worker's hand-off and the thread it belongs to.
    fn enqueued(&mut self, m: &NewOutbox<'_>, id: i64) {
        let staff = crate::domain::is_staff_mail(m.kind);
        if m.lease_until > 0 {
            self.handoff.push(super::Handoff { id, staff });
        }
        if let Some(r) = m.request_id {
            self.queued_threads.insert((r.0, staff));
        }
    }

    /// Whether the request has a pending row for the same audience (the city, or staff) that
    /// must go out before a new one: then the new one waits its turn in the ordinary claim.
    pub async fn has_pending_in_thread(&mut self, request: RequestId, staff: bool) -> anyhow::Result<bool> {
        if self.fresh_requests.contains(&request.0) && !self.queued_threads.contains(&(request.0, staff)) {
            return Ok(false);
        }
        let hit: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM outbox WHERE request_id = $1 AND status = 'pending' \
             AND (substr(kind, 1, 6) = 'staff_') = $2 LIMIT 1",
        )
        .bind(request.0)
        .bind(staff)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(hit.is_some())
    }

    /// Why automatic mail to `email` must not go out now, if it must not: a hard bounce not yet
    /// expired, or `limit` automatic mails already queued for it within `window_ms`.
    pub async fn auto_mail_blocked(
        &mut self,
        email: &str,
        limit: u32,
        window_ms: i64,
    ) -> anyhow::Result<Option<String>> {
        let now = now_ms();
        // One statement for both questions: this runs for every acknowledgement.
        let (suppressed, recent): (Option<String>, i64) = sqlx::query_as(
            "SELECT (SELECT reason FROM suppressions WHERE email = $1 AND until > $2), \
             (SELECT COUNT(*) FROM outbox WHERE rate_key = $1 AND created_at > $3)",
        )
        .bind(email)
        .bind(now)
        .bind(now - window_ms)
        .fetch_one(&mut *self.tx)
        .await?;
        if let Some(reason) = suppressed {
            return Ok(Some(format!("{email} is suppressed after a hard bounce ({reason})")));
        }
        if recent >= i64::from(limit) {
            return Ok(Some(format!(
                "rate limit: {recent} automatic mails to {email} in the last {}",
                humanize_ms(window_ms)
            )));
        }
        Ok(None)
    }

    /// Records a bounce on the outbox row with this Message-ID; a `hard` one of a sent row marks
    /// it failed (a pending row is still retried). Returns `(row id, request id)`.
    pub async fn mark_bounced(
        &mut self,
        message_id: &str,
        status: &str,
        error: &str,
        hard: bool,
    ) -> anyhow::Result<Option<(i64, Option<i64>)>> {
        let row = sqlx::query(
            "UPDATE outbox SET bounce_status = $1, last_error = $2, \
             status = CASE WHEN $4 AND status = 'sent' THEN 'failed' ELSE status END WHERE message_id = $3 \
             RETURNING id, request_id",
        )
        .bind(status)
        .bind(error)
        .bind(message_id)
        .bind(hard)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(match row {
            Some(r) => Some((r.try_get("id")?, r.try_get("request_id")?)),
            None => None,
        })
    }

    /// `(kind, request id)` of the outbox row with this Message-ID.
    pub async fn outbox_row_of(&mut self, message_id: &str) -> anyhow::Result<Option<(String, Option<i64>)>> {
        let row = sqlx::query("SELECT kind, request_id FROM outbox WHERE message_id = $1")
            .bind(message_id)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(match row {
            Some(r) => Some((r.try_get("kind")?, r.try_get("request_id")?)),
            None => None,
        })
    }

    /// No automatic mail to `email` until `until` (a later hard bounce extends it).
    pub async fn suppress(&mut self, email: &str, until: i64, reason: &str) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO suppressions (email, until, reason, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (email) DO UPDATE SET until = excluded.until, reason = excluded.reason",
        )
        .bind(email)
        .bind(until)
        .bind(reason)
        .bind(now_ms())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

/// What marking a row sent (accepted by the server, at `$1`) writes, whoever marks it.
const MARK_SENT: &str =
    "UPDATE outbox SET status = 'sent', sent_at = $1, attempts = attempts + 1, last_error = '', lease_until = 0";

/// `1,2,3`: row ids are integers we read ourselves, so they are written into the SQL directly
/// (one statement for a whole batch instead of one bound statement per row).
fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

fn humanize_ms(ms: i64) -> String {
    humantime::format_duration(std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0))).to_string()
}

/// The columns [`outbox_row`] reads.
const OUTBOX_ROW: &str = "id, request_id, kind, message_id, envelope_from, recipients, raw, attempts, lease_until";

fn outbox_row(r: &sqlx::sqlite::SqliteRow) -> anyhow::Result<OutboxRow> {
    let recipients: String = r.try_get("recipients")?;
    Ok(OutboxRow {
        id: r.try_get("id")?,
        request_id: r.try_get("request_id")?,
        kind: r.try_get("kind")?,
        message_id: r.try_get("message_id")?,
        envelope_from: r.try_get("envelope_from")?,
        recipients: recipients.lines().map(str::to_string).collect(),
        raw: r.try_get("raw")?,
        attempts: r.try_get("attempts")?,
        lease_until: r.try_get("lease_until")?,
    })
}

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
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(held_past)
            .bind(self.owner.id())
            .fetch_all(&self.pool)
            .await
            .context("reading handed-over outbox rows")?;
        rows.iter().map(outbox_row).collect()
    }

    /// Claims up to `limit` pending rows due by `now` that no other worker holds, for `lease_ms`.
    /// Only the oldest pending row of each request can be claimed, so mail within a thread goes
    /// out in order even across failures. The claim is one statement, so two daemons never send
    /// the same row; a worker that dies holding a claim lets it expire and the row is sent again
    /// (with the same bytes and Message-ID). Oldest first.
    pub async fn claim_due_outbox(&self, now: i64, limit: i64, lease_ms: i64) -> anyhow::Result<Vec<OutboxRow>> {
        self.owner.ensure()?;
        let _writer = self.writer().await;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE outbox SET lease_until = $1, lease_owner = $4 WHERE id IN (SELECT id FROM outbox \
             WHERE status = 'pending' AND next_attempt_at <= $2 AND lease_until <= $2 \
             AND NOT EXISTS (SELECT 1 FROM outbox AS earlier WHERE earlier.request_id = outbox.request_id \
             AND earlier.status = 'pending' AND earlier.id < outbox.id) ORDER BY id LIMIT $3) \
             AND status = 'pending' AND lease_until <= $2 \
             RETURNING {OUTBOX_ROW}"
        )))
        .bind(now + lease_ms)
        .bind(now)
        .bind(limit)
        .bind(self.owner.id())
        .fetch_all(&self.pool)
        .await
        .context("claiming due outbox rows")?;
        let mut out = rows.iter().map(outbox_row).collect::<anyhow::Result<Vec<_>>>()?;
        out.sort_by_key(|r| r.id);
        Ok(out)
    }

    /// When the next pending row falls due, if any.
    pub async fn next_outbox_due(&self) -> anyhow::Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(CASE WHEN lease_until > next_attempt_at THEN lease_until ELSE next_attempt_at END) \
             FROM outbox WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?)
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
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(until)
                .bind(self.owner.id())
                .bind(now)
                .execute(&mut *tx.tx)
                .await
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
    /// [`super::owner`]), without waiting for the write lock: from then on a crash before
    /// they are marked sent does not send them again. Returns how many were journaled (none
    /// for an in-memory database, or when the write failed: then only their lease decides).
    pub async fn journal_sent(&self, sent: &[i64]) -> usize {
        if sent.is_empty() {
            return 0;
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
            let sql = format!("{MARK_SENT} WHERE id IN ({})", id_list(chunk));
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(now)
                .execute(&mut *tx.tx)
                .await
                .context("marking outbox rows sent")?;
        }
        for chunk in released.chunks(500) {
            let sql = format!("UPDATE outbox SET lease_until = 0 WHERE id IN ({})", id_list(chunk));
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *tx.tx).await.context("releasing outbox rows")?;
        }
        tx.commit().await
    }

    /// Takes this process's claim lock now rather than at its first claim, so that a database
    /// directory it cannot write to fails the start instead of the first mail.
    pub fn hold_claims(&self) -> anyhow::Result<()> {
        self.owner.ensure()
    }

    /// Finds the claimants of pending rows (and the owner files next to the database) whose
    /// process was killed, by their owner file that nobody holds locked: rows in a dead
    /// claimant's journal were accepted by the server and are marked sent; its other claims are
    /// freed to be claimed at once. Its file is removed.
    pub async fn recover_dead_claims(&self) -> anyhow::Result<Recovered> {
        let mut out = Recovered::default();
        if self.owner.db().is_none() {
            return Ok(out);
        }
        // Claimants from the database first, then their files: one that starts in between has
        // its lock before it writes a claim, so it is never taken for dead.
        let mut candidates: std::collections::BTreeSet<String> = sqlx::query_scalar(
            "SELECT DISTINCT lease_owner FROM outbox WHERE status = 'pending' AND lease_owner <> '' AND lease_owner <> $1",
        )
        .bind(self.owner.id())
        .fetch_all(&self.pool)
        .await
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
            super::owner::Probe::Dead(journal) => journal,
            super::owner::Probe::Alive | super::owner::Probe::NoFile => return Ok(None),
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
            let done = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(now)
                .bind(owner)
                .execute(&mut *tx.tx)
                .await
                .context("marking journaled rows sent")?;
            marked_sent += done.rows_affected();
        }
        let freed = sqlx::query(
            "UPDATE outbox SET lease_until = 0, lease_owner = '' WHERE status = 'pending' AND lease_owner = $1",
        )
        .bind(owner)
        .execute(&mut *tx.tx)
        .await
        .context("freeing outbox claims")?;
        tx.commit().await?;
        Ok((marked_sent, freed.rows_affected()))
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
        Ok(freed)
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
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2, lease_until = 0, \
             status = CASE WHEN $3 THEN 'failed' ELSE status END WHERE id = $4",
        )
        .bind(error)
        .bind(next_attempt_at)
        .bind(permanent)
        .bind(id)
        .execute(&self.pool)
        .await
        .context("recording a failed send")?;
        Ok(())
    }

    pub async fn outbox_stats(&self) -> anyhow::Result<OutboxStats> {
        let r = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending, \
             COALESCE(SUM(CASE WHEN status = 'sent' THEN 1 ELSE 0 END), 0) AS sent, \
             COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed, \
             MIN(CASE WHEN status = 'pending' THEN created_at END) AS oldest FROM outbox",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(OutboxStats {
            pending: r.try_get("pending")?,
            sent: r.try_get("sent")?,
            failed: r.try_get("failed")?,
            oldest_pending_at: r.try_get("oldest")?,
        })
    }

    /// `(kind, status, message_id, last_error)` of a request's outbox rows, oldest first.
    pub async fn outbox_for_request(&self, request: i64) -> anyhow::Result<Vec<(String, String, String, String)>> {
        let rows =
            sqlx::query("SELECT kind, status, message_id, last_error FROM outbox WHERE request_id = $1 ORDER BY id")
                .bind(request)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("kind")?, r.try_get("status")?, r.try_get("message_id")?, r.try_get("last_error")?)))
            .collect()
    }
}

/// An acknowledgement-like outbox row to mayor@dayton.test, for tests.
#[cfg(test)]
pub(super) fn test_ack<'a>(
    message_id: &'a str,
    request_id: Option<RequestId>,
    recipients: &'a [String],
    lease_until: i64,
) -> NewOutbox<'a> {
    NewOutbox {
        request_id,
        kind: "ack_eligible",
        message_id,
        envelope_from: "intake@311.test",
        recipients,
        raw: b"Subject: hi\r\n\r\nhello\r\n",
        rate_key: "",
        lease_until,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The outbox row and its messages row are written together and point at each other; a
    /// row born claimed is handed to the worker.
    #[tokio::test]
    async fn a_queued_mail_is_recorded_with_its_outbox_row() -> anyhow::Result<()> {
        let (_dir, store) = Store::for_test().await?;
        let mut tx = store.begin().await?;
        let recipients = vec!["mayor@dayton.test".to_string()];
        let mut ids = Vec::new();
        for (n, lease_until) in [(1, 0), (2, now_ms() + 60_000)] {
            let message_id = format!("ack{n}@311.test");
            let id = tx
                .enqueue_recorded(
                    &test_ack(&message_id, None, &recipients, lease_until),
                    &NewMessage {
                        direction: "out",
                        kind: "ack_eligible",
                        message_id: &message_id,
                        subject: "hi",
                        ..Default::default()
                    },
                    None,
                )
                .await?;
            ids.push(id);
        }
        assert_eq!(tx.take_handoff().iter().map(|h| h.id).collect::<Vec<_>>(), vec![ids[1]], "only the claimed row");
        tx.commit().await?;
        let rows: Vec<(String, Option<i64>, i64)> = sqlx::query_as(
            "SELECT m.message_id, m.outbox_id, o.id FROM messages m JOIN outbox o ON o.message_id = m.message_id \
             ORDER BY o.id",
        )
        .fetch_all(&store.pool)
        .await?;
        assert_eq!(rows.len(), 2, "{rows:?}");
        for (row, id) in rows.iter().zip(&ids) {
            assert_eq!((row.1, row.2), (Some(*id), *id), "{rows:?}");
        }
        Ok(())
    }

    /// Queues `n` acknowledgements, unclaimed and due now. Their row ids.
    async fn queue_acks(store: &Store, n: usize) -> anyhow::Result<Vec<i64>> {
        let recipients = vec!["mayor@dayton.test".to_string()];
        let mut tx = store.begin().await?;
        let mut ids = Vec::new();
        for n in 0..n {
            let message_id = format!("ack{n}@311.test");
            let record =
                NewMessage { direction: "out", kind: "ack_eligible", message_id: &message_id, ..Default::default() };
            ids.push(tx.enqueue_recorded(&test_ack(&message_id, None, &recipients, 0), &record, None).await?);
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// A daemon killed with claims: the rows its journal names were accepted by the server and
    /// are marked sent, its other claims are free at once, and its file goes. While it lived,
    /// another process left its claims alone.
    #[tokio::test]
    async fn a_dead_claimants_journaled_rows_are_marked_sent_and_the_rest_freed() -> anyhow::Result<()> {
        let (dir, a) = Store::for_test().await?;
        let ids = queue_acks(&a, 4).await?;
        let claimed = a.claim_due_outbox(now_ms(), 10, 600_000).await?;
        assert_eq!(claimed.iter().map(|r| r.id).collect::<Vec<_>>(), ids);
        // The server accepted the first two; the daemon dies before marking them.
        assert_eq!(a.journal_sent(&ids[..2]).await, 2);

        let b = Store::connect(&format!("sqlite://{}", dir.path().join("t.db").display()), 2).await?;
        assert_eq!(b.recover_dead_claims().await?, Recovered::default(), "a live claimant is left alone");
        assert!(b.claim_due_outbox(now_ms(), 10, 600_000).await?.is_empty(), "its claims hold");

        a.close().await;
        drop(a);
        let r = b.recover_dead_claims().await?;
        assert_eq!(r, Recovered { claimants: 1, marked_sent: 2, released: 2 });
        let statuses: Vec<(i64, String, i64)> =
            sqlx::query_as("SELECT id, status, attempts FROM outbox ORDER BY id").fetch_all(&b.pool).await?;
        assert_eq!(
            statuses,
            vec![
                (ids[0], "sent".to_string(), 1),
                (ids[1], "sent".to_string(), 1),
                (ids[2], "pending".to_string(), 0),
                (ids[3], "pending".to_string(), 0)
            ]
        );
        let again = b.claim_due_outbox(now_ms(), 10, 600_000).await?;
        assert_eq!(again.iter().map(|r| r.id).collect::<Vec<_>>(), ids[2..], "freed at once, not after the lease");
        assert_eq!(b.owner.files_on_disk(), vec![b.owner.id().to_string()], "the dead claimant's file is gone");
        assert_eq!(b.recover_dead_claims().await?, Recovered::default(), "nothing left to recover");
        Ok(())
    }

    /// A clean stop settles what it still holds (a row whose mark failed is in its journal and
    /// is marked sent; the rest is freed) and removes its file; an owner without a file (an
    /// older version, say) may be alive, so its claims wait for their lease.
    #[tokio::test]
    async fn a_clean_stop_settles_its_claims_and_an_owner_without_a_file_keeps_them() -> anyhow::Result<()> {
        let (dir, a) = Store::for_test().await?;
        let ids = queue_acks(&a, 3).await?;
        assert_eq!(a.claim_due_outbox(now_ms(), 2, 600_000).await?.len(), 2);
        // The server accepted the first; marking it failed.
        assert_eq!(a.journal_sent(&ids[..1]).await, 1);
        // The third row claimed by a process that never had an owner file.
        sqlx::query("UPDATE outbox SET lease_until = $1, lease_owner = 'abc123' WHERE id = $2")
            .bind(now_ms() + 600_000)
            .bind(ids[2])
            .execute(&a.pool)
            .await?;
        let b = Store::connect(&format!("sqlite://{}", dir.path().join("t.db").display()), 2).await?;
        assert_eq!(b.recover_dead_claims().await?, Recovered::default());
        assert_eq!(a.release_own_claims().await?, 1, "the unsent row is freed");
        a.close().await;
        drop(a);
        assert!(b.owner.files_on_disk().is_empty(), "a clean stop removes its file");
        let statuses: Vec<String> =
            sqlx::query_scalar("SELECT status FROM outbox ORDER BY id").fetch_all(&b.pool).await?;
        assert_eq!(statuses, ["sent", "pending", "pending"], "the journaled row is marked sent");
        let again = b.claim_due_outbox(now_ms(), 10, 600_000).await?;
        assert_eq!(again.iter().map(|r| r.id).collect::<Vec<_>>(), vec![ids[1]], "freed by the clean stop only");
        Ok(())
    }
}
