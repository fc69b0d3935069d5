//! `intake311 staff …`: the staff list. Maps arguments to the store and prints.

use std::process::ExitCode;

use clap::Subcommand;

use intake311::store::{StaffMember, StaffRole};

use super::output::{Table, emit};
use super::{ActorArgs, Context, JsonArg, RoleArg, email_arg};

#[derive(Subcommand, Debug)]
pub enum StaffCmd {
    /// Add a staff member (or update name and role).
    Add {
        /// The staff member's address.
        #[arg(value_parser = email_arg)]
        email: String,
        /// Their name, used to sign mail to cities.
        #[arg(long, default_value = "")]
        name: String,
        /// What they may do.
        #[arg(long, value_enum, default_value_t = RoleArg::Staff)]
        role: RoleArg,
        #[command(flatten)]
        who: ActorArgs,
    },
    /// Remove a staff member (their history stays; they no longer count as staff).
    Remove {
        /// The staff member's address.
        #[arg(value_parser = email_arg)]
        email: String,
        #[command(flatten)]
        who: ActorArgs,
    },
    /// List staff.
    List {
        #[command(flatten)]
        json: JsonArg,
    },
}

fn staff_line(s: &StaffMember) -> String {
    format!("{:<36} {:<6} {}", s.email, s.role, s.name)
}

pub async fn run(ctx: Context, cmd: StaffCmd) -> anyhow::Result<ExitCode> {
    let store = &ctx.store;
    match cmd {
        StaffCmd::Add { email, name, role, who } => {
            let actor = ctx.actor(&who).await?;
            let role = StaffRole::from(role);
            let added = store.upsert_staff(&email, &name, role, &actor.email).await?;
            println!("{} {email} ({})", if added { "added" } else { "updated" }, role.as_str());
        }
        StaffCmd::Remove { email, who } => {
            let actor = ctx.actor(&who).await?;
            anyhow::ensure!(store.deactivate_staff(&email, &actor.email).await?, "{email} is not on the staff list");
            println!("removed {email} from the staff list");
        }
        StaffCmd::List { json } => {
            let rows = store.list_staff().await?;
            let footer = format!("{} staff", rows.len());
            emit(json.json, &Table { rows: &rows, header: None, line: staff_line, footer })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
