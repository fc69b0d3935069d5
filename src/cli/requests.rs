//! `intake311 requests …`: tracked requests. Listing and showing read the store
//! ([`intake311::services::request_view`]); every action goes through
//! [`intake311::services::staff::act`], the same code as the `#` commands by mail.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use intake311::domain::{RequestStatus, TrackingNumber};
use intake311::intake::ApplyError;
use intake311::intake::commands::{Assignee, StaffMessage};
use intake311::services::request_view::request_view;
use intake311::services::staff;
use intake311::store::RequestRow;

use super::output::{Table, emit};
use super::{ActorArgs, Context, JsonArg, StatusArg, assignee_arg, tracking_arg};

#[derive(Subcommand, Debug)]
pub enum RequestsCmd {
    /// List requests, newest first.
    List {
        /// Only requests with this status.
        #[arg(long, value_enum, ignore_case = true)]
        status: Option<StatusArg>,
        /// Only open requests past their due date (oldest due first), as the digest lists them.
        #[arg(long, conflicts_with_all = ["status", "due_within"])]
        overdue: bool,
        /// Only open requests due within N business days (0: today), soonest first.
        #[arg(long, value_name = "N", conflicts_with = "status")]
        due_within: Option<u32>,
        /// Count --overdue and --due-within as on this date (YYYY-MM-DD; default: today).
        #[arg(long, value_name = "DATE")]
        as_of: Option<chrono::NaiveDate>,
        /// Only requests with this topic (a name or label from the topics list).
        #[arg(long, value_name = "NAME")]
        topic: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Show one request with its messages, mail out and timeline.
    Show {
        /// The tracking number (e.g. 311-2026-0001).
        #[arg(value_parser = tracking_arg)]
        tracking: TrackingNumber,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Send the finished response (body and attachments) to the official; status responded.
    Respond(BodyArgs),
    /// Send an intermediate message to the official (e.g. asking for details); status waiting_on_city.
    Reply(BodyArgs),
    /// Add an internal note; never sent.
    Note(BodyArgs),
    /// Assign the request to a staff member.
    Assign {
        /// The tracking number.
        #[arg(value_parser = tracking_arg)]
        tracking: TrackingNumber,
        /// The staff member's address, or `me` (the actor).
        #[arg(value_parser = assignee_arg, value_name = "EMAIL|me")]
        assignee: Assignee,
        #[command(flatten)]
        who: ActorArgs,
    },
    /// Set the status (refused when the transition is not allowed).
    Status {
        /// The tracking number.
        #[arg(value_parser = tracking_arg)]
        tracking: TrackingNumber,
        /// The new status.
        #[arg(value_enum, ignore_case = true)]
        status: StatusArg,
        #[command(flatten)]
        who: ActorArgs,
    },
    /// Promise a new response date, with the reason; the official is told in the thread
    /// (template due_changed). The date must be a business day, today or later.
    Due {
        /// The tracking number.
        #[arg(value_parser = tracking_arg)]
        tracking: TrackingNumber,
        /// The new date (YYYY-MM-DD).
        #[arg(value_name = "DATE")]
        date: chrono::NaiveDate,
        /// Why, in words for the official (it is in the mail).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        who: ActorArgs,
    },
    /// Set the request's topics (they replace the suggested ones), e.g. `housing finance`.
    Topic {
        /// The tracking number.
        #[arg(value_parser = tracking_arg)]
        tracking: TrackingNumber,
        /// Topic names or labels (`intake311 topics`); commas between them are fine too.
        #[arg(required = true, value_name = "NAME")]
        topics: Vec<String>,
        #[command(flatten)]
        who: ActorArgs,
    },
    /// Introduce the official to an expert on the roster in one mail to both (template
    /// referral_intro); status referred.
    Refer {
        /// The tracking number.
        #[arg(value_parser = tracking_arg)]
        tracking: TrackingNumber,
        /// The expert's address, or their name as on the roster.
        #[arg(value_name = "EXPERT")]
        expert: String,
        /// Your note to both, in the introduction (why this expert).
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        who: ActorArgs,
    },
    /// Close the request.
    Close {
        /// The tracking number.
        #[arg(value_parser = tracking_arg)]
        tracking: TrackingNumber,
        /// The outcome, in a sentence (recorded on the referral of a referred request; a note
        /// otherwise).
        #[arg(long, default_value = "")]
        outcome: String,
        #[command(flatten)]
        who: ActorArgs,
    },
}

#[derive(Args, Debug)]
pub struct BodyArgs {
    /// The tracking number.
    #[arg(value_parser = tracking_arg)]
    tracking: TrackingNumber,
    /// File with the text (Markdown or plain text).
    #[arg(long, value_name = "FILE")]
    body: PathBuf,
    /// A file to attach (repeatable; with `respond` and `reply`).
    #[arg(long = "attach", value_name = "FILE")]
    attach: Vec<PathBuf>,
    #[command(flatten)]
    who: ActorArgs,
}

fn read_body(path: &Path) -> anyhow::Result<String> {
    let body = std::fs::read_to_string(path).with_context(|| format!("reading --body {}", path.display()))?;
    anyhow::ensure!(!body.trim().is_empty(), "--body {} is empty", path.display());
    Ok(body.trim().to_string())
}

fn request_line(r: &RequestRow) -> String {
    format!(
        "{:<16} {:<16} {:<10} {:<13} {:<22} {:<30} {}",
        r.tracking,
        r.status,
        r.due_date.as_deref().unwrap_or("-"),
        r.eligibility,
        r.city.as_deref().unwrap_or("-"),
        r.official_email,
        r.subject
    )
}

/// Applies one staff action and prints what happened; a refused command exits non-zero.
async fn act(
    ctx: &Context,
    tracking: &TrackingNumber,
    message: StaffMessage,
    who: &ActorArgs,
    files: &[PathBuf],
) -> anyhow::Result<ExitCode> {
    let mut attachments = Vec::new();
    for f in files {
        let data = std::fs::read(f).with_context(|| format!("reading attachment {}", f.display()))?;
        let name = f.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        attachments.push(staff::attachment(&name, data));
    }
    let actor = ctx.actor(who).await?;
    let intake = ctx.intake()?;
    match staff::act(&intake, &ctx.cfg, tracking, &message, &actor, &attachments).await {
        Ok(done) => {
            println!("{}", done.summary);
            if done.delivery != staff::Delivery::Nothing {
                println!("{}", done.delivery);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(ApplyError::Command(e)) => {
            eprintln!("{tracking}: not applied: {e}");
            Ok(ExitCode::FAILURE)
        }
        Err(ApplyError::Internal(e)) => Err(e),
    }
}

pub async fn run(ctx: Context, cmd: RequestsCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        RequestsCmd::List { status, overdue, due_within, as_of, topic, limit, json } => {
            let mut rows: Vec<RequestRow> = if overdue || due_within.is_some() {
                let cal = intake311::deadlines::Calendar::of(&ctx.cfg)?;
                let today =
                    as_of.unwrap_or_else(|| chrono::Utc::now().with_timezone(&ctx.cfg.intake.timezone).date_naive());
                let mut dated: Vec<_> = ctx
                    .store
                    .open_requests()
                    .await?
                    .into_iter()
                    .filter_map(|r| intake311::deadlines::notices::days_left(&r, today, &cal).map(|left| (left, r)))
                    .filter(|(left, _)| match due_within {
                        Some(n) => (0..=i64::from(n)).contains(left),
                        None => *left < 0,
                    })
                    .collect();
                dated.sort_by_key(|(left, r)| (*left, r.id));
                dated.into_iter().map(|(_, r)| r).take(usize::try_from(limit).unwrap_or(usize::MAX)).collect()
            } else {
                let limit = if topic.is_some() { i64::MAX } else { limit };
                ctx.store.list_requests(status.map(RequestStatus::from), limit).await?
            };
            if let Some(given) = topic {
                let topics = intake311::topics::Topics::of(&ctx.cfg)?;
                let name = topics.find(&given)?.name.clone();
                let with: std::collections::HashSet<i64> =
                    ctx.store.requests_with_topic(&name).await?.into_iter().collect();
                rows.retain(|r| with.contains(&r.id));
                rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            }
            let header = format!(
                "{:<16} {:<16} {:<10} {:<13} {:<22} {:<30} subject",
                "tracking", "status", "due", "eligibility", "city", "official"
            );
            let footer = format!("{} request(s)", rows.len());
            emit(json.json, &Table { rows: &rows, header: Some(header), line: request_line, footer })?;
            Ok(ExitCode::SUCCESS)
        }
        RequestsCmd::Show { tracking, json } => {
            let view = request_view(&ctx.store, &tracking).await?.with_context(|| format!("no request {tracking}"))?;
            emit(json.json, &view)?;
            Ok(ExitCode::SUCCESS)
        }
        RequestsCmd::Respond(a) => {
            act(&ctx, &a.tracking, StaffMessage::respond(read_body(&a.body)?), &a.who, &a.attach).await
        }
        RequestsCmd::Reply(a) => {
            act(&ctx, &a.tracking, StaffMessage::reply(read_body(&a.body)?), &a.who, &a.attach).await
        }
        RequestsCmd::Note(a) => {
            anyhow::ensure!(a.attach.is_empty(), "a note is never sent, so it takes no --attach");
            act(&ctx, &a.tracking, StaffMessage::note(read_body(&a.body)?), &a.who, &[]).await
        }
        RequestsCmd::Assign { tracking, assignee, who } => {
            act(&ctx, &tracking, StaffMessage::assign(assignee), &who, &[]).await
        }
        RequestsCmd::Status { tracking, status, who } => {
            act(&ctx, &tracking, StaffMessage::status(status.into()), &who, &[]).await
        }
        RequestsCmd::Due { tracking, date, reason, who } => {
            anyhow::ensure!(
                !reason.trim().is_empty(),
                "--reason must say why the date changes (the official reads it)"
            );
            act(&ctx, &tracking, StaffMessage::due(date, reason.trim()), &who, &[]).await
        }
        RequestsCmd::Topic { tracking, topics, who } => {
            act(&ctx, &tracking, StaffMessage::topics(topics.join(", ")), &who, &[]).await
        }
        RequestsCmd::Refer { tracking, expert, note, who } => {
            act(&ctx, &tracking, StaffMessage::refer(expert, note.trim()), &who, &[]).await
        }
        RequestsCmd::Close { tracking, outcome, who } => {
            act(&ctx, &tracking, StaffMessage::close(outcome.trim()), &who, &[]).await
        }
    }
}
