//! Shared helpers for the integration tests: real Dovecot and Postfix on loopback
//! ([`mailservers`]), a config written for them, the `intake311` binary run as a child process,
//! and direct access to the SQLite database the daemon writes.
#![allow(dead_code)]

pub mod corpora;
pub mod db;
pub mod fleet;
pub mod mailservers;
pub mod postgres;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use intake311::store::Store;
#[allow(unused_imports)]
pub use mailservers::{MailServers, PASSWORD, imap_append, imap_fetch_all, smtp_send, wait_for_messages};

pub const INTAKE: &str = "intake@311.test";
pub const STAFF: &str = "staff@311.test";
/// Official of an eligible city (Dayton, OH in config/cities.example.csv).
pub const DAYTON: &str = "mayor@daytonohio.gov";
/// Official of a registered but not eligible city (Springfield, MO).
pub const SPRINGFIELD_MO: &str = "clerk@springfieldmo.gov";
/// Someone whose domain no city has.
pub const UNKNOWN: &str = "pat@gmail.test";

/// How the daemon reaches the servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain IMAP and SMTP, no AUTH.
    Plain,
    /// IMAPS (implicit TLS) and SMTP with STARTTLS and AUTH, both trusting the test CA file.
    Tls,
}

/// The store engine the integration tests run on, from `INTAKE311_TEST_ENGINE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// An SQLite file in the test's temp dir (the default).
    Sqlite,
    /// A fresh database in the process's private cluster ([`postgres::shared`]).
    Postgres,
}

impl Engine {
    pub const ENV: &str = "INTAKE311_TEST_ENGINE";

    /// `None`, empty or `sqlite` → SQLite; `postgres` or `postgresql` → PostgreSQL (any case);
    /// anything else is an error that names the variable.
    pub fn parse(value: Option<&str>) -> Result<Engine, String> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("" | "sqlite") => Ok(Engine::Sqlite),
            Some("postgres" | "postgresql") => Ok(Engine::Postgres),
            Some(_) => Err(format!(
                "{}={:?}: unknown engine (expected `sqlite` or `postgres`)",
                Engine::ENV,
                value.unwrap_or_default()
            )),
        }
    }
}

/// The engine this test run uses: `INTAKE311_TEST_ENGINE` (`sqlite`, the default, or `postgres`).
/// Panics on an unknown value, naming the variable.
pub fn test_engine() -> Engine {
    let value = std::env::var_os(Engine::ENV).map(|v| v.to_string_lossy().into_owned());
    Engine::parse(value.as_deref()).unwrap_or_else(|e| panic!("{e}"))
}

