//! The checks a config must pass after it is read: every wrong value is refused with its key
//! and the reason.
//!
//! Owns: the rules across keys (folders that must differ, `require` needing a trusted id, ...).
//! Talks to: the file system (CA files) and [`crate::tls`] to parse them.

use std::path::PathBuf;
use std::time::Duration;

use super::{ConfigError, RawConfig, Verification, invalid};

fn check_address(key: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() {
        return Err(invalid(key, "missing: an email address is required"));
    }
    value
        .parse::<lettre::Address>()
        .map(|_| ())
        .map_err(|e| invalid(key, format!("`{value}` is not an email address: {e}")))
}

fn check_ca_file(key: &'static str, file: &Option<PathBuf>) -> Result<(), ConfigError> {
    if let Some(path) = file {
        let pem = std::fs::read(path).map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))?;
        crate::tls::parse_pem_certs(&pem).map_err(|e| invalid(key, format!("{}: {e}", path.display())))?;
    }
    Ok(())
}

pub(super) fn validate(raw: &RawConfig) -> Result<(), ConfigError> {
    let db = &raw.database;
    if crate::store::Engine::of_url(&db.url).is_none() {
        let scheme = db.url.split(':').next().unwrap_or_default();
        return Err(invalid(
            "database.url",
            format!("unsupported scheme `{scheme}`: use sqlite://PATH or postgres://USER@HOST/DB"),
        ));
    }
    if db.lease < std::time::Duration::from_secs(3) || db.lease > std::time::Duration::from_secs(300) {
        return Err(invalid("database.lease", "must be between 3s and 5m"));
    }
    if db.max_connections == 0 {
        return Err(invalid("database.max_connections", "must be at least 1"));
    }

    let imap = &raw.imap;
    if imap.host.trim().is_empty() {
        return Err(invalid("imap.host", "missing"));
    }
    if imap.port == 0 {
        return Err(invalid("imap.port", "must be 1-65535"));
    }
    if imap.user.trim().is_empty() {
        return Err(invalid("imap.user", "missing: the login of the shared mailbox"));
    }
    check_ca_file("imap.ca_file", &imap.ca_file)?;
    for (key, folder) in [
        ("imap.inbox", &imap.inbox),
        ("imap.processed_folder", &imap.processed_folder),
        ("imap.quarantine_folder", &imap.quarantine_folder),
    ] {
        if folder.trim().is_empty() {
            return Err(invalid(key, "missing: a folder name is required"));
        }
        if folder.chars().any(|c| c.is_control() || c == '"' || c == '\\') {
            return Err(invalid(key, format!("`{folder}` contains a control character, quote or backslash")));
        }
    }
    if imap.processed_folder == imap.inbox || imap.quarantine_folder == imap.inbox {
        return Err(invalid(
            "imap.processed_folder",
            "the processed and quarantine folders must differ from the inbox",
        ));
    }
    if imap.processed_folder == imap.quarantine_folder {
        return Err(invalid("imap.quarantine_folder", "must differ from imap.processed_folder"));
    }
    if imap.poll_interval < Duration::from_secs(1) {
        return Err(invalid("imap.poll_interval", "must be at least 1s"));
    }
    if imap.burst_check > Duration::from_secs(60) {
        return Err(invalid("imap.burst_check", "must be at most 60s (0s turns it off)"));
    }
    if imap.quiet_check > Duration::from_secs(60) {
        return Err(invalid("imap.quiet_check", "must be at most 60s (0s turns it off)"));
    }
    if imap.idle_timeout < Duration::from_secs(10) || imap.idle_timeout > Duration::from_secs(29 * 60) {
        return Err(invalid("imap.idle_timeout", "must be between 10s and 29m (RFC 2177)"));
    }
    if imap.max_message_bytes < 1024 {
        return Err(invalid("imap.max_message_bytes", "must be at least 1024"));
    }
    if imap.fetch_batch == 0 || imap.fetch_batch > 10_000 {
        return Err(invalid("imap.fetch_batch", "must be 1-10000"));
    }

    let smtp = &raw.smtp;
    if smtp.host.trim().is_empty() {
        return Err(invalid("smtp.host", "missing"));
    }
    if smtp.port == 0 {
        return Err(invalid("smtp.port", "must be 1-65535"));
    }
    check_ca_file("smtp.ca_file", &smtp.ca_file)?;
    if smtp.from.is_empty() {
        return Err(invalid("smtp.from", "missing: e.g. `311 for Cities <intake@311.example.org>`"));
    }
    smtp.from
        .parse::<lettre::message::Mailbox>()
        .map_err(|e| invalid("smtp.from", format!("`{}` is not a mailbox: {e}", smtp.from)))?;
    if smtp.pool_size == 0 || smtp.pool_size > 64 {
        return Err(invalid("smtp.pool_size", "must be 1-64"));
    }

    let intake = &raw.intake;
    check_address("intake.address", &intake.address)?;
    check_address("intake.staff_address", &intake.staff_address)?;
    if intake.tracking_prefix.is_empty()
        || intake.tracking_prefix.len() > 12
        || !intake.tracking_prefix.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(invalid(
            "intake.tracking_prefix",
            format!("`{}` must be 1-12 ASCII letters or digits", intake.tracking_prefix),
        ));
    }
    if intake.response_days == 0 || intake.response_days > 90 {
        return Err(invalid("intake.response_days", "must be 1-90 business days"));
    }
    if intake.service_name.trim().is_empty() {
        return Err(invalid("intake.service_name", "missing"));
    }
    if intake.verification == Verification::Require && intake.trusted_authserv_ids.is_empty() {
        return Err(invalid(
            "intake.trusted_authserv_ids",
            "verification = \"require\" needs the authserv-id of your receiving server (the first word of its Authentication-Results header)",
        ));
    }
    if intake.trusted_authserv_ids.iter().any(|id| id.trim().is_empty() || id.contains(char::is_whitespace)) {
        return Err(invalid("intake.trusted_authserv_ids", "an authserv-id is one word, e.g. \"mx.311.example.org\""));
    }

    let deadlines = &raw.deadlines;
    if deadlines.digest_time().is_none() {
        return Err(invalid(
            "deadlines.digest_at",
            format!("`{}` is not a time of day (write HH:MM, e.g. 08:00)", deadlines.digest_at),
        ));
    }
    if deadlines.remind_before > 30 {
        return Err(invalid("deadlines.remind_before", "must be 0-30 business days"));
    }
    if deadlines.stale_after == 0 || deadlines.stale_after > 90 {
        return Err(invalid("deadlines.stale_after", "must be 1-90 business days"));
    }
    let outbox = &raw.outbox;
    if outbox.retry_base.is_zero() {
        return Err(invalid("outbox.retry_base", "must be more than 0s"));
    }
    if outbox.retry_max < outbox.retry_base {
        return Err(invalid("outbox.retry_max", "must be at least outbox.retry_base"));
    }
    if outbox.batch == 0 {
        return Err(invalid("outbox.batch", "must be at least 1"));
    }
    if outbox.auto_limit == 0 {
        return Err(invalid("outbox.auto_limit", "must be at least 1 (a note must be possible)"));
    }
    if outbox.question_limit == 0 {
        return Err(invalid("outbox.question_limit", "must be at least 1 (an acknowledgement must be possible)"));
    }
    Ok(())
}
