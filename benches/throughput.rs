//! Throughput, latency and memory of the intake311 daemon against real local mail servers, next to
//! the raw limit of those servers measured in the same run (issue 6).
//!
//! ```sh
//! cargo bench --bench throughput                      # N = 2,000
//! cargo bench --bench throughput -- --n 10000         # the target size
//! cargo bench --bench throughput -- --quick           # CI: N = 200, trickle 100, 2 big messages,
//!                                                     # then 200 questions with 2 daemons on PostgreSQL
//! cargo bench --bench throughput -- --db postgres --daemons 2 --failover --lease 5s,15s
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
//!    (VmHWM) per daemon, CPU per question of the daemons (and of the PostgreSQL server), and
//!    database bytes per 1,000 requests (.db + -wal after the daemon stopped; on PostgreSQL
//!    `pg_database_size`).
//! 4. **Trickle**: a fresh daemon process on the same database, idle in IDLE on an empty inbox;
//!    `--trickle` questions at `--rate` per second are sent through Postfix over one
//!    TCP_NODELAY connection. For each: Postfix's 250 for the question to the acknowledgement's
//!    `outbox.sent_at`, and to the acknowledgement appearing in the official's Maildir (watched
//!    independently every 2 ms, matched by In-Reply-To). p50/p95/p99/max.
//! 5. **Memory**: a fresh database and daemon(s), a backlog of N questions plus `--big` messages of
//!    ~20 MB (15 MB attachments); each daemon's peak RSS.
//! 6. **Failover** (`--failover`, PostgreSQL): per `--lease` value, fresh daemons (at least 2) on
//!    the drain's database; the lease holder is SIGKILLed and a new question sent: the time until
//!    another daemon holds the lease and until the question is acknowledged.
//! 7. **PostgreSQL check** (`--quick` only): 200 questions drained by 2 daemons on a fresh
//!    PostgreSQL database, then a failover with a 3 s lease.
//!
//! `--db postgres` runs the drain, trickle and memory phases on PostgreSQL: the benchmark starts
//! a private cluster with the tests' own code (`tests/support/postgres.rs`: `initdb` into a
//! temporary folder under /tmp, a free loopback port, the server running as the `postgres`
//! user) and gives each phase a fresh database in it. `--daemons N` starts N daemon processes
//! on that database and the one mailbox: one holds the mailbox lease and polls, all send. The
//! daemons' CPU is summed; the cluster's CPU (postmaster and backends) is reported beside it.
//! After every drain each question must have been handled exactly once (`once`: one request,
//! distinct tracking numbers, one acknowledgement Message-ID, delivered once, nothing left in the
//! inbox or quarantined); a violation fails the run after the table is printed.
//!
//! Each phase is a module under `benches/throughput/` (`fill`, `raw`, `drain`, `trickle`, `memory`,
//! `failover`), beside the world generator (`corpus`), the daemon under test and its database
//! (`daemon`), the once-check (`once`) and the figures (`report`); this file parses the options
//! and runs the phases in order.
//!
//! It prints one table and writes the same figures as JSON (`--json`, default
//! `target/bench/summary.json`). Daemon logs (`INTAKE311_LOG=info`), configs, databases, stage
//! reports and copies of the Dovecot and Postfix logs stay in `target/bench/run/` (replaced by
//! the next run). Figures never fail the run; errors do (a server that will not start, a daemon
//! that dies, acknowledgements that do not arrive within the bounded waits).
//!
//! Options: `--n N` (2000), `--trickle N` (200, 0 skips), `--rate R` (20), `--big N` (10),
//! `--skip-memory`, `--quick`, `--json PATH`, `--drain-timeout SECS` (max(600, N/10)),
//! `--stock-cap N` (400: messages for the slow stock-lettre run), `--db sqlite|postgres`
//! (sqlite), `--daemons N` (1; PostgreSQL only), `--failover` (PostgreSQL only), `--lease
//! DURATION[,DURATION…]` (PostgreSQL only: `database.lease` of the drain (the first value) and
//! one failover per value; default the daemon's own, 15s). Unknown arguments (cargo's
//! `--bench`) are ignored. Without `--bench` and without options (as under `cargo test
//! --all-targets`) it only says how to run it, and measures nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

#[path = "../tests/support/mailservers/mod.rs"]
mod mailservers;

#[path = "../tests/support/postgres.rs"]
mod postgres;

