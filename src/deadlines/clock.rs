//! The clock of one request: the promised date, stopped while the request waits on the city,
//! and the business days to the first response and to the resolution.
//!
//! Owns: the rules, pure. A request that goes to `waiting_on_city` stops its clock on that day;
//! when it leaves it (the city answered, or staff moved it on) the due date moves by the business
//! days it waited, unless the request was answered or closed meanwhile. A date set by staff
//! replaces the due date; if the request is waiting, its pause starts again from that day, so
//! the waiting before the new date is not added to it. Talks to: [`Calendar`] only; callers read
//! and write the fields through the store.

use chrono::NaiveDate;

use super::Calendar;
use crate::domain::RequestStatus;

/// The clock fields of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clock {
    pub received_on: NaiveDate,
    pub due: Option<NaiveDate>,
    /// The day the request began to wait on the city (the clock is stopped), or `None`.
    pub paused_on: Option<NaiveDate>,
    /// Business days waited on the city, all told.
    pub waited_days: i64,
    pub first_response_days: Option<i64>,
    pub resolution_days: Option<i64>,
    /// The day it was resolved, and how: `response`, `referral` or `closed` (closed unanswered).
    pub resolved: Option<(NaiveDate, &'static str)>,
}

/// The due date moved because the request waited on the city.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub waited: i64,
}

impl Moved {
    /// The timeline's words for it.
    pub fn detail(&self) -> String {
        format!("{} → {}: waited {} business day(s) on the city, so the clock stopped", self.from, self.to, self.waited)
    }
}

impl Clock {
    /// A status change on `today`. Returns the move of the due date, if there was one.
    pub fn on_status(
        &mut self,
        from: RequestStatus,
        to: RequestStatus,
        today: NaiveDate,
        cal: &Calendar,
    ) -> Option<Moved> {
        use RequestStatus::*;
        let mut moved = None;
        if from == WaitingOnCity
            && to != WaitingOnCity
            && let Some(paused) = self.paused_on.take()
        {
            let waited = cal.business_days_between(paused, today).max(0);
            self.waited_days += waited;
            if waited > 0
                && !matches!(to, Responded | Referred | Closed)
                && let Some(due) = self.due
            {
                let new = cal.add_business_days(due, u32::try_from(waited).unwrap_or(u32::MAX));
                self.due = Some(new);
                moved = Some(Moved { from: due, to: new, waited });
            }
        }
        if to == WaitingOnCity && from != WaitingOnCity && self.paused_on.is_none() {
            self.paused_on = Some(today);
        }
        if matches!(to, Responded | Referred | Closed) && self.resolution_days.is_none() {
            self.resolution_days = Some(cal.business_days_between(self.received_on, today).max(0));
            let how = match to {
                Responded => "response",
                Referred => "referral",
                _ => "closed",
            };
            self.resolved = Some((today, how));
        }
        moved
    }

    /// A person sent the official a reply or the response on `today`.
    pub fn on_human_response(&mut self, today: NaiveDate, cal: &Calendar) {
        if self.first_response_days.is_none() {
            self.first_response_days = Some(cal.business_days_between(self.received_on, today).max(0));
        }
    }

    /// Staff set a new due date on `today`; returns the old one.
    pub fn set_due(&mut self, date: NaiveDate, today: NaiveDate) -> Option<NaiveDate> {
        if self.paused_on.is_some() {
            self.paused_on = Some(today);
        }
        self.due.replace(date)
    }

    /// Business days left until the due date on `today` (negative: overdue by that many), or
    /// `None` without a due date. A stopped clock counts from the day it stopped.
    pub fn days_left(&self, today: NaiveDate, cal: &Calendar) -> Option<i64> {
        let due = self.due?;
        Some(cal.business_days_between(self.paused_on.unwrap_or(today).min(today), due))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestStatus::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("date")
    }

    fn cal() -> Calendar {
        Calendar::from_holidays([(d(2027, 1, 18), "Birthday of Martin Luther King, Jr.".to_string())])
    }

    fn clock() -> Clock {
        // Arrived Monday 4 January 2027, due ten business days later.
        Clock {
            received_on: d(2027, 1, 4),
            due: Some(d(2027, 1, 19)),
            paused_on: None,
            waited_days: 0,
            first_response_days: None,
            resolution_days: None,
            resolved: None,
        }
    }

