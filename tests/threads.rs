//! Tracked threads on real Dovecot and Postfix: follow-ups join their request (also with the
//! References dropped and the subject edited), a forward that quotes someone else's tag starts a
//! new request, staff answer by mail (reply-all included) and from the command line, and the
//! finished response, with its attachment byte for byte, lands under the official's question.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

mod support;

use std::time::Duration;

use intake311::domain::RequestStatus;
use sha2::{Digest as _, Sha256};
use support::*;

const WAIT: Duration = Duration::from_secs(20);
const ANA: &str = "ana@311.test";
const CLERK: &str = "clerk@daytonohio.gov";

fn tracking(n: u32) -> String {
    use chrono::Datelike as _;
    format!("311-{}-{n:04}", chrono::Utc::now().year())
}

/// A raw mail as an ordinary client writes it, with optional threading headers and extra headers.
fn mail(
    from: &str,
    to: &str,
    cc: Option<&str>,
    subject: &str,
    id: &str,
    in_reply_to: Option<&str>,
    body: &str,
) -> String {
    let mut h = format!("From: {from}\r\nTo: {to}\r\n");
    if let Some(cc) = cc {
        h.push_str(&format!("Cc: {cc}\r\n"));
    }
    h.push_str(&format!("Subject: {subject}\r\nMessage-ID: <{id}>\r\nDate: Thu, 26 Nov 2026 11:00:00 -0500\r\n"));
    if let Some(parent) = in_reply_to {
        h.push_str(&format!("In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\n"));
    }
    format!("{h}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n")
}

fn message_id(raw: &[u8]) -> String {
    header(raw, "Message-ID").unwrap_or_default().trim_matches(['<', '>']).to_string()
}

async fn setup() -> anyhow::Result<TestEnv> {
    let env = TestEnv::new(Security::Plain)?;
    for u in [ANA, CLERK] {
        env.servers.add_user(u)?;
    }
    let out = env.cli(&["staff", "add", ANA, "--name", "Ana Staff"])?;
    anyhow::ensure!(out.status.success(), "staff add: {}", String::from_utf8_lossy(&out.stderr));
    Ok(env)
}

