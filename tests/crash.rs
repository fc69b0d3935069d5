//! Crashes and outages against real Dovecot and Postfix: SIGKILL at random moments while a
//! backlog drains, an SMTP outage (delivery afterwards, in order within a thread), an IMAP
//! restart mid-drain, and a changed UIDVALIDITY. Nothing is lost and nothing is duplicated.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt as _;
use std::time::Duration;

use rand::Rng as _;
use support::*;

const WAIT: Duration = Duration::from_secs(240);

/// Puts `n` questions straight into the intake Maildir (much faster than APPEND), from
/// `officials` in turn. Returns their Message-IDs.
async fn backlog(env: &TestEnv, n: usize, officials: &[String]) -> anyhow::Result<Vec<String>> {
    // Make sure the Maildir exists (a first message through IMAP creates it).
    let first = question(&officials[0], "Official 0", "Question 0", "First", "bulk-0@daytonohio.gov");
    imap_append(&env.servers, INTAKE, "INBOX", first.as_bytes()).await?;
    let dir = env.servers.maildir(INTAKE);
    let meta = std::fs::metadata(&dir)?;
    let mut ids = vec!["bulk-0@daytonohio.gov".to_string()];
    for i in 1..n {
        let id = format!("bulk-{i}@daytonohio.gov");
        let from = &officials[i % officials.len()];
        let raw = question(
            from,
            &format!("Official {}", i % officials.len()),
            &format!("Question {i}"),
            &"Budget detail. ".repeat(40),
            &id,
        );
        let path = dir.join("new").join(format!("1700000000.M{i}P1.test,S={}", raw.len()));
        std::fs::write(&path, raw)?;
        std::os::unix::fs::chown(&path, Some(meta.uid()), Some(meta.gid()))?;
        ids.push(id);
    }
    Ok(ids)
}

async fn officials(env: &TestEnv, n: usize) -> anyhow::Result<Vec<String>> {
    let list: Vec<String> = (0..n).map(|i| format!("official{i}@daytonohio.gov")).collect();
    for o in &list {
        env.servers.add_user(o)?;
    }
    Ok(list)
}

