//! Reply stripping measured against other projects' reply corpora (read in place, never copied).
//!
//! Where the corpora are: `INTAKE311_CORPORA` (CI sets it to the absolute path of the shared
//! corpora folder); when unset, `../shared/corpora` beside the project root. With neither, it
//! prints one `CORPUS SUITE NOT RUN` line and passes; a set variable that points nowhere, or a
//! missing corpus, fails it.
//!
//! Every corpus states its expectations in its own model (see each folder's EXPECTED.json); this
//! test translates them into statements about [`ReplyParts`], compared by meaning: CRLF
//! normalised, trailing spaces and surrounding whitespace ignored, runs of blank lines counted as
//! one. It prints one line per corpus (and per talon subset) with the pass rate, the failing
//! cases (limited), and asserts a floor per line a little below the current result, so a
//! regression fails the build while the numbers stay honest. No timing is asserted; the
//! performance fixtures only print how long they took.
//!
//! How each corpus is read:
//! - github/email_reply_parser: `visible_text` must equal our `visible` exactly (github hides
//!   signatures too). Fragment assertions become statements by the fragment's role, taken from its
//!   quoted/signature/hidden flags: a new-text fragment must be in `visible`; a quoted one in
//!   `quoted` and not in `visible`; a signature in `signature` and not in `visible`. Without flags,
//!   fragment 0 is new text and, in a two-fragment reading, fragment 1 is the quote. One fragment
//!   means nothing may be removed. Ruby's `^` matches at any line start.
//! - crisp/email-reply-parser: the first fragment (`first_fragment_*`) and the visible text must
//!   equal our `visible`; crisp's signature model differs from github's on the same text (it keeps
//!   "-Abhishek Kona" in the reply that github hides), so for this corpus `visible` followed by
//!   `signature` is also accepted (counted and printed). With four or more fragments the message
//!   has inline answers, which we keep, so the first fragment need only start `visible`. The
//!   [DATE]/[FROM] templates are expanded into one case per substitution. JS `^` is start of text.
//! - talon: `extract_from_plain` removes quotations but keeps signatures, so the expected reply is
//!   compared with `visible` followed by `signature`. Signature cases compare `visible` and
//!   `signature` with talon's (text, signature). The ML signature cases depend on the sender's
//!   name, which `split_reply` does not get: they are a separate line. Cases whose talon test ran
//!   with patched constants or mocks are skipped (listed). MIME fixtures go through mail-parser's
//!   first text body, as the daemon does. HTML fixtures are converted with mail-parser's
//!   `html_to_text` and compared with all whitespace removed, as talon's own HTML tests do; they
//!   are a separate line because the daemon only passes text.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

#[path = "support/corpora.rs"]
mod corpora;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::Instant;

use serde_json::Value;

use intake311::inbound::reply::{ReplyParts, new_content, split_reply};

/// Failing cases printed per line.
const MAX_FAILURES_SHOWN: usize = 15;

