//! Table tests of classification: the header signs, the subjects, and every fixture under
//! tests/fixtures/robots (robots automatic, people human).

use super::*;
use crate::inbound::parse;

fn mail(headers: &str) -> InboundMail {
    let raw = format!(
        "From: Jane <jane@dayton.gov>\r\nSubject: Question\r\nMessage-ID: <m1@dayton.gov>\r\n{headers}\r\nBody\r\n"
    );
    parse(raw.as_bytes()).expect("parses")
}

#[test]
fn a_person_is_human() {
    assert_eq!(classify(&mail(""), &["intake@311.test"], "311.test"), Classification::Human);
    assert_eq!(classify(&mail("Auto-Submitted: no\r\n"), &[], "311.test"), Classification::Human);
    assert_eq!(classify(&mail("Precedence: first-class\r\n"), &[], ""), Classification::Human);
}

#[test]
fn robots_are_recognised() {
    for h in [
        "Auto-Submitted: auto-replied\r\n",
        "Auto-Submitted: auto-generated; type=x\r\n",
        "Precedence: bulk\r\n",
        "Precedence: list\r\n",
        "X-Autoreply: yes\r\n",
        "X-Auto-Response-Suppress: All\r\n",
        "List-Id: <city.lists.example>\r\n",
        "List-Unsubscribe: <mailto:u@x>\r\n",
        "Return-Path: <>\r\n",
        "Return-Path: <MAILER-DAEMON@mx.example>\r\n",
        "X-Intake311-Loop: intake@311.test\r\n",
    ] {
        assert!(matches!(classify(&mail(h), &[], "311.test"), Classification::Automatic(_)), "{h}");
    }
}

#[test]
fn out_of_office_subjects_in_several_languages() {
    for subject in [
        "Out of Office: Water main financing",
        "Automatic reply: [311-2026-0042] Re: Roads",
        "AW: Abwesenheitsnotiz: Frage",
        "Réponse automatique : absent",
        "Respuesta automática: vacaciones",
        "Autosvar: Semester",
        "Automatyczna odpowiedź: urlop",
    ] {
        let m = mail("").clone();
        let m = InboundMail { subject: subject.to_string(), ..m };
        assert!(matches!(classify(&m, &[], ""), Classification::Automatic(_)), "{subject}");
    }
    let m = InboundMail { subject: "Question about out of office hours policy".into(), ..mail("") };
    assert_eq!(classify(&m, &[], ""), Classification::Human, "only a leading phrase counts");
}

#[test]
fn our_own_mail_is_automatic() {
    let m = mail("");
    assert!(matches!(classify(&m, &["jane@dayton.gov"], "x"), Classification::Automatic(_)));
    let raw = b"From: postmaster@x.org\r\nSubject: hi\r\n\r\nbody";
    assert!(matches!(classify(&parse(raw).expect("parses"), &[], ""), Classification::Automatic(_)));
}

/// Every fixture under tests/fixtures/robots: `human-*` must be [`Classification::Human`] by
/// both entry points; every other kind (`feedback`, `auto`, `list`, `challenge`, `spam`) must be
/// automatic through [`classify_raw`], with a reason that names its kind.
#[test]
fn every_robot_fixture_is_automatic_and_every_person_human() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/robots");
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("fixtures dir").map(|e| e.expect("entry").path()).collect();
    files.sort();
    let expected_words = [
        ("feedback-", &["feedback report", "dmarc"][..]),
        ("auto-", &["auto-reply subject", "lotus notes"][..]),
        ("list-", &["mailing-list"][..]),
        ("challenge-", &["challenge-response"][..]),
        ("spam-", &["spam"][..]),
    ];
    let (mut robots, mut people) = (0, 0);
    for path in &files {
        let name = path.file_name().and_then(|n| n.to_str()).expect("name").to_string();
        let raw = std::fs::read(path).expect("read");
        let mail = parse(&raw).unwrap_or_else(|e| panic!("{name}: {e}"));
        let raw_verdict = classify_raw(&raw, &mail, &["intake@311.test"], "311.test");
        if name.starts_with("human-") {
            people += 1;
            assert_eq!(classify(&mail, &["intake@311.test"], "311.test"), Classification::Human, "{name}");
            assert_eq!(raw_verdict, Classification::Human, "{name}");
            continue;
        }
        robots += 1;
        let Classification::Automatic(reason) = raw_verdict else { panic!("{name} was taken for a person") };
        let (_, words) = expected_words.iter().find(|(p, _)| name.starts_with(p)).expect("a known kind");
        let lower = reason.to_lowercase();
        assert!(words.iter().any(|w| lower.contains(w)), "{name}: reason {reason:?} does not say {words:?}");
        assert!(super::super::bounce::detect(&raw).is_none(), "{name} is not a bounce");
    }
    assert!(robots >= 15 && people >= 10, "{robots} robots, {people} people");
}

