//! Phase 6, failover (PostgreSQL; `--failover`, and at the end of `--quick`): for each
//! `--lease` value, fresh daemons (`--daemons`, at least 2) on an already drained database with
//! `database.lease` set to it. Once one of them holds the mailbox lease and has connected to
//! IMAP, and the others stand by, the holder is SIGKILLed and a new question is sent through
//! Postfix at once. The kill comes at a random point of the holder's renewal cycle (it renews
//! every third of the lease), as a crash would. Measured from the kill: until another daemon holds the lease (its
//! `acquired_at` in `mailbox_leases`), and until the new question's acknowledgement was accepted
//! by SMTP (`outbox.sent_at`). Beside them, how long the killed daemon's lease still had to run:
//! no stand-by may take the mailbox before that (a holder renews every third of the lease, so
//! this is between two thirds of the lease and all of it).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::Rng as _;
use rand::rngs::StdRng;

use crate::corpus::{self, INTAKE, Official};
use crate::daemon::{self, DaemonProc, DbTarget, unix_ms_now};
use crate::mailservers::MailServers;
use crate::once::{self, Folders};
use crate::raw;
use crate::report::FailoverFigures;
use crate::{STOP_LIMIT, progress};

/// How long the daemons get to settle (one holds the lease and polls, the others stand by), and
/// how long the takeover may take beyond the lease.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);

/// One failover per lease value, each with fresh daemons on `db` (migrated, with the registry).
#[allow(clippy::too_many_arguments)]
pub async fn failover(
    servers: &MailServers,
    db: &DbTarget,
    leases: &[Duration],
    daemons: usize,
    officials: &[Official],
    run_dir: &Path,
    tag: &str,
    rng: &mut StdRng,
) -> Result<Vec<FailoverFigures>> {
    let mut out = Vec::new();
    for (round, lease) in leases.iter().enumerate() {
        let official = &officials[round % officials.len()];
        out.push(one(servers, db, *lease, daemons.max(2), official, run_dir, tag, rng).await?);
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
async fn one(
    servers: &MailServers,
    db: &DbTarget,
    lease: Duration,
    n: usize,
    official: &Official,
    run_dir: &Path,
    tag: &str,
    rng: &mut StdRng,
) -> Result<FailoverFigures> {
    let label = humantime::format_duration(lease).to_string().replace(' ', "");
    progress(format!("failover: {n} daemons, database.lease = {label}"));
    let config = run_dir.join(format!("{tag}-{label}.toml"));
    fs::write(&config, daemon::config_text(servers, db, Some(lease))).context("writing the failover config")?;
    let logs: Vec<PathBuf> = (1..=n).map(|k| run_dir.join(format!("daemon-{tag}-{label}-{k}.log"))).collect();
    let mut ds = Vec::with_capacity(n);
    for log in &logs {
        ds.push(DaemonProc::spawn(&config, log, None)?);
    }
    let tail =
        || logs.iter().map(|l| format!("--- {} ---\n{}", l.display(), daemon::log_tail(l, 20))).collect::<Vec<_>>();
    let view = db.open().await?;

    // Settle: one holds the lease and has connected to IMAP, the others stand by.
    let deadline = Instant::now() + lease + SETTLE_LIMIT;
    let holder = loop {
        for d in &mut ds {
            d.check_alive()?;
        }
        if let Some(h) = daemon::lease_holder(&view).await?
            && let Some(i) = ds.iter().position(|d| h.pid == Some(i64::from(d.pid)))
            && ds[i].logged("IMAP connected")
            && ds.iter().enumerate().all(|(k, d)| k == i || d.logged("standing by"))
        {
            break i;
        }
        if Instant::now() >= deadline {
            bail!(
                "failover: the {n} daemons did not settle (one holding the lease, the others standing by) within \
                 {:?}; logs:\n{}",
                lease + SETTLE_LIMIT,
                tail().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Let its first poll finish and IDLE begin, then wait a random part of a renewal cycle.
    tokio::time::sleep(Duration::from_secs(1) + (lease / 3).mul_f64(rng.random_range(0.0..1.0))).await;

    let q = corpus::question(rng, official, &format!("{tag}-{label}"), 0, 2_000, None);
    let envelope = lettre::address::Envelope::new(
        Some(official.email.parse().with_context(|| format!("address {}", official.email))?),
        vec![INTAKE.parse().context("intake address")?],
    )
    .context("envelope")?;
    let mut conn = raw::connect_nodelay(servers.smtp_port).await?;
    let before = Folders::now(servers);
    let held = daemon::lease_holder(&view).await?.context("the lease vanished before the kill")?;
    let killed_pid = ds[holder].pid;
    let kill_ms = unix_ms_now();
    ds[holder].kill()?;
    raw::send_bounded(&mut conn, &envelope, &q.raw).await.context("failover: sending the new question")?;
    let sent_ms = unix_ms_now();
    let _ = conn.quit().await;

    let deadline = Instant::now() + lease + SETTLE_LIMIT;
    let mut taken: Option<daemon::LeaseHolder> = None;
    let acked_ms = loop {
        for (k, d) in ds.iter_mut().enumerate() {
            if k != holder {
                d.check_alive()?;
            }
        }
        if taken.is_none()
            && let Some(h) = daemon::lease_holder(&view).await?
            && h.owner != held.owner
        {
            taken = Some(h);
        }
        let ack = daemon::acks_since(&view, kill_ms - 1000)
            .await?
            .into_iter()
            .find(|(id, _)| *id == q.message_id)
            .and_then(|(_, at)| at);
        if let (Some(at), Some(_)) = (ack, &taken) {
            break at;
        }
        if Instant::now() >= deadline {
            bail!(
                "failover: {:?} after SIGKILL of the lease holder (pid {killed_pid}), lease taken over: {}, question \
                 acknowledged: {}; logs:\n{}",
                lease + SETTLE_LIMIT,
                taken.is_some(),
                ack.is_some(),
                tail().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let taken = taken.context("lease holder")?;
    let stopped = futures::future::join_all(
        ds.iter_mut().enumerate().filter(|(k, _)| *k != holder).map(|(_, d)| d.terminate(STOP_LIMIT)),
    )
    .await;
    for r in stopped {
        r?;
    }
    servers.wait_queue_empty(Duration::from_secs(120)).await?;
    let checked =
        once::check(&view, servers, std::slice::from_ref(&q.message_id), &[servers.maildir(&official.email)], before)
            .await;
    view.close().await;
    let secs = |t: i64| (t - kill_ms) as f64 / 1000.0;
    let f = FailoverFigures {
        lease_seconds: lease.as_secs_f64(),
        daemons: n,
        lease_left_at_kill_seconds: secs(held.expires_at),
        lease_taken_seconds: secs(taken.acquired_at),
        question_sent_seconds: secs(sent_ms),
        question_acked_seconds: secs(acked_ms),
        killed_pid,
        new_holder_pid: taken.pid,
        once: checked?,
    };
    progress(format!(
        "failover: lease {label}: holder killed with {:.1} s of lease left; lease taken after {:.1} s, new question \
         acknowledged after {:.1} s",
        f.lease_left_at_kill_seconds, f.lease_taken_seconds, f.question_acked_seconds
    ));
    Ok(f)
}
