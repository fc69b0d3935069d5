//! Keeping the promise: the business-day calendar and its holidays.
//!
//! Owns: what a business day is ([`Calendar`], pure), the shipped US federal holiday rule
//! ([`us_federal`]), and loading the calendar a deployment's config names. Talks to: `config`
//! and the file system (the holiday file) only.

mod calendar;
pub mod us_federal;

pub use calendar::{Calendar, CalendarError, DayKind};

use crate::config::Config;

impl Calendar {
    /// The calendar of this deployment: `deadlines.holidays` when set, else weekends only.
    pub fn of(cfg: &Config) -> Result<Calendar, CalendarError> {
        match &cfg.deadlines.holidays {
            Some(path) => Calendar::load(path),
            None => Ok(Calendar::weekends_only()),
        }
    }
}
