//! Group commit on real Dovecot and Postfix: a backlog fetched in one batch is handled in one
//! transaction, and each message still sees what the messages before it wrote (a reply joins
//! the request its question created a moment earlier, in the same transaction), a message that
//! must be quarantined does not undo its neighbours, and each goes to its own folder only after
//! the one commit.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

mod support;

use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(20);

fn mail(from: &str, subject: &str, id: &str, in_reply_to: Option<&str>, body: &str) -> String {
    let threading = in_reply_to.map(|p| format!("In-Reply-To: <{p}>\r\nReferences: <{p}>\r\n")).unwrap_or_default();
    format!(
        "From: {from}\r\nTo: {INTAKE}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n{threading}\
         Date: Thu, 26 Nov 2026 11:00:00 -0500\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_batch_one_commit_and_each_message_sees_the_one_before() -> anyhow::Result<()> {
    let env = TestEnv::new(Security::Plain)?;
    // The whole backlog is in the inbox before the daemon starts, so it comes in one fetch batch.
    let question =
        mail("Jane Mayor <mayor@daytonohio.gov>", "Snow removal contracts", "q1@daytonohio.gov", None, "Who plows?");
    let reply = mail(
        "Jane Mayor <mayor@daytonohio.gov>",
        "Re: Snow removal contracts",
        "r1@daytonohio.gov",
        Some("q1@daytonohio.gov"),
        "Also: salt storage.",
    );
    let broken = "Subject: no sender\r\nMessage-ID: <nosender@x.test>\r\n\r\nHello\r\n";
    let other = mail("Pat <pat@gmail.test>", "Library hours", "q2@gmail.test", None, "When?");
    for raw in [question.as_str(), reply.as_str(), broken, other.as_str()] {
        imap_append(&env.servers, INTAKE, "INBOX", raw.as_bytes()).await?;
    }
    let report = env.dir.path().join("stages.json");
    let mut daemon = Daemon::start_with(
        &env.config_path,
        &env.dir.path().join("daemon.log"),
        &["--stage-report", &report.to_string_lossy()],
    )?;

    // The official gets one acknowledgement and one "added to your request" note, not two acks.
    let mayor = wait_for_messages(&env.servers, DAYTON, "INBOX", 2, WAIT).await?;
    wait_for_messages(&env.servers, UNKNOWN, "INBOX", 1, WAIT).await?;
    let subjects: Vec<String> = mayor.iter().map(|m| subject_and_text(m).0).collect();
    let texts: Vec<String> = mayor.iter().map(|m| subject_and_text(m).1).collect();
    assert_eq!(texts.iter().filter(|t| t.contains("added your message")).count(), 1, "{subjects:?}\n{texts:?}");
    let processed = wait_for_messages(&env.servers, INTAKE, "Processed", 3, WAIT).await?;
    let quarantined = wait_for_messages(&env.servers, INTAKE, "Quarantine", 1, WAIT).await?;
    assert_eq!((processed.len(), quarantined.len()), (3, 1));
    assert!(imap_fetch_all(&env.servers, INTAKE, "INBOX").await?.is_empty(), "nothing left in the inbox");

    let store = env.store().await?;
    assert_eq!(store.count_requests().await?, 2, "the reply joined its question's request");
    let counts = store.inbound_counts().await?;
    assert!(counts.contains(&("follow_up".to_string(), 1)), "{counts:?}");
    assert!(counts.contains(&("question".to_string(), 2)), "{counts:?}");
    assert_eq!(store.list_quarantine().await?.len(), 1);

    // The four messages were committed together: one transaction, not four.
    assert!(daemon.terminate(Duration::from_secs(10))?, "clean exit");
    let stages: serde_json::Value = serde_json::from_slice(&std::fs::read(&report)?)?;
    assert_eq!(stages["messages_committed"], 4, "{stages}");
    assert_eq!(stages["commits"], 1, "{stages}");
    assert!(stages["acks_sent"].as_u64().unwrap_or(0) >= 2, "{stages}");
    assert!(stages["stages"]["db_commit"]["count"].as_u64() == Some(1), "{stages}");
    Ok(())
}

/// A message over 1 MiB is fetched in 1 MiB pieces and written to the database in pieces; both must
/// give back exactly the bytes that arrived, the raw mail and its attachment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_message_is_fetched_and_stored_in_pieces_byte_for_byte() -> anyhow::Result<()> {
    let env = TestEnv::new(Security::Plain)?;
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let headers = format!(
        "From: Jane Mayor <{DAYTON}>\r\nTo: {INTAKE}\r\nSubject: Site plans\r\nMessage-ID: <big1@daytonohio.gov>\r\n\
         Date: Thu, 26 Nov 2026 11:00:00 -0500\r\n"
    );
    let raw = mail_with_attachment(&headers, "The plans are attached.", "plans.bin", "application/octet-stream", &data);
    assert!(raw.len() > 3 * 1024 * 1024, "over three fetch pieces");
    imap_append(&env.servers, INTAKE, "INBOX", raw.as_bytes()).await?;
    let _daemon = env.daemon()?;
    wait_for_messages(&env.servers, INTAKE, "Processed", 1, WAIT).await?;

    let db = env.db().await?;
    // Over 1 MiB, the raw mail lives in message_raw, where it is written in pieces (in place on
    // SQLite, appended to on PostgreSQL).
    let rows: Vec<(Option<Vec<u8>>, Vec<u8>)> = db
        .rows(
            "SELECT m.raw, r.raw FROM messages m JOIN message_raw r ON r.message_id = m.id WHERE m.kind = 'question'",
            &[],
        )
        .await?;
    assert_eq!(rows.len(), 1, "one question, its raw mail in message_raw");
    let (inline, stored) = &rows[0];
    assert!(inline.is_none(), "no second copy in messages.raw");
    assert_eq!(stored.len(), raw.len());
    assert!(stored == raw.as_bytes(), "the raw message is stored byte for byte");
    let blobs: Vec<(Vec<u8>,)> = db
        .rows(
            "SELECT b.data FROM attachment_blobs b JOIN attachments a ON a.sha256 = b.sha256 WHERE a.filename = 'plans.bin'",
            &[],
        )
        .await?;
    assert_eq!(blobs.len(), 1, "one stored attachment");
    let blob = &blobs[0].0;
    assert!(*blob == data, "the attachment is stored byte for byte ({} of {} bytes)", blob.len(), data.len());
    Ok(())
}

