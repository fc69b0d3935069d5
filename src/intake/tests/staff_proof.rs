//! Staff commands by mail must prove they come from staff: anyone can write a staff address in
//! From. A forged `#respond` never reaches the city; the real staff member is told in the thread.

use super::harness::{Harness, Sent, question};
use crate::domain::RequestStatus;
use crate::intake::Outcome;

/// A question from Dayton, and what it queued: (tracking, acknowledgement, staff notice).
async fn asked(h: &mut Harness) -> (String, Sent, Sent) {
    let o = h.deliver(&question("Mayor <mayor@daytonohio.gov>", "Lead pipes", "", "How do we replace them?")).await;
    let Outcome::Request { tracking, .. } = o else { panic!("{o:?}") };
    let mut sent = h.sent().await.into_iter();
    let (Some(ack), Some(notice)) = (sent.next(), sent.next()) else { panic!("no ack and notice") };
    assert_eq!((ack.kind.as_str(), notice.kind.as_str()), ("ack_eligible", "staff_new_request"));
    (tracking.to_string(), ack, notice)
}

fn staff_mail(tracking: &str, headers: &str, body: &str) -> String {
    let id = uuid::Uuid::new_v4();
    format!(
        "From: Lee Staff <lee@311.example>\r\nTo: ask@311.example\r\nSubject: Re: [{tracking}] Lead pipes\r\n\
Message-ID: <{id}@311.example>\r\n{headers}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
}

const FORGED: &str = "#respond\r\nPlease wire the processing fee of $4,900 to account 12345 today.";

async fn status(h: &Harness, tracking: &str) -> RequestStatus {
    let t = tracking.parse().expect("tracking");
    h.store.request_by_tracking(&t).await.expect("row").expect("request").status
}

#[tokio::test]
async fn a_forged_respond_with_only_the_subject_tag_reaches_no_city() {
    let mut h = Harness::new().await;
    let (tracking, _, notice) = asked(&mut h).await;
    let o = h.deliver(&staff_mail(&tracking, "", FORGED)).await;
    let Outcome::StaffRejected { reason } = o else { panic!("{o:?}") };
    assert!(reason.contains("does not answer a staff notice"), "{reason}");
    let sent = h.sent().await;
    assert!(sent.iter().all(|s| !s.recipients.iter().any(|r| r.contains("daytonohio.gov"))), "{sent:?}");
    // The real staff member is told, in the request's staff thread.
    let [told] = sent.as_slice() else { panic!("{sent:?}") };
    assert_eq!(told.kind, "staff_command_error");
    assert_eq!(told.recipients, ["lee@311.example"]);
    assert_eq!(told.header("In-Reply-To"), notice.header("Message-ID"));
    assert_eq!(status(&h, &tracking).await, RequestStatus::Acknowledged);
}

#[tokio::test]
async fn answering_the_acknowledgement_the_city_saw_is_no_proof() {
    let mut h = Harness::new().await;
    let (tracking, ack, _) = asked(&mut h).await;
    let refs = format!("In-Reply-To: {0}\r\nReferences: {0}\r\n", ack.header("Message-ID"));
    let o = h.deliver(&staff_mail(&tracking, &refs, FORGED)).await;
    assert!(matches!(o, Outcome::StaffRejected { .. }), "{o:?}");
    assert!(h.sent().await.iter().all(|s| s.kind == "staff_command_error"));
    assert_eq!(status(&h, &tracking).await, RequestStatus::Acknowledged);
}

#[tokio::test]
async fn a_reply_to_the_staff_notice_is_applied() {
    let mut h = Harness::new().await;
    let (tracking, _, notice) = asked(&mut h).await;
    let refs = format!("In-Reply-To: {0}\r\nReferences: {0}\r\n", notice.header("Message-ID"));
    let o = h.deliver(&staff_mail(&tracking, &refs, "#respond\r\nHere is what other cities did.")).await;
    assert!(matches!(o, Outcome::StaffAction { .. }), "{o:?}");
    let sent = h.sent().await;
    assert!(sent.iter().any(|s| s.kind == "response" && s.recipients == ["mayor@daytonohio.gov"]), "{sent:?}");
    assert_eq!(status(&h, &tracking).await, RequestStatus::Responded);
}

#[tokio::test]
async fn with_trusted_authentication_results_a_verified_sender_needs_no_reply_headers() {
    let mut h = Harness::with(|c| c.intake.trusted_authserv_ids = vec!["mx.311.example".into()]).await;
    let (tracking, _, _) = asked(&mut h).await;
    let pass = "Authentication-Results: mx.311.example; dmarc=pass header.from=311.example\r\n";
    let o = h.deliver(&staff_mail(&tracking, pass, "#assign me")).await;
    assert!(matches!(o, Outcome::StaffAction { .. }), "{o:?}");
    let fail = "Authentication-Results: mx.311.example; dmarc=fail header.from=311.example\r\n";
    let o = h.deliver(&staff_mail(&tracking, fail, FORGED)).await;
    let Outcome::StaffRejected { reason } = o else { panic!("{o:?}") };
    assert!(reason.contains("could not be verified"), "{reason}");
    assert!(h.sent().await.iter().all(|s| !s.recipients.iter().any(|r| r.contains("daytonohio.gov"))));
    assert_eq!(status(&h, &tracking).await, RequestStatus::Assigned);
}

#[tokio::test]
async fn admin_commands_by_mail_without_verification_change_nothing() {
    let mut h = Harness::new().await;
    let before = h.store.list_cities().await.expect("cities").len();
    let mail = "From: Ada Admin <ada@311.example>\r\nTo: ask@311.example\r\nSubject: #cities export\r\n\
Message-ID: <adm-1@311.example>\r\n\r\nplease\r\n";
    let o = h.deliver(mail).await;
    let Outcome::Admin { summary } = o else { panic!("{o:?}") };
    assert!(summary.starts_with("Not applied"), "{summary}");
    let sent = h.sent().await;
    assert!(sent.iter().all(|s| s.recipients == ["ada@311.example"]), "{sent:?}");
    assert!(!sent.iter().any(|s| s.raw.contains("cities.csv")), "the export must not be attached");
    assert_eq!(h.store.list_cities().await.expect("cities").len(), before);
}

#[tokio::test]
async fn a_response_stays_in_the_thread_when_the_official_broke_the_chain() {
    let mut h = Harness::new().await;
    let q = question("Mayor <mayor@daytonohio.gov>", "Lead pipes", "", "How do we replace them?");
    let question_id = q.lines().find_map(|l| l.strip_prefix("Message-ID: ")).unwrap_or_default().to_string();
    let (tracking, ack, notice) = {
        let o = h.deliver(&q).await;
        let Outcome::Request { tracking, .. } = o else { panic!("{o:?}") };
        let sent = h.sent().await;
        (tracking.to_string(), sent[0].header("Message-ID"), sent[1].header("Message-ID"))
    };
    // The official writes again with a new subject and no References; the tag keeps it matched.
    let later = "From: Mayor <mayor@daytonohio.gov>\r\nTo: ask@311.example\r\nSubject: [TRACKING] budget figures\r\n\
Message-ID: <later-1@daytonohio.gov>\r\n\r\nOur budget is $2M.\r\n"
        .replace("TRACKING", &tracking);
    assert!(matches!(h.deliver(&later).await, Outcome::FollowUp { .. }));
    h.sent().await;
    let refs = format!("In-Reply-To: {notice}\r\nReferences: {notice}\r\n");
    assert!(matches!(
        h.deliver(&staff_mail(&tracking, &refs, "#respond\r\nHere it is.")).await,
        Outcome::StaffAction { .. }
    ));
    let response = h.sent().await.into_iter().find(|s| s.kind == "response").expect("response");
    assert_eq!(response.header("In-Reply-To"), "<later-1@daytonohio.gov>");
    let references: Vec<String> = response.header("References").split_whitespace().map(str::to_string).collect();
    assert_eq!(references, [question_id, ack, "<later-1@daytonohio.gov>".to_string()]);
}

#[tokio::test]
async fn a_colleague_answering_an_accepted_staff_reply_is_applied_but_not_a_refused_one() {
    let mut h = Harness::new().await;
    let (tracking, _, notice) = asked(&mut h).await;
    let notice_id = notice.header("Message-ID");
    let refs = format!("In-Reply-To: {notice_id}\r\nReferences: {notice_id}\r\n");
    let first = staff_mail(&tracking, &refs, "#assign me");
    let first_id = first.lines().find_map(|l| l.strip_prefix("Message-ID: ")).unwrap_or_default().to_string();
    assert!(matches!(h.deliver(&first).await, Outcome::StaffAction { .. }));
    // Outlook keeps only In-Reply-To: the colleague's reply names the accepted staff reply alone.
    let colleague = staff_mail(&tracking, &format!("In-Reply-To: {first_id}\r\n"), "#note\r\nI called them too.");
    assert!(matches!(h.deliver(&colleague).await, Outcome::StaffAction { .. }));
    // A refused forgery is no proof for the next one.
    let forged = staff_mail(&tracking, "", FORGED);
    let forged_id = forged.lines().find_map(|l| l.strip_prefix("Message-ID: ")).unwrap_or_default().to_string();
    assert!(matches!(h.deliver(&forged).await, Outcome::StaffRejected { .. }));
    let chained = staff_mail(&tracking, &format!("In-Reply-To: {forged_id}\r\n"), FORGED);
    assert!(matches!(h.deliver(&chained).await, Outcome::StaffRejected { .. }));
    assert!(h.sent().await.iter().all(|s| !s.recipients.iter().any(|r| r.contains("daytonohio.gov"))));
}