#[path = "throughput/corpus.rs"]
mod corpus;
// First: its `on_db!` macro is used by the modules below.
#[macro_use]
#[path = "throughput/daemon.rs"]
mod daemon;
#[path = "throughput/once.rs"]
mod once;
#[path = "throughput/raw.rs"]
mod raw;
#[path = "throughput/report.rs"]
mod report;

// One module per phase (raw.rs above holds phase 2 with its measurements).
#[path = "throughput/drain.rs"]
mod drain;
#[path = "throughput/failover.rs"]
mod failover;
#[path = "throughput/fill.rs"]
mod fill;
#[path = "throughput/memory.rs"]
mod memory;
#[path = "throughput/trickle.rs"]
mod trickle;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rand::SeedableRng;
use rand::rngs::StdRng;

use corpus::{INTAKE, STAFF, World};
use daemon::{DbTarget, Engine};
use drain::DrainSetup;
use mailservers::MailServers;
use once::Folders;
use postgres::PgCluster;
use report::{DrainFigures, Summary};

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
/// `--quick`'s PostgreSQL check: questions, daemons, and the lease of its failover.
const PG_CHECK_QUESTIONS: u64 = 200;
const PG_CHECK_DAEMONS: usize = 2;
const PG_CHECK_LEASE: Duration = Duration::from_secs(3);
/// `database.lease` must be in this range (the daemon refuses others).
const LEASE_RANGE: std::ops::RangeInclusive<Duration> = Duration::from_secs(3)..=Duration::from_secs(300);

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
    /// The engine of the drain, trickle and memory phases.
    db: Engine,
    /// Daemon processes on the one database and mailbox (PostgreSQL only).
    daemons: usize,
    failover: bool,
    /// `--lease`: `database.lease` of the drain (the first) and of one failover each; empty: the
    /// daemon's default.
    leases: Vec<Duration>,
    /// `--quick`: end with the PostgreSQL check.
    pg_check: bool,
}

const USAGE: &str = "usage: cargo bench --bench throughput -- [--n N] [--trickle N] [--rate R] [--big N] \
                     [--skip-memory] [--quick] [--json PATH] [--drain-timeout SECS] [--stock-cap N] \
                     [--db sqlite|postgres] [--daemons N] [--failover] [--lease DURATION[,DURATION...]]";

/// The daemon's default `database.lease` (src/config/sections.rs).
const DEFAULT_LEASE: Duration = Duration::from_secs(15);

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
        db: Engine::Sqlite,
        daemons: 1,
        failover: false,
        leases: Vec::new(),
        pg_check: false,
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
            "--db" => {
                o.db = match value("--db")?.to_ascii_lowercase().as_str() {
                    "sqlite" => Engine::Sqlite,
                    "postgres" | "postgresql" | "pg" => Engine::Postgres,
                    other => bail!("--db {other:?}: expected sqlite or postgres\n{USAGE}"),
                }
            }
            "--daemons" => o.daemons = value("--daemons")?.parse().context("--daemons")?,
            "--failover" => o.failover = true,
            "--lease" => {
                o.leases = value("--lease")?
                    .split(',')
                    .map(|l| humantime::parse_duration(l.trim()).with_context(|| format!("--lease {l:?}")))
                    .collect::<Result<_>>()?;
            }
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
        o.pg_check = true;
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
    if o.daemons == 0 {
        bail!("--daemons must be at least 1");
    }
    if o.db != Engine::Postgres {
        for (given, flag) in
            [(o.daemons > 1, "--daemons"), (o.failover, "--failover"), (!o.leases.is_empty(), "--lease")]
        {
            if given {
                bail!("{flag} needs --db postgres (several daemons share a mailbox through one PostgreSQL database)");
            }
        }
    }
    if let Some(l) = o.leases.iter().find(|l| !LEASE_RANGE.contains(l)) {
        bail!("--lease {}: database.lease must be between 3s and 5m", humantime::format_duration(*l));
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
            if summary.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "\nthroughput: FAILED: questions not handled exactly once:\n  {}",
                    summary.problems.join("\n  ")
                );
                ExitCode::FAILURE
            }
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
        engine: opts.db,
        daemons: opts.daemons,
        cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        started_at: chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        run_dir: run_dir.display().to_string(),
        stage_report: daemon::supports_stage_report(),
        ..Default::default()
    };
    // The private PostgreSQL cluster: from the start with --db postgres, else started by the
    // PostgreSQL check of --quick. Dropped (stopped, its folder removed) when the run ends.
    let mut pg: Option<PgCluster> = None;
    if opts.db == Engine::Postgres {
        start_postgres(&mut pg, &mut summary)?;
    }
    let result = phases(opts, &servers, &mut pg, &run_dir, &mut summary).await;
    // Keep the servers' logs next to the daemon's, whatever happened.
    for (name, path) in [("dovecot.log", &servers.dovecot_log), ("postfix.log", &servers.postfix_log)] {
        let _ = fs::copy(path, run_dir.join(name));
    }
    if let Some(pg) = &pg {
        let _ = fs::copy(&pg.log, run_dir.join("postgres.log"));
    }
    let mut logs: Vec<PathBuf> = fs::read_dir(&run_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("daemon-") && n.ends_with(".log"))
        })
        .collect();
    logs.sort();
    summary.daemon_logs = logs.iter().map(|p| daemon::log_problems(p)).collect();
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

