//! The `intake311` binary: parses the command line, loads the config, sets up logging, and
//! calls into the library. Errors are printed with their whole chain and exit non-zero.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use intake311::config::Config;
use intake311::domain::{RequestStatus, TrackingNumber, normalize_email};
use intake311::store::{StaffRole, Store};
use intake311::{check, daemon, registry};

#[derive(Parser, Debug)]
#[command(name = "intake311", version, about = "Email intake for 311 for Cities: questions become tracked requests")]
struct Cli {
    /// Config file (default: $INTAKE311_CONFIG). Keys can be overridden with INTAKE311__SECTION__KEY.
    #[arg(long, short = 'c', global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon: poll (and IDLE on) the mailbox, create requests, send acknowledgements.
    Run,
    /// Check config, database, templates, IMAP and SMTP; one line each, non-zero exit on failure.
    Check,
    /// Create or upgrade the database schema.
    Migrate,
    /// The eligible-city registry.
    #[command(subcommand)]
    Cities(CitiesCmd),
    /// The staff list.
    #[command(subcommand)]
    Staff(StaffCmd),
    /// Tracked requests.
    #[command(subcommand)]
    Requests(RequestsCmd),
}

#[derive(Subcommand, Debug)]
enum CitiesCmd {
    /// Import cities from CSV (name,state,domains,eligible). All rows are checked first; any bad
    /// row is reported with its line and nothing changes.
    Import {
        file: PathBuf,
        /// Validate and show what would change, without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// List the registry.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum StaffCmd {
    /// Add a staff member (or update name and role).
    Add {
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, value_enum, default_value_t = StaffRole::Staff)]
        role: StaffRole,
    },
    /// List staff.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum RequestsCmd {
    /// List requests, newest first.
    List(ListArgs),
    /// Show one request with its messages and timeline.
    Show {
        tracking: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
struct ListArgs {
    /// Only this status (new, acknowledged, assigned, in_progress, waiting_on_city, responded,
    /// closed, ineligible, needs_city).
    #[arg(long)]
    status: Option<String>,
    #[arg(long)]
    json: bool,
    #[arg(long, default_value_t = 100)]
    limit: i64,
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("INTAKE311_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn actor() -> String {
    std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| "cli".into())
}

fn fmt_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

async fn open_store(cfg: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&cfg.database.url, cfg.database.max_connections).await?;
    store.migrate().await?;
    Ok(store)
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let path = cli.config.as_deref();
    let load = || Config::load(path);
    match cli.command {
        Command::Check => {
            let lines = check::run(path).await;
            for l in &lines {
                println!("{l}");
            }
            return Ok(if lines.iter().all(|l| l.ok) { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        Command::Run => daemon::run(load()?).await?,
        Command::Migrate => {
            let cfg = load()?;
            let store = Store::connect(&cfg.database.url, 1).await?;
            let n = store.migrate().await?;
            println!("{}: {n} migration(s) applied; schema is current", cfg.database.url);
        }
        Command::Cities(CitiesCmd::Import { file, dry_run }) => {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let cities = match registry::parse_csv(&bytes) {
                Ok(c) => c,
                Err(errors) => {
                    eprint!("{}: {errors}", file.display());
                    return Ok(ExitCode::FAILURE);
                }
            };
            if dry_run {
                println!("{}: {} valid row(s); dry run, nothing changed", file.display(), cities.len());
                return Ok(ExitCode::SUCCESS);
            }
            let store = open_store(&load()?).await?;
            let summary = store
                .import_cities(&cities, &actor(), &format!("file {}", file.display()))
                .await
                .with_context(|| format!("importing {}", file.display()))?;
            println!(
                "{}: added {}, changed {}, unchanged {}",
                file.display(),
                summary.added.len(),
                summary.changed.len(),
                summary.unchanged
            );
            for c in &summary.added {
                println!("  + {c}");
            }
            for c in &summary.changed {
                println!("  ~ {c}");
            }
        }
        Command::Cities(CitiesCmd::List { json }) => {
            let store = open_store(&load()?).await?;
            let cities = store.list_cities().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&cities)?);
            } else {
                println!("{:<5} {:<28} {:<5} {:<9} domains", "id", "name", "state", "eligible");
                for c in &cities {
                    println!(
                        "{:<5} {:<28} {:<5} {:<9} {}",
                        c.id,
                        c.name,
                        c.state,
                        if c.eligible { "yes" } else { "no" },
                        c.domains.join(";")
                    );
                }
                println!("{} cities", cities.len());
            }
        }
        Command::Staff(StaffCmd::Add { email, name, role }) => {
            let email = normalize_email(&email).with_context(|| format!("`{email}` is not an email address"))?;
            let store = open_store(&load()?).await?;
            let added = store.upsert_staff(&email, &name, role, &actor()).await?;
            println!("{} {email} ({})", if added { "added" } else { "updated" }, role.as_str());
        }
        Command::Staff(StaffCmd::List { json }) => {
            let store = open_store(&load()?).await?;
            let staff = store.list_staff().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&staff)?);
            } else {
                for s in &staff {
                    println!("{:<36} {:<6} {}", s.email, s.role, s.name);
                }
                println!("{} staff", staff.len());
            }
        }
        Command::Requests(RequestsCmd::List(args)) => {
            let status = args.status.as_deref().map(str::parse::<RequestStatus>).transpose()?;
            let store = open_store(&load()?).await?;
            let rows = store.list_requests(status, args.limit).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:<16} {:<16} {:<13} {:<22} {:<30} subject",
                    "tracking", "status", "eligibility", "city", "official"
                );
                for r in &rows {
                    println!(
                        "{:<16} {:<16} {:<13} {:<22} {:<30} {}",
                        r.tracking,
                        r.status,
                        r.eligibility,
                        r.city.as_deref().unwrap_or("-"),
                        r.official_email,
                        r.subject
                    );
                }
                println!("{} request(s)", rows.len());
            }
        }
        Command::Requests(RequestsCmd::Show { tracking, json }) => {
            let tn: TrackingNumber = tracking.parse()?;
            let store = open_store(&load()?).await?;
            let Some(r) = store.request_by_tracking(&tn).await? else {
                eprintln!("no request {tn}");
                return Ok(ExitCode::FAILURE);
            };
            let events = store.request_events(r.id).await?;
            let outbox = store.outbox_for_request(r.id).await?;
            if json {
                let outbox: Vec<_> = outbox
                    .iter()
                    .map(|(kind, status, id, err)| serde_json::json!({"kind": kind, "status": status, "message_id": id, "last_error": err}))
                    .collect();
                let v = serde_json::json!({"request": r, "timeline": events, "outbox": outbox});
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("Request     {}", r.tracking);
                println!("Status      {}", r.status);
                println!("Subject     {}", r.subject);
                println!("Official    {} <{}>", r.official_name, r.official_email);
                println!("City        {}", r.city.as_deref().unwrap_or("-"));
                println!("Eligibility {} — {}", r.eligibility, r.eligibility_reason);
                println!("Due         {}", r.due_date.as_deref().unwrap_or("-"));
                println!("Created     {}", fmt_ms(r.created_at));
                println!("\nMail out:");
                for (kind, status, id, err) in &outbox {
                    println!(
                        "  {kind:<18} {status:<8} <{id}>{}",
                        if err.is_empty() { String::new() } else { format!("  last error: {err}") }
                    );
                }
                println!("\nTimeline:");
                for e in &events {
                    println!("  {}  {:<6} {:<28} {} {}", fmt_ms(e.at), e.source, e.actor, e.event, e.detail);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
