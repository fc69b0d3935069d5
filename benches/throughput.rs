//! Throughput, latency and memory of the intake311 daemon against real local mail servers, next to
//! the raw limit of those servers measured in the same run (issue 6).
//!
//! ```sh
//! cargo bench --bench throughput                      # N = 2,000
//! cargo bench --bench throughput -- --n 10000         # the target size
//! cargo bench --bench throughput -- --quick           # CI: N = 200, trickle 100, 2 big messages
//! ```
//!
//! Needs root and Debian's Dovecot and Postfix (installed by `tests/support/install.sh` when
//! missing). The test harness `tests/support/mailservers/` starts a private Dovecot and Postfix
//! on loopback; then, in one run:
//!
//! 1. **Fill**: `--n` questions are written straight into the intake user's Maildir `new/`
//!    (CRLF, `,S=<size>` in the file name). Senders are officials of 300 generated cities (an
//!    eligible half and a registered-but-not-eligible half, imported with `intake311 cities
//!    import`) and of 150 unknown domains, a third of the mail each. Bodies are 1–20 KB of text;
//!    about 10 % carry a base64 attachment of 3–200 KB. Every recipient of our mail (officials,
//!    staff) is a Dovecot user, so nothing bounces.
//! 2. **Raw limit**: a bare `UID FETCH 1:* (UID BODY.PEEK[])` of the backlog (async-imap,
//!    streamed), and N acknowledgement-sized (~3 KB) messages sent into the same Postfix: with
//!    lettre's stock pooled transport (4 connections; lettre 0.11.23 leaves Nagle on, so this run
//!    is capped and shown only as the "before"), with lettre over sockets we connected with
//!    TCP_NODELAY (1 and 4 connections), and with Postfix's `smtp-source` (1 and 4 sessions).
//!    Raw SMTP limit = best of the counted runs; raw limit = min(fetch rate, raw SMTP limit).
//!    Postfix's queue is drained between runs.
//! 3. **Drain**: `intake311 run` (the binary cargo built, as a child process) works through the
//!    backlog. Reported: questions/s from the first fetch to the last acknowledgement accepted by
//!    SMTP (from the daemon's `--stage-report` when it has that option, else from daemon start to
//!    `MAX(outbox.sent_at)`), the ratio to the raw limit, time per stage (stage report), peak RSS
//!    (VmHWM), and database bytes per 1,000 requests (.db + -wal after the daemon stopped).
//! 4. **Trickle**: a fresh daemon process on the same database, idle in IDLE on an empty inbox;
//!    `--trickle` questions at `--rate` per second are sent through Postfix over one
//!    TCP_NODELAY connection. For each: Postfix's 250 for the question to the acknowledgement's
//!    `outbox.sent_at`, and to the acknowledgement appearing in the official's Maildir (watched
//!    independently every 2 ms, matched by In-Reply-To). p50/p95/p99/max.
//! 5. **Memory**: a fresh database and daemon, a backlog of N questions plus `--big` messages of
//!    ~20 MB (15 MB attachments); the daemon's peak RSS.
//!
//! It prints one table and writes the same figures as JSON (`--json`, default
//! `target/bench/summary.json`). Daemon logs (`INTAKE311_LOG=info`), configs, databases, stage
//! reports and copies of the Dovecot and Postfix logs stay in `target/bench/run/` (replaced by
//! the next run). Figures never fail the run; errors do (a server that will not start, a daemon
//! that dies, acknowledgements that do not arrive within the bounded waits).
//!
//! Options: `--n N` (2000), `--trickle N` (200, 0 skips), `--rate R` (20), `--big N` (10),
//! `--skip-memory`, `--quick`, `--json PATH`, `--drain-timeout SECS` (max(600, N/10)),
//! `--stock-cap N` (400: messages for the slow stock-lettre run). Unknown arguments (cargo's
//! `--bench`) are ignored. Without `--bench` and without options (as under `cargo test
//! --all-targets`) it only says how to run it, and measures nothing.

#[path = "../tests/support/mailservers/mod.rs"]
mod mailservers;

