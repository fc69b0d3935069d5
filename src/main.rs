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
use intake311::outbound::smtp::Smtp;
use intake311::outbound::{OutAttachment, worker};
use intake311::registry::CityRecord;
use intake311::store::{CityRow, Source, StaffRole, Store};
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
    Run {
        /// On shutdown, write busy time per pipeline stage and the first-fetch / last-acknowledgement
        /// moments to this file as JSON (what the benchmark reads).
        #[arg(long, value_name = "PATH")]
        stage_report: Option<PathBuf>,
    },
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
    /// Known officials (contacts) of cities.
    #[command(subcommand)]
    Contacts(ContactsCmd),
    /// Tracked requests.
    #[command(subcommand)]
    Requests(RequestsCmd),
    /// The review queue: requests whose city a person must decide.
    #[command(subcommand)]
    Review(ReviewCmd),
    /// Mail that could not be handled.
    #[command(subcommand)]
    Quarantine(QuarantineCmd),
    /// Counts per outcome, the outbox backlog, the oldest unsent mail, the last successful poll.
    Stats {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum QuarantineCmd {
    /// Quarantined mail with the reason.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One entry, with the headers of the message when it was fetched.
    Show { id: i64 },
    /// Move the message back to the inbox so the daemon handles it again.
    Retry { id: i64 },
    /// Move the message to the processed folder: a person has dealt with it.
    Release { id: i64 },
}

#[derive(Subcommand, Debug)]
enum CitiesCmd {
    /// Import cities from CSV. Every row is checked first (any bad row is reported with its line,
    /// field and reason, and nothing changes); then the diff is printed and applied in one
    /// transaction, with an audit record of who, when and the file's SHA-256.
    Import {
        file: PathBuf,
        /// Only validate and print the diff.
        #[arg(long)]
        dry_run: bool,
        /// Also remove the cities the file does not list.
        #[arg(long)]
        replace: bool,
    },
    /// Write the registry as CSV (stdout, or --output FILE); it imports back unchanged.
    Export {
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// List the registry.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one city with its domains, contacts and number of requests.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Add a city.
    Add {
        name: String,
        state: String,
        #[command(flatten)]
        fields: CityFields,
    },
    /// Change a city (only the fields given).
    Set {
        id: i64,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        state: Option<String>,
        #[command(flatten)]
        fields: CityFields,
    },
    /// Remove a city (its domains and contacts go with it; its requests keep their history).
    Remove { id: i64 },
}

#[derive(Args, Debug)]
struct CityFields {
    /// Mail domains separated by `;` (replaces the list).
    #[arg(long)]
    domains: Option<String>,
    /// yes or no.
    #[arg(long)]
    eligible: Option<String>,
    #[arg(long)]
    population: Option<String>,
    /// YYYY-MM-DD (empty to clear).
    #[arg(long)]
    eligible_from: Option<String>,
    /// YYYY-MM-DD (empty to clear).
    #[arg(long)]
    eligible_until: Option<String>,
    #[arg(long)]
    notes: Option<String>,
}

#[derive(Subcommand, Debug)]
enum ContactsCmd {
    /// Record a known official of a city (mail from this address identifies the city).
    Add {
        email: String,
        #[arg(long)]
        city: i64,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, default_value = "")]
        title: String,
    },
    Remove {
        email: String,
    },
    List {
        #[arg(long)]
        city: Option<i64>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ReviewCmd {
    /// Requests waiting for a person to decide the city, with the reason and any suggestion.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Give the request a city; sends the acknowledgement if the official has had none yet.
    Approve {
        tracking: String,
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
        tracking: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        who: ActorArgs,
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
    /// Remove a staff member (their history stays; they no longer count as staff).
    Remove { email: String },
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
    // Colours only on a terminal: log files and journald get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
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
        match Smtp::new(&cfg) {
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

fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Applies `--field` options to a city record; each error names its option.
fn apply_fields(r: &mut CityRecord, f: &CityFields) -> anyhow::Result<()> {
    if let Some(d) = &f.domains {
        r.domains = registry::parse_domains(d).map_err(|e| anyhow::anyhow!("--domains: {e}"))?;
    }
    if let Some(e) = &f.eligible {
        r.eligible = registry::parse_bool(e).with_context(|| format!("--eligible: `{e}` is not yes/no"))?;
    }
    if let Some(p) = &f.population {
        r.population = registry::parse_population(p).map_err(|e| anyhow::anyhow!("--population: {e}"))?;
    }
    if let Some(d) = &f.eligible_from {
        r.eligible_from = registry::parse_date(d).map_err(|e| anyhow::anyhow!("--eligible-from: {e}"))?;
    }
    if let Some(d) = &f.eligible_until {
        r.eligible_until = registry::parse_date(d).map_err(|e| anyhow::anyhow!("--eligible-until: {e}"))?;
    }
    if let (Some(from), Some(until)) = (r.eligible_from, r.eligible_until)
        && from > until
    {
        anyhow::bail!("--eligible-until {until} is before eligible-from {from}");
    }
    if let Some(n) = &f.notes {
        r.notes = n.clone();
    }
    Ok(())
}

fn print_city(c: &CityRow) {
    let r = &c.record;
    println!(
        "{:<5} {:<26} {:<5} {:<9} {:<12} {}",
        c.id,
        r.name,
        r.state,
        if r.eligible { "yes" } else { "no" },
        r.eligible_until.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
        r.domains.join(";")
    );
}

async fn cities_command(cfg: Config, cmd: CitiesCmd) -> anyhow::Result<ExitCode> {
    let store = open_store(&cfg).await?;
    match cmd {
        CitiesCmd::Import { file, dry_run, replace } => {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let rows = match registry::parse_csv(&bytes) {
                Ok(rows) => rows,
                Err(errors) => {
                    eprint!("{}: {errors}", file.display());
                    return Ok(ExitCode::FAILURE);
                }
            };
            let diff = match registry::diff(&store.list_cities().await?, &rows, replace) {
                Ok(d) => d,
                Err(errors) => {
                    eprint!("{}: {errors}", file.display());
                    return Ok(ExitCode::FAILURE);
                }
            };
            print!("{}: {diff}", file.display());
            if dry_run {
                println!("dry run: nothing changed");
            } else if diff.is_empty() {
                println!("nothing to change");
            } else {
                let detail = format!("file {} (sha256 {})", file.display(), sha256_hex(&bytes));
                store
                    .apply_city_diff(&diff, &actor(), &detail)
                    .await
                    .with_context(|| format!("importing {}", file.display()))?;
                println!("applied");
            }
        }
        CitiesCmd::Export { output } => {
            let csv = registry::export_csv(&store.list_cities().await?)?;
            match output {
                Some(path) => std::fs::write(&path, &csv).with_context(|| format!("writing {}", path.display()))?,
                None => {
                    use std::io::Write as _;
                    std::io::stdout().write_all(&csv)?;
                }
            }
        }
        CitiesCmd::List { json } => {
            let cities = store.list_cities().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&cities)?);
            } else {
                println!("{:<5} {:<26} {:<5} {:<9} {:<12} domains", "id", "name", "state", "eligible", "until");
                cities.iter().for_each(print_city);
                println!("{} cities", cities.len());
            }
        }
        CitiesCmd::Show { id, json } => {
            let Some(city) = store.city_by_id(id).await? else {
                eprintln!("no city has id {id}");
                return Ok(ExitCode::FAILURE);
            };
            let contacts = store.list_contacts(Some(id)).await?;
            let requests = store.requests_of_city(id).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"city": city, "contacts": contacts, "requests": requests})
                    )?
                );
            } else {
                let r = &city.record;
                println!("City        {} (#{})", r.label(), city.id);
                println!("Eligible    {}", if r.eligible { "yes" } else { "no" });
                println!(
                    "From/until  {} / {}",
                    r.eligible_from.map(|d| d.to_string()).unwrap_or("-".into()),
                    r.eligible_until.map(|d| d.to_string()).unwrap_or("-".into())
                );
                println!("Today       {}", registry::eligible_on(r, chrono::Utc::now().date_naive()).1);
                println!("Population  {}", r.population.map(|p| p.to_string()).unwrap_or("-".into()));
                println!("Domains     {}", r.domains.join("; "));
                println!("Notes       {}", r.notes);
                println!("Requests    {requests}");
                println!("Contacts:");
                for c in &contacts {
                    println!("  {:<32} {:<24} {:<20} {}", c.email, c.name, c.title, c.source);
                }
            }
        }
        CitiesCmd::Add { name, state, fields } => {
            let mut record = CityRecord {
                name: name.trim().to_string(),
                state: registry::parse_state(&state).map_err(|e| anyhow::anyhow!("state: {e}"))?,
                population: None,
                eligible: true,
                eligible_from: None,
                eligible_until: None,
                notes: String::new(),
                domains: Vec::new(),
            };
            anyhow::ensure!(!record.name.is_empty(), "name: empty");
            apply_fields(&mut record, &fields)?;
            let id = store.add_city(&record, &actor()).await?;
            println!("added {} (#{id})", record.label());
        }
        CitiesCmd::Set { id, name, state, fields } => {
            let Some(mut city) = store.city_by_id(id).await? else {
                eprintln!("no city has id {id}");
                return Ok(ExitCode::FAILURE);
            };
            if let Some(n) = name {
                city.record.name = n.trim().to_string();
            }
            if let Some(s) = state {
                city.record.state = registry::parse_state(&s).map_err(|e| anyhow::anyhow!("--state: {e}"))?;
            }
            apply_fields(&mut city.record, &fields)?;
            store.update_city(id, &city.record, &actor()).await?;
            print!("updated ");
            print_city(&city);
        }
        CitiesCmd::Remove { id } => {
            if store.remove_city(id, &actor()).await? {
                println!("removed city #{id}");
            } else {
                eprintln!("no city has id {id}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn contacts_command(cfg: Config, cmd: ContactsCmd) -> anyhow::Result<ExitCode> {
    let store = open_store(&cfg).await?;
    match cmd {
        ContactsCmd::Add { email, city, name, title } => {
            let email = normalize_email(&email).with_context(|| format!("`{email}` is not an email address"))?;
            let Some(c) = store.city_by_id(city).await? else {
                eprintln!("no city has id {city} (intake311 cities list)");
                return Ok(ExitCode::FAILURE);
            };
            store.add_contact(&email, &name, &title, city, &actor()).await?;
            println!("{email} is a contact of {}", c.record.label());
        }
        ContactsCmd::Remove { email } => {
            let email = normalize_email(&email).unwrap_or(email);
            if !store.remove_contact(&email, &actor()).await? {
                eprintln!("{email} is not a contact");
                return Ok(ExitCode::FAILURE);
            }
            println!("removed contact {email}");
        }
        ContactsCmd::List { city, json } => {
            let contacts = store.list_contacts(city).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&contacts)?);
            } else {
                for c in &contacts {
                    println!("{:<32} {:<22} {:<20} {:<10} {}", c.email, c.city, c.name, c.source, c.title);
                }
                println!("{} contact(s)", contacts.len());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn review_command(cfg: Config, cmd: ReviewCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ReviewCmd::List { json } => {
            let store = open_store(&cfg).await?;
            let queue = store.review_queue().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&queue)?);
            } else {
                for r in &queue {
                    let suggestion = match r.suggested_city_id {
                        Some(id) => store
                            .city_by_id(id)
                            .await?
                            .map(|c| format!("{} (#{id})", c.record.label()))
                            .unwrap_or_default(),
                        None => "-".into(),
                    };
                    println!("{}  {}  {}  status {}", r.tracking, r.official_email, r.subject, r.status);
                    println!("    why: {}", r.review_reason);
                    println!("    suggested city: {suggestion}");
                }
                println!("{} request(s) in review", queue.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        ReviewCmd::Approve { tracking, city, contact, who } => {
            let tracking: TrackingNumber = tracking.parse()?;
            let cfg = Arc::new(cfg);
            let (store, templates) = daemon::prepare(&cfg).await?;
            let actor = cli_actor(&store, &who).await?;
            let intake = Intake::new(store.clone(), Arc::clone(&cfg), templates, Arc::new(tokio::sync::Notify::new()))?;
            match intake.review_approve(&tracking, city, contact, &actor).await {
                Ok(summary) => println!("{summary}"),
                Err(ApplyError::Command(e)) => {
                    eprintln!("not applied: {e}");
                    return Ok(ExitCode::FAILURE);
                }
                Err(ApplyError::Internal(e)) => return Err(e),
            }
            send_now(&store, &cfg).await;
            Ok(ExitCode::SUCCESS)
        }
        ReviewCmd::Reject { tracking, reason, who } => {
            let tracking: TrackingNumber = tracking.parse()?;
            let cfg = Arc::new(cfg);
            let (store, templates) = daemon::prepare(&cfg).await?;
            let actor = cli_actor(&store, &who).await?;
            let intake = Intake::new(store, cfg, templates, Arc::new(tokio::sync::Notify::new()))?;
            match intake.review_reject(&tracking, &reason, &actor).await {
                Ok(summary) => println!("{summary}"),
                Err(ApplyError::Command(e)) => {
                    eprintln!("not applied: {e}");
                    return Ok(ExitCode::FAILURE);
                }
                Err(ApplyError::Internal(e)) => return Err(e),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn quarantine_command(cfg: Config, cmd: QuarantineCmd) -> anyhow::Result<ExitCode> {
    use intake311::mailbox::quarantine::{Target, move_quarantined};
    let store = open_store(&cfg).await?;
    let rows = store.list_quarantine().await?;
    let find = |id: i64| rows.iter().find(|r| r.id == id).cloned();
    match cmd {
        QuarantineCmd::List { json } => {
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for r in &rows {
                    println!(
                        "{:<5} {:<9} {}  {:<30} {:>9}  {}",
                        r.id,
                        r.status,
                        fmt_ms(r.created_at),
                        r.from_addr,
                        r.size,
                        r.reason
                    );
                }
                println!("{} entr{}", rows.len(), if rows.len() == 1 { "y" } else { "ies" });
            }
        }
        QuarantineCmd::Show { id } => {
            let Some(r) = find(id) else {
                eprintln!("no quarantine entry {id}");
                return Ok(ExitCode::FAILURE);
            };
            println!("Entry       {} ({})", r.id, r.status);
            println!("Reason      {}", r.reason);
            println!("Received    {}", fmt_ms(r.created_at));
            println!("From        {}", if r.from_addr.is_empty() { "-" } else { &r.from_addr });
            println!("Subject     {}", r.subject);
            println!("Size        {} bytes", r.size);
            println!("Message-ID  {}", if r.header_id.is_empty() { "-" } else { &r.header_id });
            println!("Was         {} UID {} (UIDVALIDITY {})", r.mailbox, r.uid, r.uidvalidity);
            match store.quarantine_raw(id).await? {
                Some(raw) => {
                    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(raw.len().min(4000));
                    println!("\n{}", String::from_utf8_lossy(&raw[..end]));
                }
                None => println!("\n(the message was not fetched; it is in the {} folder)", cfg.imap.quarantine_folder),
            }
        }
        QuarantineCmd::Retry { id } | QuarantineCmd::Release { id } if find(id).is_none() => {
            eprintln!("no quarantine entry {id}");
            return Ok(ExitCode::FAILURE);
        }
        QuarantineCmd::Retry { id } => {
            let row = find(id).context("entry vanished")?;
            println!("{}", move_quarantined(&cfg, &store, &row, Target::Retry).await?);
        }
        QuarantineCmd::Release { id } => {
            let row = find(id).context("entry vanished")?;
            println!("{}", move_quarantined(&cfg, &store, &row, Target::Release).await?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Sends what is due now; what the server refuses stays queued for the daemon.
async fn send_now(store: &Store, cfg: &Config) {
    match Smtp::new(cfg) {
        Ok(transport) => match worker::send_once(store, &transport, cfg).await {
            Ok(p) if p.failed == 0 => println!("sent ({} message(s))", p.sent),
            Ok(_) => println!("queued; the SMTP server refused it for now, the daemon will retry (see requests show)"),
            Err(e) => println!("queued; not sent yet ({e:#}); the daemon will send it"),
        },
        Err(e) => println!("queued; not sent yet ({e:#}); the daemon will send it"),
    }
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
        Command::Run { stage_report } => {
            daemon::run(load()?).await?;
            if let Some(path) = stage_report {
                let json = serde_json::to_string_pretty(&intake311::metrics::report())?;
                std::fs::write(&path, json).with_context(|| format!("writing the stage report {}", path.display()))?;
            }
        }
        Command::Migrate => {
            let cfg = load()?;
            let store = Store::connect(&cfg.database.url, 1).await?;
            let n = store.migrate().await?;
            println!("{}: {n} migration(s) applied; schema is current", cfg.database.url);
        }
        Command::Cities(cmd) => return cities_command(load()?, cmd).await,
        Command::Contacts(cmd) => return contacts_command(load()?, cmd).await,
        Command::Review(cmd) => return review_command(load()?, cmd).await,
        Command::Quarantine(cmd) => return quarantine_command(load()?, cmd).await,
        Command::Stats { json } => {
            let store = open_store(&load()?).await?;
            let st = store.stats().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&st)?);
            } else {
                println!("Inbound mail by outcome:");
                for (kind, n) in &st.inbound {
                    println!("  {kind:<20} {n}");
                }
                println!("Requests by status:");
                for (status, n) in &st.requests_by_status {
                    println!("  {status:<20} {n}");
                }
                println!("In review           {}", st.in_review);
                println!(
                    "Outbox              {} pending, {} sent, {} failed",
                    st.outbox.pending, st.outbox.sent, st.outbox.failed
                );
                println!(
                    "Oldest unsent       {}",
                    st.outbox.oldest_pending_at.map(fmt_ms).unwrap_or_else(|| "-".into())
                );
                println!("Quarantine (held)   {}", st.quarantine_held);
                println!("Suppressed (bounce) {}", st.suppressed_addresses);
                println!("Last good poll      {}", st.last_poll_at.map(fmt_ms).unwrap_or_else(|| "never".into()));
            }
        }
        Command::Staff(StaffCmd::Remove { email }) => {
            let email = normalize_email(&email).with_context(|| format!("`{email}` is not an email address"))?;
            let store = open_store(&load()?).await?;
            if store.deactivate_staff(&email, &actor()).await? {
                println!("removed {email} from the staff list");
            } else {
                eprintln!("{email} is not on the staff list");
                return Ok(ExitCode::FAILURE);
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
            let messages = store.conversation(r.id).await?;
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
                let v = serde_json::json!({"request": r, "messages": messages, "timeline": events, "outbox": outbox});
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
                println!("\nMessages:");
                for m in &messages {
                    print_conversation_message(m);
                }
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

/// One message of `requests show`: who, when and the subject on one line, then what it says,
/// indented. Automatic mail out has no text (its template says it).
fn print_conversation_message(m: &intake311::store::ConversationMessage) {
    let who = if m.direction != "in" {
        if m.cc_addrs.is_empty() {
            format!("to {}", m.to_addrs)
        } else {
            format!("to {}, cc {}", m.to_addrs, m.cc_addrs)
        }
    } else if m.from_name.is_empty() {
        format!("from {}", m.from_addr)
    } else {
        format!("from {} <{}>", m.from_name, m.from_addr)
    };
    println!("  {}  {:<3} {:<21} {who}", fmt_ms(m.at), m.direction, m.kind);
    println!("      Subject: {}", if m.subject.is_empty() { "(no subject)" } else { &m.subject });
    for line in m.text.trim_end().lines() {
        // Mail from outside: no terminal control sequences.
        let line: String = line.chars().filter(|c| !c.is_control() || *c == '\t').collect();
        println!("      | {line}");
    }
}

fn main() -> ExitCode {
    tune_malloc();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cli = Cli::parse();
    init_tracing();
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// glibc's allocator, left alone, gives each of the daemon's threads (tokio's, sqlx's SQLite
/// threads, the parser) an arena of its own and raises its mmap threshold after every large
/// free; a 20 MB message then leaves tens of megabytes behind in several arenas, and RSS grows
/// with the backlog. Two arenas and a fixed 1 MiB threshold (large buffers are mapped and
/// unmapped, so freed mail returns to the system at once) measured: peak RSS 276 → 128 MB with
/// ten 20 MB messages, 48 → 40 MB on 2,000 ordinary ones (`cargo bench --bench throughput`).
/// Must run before any thread starts.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any other thread
    // exists, and failure (a zero return) just leaves the defaults.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
