//! Outbox figures: counts by status for `stats` and the rows of one request for
//! `requests show`.
//!
//! Owns: read-only outbox queries. Talks to: SQLite through the pool.

use super::OutboxStats;
use crate::store::Store;
use crate::store::backend::on_pool;

impl Store {
    pub async fn outbox_stats(&self) -> anyhow::Result<OutboxStats> {
        Ok(on_pool!(self.pool, db => sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending, \
             COALESCE(SUM(CASE WHEN status = 'sent' THEN 1 ELSE 0 END), 0) AS sent, \
             COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed, \
             MIN(CASE WHEN status = 'pending' THEN created_at END) AS oldest_pending_at FROM outbox",
        )
        .fetch_one(db)
        .await)?)
    }

    /// `(kind, status, message_id, last_error)` of a request's outbox rows, oldest first.
    pub async fn outbox_for_request(&self, request: i64) -> anyhow::Result<Vec<(String, String, String, String)>> {
        Ok(
            on_pool!(self.pool, db => sqlx::query_as("SELECT kind, status, message_id, last_error FROM outbox WHERE request_id = $1 ORDER BY id")
            .bind(request)
            .fetch_all(db)
            .await)?,
        )
    }
}
