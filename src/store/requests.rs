//! Requests: opening one (row, participants and first timeline lines in one round trip),
//! reading them, and the changes staff and intake make to them.
//!
//! Owns the `requests` table. Talks to: SQLite; the tracking counter is in
//! [`super::tracking`], the timeline in [`super::timeline`], who belongs to a request's thread
//! in [`super::participants`].

use super::participants::{PARTICIPANT_INSERT, PARTICIPANT_KEEP};
use super::timeline::EVENT_INSERT;
use super::{Engine, NewEvent, Source, Store, StoreTx, now_ms};
use crate::domain::{CityId, Eligibility, RequestId, RequestStatus, TrackingNumber};
use crate::store::backend::Tx;
use crate::store::backend::{on_pool, on_tx};
use anyhow::Context as _;
use serde::Serialize;

/// A request as listed and shown.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RequestRow {
    pub id: i64,
    pub tracking: String,
    pub city_id: Option<i64>,
    pub city: Option<String>,
    pub official_email: String,
    pub official_name: String,
    pub subject: String,
    #[sqlx(try_from = "String")]
    pub status: RequestStatus,
    #[sqlx(try_from = "String")]
    pub eligibility: Eligibility,
    pub eligibility_reason: String,
    pub due_date: Option<String>,
    pub assignee: String,
    pub staff_thread_id: String,
    pub parent_id: Option<i64>,
    /// Why a person must decide the city ('' = not in review).
    pub review_reason: String,
    pub suggested_city_id: Option<i64>,
    /// The arrival date (YYYY-MM-DD): eligibility is evaluated on it.
    pub received_on: String,
    /// The local date the request began to wait on the city (the clock is stopped), or `None`.
    pub clock_paused_on: Option<String>,
    /// Business days the request waited on the city, all told (the due date moved by them).
    pub waited_days: i64,
    /// Business days from arrival to the first reply or response a person sent.
    pub first_response_days: Option<i64>,
    /// Business days from arrival to the response (or to closing, when none was sent).
    pub resolution_days: Option<i64>,
    /// The local date it was resolved (YYYY-MM-DD), and how: response, referral or closed.
    pub resolved_on: Option<String>,
    pub resolved_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A request row for unit tests of pure rules: request `id` (tracking `311-YEAR-000id`) of
/// Dayton, OH, acknowledged, eligible, with nothing else set; a test changes what it needs.
#[cfg(test)]
pub(crate) fn sample_row(id: i64, year: i32) -> RequestRow {
    RequestRow {
        id,
        tracking: format!("311-{year}-{id:04}"),
        city_id: Some(1),
        city: Some("Dayton, OH".into()),
        official_email: "mayor@daytonohio.gov".into(),
        official_name: "Mayor".into(),
        subject: format!("Question {id}"),
        status: RequestStatus::Acknowledged,
        eligibility: Eligibility::Eligible,
        eligibility_reason: String::new(),
        due_date: None,
        assignee: String::new(),
        staff_thread_id: String::new(),
        parent_id: None,
        review_reason: String::new(),
        suggested_city_id: None,
        received_on: String::new(),
        clock_paused_on: None,
        waited_days: 0,
        first_response_days: None,
        resolution_days: None,
        resolved_on: None,
        resolved_by: String::new(),
        created_at: 0,
        updated_at: 0,
    }
}

/// A request's clock fields, as [`StoreTx::set_clock`] writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockFields {
    pub due_date: Option<String>,
    pub clock_paused_on: Option<String>,
    pub waited_days: i64,
    pub first_response_days: Option<i64>,
    pub resolution_days: Option<i64>,
    pub resolved_on: Option<String>,
    pub resolved_by: String,
}

/// What a new request is made of.
#[derive(Debug, Clone)]
pub struct NewRequest<'a> {
    pub tracking: &'a TrackingNumber,
    pub city_id: Option<CityId>,
    pub official_email: &'a str,
    pub official_name: &'a str,
    pub subject: &'a str,
    pub status: RequestStatus,
    pub eligibility: Eligibility,
    pub eligibility_reason: &'a str,
    pub due_date: Option<chrono::NaiveDate>,
    pub parent_id: Option<RequestId>,
    pub review_reason: &'a str,
    pub suggested_city_id: Option<i64>,
    pub received_on: chrono::NaiveDate,
}

/// A status change the transition table does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("request {tracking} cannot move from {from} to {to}")]
pub struct IllegalTransition {
    pub tracking: String,
    pub from: RequestStatus,
    pub to: RequestStatus,
}

