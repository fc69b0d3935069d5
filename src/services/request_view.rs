//! One request as people see it: its row, the request it follows, the conversation, the mail
//! out with its delivery state, and the timeline. `requests show` prints it (as text or JSON);
//! the web console will render the same type.
//!
//! Owns: [`RequestView`] and its text form. Text that came from outside is printed without
//! terminal control characters.
//! Talks to: [`crate::store`].

use std::fmt;

use serde::Serialize;

use super::fmt_ms;
use crate::domain::TrackingNumber;
use crate::store::{ConversationMessage, ReferralRow, RequestEvent, RequestRow, RequestTopics, Store};

/// One outbox row of a request.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxEntry {
    pub kind: String,
    pub status: String,
    pub message_id: String,
    pub last_error: String,
}

/// Everything `requests show` shows.
#[derive(Debug, Clone, Serialize)]
pub struct RequestView {
    pub request: RequestRow,
    /// The tracking number of the request this one follows (a reply that reopened it).
    pub follows: Option<String>,
    /// Its topics (names), and whether staff confirmed them.
    pub topics: RequestTopics,
    pub referrals: Vec<ReferralRow>,
    pub messages: Vec<ConversationMessage>,
    pub outbox: Vec<OutboxEntry>,
    pub timeline: Vec<RequestEvent>,
}

/// The request with this tracking number, or `None`.
pub async fn request_view(store: &Store, tracking: &TrackingNumber) -> anyhow::Result<Option<RequestView>> {
    let Some(request) = store.request_by_tracking(tracking).await? else { return Ok(None) };
    let follows = match request.parent_id {
        Some(p) => store.request_by_id(p).await?.map(|r| r.tracking),
        None => None,
    };
    let messages = store.conversation(request.id).await?;
    let outbox = store
        .outbox_for_request(request.id)
        .await?
        .into_iter()
        .map(|(kind, status, message_id, last_error)| OutboxEntry { kind, status, message_id, last_error })
        .collect();
    let timeline = store.request_events(request.id).await?;
    let topics = store.topics_of(crate::domain::RequestId(request.id)).await?;
    let referrals = store.referrals_of(request.id).await?;
    Ok(Some(RequestView { request, follows, topics, referrals, messages, outbox, timeline }))
}

/// Text from outside, without terminal control sequences (tabs stay).
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control() || *c == '\t').collect()
}

/// One message: who, when and the subject on one line, then what it says, indented. Automatic
/// mail out has no text (its template says it).
fn write_message(f: &mut fmt::Formatter<'_>, m: &ConversationMessage) -> fmt::Result {
    let who = if m.direction != "in" {
        if m.cc_addrs.is_empty() {
            format!("to {}", m.to_addrs)
        } else {
            format!("to {}, cc {}", m.to_addrs, m.cc_addrs)
        }
    } else if m.from_name.is_empty() {
        format!("from {}", m.from_addr)
    } else {
        format!("from {} <{}>", m.from_name, m.from_addr)
    };
    writeln!(f, "  {}  {:<3} {:<21} {}", fmt_ms(m.at), m.direction, m.kind, printable(&who))?;
    let subject = if m.subject.is_empty() { "(no subject)".to_string() } else { printable(&m.subject) };
    writeln!(f, "      Subject: {subject}")?;
    for line in m.text.trim_end().lines() {
        writeln!(f, "      | {}", printable(line))?;
    }
    Ok(())
}

impl fmt::Display for RequestView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.request;
        writeln!(f, "Request     {}", r.tracking)?;
        writeln!(f, "Status      {}", r.status)?;
        writeln!(f, "Subject     {}", printable(&r.subject))?;
        writeln!(f, "Official    {} <{}>", printable(&r.official_name), r.official_email)?;
        writeln!(f, "City        {}", r.city.as_deref().unwrap_or("-"))?;
        writeln!(f, "Eligibility {} — {}", r.eligibility, r.eligibility_reason)?;
        let paused = match &r.clock_paused_on {
            Some(day) => format!(" (clock stopped since {day}: waiting on the city)"),
            None => String::new(),
        };
        writeln!(f, "Due         {}{paused}", r.due_date.as_deref().unwrap_or("-"))?;
        let days = |d: Option<i64>| d.map_or_else(|| "-".to_string(), |n| format!("{n} business day(s)"));
        writeln!(
            f,
            "Clock       first response {}, resolved in {}, waited on the city {} business day(s)",
            days(r.first_response_days),
            days(r.resolution_days),
            r.waited_days
        )?;
        writeln!(f, "Assignee    {}", if r.assignee.is_empty() { "-" } else { &r.assignee })?;
        let topics = if self.topics.topics.is_empty() { "-".to_string() } else { self.topics.topics.join(", ") };
        let suggested = if self.topics.confirmed || self.topics.topics.is_empty() { "" } else { " (suggested)" };
        writeln!(f, "Topics      {topics}{suggested}")?;
        for x in &self.referrals {
            writeln!(
                f,
                "Referred    {} to {} <{}> by {}",
                x.referred_on,
                printable(&x.expert_name),
                x.expert_email,
                x.referred_by
            )?;
            if !x.outcome.is_empty() {
                writeln!(f, "            outcome: {}", printable(&x.outcome))?;
            }
            if !x.bounced.is_empty() {
                writeln!(f, "            the introduction BOUNCED: {}", printable(&x.bounced))?;
            }
        }
        if let Some(parent) = &self.follows {
            writeln!(f, "Follows     {parent} (the request this reply reopened)")?;
        }
        writeln!(f, "Created     {}", fmt_ms(r.created_at))?;
        writeln!(f, "\nMessages:")?;
        for m in &self.messages {
            write_message(f, m)?;
        }
        writeln!(f, "\nMail out:")?;
        for o in &self.outbox {
            let err = if o.last_error.is_empty() { String::new() } else { format!("  last error: {}", o.last_error) };
            writeln!(f, "  {:<18} {:<8} <{}>{err}", o.kind, o.status, o.message_id)?;
        }
        write!(f, "\nTimeline:")?;
        for e in &self.timeline {
            write!(f, "\n  {}  {:<6} {:<28} {} {}", fmt_ms(e.at), e.source, e.actor, e.event, printable(&e.detail))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_dropped() {
        assert_eq!(super::printable("a\u{1b}[31mb\tc"), "a[31mb\tc");
    }
}