#[test]
fn reply_corpora_pass_rates() {
    let Some(root) = corpora::corpora_for(
        "reply_corpora",
        &["reply_github_email_reply_parser", "reply_crisp_email_reply_parser", "reply_talon"],
    ) else {
        return;
    };
    let mut lines: Vec<Tally> = Vec::new();
    lines.push(github(&root.join("reply_github_email_reply_parser")));
    lines.push(crisp(&root.join("reply_crisp_email_reply_parser")));
    let talon_dir = root.join("reply_talon");
    let (plain, signatures, ml, html) = talon(&talon_dir);
    let mut talon_total = Tally::new("reply_talon");
    for t in [&plain, &signatures] {
        talon_total.cases.extend(t.cases.iter().cloned());
        talon_total.skipped.extend(t.skipped.iter().cloned());
    }
    lines.push(talon_total);
    lines.push(plain);
    lines.push(signatures);
    lines.push(ml);
    lines.push(html);

    println!();
    for t in &lines {
        t.print_details();
    }
    println!("\n==== reply corpora summary ====");
    for t in &lines {
        println!("{}", t.summary());
    }

    // Floors: a little below the results when they were set (see the summary above).
    let floors = [
        ("reply_github_email_reply_parser", 21),           // of 22
        ("reply_crisp_email_reply_parser", 105),           // of 109
        ("reply_talon", 79),                               // of 82 (plain quotations + signatures)
        ("reply_talon/quotations_plain", 60),              // of 62
        ("reply_talon/signatures", 19),                    // of 20
        ("reply_talon/signatures_ml_sender_dependent", 9), // of 13
        ("reply_talon/html_via_html_to_text", 19),         // of 26
    ];
    let mut below = Vec::new();
    for (label, floor) in floors {
        let t = lines.iter().find(|t| t.label == label);
        let passed = t.map_or(0, |t| t.passed());
        if passed < floor {
            below.push(format!("{label}: {passed} passed, floor is {floor}"));
        }
    }
    assert!(below.is_empty(), "reply stripping regressed below the corpus floors:\n{}", below.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Reading files
// ---------------------------------------------------------------------------------------------

fn read_text(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path:?}: {e}"));
    String::from_utf8_lossy(&bytes).into_owned()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&read_text(path)).unwrap_or_else(|e| panic!("{path:?} is not JSON: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Tallies
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
struct Outcome {
    name: String,
    failures: Vec<String>,
    note: Option<String>,
}

struct Tally {
    label: String,
    cases: Vec<Outcome>,
    skipped: Vec<String>,
    notes: Vec<String>,
}

impl Tally {
    fn new(label: &str) -> Self {
        Tally { label: label.to_string(), cases: Vec::new(), skipped: Vec::new(), notes: Vec::new() }
    }

    fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.failures.is_empty()).count()
    }

    fn summary(&self) -> String {
        let total = self.cases.len();
        let pct = if total == 0 { 0.0 } else { 100.0 * self.passed() as f64 / total as f64 };
        let skipped = if self.skipped.is_empty() { String::new() } else { format!(", {} skipped", self.skipped.len()) };
        format!("{}: {}/{} passed ({:.1}%){}", self.label, self.passed(), total, pct, skipped)
    }

    fn print_details(&self) {
        println!("---- {}", self.summary());
        for n in &self.notes {
            println!("   note: {n}");
        }
        let notes: Vec<&Outcome> = self.cases.iter().filter(|c| c.note.is_some()).collect();
        for c in notes {
            println!("   note {}: {}", c.name, c.note.as_deref().unwrap_or(""));
        }
        for s in &self.skipped {
            println!("   skipped {s}");
        }
        let failed: Vec<&Outcome> = self.cases.iter().filter(|c| !c.failures.is_empty()).collect();
        for c in failed.iter().take(MAX_FAILURES_SHOWN) {
            println!("   FAIL {}: {}", c.name, clip(&c.failures.join(" | "), 600));
        }
        if failed.len() > MAX_FAILURES_SHOWN {
            println!("   … and {} more failures", failed.len() - MAX_FAILURES_SHOWN);
        }
    }
}

fn clip(s: &str, max: usize) -> String {
    let flat = s.replace('\n', "⏎");
    if flat.chars().count() <= max { flat } else { format!("{}…", flat.chars().take(max).collect::<String>()) }
}

/// Runs `split_reply`, turning a panic into a failure.
fn run(body: &str) -> Result<ReplyParts, String> {
    let parts = catch_unwind(AssertUnwindSafe(|| split_reply(body))).map_err(|_| "split_reply panicked".to_string())?;
    let visible =
        catch_unwind(AssertUnwindSafe(|| new_content(body))).map_err(|_| "new_content panicked".to_string())?;
    if visible != parts.visible {
        return Err("new_content differs from split_reply().visible".to_string());
    }
    Ok(parts)
}

// ---------------------------------------------------------------------------------------------
// Comparison by meaning
// ---------------------------------------------------------------------------------------------

/// CRLF normalised, trailing spaces dropped, runs of blank lines as one, trimmed.
fn norm(s: &str) -> String {
    let s = s.replace("\r\n", "\n").replace('\r', "\n");
    let mut out: Vec<&str> = Vec::new();
    for line in s.split('\n') {
        let line = line.trim_end();
        if line.is_empty() && out.last().is_some_and(|l| l.is_empty()) {
            continue;
        }
        out.push(line);
    }
    out.join("\n").trim().to_string()
}

/// Like [`norm`] but ignoring blank lines entirely (used where a signature is re-attached).
fn no_blank(s: &str) -> String {
    norm(s).split('\n').filter(|l| !l.trim().is_empty()).collect::<Vec<_>>().join("\n")
}

/// All whitespace removed.
fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

fn with_signature(p: &ReplyParts) -> String {
    match &p.signature {
        Some(sig) => format!("{}\n{}", p.visible, sig),
        None => p.visible.clone(),
    }
}

fn mismatch(what: &str, expected: &str, got: &str) -> String {
    format!("{what}: expected {:?}, got {:?}", clip(expected, 160), clip(got, 160))
}

/// `visible` equals `expected`. With `lenient` (a corpus whose signature boundary differs from
/// ours), `expected` may instead lie between `visible` and `visible` + `signature`: it starts with
/// our visible text and continues with the start of our signature. Ok(true) when that was needed.
fn visible_equals(p: &ReplyParts, expected: &str, lenient: bool) -> Result<bool, String> {
    if norm(&p.visible) == norm(expected) {
        return Ok(false);
    }
    if lenient && p.signature.is_some() {
        let (vis, exp, full) = (no_blank(&p.visible), no_blank(expected), no_blank(&with_signature(p)));
        if exp.starts_with(&vis)
            && full.starts_with(&exp)
            && (exp.len() == full.len() || full[exp.len()..].starts_with('\n'))
        {
            return Ok(true);
        }
    }
    Err(mismatch("visible", expected, &p.visible))
}

// ---------------------------------------------------------------------------------------------
// Fragment roles (github and crisp)
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    /// New text: must be in `visible`.
    New,
    /// Quoted history: in `quoted`, not in `visible`.
    Quoted,
    /// Signature: in `signature`, not in `visible`.
    Signature,
    /// Not new text (quote or signature, flags unknown): not in `visible`, but kept somewhere.
    Removed,
    /// Nothing can be said in our model.
    Unknown,
}

