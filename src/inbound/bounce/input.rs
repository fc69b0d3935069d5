//! Input shaping and the top-level headers: newline and mbox normalisation, and [`Top`], what
//! the report's own header block says (subject, sender, report type, failed recipients, ids).
//! Talks to: mail-parser's parsed message; pure.

use super::*;

// -------------------------------------------------------------------------------------------
// Input shaping
// -------------------------------------------------------------------------------------------

/// CRLF and bare CR become LF, so CRLF, LF and old-Mac files read alike.
pub(super) fn normalize_newlines(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter().copied().peekable();
    while let Some(b) = bytes.next() {
        if b == b'\r' {
            out.push(b'\n');
            bytes.next_if_eq(&b'\n');
        } else {
            out.push(b);
        }
    }
    out
}

/// Skips leading blank lines and an mbox `From ` separator line.
pub(super) fn skip_mbox_separator(data: &[u8]) -> &[u8] {
    let mut d = data;
    while let Some(rest) = d.strip_prefix(b"\n") {
        d = rest;
    }
    if d.starts_with(b"From ") {
        match d.iter().position(|&b| b == b'\n') {
            Some(p) => d.get(p + 1..).unwrap_or(&[]),
            None => &[],
        }
    } else {
        d
    }
}

// -------------------------------------------------------------------------------------------
// Top-level headers
// -------------------------------------------------------------------------------------------

pub(super) struct Top {
    pub(super) subject: Option<String>,
    pub(super) from_addr: String,
    pub(super) from_name: String,
    pub(super) to_addrs: Vec<String>,
    pub(super) report_type: Option<String>,
    pub(super) auto_submitted: Option<String>,
    pub(super) x_autoreply: bool,
    pub(super) failed_recipients: Vec<String>,
    pub(super) null_return_path: bool,
    pub(super) own_id: Option<String>,
    /// In-Reply-To (or the last References id): some MTAs thread the bounce to the original.
    pub(super) reply_ref: Option<String>,
}

impl Top {
    pub(super) fn read(msg: &Message<'_>) -> Top {
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

pub(super) fn raw_value(raw: &[u8], start: u32, end: u32) -> String {
    let (s, e) = (start as usize, end as usize);
    let bytes = raw.get(s..e.max(s)).unwrap_or(&[]);
    let text = String::from_utf8_lossy(bytes);
    one_line(&text)
}

pub(super) fn first_addr(a: &Address<'_>) -> Option<(String, String)> {
    let first = a.first()?;
    let name = first.name().unwrap_or("").to_string();
    let addr = first.address().unwrap_or("").trim().to_ascii_lowercase();
    Some((name, addr))
}

pub(super) fn all_addrs(a: &Address<'_>) -> Vec<String> {
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
