//! `intake311 db copy` from a SQLite deployment to PostgreSQL, then a daemon on the copy.
//!
//! A SQLite database is built through the real paths (the CLI and a daemon handling questions
//! with attachments, one of 5 MB so large blobs go through the piece-by-piece path; a city
//! added and removed so `sqlite_sequence` is above every id left), copied with the binary into
//! a fresh database of the private PostgreSQL cluster, and compared table by table. A second
//! copy into the same target is refused. Then a daemon runs on the copy: a new question gets
//! the next tracking number, the old ones are not handled again, and a new city's id is above
//! the removed one.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

mod support;

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::Duration;

use sqlx::{PgPool, SqlitePool};
use support::*;

const WAIT: Duration = Duration::from_secs(90);

/// Every table db copy fills, as the PostgreSQL migration creates them.
const TABLES: [&str; 24] = [
    "cities",
    "city_domains",
    "staff",
    "tracking_counters",
    "requests",
    "messages",
    "contacts",
    "admin_tokens",
    "request_participants",
    "attachment_blobs",
    "attachments",
    "outbox",
    "suppressions",
    "mailbox_state",
    "quarantine",
    "request_events",
    "audit_log",
    "message_raw",
    "daemons",
    "mailbox_leases",
    "deadline_notices",
    "request_topics",
    "experts",
    "referrals",
];

/// `intake311 db copy --from FROM --to TO` (no config needed).
fn db_copy(from: &str, to: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_intake311"))
        .args(["db", "copy", "--from", from, "--to", to])
        .env("INTAKE311_LOG", "warn")
        .output()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

async fn sqlite_counts(db: &SqlitePool) -> BTreeMap<&'static str, i64> {
    let mut m = BTreeMap::new();
    for t in TABLES {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {t}"))).fetch_one(db).await.unwrap();
        m.insert(t, n);
    }
    m
}

async fn pg_counts(db: &PgPool) -> BTreeMap<&'static str, i64> {
    let mut m = BTreeMap::new();
    for t in TABLES {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {t}"))).fetch_one(db).await.unwrap();
        m.insert(t, n);
    }
    m
}

type Tracking = Vec<(i64, String)>;
type Counters = Vec<(String, i64, i64)>;
type Positions = Vec<(String, i64, i64, Option<i64>)>;
type Blobs = Vec<(String, i64, Vec<u8>)>;

const TRACKING: &str = "SELECT id, tracking FROM requests ORDER BY id";
const COUNTERS: &str = "SELECT prefix, year, last_seq FROM tracking_counters ORDER BY prefix, year";
const POSITIONS: &str = "SELECT mailbox, uidvalidity, last_uid, last_poll_at FROM mailbox_state ORDER BY mailbox";
const BLOBS: &str = "SELECT sha256, size, data FROM attachment_blobs ORDER BY sha256";
const RAWS: &str = "SELECT message_id, raw FROM message_raw ORDER BY message_id";
const INBOUND: &str = "SELECT COUNT(*) FROM messages WHERE direction = 'in'";