    #[test]
    fn waiting_on_the_city_stops_the_clock_and_the_answer_moves_the_due_date() {
        let cal = cal();
        let mut c = clock();
        assert_eq!(c.on_status(InProgress, WaitingOnCity, d(2027, 1, 6), &cal), None);
        assert_eq!(c.paused_on, Some(d(2027, 1, 6)));
        // The city answers the next Tuesday: Thu, Fri, Mon, Tue = 4 business days waited.
        let moved = c.on_status(WaitingOnCity, InProgress, d(2027, 1, 12), &cal).expect("moved");
        assert_eq!(moved, Moved { from: d(2027, 1, 19), to: d(2027, 1, 25), waited: 4 }, "skips MLK day");
        assert_eq!(c.due, Some(d(2027, 1, 25)));
        assert_eq!((c.paused_on, c.waited_days), (None, 4));
        assert!(moved.detail().starts_with("2027-01-19 → 2027-01-25: waited 4 business day(s)"));
    }

    #[test]
    fn an_answer_on_the_same_day_or_a_response_while_waiting_moves_nothing() {
        let cal = cal();
        let mut c = clock();
        c.on_status(InProgress, WaitingOnCity, d(2027, 1, 6), &cal);
        assert_eq!(c.on_status(WaitingOnCity, InProgress, d(2027, 1, 6), &cal), None);
        assert_eq!((c.due, c.waited_days), (Some(d(2027, 1, 19)), 0));
        c.on_status(InProgress, WaitingOnCity, d(2027, 1, 7), &cal);
        assert_eq!(c.on_status(WaitingOnCity, Responded, d(2027, 1, 11), &cal), None, "answered: no new promise");
        assert_eq!(c.waited_days, 2, "but the wait is counted");
        assert_eq!(c.resolution_days, Some(5));
        assert_eq!(c.resolved, Some((d(2027, 1, 11), "response")));
        // Reopened and closed again: the first resolution stays.
        c.on_status(Responded, InProgress, d(2027, 1, 12), &cal);
        c.on_status(InProgress, Closed, d(2027, 1, 20), &cal);
        assert_eq!(c.resolution_days, Some(5));
        assert_eq!(c.resolved, Some((d(2027, 1, 11), "response")));
    }

    #[test]
    fn a_referral_resolves_the_request_and_a_close_without_answer_says_so() {
        let cal = cal();
        let mut c = clock();
        c.on_status(Assigned, Referred, d(2027, 1, 8), &cal);
        assert_eq!((c.resolution_days, c.resolved), (Some(4), Some((d(2027, 1, 8), "referral"))));
        let mut c = clock();
        c.on_status(Acknowledged, Closed, d(2027, 1, 5), &cal);
        assert_eq!(c.resolved, Some((d(2027, 1, 5), "closed")));
    }

    #[test]
    fn the_first_human_response_is_counted_once_in_business_days() {
        let cal = cal();
        let mut c = clock();
        c.on_human_response(d(2027, 1, 19), &cal);
        assert_eq!(c.first_response_days, Some(10), "MLK day is not counted");
        c.on_human_response(d(2027, 1, 29), &cal);
        assert_eq!(c.first_response_days, Some(10));
    }

    #[test]
    fn a_date_set_by_staff_restarts_the_pause_and_days_left_count_business_days() {
        let cal = cal();
        let mut c = clock();
        assert_eq!(c.days_left(d(2027, 1, 15), &cal), Some(1), "Friday; Monday is MLK day, due Tuesday");
        assert_eq!(c.days_left(d(2027, 1, 21), &cal), Some(-2), "two business days overdue");
        c.on_status(InProgress, WaitingOnCity, d(2027, 1, 6), &cal);
        assert_eq!(c.days_left(d(2027, 1, 21), &cal), Some(8), "a stopped clock counts from the day it stopped");
        assert_eq!(c.set_due(d(2027, 2, 3), d(2027, 1, 11)), Some(d(2027, 1, 19)));
        assert_eq!(c.paused_on, Some(d(2027, 1, 11)));
        let moved = c.on_status(WaitingOnCity, InProgress, d(2027, 1, 13), &cal).expect("moved");
        assert_eq!((moved.from, moved.to, moved.waited), (d(2027, 2, 3), d(2027, 2, 5), 2));
    }
}
