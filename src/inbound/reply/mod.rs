//! Reply stripping: the new content of a reply, without the quoted history and the signature.
//!
//! [`split_reply`] takes a plain-text body (what mail-parser gives for the text part, or its
//! HTML-to-text conversion) and splits it into what the sender wrote now (`visible`), their
//! signature and the quoted history. It is a pure function with no regular expressions; every
//! per-line test looks at a bounded number of lines and bytes, so the running time is linear in
//! the size of the body (a 766 KB quote takes a few milliseconds) and it never panics.
//!
//! How it reads a message, top to bottom:
//! - `>` lines are quotations (any depth, with or without a space). A lone `>` line or two in a
//!   message that has no quote header is kept as text (`>>> see here <<<` is not a quote).
//! - A quote header ends the new content: "On <date>, <name> wrote:" (also wrapped over up to
//!   five lines, with the address on its own line), and its equivalents in German, French, Dutch,
//!   Spanish, Catalan, Italian, Portuguese, Polish, Czech, the Scandinavian languages, Finnish,
//!   Russian, Greek, Turkish, Hungarian, Vietnamese, Chinese, Japanese, Korean and Hebrew (bidi
//!   marks ignored), the "<date> <name> <address>:" form used
//!   by Gmail in many locales, Android's "---- X wrote ----", Outlook's header block ("From: /
//!   Sent: / To: / Subject:" and its translations, bold or indented), "-----Original Message-----"
//!   and its translations. Separator lines just above a header (`____`, `----`, `====`) go with it.
//!   Outlook's "From: Name / Sent: <date>" pair without addresses, and a lone "From: Name"
//!   right under Outlook's rule of underscores, also start the history; a From line whose value
//!   reads as a sentence ("From: the mayor's office we heard…") never does.
//! - When a header is followed by `>` lines, only the header and the quoted block are removed and
//!   text after it is kept: that is how inline and bottom-posted answers are written. A header
//!   followed by unquoted text (Outlook, most mobile clients) cuts everything below it.
//! - Forwarded messages ("---------- Forwarded message ---------", "Begin forwarded message:",
//!   Thunderbird's "-------- Forwarded Message --------", and their translations) cut like
//!   "-----Original Message-----" when the sender wrote something above them: the new content is
//!   the answer, the forward is history. A mail that is only a forward (nothing above it, or only
//!   a hand-off note such as "FYI", "Zur Info", "Pour info", "供参考") keeps the forward as its
//!   content: the forwarded text is what the sender passes on (talon keeps "FYI" with its forward
//!   too, `test_dont_parse_quotations_for_forwarded_messages`).
//! - The signature is searched at the end of the remaining text: the "-- " delimiter (and `--`),
//!   a rule line (`---`, `___`, `—`) followed by a short block, "Sent from my iPhone" and the other
//!   mobile / Outlook-app taglines in several languages, a closing ("Regards," "Thanks," "Mit
//!   freundlichen Grüßen" …) followed by a few short lines, "-Name" lines, and a trailing contact
//!   block (a name followed by phone / e-mail / web lines). A signature never starts on the first
//!   line of the new content (except a mobile tagline), and a candidate whose tail contains prose
//!   is rejected, so "regards" or "Sent from" inside a sentence, markdown rules and `--` list items
//!   stay in the text.

//!
//! Files: `lines.rs` (per-line helpers), `headers.rs` (quote headers, attributions, Outlook
//! header blocks, separators and forwards, with their phrase lists), `signature.rs` (signature
//! detection), `tests.rs`. Talks to nothing: pure functions on `&str`.

// Runs on the daemon's path outside `catch_unwind`: nothing here may index or slice.
#![deny(clippy::indexing_slicing, clippy::string_slice)]

mod headers;
mod lines;
mod signature;

use headers::{Kind, Splitter, detect_splitter};
use lines::{
    at, flag, has_quote_run, is_blank, is_quote_line, is_separator_line, join_trimmed, next_nonblank, non_empty,
    normalize_newlines, span, tail_from,
};
use signature::find_signature;

