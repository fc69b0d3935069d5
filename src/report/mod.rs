//! The monthly report: what the programme did in a month, by city and by topic, and how well it
//! kept its promised dates.
//!
//! Owns: the month and its bounds in `intake.timezone` ([`Month`]), the figures and the exact
//! rule of each ([`Figures::compute`], pure, from the store's plain rows), the charts
//! ([`charts`], PNG bytes drawn with plotters) and the CSV, JSON and mail/HTML shapes
//! ([`render`]). [`Report::gather`] reads the rows and puts it all together; `intake311 report`
//! and the daemon's monthly mail (in [`crate::intake`]) both call it.
//!
//! A module of its own rather than a part of `deadlines/`: the figures, charts and renderings
//! are a third of the size of the rest of the clock code and share nothing with the reminders
//! but the calendar. It sits beside `deadlines/` in DESIGN.md's order. Talks to: the store's
//! rows ([`crate::store::ReportRows`]), [`crate::deadlines::Calendar`], and
//! [`crate::outbound::context`] for the mail's context.

pub mod charts;
pub mod render;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde::Serialize;

use crate::deadlines::Calendar;
use crate::domain::{Eligibility, RequestStatus};
use crate::store::{ReportRows, ReportSpan, RequestRow, Store};

/// How many months the trend chart shows, ending with the report's month.
pub const TREND_MONTHS: u32 = 12;
/// The bucket of requests without a city.
pub const UNKNOWN_CITY: &str = "unknown city";
/// The bucket of requests without a topic.
pub const NO_TOPIC: &str = "(no topic)";

/// A calendar month, written `2026-11`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i32,
    /// 1 to 12.
    month: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a month (write YYYY-MM, e.g. 2026-11)")]
pub struct BadMonth(String);

impl FromStr for Month {
    type Err = BadMonth;
    fn from_str(s: &str) -> Result<Month, BadMonth> {
        let bad = || BadMonth(s.to_string());
        let (y, m) = s.trim().split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let (year, month) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        Month::new(year, month).ok_or_else(bad)
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl Serialize for Month {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Month {
    /// The month, when `month` is 1 to 12 and its days exist.
    pub fn new(year: i32, month: u32) -> Option<Month> {
        NaiveDate::from_ymd_opt(year, month, 1).map(|_| Month { year, month })
    }

    /// The month `date` lies in.
    pub fn of(date: NaiveDate) -> Month {
        Month { year: date.year(), month: date.month() }
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or_default()
    }

    pub fn last_day(self) -> NaiveDate {
        self.next().first_day().pred_opt().unwrap_or_default()
    }

    pub fn next(self) -> Month {
        if self.month == 12 { Month { year: self.year + 1, month: 1 } } else { Month { month: self.month + 1, ..self } }
    }

    pub fn prev(self) -> Month {
        if self.month == 1 { Month { year: self.year - 1, month: 12 } } else { Month { month: self.month - 1, ..self } }
    }

    /// `November 2026`
    pub fn label(self) -> String {
        self.first_day().format("%B %Y").to_string()
    }

    /// `Nov 2026`
    pub fn short_label(self) -> String {
        self.first_day().format("%b %Y").to_string()
    }

    /// Whether `date` (YYYY-MM-DD) lies in this month.
    pub fn contains(self, date: &str) -> bool {
        date.get(..7).is_some_and(|ym| ym == self.to_string()) && date.len() == 10
    }

    /// The month as Unix milliseconds: from local midnight of its first day to local midnight of
    /// the next month's first day (exclusive), in `tz`.
    pub fn bounds_ms(self, tz: Tz) -> (i64, i64) {
        (local_midnight_ms(tz, self.first_day()), local_midnight_ms(tz, self.next().first_day()))
    }
}

/// The first moment of `date` in `tz`, as Unix milliseconds. Where a clock change skips midnight,
/// the first moment that exists.
fn local_midnight_ms(tz: Tz, date: NaiveDate) -> i64 {
    (0..24).filter_map(|h| date.and_hms_opt(h, 0, 0)).find_map(|t| tz.from_local_datetime(&t).earliest()).map_or_else(
        || date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp_millis(),
        |t| t.timestamp_millis(),
    )
}

/// A name and how many requests it has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Count {
    pub name: String,
    pub count: i64,
}

/// The three eligibility outcomes of the month's questions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EligibilityCounts {
    pub eligible: i64,
    pub not_eligible: i64,
    pub unknown: i64,
}

/// Business days to response, over the requests resolved in the month by a response or a
/// referral.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DaysToResponse {
    /// How many requests the figures are taken over.
    pub requests: i64,
    /// The middle value (the mean of the two middle values for an even count).
    pub median: Option<f64>,
    /// The nearest-rank 90th percentile: 9 in 10 were resolved within this many business days.
    pub p90: Option<i64>,
    /// `(business days, requests)`, for every day from 0 to the largest.
    pub histogram: Vec<(i64, i64)>,
}

