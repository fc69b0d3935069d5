//! The outbox worker: sends due rows through the SMTP client ([`super::smtp`]), marks rows sent,
//! or records the error and the next attempt (exponential backoff with jitter). Nothing is
//! dropped: a row leaves `pending` only as `sent`, or as `failed` after the server refused it
//! permanently (5xx) several times, with the error kept on the row.
//!
//! Rows of one request go out in order: when one fails, the later rows of that request wait.

use std::sync::Arc;
use std::time::Duration;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use futures::StreamExt as _;
use lettre::address::Envelope;
use rand::Rng as _;
use tokio::sync::Notify;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::smtp::Smtp;
use crate::config::Config;
use crate::metrics::{self, Stage};
use crate::store::{Handoff, OutboxRow, Store, ms_of, now_ms};

/// After this many permanent (5xx) refusals a row is marked failed instead of retried.
pub const MAX_PERMANENT_ATTEMPTS: i64 = 5;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassOutcome {
    pub sent: usize,
    pub failed: usize,
}

/// Delay before attempt `attempts + 1`: base·2^attempts, capped, ±20 % jitter.
pub fn backoff(base: Duration, max: Duration, attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.clamp(0, 30)).unwrap_or(30);
    let raw = base.saturating_mul(2u32.saturating_pow(exp)).min(max);
    let jitter = rand::rng().random_range(0.8..1.2);
    raw.mul_f64(jitter)
}

/// What became of one claimed row.
enum Sent {
    Accepted(i64),
    Refused,
    /// Not tried: its lease would run out before the send could finish.
    Released(i64),
}

async fn send_row(
    store: &Store,
    smtp: &Smtp,
    cfg: &Config,
    row: &OutboxRow,
    deadline: Instant,
) -> anyhow::Result<Sent> {
    let span = tracing::info_span!("outbox", id = row.id, kind = %row.kind, message_id = %row.message_id);
    send_row_inner(store, smtp, cfg, row, deadline).instrument(span).await
}

