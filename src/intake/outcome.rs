//! What became of one message ([`Outcome`]), where it sat in IMAP ([`Position`]), who acted
//! ([`Actor`]) and why a staff action was refused ([`ApplyError`]).
//! Owns no I/O; talks to nothing.

use std::fmt;

use crate::domain::TrackingNumber;
use crate::intake::commands::CommandError;
use crate::store::Source;

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Request {
        tracking: TrackingNumber,
        eligibility: crate::domain::Eligibility,
    },
    FollowUp {
        tracking: String,
    },
    StaffAction {
        tracking: String,
        summary: String,
    },
    StaffRejected {
        reason: String,
    },
    Admin {
        summary: String,
    },
    Duplicate {
        message_id: String,
    },
    Automatic {
        reason: String,
    },
    Quarantined {
        reason: String,
    },
    /// Another daemon handled this IMAP position first (it fetched the same UID); only moved.
    AlreadyHandled {
        quarantined: bool,
    },
}

impl Outcome {
    /// Whether the message belongs in the quarantine folder (else the processed folder).
    pub fn is_quarantined(&self) -> bool {
        matches!(self, Outcome::Quarantined { .. } | Outcome::AlreadyHandled { quarantined: true })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Request { tracking, eligibility } => write!(f, "request {tracking} ({eligibility})"),
            Outcome::FollowUp { tracking } => write!(f, "follow-up to {tracking}"),
            Outcome::StaffAction { tracking, summary } => write!(f, "staff on {tracking}: {summary}"),
            Outcome::StaffRejected { reason } => write!(f, "staff command rejected: {reason}"),
            Outcome::Admin { summary } => write!(f, "administrator: {summary}"),
            Outcome::Duplicate { message_id } => write!(f, "duplicate of <{message_id}>"),
            Outcome::Automatic { reason } => write!(f, "automatic mail ({reason}), not answered"),
            Outcome::Quarantined { reason } => write!(f, "quarantined: {reason}"),
            Outcome::AlreadyHandled { .. } => write!(f, "already handled by another daemon; only moved"),
        }
    }
}

/// Where a message sits in IMAP.
#[derive(Debug, Clone, Copy)]
pub struct Position<'a> {
    pub mailbox: &'a str,
    pub uidvalidity: u32,
    pub uid: u32,
}

impl Position<'_> {
    pub(super) fn tuple(&self) -> (&str, u32, u32) {
        (self.mailbox, self.uidvalidity, self.uid)
    }
}

/// Who did something, for the timeline and signatures.
#[derive(Debug, Clone)]
pub struct Actor {
    pub email: String,
    pub name: String,
    pub source: Source,
}

/// Why a staff action was not applied.
#[derive(Debug)]
pub enum ApplyError {
    /// The staff member asked for something that cannot be done; they are told, nothing changes.
    Command(CommandError),
    /// The store (or rendering) failed.
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for ApplyError {
    fn from(e: anyhow::Error) -> Self {
        ApplyError::Internal(e)
    }
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Command(e) => write!(f, "{e}"),
            ApplyError::Internal(e) => write!(f, "{e:#}"),
        }
    }
}

pub(super) enum NewRequestError {
    /// The store failed: leave the message where it is and try again later.
    Store(anyhow::Error),
    /// Something about this message makes it unusable: quarantine it with this reason.
    Unusable(String),
}

impl From<anyhow::Error> for NewRequestError {
    fn from(e: anyhow::Error) -> Self {
        NewRequestError::Store(e)
    }
}
