//! The failed recipients when no delivery-status record names them: addresses read from the
//! explanation text, minus the report's own addresses.
//! Talks to: nothing; pure.

use super::*;

// -------------------------------------------------------------------------------------------
// Recipients from text
// -------------------------------------------------------------------------------------------

pub(super) fn exclusions(top: &Top, parts: &Parts) -> Vec<String> {
    let mut e: Vec<String> = Vec::new();
    e.push(top.from_addr.clone());
    e.extend(top.to_addrs.iter().cloned());
    e.extend(parts.returned_from.iter().cloned());
    e
}

/// Addresses mentioned in an explanation text, in order, skipping daemon addresses, ids and
/// "please contact" lines; those near an error (a code or failure wording within the next two
/// lines) come first.
pub(super) fn text_addresses(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().take(2000).collect();
    let near_error: Vec<bool> = lines.iter().map(|l| line_has_error(l)).collect();
    let mut strong: Vec<String> = Vec::new();
    let mut weak: Vec<String> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let lower = line.to_ascii_lowercase();
        let lt = lower.trim_start();
        if lt.starts_with("message-id")
            || lower.contains("message-id:")
            || lt.starts_with("from:")
            || lt.starts_with("reply-to:")
            || lower.contains("contact")
            || lower.contains("assistance")
        {
            continue;
        }
        let near = near_error.get(i..(i + 3).min(near_error.len())).is_some_and(|w| w.iter().any(|&b| b));
        for a in addresses_in(line) {
            let local = a.split('@').next().unwrap_or("");
            if matches!(local, "mailer-daemon" | "mailer_daemon") {
                continue;
            }
            if strong.len() + weak.len() >= MAX_RECIPIENTS || strong.contains(&a) || weak.contains(&a) {
                continue;
            }
            if near {
                strong.push(a);
            } else {
                weak.push(a);
            }
        }
    }
    if strong.is_empty() { weak } else { strong }
}

/// A line that reports an error: a reply or status code, or failure wording.
pub(super) fn line_has_error(line: &str) -> bool {
    if find_enhanced(line, false).is_some() || find_smtp(line).is_some() {
        return true;
    }
    let l = line.to_ascii_lowercase();
    HARD_WORDS.iter().chain(SOFT_WORDS).any(|w| l.contains(w))
        || ["said", "error", "failed", "unknown", "reject", "refused", "denied", "invalid", "not found"]
            .iter()
            .any(|w| l.contains(w))
}

/// Email-address-looking tokens in `s` (lower-cased).
pub(super) fn addresses_in(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let is_local = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&c);
    let is_domain = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'.';
    let mut i = 0;
    while i < b.len() {
        if byte_at(b, i) == b'@' {
            let mut s0 = i;
            while s0 > 0 && is_local(byte_before(b, s0)) {
                s0 -= 1;
            }
            let mut e = i + 1;
            while e < b.len() && is_domain(byte_at(b, e)) {
                e += 1;
            }
            if let (Some(local), Some(domain)) = (s.get(s0..i), s.get(i + 1..e)) {
                let local = local.trim_matches('.');
                let domain = domain.trim_matches('.');
                if !local.is_empty() && domain.contains('.') && !local.starts_with('\'') {
                    // Long machine ids (SES message ids and the like) are not recipients.
                    if local.len() <= 64 {
                        out.push(format!("{local}@{domain}").to_lowercase());
                    }
                }
            }
            i = e.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

pub(super) fn push_recipient(list: &mut Vec<String>, r: &str) {
    if list.len() >= MAX_RECIPIENTS {
        return;
    }
    let r = r.trim().to_lowercase();
    if !r.is_empty() && !list.contains(&r) {
        list.push(r);
    }
}