async fn send_row_inner(
    store: &Store,
    smtp: &Smtp,
    cfg: &Config,
    row: &OutboxRow,
    deadline: Instant,
) -> anyhow::Result<Sent> {
    if Instant::now() + smtp.send_limit() > deadline {
        return Ok(Sent::Released(row.id));
    }
    let from = row.envelope_from.parse().with_context(|| format!("envelope from {}", row.envelope_from))?;
    let to = row
        .recipients
        .iter()
        .map(|r| r.parse().with_context(|| format!("recipient {r}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let envelope = Envelope::new(Some(from), to).context("building the SMTP envelope")?;
    match smtp.send(&envelope, &row.raw).await {
        Ok(()) => {
            metrics::sent(&row.kind);
            tracing::info!(attempts = row.attempts + 1, "sent");
            Ok(Sent::Accepted(row.id))
        }
        Err(e) => {
            let text = e.to_string();
            let permanent = e.is_permanent() && row.attempts + 1 >= MAX_PERMANENT_ATTEMPTS;
            let delay = backoff(cfg.outbox.retry_base, cfg.outbox.retry_max, row.attempts);
            let next = now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
            store.mark_attempt_failed(row.id, &text, next, permanent).await?;
            if permanent {
                tracing::error!(error = %text, "refused permanently; row marked failed");
            } else {
                tracing::warn!(error = %text, retry_in = ?delay, "send failed; will retry");
            }
            Ok(Sent::Refused)
        }
    }
}

/// Sends every claimable due row once: claims up to `outbox.batch` rows under one lease, sends
/// them over the pool's connections, and marks the accepted ones sent in one transaction.
///
/// A row is only started while its lease still covers the longest a send can take, so no row is
/// ever sent after another worker could have claimed it; rows left over are released. Each
/// accepted row is journaled at once; a crash after the server accepted a row but before its
/// journal sync sends it again, with the same bytes and Message-ID.
pub async fn send_once(store: &Store, smtp: &Smtp, cfg: &Config) -> anyhow::Result<PassOutcome> {
    let lease = smtp.send_limit() + Duration::from_secs(5);
    let lease_ms = ms_of(lease);
    let claimed_at = Instant::now();
    let rows = {
        let _t = metrics::timer(Stage::OutboxClaim);
        store.claim_due_outbox(now_ms(), i64::from(cfg.outbox.batch.max(1)), lease_ms).await?
    };
    if rows.is_empty() {
        return Ok(PassOutcome::default());
    }
    let deadline = claimed_at + lease;
    // Each accepted row is journaled as it is accepted, not at the end of the pass.
    let (journal_tx, journal) = spawn_journal(store.clone(), None);
    // One row per request at most (see `claim_due_outbox`), so rows can go out in parallel.
    let mut results = futures::stream::iter(rows)
        .map(|row| async move { send_row(store, smtp, cfg, &row, deadline).await })
        .buffer_unordered(smtp.pool_size());
    let mut total = PassOutcome::default();
    let mut accepted = Vec::new();
    let mut released = Vec::new();
    let mut first_error = None;
    while let Some(r) = results.next().await {
        match r {
            Ok(Sent::Accepted(id)) => {
                let _ = journal_tx.send(id);
                accepted.push(id);
            }
            Ok(Sent::Released(id)) => released.push(id),
            Ok(Sent::Refused) => total.failed += 1,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    drop(journal_tx);
    let journaled = journal.await.unwrap_or(0);
    if !accepted.is_empty() || !released.is_empty() {
        let _t = metrics::timer(Stage::OutboxMark);
        store.finish_outbox_pass(&accepted, &released, journaled).await?;
    }
    total.sent = accepted.len();
    match first_error {
        Some(e) => Err(e),
        None => Ok(total),
    }
}

/// The worker loop: send what is due, then sleep until the next row falls due, a wake-up from
/// the poller, or shutdown. A pass in flight is never interrupted.
pub async fn run(
    store: Store,
    transport: Arc<Smtp>,
    cfg: Arc<Config>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
    handed_over: Option<(UnboundedReceiver<Vec<Handoff>>, Arc<AtomicBool>)>,
) {
    let (mark_tx, marker) = spawn_marker(store.clone());
    let fast = handed_over.map(|(rx, backlog)| {
        tokio::spawn(fast_lane(store.clone(), Arc::clone(&transport), Arc::clone(&cfg), rx, backlog, mark_tx.clone()))
    });
    drop(mark_tx);
    let mut error_backoff = Duration::from_secs(1);
    let mut next_claim_check = Instant::now();
    loop {
        if cancel.is_cancelled() {
            break;
        }
        if Instant::now() >= next_claim_check {
            recover_dead_claims(&store).await;
            next_claim_check = Instant::now() + DEAD_CLAIM_CHECK;
        }
        let pass = send_once(&store, &transport, &cfg).await;
        let sleep_for = match pass {
            Ok(outcome) => {
                error_backoff = Duration::from_secs(1);
                if outcome.sent > 0 || outcome.failed > 0 {
                    tracing::debug!(sent = outcome.sent, failed = outcome.failed, "outbox pass");
                }
                if outcome.sent > 0 {
                    Duration::ZERO
                } else {
                    let due = match store.next_outbox_due().await {
                        Ok(Some(due)) => {
                            let ms = u64::try_from((due - now_ms()).max(0)).unwrap_or(0);
                            Duration::from_millis(ms).min(cfg.outbox.idle_interval)
                        }
                        _ => cfg.outbox.idle_interval,
                    };
                    // Idle, the worker still looks for a stopped daemon's claims on time.
                    due.min(next_claim_check.saturating_duration_since(Instant::now()).max(Duration::from_millis(10)))
                }
            }
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "outbox pass failed");
                error_backoff = (error_backoff * 2).min(Duration::from_secs(60));
                error_backoff
            }
        };
        if sleep_for.is_zero() {
            continue;
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = wake.notified() => {},
            _ = tokio::time::sleep(sleep_for) => {},
        }
    }
    if let Some(fast) = fast {
        let _ = fast.await;
    }
    // Every accepted row is marked before we go (the marker ends when the lanes have), and
    // what we still hold is freed for the next start.
    let _ = marker.await;
    match store.release_own_claims().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(rows = n, "unsent mail left for the next start"),
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "freeing unsent mail failed; it waits for its claim to run out")
        }
    }
    transport.close().await;
    tracing::info!("outbox worker stopped");
}

/// How often the worker looks for claims of a daemon that died (at start, then this often,
/// unless it is backing off after a failed pass).
const DEAD_CLAIM_CHECK: Duration = Duration::from_secs(10);

