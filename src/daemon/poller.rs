//! The IMAP poller task: [`poller_loop`] connects, polls, waits (IDLE or sleep) and reconnects
//! with backoff; [`poll_once`] is one pass over the inbox. Every waiting message, in UID order,
//! is fetched (in batches bounded by count and bytes), handed to [`Intake`] and committed with
//! the rest of its batch (a group commit: one fsync for up to `imap.fetch_batch` messages), and
//! moved to the processed or quarantine folder only after that commit. A message whose position
//! is already committed (a crash between commit and move) is only moved.
//!
//! Talks to [`crate::mailbox`] (the IMAP protocol), [`crate::intake`] (what a message becomes)
//! and the store (the poll record, the group's transaction).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::config::{Config, ImapSection};
use crate::intake::{Intake, Outcome, Parsed, Position};
use crate::mailbox::{Fetched, ImapConn, Waiting, Wake};
use crate::metrics::{self, Stage};
use crate::store::Handled;

/// Bytes of message bodies one UID FETCH brings at most (a single larger message still comes
/// alone, up to `imap.max_message_bytes`).
const BATCH_BYTES: u64 = 16 * 1024 * 1024;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollOutcome {
    pub seen: usize,
    pub requests: usize,
    pub follow_ups: usize,
    pub staff: usize,
    pub duplicates: usize,
    pub automatic: usize,
    pub quarantined: usize,
    /// Already committed before (crash between commit and move): only moved now.
    pub moved_only: usize,
    /// Left in the inbox for now: they kept failing with a fault of ours.
    pub deferred: usize,
    /// The pass stopped early for shutdown.
    pub interrupted: bool,
}

impl PollOutcome {
    pub fn handled(&self) -> usize {
        self.requests
            + self.follow_ups
            + self.staff
            + self.duplicates
            + self.automatic
            + self.quarantined
            + self.moved_only
    }
    fn count(&mut self, o: &Outcome) {
        match o {
            Outcome::Request { .. } => self.requests += 1,
            Outcome::FollowUp { .. } => self.follow_ups += 1,
            Outcome::StaffAction { .. } | Outcome::StaffRejected { .. } | Outcome::Admin { .. } => self.staff += 1,
            Outcome::Duplicate { .. } => self.duplicates += 1,
            Outcome::Automatic { .. } => self.automatic += 1,
            Outcome::Quarantined { .. } => self.quarantined += 1,
            Outcome::AlreadyHandled { .. } => self.moved_only += 1,
        }
    }
}

