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
use std::sync::OnceLock;

use aho_corasick::AhoCorasick;

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

/// A phrase list searched in one pass over the text (Aho-Corasick) instead of one pass per
/// phrase: on ordinary mail, where no phrase occurs, that was most of the cost of detection.
struct Phrases {
    list: &'static [&'static str],
    /// ASCII case-insensitive, for a pre-filter on text that is not lower-cased.
    any_case: bool,
    automaton: OnceLock<Option<AhoCorasick>>,
}

impl Phrases {
    const fn new(list: &'static [&'static str], any_case: bool) -> Phrases {
        Phrases { list, any_case, automaton: OnceLock::new() }
    }

    /// Whether any phrase occurs in `text`, exactly as `list.iter().any(|p| text.contains(p))`.
    /// (Building cannot fail for these short constant lists; a test builds each. Were it to fail,
    /// the slow search gives the same answer, and a case-insensitive pre-filter says "maybe".)
    fn found_in(&self, text: &str) -> bool {
        let automaton = self.automaton.get_or_init(|| {
            aho_corasick::AhoCorasickBuilder::new()
                .ascii_case_insensitive(self.any_case)
                // A full DFA: a few hundred KB for these lists, and the fastest scan.
                .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                .build(self.list)
                .ok()
        });
        match automaton {
            Some(a) => a.is_match(text),
            None => self.any_case || self.list.iter().any(|p| text.contains(p)),
        }
    }
}

static TEMPLATE: Phrases = Phrases::new(TEMPLATE_PHRASES, false);
static GENERIC: Phrases = Phrases::new(GENERIC_PHRASES, false);
static SUCCESS: Phrases = Phrases::new(SUCCESS_PHRASES, false);
static DELAY: Phrases = Phrases::new(DELAY_PHRASES, false);
static RETURNED: Phrases = Phrases::new(RETURNED_MARKERS, true);
/// [`TEMPLATE_PHRASES`] on text that is not lower-cased, for the ordinary-mail fast path.
static TEMPLATE_ANY_CASE: Phrases = Phrases::new(TEMPLATE_PHRASES, true);

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
// Input shaping
// -------------------------------------------------------------------------------------------

/// CRLF and bare CR become LF, so CRLF, LF and old-Mac files read alike.
fn normalize_newlines(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'\r' {
            out.push(b'\n');
            if raw.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
        } else {
            out.push(b);
        }
        i += 1;
    }
    out
}

/// Skips leading blank lines and an mbox `From ` separator line.
fn skip_mbox_separator(data: &[u8]) -> &[u8] {
    let mut d = data;
    while let Some(rest) = d.strip_prefix(b"\n") {
        d = rest;
    }
    if d.starts_with(b"From ") {
        match d.iter().position(|&b| b == b'\n') {
            Some(p) => &d[p + 1..],
            None => &[],
        }
    } else {
        d
    }
}

// -------------------------------------------------------------------------------------------
// Top-level headers
// -------------------------------------------------------------------------------------------

struct Top {
    subject: Option<String>,
    from_addr: String,
    from_name: String,
    to_addrs: Vec<String>,
    report_type: Option<String>,
    auto_submitted: Option<String>,
    x_autoreply: bool,
    failed_recipients: Vec<String>,
    null_return_path: bool,
    own_id: Option<String>,
    /// In-Reply-To (or the last References id): some MTAs thread the bounce to the original.
    reply_ref: Option<String>,
}

impl Top {
    fn read(msg: &Message<'_>) -> Top {
        let raw = msg.raw_message.as_ref();
        let headers = msg.parts.first().map(|p| p.headers.as_slice()).unwrap_or(&[]);
        let mut t = Top {
            subject: None,
            from_addr: String::new(),
            from_name: String::new(),
            to_addrs: Vec::new(),
            report_type: None,
            auto_submitted: None,
            x_autoreply: false,
            failed_recipients: Vec::new(),
            null_return_path: false,
            own_id: None,
            reply_ref: None,
        };
        let mut in_reply_to = None;
        let mut references = None;
        for h in headers {
            let name = h.name().to_ascii_lowercase();
            match name.as_str() {
                "subject" if t.subject.is_none() => {
                    t.subject = h.value().as_text().map(str::to_string);
                }
                "from" => {
                    if t.from_addr.is_empty()
                        && let Some((n, a)) = h.value().as_address().and_then(first_addr)
                    {
                        t.from_name = n;
                        t.from_addr = a;
                    }
                    if t.from_addr.is_empty() && t.from_name.is_empty() {
                        t.from_name = raw_value(raw, h.offset_start(), h.offset_end());
                    }
                }
                "to" => {
                    if let Some(a) = h.value().as_address() {
                        t.to_addrs.extend(all_addrs(a));
                    }
                }
                "content-type" => {
                    if let Some(ct) = h.value().as_content_type()
                        && ct.ctype().eq_ignore_ascii_case("multipart")
                    {
                        t.report_type = ct.attribute("report-type").map(|s| s.to_ascii_lowercase());
                    }
                }
                "auto-submitted" => {
                    t.auto_submitted = Some(raw_value(raw, h.offset_start(), h.offset_end()).to_ascii_lowercase());
                }
                "x-autoreply" | "x-autorespond" | "x-autoresponder" => t.x_autoreply = true,
                "x-failed-recipients" => {
                    let v = raw_value(raw, h.offset_start(), h.offset_end());
                    for piece in v.split([',', ' ', ';']) {
                        if let Some(a) = clean_address(piece) {
                            t.failed_recipients.push(a);
                        }
                    }
                }
                "return-path" => {
                    let v = raw_value(raw, h.offset_start(), h.offset_end());
                    let v = v.trim();
                    if v.is_empty() || v == "<>" || v.eq_ignore_ascii_case("<mailer-daemon>") {
                        t.null_return_path = true;
                    }
                }
                "message-id" if t.own_id.is_none() => {
                    t.own_id = first_id(&raw_value(raw, h.offset_start(), h.offset_end()));
                }
                "in-reply-to" if in_reply_to.is_none() => {
                    in_reply_to = first_id(&raw_value(raw, h.offset_start(), h.offset_end()));
                }
                "references" if references.is_none() => {
                    references = last_id(&raw_value(raw, h.offset_start(), h.offset_end()));
                }
                _ => {}
            }
        }
        t.reply_ref = in_reply_to.or(references);
        t
    }
}

fn raw_value(raw: &[u8], start: u32, end: u32) -> String {
    let (s, e) = (start as usize, end as usize);
    let bytes = raw.get(s..e.max(s)).unwrap_or(&[]);
    let text = String::from_utf8_lossy(bytes);
    one_line(&text)
}

fn first_addr(a: &Address<'_>) -> Option<(String, String)> {
    let first = a.first()?;
    let name = first.name().unwrap_or("").to_string();
    let addr = first.address().unwrap_or("").trim().to_ascii_lowercase();
    Some((name, addr))
}

fn all_addrs(a: &Address<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for addr in a.iter().take(MAX_RECIPIENTS) {
        if let Some(s) = addr.address()
            && let Some(c) = clean_address(s)
        {
            out.push(c);
        }
    }
    out
}

// -------------------------------------------------------------------------------------------
// MIME parts
// -------------------------------------------------------------------------------------------

#[derive(Default)]
struct Parts {
    dsn_texts: Vec<String>,
    /// A delivery-status part sits in the message itself (not in a forwarded report).
    top_level_dsn: bool,
    feedback: bool,
    mdn: bool,
    /// There is a returned original (message/rfc822 or rfc822-headers part).
    returned: bool,
    returned_id: Option<String>,
    returned_to: Vec<String>,
    returned_from: Vec<String>,
    dsn_original_id: Option<String>,
    /// The human-readable text parts, in order (bounded).
    text: String,
}

impl Parts {
    fn collect(msg: &Message<'_>) -> Parts {
        let mut p = Parts::default();
        p.walk(msg, 0);
        p
    }

