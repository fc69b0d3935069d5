//! Bounce detection measured against sisimai's set-of-emails (read in place, never copied).
//!
//! Where the corpus is: `INTAKE311_CORPORA` (CI sets it to the absolute path of the shared
//! corpora folder); when unset, `../shared/corpora` beside the project root. With neither, it
//! prints one `CORPUS SUITE NOT RUN` line and passes; a set variable that points nowhere, or a
//! missing corpus, fails it.
//!
//! The corpus is `bounce_sisimai/`: real-world bounces (anonymised), with `EXPECTED.json` keyed by
//! file (see its `SOURCE.txt`). Its model is sisimai's: per bounced recipient a DSN status
//! (`deliverystatus`, sometimes a sisimai pseudo-code such as 5.0.910 that no MTA wrote), an SMTP
//! reply code, sisimai's reason taxonomy and a `hardbounce` flag. How it is translated into
//! statements about [`detect`]:
//!
//! - Should be a bounce: `is_bounce: true` files, plus the files without a per-file assertion
//!   whose family (file-name prefix `lhost-`, `rhost-`, `rfc3464-`, and the `err/` pieces of
//!   `mailbox/mbox-0`) is a bounce, plus every message of `mailbox/mbox-0` (split on `From `
//!   lines; sisimai asserts the mailbox yields results).
//! - Should not be a bounce: `is_bounce: false` (vacation auto-replies `rfc3834-*`, ARF feedback
//!   reports `arf-*`, successful-delivery DSNs, normal mail in `maildir/not/`), files whose family
//!   is `rfc3834-`/`arf-`, and anything flagged `is_feedback_report`, which includes
//!   `lhost-amazonses-11`: an SES *complaint* notification that sisimai files as a bounce with
//!   reason "feedback"; here a complaint is not a bounce. None may be reported (asserted). The
//!   degenerate `mailbox/size-*` inputs (0-3 bytes) must give `None` (robustness).
//! - Known, deliberate misses: a bounce forwarded by a person ("Fwd: Returned mail: ...", from
//!   the person's own address; `lhost-sendmail-14`, `err/make-test-36` and its copy in mbox-0) is
//!   that person's message, so `detect` says `None` where sisimai parses the quoted bounce. An
//!   FML mailing-list "Loop Alert" (`lhost-fml-03`) is not read as a bounce either.
//! - Hard/soft, printed two ways. Against the class implied by the expected status code's first
//!   digit (5 hard, 4 soft), which is our rule; split into real codes and sisimai pseudo-codes
//!   (a pseudo-code's digit is sisimai's own guess, e.g. 5.0.922 for a mailbox-full text where our
//!   wording rule says soft). And against sisimai's `hardbounce` flag, a different taxonomy (only
//!   userunknown/hostunknown/hasmoved/notaccept are hard, so a 5.2.2 mailbox-full is "soft"
//!   there): printed for information, with a low floor as a regression guard only. A file agrees
//!   when our class matches any of its recipients.
//! - Status: our enhanced code must equal one of the file's expected codes exactly. Pseudo-codes
//!   (`X.0.9NN`) are left out; the line also says how many expected codes are written verbatim
//!   in the file (the others would have been inferred by sisimai).
//! - Original Message-ID: the corpus does not state it, so the oracle is the file itself: the
//!   ids of `Message-ID:` lines after the top header block (the returned original's headers,
//!   MIME-attached or pasted inline; quoted-printable soft breaks joined), excluding the bounce's
//!   own. A file counts when `detect` returns one of them.
//! - Recipients: the number of failed recipients must equal the number of distinct recipients in
//!   the expectation (the corpus does not give the addresses).
//!
//! Each line prints a rate and the failing files (limited); floors are asserted a little below
//! the current result. No timing is asserted.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

#[path = "support/corpora.rs"]
mod corpora;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::Instant;

use serde_json::Value;

use intake311::inbound::bounce::{Bounce, BounceClass, detect};

/// Failing files printed per line.
const MAX_SHOWN: usize = 25;

