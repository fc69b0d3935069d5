//! `intake311 calendar …`: the business-day calendar the promised dates are counted in.
//!
//! Owns: the arguments and the printing. The calendar is [`intake311::deadlines::Calendar`],
//! loaded from `deadlines.holidays`. Talks to: the config only (no database).

use std::path::Path;
use std::process::ExitCode;

use chrono::{Datelike as _, NaiveDate};
use clap::Subcommand;
use serde::Serialize;

use intake311::config::Config;
use intake311::deadlines::{Calendar, DayKind, us_federal};

use super::output::{Table, emit};

#[derive(Subcommand, Debug)]
pub enum CalendarCmd {
    /// List the business days and holidays between two dates (weekends with --all).
    Show {
        /// First day (YYYY-MM-DD; default: today in intake.timezone).
        #[arg(long, value_name = "DATE")]
        from: Option<NaiveDate>,
        /// Last day (YYYY-MM-DD; default: 30 days after --from).
        #[arg(long, value_name = "DATE")]
        to: Option<NaiveDate>,
        /// Also list Saturdays and Sundays.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        json: super::JsonArg,
    },
    /// Print the US federal holidays of some years, as observed, in the holiday file format
    /// (how config/holidays.us-federal.txt was made).
    UsFederal {
        #[arg(long, value_name = "YEAR")]
        from: i32,
        #[arg(long, value_name = "YEAR")]
        to: i32,
    },
}

#[derive(Serialize)]
struct Day {
    date: NaiveDate,
    weekday: String,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    holiday: Option<String>,
}

pub fn run(path: Option<&Path>, cmd: CalendarCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        CalendarCmd::UsFederal { from, to } => {
            if !(1971..=2200).contains(&from) || to < from || to - from > 100 {
                anyhow::bail!(
                    "--from {from} --to {to}: give years from 1971 on, --to not before --from, at most 100 years"
                );
            }
            print!("{}", us_federal::holiday_file(from, to));
            Ok(ExitCode::SUCCESS)
        }
        CalendarCmd::Show { from, to, all, json } => {
            let cfg = Config::load(path)?;
            let cal = Calendar::of(&cfg)?;
            let from = from.unwrap_or_else(|| chrono::Utc::now().with_timezone(&cfg.intake.timezone).date_naive());
            let to = to.unwrap_or_else(|| from + chrono::Days::new(30));
            if to < from {
                anyhow::bail!("--to {to} is before --from {from}");
            }
            if (to - from).num_days() > 3660 {
                anyhow::bail!("--from {from} --to {to}: at most ten years at once");
            }
            let days: Vec<Day> = cal
                .days(from, to)
                .filter(|(_, k)| all || *k != DayKind::Weekend)
                .map(|(date, kind)| Day {
                    date,
                    weekday: date.weekday().to_string(),
                    kind: match kind {
                        DayKind::Business => "business day",
                        DayKind::Weekend => "weekend",
                        DayKind::Holiday(_) => "holiday",
                    },
                    holiday: match kind {
                        DayKind::Holiday(name) => Some(name.to_string()),
                        _ => cal.holiday(date).map(str::to_string),
                    },
                })
                .collect();
            let business = days.iter().filter(|d| d.kind == "business day").count();
            let holidays = days.iter().filter(|d| d.kind == "holiday").count();
            let source = match &cfg.deadlines.holidays {
                Some(p) => format!("holidays from {}", p.display()),
                None => "no holiday file (deadlines.holidays): weekends only".to_string(),
            };
            let table = Table {
                rows: &days,
                header: None,
                line: |d: &Day| match &d.holiday {
                    Some(name) => format!("{} {}  {:<12}  {name}", d.date, d.weekday, d.kind),
                    None => format!("{} {}  {}", d.date, d.weekday, d.kind),
                },
                footer: format!("{business} business day(s), {holidays} holiday(s) from {from} to {to}; {source}"),
            };
            emit(json.json, &table)?;
            if !json.json
                && let Some(last) = cal.last_holiday().filter(|last| *last < to)
            {
                println!("note: the holiday list ends on {last}; later days count holidays as business days");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
