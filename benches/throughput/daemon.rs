//! The daemon under test as a child process (`intake311 --config CFG run`), its config, a
//! read-only view of its database (SQLite, or PostgreSQL in the benchmark's private cluster),
//! its optional stage report, and the CPU time of the processes around it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use sqlx::Row as _;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use crate::corpus::{INTAKE, STAFF};
use crate::mailservers::{MailServers, PASSWORD, ProcStat, proc_stat};

/// Runs `$body` with `$p` bound to the pool of either engine (the queries here are written once:
/// both take `$N` parameters, and every integer they read is 64-bit on both).
macro_rules! on_db {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            Db::Sqlite($p) => $body,
            Db::Postgres($p) => $body,
        }
    };
}

/// The daemon binary cargo built for this benchmark (bench profile, i.e. release).
pub const BIN: &str = env!("CARGO_BIN_EXE_intake311");

/// The store engine under test (`--db`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    #[default]
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "SQLite",
            Engine::Postgres => "PostgreSQL",
        }
    }
}

/// Where a daemon's database is: an SQLite file, or a database of the benchmark's private
/// PostgreSQL cluster (`postgres://postgres@127.0.0.1:PORT/NAME`).
#[derive(Debug, Clone)]
pub enum DbTarget {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DbTarget {
    /// A fresh, empty database named after `name`: `RUN_DIR/NAME.db`, or a new database in the
    /// private cluster.
    pub fn fresh(run_dir: &Path, name: &str, pg: Option<&crate::postgres::PgCluster>) -> Result<DbTarget> {
        match pg {
            None => Ok(DbTarget::Sqlite(run_dir.join(format!("{name}.db")))),
            Some(pg) => {
                Ok(DbTarget::Postgres(pg.fresh_database().with_context(|| format!("creating the {name} database"))?))
            }
        }
    }

    pub fn engine(&self) -> Engine {
        match self {
            DbTarget::Sqlite(_) => Engine::Sqlite,
            DbTarget::Postgres(_) => Engine::Postgres,
        }
    }

    /// `database.url` for the daemon.
    pub fn url(&self) -> String {
        match self {
            DbTarget::Sqlite(p) => format!("sqlite://{}", p.display()),
            DbTarget::Postgres(url) => url.clone(),
        }
    }

    /// A read-only view (SQLite: open it while the daemon runs, since in WAL mode a read-only
    /// connection needs the daemon's -shm file).
    pub async fn open(&self) -> Result<Db> {
        match self {
            DbTarget::Sqlite(path) => {
                let opts = SqliteConnectOptions::new().filename(path).read_only(true);
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(opts)
                    .await
                    .with_context(|| format!("opening {} read-only", path.display()))?;
                Ok(Db::Sqlite(pool))
            }
            DbTarget::Postgres(url) => {
                let pool = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(url)
                    .await
                    .with_context(|| format!("connecting to {url}"))?;
                Ok(Db::Postgres(pool))
            }
        }
    }