#[path = "throughput/corpus.rs"]
mod corpus;
#[path = "throughput/daemon.rs"]
mod daemon;
#[path = "throughput/raw.rs"]
mod raw;
#[path = "throughput/report.rs"]
mod report;

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use corpus::{Attachment, INTAKE, MaildirWriter, Official, Outcome, STAFF, World};
use daemon::{DaemonProc, unix_ms_f64, unix_ms_now};
use mailservers::MailServers;
use report::{DrainFigures, FillFigures, MemoryFigures, Percentiles, RawFigures, Summary, TrickleFigures, mb};

/// Cities in the generated registry.
const CITIES: usize = 300;
/// The raw smtp-source runs deliver here.
const RAW_SINK: &str = "raw-sink@bench.test";
/// Fresh officials per outcome for the trickle (their Maildirs start empty).
const TRICKLE_OFFICIALS_PER_OUTCOME: usize = 10;
/// Binary bytes of each big message's attachment (~20.5 MB once base64-encoded).
const BIG_ATTACHMENT_BYTES: usize = 15_000_000;
/// How long the daemon gets to stop after SIGTERM.
const STOP_LIMIT: Duration = Duration::from_secs(60);
/// A drain that makes no progress for this long has failed.
const STALL_LIMIT: Duration = Duration::from_secs(180);

#[derive(Debug, Clone)]
struct Options {
    n: u64,
    trickle: u64,
    rate: f64,
    big: u64,
    skip_memory: bool,
    json: PathBuf,
    drain_timeout: Duration,
    stock_cap: u64,
}

const USAGE: &str = "usage: cargo bench --bench throughput -- [--n N] [--trickle N] [--rate R] [--big N] \
                     [--skip-memory] [--quick] [--json PATH] [--drain-timeout SECS] [--stock-cap N]";