/// How many of the month's resolved requests kept their promised date.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OnTime {
    /// Resolved on or before the due date.
    pub on_time: i64,
    /// Resolved by response or referral in the month, with a due date.
    pub of: i64,
    /// `on_time / of`, from 0 to 1; `None` when `of` is 0.
    pub rate: Option<f64>,
}

/// A request still open and past its due date when the month ended (not one waiting on the city
/// since before then: its clock was stopped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overdue {
    pub tracking: String,
    pub city: String,
    pub subject: String,
    pub due_date: String,
    /// Business days over, as the digest counts them on the next month's first business day.
    pub days_over: i64,
}

/// One month of the trend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrendMonth {
    pub month: Month,
    /// Questions received.
    pub received: i64,
    /// Responses sent plus referrals made.
    pub answered: i64,
}

/// Every figure of one month's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub month: Month,
    /// `November 2026`
    pub label: String,
    /// The time zone the days are taken in.
    pub timezone: String,
    /// Requests whose arrival date lies in the month.
    pub received: i64,
    pub eligibility: EligibilityCounts,
    /// The month's requests by city (`Dayton, OH`, or `unknown city`), most first.
    pub by_city: Vec<Count>,
    /// The month's requests by topic (`(no topic)` for those without), most first.
    pub by_topic: Vec<Count>,
    /// Responses sent in the month (each sending counts).
    pub responses_sent: i64,
    /// Referrals made in the month.
    pub referrals_sent: i64,
    pub days_to_response: DaysToResponse,
    pub on_time: OnTime,
    /// Open and past due at the end of the month, most days over first.
    pub overdue: Vec<Overdue>,
    /// Cities whose first request ever arrived in the month.
    pub first_time_cities: Vec<String>,
    /// The last [`TREND_MONTHS`] months, oldest first, ending with this one.
    pub trend: Vec<TrendMonth>,
}

/// The topics a request counts under: the ones staff confirmed if any, else the suggested ones,
/// each once; [`NO_TOPIC`] when it has none.
pub fn topics_of<'a>(rows: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    let (mut staff, mut suggested) = (BTreeSet::new(), BTreeSet::new());
    for (topic, source) in rows {
        if source == "staff" {
            staff.insert(topic)
        } else {
            suggested.insert(topic)
        };
    }
    let chosen = if staff.is_empty() { suggested } else { staff };
    if chosen.is_empty() { vec![NO_TOPIC.to_string()] } else { chosen.into_iter().map(str::to_string).collect() }
}

/// The median of `sorted` (ascending): the middle value, or the mean of the two middle ones.
pub fn median(sorted: &[i64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2] as f64),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) as f64 / 2.0),
    }
}

/// The nearest-rank percentile `p` (0 to 100) of `sorted` (ascending): the smallest value with
/// at least `p` percent of the values at or below it.
pub fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() * p as usize).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// Counts sorted most first, then by name.
fn ranked(counts: HashMap<String, i64>) -> Vec<Count> {
    let mut v: Vec<Count> = counts.into_iter().map(|(name, count)| Count { name, count }).collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    v
}

