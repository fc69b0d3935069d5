//! Robots get no answers, people do: every fixture under tests/fixtures/robots is put in the
//! intake mailbox of the real servers and the daemon drains it. No robot's sender receives mail
//! and no outbox row is addressed to it or answers it; every person gets an acknowledgement.
//!
//! The spam fixtures whose only sign is a verdict header (X-Spam-Flag, X-Spam, Rspamd's
//! X-Rspamd-Action, SFV:SPM) need intake to classify with the raw header block
//! (`inbound::classify::classify_raw`); their test is ignored until that call is wired.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

mod support;

use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::time::Duration;

use support::*;

/// The spam fixtures only the raw header block gives away.
const HEADER_ONLY: &[&str] = &["spam-spamassassin-flag.eml", "spam-rspamd-add-header.eml", "spam-forefront-spm.eml"];

struct Fixture {
    name: String,
    raw: Vec<u8>,
    from: String,
    message_id: String,
}

fn fixtures() -> anyhow::Result<Vec<Fixture>> {
    let dir = repo_root().join("tests/fixtures/robots");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let raw = std::fs::read(&path)?;
        let mail = intake311::inbound::parse(&raw).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        out.push(Fixture { name, raw, from: mail.from, message_id: mail.message_id });
    }
    Ok(out)
}

/// Puts `chosen` in the intake inbox, drains it, and checks who was answered.
async fn drain(chosen: Vec<Fixture>) -> anyhow::Result<()> {
    anyhow::ensure!(!chosen.is_empty(), "no fixtures chosen");
    let env = TestEnv::new(Security::Plain)?;
    for f in &chosen {
        env.servers.add_user(&f.from)?;
    }
    // A warm-up question creates the maildir the fixtures are written into.
    imap_append(
        &env.servers,
        INTAKE,
        "INBOX",
        question(DAYTON, "Jane", "Warm-up", "x", "warmup.robots@daytonohio.gov").as_bytes(),
    )
    .await?;
    let dir = env.servers.maildir(INTAKE);
    let meta = std::fs::metadata(&dir)?;
    for (i, f) in chosen.iter().enumerate() {
        let path = dir.join("new").join(format!("1700000002.M{i}P3.robots,S={}", f.raw.len()));
        std::fs::write(&path, &f.raw)?;
        std::os::unix::fs::chown(&path, Some(meta.uid()), Some(meta.gid()))?;
    }
    let total = chosen.len() as i64 + 1;
    let mut daemon = env.daemon()?;
    let store = env.store().await?;
    eventually(Duration::from_secs(120), "the inbox to drain and the outbox to empty", || async {
        let inbox = imap_fetch_all(&env.servers, INTAKE, "INBOX").await?.len();
        let pending = store.outbox_stats().await?.pending;
        Ok((inbox == 0 && pending == 0 && store.handled_in("INBOX").await? >= total).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}; log tail:\n{}", daemon.log_text()))?;
    env.servers.wait_queue_empty(Duration::from_secs(30)).await?;

    // Every outbox row's recipients and raw mail, searched here (ignoring ASCII case, as SQL's
    // LIKE did): `CAST(raw AS TEXT)` is the text on SQLite but hex on PostgreSQL.
    let outbox: Vec<(String, Vec<u8>)> = env.db().await?.rows("SELECT recipients, raw FROM outbox", &[]).await?;
    anyhow::ensure!(!outbox.is_empty(), "the outbox is empty: not even the warm-up question was answered");
    let contains = |hay: &[u8], needle: &str| {
        needle.is_empty() || hay.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    };
    let mut failures = Vec::new();
    for f in &chosen {
        let to_sender = outbox.iter().filter(|(to, _)| contains(to.as_bytes(), &f.from)).count();
        let answering = outbox.iter().filter(|(_, raw)| contains(raw, &format!("<{}>", f.message_id))).count();
        if f.name.starts_with("human-") {
            if answering == 0 || to_sender == 0 {
                failures.push(format!("{}: the person got no acknowledgement", f.name));
            }
            continue;
        }
        let delivered = std::fs::read_dir(env.servers.maildir(&f.from).join("new")).map(|d| d.count()).unwrap_or(0);
        if to_sender > 0 || answering > 0 || delivered > 0 {
            failures.push(format!(
                "{}: robot answered ({to_sender} outbox rows to {}, {answering} answering it, {delivered} delivered)",
                f.name, f.from
            ));
        }
    }
    // People's acknowledgements were really delivered.
    let dayton = chosen.iter().filter(|f| f.name.starts_with("human-") && f.from == DAYTON).count();
    if dayton > 0 {
        wait_for_messages(&env.servers, DAYTON, "INBOX", dayton + 1, Duration::from_secs(60)).await?;
    }
    assert!(failures.is_empty(), "{}\nlog tail:\n{}", failures.join("\n"), daemon.log_text());
    assert!(daemon.is_running(), "the daemon died; log:\n{}", daemon.log_text());
    assert!(daemon.terminate(Duration::from_secs(20))?, "clean shutdown after the drain");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_get_no_answer_and_people_get_theirs() -> anyhow::Result<()> {
    let chosen: Vec<Fixture> = fixtures()?.into_iter().filter(|f| !HEADER_ONLY.contains(&f.name.as_str())).collect();
    anyhow::ensure!(chosen.iter().filter(|f| f.name.starts_with("human-")).count() >= 10, "too few people");
    anyhow::ensure!(chosen.iter().filter(|f| !f.name.starts_with("human-")).count() >= 15, "too few robots");
    drain(chosen).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spam_by_header_verdict_gets_no_answer() -> anyhow::Result<()> {
    let all = fixtures()?;
    let chosen: Vec<Fixture> = all
        .into_iter()
        .filter(|f| HEADER_ONLY.contains(&f.name.as_str()) || f.name == "human-spam-ordinance.eml")
        .collect();
    drain(chosen).await
}
