//! `message/delivery-status` (RFC 3464): per-recipient records and their assessment (failure,
//! delay, success; hard or soft).
//! Talks to: nothing; pure text parsing.

use super::*;

// -------------------------------------------------------------------------------------------
// message/delivery-status
// -------------------------------------------------------------------------------------------

#[derive(Debug, Default, Clone)]
pub(super) struct DsnRecord {
    pub(super) final_rcpt: Option<String>,
    pub(super) orig_rcpt: Option<String>,
    pub(super) action: Option<String>,
    pub(super) status: Option<String>,
    pub(super) diag: Option<String>,
}

impl DsnRecord {
    pub(super) fn has_rcpt(&self) -> bool {
        self.final_rcpt.is_some() || self.orig_rcpt.is_some()
    }
    pub(super) fn is_empty(&self) -> bool {
        !self.has_rcpt() && self.action.is_none() && self.status.is_none()
    }
}

/// Per-recipient records of a delivery-status body, and the original Message-ID when the
/// report names it (`X-Original-Message-ID`, `Original-Message-ID`).
pub(super) fn parse_dsn(text: &str) -> (Vec<DsnRecord>, Option<String>) {
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
pub(super) fn address_field(v: &str) -> Option<String> {
    let v = match v.find(';') {
        Some(p) => v.get(p + 1..).unwrap_or(""),
        None => v,
    };
    clean_address(v)
}

pub(super) fn clean_address(v: &str) -> Option<String> {
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
pub(super) enum Kind {
    Failed,
    Delayed,
    Success,
    Unknown,
}

impl Kind {
    pub(super) fn is_failure(self) -> bool {
        matches!(self, Kind::Failed | Kind::Delayed)
    }
    pub(super) fn describe(self) -> &'static str {
        match self {
            Kind::Delayed => "delivery delayed",
            _ => "delivery failed",
        }
    }
}

pub(super) struct Assessed {
    pub(super) kind: Kind,
    pub(super) recipient: Option<String>,
    pub(super) status: Option<String>,
    pub(super) class: Option<BounceClass>,
    pub(super) diag: Option<String>,
}

pub(super) fn assess(r: &DsnRecord) -> Assessed {
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

pub(super) fn class_of_digit(code: &str) -> BounceClass {
    if code.starts_with('4') { BounceClass::Soft } else { BounceClass::Hard }
}

/// The diagnostic without its type prefix (`smtp; 550 ...` → `550 ...`).
pub(super) fn clean_diagnostic(d: &str) -> String {
    let d = d.trim();
    let d = match d.find(';') {
        Some(p) if d.get(..p).is_some_and(|t| !t.is_empty() && t.len() <= 20 && !t.contains(' ')) => {
            d.get(p + 1..).unwrap_or("")
        }
        _ => d,
    };
    one_line(d)
}