impl Figures {
    /// The figures of `month` from `rows`, with days in `tz` and business days of `cal`.
    pub fn compute(rows: &ReportRows, month: Month, tz: Tz, cal: &Calendar) -> Figures {
        let (first, last) = (month.first_day().to_string(), month.last_day().to_string());
        let in_month = |d: &str| month.contains(d);
        let received: Vec<&RequestRow> = rows.requests.iter().filter(|r| in_month(&r.received_on)).collect();

        let mut eligibility = EligibilityCounts::default();
        let mut by_city: HashMap<String, i64> = HashMap::new();
        for r in &received {
            match r.eligibility {
                Eligibility::Eligible => eligibility.eligible += 1,
                Eligibility::NotEligible => eligibility.not_eligible += 1,
                Eligibility::Unknown => eligibility.unknown += 1,
            }
            *by_city.entry(r.city.clone().unwrap_or_else(|| UNKNOWN_CITY.to_string())).or_default() += 1;
        }

        let mut topic_rows: HashMap<i64, Vec<(&str, &str)>> = HashMap::new();
        for t in &rows.topics {
            topic_rows.entry(t.request_id).or_default().push((t.topic.as_str(), t.source.as_str()));
        }
        let mut by_topic: HashMap<String, i64> = HashMap::new();
        for r in &received {
            for topic in topics_of(topic_rows.get(&r.id).into_iter().flatten().copied()) {
                *by_topic.entry(topic).or_default() += 1;
            }
        }

        // Resolved in the month by a response or a referral.
        let resolved: Vec<&RequestRow> = rows
            .requests
            .iter()
            .filter(|r| r.resolved_on.as_deref().is_some_and(in_month))
            .filter(|r| matches!(r.resolved_by.as_str(), "response" | "referral"))
            .collect();
        let mut days: Vec<i64> = resolved.iter().filter_map(|r| r.resolution_days).collect();
        days.sort_unstable();
        let histogram = match days.last() {
            Some(&max) => (0..=max.max(0)).map(|d| (d, days.iter().filter(|&&x| x == d).count() as i64)).collect(),
            None => Vec::new(),
        };
        let days_to_response = DaysToResponse {
            requests: days.len() as i64,
            median: median(&days),
            p90: percentile(&days, 90),
            histogram,
        };
        let promised: Vec<(&str, &str)> = resolved
            .iter()
            .filter_map(|r| Some((r.resolved_on.as_deref()?, r.due_date.as_deref().filter(|d| !d.is_empty())?)))
            .collect();
        let kept = promised.iter().filter(|(done, due)| done <= due).count() as i64;
        let of = promised.len() as i64;
        let on_time = OnTime { on_time: kept, of, rate: (of > 0).then(|| kept as f64 / of as f64) };

        // Still open and past due when the month ended, counted as the digest would on the
        // next month's first business day.
        let counted_on = cal.on_or_after(month.next().first_day());
        let mut overdue: Vec<Overdue> = rows
            .requests
            .iter()
            .filter(|r| !r.received_on.is_empty() && r.received_on <= last)
            .filter(|r| !matches!(r.status, RequestStatus::Ineligible | RequestStatus::NeedsCity))
            .filter(|r| r.resolved_on.as_deref().is_none_or(|d| d.is_empty() || d > last.as_str()))
            // Waiting on the city since before the month ended: its clock was stopped.
            .filter(|r| r.clock_paused_on.as_deref().is_none_or(|p| p.is_empty() || p > last.as_str()))
            .filter_map(|r| {
                let due = r.due_date.as_deref()?.parse::<NaiveDate>().ok()?;
                (due <= month.last_day()).then(|| Overdue {
                    tracking: r.tracking.clone(),
                    city: r.city.clone().unwrap_or_else(|| UNKNOWN_CITY.to_string()),
                    subject: r.subject.clone(),
                    due_date: due.to_string(),
                    days_over: -cal.business_days_between(counted_on, due),
                })
            })
            .collect();
        overdue.sort_by(|a, b| b.days_over.cmp(&a.days_over).then_with(|| a.tracking.cmp(&b.tracking)));

        let mut first_time_cities: Vec<String> = rows
            .city_first
            .iter()
            .filter(|c| c.first_received_on.as_str() >= first.as_str())
            .map(|c| c.city.clone())
            .collect();
        first_time_cities.sort();

        let (from_ms, to_ms) = month.bounds_ms(tz);
        let responses_sent = rows.responses_in_window.iter().filter(|&&at| at >= from_ms && at < to_ms).count() as i64;
        let referrals_sent = rows.referrals_in_window.iter().filter(|d| in_month(d)).count() as i64;

        let mut months: Vec<Month> = vec![month];
        for _ in 1..TREND_MONTHS {
            let before = months[0].prev();
            months.insert(0, before);
        }
        let mut trend: BTreeMap<Month, TrendMonth> =
            months.iter().map(|&m| (m, TrendMonth { month: m, received: 0, answered: 0 })).collect();
        let month_of_day = |d: &str| d.parse::<NaiveDate>().ok().map(Month::of);
        for m in rows.received_in_window.iter().filter_map(|d| month_of_day(d)) {
            if let Some(t) = trend.get_mut(&m) {
                t.received += 1;
            }
        }
        for m in rows.referrals_in_window.iter().filter_map(|d| month_of_day(d)) {
            if let Some(t) = trend.get_mut(&m) {
                t.answered += 1;
            }
        }
        for &at in &rows.responses_in_window {
            let Some(day) = chrono::DateTime::from_timestamp_millis(at) else { continue };
            if let Some(t) = trend.get_mut(&Month::of(day.with_timezone(&tz).date_naive())) {
                t.answered += 1;
            }
        }

        Figures {
            month,
            label: month.label(),
            timezone: tz.name().to_string(),
            received: received.len() as i64,
            eligibility,
            by_city: ranked(by_city),
            by_topic: ranked(by_topic),
            responses_sent,
            referrals_sent,
            days_to_response,
            on_time,
            overdue,
            first_time_cities,
            trend: trend.into_values().collect(),
        }
    }

