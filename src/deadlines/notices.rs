//! Which reminders are due at a moment, and what the daily digest lists (pure).
//!
//! Owns: the rules. Nothing is sent on a weekend or holiday, nor before `deadlines.digest_at`
//! local time. On a business day from then on, each open request whose clock runs gets:
//! - `remind_before`: once, when it has `deadlines.remind_before` or fewer business days left;
//! - `due_today`: once, on its due day;
//! - `overdue`: once, from the first business day after it (a daemon that was down that day
//!   sends it on its next business day instead; it is never repeated for the same due date).
//!
//! Each is keyed by the request and its due date, so a new date (the city answered, or `#due`)
//! earns new reminders. The digest lists, for the staff address: overdue requests (oldest due
//! first), requests due within three business days, unassigned requests, requests waiting on
//! the city for more than `deadlines.stale_after` business days, and the review queue. Talks
//! to: [`Calendar`] and [`Clock`] only.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde::Serialize;

use super::{Calendar, Clock};
use crate::domain::RequestStatus;
use crate::store::RequestRow;

/// How many business days ahead the digest's "due soon" section looks.
pub const DUE_SOON_DAYS: i64 = 3;

/// The kinds of reminder, in the order they come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReminderKind {
    RemindBefore,
    DueToday,
    Overdue,
}

impl ReminderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReminderKind::RemindBefore => "remind_before",
            ReminderKind::DueToday => "due_today",
            ReminderKind::Overdue => "overdue",
        }
    }

    fn key_prefix(self) -> &'static str {
        match self {
            ReminderKind::RemindBefore => "before",
            ReminderKind::DueToday => "due",
            ReminderKind::Overdue => "overdue",
        }
    }
}

/// One reminder to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    pub kind: ReminderKind,
    pub request_id: i64,
    pub due: NaiveDate,
    /// Business days left (negative: over).
    pub days_left: i64,
}

impl Reminder {
    /// The notice key: once per request, kind and due date.
    pub fn key(&self) -> String {
        format!("{}:{}:{}", self.kind.key_prefix(), self.request_id, self.due)
    }

    /// In words, e.g. `due in 2 business days`, `due today`, `overdue by 1 business day`.
    pub fn words(&self) -> String {
        words(self.days_left)
    }
}

/// `due in N business days`, `due today`, `overdue by N business days`.
pub fn words(days_left: i64) -> String {
    let plural = |n: i64| if n == 1 { "business day" } else { "business days" };
    match days_left {
        0 => "due today".to_string(),
        n if n > 0 => format!("due in {n} {}", plural(n)),
        n => format!("overdue by {} {}", -n, plural(-n)),
    }
}

/// Whether the scheduler acts at `now` (local): a business day, at or after `digest_at`.
pub fn acts_at(now: NaiveDateTime, digest_at: NaiveTime, cal: &Calendar) -> bool {
    cal.is_business_day(now.date()) && now.time() >= digest_at
}

/// Whether a request's clock runs toward a due date a person must keep.
fn clock_runs(status: RequestStatus) -> bool {
    matches!(
        status,
        RequestStatus::New | RequestStatus::Acknowledged | RequestStatus::Assigned | RequestStatus::InProgress
    )
}

/// Business days left for `row` on `today` (negative: overdue), when its clock runs toward a
/// due date; `None` for answered, waiting or undated requests.
pub fn days_left(row: &RequestRow, today: NaiveDate, cal: &Calendar) -> Option<i64> {
    running(row, today, cal).map(|(_, left)| left)
}

/// The due date and the business days left, when `row`'s clock runs toward a due date.
fn running(row: &RequestRow, today: NaiveDate, cal: &Calendar) -> Option<(NaiveDate, i64)> {
    let c = Clock::of(row);
    match (clock_runs(row.status), c.due, c.paused_on) {
        (true, Some(due), None) => Some((due, cal.business_days_between(today, due))),
        _ => None,
    }
}

/// The reminders due on `today` for `rows` (callers skip those already sent, by key).
pub fn reminders(rows: &[RequestRow], today: NaiveDate, cal: &Calendar, remind_before: u32) -> Vec<Reminder> {
    let mut out = Vec::new();
    for row in rows {
        let Some((due, left)) = running(row, today, cal) else { continue };
        let kind = match left {
            0 => ReminderKind::DueToday,
            n if n < 0 => ReminderKind::Overdue,
            n if n <= i64::from(remind_before) => ReminderKind::RemindBefore,
            _ => continue,
        };
        out.push(Reminder { kind, request_id: row.id, due, days_left: left });
    }
    out
}

