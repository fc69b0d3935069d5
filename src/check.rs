//! `intake311 check`: is this deployment ready? One line per check (as text, or as JSON with
//! `--json`); any failure makes the command exit non-zero. Checks the config, the database
//! (opened, and its schema compared with this binary's; `check` never migrates), the templates,
//! IMAP (connect, TLS, login, the inbox) and SMTP (connect, EHLO, STARTTLS/TLS, AUTH).

use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::config::Config;
use crate::deadlines::Calendar;
use crate::mailbox::ImapConn;
use crate::outbound::Templates;
use crate::outbound::smtp::Smtp;
use crate::store::Store;

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct CheckLine {
    pub name: &'static str,
    pub ok: bool,
    /// Works, but something an administrator should know (the exit code stays 0).
    pub warn: bool,
    pub detail: String,
}

impl fmt::Display for CheckLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match (self.ok, self.warn) {
            (false, _) => "FAIL",
            (true, true) => "WARN",
            (true, false) => "ok",
        };
        write!(f, "{status:<4} {:<9} {}", self.name, self.detail)
    }
}

/// Every check's line, in order.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Whether every check passed.
    pub ok: bool,
    pub checks: Vec<CheckLine>,
}

impl Report {
    fn new(checks: Vec<CheckLine>) -> Report {
        Report { ok: checks.iter().all(|l| l.ok), checks }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for l in &self.checks {
            if !first {
                writeln!(f)?;
            }
            first = false;
            write!(f, "{l}")?;
        }
        Ok(())
    }
}

fn line(name: &'static str, r: anyhow::Result<String>) -> CheckLine {
    match r {
        Ok(detail) => CheckLine { name, ok: true, warn: false, detail },
        Err(e) => CheckLine { name, ok: false, warn: false, detail: format!("{e:#}") },
    }
}

/// Runs every check; a config that does not load is the only check then.
pub async fn run(config_path: Option<&Path>) -> Report {
    let cfg = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            return Report::new(vec![CheckLine { name: "config", ok: false, warn: false, detail: e.to_string() }]);
        }
    };
    let mut lines =
        vec![CheckLine { name: "config", ok: true, warn: false, detail: format!("loaded from {}", cfg.source) }];
    lines.push(CheckLine {
        name: "timezone",
        ok: true,
        warn: false,
        detail: format!(
            "{}: every date of a request is taken in this zone (intake.timezone)",
            cfg.intake.timezone.name()
        ),
    });
    lines.push(senders(&cfg));
    let today = chrono::Utc::now().with_timezone(&cfg.intake.timezone).date_naive();
    lines.push(calendar(cfg.deadlines.holidays.as_deref(), today));
    lines.push(match crate::topics::Topics::of(&cfg) {
        Ok(t) => CheckLine {
            name: "topics",
            ok: true,
            warn: false,
            detail: format!(
                "{} topic(s) from {}: {}",
                t.all().len(),
                t.origin,
                t.all().iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        },
        Err(e) => CheckLine { name: "topics", ok: false, warn: false, detail: e.to_string() },
    });
    lines.push(line("database", check_database(&cfg).await));
    lines.push(line("templates", check_templates(&cfg)));
    lines.push(line("imap", check_imap(&cfg).await));
    lines.push(line("smtp", check_smtp(&cfg).await));
    Report::new(lines)
}

async fn check_database(cfg: &Config) -> anyhow::Result<String> {
    let url = crate::store::backend::postgres::redact(&cfg.database.url);
    let store = Store::connect(&cfg.database.url, 1).await?;
    let version = store.server_version().await.unwrap_or_else(|e| format!("version unknown: {e:#}"));
    let schema = store.schema_state().await;
    let result = match schema {
        Ok(s) if s.is_current() => {
            let requests = store.count_requests().await;
            let daemons = match store.daemons_and_leases().await {
                Ok((d, l)) => {
                    let now = crate::store::now_ms();
                    let live =
                        d.iter().filter(|d| now - d.heartbeat_at < crate::store::ms_of(cfg.database.lease)).count();
                    let polling: Vec<String> = l
                        .iter()
                        .filter(|l| l.expires_at > now)
                        .map(|l| format!("{} polled by {} on {}", l.mailbox, l.owner, l.host))
                        .collect();
                    format!(
                        ", {live} daemon(s) alive{}",
                        if polling.is_empty() { String::new() } else { format!(", {}", polling.join(", ")) }
                    )
                }
                Err(_) => String::new(),
            };
            requests.map(|n| format!("{url} ok ({version}), {s}, {n} request(s){daemons}"))
        }
        Ok(s) => Err(anyhow::anyhow!("{url} ({version}): {s}")),
        Err(e) => Err(e),
    };
    store.close().await;
    result
}

