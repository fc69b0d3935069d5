//! The words of the domain as types: ids, tracking numbers, request statuses and their legal
//! transitions, eligibility outcomes, and the business-day arithmetic behind a due date.
//!
//! Owns: rules that need no I/O. Talks to: nothing; every other module uses these types.

pub mod city;
pub mod time;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Row id of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(transparent)]
pub struct RequestId(pub i64);

/// Row id of a city in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(transparent)]
pub struct CityId(pub i64);

/// `PREFIX-YYYY-NNNN`: unique, increasing within a year, never reused. The sequence has at least
/// four digits and grows past 9999 rather than wrapping.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TrackingNumber {
    pub prefix: String,
    pub year: i32,
    pub seq: i64,
}

impl TrackingNumber {
    pub fn new(prefix: &str, year: i32, seq: i64) -> Self {
        TrackingNumber { prefix: prefix.to_string(), year, seq }
    }
    /// The tag as it stands in a subject: `[311-2026-0042]`.
    pub fn tag(&self) -> String {
        format!("[{self}]")
    }
}

impl fmt::Display for TrackingNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{:04}", self.prefix, self.year, self.seq)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a tracking number (expected PREFIX-YYYY-NNNN, e.g. 311-2026-0042)")]
pub struct BadTrackingNumber(pub String);

impl FromStr for TrackingNumber {
    type Err = BadTrackingNumber;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadTrackingNumber(s.to_string());
        let t = s.trim().trim_start_matches('[').trim_end_matches(']');
        let mut parts = t.rsplitn(3, '-');
        let seq = parts.next().ok_or_else(bad)?;
        let year = parts.next().ok_or_else(bad)?;
        let prefix = parts.next().ok_or_else(bad)?;
        let ok = !prefix.is_empty()
            && prefix.chars().all(|c| c.is_ascii_alphanumeric())
            && year.len() == 4
            && year.chars().all(|c| c.is_ascii_digit())
            && seq.len() >= 4
            && seq.chars().all(|c| c.is_ascii_digit());
        if !ok {
            return Err(bad());
        }
        Ok(TrackingNumber {
            prefix: prefix.to_string(),
            year: year.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

/// Where a request stands. The legal moves are in [`RequestStatus::can_move_to`], and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    New,
    Acknowledged,
    Assigned,
    InProgress,
    WaitingOnCity,
    Responded,
    /// Staff introduced the official to a national expert (a referral counts as a response).
    Referred,
    Closed,
    /// The city is known but not eligible; the official was told so.
    Ineligible,
    /// No city could be identified; the official was asked which city they represent.
    NeedsCity,
}

impl RequestStatus {
    pub const ALL: [RequestStatus; 10] = [
        RequestStatus::New,
        RequestStatus::Acknowledged,
        RequestStatus::Assigned,
        RequestStatus::InProgress,
        RequestStatus::WaitingOnCity,
        RequestStatus::Responded,
        RequestStatus::Referred,
        RequestStatus::Closed,
        RequestStatus::Ineligible,
        RequestStatus::NeedsCity,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::New => "new",
            RequestStatus::Acknowledged => "acknowledged",
            RequestStatus::Assigned => "assigned",
            RequestStatus::InProgress => "in_progress",
            RequestStatus::WaitingOnCity => "waiting_on_city",
            RequestStatus::Responded => "responded",
            RequestStatus::Referred => "referred",
            RequestStatus::Closed => "closed",
            RequestStatus::Ineligible => "ineligible",
            RequestStatus::NeedsCity => "needs_city",
        }
    }

    /// The one table of legal transitions.
    pub fn can_move_to(self, to: RequestStatus) -> bool {
        use RequestStatus::*;
        if self == to {
            return false;
        }
        match self {
            New => matches!(to, Acknowledged | Ineligible | NeedsCity | Assigned | Referred | Closed),
            Acknowledged => matches!(to, Assigned | InProgress | WaitingOnCity | Responded | Referred | Closed),
            Assigned => matches!(to, InProgress | WaitingOnCity | Responded | Referred | Closed | Acknowledged),
            InProgress => matches!(to, Assigned | WaitingOnCity | Responded | Referred | Closed),
            WaitingOnCity => matches!(to, InProgress | Assigned | Responded | Referred | Closed),
            Responded => matches!(to, InProgress | WaitingOnCity | Referred | Closed | Assigned),
            Referred => matches!(to, InProgress | Assigned | WaitingOnCity | Responded | Closed),
            Closed => matches!(to, InProgress | Assigned | WaitingOnCity | Responded | Referred),
            // Staff may still take up a request the registry turned away.
            Ineligible => {
                matches!(to, Acknowledged | Assigned | InProgress | WaitingOnCity | Responded | Referred | Closed)
            }
            NeedsCity => matches!(
                to,
                Acknowledged | Ineligible | Assigned | InProgress | WaitingOnCity | Responded | Referred | Closed
            ),
        }
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "unknown status `{0}` (one of: new, acknowledged, assigned, in_progress, waiting_on_city, responded, referred, closed, ineligible, needs_city)"
)]
pub struct BadStatus(pub String);

impl FromStr for RequestStatus {
    type Err = BadStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        RequestStatus::ALL.into_iter().find(|st| st.as_str() == norm).ok_or_else(|| BadStatus(s.to_string()))
    }
}

