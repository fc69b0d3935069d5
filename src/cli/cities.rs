//! `intake311 cities …`: the eligible-city registry. Maps arguments to
//! [`intake311::services::city_import`] and [`intake311::services::cities`], and prints.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use intake311::registry;
use intake311::services::cities::{self, CityPatch, EditError};
use intake311::services::city_import::{self, ImportError};
use intake311::store::CityRow;

use super::output::{Table, emit};
use super::{ActorArgs, Context, JsonArg};

#[derive(Subcommand, Debug)]
pub enum CitiesCmd {
    /// Import cities from CSV. Every row is checked first (any bad row is reported with its line,
    /// field and reason, and nothing changes); then the diff is printed and applied in one
    /// transaction, with an audit record of who, when and the file's SHA-256.
    Import {
        /// The CSV file (columns name,state,domains,eligible; optional id,population,eligible_from,
        /// eligible_until,notes).
        file: PathBuf,
        /// Only validate and print the diff.
        #[arg(long)]
        dry_run: bool,
        /// Also remove the cities the file does not list.
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        who: ActorArgs,
    },
    /// Write the registry as CSV (stdout, or --output FILE); it imports back unchanged.
    Export {
        /// Write to this file instead of stdout.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// List the registry.
    List {
        #[command(flatten)]
        json: JsonArg,
    },
    /// Show one city with its domains, contacts and number of requests.
    Show {
        /// The city's id (see `cities list`).
        id: i64,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Add a city (eligible, with no dates, unless the options say otherwise).
    Add {
        /// The city's name.
        name: String,
        /// Two-letter US state code.
        state: String,
        #[command(flatten)]
        fields: CityFields,
        #[command(flatten)]
        who: ActorArgs,
    },
    /// Change a city (only the fields given).
    Set {
        /// The city's id (see `cities list`).
        id: i64,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New two-letter US state code.
        #[arg(long)]
        state: Option<String>,
        #[command(flatten)]
        fields: CityFields,
        #[command(flatten)]
        who: ActorArgs,
    },
    /// Remove a city (its domains and contacts go with it; its requests keep their history).
    Remove {
        /// The city's id (see `cities list`).
        id: i64,
        #[command(flatten)]
        who: ActorArgs,
    },
}

#[derive(Args, Debug)]
pub struct CityFields {
    /// Mail domains separated by `;` (replaces the list).
    #[arg(long)]
    domains: Option<String>,
    /// yes or no.
    #[arg(long)]
    eligible: Option<String>,
    /// Number of people (empty to clear).
    #[arg(long)]
    population: Option<String>,
    /// YYYY-MM-DD (empty to clear).
    #[arg(long)]
    eligible_from: Option<String>,
    /// YYYY-MM-DD (empty to clear).
    #[arg(long)]
    eligible_until: Option<String>,
    /// Free text for staff.
    #[arg(long)]
    notes: Option<String>,
}

fn patch(name: Option<String>, state: Option<String>, f: CityFields) -> CityPatch {
    CityPatch {
        name,
        state,
        domains: f.domains,
        eligible: f.eligible,
        population: f.population,
        eligible_from: f.eligible_from,
        eligible_until: f.eligible_until,
        notes: f.notes,
    }
}

fn city_line(c: &CityRow) -> String {
    let r = &c.record;
    format!(
        "{:<5} {:<26} {:<5} {:<9} {:<12} {}",
        c.id,
        r.name,
        r.state,
        if r.eligible { "yes" } else { "no" },
        r.eligible_until.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
        r.domains.join(";")
    )
}

/// A refused edit names the option (`--eligible-until: …`).
fn edit_error(e: EditError) -> anyhow::Error {
    match e {
        EditError::Field(f) => anyhow::anyhow!("--{}: {}", f.field.replace('_', "-"), f.reason),
        other => anyhow::Error::new(other),
    }
}

pub async fn run(ctx: Context, cmd: CitiesCmd) -> anyhow::Result<ExitCode> {
    let store = &ctx.store;
    match cmd {
        CitiesCmd::Import { file, dry_run, replace, who } => {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let actor = ctx.actor(&who).await?;
            let source = format!("file {}", file.display());
            match city_import::import(store, &bytes, &source, replace, dry_run, &actor).await {
                Ok(plan) => {
                    print!("{}: {}", file.display(), plan.diff);
                    println!(
                        "{}",
                        if dry_run {
                            "dry run: nothing changed"
                        } else if plan.diff.is_empty() {
                            "nothing to change"
                        } else {
                            "applied"
                        }
                    );
                }
                Err(ImportError::Plan(e)) => {
                    eprint!("{}: {e}", file.display());
                    return Ok(ExitCode::FAILURE);
                }
                Err(ImportError::Store(e)) => return Err(e.context(format!("importing {}", file.display()))),
            }
        }
        CitiesCmd::Export { output } => {
            let csv = registry::export_csv(&store.list_cities().await?)?;
            match output {
                Some(path) => std::fs::write(&path, &csv).with_context(|| format!("writing {}", path.display()))?,
                None => std::io::Write::write_all(&mut std::io::stdout(), &csv)?,
            }
        }
        CitiesCmd::List { json } => {
            let rows = store.list_cities().await?;
            let header = format!("{:<5} {:<26} {:<5} {:<9} {:<12} domains", "id", "name", "state", "eligible", "until");
            let footer = format!("{} cities", rows.len());
            emit(json.json, &Table { rows: &rows, header: Some(header), line: city_line, footer })?;
        }
        CitiesCmd::Show { id, json } => {
            let today = chrono::Utc::now().with_timezone(&ctx.cfg.intake.timezone).date_naive();
            let view = cities::view(store, id, today).await?.with_context(|| format!("no city has id {id}"))?;
            emit(json.json, &view)?;
        }
        CitiesCmd::Add { name, state, fields, who } => {
            let actor = ctx.actor(&who).await?;
            let (id, record) =
                cities::add(store, &patch(Some(name), Some(state), fields), &actor).await.map_err(edit_error)?;
            println!("added {} (#{id})", record.label());
        }
        CitiesCmd::Set { id, name, state, fields, who } => {
            let actor = ctx.actor(&who).await?;
            let city = cities::update(store, id, &patch(name, state, fields), &actor).await.map_err(edit_error)?;
            println!("updated {}", city_line(&city));
        }
        CitiesCmd::Remove { id, who } => {
            let actor = ctx.actor(&who).await?;
            cities::remove(store, id, &actor).await.map_err(edit_error)?;
            println!("removed city #{id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