#[test]
fn auto_reply_subjects_must_stand_alone() {
    for (subject, robot) in [
        ("AUTO: Jane Doe is out of the office (returning 12/08/2026)", true),
        ("Auto insurance for the city fleet", false),
        ("Automatic meter reading", false),
        ("Automatic reply: Roads", true),
        ("Auto Reply: Roads", true),
        ("Autoreply", true),
        ("Out of Office", true),
        ("Out of Office AutoReply: Roads", true),
        ("Out of the office", true),
        ("Out of office hours permits", false),
        ("Abwesenheitsnotiz: Frage", true),
        ("Automatische Antwort: Frage", true),
        ("Réponse automatique : absent", true),
        ("Absence du bureau", true),
        ("Respuesta automática: vacaciones", true),
        ("Automatisch antwoord: Vraag", true),
        ("Autosvar: Fråga", true),
        ("Risposta automatica: Domanda", true),
        ("Resposta automática: Pergunta", true),
        ("RE: Automatic reply rules for staff", false),
        ("auto: lowercase is not Notes", false),
    ] {
        assert_eq!(out_of_office(subject).is_some(), robot, "{subject}");
    }
}

#[test]
fn spam_verdicts_from_the_receiving_server() {
    let body = "From: a@b.example\r\nSubject: Question\r\n";
    for (header, spam) in [
        ("X-Spam-Flag: YES\r\n", true),
        ("X-Spam-Flag: NO\r\n", false),
        ("X-Spam-Status: Yes, score=9.1 required=5.0\r\n", true),
        ("X-Spam-Status: No, score=0.1 required=5.0\r\n", false),
        ("X-Spam: Yes\r\n", true),
        ("X-Rspamd-Action: rewrite subject\r\n", true),
        ("X-Rspamd-Action: no action\r\n", false),
        ("X-Rspamd-Action: greylist\r\n", false),
        ("X-Spam-Action: reject\r\n", true),
        ("X-Forefront-Antispam-Report: CIP:1.2.3.4;SFV:SPM;SCL:9\r\n", true),
        ("X-Forefront-Antispam-Report: CIP:1.2.3.4;SFV:NSPM;SCL:1\r\n", false),
    ] {
        let raw = format!("{header}{body}\r\nX-Spam-Flag: YES in the body does not count\r\n");
        let mail = parse(raw.as_bytes()).expect("parses");
        let verdict = classify_raw(raw.as_bytes(), &mail, &[], "");
        assert_eq!(matches!(&verdict, Classification::Automatic(r) if r.contains("spam")), spam, "{header}");
    }
}

fn with_body(headers: &str, subject: &str, body: &str) -> InboundMail {
    let raw = format!(
        "From: Jane <complaints@cityofx.gov>\r\nSubject: {subject}\r\nMessage-ID: <m2@cityofx.gov>\r\n{headers}\r\n{body}\r\n"
    );
    parse(raw.as_bytes()).expect("parses")
}

#[test]
fn a_persons_words_about_robots_are_still_a_question() {
    // A city's complaints office asking about CAPTCHAs and about its own members-only list.
    let q = with_body(
        "",
        "Web forms",
        "How do other cities verify you are human on 311 web forms? Our council list is a members-only list.",
    );
    assert_eq!(classify(&q, &["intake@311.test"], "311.test"), Classification::Human);
}

#[test]
fn the_same_words_answering_our_mail_are_a_robot() {
    let challenge = with_body(
        "In-Reply-To: <intake311.0123@311.test>\r\n",
        "Re: Web forms",
        "Please verify you are a human to have your mail delivered.",
    );
    assert!(matches!(classify(&challenge, &[], "311.test"), Classification::Automatic(r) if r.contains("challenge")));
    let tagged = with_body("", "Your message to council [311-2026-0042] Re: Roads", "This is a members-only list.");
    assert!(matches!(classify(&tagged, &[], "311.test"), Classification::Automatic(r) if r.contains("mailing-list")));
}