/// Ok(None): not asked to benchmark (e.g. run by `cargo test`).
fn parse_args() -> Result<Option<Options>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // Accept --key=value as well as --key value.
    args = args
        .into_iter()
        .flat_map(|a| match a.split_once('=') {
            Some((k, v)) if k.starts_with("--") => vec![k.to_string(), v.to_string()],
            _ => vec![a],
        })
        .collect();
    let mut bench = false;
    let mut asked = false;
    let (mut n, mut trickle, mut big, mut quick) = (None, None, None, false);
    let mut o = Options {
        n: 2000,
        trickle: 200,
        rate: 20.0,
        big: 10,
        skip_memory: false,
        json: Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench/summary.json"),
        drain_timeout: Duration::ZERO,
        stock_cap: 400,
    };
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| anyhow!("{name} needs a value\n{USAGE}"));
        match a.as_str() {
            "--bench" => bench = true,
            "--n" => n = Some(value("--n")?.parse::<u64>().context("--n")?),
            "--trickle" => trickle = Some(value("--trickle")?.parse::<u64>().context("--trickle")?),
            "--rate" => o.rate = value("--rate")?.parse::<f64>().context("--rate")?,
            "--big" => big = Some(value("--big")?.parse::<u64>().context("--big")?),
            "--skip-memory" => o.skip_memory = true,
            "--quick" => quick = true,
            "--json" => o.json = PathBuf::from(value("--json")?),
            "--drain-timeout" => {
                o.drain_timeout = Duration::from_secs(value("--drain-timeout")?.parse().context("--drain-timeout")?)
            }
            "--stock-cap" => o.stock_cap = value("--stock-cap")?.parse().context("--stock-cap")?,
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => {
                eprintln!("throughput: ignoring argument {other:?}");
                continue;
            }
        }
        if a != "--bench" {
            asked = true;
        }
    }
    if !bench && !asked {
        println!("throughput: a benchmark against real mail servers; run it with `cargo bench --bench throughput`");
        return Ok(None);
    }
    if quick {
        o.n = 200;
        o.trickle = 100;
        o.big = 2;
    }
    o.n = n.unwrap_or(o.n);
    o.trickle = trickle.unwrap_or(o.trickle);
    o.big = big.unwrap_or(o.big);
    if o.n == 0 {
        bail!("--n must be at least 1");
    }
    if !(o.rate > 0.0 && o.rate <= 1000.0) {
        bail!("--rate must be in (0, 1000]");
    }
    if o.drain_timeout.is_zero() {
        o.drain_timeout = Duration::from_secs(600.max(o.n / 10));
    }
    Ok(Some(o))
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(Some(o)) => o,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("throughput: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("throughput: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&opts)) {
        Ok(summary) => {
            println!("\n{}", summary.table());
            println!("JSON: {}", opts.json.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("\nthroughput: FAILED: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn progress(msg: impl AsRef<str>) {
    eprintln!("[throughput] {}", msg.as_ref());
}

/// Notes the machine's 1-minute load average as `phase` starts (other work on the machine skews
/// every figure; this says how busy it was).
fn note_load(summary: &mut Summary, phase: &str) {
    let load = fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse::<f64>().ok()))
        .unwrap_or(f64::NAN);
    summary.load_average_1m.push((phase.to_string(), load));
}

async fn run(opts: &Options) -> Result<Summary> {
    let t0 = Instant::now();
    let run_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench/run");
    if run_dir.exists() {
        fs::remove_dir_all(&run_dir).with_context(|| format!("removing the previous {}", run_dir.display()))?;
    }
    fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    progress(format!("{opts:?}"));
    progress("starting Dovecot and Postfix");
    let servers = MailServers::start().context("starting the private Dovecot and Postfix")?;
    progress(format!(
        "mail servers in {} (IMAP {}, SMTP {})",
        servers.root.display(),
        servers.imap_port,
        servers.smtp_port
    ));
    let mut summary = Summary {
        n: opts.n,
        cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        started_at: chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        run_dir: run_dir.display().to_string(),
        stage_report: daemon::supports_stage_report(),
        ..Default::default()
    };
    let result = phases(opts, &servers, &run_dir, &mut summary).await;
    // Keep the servers' logs next to the daemon's, whatever happened.
    for (name, path) in [("dovecot.log", &servers.dovecot_log), ("postfix.log", &servers.postfix_log)] {
        let _ = fs::copy(path, run_dir.join(name));
    }
    for log in ["daemon-drain.log", "daemon-trickle.log", "daemon-memory.log"] {
        let p = run_dir.join(log);
        if p.exists() {
            summary.daemon_logs.push(daemon::log_problems(&p));
        }
    }
    result?;
    note_load(&mut summary, "end");
    summary.total_seconds = t0.elapsed().as_secs_f64();
    if let Some(dir) = opts.json.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::write(&opts.json, serde_json::to_string_pretty(&summary)?)
        .with_context(|| format!("writing {}", opts.json.display()))?;
    Ok(summary)
}

async fn phases(opts: &Options, servers: &MailServers, run_dir: &Path, summary: &mut Summary) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(311);
    let world = World::generate(&mut rng, CITIES)?;
    let trickle_officials = world.fresh_officials(&mut rng, TRICKLE_OFFICIALS_PER_OUTCOME);
    for addr in [INTAKE, STAFF, RAW_SINK] {
        servers.add_user(addr)?;
    }
    for o in world.officials().chain(&trickle_officials) {
        servers.add_user(&o.email)?;
    }
    let csv = run_dir.join("cities.csv");
    fs::write(&csv, &world.cities_csv).with_context(|| format!("writing {}", csv.display()))?;

    // The drain's database; the trickle reuses it.
    let db = run_dir.join("drain.db");
    let config = run_dir.join("drain.toml");
    fs::write(&config, daemon::config_text(servers, &db)).context("writing the daemon config")?;
    daemon::cli(&config, &["cities", "import", &csv.to_string_lossy()])?;

    // 1. Fill.
    note_load(summary, "fill");
    progress(format!("filling the intake mailbox with {} questions", opts.n));
    summary.fill = fill(servers, &world, &mut rng, opts.n, 0, "drain")?;
    summary.fill.cities = world.registered_cities;
    summary.fill.officials = world.officials().count();

    // 2. Raw limit.
    note_load(summary, "raw");
    summary.raw = raw_limit(opts, servers, &world).await?;

    // 3. Drain.
    note_load(summary, "drain");
    progress("draining the backlog with the daemon");
    let stage = summary.stage_report.then(|| run_dir.join("stages-drain.json"));
    let (drain, _) =
        drain(servers, &config, &db, &run_dir.join("daemon-drain.log"), stage, opts.n, opts.drain_timeout).await?;
    summary.drain = DrainFigures {
        ratio_to_raw_limit: if summary.raw.limit_per_second > 0.0 {
            drain.questions_per_second / summary.raw.limit_per_second
        } else {
            0.0
        },
        ..drain
    };
    servers.wait_queue_empty(queue_limit(opts.n)).await?;

    // 4. Trickle.
    if opts.trickle > 0 {
        note_load(summary, "trickle");
        progress(format!("trickle: {} questions at {}/s", opts.trickle, opts.rate));
        let stage = summary.stage_report.then(|| run_dir.join("stages-trickle.json"));
        summary.trickle =
            Some(trickle(opts, servers, &trickle_officials, &config, &db, run_dir, stage, &mut rng).await?);
        servers.wait_queue_empty(queue_limit(opts.trickle)).await?;
    }

    // 5. Memory.
    if !opts.skip_memory {
        note_load(summary, "memory");
        progress(format!("memory: {} questions plus {} messages of ~20 MB", opts.n, opts.big));
        let stage = summary.stage_report.then(|| run_dir.join("stages-memory.json"));
        summary.memory = Some(memory(opts, servers, &world, &csv, run_dir, stage, &mut rng).await?);
    }
    Ok(())
}