    /// The database's size in bytes and, on SQLite, how much of it is the -wal file (read after
    /// the daemon stopped). PostgreSQL: `pg_database_size`, WAL not included (it is the cluster's).
    pub async fn bytes(&self) -> Result<(u64, u64)> {
        match self {
            DbTarget::Sqlite(path) => Ok(db_bytes(path)),
            DbTarget::Postgres(_) => {
                let db = self.open().await?;
                let size: i64 = on_db!(&db, p => sqlx::query_scalar("SELECT pg_database_size(current_database())")
                    .fetch_one(p)
                    .await)
                .context("pg_database_size")?;
                db.close().await;
                Ok((u64::try_from(size).unwrap_or(0), 0))
            }
        }
    }
}

/// A config for the daemon against `servers` (plain IMAP and SMTP on loopback), writing to `db`;
/// `lease` sets `database.lease` (else the daemon's default). The per-address automatic-mail
/// limit is lifted: the benchmark writes thousands of questions from a few hundred officials.
pub fn config_text(servers: &MailServers, db: &DbTarget, lease: Option<Duration>) -> String {
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let lease = lease.map(|l| format!("lease = \"{}ms\"\n", l.as_millis())).unwrap_or_default();
    format!(
        r#"# written by benches/throughput.rs
[database]
url = "{db}"
{lease}

[imap]
host = "127.0.0.1"
port = {imap_port}
tls = "none"
user = "{INTAKE}"
password = "{PASSWORD}"
poll_interval = "2s"
timeout = "60s"

[smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
from = "311 for Cities <{INTAKE}>"
timeout = "60s"

[intake]
address = "{INTAKE}"
staff_address = "{STAFF}"
templates_dir = "{templates}"

[outbox]
retry_base = "1s"
retry_max = "5s"
auto_limit = 100000000
idle_interval = "1s"

[deadlines]
# No reminders or digest: on a business day morning they would add staff mail to the figures.
enabled = false
"#,
        db = db.url(),
        imap_port = servers.imap_port,
        smtp_port = servers.smtp_port,
        templates = templates.display(),
    )
}

/// Runs `intake311 --config CFG ARGS…` to completion; fails with its output when it fails.
pub fn cli(config: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .env("INTAKE311_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {BIN} {args:?}"))?;
    if !out.status.success() {
        bail!(
            "`intake311 {}` failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `intake311 run --help` offers `--stage-report`.
pub fn supports_stage_report() -> bool {
    Command::new(BIN)
        .args(["run", "--help"])
        .stdin(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("--stage-report"))
        .unwrap_or(false)
}

pub fn unix_ms_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Unix time in milliseconds, with sub-millisecond precision.
pub fn unix_ms_f64() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
}

mod sys {
    // kill(2) directly (std links libc anyway): only ever called with the pid of our own child.
    unsafe extern "C" {
        pub safe fn kill(pid: i32, sig: i32) -> i32;
    }
    pub const SIGTERM: i32 = 15;
    pub const SIGKILL: i32 = 9;
}

/// `intake311 run` as a child process; killed on drop if still running.
pub struct DaemonProc {
    child: Option<Child>,
    pub pid: u32,
    pub log: PathBuf,
    /// When it was spawned (Unix ms).
    pub started_unix_ms: i64,
}

impl DaemonProc {
    /// Spawns the daemon with `INTAKE311_LOG=info`, its stdout and stderr to `log`.
    pub fn spawn(config: &Path, log: &Path, stage_report: Option<&Path>) -> Result<DaemonProc> {
        let file = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = file.try_clone().context("dup log file")?;
        let mut cmd = Command::new(BIN);
        cmd.arg("--config").arg(config).arg("run");
        if let Some(p) = stage_report {
            let _ = fs::remove_file(p);
            cmd.arg("--stage-report").arg(p);
        }
        let started_unix_ms = unix_ms_now();
        let child = cmd
            .env("INTAKE311_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .with_context(|| format!("spawning {BIN} run"))?;
        Ok(DaemonProc { pid: child.id(), child: Some(child), log: log.to_path_buf(), started_unix_ms })
    }

    /// Err (with the log's tail) when the daemon has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        let Some(child) = self.child.as_mut() else { bail!("the daemon was already stopped") };
        match child.try_wait().context("waiting for the daemon")? {
            None => Ok(()),
            Some(status) => {
                self.child = None;
                bail!(
                    "the daemon exited unexpectedly ({status}); log {}:\n{}",
                    self.log.display(),
                    log_tail(&self.log, 30)
                )
            }
        }
    }

    /// Current resident set size (VmRSS), in kB.
    pub fn rss_kb(&self) -> Option<u64> {
        proc_status_kb(self.pid, "VmRSS:")
    }

    /// CPU time the daemon has used so far (user + system, all threads), in seconds.
    pub fn cpu_seconds(&self) -> Option<f64> {
        Some(proc_stat(i32::try_from(self.pid).ok()?)?.cpu_seconds)
    }

    /// Peak resident set size so far (VmHWM), in kB.
    pub fn peak_rss_kb(&self) -> Option<u64> {
        proc_status_kb(self.pid, "VmHWM:")
    }

    /// Waits (bounded) until the daemon has connected to IMAP: it logged "IMAP connected", or it
    /// recorded a poll of the inbox in the database after it started.
    pub async fn wait_until_polled(&mut self, db: &Db, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if fs::read_to_string(&self.log).map(|t| t.contains("IMAP connected")).unwrap_or(false) {
                return Ok(());
            }
            let polled: Option<i64> =
                on_db!(db, p => sqlx::query_scalar("SELECT MAX(last_poll_at) FROM mailbox_state").fetch_one(p).await)
                    .context("reading mailbox_state")?;
            if polled.is_some_and(|t| t >= self.started_unix_ms) {
                return Ok(());
            }
            self.check_alive()?;
            if Instant::now() >= deadline {
                bail!("the daemon did not connect to IMAP within {limit:?}; log:\n{}", log_tail(&self.log, 30));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the daemon's log has a line containing `text`.
    pub fn logged(&self, text: &str) -> bool {
        fs::read_to_string(&self.log).is_ok_and(|t| t.contains(text))
    }

    /// SIGKILL (a crash: no clean stop, the mailbox lease is not given up), and reaps it.
    pub fn kill(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else { bail!("the daemon was already stopped") };
        if matches!(child.try_wait(), Ok(None)) {
            let pid = i32::try_from(child.id()).context("pid")?;
            if pid > 1 {
                sys::kill(pid, sys::SIGKILL);
            }
        }
        child.wait().context("reaping the killed daemon")?;
        Ok(())
    }

    /// SIGTERM, then waits (at most `limit`) for a clean exit.
    pub async fn terminate(&mut self, limit: Duration) -> Result<()> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        if matches!(child.try_wait(), Ok(None)) {
            let pid = i32::try_from(child.id()).context("pid")?;
            if pid > 1 {
                sys::kill(pid, sys::SIGTERM);
            }
        }
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().context("waiting for the daemon")? {
                if !status.success() {
                    bail!("the daemon exited with {status} after SIGTERM; log:\n{}", log_tail(&self.log, 30));
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the daemon did not stop within {limit:?} of SIGTERM; log:\n{}", log_tail(&self.log, 30));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for DaemonProc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The whole machine's CPU time so far, from the first line of `/proc/stat`, in seconds:
/// busy (user, nice, system, irq, softirq: every process and the kernel), idle (idle and
/// iowait), of which iowait (idle while some task waited for the disk), and stolen by the
/// hypervisor.
#[derive(Debug, Clone, Copy)]
pub struct MachineCpu {
    pub busy: f64,
    pub idle: f64,
    pub iowait: f64,
    pub steal: f64,
}

impl MachineCpu {
    pub fn now() -> Option<MachineCpu> {
        let text = fs::read_to_string("/proc/stat").ok()?;
        let line = text.lines().next()?.strip_prefix("cpu ")?;
        let v: Vec<f64> = line.split_whitespace().map(|f| f.parse::<f64>()).collect::<Result<_, _>>().ok()?;
        let at = |i: usize| v.get(i).copied().unwrap_or(0.0) / 100.0; // USER_HZ is 100 on Linux
        Some(MachineCpu {
            busy: at(0) + at(1) + at(2) + at(5) + at(6),
            idle: at(3) + at(4),
            iowait: at(4),
            steal: at(7),
        })
    }

    /// What was used between `self` and `later`.
    pub fn until(self, later: MachineCpu) -> MachineCpu {
        MachineCpu {
            busy: later.busy - self.busy,
            idle: later.idle - self.idle,
            iowait: later.iowait - self.iowait,
            steal: later.steal - self.steal,
        }
    }
}

/// CPU time this run's mail servers have used so far, in seconds, from `/proc`. A server is its
/// master process (Postfix's `master`, the two Dovecot instances), as the test support knows it
/// from their pid files, and every process under it: live processes'
/// own time, plus what the master has reaped from children that already exited (`cutime`,
/// `cstime`), so Postfix's short-lived smtpd, cleanup and lmtp processes are counted too.
/// Other Postfix or Dovecot instances on the machine (a test run's, the system's) are not.
/// With [`ServerCpu::now_with`], the same for the private PostgreSQL cluster: its postmaster and
/// every backend (live ones' own time, exited ones' through the postmaster's `cutime`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerCpu {
    pub postfix: f64,
    pub dovecot: f64,
    pub postgres: f64,
}

impl ServerCpu {
    pub fn now(servers: &MailServers) -> ServerCpu {
        ServerCpu::now_with(servers, None)
    }

    /// Also counts the PostgreSQL server whose postmaster is `postmaster`.
    pub fn now_with(servers: &MailServers, postmaster: Option<i32>) -> ServerCpu {
        let postfix = servers.postfix_pid();
        let dovecot = servers.dovecot_pids();
        let procs: BTreeMap<i32, ProcStat> = fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter_map(|pid| Some((pid, proc_stat(pid)?)))
            .collect();
        let mut out = ServerCpu::default();
        for (pid, p) in &procs {
            // The master at or above this process decides the server.
            let (mut at, mut hops) = (*pid, 0);
            let server = loop {
                if Some(at) == postfix {
                    break Some(&mut out.postfix);
                }
                if dovecot.contains(&Some(at)) {
                    break Some(&mut out.dovecot);
                }
                if postmaster.is_some_and(|p| p > 1 && p == at) {
                    break Some(&mut out.postgres);
                }
                match procs.get(&at) {
                    Some(q) if q.ppid > 1 && hops < 32 => (at, hops) = (q.ppid, hops + 1),
                    _ => break None,
                }
            };
            if let Some(sum) = server {
                *sum += p.cpu_seconds + if at == *pid { p.reaped_cpu_seconds } else { 0.0 };
            }
        }
        out
    }

    /// What was used between `self` and `later`.
    pub fn until(self, later: ServerCpu) -> ServerCpu {
        ServerCpu {
            postfix: later.postfix - self.postfix,
            dovecot: later.dovecot - self.dovecot,
            postgres: later.postgres - self.postgres,
        }
    }
}

fn proc_status_kb(pid: u32, key: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// The last `n` lines of a file.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// WARN and ERROR lines of a daemon log: counts and the first few of each.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LogProblems {
    pub log: String,
    pub warnings: usize,
    pub errors: usize,
    pub first: Vec<String>,
}

pub fn log_problems(path: &Path) -> LogProblems {
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut p = LogProblems { log: path.display().to_string(), ..Default::default() };
    for line in text.lines() {
        // Plain tracing-subscriber format: "<timestamp> <LEVEL> <target>: ...".
        let level = line.split_whitespace().nth(1).unwrap_or("");
        let is_err = level == "ERROR";
        let is_warn = level == "WARN";
        if is_err {
            p.errors += 1;
        }
        if is_warn {
            p.warnings += 1;
        }
        if (is_err || is_warn) && p.first.len() < 5 {
            p.first.push(line.chars().take(300).collect());
        }
    }
    p
}

// ---------------------------------------------------------------------------------------------
// Stage report
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stage {
    pub name: String,
    pub seconds: f64,
    pub count: u64,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StageReport {
    pub first_fetch_unix_ms: Option<i64>,
    pub last_ack_sent_unix_ms: Option<i64>,
    pub stages: Vec<Stage>,
    /// Other top-level numbers of the report (counters the daemon chose to add), by name.
    pub extras: BTreeMap<String, f64>,
    /// The whole file as the daemon wrote it.
    pub raw: serde_json::Value,
}

/// Reads the JSON the daemon writes on shutdown with `--stage-report`. Stages are taken
/// generically: every key of `stages` with `seconds` and `count`.
pub fn read_stage_report(path: &Path) -> Result<StageReport> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let raw: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {} as JSON", path.display()))?;
    let mut stages = Vec::new();
    if let Some(map) = raw.get("stages").and_then(|s| s.as_object()) {
        for (name, v) in map {
            stages.push(Stage {
                name: name.clone(),
                seconds: v.get("seconds").and_then(serde_json::Value::as_f64).unwrap_or(0.0),
                count: v.get("count").and_then(serde_json::Value::as_u64).unwrap_or(0),
            });
        }
    }
    let mut extras = BTreeMap::new();
    if let Some(map) = raw.as_object() {
        for (k, v) in map {
            // Timestamps are not counters.
            if !k.ends_with("_unix_ms")
                && let Some(x) = v.as_f64()
            {
                extras.insert(k.clone(), x);
            }
        }
    }
    Ok(StageReport {
        extras,
        first_fetch_unix_ms: raw.get("first_fetch_unix_ms").and_then(serde_json::Value::as_i64),
        last_ack_sent_unix_ms: raw.get("last_ack_sent_unix_ms").and_then(serde_json::Value::as_i64),
        stages,
        raw,
    })
}

// ---------------------------------------------------------------------------------------------
// Database (read-only)
// ---------------------------------------------------------------------------------------------

/// A read-only view of the daemon's database: one connection, either engine.
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    pub async fn close(self) {
        on_db!(self, p => p.close().await);
    }
}

/// Where the drain stands.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub acks_sent: i64,
    pub pending: i64,
    pub failed: i64,
    pub quarantined: i64,
}

pub async fn progress(db: &Db) -> Result<Progress> {
    on_db!(db, p => {
    let row = sqlx::query(
        "SELECT \
           (SELECT COUNT(*) FROM outbox WHERE status = 'sent' AND substr(kind, 1, 4) = 'ack_') AS acks, \
           (SELECT COUNT(*) FROM outbox WHERE status = 'pending') AS pending, \
           (SELECT COUNT(*) FROM outbox WHERE status = 'failed') AS failed, \
           (SELECT COUNT(*) FROM quarantine) AS quarantined",
    )
    .fetch_one(p)
    .await
    .context("querying the drain's progress")?;
    Ok(Progress {
        acks_sent: row.try_get("acks")?,
        pending: row.try_get("pending")?,
        failed: row.try_get("failed")?,
        quarantined: row.try_get("quarantined")?,
    })
    })
}

/// Final figures of a drain, read before the daemon stops.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DbFigures {
    pub requests: i64,
    pub last_ack_sent_unix_ms: Option<i64>,
    pub last_sent_unix_ms: Option<i64>,
    /// Sent outbox rows by kind (acknowledgements, staff notices…).
    pub sent_by_kind: BTreeMap<String, i64>,
    pub requests_by_status: BTreeMap<String, i64>,
}

pub async fn db_figures(db: &Db) -> Result<DbFigures> {
    on_db!(db, db => {
    let requests: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM requests").fetch_one(db).await?;
    let last_ack: Option<i64> =
        sqlx::query_scalar("SELECT MAX(sent_at) FROM outbox WHERE status = 'sent' AND substr(kind, 1, 4) = 'ack_'")
            .fetch_one(db)
            .await?;
    let last_sent: Option<i64> =
        sqlx::query_scalar("SELECT MAX(sent_at) FROM outbox WHERE status = 'sent'").fetch_one(db).await?;
    let mut sent_by_kind = BTreeMap::new();
    for r in
        sqlx::query("SELECT kind, COUNT(*) AS n FROM outbox WHERE status = 'sent' GROUP BY kind").fetch_all(db).await?
    {
        sent_by_kind.insert(r.try_get::<String, _>("kind")?, r.try_get::<i64, _>("n")?);
    }
    let mut requests_by_status = BTreeMap::new();
    for r in sqlx::query("SELECT status, COUNT(*) AS n FROM requests GROUP BY status").fetch_all(db).await? {
        requests_by_status.insert(r.try_get::<String, _>("status")?, r.try_get::<i64, _>("n")?);
    }
    Ok(DbFigures {
        requests,
        last_ack_sent_unix_ms: last_ack,
        last_sent_unix_ms: last_sent,
        sent_by_kind,
        requests_by_status,
    })
    })
}

/// Acknowledgements queued at or after `since_ms`: (the question's Message-ID without angle
/// brackets, when the acknowledgement was accepted by SMTP in Unix ms, if it was).
pub async fn acks_since(db: &Db, since_ms: i64) -> Result<Vec<(String, Option<i64>)>> {
    on_db!(db, db => {
    let rows = sqlx::query(
        "SELECT m.in_reply_to AS irt, o.sent_at AS sent_at FROM outbox o JOIN messages m ON m.outbox_id = o.id \
         WHERE m.direction = 'out' AND substr(m.kind, 1, 4) = 'ack_' AND o.created_at >= $1",
    )
    .bind(since_ms)
    .fetch_all(db)
    .await
    .context("querying acknowledgements")?;
    rows.iter()
        .map(|r| {
            let irt: String = r.try_get("irt")?;
            Ok((strip_brackets(&irt).to_string(), r.try_get("sent_at")?))
        })
        .collect()
    })
}

pub fn strip_brackets(id: &str) -> &str {
    id.trim().trim_start_matches('<').trim_end_matches('>')
}

/// Sizes of the SQLite database file and of its -wal (0 when absent), after the daemon stopped.
fn db_bytes(db: &Path) -> (u64, u64) {
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    (size(db), size(&wal))
}

/// Who holds the mailbox lease, as the database says.
#[derive(Debug, Clone)]
pub struct LeaseHolder {
    pub owner: String,
    /// From the holder's heartbeat row (`daemons.pid`).
    pub pid: Option<i64>,
    pub acquired_at: i64,
    pub expires_at: i64,
}

/// The mailbox lease (the benchmark's daemons poll one mailbox), if anyone holds it.
pub async fn lease_holder(db: &Db) -> Result<Option<LeaseHolder>> {
    on_db!(db, db => {
        let row = sqlx::query(
            "SELECT l.owner AS owner, d.pid AS pid, l.acquired_at AS acquired_at, l.expires_at AS expires_at \
             FROM mailbox_leases l LEFT JOIN daemons d ON d.owner = l.owner ORDER BY l.acquired_at DESC LIMIT 1",
        )
        .fetch_optional(db)
        .await
        .context("reading the mailbox lease")?;
        row.map(|r| -> Result<LeaseHolder> {
            Ok(LeaseHolder {
                owner: r.try_get("owner")?,
                pid: r.try_get("pid")?,
                acquired_at: r.try_get("acquired_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    })
}