pub struct TestEnv {
    pub servers: MailServers,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    /// The SQLite file (on SQLite; unused on PostgreSQL).
    pub db_path: PathBuf,
    /// `database.url`: the SQLite file, or a fresh database of this process's private
    /// PostgreSQL cluster when `INTAKE311_TEST_ENGINE=postgres`.
    pub db_url: String,
    /// The engine behind `db_url` ([`test_engine`]).
    pub engine: Engine,
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl TestEnv {
    /// Starts the servers, creates the usual mailboxes, writes a config, creates the schema,
    /// imports the example city list. Fails with the reason when the servers cannot be started.
    pub fn new(security: Security) -> anyhow::Result<TestEnv> {
        Self::with_settings(security, "")
    }

    /// As [`TestEnv::new`], with extra `INTAKE311__…`-style settings appended as TOML
    /// (`extra` is inserted into the sections by [`config_text`]).
    pub fn with_settings(security: Security, extra_outbox: &str) -> anyhow::Result<TestEnv> {
        let servers = MailServers::start()?;
        for user in [INTAKE, STAFF, DAYTON, SPRINGFIELD_MO, UNKNOWN] {
            servers.add_user(user)?;
        }
        let dir = tempfile::tempdir()?;
        let db_path = dir.path().join("intake311.db");
        let config_path = dir.path().join("intake311.toml");
        let engine = test_engine();
        let db_url = match engine {
            Engine::Sqlite => format!("sqlite://{}", db_path.display()),
            Engine::Postgres => postgres::shared()?.fresh_database()?,
        };
        let env = TestEnv { servers, dir, config_path, db_path, db_url, engine };
        std::fs::write(&env.config_path, env.config_text(security, extra_outbox))?;
        // Only `migrate` and `run` create or change the schema.
        let out = env.cli(&["migrate"])?;
        anyhow::ensure!(out.status.success(), "migrate failed: {}", String::from_utf8_lossy(&out.stderr));
        let out = env.cli(&["cities", "import", &repo_root().join("config/cities.example.csv").to_string_lossy()])?;
        anyhow::ensure!(out.status.success(), "cities import failed: {}", String::from_utf8_lossy(&out.stderr));
        Ok(env)
    }

    pub fn config_text(&self, security: Security, extra_outbox: &str) -> String {
        let s = &self.servers;
        let ca = s.ca_file.display();
        let (imap_port, imap_tls, imap_ca, smtp_port, smtp_tls, smtp_auth) = match security {
            Security::Plain => (s.imap_port, "none", String::new(), s.smtp_port, "none", String::new()),
            Security::Tls => (
                s.imaps_port,
                "implicit",
                format!("ca_file = \"{ca}\"\n"),
                s.smtp_port,
                "starttls",
                format!("user = \"{INTAKE}\"\npassword = \"{PASSWORD}\"\nca_file = \"{ca}\"\n"),
            ),
        };
        format!(
            r#"[database]
url = "{db}"

[imap]
host = "{host}"
port = {imap_port}
tls = "{imap_tls}"
{imap_ca}user = "{INTAKE}"
password = "{PASSWORD}"
poll_interval = "2s"
timeout = "10s"

[smtp]
host = "{host}"
port = {smtp_port}
tls = "{smtp_tls}"
{smtp_auth}from = "311 for Cities <{INTAKE}>"
timeout = "10s"

[intake]
address = "{INTAKE}"
staff_address = "{STAFF}"

[outbox]
retry_base = "1s"
retry_max = "2s"
auto_limit = 1000
idle_interval = "1s"
{extra_outbox}

[deadlines]
# Off in tests: on a business day after 08:00 the scheduler would add reminders and a digest to
# the staff mailbox. tests/deadlines.rs runs it through `deadlines run --at`.
enabled = false
"#,
            db = self.db_url,
            host = if security == Security::Tls { "localhost" } else { "127.0.0.1" },
        )
    }

    /// Runs `intake311 --config … ARGS` to completion.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<Output> {
        Ok(Command::new(env!("CARGO_BIN_EXE_intake311"))
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .env("INTAKE311_LOG", "warn")
            .output()?)
    }

    /// Starts `intake311 run` as a child process (stopped on drop).
    pub fn daemon(&self) -> anyhow::Result<Daemon> {
        Daemon::start(&self.config_path, &self.dir.path().join(format!("daemon-{}.log", next_id())))
    }

    pub async fn store(&self) -> anyhow::Result<Store> {
        Store::connect(&self.db_url, 2).await
    }

    /// Sends a question from `from` to the intake address by SMTP; returns its Message-ID.
    pub async fn send_question(&self, from: &str, name: &str, subject: &str, body: &str) -> anyhow::Result<String> {
        let id = format!("q{}.{}@{}", next_id(), std::process::id(), from.rsplit('@').next().unwrap_or("x"));
        let raw = question(from, name, subject, body, &id);
        smtp_send(&self.servers, from, &[INTAKE], raw.as_bytes()).await?;
        Ok(id)
    }
}

// --- Both engines (issue 14): the database as rows, config lines, SQLite-only tests. ---

impl Engine {
    /// The engine a `database.url` names: `postgres://` or `postgresql://`, else SQLite.
    pub fn of_url(url: &str) -> Engine {
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase()).unwrap_or_default();
        if scheme == "postgres" || scheme == "postgresql" { Engine::Postgres } else { Engine::Sqlite }
    }
}

/// For a test that only means something on SQLite (it corrupts the file, uses the flock
/// journal, …): true on SQLite; on PostgreSQL prints one `SKIPPED ON POSTGRESQL` line with the
/// reason (never a silent pass) and returns false.
pub fn sqlite_only(test: &str, why: &str) -> bool {
    if test_engine() == Engine::Sqlite {
        return true;
    }
    // Straight to the stderr handle, which libtest does not capture (as corpora.rs does).
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED ON POSTGRESQL: {test}: {why}");
    false
}

