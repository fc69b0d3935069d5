//! Staff actions on a request outside mail (the command line, later the web console): respond,
//! reply, note, assign, status, close, and the review decisions.
//!
//! Owns: the one sequence every such action follows: apply the staff message through
//! [`Intake::apply_staff_message`] (the same code and checks as the `#` commands by mail, in
//! one transaction, on the same timeline), then send what it queued right away. A running
//! daemon would pick the mail up as well; the outbox lease keeps it from going twice. Also the
//! actor's name from the staff list, and attachments from a file name and bytes.
//! Talks to: [`crate::intake`], [`crate::outbound`] (worker pass, SMTP), [`crate::store`].

use std::fmt;

use super::Actor;
use crate::config::Config;
use crate::domain::TrackingNumber;
use crate::intake::commands::StaffMessage;
use crate::intake::{ApplyError, Intake};
use crate::outbound::smtp::Smtp;
use crate::outbound::{OutAttachment, worker};
use crate::store::{Source, Store};

/// What happened to the mail an action queued, after the immediate send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The action queued no mail.
    Nothing,
    /// Handed to the SMTP server.
    Sent(usize),
    /// The server refused it for now; the daemon retries.
    Refused,
    /// Not sent yet (no connection, …); the daemon will send it.
    Deferred(String),
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Delivery::Nothing => Ok(()),
            Delivery::Sent(n) => write!(f, "sent ({n} message(s))"),
            Delivery::Refused => {
                write!(f, "queued; the SMTP server refused it for now, the daemon will retry (see requests show)")
            }
            Delivery::Deferred(why) => write!(f, "queued; not sent yet ({why}); the daemon will send it"),
        }
    }
}

/// An applied action: the summary of what changed, and what became of its mail.
#[derive(Debug, Clone)]
pub struct Done {
    pub summary: String,
    pub delivery: Delivery,
}

/// The acting staff member: the address as given, with their name from the staff list (empty
/// when they are not on it, e.g. a login name).
pub async fn actor(store: &Store, email: &str, source: Source) -> anyhow::Result<Actor> {
    let name = store.staff_member(email).await?.map(|m| m.name).unwrap_or_default();
    Ok(Actor { email: email.to_string(), name, source })
}

/// An attachment from its file name and bytes; the type is guessed from the name.
pub fn attachment(filename: &str, data: Vec<u8>) -> OutAttachment {
    let content_type = mime_guess::from_path(filename).first_or_octet_stream().to_string();
    let filename = if filename.is_empty() { "attachment".to_string() } else { filename.to_string() };
    OutAttachment { filename, content_type, data }
}

/// Sends what is due now; what the server refuses stays queued for the daemon.
pub async fn send_now(store: &Store, cfg: &Config) -> Delivery {
    let transport = match Smtp::new(cfg) {
        Ok(t) => t,
        Err(e) => return Delivery::Deferred(format!("{e:#}")),
    };
    match worker::send_once(store, &transport, cfg).await {
        Ok(p) if p.failed == 0 => Delivery::Sent(p.sent),
        Ok(_) => Delivery::Refused,
        Err(e) => Delivery::Deferred(format!("{e:#}")),
    }
}

/// Applies `message` to the request as `actor` and, when it queued mail to the official,
/// sends it now. A refused command changes nothing ([`ApplyError::Command`]).
pub async fn act(
    intake: &Intake,
    cfg: &Config,
    tracking: &TrackingNumber,
    message: &StaffMessage,
    actor: &Actor,
    attachments: &[OutAttachment],
) -> Result<Done, ApplyError> {
    let summary = intake.apply_staff_message(tracking, message, actor, attachments).await?;
    let delivery = if message.sends_mail() { send_now(intake.store(), cfg).await } else { Delivery::Nothing };
    Ok(Done { summary: format!("{tracking}: {summary}"), delivery })
}

/// Gives a request in review a city (and optionally records the official as its contact);
/// sends the acknowledgement now when the official has had none.
pub async fn approve(
    intake: &Intake,
    cfg: &Config,
    tracking: &TrackingNumber,
    city: i64,
    add_contact: bool,
    actor: &Actor,
) -> Result<Done, ApplyError> {
    let summary = intake.review_approve(tracking, city, add_contact, actor).await?;
    Ok(Done { summary, delivery: send_now(intake.store(), cfg).await })
}

/// Takes a request out of review and closes it; nothing is sent.
pub async fn reject(
    intake: &Intake,
    tracking: &TrackingNumber,
    reason: &str,
    actor: &Actor,
) -> Result<Done, ApplyError> {
    let summary = intake.review_reject(tracking, reason, actor).await?;
    Ok(Done { summary, delivery: Delivery::Nothing })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachments_get_a_type_from_their_name() {
        assert_eq!(attachment("memo.pdf", vec![1]).content_type, "application/pdf");
        assert_eq!(attachment("data.weird-ext", vec![]).content_type, "application/octet-stream");
        assert_eq!(attachment("", vec![]).filename, "attachment");
    }

    #[test]
    fn delivery_says_what_the_daemon_will_do() {
        assert_eq!(Delivery::Sent(2).to_string(), "sent (2 message(s))");
        assert!(Delivery::Deferred("no route".into()).to_string().contains("the daemon will send it"));
        assert!(Delivery::Nothing.to_string().is_empty());
    }
}
