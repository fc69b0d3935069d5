//! Mail hygiene on real Dovecot and Postfix: robots are never answered, a person's new questions
//! are all acknowledged while the same mail sent again is held (and staff are told), over-size mail is quarantined with one polite note and
//! the quarantine tools move it, and a real DSN from Postfix marks our mail failed, tells staff,
//! and is never answered.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

mod support;

use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(20);

fn with_outbox(env: &TestEnv, extra: &str) -> anyhow::Result<()> {
    let config = std::fs::read_to_string(&env.config_path)?;
    std::fs::write(&env.config_path, config.replace("auto_limit = 1000\n", extra))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_are_never_answered_and_only_a_repeated_mail_is_held() -> anyhow::Result<()> {
    let env = TestEnv::new(Security::Plain)?;
    with_outbox(&env, "auto_limit = 2\n")?;
    let robots = [
        ("Auto-Submitted: auto-replied\r\n", "Re: Water"),
        ("", "Out of Office: back Monday"),
        ("Precedence: bulk\r\nList-Id: <news.city.example>\r\n", "Newsletter"),
        ("X-Autoreply: yes\r\n", "Thanks for your mail"),
    ];
    for (i, (extra, subject)) in robots.iter().enumerate() {
        let raw = format!("{extra}{}", question(UNKNOWN, "Robot", subject, "beep", &format!("robot{i}@gmail.test")));
        imap_append(&env.servers, INTAKE, "INBOX", raw.as_bytes()).await?;
    }
    // Three different questions from one official within the hour, over auto_limit = 2: each is
    // a person's new question and is acknowledged. The same mail sent again is held back.
    for i in 0..3 {
        imap_append(
            &env.servers,
            INTAKE,
            "INBOX",
            question(DAYTON, "Jane", &format!("Question {i}"), &format!("Topic {i}?"), &format!("h{i}@daytonohio.gov"))
                .as_bytes(),
        )
        .await?;
    }
    imap_append(
        &env.servers,
        INTAKE,
        "INBOX",
        question(DAYTON, "Jane", "Question 0", "Topic 0?", "h0-again@daytonohio.gov").as_bytes(),
    )
    .await?;
    let daemon = env.daemon()?;
    wait_for_messages(&env.servers, INTAKE, "Processed", 8, WAIT).await?;
    wait_for_messages(&env.servers, DAYTON, "INBOX", 3, WAIT).await?;
    // Staff are told of the held acknowledgement: once that notice is in, everything is out.
    let staff = wait_for_messages(&env.servers, STAFF, "INBOX", 4, WAIT).await?;
    let store = env.store().await?;
    wait_quiet(&env, &store, WAIT).await?;

    assert!(imap_fetch_all(&env.servers, UNKNOWN, "INBOX").await?.is_empty(), "a robot got mail");
    assert_eq!(
        imap_fetch_all(&env.servers, DAYTON, "INBOX").await?.len(),
        3,
        "three questions, three acknowledgements"
    );
    let held_notice = staff.iter().map(|m| subject_and_text(m)).find(|(s, _)| s.contains("Not sent to the city"));
    let (_, text) = held_notice.ok_or_else(|| anyhow::anyhow!("staff were not told of the held acknowledgement"))?;
    assert!(text.contains("already acknowledged"), "{text}");
    assert!(store.inbound_counts().await?.contains(&("automatic".to_string(), 4)));
    assert_eq!(store.count_requests().await?, 4, "every question is still tracked");
    let again = store.list_requests(None, 1).await?.remove(0);
    let events = store.request_events(again.id).await?;
    let held = events
        .iter()
        .find(|e| e.event == "automatic mail not sent")
        .ok_or_else(|| anyhow::anyhow!("not recorded: {events:?}"))?;
    assert!(
        held.detail.contains("the same mail from mayor@daytonohio.gov was already acknowledged"),
        "{}",
        held.detail
    );
    assert!(!events.iter().any(|e| e.event == "acknowledgement queued"), "held back, yet said queued: {events:?}");
    let first = store.list_requests(None, 4).await?.pop().ok_or_else(|| anyhow::anyhow!("no first request"))?;
    assert_ne!(first.id, again.id);
    let first_events = store.request_events(first.id).await?;
    assert!(
        first_events.iter().any(|e| e.event == "acknowledgement queued" && e.detail == "ack_eligible"),
        "{first_events:?}"
    );
    assert!(daemon.log_text().contains("automatic mail not sent"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_size_mail_is_quarantined_with_one_polite_note_and_can_be_released() -> anyhow::Result<()> {
    let env = TestEnv::new(Security::Plain)?;
    let config = std::fs::read_to_string(&env.config_path)?;
    std::fs::write(
        &env.config_path,
        config.replace("poll_interval = \"2s\"\n", "poll_interval = \"2s\"\nmax_message_bytes = 20000\n"),
    )?;
    let big = "x".repeat(60_000);
    let raw = question(DAYTON, "Jane Mayor", "Budget spreadsheets", &big, "big@daytonohio.gov");
    imap_append(&env.servers, INTAKE, "INBOX", raw.as_bytes()).await?;
    imap_append(&env.servers, INTAKE, "INBOX", b"no headers at all, just words\r\n").await?;
    imap_append(
        &env.servers,
        INTAKE,
        "INBOX",
        question(DAYTON, "Jane Mayor", "Small one", "fits", "small@daytonohio.gov").as_bytes(),
    )
    .await?;
    let _daemon = env.daemon()?;

    let quarantined = wait_for_messages(&env.servers, INTAKE, "Quarantine", 2, WAIT).await?;
    assert_eq!(quarantined.len(), 2);
    let mayor = wait_for_messages(&env.servers, DAYTON, "INBOX", 2, WAIT).await?;
    let note = mayor
        .iter()
        .map(|m| subject_and_text(m))
        .find(|(s, _)| s == "Re: Budget spreadsheets")
        .ok_or_else(|| anyhow::anyhow!("no size note"))?;
    assert!(note.1.contains("is 61 KB, which is more than the 20 KB"), "{}", note.1);

    let out = env.cli(&["quarantine", "list"])?;
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(listed.contains("over the limit of 20000 bytes") && listed.contains("not an email message"), "{listed}");
    let id = listed
        .lines()
        .find(|l| l.contains("over the limit"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("0")
        .to_string();
    let out = env.cli(&["quarantine", "show", &id])?;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("big@daytonohio.gov"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = env.cli(&["quarantine", "release", &id, "--as", "ops@311.test"])?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(imap_fetch_all(&env.servers, INTAKE, "Quarantine").await?.len(), 1);
    // Who released it is in the audit log.
    let audit = env.store().await?.audit_log(10).await?;
    assert!(
        audit.iter().any(|(_, actor, action, detail)| actor == "ops@311.test"
            && action == "quarantine released"
            && *detail == format!("#{id}")),
        "{audit:?}"
    );
    let out = env.cli(&["quarantine", "release", &id])?;
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("already released"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_dsn_marks_our_mail_failed_tells_staff_and_is_not_answered() -> anyhow::Result<()> {
    let env = TestEnv::new(Security::Plain)?;
    let _daemon = env.daemon()?;
    // ghost@daytonohio.gov has no mailbox: Dovecot's LMTP refuses our acknowledgement with 550
    // 5.1.1, and Postfix mails a DSN back to the intake address (our envelope sender).
    let ghost = "ghost@daytonohio.gov";
    smtp_send(
        &env.servers,
        ghost,
        &[INTAKE],
        question(ghost, "Ghost", "Haunted houses", "Zoning?", "ghost1@daytonohio.gov").as_bytes(),
    )
    .await?;
    let staff = wait_for_messages(&env.servers, STAFF, "INBOX", 2, WAIT)
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", env.servers.log_tail()))?;
    let (subject, text) = subject_and_text(&staff[1]);
    assert!(subject.contains("Delivery failed"), "{subject}");
    assert!(text.contains("hard bounce 5.1.1") && text.contains(ghost), "{text}");

    let store = env.store().await?;
    let r = store.list_requests(None, 1).await?.remove(0);
    let rows = store.outbox_for_request(r.id).await?;
    let ack = rows.iter().find(|row| row.0 == "ack_eligible").ok_or_else(|| anyhow::anyhow!("{rows:?}"))?;
    assert_eq!(ack.1, "failed", "{rows:?}");
    assert!(ack.3.contains("5.1.1"), "{rows:?}");
    assert!(store.inbound_counts().await?.contains(&("bounce".to_string(), 1)));
    assert_eq!(store.count_requests().await?, 1, "the bounce opened no request");

    // A hard-bounced address gets no more automatic mail, and that is recorded.
    smtp_send(
        &env.servers,
        ghost,
        &[INTAKE],
        question(ghost, "Ghost", "Again", "?", "ghost2@daytonohio.gov").as_bytes(),
    )
    .await?;
    let second = eventually(WAIT, "the second request", || async {
        let rows = store.list_requests(None, 5).await?;
        Ok((rows.len() == 2).then(|| rows[0].clone()))
    })
    .await?;
    let events = eventually(WAIT, "the suppression to be recorded", || async {
        let ev = store.request_events(second.id).await?;
        Ok(ev.iter().any(|e| e.event == "automatic mail not sent").then_some(ev))
    })
    .await?;
    assert!(events.iter().any(|e| e.detail.contains("suppressed after a hard bounce")), "{events:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_attachment_twice_is_stored_once() -> anyhow::Result<()> {
    let env = TestEnv::new(Security::Plain)?;
    let memo: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
    for (i, name) in ["plan.pdf", "../../copy of plan.pdf"].iter().enumerate() {
        let headers = format!(
            "From: Jane <{DAYTON}>\r\nTo: {INTAKE}\r\nSubject: Plan {i}\r\nMessage-ID: <att{i}@daytonohio.gov>\r\n"
        );
        let raw = mail_with_attachment(&headers, "See the plan.", name, "application/pdf", &memo);
        imap_append(&env.servers, INTAKE, "INBOX", raw.as_bytes()).await?;
    }
    let _daemon = env.daemon()?;
    wait_for_messages(&env.servers, INTAKE, "Processed", 2, WAIT).await?;
    let store = env.store().await?;
    let (rows, blobs, bytes) = store.attachment_counts().await?;
    assert_eq!((rows, blobs, bytes), (2, 1, 30_000), "two attachments, one stored copy");
    let staff = wait_for_messages(&env.servers, STAFF, "INBOX", 2, WAIT).await?;
    let listed: String = staff.iter().map(|m| subject_and_text(m).1).collect();
    assert!(listed.contains("copy of plan.pdf") && !listed.contains("../"), "sanitised names reach staff: {listed}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_move_it_copies_deletes_and_expunges_and_retry_reprocesses() -> anyhow::Result<()> {
    let env = TestEnv::new(Security::Plain)?;
    // A server without MOVE (nor UIDPLUS is needed for the check below: Dovecot has it).
    env.servers.restart_imap_with_capabilities("IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE UIDPLUS")?;
    imap_append(
        &env.servers,
        INTAKE,
        "INBOX",
        b"Subject: no sender here\r\nMessage-ID: <nosender@x.test>\r\n\r\nHello\r\n",
    )
    .await?;
    let mut daemon = env.daemon()?;
    env.send_question(DAYTON, "Jane", "Sidewalks", "Who pays?").await?;
    wait_for_messages(&env.servers, DAYTON, "INBOX", 1, WAIT).await?;
    wait_for_messages(&env.servers, INTAKE, "Quarantine", 1, WAIT).await?;
    wait_for_messages(&env.servers, INTAKE, "Processed", 1, WAIT).await?;
    assert!(daemon.log_text().contains("move=false"), "the daemon saw no MOVE:\n{}", daemon.log_text());
    assert!(
        imap_fetch_all(&env.servers, INTAKE, "INBOX").await?.is_empty(),
        "COPY + \\Deleted + UID EXPUNGE emptied the inbox"
    );

    // retry: back to the inbox, handled again, quarantined again with a new record.
    let out = env.cli(&["quarantine", "retry", "1"])?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("moved to INBOX (retried)"));
    let store = env.store().await?;
    eventually(WAIT, "a second quarantine record", || async {
        Ok((store.list_quarantine().await?.len() == 2).then_some(()))
    })
    .await?;
    let rows = store.list_quarantine().await?;
    assert_eq!((rows[0].status.as_str(), rows[1].status.as_str()), ("retried", "held"));
    assert!(daemon.terminate(Duration::from_secs(15))?);
    Ok(())
}
