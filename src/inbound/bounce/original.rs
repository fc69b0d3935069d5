//! The returned original: header-ish text, the Message-ID of the copy, and where a copy pasted
//! inline in the text body starts.
//! Talks to: nothing; pure text scanning.

use super::*;

// -------------------------------------------------------------------------------------------
// Header-ish text
// -------------------------------------------------------------------------------------------

/// `Name: value` fields of a header block (unfolded; stops at the first blank line after a field).
pub(super) fn header_fields(t: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in t.lines().take(2000) {
        if line.trim().is_empty() {
            if out.is_empty() {
                continue;
            }
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = split_field(line) {
            out.push((name, value.trim().to_string()));
        }
    }
    out
}

/// `Name: value` with a plausible field name.
pub(super) fn split_field(line: &str) -> Option<(String, &str)> {
    let colon = line.find(':')?;
    let name = line.get(..colon)?;
    if name.is_empty() || name.len() > 40 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    Some((name.to_ascii_lowercase(), line.get(colon + 1..).unwrap_or("")))
}

/// The first `Message-ID:` header line in `t` (any indentation or `>` quoting), its id.
pub(super) fn find_header_id(t: &str, own: Option<&str>) -> Option<String> {
    let mut lines = t.lines().take(5000).peekable();
    while let Some(line) = lines.next() {
        let l = line.trim_start_matches([' ', '\t', '>']);
        if l.len() < 11 || !l.get(..11).is_some_and(|p| p.eq_ignore_ascii_case("message-id:")) {
            continue;
        }
        let mut value = l.get(11..).unwrap_or("").trim().to_string();
        if value.is_empty()
            && let Some(next) = lines.peek()
        {
            value = next.trim().to_string();
        }
        if let Some(id) = first_id(&value)
            && own != Some(id.as_str())
        {
            return Some(id);
        }
    }
    None
}

/// The first `<id>` in `v`, or the whole token when there are no brackets.
pub(super) fn first_id(v: &str) -> Option<String> {
    if let Some(start) = v.find('<') {
        let rest = v.get(start + 1..)?;
        let end = rest.find('>').unwrap_or(rest.len());
        return clean_id(rest.get(..end)?);
    }
    clean_id(v.split_whitespace().next()?)
}

pub(super) fn last_id(v: &str) -> Option<String> {
    let start = v.rfind('<')?;
    let rest = v.get(start + 1..)?;
    let end = rest.find('>')?;
    clean_id(rest.get(..end)?)
}

pub(super) fn clean_id(s: &str) -> Option<String> {
    let s = s.trim().trim_start_matches('<').trim_end_matches('>').trim();
    if s.is_empty() || s.len() > 998 || s.contains(char::is_whitespace) {
        return None;
    }
    Some(s.to_string())
}

// -------------------------------------------------------------------------------------------
// Where the returned copy starts in a text body
// -------------------------------------------------------------------------------------------

pub(super) const RETURNED_MARKERS: &[&str] = &[
    "below this line is a copy of the message",
    "this is a copy of the message",
    "copy of the original message",
    "original message follows",
    "original message --",
    "original message headers",
    "original message header",
    "header of the original message",
    "headers of the original message",
    "unsent message follows",
    "message header follows",
    "returned message --",
    "returned message follows",
    "--- returned message",
    "------- returned message",
    "original mail as follows",
    "the original message was",
    "undelivered message headers",
    "headers of your message",
    "original message:",
];

/// Byte offset in `text` where the copy of the returned original starts (or `text.len()`).
pub(super) fn returned_copy_start(text: &str) -> usize {
    // Most mail has no marker at all: then only the header-like lines need looking at.
    let markers = RETURNED.found_in(text);
    let starts = |t: &str, p: &str| t.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
    let mut offset = 0;
    let mut seen_text = false;
    for line in text.split_inclusive('\n').take(10_000) {
        let t = line.trim();
        if seen_text
            && ((markers && {
                let l = t.to_ascii_lowercase();
                RETURNED_MARKERS.iter().any(|m| l.contains(m) && !l.contains("received at"))
            }) || starts(t, "received:")
                || starts(t, "return-path:"))
        {
            return offset;
        }
        if !t.is_empty() {
            seen_text = true;
        }
        offset += line.len();
    }
    text.len()
}
