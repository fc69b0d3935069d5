//! When a message arrived: the moment every calendar date of a request is taken from (the year
//! in its tracking number, the eligibility date, the due date), so that a backlog handled after
//! an outage gets the dates its mail arrived on, not the day it was processed.
//!
//! The IMAP INTERNALDATE (set by the server on delivery) comes first; without it, the date of the
//! topmost `Received` header (added by the last server that handled the mail); without that, the
//! moment it was fetched. Pure: the caller passes both moments in. Talks to nothing.

use chrono::{DateTime, FixedOffset, Utc};

/// The arrival moment of `raw`, given the server's INTERNALDATE (if any) and the fetch time.
pub fn arrival(raw: &[u8], internal_date: Option<DateTime<FixedOffset>>, fetched_at: DateTime<Utc>) -> DateTime<Utc> {
    internal_date.map(|d| d.with_timezone(&Utc)).or_else(|| topmost_received(raw)).unwrap_or(fetched_at)
}

/// The date stamp of the first `Received:` header: what follows its last `;` (RFC 5321 §4.4),
/// with any trailing comment such as `(UTC)` or `(CST)` dropped.
fn topmost_received(raw: &[u8]) -> Option<DateTime<Utc>> {
    let head = header_block(raw);
    let text = String::from_utf8_lossy(head);
    let mut value: Option<String> = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        match &mut value {
            // Folded continuation of the header we are reading.
            Some(v) if line.starts_with([' ', '\t']) => {
                v.push(' ');
                v.push_str(line.trim());
            }
            Some(_) => break,
            None => {
                if let Some((name, rest)) = line.split_once(':')
                    && name.trim().eq_ignore_ascii_case("received")
                {
                    value = Some(rest.trim().to_string());
                }
            }
        }
    }
    let value = value?;
    let (_, stamp) = value.rsplit_once(';')?;
    let stamp = strip_comments(stamp);
    DateTime::parse_from_rfc2822(stamp.trim()).ok().map(|d| d.with_timezone(&Utc))
}

/// The header block: up to the first empty line (CRLF or bare LF), or all of `raw`.
pub(super) fn header_block(raw: &[u8]) -> &[u8] {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(raw.len());
    raw.get(..end).unwrap_or(raw)
}

/// Drops `( … )` comments (not nested in practice in date stamps).
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc)).unwrap_or_default()
    }

    const MAIL: &[u8] = b"Received: from mx.example.org (mx.example.org [192.0.2.1])\r\n\tby imap.311.example with LMTP; Thu, 31 Dec 2026 20:15:00 -0600 (CST)\r\nReceived: from elsewhere; Thu, 31 Dec 2026 20:14:00 -0600\r\nFrom: a@b.example\r\nSubject: hi\r\n\r\nReceived: not a header; Fri, 1 Jan 2027 00:00:00 +0000\r\n";

    #[test]
    fn internal_date_comes_first() {
        let internal = DateTime::parse_from_rfc3339("2026-12-31T20:15:01-06:00").ok();
        assert_eq!(arrival(MAIL, internal, utc("2027-01-04T09:00:00Z")), utc("2027-01-01T02:15:01Z"));
    }

    #[test]
    fn then_the_topmost_received_header_folded_with_a_comment() {
        assert_eq!(arrival(MAIL, None, utc("2027-01-04T09:00:00Z")), utc("2027-01-01T02:15:00Z"));
    }

    #[test]
    fn then_the_fetch_time() {
        let fetched = utc("2027-01-04T09:00:00Z");
        assert_eq!(arrival(b"From: a@b.example\r\n\r\nbody", None, fetched), fetched);
        assert_eq!(arrival(b"Received: garbage without a date\r\n\r\n", None, fetched), fetched);
        assert_eq!(arrival(b"Received: x; not a date at all\n\n", None, fetched), fetched);
        assert_eq!(arrival(b"", None, fetched), fetched);
        // Hostile bytes never panic.
        assert_eq!(arrival("Received: \u{ff};(((\r\n\r\n".as_bytes(), None, fetched), fetched);
    }
}
