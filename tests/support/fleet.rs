//! Several daemons on one PostgreSQL database and one mailbox, for tests/multi_daemon.rs: a
//! [`TestEnv`] always on PostgreSQL (whatever `INTAKE311_TEST_ENGINE` says), questions APPENDed
//! straight into the intake INBOX, who holds the mailbox lease, and the end-to-end check that
//! every question was handled exactly once ([`verify_exactly_once`]).
//!
//! Talks to: the mail servers over IMAP, the database through a small sqlx pool of its own
//! (queries tolerate a database that is briefly gone: callers poll), the `intake311` CLI.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use super::{
    DAYTON, INTAKE, MailServers, SPRINGFIELD_MO, STAFF, Security, TestEnv, UNKNOWN, header, imap_fetch_all, repo_root,
    wait_for_messages,
};

/// Settings a fleet test changes from [`TestEnv::config_text`]'s.
#[derive(Debug, Clone, Copy)]
pub struct FleetSettings {
    /// `database.lease`.
    pub lease: Duration,
    /// `imap.fetch_batch`: small batches give more commits, so a kill more often falls
    /// between a commit and the move.
    pub fetch_batch: u32,
}

/// A [`TestEnv`] whose database is `db_url` (a fresh PostgreSQL database), with the usual
/// users, `officials` more users at daytonohio.gov (an eligible city), the schema and the
/// example city list.
pub fn postgres_env(db_url: String, settings: FleetSettings, officials: &[String]) -> anyhow::Result<TestEnv> {
    ensure!(db_url.starts_with("postgres://"), "a fleet runs on PostgreSQL, not {db_url}");
    let servers = MailServers::start()?;
    for user in [INTAKE, STAFF, DAYTON, SPRINGFIELD_MO, UNKNOWN].into_iter().chain(officials.iter().map(String::as_str))
    {
        servers.add_user(user)?;
    }
    let dir = tempfile::tempdir()?;
    let config_path = dir.path().join("intake311.toml");
    let db_path: PathBuf = dir.path().join("unused.db");
    let env = TestEnv { servers, dir, config_path, db_path, db_url, engine: super::Engine::Postgres };
    let text = env.config_text(Security::Plain, "");
    let text = text
        .replacen("[database]\n", &format!("[database]\nlease = \"{}s\"\n", settings.lease.as_secs()), 1)
        .replacen("[imap]\n", &format!("[imap]\nfetch_batch = {}\n", settings.fetch_batch), 1);
    ensure!(text.contains("lease = ") && text.contains("fetch_batch = "), "config sections moved: {text}");
    std::fs::write(&env.config_path, text)?;
    let out = env.cli(&["migrate"])?;
    ensure!(out.status.success(), "migrate failed: {}", String::from_utf8_lossy(&out.stderr));
    let csv = repo_root().join("config/cities.example.csv");
    let out = env.cli(&["cities", "import", &csv.to_string_lossy()])?;
    ensure!(out.status.success(), "cities import failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(env)
}

/// `n` officials of Dayton, OH (eligible): `official0@daytonohio.gov`, …
pub fn dayton_officials(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("official{i}@daytonohio.gov")).collect()
}

/// A small pool for the test's own queries. Connections are tested before use, so it carries on
/// after the server was restarted.
pub async fn pool(db_url: &str) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(3))
        .connect(db_url)
        .await
        .with_context(|| format!("connecting to {db_url}"))
}

/// One question put into the inbox.
#[derive(Debug, Clone)]
pub struct Question {
    /// Without angle brackets.
    pub message_id: String,
    pub from: String,
}

/// APPENDs `n` questions to the intake INBOX over one IMAP session, from `officials` in turn,
/// with Message-IDs `fleet-TAG-I.PID@daytonohio.gov`.
pub async fn append_questions(
    servers: &MailServers,
    tag: &str,
    n: usize,
    officials: &[String],
) -> anyhow::Result<Vec<Question>> {
    let mut session = super::mailservers::imap_login(servers, INTAKE).await?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let from = officials[i % officials.len()].clone();
        let message_id = format!("fleet-{tag}-{i}.{}@daytonohio.gov", std::process::id());
        let raw = super::question(
            &from,
            &format!("Official {}", i % officials.len()),
            &format!("Question {tag} {i}"),
            &format!("How do other cities budget for road repairs? ({tag} {i})\r\n{}", "Detail. ".repeat(30)),
            &message_id,
        );
        session.append("INBOX", None, None, raw.as_bytes()).await.with_context(|| format!("APPEND question {i}"))?;
        out.push(Question { message_id, from });
    }
    let _ = session.logout().await;
    Ok(out)
}

/// The mailbox lease as the table shows it, with the holder's pid from its heartbeat row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Lease {
    pub owner: String,
    pub pid: Option<i64>,
    pub acquired_at: i64,
    pub expires_at: i64,
}

