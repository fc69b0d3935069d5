//! Keeping the promise: the business-day calendar and its holidays, and the clock per request.
//!
//! Owns: what a business day is ([`Calendar`], pure), the shipped US federal holiday rule
//! ([`us_federal`]), the rules of a request's clock ([`Clock`], pure), and loading the calendar
//! a deployment's config names. Talks to: `config`, the file system (the holiday file) and the
//! store's request rows.

mod calendar;
mod clock;
pub mod notices;
pub mod us_federal;

pub use calendar::{Calendar, CalendarError, DayKind};
pub use clock::{Clock, Moved};

use crate::config::Config;
use crate::store::{ClockFields, RequestRow};

impl Clock {
    /// The clock of a stored request (a date that does not parse counts as unset; the arrival
    /// date falls back to the day the row was made).
    pub fn of(row: &RequestRow) -> Clock {
        let date = |s: &Option<String>| s.as_deref().and_then(|d| d.parse::<chrono::NaiveDate>().ok());
        let received_on = row.received_on.parse().unwrap_or_else(|_| {
            chrono::DateTime::from_timestamp_millis(row.created_at).unwrap_or_default().date_naive()
        });
        Clock {
            received_on,
            due: date(&row.due_date),
            paused_on: date(&row.clock_paused_on),
            waited_days: row.waited_days,
            first_response_days: row.first_response_days,
            resolution_days: row.resolution_days,
            resolved: date(&row.resolved_on).map(|d| {
                let how = match row.resolved_by.as_str() {
                    "response" => "response",
                    "referral" => "referral",
                    _ => "closed",
                };
                (d, how)
            }),
        }
    }

    /// The fields to write back.
    pub fn fields(&self) -> ClockFields {
        ClockFields {
            due_date: self.due.map(|d| d.to_string()),
            clock_paused_on: self.paused_on.map(|d| d.to_string()),
            waited_days: self.waited_days,
            first_response_days: self.first_response_days,
            resolution_days: self.resolution_days,
            resolved_on: self.resolved.map(|(d, _)| d.to_string()),
            resolved_by: self.resolved.map(|(_, how)| how.to_string()).unwrap_or_default(),
        }
    }
}

impl Calendar {
    /// The calendar of this deployment: `deadlines.holidays` when set, else weekends only.
    pub fn of(cfg: &Config) -> Result<Calendar, CalendarError> {
        match &cfg.deadlines.holidays {
            Some(path) => Calendar::load(path),
            None => Ok(Calendar::weekends_only()),
        }
    }
}
