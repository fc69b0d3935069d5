//! Phase 3, drain: the daemon works through the backlog until every acknowledgement is sent;
//! throughput, stage times, peak RSS and database size. The memory phase drains this way too.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::daemon::{self, DaemonProc};
use crate::mailservers::MailServers;
use crate::report::DrainFigures;
use crate::{STALL_LIMIT, STOP_LIMIT, progress};

/// Runs the daemon until `expected` acknowledgements are sent and the outbox is empty, then
/// stops it. Returns the drain's figures (ratio left 0) and the stage report if any.
pub async fn drain(
    servers: &MailServers,
    config: &Path,
    db_path: &Path,
    log: &Path,
    stage_report: Option<PathBuf>,
    expected: u64,
    limit: Duration,
) -> Result<(DrainFigures, Option<daemon::StageReport>)> {
    let machine_before = daemon::MachineCpu::now();
    let servers_before = daemon::ServerCpu::now(servers);
    let mut d = DaemonProc::spawn(config, log, stage_report.as_deref())?;
    let start = Instant::now();
    let db = daemon::open_db(db_path).await?;
    let expected_i = i64::try_from(expected).context("expected")?;
    let mut last_change = (Instant::now(), -1i64);
    let mut last_print = Instant::now();
    let mut rss_timeline = Vec::new();
    let mut last_sample: Option<Instant> = Some(start); // the first sample after 2 s
    loop {
        d.check_alive()?;
        if last_sample.is_none_or(|t| t.elapsed() >= Duration::from_secs(2))
            && let Some(kb) = d.rss_kb()
        {
            last_sample = Some(Instant::now());
            rss_timeline.push((start.elapsed().as_secs_f64(), kb as f64 / 1024.0));
        }
        let p = daemon::progress(&db).await?;
        if p.acks_sent >= expected_i {
            break;
        }
        if p.failed > 0 {
            bail!("{} outbox row(s) failed permanently; see {}", p.failed, log.display());
        }
        if p.quarantined > 0 && p.acks_sent + p.quarantined >= expected_i && p.pending == 0 {
            bail!(
                "{} message(s) were quarantined instead of acknowledged (SELECT * FROM quarantine in {}); see {}",
                p.quarantined,
                db_path.display(),
                log.display()
            );
        }
        if p.acks_sent != last_change.1 {
            last_change = (Instant::now(), p.acks_sent);
        } else if last_change.0.elapsed() > STALL_LIMIT {
            bail!(
                "no acknowledgement sent for {STALL_LIMIT:?} ({} of {expected} sent, {} pending); log:\n{}",
                p.acks_sent,
                p.pending,
                daemon::log_tail(log, 30)
            );
        }
        if start.elapsed() > limit {
            bail!(
                "timed out after {limit:?}: {} of {expected} acknowledgements sent, {} pending; log:\n{}\n{}",
                p.acks_sent,
                p.pending,
                daemon::log_tail(log, 30),
                servers.log_tail()
            );
        }
        if last_print.elapsed() >= Duration::from_secs(5) {
            last_print = Instant::now();
            progress(format!(
                "  {:>6.1} s: {} / {expected} acknowledgements sent, {} in the outbox, daemon RSS {}",
                start.elapsed().as_secs_f64(),
                p.acks_sent,
                p.pending,
                d.rss_kb().map_or("?".into(), |kb| format!("{:.0} MB", kb as f64 / 1024.0))
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The machine over the throughput window: daemon start until every acknowledgement was sent.
    let window_cpu = (d.cpu_seconds(), daemon::MachineCpu::now(), daemon::ServerCpu::now(servers));
    // Let the rest (staff notices) go out too, so the next phase starts quiet.
    loop {
        d.check_alive()?;
        let p = daemon::progress(&db).await?;
        if p.pending == 0 {
            break;
        }
        if start.elapsed() > limit {
            bail!("timed out after {limit:?} with {} outbox row(s) still pending; see {}", p.pending, log.display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let figures = daemon::db_figures(&db).await?;
    let quarantined = daemon::progress(&db).await?.quarantined;
    let peak = d.peak_rss_kb();
    let cpu = d.cpu_seconds();
    let (window_daemon, window_machine, window_servers) = window_cpu;
    let machine = machine_before.zip(window_machine).map(|(a, b)| a.until(b));
    let server_cpu = servers_before.until(window_servers);
    db.close().await;
    d.terminate(STOP_LIMIT).await?;

    let report = match &stage_report {
        Some(p) if p.exists() => Some(daemon::read_stage_report(p)?),
        Some(p) => {
            progress(format!("warning: the daemon wrote no stage report to {}", p.display()));
            None
        }
        None => None,
    };
    let (from, to, source) = match report.as_ref().map(|r| (r.first_fetch_unix_ms, r.last_ack_sent_unix_ms)) {
        Some((Some(a), Some(b))) => (a, b, "stage report: first fetch to last ack accepted"),
        _ => (
            d.started_unix_ms,
            figures.last_ack_sent_unix_ms.unwrap_or(d.started_unix_ms),
            "daemon start to MAX(outbox.sent_at) of acks",
        ),
    };
    let seconds = (to - from).max(1) as f64 / 1000.0;
    let (db_file, db_wal) = daemon::db_bytes(db_path);
    let db_bytes = db_file + db_wal;
    let per_1000 = if figures.requests > 0 { db_bytes as f64 / figures.requests as f64 * 1000.0 } else { 0.0 };
    let out = DrainFigures {
        questions: expected,
        seconds,
        questions_per_second: expected as f64 / seconds,
        ratio_to_raw_limit: 0.0,
        window_source: source.into(),
        window_start_unix_ms: from,
        window_end_unix_ms: to,
        all_mail_sent_seconds: figures
            .last_sent_unix_ms
            .map(|t| (t - d.started_unix_ms) as f64 / 1000.0)
            .unwrap_or(0.0),
        peak_rss_mb: peak.map(|kb| kb as f64 / 1024.0),
        daemon_cpu_ms_per_question: cpu.map(|s| s * 1000.0 / expected.max(1) as f64),
        machine_cpu_ms_per_question: machine.map(|m| m.busy * 1000.0 / expected.max(1) as f64),
        window_daemon_cpu_ms_per_question: window_daemon.map(|s| s * 1000.0 / expected.max(1) as f64),
        postfix_cpu_ms_per_question: server_cpu.postfix * 1000.0 / expected.max(1) as f64,
        dovecot_cpu_ms_per_question: server_cpu.dovecot * 1000.0 / expected.max(1) as f64,
        machine_idle_share: machine.map(|m| m.idle / (m.busy + m.idle + m.steal).max(0.01)),
        machine_iowait_share: machine.map(|m| m.iowait / (m.busy + m.idle + m.steal).max(0.01)),
        machine_steal_share: machine.map(|m| m.steal / (m.busy + m.idle + m.steal).max(0.01)),
        rss_timeline_mb: rss_timeline,
        db_bytes,
        db_wal_bytes: db_wal,
        db_bytes_per_1000_requests: per_1000,
        quarantined,
        stages: report.as_ref().map(|r| r.stages.clone()).unwrap_or_default(),
        stage_report_extras: report.as_ref().map(|r| r.extras.clone()).unwrap_or_default(),
        db: figures,
    };
    Ok((out, report))
}
