//! Enhanced status codes (RFC 3463) and SMTP reply codes found in free text, the hard/soft class
//! of a report's wording, and the one-line reason.
//! Talks to: nothing; pure text scanning.

use super::*;

// -------------------------------------------------------------------------------------------
// Codes in text
// -------------------------------------------------------------------------------------------

#[derive(Default)]
pub(super) struct Codes {
    pub(super) status: Option<String>,
    pub(super) smtp: Option<String>,
    /// The line the first code was found on.
    pub(super) smtp_line: Option<String>,
    pub(super) status_line: Option<String>,
}

impl Codes {
    pub(super) fn scan(text: &str) -> Codes {
        let mut c = Codes::default();
        for line in text.lines().take(5000) {
            if c.status.is_none()
                && let Some(s) = find_enhanced(line, false)
            {
                c.status = Some(s);
                c.status_line = Some(line.to_string());
            }
            if c.smtp.is_none()
                && let Some((s, _)) = find_smtp(line)
            {
                c.smtp = Some(s);
                c.smtp_line = Some(line.to_string());
            }
            if c.status.is_some() && c.smtp.is_some() {
                break;
            }
        }
        c
    }
}

/// The first enhanced status code (RFC 3463 `class.subject.detail`, class 4 or 5, and 2 when
/// `allow_success`) in `s`.
pub(super) fn find_enhanced(s: &str, allow_success: bool) -> Option<String> {
    enhanced_from(s, 0, allow_success).map(|(code, _)| code)
}

/// The enhanced code of a diagnostic: the one right after an SMTP reply code (`550 5.1.1`,
/// `550-'5.7.1`, `#5.1.1`), flagged `true`, else the first one.
pub(super) fn diagnostic_code(d: &str) -> Option<(String, bool)> {
    let mut first = None;
    let mut from = 0;
    for _ in 0..16 {
        let Some((code, at)) = enhanced_from(d, from, false) else {
            break;
        };
        let before = d.get(..at).unwrap_or("").trim_end_matches([' ', '-', '\'', '"', '(', '#', '[', ':']);
        let bb = before.as_bytes();
        let n = bb.len();
        let after_reply = n >= 3
            && matches!(byte_at(bb, n - 3), b'4' | b'5')
            && byte_at(bb, n - 2).is_ascii_digit()
            && byte_at(bb, n - 1).is_ascii_digit()
            && (n == 3 || !byte_at(bb, n - 4).is_ascii_alphanumeric());
        if after_reply {
            return Some((code, true));
        }
        if first.is_none() {
            first = Some(code.clone());
        }
        from = at + code.len();
    }
    first.map(|c| (c, false))
}

/// The first enhanced code in `s` at or after byte `from`, with its offset.
pub(super) fn enhanced_from(s: &str, from: usize, allow_success: bool) -> Option<(String, usize)> {
    let b = s.as_bytes();
    let n = b.len();
    let mut i = from;
    while i + 5 <= n {
        let c = byte_at(b, i);
        let class_ok = c == b'4' || c == b'5' || (allow_success && c == b'2');
        let prev_ok = i == 0 || !(byte_before(b, i).is_ascii_alphanumeric() || byte_before(b, i) == b'.');
        if class_ok
            && prev_ok
            && b.get(i + 1) == Some(&b'.')
            && b.get(i + 2).is_some_and(|d| (b'0'..=b'7').contains(d))
            && b.get(i + 3) == Some(&b'.')
        {
            let mut j = i + 4;
            while j < n && j < i + 7 && byte_at(b, j).is_ascii_digit() {
                j += 1;
            }
            let digits = j - (i + 4);
            let next_ok = match b.get(j) {
                None => true,
                Some(d) if d.is_ascii_digit() || d.is_ascii_alphabetic() => false,
                Some(b'.') => !b.get(j + 1).is_some_and(|d| d.is_ascii_digit()),
                Some(_) => true,
            };
            if digits >= 1 && next_ok {
                return s.get(i..j).map(|c| (c.to_string(), i));
            }
        }
        i += 1;
    }
    None
}

/// The first SMTP reply code 4xx/5xx in `s` that stands as a reply code (at the start of the
/// line or after a separator, followed by a space, `-` or the end).
pub(super) fn find_smtp(s: &str) -> Option<(String, usize)> {
    let b = s.as_bytes();
    let n = b.len();
    let mut i = 0;
    while i + 3 <= n {
        let c = byte_at(b, i);
        if (c == b'4' || c == b'5')
            && byte_at(b, i + 1).is_ascii_digit()
            && byte_at(b, i + 1) <= b'5'
            && byte_at(b, i + 2).is_ascii_digit()
        {
            let prev_ok = i == 0
                || matches!(
                    byte_before(b, i),
                    b' ' | b'\t' | b'(' | b'[' | b':' | b'\'' | b'"' | b'<' | b'#' | b'=' | b';'
                );
            let next_ok = match b.get(i + 3) {
                None => true,
                Some(b' ') => {
                    // "550 5.1.1", "550 User unknown", "550 <addr>"; not "500 bytes"/"400 MB".
                    let rest = s.get(i + 4..).unwrap_or("").trim_start();
                    let word = rest.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
                    !matches!(
                        word.as_str(),
                        "bytes" | "kb" | "mb" | "gb" | "seconds" | "minutes" | "hours" | "days" | "ms" | "px"
                    )
                }
                Some(b'-') => b.get(i + 4).is_some_and(|d| !d.is_ascii_digit() || b.get(i + 5) == Some(&b'.')),
                Some(b')') | Some(b']') | Some(b'\'') | Some(b'"') | Some(b',') => true,
                Some(_) => false,
            };
            if prev_ok && next_ok {
                return s.get(i..i + 3).map(|c| (c.to_string(), i));
            }
        }
        i += 1;
    }
    None
}

