//! Queueing mail inside an intake transaction: the outbox row with the messages row that
//! records it, the per-thread ordering check, the automatic-mail limits, bounces and
//! suppressions.
//!
//! Owns: the outbox writes of a [`StoreTx`]. Talks to: SQLite through the transaction.

use crate::store::backend::on_tx;
use anyhow::Context as _;

use super::{NewOutbox, OUTBOX_INSERT, bind_outbox, humanize_ms};
use crate::domain::RequestId;
use crate::store::Engine;
use crate::store::messages::NewMessage;
use crate::store::{StoreTx, now_ms};

impl StoreTx {
    /// Queues a message, due now, with the messages row that records it (its `outbox_id` set to
    /// the new row) and, for mail of a request, a line of its timeline, in one round trip to
    /// SQLite. Returns the outbox row's id.
    pub async fn enqueue_recorded(
        &mut self,
        m: &NewOutbox<'_>,
        record: &NewMessage<'_>,
        event: Option<&crate::store::NewEvent<'_>>,
    ) -> anyhow::Result<i64> {
        let event = event.filter(|_| m.request_id.is_some());
        // SQLite: three statements in one prepared query, one round trip. PostgreSQL refuses
        // that: there they are one statement of data-modifying CTEs.
        let pg = self.engine() == Engine::Postgres;
        let outbox_id = if pg { "(SELECT id FROM o)" } else { "last_insert_rowid()" };
        let record_sql = crate::store::messages::message_insert(11, Some(outbox_id));
        let mut sql = if pg {
            format!("WITH o AS ({OUTBOX_INSERT}), m AS ({record_sql})")
        } else {
            format!("{OUTBOX_INSERT}; {record_sql}")
        };
        if event.is_some() {
            // The outbox row's request ($1) and creation time ($8); the messages row took $11..$31.
            let insert = format!("{}($1, $8, $32, $33, $34, $35)", crate::store::timeline::EVENT_INSERT);
            sql.push_str(&if pg { format!(", e AS ({insert})") } else { format!("; {insert}") });
        }
        if pg {
            sql.push_str(" SELECT id FROM o");
        }
        if m.lease_until > 0 {
            self.owner.ensure()?;
        }
        let owner = std::sync::Arc::clone(&self.owner);
        let what = || format!("queueing {} {}", m.kind, m.message_id);
        // fetch_all: every statement must run (a fetch_one could stop at the first row).
        let ids: Vec<i64> = on_tx!(self.tx, db => {
            let q = bind_outbox!(sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str())), m, owner.id());
            let mut q = crate::store::messages::bind_message!(q, record, None::<&[u8]>);
            if let Some(e) = event {
                q = q.bind(e.actor).bind(e.source.as_str()).bind(e.event).bind(e.detail);
            }
            q.fetch_all(db).await
        })
        .with_context(what)?;
        let id = ids.first().copied().context("the outbox insert returned no id")?;
        self.enqueued(m, id);
        Ok(id)
    }

    /// The bookkeeping of a queued row: the worker's hand-off and the thread it belongs to.
    fn enqueued(&mut self, m: &NewOutbox<'_>, id: i64) {
        let staff = crate::domain::is_staff_mail(m.kind);
        if m.lease_until > 0 {
            self.handoff.push(crate::store::Handoff { id, staff });
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
        let hit: Option<bool> = on_tx!(self.tx, db => sqlx::query_scalar(
            "SELECT TRUE FROM outbox WHERE request_id = $1 AND status = 'pending' \
             AND (substr(kind, 1, 6) = 'staff_') = $2 LIMIT 1",
        )
        .bind(request.0)
        .bind(staff)
        .fetch_optional(db)
        .await)?;
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
        let (suppressed, recent): (Option<String>, i64) = on_tx!(self.tx, db => sqlx::query_as(
            "SELECT (SELECT reason FROM suppressions WHERE email = $1 AND until > $2), \
             (SELECT COUNT(*) FROM outbox WHERE rate_key = $1 AND created_at > $3)",
        )
        .bind(email)
        .bind(now)
        .bind(now - window_ms)
        .fetch_one(db)
        .await)?;
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
        Ok(on_tx!(self.tx, db => sqlx::query_as(
            "UPDATE outbox SET bounce_status = $1, last_error = $2, \
             status = CASE WHEN $4 AND status = 'sent' THEN 'failed' ELSE status END WHERE message_id = $3 \
             RETURNING id, request_id",
        )
        .bind(status)
        .bind(error)
        .bind(message_id)
        .bind(hard)
        .fetch_optional(db)
        .await)?)
    }

    /// `(kind, request id)` of the outbox row with this Message-ID.
    pub async fn outbox_row_of(&mut self, message_id: &str) -> anyhow::Result<Option<(String, Option<i64>)>> {
        Ok(on_tx!(self.tx, db => sqlx::query_as("SELECT kind, request_id FROM outbox WHERE message_id = $1")
            .bind(message_id)
            .fetch_optional(db)
            .await)?)
    }

    /// No automatic mail to `email` until `until` (a later hard bounce extends it).
    pub async fn suppress(&mut self, email: &str, until: i64, reason: &str) -> anyhow::Result<()> {
        on_tx!(self.tx, db => sqlx::query(
            "INSERT INTO suppressions (email, until, reason, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (email) DO UPDATE SET until = excluded.until, reason = excluded.reason",
        )
        .bind(email)
        .bind(until)
        .bind(reason)
        .bind(now_ms())
        .execute(db)
        .await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