/// For reading a stored status column (`#[sqlx(try_from = "String")]`).
impl TryFrom<String> for RequestStatus {
    type Error = BadStatus;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// The outcome of checking a sender's city.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Eligibility {
    Eligible,
    NotEligible,
    Unknown,
}

impl Eligibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Eligibility::Eligible => "eligible",
            Eligibility::NotEligible => "not_eligible",
            Eligibility::Unknown => "unknown",
        }
    }
    /// Status a new request starts in for this outcome.
    pub fn initial_status(self) -> RequestStatus {
        match self {
            Eligibility::Eligible => RequestStatus::Acknowledged,
            Eligibility::NotEligible => RequestStatus::Ineligible,
            Eligibility::Unknown => RequestStatus::NeedsCity,
        }
    }
    /// Name of the acknowledgement template for this outcome.
    pub fn ack_template(self) -> &'static str {
        match self {
            Eligibility::Eligible => "ack_eligible",
            Eligibility::NotEligible => "ack_not_eligible",
            Eligibility::Unknown => "ack_unknown_city",
        }
    }
}

impl fmt::Display for Eligibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Eligibility {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "eligible" => Ok(Eligibility::Eligible),
            "not_eligible" => Ok(Eligibility::NotEligible),
            "unknown" => Ok(Eligibility::Unknown),
            other => Err(format!("unknown eligibility `{other}`")),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown eligibility `{0}` (one of: eligible, not_eligible, unknown)")]
pub struct BadEligibility(pub String);

/// For reading a stored eligibility column (`#[sqlx(try_from = "String")]`).
impl TryFrom<String> for Eligibility {
    type Error = BadEligibility;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse().map_err(|_| BadEligibility(s))
    }
}

/// The decision recorded on a request: outcome, city, and a reason a person can read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EligibilityDecision {
    pub outcome: Eligibility,
    pub city: Option<CityRef>,
    /// e.g. `domain daytonohio.gov → Dayton, OH (eligible)`.
    pub reason: String,
}

/// A city as it appears in decisions and templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CityRef {
    pub id: CityId,
    pub name: String,
    pub state: String,
}

impl CityRef {
    pub fn display_name(&self) -> String {
        format!("{}, {}", self.name, self.state)
    }
}

/// Lower-cased, trimmed address; `None` when it has no `local@domain` shape.
pub fn normalize_email(address: &str) -> Option<String> {
    let a = address.trim().trim_start_matches('<').trim_end_matches('>').trim();
    let (local, domain) = a.rsplit_once('@')?;
    if local.is_empty()
        || domain.is_empty()
        || domain.contains(char::is_whitespace)
        || local.contains(char::is_whitespace)
    {
        return None;
    }
    Some(format!("{local}@{}", domain.to_ascii_lowercase()).to_lowercase())
}

/// Whether outbox mail of this kind goes to staff (a `staff_*` notice, or the monthly report to
/// the admin staff) rather than to a city:
/// the two are separate threads of one request, ordered each on its own.
pub fn is_staff_mail(kind: &str) -> bool {
    kind.starts_with("staff_") || kind == "monthly_report"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_number_formats_and_parses() {
        let t = TrackingNumber::new("311", 2026, 42);
        assert_eq!(t.to_string(), "311-2026-0042");
        assert_eq!(t.tag(), "[311-2026-0042]");
        assert_eq!("311-2026-0042".parse::<TrackingNumber>(), Ok(t.clone()));
        assert_eq!("[311-2026-0042]".parse::<TrackingNumber>(), Ok(t));
        assert_eq!(TrackingNumber::new("311", 2026, 12345).to_string(), "311-2026-12345");
        for bad in ["", "311-26-0042", "311-2026-42", "3-1-1", "311_2026_0042", "-2026-0042"] {
            assert!(bad.parse::<TrackingNumber>().is_err(), "{bad}");
        }
    }

    #[test]
    fn status_transitions_are_explicit() {
        use RequestStatus::*;
        assert!(New.can_move_to(Acknowledged));
        assert!(Responded.can_move_to(Closed));
        assert!(Closed.can_move_to(InProgress));
        assert!(!Closed.can_move_to(New));
        assert!(!Acknowledged.can_move_to(Acknowledged));
        assert!(!Closed.can_move_to(Acknowledged));
        assert!(Ineligible.can_move_to(Responded), "staff may answer a turned-away request");
        for s in RequestStatus::ALL {
            assert_eq!(s.as_str().parse::<RequestStatus>(), Ok(s));
            assert!(!s.can_move_to(New), "nothing goes back to new: {s}");
        }
        assert!("waiting-on-city".parse::<RequestStatus>().is_ok());
        assert!("done".parse::<RequestStatus>().unwrap_err().to_string().contains("one of"));
    }

    #[test]
    fn emails_normalize() {
        assert_eq!(normalize_email(" <Mayor@DaytonOhio.GOV> ").as_deref(), Some("mayor@daytonohio.gov"));
        assert_eq!(normalize_email("no-at-sign"), None);
        assert_eq!(normalize_email("a b@c.d"), None);
    }
}
