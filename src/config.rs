//! Typed settings: `config/intake311.toml` (or `--config` / `INTAKE311_CONFIG`), overridden key by
//! key by `INTAKE311__SECTION__KEY` environment variables, then validated.
//!
//! Owns: the shape of every setting, its default, and the precise error for a wrong one (which
//! key, and why). Secrets (passwords) may come from the file, from a named environment variable
//! or from a file path; they are held in [`Secret`], whose `Debug` never shows the value.
//! Talks to: nothing but the file system and the environment.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

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

/// How a connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain text. Only sensible on loopback.
    None,
    /// Plain connect, then upgrade with STARTTLS; refuses to go on without it.
    Starttls,
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Implicit,
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsMode::None => "none",
            TlsMode::Starttls => "starttls",
            TlsMode::Implicit => "implicit",
        })
    }
}

/// A password or other secret. `Debug` and `Display` print `***`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself; call only where it is handed to a protocol.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where a password comes from, as written in the file: at most one of the three.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// The password itself (fine for tests; prefer the other two in production).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Name of an environment variable holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// Path of a file holding the password (trailing newline ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// `sqlite://PATH` (created if missing). PostgreSQL comes with a later release.
    pub url: String,
    /// Most connections in the pool.
    pub max_connections: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapSection {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// PEM file with extra trusted roots (a private CA or a self-signed server certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    pub user: String,
    #[serde(flatten)]
    pub secret: SecretSource,
    pub inbox: String,
    pub processed_folder: String,
    pub quarantine_folder: String,
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    pub idle: bool,
    /// How long an IDLE may last before it is re-issued (RFC 2177 says under 30 minutes).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// While mail is flowing (within [`BURST_WINDOW`] of the last message), look for new mail
    /// with NOOP this often instead of waiting in IDLE; zero turns it off. Dovecot holds IDLE
    /// notifications for 0.5 s to batch them; a NOOP makes it look at once.
    #[serde(with = "humantime_serde")]
    pub burst_check: Duration,
    /// While the mailbox is quiet, IDLE in slices of this length and check with NOOP after
    /// each, so the first question after a quiet spell does not wait for the server's delayed
    /// push (0.5 s on Dovecot); zero means one long IDLE.
    #[serde(with = "humantime_serde")]
    pub quiet_check: Duration,
    /// Messages over this many bytes are quarantined without being parsed.
    pub max_message_bytes: u64,
    /// How many messages one UID FETCH brings at most.
    pub fetch_batch: u32,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Log a warning when no poll has succeeded for this long (intake has stalled).
    #[serde(with = "humantime_serde")]
    pub stall_warning: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSection {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Empty: no AUTH.
    pub user: String,
    #[serde(flatten)]
    pub secret: SecretSource,
    /// The From of everything we send, e.g. `311 for Cities <intake@311.example.org>`.
    pub from: String,
    /// Most SMTP connections kept open at once.
    pub pool_size: u32,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Name we greet with in EHLO; empty means this host's name.
    pub helo_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeSection {
    /// The public address officials write to.
    pub address: String,
    /// Where staff are told of new requests.
    pub staff_address: String,
    /// Tracking numbers look like `PREFIX-YYYY-NNNN`.
    pub tracking_prefix: String,
    /// The response-time promise, in business days (Monday to Friday).
    pub response_days: u32,
    /// Name of the service, as it signs its mail.
    pub service_name: String,
    /// A folder of template overrides: a file there replaces the built-in template of the same
    /// name (`intake311 templates export DIR` writes the built-in set to start from). Unset:
    /// the built-in templates alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates_dir: Option<PathBuf>,
    /// Domain used in the Message-IDs we create; empty means the domain of `address`.
    pub message_id_domain: String,
    /// Whether a sub-domain of a registered city domain (mail.dayton.gov) matches the city.
    pub match_subdomains: bool,
    /// Send the official a short "added to your request" note when their follow-up joins a request.
    pub followup_note: bool,
    /// Copy whoever the official copied on the question on replies and the response.
    pub copy_cc: bool,
    /// What a reply from the official to a responded or closed request does: `reopen` it, or
    /// start a `new_request` linked to the old one.
    pub reply_to_closed: ReplyToClosed,
    /// Use `intake+TRACKING@domain` as Reply-To on mail to the city (the server must deliver
    /// plus-addresses to the intake mailbox).
    pub plus_addressing: bool,
    /// Whether a city matched by mail domain (or contact) needs the sender verified through the
    /// receiving server's Authentication-Results: `require`, `prefer` or `off`.
    pub verification: Verification,
    /// authserv-ids of the receiving servers whose Authentication-Results are trusted (the
    /// topmost such header is read; anything below it, or from anyone else, is ignored).
    pub trusted_authserv_ids: Vec<String>,
    /// How long an administrator's confirmation token (for `#cities import` by mail) is valid.
    #[serde(with = "humantime_serde")]
    pub admin_token_ttl: Duration,
}

/// See [`IntakeSection::verification`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    /// Unverified mail is never answered as eligible: a neutral acknowledgement, and review.
    Require,
    /// Unverified mail from a known city is answered as eligible, and flagged for review.
    Prefer,
    /// The domain or contact alone decides.
    Off,
}

/// See [`IntakeSection::reply_to_closed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyToClosed {
    Reopen,
    NewRequest,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSection {
    /// First retry delay after a failed send; doubles each attempt (with jitter).
    #[serde(with = "humantime_serde")]
    pub retry_base: Duration,
    /// Longest delay between two attempts.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// How long the worker sleeps when nothing is due and nobody wakes it.
    #[serde(with = "humantime_serde")]
    pub idle_interval: Duration,
    /// How many rows one pass of the worker claims.
    pub batch: u32,
    /// At most this many automatic mails (acknowledgements, notes) to one address per `auto_window`.
    pub auto_limit: u32,
    #[serde(with = "humantime_serde")]
    pub auto_window: Duration,
    /// After a hard bounce, no automatic mail goes to that address for this long.
    #[serde(with = "humantime_serde")]
    pub bounce_suppress: Duration,
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
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            database: DatabaseSection { url: "sqlite://intake311.db".into(), max_connections: 4 },
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
                templates_dir: None,
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
                auto_window: Duration::from_secs(3600),
                bounce_suppress: Duration::from_secs(7 * 24 * 3600),
            },
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

fn resolve_secret(key: &'static str, src: &SecretSource) -> Result<Secret, ConfigError> {
    let given = [src.password.is_some(), src.password_env.is_some(), src.password_file.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(invalid(key, "give only one of password, password_env and password_file"));
    }
    if let Some(p) = &src.password {
        return Ok(Secret::new(p.clone()));
    }
    if let Some(var) = &src.password_env {
        return match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
            Ok(_) => Err(invalid(key, format!("environment variable {var} (from password_env) is empty"))),
            Err(_) => Err(invalid(key, format!("environment variable {var} (from password_env) is not set"))),
        };
    }
    if let Some(path) = &src.password_file {
        return match std::fs::read_to_string(path) {
            Ok(v) => {
                let v = v.trim_end_matches(['\r', '\n']).to_string();
                if v.is_empty() {
                    Err(invalid(key, format!("password_file {} is empty", path.display())))
                } else {
                    Ok(Secret::new(v))
                }
            }
            Err(e) => Err(invalid(key, format!("cannot read password_file {}: {e}", path.display()))),
        };
    }
    Ok(Secret::default())
}

