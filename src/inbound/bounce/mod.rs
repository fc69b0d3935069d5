//! Bounces and delivery reports: RFC 3464 `multipart/report; report-type=delivery-status` and the
//! common non-standard shapes real MTAs and providers send (Postfix, Sendmail, Exim, qmail,
//! Exchange/Office 365 NDRs, Lotus Domino/Notes, Gmail, Yahoo, AOL, Amazon SES, ...).
//!
//! Owns: deciding whether a raw message is a bounce or delay report, and reading out of it the
//! failed recipients, the enhanced status code, a hard/soft class, the Message-ID of the returned
//! original (so it can be matched to the outgoing message it reports on) and a one-line reason.
//! Talks to: nothing; pure (no I/O), never panics, and runs in time roughly linear in the input
//! (every text scan is bounded).
//!
//! Deliberately **not** bounces here ([`detect`] returns `None`):
//! - ARF feedback / abuse reports (RFC 5965, `report-type=feedback-report` or a
//!   `message/feedback-report` part) and Amazon SES "Complaint" notifications: they report a
//!   complaint about a message that *was* delivered, not a delivery failure;
//! - vacation and other auto-replies (RFC 3834);
//! - read receipts (MDN, `report-type=disposition-notification`);
//! - successful-delivery DSNs, whose recipients are all `Action: delivered`, `relayed` or
//!   `expanded`.
//!
//! How a message is read: the `message/delivery-status` part (mail-parser hands it over as an
//! opaque body; its fields are parsed here) gives per-recipient `Final-Recipient` /
//! `Original-Recipient` / `Action` / `Status` / `Diagnostic-Code`. Without one, the bounce is
//! recognised from its subject, its sender (MAILER-DAEMON, postmaster, ...) and the wording of the
//! explanation text, and the recipients, codes and reason are read from that text. The returned
//! original (`message/rfc822`, `text/rfc822-headers`, or a copy pasted inline after a marker such
//! as "--- Below this line is a copy of the message.") gives the Message-ID.
//!
//! Class: an enhanced status 5.x.x is [`BounceClass::Hard`], 4.x.x [`BounceClass::Soft`]; without
//! one, the SMTP reply code (5xx / 4xx) decides, then the wording ("mailbox full", "quota",
//! "temporarily", "try again" are soft; "user unknown", "no such user", "does not exist",
//! "rejected" are hard). A delay report (`Action: delayed`) is always soft. A failure report
//! with no clue at all is hard.

use mail_parser::decoders::html::html_to_text;
use mail_parser::{Address, Message, MessageParser, MessagePart, MimeHeaders as _, PartType};

mod codes;
mod dsn;
mod input;
mod original;
mod parts;
mod recipients;
mod ses;
mod signals;

use codes::*;
use dsn::*;
use input::*;
use original::*;
use parts::*;
use recipients::*;
use ses::*;
use signals::*;

/// Hard (permanent, 5.x.x) or soft (temporary, 4.x.x).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceClass {
    Hard,
    Soft,
}

/// What a delivery report says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    /// The failed recipient(s), lower-cased.
    pub recipients: Vec<String>,
    /// Enhanced status code, e.g. `5.1.1`, when one was found.
    pub status: Option<String>,
    pub class: BounceClass,
    /// Message-ID (without brackets) of the message it reports on, from the returned headers.
    pub original_message_id: Option<String>,
    /// A short human-readable reason (the diagnostic code or the first line of the explanation).
    pub reason: String,
}

/// Text scanned per MIME part (bytes); the rest of a huge part is ignored.
const MAX_PART_TEXT: usize = 64 * 1024;
/// Text scanned per message in total (bytes).
const MAX_TOTAL_TEXT: usize = 256 * 1024;
/// Longest reason kept (characters).
const MAX_REASON_CHARS: usize = 200;
/// Most recipients reported.
const MAX_RECIPIENTS: usize = 50;
/// Most MIME parts looked at.
const MAX_PARTS: usize = 200;
/// Bytes of a message looked at: a report's explanation and status parts come first, and the
/// text scanned is capped at [`MAX_TOTAL_TEXT`] anyway. Without this cap a 20 MB question would be
/// copied and decoded once more just to learn it is not a bounce.
const DETECT_PREFIX: usize = 1024 * 1024;

/// `Some` when `raw` is a bounce or delivery-status report: a failure or a delay. `None` for
/// anything else, including a successful-delivery DSN ("delivered" / "relayed" / "expanded"), a
/// read receipt, a vacation auto-reply (RFC 3834) and an ARF feedback report (RFC 5965: a
/// complaint, not a bounce). Never panics, whatever the bytes.
pub fn detect(raw: &[u8]) -> Option<Bounce> {
    // mail-parser can panic on malformed multiparts; see [`super::guarded`].
    let raw = raw.get(..DETECT_PREFIX).unwrap_or(raw);
    super::guarded(|| detect_unguarded(raw)).flatten()
}

