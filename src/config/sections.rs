//! The sections of the config file, one struct each, as written (before validation).
//!
//! Owns: the shape and meaning of every key. Talks to: nothing.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::SecretSource;

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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// `sqlite://PATH` (created if missing), or `postgres://USER@HOST:PORT/DB?sslmode=…`
    /// (also `postgresql://`; the password from the URL or `PGPASSWORD`).
    pub url: String,
    /// Most connections in the pool.
    pub max_connections: u32,
    /// How long a daemon's hold on a mailbox (and its heartbeat) lasts without renewal: a
    /// stand-by daemon takes a dead one's mailbox over within about this time, and frees its
    /// outbox claims.
    #[serde(default = "default_lease", with = "humantime_serde")]
    pub lease: std::time::Duration,
}

pub(super) fn default_lease() -> std::time::Duration {
    std::time::Duration::from_secs(15)
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
    /// While mail is flowing (within [`super::BURST_WINDOW`] of the last message), look for new mail
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
    /// The programme's time zone, an IANA name such as `America/Chicago` (default `UTC`): every
    /// calendar date (the year in a tracking number, eligibility, the due date, the dates mail
    /// and the timeline show) is taken in it.
    #[serde(with = "tz_name")]
    pub timezone: chrono_tz::Tz,
    /// A folder of template overrides: a file there replaces the built-in template of the same
    /// name (`intake311 templates export DIR` writes the built-in set to start from). Unset:
    /// the built-in templates alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates_dir: Option<PathBuf>,
    /// The topics file (`config/topics.toml` is shipped, and is the built-in list when this is
    /// unset): names and keywords; new requests get suggested topics from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topics: Option<PathBuf>,
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
    /// At most this many automatic notes (follow-up notes, too-large notes) to one address per
    /// `auto_window`: what stops a mail loop with a robot we did not recognise.
    pub auto_limit: u32,
    /// At most this many automatic mails of any kind to one address per `auto_window` before even
    /// the acknowledgement of a new question is held (a robot that varies its text); never below
    /// `auto_limit`. The same mail (subject and text) acknowledged within the window is held at once.
    pub question_limit: u32,
    #[serde(with = "humantime_serde")]
    pub auto_window: Duration,
    /// After a hard bounce, no automatic mail goes to that address for this long.
    #[serde(with = "humantime_serde")]
    pub bounce_suppress: Duration,
}

/// `[deadlines]`: the calendar the promised dates are counted in, and the reminders and the
/// daily digest that keep them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadlinesSection {
    /// A holiday file (one `YYYY-MM-DD Name` per line; `config/holidays.us-federal.txt` is
    /// shipped): business days are Monday to Friday in `intake.timezone`, less these. Unset:
    /// weekends only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holidays: Option<PathBuf>,
    /// Remind the assignee this many business days before the due date (0: no early reminder).
    pub remind_before: u32,
    /// The local time (`HH:MM`, in `intake.timezone`) of the daily digest; reminders go out from
    /// then on each business day.
    pub digest_at: String,
    /// A request waiting on the city for more than this many business days is listed as stale.
    pub stale_after: u32,
    /// Whether the daemon sends reminders and the digest itself.
    pub enabled: bool,
}

impl Default for DeadlinesSection {
    fn default() -> Self {
        DeadlinesSection { holidays: None, remind_before: 2, digest_at: "08:00".into(), stale_after: 5, enabled: true }
    }
}

impl DeadlinesSection {
    /// `digest_at` as a time (validated when the config loads).
    pub fn digest_time(&self) -> Option<chrono::NaiveTime> {
        chrono::NaiveTime::parse_from_str(self.digest_at.trim(), "%H:%M").ok()
    }
}

/// `intake.timezone` as written: an IANA zone name, parsed into a [`chrono_tz::Tz`]. A name the
/// time-zone database does not know is refused with the value (figment adds the key).
mod tz_name {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(tz: &chrono_tz::Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tz.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<chrono_tz::Tz, D::Error> {
        let name = String::deserialize(d)?;
        super::parse_timezone(&name).map_err(serde::de::Error::custom)
    }
}

/// Parses an IANA time-zone name (`America/Chicago`, `Europe/Berlin`, `UTC`); the error says
/// what was given and what is expected.
pub fn parse_timezone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.trim().parse::<chrono_tz::Tz>().map_err(|_| {
        format!("`{name}` is not an IANA time zone name (such as `America/Chicago`, `Europe/Berlin` or `UTC`)")
    })
}
