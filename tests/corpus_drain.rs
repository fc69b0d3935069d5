//! Hostile and odd input: every message of the MIME and bounce corpora in ../shared/corpora is
//! put in the intake mailbox and the daemon drains it. Nothing panics or stalls, each message
//! ends as exactly one outcome (request, follow-up, automatic mail, duplicate or quarantine
//! record), and no automatic mail is answered. The counts are printed.
//!
//! The corpora are read in place: `INTAKE311_CORPORA` names the folder (.ci/run sets it), else
//! `../shared/corpora` beside the checkout. With neither, it prints one `CORPUS SUITE NOT RUN`
//! line and passes; a set variable that points nowhere, or a missing corpus, fails it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

mod support;

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::*;

fn is_data(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    !(name.ends_with(".json")
        || name.starts_with("SOURCE")
        || name.starts_with("LICENSE")
        || name.starts_with("MANIFEST")
        || name.starts_with("README")
        || name.starts_with('.'))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if is_data(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// Every message of the mime_* and bounce_* corpora; mbox files are split on their "From " lines.
fn messages(root: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if path.is_dir() && (name.starts_with("mime_") || name.starts_with("bounce_")) {
            walk(&path, &mut files)?;
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let bytes = std::fs::read(&f)?;
        if bytes.starts_with(b"From ") && f.components().any(|c| c.as_os_str() == "mailbox") {
            let text = bytes;
            let mut start = 0;
            for i in 1..text.len().saturating_sub(5) {
                if text[i - 1] == b'\n' && text[i..].starts_with(b"From ") {
                    out.push(strip_from_line(&text[start..i]));
                    start = i;
                }
            }
            out.push(strip_from_line(&text[start..]));
        } else {
            out.push(bytes);
        }
    }
    Ok(out)
}

fn strip_from_line(m: &[u8]) -> Vec<u8> {
    match m.iter().position(|b| *b == b'\n') {
        Some(i) if m.starts_with(b"From ") => m[i + 1..].to_vec(),
        _ => m.to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corpora_drain_without_panic_loss_or_answered_robots() -> anyhow::Result<()> {
    let Some(corpora) = support::corpora::corpora_for(
        "corpus_drain",
        &["bounce_sisimai", "mime_cpython_test_email", "mime_flanker", "mime_ruby_mail", "mime_stalwart_mail_parser"],
    ) else {
        return Ok(());
    };
    let all = messages(&corpora)?;
    anyhow::ensure!(all.len() > 500, "expected the full corpora, found {} messages", all.len());
    let env = TestEnv::new(Security::Plain)?;
    imap_append(
        &env.servers,
        INTAKE,
        "INBOX",
        question(DAYTON, "Jane", "Warm-up", "x", "warmup@daytonohio.gov").as_bytes(),
    )
    .await?;
    let dir = env.servers.maildir(INTAKE);
    let meta = std::fs::metadata(&dir)?;
    for (i, raw) in all.iter().enumerate() {
        let path = dir.join("new").join(format!("1700000001.M{i}P2.corpus,S={}", raw.len()));
        std::fs::write(&path, raw)?;
        std::os::unix::fs::chown(&path, Some(meta.uid()), Some(meta.gid()))?;
    }
    let total = all.len() + 1;
    let mut daemon = env.daemon()?;
    let store = env.store().await?;
    let started = std::time::Instant::now();
    eventually(Duration::from_secs(400), "the inbox to drain and the outbox to empty", || async {
        let inbox = imap_fetch_all(&env.servers, INTAKE, "INBOX").await?.len();
        let pending = store.outbox_stats().await?.pending;
        Ok((inbox == 0 && pending == 0 && store.handled_in("INBOX").await? >= total as i64).then_some(()))
    })
    .await
    .map_err(|e| {
        anyhow::anyhow!("{e}; log tail:\n{}", daemon.log_text().lines().rev().take(20).collect::<Vec<_>>().join("\n"))
    })?;
    let drained_in = started.elapsed();

    assert!(daemon.is_running(), "the daemon died; log:\n{}", daemon.log_text());
    let log = daemon.log_text();
    assert!(!log.contains("panicked"), "a panic in the log");

    // Each message ended as exactly one outcome: one row per IMAP position, and every position
    // is either in Processed or in Quarantine.
    let handled = store.handled_in("INBOX").await?;
    let processed = imap_fetch_all(&env.servers, INTAKE, "Processed").await?.len() as i64;
    let quarantined = imap_fetch_all(&env.servers, INTAKE, "Quarantine").await?.len() as i64;
    assert_eq!(processed + quarantined, handled, "every handled message was moved exactly once");
    assert!(handled >= total as i64, "{handled} handled of {total} put in (plus the DSNs our answers caused)");
    assert_eq!(store.answered_automatic().await?, 0, "automatic mail was answered");

    let kinds = store.inbound_counts().await?;
    let quarantine = store.list_quarantine().await?;
    let mut reasons: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for q in &quarantine {
        let key: String = q.reason.split(':').next().unwrap_or_default().chars().take(50).collect();
        *reasons.entry(key).or_default() += 1;
    }
    println!(
        "corpus drain: {total} messages put in, {handled} handled in {:.1} s ({processed} processed, {quarantined} quarantined)",
        drained_in.as_secs_f64()
    );
    println!("corpus drain: outcomes {kinds:?}");
    println!("corpus drain: quarantine reasons {reasons:?}");
    println!("corpus drain: {} requests, outbox {:?}", store.count_requests().await?, store.outbox_stats().await?);
    assert!(daemon.terminate(Duration::from_secs(20))?, "clean shutdown after the drain");
    Ok(())
}