    /// Reads the parts of `msg`. `depth` 1 is a bounce found inside a `message/rfc822` part
    /// (a report forwarded or wrapped by a gateway).
    fn walk(&mut self, msg: &Message<'_>, depth: u8) {
        let raw = msg.raw_message.as_ref();
        for (i, part) in msg.parts.iter().enumerate().take(MAX_PARTS) {
            if matches!(part.body, PartType::Multipart(_)) {
                continue;
            }
            let (ctype, subtype) = match part.content_type() {
                Some(ct) => (ct.ctype().to_ascii_lowercase(), ct.subtype().unwrap_or("").to_ascii_lowercase()),
                None => ("text".to_string(), "plain".to_string()),
            };
            // A part pasted without MIME headers: its "headers" are the returned original's.
            if i > 0
                && !matches!(part.body, PartType::Message(_))
                && part.headers.iter().any(|h| h.name().eq_ignore_ascii_case("message-id"))
            {
                self.take_part_headers(raw, part);
            }
            match (ctype.as_str(), subtype.as_str()) {
                ("message", "delivery-status" | "global-delivery-status")
                | ("text", "delivery-status" | "x-delivery-status") => {
                    let t = decode_iso2022jp(part_text(&part.body));
                    let (_, id) = parse_dsn(&t);
                    if self.dsn_original_id.is_none() {
                        self.dsn_original_id = id;
                    }
                    self.top_level_dsn |= depth == 0;
                    self.dsn_texts.push(t);
                }
                ("message", "feedback-report") => self.feedback = true,
                ("message", "disposition-notification" | "global-disposition-notification") => self.mdn = true,
                ("multipart", _) => {
                    // A multipart whose boundary mail-parser could not find: read it as text.
                    let t = part_text(&part.body);
                    self.push_text(&t);
                }
                ("message", "rfc822" | "global" | "rfc822-headers" | "global-headers" | "partial")
                | ("text", "rfc822-headers" | "rfc822-header" | "x-rfc822-headers") => {
                    self.take_returned_or_nested(&part.body, depth);
                }
                _ => match &part.body {
                    PartType::Message(_) => self.take_returned_or_nested(&part.body, depth),
                    PartType::Text(t) => {
                        // A text/plain attachment holding the original headers (some NDRs).
                        if i > 0 && !self.text.is_empty() && looks_like_header_block(t) {
                            self.take_returned(&part.body);
                        } else {
                            self.push_text(t);
                        }
                    }
                    PartType::Html(h) => {
                        let bounded = bounded(h, MAX_PART_TEXT);
                        self.push_text(&html_to_text(bounded));
                    }
                    _ => {}
                },
            }
        }
    }

    fn take_returned_or_nested(&mut self, body: &PartType<'_>, depth: u8) {
        if let PartType::Message(m) = body
            && depth == 0
            && self.dsn_texts.is_empty()
            && is_report(m)
        {
            self.walk(m, depth + 1);
            return;
        }
        self.take_returned(body);
    }

    /// Message-ID / To / From among the headers mail-parser read for a part without MIME headers.
    fn take_part_headers(&mut self, raw: &[u8], part: &MessagePart<'_>) {
        for h in &part.headers {
            let name = h.name().to_ascii_lowercase();
            let value = raw_value(raw, h.offset_start(), h.offset_end());
            match name.as_str() {
                "message-id" if self.returned_id.is_none() => {
                    self.returned_id = first_id(&value);
                    self.returned = true;
                }
                "to" => self.returned_to.extend(addresses_in(&value)),
                "from" => self.returned_from.extend(addresses_in(&value)),
                _ => {}
            }
        }
    }

    fn push_text(&mut self, t: &str) {
        if self.text.len() >= MAX_TOTAL_TEXT {
            return;
        }
        let room = MAX_TOTAL_TEXT - self.text.len();
        let t = bounded(t, room.min(MAX_PART_TEXT));
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        self.text.push_str(t);
    }

    fn take_returned(&mut self, body: &PartType<'_>) {
        self.returned = true;
        match body {
            PartType::Message(m) => {
                let Some(root) = m.parts.first() else {
                    return;
                };
                if self.returned_id.is_none() {
                    self.returned_id = m.message_id().and_then(clean_id);
                }
                if let Some(a) = m.to() {
                    self.returned_to.extend(all_addrs(a));
                }
                if let Some(a) = m.from() {
                    self.returned_from.extend(all_addrs(a));
                }
                if self.returned_id.is_none() {
                    // A header block mail-parser could not read (e.g. it starts with a blank
                    // line): scan the nested message's own bytes.
                    let start = root.offset_header as usize;
                    let end = (root.offset_end as usize).max(start);
                    let bytes = m.raw_message.get(start..end).unwrap_or(&[]);
                    let t = String::from_utf8_lossy(bounded_bytes(bytes, MAX_PART_TEXT));
                    self.take_header_text(&t);
                }
            }
            other => {
                let t = part_text(other);
                self.take_header_text(&t);
            }
        }
    }

    fn take_header_text(&mut self, t: &str) {
        for (name, value) in header_fields(t) {
            match name.as_str() {
                "message-id" if self.returned_id.is_none() => self.returned_id = first_id(&value),
                "to" => self.returned_to.extend(addresses_in(&value)),
                "from" => self.returned_from.extend(addresses_in(&value)),
                _ => {}
            }
        }
        if self.returned_id.is_none() {
            self.returned_id = find_header_id(t, None);
        }
    }
}

/// A delivery report itself: `multipart/report` or holding a `message/delivery-status` part.
fn is_report(m: &Message<'_>) -> bool {
    m.parts.iter().take(MAX_PARTS).any(|p| {
        p.content_type().is_some_and(|ct| {
            let sub = ct.subtype().unwrap_or("");
            (ct.ctype().eq_ignore_ascii_case("multipart") && sub.eq_ignore_ascii_case("report"))
                || (ct.ctype().eq_ignore_ascii_case("message")
                    && (sub.eq_ignore_ascii_case("delivery-status")
                        || sub.eq_ignore_ascii_case("global-delivery-status")))
        })
    })
}

fn part_text(body: &PartType<'_>) -> String {
    match body {
        PartType::Text(t) | PartType::Html(t) => bounded(t, MAX_PART_TEXT).to_string(),
        PartType::Binary(b) | PartType::InlineBinary(b) => {
            String::from_utf8_lossy(bounded_bytes(b, MAX_PART_TEXT)).into_owned()
        }
        PartType::Message(m) => {
            let (start, end) =
                m.parts.first().map(|r| (r.offset_header as usize, r.offset_end as usize)).unwrap_or((0, 0));
            let bytes = m.raw_message.get(start..end.max(start)).unwrap_or(&[]);
            String::from_utf8_lossy(bounded_bytes(bytes, MAX_PART_TEXT)).into_owned()
        }
        PartType::Multipart(_) => String::new(),
    }
}

/// Raw ISO-2022-JP (escape sequences left in an undeclared part, common in Japanese reports).
fn decode_iso2022jp(t: String) -> String {
    if !t.contains("\u{1b}$B") && !t.contains("\u{1b}$@") {
        return t;
    }
    match mail_parser::decoders::charsets::map::charset_decoder(b"iso-2022-jp") {
        Some(decode) => decode(t.as_bytes()),
        None => t,
    }
}