fn flag(v: &Value, key: &str, i: usize) -> Option<bool> {
    match v.get(key)? {
        Value::Array(a) => a.get(i).and_then(Value::as_bool),
        Value::Object(o) => o.get(&i.to_string()).and_then(Value::as_bool),
        _ => None,
    }
}

fn role_of(v: &Value, i: usize, quoted_key: &str, sig_key: &str, hidden_key: &str) -> Role {
    let q = flag(v, quoted_key, i);
    let s = flag(v, sig_key, i);
    let h = flag(v, hidden_key, i);
    if q == Some(true) {
        return Role::Quoted;
    }
    if s == Some(true) {
        return Role::Signature;
    }
    if h == Some(true) {
        return Role::Removed;
    }
    if q == Some(false) && (s == Some(false) || h == Some(false)) || i == 0 {
        return Role::New;
    }
    let count = v.get("fragment_count").and_then(Value::as_u64);
    if count.is_none() || count == Some(2) { Role::Removed } else { Role::Unknown }
}

fn text_in(hay: &str, needle: &str) -> bool {
    let n = squash(needle);
    !n.is_empty() && squash(hay).contains(&n)
}

fn check_text(p: &ReplyParts, role: Role, text: &str, what: &str, failures: &mut Vec<String>) {
    if text.trim().is_empty() {
        return;
    }
    let quoted = p.quoted.as_deref().unwrap_or("");
    let sig = p.signature.as_deref().unwrap_or("");
    let in_visible = text_in(&p.visible, text);
    let ok = match role {
        Role::New => in_visible,
        Role::Quoted => !in_visible && text_in(quoted, text),
        Role::Signature => !in_visible && text_in(sig, text),
        Role::Removed => !in_visible && (text_in(quoted, text) || text_in(sig, text)),
        Role::Unknown => true,
    };
    if !ok {
        failures.push(format!("{what} ({role:?}) {:?}: visible={:?}", clip(text, 80), clip(&p.visible, 160)));
    }
}

