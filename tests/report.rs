//! The monthly report against real Dovecot and Postfix: questions from three cities and an
//! unknown sender arrive on chosen days of last month, staff confirm topics on two (a third keeps
//! the topic suggested from its subject), respond to two now with `requests respond` and refer
//! one to an expert with `requests refer`, and then `report --month` gives the right counts as
//! JSON and CSV, writes
//! a standalone HTML page with its charts inside, and `deadlines run --at` the first business day
//! of the next month mails the report to the admin once, with text, HTML and the charts as
//! inline PNG parts referenced by `cid:`; a second run sends nothing. Runs on both engines.
//!
//! The days are relative to today (Dovecot takes a future INTERNALDATE as now), in Chicago.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

mod support;

use std::time::Duration;

use chrono::{Datelike as _, NaiveDate, TimeZone as _};
use intake311::deadlines::Calendar;
use intake311::report::Month;
use mail_parser::MimeHeaders as _;
use serde_json::Value;
use support::mailservers::imap_append_at;
use support::*;

const WAIT: Duration = Duration::from_secs(60);
const ANA: &str = "ana@311.test";
const BOSS: &str = "boss@311.test";
const LINCOLN: &str = "clerk@townoflincolnwi.gov";
const LEE: &str = "lee@experts.test";
const TZ: chrono_tz::Tz = chrono_tz::America::Chicago;

fn question(from: &str, subject: &str, id: &str) -> String {
    format!(
        "From: Official <{from}>\r\nTo: {INTAKE}\r\nSubject: {subject}\r\nMessage-ID: <{id}@report.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nWhat do peer cities do?\r\n"
    )
}

/// `02-Nov-2026 10:00:00 -0600`: 10:00 on `day` in Chicago, as IMAP writes an INTERNALDATE.
fn internal_date(day: NaiveDate) -> String {
    let local = TZ.from_local_datetime(&day.and_hms_opt(10, 0, 0).unwrap()).earliest().unwrap();
    local.format("%d-%b-%Y %H:%M:%S %z").to_string()
}

