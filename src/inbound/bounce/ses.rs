//! Amazon SES notifications delivered by mail (SNS JSON): bounce, complaint or delivery.
//! Talks to: serde_json; pure.

use super::*;

// -------------------------------------------------------------------------------------------
// Amazon SES JSON notifications
// -------------------------------------------------------------------------------------------

pub(super) enum SesNotice {
    Bounce(Bounce),
    NotABounce,
}

pub(super) fn ses_notification(text: &str) -> Option<SesNotice> {
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