/// Mail a killed or stopped daemon had claimed goes out now rather than when its claim runs
/// out, except what the server had already accepted (see [`Store::recover_dead_claims`]).
async fn recover_dead_claims(store: &Store) {
    match store.recover_dead_claims().await {
        Ok(r) if r.claimants > 0 => tracing::info!(
            claimants = r.claimants,
            marked_sent = r.marked_sent,
            released = r.released,
            "took over the mail of a stopped daemon: already accepted rows marked sent, the rest sent now"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = format!("{e:#}"), "looking for a stopped daemon's claims failed"),
    }
}

/// Sends rows the intake handed over after its commits (born claimed by us, see
/// [`crate::intake::Intake::with_fast_lane`]): reads them, sends them over the pool, and passes
/// each accepted one to [`spawn_marker`]'s task. Never takes the write lock on the way, so a
/// group commit in progress does not hold up SMTP. A batch in flight is finished on shutdown;
/// rows not yet read are freed when the worker stops, and the next start sends them.
async fn fast_lane(
    store: Store,
    smtp: Arc<Smtp>,
    cfg: Arc<Config>,
    mut rx: UnboundedReceiver<Vec<Handoff>>,
    backlog: Arc<AtomicBool>,
    accepted: UnboundedSender<i64>,
) {
    let mut city: VecDeque<(i64, Instant)> = VecDeque::new();
    let mut staff: VecDeque<(i64, Instant)> = VecDeque::new();
    let mut open = true;
    let mut renewed = Instant::now();
    loop {
        // Ends when the intake is gone (after its last commit on shutdown) and everything it
        // handed over is sent.
        if city.is_empty() && staff.is_empty() {
            if !open {
                break;
            }
            match rx.recv().await {
                Some(more) => sort_in(more, &mut city, &mut staff),
                None => break,
            }
        }
        loop {
            match rx.try_recv() {
                Ok(more) => sort_in(more, &mut city, &mut staff),
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        // City mail first: while the poller works through a backlog, officials'
        // acknowledgements go before staff notices, which wait (at most `STAFF_MAX_WAIT`) until
        // no city mail is queued and the backlog is done.
        let overdue =
            |staff: &VecDeque<(i64, Instant)>| staff.front().is_some_and(|(_, at)| at.elapsed() >= STAFF_MAX_WAIT);
        // Rows waiting here keep their claim: renewed before it could run short.
        let oldest = city.front().into_iter().chain(staff.front()).map(|(_, at)| *at).min();
        if oldest.is_some_and(|at| at.elapsed() >= FAST_LANE_SLACK / 2) && renewed.elapsed() >= FAST_LANE_SLACK / 2 {
            let waiting: Vec<i64> = city.iter().chain(staff.iter()).map(|(id, _)| *id).collect();
            let until = now_ms() + ms_of(fast_lane_lease(&smtp));
            if let Err(e) = store.renew_outbox_leases(&waiting, until).await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "renewing the claim on queued mail failed; it is sent by the ordinary claim"
                );
            }
            renewed = Instant::now();
        }
        let mut ids: Vec<i64> = city.drain(..city.len().min(FAST_BATCH)).map(|(id, _)| id).collect();
        let staff_free = ids.is_empty() && !backlog.load(Ordering::Relaxed);
        while ids.len() < FAST_BATCH && (staff_free || overdue(&staff)) {
            match staff.pop_front() {
                Some((id, _)) => ids.push(id),
                None => break,
            }
        }
        if ids.is_empty() {
            // Only held-back staff notices: look again shortly, or as soon as more arrives.
            tokio::select! {
                more = rx.recv() => match more {
                    Some(more) => sort_in(more, &mut city, &mut staff),
                    None => open = false,
                },
                _ = tokio::time::sleep(Duration::from_millis(100)) => {},
            }
            continue;
        }
        if let Err(e) = send_handed_over(&store, &smtp, &cfg, &ids, &accepted).await {
            // The rows keep their lease; when it runs out the ordinary claim sends them.
            tracing::error!(error = format!("{e:#}"), rows = ids.len(), "sending handed-over mail failed");
        }
    }
}

fn sort_in(rows: Vec<Handoff>, city: &mut VecDeque<(i64, Instant)>, staff: &mut VecDeque<(i64, Instant)>) {
    let now = Instant::now();
    for h in rows {
        if h.staff { staff.push_back((h.id, now)) } else { city.push_back((h.id, now)) }
    }
}

/// How much longer than one send a handed-over row's claim lasts. A crash leaves the row to
/// the ordinary claim this long after its last renewal (plus `Smtp::send_limit`); rows that
/// wait longer in the fast lane are renewed every half of it.
pub const FAST_LANE_SLACK: Duration = Duration::from_secs(30);

