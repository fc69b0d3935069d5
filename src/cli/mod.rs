//! The command line: the clap types, and the dispatch to one file per command group.
//!
//! Owns: the argument grammar (every subcommand and argument has help text; statuses and roles
//! are value enums so `--help` lists them; addresses are normalised and checked while parsing),
//! and the rule that only `migrate` and `run` change the schema: every other command opens the
//! store through [`context::Context::open`], which refuses an older (or newer) schema.
//! Each `cli/<group>.rs` maps arguments to a library call ([`intake311::services`] or the store)
//! and prints the result with [`output::emit`]. Talks to: the library only.

mod calendar;
mod check;
mod cities;
mod contacts;
mod context;
mod db;
mod deadlines;
mod experts;
mod output;
mod quarantine;
mod report;
mod requests;
mod review;
mod staff;
mod stats;
mod templates;
mod topics;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

use intake311::config::Config;
use intake311::domain::{RequestStatus, TrackingNumber, normalize_email};
use intake311::intake::commands::Assignee;
use intake311::store::{StaffRole, Store};

pub use context::Context;

/// How the acting person is found, printed under every command's help.
const ACTOR_RULE: &str = "Who acts (recorded in the audit log or the request's timeline, and signing mail to a \
city): --as EMAIL if given, else $INTAKE311_STAFF (an address), else the login name from $SUDO_USER or $USER.";

