//! The clock per request: waiting on the city stops it and the city's answer moves the due date;
//! `#due` promises a new date and tells the official in the thread; the first human response and
//! the resolution are counted in business days. Dates come from INTERNALDATE, as in the daemon.

use super::harness::{Harness, Sent, question, reply_to};
use crate::domain::RequestStatus;
use crate::intake::Outcome;
use crate::store::RequestRow;

fn at(date: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(&format!("{date}T15:00:00+00:00")).ok()
}

async fn holidays() -> Harness {
    let shipped = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/config/holidays.us-federal.txt"));
    Harness::with(|c| c.deadlines.holidays = Some(shipped)).await
}

async fn row(h: &Harness, tracking: &str) -> RequestRow {
    h.store.request_by_tracking(&tracking.parse().expect("tracking")).await.expect("row").expect("request")
}

const MAYOR: &str = "Mayor <mayor@daytonohio.gov>";
const LEE: &str = "Lee Staff <lee@311.example>";

/// A question from Dayton on Monday 4 January 2027: due ten business days later, Tuesday
/// 19 January (Monday 18 January is Martin Luther King, Jr. Day).
async fn asked(h: &mut Harness) -> (String, Sent, Sent) {
    let o = h.deliver_at(&question(MAYOR, "Lead pipes", "", "How do we replace them?"), at("2027-01-04")).await;
    let Outcome::Request { tracking, .. } = o else { panic!("{o:?}") };
    let mut sent = h.sent().await.into_iter();
    let (Some(ack), Some(notice)) = (sent.next(), sent.next()) else { panic!("no ack and notice") };
    let tracking = tracking.to_string();
    assert_eq!(row(h, &tracking).await.due_date.as_deref(), Some("2027-01-19"));
    (tracking, ack, notice)
}

#[tokio::test]
async fn waiting_on_the_city_moves_the_due_date_by_the_business_days_it_waited() {
    let mut h = holidays().await;
    let (tracking, _, notice) = asked(&mut h).await;
    // Wednesday: staff ask the city for the year of the survey.
    let o = h
        .deliver_at(&reply_to(&notice, LEE, &tracking, "#reply\r\nWhich year was the survey?"), at("2027-01-06"))
        .await;
    assert!(matches!(o, Outcome::StaffAction { .. }), "{o:?}");
    let waiting = row(&h, &tracking).await;
    assert_eq!(waiting.status, RequestStatus::WaitingOnCity);
    assert_eq!(waiting.clock_paused_on.as_deref(), Some("2027-01-06"));
    assert_eq!(waiting.first_response_days, Some(2), "Tuesday and Wednesday");
    let asked_city = h.sent().await.into_iter().find(|s| s.kind == "reply").expect("reply sent");
    // The mayor answers the next Tuesday: Thursday, Friday, Monday, Tuesday waited.
    let o = h.deliver_at(&reply_to(&asked_city, MAYOR, &tracking, "It was 2019."), at("2027-01-12")).await;
    assert!(matches!(o, Outcome::FollowUp { .. }), "{o:?}");
    let back = row(&h, &tracking).await;
    assert_eq!(back.status, RequestStatus::InProgress);
    assert_eq!((back.due_date.as_deref(), back.waited_days, back.clock_paused_on), (Some("2027-01-25"), 4, None));
    let events = h.store.request_events(back.id).await.expect("events");
    let moved = events.iter().find(|e| e.event == "due date").expect("the move is on the timeline");
    assert!(moved.detail.starts_with("2027-01-19 → 2027-01-25: waited 4 business day(s) on the city"), "{moved:?}");
    // The response on Thursday 21 January: resolved in 12 business days (MLK day not counted).
    let o =
        h.deliver_at(&reply_to(&notice, LEE, &tracking, "#respond\r\nHere is what peers did."), at("2027-01-21")).await;
    assert!(matches!(o, Outcome::StaffAction { .. }), "{o:?}");
    let done = row(&h, &tracking).await;
    assert_eq!(
        (done.status, done.first_response_days, done.resolution_days),
        (RequestStatus::Responded, Some(2), Some(12))
    );
}

#[tokio::test]
async fn a_new_date_from_staff_is_told_to_the_official_in_the_thread() {
    let mut h = holidays().await;
    let (tracking, ack, notice) = asked(&mut h).await;
    let o = h
        .deliver_at(
            &reply_to(&notice, LEE, &tracking, "#due 2027-02-03 We are waiting for the state's data."),
            at("2027-01-08"),
        )
        .await;
    let Outcome::StaffAction { summary, .. } = o else { panic!("{o:?}") };
    assert!(summary.contains("due date 2027-02-03; the official is told"), "{summary}");
    let r = row(&h, &tracking).await;
    assert_eq!(r.due_date.as_deref(), Some("2027-02-03"));
    let sent = h.sent().await;
    let [told] = sent.as_slice() else { panic!("{sent:?}") };
    assert_eq!(
        (told.kind.as_str(), told.recipients.as_slice()),
        ("due_changed", ["mayor@daytonohio.gov".to_string()].as_slice())
    );
    assert_eq!(
        told.header("In-Reply-To"),
        ack.header("In-Reply-To"),
        "in the official's thread, as the acknowledgement"
    );
    assert!(!told.header("In-Reply-To").is_empty());
    assert!(told.header("Subject").contains(&format!("[{tracking}]")));
    let text = told.raw.replace("=\r\n", "");
    for needle in ["Wednesday, February 3, 2027", "Tuesday, January 19, 2027", "waiting for the state's data"] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    let events = h.store.request_events(r.id).await.expect("events");
    assert!(
        events
            .iter()
            .any(|e| e.event == "due date"
                && e.detail == "2027-01-19 → 2027-02-03: We are waiting for the state's data."),
        "{events:?}"
    );

    // A Saturday, a holiday, a past date or no reason are refused, and nothing changes.
    for (command, why) in [
        ("#due 2027-02-06 later", "2027-02-06 is a Saturday; choose a business day"),
        ("#due 2027-02-15 later", "2027-02-15 is a holiday (Washington's Birthday); choose a business day"),
        ("#due 2027-01-05 sooner", "the date is in the past (today is 2027-01-08)"),
        ("#due 2027-02-10", "#due needs a reason after the date"),
    ] {
        let o = h.deliver_at(&reply_to(&notice, LEE, &tracking, command), at("2027-01-08")).await;
        let Outcome::StaffRejected { reason } = o else { panic!("{command}: {o:?}") };
        assert!(reason.contains(why), "{command}: {reason}");
        assert_eq!(row(&h, &tracking).await.due_date.as_deref(), Some("2027-02-03"), "{command}");
        assert!(h.sent().await.iter().all(|s| s.kind == "staff_command_error"), "{command}: nothing to the city");
    }
}
