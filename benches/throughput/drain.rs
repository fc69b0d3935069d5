//! Phase 3, drain: the daemon (or, on PostgreSQL, `--daemons` daemons on one database and one
//! mailbox) works through the backlog until every acknowledgement is sent; throughput, stage
//! times, CPU and peak RSS per daemon, the database server's CPU (PostgreSQL) and the database's
//! size. The memory phase and the PostgreSQL check drain this way too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::daemon::{self, DaemonProc, DbTarget, Stage, StageReport};
use crate::mailservers::MailServers;
use crate::report::{DaemonFigures, DrainFigures};
use crate::{STALL_LIMIT, STOP_LIMIT, progress};

/// What to drain with.
pub struct DrainSetup<'a> {
    /// Names the logs and stage reports in the run directory: `daemon-NAME.log` and
    /// `stages-NAME.json` for one daemon, `daemon-NAME-K.log` and `stages-NAME-K.json` (K = 1..N)
    /// for several.
    pub name: &'a str,
    pub config: &'a Path,
    pub db: &'a DbTarget,
    /// Daemon processes started together on the same config (only one polls the mailbox: the
    /// lease holder; all of them send).
    pub daemons: usize,
    /// Whether to ask each daemon for `--stage-report`.
    pub stage_report: bool,
    /// The private PostgreSQL cluster's postmaster, whose CPU is counted (PostgreSQL only).
    pub postmaster: Option<i32>,
}

impl DrainSetup<'_> {
    /// `PREFIX-NAME.EXT` for one daemon, `PREFIX-NAME-K.EXT` for daemon K of several.
    pub fn file(&self, run_dir: &Path, prefix: &str, k: usize, ext: &str) -> PathBuf {
        if self.daemons == 1 {
            run_dir.join(format!("{prefix}-{}.{ext}", self.name))
        } else {
            run_dir.join(format!("{prefix}-{}-{k}.{ext}", self.name))
        }
    }
}