/// The (only) mailbox lease, if any daemon holds one.
pub async fn lease(db: &PgPool) -> anyhow::Result<Option<Lease>> {
    Ok(sqlx::query_as(
        "SELECT l.owner, d.pid, l.acquired_at, l.expires_at FROM mailbox_leases l \
         LEFT JOIN daemons d ON d.owner = l.owner ORDER BY l.mailbox LIMIT 1",
    )
    .fetch_optional(db)
    .await?)
}

/// The claim id (`daemons.owner`) of the live daemon process `pid`, once it wrote a heartbeat.
pub async fn owner_of(db: &PgPool, pid: u32) -> anyhow::Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT owner FROM daemons WHERE pid = $1 ORDER BY started_at DESC LIMIT 1")
        .bind(i64::from(pid))
        .fetch_optional(db)
        .await?)
}

/// Progress figures: requests, outbox rows sent, outbox rows pending.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub requests: i64,
    pub sent: i64,
    pub pending: i64,
}

impl Progress {
    /// Requests plus mail sent: grows with any daemon's work.
    pub fn work(&self) -> i64 {
        self.requests + self.sent
    }
}

pub async fn progress(db: &PgPool) -> anyhow::Result<Progress> {
    let (requests, sent, pending): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM requests), \
                (SELECT COUNT(*) FROM outbox WHERE status = 'sent'), \
                (SELECT COUNT(*) FROM outbox WHERE status = 'pending')",
    )
    .fetch_one(db)
    .await?;
    Ok(Progress { requests, sent, pending })
}

