//! Requests, tracking numbers and the request timeline.

use anyhow::Context as _;
use serde::Serialize;
use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;

use super::{Source, Store, StoreTx, now_ms};
use crate::domain::{CityId, Eligibility, RequestId, RequestStatus, TrackingNumber};

/// A request as listed and shown.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRow {
    pub id: i64,
    pub tracking: String,
    pub city_id: Option<i64>,
    pub city: Option<String>,
    pub official_email: String,
    pub official_name: String,
    pub subject: String,
    pub status: RequestStatus,
    pub eligibility: Eligibility,
    pub eligibility_reason: String,
    pub due_date: Option<String>,
    pub assignee: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One line of a request's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct RequestEvent {
    pub at: i64,
    pub actor: String,
    pub source: String,
    pub event: String,
    pub detail: String,
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
}

const SELECT_REQUEST: &str = "SELECT r.id, r.tracking, r.city_id, \
     CASE WHEN c.id IS NULL THEN NULL ELSE c.name || ', ' || c.state END AS city, \
     r.official_email, r.official_name, r.subject, r.status, r.eligibility, r.eligibility_reason, \
     r.due_date, r.assignee, r.created_at, r.updated_at \
     FROM requests r LEFT JOIN cities c ON c.id = r.city_id";

fn request_from_row(row: &SqliteRow) -> anyhow::Result<RequestRow> {
    let status: String = row.try_get("status")?;
    let eligibility: String = row.try_get("eligibility")?;
    Ok(RequestRow {
        id: row.try_get("id")?,
        tracking: row.try_get("tracking")?,
        city_id: row.try_get("city_id")?,
        city: row.try_get("city")?,
        official_email: row.try_get("official_email")?,
        official_name: row.try_get("official_name")?,
        subject: row.try_get("subject")?,
        status: status.parse().with_context(|| format!("stored status `{status}`"))?,
        eligibility: eligibility.parse().map_err(anyhow::Error::msg)?,
        eligibility_reason: row.try_get("eligibility_reason")?,
        due_date: row.try_get("due_date")?,
        assignee: row.try_get("assignee")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl StoreTx {
    /// Hands out the next tracking number for `prefix` in `year`. The counter only increases and
    /// commits together with the request, so a number is never handed out twice; a rolled-back
    /// transaction takes its (unused) number back with it.
    pub async fn next_tracking_number(&mut self, prefix: &str, year: i32) -> anyhow::Result<TrackingNumber> {
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO tracking_counters (prefix, year, last_seq) VALUES ($1, $2, 1) \
             ON CONFLICT (prefix, year) DO UPDATE SET last_seq = tracking_counters.last_seq + 1 \
             RETURNING last_seq",
        )
        .bind(prefix)
        .bind(year)
        .fetch_one(&mut *self.tx)
        .await
        .context("allocating a tracking number")?;
        Ok(TrackingNumber::new(prefix, year, seq))
    }

    pub async fn insert_request(&mut self, r: &NewRequest<'_>) -> anyhow::Result<RequestId> {
        let now = now_ms();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO requests (tracking, city_id, official_email, official_name, subject, status, \
             eligibility, eligibility_reason, due_date, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id",
        )
        .bind(r.tracking.to_string())
        .bind(r.city_id.map(|c| c.0))
        .bind(r.official_email)
        .bind(r.official_name)
        .bind(r.subject)
        .bind(r.status.as_str())
        .bind(r.eligibility.as_str())
        .bind(r.eligibility_reason)
        .bind(r.due_date.map(|d| d.to_string()))
        .bind(now)
        .fetch_one(&mut *self.tx)
        .await
        .with_context(|| format!("inserting request {}", r.tracking))?;
        Ok(RequestId(id))
    }

    /// Appends a line to a request's timeline.
    pub async fn add_event(
        &mut self,
        request: RequestId,
        actor: &str,
        source: Source,
        event: &str,
        detail: &str,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO request_events (request_id, at, actor, source, event, detail) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(request.0)
        .bind(now_ms())
        .bind(actor)
        .bind(source.as_str())
        .bind(event)
        .bind(detail)
        .execute(&mut *self.tx)
        .await
        .context("recording a timeline event")?;
        Ok(())
    }
}

impl Store {
    /// Requests, newest first, optionally of one status.
    pub async fn list_requests(&self, status: Option<RequestStatus>, limit: i64) -> anyhow::Result<Vec<RequestRow>> {
        let rows = match status {
            Some(s) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{SELECT_REQUEST} WHERE r.status = $1 ORDER BY r.id DESC LIMIT $2"
                )))
                .bind(s.as_str())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT_REQUEST} ORDER BY r.id DESC LIMIT $1")))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(request_from_row).collect()
    }

    pub async fn request_by_tracking(&self, tracking: &TrackingNumber) -> anyhow::Result<Option<RequestRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT_REQUEST} WHERE r.tracking = $1")))
            .bind(tracking.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(request_from_row).transpose()
    }

    pub async fn request_events(&self, request: i64) -> anyhow::Result<Vec<RequestEvent>> {
        let rows = sqlx::query(
            "SELECT at, actor, source, event, detail FROM request_events WHERE request_id = $1 ORDER BY at, id",
        )
        .bind(request)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RequestEvent {
                    at: row.try_get("at")?,
                    actor: row.try_get("actor")?,
                    source: row.try_get("source")?,
                    event: row.try_get("event")?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect()
    }

    /// Number of requests per status, for `stats` and tests.
    pub async fn count_requests(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM requests").fetch_one(&self.pool).await?)
    }
}