    /// Whether the month had anything at all to report (no mail is sent for an empty one).
    pub fn is_empty(&self) -> bool {
        self.received == 0
            && self.responses_sent == 0
            && self.referrals_sent == 0
            && self.days_to_response.requests == 0
            && self.overdue.is_empty()
    }

    /// One line, e.g. `12 questions, 9 responses, 1 referral, 2 overdue at month end`.
    pub fn summary(&self) -> String {
        let n = |count: i64, one: &str, many: &str| format!("{count} {}", if count == 1 { one } else { many });
        format!(
            "{}, {}, {}, {} overdue at month end",
            n(self.received, "question", "questions"),
            n(self.responses_sent, "response", "responses"),
            n(self.referrals_sent, "referral", "referrals"),
            self.overdue.len()
        )
    }
}

/// A month's figures and its three charts.
#[derive(Debug, Clone)]
pub struct Report {
    pub figures: Figures,
    pub charts: Vec<charts::Chart>,
}

impl Report {
    /// Reads the rows of `month` from `store` and computes the report.
    pub async fn gather(store: &Store, month: Month, tz: Tz, cal: &Calendar) -> anyhow::Result<Report> {
        let window = (1..TREND_MONTHS).fold(month, |m, _| m.prev());
        let (first, last, window_first) =
            (month.first_day().to_string(), month.last_day().to_string(), window.first_day().to_string());
        let (window_from_ms, _) = window.bounds_ms(tz);
        let (_, window_to_ms) = month.bounds_ms(tz);
        let rows = store
            .report_rows(ReportSpan {
                first: &first,
                last: &last,
                window_first: &window_first,
                window_from_ms,
                window_to_ms,
            })
            .await?;
        Report::of(&rows, month, tz, cal)
    }

    /// The report of `month` from rows already read.
    pub fn of(rows: &ReportRows, month: Month, tz: Tz, cal: &Calendar) -> anyhow::Result<Report> {
        let figures = Figures::compute(rows, month, tz, cal);
        let charts = charts::draw_all(&figures)?;
        Ok(Report { figures, charts })
    }
}
