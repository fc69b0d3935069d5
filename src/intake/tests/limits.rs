//! The limits on automatic mail stop loops, never a person's new question; a fault of ours
//! never quarantines good mail.

use super::harness::{Harness, question};
use crate::intake::Outcome;

fn acks(sent: &[super::harness::Sent]) -> usize {
    sent.iter().filter(|s| s.kind.starts_with("ack_")).count()
}

#[tokio::test]
async fn a_fourth_question_in_an_hour_is_acknowledged() {
    let mut h = Harness::with(|c| c.outbox.auto_limit = 3).await;
    for i in 0..5 {
        let q = question("Mayor <mayor@daytonohio.gov>", &format!("Question {i}"), "", &format!("Topic {i}?"));
        assert!(matches!(h.deliver(&q).await, Outcome::Request { .. }));
    }
    let sent = h.sent().await;
    assert_eq!(acks(&sent), 5, "{sent:?}");
    assert!(!sent.iter().any(|s| s.kind == "staff_mail_held"));
}

#[tokio::test]
async fn the_same_mail_sent_again_is_held_and_staff_are_told() {
    let mut h = Harness::new().await;
    let q = |id: &str| {
        format!(
            "From: Robot <robot@daytonohio.gov>\r\nTo: ask@311.example\r\nSubject: Your request\r\nMessage-ID: <{id}>\r\n\r\nWe received your message.\r\n"
        )
    };
    assert!(matches!(h.deliver(&q("r1@daytonohio.gov")).await, Outcome::Request { .. }));
    assert_eq!(acks(&h.sent().await), 1);
    let Outcome::Request { tracking, .. } = h.deliver(&q("r2@daytonohio.gov")).await else { panic!("no request") };
    let sent = h.sent().await;
    assert_eq!(acks(&sent), 0, "{sent:?}");
    let held = sent.iter().find(|s| s.kind == "staff_mail_held").expect("staff are told");
    assert_eq!(held.recipients, ["staff@311.example"]);
    assert!(held.raw.contains("already acknowledged"), "{}", held.raw);
    let row = h.store.request_by_tracking(&tracking).await.expect("row").expect("request");
    let events = h.store.request_events(row.id).await.expect("events");
    assert!(events.iter().any(|e| e.event == "automatic mail not sent"), "{events:?}");
}

#[tokio::test]
async fn past_the_question_limit_even_new_questions_are_held() {
    let mut h = Harness::with(|c| {
        c.outbox.auto_limit = 2;
        c.outbox.question_limit = 3;
    })
    .await;
    for i in 0..4 {
        let q = question("Bot <bot@daytonohio.gov>", &format!("Ticket {i}"), "", &format!("Generated {i}"));
        h.deliver(&q).await;
    }
    let sent = h.sent().await;
    assert_eq!(acks(&sent), 3, "{sent:?}");
    assert_eq!(sent.iter().filter(|s| s.kind == "staff_mail_held").count(), 1);
}

#[tokio::test]
async fn follow_up_notes_keep_the_tight_loop_limit() {
    let mut h = Harness::with(|c| {
        c.outbox.auto_limit = 2;
        c.intake.followup_note = true;
    })
    .await;
    let Outcome::Request { tracking, .. } =
        h.deliver(&question("Mayor <mayor@daytonohio.gov>", "Roads", "", "Potholes?")).await
    else {
        panic!("no request")
    };
    h.sent().await;
    for i in 0..3 {
        let reply = format!(
            "From: Mayor <mayor@daytonohio.gov>\r\nTo: ask@311.example\r\nSubject: Re: [{tracking}] Roads\r\nMessage-ID: <f{i}@daytonohio.gov>\r\n\r\nMore detail {i}.\r\n"
        );
        assert!(matches!(h.deliver(&reply).await, Outcome::FollowUp { .. }));
    }
    let sent = h.sent().await;
    // The acknowledgement counted: one note goes out, then the limit of 2 holds the rest.
    assert_eq!(sent.iter().filter(|s| s.kind == "followup_added").count(), 1, "{sent:?}");
    assert_eq!(sent.iter().filter(|s| s.kind == "staff_followup").count(), 3);
}

