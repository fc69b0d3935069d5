//! Raw bytes to [`InboundMail`] with mail-parser, and the pure classification of what a mail is.
//!
//! Owns: everything we read out of a message (addresses, subject, text, attachments, thread and
//! automation headers) and the precise reason when a message cannot be used. Talks to: nothing;
//! no I/O, so it is unit-tested (and fuzzed) without servers.

pub mod auth_results;
pub mod bounce;
pub mod classify;
pub mod reply;

use mail_parser::{Address, HeaderName, HeaderValue, MessageParser, MimeHeaders as _, PartType};
use sha2::{Digest as _, Sha256};

use crate::domain::normalize_email;

/// Moved to [`crate::text`]; kept here so existing callers compile.
pub use crate::text::{one_line, sanitize_filename};
pub use classify::{Classification, classify};

/// Why a message could not be turned into an [`InboundMail`]. The text goes into the quarantine
/// record, so it says what was wrong in words an administrator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty message (0 bytes)")]
    Empty,
    #[error("not an email message: no header block could be parsed")]
    NotAMessage,
    #[error("no From address: the message has no usable From header")]
    NoFrom,
    #[error("From header `{0}` is not a valid address")]
    BadFrom(String),
    #[error("the text is in charset `{0}`, which cannot be decoded")]
    Charset(String),
    #[error("the MIME structure is broken beyond repair (the parser gave up on it)")]
    Broken,
}

/// Runs `f` over mail-parser, turning a panic inside the parser into `None`. mail-parser 0.11.9
/// panics ("Invalid part ID, could not find multipart") on some malformed multiparts, found by
/// fuzzing; the daemon must never die on a message, so every use of the parser goes through here.
pub fn guarded<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> Option<T> {
    std::panic::catch_unwind(f).ok()
}

/// A declared charset we have no decoder for, when it left undecodable bytes in the text.
fn undecodable_charset(msg: &mail_parser::Message<'_>) -> Option<String> {
    use mail_parser::decoders::charsets::map::charset_decoder;
    msg.text_bodies().chain(msg.html_bodies()).find_map(|part| {
        let charset = part.content_type()?.attribute("charset")?.trim().to_string();
        let known = charset_decoder(charset.as_bytes()).is_some()
            || ["utf-8", "utf8", "us-ascii", "ascii"].iter().any(|c| charset.eq_ignore_ascii_case(c));
        let garbled = part.text_contents().is_some_and(|t| t.contains('\u{FFFD}'));
        (!known && garbled).then_some(charset)
    })
}

/// An attachment as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundAttachment {
    /// Sanitised file name (no directories, no control characters); never empty.
    pub filename: String,
    pub content_type: String,
    pub size: usize,
    /// The decoded bytes (forwarded unchanged when staff send a response with attachments).
    pub data: Vec<u8>,
}

/// Headers that tell automatic mail from a person's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutomationHeaders {
    pub auto_submitted: Option<String>,
    pub precedence: Option<String>,
    pub x_autoreply: bool,
    pub list_id: bool,
    pub return_path: Option<String>,
    /// Our own loop header (`X-Intake311-Loop`).
    pub own_loop: bool,
}

/// One parsed incoming message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMail {
    /// Without angle brackets. Synthesised from a hash of the bytes when the header is missing,
    /// so the same bytes always get the same id.
    pub message_id: String,
    pub message_id_synthesised: bool,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// Normalised (lower-case) sender address.
    pub from: String,
    pub from_name: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub reply_to: Option<String>,
    /// Envelope recipients the server recorded (Delivered-To, X-Original-To): how a Bcc'd
    /// plus-address shows up.
    pub delivered_to: Vec<String>,
    pub subject: String,
    /// The plain text, or the HTML part turned into text when there is no plain part.
    pub text: String,
    pub attachments: Vec<InboundAttachment>,
    pub automation: AutomationHeaders,
    /// Raw values of every Authentication-Results header, topmost first (see [`auth_results`]).
    pub auth_results: Vec<String>,
    pub size: usize,
}