/// Waits until every question is a request and the outbox is empty.
async fn drained(env: &TestEnv, n: i64) -> anyhow::Result<()> {
    let store = env.store().await?;
    eventually(WAIT, &format!("{n} requests and an empty outbox"), || async {
        let done = store.count_requests().await? == n && store.outbox_stats().await?.pending == 0;
        Ok(done.then_some(()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_and_duplicates_no_request() -> anyhow::Result<()> {
    const N: usize = 500;
    const KILLS: usize = 10;
    let env = TestEnv::new(Security::Plain)?;
    // The shortest lease, so the next daemon takes the mailbox over soon after a kill.
    env.configure("database", "lease = \"3s\"")?;
    let officials = officials(&env, 5).await?;
    let ids = backlog(&env, N, &officials).await?;

    let mut daemon = env.daemon()?;
    let db = env.db().await?;
    let mut rng = rand::rng();
    for _ in 0..KILLS {
        // Each kill hits a daemon that polls: a new one stands by until the killed one's mailbox
        // lease runs out (3 s, set below), and killing a stand-by would test nothing.
        polling(&db, &daemon).await?;
        tokio::time::sleep(Duration::from_millis(rng.random_range(150..700))).await;
        drop(daemon); // SIGKILL
        daemon = env.daemon()?;
    }
    // The last one takes the mailbox over once the killed one's lease runs out.
    polling(&db, &daemon).await?;
    let started = std::time::Instant::now();
    let store = env.store().await?;
    drained(&env, N as i64).await.map_err(|e| {
        anyhow::anyhow!("{e}; log tail:\n{}", daemon.log_text().lines().rev().take(15).collect::<Vec<_>>().join("\n"))
    })?;
    println!("drained {} s after the last kill", started.elapsed().as_secs());

    let kinds = store.inbound_counts().await?;
    assert!(kinds.contains(&("question".to_string(), N as i64)), "one stored question per message: {kinds:?}");
    // An empty outbox means Postfix accepted every acknowledgement, not that it has delivered
    // them: wait for its queue to empty, or a resent duplicate could stand in for an
    // acknowledgement still on its way in a count of the inbox.
    env.servers.wait_queue_empty(WAIT).await?;
    // Every acknowledgement that arrived, grouped by the question it answers.
    let mut by_question: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut delivered = 0;
    for o in &officials {
        for m in wait_for_messages(&env.servers, o, "INBOX", N / officials.len(), WAIT).await? {
            delivered += 1;
            let parent = header(&m, "In-Reply-To").unwrap_or_default().trim_matches(['<', '>']).to_string();
            by_question.entry(parent).or_default().insert(header(&m, "Message-ID").unwrap_or_default());
        }
    }
    let questions: BTreeSet<String> = ids.iter().cloned().collect();
    let answered: BTreeSet<String> = by_question.keys().cloned().collect();
    let missing: Vec<_> = questions.difference(&answered).collect();
    let strays: Vec<_> = answered.difference(&questions).collect();
    assert!(missing.is_empty() && strays.is_empty(), "unacknowledged: {missing:?}; answering no question: {strays:?}");
    let split: Vec<_> = by_question.iter().filter(|(_, ids)| ids.len() != 1).collect();
    assert!(split.is_empty(), "a question got acknowledgements with different Message-IDs: {split:?}");
    let duplicates = delivered - N;
    // A kill resends what the server accepted and the daemon had not yet journaled: a few mails
    // per kill. Before the journal it was everything not yet marked sent, over half of them.
    assert!(duplicates < N / 5, "{duplicates} of {N} acknowledgements delivered twice after {KILLS} kills");
    println!(
        "SIGKILL: {N} questions, {KILLS} kills: {N} requests, {delivered} acknowledgements delivered, {duplicates} duplicate deliveries (same Message-ID, resent after a kill)"
    );
    assert!(imap_fetch_all(&env.servers, INTAKE, "INBOX").await?.is_empty(), "everything moved out of the inbox");
    if env.engine == Engine::Sqlite {
        // The killed daemons' claim files (SQLite's flock journal; PostgreSQL goes by the
        // heartbeats instead) were taken over and removed; the running one's goes with a clean
        // stop. (A recovery that failed once is tried again 10 s later.)
        eventually(Duration::from_secs(30), "only the running daemon's claim file", || async {
            Ok((owner_files(&env)?.len() == 1).then_some(()))
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}: {:?}", owner_files(&env)))?;
    }
    let pid = i64::from(daemon.pid());
    assert!(daemon.terminate(Duration::from_secs(15))?, "clean exit; log:\n{}", daemon.log_text());
    // A clean stop gives the mailbox up at once and forgets its own heartbeat.
    assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM mailbox_leases", &[]).await?, 0, "the lease is given up");
    assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM daemons WHERE pid = $1", &[pid.into()]).await?, 0);
    if env.engine == Engine::Sqlite {
        assert_eq!(owner_files(&env)?, Vec::<String>::new());
    }
    Ok(())
}

/// Waits until `daemon` holds the mailbox lease (it polls, it does not stand by).
async fn polling(db: &support::db::TestDb, daemon: &Daemon) -> anyhow::Result<()> {
    let pid = i64::from(daemon.pid());
    eventually(WAIT, &format!("daemon {pid} to hold the mailbox lease"), || async {
        let held = db
            .scalar_i64(
                "SELECT COUNT(*) FROM mailbox_leases l JOIN daemons d ON d.owner = l.owner WHERE d.pid = $1",
                &[pid.into()],
            )
            .await?;
        Ok((held > 0).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}; log:\n{}", daemon.log_text()))
}

/// The claim files (`<db>-owner-<id>`) next to the database.
fn owner_files(env: &TestEnv) -> anyhow::Result<Vec<String>> {
    let prefix = format!("{}-owner-", env.db_path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
    let dir = env.db_path.parent().ok_or_else(|| anyhow::anyhow!("the database has no directory"))?;
    Ok(std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(&prefix))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_smtp_outage_everything_goes_out_in_order() -> anyhow::Result<()> {
    let env = TestEnv::new(Security::Plain)?;
    env.servers.stop_smtp()?;
    imap_append(
        &env.servers,
        INTAKE,
        "INBOX",
        question(DAYTON, "Jane", "Bridges", "Inspections?", "b1@daytonohio.gov").as_bytes(),
    )
    .await?;
    let daemon = env.daemon()?;
    let store = env.store().await?;
    let t: intake311::domain::TrackingNumber = {
        use chrono::Datelike as _;
        format!("311-{}-0001", chrono::Utc::now().year()).parse()?
    };
    eventually(WAIT, "a failed attempt on the acknowledgement", || async {
        let Some(r) = store.request_by_tracking(&t).await? else { return Ok(None) };
        Ok(store.outbox_for_request(r.id).await?.first().filter(|row| !row.3.is_empty()).map(|_| ()))
    })
    .await?;
    // Staff answer while SMTP is still down: it queues behind the acknowledgement.
    let dir = tempfile::tempdir()?;
    let body = dir.path().join("reply.txt");
    std::fs::write(&body, "Could you send last year's inspection report?")?;
    let out = env.cli(&["requests", "reply", &t.to_string(), "--body", &body.to_string_lossy()])?;
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("queued"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A few retries with backoff while SMTP is down: the acknowledgement's row (the request's
    // first) has failed at least twice. Read straight from the database: the store has no
    // reader for the attempt count.
    let request =
        store.request_by_tracking(&t).await?.map(|r| r.id).ok_or_else(|| anyhow::anyhow!("no request {t}"))?;
    let db = env.db().await?;
    eventually(WAIT, "a second failed attempt on the acknowledgement", || async {
        let attempts = db
            .scalar_i64("SELECT attempts FROM outbox WHERE request_id = $1 ORDER BY id LIMIT 1", &[request.into()])
            .await?;
        Ok((attempts >= 2).then_some(()))
    })
    .await?;
    env.servers.start_smtp()?;
    let mayor = wait_for_messages(&env.servers, DAYTON, "INBOX", 2, WAIT)
        .await
        .map_err(|e| anyhow::anyhow!("{e}; log:\n{}", daemon.log_text()))?;
    // Our promise is the order in which the mail is handed to SMTP: Postfix may deliver two
    // mails accepted a few milliseconds apart in either order. Its log records acceptance
    // (`cleanup: …: message-id=<…>`) in order.
    let id_of = |needle: &str| {
        mayor
            .iter()
            .find(|m| subject_and_text(m).1.contains(needle))
            .and_then(|m| header(m, "Message-ID"))
            .ok_or_else(|| anyhow::anyhow!("no mail containing {needle:?} in the official's inbox"))
    };
    let (ack, reply) = (id_of("Response by")?, id_of("inspection report")?);
    let log = std::fs::read_to_string(&env.servers.postfix_log)?;
    let accepted =
        |id: &str| log.lines().position(|l| l.contains("cleanup") && l.contains(&format!("message-id={}", id.trim())));
    let (a, r) = (accepted(&ack), accepted(&reply));
    assert!(a.is_some() && r.is_some(), "both accepted by Postfix: {ack} {reply}\n{log}");
    assert!(a < r, "the acknowledgement first, then the reply: {ack} {reply}\n{log}");
    let rows = store.outbox_for_request(store.request_by_tracking(&t).await?.map(|r| r.id).unwrap_or(0)).await?;
    assert!(rows.iter().filter(|r| r.0 != "staff_new_request").all(|r| r.1 == "sent"), "{rows:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imap_restart_mid_drain_loses_nothing() -> anyhow::Result<()> {
    const N: usize = 120;
    let env = TestEnv::new(Security::Plain)?;
    let officials = officials(&env, 3).await?;
    backlog(&env, N, &officials).await?;
    let daemon = env.daemon()?;
    let store = env.store().await?;
    eventually(WAIT, "some progress", || async { Ok((store.count_requests().await? >= 10).then_some(())) }).await?;
    env.servers.stop_imap()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.servers.start_imap()?;
    drained(&env, N as i64).await.map_err(|e| anyhow::anyhow!("{e}; log:\n{}", daemon.log_text()))?;
    assert!(daemon.log_text().contains("reconnecting"), "the poller noticed and reconnected");
    assert!(store.inbound_counts().await?.contains(&("question".to_string(), N as i64)));
    // A group committed just before the restart is moved after the reconnect (only moved: it
    // is never handled twice).
    eventually(WAIT, "the inbox emptied", || async {
        Ok(imap_fetch_all(&env.servers, INTAKE, "INBOX").await?.is_empty().then_some(()))
    })
    .await?;
    assert!(store.inbound_counts().await?.contains(&("question".to_string(), N as i64)));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_uidvalidity_rescans_without_duplicates() -> anyhow::Result<()> {
    let env = TestEnv::new(Security::Plain)?;
    for i in 0..3 {
        imap_append(
            &env.servers,
            INTAKE,
            "INBOX",
            question(DAYTON, "Jane", &format!("Q{i}"), "x", &format!("u{i}@daytonohio.gov")).as_bytes(),
        )
        .await?;
    }
    let mut daemon = env.daemon()?;
    drained(&env, 3).await?;
    assert!(daemon.terminate(Duration::from_secs(15))?);

    // The server loses its UID state (a restore, a migration): the same mail is back in the inbox
    // under a new UIDVALIDITY.
    for raw in imap_fetch_all(&env.servers, INTAKE, "Processed").await? {
        imap_append(&env.servers, INTAKE, "INBOX", &raw).await?;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await; // UIDVALIDITY is a timestamp
    env.servers.stop_imap()?;
    // Dovecot keeps UIDVALIDITY in dovecot-uidlist and its index files: remove them all.
    for entry in std::fs::read_dir(env.servers.maildir(INTAKE))? {
        let path = entry?.path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("dovecot-uidlist") || n.starts_with("dovecot.index"))
        {
            std::fs::remove_file(path)?;
        }
    }
    env.servers.start_imap()?;

    let daemon = env.daemon()?;
    wait_for_messages(&env.servers, INTAKE, "Processed", 6, WAIT).await?;
    let store = env.store().await?;
    assert_eq!(store.count_requests().await?, 3, "no duplicate requests");
    assert!(store.inbound_counts().await?.contains(&("duplicate".to_string(), 3)));
    assert!(daemon.log_text().contains("UIDVALIDITY changed"), "{}", daemon.log_text());
    assert_eq!(imap_fetch_all(&env.servers, DAYTON, "INBOX").await?.len(), 3, "no second acknowledgement");
    Ok(())
}