// Floors (a little below what the detector achieves; see the printed lines).
const FLOOR_DETECTION: f64 = 0.98;
const FLOOR_CLASS_BY_STATUS: f64 = 0.96;
const FLOOR_CLASS_REAL_CODES: f64 = 0.98;
const FLOOR_CLASS_SISIMAI: f64 = 0.43;
const FLOOR_STATUS: f64 = 0.98;
const FLOOR_MESSAGE_ID: f64 = 0.97;
const FLOOR_RECIPIENT_COUNT: f64 = 0.97;

#[test]
fn bounce_corpus_rates() {
    let Some(corpora) = corpora::corpora_for("bounce_corpus", &["bounce_sisimai/EXPECTED.json"]) else {
        return;
    };
    let root = corpora.join("bounce_sisimai");
    let expected = read_json(&root.join("EXPECTED.json"));
    let files = expected
        .get("files")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("{root:?}/EXPECTED.json has no \"files\" object"));
    assert!(files.len() > 300, "EXPECTED.json lists only {} files", files.len());

    let started = Instant::now();
    let mut cases: Vec<Case> = Vec::new();
    for (name, entry) in files {
        let path = root.join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path:?}: {e}"));
        if name.starts_with("mailbox/") {
            if name.ends_with("/mbox-0") {
                for (i, msg) in split_mbox(&bytes).into_iter().enumerate() {
                    cases.push(Case::new(format!("{name}#{}", i + 1), msg, Expect::MboxBounce, entry));
                }
            } else {
                cases.push(Case::new(name.clone(), bytes, Expect::Degenerate, entry));
            }
            continue;
        }
        let expect = expectation(name, entry);
        cases.push(Case::new(name.clone(), bytes, expect, entry));
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));

    // Run everything, catching panics (a panic is a failure of its own).
    let mut panics = Vec::new();
    for c in &mut cases {
        match catch_unwind(AssertUnwindSafe(|| detect(&c.bytes))) {
            Ok(r) => c.got = r,
            Err(_) => panics.push(c.name.clone()),
        }
    }
    let elapsed = started.elapsed();

    // (a) detection and false positives.
    let mut det = Rate::new("(a) detection: expected bounces detected");
    let mut det_asserted = Rate::new("asserted");
    let mut det_family = Rate::new("family-only");
    let mut det_mbox = Rate::new("mbox-0 messages");
    let mut fp = Rate::new("(a) false positives: non-bounces reported as bounces");
    let mut fp_kinds: Vec<(&str, usize, usize)> = Vec::new();
    for c in &cases {
        match &c.expect {
            Expect::Bounce { asserted } | Expect::FamilyBounce { asserted } => {
                let ok = c.got.is_some();
                det.add(ok, &c.name);
                if *asserted {
                    det_asserted.add(ok, &c.name);
                } else {
                    det_family.add(ok, &c.name);
                }
            }
            Expect::MboxBounce => {
                det.add(c.got.is_some(), &c.name);
                det_mbox.add(c.got.is_some(), &c.name);
            }
            Expect::NotBounce(kind) => {
                // `add(true)` counts a false positive here: the rate is "wrongly reported".
                let wrong = c.got.is_some();
                fp.add(wrong, &c.name);
                match fp_kinds.iter_mut().find(|(k, _, _)| k == kind) {
                    Some(e) => {
                        e.1 += usize::from(wrong);
                        e.2 += 1;
                    }
                    None => fp_kinds.push((kind, usize::from(wrong), 1)),
                }
            }
            Expect::Degenerate => {}
        }
    }

    // (b) class, (c) status, (d) Message-ID.
    let mut class_sisimai = Rate::new("(b) hard/soft vs sisimai hardbounce (different taxonomy, informative)");
    let mut class_digit = Rate::new("(b) hard/soft vs class of the expected status (5.x.x hard, 4.x.x soft)");
    let mut class_digit_real = Rate::new("real codes");
    let mut class_digit_pseudo = Rate::new("sisimai pseudo-codes");
    let mut status_all = Rate::new("(c) status code exact (sisimai pseudo-codes X.0.9NN left out)");
    let mut status_verbatim = Rate::new("expected code written in the file");
    let mut rcpt_count = Rate::new("(e) number of failed recipients equals the expected number");
    let mut msgid = Rate::new("(d) original Message-ID found (ids visible in the returned headers)");
    let mut msgid_extra = 0usize;
    let mut msgid_wrong = Vec::new();
    let mut no_status_given = 0usize;
    for c in &cases {
        if !c.expect.is_bounce() {
            continue;
        }
        let got = c.got.as_ref();
        if !c.results.is_empty() {
            let hards: Vec<bool> = c.results.iter().filter_map(|r| r.hard).collect();
            if !hards.is_empty() {
                let ok = got.is_some_and(|b| hards.contains(&(b.class == BounceClass::Hard)));
                class_sisimai.add(ok, &c.name);
            }
            let digit_classes: Vec<BounceClass> = c
                .results
                .iter()
                .filter_map(|r| match r.status.bytes().next() {
                    Some(b'5') => Some(BounceClass::Hard),
                    Some(b'4') => Some(BounceClass::Soft),
                    _ => None,
                })
                .collect();
            if !digit_classes.is_empty() {
                let ok = got.is_some_and(|b| digit_classes.contains(&b.class));
                class_digit.add(ok, &c.name);
                if c.results.iter().all(|r| is_pseudo(&r.status)) {
                    class_digit_pseudo.add(ok, &c.name);
                } else {
                    class_digit_real.add(ok, &c.name);
                }
            }
            rcpt_count.add(got.is_some_and(|b| b.recipients.len() == c.expected_recipients), &c.name);
            let codes: Vec<&str> =
                c.results.iter().map(|r| r.status.as_str()).filter(|s| !s.is_empty() && !is_pseudo(s)).collect();
            if codes.is_empty() {
                no_status_given += 1;
            } else {
                let ok = got.and_then(|b| b.status.as_deref()).is_some_and(|s| codes.contains(&s));
                let label = format!("{} (want {:?}, got {:?})", c.name, codes, got.and_then(|b| b.status.clone()));
                status_all.add(ok, &label);
                let text = String::from_utf8_lossy(&c.bytes);
                if codes.iter().any(|code| text.contains(code)) {
                    status_verbatim.add(ok, &label);
                }
            }
        }
        let visible = returned_ids(&c.bytes);
        let got_id = got.and_then(|b| b.original_message_id.clone());
        if visible.is_empty() {
            if got_id.is_some() {
                msgid_extra += 1;
            }
        } else {
            let ok = got_id.as_ref().is_some_and(|id| visible.contains(id));
            if !ok && got_id.is_some() {
                msgid_wrong.push(format!("{} (got {:?})", c.name, got_id));
            }
            msgid.add(ok, &c.name);
        }
    }

    // Robustness: degenerate inputs.
    let degenerate: Vec<&Case> = cases.iter().filter(|c| matches!(c.expect, Expect::Degenerate)).collect();
    let degenerate_bad: Vec<&str> = degenerate.iter().filter(|c| c.got.is_some()).map(|c| c.name.as_str()).collect();

    println!("bounce_sisimai: {} inputs ({} files) in {:.0?}", cases.len(), files.len(), elapsed);
    det.print_with(&format!("[{}; {}; {}]", det_asserted.summary(), det_family.summary(), det_mbox.summary()));
    fp.print_with(&fp_kinds.iter().map(|(k, w, n)| format!("{k} {w}/{n}")).collect::<Vec<_>>().join(", "));
    class_sisimai.print();
    class_digit.print_with(&format!("[{}; {}]", class_digit_real.summary(), class_digit_pseudo.summary()));
    status_all.print_with(&format!(
        "[{}; {no_status_given} bounce files give only pseudo/empty codes]",
        status_verbatim.summary()
    ));
    msgid.print_with(&format!(
        "{} found where no id is visible (e.g. inside a base64 part or from In-Reply-To); {} wrong: {:?}",
        msgid_extra,
        msgid_wrong.len(),
        msgid_wrong.iter().take(MAX_SHOWN).collect::<Vec<_>>()
    ));
    rcpt_count.print();
    println!(
        "robustness: {} degenerate inputs, {} reported as bounces {:?}; {} panics {:?}",
        degenerate.len(),
        degenerate_bad.len(),
        degenerate_bad,
        panics.len(),
        panics
    );

    assert!(panics.is_empty(), "detect panicked on {panics:?}");
    assert!(degenerate_bad.is_empty(), "degenerate inputs reported as bounces: {degenerate_bad:?}");
    det.assert_floor(FLOOR_DETECTION);
    // None allowed: a false positive is a person who never gets an answer.
    assert_eq!(fp.hits, 0, "false positives: {:?}", fp.misses_or_hits());
    class_digit.assert_floor(FLOOR_CLASS_BY_STATUS);
    class_digit_real.assert_floor(FLOOR_CLASS_REAL_CODES);
    class_sisimai.assert_floor(FLOOR_CLASS_SISIMAI);
    status_all.assert_floor(FLOOR_STATUS);
    msgid.assert_floor(FLOOR_MESSAGE_ID);
    rcpt_count.assert_floor(FLOOR_RECIPIENT_COUNT);
}