/// Splits waiting messages into fetch batches: at most `max_count` messages and about
/// `BATCH_BYTES` bytes each; a large message ([`Waiting::is_large`]) goes alone (it is fetched in pieces).
pub fn batches(waiting: &[Waiting], max_count: usize) -> Vec<Vec<Waiting>> {
    let mut out: Vec<Vec<Waiting>> = Vec::new();
    let mut current: Vec<Waiting> = Vec::new();
    let mut bytes = 0u64;
    for w in waiting {
        let alone = w.is_large() || current.first().is_some_and(Waiting::is_large);
        if !current.is_empty() && (alone || current.len() >= max_count || bytes + u64::from(w.size) > BATCH_BYTES) {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += u64::from(w.size);
        current.push(*w);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Whether the error came from the database or the templates (rather than the IMAP connection).
fn writing_failed(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<sqlx::Error>() || c.is::<crate::store::StoreError>() || c.is::<crate::outbound::TemplateError>()
    })
}

/// The name a mailbox's lease goes by: the account and folder, so two programmes sharing a
/// database never share a lease.
pub fn lease_name(cfg: &Config) -> String {
    format!("imap://{}@{}:{}/{}", cfg.imap.user, cfg.imap.host, cfg.imap.port, cfg.imap.inbox)
}

/// Holds the mailbox's lease, standing by while another daemon holds it, and polls while this
/// one does (see [`poll_session`]); on any error logs the whole chain, backs off (1 s doubling
/// to 60 s) and reconnects. Exactly one daemon polls a mailbox: the holder renews its lease
/// every third of `database.lease`, and stops polling when it cannot (it lost the database,
/// or another daemon took the lease after it ran out); a stand-by asks every second and takes
/// the lease once it has run out.
pub async fn poller_loop(intake: Intake, cfg: Arc<Config>, cancel: CancellationToken) {
    let mut backoff = Duration::from_secs(1);
    let store = intake.store().clone();
    let name = lease_name(&cfg);
    let lease = cfg.database.lease;
    let mut standing_by = false;
    while !cancel.is_cancelled() {
        match store.hold_mailbox(&name, crate::store::ms_of(lease)).await {
            Ok(true) => {
                if standing_by {
                    tracing::info!(mailbox = %name, "took the mailbox over: this daemon polls it now");
                }
                standing_by = false;
            }
            Ok(false) => {
                if !standing_by {
                    tracing::info!(mailbox = %name, "another daemon polls this mailbox; standing by (this one still sends mail)");
                    standing_by = true;
                }
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(STANDBY_CHECK) => {},
                }
                continue;
            }
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), retry_in = ?backoff, "cannot reach the database to take the mailbox lease; the mail waits in the inbox");
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {},
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
                continue;
            }
        }
        // Polling ends when the daemon stops or the lease is lost.
        let session = cancel.child_token();
        let keeper = tokio::spawn(keep_lease(store.clone(), name.clone(), lease, session.clone()));
        let result = poll_session(&intake, &cfg, &session, &mut backoff).await;
        keeper.abort();
        if cancel.is_cancelled() {
            break;
        }
        match result {
            Ok(()) => tracing::warn!(mailbox = %name, "lost the mailbox lease; stopped polling"),
            Err(e) => {
                if writing_failed(&e) {
                    tracing::error!(error = format!("{e:#}"), retry_in = ?backoff, "intake cannot write (database or templates): the mail stays in the inbox and is tried again");
                } else {
                    tracing::error!(error = format!("{e:#}"), retry_in = ?backoff, "IMAP poller failed; reconnecting");
                }
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {},
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
    // A clean stop hands the mailbox over at once.
    if let Err(e) = store.release_mailbox(&name).await {
        tracing::warn!(
            error = format!("{e:#}"),
            "giving the mailbox lease up failed; a stand-by takes over when it runs out"
        );
    }
    tracing::info!("IMAP poller stopped");
}

/// How often a stand-by daemon asks for the mailbox lease.
const STANDBY_CHECK: Duration = Duration::from_secs(1);

/// Renews the lease every third of `lease` while `session` runs; cancels `session` when the
/// lease is held by someone else, or could not be renewed before it ran out (the database is
/// gone: a stand-by may take it then, so this daemon must stop polling first).
async fn keep_lease(store: crate::store::Store, name: String, lease: Duration, session: CancellationToken) {
    let mut held_until = Instant::now() + lease;
    loop {
        tokio::select! {
            _ = session.cancelled() => return,
            _ = tokio::time::sleep(lease / 3) => {},
        }
        let asked = Instant::now();
        match tokio::time::timeout(lease / 3, store.hold_mailbox(&name, crate::store::ms_of(lease))).await {
            Ok(Ok(true)) => held_until = asked + lease,
            Ok(Ok(false)) => {
                tracing::warn!(mailbox = %name, "another daemon holds the mailbox lease now");
                session.cancel();
                return;
            }
            Ok(Err(e)) => tracing::warn!(error = format!("{e:#}"), "renewing the mailbox lease failed"),
            Err(_) => tracing::warn!("renewing the mailbox lease timed out"),
        }
        // Stop with a margin before the lease runs out, so that two daemons never poll at once.
        if Instant::now() + lease / 3 >= held_until {
            tracing::warn!(mailbox = %name, "cannot renew the mailbox lease: stopping polling until the database answers");
            session.cancel();
            return;
        }
    }
}

/// One connection's life. Returns Ok only on shutdown.
async fn poll_session(
    intake: &Intake,
    cfg: &Config,
    cancel: &CancellationToken,
    backoff: &mut Duration,
) -> anyhow::Result<()> {
    let imap = &cfg.imap;
    let mut conn = ImapConn::connect(imap, &cfg.imap_password).await?;
    conn.ensure_folders(&[&imap.processed_folder, &imap.quarantine_folder]).await?;
    let use_idle = imap.idle && conn.has_idle;
    tracing::info!(idle = use_idle, r#move = conn.has_move, "IMAP connected");
    // Until when mail is "flowing": see `imap.burst_check`.
    let mut burst_until: Option<Instant> = None;
    loop {
        let outcome = poll_once(&mut conn, intake, imap, cancel).await?;
        *backoff = Duration::from_secs(1);
        if outcome.handled() > 0 {
            tracing::info!(
                requests = outcome.requests,
                follow_ups = outcome.follow_ups,
                staff = outcome.staff,
                duplicates = outcome.duplicates,
                automatic = outcome.automatic,
                quarantined = outcome.quarantined,
                moved_only = outcome.moved_only,
                "poll pass"
            );
            burst_until = Some(Instant::now() + crate::config::BURST_WINDOW);
        }
        if cancel.is_cancelled() {
            conn.logout().await;
            return Ok(());
        }
        if outcome.handled() > 0 {
            continue; // more may have arrived meanwhile
        }
        let bursting = !imap.burst_check.is_zero() && burst_until.is_some_and(|t| Instant::now() < t);
        if bursting {
            // Mail is flowing: ask every `burst_check` rather than wait for the server's push
            // (Dovecot delays IDLE notifications by 0.5 s to batch them).
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => {
                        conn.logout().await;
                        return Ok(());
                    }
                    _ = tokio::time::sleep(imap.burst_check) => {},
                }
                if conn.check_now().await? || burst_until.is_some_and(|t| Instant::now() >= t) {
                    break;
                }
            }
        } else if use_idle {
            // Quiet: IDLE until the server reports mail or `limit` passes, in slices of
            // `quiet_check` with a NOOP after each (see `imap.quiet_check`).
            let limit = imap.idle_timeout.min(imap.poll_interval);
            let slice = if imap.quiet_check.is_zero() { limit } else { imap.quiet_check.min(limit) };
            let quiet_since = Instant::now();
            loop {
                let (next, wake) = conn.idle(slice, cancel).await?;
                conn = next;
                match wake {
                    Wake::Shutdown => {
                        conn.logout().await;
                        return Ok(());
                    }
                    Wake::NewData => break,
                    Wake::Timeout => {
                        if quiet_since.elapsed() >= limit || conn.check_now().await? {
                            break;
                        }
                    }
                }
            }
        } else {
            tokio::select! {
                _ = cancel.cancelled() => {
                    conn.logout().await;
                    return Ok(());
                }
                _ = tokio::time::sleep(imap.poll_interval) => {},
            }
        }
    }
}

