//! What kind of mail this is, decided from the parsed message alone (pure).
//!
//! Rule 3 of the design: never talk to a robot. Automatic mail (auto-replies, bounces, lists,
//! our own mail) is recorded and never answered. [`robots`] holds the signs beyond RFC 3834:
//! feedback and DMARC reports, auto-reply subjects, list moderation notices, challenge-response
//! mails and spam verdicts. [`classify_raw`] adds the ones only the raw header block shows.

mod robots;

use super::InboundMail;

/// The kind of an inbound mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classification {
    /// A person writing: a new question (or, later, a follow-up).
    Human,
    /// Automatic mail that must never be answered, with the sign that gave it away.
    Automatic(String),
}

/// Classifies `mail`. `own_addresses` are our intake and From addresses; `own_domain` is the
/// domain of our Message-IDs.
pub fn classify(mail: &InboundMail, own_addresses: &[&str], own_domain: &str) -> Classification {
    let a = &mail.automation;
    if a.own_loop {
        return Classification::Automatic("our own loop header (X-Intake311-Loop)".into());
    }
    if own_addresses.iter().any(|o| o.eq_ignore_ascii_case(&mail.from)) {
        return Classification::Automatic(format!("sent from our own address {}", mail.from));
    }
    if !own_domain.is_empty()
        && mail.message_id.to_ascii_lowercase().ends_with(&format!("@{}", own_domain.to_ascii_lowercase()))
        && mail.message_id.starts_with("intake311.")
    {
        return Classification::Automatic("our own Message-ID".into());
    }
    if let Some(v) = &a.auto_submitted {
        let v = v.split(';').next().unwrap_or_default().trim();
        if v != "no" {
            return Classification::Automatic(format!("Auto-Submitted: {v}"));
        }
    }
    if let Some(p) = &a.precedence
        && matches!(p.as_str(), "bulk" | "junk" | "list" | "auto_reply")
    {
        return Classification::Automatic(format!("Precedence: {p}"));
    }
    if a.x_autoreply {
        return Classification::Automatic("X-Autoreply / X-Autorespond / X-Auto-Response-Suppress header".into());
    }
    if a.list_id {
        return Classification::Automatic("mailing-list mail (List-Id / List-Unsubscribe)".into());
    }
    if let Some(rp) = &a.return_path {
        if rp.is_empty() {
            return Classification::Automatic("null return path (<>)".into());
        }
        if is_system_sender(rp) {
            return Classification::Automatic(format!("return path {rp}"));
        }
    }
    if is_system_sender(&mail.from) {
        return Classification::Automatic(format!("sender {}", mail.from));
    }
    if let Some(phrase) = out_of_office(&mail.subject) {
        return Classification::Automatic(format!("auto-reply subject ({phrase})"));
    }
    robots::feedback_report(mail)
        .or_else(|| robots::dmarc_aggregate(mail))
        .or_else(|| robots::reporter_sender(&mail.from))
        .or_else(|| robots::list_notice(mail, own_domain))
        .or_else(|| robots::challenge(mail, own_domain))
        .or_else(|| robots::spam_subject(&mail.subject))
        .map_or(Classification::Human, Classification::Automatic)
}

/// The auto-reply phrase a subject starts with, standing alone (see [`robots::auto_reply_subject`]).
pub fn out_of_office(subject: &str) -> Option<String> {
    robots::auto_reply_subject(subject)
}

/// As [`classify`], and first the signs only the raw header block shows: the receiving server's
/// spam verdict (`X-Spam-Flag`, `X-Spam-Status`, `X-Spam`, Rspamd's `X-Rspamd-Action`, ...) and
/// an ARF `multipart/report; report-type=feedback-report`. `raw` may be the whole message or its
/// header block only.
pub fn classify_raw(raw: &[u8], mail: &InboundMail, own_addresses: &[&str], own_domain: &str) -> Classification {
    match classify(mail, own_addresses, own_domain) {
        Classification::Human => robots::header_verdict(raw).map_or(Classification::Human, Classification::Automatic),
        automatic => automatic,
    }
}

/// The receiving server's spam verdict in the raw header block, if it gave one (see
/// [`classify_raw`]).
pub fn spam_verdict(raw: &[u8]) -> Option<String> {
    robots::header_verdict(raw)
}

fn is_system_sender(addr: &str) -> bool {
    let local = addr.split('@').next().unwrap_or_default().to_ascii_lowercase();
    matches!(local.as_str(), "mailer-daemon" | "postmaster" | "noreply" | "no-reply" | "do-not-reply" | "donotreply")
}

#[cfg(test)]
mod tests;