// ---------------------------------------------------------------------------------------------
// Expectations
// ---------------------------------------------------------------------------------------------

enum Expect {
    /// `is_bounce: true` with per-recipient results.
    Bounce { asserted: bool },
    /// No per-file assertion; the family (file-name prefix or err/ piece) is a bounce.
    FamilyBounce { asserted: bool },
    /// A message split out of mailbox/mbox-0.
    MboxBounce,
    /// Must not be a bounce; the kind is printed.
    NotBounce(&'static str),
    /// 0–3 byte robustness inputs.
    Degenerate,
}

impl Expect {
    fn is_bounce(&self) -> bool {
        matches!(self, Expect::Bounce { .. } | Expect::FamilyBounce { .. } | Expect::MboxBounce)
    }
}

struct Recipient {
    status: String,
    hard: Option<bool>,
}

struct Case {
    name: String,
    bytes: Vec<u8>,
    expect: Expect,
    results: Vec<Recipient>,
    /// Distinct recipient indexes in the expectation (one file lists index 1 twice).
    expected_recipients: usize,
    got: Option<Bounce>,
}

impl Case {
    fn new(name: String, bytes: Vec<u8>, expect: Expect, entry: &Value) -> Case {
        let results = match (&expect, entry.get("results").and_then(Value::as_array)) {
            (Expect::Bounce { .. }, Some(list)) => list
                .iter()
                .map(|r| Recipient {
                    status: r.get("deliverystatus").and_then(Value::as_str).unwrap_or("").to_string(),
                    hard: r.get("hardbounce").and_then(Value::as_bool),
                })
                .collect(),
            _ => Vec::new(),
        };
        let mut indexes: Vec<i64> = match entry.get("results").and_then(Value::as_array) {
            Some(list) => list
                .iter()
                .enumerate()
                .map(|(i, r)| r.get("index").and_then(Value::as_i64).unwrap_or(i as i64 + 1))
                .collect(),
            None => Vec::new(),
        };
        indexes.sort_unstable();
        indexes.dedup();
        Case { name, bytes, expect, results, expected_recipients: indexes.len(), got: None }
    }
}

fn expectation(name: &str, entry: &Value) -> Expect {
    let file = name.rsplit('/').next().unwrap_or(name);
    let flag = |k: &str| entry.get(k).and_then(Value::as_bool);
    if flag("is_feedback_report") == Some(true) || file.starts_with("arf-") {
        return Expect::NotBounce("feedback/ARF");
    }
    if flag("is_auto_reply") == Some(true) || file.starts_with("rfc3834-") {
        return Expect::NotBounce("vacation");
    }
    match flag("is_bounce") {
        Some(false) => {
            let delivered = entry
                .get("results")
                .and_then(Value::as_array)
                .is_some_and(|l| l.iter().any(|r| r.get("reason").and_then(Value::as_str) == Some("delivered")));
            if delivered { Expect::NotBounce("delivered DSN") } else { Expect::NotBounce("normal mail") }
        }
        Some(true) => {
            if entry.get("results").and_then(Value::as_array).is_some_and(|l| !l.is_empty()) {
                Expect::Bounce { asserted: true }
            } else {
                Expect::FamilyBounce { asserted: true }
            }
        }
        None => {
            let bounce_family = file.starts_with("lhost-")
                || file.starts_with("rhost-")
                || file.starts_with("rfc3464-")
                || name.starts_with("maildir/err/");
            assert!(bounce_family, "{name}: no expectation and no known family");
            Expect::FamilyBounce { asserted: false }
        }
    }
}

/// sisimai's pseudo status codes (X.0.9NN) never appear in real mail.
fn is_pseudo(code: &str) -> bool {
    let mut it = code.split('.');
    matches!((it.next(), it.next(), it.next()), (Some(_), Some("0"), Some(d)) if d.len() == 3 && d.starts_with('9'))
}

/// The ids of `Message-ID:` lines after the top header block, other than the bounce's own.
fn returned_ids(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes).replace("\r\n", "\n").replace('\r', "\n");
    let mut own = None;
    let mut in_top = true;
    let mut ids = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if in_top && line.trim().is_empty() {
            in_top = false;
            continue;
        }
        let l = line.trim_start_matches([' ', '\t', '>']);
        if !l.get(..11).is_some_and(|p| p.eq_ignore_ascii_case("message-id:")) {
            continue;
        }
        let mut v = l.get(11..).unwrap_or("").trim().to_string();
        if v.is_empty() {
            v = lines.peek().map(|n| n.trim().to_string()).unwrap_or_default();
        }
        // A quoted-printable soft line break inside the id.
        while v.ends_with('=') && !v.contains('>') {
            v.pop();
            match lines.next() {
                Some(next) => v.push_str(next.trim()),
                None => break,
            }
        }
        let id = v.trim().trim_start_matches('<').split('>').next().unwrap_or("").trim().to_string();
        if id.is_empty() {
            continue;
        }
        if in_top {
            own.get_or_insert(id);
        } else if own.as_deref() != Some(id.as_str()) {
            ids.push(id);
        }
    }
    ids
}

