//! Two daemons on one mailbox and one PostgreSQL database (always PostgreSQL, whatever
//! `INTAKE311_TEST_ENGINE` says), against real Dovecot, Postfix and PostgreSQL on loopback:
//! - each daemon SIGKILLed and restarted several times while 500 questions drain: every question
//!   gets exactly one request and is acknowledged under exactly one Message-ID (a Message-ID
//!   delivered twice after a kill is at-least-once sending: counted and printed);
//! - mailbox failover: the lease holder SIGKILLed (the other takes over once the lease runs out)
//!   and SIGTERMed (a clean stop gives the lease up, so the other takes over at once);
//! - PostgreSQL stopped for a few seconds mid-drain: the daemons wait and carry on, and nothing
//!   is lost or doubled.
//!
//! The tests run one at a time (they measure times on a small machine) and print their figures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

mod support;

use std::time::{Duration, Instant};

use rand::Rng as _;
use support::fleet::{self, FleetSettings, Question};
use support::postgres::{self, PgCluster};
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

/// The index in `daemons` of the lease holder, once one holds the lease.
async fn holder(db: &sqlx::PgPool, daemons: &[Daemon; 2]) -> anyhow::Result<(usize, fleet::Lease)> {
    eventually(Duration::from_secs(30), "a daemon of ours holding the mailbox lease", || async {
        Ok(fleet::lease(db).await?.and_then(|l| {
            let i = daemons.iter().position(|d| Some(i64::from(d.pid())) == l.pid)?;
            Some((i, l))
        }))
    })
    .await
}

/// What [`takeover`] saw.
struct Takeover {
    /// Since `t0`, until the survivor held the lease.
    leased: Duration,
    /// Since `t0`, until the question was a request.
    handled: Duration,
    /// The latest expiry the lease had while another daemon held it.
    old_expiry: i64,
    /// The lease as the survivor took it.
    taken: fleet::Lease,
}

