//! `intake311 experts …`: the roster of national experts requests can be referred to. Maps
//! arguments to [`intake311::services::experts`] and the store, and prints.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

use intake311::registry::experts::{ExpertRecord, export_experts};
use intake311::services::experts::{self, ExpertImportError};
use intake311::store::ExpertRow;
use intake311::topics::Topics;

use super::output::{Table, emit};
use super::{ActorArgs, Context, JsonArg, email_arg};

#[derive(Subcommand, Debug)]
pub enum ExpertsCmd {
    /// Add an expert (or update the one with this address).
    Add {
        /// The expert's address.
        #[arg(value_parser = email_arg)]
        email: String,
        /// Their name, as the introduction greets them.
        #[arg(long)]
        name: String,
        /// Their organisation.
        #[arg(long, default_value = "")]
        org: String,
        /// Topics they know, by name, separated by commas (`intake311 topics`).
        #[arg(long, default_value = "")]
        topics: String,
        /// Anything staff should know (never sent).
        #[arg(long, default_value = "")]
        notes: String,
        #[command(flatten)]
        who: ActorArgs,
    },
    /// List the roster.
    List {
        #[command(flatten)]
        json: JsonArg,
    },
    /// Show one expert and the referrals made to them.
    Show {
        #[arg(value_parser = email_arg)]
        email: String,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Take an expert off the roster (their referrals stay on record).
    Remove {
        #[arg(value_parser = email_arg)]
        email: String,
        #[command(flatten)]
        who: ActorArgs,
    },
    /// Import experts from CSV (columns email,name; optional org,topics,notes). Every row is
    /// checked first (any bad row is reported with its line, field and reason, and nothing
    /// changes); then the plan is printed and applied in one transaction, with an audit record.
    Import {
        file: PathBuf,
        /// Only check and print the plan.
        #[arg(long)]
        dry_run: bool,
        /// Also remove the experts the file does not list.
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        who: ActorArgs,
    },
    /// Write the roster as CSV (stdout, or --output FILE); it imports back unchanged.
    Export {
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

fn expert_line(e: &ExpertRow) -> String {
    format!("{:<32} {:<24} {:<28} {}", e.email, e.name, e.org, e.topics.replace(',', ", "))
}

pub async fn run(ctx: Context, cmd: ExpertsCmd) -> anyhow::Result<ExitCode> {
    let store = &ctx.store;
    let topics = || Topics::of(&ctx.cfg).context("intake.topics");
    match cmd {
        ExpertsCmd::Add { email, name, org, topics: given, notes, who } => {
            let record = match ExpertRecord::new(&email, &name, &org, &given, &notes, &topics()?) {
                Ok(r) => r,
                Err((field, reason)) => {
                    eprintln!("--{field}: {reason}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            let actor = ctx.actor(&who).await?;
            let added = store.upsert_expert(&record, &actor.email).await?;
            println!("{} {} ({})", if added { "added" } else { "updated" }, record.email, record.name);
        }
        ExpertsCmd::List { json } => {
            let rows = store.list_experts().await?;
            let header = format!("{:<32} {:<24} {:<28} topics", "email", "name", "org");
            let footer = format!("{} expert(s)", rows.len());
            emit(json.json, &Table { rows: &rows, header: Some(header), line: expert_line, footer })?;
        }
        ExpertsCmd::Show { email, json } => {
            let Some(expert) = store.expert(&email).await? else {
                eprintln!("{email} is not on the expert roster");
                return Ok(ExitCode::FAILURE);
            };
            let referrals = store.referrals_to(&email).await?;
            if json.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({"expert": expert, "referrals": referrals}))?
                );
            } else {
                println!("{} <{}>{}", expert.name, expert.email, if expert.active { "" } else { " (removed)" });
                println!("  org:    {}", expert.org);
                println!("  topics: {}", expert.topics.replace(',', ", "));
                if !expert.notes.is_empty() {
                    println!("  notes:  {}", expert.notes);
                }
                println!("{} referral(s)", referrals.len());
                for r in &referrals {
                    let outcome =
                        if r.outcome.is_empty() { String::new() } else { format!(" · outcome: {}", r.outcome) };
                    let bounced =
                        if r.bounced.is_empty() { String::new() } else { format!(" · BOUNCED: {}", r.bounced) };
                    println!("  {} {} by {}{outcome}{bounced}", r.referred_on, r.tracking, r.referred_by);
                }
            }
        }
        ExpertsCmd::Remove { email, who } => {
            let actor = ctx.actor(&who).await?;
            if !store.remove_expert(&email, &actor.email).await? {
                eprintln!("{email} is not on the expert roster");
                return Ok(ExitCode::FAILURE);
            }
            println!("removed {email} from the expert roster (their referrals stay on record)");
        }
        ExpertsCmd::Import { file, dry_run, replace, who } => {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let actor = ctx.actor(&who).await?;
            let source = format!("file {}", file.display());
            match experts::import(store, &bytes, &source, replace, dry_run, &topics()?, &actor).await {
                Ok(plan) => {
                    for e in &plan.added {
                        println!("+ {} ({})", e.email, e.name);
                    }
                    for e in &plan.updated {
                        println!("~ {} ({})", e.email, e.name);
                    }
                    for e in &plan.removed {
                        println!("- {e}");
                    }
                    let what = if dry_run {
                        "dry run: nothing changed"
                    } else if plan.is_empty() {
                        "nothing to change"
                    } else {
                        "applied"
                    };
                    println!("{}: {plan}; {what}", file.display());
                }
                Err(ExpertImportError::Invalid(e)) => {
                    eprint!("{}: {e}", file.display());
                    return Ok(ExitCode::FAILURE);
                }
                Err(ExpertImportError::Store(e)) => return Err(e.context(format!("importing {}", file.display()))),
            }
        }
        ExpertsCmd::Export { output } => {
            let rows: Vec<ExpertRecord> = store.list_experts().await?.iter().map(ExpertRow::record).collect();
            let csv = export_experts(&rows)?;
            match output {
                Some(path) => std::fs::write(&path, &csv).with_context(|| format!("writing {}", path.display()))?,
                None => std::io::Write::write_all(&mut std::io::stdout(), &csv)?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