#[tokio::test]
async fn a_locked_database_leaves_the_message_in_the_inbox_uncounted() {
    let mut h = Harness::new().await;
    let q = question("Mayor <mayor@daytonohio.gov>", "Bridges", "", "Inspections?");
    // Another process holds the write lock; every attempt fails, none may quarantine.
    let path = h.db_path();
    let mut other = sqlx::SqliteConnection::connect_with(&sqlx::sqlite::SqliteConnectOptions::new().filename(&path))
        .await
        .expect("second connection");
    sqlx::query("BEGIN IMMEDIATE").execute(&mut other).await.expect("lock");
    for _ in 0..(crate::intake::MAX_ATTEMPTS + 2) {
        let err = h.try_deliver(&q, 1).await.expect_err("locked");
        assert!(crate::intake::fault::ours(&err), "{err:#}");
    }
    sqlx::query("ROLLBACK").execute(&mut other).await.expect("unlock");
    let o = h.try_deliver(&q, 1).await.expect("handled once the lock is gone");
    assert!(matches!(o, Outcome::Request { .. }), "{o:?}");
    assert!(h.store.list_quarantine().await.expect("quarantine").is_empty());
    assert_eq!(acks(&h.sent().await), 1);
}

use sqlx::Connection as _;

#[tokio::test]
async fn a_message_that_keeps_failing_with_a_fault_of_ours_waits_and_is_never_quarantined() {
    let mut h = Harness::new().await;
    // A broken deployment that only this kind of mail brings out: the timeline table is gone.
    let path = h.db_path();
    let mut other = sqlx::SqliteConnection::connect_with(&sqlx::sqlite::SqliteConnectOptions::new().filename(&path))
        .await
        .expect("second connection");
    sqlx::query("DROP TABLE request_events").execute(&mut other).await.expect("drop");
    other.close().await.expect("close");
    let q = question("Mayor <mayor@daytonohio.gov>", "Bridges", "", "Inspections?");
    let pos = crate::intake::Position { mailbox: "INBOX", uidvalidity: 1, uid: 7 };
    for attempt in 1..=crate::intake::DEFER_AFTER {
        assert!(!h.intake.deferred(pos), "deferred before attempt {attempt}");
        let err = h.try_deliver(&q, 7).await.expect_err("the table is gone");
        assert!(crate::intake::fault::ours(&err), "{err:#}");
    }
    assert!(h.intake.deferred(pos), "after {} failures it waits", crate::intake::DEFER_AFTER);
    assert!(h.store.list_quarantine().await.expect("quarantine").is_empty(), "a fault of ours never quarantines");
}

#[tokio::test]
async fn a_forged_bounce_report_does_not_silence_an_official() {
    let mut h = Harness::new().await;
    // A delivery report about mail we never sent, naming the mayor as a hard failure.
    let dsn = "From: Mail Delivery System <MAILER-DAEMON@mx.elsewhere.example>\r\nTo: ask@311.example\r\n\
Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-1@mx.elsewhere.example>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
Your message could not be delivered.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.elsewhere.example\r\n\r\n\
Final-Recipient: rfc822; mayor@daytonohio.gov\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n\
--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <never-ours@elsewhere.example>\r\nSubject: hi\r\n\r\n--b--\r\n";
    assert!(matches!(h.deliver(dsn).await, Outcome::Automatic { .. }));
    let q = question("Mayor <mayor@daytonohio.gov>", "Bridges", "", "Inspections?");
    assert!(matches!(h.deliver(&q).await, Outcome::Request { .. }));
    assert_eq!(acks(&h.sent().await), 1, "the mayor is still answered");
}