/// A staff command that cannot be applied is undone back to its savepoint inside the group and
/// answered; the messages around it in the same group are handled as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_staff_command_in_a_group_is_undone_and_answered() -> anyhow::Result<()> {
    use chrono::Datelike as _;
    const ANA: &str = "ana@311.test";
    let env = TestEnv::new(Security::Plain)?;
    env.servers.add_user(ANA)?;
    let out = env.cli(&["staff", "add", ANA, "--name", "Ana Staff"])?;
    anyhow::ensure!(out.status.success(), "staff add: {}", String::from_utf8_lossy(&out.stderr));
    let t1 = format!("311-{}-0001", chrono::Utc::now().year());
    let question =
        mail("Jane Mayor <mayor@daytonohio.gov>", "Bridge inspections", "q1@daytonohio.gov", None, "How often?");
    let command = mail(
        &format!("Ana Staff <{ANA}>"),
        &format!("Re: [{t1}] Bridge inspections"),
        "c1@311.test",
        None,
        "#assign nobody@311.test\r\n\r\nTaking this one.",
    );
    let other = mail("Pat <pat@gmail.test>", "Library hours", "q2@gmail.test", None, "When?");
    for raw in [question.as_str(), command.as_str(), other.as_str()] {
        imap_append(&env.servers, INTAKE, "INBOX", raw.as_bytes()).await?;
    }
    let _daemon = env.daemon()?;

    let ana = wait_for_messages(&env.servers, ANA, "INBOX", 1, WAIT).await?;
    let (subject, text) = subject_and_text(&ana[0]);
    // The command answers no staff notice (none existed when it was written) and no trusted server
    // verified it: refused as a possible forgery, in the same batch as the two questions.
    assert!(text.contains("does not answer a staff notice"), "{subject}\n{text}");
    wait_for_messages(&env.servers, UNKNOWN, "INBOX", 1, WAIT).await?;
    wait_for_messages(&env.servers, INTAKE, "Processed", 3, WAIT).await?;
    let store = env.store().await?;
    let request = store.request_by_tracking(&t1.parse()?).await?.ok_or_else(|| anyhow::anyhow!("no {t1}"))?;
    assert_eq!(request.assignee, "", "nothing of the refused command was applied");
    assert_eq!(store.count_requests().await?, 2);
    assert!(imap_fetch_all(&env.servers, INTAKE, "INBOX").await?.is_empty());
    Ok(())
}
