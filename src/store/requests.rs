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
    pub parent_id: Option<RequestId>,
    pub review_reason: &'a str,
    pub suggested_city_id: Option<i64>,
    pub received_on: chrono::NaiveDate,
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
pub(super) const EVENT_INSERT: &str =
    "INSERT INTO request_events (request_id, at, actor, source, event, detail) VALUES ";
/// The same for participants (`(request_id, email, role)` each), and what keeps an address that
/// is already there.
const PARTICIPANT_INSERT: &str = "INSERT INTO request_participants (request_id, email, role) VALUES ";
const PARTICIPANT_KEEP: &str = " ON CONFLICT (request_id, email) DO NOTHING";

/// The last tracking number handed out for a prefix and year, held by a transaction until it
/// commits.
#[derive(Debug, Clone)]
pub(super) struct Counter {
    prefix: String,
    year: i32,
    last: i64,
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
        staff_thread_id: row.try_get("staff_thread_id")?,
        parent_id: row.try_get("parent_id")?,
        review_reason: row.try_get("review_reason")?,
        suggested_city_id: row.try_get("suggested_city_id")?,
        received_on: row.try_get("received_on")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

async fn is_participant_in<'e>(db: impl sqlx::SqliteExecutor<'e>, request: i64, email: &str) -> anyhow::Result<bool> {
    let hit: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM request_participants WHERE request_id = $1 AND email = $2")
            .bind(request)
            .bind(email)
            .fetch_optional(db)
            .await?;
    Ok(hit.is_some())
}

async fn request_by_tracking_in<'e>(
    db: impl sqlx::SqliteExecutor<'e>,
    tracking: &TrackingNumber,
) -> anyhow::Result<Option<RequestRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT_REQUEST} WHERE r.tracking = $1")))
        .bind(tracking.to_string())
        .fetch_optional(db)
        .await?;
    row.as_ref().map(request_from_row).transpose()
}

async fn request_by_id_in<'e>(db: impl sqlx::SqliteExecutor<'e>, id: i64) -> anyhow::Result<Option<RequestRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT_REQUEST} WHERE r.id = $1")))
        .bind(id)
        .fetch_optional(db)
        .await
        .with_context(|| format!("reading request {id}"))?;
    row.as_ref().map(request_from_row).transpose()
}

impl StoreTx {
    /// Hands out the next tracking number for `prefix` in `year`. The counter only increases and
    /// commits together with the request, so a number is never handed out twice; a rolled-back
    /// transaction (or savepoint) takes its unused numbers back with it. The counter is read at
    /// the first number of a transaction and written once at commit: the transaction holds the
    /// write lock, so no one else can hand out a number in between.
    pub async fn next_tracking_number(&mut self, prefix: &str, year: i32) -> anyhow::Result<TrackingNumber> {
        match &mut self.tracking {
            Some(c) if c.prefix == prefix && c.year == year => c.last += 1,
            held => {
                // Another prefix or year (a batch across New Year): the old one is written now.
                if let Some(old) = held.take()
                    && let Err(e) = self.write_counter(&old).await
                {
                    self.tracking = Some(old);
                    return Err(e);
                }
                let last: Option<i64> =
                    sqlx::query_scalar("SELECT last_seq FROM tracking_counters WHERE prefix = $1 AND year = $2")
                        .bind(prefix)
                        .bind(year)
                        .fetch_optional(&mut *self.tx)
                        .await
                        .context("reading the tracking counter")?;
                self.tracking = Some(Counter { prefix: prefix.to_string(), year, last: last.unwrap_or(0) + 1 });
            }
        }
        let c = self.tracking.as_ref().context("tracking counter")?;
        Ok(TrackingNumber::new(prefix, year, c.last))
    }

