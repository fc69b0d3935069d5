//! A private, throw-away PostgreSQL cluster on loopback for integration tests and benchmarks,
//! from Debian's `postgresql` package (installed by `tests/support/install.sh` when missing).
//!
//! Each [`PgCluster`] owns a fresh directory under /tmp (`/tmp/intake311-pg-XXXXXX`) holding the
//! data directory (`data/`), the Unix socket and the server log (`postgres.log`). `initdb` and the
//! server run as the `postgres` system user when we are root (PostgreSQL refuses to run as root),
//! else as the current user. The server listens on 127.0.0.1 on a random free port and is torn
//! down (stopped, directory removed) on drop; set `INTAKE311_KEEP_PG=1` to keep the directory.
//!
//! Shape:
//! * The server binary runs directly as our child (not through `pg_ctl`, which daemonizes): we
//!   keep its exit status for error messages, and it leads its own process group, so that a
//!   stop can reach every backend and Ctrl-C in the terminal does not reach it.
//! * A small watchdog shell stops the server (SIGQUIT, then SIGKILL of the group) and removes the
//!   directory when the test process dies without running `Drop` (killed, or the cluster kept in
//!   a `static` such as [`shared`]).
//! * Clients are the package's own `pg_isready` and `psql`, so this file needs no database crate
//!   and its API is synchronous (usable from sync and async tests alike).
//!
//! Self-contained (no `super::` items), so a bench can include it with
//! `#[path = "../tests/support/postgres.rs"] mod postgres;`. Talks to: /usr/lib/postgresql,
//! /etc/passwd, libc `kill`/`geteuid`, `/bin/sh`, the network stack on 127.0.0.1.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// How long the server gets to accept connections after a start.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a fast (Drop) or immediate stop may take before the group is SIGKILLed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Ports are picked from here: below Linux's ephemeral range and apart from the mail servers'
/// range (20000..32700), so the two pickers of one process never hand out the same port.
const PORT_RANGE: std::ops::Range<u16> = 10000..20000;
/// Lines of the server log in error messages.
const LOG_TAIL_LINES: usize = 30;

pub struct PgCluster {
    /// Private temp dir: `data/`, the Unix socket, `postgres.log` (removed on drop).
    pub root: PathBuf,
    /// TCP port on 127.0.0.1 (also the Unix socket's number).
    pub port: u16,
    /// The server's log (stderr of every start, appended).
    pub log: PathBuf,
    /// `/usr/lib/postgresql/NN/bin`, the highest version installed.
    pub bin_dir: PathBuf,
    /// Major version, from the bin directory's name (e.g. 15).
    pub version: u32,
    /// Whom initdb and the server run as: (uid, gid) of `postgres` when we are root.
    run_as: Option<(u32, u32)>,
    /// The postmaster, while it runs.
    server: Option<Child>,
    watchdog: Option<Child>,
    tempdir: Option<tempfile::TempDir>,
    databases: AtomicU64,
}