/// How long Postfix may take to deliver what it accepted.
fn queue_limit(n: u64) -> Duration {
    Duration::from_secs(120) + Duration::from_millis(20 * n)
}

// ---------------------------------------------------------------------------------------------
// 1. Fill
// ---------------------------------------------------------------------------------------------

/// Writes `n` ordinary questions (a third per outcome) and `big` ~20 MB ones, spread evenly
/// among them, into the intake user's Maildir.
fn fill(servers: &MailServers, world: &World, rng: &mut StdRng, n: u64, big: u64, tag: &str) -> Result<FillFigures> {
    let t0 = Instant::now();
    let mut writer = MaildirWriter::open(&servers.maildir(INTAKE))?;
    let mut figures = FillFigures::default();
    let big_every = n.checked_div(big).map_or(u64::MAX, |e| e.max(1));
    let deliver_big = |writer: &mut MaildirWriter, rng: &mut StdRng, k: u64| -> Result<u64> {
        let from = world.pick(rng, Outcome::ALL[(k % 3) as usize]);
        let a = Attachment::random(rng, BIG_ATTACHMENT_BYTES, 1_000_000 + k);
        let q = corpus::question(rng, from, &format!("{tag}-big"), k, 2_000, Some(&a));
        writer.deliver(&q.raw)?;
        Ok(q.raw.len() as u64)
    };
    for i in 0..n {
        let outcome = Outcome::ALL[(i % 3) as usize];
        let from = world.pick(rng, outcome);
        let body_bytes = rng.random_range(1_000..=20_000);
        let attachment = rng.random_bool(0.10).then(|| {
            // Log-uniform from 3 KB to 200 KB.
            let size = (rng.random_range(3_000f64.ln()..200_000f64.ln())).exp() as usize;
            Attachment::random(rng, size, i)
        });
        let q = corpus::question(rng, from, tag, i, body_bytes, attachment.as_ref());
        writer.deliver(&q.raw)?;
        figures.with_attachment += u64::from(attachment.is_some());
        *figures.by_outcome.entry(outcome_name(outcome).into()).or_default() += 1;
        if figures.big_messages < big && i % big_every == big_every / 2 {
            figures.big_bytes += deliver_big(&mut writer, rng, figures.big_messages)?;
            figures.big_messages += 1;
        }
    }
    while figures.big_messages < big {
        figures.big_bytes += deliver_big(&mut writer, rng, figures.big_messages)?;
        figures.big_messages += 1;
    }
    figures.messages = writer.messages;
    figures.bytes = writer.bytes;
    figures.seconds = t0.elapsed().as_secs_f64();
    Ok(figures)
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Eligible => "eligible",
        Outcome::NotEligible => "not_eligible",
        Outcome::Unknown => "unknown",
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Raw limit
// ---------------------------------------------------------------------------------------------

async fn raw_limit(opts: &Options, servers: &MailServers, world: &World) -> Result<RawFigures> {
    progress("raw: UID FETCH of the backlog");
    let fetch = tokio::time::timeout(Duration::from_secs(600), raw::imap_fetch_all(servers, INTAKE))
        .await
        .map_err(|_| anyhow!("the raw UID FETCH did not finish within 10 minutes"))??;
    let recipients: Vec<String> = world.officials().map(|o| o.email.clone()).collect();
    let port = servers.smtp_port;
    let n = opts.n;
    let qlimit = queue_limit(n);
    let mut smtp = Vec::new();

    let stock = n.min(opts.stock_cap);
    progress(format!("raw: {stock} messages with lettre's stock pool (no TCP_NODELAY; slow by design)"));
    let since = daemon::ServerCpu::now(servers);
    smtp.push(raw::lettre_pool_stock(port, stock, 4, &recipients).await?);
    drained(&mut smtp, servers, qlimit, since).await?;
    for conns in [1, 4] {
        progress(format!("raw: {n} messages with lettre + TCP_NODELAY over {conns} connection(s)"));
        let since = daemon::ServerCpu::now(servers);
        smtp.push(raw::lettre_nodelay(port, n, conns, &recipients).await?);
        drained(&mut smtp, servers, qlimit, since).await?;
    }
    for sessions in [1, 4] {
        progress(format!("raw: {n} messages with smtp-source over {sessions} session(s)"));
        let since = daemon::ServerCpu::now(servers);
        smtp.push(raw::smtp_source(port, n, sessions, RAW_SINK).await?);
        drained(&mut smtp, servers, qlimit, since).await?;
    }
    let smtp_limit = smtp.iter().filter(|s| s.counts_for_limit).map(|s| s.messages_per_second).fold(0.0, f64::max);
    let (limit, by) = if fetch.messages_per_second < smtp_limit {
        (fetch.messages_per_second, "IMAP fetch")
    } else {
        (smtp_limit, "SMTP")
    };
    Ok(RawFigures {
        imap_fetch: Some(fetch),
        smtp,
        smtp_limit_per_second: smtp_limit,
        limit_per_second: limit,
        limited_by: by.into(),
    })
}

/// Waits until Postfix has delivered everything, and notes on the last run how long that took
/// and what the mail servers' processes used from `since` (its start) until then.
async fn drained(
    smtp: &mut [raw::SmtpFigure],
    servers: &MailServers,
    limit: Duration,
    since: daemon::ServerCpu,
) -> Result<()> {
    let waited = servers.wait_queue_empty(limit).await?;
    let used = since.until(daemon::ServerCpu::now(servers));
    if let Some(last) = smtp.last_mut() {
        last.queue_drain_seconds = waited;
        last.servers_cpu_ms_per_mail = (used.postfix + used.dovecot) * 1000.0 / last.messages.max(1) as f64;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3. Drain (also used by the memory phase)
// ---------------------------------------------------------------------------------------------

/// Runs the daemon until `expected` acknowledgements are sent and the outbox is empty, then
/// stops it. Returns the drain's figures (ratio left 0) and the stage report if any.
async fn drain(
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

// ---------------------------------------------------------------------------------------------
// 4. Trickle
// ---------------------------------------------------------------------------------------------

#[allow(clippy::too_many_arguments)]
async fn trickle(
    opts: &Options,
    servers: &MailServers,
    officials: &[Official],
    config: &Path,
    db_path: &Path,
    run_dir: &Path,
    stage_report: Option<PathBuf>,
    rng: &mut StdRng,
) -> Result<TrickleFigures> {
    let log = run_dir.join("daemon-trickle.log");
    let mut d = DaemonProc::spawn(config, &log, stage_report.as_deref())?;
    let db = daemon::open_db(db_path).await?;
    d.wait_until_polled(&db, Duration::from_secs(60)).await?;
    // Let the first (empty) poll finish and IDLE begin.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The independent receiver: the officials' Maildirs, watched every 2 ms.
    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let dirs: Vec<PathBuf> = officials.iter().map(|o| servers.maildir(&o.email).join("new")).collect();
    let watcher = {
        let stop = Arc::clone(&stop.0);
        std::thread::spawn(move || watch_maildirs(&dirs, &stop, Duration::from_secs(3600)))
    };

    let since_ms = unix_ms_now() - 1000;
    let count = opts.trickle;
    let interval = Duration::from_secs_f64(1.0 / opts.rate);
    let mut sent: Vec<(String, f64)> = Vec::with_capacity(count as usize);
    let mut conn = Some(raw::connect_nodelay(servers.smtp_port).await?);
    let t0 = tokio::time::Instant::now();
    for i in 0..count {
        tokio::time::sleep_until(t0 + interval.mul_f64(i as f64)).await;
        let from = &officials[(i as usize) % officials.len()];
        let body_bytes = rng.random_range(1_000..=20_000);
        let q = corpus::question(rng, from, "trickle", i, body_bytes, None);
        let envelope = lettre::address::Envelope::new(
            Some(from.email.parse().with_context(|| format!("address {}", from.email))?),
            vec![INTAKE.parse().context("intake address")?],
        )
        .context("envelope")?;
        // One reconnect if the connection broke (Postfix closes idle sessions after a while).
        let mut attempt = 0;
        loop {
            let c = match conn.as_mut() {
                Some(c) => c,
                None => conn.insert(raw::connect_nodelay(servers.smtp_port).await?),
            };
            match raw::send_bounded(c, &envelope, &q.raw).await {
                Ok(_) => break,
                Err(e) if attempt == 0 => {
                    progress(format!("trickle: SMTP send failed ({e:#}); reconnecting"));
                    conn = None;
                    attempt += 1;
                }
                Err(e) => return Err(e.context(format!("trickle: sending question {i}"))),
            }
        }
        sent.push((q.message_id, unix_ms_f64()));
    }
    if let Some(mut c) = conn.take() {
        let _ = c.quit().await;
    }

    // Every acknowledgement accepted by SMTP (daemon's view) ...
    let want: HashSet<&str> = sent.iter().map(|(id, _)| id.as_str()).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let acks: HashMap<String, i64> = loop {
        d.check_alive()?;
        let acks: HashMap<String, i64> = daemon::acks_since(&db, since_ms)
            .await?
            .into_iter()
            .filter_map(|(id, at)| at.map(|t| (id, t)))
            .filter(|(id, _)| want.contains(id.as_str()))
            .collect();
        if acks.len() == want.len() {
            break acks;
        }
        if Instant::now() > deadline {
            bail!(
                "trickle: only {} of {} acknowledgements were sent within 120 s of the last question; log:\n{}",
                acks.len(),
                want.len(),
                daemon::log_tail(&log, 30)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // ... and in the officials' mailboxes (the receiver's view).
    let deadline = Instant::now() + Duration::from_secs(60);
    while !watcher.is_finished() && Instant::now() < deadline {
        if servers_delivered(&want, servers, officials) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.0.store(true, Ordering::Relaxed);
    let delivered = watcher.join().map_err(|_| anyhow!("the Maildir watcher panicked"))?;
    let peak = d.peak_rss_kb();
    db.close().await;
    d.terminate(STOP_LIMIT).await?;

    let mut to_smtp = Vec::new();
    let mut to_mailbox = Vec::new();
    let mut mailbox_minus_sent_at = Vec::new();
    let mut slowest = Vec::new();
    for (i, (id, accepted)) in sent.iter().enumerate() {
        let sent_at = acks.get(id).map(|t| *t as f64);
        let seen = delivered.get(id).copied();
        if let Some(at) = sent_at {
            to_smtp.push(at - accepted);
            slowest.push((i, at - accepted));
        }
        if let Some(at) = seen {
            to_mailbox.push(at - accepted);
        }
        if let (Some(s), Some(m)) = (sent_at, seen) {
            mailbox_minus_sent_at.push(m - s);
        }
    }
    if to_mailbox.len() < sent.len() {
        bail!(
            "trickle: only {} of {} acknowledgements reached the officials' Maildirs within 60 s; see {}",
            to_mailbox.len(),
            sent.len(),
            servers.postfix_log.display()
        );
    }
    let stages = match &stage_report {
        Some(p) if p.exists() => daemon::read_stage_report(p)?.stages,
        _ => Vec::new(),
    };
    Ok(TrickleFigures {
        questions: count,
        rate_per_second: opts.rate,
        setup: "fresh daemon process, same database as the drain (holding its requests), empty inbox".into(),
        to_smtp_acceptance: Percentiles::of(to_smtp),
        to_mailbox_delivery: Percentiles::of(to_mailbox),
        mailbox_minus_sent_at: Percentiles::of(mailbox_minus_sent_at),
        slowest: {
            slowest.sort_by(|a, b| b.1.total_cmp(&a.1));
            slowest.truncate(5);
            slowest
        },
        peak_rss_mb: peak.map(|kb| kb as f64 / 1024.0),
        stages,
    })
}

/// Tells the Maildir watcher to stop when the trickle ends, also on an early error return.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Whether every wanted acknowledgement is in some official's Maildir (a cheap check to stop
/// waiting; the watcher's timestamps are what is reported).
fn servers_delivered(want: &HashSet<&str>, servers: &MailServers, officials: &[Official]) -> bool {
    let mut found = 0;
    for o in officials {
        let Ok(rd) = fs::read_dir(servers.maildir(&o.email).join("new")) else { continue };
        for e in rd.flatten() {
            if read_in_reply_to(&e.path()).is_some_and(|id| want.contains(id.as_str())) {
                found += 1;
            }
        }
    }
    found >= want.len()
}

/// Polls `dirs` every 2 ms until `stop` (or `limit`): for each new file, the moment it was
/// first seen (Unix ms), keyed by the Message-ID in its In-Reply-To header.
fn watch_maildirs(dirs: &[PathBuf], stop: &AtomicBool, limit: Duration) -> HashMap<String, f64> {
    let start = Instant::now();
    let mut seen: HashSet<OsString> = HashSet::new();
    let mut found: HashMap<String, f64> = HashMap::new();
    // Files already there (earlier phases) are not ours.
    for d in dirs {
        if let Ok(rd) = fs::read_dir(d) {
            seen.extend(rd.flatten().map(|e| e.file_name()));
        }
    }
    while !stop.load(Ordering::Relaxed) && start.elapsed() < limit {
        for d in dirs {
            let Ok(rd) = fs::read_dir(d) else { continue };
            for e in rd.flatten() {
                let name = e.file_name();
                if seen.contains(&name) {
                    continue;
                }
                let at = unix_ms_f64();
                seen.insert(name);
                if let Some(id) = read_in_reply_to(&e.path()) {
                    found.entry(id).or_insert(at);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    found
}

/// The first Message-ID of a mail file's In-Reply-To header, without angle brackets.
fn read_in_reply_to(path: &Path) -> Option<String> {
    let mut buf = Vec::with_capacity(16 * 1024);
    fs::File::open(path).ok()?.take(64 * 1024).read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let head = text.split("\r\n\r\n").next().unwrap_or(&text);
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    let line = unfolded.lines().find(|l| l.len() > 12 && l[..12].eq_ignore_ascii_case("in-reply-to:"))?;
    let v = &line[12..];
    let start = v.find('<')? + 1;
    let end = start + v[start..].find('>')?;
    Some(v[start..end].trim().to_string())
}

// ---------------------------------------------------------------------------------------------
// 5. Memory
// ---------------------------------------------------------------------------------------------

async fn memory(
    opts: &Options,
    servers: &MailServers,
    world: &World,
    csv: &Path,
    run_dir: &Path,
    stage_report: Option<PathBuf>,
    rng: &mut StdRng,
) -> Result<MemoryFigures> {
    let db = run_dir.join("memory.db");
    let config = run_dir.join("memory.toml");
    fs::write(&config, daemon::config_text(servers, &db)).context("writing the memory-phase config")?;
    daemon::cli(&config, &["cities", "import", &csv.to_string_lossy()])?;
    let f = fill(servers, world, rng, opts.n, opts.big, "memory")?;
    let big_bytes = f.big_bytes / f.big_messages.max(1);
    progress(format!("memory: {} messages, {:.0} MB in the inbox; draining", f.messages, mb(f.bytes)));
    let (d, report) =
        drain(servers, &config, &db, &run_dir.join("daemon-memory.log"), stage_report, f.messages, opts.drain_timeout)
            .await?;
    servers.wait_queue_empty(queue_limit(opts.n)).await?;
    Ok(MemoryFigures {
        ordinary: opts.n,
        big: opts.big,
        big_bytes_each: big_bytes,
        backlog_bytes: f.bytes,
        peak_rss_mb: d.peak_rss_mb,
        rss_timeline_mb: d.rss_timeline_mb,
        seconds: d.seconds,
        questions_per_second: d.questions_per_second,
        db_bytes: d.db_bytes,
        stages: report.map(|r| r.stages).unwrap_or_default(),
    })
}
