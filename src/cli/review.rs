//! `intake311 review …`: requests whose city a person must decide. Maps arguments to
//! [`intake311::services::review`] and the review decisions in [`intake311::services::staff`].

use std::process::ExitCode;

use clap::Subcommand;

use intake311::domain::TrackingNumber;
use intake311::intake::ApplyError;
use intake311::services::review::{self, ReviewEntry};
use intake311::services::staff::{self, Delivery, Done};

use super::output::{Table, emit};
use super::{ActorArgs, Context, JsonArg, tracking_arg};

#[derive(Subcommand, Debug)]
pub enum ReviewCmd {
    /// Requests waiting for a person to decide the city, with the reason and any suggestion.
    List {
        #[command(flatten)]
        json: JsonArg,
    },
    /// Give the request a city; sends the acknowledgement if the official has had none yet.
    Approve {
        /// The tracking number.
        #[arg(value_parser = tracking_arg)]
        tracking: TrackingNumber,
        /// The city's id (see `cities list`).
        #[arg(long)]
        city: i64,
        /// Also record the official's address as a contact of the city.
        #[arg(long)]
        contact: bool,
        #[command(flatten)]
        who: ActorArgs,
    },
    /// Take the request out of review and close it (nothing is sent).
    Reject {
        /// The tracking number.
        #[arg(value_parser = tracking_arg)]
        tracking: TrackingNumber,
        /// Why, for the timeline.
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        who: ActorArgs,
    },
}

fn entry_lines(e: &ReviewEntry) -> String {
    let r = &e.request;
    format!(
        "{}  {}  {}  status {}\n    why: {}\n    suggested city: {}",
        r.tracking,
        r.official_email,
        r.subject,
        r.status,
        r.review_reason,
        e.suggested_city.as_deref().unwrap_or("-")
    )
}

fn report(result: Result<Done, ApplyError>) -> anyhow::Result<ExitCode> {
    match result {
        Ok(done) => {
            println!("{}", done.summary);
            if done.delivery != Delivery::Nothing {
                println!("{}", done.delivery);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(ApplyError::Command(e)) => {
            eprintln!("not applied: {e}");
            Ok(ExitCode::FAILURE)
        }
        Err(ApplyError::Internal(e)) => Err(e),
    }
}

pub async fn run(ctx: Context, cmd: ReviewCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ReviewCmd::List { json } => {
            let rows = review::queue(&ctx.store).await?;
            let footer = format!("{} request(s) in review", rows.len());
            emit(json.json, &Table { rows: &rows, header: None, line: entry_lines, footer })?;
            Ok(ExitCode::SUCCESS)
        }
        ReviewCmd::Approve { tracking, city, contact, who } => {
            let actor = ctx.actor(&who).await?;
            let intake = ctx.intake()?;
            report(staff::approve(&intake, &ctx.cfg, &tracking, city, contact, &actor).await)
        }
        ReviewCmd::Reject { tracking, reason, who } => {
            let actor = ctx.actor(&who).await?;
            let intake = ctx.intake()?;
            report(staff::reject(&intake, &tracking, &reason, &actor).await)
        }
    }
}