/// Whether a message that passed the SES check can still be a bounce. Only a DSN part, a
/// delivery-status report type, `X-Failed-Recipients`, a bounce subject or a daemon sender
/// (read from the headers, cheap) or, in the text, an MTA template phrase can make
/// [`Signals::is_bounce`] or a failing record say yes: a delivery-status record pasted into the
/// text counts only with a `Final-Recipient:` field, and that is a template phrase too. This
/// checks exactly those, each as a superset (case-blind, over the whole text), so a `false` here
/// is the `None` the full analysis would reach, without its scans. Nearly every question is
/// ordinary mail, and those scans were most of the parse stage's time.
fn may_be_bounce(top: &Top, parts: &Parts) -> bool {
    let subject_lower = top.subject.as_deref().unwrap_or("").to_lowercase();
    !top.failed_recipients.is_empty()
        || !parts.dsn_texts.is_empty()
        || top.report_type.as_deref().is_some_and(|t| t.contains("delivery-status"))
        || SUBJECT_PATTERNS.iter().any(|p| subject_lower.contains(p))
        || is_daemon(&top.from_addr, &top.from_name)
        || TEMPLATE_ANY_CASE.found_in(&parts.text)
}

fn detect_unguarded(raw: &[u8]) -> Option<Bounce> {
    let data = normalize_newlines(raw);
    let data = skip_mbox_separator(&data);
    if data.len() < 4 {
        return None;
    }
    let msg = MessageParser::default().parse(data)?;
    let root = msg.parts.first()?;
    if root.headers.is_empty() {
        return None;
    }
    let top = Top::read(&msg);
    if top.report_type.as_deref().is_some_and(|t| t.contains("feedback-report")) {
        return None;
    }
    if top.report_type.as_deref().is_some_and(|t| t.contains("disposition-notification")) {
        return None;
    }
    let parts = Parts::collect(&msg);
    if parts.feedback || parts.mdn {
        return None;
    }

    let explanation_full = parts.text.as_str();

    // Amazon SES notifications delivered by mail (SNS): JSON.
    if let Some(ses) = ses_notification(explanation_full) {
        return match ses {
            SesNotice::Bounce(mut b) => {
                if b.original_message_id.is_none() {
                    b.original_message_id = top.reply_ref.clone();
                }
                Some(b)
            }
            SesNotice::NotABounce => None,
        };
    }
    if !may_be_bounce(&top, &parts) {
        return None;
    }
    let cut = returned_copy_start(explanation_full);
    let explanation = explanation_full.get(..cut).unwrap_or(explanation_full);
    let tail = explanation_full.get(cut..).unwrap_or("");
    let lower_expl = explanation.to_ascii_lowercase();

    // Returned original's Message-ID.
    let own = top.own_id.as_deref();
    let original_message_id = parts
        .returned_id
        .clone()
        .filter(|id| Some(id.as_str()) != own)
        .or_else(|| find_header_id(tail, own))
        .or_else(|| find_header_id(explanation, own))
        .or_else(|| parts.dsn_original_id.clone())
        .or_else(|| parts.dsn_texts.iter().find_map(|t| find_header_id(t, own)))
        .or_else(|| top.reply_ref.clone());

    let signals = Signals::read(&top, &parts, &lower_expl);
    // A person forwarding or answering a bounce ("Fwd: Undeliverable: ...") is a person.
    if signals.subject_reply && !signals.sender && !signals.failed_recipients && !parts.top_level_dsn {
        return None;
    }

    // 1. A machine-readable delivery-status part.
    let mut records = Vec::new();
    for t in &parts.dsn_texts {
        records.extend(parse_dsn(t).0);
    }
    let mut dsn_part = !parts.dsn_texts.is_empty();
    if records.is_empty() {
        // Non-MIME bounces sometimes paste the DSN fields into the text.
        let (r, _) = parse_dsn(explanation_full);
        if r.iter().any(|r| r.final_rcpt.is_some() && (r.action.is_some() || r.status.is_some())) {
            records = r;
            dsn_part = true;
        }
    }
    let assessed: Vec<Assessed> = records.iter().map(assess).collect();
    let failing: Vec<&Assessed> = assessed.iter().filter(|a| a.kind.is_failure()).collect();
    if !assessed.is_empty() && failing.is_empty() && assessed.iter().any(|a| a.kind == Kind::Success) {
        return None;
    }

    if failing.is_empty() {
        // No DSN verdict: decide from the shape and the words.
        if !signals.is_bounce(dsn_part) {
            return None;
        }
    }

    let mut text_codes = Codes::scan(explanation);
    if text_codes.status.is_none() && text_codes.smtp.is_none() {
        // Some bounces put their explanation after a marker line; look a little further.
        let more = Codes::scan(tail.get(..tail.len().min(4096)).unwrap_or(""));
        if more.smtp_line.as_deref().is_some_and(looks_like_error_line) {
            text_codes = more;
        }
    }

    let mut recipients: Vec<String> = Vec::new();
    let status;
    let class;
    let reason;
    if let Some(primary) = failing.iter().find(|a| a.class == Some(BounceClass::Hard)).or(failing.first()) {
        for a in &failing {
            if let Some(r) = &a.recipient {
                push_recipient(&mut recipients, r);
            }
        }
        let from_text = || {
            if primary.kind == Kind::Delayed {
                text_codes.status.clone().filter(|s| s.starts_with('4'))
            } else {
                text_codes.status.clone()
            }
        };
        status = match &primary.status {
            // A generic X.0.0 refined by the explanation when it reports on one recipient.
            Some(s) if s.ends_with(".0.0") && failing.len() == 1 => Some(
                from_text().filter(|t| t.get(..1) == s.get(..1) && !t.ends_with(".0.0")).unwrap_or_else(|| s.clone()),
            ),
            Some(s) => Some(s.clone()),
            None => from_text(),
        };
        class = if primary.kind == Kind::Delayed {
            BounceClass::Soft
        } else if let Some(c) = primary.class {
            c
        } else if let Some(s) = &status {
            class_of_digit(s)
        } else {
            text_class(&text_codes, &lower_expl, &signals).unwrap_or(BounceClass::Hard)
        };
        reason = primary
            .diag
            .as_deref()
            .map(clean_diagnostic)
            .filter(|d| informative(d))
            .or_else(|| text_reason(explanation, &text_codes).filter(|r| informative(r)))
            .or_else(|| failure_line(explanation))
            .or_else(|| primary.diag.as_deref().map(clean_diagnostic).filter(|d| !d.is_empty()))
            .unwrap_or_else(|| match &status {
                Some(s) => format!("{} (status {s})", primary.kind.describe()),
                None => primary.kind.describe().to_string(),
            });
    } else {
        status = text_codes.status.clone();
        class = match &status {
            Some(s) => class_of_digit(s),
            None => text_class(&text_codes, &lower_expl, &signals).unwrap_or(BounceClass::Hard),
        };
        reason = text_reason(explanation, &text_codes)
            .or_else(|| failure_line(explanation))
            .unwrap_or_else(|| one_line(top.subject.as_deref().unwrap_or("delivery failure")));
    }

    if recipients.is_empty() {
        for r in &top.failed_recipients {
            push_recipient(&mut recipients, r);
        }
    }
    let mentioned = if recipients.is_empty() { text_addresses(explanation) } else { Vec::new() };
    if recipients.is_empty() {
        let exclude = exclusions(&top, &parts);
        for a in mentioned.iter().filter(|a| !exclude.contains(a)) {
            push_recipient(&mut recipients, a);
        }
    }
    if recipients.is_empty() {
        for r in &parts.returned_to {
            push_recipient(&mut recipients, r);
        }
    }
    if recipients.is_empty() {
        // The To of a copy pasted inline after the marker line.
        for (name, value) in header_fields(tail) {
            if name == "to" {
                for a in addresses_in(&value) {
                    push_recipient(&mut recipients, &a);
                }
            }
        }
    }
    if recipients.is_empty() {
        for a in &mentioned {
            if a != &top.from_addr {
                push_recipient(&mut recipients, a);
            }
        }
    }

    Some(Bounce {
        recipients,
        status,
        class,
        original_message_id,
        reason: truncate_chars(&one_line(&reason), MAX_REASON_CHARS),
    })
}

// -------------------------------------------------------------------------------------------
// Small text helpers
// -------------------------------------------------------------------------------------------

/// Whitespace runs (newlines included) collapsed to one space, trimmed.
fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(1024));
    for w in s.split_whitespace() {
        if out.len() > 4 * MAX_REASON_CHARS {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// The byte at `i`, or 0 (which no scan looks for) past either end: scans cannot panic.
fn byte_at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// The byte just before `i`, or 0 at the start.
fn byte_before(b: &[u8], i: usize) -> u8 {
    i.checked_sub(1).and_then(|k| b.get(k)).copied().unwrap_or(0)
}

fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s.get(..i).unwrap_or(s).to_string(),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests;
