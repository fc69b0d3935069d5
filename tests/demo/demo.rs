//! `cargo run --example demo`: intake311 end to end on this machine, on embedded defaults.
//!
//! Starts a private Dovecot and Postfix on loopback (installing the Debian packages first when
//! they are missing), writes a config for them under target/demo/, imports the example city
//! list into a fresh SQLite database, runs the daemon, and mails three sample questions: from an
//! eligible city, a not-eligible city and an unknown address. It prints each tracked request and
//! the acknowledgement as it arrived in the official's inbox, then stops everything.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

#[path = "../support/mailservers/mod.rs"]
mod mailservers;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use intake311::config::Config;
use intake311::store::Store;
use mailservers::{MailServers, PASSWORD, smtp_send, wait_for_messages};
use tokio_util::sync::CancellationToken;

const INTAKE: &str = "intake@311.test";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("INTAKE311_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let work = root.join("target/demo");
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("clearing {}", work.display()))?;
    }
    std::fs::create_dir_all(&work)?;

    println!("== 1. Starting a private Dovecot (IMAP) and Postfix (SMTP) on loopback");
    let servers = MailServers::start().context("starting the demo mail servers")?;
    let officials = [
        ("mayor@daytonohio.gov", "Jane Rivera, Mayor of Dayton", "Water main replacement financing"),
        ("clerk@springfieldmo.gov", "Sam Ortiz, City Clerk", "Police recruitment and retention"),
        ("pat.lee@gmail.test", "Pat Lee", "Moving to a 311 number"),
    ];
    for user in [INTAKE, "staff@311.test"].into_iter().chain(officials.iter().map(|o| o.0)) {
        servers.add_user(user)?;
    }
    println!("   IMAP 127.0.0.1:{}  SMTP 127.0.0.1:{}", servers.imap_port, servers.smtp_port);

    let config_path = work.join("intake311.toml");
    let db = work.join("intake311.db");
    std::fs::write(
        &config_path,
        format!(
            "[database]\nurl = \"sqlite://{db}\"\n\n[imap]\nhost = \"127.0.0.1\"\nport = {imap}\ntls = \"none\"\n\
             user = \"{INTAKE}\"\npassword = \"{PASSWORD}\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {smtp}\ntls = \"none\"\n\
             from = \"311 for Cities <{INTAKE}>\"\n\n[intake]\naddress = \"{INTAKE}\"\nstaff_address = \"staff@311.test\"\n\
             templates_dir = \"{templates}\"\n",
            db = db.display(),
            imap = servers.imap_port,
            smtp = servers.smtp_port,
            templates = root.join("templates").display(),
        ),
    )?;
    let cfg = Config::load(Some(&config_path))?;
    println!("== 2. Config written to {}", config_path.display());

    let store = Store::connect(&cfg.database.url, 2).await?;
    store.migrate().await?;
    let csv = std::fs::read(root.join("config/cities.example.csv"))?;
    let rows = intake311::registry::parse_csv(&csv).map_err(|e| anyhow::anyhow!("{e}"))?;
    let diff =
        intake311::registry::diff(&store.list_cities().await?, &rows, false).map_err(|e| anyhow::anyhow!("{e}"))?;
    store.apply_city_diff(&diff, "demo", "config/cities.example.csv").await?;
    println!("== 3. Imported config/cities.example.csv: {} cities into {}", diff.added.len(), db.display());

    println!("== 4. Running the daemon (IMAP IDLE + outbox worker)");
    let cancel = CancellationToken::new();
    let daemon = tokio::spawn(intake311::daemon::run_until(cfg.clone(), cancel.clone()));

    for (i, (address, name, subject)) in officials.iter().enumerate() {
        let raw = format!(
            "From: \"{name}\" <{address}>\r\nTo: 311 for Cities <{INTAKE}>\r\nSubject: {subject}\r\n\
             Message-ID: <demo-{i}-{}@{}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
             Hello, we would like to learn how other cities handle this. Thank you!\r\n",
            std::process::id(),
            address.rsplit('@').next().unwrap_or("x"),
        );
        let sent = Instant::now();
        println!("\n== 5.{} {address} asks: {subject:?}", i + 1);
        smtp_send(&servers, address, &[INTAKE], raw.as_bytes()).await?;
        let acks = wait_for_messages(&servers, address, "INBOX", 1, Duration::from_secs(30)).await?;
        let elapsed = sent.elapsed();
        let msg = mail_parser::MessageParser::default().parse(&acks[0]).context("parsing the acknowledgement")?;
        let request = store.list_requests(None, 1).await?.into_iter().next().context("no request was created")?;
        println!(
            "   tracked as {} · status {} · {} ({})",
            request.tracking, request.status, request.eligibility, request.eligibility_reason
        );
        println!("   acknowledgement arrived in {address}'s inbox after {elapsed:.2?}:");
        println!("   Subject: {}", msg.subject().unwrap_or_default());
        for line in msg.body_text(0).unwrap_or_default().lines().take(14) {
            println!("   | {line}");
        }
    }

    cancel.cancel();
    daemon.await.context("daemon task")??;
    drop(servers);
    println!("\n== Done. The database stays in {}; look around with:", db.display());
    println!("   cargo run -- --config {} requests list", config_path.display());
    println!("   cargo run -- --config {} requests show TRACKING", config_path.display());
    Ok(())
}
