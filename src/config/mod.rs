//! Typed settings: `config/intake311.toml` (or `--config` / `INTAKE311_CONFIG`), overridden key by
//! key by `INTAKE311__SECTION__KEY` environment variables, then validated.
//!
//! Owns: the shape of every setting, its default, and the precise error for a wrong one (which
//! key, and why). Secrets (passwords) may come from the file, from a named environment variable
//! or from a file path; they are held in [`Secret`], whose `Debug` never shows the value.
//! Talks to: nothing but the file system and the environment.
//!
//! The sections are in [`sections`], passwords in [`secret`], the checks in [`validate`].

mod secret;
mod sections;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use secret::resolve_secret;
pub use secret::{Secret, SecretSource};
pub use sections::{
    DatabaseSection, DeadlinesSection, ImapSection, IntakeSection, OutboxSection, ReplyToClosed, SmtpSection, TlsMode,
    Verification, parse_timezone,
};
use validate::validate;

/// Environment variable naming the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "INTAKE311_CONFIG";
/// Prefix of per-key overrides: `INTAKE311__IMAP__PORT=1143` sets `imap.port`.
pub const OVERRIDE_PREFIX: &str = "INTAKE311__";
/// How long after the last message the poller keeps looking with NOOP every `imap.burst_check`
/// before it goes back to plain IDLE.
pub const BURST_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// A wrong setting: which key, and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("config: {0}")]
    Parse(String),
    #[error("config key `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key, reason: reason.into() }
}

/// The whole file, as written, before secrets are resolved.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub database: DatabaseSection,
    pub imap: ImapSection,
    pub smtp: SmtpSection,
    pub intake: IntakeSection,
    pub outbox: OutboxSection,
    pub deadlines: DeadlinesSection,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            database: DatabaseSection {
                url: "sqlite://intake311.db".into(),
                max_connections: 4,
                lease: sections::default_lease(),
            },
            imap: ImapSection {
                host: "127.0.0.1".into(),
                port: 143,
                tls: TlsMode::Starttls,
                ca_file: None,
                user: String::new(),
                secret: SecretSource::default(),
                inbox: "INBOX".into(),
                processed_folder: "Processed".into(),
                quarantine_folder: "Quarantine".into(),
                poll_interval: Duration::from_secs(60),
                idle: true,
                idle_timeout: Duration::from_secs(25 * 60),
                burst_check: Duration::from_millis(50),
                quiet_check: Duration::from_millis(250),
                max_message_bytes: 25 * 1024 * 1024,
                fetch_batch: 200,
                timeout: Duration::from_secs(60),
                stall_warning: Duration::from_secs(600),
            },
            smtp: SmtpSection {
                host: "127.0.0.1".into(),
                port: 587,
                tls: TlsMode::Starttls,
                ca_file: None,
                user: String::new(),
                secret: SecretSource::default(),
                from: String::new(),
                pool_size: 4,
                timeout: Duration::from_secs(30),
                helo_name: String::new(),
            },
            intake: IntakeSection {
                address: String::new(),
                staff_address: String::new(),
                tracking_prefix: "311".into(),
                response_days: 10,
                service_name: "311 for Cities".into(),
                timezone: chrono_tz::UTC,
                templates_dir: None,
                topics: None,
                message_id_domain: String::new(),
                match_subdomains: true,
                followup_note: true,
                copy_cc: true,
                reply_to_closed: ReplyToClosed::Reopen,
                plus_addressing: false,
                verification: Verification::Prefer,
                trusted_authserv_ids: Vec::new(),
                admin_token_ttl: Duration::from_secs(24 * 3600),
            },
            outbox: OutboxSection {
                retry_base: Duration::from_secs(30),
                retry_max: Duration::from_secs(3600),
                idle_interval: Duration::from_secs(30),
                batch: 32,
                auto_limit: 3,
                question_limit: 20,
                auto_window: Duration::from_secs(3600),
                bounce_suppress: Duration::from_secs(7 * 24 * 3600),
            },
            deadlines: DeadlinesSection::default(),
        }
    }
}

/// Validated settings with secrets resolved. Built only by [`Config::load`] / [`Config::from_raw`].
#[derive(Debug, Clone)]
pub struct Config {
    pub raw: RawConfig,
    pub imap_password: Secret,
    pub smtp_password: Secret,
    /// Domain for our Message-IDs.
    pub message_id_domain: String,
    /// Where the config came from, for messages.
    pub source: String,
}

impl std::ops::Deref for Config {
    type Target = RawConfig;
    fn deref(&self) -> &RawConfig {
        &self.raw
    }
}

impl Config {
    /// Reads `path` (or `$INTAKE311_CONFIG`), applies `INTAKE311__…` overrides, validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let env_path = std::env::var_os(CONFIG_ENV).map(PathBuf::from);
        let path = path.map(Path::to_path_buf).or(env_path);
        let mut figment = Figment::from(Serialized::defaults(RawConfig::default()));
        let source = match &path {
            Some(p) => {
                if !p.is_file() {
                    return Err(ConfigError::File {
                        path: p.clone(),
                        reason: "no such file (give --config PATH or set INTAKE311_CONFIG)".into(),
                    });
                }
                figment = figment.merge(Toml::file_exact(p));
                p.display().to_string()
            }
            None => "built-in defaults".to_string(),
        };
        figment = figment.merge(Env::prefixed(OVERRIDE_PREFIX).split("__"));
        let raw: RawConfig = figment.extract().map_err(|e| ConfigError::Parse(describe_figment(e)))?;
        Config::from_raw(raw, source)
    }

    /// Validates an already-built [`RawConfig`] (tests build them directly).
    pub fn from_raw(raw: RawConfig, source: String) -> Result<Config, ConfigError> {
        validate(&raw)?;
        let imap_password = resolve_secret("imap.password", &raw.imap.secret)?;
        let smtp_password = resolve_secret("smtp.password", &raw.smtp.secret)?;
        if imap_password.is_empty() {
            return Err(invalid(
                "imap.password",
                "missing: set imap.password, imap.password_env or imap.password_file",
            ));
        }
        if !raw.smtp.user.is_empty() && smtp_password.is_empty() {
            return Err(invalid(
                "smtp.password",
                "smtp.user is set but no password: set smtp.password, smtp.password_env or smtp.password_file",
            ));
        }
        let message_id_domain = if raw.intake.message_id_domain.is_empty() {
            domain_of(&raw.intake.address).unwrap_or("intake311.invalid").to_string()
        } else {
            raw.intake.message_id_domain.clone()
        };
        Ok(Config { raw, imap_password, smtp_password, message_id_domain, source })
    }
}

/// figment's messages say `for key "default.imap.port"`; drop the profile name.
fn describe_figment(e: figment::Error) -> String {
    e.into_iter()
        .map(|err| {
            let key = err.path.join(".");
            let mut detail = err.kind.to_string();
            if let Some(meta) = &err.metadata {
                detail = format!("{detail} (from {})", meta.name);
            }
            if key.is_empty() { detail } else { format!("key `{key}`: {detail}") }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The part after the last `@`, if the address has one.
pub fn domain_of(address: &str) -> Option<&str> {
    address.rsplit_once('@').map(|(_, d)| d.trim_end_matches('>')).filter(|d| !d.is_empty())
}

#[cfg(test)]
mod tests;
