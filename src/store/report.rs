//! The rows the monthly report is computed from (see [`crate::report`]): plain reads, no
//! figures. Each query returns a superset of what a figure counts, and the report's pure code
//! applies the exact rules, so the rules live (and are unit-tested) in one place.
//!
//! Dates are bound as text (`YYYY-MM-DD`, which sorts as dates do) and times as Unix
//! milliseconds, so every statement runs on SQLite and PostgreSQL alike. Talks to: the database.

use super::backend::on_pool;
use super::requests::SELECT_REQUEST;
use super::{RequestRow, Store};

/// One topic of a request: `source` is `staff` (confirmed by a person) or `suggested`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TopicRow {
    pub request_id: i64,
    pub topic: String,
    pub source: String,
}

/// A city with a request in the month, and the first day any request of it arrived.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CityFirstRow {
    pub city_id: i64,
    /// `Dayton, OH`
    pub city: String,
    /// YYYY-MM-DD
    pub first_received_on: String,
}

/// The days a report reads: the month itself, and the window of months its trend shows.
#[derive(Debug, Clone, Copy)]
pub struct ReportSpan<'a> {
    /// The month's first and last day (YYYY-MM-DD).
    pub first: &'a str,
    pub last: &'a str,
    /// The first day of the trend's window; it ends with the month.
    pub window_first: &'a str,
    /// The window as Unix milliseconds: from local midnight of `window_first` to local midnight
    /// after `last` (exclusive).
    pub window_from_ms: i64,
    pub window_to_ms: i64,
}

/// Everything one monthly report is computed from.
#[derive(Debug, Clone, Default)]
pub struct ReportRows {
    /// Requests received in the month, resolved in it, or received by its end and due by its end
    /// without being resolved by then.
    pub requests: Vec<RequestRow>,
    /// The topics of the requests received in the month.
    pub topics: Vec<TopicRow>,
    /// The cities that asked in the month, with the first day each ever asked.
    pub city_first: Vec<CityFirstRow>,
    /// The arrival dates of the requests received in the window.
    pub received_in_window: Vec<String>,
    /// The moments (Unix ms) responses were sent in the window.
    pub responses_in_window: Vec<i64>,
    /// The days referrals were made in the window.
    pub referrals_in_window: Vec<String>,
}

impl Store {
    /// The rows of the report for `span`.
    pub async fn report_rows(&self, span: ReportSpan<'_>) -> anyhow::Result<ReportRows> {
        let ReportSpan { first, last, window_first, window_from_ms, window_to_ms } = span;
        let sql = format!(
            "{SELECT_REQUEST} WHERE (r.received_on >= $1 AND r.received_on <= $2) \
             OR (r.resolved_on >= $1 AND r.resolved_on <= $2) \
             OR (r.received_on <= $2 AND r.due_date <= $2 AND (r.resolved_on IS NULL OR r.resolved_on > $2)) \
             ORDER BY r.id"
        );
        let requests: Vec<RequestRow> = on_pool!(self.pool, db => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(first)
            .bind(last)
            .fetch_all(db)
            .await)?;
        let topics: Vec<TopicRow> = on_pool!(self.pool, db => sqlx::query_as(
            "SELECT t.request_id, t.topic, t.source FROM request_topics t JOIN requests r ON r.id = t.request_id \
             WHERE r.received_on >= $1 AND r.received_on <= $2 ORDER BY t.request_id, t.topic",
        )
        .bind(first)
        .bind(last)
        .fetch_all(db)
        .await)?;
        let city_first: Vec<CityFirstRow> = on_pool!(self.pool, db => sqlx::query_as(
            "SELECT r.city_id AS city_id, c.name || ', ' || c.state AS city, MIN(r.received_on) AS first_received_on \
             FROM requests r JOIN cities c ON c.id = r.city_id \
             WHERE r.received_on <> '' AND r.city_id IN \
             (SELECT m.city_id FROM requests m WHERE m.received_on >= $1 AND m.received_on <= $2 AND m.city_id IS NOT NULL) \
             GROUP BY r.city_id, c.name, c.state ORDER BY c.name, c.state",
        )
        .bind(first)
        .bind(last)
        .fetch_all(db)
        .await)?;
        let received_in_window: Vec<String> = on_pool!(self.pool, db => sqlx::query_scalar(
            "SELECT received_on FROM requests WHERE received_on >= $1 AND received_on <= $2",
        )
        .bind(window_first)
        .bind(last)
        .fetch_all(db)
        .await)?;
        let responses_in_window: Vec<i64> = on_pool!(self.pool, db => sqlx::query_scalar(
            "SELECT at FROM request_events WHERE event = 'response sent' AND at >= $1 AND at < $2",
        )
        .bind(window_from_ms)
        .bind(window_to_ms)
        .fetch_all(db)
        .await)?;
        let referrals_in_window: Vec<String> = on_pool!(self.pool, db => sqlx::query_scalar(
            "SELECT referred_on FROM referrals WHERE referred_on >= $1 AND referred_on <= $2",
        )
        .bind(window_first)
        .bind(last)
        .fetch_all(db)
        .await)?;
        Ok(ReportRows { requests, topics, city_first, received_in_window, responses_in_window, referrals_in_window })
    }
}