impl TestEnv {
    /// The database the daemon writes, for reading (or changing) rows directly on either engine.
    pub async fn db(&self) -> anyhow::Result<db::TestDb> {
        db::TestDb::connect(&self.db_url).await
    }

    /// Adds `line` at the top of `[section]` in the config file (the section must exist).
    pub fn configure(&self, section: &str, line: &str) -> anyhow::Result<()> {
        let config = std::fs::read_to_string(&self.config_path)?;
        let header = format!("[{section}]\n");
        anyhow::ensure!(config.contains(&header), "no [{section}] in {}", self.config_path.display());
        std::fs::write(&self.config_path, config.replacen(&header, &format!("{header}{line}\n"), 1))?;
        Ok(())
    }
}

fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

/// An ordinary question as a mail client writes it.
pub fn question(from: &str, name: &str, subject: &str, body: &str, message_id: &str) -> String {
    format!(
        "From: {name} <{from}>\r\nTo: 311 for Cities <{INTAKE}>\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n\
         Date: Thu, 26 Nov 2026 10:00:00 -0500\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    )
}

/// `intake311 run` as a child process. Dropping it kills it.
pub struct Daemon {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(config: &Path, log: &Path) -> anyhow::Result<Daemon> {
        Self::start_with(config, log, &[])
    }

    /// `intake311 --config CONFIG run RUN_ARGS…`.
    pub fn start_with(config: &Path, log: &Path, run_args: &[&str]) -> anyhow::Result<Daemon> {
        let file = std::fs::File::create(log)?;
        let child = Command::new(env!("CARGO_BIN_EXE_intake311"))
            .arg("--config")
            .arg(config)
            .arg("run")
            .args(run_args)
            .env("INTAKE311_LOG", "info,intake311=debug")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()?;
        Ok(Daemon { child: Some(child), log: log.to_path_buf() })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Whether the process is still alive.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then wait for a clean exit (at most `limit`). Returns the exit status success.
    pub fn terminate(&mut self, limit: Duration) -> anyhow::Result<bool> {
        let Some(mut child) = self.child.take() else { return Ok(true) };
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status.success());
            }
            if start.elapsed() > limit {
                child.kill().ok();
                child.wait().ok();
                anyhow::bail!("daemon did not stop within {limit:?} of SIGTERM; log:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

/// Polls `check` every 50 ms until it returns `Some`, or fails after `limit` with `what`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if start.elapsed() > limit {
            anyhow::bail!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for quiescence, the positive signal to take before asserting that something did NOT
/// happen: no outbox row is pending (everything queued was handed to SMTP or failed), then
/// Postfix's queue is empty (everything handed over is in a Maildir or bounced).
pub async fn wait_quiet(env: &TestEnv, store: &Store, limit: Duration) -> anyhow::Result<()> {
    eventually(limit, "an outbox with nothing pending", || async {
        Ok((store.outbox_stats().await?.pending == 0).then_some(()))
    })
    .await?;
    env.servers.wait_queue_empty(limit).await?;
    Ok(())
}

/// Header value (unfolded) of a raw message, via mail-parser.
pub fn header(raw: &[u8], name: &str) -> Option<String> {
    let msg = mail_parser::MessageParser::default().parse(raw)?;
    msg.header_raw(name).map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Decoded subject and plain-text body of a raw message.
pub fn subject_and_text(raw: &[u8]) -> (String, String) {
    let msg = mail_parser::MessageParser::default().parse(raw);
    match msg {
        Some(m) => {
            (m.subject().unwrap_or_default().to_string(), m.body_text(0).map(|t| t.to_string()).unwrap_or_default())
        }
        None => (String::new(), String::new()),
    }
}

/// Base64 in 76-character lines, for building MIME attachments in tests.
pub fn base64_lines(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for (i, chunk) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push_str("\r\n");
        }
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for j in 0..4 {
            if j <= chunk.len() {
                out.push(T[((n >> (18 - 6 * j)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A mail with one text part and one attachment.
pub fn mail_with_attachment(headers: &str, body: &str, filename: &str, content_type: &str, data: &[u8]) -> String {
    format!(
        "{headers}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b0undary\r\n\r\n\
         --b0undary\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\
         --b0undary\r\nContent-Type: {content_type}; name=\"{filename}\"\r\nContent-Disposition: attachment; filename=\"{filename}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b0undary--\r\n",
        base64_lines(data)
    )
}
