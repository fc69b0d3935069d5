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
    line.len() - stripped.len() <= 3 && stripped.starts_with('>')
}

pub(super) fn next_nonblank(lines: &[&str], from: usize) -> Option<usize> {
    (from..lines.len()).find(|&k| !is_blank(lines[k]))
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
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let run = i - start;
            if run == 4 && (b[start] == b'1' && b[start + 1] == b'9' || b[start] == b'2' && b[start + 1] == b'0') {
                return true;
            }
            // 9:30, 18.30 — but not a piece of a dotted number (192.0.2.153, 5.1.1).
            let dotted_before = start > 0 && b[start - 1] == b'.';
            if (1..=2).contains(&run)
                && i + 2 < b.len()
                && (b[i] == b':' || (b[i] == b'.' && !dotted_before))
                && b[i + 1].is_ascii_digit()
                && b[i + 2].is_ascii_digit()
                && !(b[i] == b'.' && b.get(i + 3).is_some_and(|c| c.is_ascii_digit() || *c == b'.'))
            {
                return true;
            }
        } else {
            i += 1;
        }
    }
    false
}

pub(super) fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
