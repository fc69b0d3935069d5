//! `intake311 quarantine …`: mail that could not be handled. Maps arguments to
//! [`intake311::services::quarantine`] and prints.

use std::process::ExitCode;

use clap::Subcommand;

use intake311::services::quarantine::Target;
use intake311::services::{fmt_ms, quarantine};
use intake311::store::QuarantineRow;

use super::output::{Table, count, emit};
use super::{ActorArgs, Context, JsonArg};

#[derive(Subcommand, Debug)]
pub enum QuarantineCmd {
    /// Quarantined mail with the reason.
    List {
        #[command(flatten)]
        json: JsonArg,
    },
    /// One entry, with the headers of the message when it was fetched.
    Show {
        /// The entry's id (see `quarantine list`).
        id: i64,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Move the message back to the inbox so the daemon handles it again.
    Retry {
        /// The entry's id (see `quarantine list`).
        id: i64,
        #[command(flatten)]
        who: ActorArgs,
    },
    /// Move the message to the processed folder: a person has dealt with it.
    Release {
        /// The entry's id (see `quarantine list`).
        id: i64,
        #[command(flatten)]
        who: ActorArgs,
    },
}

fn entry_line(r: &QuarantineRow) -> String {
    format!("{:<5} {:<9} {}  {:<30} {:>9}  {}", r.id, r.status, fmt_ms(r.created_at), r.from_addr, r.size, r.reason)
}

pub async fn run(ctx: Context, cmd: QuarantineCmd) -> anyhow::Result<ExitCode> {
    let (store, cfg) = (&ctx.store, &ctx.cfg);
    match cmd {
        QuarantineCmd::List { json } => {
            let rows = store.list_quarantine().await?;
            let footer = count(rows.len(), "entry", "entries");
            emit(json.json, &Table { rows: &rows, header: None, line: entry_line, footer })?;
        }
        QuarantineCmd::Show { id, json } => emit(json.json, &quarantine::view(store, cfg, id).await?)?,
        QuarantineCmd::Retry { id, who } => {
            let actor = ctx.actor(&who).await?;
            println!("{}", quarantine::move_entry(store, cfg, id, Target::Retry, &actor).await?);
        }
        QuarantineCmd::Release { id, who } => {
            let actor = ctx.actor(&who).await?;
            println!("{}", quarantine::move_entry(store, cfg, id, Target::Release, &actor).await?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
