//! Self-test of the private PostgreSQL cluster of the test support (`support::postgres`): start,
//! a fresh database reached by its URL, a crash-like restart keeping committed data, teardown,
//! the watchdog after a SIGKILLed owner, and the `INTAKE311_TEST_ENGINE` parsing.
//!
//! Needs Debian's `postgresql` package (installed by tests/support/install.sh as root). Prints the
//! time of each step (`--nocapture`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::Engine;
use support::postgres::{PgCluster, shared};

/// `psql URL -c SQL` over TCP: proves the URL itself works, as the daemon will use it.
fn psql_url(cluster: &PgCluster, url: &str, sql: &str) -> String {
    let out = Command::new(cluster.bin_dir.join("psql"))
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .arg(url)
        .arg("-c")
        .arg(sql)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "psql {url} {sql:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn start_database_restart_and_drop() {
    let t = Instant::now();
    let mut pg = PgCluster::start().unwrap();
    let started = t.elapsed();
    let root = pg.root.clone();
    assert!(root.join("data/PG_VERSION").is_file());
    assert!(pg.admin_url().ends_with(&format!("127.0.0.1:{}/postgres", pg.port)));

    let t = Instant::now();
    let url = pg.fresh_database().unwrap();
    let created = t.elapsed();
    let other = pg.fresh_database().unwrap();
    assert_ne!(url, other);
    let name = url.rsplit('/').next().unwrap().to_string();
    assert_eq!(psql_url(&pg, &url, "SELECT current_database()"), name);
    assert_eq!(psql_url(&pg, &url, "SHOW server_encoding"), "UTF8");
    assert_eq!(psql_url(&pg, &url, "SHOW fsync"), "on");
    assert_eq!(psql_url(&pg, &url, "SHOW max_connections"), "200");
    psql_url(&pg, &url, "CREATE TABLE t (v text); INSERT INTO t VALUES ('committed before the crash')");

    let t = Instant::now();
    let old_pid = pg.pid().unwrap();
    pg.restart().unwrap();
    let restarted = t.elapsed();
    assert_ne!(pg.pid().unwrap(), old_pid);
    assert_eq!(psql_url(&pg, &url, "SELECT v FROM t"), "committed before the crash");
    let log = std::fs::read_to_string(&pg.log).unwrap();
    assert!(
        log.contains("database system was interrupted") || log.contains("not properly shut down"),
        "an immediate stop should force crash recovery:\n{}",
        pg.log_tail()
    );

    // Down is down: nothing answers on the port until start_again.
    pg.stop_immediate().unwrap();
    assert!(!pg.is_ready());
    pg.start_again().unwrap();
    assert!(pg.is_ready());

    let t = Instant::now();
    drop(pg);
    eprintln!(
        "postgres: start (initdb + server) {started:?}, fresh_database {created:?}, restart {restarted:?}, drop {:?}",
        t.elapsed()
    );
    if std::env::var_os("INTAKE311_KEEP_PG").is_none_or(|v| v != "1") {
        assert!(!root.exists(), "{} should be removed on drop", root.display());
    }
}

#[test]
fn shared_cluster_is_one_per_process() {
    let a = shared().unwrap();
    let b = shared().unwrap();
    assert!(std::ptr::eq(a, b));
    let (x, y) = (a.fresh_database().unwrap(), b.fresh_database().unwrap());
    assert_ne!(x, y);
    let listed = a.psql("postgres", "SELECT datname FROM pg_database ORDER BY datname").unwrap();
    for url in [&x, &y] {
        let name = url.rsplit('/').next().unwrap();
        assert!(listed.lines().any(|l| l == name), "{name} not in {listed:?}");
    }
}

/// A child process that starts a cluster and is SIGKILLed: its watchdog must stop the server
/// and remove the directory.
#[test]
fn watchdog_cleans_up_after_a_killed_owner() {
    if std::env::var_os("PG_SUPPORT_CHILD").is_some() {
        let pg = PgCluster::start().unwrap();
        println!("ROOT {} PID {}", pg.root.display(), pg.pid().unwrap());
        std::mem::forget(pg);
        std::thread::sleep(Duration::from_secs(120));
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "watchdog_cleans_up_after_a_killed_owner", "--nocapture", "--test-threads=1"])
        .env("PG_SUPPORT_CHILD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let (root, pid) = loop {
        line.clear();
        let n = std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
        assert!(n > 0, "child exited before starting its cluster");
        // libtest prints "test NAME ... " before the test's own output, on the same line.
        if let Some(rest) = line.trim().split_once("ROOT ").map(|(_, rest)| rest) {
            let (root, pid) = rest.rsplit_once(" PID ").unwrap();
            break (root.to_string(), pid.parse::<i32>().unwrap());
        }
    };
    assert!(Path::new(&root).join("data").is_dir());
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while (Path::new(&root).exists() || process_alive(pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!process_alive(pid), "postmaster {pid} still runs after its owner was killed");
    assert!(!Path::new(&root).exists(), "{root} still exists after its owner was killed");
}

fn process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

#[test]
fn engine_from_environment_value() {
    assert_eq!(Engine::parse(None), Ok(Engine::Sqlite));
    assert_eq!(Engine::parse(Some("")), Ok(Engine::Sqlite));
    assert_eq!(Engine::parse(Some("sqlite")), Ok(Engine::Sqlite));
    assert_eq!(Engine::parse(Some("postgres")), Ok(Engine::Postgres));
    assert_eq!(Engine::parse(Some(" PostgreSQL ")), Ok(Engine::Postgres));
    let err = Engine::parse(Some("mysql")).unwrap_err();
    assert!(err.contains("INTAKE311_TEST_ENGINE") && err.contains("mysql"), "{err}");
}
