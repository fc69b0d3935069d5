//! The MIME walk: [`Parts`] collects the delivery-status texts, the human-readable text, and the
//! returned original's ids and addresses from every part of a report, bounded in size.
//! Talks to: mail-parser's parsed message; pure.

use super::*;

// -------------------------------------------------------------------------------------------
// MIME parts
// -------------------------------------------------------------------------------------------

#[derive(Default)]
pub(super) struct Parts {
    pub(super) dsn_texts: Vec<String>,
    /// A delivery-status part sits in the message itself (not in a forwarded report).
    pub(super) top_level_dsn: bool,
    pub(super) feedback: bool,
    pub(super) mdn: bool,
    /// There is a returned original (message/rfc822 or rfc822-headers part).
    pub(super) returned: bool,
    pub(super) returned_id: Option<String>,
    pub(super) returned_to: Vec<String>,
    pub(super) returned_from: Vec<String>,
    pub(super) dsn_original_id: Option<String>,
    /// The human-readable text parts, in order (bounded).
    pub(super) text: String,
}

impl Parts {
    pub(super) fn collect(msg: &Message<'_>) -> Parts {
        let mut p = Parts::default();
        p.walk(msg, 0);
        p
    }

    /// Reads the parts of `msg`. `depth` 1 is a bounce found inside a `message/rfc822` part
    /// (a report forwarded or wrapped by a gateway).
    pub(super) fn walk(&mut self, msg: &Message<'_>, depth: u8) {
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

    pub(super) fn take_returned_or_nested(&mut self, body: &PartType<'_>, depth: u8) {
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
    pub(super) fn take_part_headers(&mut self, raw: &[u8], part: &MessagePart<'_>) {
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

    pub(super) fn push_text(&mut self, t: &str) {
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

    pub(super) fn take_returned(&mut self, body: &PartType<'_>) {
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

    pub(super) fn take_header_text(&mut self, t: &str) {
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
pub(super) fn is_report(m: &Message<'_>) -> bool {
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

pub(super) fn part_text(body: &PartType<'_>) -> String {
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
pub(super) fn decode_iso2022jp(t: String) -> String {
    if !t.contains("\u{1b}$B") && !t.contains("\u{1b}$@") {
        return t;
    }
    match mail_parser::decoders::charsets::map::charset_decoder(b"iso-2022-jp") {
        Some(decode) => decode(t.as_bytes()),
        None => t,
    }
}

pub(super) fn bounded(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

pub(super) fn bounded_bytes(b: &[u8], max: usize) -> &[u8] {
    b.get(..b.len().min(max)).unwrap_or(&[])
}

/// A text that starts like a message header block (the returned original as text/plain).
pub(super) fn looks_like_header_block(t: &str) -> bool {
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