/// Waits until the daemon `survivor` holds the lease and the question `message_id` is a request.
/// `before`: the lease as read before `t0`.
async fn takeover(
    db: &sqlx::PgPool,
    survivor: &Daemon,
    message_id: &str,
    (t0, before): (Instant, &fleet::Lease),
    limit: Duration,
) -> anyhow::Result<Takeover> {
    let owner = eventually(limit, "the survivor's heartbeat row", || fleet::owner_of(db, survivor.pid())).await?;
    let (mut leased, mut handled, mut old_expiry) = (None, None, before.expires_at);
    loop {
        if leased.is_none() {
            match fleet::lease(db).await? {
                Some(l) if l.owner == owner => leased = Some((t0.elapsed(), l)),
                Some(l) => old_expiry = old_expiry.max(l.expires_at),
                None => {}
            }
        }
        if handled.is_none() {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM messages WHERE message_id LIKE '%' || $1 || '%' AND request_id IS NOT NULL",
            )
            .bind(message_id)
            .fetch_one(db)
            .await?;
            if n > 0 {
                handled = Some(t0.elapsed());
            }
        }
        if let (Some((leased, taken)), Some(handled)) = (&leased, handled) {
            return Ok(Takeover { leased: *leased, handled, old_expiry, taken: taken.clone() });
        }
        anyhow::ensure!(
            t0.elapsed() < limit,
            "no takeover within {limit:?}: lease at {leased:?}, handled at {handled:?}\n{}",
            logs(&[survivor])
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mailbox_fails_over_after_sigkill_and_sigterm_of_the_lease_holder() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let officials = fleet::dayton_officials(1);
    let env = fleet::postgres_env(postgres::shared()?.fresh_database()?, settings(), &officials)?;
    let db = fleet::pool(&env.db_url).await?;
    // Generous for a loaded 2-core machine; the expected figure is about the lease.
    let bound = LEASE + Duration::from_secs(8);
    let mut daemons = [env.daemon()?, env.daemon()?];
    let mut questions: Vec<Question> = Vec::new();
    let mut ask = async |tag: &str| -> anyhow::Result<String> {
        let id = env.send_question(&officials[0], "Official 0", &format!("Failover {tag}"), "Roads?").await?;
        questions.push(Question { message_id: id.clone(), from: officials[0].clone() });
        Ok(id)
    };
    // A first question, handled by whichever daemon took the lease.
    let first = ask("warm-up").await?;
    let (i, lease) = holder(&db, &daemons).await?;
    takeover(&db, &daemons[i], &first, (Instant::now(), &lease), WAIT).await?;

    // SIGKILL: the lease runs out, then the other daemon takes it.
    let (killed, lease) = holder(&db, &daemons).await?;
    signal(&daemons[killed], "KILL");
    let t0 = Instant::now();
    daemons[killed] = env.daemon()?; // a fresh stand-by in its place
    let after_kill = ask("after SIGKILL").await?;
    let t = takeover(&db, &daemons[1 - killed], &after_kill, (t0, &lease), WAIT).await?;
    println!(
        "failover after SIGKILL of the lease holder (lease {LEASE:?}): lease taken after {:.2} s, question handled after {:.2} s",
        t.leased.as_secs_f64(),
        t.handled.as_secs_f64()
    );
    assert!(t.handled < bound, "failover after SIGKILL took {:?}; bound {bound:?}", t.handled);
    assert!(
        t.taken.acquired_at >= t.old_expiry,
        "taken only once the dead holder's lease ran out: {:?}, old expiry {}",
        t.taken,
        t.old_expiry
    );

    // SIGTERM: a clean stop gives the lease up, so the stand-by takes it without waiting for it
    // to run out.
    eventually(Duration::from_secs(30), "the fresh stand-by's heartbeat", || {
        fleet::owner_of(&db, daemons[killed].pid())
    })
    .await?;
    let (stopped, lease) = holder(&db, &daemons).await?;
    assert_eq!(stopped, 1 - killed, "the survivor still holds the lease");
    let t0 = Instant::now();
    signal(&daemons[stopped], "TERM");
    let after_term = ask("after SIGTERM").await?;
    let t = takeover(&db, &daemons[killed], &after_term, (t0, &lease), WAIT).await?;
    println!(
        "failover after SIGTERM of the lease holder (lease {LEASE:?}): lease taken after {:.2} s, question handled after {:.2} s",
        t.leased.as_secs_f64(),
        t.handled.as_secs_f64()
    );
    assert!(t.handled < bound, "failover after SIGTERM took {:?}; bound {bound:?}", t.handled);
    assert!(
        t.taken.acquired_at < t.old_expiry,
        "the stopped daemon gave its lease up, so it was taken before it ran out: {:?}, old expiry {}",
        t.taken,
        t.old_expiry
    );
    assert!(daemons[stopped].terminate(Duration::from_secs(30))?, "clean exit\n{}", daemons[stopped].log_text());

    let survivor = &mut daemons[killed];
    fleet::wait_drained(&env, &db, questions.len() as i64, WAIT).await?;
    let tally = fleet::verify_exactly_once(&env, &db, &questions, WAIT).await?;
    println!("failover: {} questions, {} duplicate deliveries", questions.len(), tally.duplicates);
    assert!(survivor.terminate(Duration::from_secs(30))?, "clean exit\n{}", survivor.log_text());

    // The check can fail: a second acknowledgement of one question under another Message-ID.
    let acks = imap_fetch_all(&env.servers, &officials[0], "INBOX").await?;
    let ack = String::from_utf8_lossy(&acks[0]).into_owned();
    let id = header(&acks[0], "Message-ID").expect("a Message-ID");
    imap_append(&env.servers, &officials[0], "INBOX", ack.replacen(&id, "<another-ack@311.test>", 1).as_bytes())
        .await?;
    let err = fleet::verify_exactly_once(&env, &db, &questions, WAIT).await.expect_err("a second Message-ID");
    assert!(err.to_string().contains("more than one Message-ID"), "{err:#}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_mid_drain_the_daemons_wait_and_lose_nothing() -> anyhow::Result<()> {
    const N: usize = 300;
    const DOWN: Duration = Duration::from_secs(5);
    let _serial = SERIAL.lock().await;
    // A cluster of its own: the shared one cannot be stopped under the other tests.
    let mut pg = PgCluster::start()?;
    let officials = fleet::dayton_officials(3);
    let env = fleet::postgres_env(pg.fresh_database()?, settings(), &officials)?;
    let db = fleet::pool(&env.db_url).await?;
    let questions = fleet::append_questions(&env.servers, "pg", N, &officials).await?;
    let mut daemons = [env.daemon()?, env.daemon()?];
    let at = eventually(WAIT, "a quarter of the questions handled", || async {
        let p = fleet::progress(&db).await?;
        Ok((p.requests >= (N / 4) as i64).then_some(p))
    })
    .await?;

    pg.stop_immediate()?;
    tokio::time::sleep(DOWN).await;
    for d in &mut daemons {
        assert!(d.is_running(), "a daemon exited while the database was down\n{}", d.log_text());
    }
    pg.start_again()?;
    let back = Instant::now();
    let fail = |e: anyhow::Error| anyhow::anyhow!("{e}\n{}\n{}", logs(&[&daemons[0], &daemons[1]]), pg.log_tail());
    let caught_up = fleet::wait_requests(&db, N as i64, WAIT).await.map_err(fail)?;
    fleet::wait_drained(&env, &db, N as i64, WAIT).await.map_err(fail)?;
    let drained = back.elapsed();
    // The poller retries with backoff, 1 s doubling to at most 60 s (README).
    assert!(caught_up < Duration::from_secs(60), "intake caught up only {caught_up:?} after the database was back");
    for d in &mut daemons {
        assert!(d.is_running(), "a daemon exited after the database came back\n{}", d.log_text());
    }
    let tally = fleet::verify_exactly_once(&env, &db, &questions, WAIT).await?;
    println!(
        "PostgreSQL stopped (immediate) for {DOWN:?} with {} of {N} requests made: every question a request \
         {:.1} s after it was back, drain (outbox empty, inbox empty) finished after {:.1} s; {} duplicate deliveries",
        at.requests,
        caught_up.as_secs_f64(),
        drained.as_secs_f64(),
        tally.duplicates
    );
    for d in &mut daemons {
        assert!(d.terminate(Duration::from_secs(30))?, "clean exit\n{}", d.log_text());
    }
    Ok(())
}