/// A line that reads like an SMTP error rather than, say, a header of the returned copy.
pub(super) fn looks_like_error_line(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    ["said", "error", "reject", "unknown", "denied", "refused", "failed", "invalid", "not ", "smtp"]
        .iter()
        .any(|w| l.contains(w))
}

pub(super) const SOFT_WORDS: &[&str] = &[
    "mailbox full",
    "mailbox is full",
    "mailbox has exceeded",
    "quota",
    "insufficient storage",
    "exceeded storage",
    "temporar",
    "try again",
    "try later",
    "retry later",
    "will retry",
    "will be retried",
    "still being retried",
    "has been delayed",
    "not yet been delivered",
    "will continue to try",
    "greylist",
    "deferred",
    "retry timeout exceeded",
    "retry time not reached",
    "timeout exceeded",
    "too long in queue",
    "in the queue for too long",
    "could not be delivered for",
];

pub(super) const HARD_WORDS: &[&str] = &[
    "user unknown",
    "unknown user",
    "no such user",
    "no such recipient",
    "unknown recipient",
    "recipient unknown",
    "does not exist",
    "doesn't exist",
    "not exist",
    "no mailbox",
    "invalid recipient",
    "invalid mailbox",
    "invalid address",
    "address rejected",
    "rejected",
    "not recognized",
    "host not found",
    "host unknown",
    "no such domain",
    "unrouteable",
    "account has been disabled",
    "account disabled",
    "permanent",
    "mailbox unavailable",
    "mailbox not found",
    "user not found",
];

pub(super) fn wording_class(lower: &str) -> Option<BounceClass> {
    if SOFT_WORDS.iter().any(|w| lower.contains(w)) {
        Some(BounceClass::Soft)
    } else if HARD_WORDS.iter().any(|w| lower.contains(w)) {
        Some(BounceClass::Hard)
    } else {
        None
    }
}

/// Class without an enhanced status code: a delay notice is soft, then the SMTP reply code,
/// then the wording.
pub(super) fn text_class(codes: &Codes, lower_expl: &str, signals: &Signals) -> Option<BounceClass> {
    if signals.delay_words && !signals.success_words {
        return Some(BounceClass::Soft);
    }
    if let Some(s) = &codes.smtp {
        return Some(class_of_digit(s));
    }
    wording_class(lower_expl)
}

/// The line carrying the status or reply code, as a reason.
pub(super) fn text_reason(explanation: &str, codes: &Codes) -> Option<String> {
    if codes.status.is_none() && codes.smtp.is_none() {
        return None;
    }
    let mut with_smtp = None;
    let mut first = None;
    for line in explanation.lines().take(2000) {
        let enhanced = find_enhanced(line, false).is_some();
        if !enhanced && find_smtp(line).is_none() {
            continue;
        }
        let trimmed = line.trim_start();
        let cleaned = match split_field(trimmed) {
            Some((name, value)) if name == "diagnostic-code" => clean_diagnostic(value),
            // Other report fields ("Status: 5.1.1") say nothing a person can read.
            Some((name, _)) if DSN_FIELDS.contains(&name.as_str()) => continue,
            _ => one_line(trimmed.trim_start_matches(['>', '-', '(', '#', '|', '*', ' '])),
        };
        if cleaned.is_empty() {
            continue;
        }
        if informative(&cleaned) {
            if enhanced {
                return Some(cleaned);
            }
            with_smtp.get_or_insert(cleaned);
        } else {
            first.get_or_insert(cleaned);
        }
    }
    with_smtp.or(first)
}

/// Report field names that are not worth showing as a reason.
pub(super) const DSN_FIELDS: &[&str] = &[
    "status",
    "action",
    "final-recipient",
    "original-recipient",
    "remote-mta",
    "reporting-mta",
    "received-from-mta",
    "arrival-date",
    "last-attempt-date",
    "will-retry-until",
    "x-actual-recipient",
];

/// Has some words in it (not just a code or a number).
pub(super) fn informative(s: &str) -> bool {
    s.chars().filter(|c| c.is_alphabetic()).count() >= 8
}

/// The first explanation line with failure wording.
pub(super) fn failure_line(explanation: &str) -> Option<String> {
    for line in explanation.lines().take(500) {
        let l = line.trim().to_ascii_lowercase();
        // Banner lines ("----- The following addresses had permanent fatal errors -----").
        if l.starts_with(['-', '=', '*', '|', '#']) {
            continue;
        }
        if SOFT_WORDS.iter().chain(HARD_WORDS).any(|w| l.contains(w))
            || ["could not", "couldn't", "unable", "failed", "failure", "undeliverable", "not delivered", "error"]
                .iter()
                .any(|w| l.contains(w))
        {
            let t = one_line(line);
            if !t.is_empty() {
                return Some(t);
            }
        }
    }
    None
}