/// A reply body split into what the sender wrote now, their signature, and the quoted history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyParts {
    /// The new text, trimmed.
    pub visible: String,
    /// The sender's signature block (delimiter included), if one was recognised.
    pub signature: Option<String>,
    /// The quoted history: quote headers, `>` lines and everything below a cutting header.
    pub quoted: Option<String>,
}

/// Splits a plain-text reply body into new text, signature and quoted history.
///
/// Never panics: every line and byte access goes through `get` (see `lines::at`, `span`,
/// `tail_from`), and the module denies `clippy::indexing_slicing` and `clippy::string_slice`.
pub fn split_reply(body: &str) -> ReplyParts {
    let text = normalize_newlines(body);
    let lines: Vec<&str> = text.split('\n').collect();
    let is_quote: Vec<bool> = lines.iter().map(|l| is_quote_line(l)).collect();
    let splitters: Vec<Option<Splitter>> = (0..lines.len()).map(|i| detect_splitter(&lines, i, &is_quote)).collect();
    let quotes_active = splitters.iter().flatten().any(|s| s.kind != Kind::Forward) || has_quote_run(&lines, &is_quote);

    let mut out = Collector::default();
    let mut forward_at: Option<usize> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = at(&lines, i);
        if let Some(sp) = splitters.get(i).copied().flatten() {
            match sp.kind {
                // A forward with nothing written above it is the content; below an answer it
                // is history like "-----Original Message-----".
                Kind::Forward if !out.has_text() || out.is_hand_off_note() => {
                    forward_at = Some(i);
                    break;
                }
                Kind::Forward | Kind::HeaderBlock | Kind::Separator => {
                    out.begin_removal(sp.prefix_len, line);
                    out.quote_rest(tail_from(line, sp.prefix_len));
                    for l in span(&lines, i + 1, lines.len()) {
                        out.quote_rest(l);
                    }
                    break;
                }
                Kind::Attribution => {
                    out.begin_removal(sp.prefix_len, line);
                    out.quote_rest(tail_from(line, sp.prefix_len));
                    for l in span(&lines, i + 1, sp.end) {
                        out.quote_rest(l);
                    }
                    match next_nonblank(&lines, sp.end) {
                        Some(k) if flag(&is_quote, k) => {
                            for l in span(&lines, sp.end, k) {
                                out.quote_rest(l);
                            }
                            i = consume_region(&lines, &is_quote, k, &mut out);
                        }
                        _ => {
                            for l in span(&lines, sp.end, lines.len()) {
                                out.quote_rest(l);
                            }
                            break;
                        }
                    }
                    continue;
                }
            }
        }
        if quotes_active && flag(&is_quote, i) {
            out.begin_removal(0, line);
            i = consume_region(&lines, &is_quote, i, &mut out);
            continue;
        }
        out.keep(line);
        i += 1;
    }

    let kept = &out.kept;
    let (sig_start, sig_end) = find_signature(kept).unwrap_or((kept.len(), kept.len()));
    let mut visible = join_trimmed(span(kept, 0, sig_start));
    let signature = non_empty(join_trimmed(span(kept, sig_start, sig_end)));
    let mut quoted_lines = out.quoted;
    quoted_lines.extend_from_slice(span(kept, sig_end, kept.len()));
    if let Some(f) = forward_at {
        let forwarded = join_trimmed(span(&lines, f, lines.len()));
        if visible.is_empty() {
            visible = forwarded;
        } else if !forwarded.is_empty() {
            visible.push_str("\n\n");
            visible.push_str(&forwarded);
        }
    }
    ReplyParts { visible, signature, quoted: non_empty(join_trimmed(&quoted_lines)) }
}

/// The new content of a reply: [`split_reply`]'s visible part.
pub fn new_content(body: &str) -> String {
    split_reply(body).visible
}

// ---------------------------------------------------------------------------------------------
// Collecting kept and quoted lines
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Collector<'a> {
    kept: Vec<&'a str>,
    quoted: Vec<&'a str>,
    /// Lines were removed since the last kept line (used to avoid doubled blank lines).
    gap: bool,
}