/// The part after the last `@`, if the address has one.
pub fn domain_of(address: &str) -> Option<&str> {
    address.rsplit_once('@').map(|(_, d)| d.trim_end_matches('>')).filter(|d| !d.is_empty())
}

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

fn validate(raw: &RawConfig) -> Result<(), ConfigError> {
    let db = &raw.database;
    if !(db.url.starts_with("sqlite:")) {
        let scheme = db.url.split(':').next().unwrap_or_default();
        return Err(invalid(
            "database.url",
            format!("unsupported scheme `{scheme}`: this build supports sqlite://PATH"),
        ));
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
        return Err(invalid("outbox.auto_limit", "must be at least 1 (an acknowledgement must be possible)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> RawConfig {
        let mut raw = RawConfig::default();
        raw.imap.user = "intake@311.test".into();
        raw.imap.secret.password = Some("pw".into());
        raw.smtp.from = "311 for Cities <intake@311.test>".into();
        raw.intake.address = "intake@311.test".into();
        raw.intake.staff_address = "staff@311.test".into();
        raw
    }

    #[test]
    fn good_config_validates_and_hides_passwords() {
        let cfg = Config::from_raw(good(), "test".into()).expect("valid");
        assert_eq!(cfg.message_id_domain, "311.test");
        assert_eq!(format!("{:?}", cfg.imap_password), "Secret(***)");
        assert!(!format!("{cfg:?}").contains("Secret(pw)"));
    }

    #[test]
    fn wrong_values_name_their_key() {
        type Mutation = fn(&mut RawConfig);
        let cases: Vec<(Mutation, &str)> = vec![
            (|r| r.imap.port = 0, "imap.port"),
            (|r| r.intake.tracking_prefix = "31-1".into(), "intake.tracking_prefix"),
            (|r| r.intake.address = "not an address".into(), "intake.address"),
            (|r| r.smtp.from = String::new(), "smtp.from"),
            (|r| r.imap.secret.password = None, "imap.password"),
            (|r| r.database.url = "mysql://x".into(), "database.url"),
            (|r| r.imap.processed_folder = "INBOX".into(), "imap.processed_folder"),
            (|r| r.imap.ca_file = Some("/nonexistent/ca.pem".into()), "imap.ca_file"),
            (|r| r.imap.burst_check = Duration::from_secs(61), "imap.burst_check"),
            (|r| r.imap.quiet_check = Duration::from_secs(61), "imap.quiet_check"),
            (
                |r| {
                    r.imap.secret.password_env = Some("X".into());
                },
                "imap.password",
            ),
        ];
        for (mutate, key) in cases {
            let mut raw = good();
            mutate(&mut raw);
            let err = Config::from_raw(raw, "test".into()).expect_err(key).to_string();
            assert!(err.contains(&format!("`{key}`")), "{key}: {err}");
        }
    }

    #[test]
    fn password_from_env_and_file() {
        let mut raw = good();
        raw.imap.secret = SecretSource { password_env: Some("INTAKE311_TEST_PW_VAR".into()), ..Default::default() };
        let err = Config::from_raw(raw.clone(), "t".into()).expect_err("unset var");
        assert!(err.to_string().contains("INTAKE311_TEST_PW_VAR"), "{err}");

        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").expect("write");
        raw.imap.secret = SecretSource { password_file: Some(file), ..Default::default() };
        let cfg = Config::from_raw(raw, "t".into()).expect("valid");
        assert_eq!(cfg.imap_password.expose(), "s3cret");
    }

    #[test]
    fn toml_errors_name_key_and_env_overrides_apply() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[imap]\nport = \"abc\"\n").expect("write");
        let err = Config::load(Some(&path)).expect_err("bad port").to_string();
        assert!(err.contains("imap.port"), "{err}");

        std::fs::write(&path, "[imap]\nprot = 1\n").expect("write");
        let err = Config::load(Some(&path)).expect_err("unknown key").to_string();
        assert!(err.contains("prot"), "{err}");

        let missing = Config::load(Some(Path::new("/nonexistent.toml"))).expect_err("missing");
        assert!(missing.to_string().contains("/nonexistent.toml"));
    }
}
