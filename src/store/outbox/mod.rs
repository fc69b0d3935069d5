//! The outbox: fully rendered mail waiting to be sent, with its attempts and last error.
//!
//! Owns the `outbox` and `suppressions` tables: queueing inside an intake transaction
//! ([`queue`]), a worker's claims and the end of its pass ([`claims`]), recovery of a dead
//! process's claims through its owner file and journal ([`recovery`], with [`super::owner`]),
//! and the figures for `stats` and `requests show` ([`stats`]). Talks to: SQLite, and the
//! `messages` and `request_events` inserts it batches with a queued row.

mod claims;
mod queue;
mod recovery;
mod stats;

use serde::Serialize;

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
    /// The recipient of automatic city-facing mail ('' for everything else).
    pub rate_key: &'a str,
    /// Non-zero: the row is born claimed by this process until this Unix ms, and its id is
    /// handed to the outbox worker once the transaction commits (see [`StoreTx::take_handoff`]).
    pub lease_until: i64,
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
    /// Unix ms until which this worker holds the row.
    pub lease_until: i64,
}

/// What [`Store::recover_dead_claims`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Dead claimants found (with claims, or only a file left behind).
    pub claimants: usize,
    /// Their rows the server had accepted, now marked sent.
    pub marked_sent: u64,
    /// Their other rows, free to claim now.
    pub released: u64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct OutboxStats {
    pub pending: i64,
    pub sent: i64,
    pub failed: i64,
    /// created_at of the oldest pending row.
    pub oldest_pending_at: Option<i64>,
}

/// An outbox row as stored: recipients one a line.
#[derive(sqlx::FromRow)]
struct StoredOutbox {
    id: i64,
    request_id: Option<i64>,
    kind: String,
    message_id: String,
    envelope_from: String,
    recipients: String,
    raw: Vec<u8>,
    attempts: i64,
    lease_until: i64,
}

impl From<StoredOutbox> for OutboxRow {
    fn from(r: StoredOutbox) -> Self {
        OutboxRow {
            id: r.id,
            request_id: r.request_id,
            kind: r.kind,
            message_id: r.message_id,
            envelope_from: r.envelope_from,
            recipients: r.recipients.lines().map(str::to_string).collect(),
            raw: r.raw,
            attempts: r.attempts,
            lease_until: r.lease_until,
        }
    }
}

/// The columns [`StoredOutbox`] reads.
const OUTBOX_ROW: &str = "id, request_id, kind, message_id, envelope_from, recipients, raw, attempts, lease_until";

const OUTBOX_INSERT: &str = "INSERT INTO outbox (request_id, kind, message_id, envelope_from, recipients, raw, \
     rate_key, next_attempt_at, created_at, lease_until, lease_owner) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, CASE WHEN $9 > 0 THEN $10 ELSE '' END) RETURNING id";

/// Binds an outbox row's ten values (a [`NewOutbox`] `$m`, and this process's claim id
/// `$instance`) in [`OUTBOX_INSERT`]'s order.
macro_rules! bind_outbox {
    ($q:expr, $m:expr, $instance:expr) => {{
        let m: &NewOutbox<'_> = $m;
        $q.bind(m.request_id.map(|r| r.0))
            .bind(m.kind)
            .bind(m.message_id)
            .bind(m.envelope_from)
            .bind(m.recipients.join("\n"))
            .bind(m.raw)
            .bind(m.rate_key)
            .bind($crate::store::now_ms())
            .bind(m.lease_until)
            .bind($instance)
    }};
}
use bind_outbox;

/// What marking a row sent (accepted by the server, at `$1`) writes, whoever marks it.
const MARK_SENT: &str =
    "UPDATE outbox SET status = 'sent', sent_at = $1, attempts = attempts + 1, last_error = '', lease_until = 0";

/// `1,2,3`: row ids are integers we read ourselves, so they are written into the SQL directly
/// (one statement for a whole batch instead of one bound statement per row).
fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

fn humanize_ms(ms: i64) -> String {
    humantime::format_duration(std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0))).to_string()
}

/// An acknowledgement-like outbox row to mayor@dayton.test, for tests.
#[cfg(test)]
pub(super) fn test_ack<'a>(
    message_id: &'a str,
    request_id: Option<RequestId>,
    recipients: &'a [String],
    lease_until: i64,
) -> NewOutbox<'a> {
    NewOutbox {
        request_id,
        kind: "ack_eligible",
        message_id,
        envelope_from: "intake@311.test",
        recipients,
        raw: b"Subject: hi\r\n\r\nhello\r\n",
        rate_key: "",
        lease_until,
    }
}

#[cfg(test)]
mod tests;