impl<'a> Collector<'a> {
    fn keep(&mut self, line: &'a str) {
        if self.gap && is_blank(line) && self.kept.last().is_some_and(|l| is_blank(l)) {
            return;
        }
        // Text on both sides of a removed quote: keep the two answers apart.
        if self.gap && !is_blank(line) && self.kept.last().is_some_and(|l| !is_blank(l)) {
            self.kept.push("");
        }
        self.gap = false;
        self.kept.push(line);
    }

    /// Starts removing at `line[prefix_len..]`: keeps the prefix (text sharing the line with a
    /// header) and moves separator lines just above the header to the quoted part.
    fn begin_removal(&mut self, prefix_len: usize, line: &'a str) {
        if prefix_len > 0 {
            let prefix = line.get(..prefix_len).unwrap_or("");
            let prefix = prefix.trim_end_matches(|c: char| c == '-' || c.is_whitespace());
            if !prefix.is_empty() {
                self.kept.push(prefix);
                self.gap = true;
                return;
            }
        }
        let mut moved = Vec::new();
        while let Some(last) = self.kept.last() {
            if is_separator_line(last) || is_blank(last) {
                moved.push(*last);
                self.kept.pop();
            } else {
                break;
            }
        }
        moved.reverse();
        self.quoted.extend(moved);
        self.gap = true;
    }

    /// Whether anything but blank and rule lines has been kept so far.
    fn has_text(&self) -> bool {
        self.kept.iter().any(|l| !is_blank(l) && !is_separator_line(l))
    }

    /// Whether the kept text is only a hand-off note ("FYI", "Zur Info", "Pour info", "供参考"):
    /// such a note says nothing by itself, so the forward below it is the content (as talon
    /// keeps "FYI" with its forward, `test_dont_parse_quotations_for_forwarded_messages`).
    fn is_hand_off_note(&self) -> bool {
        let mut text = self.kept.iter().filter(|l| !is_blank(l) && !is_separator_line(l));
        let (Some(only), None) = (text.next(), text.next()) else { return false };
        let note = only.trim().trim_end_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
        HAND_OFF_NOTES.contains(&note.as_str())
    }

    fn quote_rest(&mut self, line: &'a str) {
        self.quoted.push(line);
        self.gap = true;
    }
}

/// One-line notes that only hand a forwarded mail on, lowercased, without final punctuation.
const HAND_OFF_NOTES: &[&str] = &[
    "fyi",
    "fwd",
    "fw",
    "see below",
    "please see below",
    "for your information",
    "zur info",
    "zur information",
    "zur kenntnis",
    "siehe unten",
    "pour info",
    "pour information",
    "voir ci-dessous",
    "para tu información",
    "para su información",
    "para tu informacion",
    "ver abajo",
    "para sua informação",
    "para conhecimento",
    "per conoscenza",
    "per informazione",
    "ter info",
    "ter informatie",
    "zie hieronder",
    "för kännedom",
    "för info",
    "se nedan",
    "供参考",
    "仅供参考",
    "ご参考まで",
    "参考까지",
];

/// Consumes a block of `>` lines starting at `start` (a quote line): quote lines, blank lines and
/// short unquoted lines wedged between two quote lines (a long quoted line that was re-wrapped,
/// or a link that broke the quote markers). Returns the index of the first line after it.
fn consume_region<'a>(lines: &[&'a str], is_quote: &[bool], start: usize, out: &mut Collector<'a>) -> usize {
    let mut i = start;
    while i < lines.len() {
        if flag(is_quote, i) || is_blank(at(lines, i)) {
            out.quote_rest(at(lines, i));
            i += 1;
            continue;
        }
        // Unquoted text: part of the quote only if wedged directly between quote lines.
        let prev_is_quote = i.checked_sub(1).is_some_and(|p| flag(is_quote, p));
        let mut j = i;
        while j < lines.len() && j < i + 2 && !flag(is_quote, j) && !is_blank(at(lines, j)) {
            j += 1;
        }
        if prev_is_quote && flag(is_quote, j) {
            for l in span(lines, i, j) {
                out.quote_rest(l);
            }
            i = j;
            continue;
        }
        break;
    }
    i
}

#[cfg(test)]
mod tests;
