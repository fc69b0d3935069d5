//! `intake311 db …`: whole-database operations. Today one: `db copy`, moving a deployment from
//! SQLite to PostgreSQL.
//!
//! Owns: the arguments and the printing; the copy itself is [`intake311::store::copy_database`].
//! Talks to: the store only (both URLs come from the command line, not from the config).

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use clap::Subcommand;

use intake311::store::{copy_database, open_for_copy};

use super::context::actor_email;
use super::output::emit;

#[derive(Subcommand, Debug)]
pub enum DbCmd {
    /// Copy every table of a SQLite database into an empty PostgreSQL database, keeping ids,
    /// tracking counters and IMAP positions (stop the daemon first). The target is migrated; a
    /// target with any row is refused. All or nothing: one transaction on the target.
    Copy {
        /// The SQLite database to copy from (sqlite://PATH); its schema must be current.
        #[arg(long, value_name = "URL")]
        from: String,
        /// The PostgreSQL database to copy into (postgres://… or postgresql://…).
        #[arg(long, value_name = "URL")]
        to: String,
        /// Print the row counts as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: DbCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        DbCmd::Copy { from, to, json } => {
            let (source, target) = open_for_copy(&from, &to).await?;
            let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
            let actor =
                actor_email(None, env("INTAKE311_STAFF"), env("SUDO_USER"), env("USER")).map_err(anyhow::Error::msg)?;
            let from_shown = intake311::store::redact_url(&from);
            let live = std::io::stderr().is_terminal();
            let report = copy_database(&source, &target, &from_shown, &actor, |table, n| {
                if live {
                    eprint!("\r\x1b[2Kcopying {table}: {n} rows");
                    std::io::stderr().flush().ok();
                }
            })
            .await;
            if live {
                eprint!("\r\x1b[2K");
            }
            let report = report?;
            emit(json, &report)?;
            if !json {
                println!("copied {from_shown} into {}", intake311::store::redact_url(&to));
            }
            source.close().await;
            target.close().await;
            Ok(ExitCode::SUCCESS)
        }
    }
}
