//! Small text helpers that both sides of the mail flow use: folding a value onto one header
//! line, making a file name safe, taking the reply prefixes off a subject, and telling whether
//! staff-written text opens with its own greeting.
//!
//! Owns: these pure string functions. Talks to: nothing; it imports nothing from the crate, so
//! `inbound` and `outbound` can both use it without importing each other.

mod greeting;

pub use greeting::opens_with_greeting;

/// Collapses runs of white space (including CR/LF) to one space: nothing a sender writes in a
/// subject or name can break a header line of ours.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A file name safe to show and store: the last path component, control and path characters
/// replaced, never empty, at most 200 characters.
pub fn sanitize_filename(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .map(|c| if c.is_control() || matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|') { '_' } else { c })
        .take(200)
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    if trimmed.is_empty() { "attachment".to_string() } else { trimmed.to_string() }
}

/// The subject without any stack of reply/forward prefixes (`Re: AW: Fwd: …`).
pub fn strip_reply_prefixes(subject: &str) -> String {
    const PREFIXES: [&str; 12] = ["re", "fw", "fwd", "aw", "wg", "sv", "vs", "réf", "ref", "tr", "antw", "rv"];
    let mut s = subject.trim();
    while let Some((head, rest)) = s.split_once(':') {
        let head_l = head.trim().to_lowercase();
        let head_l = head_l.split('[').next().unwrap_or_default().trim().to_string();
        if !PREFIXES.contains(&head_l.as_str()) {
            break;
        }
        s = rest.trim_start();
    }
    s.to_string()
}

/// Lower-case hex SHA-256 of `data` (the digest recorded with a city import).
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_are_sanitised() {
        assert_eq!(sanitize_filename("C:\\Users\\x\\memo.pdf"), "memo.pdf");
        assert_eq!(sanitize_filename("../../.bashrc"), "bashrc");
        assert_eq!(sanitize_filename("a\r\nb.txt"), "a__b.txt");
        assert_eq!(sanitize_filename(""), "attachment");
        assert_eq!(sanitize_filename("..."), "attachment");
    }

    #[test]
    fn one_line_removes_header_breaks() {
        assert_eq!(one_line("Hi\r\nBcc: victim@x"), "Hi Bcc: victim@x");
    }

    #[test]
    fn reply_prefixes_are_stripped() {
        assert_eq!(strip_reply_prefixes("Re: AW: Fwd: Water"), "Water");
        assert_eq!(strip_reply_prefixes("RE[2]: SV: VS: Réf: Roads"), "Roads");
        assert_eq!(strip_reply_prefixes("Question: roads"), "Question: roads");
        assert_eq!(strip_reply_prefixes(""), "");
    }
}