    pub(super) async fn write_counter(&mut self, c: &Counter) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO tracking_counters (prefix, year, last_seq) VALUES ($1, $2, $3) \
             ON CONFLICT (prefix, year) DO UPDATE SET last_seq = excluded.last_seq",
        )
        .bind(&c.prefix)
        .bind(c.year)
        .bind(c.last)
        .execute(&mut *self.tx)
        .await
        .context("recording the tracking counter")?;
        Ok(())
    }

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

        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
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
        let row = request_from_row(rows.last().context("the new request was not read back")?)?;
        self.fresh_requests.insert(row.id);
        for (email, role) in rest {
            self.add_participant(RequestId(row.id), email, role).await?;
        }
        Ok(row)
    }

    /// The request as this transaction sees it.
    /// [`Store::is_participant`] inside this transaction.
    pub async fn is_participant(&mut self, request: i64, email: &str) -> anyhow::Result<bool> {
        is_participant_in(&mut *self.tx, request, email).await
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
        let row = sqlx::query(
            "SELECT message_id, refs FROM messages WHERE request_id = $1 AND direction = 'in' AND from_addr = $2 \
             AND kind IN ('question', 'follow_up') ORDER BY id DESC LIMIT 1",
        )
        .bind(request.0)
        .bind(official)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(match row {
            Some(r) => Some((r.try_get("message_id")?, r.try_get("refs")?)),
            None => None,
        })
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

    /// Records the official and the people they copied (existing entries are kept).
    pub async fn add_participants(&mut self, id: RequestId, emails: &[String], role: &str) -> anyhow::Result<()> {
        for email in emails {
            self.add_participant(id, email, role).await?;
        }
        Ok(())
    }

    async fn add_participant(&mut self, id: RequestId, email: &str, role: &str) -> anyhow::Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!("{PARTICIPANT_INSERT}($1, $2, $3){PARTICIPANT_KEEP}")))
            .bind(id.0)
            .bind(email)
            .bind(role)
            .execute(&mut *self.tx)
            .await
            .context("adding a participant")?;
        Ok(())
    }

    /// `(email, role)` of a request's participants.
    pub async fn participants(&mut self, id: RequestId) -> anyhow::Result<Vec<(String, String)>> {
        let rows =
            sqlx::query("SELECT email, role FROM request_participants WHERE request_id = $1 ORDER BY role DESC, email")
                .bind(id.0)
                .fetch_all(&mut *self.tx)
                .await?;
        rows.iter().map(|r| Ok((r.try_get("email")?, r.try_get("role")?))).collect()
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
        sqlx::query(sqlx::AssertSqlSafe(format!("{EVENT_INSERT}($1, $2, $3, $4, $5, $6)")))
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

    pub async fn request_by_id(&self, id: i64) -> anyhow::Result<Option<RequestRow>> {
        request_by_id_in(&self.pool, id).await
    }

    /// Whether `email` is the request's official or someone they copied.
    pub async fn is_participant(&self, request: i64, email: &str) -> anyhow::Result<bool> {
        is_participant_in(&self.pool, request, email).await
    }

    pub async fn request_by_tracking(&self, tracking: &TrackingNumber) -> anyhow::Result<Option<RequestRow>> {
        request_by_tracking_in(&self.pool, tracking).await
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

    /// Requests waiting for a person to decide the city, oldest first.
    pub async fn review_queue(&self) -> anyhow::Result<Vec<RequestRow>> {
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT_REQUEST} WHERE r.review_reason <> '' ORDER BY r.id")))
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(request_from_row).collect()
    }

    /// Number of requests per status, for `stats` and tests.
    pub async fn count_requests(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM requests").fetch_one(&self.pool).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewMessage;

    fn new_request<'a>(tracking: &'a TrackingNumber, city: Option<CityId>) -> NewRequest<'a> {
        NewRequest {
            tracking,
            city_id: city,
            official_email: "mayor@dayton.test",
            official_name: "Mayor",
            subject: "Parks",
            status: RequestStatus::Acknowledged,
            eligibility: Eligibility::Eligible,
            eligibility_reason: "eligible",
            due_date: chrono::NaiveDate::from_ymd_opt(2026, 12, 9),
            parent_id: None,
            review_reason: "",
            suggested_city_id: None,
            received_on: chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap_or_default(),
        }
    }

    /// One round trip writes the row, its participants (a repeated address once) and its
    /// first timeline lines, and reads back exactly what `request_by_id` reads.
    #[tokio::test]
    async fn open_request_writes_the_row_participants_and_events_and_reads_it_back() -> anyhow::Result<()> {
        let (_dir, store) = Store::for_test().await?;
        let city: i64 = sqlx::query_scalar(
            "INSERT INTO cities (name, state, created_at, updated_at) VALUES ('Dayton', 'OH', 0, 0) RETURNING id",
        )
        .fetch_one(&store.pool)
        .await?;
        let mut tx = store.begin().await?;
        let tracking = tx.next_tracking_number("311", 2026).await?;
        let row = tx
            .open_request(
                &new_request(&tracking, Some(CityId(city))),
                &[("mayor@dayton.test", "official"), ("clerk@dayton.test", "cc"), ("mayor@dayton.test", "cc")],
                &[
                    NewEvent { actor: "mayor@dayton.test", source: Source::Mail, event: "created", detail: "q" },
                    NewEvent { actor: "intake311", source: Source::System, event: "needs review", detail: "why" },
                ],
            )
            .await?;
        let read = tx.request_by_id(RequestId(row.id)).await?;
        assert_eq!(format!("{row:?}"), format!("{read:?}"));
        assert_eq!(row.city.as_deref(), Some("Dayton, OH"));
        assert_eq!(row.tracking, tracking.to_string());
        assert_eq!(
            tx.participants(RequestId(row.id)).await?,
            vec![
                ("mayor@dayton.test".to_string(), "official".to_string()),
                ("clerk@dayton.test".to_string(), "cc".to_string())
            ]
        );
        // Queued mail of the request carries its own timeline line; mail of no request none.
        let recipients = vec!["mayor@dayton.test".to_string()];
        for (n, request_id) in [(1, Some(RequestId(row.id))), (2, None)] {
            let message_id = format!("ack{n}@311.test");
            tx.enqueue_recorded(
                &crate::store::outbox::test_ack(&message_id, request_id, &recipients, 0),
                &NewMessage { direction: "out", kind: "ack_eligible", message_id: &message_id, ..Default::default() },
                Some(&NewEvent {
                    actor: "intake311",
                    source: Source::System,
                    event: "acknowledgement queued",
                    detail: "ack_eligible",
                }),
            )
            .await?;
        }
        tx.commit().await?;
        let events: Vec<(String, String, String)> =
            store.request_events(row.id).await?.into_iter().map(|e| (e.actor, e.event, e.detail)).collect();
        let want = [
            ("mayor@dayton.test", "created", "q"),
            ("intake311", "needs review", "why"),
            ("intake311", "acknowledgement queued", "ack_eligible"),
        ];
        assert_eq!(events, want.map(|(a, e, d)| (a.to_string(), e.to_string(), d.to_string())));
        let all: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM request_events").fetch_one(&store.pool).await?;
        assert_eq!(all, 3, "mail of no request writes no timeline line");
        Ok(())
    }

    /// A Cc list of any length: past what goes in the one query, the rest follow row by row.
    #[tokio::test]
    async fn open_request_takes_a_huge_cc_list() -> anyhow::Result<()> {
        let (_dir, store) = Store::for_test().await?;
        let mut tx = store.begin().await?;
        let tracking = tx.next_tracking_number("311", 2026).await?;
        let cc: Vec<String> = (0..20_000).map(|i| format!("cc{i}@dayton.test")).collect();
        let participants: Vec<(&str, &str)> = std::iter::once(("mayor@dayton.test", "official"))
            .chain(cc.iter().map(|c| (c.as_str(), "cc")))
            .chain(std::iter::once(("cc7@dayton.test", "cc")))
            .collect();
        let row = tx.open_request(&new_request(&tracking, None), &participants, &[]).await?;
        let stored = tx.participants(RequestId(row.id)).await?;
        assert_eq!(stored.len(), 20_001);
        assert!(stored.contains(&("mayor@dayton.test".to_string(), "official".to_string())));
        assert!(stored.contains(&("cc19999@dayton.test".to_string(), "cc".to_string())));
        Ok(())
    }

    /// Tracking numbers: read once per transaction, written at commit, given back by ROLLBACK TO
    /// and by a transaction that never commits, and a new year starts at 1.
    #[tokio::test]
    async fn tracking_numbers_go_with_the_commit_and_the_savepoints() -> anyhow::Result<()> {
        let (_dir, store) = Store::for_test().await?;
        let seq = |t: TrackingNumber| t.to_string();
        let mut tx = store.begin().await?;
        assert_eq!(seq(tx.next_tracking_number("311", 2026).await?), "311-2026-0001");
        tx.savepoint("m").await?;
        assert_eq!(seq(tx.next_tracking_number("311", 2026).await?), "311-2026-0002");
        tx.rollback_to("m").await?;
        tx.release("m");
        assert_eq!(seq(tx.next_tracking_number("311", 2026).await?), "311-2026-0002");
        // Across New Year inside one batch: each year keeps its own counter.
        assert_eq!(seq(tx.next_tracking_number("311", 2027).await?), "311-2027-0001");
        tx.commit().await?;

        let mut tx = store.begin().await?;
        assert_eq!(seq(tx.next_tracking_number("311", 2026).await?), "311-2026-0003");
        assert_eq!(seq(tx.next_tracking_number("311", 2027).await?), "311-2027-0002");
        drop(tx);
        let stored: Vec<(i32, i64)> =
            sqlx::query_as("SELECT year, last_seq FROM tracking_counters WHERE prefix = '311' ORDER BY year")
                .fetch_all(&store.pool)
                .await?;
        assert_eq!(stored, vec![(2026, 2), (2027, 1)], "a transaction that never commits gives its numbers back");
        Ok(())
    }
}
