//! Two daemons on one mailbox and one PostgreSQL database (always PostgreSQL, whatever
//! `INTAKE311_TEST_ENGINE` says), against real Dovecot, Postfix and PostgreSQL on loopback:
//! - each daemon SIGKILLed and restarted several times while 500 questions drain: every question
//!   gets exactly one request and is acknowledged under exactly one Message-ID (a Message-ID
//!   delivered twice after a kill is at-least-once sending: counted and printed).
//!
//! The tests run one at a time (they measure times on a small machine) and print their figures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

mod support;

use std::time::{Duration, Instant};

use rand::Rng as _;
use support::fleet::{self, FleetSettings};
use support::postgres;
use support::*;

/// Short, so failovers in the drains cost seconds (the smallest the config allows).
const LEASE: Duration = Duration::from_secs(3);
const WAIT: Duration = Duration::from_secs(240);

/// One test at a time: they time failovers and drains on a 2-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn settings() -> FleetSettings {
    FleetSettings { lease: LEASE, fetch_batch: 20 }
}

/// The last lines of each daemon's log, for failure messages.
fn logs(daemons: &[&Daemon]) -> String {
    daemons
        .iter()
        .map(|d| {
            let text = d.log_text();
            let lines: Vec<&str> = text.lines().collect();
            format!("--- {} ---\n{}", d.log.display(), lines[lines.len().saturating_sub(25)..].join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sends `signal` (`KILL`, `TERM`) to the daemon without waiting: dropping the [`Daemon`]
/// reaps it (see [`Daemon::terminate`] for a clean stop's wait).
fn signal(d: &Daemon, signal: &str) {
    let pid = d.pid().to_string();
    let status = std::process::Command::new("kill").args(["-s", signal, &pid]).status().unwrap();
    assert!(status.success(), "kill -s {signal} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_killed_again_and_again_handle_every_question_exactly_once() -> anyhow::Result<()> {
    const N: usize = 500;
    const KILLS: usize = 10;
    let _serial = SERIAL.lock().await;
    let officials = fleet::dayton_officials(5);
    let env = fleet::postgres_env(postgres::shared()?.fresh_database()?, settings(), &officials)?;
    let db = fleet::pool(&env.db_url).await?;
    let questions = fleet::append_questions(&env.servers, "kill", N, &officials).await?;

    let started = Instant::now();
    let mut daemons = [env.daemon()?, env.daemon()?];
    // Work units: requests made plus mail sent (an acknowledgement and a staff notice for each,
    // so about 3N in all). A kill comes after each step of progress and a random pause, so every
    // kill falls inside the drain, somewhere else each time; the steps add up to about 2N, which
    // leaves room for the work done during the pauses and failovers.
    let step = (2 * N / (KILLS + 2)) as i64;
    let mut rng = rand::rng();
    let (mut kills, mut holder_kills) = (0, 0);
    let mut last = fleet::progress(&db).await?.work();
    while kills < KILLS {
        let p = eventually(Duration::from_secs(60), "progress between two kills", || async {
            let p = fleet::progress(&db).await?;
            Ok((p.work() >= last + step || (p.requests == N as i64 && p.pending == 0)).then_some(p))
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", logs(&[&daemons[0], &daemons[1]])))?;
        if p.requests == N as i64 && p.pending == 0 {
            break; // drained: a kill now would be after the drain
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..400))).await;
        let victim = kills % 2;
        let holder = fleet::lease(&db).await?.and_then(|l| l.pid);
        if holder == Some(i64::from(daemons[victim].pid())) {
            holder_kills += 1;
        }
        // SIGKILL, and a fresh daemon in its place; the other must live on.
        signal(&daemons[victim], "KILL");
        let log = daemons[victim].log.clone();
        daemons[victim] = env.daemon()?;
        assert!(daemons[1 - victim].is_running(), "the other daemon died\n{}", logs(&[&daemons[1 - victim]]));
        assert!(!std::fs::read_to_string(&log)?.is_empty(), "the killed daemon had started: {}", log.display());
        kills += 1;
        last = fleet::progress(&db).await?.work();
    }
    assert!(kills >= KILLS - 4, "the drain ended after only {kills} kills: make N larger");
    fleet::wait_drained(&env, &db, N as i64, WAIT)
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", logs(&[&daemons[0], &daemons[1]])))?;
    let seconds = started.elapsed().as_secs_f64();
    let tally = fleet::verify_exactly_once(&env, &db, &questions, WAIT).await?;
    println!(
        "two daemons, SIGKILL: {N} questions, {kills} kills ({holder_kills} of the lease holder), {N} requests, \
         {} acknowledgements delivered, {} duplicate deliveries (same Message-ID, resent after a kill), \
         drained in {seconds:.1} s",
        tally.delivered, tally.duplicates
    );
    for d in &mut daemons {
        assert!(d.is_running(), "a daemon exited\n{}", d.log_text());
        assert!(d.terminate(Duration::from_secs(30))?, "clean exit after SIGTERM\n{}", d.log_text());
    }
    Ok(())
}