fn ok(out: std::process::Output, what: &str) -> String {
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{what}: {text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

/// Whether a `deadlines run` output sent a report (rather than finding it already sent).
fn sent_report(run: &str) -> bool {
    run.lines().any(|l| l.starts_with("sent report"))
}

fn names(v: &Value) -> Vec<(String, i64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["count"].as_i64().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_report_counts_the_month_and_is_mailed_to_the_admin_once() -> anyhow::Result<()> {
    let env = TestEnv::new(Security::Plain)?;
    for user in [ANA, BOSS, LINCOLN, LEE] {
        env.servers.add_user(user)?;
    }
    let holidays = repo_root().join("config/holidays.us-federal.txt");
    env.configure("intake", "timezone = \"America/Chicago\"")?;
    env.configure("deadlines", &format!("holidays = \"{}\"", holidays.display()))?;
    ok(env.cli(&["staff", "add", ANA, "--name", "Ana Staff"])?, "staff add");
    ok(env.cli(&["staff", "add", BOSS, "--name", "Bo Boss", "--role", "admin"])?, "staff add admin");
    let cal = Calendar::load(&holidays)?;

    // Last month (P) and this month (C), as the deployment's time zone counts them.
    let today = chrono::Utc::now().with_timezone(&TZ).date_naive();
    let this = Month::of(today);
    let last = this.prev();
    let day = |n: u32| NaiveDate::from_ymd_opt(last.first_day().year(), last.first_day().month(), n).unwrap();
    // Early in P (due in P, so overdue when it ended), from Dayton, Lincoln, Springfield MO (not
    // eligible) and an unknown sender; and one from Dayton on P's last day (due in C).
    let questions = [
        (DAYTON, "Snow routes", day(2)),
        (DAYTON, "Pool hours", day(3)),
        (LINCOLN, "Road salt", day(4)),
        (SPRINGFIELD_MO, "Library fines", day(5)),
        (UNKNOWN, "Bike lanes", day(6)),
        (DAYTON, "Tree permits", last.last_day()),
    ];
    for (i, (from, subject, on)) in questions.iter().enumerate() {
        imap_append_at(&env.servers, INTAKE, question(from, subject, &format!("r{i}")).as_bytes(), &internal_date(*on))
            .await?;
    }
    {
        let _daemon = env.daemon()?;
        for (who, acks) in [(DAYTON, 3), (LINCOLN, 1), (SPRINGFIELD_MO, 1), (UNKNOWN, 1)] {
            wait_for_messages(&env.servers, who, "INBOX", acks, WAIT).await?;
        }
    }
    let list: Value = serde_json::from_str(&ok(env.cli(&["requests", "list", "--json"])?, "requests list"))?;
    let tracking = |subject: &str| -> String {
        let row = list.as_array().unwrap().iter().find(|r| r["subject"] == subject).expect(subject);
        row["tracking"].as_str().unwrap().to_string()
    };
    let (snow, pool, salt, trees) =
        (tracking("Snow routes"), tracking("Pool hours"), tracking("Road salt"), tracking("Tree permits"));
    let due_of = |t: &str| -> NaiveDate {
        let row = list.as_array().unwrap().iter().find(|r| r["tracking"] == t).unwrap();
        row["due_date"].as_str().unwrap().parse().unwrap()
    };

    // Topics: staff confirm one on Snow routes and two on Pool hours; Road salt keeps the one
    // suggested from its subject ("road": infrastructure); the others have none.
    ok(env.cli(&["requests", "topic", &snow, "infrastructure", "--as", ANA])?, "topic");
    ok(env.cli(&["requests", "topic", &pool, "housing", "finance", "--as", ANA])?, "topics");
    // Staff respond to two of them now (in C), and refer a third to an expert.
    let body = env.dir.path().join("answer.md");
    std::fs::write(&body, "Dear official,\n\nPeer cities share their routes.")?;
    for t in [&snow, &salt] {
        ok(env.cli(&["requests", "respond", t, "--body", &body.to_string_lossy(), "--as", ANA])?, "respond");
    }
    ok(env.cli(&["experts", "add", LEE, "--name", "Dr. Lee", "--topics", "infrastructure", "--as", ANA])?, "expert");
    ok(
        env.cli(&["requests", "refer", &trees, LEE, "--note", "Dr. Lee wrote the state's guide.", "--as", ANA])?,
        "refer",
    );

    // Last month's figures.
    let p: Value =
        serde_json::from_str(&ok(env.cli(&["report", "--month", &last.to_string(), "--format", "json"])?, "report P"))?;
    assert_eq!(p["month"], last.to_string());
    assert_eq!(p["received"], 6, "{p:#}");
    assert_eq!(p["eligibility"], serde_json::json!({"eligible": 4, "not_eligible": 1, "unknown": 1}));
    assert_eq!(
        names(&p["by_city"]),
        [
            ("Dayton, OH".into(), 3),
            ("Lincoln, WI".into(), 1),
            ("Springfield, MO".into(), 1),
            ("unknown city".into(), 1)
        ]
    );
    assert_eq!(
        names(&p["by_topic"]),
        [("(no topic)".into(), 3), ("infrastructure".into(), 2), ("finance".into(), 1), ("housing".into(), 1)]
    );
    assert_eq!(p["first_time_cities"], serde_json::json!(["Dayton, OH", "Lincoln, WI", "Springfield, MO"]));
    assert_eq!((p["responses_sent"].as_i64(), p["days_to_response"]["requests"].as_i64()), (Some(0), Some(0)));
    // Overdue when P ended: the three early eligible questions (two answered only in C); not
    // the ineligible one, not the one without a city, not the one due in C.
    let counted_on = cal.on_or_after(this.first_day());
    let overdue: Vec<(String, i64)> = p["overdue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["tracking"].as_str().unwrap().to_string(), o["days_over"].as_i64().unwrap()))
        .collect();
    let over = |t: &str| -cal.business_days_between(counted_on, due_of(t));
    let mut expected = vec![(snow.clone(), over(&snow)), (pool.clone(), over(&pool)), (salt.clone(), over(&salt))];
    expected.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    assert_eq!(overdue, expected, "{p:#}");
    assert_eq!(p["trend"].as_array().map(Vec::len), Some(12));
    assert_eq!(p["trend"][11], serde_json::json!({"month": last.to_string(), "received": 6, "answered": 0}));

    // This month's: the two responses and the referral, their business days; the two answered
    // after their due dates in P were late, the referral on time unless today is past its date.
    let c: Value =
        serde_json::from_str(&ok(env.cli(&["report", "--month", &this.to_string(), "--format", "json"])?, "report C"))?;
    assert_eq!((c["received"].as_i64(), c["responses_sent"].as_i64()), (Some(0), Some(2)), "{c:#}");
    assert_eq!(c["referrals_sent"], 1);
    let mut days = [day(2), day(4), last.last_day()].map(|d| cal.business_days_between(d, today));
    days.sort();
    assert_eq!(c["days_to_response"]["requests"], 3);
    assert_eq!(c["days_to_response"]["median"].as_f64(), Some(days[1] as f64), "{c:#}");
    assert_eq!(c["days_to_response"]["p90"].as_i64(), Some(days[2]));
    let kept = i64::from(today <= due_of(&trees));
    assert_eq!((c["on_time"]["on_time"].as_i64(), c["on_time"]["of"].as_i64()), (Some(kept), Some(3)), "{c:#}");
    let still_over: Vec<&str> =
        c["overdue"].as_array().unwrap().iter().map(|o| o["tracking"].as_str().unwrap()).collect();
    assert_eq!(still_over, [pool.as_str()], "{c:#}");
    assert_eq!(c["trend"][10]["received"], 6);
    assert_eq!(c["trend"][11], serde_json::json!({"month": this.to_string(), "received": 0, "answered": 3}));

    // The same figures as CSV, one table per figure.
    let csv = ok(env.cli(&["report", "--month", &last.to_string(), "--format", "csv"])?, "report csv");
    assert!(csv.starts_with(&format!("Summary\nfigure,value\nmonth,{last}\nquestions received,6\n")), "{csv}");
    assert!(csv.contains("\nRequests by city\ncity,requests\n\"Dayton, OH\",3\n"), "{csv}");
    assert!(csv.contains("\nEligibility\noutcome,requests\neligible,4\nnot_eligible,1\nunknown,1\n"), "{csv}");
    assert!(
        csv.contains(&format!(
            "\nOverdue at month end\ntracking,city,subject,due date,business days over\n{}",
            expected[0].0
        )),
        "{csv}"
    );

    // A standalone page with the three charts inside.
    let page = env.dir.path().join("report.html");
    let out =
        env.cli(&["report", "--month", &this.to_string(), "--format", "html", "--output", &page.to_string_lossy()])?;
    ok(out, "report html");
    let html = std::fs::read_to_string(&page)?;
    // Kept for a person to look at (target/test-artifacts/monthly-report-ENGINE.html).
    let artefacts = repo_root().join("target/test-artifacts");
    std::fs::create_dir_all(&artefacts)?;
    std::fs::copy(&page, artefacts.join(format!("monthly-report-{:?}.html", test_engine()).to_lowercase()))?;
    assert_eq!(html.matches("src=\"data:image/png;base64,iVBORw0KGgo").count(), 3, "{html}");
    let rate = format!("{}% ({kept} of 3)", (kept as f64 * 100.0 / 3.0).round());
    assert!(html.contains(&this.label()) && html.contains(&pool) && html.contains(&rate), "{rate}: {html}");

    // The monthly mail: on the first business day of next month, from 08:00, once.
    let next_first = cal.on_or_after(this.next().first_day());
    let at = format!("{next_first}T08:00");
    let run = ok(env.cli(&["deadlines", "run", "--at", &at])?, "deadlines run");
    let summary = "0 questions, 2 responses, 1 referral, 1 overdue at month end";
    assert!(run.contains(&format!("sent report {this} to {BOSS} ({summary})")), "{run}");
    let again = ok(env.cli(&["deadlines", "run", "--at", &at])?, "deadlines run again");
    assert!(again.contains(&format!("already sent report:{this}")) && !sent_report(&again), "{again}");
    let later = ok(env.cli(&["deadlines", "run", "--at", &format!("{next_first}T15:00")])?, "later that day");
    assert!(!sent_report(&later), "{later}");

    let mails = wait_for_messages(&env.servers, BOSS, "INBOX", 1, WAIT).await?;
    // Give a second mail time to show up if one were (wrongly) queued.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mails_now = imap_fetch_all(&env.servers, BOSS, "INBOX").await?;
    assert_eq!(mails_now.len(), 1, "one report mail");
    let raw = &mails[0];
    let mail = mail_parser::MessageParser::default().parse(raw).unwrap();
    assert_eq!(
        mail.subject().unwrap_or_default(),
        format!("311 for Cities monthly report, {}: {summary}", this.label())
    );
    assert_eq!(header(raw, "Auto-Submitted").as_deref(), Some("auto-generated"));
    let text = mail.body_text(0).unwrap_or_default().to_string();
    assert!(text.contains("Responses sent: 2") && text.contains("Referrals made: 1") && text.contains(&pool), "{text}");
    let html = mail.body_html(0).unwrap_or_default().to_string();
    let images: Vec<&mail_parser::MessagePart> =
        mail.parts.iter().filter(|p| p.content_type().is_some_and(|t| t.ctype() == "image")).collect();
    assert_eq!(images.len(), 3, "three charts");
    for image in images {
        assert_eq!(image.content_type().and_then(|t| t.subtype()), Some("png"));
        assert!(image.contents().starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
        let cid = image.content_id().expect("a Content-ID");
        assert!(html.contains(&format!("src=\"cid:{cid}\"")), "the HTML shows {cid}:\n{html}");
    }
    Ok(())
}