/// The number after the last `-` of a tracking number (`311-2026-0004` → 4).
fn seq_of(tracking: &str) -> i64 {
    tracking.rsplit('-').next().and_then(|s| s.trim_end_matches(']').parse().ok()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_deployment_carries_on_without_handling_anything_twice() -> anyhow::Result<()> {
    // The source is always an SQLite file and the target PostgreSQL: the SQLite run covers it.
    if !sqlite_only("db_copy", "copies from an SQLite deployment, whatever the engine") {
        return Ok(());
    }
    let pg = support::postgres::shared()?;
    let env = TestEnv::new(Security::Plain)?;
    let sqlite_url = format!("sqlite://{}", env.db_path.display());

    // A city added then removed: its id stays used (sqlite_sequence > MAX(id)).
    let out = env.cli(&["cities", "add", "Kettering", "OH", "--domains", "ketteringoh.org", "--as", STAFF])?;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let removed: i64 = stdout.rsplit("(#").next().and_then(|s| s.trim().trim_end_matches(')').parse().ok()).unwrap();
    let out = env.cli(&["cities", "remove", &removed.to_string(), "--as", STAFF])?;
    assert!(out.status.success(), "{}", text(&out).1);

    // Questions, two with attachments (one of 5 MB: raw mail and blob over the piece size).
    let small: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
    let large: Vec<u8> = (0..5_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for (i, data) in [&small, &large].iter().enumerate() {
        let headers = format!(
            "From: Jane <{DAYTON}>\r\nTo: {INTAKE}\r\nSubject: Plan {i}\r\nMessage-ID: <copy-att{i}@daytonohio.gov>\r\n"
        );
        let raw = mail_with_attachment(&headers, "See the plan.", &format!("plan{i}.pdf"), "application/pdf", data);
        imap_append(&env.servers, INTAKE, "INBOX", raw.as_bytes()).await?;
    }
    env.send_question(DAYTON, "Jane", "Potholes", "Who fixes them?").await?;
    {
        let mut daemon = env.daemon()?;
        wait_for_messages(&env.servers, INTAKE, "Processed", 3, WAIT).await?;
        let store = env.store().await?;
        wait_quiet(&env, &store, WAIT).await?;
        store.close().await;
        assert!(daemon.terminate(WAIT)?, "the SQLite daemon stops cleanly");
    }
    let acks_before = wait_for_messages(&env.servers, DAYTON, "INBOX", 3, WAIT).await?.len();

    let src = SqlitePool::connect(&sqlite_url).await?;
    let before = sqlite_counts(&src).await;
    assert_eq!(before["requests"], 3, "{before:?}");
    assert!(before["message_raw"] >= 1 && before["attachment_blobs"] == 2, "{before:?}");
    let seq: i64 = sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'cities'").fetch_one(&src).await?;
    let max_city: i64 = sqlx::query_scalar("SELECT MAX(id) FROM cities").fetch_one(&src).await?;
    assert!(seq == removed && max_city < removed, "seq {seq}, max {max_city}, removed {removed}");
    let tracking: Tracking = sqlx::query_as(TRACKING).fetch_all(&src).await?;
    let counters: Counters = sqlx::query_as(COUNTERS).fetch_all(&src).await?;
    let positions: Positions = sqlx::query_as(POSITIONS).fetch_all(&src).await?;
    let blobs: Blobs = sqlx::query_as(BLOBS).fetch_all(&src).await?;
    let raws: Vec<(i64, Vec<u8>)> = sqlx::query_as(RAWS).fetch_all(&src).await?;
    let inbound: i64 = sqlx::query_scalar(INBOUND).fetch_one(&src).await?;
    assert!(!positions.is_empty());
    src.close().await;

    // Refusals that leave the target alone: the wrong direction, a source without schema.
    let target = pg.fresh_database()?;
    let (_, stderr) = text(&db_copy(&target, &sqlite_url));
    assert!(stderr.contains("from SQLite to PostgreSQL only") && stderr.contains("--from"), "{stderr}");
    let empty = env.dir.path().join("empty.db");
    std::fs::write(&empty, b"")?;
    let out = db_copy(&format!("sqlite://{}", empty.display()), &target);
    assert!(!out.status.success() && text(&out).1.contains("Run `intake311 migrate`"), "{}", text(&out).1);

    // The copy.
    let out = db_copy(&sqlite_url, &target.replacen("postgres://", "postgresql://", 1));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "db copy failed: {stderr}\n{stdout}");
    eprintln!("{stdout}");
    let total: i64 = before.values().sum();
    for (t, n) in &before {
        assert!(
            stdout.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == [*t, n.to_string().as_str(), "rows"]),
            "{t}: {stdout}"
        );
    }
    let total_line = ["total".to_string(), total.to_string(), "rows".to_string()];
    assert!(
        stdout.lines().any(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>() == total_line),
        "{stdout}"
    );

    let dst = PgPool::connect(&target).await?;
    let mut after = pg_counts(&dst).await;
    let audit = after.get_mut("audit_log").unwrap();
    *audit -= 1; // the copy's own audit line
    assert_eq!(after, before, "row counts, table by table");
    let line: (String, String) =
        sqlx::query_as("SELECT action, detail FROM audit_log ORDER BY id DESC LIMIT 1").fetch_one(&dst).await?;
    assert_eq!(line.0, "db copy");
    assert!(line.1.contains(&sqlite_url), "{line:?}");
    assert_eq!(sqlx::query_as::<_, (i64, String)>(TRACKING).fetch_all(&dst).await?, tracking);
    assert_eq!(sqlx::query_as::<_, (String, i64, i64)>(COUNTERS).fetch_all(&dst).await?, counters);
    assert_eq!(sqlx::query_as::<_, (String, i64, i64, Option<i64>)>(POSITIONS).fetch_all(&dst).await?, positions);
    assert!(sqlx::query_as::<_, (String, i64, Vec<u8>)>(BLOBS).fetch_all(&dst).await? == blobs, "attachment bytes");
    assert!(sqlx::query_as::<_, (i64, Vec<u8>)>(RAWS).fetch_all(&dst).await? == raws, "large raw mail bytes");

    // A second copy into the same target is refused and changes nothing.
    let out = db_copy(&sqlite_url, &target);
    let (_, stderr) = text(&out);
    assert!(!out.status.success(), "a second copy must be refused");
    eprint!("a second copy: {stderr}");
    assert!(
        stderr.contains("the target database is not empty") && stderr.contains("requests has 3 row(s)"),
        "{stderr}"
    );
    let mut again = pg_counts(&dst).await;
    *again.get_mut("audit_log").unwrap() -= 1;
    assert_eq!(again, before);

    // A copy that fails half-way (a text where the target wants a bigint, in a table copied
    // after others) leaves its target with no row at all.
    let broken = env.dir.path().join("broken.db");
    let src = SqlitePool::connect(&sqlite_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM INTO '{}'", broken.display()))).execute(&src).await?;
    src.close().await;
    let broken_url = format!("sqlite://{}", broken.display());
    let b = SqlitePool::connect(&broken_url).await?;
    sqlx::query("UPDATE outbox SET attempts = 'many' WHERE id = (SELECT MAX(id) FROM outbox)").execute(&b).await?;
    b.close().await;
    let other = pg.fresh_database()?;
    let out = db_copy(&broken_url, &other);
    let (_, stderr) = text(&out);
    assert!(!out.status.success() && stderr.contains("outbox.attempts"), "{stderr}");
    eprint!("a broken source: {stderr}");
    let other_db = PgPool::connect(&other).await?;
    let left = pg_counts(&other_db).await;
    assert!(left.values().all(|n| *n == 0), "a failed copy leaves nothing: {left:?}");
    other_db.close().await;

    // A daemon on the copy: a new question, the next tracking number, nothing handled twice.
    let pg_config = env.dir.path().join("pg.toml");
    let config = env.config_text(Security::Plain, "");
    let config = config.replace(&format!("url = \"{sqlite_url}\""), &format!("url = \"{target}\""));
    assert!(config.contains(&target));
    std::fs::write(&pg_config, config)?;
    let mut daemon = Daemon::start(&pg_config, &env.dir.path().join("daemon-pg.log"))?;
    env.send_question(DAYTON, "Jane", "Streetlights", "Who replaces them?").await?;
    wait_for_messages(&env.servers, INTAKE, "Processed", 4, WAIT).await?;
    let store = intake311::store::Store::connect(&target, 2).await?;
    eventually(WAIT, "the new request on PostgreSQL", || async {
        Ok((store.count_requests().await? == 4).then_some(()))
    })
    .await?;
    wait_quiet(&env, &store, WAIT).await?;
    let acks = wait_for_messages(&env.servers, DAYTON, "INBOX", acks_before + 1, WAIT).await?;
    assert_eq!(acks.len(), acks_before + 1, "one acknowledgement, for the new question only");
    assert!(daemon.terminate(WAIT)?, "the PostgreSQL daemon stops cleanly:\n{}", daemon.log_text());

    let now: Tracking = sqlx::query_as(TRACKING).fetch_all(&dst).await?;
    assert_eq!(now.len(), 4, "{now:?}");
    assert_eq!(now[..3], tracking[..], "the old requests are untouched");
    let newest = &now[3];
    assert!(newest.0 > tracking[2].0, "{now:?}");
    let last_seq = tracking.iter().map(|(_, t)| seq_of(t)).max().unwrap();
    assert_eq!(seq_of(&newest.1), last_seq + 1, "the next tracking number: {now:?}");
    let inbound_now: i64 = sqlx::query_scalar(INBOUND).fetch_one(&dst).await?;
    assert_eq!(inbound_now, inbound + 1, "only the new mail was taken in");
    let old_ids: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE direction = 'in' AND message_id LIKE '%copy-att%'")
            .fetch_one(&dst)
            .await?;
    assert_eq!(old_ids, 2, "each attachment mail once");

    // A new city gets an id above the removed one.
    let out = Command::new(env!("CARGO_BIN_EXE_intake311"))
        .arg("--config")
        .arg(&pg_config)
        .args(["cities", "add", "Oakwood", "OH", "--domains", "oakwoodohio.gov", "--as", STAFF])
        .env("INTAKE311_LOG", "warn")
        .output()?;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let id: i64 = stdout.rsplit("(#").next().and_then(|s| s.trim().trim_end_matches(')').parse().ok()).unwrap();
    assert!(id > removed, "new city #{id} after removed #{removed}");
    eprintln!("removed city #{removed}, new city #{id}; tracking after the move: {now:?}");
    store.close().await;
    dst.close().await;
    Ok(())
}
