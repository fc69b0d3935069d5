//! On real Dovecot and Postfix: a question's dates are its arrival date in the programme's zone,
//! however late it is handled; and a database locked by another process (SQLite) or down
//! (PostgreSQL) for half a minute quarantines nothing, loses nothing and does not stop the daemon.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

mod support;

use std::time::Duration;

use sqlx::Connection as _;
use support::mailservers::imap_login;
use support::postgres::PgCluster;
use support::*;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_years_eve_question_in_chicago_keeps_its_day_when_handled_later() -> anyhow::Result<()> {
    let env = TestEnv::new(Security::Plain)?;
    env.configure("intake", "timezone = \"America/Chicago\"")?;
    // 8 pm in Chicago on 31 December 2025 (already 1 January 2026 in UTC), delivered then and
    // handled now. Dayton's eligibility starts on 1 January 2026 (config/cities.example.csv).
    let q = question(DAYTON, "Jane Mayor", "Snow on New Year's Eve", "Who plows tonight?", "nye@daytonohio.gov");
    {
        let mut session = imap_login(&env.servers, INTAKE).await?;
        session.append("INBOX", None, Some("\"31-Dec-2025 20:00:00 -0600\""), q.as_bytes()).await?;
        session.logout().await?;
    }
    let _daemon = env.daemon()?;
    let got = wait_for_messages(&env.servers, DAYTON, "INBOX", 1, WAIT).await?;
    let (subject, text) = subject_and_text(&got[0]);
    assert!(subject.starts_with("[311-2025-0001]"), "the year of the arrival day in Chicago: {subject}");
    let store = env.store().await?;
    let r = store.request_by_tracking(&"311-2025-0001".parse()?).await?.expect("request");
    assert_eq!(r.received_on, "2025-12-31");
    assert_eq!(r.eligibility.to_string(), "not_eligible", "{}", r.eligibility_reason);
    assert!(r.eligibility_reason.contains("not eligible before 2026-01-01"), "{}", r.eligibility_reason);
    assert!(!text.is_empty());
    Ok(())
}

/// Moves `env` to a fresh database of a cluster of its own (migrated, cities imported), which
/// the test may stop without disturbing the other tests' shared cluster.
fn on_own_cluster(env: &mut TestEnv) -> anyhow::Result<PgCluster> {
    let cluster = PgCluster::start()?;
    let url = cluster.fresh_database()?;
    let config = std::fs::read_to_string(&env.config_path)?;
    let moved = config.replace(&format!("url = \"{}\"", env.db_url), &format!("url = \"{url}\""));
    anyhow::ensure!(moved != config, "no database.url line in the config");
    std::fs::write(&env.config_path, moved)?;
    env.db_url = url;
    for args in
        [&["migrate"][..], &["cities", "import", &repo_root().join("config/cities.example.csv").to_string_lossy()]]
    {
        let out = env.cli(args)?;
        anyhow::ensure!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(cluster)
}

/// SQLite: another process holds the write lock for 30 s. PostgreSQL has no lock that makes a
/// writer fail (a table lock only makes it wait), so its fault is the server itself gone for
/// 30 s (an immediate stop of a cluster of the test's own, then crash recovery).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_or_down_for_half_a_minute_quarantines_nothing() -> anyhow::Result<()> {
    let mut env = TestEnv::new(Security::Plain)?;
    let mut cluster = match env.engine {
        Engine::Sqlite => None,
        Engine::Postgres => Some(on_own_cluster(&mut env)?),
    };
    let mut daemon = env.daemon()?;
    let store = env.store().await?;
    eventually(WAIT, "the daemon's first poll", || async { Ok(store.stats().await?.last_poll_at) }).await?;

    // The fault begins, and questions arrive while it lasts.
    let mut locker = None;
    match cluster.as_mut() {
        None => {
            let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&env.db_path);
            let mut other = sqlx::SqliteConnection::connect_with(&opts).await?;
            sqlx::query("BEGIN IMMEDIATE").execute(&mut other).await?;
            locker = Some(other);
        }
        Some(pg) => pg.stop_immediate()?,
    }
    for i in 0..3 {
        let q = question(
            DAYTON,
            "Jane Mayor",
            &format!("Locked {i}"),
            &format!("Question {i}?"),
            &format!("lk{i}@daytonohio.gov"),
        );
        smtp_send(&env.servers, DAYTON, &[INTAKE], q.as_bytes()).await?;
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(daemon.is_running(), "the daemon died while the database was unavailable:\n{}", daemon.log_text());
    assert!(imap_fetch_all(&env.servers, INTAKE, "Quarantine").await.unwrap_or_default().is_empty());
    if let Some(mut other) = locker {
        sqlx::query("ROLLBACK").execute(&mut other).await?;
        other.close().await?;
    }
    if let Some(pg) = cluster.as_mut() {
        pg.start_again()?;
    }

    let acks = wait_for_messages(&env.servers, DAYTON, "INBOX", 3, WAIT).await?;
    assert_eq!(acks.len(), 3);
    wait_for_messages(&env.servers, INTAKE, "Processed", 3, WAIT).await?;
    assert!(store.list_quarantine().await?.is_empty(), "nothing is quarantined");
    assert_eq!(store.count_requests().await?, 3);
    assert!(daemon.is_running(), "{}", daemon.log_text());
    let log = daemon.log_text();
    let why = match env.engine {
        Engine::Sqlite => log.contains("database is locked") && log.contains("the mail stays in the inbox"),
        Engine::Postgres => log.contains("the mail stays in the inbox") || log.contains("the mail waits in the inbox"),
    };
    assert!(why, "the log says why:\n{log}");
    Ok(())
}
