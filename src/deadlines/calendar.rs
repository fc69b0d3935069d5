//! The business-day calendar: Monday to Friday in `intake.timezone`, less the holidays of a
//! holiday file.
//!
//! Owns: the holiday file's format and its precise errors, and every business-day sum the
//! deadlines use. Pure: it reads a file only in [`Calendar::load`], and never the clock.
//!
//! The file is plain text, one holiday per line: an ISO date, white space, the holiday's name.
//! `#` starts a comment; blank lines are skipped. Plain text rather than iCalendar because an
//! administrator edits it by hand, a diff of it reads well, and a holiday is a date and a name:
//! nothing iCalendar adds (times, recurrence, time zones) applies to a day off.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate, Weekday};

/// A holiday file that cannot be used: which file, which line, and why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CalendarError {
    #[error("holiday file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{origin} line {line}: {reason}")]
    Line { origin: String, line: usize, reason: String },
}

/// What a day is, for `calendar show` and for the sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind<'a> {
    Business,
    Weekend,
    Holiday(&'a str),
}

/// Business days: Monday to Friday, less the listed holidays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    holidays: BTreeMap<NaiveDate, String>,
}

impl Calendar {
    /// Weekends only: no holidays (what an unset `deadlines.holidays` means).
    pub fn weekends_only() -> Calendar {
        Calendar::default()
    }