/// Runs the daemons until `expected` acknowledgements are sent and the outbox is empty, then
/// stops them. Returns the drain's figures (ratio and the once-check left empty) and the stage
/// reports that were written.
pub async fn drain(
    servers: &MailServers,
    run_dir: &Path,
    setup: &DrainSetup<'_>,
    expected: u64,
    limit: Duration,
) -> Result<(DrainFigures, Vec<StageReport>)> {
    let n = setup.daemons.max(1);
    let logs: Vec<PathBuf> = (1..=n).map(|k| setup.file(run_dir, "daemon", k, "log")).collect();
    let stage_files: Vec<Option<PathBuf>> =
        (1..=n).map(|k| setup.stage_report.then(|| setup.file(run_dir, "stages", k, "json"))).collect();
    let log_names = logs.iter().map(|l| l.display().to_string()).collect::<Vec<_>>().join(", ");
    let machine_before = daemon::MachineCpu::now();
    let servers_before = daemon::ServerCpu::now_with(servers, setup.postmaster);
    let mut ds = Vec::with_capacity(n);
    for (log, stages) in logs.iter().zip(&stage_files) {
        ds.push(DaemonProc::spawn(setup.config, log, stages.as_deref())?);
    }
    let started_unix_ms = ds.iter().map(|d| d.started_unix_ms).min().unwrap_or_else(daemon::unix_ms_now);
    let start = Instant::now();
    let db = setup.db.open().await?;
    let expected_i = i64::try_from(expected).context("expected")?;
    let mut last_change = (Instant::now(), -1i64);
    let mut last_print = Instant::now();
    let mut rss_timeline = Vec::new();
    let mut last_sample: Option<Instant> = Some(start); // the first sample after 2 s
    let max_rss_kb = |ds: &[DaemonProc]| ds.iter().filter_map(DaemonProc::rss_kb).max();
    let tail = |logs: &[PathBuf]| {
        logs.iter()
            .map(|l| format!("--- {} ---\n{}", l.display(), daemon::log_tail(l, 30)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    loop {
        for d in &mut ds {
            d.check_alive()?;
        }
        if last_sample.is_none_or(|t| t.elapsed() >= Duration::from_secs(2))
            && let Some(kb) = max_rss_kb(&ds)
        {
            last_sample = Some(Instant::now());
            rss_timeline.push((start.elapsed().as_secs_f64(), kb as f64 / 1024.0));
        }
        let p = daemon::progress(&db).await?;
        if p.acks_sent >= expected_i {
            break;
        }
        if p.failed > 0 {
            bail!("{} outbox row(s) failed permanently; see {log_names}", p.failed);
        }
        if p.quarantined > 0 && p.acks_sent + p.quarantined >= expected_i && p.pending == 0 {
            bail!(
                "{} message(s) were quarantined instead of acknowledged (SELECT * FROM quarantine in {}); see {log_names}",
                p.quarantined,
                setup.db.url(),
            );
        }
        if p.acks_sent != last_change.1 {
            last_change = (Instant::now(), p.acks_sent);
        } else if last_change.0.elapsed() > STALL_LIMIT {
            bail!(
                "no acknowledgement sent for {STALL_LIMIT:?} ({} of {expected} sent, {} pending); logs:\n{}",
                p.acks_sent,
                p.pending,
                tail(&logs)
            );
        }
        if start.elapsed() > limit {
            bail!(
                "timed out after {limit:?}: {} of {expected} acknowledgements sent, {} pending; logs:\n{}\n{}",
                p.acks_sent,
                p.pending,
                tail(&logs),
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
                ds.iter()
                    .map(|d| d.rss_kb().map_or("?".into(), |kb| format!("{:.0} MB", kb as f64 / 1024.0)))
                    .collect::<Vec<_>>()
                    .join(" + ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The machine over the throughput window: daemon start until every acknowledgement was sent.
    let window_cpu = (sum_cpu(&ds), daemon::MachineCpu::now(), daemon::ServerCpu::now_with(servers, setup.postmaster));
    // Let the rest (staff notices) go out too, so the next phase starts quiet.
    loop {
        for d in &mut ds {
            d.check_alive()?;
        }
        let p = daemon::progress(&db).await?;
        if p.pending == 0 {
            break;
        }
        if start.elapsed() > limit {
            bail!("timed out after {limit:?} with {} outbox row(s) still pending; see {log_names}", p.pending);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let figures = daemon::db_figures(&db).await?;
    let quarantined = daemon::progress(&db).await?.quarantined;
    let peaks: Vec<Option<u64>> = ds.iter().map(DaemonProc::peak_rss_kb).collect();
    let cpus: Vec<Option<f64>> = ds.iter().map(DaemonProc::cpu_seconds).collect();
    let cpu = sum_cpu(&ds);
    let servers_all_out = daemon::ServerCpu::now_with(servers, setup.postmaster);
    let (window_daemon, window_machine, window_servers) = window_cpu;
    let machine = machine_before.zip(window_machine).map(|(a, b)| a.until(b));
    let server_cpu = servers_before.until(window_servers);
    let db_server_all_out = servers_before.until(servers_all_out).postgres;
    db.close().await;
    // SIGTERM to all at once (a stand-by that took the lease from a stopping holder finds the
    // inbox empty), then wait for each.
    let stopped = futures::future::join_all(ds.iter_mut().map(|d| d.terminate(STOP_LIMIT))).await;
    for r in stopped {
        r?;
    }

    let mut reports = Vec::new();
    let mut per_daemon = Vec::new();
    for (k, file) in stage_files.iter().enumerate() {
        let report = match file {
            Some(p) if p.exists() => Some(daemon::read_stage_report(p)?),
            Some(p) => {
                progress(format!("warning: the daemon wrote no stage report to {}", p.display()));
                None
            }
            None => None,
        };
        let extra = |key: &str| report.as_ref().and_then(|r| r.extras.get(key).map(|v| *v as u64));
        per_daemon.push(DaemonFigures {
            log: logs[k].display().to_string(),
            peak_rss_mb: peaks[k].map(|kb| kb as f64 / 1024.0),
            cpu_ms_per_question: cpus[k].map(|s| s * 1000.0 / expected.max(1) as f64),
            messages_committed: extra("messages_committed"),
            acks_sent: extra("acks_sent"),
            mails_sent: extra("mails_sent"),
        });
        reports.extend(report);
    }
    // The window of all daemons together: the first fetch by any, the last acknowledgement by any
    // (0 in a report means "none": a stand-by never fetched).
    let first_fetch = reports.iter().filter_map(|r| r.first_fetch_unix_ms).filter(|t| *t > 0).min();
    let last_ack = reports.iter().filter_map(|r| r.last_ack_sent_unix_ms).filter(|t| *t > 0).max();
    let (from, to, source) = match (first_fetch, last_ack, reports.len() == n) {
        (Some(a), Some(b), true) => (a, b, "stage report: first fetch to last ack accepted"),
        _ => (
            started_unix_ms,
            figures.last_ack_sent_unix_ms.unwrap_or(started_unix_ms),
            "daemon start to MAX(outbox.sent_at) of acks",
        ),
    };
    let seconds = (to - from).max(1) as f64 / 1000.0;
    let (db_bytes, db_wal) = setup.db.bytes().await?;
    let per_1000 = if figures.requests > 0 { db_bytes as f64 / figures.requests as f64 * 1000.0 } else { 0.0 };
    let per_q = |s: f64| s * 1000.0 / expected.max(1) as f64;
    let postgres = setup.postmaster.is_some();
    let out = DrainFigures {
        engine: setup.db.engine().name().into(),
        daemons: n,
        questions: expected,
        seconds,
        questions_per_second: expected as f64 / seconds,
        ratio_to_raw_limit: 0.0,
        window_source: source.into(),
        window_start_unix_ms: from,
        window_end_unix_ms: to,
        all_mail_sent_seconds: figures.last_sent_unix_ms.map(|t| (t - started_unix_ms) as f64 / 1000.0).unwrap_or(0.0),
        peak_rss_mb: peaks.iter().flatten().max().map(|kb| *kb as f64 / 1024.0),
        daemon_cpu_ms_per_question: cpu.map(per_q),
        db_server_cpu_ms_per_question: postgres.then(|| per_q(db_server_all_out)),
        machine_cpu_ms_per_question: machine.map(|m| per_q(m.busy)),
        window_daemon_cpu_ms_per_question: window_daemon.map(per_q),
        postfix_cpu_ms_per_question: per_q(server_cpu.postfix),
        dovecot_cpu_ms_per_question: per_q(server_cpu.dovecot),
        postgres_cpu_ms_per_question: per_q(server_cpu.postgres),
        machine_idle_share: machine.map(|m| m.idle / (m.busy + m.idle + m.steal).max(0.01)),
        machine_iowait_share: machine.map(|m| m.iowait / (m.busy + m.idle + m.steal).max(0.01)),
        machine_steal_share: machine.map(|m| m.steal / (m.busy + m.idle + m.steal).max(0.01)),
        rss_timeline_mb: rss_timeline,
        db_bytes,
        db_wal_bytes: db_wal,
        db_bytes_per_1000_requests: per_1000,
        quarantined,
        stages: merged_stages(&reports),
        stage_report_extras: merged_extras(&reports),
        per_daemon,
        db: figures,
        once: None,
    };
    Ok((out, reports))
}

/// The daemons' CPU time so far, summed (None if one cannot be read).
fn sum_cpu(ds: &[DaemonProc]) -> Option<f64> {
    ds.iter().map(DaemonProc::cpu_seconds).sum()
}

/// Busy time and count per stage, summed over the daemons' reports.
pub fn merged_stages(reports: &[StageReport]) -> Vec<Stage> {
    let mut by_name: BTreeMap<&str, Stage> = BTreeMap::new();
    for s in reports.iter().flat_map(|r| &r.stages) {
        let e = by_name.entry(&s.name).or_insert_with(|| Stage { name: s.name.clone(), ..Stage::default() });
        e.seconds += s.seconds;
        e.count += s.count;
    }
    by_name.into_values().collect()
}

/// The reports' counters, summed over the daemons.
fn merged_extras(reports: &[StageReport]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (k, v) in reports.iter().flat_map(|r| &r.extras) {
        *out.entry(k.clone()).or_insert(0.0) += v;
    }
    out
}