/// Polls until there are `n` requests; database errors count as "not yet". Returns the time
/// it took.
pub async fn wait_requests(db: &PgPool, n: i64, limit: Duration) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    loop {
        let last = match progress(db).await {
            Ok(p) if p.requests >= n => return Ok(t0.elapsed()),
            Ok(p) => format!("{p:?}"),
            Err(e) => format!("database: {e:#}"),
        };
        if t0.elapsed() > limit {
            bail!("fewer than {n} requests after {limit:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until every one of `n` questions is a request, nothing is left to send and the intake
/// INBOX is empty; database and IMAP errors count as "not yet" (the database may be coming
/// back). Fails after `limit` with the last figures and error.
pub async fn wait_drained(env: &TestEnv, db: &PgPool, n: i64, limit: Duration) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    loop {
        let last = match progress(db).await {
            Ok(p) if p.requests == n && p.pending == 0 => match imap_fetch_all(&env.servers, INTAKE, "INBOX").await {
                Ok(left) if left.is_empty() => return Ok(t0.elapsed()),
                Ok(left) => format!("{p:?}, {} message(s) still in the INBOX", left.len()),
                Err(e) => format!("{p:?}, IMAP: {e:#}"),
            },
            Ok(p) => format!("{p:?}"),
            Err(e) => format!("database: {e:#}"),
        };
        if t0.elapsed() > limit {
            bail!("not drained after {limit:?} ({n} questions): {last}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An inbound message as stored, with its request's tracking number.
#[derive(Debug, sqlx::FromRow)]
struct Inbound {
    /// Without angle brackets.
    message_id: String,
    kind: String,
    request_id: Option<i64>,
    tracking: Option<String>,
}

/// What [`verify_exactly_once`] counted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    /// Acknowledgements that arrived in the officials' mailboxes.
    pub delivered: usize,
    /// Of those, a second delivery of a Message-ID already delivered (at-least-once sending
    /// after a kill): counted, not a failure.
    pub duplicates: usize,
}

/// Checks that every question was handled exactly once, after the drain (Postfix's queue is
/// waited for here):
/// - the database holds one inbound message per question, each a `question` tied to its own
///   request; as many requests as questions; tracking numbers distinct; nothing quarantined;
///   every outbox row sent;
/// - each question's acknowledgements in its official's mailbox carry exactly one Message-ID
///   (grouped by In-Reply-To, else References) and its request's tracking number; none answers
///   anything else;
/// - the intake INBOX and Quarantine folder are empty, and Processed holds each question once.
pub async fn verify_exactly_once(
    env: &TestEnv,
    db: &PgPool,
    questions: &[Question],
    limit: Duration,
) -> anyhow::Result<Tally> {
    let n = questions.len();
    let wanted: BTreeSet<&str> = questions.iter().map(|q| q.message_id.as_str()).collect();
    ensure!(wanted.len() == n, "the test made two questions with one Message-ID");

    // The database.
    let rows: Vec<Inbound> = sqlx::query_as(
        "SELECT trim(both '<>' from m.message_id) AS message_id, m.kind, m.request_id, r.tracking FROM messages m \
         LEFT JOIN requests r ON r.id = m.request_id WHERE m.direction = 'in'",
    )
    .fetch_all(db)
    .await?;
    let mut stored: BTreeMap<String, Vec<Inbound>> = BTreeMap::new();
    for row in rows {
        stored.entry(row.message_id.clone()).or_default().push(row);
    }
    let mut tracking_of: BTreeMap<&str, String> = BTreeMap::new();
    let mut requests_seen = BTreeSet::new();
    for q in &wanted {
        let rows = stored.get(*q).map(Vec::as_slice).unwrap_or_default();
        match rows {
            [Inbound { kind, request_id: Some(request), tracking: Some(tracking), .. }] if kind == "question" => {
                ensure!(requests_seen.insert(*request), "request {request} holds two questions (one is {q})");
                tracking_of.insert(q, tracking.clone());
            }
            _ => bail!("question {q}: expected one stored question with its own request, found {rows:?}"),
        }
    }
    let strays: Vec<&String> = stored.keys().filter(|k| !wanted.contains(k.as_str())).collect();
    ensure!(strays.is_empty(), "inbound mail that is no question of ours: {strays:?}");
    let (requests, trackings): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT tracking) FROM requests").fetch_one(db).await?;
    ensure!(requests == n as i64, "{requests} requests for {n} questions");
    ensure!(trackings == n as i64, "{trackings} distinct tracking numbers for {n} requests");
    let quarantined: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM quarantine").fetch_one(db).await?;
    ensure!(quarantined == 0, "{quarantined} quarantine record(s)");
    let unsent: Vec<(String, String, String)> =
        sqlx::query_as("SELECT kind, status, last_error FROM outbox WHERE status <> 'sent' ORDER BY id LIMIT 5")
            .fetch_all(db)
            .await?;
    ensure!(unsent.is_empty(), "outbox rows not sent: {unsent:?}");
    let acks_per_request: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT n, COUNT(*) FROM (SELECT COUNT(*) AS n FROM outbox o JOIN requests r ON r.id = o.request_id \
         WHERE o.recipients LIKE '%' || r.official_email || '%' GROUP BY o.request_id) c GROUP BY n ORDER BY n",
    )
    .fetch_all(db)
    .await?;
    ensure!(
        acks_per_request == vec![(1, n as i64)],
        "(mails to the official per request, requests): {acks_per_request:?}, expected one each"
    );

    // The officials' mailboxes.
    env.servers.wait_queue_empty(limit).await?;
    let mut per_official: BTreeMap<&str, usize> = BTreeMap::new();
    for q in questions {
        *per_official.entry(q.from.as_str()).or_default() += 1;
    }
    let mut by_question: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut tally = Tally::default();
    let mut problems = Vec::new();
    for (official, expected) in &per_official {
        for m in wait_for_messages(&env.servers, official, "INBOX", *expected, limit).await? {
            tally.delivered += 1;
            let id = header(&m, "Message-ID").unwrap_or_default().trim().to_string();
            let parents = format!(
                "{} {}",
                header(&m, "In-Reply-To").unwrap_or_default(),
                header(&m, "References").unwrap_or_default()
            );
            let answers: Vec<String> = parents
                .split_whitespace()
                .map(|p| p.trim_matches(['<', '>']).to_string())
                .filter(|p| wanted.contains(p.as_str()))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let [question] = answers.as_slice() else {
                problems.push(format!("{official}: {id} answers {answers:?} (In-Reply-To/References: {parents})"));
                continue;
            };
            let (subject, text) = super::subject_and_text(&m);
            let tracking = &tracking_of[question.as_str()];
            if !subject.contains(tracking.as_str()) && !text.contains(tracking.as_str()) {
                problems.push(format!("{id} answers {question} but does not name its tracking number {tracking}"));
            }
            by_question.entry(question.clone()).or_default().insert(id);
        }
    }
    ensure!(problems.is_empty(), "acknowledgements that answer no single question of ours:\n{}", problems.join("\n"));
    let missing: Vec<&&str> = wanted.iter().filter(|q| !by_question.contains_key(**q)).collect();
    ensure!(missing.is_empty(), "{} question(s) without an acknowledgement: {missing:?}", missing.len());
    let split: Vec<_> = by_question.iter().filter(|(_, ids)| ids.len() != 1).collect();
    ensure!(split.is_empty(), "questions acknowledged under more than one Message-ID: {split:?}");
    tally.duplicates = tally.delivered - n;

    // The intake mailbox.
    let inbox = imap_fetch_all(&env.servers, INTAKE, "INBOX").await?;
    ensure!(inbox.is_empty(), "{} message(s) left in the INBOX", inbox.len());
    let quarantine = imap_fetch_all(&env.servers, INTAKE, "Quarantine").await?;
    ensure!(quarantine.is_empty(), "{} message(s) in the Quarantine folder", quarantine.len());
    let processed = imap_fetch_all(&env.servers, INTAKE, "Processed").await?;
    let mut in_processed: BTreeMap<String, usize> = BTreeMap::new();
    for m in &processed {
        let id = header(m, "Message-ID").unwrap_or_default().trim().trim_matches(['<', '>']).to_string();
        *in_processed.entry(id).or_default() += 1;
    }
    let not_once: Vec<_> = wanted.iter().filter(|q| in_processed.get(**q) != Some(&1)).take(10).collect();
    ensure!(
        processed.len() == n && not_once.is_empty(),
        "Processed holds {} message(s) for {n} questions; not there exactly once: {not_once:?}",
        processed.len()
    );
    Ok(tally)
}
