//! Where the MIME corpora give decoded subjects, senders or body text, our parse agrees with
//! them — compared by meaning (white space folded, addresses lower-cased), not byte for byte.
//! No servers: this is the pure parse step. The rates are printed and held above a floor.
//!
//! The corpora are found by `support/corpora.rs`: `INTAKE311_CORPORA`, else `../shared/corpora`
//! beside the checkout; with neither, the suite says so in one loud line and does not run. The
//! rules of that lookup are unit-tested here, at the end.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

#[path = "support/corpora.rs"]
mod corpora;

use intake311::inbound;

fn fold(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first string of a JSON array (or the string itself).
fn first(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Array(a) => a.first().and_then(first),
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("address").and_then(first),
        _ => None,
    }
}

struct Tally {
    name: &'static str,
    ok: usize,
    total: usize,
    misses: Vec<String>,
}

impl Tally {
    fn new(name: &'static str) -> Self {
        Tally { name, ok: 0, total: 0, misses: Vec::new() }
    }
    fn check(&mut self, file: &str, ok: bool, detail: impl FnOnce() -> String) {
        self.total += 1;
        if ok {
            self.ok += 1;
        } else if self.misses.len() < 5 {
            self.misses.push(format!("{file}: {}", detail()));
        }
    }
    fn report(&self, floor: f64) {
        let rate = if self.total == 0 { 1.0 } else { self.ok as f64 / self.total as f64 };
        println!("{}: {}/{} agree ({:.1}%)", self.name, self.ok, self.total, rate * 100.0);
        for m in &self.misses {
            println!("   miss {m}");
        }
        assert!(self.total > 0, "{}: nothing compared", self.name);
        assert!(rate >= floor, "{} fell below {:.0}%", self.name, floor * 100.0);
    }
}

#[test]
fn decoded_subjects_senders_and_text_agree_with_the_corpora() {
    let Some(root) = corpora::corpora_for(
        "mime_corpus",
        &["mime_stalwart_mail_parser/EXPECTED.json", "mime_cpython_test_email/EXPECTED.json"],
    ) else {
        return;
    };
    let mut subject = Tally::new("stalwart subject");
    let mut from = Tally::new("stalwart from");
    let mut text = Tally::new("stalwart text body (first 40 characters)");
    let stalwart = root.join("mime_stalwart_mail_parser");
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(stalwart.join("EXPECTED.json")).expect("stalwart EXPECTED.json"))
            .expect("json");
    for (file, e) in expected["files"].as_object().expect("files") {
        let Ok(raw) = std::fs::read(stalwart.join(file)) else { continue };
        // The lenient parse: many fixtures have no From, which the daemon quarantines, but
        // their subject and text still decode.
        let Ok(mail) = inbound::parse_report(&raw) else { continue };
        if let Some(s) = e["subject"].as_str().filter(|s| !s.is_empty() && *s != "None") {
            subject.check(file, fold(&mail.subject) == fold(s), || format!("{:?} vs {s:?}", mail.subject));
        }
        if let Some(f) = first(&e["from"]).filter(|f| f.contains('@')) {
            from.check(file, mail.from == f.to_lowercase(), || format!("{:?} vs {f:?}", mail.from));
        }
        if let Some(p) = first(&e["text_body_preview"]).filter(|p| fold(p).len() >= 10) {
            let want: String = fold(&p.replace("\\n", " ").replace("\\r", " ")).chars().take(40).collect();
            text.check(file, fold(&mail.text).starts_with(&want), || {
                format!("{:?} vs {want:?}", fold(&mail.text).chars().take(40).collect::<String>())
            });
        }
    }
    let mut cp_subject = Tally::new("cpython subject");
    let mut cp_from = Tally::new("cpython from");
    let cpython = root.join("mime_cpython_test_email");
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cpython.join("EXPECTED.json")).expect("cpython EXPECTED.json"))
            .expect("json");
    for (file, e) in expected["files"].as_object().expect("files") {
        let Ok(raw) = std::fs::read(cpython.join(file)) else { continue };
        let r = &e["reference_parse_cpython_3_13_0"];
        let Ok(mail) = inbound::parse_report(&raw) else { continue };
        if let Some(s) = r["subject_decoded"].as_str().filter(|s| !s.is_empty()) {
            cp_subject.check(file, fold(&mail.subject) == fold(s), || format!("{:?} vs {s:?}", mail.subject));
        }
        if let Some(f) = r["from"].as_str().filter(|f| f.contains('@')) {
            let addr = f.rsplit('<').next().unwrap_or(f).trim_end_matches('>').trim().to_lowercase();
            cp_from.check(file, mail.from == addr, || format!("{:?} vs {addr:?}", mail.from));
        }
    }
    subject.report(0.95);
    from.report(0.95);
    text.report(0.85);
    cp_subject.report(0.9);
    cp_from.report(0.9);
}

/// The lookup rules of `support/corpora.rs`.
mod lookup {
    use std::path::{Path, PathBuf};

    use super::corpora::{Found, locate};

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("intake311-corpora-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("mime_a")).expect("scratch dir");
        std::fs::write(d.join("mime_a/EXPECTED.json"), "{}").expect("scratch file");
        d
    }

    #[test]
    fn unset_and_nothing_beside_does_not_run() {
        let got = locate(None, Path::new("/nonexistent/shared/corpora"), &["mime_a"]);
        match got {
            Ok(Found::NotRun(why)) => {
                assert!(why.contains("INTAKE311_CORPORA is unset"), "{why}");
                assert!(why.contains("/nonexistent/shared/corpora does not exist"), "{why}");
            }
            other => panic!("expected NotRun, got {other:?}"),
        }
    }

    #[test]
    fn unset_with_folder_beside_runs_on_it() {
        let d = scratch("beside");
        assert_eq!(locate(None, &d, &["mime_a", "mime_a/EXPECTED.json"]), Ok(Found::Run(d.clone())));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn variable_wins_over_the_folder_beside() {
        let d = scratch("var");
        let got = locate(Some(&d), Path::new("/nonexistent"), &["mime_a"]);
        assert_eq!(got, Ok(Found::Run(d.clone())));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn variable_naming_a_missing_folder_fails() {
        let d = scratch("beside2");
        let got = locate(Some(Path::new("/nonexistent/corpora")), &d, &[]);
        assert!(matches!(&got, Err(e) if e.contains("/nonexistent/corpora")), "{got:?}");
        assert!(locate(Some(Path::new("")), &d, &[]).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_missing_needed_entry_fails_and_is_named() {
        let d = scratch("needed");
        let got = locate(Some(&d), Path::new("/nonexistent"), &["mime_a", "bounce_b", "mime_a/NOPE.json"]);
        assert!(
            matches!(&got, Err(e) if e.contains("bounce_b, mime_a/NOPE.json") && !e.contains("mime_a,")),
            "{got:?}"
        );
        let got = locate(None, &d, &["bounce_b"]);
        assert!(matches!(&got, Err(e) if e.contains("bounce_b")), "{got:?}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