fn bounded(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

fn bounded_bytes(b: &[u8], max: usize) -> &[u8] {
    b.get(..b.len().min(max)).unwrap_or(&[])
}

/// A text that starts like a message header block (the returned original as text/plain).
fn looks_like_header_block(t: &str) -> bool {
    let mut n = 0;
    for line in t.lines().take(6) {
        let l = line.to_ascii_lowercase();
        if ["received:", "return-path:", "message-id:", "from:", "to:", "date:", "subject:", "mime-version:"]
            .iter()
            .any(|p| l.starts_with(p))
        {
            n += 1;
        }
    }
    n >= 2
}

// -------------------------------------------------------------------------------------------
// Header-ish text
// -------------------------------------------------------------------------------------------

/// `Name: value` fields of a header block (unfolded; stops at the first blank line after a field).
fn header_fields(t: &str) -> Vec<(String, String)> {
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
fn split_field(line: &str) -> Option<(String, &str)> {
    let colon = line.find(':')?;
    let name = line.get(..colon)?;
    if name.is_empty() || name.len() > 40 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    Some((name.to_ascii_lowercase(), line.get(colon + 1..).unwrap_or("")))
}

/// The first `Message-ID:` header line in `t` (any indentation or `>` quoting), its id.
fn find_header_id(t: &str, own: Option<&str>) -> Option<String> {
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
fn first_id(v: &str) -> Option<String> {
    if let Some(start) = v.find('<') {
        let rest = v.get(start + 1..)?;
        let end = rest.find('>').unwrap_or(rest.len());
        return clean_id(rest.get(..end)?);
    }
    clean_id(v.split_whitespace().next()?)
}

fn last_id(v: &str) -> Option<String> {
    let start = v.rfind('<')?;
    let rest = v.get(start + 1..)?;
    let end = rest.find('>')?;
    clean_id(rest.get(..end)?)
}

fn clean_id(s: &str) -> Option<String> {
    let s = s.trim().trim_start_matches('<').trim_end_matches('>').trim();
    if s.is_empty() || s.len() > 998 || s.contains(char::is_whitespace) {
        return None;
    }
    Some(s.to_string())
}

// -------------------------------------------------------------------------------------------
// message/delivery-status
// -------------------------------------------------------------------------------------------

#[derive(Debug, Default, Clone)]
struct DsnRecord {
    final_rcpt: Option<String>,
    orig_rcpt: Option<String>,
    action: Option<String>,
    status: Option<String>,
    diag: Option<String>,
}

impl DsnRecord {
    fn has_rcpt(&self) -> bool {
        self.final_rcpt.is_some() || self.orig_rcpt.is_some()
    }
    fn is_empty(&self) -> bool {
        !self.has_rcpt() && self.action.is_none() && self.status.is_none()
    }
}

/// Per-recipient records of a delivery-status body, and the original Message-ID when the
/// report names it (`X-Original-Message-ID`, `Original-Message-ID`).
fn parse_dsn(text: &str) -> (Vec<DsnRecord>, Option<String>) {
    let mut records = Vec::new();
    let mut cur = DsnRecord::default();
    let mut orig_id = None;
    // Unfold into (name, value) events; a blank line is a record break.
    let mut fields: Vec<Option<(String, String)>> = Vec::new();
    for line in text.lines().take(5000) {
        if line.trim().is_empty() {
            fields.push(None);
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(Some(last)) = fields.last_mut()
                && last.1.len() < 4096
            {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        match split_field(line.trim_start()) {
            Some((n, v)) => fields.push(Some((n, v.trim().to_string()))),
            None => fields.push(None),
        }
    }
    for f in fields {
        let Some((name, value)) = f else {
            if cur.has_rcpt() || cur.action.is_some() {
                records.push(std::mem::take(&mut cur));
            }
            continue;
        };
        match name.as_str() {
            "final-recipient" => {
                if cur.final_rcpt.is_some() {
                    records.push(std::mem::take(&mut cur));
                }
                cur.final_rcpt = address_field(&value);
            }
            "original-recipient" => {
                if cur.orig_rcpt.is_some() || (cur.final_rcpt.is_some() && cur.status.is_some()) {
                    records.push(std::mem::take(&mut cur));
                }
                cur.orig_rcpt = address_field(&value);
            }
            "action" => {
                if cur.action.is_some() && cur.has_rcpt() {
                    records.push(std::mem::take(&mut cur));
                }
                cur.action = Some(value.to_ascii_lowercase());
            }
            "status" => {
                if let Some(code) = find_enhanced(&value, true) {
                    cur.status = Some(code);
                }
            }
            "diagnostic-code" if !value.is_empty() => {
                cur.diag = Some(value);
            }
            "x-original-message-id" | "original-message-id" | "x-original-message-id-header" if orig_id.is_none() => {
                orig_id = first_id(&value);
            }
            _ => {}
        }
    }
    if !cur.is_empty() && (cur.has_rcpt() || cur.action.is_some()) {
        records.push(cur);
    }
    (records, orig_id)
}

/// `rfc822; user@example.org` → `user@example.org`.
fn address_field(v: &str) -> Option<String> {
    let v = match v.find(';') {
        Some(p) => v.get(p + 1..).unwrap_or(""),
        None => v,
    };
    clean_address(v)
}

fn clean_address(v: &str) -> Option<String> {
    let v = v.trim().trim_matches(|c: char| c == '<' || c == '>' || c == '"' || c == '\'' || c == ',' || c == '.');
    // A source route (`@relay.example:user@example.org`) names the relay, not the mailbox.
    let v = match v.rfind(':') {
        Some(p) if v.starts_with('@') => v.get(p + 1..).unwrap_or(""),
        _ => v,
    };
    let v = v.trim();
    if v.len() > 320 || v.contains(char::is_whitespace) || v.contains(['<', '>']) {
        return None;
    }
    let (local, domain) = v.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() {
        return None;
    }
    Some(v.to_lowercase())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Failed,
    Delayed,
    Success,
    Unknown,
}

impl Kind {
    fn is_failure(self) -> bool {
        matches!(self, Kind::Failed | Kind::Delayed)
    }
    fn describe(self) -> &'static str {
        match self {
            Kind::Delayed => "delivery delayed",
            _ => "delivery failed",
        }
    }
}

struct Assessed {
    kind: Kind,
    recipient: Option<String>,
    status: Option<String>,
    class: Option<BounceClass>,
    diag: Option<String>,
}

fn assess(r: &DsnRecord) -> Assessed {
    let diag_status = r.diag.as_deref().and_then(diagnostic_code);
    let diag_smtp = r.diag.as_deref().and_then(|d| find_smtp(d).map(|(c, _)| c));
    // The remote server's own code (right after its SMTP reply code in the diagnostic) is the
    // most precise; otherwise a generic X.0.0 status is refined by the diagnostic's code.
    let status = match (&r.status, &diag_status) {
        (_, Some((d, true))) => Some(d.clone()),
        (Some(s), Some((d, false))) if s.ends_with(".0.0") && !d.ends_with(".0.0") => Some(d.clone()),
        (Some(s), _) => Some(s.clone()),
        (None, d) => d.as_ref().map(|(d, _)| d.clone()),
    };
    let action = r.action.as_deref().unwrap_or("");
    let mut kind = if action.starts_with("fail") || action.starts_with("bounce") || action.starts_with("reject") {
        Kind::Failed
    } else if action.starts_with("delay") || action.starts_with("defer") {
        Kind::Delayed
    } else if action.starts_with("deliver") || action.starts_with("relay") || action.starts_with("expand") {
        Kind::Success
    } else {
        Kind::Unknown
    };
    if kind == Kind::Unknown {
        kind = match status.as_deref().and_then(|s| s.bytes().next()) {
            Some(b'5') | Some(b'4') => Kind::Failed,
            Some(b'2') => Kind::Success,
            _ => match diag_smtp.as_deref().and_then(|s| s.bytes().next()) {
                Some(b'5') | Some(b'4') => Kind::Failed,
                _ => Kind::Unknown,
            },
        };
    }
    // A "failed" action with a 2.x.x status is a broken report; trust the failure.
    let status = status.filter(|s| !(kind.is_failure() && s.starts_with('2')));
    let class = if kind == Kind::Delayed {
        Some(BounceClass::Soft)
    } else if let Some(s) = &status {
        Some(class_of_digit(s))
    } else if let Some(c) = &diag_smtp {
        Some(class_of_digit(c))
    } else {
        r.diag.as_deref().and_then(|d| wording_class(&d.to_ascii_lowercase()))
    };
    Assessed {
        kind,
        // The address we sent to (Original-Recipient) before the one it was rewritten to.
        recipient: r.orig_rcpt.clone().or_else(|| r.final_rcpt.clone()),
        status,
        class,
        diag: r.diag.clone(),
    }
}

fn class_of_digit(code: &str) -> BounceClass {
    if code.starts_with('4') { BounceClass::Soft } else { BounceClass::Hard }
}

/// The diagnostic without its type prefix (`smtp; 550 ...` → `550 ...`).
fn clean_diagnostic(d: &str) -> String {
    let d = d.trim();
    let d = match d.find(';') {
        Some(p) if d.get(..p).is_some_and(|t| !t.is_empty() && t.len() <= 20 && !t.contains(' ')) => {
            d.get(p + 1..).unwrap_or("")
        }
        _ => d,
    };
    one_line(d)
}

// -------------------------------------------------------------------------------------------
// Codes in text
// -------------------------------------------------------------------------------------------

#[derive(Default)]
struct Codes {
    status: Option<String>,
    smtp: Option<String>,
    /// The line the first code was found on.
    smtp_line: Option<String>,
    status_line: Option<String>,
}

impl Codes {
    fn scan(text: &str) -> Codes {
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
fn find_enhanced(s: &str, allow_success: bool) -> Option<String> {
    enhanced_from(s, 0, allow_success).map(|(code, _)| code)
}

/// The enhanced code of a diagnostic: the one right after an SMTP reply code (`550 5.1.1`,
/// `550-'5.7.1`, `#5.1.1`), flagged `true`, else the first one.
fn diagnostic_code(d: &str) -> Option<(String, bool)> {
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
            && matches!(bb[n - 3], b'4' | b'5')
            && bb[n - 2].is_ascii_digit()
            && bb[n - 1].is_ascii_digit()
            && (n == 3 || !bb[n - 4].is_ascii_alphanumeric());
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
fn enhanced_from(s: &str, from: usize, allow_success: bool) -> Option<(String, usize)> {
    let b = s.as_bytes();
    let n = b.len();
    let mut i = from;
    while i + 5 <= n {
        let c = b[i];
        let class_ok = c == b'4' || c == b'5' || (allow_success && c == b'2');
        let prev_ok = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.');
        if class_ok
            && prev_ok
            && b.get(i + 1) == Some(&b'.')
            && b.get(i + 2).is_some_and(|d| (b'0'..=b'7').contains(d))
            && b.get(i + 3) == Some(&b'.')
        {
            let mut j = i + 4;
            while j < n && j < i + 7 && b[j].is_ascii_digit() {
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
fn find_smtp(s: &str) -> Option<(String, usize)> {
    let b = s.as_bytes();
    let n = b.len();
    let mut i = 0;
    while i + 3 <= n {
        let c = b[i];
        if (c == b'4' || c == b'5') && b[i + 1].is_ascii_digit() && b[i + 1] <= b'5' && b[i + 2].is_ascii_digit() {
            let prev_ok = i == 0
                || matches!(b[i - 1], b' ' | b'\t' | b'(' | b'[' | b':' | b'\'' | b'"' | b'<' | b'#' | b'=' | b';');
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
fn looks_like_error_line(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    ["said", "error", "reject", "unknown", "denied", "refused", "failed", "invalid", "not ", "smtp"]
        .iter()
        .any(|w| l.contains(w))
}

const SOFT_WORDS: &[&str] = &[
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

const HARD_WORDS: &[&str] = &[
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

fn wording_class(lower: &str) -> Option<BounceClass> {
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
fn text_class(codes: &Codes, lower_expl: &str, signals: &Signals) -> Option<BounceClass> {
    if signals.delay_words && !signals.success_words {
        return Some(BounceClass::Soft);
    }
    if let Some(s) = &codes.smtp {
        return Some(class_of_digit(s));
    }
    wording_class(lower_expl)
}

/// The line carrying the status or reply code, as a reason.
fn text_reason(explanation: &str, codes: &Codes) -> Option<String> {
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
const DSN_FIELDS: &[&str] = &[
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
fn informative(s: &str) -> bool {
    s.chars().filter(|c| c.is_alphabetic()).count() >= 8
}

/// The first explanation line with failure wording.
fn failure_line(explanation: &str) -> Option<String> {
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

// -------------------------------------------------------------------------------------------
// Is it a bounce at all (no DSN verdict)?
// -------------------------------------------------------------------------------------------

struct Signals {
    /// The subject is a bounce template ("Undelivered Mail Returned to Sender", ...).
    subject: bool,
    /// The subject only talks about delivery ("not delivered", "delivery status").
    subject_generic: bool,
    /// The subject forwards or answers something ("Fwd:", "Re:").
    subject_reply: bool,
    sender: bool,
    /// Wording only MTA templates use.
    template: bool,
    /// Failure wording a person could also write.
    generic: bool,
    codes: bool,
    returned: bool,
    null_return_path: bool,
    failed_recipients: bool,
    auto_reply: bool,
    delay_words: bool,
    success_words: bool,
    report_type_dsn: bool,
}

/// Subjects MTAs put on bounces (lower-case, matched anywhere in the subject).
const SUBJECT_PATTERNS: &[&str] = &[
    "undelivered mail",
    "undeliverable",
    "returned mail",
    "mail delivery failed",
    "mail delivery failure",
    "delivery status notification",
    "delivery notification: delivery has",
    "failure notice",
    "delivery failure",
    "failure delivery",
    "delivery has failed",
    "message delivery has failed",
    "non-delivery",
    "nondelivery",
    "non delivery",
    "nondeliverable",
    "non-deliverable",
    "mail system error",
    "could not send message for past",
    "could not send mail for past",
    "cannot send message for",
    "see transcript for details",
    "postmaster notify",
    "delayed mail",
    "returning message to sender",
    "returning to sender",
    "mail failure",
    "mail delivery system",
    "mail could not be delivered",
    "message could not be delivered",
    "your message could not be delivered",
    "error sending your mail",
    "delivery status notification: error",
    "delivery status notification: failed",
    "delivery status notification: delayed",
    "delivery status notification: warning",
    "unzustellbar",
    "nicht zustellbar",
    "non remis",
    "non recapitabile",
    "no se puede entregar",
    "не доставлено",
];

/// Subjects that talk about delivery without being templates.
const SUBJECT_GENERIC: &[&str] = &[
    "not delivered",
    "not be delivered",
    "delivery status",
    "delivery report",
    "delivery problem",
    "delivery failed",
    "returned message",
    "undelivered",
    "mail failed",
];

/// Wording only MTA bounce templates use (lower-case).
const TEMPLATE_PHRASES: &[&str] = &[
    "the following addresses had permanent fatal errors",
    "the following addresses had transient non-fatal errors",
    "the following addresses had permanent delivery errors",
    "the following addresses had delivery errors",
    "this is the mail system at host",
    "this is the postfix program at host",
    "i'm sorry to have to inform you that your message could not",
    "i'm sorry to have to inform you that the message returned",
    "i'm afraid i wasn't able to deliver",
    "this is the qmail-send program",
    "this message was created automatically by mail delivery software",
    "a message that you sent could not be delivered",
    "delivery to the following recipient",
    "delivery has failed to these recipients",
    "did not reach the following recipient",
    "your message did not reach some or all",
    "transcript of session follows",
    "unsent message follows",
    "smtp error from remote mail server",
    "smtp error from remote server",
    "an error occurred while trying to deliver the mail",
    "the original message was received at",
    "remote host said:",
    "below this line is a copy of the message",
    "this is an automatically generated delivery status notification",
    "could not be delivered to one or more",
    "was not delivered to one or more",
    "the following recipients returned permanent errors",
    "permanent error; i've given up",
    "this is a permanent error",
    "the following message to <",
    "message could not be delivered to the following",
    "unable to deliver message to the following",
    "following recipient(s) could not be reached",
    "the following recipient(s) cannot be reached",
    "your message was not delivered to",
    "your message wasn't delivered to",
    "could not be delivered to the following",
    "has been delayed:",
    "delivery is delayed",
    "will continue to try",
    "is delayed for more than",
    "reporting-mta:",
    "final-recipient:",
    "diagnostic-code:",
    "failure reasons",
    "returned message --",
    "we had trouble delivering your message",
    "there was an error delivering your mail",
    "an error has occurred while attempting to deliver",
    "could not be delivered to:",
    "each of the following recipients was rejected",
    "mail delivery subsystem",
    "mail delivery system",
];

/// Failure wording a person might also write (lower-case).
const GENERIC_PHRASES: &[&str] = &[
    "user unknown",
    "unknown user",
    "no such user",
    "mailbox unavailable",
    "mailbox is full",
    "mailbox full",
    "over quota",
    "quota exceeded",
    "does not exist",
    "could not be delivered",
    "couldn't be delivered",
    "not be delivered",
    "not delivered",
    "undeliverable",
    "unable to deliver",
    "failed to deliver",
    "could not deliver",
    "delivery failed",
    "delivery failure",
    "permanent error",
    "permanently",
    "rejected",
    "failed",
    "error",
    "配信",
    "届きません",
    "送信できません",
    "宛先",
    "не доставлено",
];

/// Wording of a delay notice (lower-case).
const DELAY_PHRASES: &[&str] = &[
    "has been delayed",
    "not yet been delivered",
    "will continue to try",
    "will retry",
    "still trying",
    "still being retried",
    "delivery is delayed",
    "is delayed",
];

/// Wording of successful-delivery notices (lower-case).
const SUCCESS_PHRASES: &[&str] = &[
    "delivery to these recipients or groups is complete",
    "your message has been delivered",
    "your message was delivered",
    "was successfully delivered",
    "has been successfully delivered",
    "delivery to the following recipients was successful",
    "delivery to the following recipient succeeded",
    "successfully relayed",
];

impl Signals {
    fn read(top: &Top, parts: &Parts, lower_expl: &str) -> Signals {
        let subject_lower = top.subject.as_deref().unwrap_or("").to_lowercase();
        let subj_trim = subject_lower.trim_start();
        let subject_reply =
            ["re:", "re :", "fwd:", "fw:", "fwd ", "aw:", "wg:", "tr:", "sv:", "vs:", "rif:", "antw:", "r:"]
                .iter()
                .any(|p| subj_trim.starts_with(p));
        let subject = SUBJECT_PATTERNS.iter().any(|p| subject_lower.contains(p));
        let subject_generic = SUBJECT_GENERIC.iter().any(|p| subject_lower.contains(p));
        let sender = is_daemon(&top.from_addr, &top.from_name);
        let delay_subject = ["delay", "warning: could not send", "warning--could not send", "still being retried"]
            .iter()
            .any(|p| subject_lower.contains(p));
        let delay_words = delay_subject || DELAY.found_in(lower_expl);
        let success_subject =
            ["delivered:", "relayed:", "(relay)", "(success)", "delivery receipt", "successful delivery"]
                .iter()
                .any(|p| subject_lower.contains(p));
        let success_words = success_subject || SUCCESS.found_in(lower_expl);
        let auto_reply = top.x_autoreply
            || top.auto_submitted.as_deref().is_some_and(|a| a.starts_with("auto-replied"))
            || [
                "auto:",
                "automatic reply",
                "auto reply",
                "autoreply",
                "auto-reply",
                "auto response",
                "autoresponse",
                "out of office",
                "out of the office",
                "vacation",
                "away until",
                "abwesenheit",
                "absence",
                "réponse automatique",
            ]
            .iter()
            .any(|p| subject_lower.contains(p));
        let codes =
            find_enhanced(lower_expl, false).is_some() || lower_expl.lines().take(2000).any(|l| find_smtp(l).is_some());
        Signals {
            subject: subject && !subject_reply,
            subject_generic: subject_generic && !subject_reply,
            subject_reply,
            sender,
            template: TEMPLATE.found_in(lower_expl),
            generic: GENERIC.found_in(lower_expl),
            codes,
            returned: parts.returned,
            null_return_path: top.null_return_path,
            failed_recipients: !top.failed_recipients.is_empty(),
            auto_reply,
            delay_words,
            success_words,
            report_type_dsn: top.report_type.as_deref().is_some_and(|t| t.contains("delivery-status")),
        }
    }

    /// Whether a message without a failing delivery-status record is a bounce.
    fn is_bounce(&self, dsn_part: bool) -> bool {
        if self.failed_recipients {
            return true;
        }
        // Vacation and other auto-replies (RFC 3834) from a person's address.
        if self.auto_reply && !self.subject && !self.sender {
            return false;
        }
        // A delivery notice that reports success, with no failure code in it.
        if self.success_words && !self.codes && !self.subject {
            return false;
        }
        if (dsn_part || self.report_type_dsn) && (self.subject || self.subject_generic || self.sender || self.template)
        {
            return true;
        }
        (self.subject
            && (self.sender || self.template || self.generic || self.codes || self.returned || self.null_return_path))
            || (self.sender && (self.template || self.generic || self.codes))
            || (self.template && (self.codes || self.returned || self.null_return_path || self.subject_generic))
    }
}

/// MAILER-DAEMON, postmaster and friends.
fn is_daemon(addr: &str, name: &str) -> bool {
    let local = addr.split('@').next().unwrap_or("").to_ascii_lowercase();
    let local = local.trim();
    let name = name.to_ascii_lowercase();
    matches!(
        local,
        "mailer-daemon"
            | "mailer_daemon"
            | "mailerdaemon"
            | "mail-daemon"
            | "maildaemon"
            | "mdaemon"
            | "postmaster"
            | "post_master"
            | "poostmaster"
            | "mail.delivery.system"
            | "mail-delivery-system"
            | "mail-delivery"
            | "mailer"
    ) || name.contains("mailer-daemon")
        || name.contains("mailer daemon")
        || name.contains("mail delivery")
        || name.contains("mail deliver system")
        || name.contains("postmaster")
        || name.contains("mail administrator")
        || (addr.is_empty() && name.trim().eq_ignore_ascii_case("mailer-daemon"))
}

// -------------------------------------------------------------------------------------------
// Where the returned copy starts in a text body
// -------------------------------------------------------------------------------------------

const RETURNED_MARKERS: &[&str] = &[
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
fn returned_copy_start(text: &str) -> usize {
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

// -------------------------------------------------------------------------------------------
// Recipients from text
// -------------------------------------------------------------------------------------------

fn exclusions(top: &Top, parts: &Parts) -> Vec<String> {
    let mut e: Vec<String> = Vec::new();
    e.push(top.from_addr.clone());
    e.extend(top.to_addrs.iter().cloned());
    e.extend(parts.returned_from.iter().cloned());
    e
}

/// Addresses mentioned in an explanation text, in order, skipping daemon addresses, ids and
/// "please contact" lines; those near an error (a code or failure wording within the next two
/// lines) come first.
fn text_addresses(text: &str) -> Vec<String> {
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
fn line_has_error(line: &str) -> bool {
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
fn addresses_in(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let is_local = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&c);
    let is_domain = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'.';
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'@' {
            let mut s0 = i;
            while s0 > 0 && is_local(b[s0 - 1]) {
                s0 -= 1;
            }
            let mut e = i + 1;
            while e < b.len() && is_domain(b[e]) {
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

fn push_recipient(list: &mut Vec<String>, r: &str) {
    if list.len() >= MAX_RECIPIENTS {
        return;
    }
    let r = r.trim().to_lowercase();
    if !r.is_empty() && !list.contains(&r) {
        list.push(r);
    }
}

// -------------------------------------------------------------------------------------------
// Amazon SES JSON notifications
// -------------------------------------------------------------------------------------------

enum SesNotice {
    Bounce(Bounce),
    NotABounce,
}

fn ses_notification(text: &str) -> Option<SesNotice> {
    if !text.contains("\"notificationType\"") && !text.contains("\"eventType\"") {
        return None;
    }
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    let json = text.get(start..=end)?;
    // SNS wraps long lines with "!\n " in some mail gateways; be lenient.
    let v: serde_json::Value =
        serde_json::from_str(json).or_else(|_| serde_json::from_str(&json.replace("!\n ", ""))).ok()?;
    let kind = v.get("notificationType").or_else(|| v.get("eventType"))?.as_str()?;
    if !kind.eq_ignore_ascii_case("bounce") {
        return Some(SesNotice::NotABounce);
    }
    let bounce = v.get("bounce")?;
    let permanent =
        bounce.get("bounceType").and_then(|t| t.as_str()).is_some_and(|t| t.eq_ignore_ascii_case("permanent"));
    let mut recipients = Vec::new();
    let mut status = None;
    let mut diag = None;
    if let Some(list) = bounce.get("bouncedRecipients").and_then(|l| l.as_array()) {
        for r in list.iter().take(MAX_RECIPIENTS) {
            if let Some(a) = r.get("emailAddress").and_then(|a| a.as_str()).and_then(clean_address) {
                push_recipient(&mut recipients, &a);
            }
            if status.is_none() {
                status = r.get("status").and_then(|s| s.as_str()).and_then(|s| find_enhanced(s, false));
            }
            if diag.is_none() {
                diag = r.get("diagnosticCode").and_then(|s| s.as_str()).map(clean_diagnostic);
            }
        }
    }
    let mut original = None;
    if let Some(headers) = v.get("mail").and_then(|m| m.get("headers")).and_then(|h| h.as_array()) {
        for h in headers {
            if h.get("name").and_then(|n| n.as_str()).is_some_and(|n| n.eq_ignore_ascii_case("message-id")) {
                original = h.get("value").and_then(|v| v.as_str()).and_then(first_id);
            }
        }
    }
    if original.is_none() {
        original = v
            .get("mail")
            .and_then(|m| m.get("commonHeaders"))
            .and_then(|c| c.get("messageId"))
            .and_then(|s| s.as_str())
            .and_then(first_id);
    }
    let class = match &status {
        Some(s) => class_of_digit(s),
        None if permanent => BounceClass::Hard,
        None => BounceClass::Soft,
    };
    let reason = diag.unwrap_or_else(|| {
        let sub = bounce.get("bounceSubType").and_then(|s| s.as_str()).unwrap_or("");
        let ty = bounce.get("bounceType").and_then(|s| s.as_str()).unwrap_or("");
        one_line(&format!("{ty} bounce {sub}"))
    });
    Some(SesNotice::Bounce(Bounce {
        recipients,
        status,
        class,
        original_message_id: original,
        reason: truncate_chars(&reason, MAX_REASON_CHARS),
    }))
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

fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s.get(..i).unwrap_or(s).to_string(),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crlf(s: &str) -> Vec<u8> {
        s.replace('\n', "\r\n").into_bytes()
    }

    const POSTFIX_DSN: &str = "Return-Path: <>
Received: by mx.example.org (Postfix) id 3F2A41C0; Tue,  4 Mar 2025 10:00:00 +0000 (UTC)
Date: Tue,  4 Mar 2025 10:00:00 +0000 (UTC)
From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: intake@dayton.gov
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary=\"3F2A41C0.1741082400/mx.example.org\"
Message-Id: <20250304100000.AAAA@mx.example.org>

This is a MIME-encapsulated message.

--3F2A41C0.1741082400/mx.example.org
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.org.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

<Jane.Doe@Example.net>: host mx.example.net[192.0.2.10] said: 550 5.1.1
    <jane.doe@example.net>: Recipient address rejected: User unknown in
    virtual mailbox table (in reply to RCPT TO command)

--3F2A41C0.1741082400/mx.example.org
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
X-Postfix-Queue-ID: 3F2A41C0
Arrival-Date: Tue,  4 Mar 2025 09:59:58 +0000 (UTC)

Final-Recipient: rfc822; Jane.Doe@Example.net
Original-Recipient: rfc822;Jane.Doe@Example.net
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.net
Diagnostic-Code: smtp; 550 5.1.1 <jane.doe@example.net>: Recipient address
    rejected: User unknown in virtual mailbox table

--3F2A41C0.1741082400/mx.example.org
Content-Description: Undelivered Message
Content-Type: message/rfc822

Return-Path: <intake@dayton.gov>
Message-ID: <intake311.abc123@dayton.gov>
Date: Tue, 4 Mar 2025 09:59:57 +0000
From: Dayton 311 <intake@dayton.gov>
To: Jane.Doe@Example.net
Subject: Re: Pothole on Main St [#311-42]

We received your request.

--3F2A41C0.1741082400/mx.example.org--
";

    #[test]
    fn phrase_lists_build_and_agree_with_a_plain_search() {
        let texts = [
            "this is the mail system at host mx.example.org.",
            "we will retry for five days",
            "your message has been delivered",
            "hello, a question about our parks budget",
            "----- Below this line is a copy of the message.",
            "",
        ];
        for p in [&TEMPLATE, &GENERIC, &SUCCESS, &DELAY, &RETURNED, &TEMPLATE_ANY_CASE] {
            let built = aho_corasick::AhoCorasickBuilder::new().ascii_case_insensitive(p.any_case).build(p.list);
            assert!(built.is_ok(), "{:?}", p.list.first());
            for t in texts {
                let plain = if p.any_case {
                    let l = t.to_ascii_lowercase();
                    p.list.iter().any(|w| l.contains(w))
                } else {
                    p.list.iter().any(|w| t.contains(w))
                };
                assert_eq!(p.found_in(t), plain, "{t:?} against {:?}", p.list.first());
            }
        }
    }

    fn may_be(raw: &str) -> bool {
        let data = normalize_newlines(raw.as_bytes());
        let msg = MessageParser::default().parse(&data).expect("parses");
        may_be_bounce(&Top::read(&msg), &Parts::collect(&msg))
    }

    #[test]
    fn ordinary_mail_takes_the_fast_path_and_text_only_bounces_do_not() {
        let question = "From: Mayor <mayor@dayton.gov>\nTo: intake@311.example\nSubject: Parks budget\n\nHello, how do other cities fund their parks? The delivery of our report failed to impress.\n";
        assert!(!may_be(question));
        assert_eq!(detect(question.as_bytes()), None);

        // No bounce subject, no daemon sender, no report part: only the template wording (in
        // capitals, which the full analysis lower-cases) and the null Return-Path say bounce.
        let template = "Return-Path: <>\nFrom: Relay <relay@example.org>\nTo: intake@311.example\nSubject: Your message\n\nTHIS IS THE MAIL SYSTEM AT HOST relay.example.org.\n\n<jane@example.net>: host mx.example.net said: 550 5.1.1 user unknown\n";
        assert!(may_be(template));
        let b = detect(template.as_bytes()).expect("a bounce");
        assert_eq!(b.recipients, vec!["jane@example.net".to_string()]);
        assert_eq!(b.status.as_deref(), Some("5.1.1"));

        // Delivery-status fields pasted into a plain text body, under an ordinary subject: the
        // field name, in any case, is template wording.
        let pasted = "From: Relay <relay@example.org>\nTo: intake@311.example\nSubject: Notice\n\nfinal-RECIPIENT: rfc822; jane@example.net\nAction: failed\nStatus: 5.2.2\n";
        assert!(may_be(pasted));
        let b = detect(pasted.as_bytes()).expect("a bounce");
        assert_eq!(b.recipients, vec!["jane@example.net".to_string()]);
        assert_eq!(b.status.as_deref(), Some("5.2.2"));
    }

    #[test]
    fn a_bounce_returning_a_huge_message_is_still_read_from_its_start() {
        // The returned original carries a 3 MB attachment: far past what detection reads.
        let big = "QUJD".repeat(3 * 1024 * 1024 / 4);
        let huge = POSTFIX_DSN.replace(
            "We received your request.\n",
            &format!(
                "Content-Type: multipart/mixed; boundary=\"inner\"\n\n--inner\nContent-Type: text/plain\n\nWe received your request.\n--inner\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n{big}\n--inner--\n"
            ),
        );
        assert!(huge.len() > 3 * DETECT_PREFIX);
        let b = detect(huge.as_bytes()).expect("a bounce");
        assert_eq!(b.recipients, vec!["jane.doe@example.net".to_string()]);
        assert_eq!(b.status.as_deref(), Some("5.1.1"));
        assert_eq!(b.original_message_id.as_deref(), Some("intake311.abc123@dayton.gov"));
    }

    #[test]
    fn postfix_multipart_report_hard_bounce() {
        let b = detect(POSTFIX_DSN.as_bytes()).expect("a bounce");
        assert_eq!(b.recipients, vec!["jane.doe@example.net".to_string()]);
        assert_eq!(b.status.as_deref(), Some("5.1.1"));
        assert_eq!(b.class, BounceClass::Hard);
        assert_eq!(b.original_message_id.as_deref(), Some("intake311.abc123@dayton.gov"));
        assert!(b.reason.starts_with("550 5.1.1"), "{}", b.reason);
        assert!(b.reason.contains("User unknown in virtual mailbox table"), "{}", b.reason);
        assert!(!b.reason.contains('\n'));
    }

    #[test]
    fn line_endings_do_not_matter() {
        let lf = detect(POSTFIX_DSN.as_bytes());
        assert_eq!(detect(&crlf(POSTFIX_DSN)), lf);
        assert_eq!(detect(POSTFIX_DSN.replace('\n', "\r").as_bytes()), lf);
        let mbox = format!("From MAILER-DAEMON Tue Mar  4 10:00:00 2025\n{POSTFIX_DSN}");
        assert_eq!(detect(mbox.as_bytes()), lf);
    }

    #[test]
    fn mailbox_full_delay_is_soft() {
        let raw = "From: Mail Delivery Subsystem <MAILER-DAEMON@relay.example.com>
To: intake@dayton.gov
Subject: Warning: could not send message for past 4 hours
Message-Id: <202503041400.524E0aB1@relay.example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B1\"

--B1
Content-Type: text/plain

    **********************************************
    **      THIS IS A WARNING MESSAGE ONLY      **
    **  YOU DO NOT NEED TO RESEND YOUR MESSAGE  **
    **********************************************

The original message was received at Tue, 4 Mar 2025 10:00:00 GMT

   ----- Transcript of session follows -----
<bob@example.com>... Deferred: 452 4.2.2 Mailbox full
Warning: message still undelivered after 4 hours
Will keep trying until message is 5 days old

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example.com

Final-Recipient: RFC822; bob@example.com
Action: delayed
Status: 4.2.2
Diagnostic-Code: SMTP; 452 4.2.2 Mailbox full
Will-Retry-Until: Sun, 9 Mar 2025 10:00:00 GMT

--B1
Content-Type: text/rfc822-headers

Message-ID: <intake311.delay1@dayton.gov>
From: intake@dayton.gov
To: bob@example.com
Subject: Your request

--B1--
";
        let b = detect(raw.as_bytes()).expect("a delay report");
        assert_eq!(b.class, BounceClass::Soft);
        assert_eq!(b.status.as_deref(), Some("4.2.2"));
        assert_eq!(b.recipients, vec!["bob@example.com".to_string()]);
        assert_eq!(b.original_message_id.as_deref(), Some("intake311.delay1@dayton.gov"));
        assert_eq!(b.reason, "452 4.2.2 Mailbox full");
    }

    #[test]
    fn exchange_ndr_without_dsn() {
        let raw = "From: System Administrator <postmaster@corp.example.com>
To: intake@dayton.gov
Subject: Undeliverable: Your 311 request
Date: Tue, 4 Mar 2025 10:00:00 -0500
Message-ID: <NDR0001@corp.example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=\"----_=_NextPart_001\"

------_=_NextPart_001
Content-Type: text/plain; charset=\"us-ascii\"

Your message did not reach some or all of the intended recipients.

      Subject:  Your 311 request
      Sent:     3/4/2025 9:59 AM

The following recipient(s) cannot be reached:

      Sam Smith on 3/4/2025 10:00 AM
            The e-mail account does not exist at the organization this message was sent to.
            <corp.example.com #5.1.1 smtp;550 5.1.1 RESOLVER.ADR.RecipNotFound; not found>

------_=_NextPart_001
Content-Type: message/rfc822

Message-ID: <intake311.xyz@dayton.gov>
From: intake@dayton.gov
To: Sam Smith <sam.smith@corp.example.com>
Subject: Your 311 request

Thank you.

------_=_NextPart_001--
";
        let b = detect(raw.as_bytes()).expect("an NDR");
        assert_eq!(b.class, BounceClass::Hard);
        assert_eq!(b.status.as_deref(), Some("5.1.1"));
        assert_eq!(b.original_message_id.as_deref(), Some("intake311.xyz@dayton.gov"));
        // No address in the explanation: the returned original's To.
        assert_eq!(b.recipients, vec!["sam.smith@corp.example.com".to_string()]);
        assert!(b.reason.contains("RESOLVER.ADR.RecipNotFound"), "{}", b.reason);
    }

    #[test]
    fn exchange_2003_wording_only_is_hard() {
        let raw = "From: postmaster@old.example.co.jp
To: intake@dayton.gov
Subject: Undeliverable: Streetlight out
MIME-Version: 1.0
Content-Type: text/plain

Your message

  To:      kiji@old.example.co.jp
  Subject: Streetlight out

did not reach the following recipient(s):

kiji@old.example.co.jp on Thu, 29 Apr 2007 16:51:51 -0500
    The recipient name is not recognized
    MSEXCH:IMS:KIJI:EXAMPLE:EXCHANGE 0 (000C05A6) Unknown Recipient
";
        let b = detect(raw.as_bytes()).expect("an NDR");
        assert_eq!(b.class, BounceClass::Hard);
        assert_eq!(b.status, None);
        assert_eq!(b.recipients, vec!["kiji@old.example.co.jp".to_string()]);
    }

    #[test]
    fn qmail_text_bounce() {
        let raw = "Return-Path: <>
From: MAILER-DAEMON@mail.example.jp
To: intake@dayton.gov
Subject: failure notice
Date: 4 Mar 2025 10:00:00 -0000
Message-ID: <20250304100000.123.qmail@mail.example.jp>

Hi. This is the qmail-send program at mail.example.jp.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<nobody@example.jp>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Return-Path: <intake@dayton.gov>
Received: (qmail 1234 invoked from network); 4 Mar 2025 09:59:59 -0000
Message-ID: <intake311.q1@dayton.gov>
From: intake@dayton.gov
To: nobody@example.jp
Subject: Your request

Hello
";
        let b = detect(raw.as_bytes()).expect("a qmail bounce");
        assert_eq!(b.class, BounceClass::Hard);
        assert_eq!(b.status.as_deref(), Some("5.1.1"));
        assert_eq!(b.recipients, vec!["nobody@example.jp".to_string()]);
        assert_eq!(b.original_message_id.as_deref(), Some("intake311.q1@dayton.gov"));
        assert_eq!(b.reason, "Sorry, no mailbox here by that name. (#5.1.1)");
    }

    #[test]
    fn exim_with_x_failed_recipients_and_smtp_code_only() {
        let raw = "From: Mail Delivery System <Mailer-Daemon@mx.example.org>
To: intake@dayton.gov
Subject: Mail delivery failed: returning message to sender
X-Failed-Recipients: Gone@Example.com
Auto-Submitted: auto-replied

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  gone@example.com
    host mx.example.com [192.0.2.1]
    SMTP error from remote mail server after RCPT TO:<gone@example.com>:
    550 Requested action not taken: mailbox unavailable

------ This is a copy of the message, including all the headers. ------

Message-ID: <intake311.e1@dayton.gov>
From: intake@dayton.gov
To: gone@example.com
";
        let b = detect(raw.as_bytes()).expect("an Exim bounce");
        assert_eq!(b.recipients, vec!["gone@example.com".to_string()]);
        assert_eq!(b.status, None);
        assert_eq!(b.class, BounceClass::Hard);
        assert_eq!(b.original_message_id.as_deref(), Some("intake311.e1@dayton.gov"));
        assert!(b.reason.starts_with("550 Requested action not taken"), "{}", b.reason);
    }

    #[test]
    fn wording_decides_without_codes() {
        let soft = "From: MAILER-DAEMON@example.net
Subject: failure notice
To: intake@dayton.gov

Hi. This is the qmail-send program at example.net.
<full@example.net>:
The user's mailbox is full. Please try again later.
";
        assert_eq!(detect(soft.as_bytes()).map(|b| b.class), Some(BounceClass::Soft));
        let hard = soft.replace("The user's mailbox is full. Please try again later.", "No such user here.");
        assert_eq!(detect(hard.as_bytes()).map(|b| b.class), Some(BounceClass::Hard));
    }

    #[test]
    fn vacation_auto_reply_is_not_a_bounce() {
        let raw = "From: Jane Doe <jane@example.net>
To: intake@dayton.gov
Subject: Out of Office: Re: Your 311 request
Auto-Submitted: auto-replied
X-Autoreply: yes
Precedence: bulk
In-Reply-To: <intake311.v1@dayton.gov>
Message-ID: <oof1@example.net>

I am out of the office until March 10 and could not be reached. Your message
was not delivered to my assistant either; for urgent matters call 555-0100.
";
        assert_eq!(detect(raw.as_bytes()), None);
    }

    #[test]
    fn successful_delivery_dsn_is_not_a_bounce() {
        let raw = "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
To: intake@dayton.gov
Subject: Successful Mail Delivery Report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary=\"S1\"

--S1
Content-Type: text/plain

This is the mail system at host mx.example.org.
Your message was successfully delivered to the destination(s) listed below.

<ok@example.org>: delivery via local: delivered to mailbox

--S1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: rfc822; ok@example.org
Action: delivered
Status: 2.0.0

Final-Recipient: rfc822; list@example.org
Action: relayed
Status: 2.0.0

--S1
Content-Type: text/rfc822-headers

Message-ID: <intake311.ok@dayton.gov>

--S1--
";
        assert_eq!(detect(raw.as_bytes()), None);
        // The same report with one failed recipient is a bounce for that recipient only.
        let mixed = raw.replace(
            "Final-Recipient: rfc822; list@example.org\nAction: relayed\nStatus: 2.0.0",
            "Final-Recipient: rfc822; bad@example.org\nAction: failed\nStatus: 5.1.1",
        );
        let b = detect(mixed.as_bytes()).expect("one failure");
        assert_eq!(b.recipients, vec!["bad@example.org".to_string()]);
        assert_eq!(b.status.as_deref(), Some("5.1.1"));
    }

    #[test]
    fn feedback_report_and_read_receipt_are_not_bounces() {
        let arf = "From: feedbackloop@isp.example
To: abuse@dayton.gov
Subject: Abuse Report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary=\"F\"

--F
Content-Type: text/plain

This is an email abuse report. The message was delivered but the user complained.

--F
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1

--F
Content-Type: message/rfc822

Message-ID: <intake311.f@dayton.gov>
From: intake@dayton.gov

--F--
";
        assert_eq!(detect(arf.as_bytes()), None);
        let mdn = arf
            .replace("feedback-report; boundary", "disposition-notification; boundary")
            .replace("message/feedback-report", "message/disposition-notification")
            .replace("Feedback-Type: abuse", "Disposition: manual-action/MDN-sent-manually; displayed");
        assert_eq!(detect(mdn.as_bytes()), None);
    }

    #[test]
    fn a_person_writing_about_delivery_is_not_a_bounce() {
        let raw = "From: Pat Resident <pat@example.com>
To: intake@dayton.gov
Subject: Recycling bin not delivered
Message-ID: <p1@example.com>

Hello, my new recycling bin was not delivered. The delivery failed twice and the
driver said there was an error with the address. Can you help?
";
        assert_eq!(detect(raw.as_bytes()), None);
        let fwd = format!(
            "From: Pat Resident <pat@example.com>\nTo: intake@dayton.gov\nSubject: Fwd: Undelivered Mail Returned to Sender\n\nWhy did this bounce?\n\n> {}",
            POSTFIX_DSN.replace('\n', "\n> ")
        );
        assert_eq!(detect(fwd.as_bytes()), None);
    }

    #[test]
    fn amazon_ses_notifications() {
        let bounce = r#"From: no-reply@sns.amazonaws.com
Subject: AWS Notification Message
Content-Type: text/plain; charset=UTF-8

{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"gone@example.com","action":"failed","status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 user unknown"}]},"mail":{"messageId":"0100abc","headers":[{"name":"Message-ID","value":"<intake311.ses@dayton.gov>"}]}}
"#;
        let b = detect(bounce.as_bytes()).expect("an SES bounce");
        assert_eq!(b.recipients, vec!["gone@example.com".to_string()]);
        assert_eq!(b.status.as_deref(), Some("5.1.1"));
        assert_eq!(b.class, BounceClass::Hard);
        assert_eq!(b.original_message_id.as_deref(), Some("intake311.ses@dayton.gov"));
        let complaint = bounce.replace("\"notificationType\":\"Bounce\"", "\"notificationType\":\"Complaint\"");
        assert_eq!(detect(complaint.as_bytes()), None);
    }

    #[test]
    fn garbage_is_not_a_bounce() {
        for raw in [
            &b""[..],
            b"\0",
            b"\r\n\r\n",
            b"From ",
            b"Subject: Undelivered Mail Returned to Sender",
            b"\xff\xfe\x00\x01garbage\x80\x81",
            b"Content-Type: multipart/report; boundary=\"x\"\n\n--x\n--x--",
            b"not an email at all, just words: 550 5.1.1 user unknown",
        ] {
            assert_eq!(detect(raw), None, "{:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn never_panics_on_truncations_and_mutations() {
        let sources = [POSTFIX_DSN.as_bytes().to_vec(), crlf(POSTFIX_DSN)];
        for src in &sources {
            for end in 0..src.len() {
                let _ = detect(&src[..end]);
            }
            let mut seed: u32 = 0x2545_f491;
            for _ in 0..300 {
                let mut m = src.clone();
                for _ in 0..8 {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    let i = seed as usize % m.len();
                    m[i] = (seed >> 24) as u8;
                }
                let _ = detect(&m);
            }
        }
    }

    #[test]
    fn large_hostile_input_is_handled() {
        // ~3 MB of code-, address- and field-shaped noise: every scan is bounded or linear, so
        // this takes milliseconds; a quadratic path would hang the test.
        let mut raw = String::from("From: MAILER-DAEMON@x.example\nSubject: failure notice\n\n");
        for _ in 0..20_000 {
            raw.push_str("550 5.1.1 a@b.c Message-ID: <x@y> @@@@ 5.5.5.5.5 Final-Recipient: rfc822; q@r.s\n");
        }
        raw.push_str(&"a".repeat(1 << 20));
        let b = detect(raw.as_bytes()).expect("still a bounce");
        assert!(b.recipients.len() <= MAX_RECIPIENTS);
        assert!(b.reason.chars().count() <= MAX_REASON_CHARS);
    }

    #[test]
    fn code_scanners() {
        assert_eq!(find_enhanced("said: 550 5.1.1 <a@b>", false).as_deref(), Some("5.1.1"));
        assert_eq!(find_enhanced("host 192.0.2.1 refused", false), None);
        assert_eq!(find_enhanced("version 8.14.3/8.14.3", false), None);
        assert_eq!(find_enhanced("(#5.7.606)", false).as_deref(), Some("5.7.606"));
        assert_eq!(find_enhanced("Status: 2.0.0", true).as_deref(), Some("2.0.0"));
        assert_eq!(
            diagnostic_code("5.1.0 - Unknown address error 550-'5.7.1 <x@y>... Access denied'"),
            Some(("5.7.1".into(), true))
        );
        assert_eq!(find_smtp("Remote host said: 552 Error: quota").map(|(c, _)| c).as_deref(), Some("552"));
        assert_eq!(find_smtp("message size 500 bytes"), None);
        assert_eq!(address_field("rfc822;@relay.example:Kiji@Example.org").as_deref(), Some("kiji@example.org"));
        assert_eq!(address_field("rfc822; @mx.example.org"), None);
    }
}
