//! Requests: opening one (row, participants and first timeline lines in one round trip),
//! reading them, and the changes staff and intake make to them.
//!
//! Owns the `requests` table. Talks to: SQLite; the tracking counter is in
//! [`super::tracking`], the timeline in [`super::timeline`], who belongs to a request's thread
//! in [`super::participants`].

use super::participants::{PARTICIPANT_INSERT, PARTICIPANT_KEEP};
use super::timeline::EVENT_INSERT;
use super::{NewEvent, Source, Store, StoreTx, now_ms};
use crate::domain::{CityId, Eligibility, RequestId, RequestStatus, TrackingNumber};
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
    pub created_at: i64,
    pub updated_at: i64,
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

const SELECT_REQUEST: &str = "SELECT r.id, r.tracking, r.city_id, \
     CASE WHEN c.id IS NULL THEN NULL ELSE c.name || ', ' || c.state END AS city, \
     r.official_email, r.official_name, r.subject, r.status, r.eligibility, r.eligibility_reason, \
     r.due_date, r.assignee, r.staff_thread_id, r.parent_id, r.review_reason, r.suggested_city_id, r.received_on, \
     r.created_at, r.updated_at \
     FROM requests r LEFT JOIN cities c ON c.id = r.city_id";

async fn request_by_tracking_in<'e>(
    db: impl sqlx::SqliteExecutor<'e>,
    tracking: &TrackingNumber,
) -> anyhow::Result<Option<RequestRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_REQUEST} WHERE r.tracking = $1")))
        .bind(tracking.to_string())
        .fetch_optional(db)
        .await?)
}

