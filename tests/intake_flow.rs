//! End to end on real Dovecot and Postfix: a question mailed by SMTP becomes a tracked request,
//! the right acknowledgement arrives in the official's IMAP inbox, and the question moves to
//! the processed folder. Also: restarts and a second daemon duplicate nothing, TLS paths, an
//! SMTP outage, and a message that cannot be parsed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

mod support;

use std::time::Duration;

use intake311::domain::{Eligibility, RequestStatus};
use support::*;

const WAIT: Duration = Duration::from_secs(20);

fn year() -> i32 {
    use chrono::Datelike as _;
    chrono::Utc::now().year()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_outcome_gets_its_own_acknowledgement() -> anyhow::Result<()> {
    let env = TestEnv::new(Security::Plain)?;
    let _daemon = env.daemon()?;

    let q_dayton = env
        .send_question(DAYTON, "Jane Mayor", "Water main replacement financing", "How do cities pay for this?")
        .await?;
    let ack = wait_for_messages(&env.servers, DAYTON, "INBOX", 1, WAIT).await?;
    let (subject, text) = subject_and_text(&ack[0]);
    let tracking = format!("311-{}-0001", year());
    assert_eq!(subject, format!("[{tracking}] Re: Water main replacement financing"));
    assert!(text.contains(&tracking) && text.contains("Dayton, OH") && text.contains("Response by"), "{text}");
    assert_eq!(header(&ack[0], "In-Reply-To").as_deref(), Some(format!("<{q_dayton}>").as_str()));
    assert!(header(&ack[0], "References").unwrap_or_default().contains(&q_dayton));
    assert_eq!(header(&ack[0], "Auto-Submitted").as_deref(), Some("auto-replied"));
    let content_type = header(&ack[0], "Content-Type").unwrap_or_default();
    assert!(content_type.contains("multipart/alternative"), "{content_type}");

    env.send_question(SPRINGFIELD_MO, "Sam Clerk", "Police recruitment", "Ideas?").await?;
    let ack = wait_for_messages(&env.servers, SPRINGFIELD_MO, "INBOX", 1, WAIT).await?;
    let (subject, text) = subject_and_text(&ack[0]);
    assert!(subject.ends_with("Re: Police recruitment"), "{subject}");
    assert!(text.contains("Springfield, MO is not among them"), "{text}");

    env.send_question(UNKNOWN, "Pat", "Re: Moving to a 311 number", "We want 311.").await?;
    let ack = wait_for_messages(&env.servers, UNKNOWN, "INBOX", 1, WAIT).await?;
    let (subject, text) = subject_and_text(&ack[0]);
    assert!(subject.ends_with("] Re: Moving to a 311 number"), "no doubled Re: {subject}");
    assert!(text.contains("which city") && text.contains("name and state"), "{text}");

    let store = env.store().await?;
    let requests = store.list_requests(None, 10).await?;
    assert_eq!(requests.len(), 3);
    let by_official = |o: &str| requests.iter().find(|r| r.official_email == o).cloned();
    let dayton = by_official(DAYTON).ok_or_else(|| anyhow::anyhow!("no Dayton request"))?;
    assert_eq!(dayton.tracking, tracking);
    assert_eq!(dayton.status, RequestStatus::Acknowledged);
    assert_eq!(dayton.eligibility, Eligibility::Eligible);
    assert_eq!(dayton.city.as_deref(), Some("Dayton, OH"));
    assert_eq!(dayton.eligibility_reason, "domain daytonohio.gov → Dayton, OH (eligible until 2027-06-30)");
    let mo = by_official(SPRINGFIELD_MO).ok_or_else(|| anyhow::anyhow!("no Springfield request"))?;
    assert_eq!((mo.status, mo.eligibility), (RequestStatus::Ineligible, Eligibility::NotEligible));
    let unknown = by_official(UNKNOWN).ok_or_else(|| anyhow::anyhow!("no unknown request"))?;
    assert_eq!((unknown.status, unknown.eligibility), (RequestStatus::NeedsCity, Eligibility::Unknown));

    // The questions left the inbox for the processed folder, after their commit.
    let processed = wait_for_messages(&env.servers, INTAKE, "Processed", 3, WAIT).await?;
    assert_eq!(processed.len(), 3);
    assert!(imap_fetch_all(&env.servers, INTAKE, "INBOX").await?.is_empty());

    // The CLI shows the request with its timeline and the sent acknowledgement.
    let out = env.cli(&["requests", "show", &tracking])?;
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && shown.contains("ack_eligible") && shown.contains("sent"), "{shown}");
    let out = env.cli(&["requests", "list", "--status", "needs_city", "--json"])?;
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_and_a_second_daemon_duplicate_nothing() -> anyhow::Result<()> {
    let env = TestEnv::new(Security::Plain)?;
    let mut first = env.daemon()?;
    let id = env.send_question(DAYTON, "Jane Mayor", "Road salt contracts", "Who buys salt jointly?").await?;
    wait_for_messages(&env.servers, DAYTON, "INBOX", 1, WAIT).await?;
    assert!(first.terminate(Duration::from_secs(15))?, "clean exit on SIGTERM; log:\n{}", first.log_text());

    // The same message delivered again (same Message-ID, new UID), then two daemons at once.
    let again = question(DAYTON, "Jane Mayor", "Road salt contracts", "Who buys salt jointly?", &id);
    imap_append(&env.servers, INTAKE, "INBOX", again.as_bytes()).await?;
    let _a = env.daemon()?;
    let _b = env.daemon()?;
    for i in 0..5 {
        env.send_question(UNKNOWN, "Pat", &format!("Question {i}"), "Body").await?;
    }
    wait_for_messages(&env.servers, UNKNOWN, "INBOX", 5, WAIT).await?;
    wait_for_messages(&env.servers, INTAKE, "Processed", 7, WAIT).await?;
    // Every message is committed (it is in Processed); once nothing is in flight, a duplicate
    // would be in the store and in the inboxes.
    let store = env.store().await?;
    wait_quiet(&env, &store, WAIT).await?;

    assert_eq!(store.count_requests().await?, 6, "1 + 5 requests");
    assert_eq!(imap_fetch_all(&env.servers, DAYTON, "INBOX").await?.len(), 1, "one acknowledgement only");
    assert_eq!(imap_fetch_all(&env.servers, UNKNOWN, "INBOX").await?.len(), 5, "one acknowledgement each");
    let kinds = store.inbound_counts().await?;
    assert!(kinds.contains(&("duplicate".to_string(), 1)), "{kinds:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_paths_with_a_private_ca_and_smtp_auth() -> anyhow::Result<()> {
    let env = TestEnv::new(Security::Tls)?;
    let out = env.cli(&["check"])?;
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "check failed:\n{report}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        report.contains("(implicit) logged in") && report.contains("(starttls) EHLO ok, authenticated"),
        "{report}"
    );

    let _daemon = env.daemon()?;
    env.send_question(DAYTON, "Jane Mayor", "Broadband grants", "Which grants?").await?;
    let ack = wait_for_messages(&env.servers, DAYTON, "INBOX", 1, WAIT).await?;
    assert!(subject_and_text(&ack[0]).0.ends_with("Re: Broadband grants"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgement_goes_out_after_smtp_comes_back() -> anyhow::Result<()> {
    let env = TestEnv::new(Security::Plain)?;
    env.send_question(DAYTON, "Jane Mayor", "Snow removal", "Budget ideas?").await?;
    wait_for_messages(&env.servers, INTAKE, "INBOX", 1, WAIT).await?;
    env.servers.stop_smtp()?;
    let daemon = env.daemon()?;

    let store = env.store().await?;
    let tracking = format!("311-{}-0001", year()).parse()?;
    let error = eventually(WAIT, "a failed send attempt", || async {
        let Some(r) = store.request_by_tracking(&tracking).await? else { return Ok(None) };
        let rows = store.outbox_for_request(r.id).await?;
        Ok(rows.first().filter(|row| row.1 == "pending" && !row.3.is_empty()).map(|row| row.3.clone()))
    })
    .await?;
    assert!(!error.is_empty());

    env.servers.start_smtp()?;
    let ack = wait_for_messages(&env.servers, DAYTON, "INBOX", 1, WAIT)
        .await
        .map_err(|e| anyhow::anyhow!("{e}; daemon log:\n{}", daemon.log_text()))?;
    assert!(subject_and_text(&ack[0]).0.contains("Snow removal"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unparseable_mail_is_quarantined_and_the_daemon_goes_on() -> anyhow::Result<()> {
    let env = TestEnv::new(Security::Plain)?;
    imap_append(&env.servers, INTAKE, "INBOX", b"this is not an email at all, just text with no header\r\n").await?;
    imap_append(&env.servers, INTAKE, "INBOX", b"Subject: no sender\r\nMessage-ID: <x@y>\r\n\r\nHello\r\n").await?;
    let _daemon = env.daemon()?;
    env.send_question(DAYTON, "Jane Mayor", "Park maintenance", "Volunteers?").await?;

    wait_for_messages(&env.servers, DAYTON, "INBOX", 1, WAIT).await?;
    let quarantined = wait_for_messages(&env.servers, INTAKE, "Quarantine", 2, WAIT).await?;
    assert_eq!(quarantined.len(), 2);
    let store = env.store().await?;
    let records = store.list_quarantine().await?;
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(records.iter().any(|r| r.reason.contains("no From")), "{records:?}");
    assert!(records.iter().all(|r| !r.reason.is_empty()));
    assert_eq!(store.count_requests().await?, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_a_wrong_password_port_and_template() -> anyhow::Result<()> {
    let env = TestEnv::new(Security::Plain)?;
    let out = env.cli(&["check"])?;
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{report}");
    // config, timezone, topics, database, templates (built in: the test config names no
    // overrides), imap, smtp; and a warning that no trusted Authentication-Results id is set.
    assert_eq!(report.lines().filter(|l| l.starts_with("ok")).count(), 7, "{report}");
    assert!(report.lines().any(|l| l.starts_with("WARN senders")), "{report}");
    assert!(report.contains("ok   templates built-in templates compiled"), "{report}");

    let base = std::fs::read_to_string(&env.config_path)?;
    let run_with = |text: String| -> anyhow::Result<(bool, String)> {
        std::fs::write(&env.config_path, text)?;
        let out = env.cli(&["check"])?;
        Ok((out.status.success(), String::from_utf8_lossy(&out.stdout).to_string()))
    };

    let (ok, report) = run_with(base.replace(&format!("password = \"{PASSWORD}\""), "password = \"wrong\""))?;
    let imap_line = report.lines().find(|l| l.contains("imap")).unwrap_or_default().to_string();
    assert!(!ok && imap_line.starts_with("FAIL") && imap_line.contains("login as intake@311.test refused"), "{report}");

    let (ok, report) = run_with(base.replace(&format!("port = {}", env.servers.smtp_port), "port = 1"))?;
    let smtp_line = report.lines().find(|l| l.contains("smtp")).unwrap_or_default().to_string();
    assert!(!ok && smtp_line.starts_with("FAIL") && smtp_line.contains("127.0.0.1:1"), "{report}");
    assert!(smtp_line.to_lowercase().contains("refused"), "{smtp_line}");

    let templates = tempfile::tempdir()?;
    let overrides =
        base.replace("[intake]\n", &format!("[intake]\ntemplates_dir = \"{}\"\n", templates.path().display()));
    copy_dir(&repo_root().join("templates"), templates.path())?;
    // A misspelt file name in the override folder is refused, naming it (it would never apply).
    let typo = templates.path().join("ack_not_eligble.html.hbs");
    std::fs::rename(templates.path().join("ack_not_eligible.html.hbs"), &typo)?;
    let (ok, report) = run_with(overrides.clone())?;
    let line = report.lines().find(|l| l.contains("templates")).unwrap_or_default().to_string();
    assert!(
        !ok && line.starts_with("FAIL") && line.contains("ack_not_eligble.html.hbs has no built-in template"),
        "{report}"
    );
    std::fs::remove_file(&typo)?;

    // A misspelt field compiles, but `check` renders every mail with sample data and names it.
    copy_dir(&repo_root().join("templates"), templates.path())?;
    let file = templates.path().join("reply.html.hbs");
    std::fs::write(&file, std::fs::read_to_string(&file)?.replace("{{staff_name}}", "{{staf_name}}"))?;
    let (ok, report) = run_with(overrides.clone())?;
    let line = report.lines().find(|l| l.contains("templates")).unwrap_or_default().to_string();
    assert!(
        !ok && line.starts_with("FAIL") && line.contains("reply.html.hbs") && line.contains("staf_name"),
        "{report}"
    );
    Ok(())
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