/// Starts the private PostgreSQL cluster (the tests' own: initdb into /tmp, loopback, as the
/// `postgres` user) unless it runs already.
fn start_postgres(pg: &mut Option<PgCluster>, summary: &mut Summary) -> Result<()> {
    if pg.is_none() {
        progress("starting a private PostgreSQL cluster");
        let c = PgCluster::start().context("starting the private PostgreSQL cluster")?;
        let about = format!("PostgreSQL {} on 127.0.0.1:{}, data in {}", c.version, c.port, c.root.display());
        progress(&about);
        summary.postgres = Some(about);
        *pg = Some(c);
    }
    Ok(())
}

async fn phases(
    opts: &Options,
    servers: &MailServers,
    pg: &mut Option<PgCluster>,
    run_dir: &Path,
    summary: &mut Summary,
) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(311);
    let world = World::generate(&mut rng, CITIES)?;
    let trickle_officials = world.fresh_officials(&mut rng, TRICKLE_OFFICIALS_PER_OUTCOME);
    for addr in [INTAKE, STAFF, RAW_SINK] {
        servers.add_user(addr)?;
    }
    for o in world.officials().chain(&trickle_officials) {
        servers.add_user(&o.email)?;
    }
    let officials: Vec<PathBuf> = world.officials().map(|o| servers.maildir(&o.email)).collect();
    let csv = run_dir.join("cities.csv");
    fs::write(&csv, &world.cities_csv).with_context(|| format!("writing {}", csv.display()))?;

    // The drain's database; the trickle and the failover reuse it.
    let main_pg = if opts.db == Engine::Postgres { pg.as_ref() } else { None };
    let db = DbTarget::fresh(run_dir, "drain", main_pg)?;
    let config = run_dir.join("drain.toml");
    fs::write(&config, daemon::config_text(servers, &db, opts.leases.first().copied()))
        .context("writing the daemon config")?;
    daemon::cli(&config, &["migrate"])?;
    daemon::cli(&config, &["cities", "import", &csv.to_string_lossy()])?;

    // 1. Fill.
    note_load(summary, "fill");
    progress(format!("filling the intake mailbox with {} questions", opts.n));
    let before = Folders::now(servers);
    summary.fill = fill::fill(servers, &world, &mut rng, opts.n, 0, "drain")?;
    summary.fill.cities = world.registered_cities;
    summary.fill.officials = world.officials().count();
    let questions = std::mem::take(&mut summary.fill.message_ids);

    // 2. Raw limit.
    note_load(summary, "raw");
    summary.raw = raw::limit(opts, servers, &world).await?;

    // 3. Drain.
    note_load(summary, "drain");
    progress(format!("draining the backlog with {} daemon(s) on {}", opts.daemons, opts.db.name()));
    let setup = DrainSetup {
        name: "drain",
        config: &config,
        db: &db,
        daemons: opts.daemons,
        stage_report: summary.stage_report,
        postmaster: main_pg.and_then(PgCluster::pid),
    };
    let (drain, _) = drain::drain(servers, run_dir, &setup, opts.n, opts.drain_timeout).await?;
    summary.drain = DrainFigures {
        ratio_to_raw_limit: if summary.raw.limit_per_second > 0.0 {
            drain.questions_per_second / summary.raw.limit_per_second
        } else {
            0.0
        },
        ..drain
    };
    servers.wait_queue_empty(queue_limit(opts.n)).await?;
    summary.drain.once = Some(check_once(&db, servers, &questions, &officials, before, "drain", summary).await?);

    // 4. Trickle.
    if opts.trickle > 0 {
        note_load(summary, "trickle");
        progress(format!("trickle: {} questions at {}/s", opts.trickle, opts.rate));
        let stage = summary.stage_report.then(|| run_dir.join("stages-trickle.json"));
        summary.trickle =
            Some(trickle::trickle(opts, servers, &trickle_officials, &config, &db, run_dir, stage, &mut rng).await?);
        servers.wait_queue_empty(queue_limit(opts.trickle)).await?;
    }

    // 5. Memory.
    if !opts.skip_memory {
        note_load(summary, "memory");
        progress(format!("memory: {} questions plus {} messages of ~20 MB", opts.n, opts.big));
        let m = memory::memory(opts, servers, main_pg, &world, &csv, run_dir, summary.stage_report, &mut rng).await?;
        note_problems(summary, "memory", m.once.as_ref());
        summary.memory = Some(m);
    }

    // 6. Failover.
    if opts.failover {
        note_load(summary, "failover");
        let leases = if opts.leases.is_empty() { vec![DEFAULT_LEASE] } else { opts.leases.clone() };
        let f =
            failover::failover(servers, &db, &leases, opts.daemons, &trickle_officials, run_dir, "failover", &mut rng)
                .await?;
        for x in &f {
            note_problems(summary, "failover", Some(&x.once));
        }
        summary.failover.extend(f);
    }

    // 7. --quick's PostgreSQL check.
    if opts.pg_check {
        note_load(summary, "pg-check");
        start_postgres(pg, summary)?;
        let pg = pg.as_ref();
        progress(format!(
            "PostgreSQL check: {PG_CHECK_QUESTIONS} questions, {PG_CHECK_DAEMONS} daemons on one database"
        ));
        let db = DbTarget::fresh(run_dir, "pgcheck", pg)?;
        let config = run_dir.join("pgcheck.toml");
        fs::write(&config, daemon::config_text(servers, &db, None)).context("writing the pg-check config")?;
        daemon::cli(&config, &["migrate"])?;
        daemon::cli(&config, &["cities", "import", &csv.to_string_lossy()])?;
        let before = Folders::now(servers);
        let filled = fill::fill(servers, &world, &mut rng, PG_CHECK_QUESTIONS, 0, "pgcheck")?;
        let setup = DrainSetup {
            name: "pgcheck",
            config: &config,
            db: &db,
            daemons: PG_CHECK_DAEMONS,
            stage_report: summary.stage_report,
            postmaster: pg.and_then(PgCluster::pid),
        };
        let (mut d, _) = drain::drain(servers, run_dir, &setup, filled.messages, opts.drain_timeout).await?;
        servers.wait_queue_empty(queue_limit(PG_CHECK_QUESTIONS)).await?;
        d.once = Some(check_once(&db, servers, &filled.message_ids, &officials, before, "pg check", summary).await?);
        summary.pg_check = Some(d);
        let f = failover::failover(
            servers,
            &db,
            &[PG_CHECK_LEASE],
            PG_CHECK_DAEMONS,
            &trickle_officials,
            run_dir,
            "pgcheck-failover",
            &mut rng,
        )
        .await?;
        for x in &f {
            note_problems(summary, "pg check failover", Some(&x.once));
        }
        summary.failover.extend(f);
    }
    Ok(())
}

/// The once-check of a drain (see `once.rs`); its problems go to `summary.problems`.
async fn check_once(
    db: &DbTarget,
    servers: &MailServers,
    questions: &[String],
    officials: &[PathBuf],
    before: Folders,
    phase: &str,
    summary: &mut Summary,
) -> Result<once::OnceFigures> {
    let view = db.open().await?;
    let checked = once::check(&view, servers, questions, officials, before).await;
    view.close().await;
    let checked = checked?;
    note_problems(summary, phase, Some(&checked));
    Ok(checked)
}

fn note_problems(summary: &mut Summary, phase: &str, checked: Option<&once::OnceFigures>) {
    let Some(c) = checked else { return };
    if c.ok() {
        progress(format!("{phase}: every question handled once ({})", c.line()));
    }
    for p in &c.problems {
        progress(format!("{phase}: PROBLEM: {p}"));
        summary.problems.push(format!("{phase}: {p}"));
    }
}

/// How long Postfix may take to deliver what it accepted.
fn queue_limit(n: u64) -> Duration {
    Duration::from_secs(120) + Duration::from_millis(20 * n)
}