/// The claim a freshly queued row is born with (see [`crate::intake::Intake::with_fast_lane`]).
pub fn fast_lane_lease(smtp: &Smtp) -> Duration {
    smtp.send_limit() + FAST_LANE_SLACK
}

/// The longest a staff notice waits behind city mail in a backlog.
const STAFF_MAX_WAIT: Duration = Duration::from_secs(60);

/// Most handed-over rows read and sent as one batch.
const FAST_BATCH: usize = 128;

async fn send_handed_over(
    store: &Store,
    smtp: &Smtp,
    cfg: &Config,
    ids: &[i64],
    accepted: &UnboundedSender<i64>,
) -> anyhow::Result<()> {
    let limit_ms = ms_of(smtp.send_limit());
    let rows = store.handed_over_outbox(ids, now_ms() + limit_ms).await?;
    let mut results = futures::stream::iter(rows)
        .map(|row| async move {
            let left = u64::try_from(row.lease_until - now_ms()).unwrap_or(0);
            let deadline = Instant::now() + Duration::from_millis(left);
            send_row(store, smtp, cfg, &row, deadline).await
        })
        .buffer_unordered(smtp.pool_size());
    let mut first_error = None;
    // Each accepted row goes to the marker (and its journal) at once, not after the batch: a
    // crash resends only what was accepted since the last journal sync.
    while let Some(r) = results.next().await {
        match r {
            Ok(Sent::Accepted(id)) => {
                let _ = accepted.send(id);
            }
            // Refused: recorded on the row by `send_row`. Released: its lease ran short; it
            // expires and the ordinary claim takes it.
            Ok(Sent::Refused | Sent::Released(_)) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Marks accepted rows sent in two stages, each taking as many rows as have gathered: the
/// journal ([`spawn_journal`]), then the database, which waits for the write lock. Sending
/// waits for neither. Returns where to send accepted row ids, and the task, which ends when
/// every sender is dropped and all is marked.
fn spawn_marker(store: Store) -> (UnboundedSender<i64>, JoinHandle<()>) {
    let (to_db, mut journaled_rx) = tokio::sync::mpsc::unbounded_channel::<(Vec<i64>, usize)>();
    let (accepted, journal) = spawn_journal(store.clone(), Some(to_db));
    let marker = tokio::spawn(async move {
        let mut batches = Vec::new();
        while journaled_rx.recv_many(&mut batches, usize::MAX).await > 0 {
            let journaled = batches.iter().map(|(_, n)| n).sum();
            let ids: Vec<i64> = batches.drain(..).flat_map(|(ids, _)| ids).collect();
            let _t = metrics::timer(Stage::OutboxMark);
            if let Err(e) = store.finish_outbox_pass(&ids, &[], journaled).await {
                tracing::error!(
                    error = format!("{e:#}"),
                    rows = ids.len(),
                    "marking sent mail failed; it is sent again when its lease runs out"
                );
            }
        }
        let _ = journal.await;
    });
    (accepted, marker)
}

/// Journals accepted row ids as they come, as many as have gathered at each sync, and passes
/// each synced batch on to `then` with how many were journaled. A crash after the sync does not
/// send those rows again (see [`Store::recover_dead_claims`]); one before it resends them, with
/// the same bytes and Message-ID. The task ends when every sender is dropped, with the number
/// journaled.
fn spawn_journal(
    store: Store,
    then: Option<UnboundedSender<(Vec<i64>, usize)>>,
) -> (UnboundedSender<i64>, JoinHandle<usize>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<i64>();
    let task = tokio::spawn(async move {
        let (mut total, mut ids) = (0, Vec::new());
        while rx.recv_many(&mut ids, usize::MAX).await > 0 {
            let journaled = store.journal_sent(&ids).await;
            total += journaled;
            let ids = std::mem::take(&mut ids);
            if let Some(then) = &then {
                let _ = then.send((ids, journaled));
            }
        }
        total
    });
    (tx, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let base = Duration::from_secs(10);
        let max = Duration::from_secs(300);
        for attempts in 0..3 {
            let d = backoff(base, max, attempts);
            let nominal = 10.0 * 2f64.powi(i32::try_from(attempts).unwrap_or(0));
            assert!(d.as_secs_f64() >= nominal * 0.8 && d.as_secs_f64() <= nominal * 1.2, "{attempts}: {d:?}");
        }
        assert!(backoff(base, max, 40) <= Duration::from_secs(360));
    }
}