    /// Reads and parses a holiday file.
    pub fn load(path: &Path) -> Result<Calendar, CalendarError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CalendarError::File { path: path.to_path_buf(), reason: e.to_string() })?;
        Calendar::parse(&text, &path.display().to_string())
    }

    /// Parses a holiday file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Calendar, CalendarError> {
        let mut holidays = BTreeMap::new();
        let mut first_line = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |reason: String| CalendarError::Line { origin: origin.to_string(), line, reason };
            let content = raw.split_once('#').map_or(raw, |(before, _)| before).trim();
            if content.is_empty() {
                continue;
            }
            let (date, name) = match content.split_once(char::is_whitespace) {
                Some((d, n)) => (d, n.trim()),
                None => (content, ""),
            };
            let date = NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .map_err(|_| err(format!("`{date}` is not a date (expected YYYY-MM-DD, then the holiday's name)")))?;
            if name.is_empty() {
                return Err(err(format!("{date} has no name (write the holiday's name after the date)")));
            }
            if let Some(earlier) = first_line.insert(date, line) {
                return Err(err(format!("{date} is listed twice (first on line {earlier})")));
            }
            holidays.insert(date, name.to_string());
        }
        Ok(Calendar { holidays })
    }

    /// Builds a calendar from dates and names (tests, and the shipped rule).
    pub fn from_holidays<I: IntoIterator<Item = (NaiveDate, String)>>(holidays: I) -> Calendar {
        Calendar { holidays: holidays.into_iter().collect() }
    }

    pub fn kind(&self, date: NaiveDate) -> DayKind<'_> {
        if matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
            DayKind::Weekend
        } else if let Some(name) = self.holidays.get(&date) {
            DayKind::Holiday(name)
        } else {
            DayKind::Business
        }
    }

    pub fn is_business_day(&self, date: NaiveDate) -> bool {
        self.kind(date) == DayKind::Business
    }

    /// The holiday on `date`, if one is listed (even on a weekend).
    pub fn holiday(&self, date: NaiveDate) -> Option<&str> {
        self.holidays.get(&date).map(String::as_str)
    }

    /// `date` plus `days` business days: the `days`-th business day after `date` (`date` itself
    /// when `days` is 0). An arrival on a Saturday with one day to go is due on Monday.
    pub fn add_business_days(&self, date: NaiveDate, days: u32) -> NaiveDate {
        let mut d = date;
        let mut left = days;
        while left > 0 {
            match d.succ_opt() {
                Some(next) => d = next,
                None => return d,
            }
            if self.is_business_day(d) {
                left -= 1;
            }
        }
        d
    }

    /// Business days from `from` to `to`: how many business days lie after `from` up to and
    /// including `to` (negative when `to` is before `from`). So a request due on `to` seen on
    /// `from` has this many business days left, and `add_business_days(from, n)` is the last
    /// business day on or before `to` when `n` is the result.
    pub fn business_days_between(&self, from: NaiveDate, to: NaiveDate) -> i64 {
        if to < from {
            return -self.business_days_between(to, from);
        }
        let mut n = 0;
        let mut d = from;
        while d < to {
            match d.succ_opt() {
                Some(next) => d = next,
                None => break,
            }
            if self.is_business_day(d) {
                n += 1;
            }
        }
        n
    }

    /// The first business day on or after `date`.
    pub fn on_or_after(&self, date: NaiveDate) -> NaiveDate {
        let mut d = date;
        while !self.is_business_day(d) {
            match d.succ_opt() {
                Some(next) => d = next,
                None => break,
            }
        }
        d
    }

    /// The last listed holiday: the list says nothing about the days after it.
    pub fn last_holiday(&self) -> Option<NaiveDate> {
        self.holidays.keys().next_back().copied()
    }

    /// How many holidays are listed.
    pub fn len(&self) -> usize {
        self.holidays.len()
    }

    pub fn is_empty(&self) -> bool {
        self.holidays.is_empty()
    }

    /// Every day from `from` to `to` inclusive, with what it is.
    pub fn days(&self, from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = (NaiveDate, DayKind<'_>)> + '_ {
        from.iter_days().take_while(move |d| *d <= to).map(|d| (d, self.kind(d)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("date")
    }

    fn thanksgiving() -> Calendar {
        Calendar::parse("2026-11-26 Thanksgiving Day\n2026-11-27 Day after # a local holiday\n", "t").expect("parses")
    }

    #[test]
    fn the_file_format_parses_with_comments_and_blank_lines() {
        let text = "# US federal\n\n2026-01-01\tNew Year's Day\n  2026-07-03  Independence Day (observed)  # Friday\n";
        let cal = Calendar::parse(text, "h.txt").expect("parses");
        assert_eq!(cal.len(), 2);
        assert_eq!(cal.holiday(d(2026, 1, 1)), Some("New Year's Day"));
        assert_eq!(cal.holiday(d(2026, 7, 3)), Some("Independence Day (observed)"));
        assert_eq!(cal.last_holiday(), Some(d(2026, 7, 3)));
    }

    #[test]
    fn bad_lines_name_the_file_the_line_and_the_reason() {
        let err = |text: &str| Calendar::parse(text, "holidays.txt").expect_err("refused").to_string();
        assert_eq!(
            err("2026-01-01 New Year\n2026-13-01 Smarch Day\n"),
            "holidays.txt line 2: `2026-13-01` is not a date (expected YYYY-MM-DD, then the holiday's name)"
        );
        assert_eq!(
            err("\n\n2026-07-03\n"),
            "holidays.txt line 3: 2026-07-03 has no name (write the holiday's name after the date)"
        );
        assert_eq!(
            err("2026-01-01 A\n# x\n2026-01-01 B\n"),
            "holidays.txt line 3: 2026-01-01 is listed twice (first on line 1)"
        );
        assert!(err("01/01/2026 New Year").contains("`01/01/2026` is not a date"));
        let missing = Calendar::load(Path::new("/nonexistent/holidays.txt")).expect_err("missing").to_string();
        assert!(missing.starts_with("holiday file /nonexistent/holidays.txt: "), "{missing}");
    }

    #[test]
    fn business_days_skip_weekends_and_holidays() {
        let plain = Calendar::weekends_only();
        let wed = d(2026, 11, 25);
        assert_eq!(plain.add_business_days(wed, 1), d(2026, 11, 26));
        assert_eq!(plain.add_business_days(wed, 10), d(2026, 12, 9));
        let cal = thanksgiving();
        assert_eq!(cal.add_business_days(wed, 1), d(2026, 11, 30), "Thursday and Friday are off");
        assert_eq!(cal.add_business_days(wed, 10), d(2026, 12, 11));
        assert_eq!(cal.add_business_days(wed, 0), wed);
        assert_eq!(cal.add_business_days(d(2026, 11, 28), 1), d(2026, 11, 30), "Saturday + 1 is Monday");
        assert_eq!(cal.kind(d(2026, 11, 26)), DayKind::Holiday("Thanksgiving Day"));
        assert_eq!(cal.kind(d(2026, 11, 29)), DayKind::Weekend);
        assert_eq!(cal.on_or_after(d(2026, 11, 26)), d(2026, 11, 30));
        assert_eq!(cal.on_or_after(wed), wed);
    }

    #[test]
    fn business_days_between_is_the_inverse_of_adding() {
        let cal = thanksgiving();
        let start = d(2026, 11, 20);
        for n in 0..40u32 {
            let due = cal.add_business_days(start, n);
            assert_eq!(cal.business_days_between(start, due), i64::from(n), "{n}");
            assert_eq!(cal.business_days_between(due, start), -i64::from(n), "{n}");
        }
        // Counting to a day off counts the business days before it.
        assert_eq!(cal.business_days_between(d(2026, 11, 25), d(2026, 11, 29)), 0);
        assert_eq!(cal.days(d(2026, 11, 25), d(2026, 11, 30)).filter(|(_, k)| *k == DayKind::Business).count(), 2);
    }
}
