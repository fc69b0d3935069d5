//! Keeping the promise, against real Dovecot and Postfix: a holiday file and a time zone in the
//! config; questions arriving before Thanksgiving and on a Saturday get due dates that skip the
//! holidays and the weekend; `deadlines run --at` moments before, on and after the due dates
//! send each reminder (to the assignee, or to the staff address when nobody is assigned) and
//! each day's digest exactly once, and nothing when run twice; `requests list --overdue` and
//! `--due-within` list the same requests. Runs on both engines.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

mod support;

use std::time::Duration;

use support::mailservers::imap_append_at;
use support::*;

const WAIT: Duration = Duration::from_secs(60);
const ANA: &str = "ana@311.test";

fn question(subject: &str, id: &str) -> String {
    format!(
        "From: Jane Mayor <{DAYTON}>\r\nTo: {INTAKE}\r\nSubject: {subject}\r\nMessage-ID: <{id}@daytonohio.gov>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nWhat do peer cities do?\r\n"
    )
}

fn parse(raw: &[u8]) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default().parse(raw).expect("parses")
}

fn subjects(mails: &[Vec<u8>]) -> Vec<String> {
    mails.iter().map(|m| parse(m).subject().unwrap_or_default().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_and_digests_go_out_once_on_business_days_around_the_holidays() -> anyhow::Result<()> {
    let env = TestEnv::new(Security::Plain)?;
    env.servers.add_user(ANA)?;
    let holidays = repo_root().join("config/holidays.us-federal.txt");
    env.configure("intake", "timezone = \"America/Chicago\"")?;
    env.configure("deadlines", &format!("holidays = \"{}\"", holidays.display()))?;
    let out = env.cli(&["staff", "add", ANA, "--name", "Ana Staff"])?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Wednesday 25 November 2026, the day before Thanksgiving, and Saturday 7 November, before
    // Veterans Day (Wednesday 11 November), in Dayton's time zone. (Dates in the past: Dovecot
    // takes a future INTERNALDATE as now.)
    imap_append_at(&env.servers, INTAKE, question("Snow routes", "a").as_bytes(), "25-Nov-2026 10:00:00 -0600").await?;
    imap_append_at(&env.servers, INTAKE, question("Pool hours", "b").as_bytes(), "07-Nov-2026 10:00:00 -0600").await?;
    {
        let _daemon = env.daemon()?;
        wait_for_messages(&env.servers, DAYTON, "INBOX", 2, WAIT).await?;
        wait_for_messages(&env.servers, STAFF, "INBOX", 2, WAIT).await?;
    }
    let acks = wait_for_messages(&env.servers, DAYTON, "INBOX", 2, WAIT).await?;
    let mut text: Vec<String> = acks.iter().map(|m| parse(m).body_text(0).unwrap_or_default().to_string()).collect();
    let (a, b) = ("311-2026-0001", "311-2026-0002");
    // The two acknowledgements are sent in parallel: they may arrive in either order.
    text.sort_by_key(|t| !t.contains(a));
    // Ten business days after 25 November, without Thanksgiving: Thursday 10 December
    // (weekends alone would give Wednesday 9 December).
    assert!(text[0].contains(a) && text[0].contains("Thursday, December 10, 2026"), "{text:?}");
    // After Saturday 7 November, without Veterans Day: Monday 23 November (not Friday 20).
    assert!(text[1].contains(b) && text[1].contains("Monday, November 23, 2026"), "{text:?}");
    let out = env.cli(&["requests", "assign", a, ANA, "--as", ANA])?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let run = |at: &str| -> anyhow::Result<String> {
        let out = env.cli(&["deadlines", "run", "--at", at])?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        anyhow::ensure!(out.status.success(), "deadlines run --at {at}: {text}");
        Ok(text)
    };
    let staff_before = 2; // the two new-request notices

    // Before the digest time, and on a weekend: nothing.
    assert!(run("2026-12-08T07:59")?.contains("nothing to do (before deadlines.digest_at 08:00)"));
    assert!(run("2026-12-12T10:00")?.contains("nothing to do (not a business day)"));
    // Tuesday 8 December, 8:00: A (Ana's) has two business days left; B, unassigned, is ten
    // business days overdue, so the staff address is reminded.
    let out = run("2026-12-08T08:00")?;
    assert!(out.contains(&format!("sent remind_before {a} to {ANA} (due in 2 business days)")), "{out}");
    assert!(out.contains(&format!("sent overdue {b} to {STAFF} (overdue by 10 business days)")), "{out}");
    assert!(
        out.contains(&format!(
            "sent digest to {STAFF} (1 overdue, 1 due in the next three business days, 1 unassigned)"
        )),
        "{out}"
    );
    // The same moment again, and later that day: nothing more.
    let again = run("2026-12-08T08:00")?;
    assert!(again.contains("0 sent, 3 already sent before"), "{again}");
    assert!(run("2026-12-08T16:00")?.contains("0 sent"), "once a day");
    // Wednesday: one business day left, but the early reminder was sent: only the digest.
    let wed = run("2026-12-09T08:30")?;
    let sent: Vec<&str> = wed.lines().filter(|l| l.starts_with("sent ")).collect();
    assert!(sent.len() == 1 && sent[0].starts_with("sent digest"), "{wed}");
    // Thursday 10 December: due today.
    let thu = run("2026-12-10T09:00")?;
    assert!(thu.contains(&format!("sent due_today {a} to {ANA} (due today)")), "{thu}");
    // Friday 11 December: overdue by one business day, once.
    let fri = run("2026-12-11T08:00")?;
    assert!(fri.contains(&format!("sent overdue {a} to {ANA} (overdue by 1 business day)")), "{fri}");
    assert!(fri.contains("2 overdue, 1 unassigned"), "{fri}");
    assert!(run("2026-12-14T08:00")?.contains(&format!("already sent overdue:{}", request_id(&env, a).await?)));

    // What arrived: three reminders for Ana, in the request's staff thread; one reminder and
    // five digests for the staff address.
    let ana = wait_for_messages(&env.servers, ANA, "INBOX", 3, WAIT).await?;
    assert_eq!(
        subjects(&ana),
        [
            format!("[{a}] Reminder: due in 2 business days: Snow routes"),
            format!("[{a}] Reminder: due today: Snow routes"),
            format!("[{a}] Reminder: overdue by 1 business day: Snow routes"),
        ]
    );
    let staff = wait_for_messages(&env.servers, STAFF, "INBOX", staff_before + 6, WAIT).await?;
    let reminders: Vec<String> = subjects(&staff).into_iter().filter(|s| s.contains("Reminder")).collect();
    assert_eq!(reminders, [format!("[{b}] Reminder: overdue by 10 business days: Pool hours")]);
    let digests: Vec<&Vec<u8>> =
        staff.iter().filter(|m| parse(m).subject().unwrap_or_default().contains("daily digest")).collect();
    assert_eq!(digests.len(), 5, "one each business day 8, 9, 10, 11, 14 December: {:?}", subjects(&staff));
    let friday = parse(digests[3]);
    assert_eq!(
        friday.subject().unwrap_or_default(),
        "311 for Cities daily digest, Friday, December 11, 2026: 2 overdue, 1 unassigned"
    );
    let body = friday.body_text(0).unwrap_or_default().to_string();
    let overdue = body.split("Unassigned").next().unwrap();
    assert!(
        overdue.contains("Overdue (2)") && overdue.contains("Snow routes") && overdue.contains("Dayton, OH"),
        "{body}"
    );
    let (at_b, at_a) = (overdue.find(b).expect("B listed"), overdue.find(a).expect("A listed"));
    assert!(at_b < at_a, "oldest due first: {body}");
    assert!(overdue.contains("ana@311.test · overdue by 1 business day"), "{body}");
    assert!(overdue.contains("unassigned · overdue by 13 business days"), "{body}");
    let unassigned = body.split("Unassigned (1)").nth(1).expect("an Unassigned section");
    assert!(unassigned.contains(b) && !unassigned.contains(a), "{body}");

    // The same requests on the command line.
    let overdue = env.cli(&["requests", "list", "--overdue", "--as-of", "2026-12-11"])?;
    let overdue = String::from_utf8_lossy(&overdue.stdout).to_string();
    assert!(overdue.contains(a) && overdue.contains(b) && overdue.contains("2 request(s)"), "{overdue}");
    let soon = env.cli(&["requests", "list", "--due-within", "3", "--as-of", "2026-12-08"])?;
    let soon = String::from_utf8_lossy(&soon.stdout).to_string();
    assert!(soon.contains(a) && soon.contains("2026-12-10") && !soon.contains(b), "{soon}");
    let timeline = env.cli(&["requests", "show", a])?;
    let timeline = String::from_utf8_lossy(&timeline.stdout).to_string();
    assert_eq!(timeline.matches("reminder sent").count(), 3, "{timeline}");
    Ok(())
}

async fn request_id(env: &TestEnv, tracking: &str) -> anyhow::Result<i64> {
    let store = env.store().await?;
    let row = store.request_by_tracking(&tracking.parse()?).await?.expect("request");
    store.close().await;
    Ok(row.id)
}
