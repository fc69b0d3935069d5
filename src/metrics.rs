//! Where the daemon's time goes: busy time and counts per pipeline stage, and the wall-clock
//! moments a benchmark needs (first fetch, last acknowledgement accepted by SMTP).
//!
//! Owns: a process-wide set of atomic counters. Recording costs two atomic adds, so it is always
//! on. `intake311 run --stage-report FILE` writes a [`Report`] as JSON when the daemon stops;
//! the benchmark (`cargo bench --bench throughput`) reads it.
//!
//! Stages overlap: the poller and the outbox worker run at the same time, and several SMTP
//! connections send at once, so the busy seconds of all stages add up to more than wall time.
//! Talks to: nothing.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// A pipeline stage whose busy time is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// SELECT, listing waiting UIDs and sizes, and the already-handled checks.
    ImapList,
    /// UID FETCH of message bodies.
    ImapFetch,
    /// MIME parsing, bounce detection and classification.
    Parse,
    /// Deciding and writing one message's outcome inside the open transaction (reads, inserts,
    /// rendering the acknowledgement).
    Intake,
    /// COMMIT of a group of messages (the fsync).
    Commit,
    /// UID MOVE of committed messages to Processed / Quarantine.
    ImapMove,
    /// Claiming due outbox rows.
    OutboxClaim,
    /// One message over SMTP, MAIL FROM to the server's 250 after DATA (summed over connections).
    SmtpSend,
    /// Opening an SMTP connection (TCP, greeting, EHLO, STARTTLS, AUTH).
    SmtpConnect,
    /// Marking sent rows in the database.
    OutboxMark,
}

const STAGES: [Stage; 10] = [
    Stage::ImapList,
    Stage::ImapFetch,
    Stage::Parse,
    Stage::Intake,
    Stage::Commit,
    Stage::ImapMove,
    Stage::OutboxClaim,
    Stage::SmtpSend,
    Stage::SmtpConnect,
    Stage::OutboxMark,
];

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::ImapList => "imap_list",
            Stage::ImapFetch => "imap_fetch",
            Stage::Parse => "parse_classify",
            Stage::Intake => "intake_decide_write",
            Stage::Commit => "db_commit",
            Stage::ImapMove => "imap_move",
            Stage::OutboxClaim => "outbox_claim",
            Stage::SmtpSend => "smtp_send",
            Stage::SmtpConnect => "smtp_connect",
            Stage::OutboxMark => "outbox_mark_sent",
        }
    }
    fn index(self) -> usize {
        self as usize
    }
}

struct Counter {
    nanos: AtomicU64,
    count: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: Counter = Counter { nanos: AtomicU64::new(0), count: AtomicU64::new(0) };
static COUNTERS: [Counter; 10] = [ZERO; 10];
static FIRST_FETCH_MS: AtomicI64 = AtomicI64::new(0);
static LAST_ACK_SENT_MS: AtomicI64 = AtomicI64::new(0);
static LAST_SENT_MS: AtomicI64 = AtomicI64::new(0);
static ACKS_SENT: AtomicU64 = AtomicU64::new(0);
static MAILS_SENT: AtomicU64 = AtomicU64::new(0);
static MESSAGES_HANDLED: AtomicU64 = AtomicU64::new(0);
static COMMITS: AtomicU64 = AtomicU64::new(0);

/// Adds `elapsed` (covering `count` items) to `stage`.
pub fn record(stage: Stage, elapsed: Duration, count: u64) {
    let c = &COUNTERS[stage.index()];
    c.nanos.fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    c.count.fetch_add(count, Ordering::Relaxed);
}

/// Times a stage from now until the guard is dropped.
pub fn timer(stage: Stage) -> Timer {
    Timer { stage, start: Instant::now() }
}

pub struct Timer {
    stage: Stage,
    start: Instant,
}

impl Drop for Timer {
    fn drop(&mut self) {
        record(self.stage, self.start.elapsed(), 1);
    }
}

/// A body fetch is starting (the first one sets the start of an end-to-end measurement).
pub fn fetch_started() {
    let _ = FIRST_FETCH_MS.compare_exchange(0, crate::domain::time::now_ms(), Ordering::Relaxed, Ordering::Relaxed);
}

/// `n` inbound messages committed in one transaction.
pub fn committed(n: usize) {
    MESSAGES_HANDLED.fetch_add(n as u64, Ordering::Relaxed);
    COMMITS.fetch_add(1, Ordering::Relaxed);
}

/// The SMTP server accepted a mail of this outbox `kind`.
pub fn sent(kind: &str) {
    let now = crate::domain::time::now_ms();
    MAILS_SENT.fetch_add(1, Ordering::Relaxed);
    LAST_SENT_MS.fetch_max(now, Ordering::Relaxed);
    if kind.starts_with("ack_") {
        ACKS_SENT.fetch_add(1, Ordering::Relaxed);
        LAST_ACK_SENT_MS.fetch_max(now, Ordering::Relaxed);
    }
}

/// Busy time and count of one stage.
#[derive(Debug, Clone, Serialize)]
pub struct StageFigure {
    pub seconds: f64,
    pub count: u64,
}

/// Everything recorded since the process started.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Unix ms of the first body fetch (0: none yet).
    pub first_fetch_unix_ms: i64,
    /// Unix ms when SMTP accepted the last acknowledgement (0: none yet).
    pub last_ack_sent_unix_ms: i64,
    /// Unix ms when SMTP accepted the last mail of any kind.
    pub last_sent_unix_ms: i64,
    pub messages_committed: u64,
    /// Transactions that committed inbound messages (messages / commits = group size).
    pub commits: u64,
    pub acks_sent: u64,
    pub mails_sent: u64,
    /// Stage name → busy seconds and count.
    pub stages: serde_json::Map<String, serde_json::Value>,
}

pub fn report() -> Report {
    let mut stages = serde_json::Map::new();
    for s in STAGES {
        let c = &COUNTERS[s.index()];
        let fig = StageFigure {
            seconds: c.nanos.load(Ordering::Relaxed) as f64 / 1e9,
            count: c.count.load(Ordering::Relaxed),
        };
        stages.insert(s.name().to_string(), serde_json::to_value(fig).unwrap_or_default());
    }
    Report {
        first_fetch_unix_ms: FIRST_FETCH_MS.load(Ordering::Relaxed),
        last_ack_sent_unix_ms: LAST_ACK_SENT_MS.load(Ordering::Relaxed),
        last_sent_unix_ms: LAST_SENT_MS.load(Ordering::Relaxed),
        messages_committed: MESSAGES_HANDLED.load(Ordering::Relaxed),
        commits: COMMITS.load(Ordering::Relaxed),
        acks_sent: ACKS_SENT.load(Ordering::Relaxed),
        mails_sent: MAILS_SENT.load(Ordering::Relaxed),
        stages,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_accumulate() {
        record(Stage::ImapMove, Duration::from_millis(3), 2);
        {
            let _t = timer(Stage::ImapMove);
        }
        sent("ack_eligible");
        let r = report();
        let names: Vec<&String> = r.stages.keys().collect();
        assert_eq!(names.len(), STAGES.len());
        let mv = &r.stages["imap_move"];
        assert!(mv["count"].as_u64().unwrap_or(0) >= 3, "{mv}");
        assert!(mv["seconds"].as_f64().unwrap_or(0.0) >= 0.003, "{mv}");
        assert!(r.acks_sent >= 1 && r.last_ack_sent_unix_ms > 0);
    }
}