impl InboundMail {
    /// Every address the message was sent to: To, Cc and the envelope recipients.
    pub fn recipients(&self) -> Vec<String> {
        self.to.iter().chain(&self.cc).chain(&self.delivered_to).cloned().collect()
    }

    /// The domain part of the sender's address.
    pub fn from_domain(&self) -> &str {
        self.from.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

fn addresses(addr: Option<&Address<'_>>) -> Vec<String> {
    addr.map(|a| a.iter().filter_map(|a| a.address()).filter_map(normalize_email).collect()).unwrap_or_default()
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => vec![clean_id(t)],
        HeaderValue::TextList(list) => list.iter().map(|t| clean_id(t)).collect(),
        _ => Vec::new(),
    }
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect()
}

fn clean_id(id: &str) -> String {
    id.trim().trim_start_matches('<').trim_end_matches('>').trim().to_string()
}

fn header_text(msg: &mail_parser::Message<'_>, name: &str) -> Option<String> {
    msg.header_raw(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// Parses raw RFC 5322 bytes.
pub fn parse(raw: &[u8]) -> Result<InboundMail, ParseError> {
    guarded(|| parse_unguarded(raw, true)).unwrap_or(Err(ParseError::Broken))
}

/// As [`parse`], but a missing or unusable From leaves `from` empty instead of failing: for
/// delivery reports, whose From is often `MAILER-DAEMON` or `<>`, and which are never answered.
pub fn parse_report(raw: &[u8]) -> Result<InboundMail, ParseError> {
    guarded(|| parse_unguarded(raw, false)).unwrap_or(Err(ParseError::Broken))
}

fn parse_unguarded(raw: &[u8], strict_from: bool) -> Result<InboundMail, ParseError> {
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ParseError::Empty);
    }
    let mut msg = MessageParser::default().parse(raw).ok_or(ParseError::NotAMessage)?;
    if msg.headers().is_empty() {
        return Err(ParseError::NotAMessage);
    }

    let from_header = msg.from();
    let first_from = from_header.and_then(|a| a.first());
    let from_raw = first_from.and_then(|a| a.address()).map(str::to_string);
    let from = match (&from_raw, header_text(&msg, "From")) {
        (Some(a), _) => match normalize_email(a) {
            Some(f) => f,
            None if strict_from => return Err(ParseError::BadFrom(one_line(a))),
            None => String::new(),
        },
        (None, Some(raw_from)) if strict_from => return Err(ParseError::BadFrom(one_line(&raw_from))),
        (None, None) if strict_from => return Err(ParseError::NoFrom),
        (None, _) => String::new(),
    };
    let from_name = first_from.and_then(|a| a.name()).map(one_line).unwrap_or_default();
    if let Some(charset) = undecodable_charset(&msg) {
        return Err(ParseError::Charset(charset));
    }

    let (message_id, synthesised) = match msg.message_id().map(clean_id).filter(|s| !s.is_empty()) {
        Some(id) => (id, false),
        None => {
            let digest = Sha256::digest(raw);
            let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
            (format!("{hex}@no-message-id.intake311.invalid"), true)
        }
    };

    let text = msg.body_text(0).map(|t| t.replace("\r\n", "\n")).unwrap_or_default();

    // Names and types now; the bytes are moved out of the parser's parts at the end.
    let attachment_parts: Vec<(usize, InboundAttachment)> = msg
        .attachments
        .iter()
        .filter_map(|id| {
            let index = usize::try_from(*id).ok()?;
            let part = msg.parts.get(index)?;
            let ct = part
                .content_type()
                .map(|c| match c.subtype() {
                    Some(sub) => format!("{}/{}", c.ctype(), sub),
                    None => c.ctype().to_string(),
                })
                .unwrap_or_else(|| "application/octet-stream".to_string());
            Some((
                index,
                InboundAttachment {
                    filename: sanitize_filename(part.attachment_name().unwrap_or("attachment")),
                    content_type: ct.to_ascii_lowercase(),
                    size: part.contents().len(),
                    data: Vec::new(),
                },
            ))
        })
        .collect();

    let automation = AutomationHeaders {
        auto_submitted: header_text(&msg, "Auto-Submitted").map(|v| v.to_ascii_lowercase()),
        precedence: header_text(&msg, "Precedence").map(|v| v.to_ascii_lowercase()),
        x_autoreply: ["X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress"]
            .iter()
            .any(|h| msg.header_raw(*h).is_some()),
        list_id: msg.header(HeaderName::ListId).is_some() || msg.header(HeaderName::ListUnsubscribe).is_some(),
        return_path: header_text(&msg, "Return-Path").map(|v| clean_id(&v).to_ascii_lowercase()),
        own_loop: msg.header_raw("X-Intake311-Loop").is_some(),
    };

    let auth_results = msg
        .headers()
        .iter()
        .filter(|h| h.name().eq_ignore_ascii_case("Authentication-Results"))
        .filter_map(|h| {
            let start = usize::try_from(h.offset_start()).ok()?;
            let end = usize::try_from(h.offset_end()).ok()?;
            raw.get(start..end).map(|v| String::from_utf8_lossy(v).trim().to_string())
        })
        .collect();

    let mut mail = InboundMail {
        message_id,
        message_id_synthesised: synthesised,
        in_reply_to: ids(msg.in_reply_to()),
        references: ids(msg.references()),
        from,
        from_name,
        to: addresses(msg.to()),
        cc: addresses(msg.cc()),
        reply_to: msg.reply_to().and_then(|a| a.first()).and_then(|a| a.address()).and_then(normalize_email),
        delivered_to: msg
            .header_values("Delivered-To")
            .chain(msg.header_values("X-Original-To"))
            .filter_map(|v| v.as_text())
            .filter_map(normalize_email)
            .collect(),
        subject: msg.subject().map(one_line).unwrap_or_default(),
        text,
        attachments: Vec::with_capacity(attachment_parts.len()),
        automation,
        auth_results,
        size: raw.len(),
    };
    for (index, mut attachment) in attachment_parts {
        let Some(part) = msg.parts.get_mut(index) else { continue };
        // A decoded body is moved, not copied: a 15 MB attachment is held once.
        attachment.data = match std::mem::take(&mut part.body) {
            PartType::Binary(data) | PartType::InlineBinary(data) => data.into_owned(),
            PartType::Text(text) | PartType::Html(text) => text.into_owned().into_bytes(),
            other => {
                part.body = other;
                part.contents().to_vec()
            }
        };
        mail.attachments.push(attachment);
    }
    Ok(mail)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &[u8] = b"From: \"Jane Mayor\" <Jane.Mayor@DaytonOhio.gov>\r\n\
To: intake@311.test\r\nCc: clerk@daytonohio.gov\r\n\
Subject: Water main replacement financing\r\n\
Message-ID: <q1@daytonohio.gov>\r\nReferences: <a@x> <b@y>\r\nIn-Reply-To: <b@y>\r\n\
Date: Thu, 26 Nov 2026 10:00:00 -0500\r\n\r\nHow do other cities finance this?\r\n";

    #[test]
    fn parses_a_plain_question() {
        let m = parse(PLAIN).expect("parses");
        assert_eq!(m.from, "jane.mayor@daytonohio.gov");
        assert_eq!(m.from_name, "Jane Mayor");
        assert_eq!(m.from_domain(), "daytonohio.gov");
        assert_eq!(m.subject, "Water main replacement financing");
        assert_eq!(m.message_id, "q1@daytonohio.gov");
        assert!(!m.message_id_synthesised);
        assert_eq!(m.references, vec!["a@x", "b@y"]);
        assert_eq!(m.in_reply_to, vec!["b@y"]);
        assert_eq!(m.cc, vec!["clerk@daytonohio.gov"]);
        assert_eq!(m.text.trim(), "How do other cities finance this?");
        assert!(m.attachments.is_empty());
    }

    #[test]
    fn html_only_mail_gives_text_and_attachments_are_listed() {
        let raw = b"From: a@b.gov\r\nSubject: =?utf-8?q?Caf=C3=A9_permits?=\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
<p>Hello <b>there</b></p>\r\n--XX\r\nContent-Type: application/pdf\r\n\
Content-Disposition: attachment; filename=\"../../etc/pass\x01wd.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--XX--\r\n";
        let m = parse(raw).expect("parses");
        assert_eq!(m.subject, "Café permits");
        assert!(m.text.contains("Hello") && m.text.contains("there"), "{}", m.text);
        assert!(!m.text.contains("<p>"));
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].filename, "pass_wd.pdf");
        assert_eq!(m.attachments[0].content_type, "application/pdf");
        assert_eq!(m.attachments[0].size, 5);
        assert!(m.message_id_synthesised);
        assert_eq!(parse(raw).expect("again").message_id, m.message_id, "same bytes, same id");
    }

    #[test]
    fn authentication_results_are_kept_raw_and_in_order() {
        let raw = b"Authentication-Results: mx.311.test;\r\n\tdmarc=pass (p=none) header.from=dayton.gov\r\n\
Authentication-Results: forged.example; dmarc=pass\r\nFrom: a@dayton.gov\r\nSubject: x\r\n\r\nbody";
        let m = parse(raw).expect("parses");
        assert_eq!(m.auth_results.len(), 2);
        assert!(
            m.auth_results[0].starts_with("mx.311.test;") && m.auth_results[0].contains("header.from=dayton.gov"),
            "{:?}",
            m.auth_results
        );
        assert!(m.auth_results[1].starts_with("forged.example"));
    }

    #[test]
    fn unusable_messages_say_why() {
        assert_eq!(parse(b""), Err(ParseError::Empty));
        assert_eq!(parse(b"\r\n\r\n"), Err(ParseError::Empty));
        assert_eq!(parse(b"Subject: hi\r\n\r\nbody"), Err(ParseError::NoFrom));
        assert!(matches!(parse(b"From: nobody\r\nSubject: x\r\n\r\nbody"), Err(ParseError::BadFrom(_))));
    }

    #[test]
    fn an_undecodable_charset_is_an_error_and_a_known_one_is_decoded() {
        let bad =
            b"From: a@b.gov\r\nSubject: x\r\nContent-Type: text/plain; charset=x-klingon\r\n\r\n\xff\xfe\xfd qapla\r\n";
        assert_eq!(parse(bad), Err(ParseError::Charset("x-klingon".into())));
        let ascii =
            b"From: a@b.gov\r\nSubject: x\r\nContent-Type: text/plain; charset=x-klingon\r\n\r\nplain ascii\r\n";
        assert!(parse(ascii).is_ok(), "unknown label, but nothing undecodable");
        let latin1 = b"From: a@b.gov\r\nSubject: x\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nCaf\xe9\r\n";
        assert_eq!(parse(latin1).expect("parses").text.trim(), "Café");
    }

    #[test]
    fn a_parser_panic_becomes_a_parse_error() {
        // The shape the fuzzer found (tests/support would not let us ship its bytes: it is ours).
        let raw = b"From: a@b.gov\r\nContent-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: multipart/alternative; boundary=\"y\"\r\n\r\n--y\r\n--x--\r\n";
        let _ = parse(raw); // must not panic, whatever the parser thinks of it
        assert_eq!(guarded(|| -> u8 { panic!("inside the parser") }), None);
    }
}