/// Splits an mbox on `From ` separator lines (the separator line itself is dropped).
fn split_mbox(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut cur: Option<Vec<u8>> = None;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") {
            if let Some(m) = cur.take() {
                out.push(m);
            }
            cur = Some(Vec::new());
            continue;
        }
        cur.get_or_insert_with(Vec::new).extend_from_slice(line);
    }
    if let Some(m) = cur {
        out.push(m);
    }
    out.retain(|m| m.iter().any(|b| !b.is_ascii_whitespace()));
    out
}

// ---------------------------------------------------------------------------------------------
// Tallies
// ---------------------------------------------------------------------------------------------

struct Rate {
    label: &'static str,
    hits: usize,
    total: usize,
    /// Names of the files that missed (or, for the false-positive line, that hit).
    listed: Vec<String>,
}

impl Rate {
    fn new(label: &'static str) -> Rate {
        Rate { label, hits: 0, total: 0, listed: Vec::new() }
    }
    fn add(&mut self, ok: bool, name: &str) {
        self.total += 1;
        if ok {
            self.hits += 1;
        }
        if ok == self.lists_hits() {
            self.listed.push(name.to_string());
        }
    }
    fn lists_hits(&self) -> bool {
        self.label.contains("false positives")
    }
    fn misses_or_hits(&self) -> &[String] {
        &self.listed
    }
    fn rate(&self) -> f64 {
        if self.total == 0 { 1.0 } else { self.hits as f64 / self.total as f64 }
    }
    fn summary(&self) -> String {
        format!("{} {}/{}", self.label, self.hits, self.total)
    }
    fn print(&self) {
        self.print_with("");
    }
    fn print_with(&self, extra: &str) {
        let what = if self.lists_hits() { "reported" } else { "failing" };
        let shown: Vec<&String> = self.listed.iter().take(MAX_SHOWN).collect();
        let more = self.listed.len().saturating_sub(MAX_SHOWN);
        println!(
            "{}: {}/{} = {:.1}%{}{} | {what}: {:?}{}",
            self.label,
            self.hits,
            self.total,
            100.0 * self.rate(),
            if extra.is_empty() { "" } else { " " },
            extra,
            shown,
            if more > 0 { format!(" (+{more} more)") } else { String::new() }
        );
    }
    fn assert_floor(&self, floor: f64) {
        assert!(
            self.rate() >= floor,
            "{}: {:.1}% is below the floor {:.1}% ({}/{}); failing: {:?}",
            self.label,
            100.0 * self.rate(),
            100.0 * floor,
            self.hits,
            self.total,
            self.listed
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path:?}: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{path:?} is not JSON: {e}"))
}
