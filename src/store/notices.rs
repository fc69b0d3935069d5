//! What the deadline scheduler sent (`deadline_notices`), and the open requests it reads.
//!
//! A notice is claimed by its key inside the transaction that queues its mail: the first claim
//! inserts the row, any later one (after a restart, or from another daemon on PostgreSQL, which
//! waits on the key until the first commits) finds it taken. So each reminder and each day's
//! digest is sent exactly once. Talks to: the database.

use super::backend::{on_pool, on_tx};
use super::requests::SELECT_REQUEST;
use super::{RequestRow, Store, StoreTx, now_ms};

/// One notice the scheduler sent (or, for a digest with nothing to report, decided not to).
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct NoticeRow {
    pub key: String,
    pub kind: String,
    pub request_id: Option<i64>,
    pub day: String,
    pub sent_to: String,
    pub message_id: String,
    pub detail: String,
    pub created_at: i64,
}

impl StoreTx {
    /// Claims notice `key`: `true` when this transaction is the first to claim it (send it),
    /// `false` when it was already sent or decided.
    pub async fn claim_notice(
        &mut self,
        key: &str,
        kind: &str,
        request: Option<i64>,
        day: &str,
    ) -> anyhow::Result<bool> {
        let n = on_tx!(self.tx, db => sqlx::query(
            "INSERT INTO deadline_notices (key, kind, request_id, day, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(kind)
        .bind(request)
        .bind(day)
        .bind(now_ms())
        .execute(db)
        .await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Records where a claimed notice went.
    pub async fn notice_sent(
        &mut self,
        key: &str,
        sent_to: &str,
        message_id: &str,
        detail: &str,
    ) -> anyhow::Result<()> {
        on_tx!(self.tx, db => sqlx::query(
            "UPDATE deadline_notices SET sent_to = $1, message_id = $2, detail = $3 WHERE key = $4",
        )
        .bind(sent_to)
        .bind(message_id)
        .bind(detail)
        .bind(key)
        .execute(db)
        .await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}

impl Store {
    /// Requests someone still has to act on: not yet answered (new to waiting on the city,
    /// or without a city), or in review. Oldest first.
    pub async fn open_requests(&self) -> anyhow::Result<Vec<RequestRow>> {
        let sql = format!(
            "{SELECT_REQUEST} WHERE r.status IN ('new', 'acknowledged', 'assigned', 'in_progress', 'waiting_on_city', \
             'needs_city') OR r.review_reason <> '' ORDER BY r.id"
        );
        Ok(on_pool!(self.pool, db => sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(db).await)?)
    }

    /// Whether notice `key` was claimed (sent or decided) already.
    pub async fn notice_claimed(&self, key: &str) -> anyhow::Result<bool> {
        let n: i64 = on_pool!(self.pool, db => sqlx::query_scalar("SELECT COUNT(*) FROM deadline_notices WHERE key = $1")
            .bind(key)
            .fetch_one(db)
            .await)?;
        Ok(n > 0)
    }

    /// The notices sent on `day` (YYYY-MM-DD), in the order they were claimed.
    pub async fn notices_on(&self, day: &str) -> anyhow::Result<Vec<NoticeRow>> {
        Ok(on_pool!(self.pool, db => sqlx::query_as(
            "SELECT key, kind, request_id, day, sent_to, message_id, detail, created_at FROM deadline_notices \
             WHERE day = $1 ORDER BY created_at, key",
        )
        .bind(day)
        .fetch_all(db)
        .await)?)
    }
}