#[derive(Parser, Debug)]
#[command(
    name = "intake311",
    version,
    about = "Email intake for 311 for Cities: questions become tracked requests",
    after_help = ACTOR_RULE
)]
pub struct Cli {
    /// Config file (default: $INTAKE311_CONFIG). Keys can be overridden with INTAKE311__SECTION__KEY.
    #[arg(long, short = 'c', global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon: migrate the schema, poll (and IDLE on) the mailbox, create requests, send mail.
    Run {
        /// On shutdown, write busy time per pipeline stage and the first-fetch / last-acknowledgement
        /// moments to this file as JSON (what the benchmark reads).
        #[arg(long, value_name = "PATH")]
        stage_report: Option<PathBuf>,
    },
    /// Check config, database schema, templates, IMAP and SMTP; one line each, non-zero exit on failure.
    Check {
        /// Print the report as JSON (`ok` and one object per check).
        #[arg(long)]
        json: bool,
    },
    /// Create or upgrade the database schema (the only command besides `run` that changes it).
    Migrate,
    /// The eligible-city registry.
    #[command(subcommand)]
    Cities(cities::CitiesCmd),
    /// The staff list.
    #[command(subcommand)]
    Staff(staff::StaffCmd),
    /// Known officials (contacts) of cities.
    #[command(subcommand)]
    Contacts(contacts::ContactsCmd),
    /// Tracked requests.
    #[command(subcommand)]
    Requests(requests::RequestsCmd),
    /// The roster of national experts requests can be referred to (#refer, requests refer).
    #[command(subcommand)]
    Experts(experts::ExpertsCmd),
    /// The topics list in use (intake.topics, or the shipped config/topics.toml).
    Topics {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The review queue: requests whose city a person must decide.
    #[command(subcommand)]
    Review(review::ReviewCmd),
    /// Mail that could not be handled.
    #[command(subcommand)]
    Quarantine(quarantine::QuarantineCmd),
    /// The built-in mail templates.
    #[command(subcommand)]
    Templates(templates::TemplatesCmd),
    /// Whole-database operations: `db copy` moves a deployment from SQLite to PostgreSQL.
    #[command(subcommand)]
    Db(db::DbCmd),
    /// Reminders and the daily digest: what the daemon sends on schedule, run by hand.
    #[command(subcommand)]
    Deadlines(deadlines::DeadlinesCmd),
    /// The business-day calendar: business days and holidays, as the promised dates count them.
    #[command(subcommand)]
    Calendar(calendar::CalendarCmd),
    /// The monthly report: questions, eligibility, cities, topics, responses and referrals, days to
    /// response, the on-time rate, what was overdue, first-time cities, with charts.
    Report(report::ReportArgs),
    /// Counts per outcome, the outbox backlog, the oldest unsent mail, the last successful poll.
    Stats {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `--as EMAIL`, on every command that changes something.
#[derive(Args, Debug, Clone, Default)]
pub struct ActorArgs {
    /// Who is acting: recorded in the audit log or timeline, and the signature of mail to a city
    /// (default: $INTAKE311_STAFF, else the login name from $SUDO_USER or $USER).
    #[arg(long = "as", value_name = "EMAIL", value_parser = email_arg)]
    pub as_: Option<String>,
}

/// `--json`, on every `list` and `show`.
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct JsonArg {
    /// Print as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A request's status, as `--help` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum StatusArg {
    /// Just arrived.
    New,
    /// The official has the acknowledgement.
    Acknowledged,
    /// A staff member has it.
    Assigned,
    /// Being researched.
    #[value(alias = "in-progress")]
    InProgress,
    /// Waiting for the official's answer.
    #[value(alias = "waiting-on-city")]
    WaitingOnCity,
    /// The response was sent.
    Responded,
    /// Introduced to a national expert.
    Referred,
    /// Done.
    Closed,
    /// The city is known but not eligible.
    Ineligible,
    /// No city could be identified.
    #[value(alias = "needs-city")]
    NeedsCity,
}

impl From<StatusArg> for RequestStatus {
    fn from(s: StatusArg) -> RequestStatus {
        match s {
            StatusArg::New => RequestStatus::New,
            StatusArg::Acknowledged => RequestStatus::Acknowledged,
            StatusArg::Assigned => RequestStatus::Assigned,
            StatusArg::InProgress => RequestStatus::InProgress,
            StatusArg::WaitingOnCity => RequestStatus::WaitingOnCity,
            StatusArg::Responded => RequestStatus::Responded,
            StatusArg::Referred => RequestStatus::Referred,
            StatusArg::Closed => RequestStatus::Closed,
            StatusArg::Ineligible => RequestStatus::Ineligible,
            StatusArg::NeedsCity => RequestStatus::NeedsCity,
        }
    }
}

/// A staff member's role, as `--help` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Answers requests (by mail and here).
    Staff,
    /// Also changes the city list by mail.
    Admin,
}

impl From<RoleArg> for StaffRole {
    fn from(r: RoleArg) -> StaffRole {
        match r {
            RoleArg::Staff => StaffRole::Staff,
            RoleArg::Admin => StaffRole::Admin,
        }
    }
}

/// An e-mail address argument, normalised; anything else is refused.
pub fn email_arg(s: &str) -> Result<String, String> {
    normalize_email(s).ok_or_else(|| format!("`{s}` is not an email address"))
}

/// A tracking number argument (`311-2026-0001`, brackets allowed).
pub fn tracking_arg(s: &str) -> Result<TrackingNumber, String> {
    s.parse::<TrackingNumber>().map_err(|e| e.to_string())
}

/// `me` or a staff member's address.
pub fn assignee_arg(s: &str) -> Result<Assignee, String> {
    if s.trim().eq_ignore_ascii_case("me") { Ok(Assignee::Me) } else { email_arg(s).map(Assignee::Email) }
}

/// Parses the command line and runs the command.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let path = cli.config.as_deref();
    match cli.command {
        Command::Check { json } => check::run(path, json).await,
        Command::Run { stage_report } => {
            intake311::daemon::run(Config::load(path)?).await?;
            if let Some(file) = stage_report {
                let json = serde_json::to_string_pretty(&intake311::metrics::report())?;
                std::fs::write(&file, json).with_context(|| format!("writing the stage report {}", file.display()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let cfg = Config::load(path)?;
            let store = Store::connect(&cfg.database.url, 1).await?;
            let n = store.migrate().await?;
            println!("{}: {n} migration(s) applied; schema is current", cfg.database.url);
            Ok(ExitCode::SUCCESS)
        }
        Command::Cities(cmd) => cities::run(Context::open(path).await?, cmd).await,
        Command::Staff(cmd) => staff::run(Context::open(path).await?, cmd).await,
        Command::Contacts(cmd) => contacts::run(Context::open(path).await?, cmd).await,
        Command::Requests(cmd) => requests::run(Context::open(path).await?, cmd).await,
        Command::Experts(cmd) => experts::run(Context::open(path).await?, cmd).await,
        Command::Topics { json } => topics::run(path, json),
        Command::Review(cmd) => review::run(Context::open(path).await?, cmd).await,
        Command::Quarantine(cmd) => quarantine::run(Context::open(path).await?, cmd).await,
        Command::Stats { json } => stats::run(Context::open(path).await?, json).await,
        Command::Templates(cmd) => templates::run(cmd),
        Command::Db(cmd) => db::run(cmd).await,
        Command::Calendar(cmd) => calendar::run(path, cmd),
        Command::Deadlines(cmd) => deadlines::run(Context::open(path).await?, cmd).await,
        Command::Report(args) => report::run(Context::open(path).await?, args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn every_status_has_its_value_and_maps_to_itself() {
        let mapped: Vec<RequestStatus> = StatusArg::value_variants().iter().map(|s| RequestStatus::from(*s)).collect();
        assert_eq!(mapped, RequestStatus::ALL.to_vec());
        for s in StatusArg::value_variants() {
            let name = s.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
            assert_eq!(name, RequestStatus::from(*s).as_str());
        }
        let roles: Vec<&str> = RoleArg::value_variants().iter().map(|r| StaffRole::from(*r).as_str()).collect();
        assert_eq!(roles, ["staff", "admin"]);
    }

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn addresses_are_normalised_or_refused() {
        assert_eq!(email_arg(" Ana@311.TEST "), Ok("ana@311.test".into()));
        assert!(email_arg("not-an-address").unwrap_err().contains("not an email address"));
        assert_eq!(assignee_arg("ME"), Ok(Assignee::Me));
        assert!(tracking_arg("nonsense").is_err());
    }
}
