//! What intake does with whole messages, in process: duplicates, automatic mail, dates.

use super::harness::{Harness, question};
use crate::intake::Outcome;

#[tokio::test]
async fn a_question_from_an_eligible_domain_is_acknowledged_and_staff_told() {
    let mut h = Harness::new().await;
    let o =
        h.deliver(&question("Mayor <mayor@daytonohio.gov>", "Lead pipes", "", "How do we replace lead pipes?")).await;
    assert!(matches!(o, Outcome::Request { .. }), "{o:?}");
    let sent = h.sent().await;
    let kinds: Vec<&str> = sent.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds, ["ack_eligible", "staff_new_request"]);
    assert_eq!(sent[0].recipients, ["mayor@daytonohio.gov"]);
    assert_eq!(sent[0].header("Auto-Submitted"), "auto-replied");
}

#[tokio::test]
async fn an_auto_reply_delivered_twice_is_stored_once() {
    let mut h = Harness::new().await;
    let ooo = "From: Clerk <clerk@daytonohio.gov>\r\nTo: ask@311.example\r\nSubject: Out of office\r\n\
Message-ID: <ooo-1@daytonohio.gov>\r\nAuto-Submitted: auto-replied\r\n\r\nI am away.\r\n";
    let first = h.deliver(ooo).await;
    assert!(matches!(first, Outcome::Automatic { .. }), "{first:?}");
    let second = h.deliver(ooo).await;
    assert_eq!(second, Outcome::Duplicate { message_id: "ooo-1@daytonohio.gov".into() });
    let counts = h.store.inbound_counts().await.expect("counts");
    let automatic = counts.iter().find(|(k, _)| k == "automatic").map(|(_, n)| *n);
    assert_eq!(automatic, Some(1), "{counts:?}");
    assert!(h.sent().await.is_empty());
}

#[tokio::test]
async fn every_kind_of_mail_meets_the_duplicate_check_first() {
    let mut h = Harness::new().await;
    let q = question("Mayor <mayor@daytonohio.gov>", "Roads", "", "Potholes?");
    assert!(matches!(h.deliver(&q).await, Outcome::Request { .. }));
    assert!(matches!(h.deliver(&q).await, Outcome::Duplicate { .. }));
    // Only one acknowledgement for the two deliveries.
    let acks = h.sent().await.into_iter().filter(|s| s.kind == "ack_eligible").count();
    assert_eq!(acks, 1);
}

#[tokio::test]
async fn the_arrival_date_decides_the_year_and_eligibility_not_the_processing_date() {
    let mut h = Harness::new().await;
    // Flint's eligibility ends on 31 December 2026; the question arrived that day, in the evening
    // (INTERNALDATE), and is handled whenever the test runs.
    let internal = chrono::DateTime::parse_from_rfc3339("2026-12-31T15:30:00+00:00").ok();
    let o = h.deliver_at(&question("Clerk <clerk@cityofflint.com>", "Water", "", "Lead service lines"), internal).await;
    let Outcome::Request { tracking, eligibility } = o else { panic!("{o:?}") };
    assert_eq!(tracking.to_string(), "311-2026-0001");
    assert_eq!(eligibility, crate::domain::Eligibility::Eligible);
    let row = h.store.request_by_tracking(&tracking).await.expect("row").expect("request");
    assert_eq!(row.received_on, "2026-12-31");
    // 10 business days (the default) after Thursday 31 December 2026.
    assert_eq!(row.due_date.as_deref(), Some("2027-01-14"));
}

#[tokio::test]
async fn the_promised_date_skips_the_holidays_of_the_holiday_file() {
    let shipped = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/config/holidays.us-federal.txt"));
    let mut h = Harness::with(|c| c.deadlines.holidays = Some(shipped)).await;
    let internal = chrono::DateTime::parse_from_rfc3339("2026-12-31T15:30:00+00:00").ok();
    let o = h.deliver_at(&question("Clerk <clerk@cityofflint.com>", "Water", "", "Lead service lines"), internal).await;
    let Outcome::Request { tracking, .. } = o else { panic!("{o:?}") };
    let row = h.store.request_by_tracking(&tracking).await.expect("row").expect("request");
    // 10 business days after Thursday 31 December 2026, less New Year's Day (Friday 1 January):
    // one day later than on weekends alone (2027-01-14, above).
    assert_eq!(row.due_date.as_deref(), Some("2027-01-15"));
    let sent = h.sent().await;
    let ack = sent.iter().find(|s| s.kind == "ack_eligible").expect("acknowledged");
    assert!(ack.raw.contains("January 15, 2027") || ack.raw.contains("2027-01-15"), "{}", ack.raw);
}

