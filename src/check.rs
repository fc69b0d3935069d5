//! `intake311 check`: is this deployment ready? One line per check; any failure makes the
//! command exit non-zero. Checks the config, the database (opened and migrated), the
//! templates, IMAP (connect, TLS, login, the inbox and folders) and SMTP (connect, EHLO,
//! STARTTLS/TLS, AUTH).

use std::fmt;
use std::path::Path;

use crate::config::Config;
use crate::mailbox::ImapConn;
use crate::outbound::Templates;
use crate::outbound::smtp::Smtp;
use crate::store::Store;

/// One line of the report.
#[derive(Debug, Clone)]
pub struct CheckLine {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

impl fmt::Display for CheckLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<4} {:<9} {}", if self.ok { "ok" } else { "FAIL" }, self.name, self.detail)
    }
}

fn line(name: &'static str, r: anyhow::Result<String>) -> CheckLine {
    match r {
        Ok(detail) => CheckLine { name, ok: true, detail },
        Err(e) => CheckLine { name, ok: false, detail: format!("{e:#}") },
    }
}

/// Runs every check; a config that does not load is the only check then.
pub async fn run(config_path: Option<&Path>) -> Vec<CheckLine> {
    let cfg = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => return vec![CheckLine { name: "config", ok: false, detail: e.to_string() }],
    };
    let mut lines = vec![CheckLine { name: "config", ok: true, detail: format!("loaded from {}", cfg.source) }];
    lines.push(line("database", check_database(&cfg).await));
    lines.push(line("templates", check_templates(&cfg)));
    lines.push(line("imap", check_imap(&cfg).await));
    lines.push(line("smtp", check_smtp(&cfg).await));
    lines
}

async fn check_database(cfg: &Config) -> anyhow::Result<String> {
    let store = Store::connect(&cfg.database.url, 1).await?;
    let applied = store.migrate().await?;
    let requests = store.count_requests().await?;
    store.close().await;
    Ok(format!("{} ok, {applied} migration(s) applied now, {requests} request(s)", cfg.database.url))
}

fn check_templates(cfg: &Config) -> anyhow::Result<String> {
    let t = Templates::load(&cfg.intake.templates_dir)?;
    let renders = t.render_samples()?;
    Ok(format!(
        "{} compiled and rendered with sample data ({} mails, {} partials, {renders} renders)",
        t.dir.display(),
        crate::outbound::render::TEMPLATE_NAMES.len(),
        crate::outbound::render::PARTIAL_NAMES.len()
    ))
}

async fn check_imap(cfg: &Config) -> anyhow::Result<String> {
    let imap = &cfg.imap;
    let mut conn = ImapConn::connect(imap, &cfg.imap_password).await?;
    let sel = conn.select(&imap.inbox).await?;
    let detail = format!(
        "{}:{} ({}) logged in as {}; {} has {} message(s); IDLE {}, MOVE {}",
        imap.host,
        imap.port,
        imap.tls,
        imap.user,
        imap.inbox,
        sel.exists,
        if conn.has_idle { "yes" } else { "no" },
        if conn.has_move { "yes" } else { "no (COPY + EXPUNGE)" }
    );
    conn.logout().await;
    Ok(detail)
}

async fn check_smtp(cfg: &Config) -> anyhow::Result<String> {
    let smtp = &cfg.smtp;
    let transport = Smtp::new(cfg)?;
    transport
        .test_connection()
        .await
        .map_err(|e| anyhow::anyhow!("{}:{} ({}): {e}", smtp.host, smtp.port, smtp.tls))?;
    let auth = if smtp.user.is_empty() { "no AUTH".to_string() } else { format!("authenticated as {}", smtp.user) };
    Ok(format!("{}:{} ({}) EHLO ok, {auth}", smtp.host, smtp.port, smtp.tls))
}