impl std::fmt::Debug for PgCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCluster")
            .field("root", &self.root)
            .field("port", &self.port)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl PgCluster {
    /// Installs the package when missing (as root), runs `initdb` into a fresh directory under
    /// /tmp, starts the server on a free loopback port and waits (at most 30 s) until it accepts
    /// connections. The error carries the reason (exit status, tail of the server log).
    pub fn start() -> Result<PgCluster> {
        let mut last_err = None;
        for attempt in 1..=3 {
            match Self::start_once() {
                Ok(c) => return Ok(c),
                // Another process bound our port between picking and the server's bind: retry.
                Err(e) if format!("{e:#}").contains("Address already in use") && attempt < 3 => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("PgCluster::start failed")))
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres` (trust authentication, no password).
    pub fn admin_url(&self) -> String {
        self.url("postgres")
    }

    /// `postgres://postgres@127.0.0.1:PORT/NAME`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates an empty database with a name unique in this cluster (`t_PID_N`) and returns its
    /// URL.
    pub fn fresh_database(&self) -> Result<String> {
        let n = self.databases.fetch_add(1, Ordering::Relaxed) + 1;
        let name = format!("t_{}_{n}", std::process::id());
        self.psql("postgres", &format!("CREATE DATABASE {name}"))
            .with_context(|| format!("creating database {name}"))?;
        Ok(self.url(&name))
    }

    /// Runs SQL through `psql` (over the Unix socket) in `database`; returns its unaligned,
    /// tuples-only output (`|` between columns). Fails with psql's stderr.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String> {
        let out = Command::new(self.bin_dir.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-h"])
            .arg(&self.root)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-d")
            .arg(database)
            .arg("-c")
            .arg(sql)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .output()
            .context("running psql")?;
        if !out.status.success() {
            bail!("psql {sql:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    }

    /// A crash-like stop (`pg_ctl -m immediate stop`): SIGQUIT to the postmaster, no checkpoint;
    /// the next start runs crash recovery. When this returns, every server process is gone (the
    /// group is SIGKILLed if it takes longer than 10 s). No-op when already stopped.
    pub fn stop_immediate(&mut self) -> Result<()> {
        self.stop_with(libc::SIGQUIT)
    }

    /// Starts the server again on the same data directory and port, and waits until it accepts
    /// connections (after crash recovery, if the last stop was [`PgCluster::stop_immediate`]).
    pub fn start_again(&mut self) -> Result<()> {
        if self.server.is_some() {
            bail!("start_again: the server is still running");
        }
        self.spawn_server()?;
        self.wait_ready()
    }

    /// [`PgCluster::stop_immediate`], then [`PgCluster::start_again`].
    pub fn restart(&mut self) -> Result<()> {
        self.stop_immediate()?;
        self.start_again()
    }

    /// The postmaster's pid while it runs (the leader of the server's process group).
    pub fn pid(&self) -> Option<i32> {
        self.server.as_ref().and_then(|c| i32::try_from(c.id()).ok())
    }

    /// Whether the server accepts connections right now (`pg_isready`).
    pub fn is_ready(&self) -> bool {
        Command::new(self.bin_dir.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-t", "2", "-p"])
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The last lines of the server log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read(&self.log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(LOG_TAIL_LINES);
        let mut s = format!("--- postgres log ({}) ---\n", self.log.display());
        for line in lines.iter().skip(from) {
            s.push_str(line);
            s.push('\n');
        }
        if lines.is_empty() {
            s.push_str("(empty)\n");
        }
        s
    }
}

/// One cluster per test process, started on first use; tests in one binary share it, each with
/// its own database from [`PgCluster::fresh_database`]. Never dropped: the watchdog stops it when
/// the process exits. A failed start is remembered, so later callers fail at once with the reason.
pub fn shared() -> Result<&'static PgCluster> {
    static CLUSTER: OnceLock<PgCluster> = OnceLock::new();
    static FAILED: Mutex<Option<String>> = Mutex::new(None);
    if let Some(c) = CLUSTER.get() {
        return Ok(c);
    }
    let mut failed = FAILED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = CLUSTER.get() {
        return Ok(c);
    }
    if let Some(reason) = failed.as_ref() {
        bail!("the shared PostgreSQL cluster could not be started: {reason}");
    }
    match PgCluster::start() {
        Ok(c) => Ok(CLUSTER.get_or_init(|| c)),
        Err(e) => {
            *failed = Some(format!("{e:#}"));
            Err(e.context("starting the shared PostgreSQL cluster"))
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Fast shutdown (SIGINT): roll back, checkpoint, exit.
        if let Err(e) = self.stop_with(libc::SIGINT) {
            eprintln!("postgres: {e:#}");
        }
        // Tell the watchdog all is done (it then exits without touching anything) and reap it.
        if let Some(mut w) = self.watchdog.take() {
            let done = w.stdin.as_mut().map(|s| s.write_all(b"done\n"));
            drop(w.stdin.take());
            if matches!(done, Some(Ok(()))) {
                let deadline = Instant::now() + Duration::from_secs(2);
                while matches!(w.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            if matches!(w.try_wait(), Ok(None)) {
                let _ = w.kill();
            }
            let _ = w.wait();
        }
        if let Some(t) = self.tempdir.take() {
            if std::env::var_os("INTAKE311_KEEP_PG").is_some_and(|v| v == "1") {
                let kept = t.keep();
                eprintln!("postgres: kept {}", kept.display());
            } else {
                let _ = t.close();
            }
        }
    }
}

impl PgCluster {
    fn start_once() -> Result<PgCluster> {
        let (bin_dir, version) = match find_server() {
            Some(found) => found,
            None => {
                ensure_installed()?;
                find_server()
                    .ok_or_else(|| anyhow!("no /usr/lib/postgresql/*/bin/{{initdb,postgres}} after install.sh"))?
            }
        };
        // SAFETY: geteuid(2) takes no arguments and cannot fail.
        let run_as = if unsafe { libc::geteuid() } == 0 {
            Some(lookup_user("postgres").context("PostgreSQL refuses to run as root; it runs as `postgres`")?)
        } else {
            None
        };
        // /tmp rather than $TMPDIR: the postgres user must be able to traverse every parent.
        let tempdir =
            tempfile::Builder::new().prefix("intake311-pg-").tempdir_in("/tmp").context("creating temp dir in /tmp")?;
        let root = tempdir.path().to_path_buf();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod 700 {}", root.display()))?;
        if let Some((uid, gid)) = run_as {
            chown(&root, Some(uid), Some(gid)).with_context(|| format!("chown postgres {}", root.display()))?;
        }
        let mut cluster = PgCluster {
            port: pick_port()?,
            log: root.join("postgres.log"),
            bin_dir,
            version,
            run_as,
            server: None,
            watchdog: None,
            tempdir: Some(tempdir),
            databases: AtomicU64::new(0),
            root,
        };
        // From here on, an early return drops `cluster`, which stops whatever was started.
        cluster.spawn_watchdog()?;
        cluster.initdb()?;
        cluster.spawn_server()?;
        cluster.wait_ready()?;
        Ok(cluster)
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(program));
        cmd.current_dir(&self.root).stdin(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            // std drops the supplementary groups too when it switches uid as root.
            cmd.uid(uid).gid(gid).env("HOME", &self.root).env("USER", "postgres").env("LOGNAME", "postgres");
        }
        cmd
    }

    fn initdb(&self) -> Result<()> {
        let out = self
            .command("initdb")
            .arg("-D")
            .arg(self.root.join("data"))
            // C.UTF-8 (glibc, always present on Debian): Unicode-aware lower()/upper(), code-point
            // order, and the same result whatever the test runner's locale.
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
            .output()
            .context("running initdb")?;
        if !out.status.success() {
            bail!(
                "initdb failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    fn spawn_server(&mut self) -> Result<()> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let log2 = log.try_clone().context("dup of the log file")?;
        let mut cmd = self.command("postgres");
        cmd.arg("-D").arg(self.root.join("data"));
        for (key, value) in [
            ("listen_addresses", "127.0.0.1".to_string()),
            ("port", self.port.to_string()),
            ("unix_socket_directories", self.root.display().to_string()),
            ("max_connections", "200".to_string()),
            // Crash tests need the real thing.
            ("fsync", "on".to_string()),
            ("shared_buffers", "64MB".to_string()),
            ("logging_collector", "off".to_string()),
        ] {
            cmd.arg("-c").arg(format!("{key}={value}"));
        }
        let child = cmd
            .stdout(log)
            .stderr(log2)
            // Own process group: a stop reaches every backend, Ctrl-C in the terminal does not.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", self.bin_dir.join("postgres").display()))?;
        let pid = child.id();
        self.server = Some(child);
        // For the watchdog (it also reads data/postmaster.pid, in case we die before this).
        fs::write(self.root.join("postgres.pgid"), format!("{pid}\n")).context("writing postgres.pgid")?;
        Ok(())
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.server_exited()? {
                bail!("postgres exited during start-up ({status})\n{}", self.log_tail());
            }
            // The postmaster writes "ready" into postmaster.pid once it accepts connections;
            // polling that file (not pg_isready) keeps the log free of "starting up" lines.
            if self.pid_file_says_ready() && self.is_ready() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "postgres did not accept connections on 127.0.0.1:{} within {READY_TIMEOUT:?}\n{}",
                    self.port,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Whether data/postmaster.pid names our running postmaster and its status is "ready".
    fn pid_file_says_ready(&self) -> bool {
        let Some(pid) = self.pid() else {
            return false;
        };
        let text = fs::read_to_string(self.root.join("data/postmaster.pid")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        lines.first() == Some(&pid.to_string().as_str()) && lines.get(7) == Some(&"ready")
    }

    /// The server's exit status if it has exited (then it is forgotten).
    fn server_exited(&mut self) -> Result<Option<ExitStatus>> {
        let Some(child) = self.server.as_mut() else {
            return Ok(None);
        };
        let status = child.try_wait().context("waiting for postgres")?;
        if status.is_some() {
            self.server = None;
        }
        Ok(status)
    }

    /// Sends `signal` to the postmaster (SIGINT fast, SIGQUIT immediate shutdown), waits for it
    /// to exit, SIGKILLs the group after [`STOP_TIMEOUT`], and waits until no process of the group
    /// is left (a straggling backend would keep the shared memory and block the next start).
    fn stop_with(&mut self, signal: i32) -> Result<()> {
        let Some(mut child) = self.server.take() else {
            return Ok(());
        };
        // Pids fit in i32 on Linux; 0 (never a child's pid) makes every kill below a no-op.
        let pid = i32::try_from(child.id()).unwrap_or(0);
        if pid > 1 {
            // SAFETY: kill(2) touches no memory of ours; `pid` is our own child, not yet reaped.
            unsafe { libc::kill(pid, signal) };
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        let mut killed = false;
        loop {
            if child.try_wait().context("waiting for postgres")?.is_some() && !group_alive(pid) {
                break;
            }
            if Instant::now() >= deadline && !killed {
                kill_group(pid);
                killed = true;
            }
            if Instant::now() >= deadline + STOP_TIMEOUT {
                bail!("postgres (process group {pid}) still alive after SIGKILL");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = fs::remove_file(self.root.join("postgres.pgid"));
        if killed {
            bail!("postgres did not stop within {STOP_TIMEOUT:?} of signal {signal}; SIGKILLed\n{}", self.log_tail());
        }
        Ok(())
    }

    /// A shell that cleans up if this process dies without dropping us: it blocks reading its
    /// stdin (a pipe only we hold); "done" means Drop already cleaned up, EOF means we died.
    fn spawn_watchdog(&mut self) -> Result<()> {
        // SIGQUIT first (immediate shutdown: the postmaster takes its backends down and releases
        // its shared memory), SIGKILL of the group after 5 s.
        const SCRIPT: &str = r#"
trap '' INT HUP TERM QUIT PIPE
line=
read -r line
[ "$line" = done ] && exit 0
root=$1
pids=
for f in "$root/postgres.pgid" "$root/data/postmaster.pid"; do
  p=
  read -r p < "$f" 2>/dev/null
  case "$p" in ''|0|1|*[!0-9]*) ;; *) pids="$pids $p" ;; esac
done
for p in $pids; do kill -s QUIT "$p" 2>/dev/null; done
i=0
while [ $i -lt 50 ]; do
  alive=
  for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
  [ -z "$alive" ] && break
  sleep 0.1
  i=$((i + 1))
done
for p in $pids; do kill -s KILL -- -"$p" 2>/dev/null; kill -s KILL "$p" 2>/dev/null; done
rm -rf "$root"
"#;
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("postgres-watchdog")
            .arg(&self.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("spawning watchdog /bin/sh")?;
        self.watchdog = Some(child);
        Ok(())
    }
}

/// The highest `/usr/lib/postgresql/NN/bin` that holds both `initdb` and `postgres`.
fn find_server() -> Option<(PathBuf, u32)> {
    fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file()).then_some((bin, version))
        })
        .max_by_key(|(_, v)| *v)
}

/// Runs tests/support/install.sh (which installs Debian's `postgresql` as root).
fn ensure_installed() -> Result<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/install.sh");
    if !script.is_file() {
        bail!("no /usr/lib/postgresql/*/bin/{{initdb,postgres}} and {} not found", script.display());
    }
    let status = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() {
        bail!("PostgreSQL is missing (no /usr/lib/postgresql/*/bin/initdb) and {} failed ({status})", script.display());
    }
    Ok(())
}

/// (uid, gid) of a system user, from /etc/passwd.
fn lookup_user(name: &str) -> Result<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if let [user, _, uid, gid, ..] = f.as_slice()
            && *user == name
        {
            let uid = uid.parse().with_context(|| format!("bad uid for {name}"))?;
            let gid = gid.parse().with_context(|| format!("bad gid for {name}"))?;
            return Ok((uid, gid));
        }
    }
    bail!("system user {name:?} not found in /etc/passwd (is Debian's postgresql package installed?)")
}

/// Ports handed out by this process, so parallel clusters never share one.
static USED_PORTS: Mutex<Vec<u16>> = Mutex::new(Vec::new());

fn pick_port() -> Result<u16> {
    let mut used = USED_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..10_000 {
        let port: u16 = rand::random_range(PORT_RANGE);
        if !used.contains(&port) && TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            used.push(port);
            return Ok(port);
        }
    }
    bail!("could not find a free loopback port in {PORT_RANGE:?}")
}

/// SIGKILLs process group `pgid` and its leader. Refuses 0 and 1 (which would mean "my own
/// group" and "every process").
fn kill_group(pgid: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) touches no memory of ours; pgid > 1 rules out "own group" and "all".
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
            libc::kill(pgid, libc::SIGKILL);
        }
    }
}

/// Whether any live (non-zombie) process is in process group `pgid`.
fn group_alive(pgid: i32) -> bool {
    // Kernel threads are in group 0; no server of ours ever is.
    if pgid <= 1 {
        return false;
    }
    let Ok(dir) = fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            return false;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // Fields after the command name, which may hold spaces and parentheses: state ppid pgrp.
        let mut fields = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("").split_whitespace();
        let state = fields.next().unwrap_or("Z");
        let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
        pgrp == Some(pgid) && state != "Z" && state != "X"
    })
}
