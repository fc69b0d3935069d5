//! The outbox: fully rendered mail waiting to be sent, with its attempts and last error.

use anyhow::Context as _;
use serde::Serialize;
use sqlx::Row as _;

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
}

#[derive(Debug, Clone, Serialize)]
pub struct OutboxStats {
    pub pending: i64,
    pub sent: i64,
    pub failed: i64,
    /// created_at of the oldest pending row.
    pub oldest_pending_at: Option<i64>,
}

impl StoreTx {
    /// Queues a message, due now. Returns the row id.
    pub async fn enqueue(&mut self, m: &NewOutbox<'_>) -> anyhow::Result<i64> {
        let now = now_ms();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO outbox (request_id, kind, message_id, envelope_from, recipients, raw, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
        )
        .bind(m.request_id.map(|r| r.0))
        .bind(m.kind)
        .bind(m.message_id)
        .bind(m.envelope_from)
        .bind(m.recipients.join("\n"))
        .bind(m.raw)
        .bind(now)
        .fetch_one(&mut *self.tx)
        .await
        .with_context(|| format!("queueing {} {}", m.kind, m.message_id))?;
        Ok(id)
    }
}

impl Store {
    /// Claims up to `limit` pending rows due by `now` that no other worker holds, for `lease_ms`.
    /// Only the oldest pending row of each request can be claimed, so mail within a thread goes
    /// out in order even across failures. The claim is one statement, so two daemons never send
    /// the same row; a worker that dies holding a claim lets it expire and the row is sent again
    /// (with the same bytes and Message-ID). Oldest first.
    pub async fn claim_due_outbox(&self, now: i64, limit: i64, lease_ms: i64) -> anyhow::Result<Vec<OutboxRow>> {
        let rows = sqlx::query(
            "UPDATE outbox SET lease_until = $1 WHERE id IN (SELECT id FROM outbox \
             WHERE status = 'pending' AND next_attempt_at <= $2 AND lease_until <= $2 \
             AND NOT EXISTS (SELECT 1 FROM outbox AS earlier WHERE earlier.request_id = outbox.request_id \
             AND earlier.status = 'pending' AND earlier.id < outbox.id) ORDER BY id LIMIT $3) \
             RETURNING id, request_id, kind, message_id, envelope_from, recipients, raw, attempts",
        )
        .bind(now + lease_ms)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context("claiming due outbox rows")?;
        let mut out = rows
            .iter()
            .map(|r| {
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
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
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

    pub async fn mark_sent(&self, id: i64) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE outbox SET status = 'sent', sent_at = $1, attempts = attempts + 1, last_error = '', lease_until = 0 \
             WHERE id = $2",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await
        .context("marking an outbox row sent")?;
        Ok(())
    }

    /// Records a failed attempt and when to try again; `permanent` marks the row failed for good.
    pub async fn mark_attempt_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: i64,
        permanent: bool,
    ) -> anyhow::Result<()> {
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