#[tokio::test]
async fn without_internaldate_the_topmost_received_header_dates_it() {
    let mut h = Harness::new().await;
    let extra = "Received: from mx.cityofflint.com by imap.311.example; Thu, 31 Dec 2026 09:00:00 -0500\r\n";
    let o = h.deliver(&question("Clerk <clerk@cityofflint.com>", "Water", extra, "Lead")).await;
    let Outcome::Request { tracking, .. } = o else { panic!("{o:?}") };
    let row = h.store.request_by_tracking(&tracking).await.expect("row").expect("request");
    assert_eq!(row.received_on, "2026-12-31");
    assert!(h.sent().await.iter().any(|s| s.kind == "ack_eligible" && s.recipients == ["clerk@cityofflint.com"]));
}

#[tokio::test]
async fn dates_are_taken_in_the_programme_time_zone() {
    // 8 pm in Chicago on 31 December 2026 is already 1 January 2027 in UTC.
    let mut h = Harness::with(|c| c.intake.timezone = chrono_tz::America::Chicago).await;
    let internal = chrono::DateTime::parse_from_rfc3339("2026-12-31T20:00:00-06:00").ok();
    let o = h.deliver_at(&question("Clerk <clerk@cityofflint.com>", "Water", "", "Lead service lines"), internal).await;
    let Outcome::Request { tracking, eligibility } = o else { panic!("{o:?}") };
    assert_eq!(tracking.to_string(), "311-2026-0001", "the year of the arrival date in Chicago");
    assert_eq!(eligibility, crate::domain::Eligibility::Eligible, "Flint is eligible until 31 December");
    let row = h.store.request_by_tracking(&tracking).await.expect("row").expect("request");
    assert_eq!(row.received_on, "2026-12-31");
    // In UTC the same moment is New Year's Day: another year, and Flint no longer eligible.
    let mut utc = Harness::new().await;
    let o = utc.deliver_at(&question("Clerk <clerk@cityofflint.com>", "Water", "", "Lead"), internal).await;
    let Outcome::Request { tracking, eligibility } = o else { panic!("{o:?}") };
    assert_eq!(tracking.to_string(), "311-2027-0001");
    assert_eq!(eligibility, crate::domain::Eligibility::NotEligible);
}

#[tokio::test]
async fn backscatter_is_recorded_but_never_answered() {
    let mut h = Harness::with(|c| c.intake.trusted_authserv_ids = vec!["mx.311.example".into()]).await;
    let spam = question(
        "Prize Desk <winner@forged.example>",
        "You won",
        "Authentication-Results: mx.311.example; spf=fail smtp.mailfrom=forged.example; dkim=none\r\n",
        "Claim your prize",
    );
    let Outcome::Request { tracking, .. } = h.deliver(&spam).await else { panic!("the request is still made") };
    assert!(h.sent().await.is_empty(), "no mail to a forged sender, no notice to staff");
    let row = h.store.request_by_tracking(&tracking).await.expect("row").expect("request");
    let events = h.store.request_events(row.id).await.expect("events");
    assert!(
        events.iter().any(|e| e.event == "automatic mail not sent" && e.detail.contains("backscatter")),
        "{events:?}"
    );
    // A stranger whose domain passed DKIM is answered as before.
    let real = question(
        "Pat <pat@gmail.example>",
        "Which city?",
        "Authentication-Results: mx.311.example; dkim=pass header.d=gmail.example; dmarc=pass header.from=gmail.example\r\n",
        "I work for a city",
    );
    assert!(matches!(h.deliver(&real).await, Outcome::Request { .. }));
    let sent = h.sent().await;
    assert!(sent.iter().any(|s| s.kind == "ack_unknown_city" && s.recipients == ["pat@gmail.example"]), "{sent:?}");
}

/// Log output, captured.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_message_span_carries_its_message_id_and_tracking_number_once() {
    use tracing::Instrument as _;
    let mut h = Harness::new().await;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber =
        tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).without_time().finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let q = question("Mayor <mayor@daytonohio.gov>", "Roads", "", "Potholes?");
    let span =
        tracing::info_span!("inbound", uid = 1, message_id = tracing::field::Empty, tracking = tracing::field::Empty);
    let arrived = chrono::DateTime::parse_from_rfc3339("2026-12-03T15:00:00+00:00").ok();
    h.deliver_at(&q, arrived).instrument(span.clone()).await;
    span.in_scope(|| tracing::info!("handled"));
    let log = String::from_utf8_lossy(&captured.0.lock().map(|b| b.clone()).unwrap_or_default()).into_owned();
    let line = log.lines().find(|l| l.contains("handled")).unwrap_or_default();
    assert!(line.contains("message_id=") && line.contains("@sender.example"), "{log}");
    assert_eq!(line.matches("tracking=311-2026-0001").count(), 1, "{log}");
}