/// The business-day calendar: the holiday file loads, and still covers the next 12 months.
fn calendar(holidays: Option<&Path>, today: chrono::NaiveDate) -> CheckLine {
    let Some(path) = holidays else {
        return CheckLine {
            name: "calendar",
            ok: true,
            warn: true,
            detail: "no holiday file (deadlines.holidays): promised dates count only weekends as days off".into(),
        };
    };
    match Calendar::load(path) {
        Err(e) => CheckLine { name: "calendar", ok: false, warn: false, detail: e.to_string() },
        Ok(cal) => {
            let horizon = today.checked_add_months(chrono::Months::new(12)).unwrap_or(today);
            let last = cal.last_holiday();
            let detail = match last {
                Some(last) => format!("{} holiday(s) from {}, the last on {last}", cal.len(), path.display()),
                None => format!("{} lists no holiday", path.display()),
            };
            if last.is_none_or(|last| last < horizon) {
                CheckLine {
                    name: "calendar",
                    ok: true,
                    warn: true,
                    detail: format!(
                        "{detail}: the list ends within 12 months (before {horizon}); add the next years' holidays"
                    ),
                }
            } else {
                CheckLine { name: "calendar", ok: true, warn: false, detail }
            }
        }
    }
}

/// Sender verification: without a trusted Authentication-Results id nothing is verified.
fn senders(cfg: &Config) -> CheckLine {
    let ids = &cfg.intake.trusted_authserv_ids;
    if ids.is_empty() {
        return CheckLine {
            name: "senders",
            ok: true,
            warn: true,
            detail: "no trusted Authentication-Results id (intake.trusted_authserv_ids): no sender is verified, \
                     staff commands by mail are applied only as replies to staff notices, and administrators' \
                     commands by mail are refused"
                .into(),
        };
    }
    CheckLine {
        name: "senders",
        ok: true,
        warn: false,
        detail: format!(
            "verified by {} (intake.verification = {})",
            ids.join(", "),
            format!("{:?}", cfg.intake.verification).to_lowercase()
        ),
    }
}

fn check_templates(cfg: &Config) -> anyhow::Result<String> {
    // Loading renders every mail with sample data, as start-up does.
    let t = Templates::load(cfg.intake.templates_dir.as_deref())?;
    let renders = t.render_samples()?;
    let mut detail = format!(
        "{} compiled and rendered with sample data ({} mails, {} partials, {renders} renders)",
        t.dir.display(),
        crate::outbound::templates::TEMPLATE_NAMES.len(),
        crate::outbound::templates::PARTIAL_NAMES.len()
    );
    let overridden = t.overridden();
    if !overridden.is_empty() {
        detail.push_str(&format!("; {} overridden: {}", overridden.len(), some(&overridden)));
    }
    let unchanged = t.unchanged_overrides();
    if !unchanged.is_empty() {
        detail.push_str(&format!(
            "; {} identical to the built-in (remove them, or they hide later fixes): {}",
            unchanged.len(),
            some(&unchanged)
        ));
    }
    Ok(detail)
}

/// The first few names of a list, and how many more.
fn some(names: &[String]) -> String {
    const SHOWN: usize = 6;
    match names.len().checked_sub(SHOWN) {
        Some(more) if more > 0 => {
            format!("{} and {more} more", names.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", "))
        }
        _ => names.join(", "),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_calendar_line_warns_before_the_holiday_list_runs_out() {
        let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).expect("date");
        let shipped = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/holidays.us-federal.txt"));
        let fine = calendar(Some(shipped), day(2026, 12, 5));
        assert!(fine.ok && !fine.warn, "{}", fine.detail);
        assert!(fine.detail.starts_with("110 holiday(s) from ") && fine.detail.ends_with("the last on 2035-12-25"));
        let late = calendar(Some(shipped), day(2035, 1, 2));
        assert!(late.ok && late.warn, "{}", late.detail);
        assert!(late.detail.contains("the list ends within 12 months (before 2036-01-02)"), "{}", late.detail);
        let none = calendar(None, day(2026, 12, 5));
        assert!(none.ok && none.warn && none.detail.contains("deadlines.holidays"));
        let dir = tempfile::tempdir().expect("dir");
        let bad = dir.path().join("h.txt");
        std::fs::write(&bad, "2027-01-01 New Year\n2027-02-30 Nope\n").expect("write");
        let broken = calendar(Some(&bad), day(2026, 12, 5));
        assert!(!broken.ok, "a broken holiday file fails check");
        assert!(
            broken
                .detail
                .ends_with("h.txt line 2: `2027-02-30` is not a date (expected YYYY-MM-DD, then the holiday's name)"),
            "{}",
            broken.detail
        );
    }
}