pub(super) const SELECT_REQUEST: &str = "SELECT r.id, r.tracking, r.city_id, \
     CASE WHEN c.id IS NULL THEN NULL ELSE c.name || ', ' || c.state END AS city, \
     r.official_email, r.official_name, r.subject, r.status, r.eligibility, r.eligibility_reason, \
     r.due_date, r.assignee, r.staff_thread_id, r.parent_id, r.review_reason, r.suggested_city_id, r.received_on, \
     r.clock_paused_on, r.waited_days, r.first_response_days, r.resolution_days, r.resolved_on, r.resolved_by, r.created_at, r.updated_at \
     FROM requests r LEFT JOIN cities c ON c.id = r.city_id";

fn by_tracking_sql() -> String {
    format!("{SELECT_REQUEST} WHERE r.tracking = $1")
}

fn by_id_sql() -> String {
    format!("{SELECT_REQUEST} WHERE r.id = $1")
}

impl StoreTx {
    /// Opens a request: its row, its participants (`(email, role)`; an address twice counts
    /// once) and the first lines of its timeline, in one round trip to SQLite. Returns the row as
    /// [`StoreTx::request_by_id`] reads it.
    pub async fn open_request(
        &mut self,
        r: &NewRequest<'_>,
        participants: &[(&str, &str)],
        events: &[NewEvent<'_>],
    ) -> anyhow::Result<RequestRow> {
        use std::fmt::Write as _;
        // A few participants go in the same query; the rest of a huge Cc list one row at a time
        // after it, so the bound values stay far below SQLite's limit of 32,766.
        const INLINE: usize = 50;
        let (participants, rest) = participants.split_at(participants.len().min(INLINE));
        let pg = self.engine() == Engine::Postgres;
        // SQLite: the statements one after the other in one prepared query, the new row's id
        // found by its tracking number (last_insert_rowid() moves on with every insert).
        // PostgreSQL refuses several commands in one prepared statement: there the inserts are
        // one statement of data-modifying CTEs, reading the new id from the first.
        let (id, sep) =
            if pg { ("(SELECT id FROM r)", "") } else { ("(SELECT id FROM requests WHERE tracking = $1)", "; ") };
        let mut sql = String::new();
        if pg {
            sql.push_str("WITH r AS (");
        }
        sql.push_str(
            "INSERT INTO requests (tracking, city_id, official_email, official_name, subject, status, \
             eligibility, eligibility_reason, due_date, parent_id, review_reason, suggested_city_id, received_on, \
             created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)",
        );
        if pg {
            sql.push_str(" RETURNING id)");
        }
        sql.push_str(sep);
        let mut n = 14;
        for (i, _) in participants.iter().enumerate() {
            let head = match (i, pg) {
                (0, true) => format!(", p AS ({PARTICIPANT_INSERT}"),
                (0, false) => PARTICIPANT_INSERT.to_string(),
                _ => ", ".to_string(),
            };
            let _ = write!(sql, "{head}({id}, ${}, ${})", n + 1, n + 2);
            n += 2;
        }
        if !participants.is_empty() {
            sql.push_str(PARTICIPANT_KEEP);
            sql.push_str(if pg { ")" } else { sep });
        }
        for (i, _) in events.iter().enumerate() {
            let head = match (i, pg) {
                (0, true) => format!(", e AS ({EVENT_INSERT}"),
                (0, false) => EVENT_INSERT.to_string(),
                _ => ", ".to_string(),
            };
            let _ = write!(sql, "{head}({id}, $14, ${}, ${}, ${}, ${})", n + 1, n + 2, n + 3, n + 4);
            n += 4;
        }
        if !events.is_empty() {
            sql.push_str(if pg { ")" } else { sep });
        }
        if pg {
            sql.push_str(" SELECT id FROM r");
        } else {
            let _ = write!(sql, "{SELECT_REQUEST} WHERE r.tracking = $1");
        }

        macro_rules! binds {
            ($q:expr) => {{
                let mut q = $q
                    .bind(r.tracking.to_string())
                    .bind(r.city_id.map(|c| c.0))
                    .bind(r.official_email)
                    .bind(r.official_name)
                    .bind(r.subject)
                    .bind(r.status.as_str())
                    .bind(r.eligibility.as_str())
                    .bind(r.eligibility_reason)
                    .bind(r.due_date.map(|d| d.to_string()))
                    .bind(r.parent_id.map(|p| p.0))
                    .bind(r.review_reason)
                    .bind(r.suggested_city_id)
                    .bind(r.received_on.to_string())
                    .bind(now_ms());
                for (email, role) in participants {
                    q = q.bind(*email).bind(*role);
                }
                for e in events {
                    q = q.bind(e.actor).bind(e.source.as_str()).bind(e.event).bind(e.detail);
                }
                q
            }};
        }
        let what = || format!("opening request {}", r.tracking);
        let row = match &mut self.tx {
            Tx::Sqlite(t) => {
                // fetch_all: every statement must run, and only the last one returns a row.
                let rows: Vec<RequestRow> =
                    binds!(sqlx::query_as(sqlx::AssertSqlSafe(sql))).fetch_all(&mut **t).await.with_context(what)?;
                rows.into_iter().next_back().context("the new request was not read back")?
            }
            Tx::Postgres(t) => {
                let new: i64 = binds!(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)))
                    .fetch_one(&mut **t)
                    .await
                    .with_context(what)?;
                self.request_by_id(RequestId(new)).await?
            }
        };
        self.fresh_requests.insert(row.id);
        for (email, role) in rest {
            self.add_participant(RequestId(row.id), email, role).await?;
        }
        Ok(row)
    }

    /// [`Store::request_by_tracking`] inside this transaction.
    pub async fn request_by_tracking(&mut self, tracking: &TrackingNumber) -> anyhow::Result<Option<RequestRow>> {
        let sql = by_tracking_sql();
        Ok(
            on_tx!(self.tx, db => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(tracking.to_string()).fetch_optional(db).await)?,
        )
    }

    pub async fn request_by_id(&mut self, id: RequestId) -> anyhow::Result<RequestRow> {
        let sql = by_id_sql();
        let row: Option<RequestRow> =
            on_tx!(self.tx, db => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id.0).fetch_optional(db).await)
                .with_context(|| format!("reading request {}", id.0))?;
        row.with_context(|| format!("request {} does not exist", id.0))
    }

    /// The official's latest message on a request: `(Message-ID, References)`, for threading
    /// what we send to the city under their own conversation.
    pub async fn latest_official_message(
        &mut self,
        request: RequestId,
        official: &str,
    ) -> anyhow::Result<Option<(String, String)>> {
        Ok(on_tx!(self.tx, db => sqlx::query_as(
            "SELECT message_id, refs FROM messages WHERE request_id = $1 AND direction = 'in' AND from_addr = $2 \
             AND kind IN ('question', 'follow_up') ORDER BY id DESC LIMIT 1",
        )
        .bind(request.0)
        .bind(official)
        .fetch_optional(db)
        .await)?)
    }

    /// Moves a request to `to` when the transition table allows it, and records who did it.
    /// Moving to the status it already has is a no-op (`Ok(false)`).
    pub async fn set_status(
        &mut self,
        id: RequestId,
        to: RequestStatus,
        actor: &str,
        source: Source,
    ) -> anyhow::Result<Result<bool, IllegalTransition>> {
        let current = self.request_by_id(id).await?;
        if current.status == to {
            return Ok(Ok(false));
        }
        if !current.status.can_move_to(to) {
            return Ok(Err(IllegalTransition { tracking: current.tracking, from: current.status, to }));
        }
        on_tx!(self.tx, db => sqlx::query("UPDATE requests SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(to.as_str())
            .bind(now_ms())
            .bind(id.0)
            .execute(db)
            .await.map(|r| r.rows_affected()))?;
        self.add_event(id, actor, source, "status", &format!("{} → {}", current.status, to)).await?;
        Ok(Ok(true))
    }

    /// Writes a request's clock: its due date, whether it is stopped, and its business-day
    /// figures (see `deadlines::Clock`).
    pub async fn set_clock(&mut self, id: RequestId, c: &ClockFields) -> anyhow::Result<()> {
        on_tx!(self.tx, db => sqlx::query(
            "UPDATE requests SET due_date = $1, clock_paused_on = $2, waited_days = $3, first_response_days = $4, \
             resolution_days = $5, resolved_on = $6, resolved_by = $7, updated_at = $8 WHERE id = $9",
        )
        .bind(c.due_date.as_deref())
        .bind(c.clock_paused_on.as_deref())
        .bind(c.waited_days)
        .bind(c.first_response_days)
        .bind(c.resolution_days)
        .bind(c.resolved_on.as_deref())
        .bind(&c.resolved_by)
        .bind(now_ms())
        .bind(id.0)
        .execute(db)
        .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn set_assignee(
        &mut self,
        id: RequestId,
        assignee: &str,
        actor: &str,
        source: Source,
    ) -> anyhow::Result<()> {
        on_tx!(self.tx, db => sqlx::query("UPDATE requests SET assignee = $1, updated_at = $2 WHERE id = $3")
            .bind(assignee)
            .bind(now_ms())
            .bind(id.0)
            .execute(db)
            .await.map(|r| r.rows_affected()))?;
        self.add_event(id, actor, source, "assigned", assignee).await
    }

    /// The text of the question that opened a request.
    pub async fn question_text(&mut self, id: RequestId) -> anyhow::Result<String> {
        let text: Option<String> = on_tx!(self.tx, db => sqlx::query_scalar(
            "SELECT body_text FROM messages WHERE request_id = $1 AND direction = 'in' AND kind = 'question' ORDER BY id LIMIT 1",
        )
        .bind(id.0)
        .fetch_optional(db)
        .await)?;
        Ok(text.unwrap_or_default())
    }

    /// Records the city decision (after review, or the official naming their city).
    pub async fn set_city_decision(
        &mut self,
        id: RequestId,
        city: Option<i64>,
        eligibility: Eligibility,
        reason: &str,
        actor: &str,
        source: Source,
    ) -> anyhow::Result<()> {
        on_tx!(self.tx, db => sqlx::query(
            "UPDATE requests SET city_id = $1, eligibility = $2, eligibility_reason = $3, review_reason = '', \
             suggested_city_id = NULL, updated_at = $4 WHERE id = $5",
        )
        .bind(city)
        .bind(eligibility.as_str())
        .bind(reason)
        .bind(now_ms())
        .bind(id.0)
        .execute(db)
        .await.map(|r| r.rows_affected()))?;
        self.add_event(id, actor, source, "city decided", reason).await
    }

    /// Puts a request in the review queue (or takes it out, with an empty reason).
    pub async fn set_review(
        &mut self,
        id: RequestId,
        reason: &str,
        suggested: Option<i64>,
        actor: &str,
        source: Source,
    ) -> anyhow::Result<()> {
        on_tx!(self.tx, db => sqlx::query("UPDATE requests SET review_reason = $1, suggested_city_id = $2, updated_at = $3 WHERE id = $4")
            .bind(reason)
            .bind(suggested)
            .bind(now_ms())
            .bind(id.0)
            .execute(db)
            .await.map(|r| r.rows_affected()))?;
        let event = if reason.is_empty() { "review closed" } else { "needs review" };
        self.add_event(id, actor, source, event, reason).await
    }

    pub async fn set_staff_thread(&mut self, id: RequestId, message_id: &str) -> anyhow::Result<()> {
        on_tx!(self.tx, db => sqlx::query("UPDATE requests SET staff_thread_id = $1 WHERE id = $2")
            .bind(message_id)
            .bind(id.0)
            .execute(db)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}

impl Store {
    /// Requests, newest first, optionally of one status.
    pub async fn list_requests(&self, status: Option<RequestStatus>, limit: i64) -> anyhow::Result<Vec<RequestRow>> {
        let rows = match status {
            Some(s) => on_pool!(self.pool, db => sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{SELECT_REQUEST} WHERE r.status = $1 ORDER BY r.id DESC LIMIT $2"
                )))
                .bind(s.as_str())
                .bind(limit)
                .fetch_all(db)
                .await)?,
            None => {
                on_pool!(self.pool, db => sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_REQUEST} ORDER BY r.id DESC LIMIT $1")))
                    .bind(limit)
                    .fetch_all(db)
                    .await)?
            }
        };
        Ok(rows)
    }

    pub async fn request_by_id(&self, id: i64) -> anyhow::Result<Option<RequestRow>> {
        let sql = by_id_sql();
        on_pool!(self.pool, db => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(db).await)
            .with_context(|| format!("reading request {id}"))
    }

    pub async fn request_by_tracking(&self, tracking: &TrackingNumber) -> anyhow::Result<Option<RequestRow>> {
        let sql = by_tracking_sql();
        Ok(
            on_pool!(self.pool, db => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(tracking.to_string()).fetch_optional(db).await)?,
        )
    }

    /// Requests waiting for a person to decide the city, oldest first.
    pub async fn review_queue(&self) -> anyhow::Result<Vec<RequestRow>> {
        Ok(
            on_pool!(self.pool, db => sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_REQUEST} WHERE r.review_reason <> '' ORDER BY r.id")))
            .fetch_all(db)
            .await)?,
        )
    }

    /// Number of requests per status, for `stats` and tests.
    pub async fn count_requests(&self) -> anyhow::Result<i64> {
        Ok(on_pool!(self.pool, db => sqlx::query_scalar("SELECT COUNT(*) FROM requests").fetch_one(db).await)?)
    }
}

#[cfg(test)]
#[path = "requests_tests.rs"]
mod tests;