fn check_pattern(p: &ReplyParts, role: Role, pattern: &str, multiline: bool, what: &str, failures: &mut Vec<String>) {
    let quoted = p.quoted.as_deref().unwrap_or("");
    let sig = p.signature.as_deref().unwrap_or("");
    // A removed fragment's `^` is a line start wherever it ended up.
    let in_visible = |ml: bool| mini_re::is_match(pattern, &norm(&p.visible), ml);
    let ok = match role {
        Role::New => in_visible(multiline),
        Role::Quoted => !in_visible(true) && mini_re::is_match(pattern, quoted, true),
        Role::Signature => !in_visible(true) && mini_re::is_match(pattern, sig, true),
        Role::Removed => {
            !in_visible(true) && (mini_re::is_match(pattern, quoted, true) || mini_re::is_match(pattern, sig, true))
        }
        Role::Unknown => true,
    };
    if !ok {
        failures.push(format!("{what} ({role:?}) /{pattern}/: visible={:?}", clip(&p.visible, 160)));
    }
}

fn entries(v: &Value, key: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    if let Some(o) = v.get(key).and_then(Value::as_object) {
        for (k, val) in o {
            if let (Ok(i), Some(s)) = (k.parse::<usize>(), val.as_str()) {
                out.push((i, s.to_string()));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// github/email_reply_parser
// ---------------------------------------------------------------------------------------------

fn github(dir: &Path) -> Tally {
    let mut tally = Tally::new("reply_github_email_reply_parser");
    let expected = read_json(&dir.join("EXPECTED.json"));
    let files = expected.get("files").and_then(Value::as_object).expect("github EXPECTED.json has files");
    for (file, v) in files {
        let body = read_text(&dir.join(file));
        let started = Instant::now();
        let p = match run(&body) {
            Ok(p) => p,
            Err(e) => {
                tally.cases.push(Outcome { name: file.clone(), failures: vec![e], note: None });
                continue;
            }
        };
        let elapsed = started.elapsed();
        let mut failures = Vec::new();
        let mut checks = 0;
        if let Some(vt) = v.get("visible_text").and_then(Value::as_str) {
            checks += 1;
            if let Err(e) = visible_equals(&p, vt, false) {
                failures.push(e);
            }
        }
        if v.get("fragment_count").and_then(Value::as_u64) == Some(1) {
            checks += 1;
            if let Err(e) = visible_equals(&p, &body, false) {
                failures.push(format!("single fragment: {e}"));
            }
            if p.quoted.is_some() || p.signature.is_some() {
                failures.push("single fragment: something was removed".to_string());
            }
        }
        for (i, text) in entries(v, "fragment_equals") {
            checks += 1;
            check_text(
                &p,
                role_of(v, i, "quoted", "signature", "hidden"),
                &text,
                &format!("fragment {i}"),
                &mut failures,
            );
        }
        for (i, text) in entries(v, "fragment_contains") {
            checks += 1;
            check_text(
                &p,
                role_of(v, i, "quoted", "signature", "hidden"),
                &text,
                &format!("fragment {i}"),
                &mut failures,
            );
        }
        for (i, pat) in entries(v, "fragment_matches") {
            checks += 1;
            let role = role_of(v, i, "quoted", "signature", "hidden");
            check_pattern(&p, role, &pat, true, &format!("fragment {i}"), &mut failures);
        }
        let note = if v.get("max_seconds").is_some() {
            Some(format!("{} bytes split in {:.1} ms", body.len(), elapsed.as_secs_f64() * 1000.0))
        } else if checks == 0 {
            Some("no assertion in our model; counted as passed when it runs".to_string())
        } else {
            None
        };
        tally.cases.push(Outcome { name: file.clone(), failures, note });
    }
    tally
}

// ---------------------------------------------------------------------------------------------
// crisp/email-reply-parser
// ---------------------------------------------------------------------------------------------

fn crisp(dir: &Path) -> Tally {
    let mut tally = Tally::new("reply_crisp_email_reply_parser");
    let expected = read_json(&dir.join("EXPECTED.json"));
    let files = expected.get("files").and_then(Value::as_object).expect("crisp EXPECTED.json has files");
    let mut with_sig = Vec::new();
    let mut unchecked = Vec::new();
    for (file, v) in files {
        let body = read_text(&dir.join(file));
        let mut assertion_sets: Vec<&Value> = vec![v];
        if let Some(w) = v.get("from_willdurand").and_then(Value::as_array) {
            assertion_sets.extend(w.iter());
        }
        for a in assertion_sets {
            if let Some(subs) = a.get("substitutions").and_then(Value::as_array) {
                let placeholder = a.get("template_placeholder").and_then(Value::as_str).unwrap_or("");
                for (n, sub) in subs.iter().filter_map(Value::as_str).enumerate() {
                    let name = format!("{file}[{n}]");
                    let instance = body.replace(placeholder, sub);
                    let (outcome, checks) = crisp_case(&name, &instance, a, Some(sub), &mut with_sig);
                    if checks == 0 {
                        unchecked.push(name);
                    }
                    tally.cases.push(outcome);
                }
                continue;
            }
            let has_assertions = a.as_object().is_some_and(|o| {
                o.keys().any(|k| !matches!(k.as_str(), "tests" | "from_willdurand" | "note" | "source" | "test"))
            });
            if !has_assertions {
                continue;
            }
            let name = if std::ptr::eq(a, v) { file.clone() } else { format!("{file} (willdurand)") };
            let (outcome, checks) = crisp_case(&name, &body, a, None, &mut with_sig);
            if checks == 0 {
                unchecked.push(name);
            }
            tally.cases.push(outcome);
        }
    }
    if !with_sig.is_empty() {
        tally.notes.push(format!(
            "{} case(s) matched only as visible + signature (crisp keeps what we call a signature): {}",
            with_sig.len(),
            with_sig.join(", ")
        ));
    }
    if !unchecked.is_empty() {
        tally.notes.push(format!(
            "{} case(s) assert nothing we can check (only fragment counts of crisp's model); they pass when \
             split_reply runs: {}",
            unchecked.len(),
            unchecked.join(", ")
        ));
    }
    tally
}

/// One crisp case; also returns how many of its assertions could be checked in our model.
fn crisp_case(
    name: &str,
    body: &str,
    v: &Value,
    substitution: Option<&str>,
    with_sig: &mut Vec<String>,
) -> (Outcome, usize) {
    let p = match run(body) {
        Ok(p) => p,
        Err(e) => return (Outcome { name: name.to_string(), failures: vec![e], note: None }, 1),
    };
    let mut checks = 0;
    let mut failures = Vec::new();
    let mut needed_sig = false;
    let count = v.get("fragment_count").and_then(Value::as_u64);
    let mut equal = |expected: &str, what: &str, failures: &mut Vec<String>| match visible_equals(&p, expected, true) {
        Ok(sig) => needed_sig |= sig,
        Err(e) => failures.push(format!("{what}: {e}")),
    };
    for key in ["first_fragment_trimmed", "first_fragment_exact"] {
        if let Some(e) = v.get(key).and_then(Value::as_str) {
            checks += 1;
            if count.is_some_and(|c| c >= 4) {
                if !norm(&p.visible).starts_with(&norm(e)) {
                    failures.push(mismatch(&format!("{key} (prefix, inline answers)"), e, &p.visible));
                }
            } else {
                equal(e, key, &mut failures);
            }
        }
    }
    for key in ["visible_text_exact", "visible_text_trimmed", "parseReply_exact", "visible_text_exact_for_each"] {
        if let Some(e) = v.get(key).and_then(Value::as_str) {
            checks += 1;
            equal(e, key, &mut failures);
        }
    }
    if count == Some(1) {
        checks += 1;
        equal(body, "single fragment", &mut failures);
        if p.quoted.is_some() {
            failures.push("single fragment: something was removed as quoted".to_string());
        }
    }
    if let (Some(template), Some(sub)) = (v.get("fragment1_content_for_each").and_then(Value::as_str), substitution) {
        let content = template.replace("{FROM}", sub);
        checks += 1;
        check_text(&p, Role::Removed, &content, "fragment 1", &mut failures);
    }
    for key in ["fragment_equals", "fragment_contains"] {
        for (i, text) in entries(v, key) {
            let role = role_of(v, i, "isQuoted", "isSignature", "isHidden");
            checks += usize::from(role != Role::Unknown);
            check_text(&p, role, &text, &format!("fragment {i}"), &mut failures);
        }
    }
    for (key, multiline) in [("fragment_matches", false), ("fragment_matches_multiline", true)] {
        for (i, pat) in entries(v, key) {
            let role = role_of(v, i, "isQuoted", "isSignature", "isHidden");
            checks += usize::from(role != Role::Unknown);
            check_pattern(&p, role, &pat, multiline, &format!("fragment {i}"), &mut failures);
        }
    }
    if v.get("some_fragment_is_signature").and_then(Value::as_bool) == Some(true) {
        checks += 1;
        if p.signature.is_none() {
            failures.push("expected a signature, found none".to_string());
        }
    }
    if let Some(list) = v.get("parseReplied_contains").and_then(Value::as_array) {
        checks += 1;
        for s in list.iter().filter_map(Value::as_str) {
            if !text_in(p.quoted.as_deref().unwrap_or(""), s) && !text_in(p.signature.as_deref().unwrap_or(""), s) {
                failures.push(format!("removed part should contain {s:?}"));
            }
        }
    }
    if needed_sig && failures.is_empty() {
        with_sig.push(name.to_string());
    }
    (Outcome { name: name.to_string(), failures, note: None }, checks)
}

// ---------------------------------------------------------------------------------------------
// talon
// ---------------------------------------------------------------------------------------------

fn talon(dir: &Path) -> (Tally, Tally, Tally, Tally) {
    let mut plain = Tally::new("reply_talon/quotations_plain");
    let mut sigs = Tally::new("reply_talon/signatures");
    let mut ml = Tally::new("reply_talon/signatures_ml_sender_dependent");
    let mut html = Tally::new("reply_talon/html_via_html_to_text");

    let expected = read_json(&dir.join("EXPECTED.json"));
    let files = expected.get("files").and_then(Value::as_object).expect("talon EXPECTED.json has files");
    for (file, v) in files {
        let path = dir.join(file);
        if file.ends_with(".eml") {
            let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path:?}: {e}"));
            let body = mail_parser::MessageParser::default()
                .parse(&raw)
                .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
                .unwrap_or_default();
            let mut failures = Vec::new();
            match run(&body) {
                Err(e) => failures.push(e),
                Ok(p) => {
                    let got = with_signature(&p);
                    if let Some(e) = v.get("expected_reply").and_then(Value::as_str) {
                        if no_blank(&got) != no_blank(e) {
                            failures.push(mismatch("visible + signature", e, &got));
                        }
                    } else if got.trim().is_empty() || got.contains("From") {
                        // reply-quotations-share-block: non-empty and without the quoted "From".
                        failures.push(mismatch("non-empty reply without 'From'", "", &got));
                    }
                }
            }
            plain.cases.push(Outcome { name: file.clone(), failures, note: None });
        } else if file.ends_with(".html") {
            let expected_text = v
                .get("expected_reply")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| v.get("expected_html_whitespace_stripped").and_then(Value::as_str).map(html_text));
            let outcome = html_case(file, &read_text(&path), expected_text.as_deref());
            html.cases.push(outcome);
        } else if let Some(exp_text) = v.get("expected_text").and_then(Value::as_str) {
            // signature/emails/stripped/*: talon's ML extractor, given the sender's name.
            let body = read_text(&path);
            let exp_sig = v.get("expected_signature").and_then(Value::as_str).filter(|s| !s.is_empty());
            ml.cases.push(signature_case(file, &body, Some(exp_text), Some(exp_sig)));
        } else {
            // P/unicode_msg: must not fail.
            let body = read_text(&path);
            let failures = run(&body).err().into_iter().collect();
            sigs.cases.push(Outcome { name: file.clone(), failures, note: Some("must run".to_string()) });
        }
    }

    let index = read_json(&dir.join("inline_cases/INDEX.json"));
    for case in index.as_array().expect("talon INDEX.json is a list") {
        let kind = case.get("kind").and_then(Value::as_str).unwrap_or("");
        let file = case.get("file").and_then(Value::as_str).unwrap_or("");
        let name = file.rsplit('/').next().unwrap_or(file).to_string();
        let tally = match kind {
            "quotations_plain" => &mut plain,
            "signature_bruteforce" => &mut sigs,
            "signature_ml" => &mut ml,
            "quotations_html" => &mut html,
            other => panic!("unknown talon case kind {other}"),
        };
        if case.get("decorators").is_some() {
            tally.skipped.push(format!("{name} (talon test ran with patched constants/mocks)"));
            continue;
        }
        let body = read_text(&dir.join(file));
        let outcome = match kind {
            "quotations_plain" => {
                let e = case.get("expected_reply").and_then(Value::as_str).unwrap_or("");
                let failures = match run(&body) {
                    Err(err) => vec![err],
                    Ok(p) => {
                        let got = with_signature(&p);
                        if no_blank(&got) == no_blank(e) {
                            vec![]
                        } else {
                            vec![mismatch("visible + signature", e, &got)]
                        }
                    }
                };
                Outcome { name, failures, note: None }
            }
            "signature_bruteforce" | "signature_ml" => {
                let exp_text = case.get("expected_text").and_then(Value::as_str);
                let exp_sig = case.get("expected_signature").map(Value::as_str);
                signature_case(&name, &body, exp_text, exp_sig)
            }
            _ => {
                let e = case
                    .get("expected_html_whitespace_stripped")
                    .or_else(|| case.get("expected_html_exact"))
                    .and_then(Value::as_str)
                    .map(html_text);
                html_case(&name, &body, e.as_deref())
            }
        };
        tally.cases.push(outcome);
    }
    (plain, sigs, ml, html)
}

/// `expected_sig`: None = not asserted; Some(None) = no signature; Some(Some(s)) = signature s.
fn signature_case(name: &str, body: &str, expected_text: Option<&str>, expected_sig: Option<Option<&str>>) -> Outcome {
    let mut failures = Vec::new();
    match run(body) {
        Err(e) => failures.push(e),
        Ok(p) => {
            if let Some(t) = expected_text
                && norm(&p.visible) != norm(t)
            {
                failures.push(mismatch("visible", t, &p.visible));
            }
            match expected_sig {
                Some(None) if p.signature.is_some() => {
                    failures.push(mismatch("signature", "(none)", p.signature.as_deref().unwrap_or("")))
                }
                Some(Some(s)) if p.signature.as_deref().map(norm) != Some(norm(s)) => {
                    failures.push(mismatch("signature", s, p.signature.as_deref().unwrap_or("(none)")))
                }
                _ => {}
            }
        }
    }
    Outcome { name: name.to_string(), failures, note: None }
}

fn html_case(name: &str, html: &str, expected_text: Option<&str>) -> Outcome {
    let text = mail_parser::decoders::html::html_to_text(html);
    let mut failures = Vec::new();
    match (run(&text), expected_text) {
        (Err(e), _) => failures.push(e),
        (Ok(_), None) => failures.push("no expectation found".to_string()),
        (Ok(p), Some(e)) => {
            let got = with_signature(&p);
            if squash(&got) != squash(e) {
                failures.push(mismatch("visible + signature (whitespace removed)", e, &got));
            }
        }
    }
    Outcome { name: name.to_string(), failures, note: None }
}

/// The text of talon's expected HTML: tags removed, the few entities it uses decoded.
fn html_text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&#160;", " ").replace("&nbsp;", " ").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

// ---------------------------------------------------------------------------------------------
// A tiny regex matcher for the corpora's fragment patterns (literals, `.`, classes, `\d\s\w`,
// `^`/`$`, and the `* + ?` quantifiers); enough for what the Ruby and JS tests use.
// ---------------------------------------------------------------------------------------------

mod mini_re {
    #[derive(Debug, Clone)]
    enum Atom {
        Char(char),
        Any,
        Class(Vec<(char, char)>, bool),
        Digit(bool),
        Space(bool),
        Word(bool),
        Start,
        End,
    }

    #[derive(Debug, Clone)]
    struct Piece {
        atom: Atom,
        min: usize,
        max: usize,
    }

    fn escape(c: char) -> Atom {
        match c {
            'n' => Atom::Char('\n'),
            't' => Atom::Char('\t'),
            'r' => Atom::Char('\r'),
            'd' => Atom::Digit(true),
            'D' => Atom::Digit(false),
            's' => Atom::Space(true),
            'S' => Atom::Space(false),
            'w' => Atom::Word(true),
            'W' => Atom::Word(false),
            other => Atom::Char(other),
        }
    }

    fn parse(pattern: &str) -> Vec<Piece> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut pieces = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let atom = match chars[i] {
                '\\' => {
                    i += 1;
                    escape(*chars.get(i).expect("pattern ends with a backslash"))
                }
                '.' => Atom::Any,
                '^' => Atom::Start,
                '$' => Atom::End,
                '[' => {
                    i += 1;
                    let negated = chars.get(i) == Some(&'^');
                    if negated {
                        i += 1;
                    }
                    let mut ranges = Vec::new();
                    while i < chars.len() && chars[i] != ']' {
                        let mut c = chars[i];
                        if c == '\\' {
                            i += 1;
                            c = match chars[i] {
                                'n' => '\n',
                                other => other,
                            };
                        }
                        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&e| e != ']') {
                            ranges.push((c, chars[i + 2]));
                            i += 3;
                        } else {
                            ranges.push((c, c));
                            i += 1;
                        }
                    }
                    Atom::Class(ranges, negated)
                }
                '(' | ')' | '|' | '{' => panic!("mini_re does not support {:?} in /{pattern}/", chars[i]),
                c => Atom::Char(c),
            };
            i += 1;
            let (min, max) = match chars.get(i) {
                Some('*') => (0, usize::MAX),
                Some('+') => (1, usize::MAX),
                Some('?') => (0, 1),
                _ => (1, 1),
            };
            if max != 1 || min != 1 {
                i += 1;
            }
            pieces.push(Piece { atom, min, max });
        }
        pieces
    }

    fn single(atom: &Atom, c: char) -> bool {
        match atom {
            Atom::Char(x) => *x == c,
            Atom::Any => c != '\n',
            Atom::Class(ranges, negated) => ranges.iter().any(|(a, b)| *a <= c && c <= *b) != *negated,
            Atom::Digit(yes) => c.is_ascii_digit() == *yes,
            Atom::Space(yes) => c.is_whitespace() == *yes,
            Atom::Word(yes) => (c.is_alphanumeric() || c == '_') == *yes,
            Atom::Start | Atom::End => false,
        }
    }

    fn here(pieces: &[Piece], text: &[char], pos: usize, multiline: bool) -> bool {
        let Some((piece, rest)) = pieces.split_first() else { return true };
        match piece.atom {
            Atom::Start => (pos == 0 || (multiline && text[pos - 1] == '\n')) && here(rest, text, pos, multiline),
            Atom::End => (pos == text.len() || (multiline && text[pos] == '\n')) && here(rest, text, pos, multiline),
            _ => {
                let mut n = 0;
                while n < piece.max && pos + n < text.len() && single(&piece.atom, text[pos + n]) {
                    n += 1;
                }
                loop {
                    if n < piece.min {
                        return false;
                    }
                    if here(rest, text, pos + n, multiline) {
                        return true;
                    }
                    if n == 0 {
                        return false;
                    }
                    n -= 1;
                }
            }
        }
    }

    /// Whether `pattern` matches anywhere in `text`; `multiline` makes `^`/`$` match at lines.
    pub fn is_match(pattern: &str, text: &str, multiline: bool) -> bool {
        let pieces = parse(pattern);
        let chars: Vec<char> = text.chars().collect();
        (0..=chars.len()).any(|start| here(&pieces, &chars, start, multiline))
    }

    #[test]
    fn mini_re_works() {
        assert!(is_match("^On [^\\:]+\\:", "x\nOn Tue, 1 wrote:", true));
        assert!(!is_match("^On [^\\:]+\\:", "x\nOn Tue, 1 wrote:", false));
        assert!(is_match("okay?", "oka", false));
        assert!(is_match(":\\+1:", "great :+1:", false));
        assert!(is_match("^-- \\nrick", "-- \nrick", false));
        assert!(is_match("https:\\/\\/example\\.com", "see https://example.com/x", false));
        assert!(!is_match("^Oh thanks.\\n\\nHaving", "Oh thanks.\nHaving", false));
    }
}
