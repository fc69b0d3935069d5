//! A request's timeline: who did what, when, and from where (mail, cli, system).
//!
//! Owns the `request_events` table. Talks to: SQLite; [`super::requests`] and the outbox batch
//! their first lines into their own inserts with [`EVENT_INSERT`].

use crate::store::backend::{on_pool, on_tx};
use anyhow::Context as _;
use serde::Serialize;

use super::{Source, Store, StoreTx, now_ms};
use crate::domain::RequestId;

/// One line of a request's timeline.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RequestEvent {
    pub at: i64,
    pub actor: String,
    pub source: String,
    pub event: String,
    pub detail: String,
}

/// A line of a request's timeline, written with the request (see [`StoreTx::open_request`]).
pub struct NewEvent<'a> {
    pub actor: &'a str,
    pub source: Source,
    pub event: &'a str,
    pub detail: &'a str,
}

/// The head of every insert into a request's timeline; the rows follow (`(request_id, at,
/// actor, source, event, detail)` each).
pub(crate) const EVENT_INSERT: &str =
    "INSERT INTO request_events (request_id, at, actor, source, event, detail) VALUES ";
impl StoreTx {
    /// Appends a line to a request's timeline.
    pub async fn add_event(
        &mut self,
        request: RequestId,
        actor: &str,
        source: Source,
        event: &str,
        detail: &str,
    ) -> anyhow::Result<()> {
        on_tx!(self.tx, db => sqlx::query(sqlx::AssertSqlSafe(format!("{EVENT_INSERT}($1, $2, $3, $4, $5, $6)")))
            .bind(request.0)
            .bind(now_ms())
            .bind(actor)
            .bind(source.as_str())
            .bind(event)
            .bind(detail)
            .execute(db)
            .await.map(|r| r.rows_affected()))
        .context("recording a timeline event")?;
        Ok(())
    }
}

impl Store {
    pub async fn request_events(&self, request: i64) -> anyhow::Result<Vec<RequestEvent>> {
        Ok(on_pool!(self.pool, db => sqlx::query_as(
            "SELECT at, actor, source, event, detail FROM request_events WHERE request_id = $1 ORDER BY at, id",
        )
        .bind(request)
        .fetch_all(db)
        .await)?)
    }
}