async fn request_by_id_in<'e>(db: impl sqlx::SqliteExecutor<'e>, id: i64) -> anyhow::Result<Option<RequestRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_REQUEST} WHERE r.id = $1")))
        .bind(id)
        .fetch_optional(db)
        .await
        .with_context(|| format!("reading request {id}"))
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
        let mut sql = String::from(
            "INSERT INTO requests (tracking, city_id, official_email, official_name, subject, status, \
             eligibility, eligibility_reason, due_date, parent_id, review_reason, suggested_city_id, received_on, \
             created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14); ",
        );
        // The new row's id, found by its tracking number: last_insert_rowid() moves on with
        // every insert after the first.
        let id = "(SELECT id FROM requests WHERE tracking = $1)";
        let mut n = 14;
        for (i, _) in participants.iter().enumerate() {
            let head = if i == 0 { PARTICIPANT_INSERT } else { ", " };
            let _ = write!(sql, "{head}({id}, ${}, ${})", n + 1, n + 2);
            n += 2;
        }
        if !participants.is_empty() {
            sql.push_str(PARTICIPANT_KEEP);
            sql.push_str("; ");
        }
        for (i, _) in events.iter().enumerate() {
            let head = if i == 0 { EVENT_INSERT } else { ", " };
            let _ = write!(sql, "{head}({id}, $14, ${}, ${}, ${}, ${})", n + 1, n + 2, n + 3, n + 4);
            n += 4;
        }
        if !events.is_empty() {
            sql.push_str("; ");
        }
        let _ = write!(sql, "{SELECT_REQUEST} WHERE r.tracking = $1");

        let mut q = sqlx::query_as::<_, RequestRow>(sqlx::AssertSqlSafe(sql))
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
        // fetch_all: every statement must run, and only the last one returns a row.
        let rows = q.fetch_all(&mut *self.tx).await.with_context(|| format!("opening request {}", r.tracking))?;
        let row = rows.into_iter().next_back().context("the new request was not read back")?;
        self.fresh_requests.insert(row.id);
        for (email, role) in rest {
            self.add_participant(RequestId(row.id), email, role).await?;
        }
        Ok(row)
    }

    /// [`Store::request_by_tracking`] inside this transaction.
    pub async fn request_by_tracking(&mut self, tracking: &TrackingNumber) -> anyhow::Result<Option<RequestRow>> {
        request_by_tracking_in(&mut *self.tx, tracking).await
    }

    pub async fn request_by_id(&mut self, id: RequestId) -> anyhow::Result<RequestRow> {
        request_by_id_in(&mut *self.tx, id.0).await?.with_context(|| format!("request {} does not exist", id.0))
    }

    /// The official's latest message on a request: `(Message-ID, References)`, for threading
    /// what we send to the city under their own conversation.
    pub async fn latest_official_message(
        &mut self,
        request: RequestId,
        official: &str,
    ) -> anyhow::Result<Option<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT message_id, refs FROM messages WHERE request_id = $1 AND direction = 'in' AND from_addr = $2 \
             AND kind IN ('question', 'follow_up') ORDER BY id DESC LIMIT 1",
        )
        .bind(request.0)
        .bind(official)
        .fetch_optional(&mut *self.tx)
        .await?)
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
        sqlx::query("UPDATE requests SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(to.as_str())
            .bind(now_ms())
            .bind(id.0)
            .execute(&mut *self.tx)
            .await?;
        self.add_event(id, actor, source, "status", &format!("{} → {}", current.status, to)).await?;
        Ok(Ok(true))
    }

    pub async fn set_assignee(
        &mut self,
        id: RequestId,
        assignee: &str,
        actor: &str,
        source: Source,
    ) -> anyhow::Result<()> {
        sqlx::query("UPDATE requests SET assignee = $1, updated_at = $2 WHERE id = $3")
            .bind(assignee)
            .bind(now_ms())
            .bind(id.0)
            .execute(&mut *self.tx)
            .await?;
        self.add_event(id, actor, source, "assigned", assignee).await
    }

    /// The text of the question that opened a request.
    pub async fn question_text(&mut self, id: RequestId) -> anyhow::Result<String> {
        let text: Option<String> = sqlx::query_scalar(
            "SELECT body_text FROM messages WHERE request_id = $1 AND direction = 'in' AND kind = 'question' ORDER BY id LIMIT 1",
        )
        .bind(id.0)
        .fetch_optional(&mut *self.tx)
        .await?;
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
        sqlx::query(
            "UPDATE requests SET city_id = $1, eligibility = $2, eligibility_reason = $3, review_reason = '', \
             suggested_city_id = NULL, updated_at = $4 WHERE id = $5",
        )
        .bind(city)
        .bind(eligibility.as_str())
        .bind(reason)
        .bind(now_ms())
        .bind(id.0)
        .execute(&mut *self.tx)
        .await?;
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
        sqlx::query("UPDATE requests SET review_reason = $1, suggested_city_id = $2, updated_at = $3 WHERE id = $4")
            .bind(reason)
            .bind(suggested)
            .bind(now_ms())
            .bind(id.0)
            .execute(&mut *self.tx)
            .await?;
        let event = if reason.is_empty() { "review closed" } else { "needs review" };
        self.add_event(id, actor, source, event, reason).await
    }

    pub async fn set_staff_thread(&mut self, id: RequestId, message_id: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE requests SET staff_thread_id = $1 WHERE id = $2")
            .bind(message_id)
            .bind(id.0)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}

impl Store {
    /// Requests, newest first, optionally of one status.
    pub async fn list_requests(&self, status: Option<RequestStatus>, limit: i64) -> anyhow::Result<Vec<RequestRow>> {
        let rows = match status {
            Some(s) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{SELECT_REQUEST} WHERE r.status = $1 ORDER BY r.id DESC LIMIT $2"
                )))
                .bind(s.as_str())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_REQUEST} ORDER BY r.id DESC LIMIT $1")))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows)
    }

    pub async fn request_by_id(&self, id: i64) -> anyhow::Result<Option<RequestRow>> {
        request_by_id_in(&self.pool, id).await
    }

    pub async fn request_by_tracking(&self, tracking: &TrackingNumber) -> anyhow::Result<Option<RequestRow>> {
        request_by_tracking_in(&self.pool, tracking).await
    }

    /// Requests waiting for a person to decide the city, oldest first.
    pub async fn review_queue(&self) -> anyhow::Result<Vec<RequestRow>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_REQUEST} WHERE r.review_reason <> '' ORDER BY r.id")))
            .fetch_all(&self.pool)
            .await?)
    }

    /// Number of requests per status, for `stats` and tests.
    pub async fn count_requests(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM requests").fetch_one(&self.pool).await?)
    }
}

#[cfg(test)]
#[path = "requests_tests.rs"]
mod tests;
