//! Per-line helpers for reply stripping: blank, quote and rule lines, word counts, prose, dates.
//! Talks to nothing; used by the header and signature detectors in the sibling modules.

pub(super) fn normalize_newlines(body: &str) -> String {
    if !body.contains('\r') {
        return body.to_string();
    }
    body.replace("\r\n", "\n").replace('\r', "\n")
}

pub(super) fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

pub(super) fn is_quote_line(line: &str) -> bool {
    let stripped = line.trim_start_matches([' ', '\t']);
    line.len().saturating_sub(stripped.len()) <= 3 && stripped.starts_with('>')
}

pub(super) fn next_nonblank(lines: &[&str], from: usize) -> Option<usize> {
    (from..lines.len()).find(|&k| !is_blank(at(lines, k)))
}

/// Whether the message has three or more `>` lines in a row (blank lines allowed between them).
pub(super) fn has_quote_run(lines: &[&str], is_quote: &[bool]) -> bool {
    let mut run = 0;
    for (l, q) in lines.iter().zip(is_quote) {
        if *q {
            run += 1;
            if run >= 3 {
                return true;
            }
        } else if !is_blank(l) {
            run = 0;
        }
    }
    false
}

/// A line made only of rule characters (`----`, `____`, `====`, `***`, `—`).
pub(super) fn is_separator_line(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && t.chars().all(|c| matches!(c, '-' | '_' | '=' | '*' | '~' | '—' | '–' | '━' | '─'))
}

pub(super) fn join_trimmed(lines: &[&str]) -> String {
    lines.join("\n").trim().to_string()
}

pub(super) fn non_empty(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

pub(super) fn word_count(s: &str) -> usize {
    s.split_whitespace().count()
}

/// Prose rather than a signature line: a long sentence.
pub(super) fn is_prose(line: &str) -> bool {
    let t = line.trim();
    let words = word_count(t);
    (words >= 8 && t.ends_with(['.', '!', '?', ':', ';'])) || words >= 12
}

pub(super) fn has_digit(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit())
}

/// A four-digit year (19xx/20xx) or a time like 9:30 / 18.30 somewhere in `s`.
pub(super) fn has_date_or_time(s: &str) -> bool {
    let b = s.as_bytes();
    let byte = |k: usize| b.get(k).copied();
    let digit = |k: usize| byte(k).is_some_and(|c| c.is_ascii_digit());
    let mut i = 0;
    while i < b.len() {
        if !digit(i) {
            i += 1;
            continue;
        }
        let start = i;
        while digit(i) {
            i += 1;
        }
        let run = i.saturating_sub(start);
        if run == 4 && matches!((byte(start), byte(start + 1)), (Some(b'1'), Some(b'9')) | (Some(b'2'), Some(b'0'))) {
            return true;
        }
        // 9:30, 18.30 — but not a piece of a dotted number (192.0.2.153, 5.1.1).
        let dotted_before = start.checked_sub(1).and_then(byte) == Some(b'.');
        let sep = byte(i);
        if (1..=2).contains(&run)
            && (sep == Some(b':') || (sep == Some(b'.') && !dotted_before))
            && digit(i + 1)
            && digit(i + 2)
            && !(sep == Some(b'.') && byte(i + 3).is_some_and(|c| c.is_ascii_digit() || c == b'.'))
        {
            return true;
        }
    }
    false
}

pub(super) fn floor_char_boundary(s: &str, i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    (0..=i).rev().find(|&k| s.is_char_boundary(k)).unwrap_or(0)
}

/// Line `i`, or "" past the end: line access that cannot panic.
pub(super) fn at<'a>(lines: &[&'a str], i: usize) -> &'a str {
    lines.get(i).copied().unwrap_or("")
}

/// Lines `from..to`, clamped to the slice (empty when `from >= to`): cannot panic.
pub(super) fn span<'s, 'a>(lines: &'s [&'a str], from: usize, to: usize) -> &'s [&'a str] {
    let to = to.min(lines.len());
    lines.get(from.min(to)..to).unwrap_or_default()
}

/// `v[i]`, or false past the end.
pub(super) fn flag(v: &[bool], i: usize) -> bool {
    v.get(i).copied().unwrap_or(false)
}

/// `line[from..]`, or the whole line when `from` is not a char boundary; "" past the end.
pub(super) fn tail_from(line: &str, from: usize) -> &str {
    if from >= line.len() {
        return "";
    }
    line.get(from..).unwrap_or(line)
}