/// Selects the inbox and handles everything waiting in it. Stops between two messages when
/// `cancel` fires, never inside one.
pub async fn poll_once(
    conn: &mut ImapConn,
    intake: &Intake,
    cfg: &ImapSection,
    cancel: &CancellationToken,
) -> anyhow::Result<PollOutcome> {
    let store = intake.store();
    let selected = {
        let _t = metrics::timer(Stage::ImapList);
        conn.select(&cfg.inbox).await?
    };
    if let Some(prev) = store.mailbox_state(&cfg.inbox).await?
        && prev.uidvalidity != selected.uidvalidity
    {
        tracing::warn!(
            old = prev.uidvalidity,
            new = selected.uidvalidity,
            "UIDVALIDITY changed: re-scanning the inbox; Message-IDs keep this from duplicating requests"
        );
    }
    store.record_poll(&cfg.inbox, selected.uidvalidity).await?;
    let mut out = PollOutcome::default();
    if selected.exists == 0 {
        return Ok(out);
    }
    let waiting = {
        let _t = metrics::timer(Stage::ImapList);
        conn.waiting().await?
    };
    out.seen = waiting.len();
    let (Some(first), Some(last)) = (waiting.first(), waiting.last()) else { return Ok(out) };
    let handled = store.handled_between(&cfg.inbox, selected.uidvalidity, first.uid, last.uid).await?;

    // Already-committed positions are only moved; over-size ones are quarantined unread.
    let mut to_fetch = Vec::new();
    let (mut move_processed, mut move_quarantined) = (Vec::new(), Vec::new());
    for w in waiting {
        if cancel.is_cancelled() {
            out.interrupted = true;
            return Ok(out);
        }
        let pos = Position { mailbox: &cfg.inbox, uidvalidity: selected.uidvalidity, uid: w.uid };
        match handled.get(&w.uid) {
            Some(Handled::Processed) => move_processed.push(w.uid),
            Some(Handled::Quarantined) => move_quarantined.push(w.uid),
            None if u64::from(w.size) > cfg.max_message_bytes => {
                let reason = format!(
                    "message of {} bytes is over the limit of {} bytes (imap.max_message_bytes)",
                    w.size, cfg.max_message_bytes
                );
                let header = conn.fetch_header(w.uid).await?.unwrap_or_default();
                let mut tx = store.begin().await?;
                let o = async {
                    let o = intake.quarantine_oversize(&mut tx, pos, w.size as usize, &header, &reason).await?;
                    record_outcome(&o);
                    anyhow::Ok(o)
                }
                .instrument(message_span(w.uid))
                .await?;
                intake.commit(tx, 1).await?;
                conn.move_message(w.uid, &cfg.quarantine_folder).await?;
                out.count(&o);
            }
            // A message that kept failing with a fault of ours waits a while, so that the mail
            // behind it goes on (see `Intake::deferred`); it stays in the inbox.
            None if intake.deferred(pos) => out.deferred += 1,
            None => to_fetch.push(w),
        }
    }
    conn.move_messages(&move_processed, &cfg.processed_folder).await?;
    conn.move_messages(&move_quarantined, &cfg.quarantine_folder).await?;
    out.moved_only += move_processed.len() + move_quarantined.len();

    let batch_size = usize::try_from(cfg.fetch_batch).unwrap_or(200);
    let _backlog = (to_fetch.len() > batch_size).then(|| intake.backlog());
    for batch in batches(&to_fetch, batch_size) {
        let uids: Vec<u32> = batch.iter().map(|w| w.uid).collect();
        let bodies = {
            metrics::fetch_started();
            let _t = metrics::timer(Stage::ImapFetch);
            match batch.as_slice() {
                [one] if one.is_large() => conn
                    .fetch_large(one.uid, one.size, cfg.max_message_bytes)
                    .await?
                    .map(|fetched| vec![fetched])
                    .unwrap_or_default(),
                _ => conn.fetch_bodies(&uids).await?,
            }
        };
        let (outcomes, failure) = handle_group(conn, intake, cfg, selected.uidvalidity, bodies, cancel).await?;
        for o in &outcomes {
            out.count(o);
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if cancel.is_cancelled() {
            out.interrupted = true;
            return Ok(out);
        }
    }
    Ok(out)
}

/// The span every inbound message is handled in. Intake records `message_id` once the mail is
/// parsed and `tracking` once it knows the request.
fn message_span(uid: u32) -> tracing::Span {
    tracing::info_span!("inbound", uid, message_id = tracing::field::Empty, tracking = tracing::field::Empty)
}

/// Logs the outcome in the message's span (intake has recorded the Message-ID and the tracking
/// number there as soon as it knew them).
fn record_outcome(outcome: &Outcome) {
    tracing::info!(outcome = %outcome, "handled");
}

/// One group commit: every fetched message is handled in one transaction (each under its own
/// savepoint), the transaction commits once (one fsync for the group), and only then are the
/// messages moved, one UID MOVE per destination folder. Stops taking new messages when `cancel`
/// fires; what was handled by then is still committed and moved.
///
/// When a message fails (the store, usually), the messages before it are committed and moved,
/// it stays in the inbox, and its error is returned as the second value so the caller can back
/// off and try again; a message that keeps failing is quarantined by [`Intake::handle`].
async fn handle_group(
    conn: &mut ImapConn,
    intake: &Intake,
    cfg: &ImapSection,
    uidvalidity: u32,
    bodies: Vec<Fetched>,
    cancel: &CancellationToken,
) -> anyhow::Result<(Vec<Outcome>, Option<anyhow::Error>)> {
    // Parsing runs on a blocking thread, a few messages ahead of the transaction.
    let (parsed_tx, mut parsed_rx) = tokio::sync::mpsc::channel::<(u32, Vec<u8>, Parsed)>(8);
    let parser = tokio::task::spawn_blocking(move || {
        for Fetched { uid, raw, internal_date } in bodies {
            let parsed = Parsed::new(&raw, internal_date);
            if parsed_tx.blocking_send((uid, raw, parsed)).is_err() {
                break;
            }
        }
    });
    let mut tx = intake.store().begin().await?;
    let mut done: Vec<(u32, Outcome)> = Vec::new();
    let mut failure = None;
    while let Some((uid, raw, parsed)) = parsed_rx.recv().await {
        if cancel.is_cancelled() {
            break;
        }
        let pos = Position { mailbox: &cfg.inbox, uidvalidity, uid };
        let result = async {
            let outcome = intake.handle(&mut tx, pos, &raw, parsed).await;
            if let Ok(o) = &outcome {
                record_outcome(o);
            }
            outcome
        }
        .instrument(message_span(uid))
        .await;
        // The raw bytes are dropped here, message by message: a group holds at most one
        // fetch batch (`imap.fetch_batch` messages, about 16 MiB) at a time.
        drop(raw);
        match result {
            Ok(outcome) => done.push((uid, outcome)),
            Err(e) => {
                failure = Some(e.context(format!("handling UID {uid}")));
                break;
            }
        }
    }
    drop(parsed_rx);
    // A parser that stopped early (it cannot panic: parsing runs under catch_unwind) only means
    // fewer messages in this group; the rest stay in the inbox for the next pass.
    let _ = parser.await;
    if done.is_empty() {
        return Ok((Vec::new(), failure));
    }
    intake.commit(tx, done.len()).await?;
    let (quarantined, processed): (Vec<_>, Vec<_>) = done.iter().partition(|(_, o)| o.is_quarantined());
    {
        let _t = metrics::timer(Stage::ImapMove);
        for (list, folder) in [(processed, &cfg.processed_folder), (quarantined, &cfg.quarantine_folder)] {
            let uids: Vec<u32> = list.iter().map(|(uid, _)| *uid).collect();
            conn.move_messages(&uids, folder).await?;
        }
    }
    Ok((done.into_iter().map(|(_, o)| o).collect(), failure))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_count_and_bytes() {
        let w = |uid, size| Waiting { uid, size };
        let list = vec![w(1, 10), w(2, 10), w(3, 10), w(4, 10), w(5, 10)];
        let b = batches(&list, 2);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 1]);
        let big = vec![w(1, 10_000_000), w(2, 10_000_000), w(3, 20_000_000), w(4, 1), w(5, 900_000), w(6, 2)];
        let b = batches(&big, 50);
        assert_eq!(
            b.iter().map(|x| x.iter().map(|w| w.uid).collect::<Vec<_>>()).collect::<Vec<_>>(),
            vec![vec![1], vec![2], vec![3], vec![4, 5, 6]],
            "large messages go alone, small ones together"
        );
    }
}