/// One line of the digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestLine {
    pub tracking: String,
    pub city: String,
    pub subject: String,
    pub assignee: String,
    /// `overdue by 2 business days`, `due in 1 business day`, `waiting 7 business days`, …
    pub when: String,
}

/// One section of the digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestSection {
    pub title: String,
    pub lines: Vec<DigestLine>,
}

/// The digest of `today`; empty sections are left out, and no section at all means no mail.
pub fn digest(rows: &[RequestRow], today: NaiveDate, cal: &Calendar, stale_after: u32) -> Vec<DigestSection> {
    let line = |r: &RequestRow, when: String| DigestLine {
        tracking: r.tracking.clone(),
        city: r.city.clone().unwrap_or_else(|| "city unknown".into()),
        subject: r.subject.clone(),
        assignee: if r.assignee.is_empty() { "unassigned".into() } else { r.assignee.clone() },
        when,
    };
    let dated: Vec<(&RequestRow, NaiveDate, i64)> =
        rows.iter().filter_map(|r| running(r, today, cal).map(|(due, left)| (r, due, left))).collect();
    let mut overdue: Vec<_> = dated.iter().filter(|(_, _, left)| *left < 0).collect();
    overdue.sort_by_key(|(r, due, _)| (*due, r.id));
    let mut soon: Vec<_> = dated.iter().filter(|(_, _, left)| (0..=DUE_SOON_DAYS).contains(left)).collect();
    soon.sort_by_key(|(r, due, _)| (*due, r.id));
    let unassigned: Vec<&RequestRow> = rows
        .iter()
        .filter(|r| r.assignee.is_empty() && (clock_runs(r.status) || r.status == RequestStatus::WaitingOnCity))
        .collect();
    let stale: Vec<(&RequestRow, i64)> = rows
        .iter()
        .filter(|r| r.status == RequestStatus::WaitingOnCity)
        .filter_map(|r| {
            let since = Clock::of(r).paused_on?;
            let waited = cal.business_days_between(since, today);
            (waited > i64::from(stale_after)).then_some((r, waited))
        })
        .collect();
    let review: Vec<&RequestRow> = rows.iter().filter(|r| !r.review_reason.is_empty()).collect();
    let due_words = |r: &RequestRow| match (running(r, today, cal), Clock::of(r).due) {
        (Some((_, left)), _) => words(left),
        (None, Some(due)) => format!("due {due}"),
        (None, None) => "no due date".into(),
    };
    let sections = [
        ("Overdue", overdue.iter().map(|(r, _, left)| line(r, words(*left))).collect::<Vec<_>>()),
        ("Due in the next three business days", soon.iter().map(|(r, _, left)| line(r, words(*left))).collect()),
        ("Unassigned", unassigned.iter().map(|r| line(r, due_words(r))).collect()),
        (
            "Waiting on the city",
            stale.iter().map(|(r, waited)| line(r, format!("waiting {waited} business days"))).collect(),
        ),
        ("Review queue", review.iter().map(|r| line(r, r.review_reason.clone())).collect()),
    ];
    sections
        .into_iter()
        .filter(|(_, lines)| !lines.is_empty())
        .map(|(title, lines)| DigestSection { title: title.into(), lines })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("date")
    }

    fn row(id: i64, status: RequestStatus, due: NaiveDate) -> RequestRow {
        RequestRow {
            status,
            due_date: Some(due.to_string()),
            assignee: "ana@311.test".into(),
            received_on: "2027-01-04".into(),
            ..crate::store::sample_row(id, 2027)
        }
    }

    fn cal() -> Calendar {
        Calendar::from_holidays([(d(2027, 1, 18), "MLK".to_string())])
    }

    #[test]
    fn reminders_come_before_on_and_after_the_due_day_on_business_days() {
        let cal = cal();
        let rows = [row(1, RequestStatus::InProgress, d(2027, 1, 19))];
        let on = |day| reminders(&rows, day, &cal, 2).into_iter().map(|r| (r.kind, r.days_left)).collect::<Vec<_>>();
        assert_eq!(on(d(2027, 1, 13)), []);
        assert_eq!(on(d(2027, 1, 14)), [(ReminderKind::RemindBefore, 2)], "Thursday: Friday and Tuesday left");
        assert_eq!(on(d(2027, 1, 15)), [(ReminderKind::RemindBefore, 1)]);
        assert_eq!(on(d(2027, 1, 19)), [(ReminderKind::DueToday, 0)]);
        assert_eq!(on(d(2027, 1, 20)), [(ReminderKind::Overdue, -1)]);
        let r = &reminders(&rows, d(2027, 1, 20), &cal, 2)[0];
        assert_eq!((r.key(), r.words()), ("overdue:1:2027-01-19".to_string(), "overdue by 1 business day".to_string()));
        assert_eq!(reminders(&rows, d(2027, 1, 14), &cal, 0), [], "remind_before = 0: no early reminder");
    }

    #[test]
    fn answered_waiting_and_undated_requests_get_no_reminder() {
        let cal = cal();
        let mut waiting = row(2, RequestStatus::WaitingOnCity, d(2027, 1, 19));
        waiting.clock_paused_on = Some("2027-01-11".into());
        let mut undated = row(3, RequestStatus::InProgress, d(2027, 1, 19));
        undated.due_date = None;
        let rows = [row(1, RequestStatus::Responded, d(2027, 1, 19)), waiting, undated];
        assert_eq!(reminders(&rows, d(2027, 1, 20), &cal, 2), []);
    }

    #[test]
    fn the_scheduler_acts_on_business_days_from_the_digest_time() {
        let cal = cal();
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).expect("time");
        let eight = t(8, 0);
        assert!(acts_at(d(2027, 1, 19).and_time(t(8, 0)), eight, &cal));
        assert!(!acts_at(d(2027, 1, 19).and_time(t(7, 59)), eight, &cal));
        assert!(!acts_at(d(2027, 1, 18).and_time(t(9, 0)), eight, &cal), "a holiday");
        assert!(!acts_at(d(2027, 1, 16).and_time(t(9, 0)), eight, &cal), "a Saturday");
    }

    #[test]
    fn the_digest_lists_each_section_with_its_lines_and_leaves_out_empty_ones() {
        let cal = cal();
        let today = d(2027, 1, 20);
        let mut unassigned = row(4, RequestStatus::Acknowledged, d(2027, 1, 22));
        unassigned.assignee.clear();
        let mut stale = row(5, RequestStatus::WaitingOnCity, d(2027, 1, 29));
        stale.clock_paused_on = Some("2027-01-08".into());
        let mut fresh_wait = row(6, RequestStatus::WaitingOnCity, d(2027, 1, 29));
        fresh_wait.clock_paused_on = Some("2027-01-19".into());
        let mut review = row(7, RequestStatus::NeedsCity, d(2027, 2, 1));
        review.review_reason = "the official named no city".into();
        let rows = [
            row(1, RequestStatus::InProgress, d(2027, 1, 19)),
            row(2, RequestStatus::Assigned, d(2027, 1, 12)),
            row(3, RequestStatus::InProgress, d(2027, 1, 25)),
            unassigned,
            stale,
            fresh_wait,
            review,
            row(8, RequestStatus::Responded, d(2027, 1, 5)),
        ];
        let sections = digest(&rows, today, &cal, 5);
        let titles: Vec<&str> = sections.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(
            titles,
            ["Overdue", "Due in the next three business days", "Unassigned", "Waiting on the city", "Review queue"]
        );
        let of =
            |i: usize| sections[i].lines.iter().map(|l| (l.tracking.as_str(), l.when.as_str())).collect::<Vec<_>>();
        assert_eq!(
            of(0),
            [("311-2027-0002", "overdue by 5 business days"), ("311-2027-0001", "overdue by 1 business day")],
            "oldest due first"
        );
        assert_eq!(of(1), [("311-2027-0004", "due in 2 business days"), ("311-2027-0003", "due in 3 business days")]);
        assert_eq!(of(2), [("311-2027-0004", "due in 2 business days")]);
        assert_eq!(of(3), [("311-2027-0005", "waiting 7 business days")], "7 > stale_after 5; one day is not");
        assert_eq!(of(4), [("311-2027-0007", "the official named no city")]);
        assert_eq!(sections[0].lines[0].assignee, "ana@311.test");
        assert_eq!(sections[2].lines[0].assignee, "unassigned");
        assert_eq!(sections[0].lines[0].city, "Dayton, OH");
        assert!(
            digest(&[row(8, RequestStatus::Responded, d(2027, 1, 5))], today, &cal, 5).is_empty(),
            "nothing to report"
        );
    }
}
