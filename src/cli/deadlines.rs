//! `intake311 deadlines …`: the reminders and the daily digest, run by hand.
//!
//! Owns: the arguments and the printing. The work is [`intake311::intake::Intake::run_deadlines`],
//! the same call the daemon's scheduler makes every minute. Talks to: the intake core, then
//! sends what it queued (as staff commands do).

use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{NaiveDateTime, TimeZone as _};
use clap::Subcommand;

use intake311::services::staff::{Delivery, send_now};

use super::context::Context;
use super::output::emit;

#[derive(Subcommand, Debug)]
pub enum DeadlinesCmd {
    /// Send the reminders and the digest due at a moment (default: now) that were not sent yet;
    /// run twice, the second run sends nothing.
    Run {
        /// The moment, local time in intake.timezone (YYYY-MM-DDTHH:MM).
        #[arg(long, value_name = "DATETIME", value_parser = local_moment)]
        at: Option<NaiveDateTime>,
        #[command(flatten)]
        json: super::JsonArg,
    },
}

fn local_moment(s: &str) -> Result<NaiveDateTime, String> {
    NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M"))
        .map_err(|_| format!("`{s}` is not a local moment (write YYYY-MM-DDTHH:MM, e.g. 2027-01-20T08:00)"))
}

pub async fn run(ctx: Context, cmd: DeadlinesCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        DeadlinesCmd::Run { at, json } => {
            let now = match at {
                Some(local) => ctx
                    .cfg
                    .intake
                    .timezone
                    .from_local_datetime(&local)
                    .earliest()
                    .with_context(|| format!("{local} does not exist in {}", ctx.cfg.intake.timezone))?
                    .with_timezone(&chrono::Utc),
                None => chrono::Utc::now(),
            };
            let intake = ctx.intake()?;
            let report = intake.run_deadlines(now).await?;
            emit(json.json, &report)?;
            if !report.sent.is_empty() {
                match send_now(&ctx.store, &ctx.cfg).await {
                    Delivery::Deferred(why) => {
                        eprintln!("queued; the daemon will send it (SMTP not reachable now: {why})")
                    }
                    Delivery::Refused => eprintln!("queued; the SMTP server refused some, see `intake311 stats`"),
                    _ => {}
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