async fn status_of(env: &TestEnv, t: &str) -> anyhow::Result<(RequestStatus, String)> {
    let store = env.store().await?;
    let r = store.request_by_tracking(&t.parse()?).await?.ok_or_else(|| anyhow::anyhow!("no request {t}"))?;
    Ok((r.status, r.assignee))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_join_their_request_and_staff_are_told() -> anyhow::Result<()> {
    let env = setup().await?;
    let _daemon = env.daemon()?;
    let q = "q-water@daytonohio.gov";
    let raw = mail(
        "Jane Mayor <mayor@daytonohio.gov>",
        INTAKE,
        Some(CLERK),
        "Water main financing",
        q,
        None,
        "How do cities pay?",
    );
    smtp_send(&env.servers, DAYTON, &[INTAKE, CLERK], raw.as_bytes()).await?;
    let t1 = tracking(1);

    // The staff notice opens the staff thread and never names the official in To or Cc.
    let staff = wait_for_messages(&env.servers, STAFF, "INBOX", 1, WAIT).await?;
    let (subject, text) = subject_and_text(&staff[0]);
    assert_eq!(subject, format!("[{t1}] New question from Dayton, OH: Water main financing"));
    assert!(text.contains("How do cities pay?") && text.contains("#respond") && text.contains("Due:"), "{text}");
    let to_cc =
        format!("{} {}", header(&staff[0], "To").unwrap_or_default(), header(&staff[0], "Cc").unwrap_or_default());
    assert!(!to_cc.contains("daytonohio.gov"), "staff notice addressed the city: {to_cc}");
    assert!(header(&staff[0], "Reply-To").unwrap_or_default().contains(INTAKE));
    let notice_id = message_id(&staff[0]);
    wait_for_messages(&env.servers, DAYTON, "INBOX", 1, WAIT).await?;

    // A follow-up whose client dropped In-Reply-To/References and whose subject was edited.
    let body = "Budget numbers: $2.1M over five years.\r\n\r\nOn Thu, Nov 26, 2026 at 10:00 AM 311 for Cities <intake@311.test> wrote:\r\n> Thank you for your question\r\n> Tracking: whatever";
    let raw = mail(
        "Jane Mayor <mayor@daytonohio.gov>",
        INTAKE,
        None,
        &format!("RE: AW: [{t1}] Water main - budget attached (edited)"),
        "f1@daytonohio.gov",
        None,
        body,
    );
    smtp_send(&env.servers, DAYTON, &[INTAKE], raw.as_bytes()).await?;
    let staff = wait_for_messages(&env.servers, STAFF, "INBOX", 2, WAIT).await?;
    let (subject, text) = subject_and_text(&staff[1]);
    assert!(subject.starts_with(&format!("[{t1}] Follow-up from Jane Mayor")), "{subject}");
    assert!(text.contains("$2.1M") && !text.contains("> Thank you"), "quoted history stripped: {text}");
    assert_eq!(
        header(&staff[1], "In-Reply-To").as_deref(),
        Some(format!("<{notice_id}>").as_str()),
        "same staff thread"
    );
    let mayor = wait_for_messages(&env.servers, DAYTON, "INBOX", 2, WAIT).await?;
    let (subject, text) = subject_and_text(&mayor[1]);
    assert!(subject.starts_with(&format!("[{t1}]")) && text.contains("added your message"), "{subject}\n{text}");

    // Someone else forwards mail quoting the tag: a new request, not a follow-up.
    let raw = mail(
        "Pat <pat@gmail.test>",
        INTAKE,
        None,
        &format!("Fwd: [{t1}] Water main financing"),
        "fwd@gmail.test",
        None,
        "FYI, can you help us too?",
    );
    smtp_send(&env.servers, UNKNOWN, &[INTAKE], raw.as_bytes()).await?;
    let pat = wait_for_messages(&env.servers, UNKNOWN, "INBOX", 1, WAIT).await?;
    assert!(subject_and_text(&pat[0]).0.starts_with(&format!("[{}]", tracking(2))), "{}", subject_and_text(&pat[0]).0);

    // A plus-address alone (no tag, no thread headers) also finds the request.
    let plus = format!("intake+{t1}@311.test");
    let raw = mail(
        "Jane Mayor <mayor@daytonohio.gov>",
        &plus,
        None,
        "one more thing",
        "p1@daytonohio.gov",
        None,
        "Also: grants?",
    );
    smtp_send(&env.servers, DAYTON, &[&plus], raw.as_bytes()).await?;
    let staff = wait_for_messages(&env.servers, STAFF, "INBOX", 3, WAIT).await?;
    assert!(subject_and_text(&staff[2]).1.contains("Also: grants?"));

    // The clerk the official copied may use the tag too.
    let raw = mail(
        CLERK,
        INTAKE,
        None,
        &format!("[{t1}] one more detail"),
        "c1@daytonohio.gov",
        None,
        "Our engineer is Sam.",
    );
    smtp_send(&env.servers, CLERK, &[INTAKE], raw.as_bytes()).await?;
    wait_for_messages(&env.servers, STAFF, "INBOX", 4, WAIT).await?;

    let store = env.store().await?;
    assert_eq!(store.count_requests().await?, 2);
    let kinds = store.inbound_counts().await?;
    assert!(kinds.contains(&("follow_up".to_string(), 3)), "{kinds:?}");
    let r = store.request_by_tracking(&t1.parse()?).await?.ok_or_else(|| anyhow::anyhow!("no request"))?;
    let events = store.request_events(r.id).await?;
    assert_eq!(events.iter().filter(|e| e.event == "follow-up").count(), 3, "{events:?}");
    // The official got one acknowledgement, two "added" notes, and no staff mail.
    let mayor = wait_for_messages(&env.servers, DAYTON, "INBOX", 3, WAIT).await?;
    assert_eq!(mayor.len(), 3);
    assert!(mayor.iter().all(|m| !subject_and_text(m).0.contains("Follow-up from")));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_answer_by_mail_and_the_response_threads_under_the_question() -> anyhow::Result<()> {
    let env = setup().await?;
    let _daemon = env.daemon()?;
    let q = "q-roads@daytonohio.gov";
    let raw = mail(
        "Jane Mayor <mayor@daytonohio.gov>",
        INTAKE,
        Some(CLERK),
        "Road salt contracts",
        q,
        None,
        "Who buys salt jointly?",
    );
    smtp_send(&env.servers, DAYTON, &[INTAKE, CLERK], raw.as_bytes()).await?;
    let t1 = tracking(1);
    let staff = wait_for_messages(&env.servers, STAFF, "INBOX", 1, WAIT).await?;
    let notice_id = message_id(&staff[0]);
    let notice_subject = subject_and_text(&staff[0]).0;
    wait_for_messages(&env.servers, DAYTON, "INBOX", 1, WAIT).await?;

    // Reply-all from staff: to the intake address and the staff list, quoting the notice.
    let body = "#assign me\r\n#reply\r\nCould you send the current contract?\r\n\r\nOn Thu, Nov 26, 2026, 311 for Cities wrote:\r\n> New request ... Who buys salt jointly?";
    let raw = mail(
        &format!("Ana Staff <{ANA}>"),
        &format!("{INTAKE}, {STAFF}"),
        None,
        &format!("Re: {notice_subject}"),
        "s1@311.test",
        Some(&notice_id),
        body,
    );
    smtp_send(&env.servers, ANA, &[INTAKE, STAFF], raw.as_bytes()).await?;
    let mayor = wait_for_messages(&env.servers, DAYTON, "INBOX", 2, WAIT).await?;
    let (subject, text) = subject_and_text(&mayor[1]);
    assert_eq!(subject, format!("[{t1}] Re: Road salt contracts"));
    assert!(text.contains("Dear Jane Mayor,") && text.contains("Could you send the current contract?"), "{text}");
    assert!(
        !text.contains("#assign") && !text.contains("#reply") && !text.contains("New request"),
        "only the body goes out: {text}"
    );
    assert_eq!(header(&mayor[1], "In-Reply-To").as_deref(), Some(format!("<{q}>").as_str()));
    assert_eq!(status_of(&env, &t1).await?, (RequestStatus::WaitingOnCity, ANA.to_string()));
    wait_for_messages(&env.servers, CLERK, "INBOX", 1, WAIT).await?; // the copied clerk

    // An unknown command: the staff member is told, nothing reaches the city.
    let raw =
        mail(ANA, INTAKE, None, &format!("Re: [{t1}] salt"), "s2@311.test", Some(&notice_id), "#frobnicate\r\nhello");
    smtp_send(&env.servers, ANA, &[INTAKE], raw.as_bytes()).await?;
    let ana = wait_for_messages(&env.servers, ANA, "INBOX", 1, WAIT).await?;
    let (subject, text) = subject_and_text(&ana[0]);
    assert!(subject.contains("Could not apply your command"), "{subject}");
    assert!(text.contains("unknown command #frobnicate") && text.contains("#respond"), "{text}");

    // The finished response with a PDF attachment, by mail.
    let pdf: Vec<u8> = (0..60_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let boundary = "b0undary";
    let encoded = base64_lines(&pdf);
    let raw = format!(
        "From: Ana Staff <{ANA}>\r\nTo: {INTAKE}\r\nSubject: Re: [{t1}] Road salt contracts\r\nMessage-ID: <s3@311.test>\r\n\
         In-Reply-To: <{notice_id}>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary={boundary}\r\n\r\n\
         --{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n#respond\r\nDear Mayor,\r\n\r\n**Three counties** buy salt jointly; see the memo.\r\n\r\n\
         --{boundary}\r\nContent-Type: application/pdf; name=\"salt-memo.pdf\"\r\nContent-Disposition: attachment; filename=\"salt-memo.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--{boundary}--\r\n"
    );
    smtp_send(&env.servers, ANA, &[INTAKE], raw.as_bytes()).await?;
    let mayor = wait_for_messages(&env.servers, DAYTON, "INBOX", 3, WAIT).await?;
    let response = &mayor[2];
    let parsed = mail_parser::MessageParser::default().parse(response).ok_or_else(|| anyhow::anyhow!("unparseable"))?;
    assert_eq!(parsed.subject(), Some(format!("[{t1}] Response: Road salt contracts").as_str()));
    assert_eq!(
        header(response, "In-Reply-To").as_deref(),
        Some(format!("<{q}>").as_str()),
        "threaded under the question"
    );
    assert!(header(response, "References").unwrap_or_default().contains(q));
    assert!(header(response, "Cc").unwrap_or_default().contains(CLERK), "the copied clerk is copied");
    assert!(header(response, "Auto-Submitted").is_none(), "a person wrote it");
    let att = parsed.attachments().next().ok_or_else(|| anyhow::anyhow!("no attachment"))?;
    assert_eq!(Sha256::digest(att.contents()), Sha256::digest(&pdf), "attachment byte-identical");
    let text = parsed.body_text(0).unwrap_or_default().to_string();
    assert!(text.contains("Three counties") && text.contains("Ana Staff"), "{text}");
    assert!(
        !text.contains("Dear Jane Mayor") && text.matches("Dear Mayor,").count() == 1,
        "Ana greeted the mayor herself, so the template does not: {text}"
    );
    assert!(parsed.body_html(0).unwrap_or_default().contains("<strong>Three counties</strong>"));
    assert_eq!(status_of(&env, &t1).await?.0, RequestStatus::Responded);

    // The official asks a question about the response: the request reopens.
    let raw = mail(
        "Jane Mayor <mayor@daytonohio.gov>",
        INTAKE,
        None,
        &format!("Re: [{t1}] Response: Road salt contracts"),
        "f2@daytonohio.gov",
        Some(&message_id(response)),
        "Thanks! One more question.",
    );
    smtp_send(&env.servers, DAYTON, &[INTAKE], raw.as_bytes()).await?;
    // Staff inbox: the notice, Ana's reply-all copy, then this follow-up's notice.
    let staff = wait_for_messages(&env.servers, STAFF, "INBOX", 3, WAIT).await?;
    assert!(subject_and_text(&staff[2]).0.contains("Follow-up from Jane Mayor"));
    assert_eq!(status_of(&env, &t1).await?.0, RequestStatus::InProgress);

    // No staff-only mail ever reached the official.
    for m in imap_fetch_all(&env.servers, DAYTON, "INBOX").await? {
        let (subject, text) = subject_and_text(&m);
        assert!(
            !subject.contains("New question from") && !subject.contains("Follow-up from") && !text.contains("#note"),
            "{subject}"
        );
    }

    // `requests show` tells the conversation in order: what each mail in adds (no quoted
    // history), what staff wrote to the city, and the automatic mail by kind only.
    let out = env.cli(&["requests", "show", &t1])?;
    assert!(out.status.success(), "{out:?}");
    let out = String::from_utf8_lossy(&out.stdout);
    let messages = out.split("\nMessages:\n").nth(1).and_then(|m| m.split("\nMail out:").next()).unwrap_or_default();
    let order = [
        "in  question",
        "| Who buys salt jointly?",
        "out ack_eligible",
        "out staff_new_request",
        &format!("in  staff_reply           from Ana Staff <{ANA}>"),
        "| Could you send the current contract?",
        "out reply",
        "| Could you send the current contract?",
        "| **Three counties** buy salt jointly",
        &format!("out {:<21} to mayor@daytonohio.gov, cc {CLERK}", "response"),
        "| **Three counties** buy salt jointly",
        "in  follow_up             from Jane Mayor <mayor@daytonohio.gov>",
        "| Thanks! One more question.",
    ];
    let mut rest = messages;
    for want in order {
        let at = rest.find(want).ok_or_else(|| anyhow::anyhow!("`{want}` missing or out of order in:\n{messages}"))?;
        rest = &rest[at + want.len()..];
    }
    assert!(!messages.contains("> New request"), "quoted history is left out:\n{messages}");
    assert!(!messages.contains("Thank you for your question"), "automatic mail shows no text:\n{messages}");
    let json = env.cli(&["requests", "show", &t1, "--json"])?;
    let json: serde_json::Value = serde_json::from_slice(&json.stdout)?;
    let list = json["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.first().map(|m| m["kind"].clone()), Some(serde_json::json!("question")), "{json}");
    assert_eq!(list.first().map(|m| m["text"].clone()), Some(serde_json::json!("Who buys salt jointly?")), "{json}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_does_what_mail_commands_do() -> anyhow::Result<()> {
    let env = setup().await?;
    let _daemon = env.daemon()?;
    env.send_question(DAYTON, "Jane Mayor", "Library hours", "What do peers do?").await?;
    wait_for_messages(&env.servers, DAYTON, "INBOX", 1, WAIT).await?;
    let t1 = tracking(1);
    let dir = tempfile::tempdir()?;
    let note = dir.path().join("note.txt");
    std::fs::write(&note, "Called the library director.")?;
    let body = dir.path().join("response.md");
    std::fs::write(&body, "Peer cities open **late on Thursdays**.")?;
    let memo = dir.path().join("hours memo.pdf");
    std::fs::write(&memo, b"%PDF-1.4 fake memo")?;

    let run = |args: &[&str]| -> anyhow::Result<(bool, String)> {
        let out = env.cli(args)?;
        Ok((
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        ))
    };
    let (ok, out) = run(&["requests", "note", &t1, "--body", &note.to_string_lossy(), "--as", ANA])?;
    assert!(ok && out.contains("note added"), "{out}");
    let (ok, out) = run(&["requests", "assign", &t1, ANA])?;
    assert!(ok && out.contains("assigned to ana@311.test"), "{out}");
    let (ok, out) = run(&["requests", "assign", &t1, "stranger@x.test"])?;
    assert!(!ok && out.contains("not on the staff list"), "{out}");
    // A new promised date: a business day three weeks on (weekends only: no holiday file here).
    use chrono::Datelike as _;
    let mut date = chrono::Utc::now().date_naive() + chrono::Days::new(21);
    while matches!(date.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun) {
        date = date.succ_opt().unwrap();
    }
    let saturday = date + chrono::Days::new(u64::from(5 - date.weekday().num_days_from_monday()));
    let (ok, out) = run(&["requests", "due", &t1, &saturday.to_string(), "--reason", "x", "--as", ANA])?;
    assert!(!ok && out.contains(&format!("{saturday} is a Saturday; choose a business day")), "{out}");
    let (ok, out) =
        run(&["requests", "due", &t1, &date.to_string(), "--reason", "The state's data is late.", "--as", ANA])?;
    assert!(ok && out.contains(&format!("due date {date}; the official is told")), "{out}");
    let mayor = wait_for_messages(&env.servers, DAYTON, "INBOX", 2, WAIT).await?;
    let told = mail_parser::MessageParser::default().parse(&mayor[1]).ok_or_else(|| anyhow::anyhow!("unparseable"))?;
    assert!(told.subject().unwrap_or_default().contains("New date for your question: Library hours"));
    let text = told.body_text(0).unwrap_or_default().to_string();
    assert!(
        text.contains(&date.format("%A, %B %-d, %Y").to_string()) && text.contains("The state's data is late."),
        "{text}"
    );
    let ack = mail_parser::MessageParser::default().parse(&mayor[0]).ok_or_else(|| anyhow::anyhow!("unparseable"))?;
    assert_eq!(told.in_reply_to().as_text(), ack.in_reply_to().as_text(), "in the official's thread");

    let (ok, out) = run(&[
        "requests",
        "respond",
        &t1,
        "--body",
        &body.to_string_lossy(),
        "--attach",
        &memo.to_string_lossy(),
        "--as",
        ANA,
    ])?;
    assert!(ok && out.contains("response queued"), "{out}");

    let mayor = wait_for_messages(&env.servers, DAYTON, "INBOX", 3, WAIT).await?;
    let parsed =
        mail_parser::MessageParser::default().parse(&mayor[2]).ok_or_else(|| anyhow::anyhow!("unparseable"))?;
    assert!(parsed.subject().unwrap_or_default().contains("Response: Library hours"));
    let att = parsed.attachments().next().ok_or_else(|| anyhow::anyhow!("no attachment"))?;
    assert_eq!(att.contents(), b"%PDF-1.4 fake memo");
    assert!(parsed.body_text(0).unwrap_or_default().contains("Ana Staff"), "signed with the staff name");

    let (ok, out) = run(&["requests", "close", &t1])?;
    assert!(ok && out.contains("closed"), "{out}");
    let (ok, out) = run(&["requests", "status", &t1, "new"])?;
    assert!(!ok && out.contains("cannot move from closed to new"), "{out}");
    let (ok, out) = run(&["requests", "show", &t1])?;
    assert!(ok, "{out}");
    for needle in [
        "note",
        "Called the library director.",
        "assigned",
        "response sent",
        "responded → closed",
        "cli",
        "Assignee    ana@311.test",
        &format!("→ {date}: The state's data is late."),
        "Clock       first response 0 business day(s), resolved in 0 business day(s)",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_a_closed_request_can_open_a_linked_one() -> anyhow::Result<()> {
    let env = setup().await?;
    let config = std::fs::read_to_string(&env.config_path)?;
    std::fs::write(
        &env.config_path,
        config.replace("[intake]\n", "[intake]\nreply_to_closed = \"new_request\"\nfollowup_note = false\n"),
    )?;
    let _daemon = env.daemon()?;
    let q = "q-parks@daytonohio.gov";
    let raw = mail("Jane Mayor <mayor@daytonohio.gov>", INTAKE, None, "Park rangers", q, None, "How many?");
    smtp_send(&env.servers, DAYTON, &[INTAKE], raw.as_bytes()).await?;
    let ack = wait_for_messages(&env.servers, DAYTON, "INBOX", 1, WAIT).await?;
    let t1 = tracking(1);
    let out = env.cli(&["requests", "close", &t1, "--as", ANA])?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let raw = mail(
        "Jane Mayor <mayor@daytonohio.gov>",
        INTAKE,
        None,
        &format!("Re: [{t1}] Park rangers"),
        "f@daytonohio.gov",
        Some(&message_id(&ack[0])),
        "A new question on rangers' pay.",
    );
    smtp_send(&env.servers, DAYTON, &[INTAKE], raw.as_bytes()).await?;
    let mayor = wait_for_messages(&env.servers, DAYTON, "INBOX", 2, WAIT).await?;
    let t2 = tracking(2);
    assert!(subject_and_text(&mayor[1]).0.starts_with(&format!("[{t2}]")), "a new acknowledgement for a new request");
    assert_eq!(status_of(&env, &t1).await?.0, RequestStatus::Closed, "the old request stays closed");
    let out = env.cli(&["requests", "show", &t2])?;
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains(&format!("Follows     {t1}")), "{shown}");
    Ok(())
}
