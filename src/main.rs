//! The `intake311` binary: parses the command line, loads the config, sets up logging, and
//! calls into the library. Errors are printed with their whole chain and exit non-zero.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use std::sync::Arc;

use intake311::config::Config;
use intake311::domain::{RequestStatus, TrackingNumber, normalize_email};
use intake311::intake::commands::{Assignee, BodyKind, Change, StaffMessage};
use intake311::intake::{Actor, ApplyError, Intake};
use intake311::outbound::{OutAttachment, worker};
use intake311::store::{Source, StaffRole, Store};
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
    /// Send the finished response (body and attachments) to the official; status responded.
    Respond(BodyArgs),
    /// Send an intermediate message to the official (e.g. asking for details); status waiting_on_city.
    Reply(BodyArgs),
    /// Add an internal note; never sent.
    Note(BodyArgs),
    /// Assign the request to a staff member.
    Assign {
        tracking: String,
        email: String,
        #[command(flatten)]
        who: ActorArgs,
    },
    /// Set the status (refused when the transition is not allowed).
    Status {
        tracking: String,
        status: String,
        #[command(flatten)]
        who: ActorArgs,
    },
    /// Close the request.
    Close {
        tracking: String,
        #[command(flatten)]
        who: ActorArgs,
    },
}

#[derive(Args, Debug)]
struct BodyArgs {
    tracking: String,
    /// File with the text (Markdown or plain text).
    #[arg(long, value_name = "FILE")]
    body: PathBuf,
    /// A file to attach (repeatable; with `respond` and `reply`).
    #[arg(long = "attach", value_name = "FILE")]
    attach: Vec<PathBuf>,
    #[command(flatten)]
    who: ActorArgs,
}

#[derive(Args, Debug)]
struct ActorArgs {
    /// Who is acting, for the timeline and the signature (default: $INTAKE311_STAFF, else the login name).
    #[arg(long = "as", value_name = "EMAIL")]
    as_: Option<String>,
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

/// The staff member acting on the command line, with their name from the staff list.
async fn cli_actor(store: &Store, who: &ActorArgs) -> anyhow::Result<Actor> {
    let email = who.as_.clone().or_else(|| std::env::var("INTAKE311_STAFF").ok()).unwrap_or_else(actor);
    let email = normalize_email(&email).unwrap_or(email);
    let name = store.staff_member(&email).await?.map(|m| m.name).unwrap_or_default();
    Ok(Actor { email, name, source: Source::Cli })
}

/// Applies a staff message from the command line, then sends what it queued right away (a
/// running daemon would also pick it up; the outbox lease keeps it from going twice).
async fn staff_action(
    cfg: Config,
    tracking: &str,
    message: StaffMessage,
    who: &ActorArgs,
    files: &[PathBuf],
) -> anyhow::Result<ExitCode> {
    let tracking: TrackingNumber = tracking.parse()?;
    let cfg = Arc::new(cfg);
    let (store, templates) = daemon::prepare(&cfg).await?;
    let actor = cli_actor(&store, who).await?;
    let mut attachments = Vec::new();
    for f in files {
        let data = std::fs::read(f).with_context(|| format!("reading attachment {}", f.display()))?;
        let filename = f.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "attachment".into());
        let content_type = mime_guess::from_path(f).first_or_octet_stream().to_string();
        attachments.push(OutAttachment { filename, content_type, data });
    }
    let intake = Intake::new(store.clone(), Arc::clone(&cfg), templates, Arc::new(tokio::sync::Notify::new()))?;
    match intake.apply_staff_message(&tracking, &message, &actor, &attachments).await {
        Ok(summary) => println!("{tracking}: {summary}"),
        Err(ApplyError::Command(e)) => {
            eprintln!("{tracking}: not applied: {e}");
            return Ok(ExitCode::FAILURE);
        }
        Err(ApplyError::Internal(e)) => return Err(e),
    }
    if matches!(message.kind, BodyKind::Reply | BodyKind::Respond) {
        match worker::build_transport(&cfg) {
            Ok(transport) => match worker::send_once(&store, &transport, &cfg).await {
                Ok(p) if p.failed == 0 => println!("sent ({} message(s))", p.sent),
                Ok(_) => {
                    println!("queued; the SMTP server refused it for now, the daemon will retry (see requests show)")
                }
                Err(e) => println!("queued; not sent yet ({e:#}); the daemon will send it"),
            },
            Err(e) => println!("queued; not sent yet ({e:#}); the daemon will send it"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_body(path: &PathBuf) -> anyhow::Result<String> {
    let body = std::fs::read_to_string(path).with_context(|| format!("reading --body {}", path.display()))?;
    if body.trim().is_empty() {
        anyhow::bail!("--body {} is empty", path.display());
    }
    Ok(body.trim().to_string())
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
        Command::Requests(RequestsCmd::Respond(a)) => {
            let message = StaffMessage {
                kind: BodyKind::Respond,
                changes: vec![],
                body: read_body(&a.body)?,
                had_commands: true,
            };
            return staff_action(load()?, &a.tracking, message, &a.who, &a.attach).await;
        }
        Command::Requests(RequestsCmd::Reply(a)) => {
            let message =
                StaffMessage { kind: BodyKind::Reply, changes: vec![], body: read_body(&a.body)?, had_commands: true };
            return staff_action(load()?, &a.tracking, message, &a.who, &a.attach).await;
        }
        Command::Requests(RequestsCmd::Note(a)) => {
            if !a.attach.is_empty() {
                anyhow::bail!("a note is never sent, so it takes no --attach");
            }
            let message =
                StaffMessage { kind: BodyKind::Note, changes: vec![], body: read_body(&a.body)?, had_commands: true };
            return staff_action(load()?, &a.tracking, message, &a.who, &[]).await;
        }
        Command::Requests(RequestsCmd::Assign { tracking, email, who }) => {
            let email = normalize_email(&email).with_context(|| format!("`{email}` is not an email address"))?;
            let message = StaffMessage {
                kind: BodyKind::Note,
                changes: vec![Change::Assign(Assignee::Email(email))],
                body: String::new(),
                had_commands: true,
            };
            return staff_action(load()?, &tracking, message, &who, &[]).await;
        }
        Command::Requests(RequestsCmd::Status { tracking, status, who }) => {
            let status: RequestStatus = status.parse()?;
            let message = StaffMessage {
                kind: BodyKind::Note,
                changes: vec![Change::Status(status)],
                body: String::new(),
                had_commands: true,
            };
            return staff_action(load()?, &tracking, message, &who, &[]).await;
        }
        Command::Requests(RequestsCmd::Close { tracking, who }) => {
            let message = StaffMessage {
                kind: BodyKind::Note,
                changes: vec![Change::Close],
                body: String::new(),
                had_commands: true,
            };
            return staff_action(load()?, &tracking, message, &who, &[]).await;
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
            let parent = match r.parent_id {
                Some(p) => store.request_by_id(p).await?,
                None => None,
            };
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
                println!("Assignee    {}", if r.assignee.is_empty() { "-" } else { &r.assignee });
                if let Some(parent) = parent {
                    println!("Follows     {} (the request this reply reopened)", parent.tracking);
                }
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
