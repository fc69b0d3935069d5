//! Topics and referrals by mail, in process: a new question's suggested topics are stored, `#topic`
//! replaces them, and `#refer` or `#topic` naming nothing known is refused with the reason and
//! changes nothing. (The introduction's delivery and the replies are in tests/referrals.rs.)

use super::harness::{Harness, question, reply_to};
use crate::domain::{RequestId, RequestStatus};
use crate::intake::Outcome;

const LEE: &str = "Lee Staff <lee@311.example>";

#[tokio::test]
async fn topics_are_suggested_then_set_and_unknown_names_are_refused() {
    let mut h = Harness::new().await;
    let o =
        h.deliver(&question("Mayor <mayor@daytonohio.gov>", "Lead pipes in the water system", "", "Who pays?")).await;
    let Outcome::Request { tracking, .. } = o else { panic!("{o:?}") };
    let tracking = tracking.to_string();
    let row = h.store.request_by_tracking(&tracking.parse().expect("t")).await.expect("row").expect("request");
    let id = RequestId(row.id);
    let topics = h.store.topics_of(id).await.expect("topics");
    assert_eq!((topics.topics.as_slice(), topics.confirmed), (&["infrastructure".to_string()][..], false));
    let sent = h.sent().await;
    let notice = sent.into_iter().find(|s| s.kind == "staff_new_request").expect("notice");
    let parsed = mail_parser::MessageParser::default().parse(notice.raw.as_bytes()).expect("parses");
    let text = parsed.body_text(0).unwrap_or_default().to_string();
    assert!(text.contains("Topics:     Infrastructure (water, roads) (suggested"), "{text}");

    for (body, error) in [
        ("#topic parks", "`parks` is not a topic"),
        ("#refer Nobody Known\r\nPlease help.", "no expert on the roster has that address or name"),
    ] {
        let o = h.deliver(&reply_to(&notice, LEE, &tracking, body)).await;
        let Outcome::StaffRejected { reason } = o else { panic!("{body}: {o:?}") };
        assert!(reason.contains(error), "{body}: {reason}");
    }
    let row = h.store.request_by_tracking(&tracking.parse().expect("t")).await.expect("row").expect("request");
    assert_ne!(row.status, RequestStatus::Referred, "a refused #refer changes nothing");
    assert!(h.store.referrals_of(row.id).await.expect("referrals").is_empty());

    let o = h.deliver(&reply_to(&notice, LEE, &tracking, "#topic finance, Housing")).await;
    assert!(
        matches!(o, Outcome::StaffAction { ref summary, .. } if summary.contains("topics finance, housing")),
        "{o:?}"
    );
    let topics = h.store.topics_of(id).await.expect("topics");
    assert_eq!((topics.topics, topics.confirmed), (vec!["finance".to_string(), "housing".to_string()], true));
}
