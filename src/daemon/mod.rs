//! `intake311 run`: opens and migrates the database, compiles the templates, then runs the IMAP
//! poller, the outbox worker and the watchdog as supervised tasks under one shutdown token
//! ([`supervise`]). SIGINT or SIGTERM cancel the token; each task finishes the message or row in
//! flight (a transaction is never cut in half) and returns. The first task to end on its own
//! (return, error or panic) cancels the token too, and `run` then fails naming the task and the
//! cause, so the process exits non-zero and a service manager restarts it.
//!
//! The loops only sleep, back off and reconnect; the work is in
//! [`poller::poll_once`] and [`crate::outbound::worker::send_once`].

pub mod poller;
pub mod supervise;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::intake::Intake;
use crate::outbound::smtp::Smtp;
use crate::outbound::{Templates, worker};
use crate::store::Store;
use poller::poller_loop;
use supervise::Supervisor;

/// Opens the store, migrates it, and compiles the templates: what every mail-handling command needs.
pub async fn prepare(cfg: &Config) -> anyhow::Result<(Store, Arc<Templates>)> {
    let store = Store::connect(&cfg.database.url, cfg.database.max_connections).await?.with_lease(cfg.database.lease);
    store.migrate().await?;
    let templates = Templates::load(&cfg.intake.templates_dir)?;
    Ok((store, Arc::new(templates)))
}

/// Runs until SIGINT/SIGTERM.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let cancel = CancellationToken::new();
    let signal_cancel = cancel.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested; finishing the work in flight");
        signal_cancel.cancel();
    });
    run_until(cfg, cancel).await
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {},
                _ = term.recv() => {},
            }
        }
        _ => {
            if let Err(e) = tokio::signal::ctrl_c().await {
                // Without a signal handler only a task's end stops the daemon (or SIGKILL).
                tracing::warn!(error = %e, "cannot listen for SIGINT/SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Runs the poller, the outbox worker and the watchdog until `cancel` fires (tests and the demo
/// call this) or one of them ends; the latter is an error naming the task and its cause.
pub async fn run_until(cfg: Config, cancel: CancellationToken) -> anyhow::Result<()> {
    let cfg = Arc::new(cfg);
    let (store, templates) = prepare(&cfg).await?;
    store.hold_claims().await?;
    let transport = Arc::new(Smtp::new(&cfg)?);
    let wake = Arc::new(Notify::new());
    let (handoff, handed_over) = tokio::sync::mpsc::unbounded_channel();
    let backlog = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scheduler = Intake::new(store.clone(), Arc::clone(&cfg), Arc::clone(&templates), Arc::clone(&wake))?;
    let intake = Intake::new(store.clone(), Arc::clone(&cfg), templates, Arc::clone(&wake))?.with_fast_lane(
        handoff,
        worker::fast_lane_lease(&transport),
        Arc::clone(&backlog),
    );
    tracing::info!(config = %cfg.source, imap = %format!("{}:{}", cfg.imap.host, cfg.imap.port), smtp = %format!("{}:{}", cfg.smtp.host, cfg.smtp.port), "intake311 started");

    let mut tasks = Supervisor::new();
    let (worker_store, worker_cfg, worker_cancel) = (store.clone(), Arc::clone(&cfg), cancel.clone());
    tasks.spawn("outbox worker", async move {
        worker::run(worker_store, transport, worker_cfg, wake, worker_cancel, Some((handed_over, backlog))).await;
        Ok(())
    });
    let (poller_cfg, poller_cancel) = (Arc::clone(&cfg), cancel.clone());
    tasks.spawn("IMAP poller", async move {
        poller_loop(intake, poller_cfg, poller_cancel).await;
        Ok(())
    });
    let (beat_store, beat_cancel, beat_every) = (store.clone(), cancel.clone(), cfg.database.lease / 3);
    tasks.spawn("heartbeat", async move {
        heartbeat(beat_store, beat_every, beat_cancel).await;
        Ok(())
    });
    if cfg.deadlines.enabled {
        let sched_cancel = cancel.clone();
        tasks.spawn("deadline scheduler", async move {
            deadline_scheduler(scheduler, sched_cancel).await;
            Ok(())
        });
    }
    let (watch_store, watch_cfg, watch_cancel) = (store.clone(), Arc::clone(&cfg), cancel.clone());
    tasks.spawn("watchdog", async move {
        watchdog(watch_store, watch_cfg, watch_cancel).await;
        Ok(())
    });
    let ended = tasks.run(&cancel, stop_grace(&cfg)).await;
    store.close().await;
    match ended {
        Ok(()) => {
            tracing::info!("intake311 stopped");
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, "intake311 stopped because a task ended; exiting non-zero");
            Err(e.into())
        }
    }
}

/// Sends the reminders and the daily digest as they fall due: once a minute it runs
/// [`Intake::run_deadlines`], which sends each notice once however often it runs and however
/// many daemons run it. A failure (the database away) is logged and tried again next minute.
async fn deadline_scheduler(intake: Intake, cancel: CancellationToken) {
    loop {
        match intake.run_deadlines(chrono::Utc::now()).await {
            Ok(run) if !run.sent.is_empty() => tracing::info!(sent = run.sent.len(), "{run}"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = format!("{e:#}"), "deadline reminders: will try again in a minute"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
    }
}

/// How long the other tasks get to finish their work in flight once one has ended: one send
/// (up to four SMTP steps of `smtp.timeout` each) and 30 s more. The systemd unit's
/// `TimeoutStopSec` must be at least this (150 s with the default 30 s timeout).
pub fn stop_grace(cfg: &Config) -> Duration {
    cfg.smtp.timeout.saturating_mul(4).saturating_add(Duration::from_secs(30))
}

/// Every `every` (a third of `database.lease`): records that this daemon is alive, so other
/// daemons on the database leave its outbox claims alone. A failure is logged and retried.
async fn heartbeat(store: Store, every: Duration, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {},
        }
        if let Err(e) = store.heartbeat().await {
            tracing::warn!(error = format!("{e:#}"), "recording the heartbeat failed; retrying");
        }
    }
}

/// Once a minute: warn when no poll has succeeded for `imap.stall_warning`, or when the outbox
/// backlog has grown at three checks in a row.
pub async fn watchdog(store: Store, cfg: Arc<Config>, cancel: CancellationToken) {
    let started = crate::store::now_ms();
    let mut backlog: Vec<i64> = Vec::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(60)) => {},
        }
        let Ok(st) = store.stats().await else { continue };
        let now = crate::store::now_ms();
        let since = st.last_poll_at.unwrap_or(started);
        let limit = i64::try_from(cfg.imap.stall_warning.as_millis()).unwrap_or(i64::MAX);
        if now - since > limit {
            tracing::warn!(minutes = (now - since) / 60_000, "intake stalled: no successful IMAP poll");
        }
        backlog.push(st.outbox.pending);
        if backlog.len() > 4 {
            backlog.remove(0);
        }
        if backlog.len() == 4 && backlog.windows(2).all(|w| w[1] > w[0]) {
            tracing::warn!(pending = st.outbox.pending, oldest = ?st.outbox.oldest_pending_at, "outbox backlog keeps growing: is SMTP delivering?");
        }
    }
}
