//! Private, throw-away Dovecot (IMAP + LMTP + SASL) and Postfix (SMTP) instances on loopback for
//! integration tests.
//!
//! Each [`MailServers`] owns a fresh directory under /tmp holding its configs, certificate, queue,
//! maildirs and logs, listens on its own random high ports on 127.0.0.1, and is torn down (processes
//! killed, directory removed) on drop. Instances are independent, so tests may run in parallel
//! threads and processes.
//!
//! Shape:
//! * Dovecot runs in the foreground (`dovecot -F`) as a child of the test process, in its own process
//!   group. Two instances share one user database: the main one serves IMAP, IMAPS and LMTP; a
//!   small auth-only one serves SMTP AUTH (SASL) for Postfix, so that [`MailServers::stop_imap`]
//!   does not break SMTP (Postfix's smtpd dies when its SASL server is unreachable).
//! * Users live in one small JSON file each (dict passdb/userdb over `fs:posix`), so
//!   [`MailServers::add_user`] takes effect immediately, also while the servers run. A wrong password
//!   fails at once (no failure delay, no per-IP auth penalty).
//! * Postfix accepts mail for every domain (`virtual_mailbox_domains = static:all`) and hands it by
//!   LMTP to Dovecot; nothing can leave the machine (`default_transport = error`). Dovecot refuses
//!   unknown recipients (550 5.1.1), so Postfix mails a real DSN bounce to the sender.
//! * IMAP: hierarchy separator `/`; IDLE, MOVE, UIDPLUS after login; Drafts, Sent, Trash, Junk and
//!   Archive carry their special-use flags once created (none is created automatically). Mail to
//!   `user+tag@domain` is delivered to `user@domain` (Dovecot's default recipient_delimiter).
//! * A small watchdog shell process kills both servers and removes the directory if the test process
//!   dies without running `Drop` (killed, or a `MailServers` kept in a `static`).
//!
//! Needs root (Postfix must be started by root). Linux only. Set `INTAKE311_KEEP_MAILSERVERS=1` to
//! keep the directory after drop, for debugging.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;

/// Every test user's password.
pub const PASSWORD: &str = "test-password";

const DOVECOT: &str = "/usr/sbin/dovecot";
const POSTFIX: &str = "/usr/sbin/postfix";
const POSTQUEUE: &str = "/usr/sbin/postqueue";
/// How long servers get to come up (or go down) before we give up.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Ports are picked from here: below Linux's ephemeral range (32768-60999), so they cannot collide
/// with the local ends of outgoing connections.
const PORT_RANGE: std::ops::Range<u16> = 20000..32700;
/// Lines per main log in [`MailServers::log_tail`].
const LOG_TAIL_LINES: usize = 20;

pub struct MailServers {
    /// Private temp dir holding configs, queues, maildirs, logs (removed on drop).
    pub root: PathBuf,
    /// IMAP, plain, STARTTLS offered.
    pub imap_port: u16,
    /// IMAP, implicit TLS.
    pub imaps_port: u16,
    /// SMTP, plain, STARTTLS and AUTH PLAIN/LOGIN offered (not required from 127.0.0.1).
    pub smtp_port: u16,
    /// SMTP, implicit TLS.
    pub smtps_port: u16,
    /// Dovecot LMTP (Postfix delivers here).
    pub lmtp_port: u16,
    /// Dovecot auth (SASL) listener used by Postfix.
    pub auth_port: u16,
    /// PEM of the self-signed server certificate (CN=localhost, SAN DNS:localhost, IP:127.0.0.1,
    /// CA:FALSE); trust it as an extra root.
    pub ca_file: PathBuf,
    /// Log file of the main Dovecot (IMAP, LMTP).
    pub dovecot_log: PathBuf,
    /// Log file of the auth-only Dovecot (SMTP AUTH).
    pub dovecot_auth_log: PathBuf,
    /// Postfix's log file.
    pub postfix_log: PathBuf,

    imap_dovecot: Dovecot,
    auth_dovecot: Dovecot,
    postfix_conf_dir: PathBuf,
    postfix_queue_dir: PathBuf,
    postfix_stderr: PathBuf,
    users_dir: PathBuf,
    mail_dir: PathBuf,
    watchdog: Mutex<Option<Child>>,
    /// Serialises stop/start of Postfix.
    postfix_lock: Mutex<()>,
    tempdir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for MailServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailServers")
            .field("root", &self.root)
            .field("imap_port", &self.imap_port)
            .field("imaps_port", &self.imaps_port)
            .field("smtp_port", &self.smtp_port)
            .field("smtps_port", &self.smtps_port)
            .field("lmtp_port", &self.lmtp_port)
            .field("auth_port", &self.auth_port)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

impl MailServers {
    /// Runs install.sh when a binary is missing, writes configs under a fresh temp dir, picks free
    /// high loopback ports, makes the certificate with the openssl CLI, starts a private Dovecot
    /// and a private Postfix, and waits until both accept connections.
    pub fn start() -> Result<MailServers> {
        let mut last_err = None;
        for attempt in 1..=3 {
            match Self::start_once() {
                Ok(s) => return Ok(s),
                // Another process grabbed one of our ports between picking and binding: retry.
                Err(e) if format!("{e:#}").contains("Address already in use") && attempt < 3 => {
                    last_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("MailServers::start failed")))
    }

    /// Adds a mailbox user (full address, e.g. "mayor@daytonohio.gov") with password [`PASSWORD`].
    /// Takes effect immediately, also while the servers run. Adding an existing user is a no-op.
    /// Addresses are case-insensitive (Dovecot lower-cases them).
    pub fn add_user(&self, address: &str) -> Result<()> {
        let addr = address.trim().to_ascii_lowercase();
        let (local, domain) =
            addr.rsplit_once('@').ok_or_else(|| anyhow!("add_user({address:?}): not a full address (user@domain)"))?;
        let bad_char = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '/' | '\\' | '"' | ':' | '%' | '@');
        if local.is_empty()
            || domain.is_empty()
            || local.starts_with('.')
            || domain.starts_with('.')
            || local.chars().any(bad_char)
            || domain.chars().any(bad_char)
        {
            bail!("add_user({address:?}): unsupported address for the test harness");
        }
        let home = self.mail_dir.join(domain).join(local);
        let home = home.to_str().ok_or_else(|| anyhow!("non-UTF-8 home path {home:?}"))?;
        // userdb first: once the passdb entry exists the user can log in.
        write_atomic(
            &self.users_dir.join("userdb").join(&addr),
            format!("{{\"home\":\"{}\"}}\n", json_escape(home)).as_bytes(),
        )?;
        write_atomic(
            &self.users_dir.join("passdb").join(&addr),
            format!("{{\"password\":\"{}\",\"nodelay\":\"y\"}}\n", json_escape(PASSWORD)).as_bytes(),
        )?;
        Ok(())
    }

    /// Postfix stops accepting: the whole Postfix process group is killed and both SMTP ports are
    /// closed when this returns. Queued mail stays on disk. No-op when already stopped.
    pub fn stop_smtp(&self) -> Result<()> {
        let _g = lock(&self.postfix_lock);
        self.wait_deliveries_idle();
        self.stop_postfix_locked()
    }

    /// Starts Postfix again on the same ports and queue; waits until both SMTP ports accept.
    /// No-op when already running.
    pub fn start_smtp(&self) -> Result<()> {
        let _g = lock(&self.postfix_lock);
        if self.postfix_pid().is_some() {
            return Ok(());
        }
        // The queue exists already: skip postfix-script's slow integrity checks.
        let _ = fs::write(self.postfix_queue_dir.join("quick-start"), b"");
        self.start_postfix_locked()?;
        wait_ready(&[(self.smtp_port, Some("220")), (self.smtps_port, None)])
            .with_context(|| format!("Postfix did not come back\n{}", self.log_tail()))
    }

    /// Dovecot down: its process group is SIGKILLed and reaped, master.pid removed. The IMAP,
    /// IMAPS and LMTP ports are closed when this returns. No-op when already stopped.
    /// SMTP keeps working (SMTP AUTH is served by a separate auth-only Dovecot); mail that arrives
    /// meanwhile waits in Postfix's queue.
    /// Restarts Dovecot's IMAP advertising exactly `capabilities` (e.g. without MOVE or UIDPLUS),
    /// to test a client's fallbacks.
    pub fn restart_imap_with_capabilities(&self, capabilities: &str) -> Result<()> {
        let mut conf = fs::read_to_string(&self.imap_dovecot.conf).context("reading dovecot.conf")?;
        conf.push_str(&format!("\nprotocol imap {{\n  imap_capability = {capabilities}\n}}\n"));
        write_file(&self.imap_dovecot.conf, conf, 0o644)?;
        self.stop_imap()?;
        self.start_imap()
    }

    pub fn stop_imap(&self) -> Result<()> {
        self.wait_deliveries_idle();
        self.imap_dovecot.stop()
    }

    /// Dovecot back on the same ports with the same mail. Then asks Postfix to retry its deferred
    /// mail at once (best effort), so mail that arrived while Dovecot was down is delivered now.
    pub fn start_imap(&self) -> Result<()> {
        self.imap_dovecot.start(&|| self.log_tail())?;
        let _ = self.flush_queue();
        Ok(())
    }

    /// Asks Postfix to retry all deferred mail now (`postqueue -f`).
    pub fn flush_queue(&self) -> Result<()> {
        let out = Command::new(POSTQUEUE)
            .arg("-c")
            .arg(&self.postfix_conf_dir)
            .arg("-f")
            .env_remove("MAIL_CONFIG")
            .stdin(Stdio::null())
            .output()
            .context("running postqueue -f")?;
        if !out.status.success() {
            bail!("postqueue -f failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }

    /// Messages in Postfix's queue (maildrop, incoming, active, deferred, hold): accepted and
    /// not yet delivered to Dovecot or bounced.
    pub fn queue_len(&self) -> usize {
        fn count(dir: &Path, depth: u32) -> usize {
            let Ok(rd) = fs::read_dir(dir) else { return 0 };
            rd.flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() && depth < 3 => count(&e.path(), depth + 1),
                    Ok(t) if t.is_file() => 1,
                    _ => 0,
                })
                .sum()
        }
        // In the order a message travels, so one moving during the walk is still seen (mostly;
        // `wait_queue_empty` asks for two empty readings in a row).
        ["maildrop", "incoming", "active", "deferred", "hold"]
            .iter()
            .map(|d| count(&self.postfix_queue_dir.join(d), 0))
            .sum()
    }

    /// Waits until Postfix's queue has been empty twice in a row: every message it accepted is
    /// in a Maildir (or bounced). Returns the seconds waited.
    pub async fn wait_queue_empty(&self, limit: Duration) -> Result<f64> {
        let t0 = Instant::now();
        let mut empty_readings = 0;
        loop {
            let n = self.queue_len();
            empty_readings = if n == 0 { empty_readings + 1 } else { 0 };
            if empty_readings >= 2 {
                return Ok(t0.elapsed().as_secs_f64());
            }
            if t0.elapsed() >= limit {
                bail!("Postfix's queue still holds {n} message(s) after {limit:?}\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last lines of both servers' logs (~20 each from Dovecot and Postfix, fewer from the
    /// auth-only Dovecot and from stderr, which only show start-up errors), for test failure
    /// messages.
    pub fn log_tail(&self) -> String {
        let mut s = String::new();
        for (name, path, max_lines) in [
            ("dovecot", &self.dovecot_log, LOG_TAIL_LINES),
            ("dovecot stderr", &self.imap_dovecot.stderr, 10),
            ("dovecot-auth", &self.dovecot_auth_log, 10),
            ("dovecot-auth stderr", &self.auth_dovecot.stderr, 10),
            ("postfix", &self.postfix_log, LOG_TAIL_LINES),
            ("postfix stderr", &self.postfix_stderr, 10),
        ] {
            let text = match fs::read(path) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(_) => continue,
            };
            if text.trim().is_empty() {
                continue;
            }
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(max_lines);
            s.push_str(&format!("--- {name} log ({}) ---\n", path.display()));
            for line in &lines[from..] {
                s.push_str(line);
                s.push('\n');
            }
        }
        if s.is_empty() {
            s.push_str("(mail server logs are empty)\n");
        }
        s
    }

    /// The server certificate as PEM bytes.
    pub fn ca_pem(&self) -> Result<Vec<u8>> {
        fs::read(&self.ca_file).with_context(|| format!("reading {}", self.ca_file.display()))
    }

    /// A rustls client config (ring provider) that trusts only this instance's certificate.
    pub fn rustls_client_config(&self) -> Result<Arc<rustls::ClientConfig>> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.ca_file)
            .with_context(|| format!("reading {}", self.ca_file.display()))?
        {
            roots.add(cert.context("parsing certificate PEM")?).context("adding certificate to root store")?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .context("rustls protocol versions")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }

    /// Path of a user's maildir (it exists once the user got mail or logged in).
    pub fn maildir(&self, address: &str) -> PathBuf {
        let addr = address.trim().to_ascii_lowercase();
        let (local, domain) = addr.rsplit_once('@').unwrap_or((addr.as_str(), ""));
        self.mail_dir.join(domain).join(local).join("Maildir")
    }
}

impl Drop for MailServers {
    fn drop(&mut self) {
        {
            let _g = lock(&self.postfix_lock);
            let _ = self.stop_postfix_locked();
        }
        let _ = self.imap_dovecot.stop();
        let _ = self.auth_dovecot.stop();
        // Tell the watchdog all is done (it then exits without touching anything) and reap it.
        if let Some(mut w) = lock(&self.watchdog).take() {
            let done = w.stdin.as_mut().map(|s| s.write_all(b"done\n"));
            drop(w.stdin.take());
            if matches!(done, Some(Ok(()))) {
                let deadline = Instant::now() + Duration::from_secs(2);
                while matches!(w.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            if matches!(w.try_wait(), Ok(None)) {
                let _ = w.kill();
            }
            let _ = w.wait();
        }
        if let Some(t) = self.tempdir.take() {
            if std::env::var_os("INTAKE311_KEEP_MAILSERVERS").is_some() {
                let kept = t.keep();
                eprintln!("mailservers: kept {}", kept.display());
            } else {
                let _ = t.close();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Async client helpers
// ---------------------------------------------------------------------------------------------

/// Sends `raw` (RFC 5322 bytes) over plain SMTP without AUTH, with the given envelope. An empty
/// `from` sends the null reverse path `<>`.
pub async fn smtp_send(servers: &MailServers, from: &str, to: &[&str], raw: &[u8]) -> Result<()> {
    use lettre::Address;
    use lettre::address::Envelope;
    use lettre::transport::smtp::client::AsyncSmtpConnection;
    use lettre::transport::smtp::extension::ClientId;

    let from_addr = if from.is_empty() {
        None
    } else {
        Some(from.parse::<Address>().with_context(|| format!("invalid envelope sender {from:?}"))?)
    };
    let rcpts = to
        .iter()
        .map(|t| t.parse::<Address>().with_context(|| format!("invalid envelope recipient {t:?}")))
        .collect::<Result<Vec<_>>>()?;
    let envelope = Envelope::new(from_addr, rcpts).context("invalid envelope")?;

    let tcp = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, servers.smtp_port))
        .await
        .with_context(|| format!("connecting to SMTP 127.0.0.1:{}", servers.smtp_port))?;
    // lettre 0.11.23 does not set TCP_NODELAY itself; without it every message waits ~40 ms.
    tcp.set_nodelay(true).context("TCP_NODELAY")?;
    let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &ClientId::Domain("localhost".into()))
        .await
        .context("SMTP greeting/EHLO")?;
    conn.send(&envelope, raw).await.with_context(|| format!("SMTP send from {from:?} to {to:?}"))?;
    let _ = conn.quit().await;
    Ok(())
}

/// Raw bytes (BODY.PEEK[]) of every message in `folder`, in UID order. A missing folder gives an
/// empty list.
pub async fn imap_fetch_all(servers: &MailServers, user: &str, folder: &str) -> Result<Vec<Vec<u8>>> {
    let mut session = imap_login(servers, user).await?;
    let result = fetch_all_in(&mut session, folder).await;
    let _ = session.logout().await;
    result.with_context(|| format!("fetching {user}/{folder}"))
}

/// Polls `folder` every ~50 ms until it holds at least `n` messages, then returns them all (UID
/// order). On timeout: Err saying how many were seen, with the servers' log tail.
pub async fn wait_for_messages(
    servers: &MailServers,
    user: &str,
    folder: &str,
    n: usize,
    timeout: Duration,
) -> Result<Vec<Vec<u8>>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut session: Option<ImapSession> = None;
    let mut seen = 0usize;
    let mut last_err: Option<anyhow::Error> = None;
    loop {
        // Every IMAP step is bounded by the deadline, so a server that hangs cannot stall us.
        if session.is_none() {
            match tokio::time::timeout_at(deadline, imap_login(servers, user)).await {
                Ok(Ok(s)) => session = Some(s),
                Ok(Err(e)) => last_err = Some(e),
                Err(_) => last_err = Some(anyhow!("IMAP login did not finish")),
            }
        }
        if let Some(s) = session.as_mut() {
            match tokio::time::timeout_at(deadline, s.select(folder)).await {
                Ok(Ok(mb)) => {
                    seen = mb.exists as usize;
                    if seen >= n {
                        let r = fetch_all_in(s, folder).await;
                        let _ = tokio::time::timeout(Duration::from_secs(2), s.logout()).await;
                        return r.with_context(|| format!("fetching {user}/{folder}"));
                    }
                }
                Ok(Err(async_imap::error::Error::No(_))) => seen = 0, // folder does not exist (yet)
                Ok(Err(e)) => {
                    last_err = Some(anyhow!(e));
                    session = None;
                }
                Err(_) => {
                    last_err = Some(anyhow!("SELECT {folder:?} did not finish"));
                    session = None;
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            if let Some(mut s) = session {
                let _ = tokio::time::timeout(Duration::from_secs(2), s.logout()).await;
            }
            let extra = last_err.map(|e| format!(" (last IMAP error: {e:#})")).unwrap_or_default();
            bail!(
                "timed out after {timeout:?} waiting for {n} message(s) in {user}/{folder}: saw {seen}{extra}\n{}",
                servers.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// APPENDs `raw` to `folder`, creating the folder first if it is missing.
pub async fn imap_append(servers: &MailServers, user: &str, folder: &str, raw: &[u8]) -> Result<()> {
    let mut session = imap_login(servers, user).await?;
    let result = async {
        if !folder.eq_ignore_ascii_case("INBOX") {
            let exists = list_names(&mut session, folder).await?.iter().any(|n| n == folder);
            if !exists {
                session.create(folder).await.with_context(|| format!("CREATE {folder:?}"))?;
            }
        }
        session.append(folder, None, None, raw).await.with_context(|| format!("APPEND to {folder:?}"))?;
        Ok::<(), anyhow::Error>(())
    }
    .await;
    let _ = session.logout().await;
    result.with_context(|| format!("imap_append for {user}"))
}

/// All folder names of `user` (LIST "" "*"), sorted.
pub async fn imap_folders(servers: &MailServers, user: &str) -> Result<Vec<String>> {
    let mut session = imap_login(servers, user).await?;
    let result = list_names(&mut session, "*").await;
    let _ = session.logout().await;
    let mut names = result.with_context(|| format!("listing folders of {user}"))?;
    names.sort();
    Ok(names)
}

pub type ImapSession = async_imap::Session<tokio::net::TcpStream>;
pub type ImapsSession = async_imap::Session<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// Logs `user` in (password [`PASSWORD`]) on the plain IMAP port.
pub async fn imap_login(servers: &MailServers, user: &str) -> Result<ImapSession> {
    let tcp = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, servers.imap_port))
        .await
        .with_context(|| format!("connecting to IMAP 127.0.0.1:{}", servers.imap_port))?;
    tcp.set_nodelay(true).context("TCP_NODELAY")?;
    let mut client = async_imap::Client::new(tcp);
    client
        .read_response()
        .await
        .context("reading IMAP greeting")?
        .ok_or_else(|| anyhow!("IMAP server closed the connection before its greeting"))?;
    client.login(user, PASSWORD).await.map_err(|(e, _)| anyhow!("IMAP LOGIN as {user:?} failed: {e}"))
}

/// Logs `user` in on the implicit-TLS IMAP port, trusting only [`MailServers::ca_file`].
pub async fn imaps_login(servers: &MailServers, user: &str) -> Result<ImapsSession> {
    let config = servers.rustls_client_config()?;
    let tcp = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, servers.imaps_port))
        .await
        .with_context(|| format!("connecting to IMAPS 127.0.0.1:{}", servers.imaps_port))?;
    tcp.set_nodelay(true).context("TCP_NODELAY")?;
    let name = rustls::pki_types::ServerName::try_from("localhost").context("server name")?.to_owned();
    let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.context("TLS handshake with IMAPS")?;
    let mut client = async_imap::Client::new(tls);
    client
        .read_response()
        .await
        .context("reading IMAPS greeting")?
        .ok_or_else(|| anyhow!("IMAPS server closed the connection before its greeting"))?;
    client.login(user, PASSWORD).await.map_err(|(e, _)| anyhow!("IMAPS LOGIN as {user:?} failed: {e}"))
}

async fn fetch_all_in<T>(session: &mut async_imap::Session<T>, folder: &str) -> Result<Vec<Vec<u8>>>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    match session.select(folder).await {
        Ok(mb) if mb.exists == 0 => return Ok(Vec::new()),
        Ok(_) => {}
        Err(async_imap::error::Error::No(_)) => return Ok(Vec::new()), // no such folder
        Err(e) => return Err(anyhow!(e).context(format!("SELECT {folder:?}"))),
    }
    let mut msgs: Vec<(u32, Vec<u8>)> = Vec::new();
    {
        let mut stream = session.uid_fetch("1:*", "(UID BODY.PEEK[])").await.context("UID FETCH")?;
        while let Some(item) = stream.next().await {
            let fetch = item.context("UID FETCH response")?;
            let Some(body) = fetch.body() else { continue };
            msgs.push((fetch.uid.unwrap_or(0), body.to_vec()));
        }
    }
    msgs.sort_by_key(|(uid, _)| *uid);
    Ok(msgs.into_iter().map(|(_, b)| b).collect())
}

async fn list_names<T>(session: &mut async_imap::Session<T>, pattern: &str) -> Result<Vec<String>>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    let quoted = format!("\"{}\"", pattern.replace('\\', "\\\\").replace('"', "\\\""));
    let mut names = Vec::new();
    let mut stream = session.list(Some(""), Some(&quoted)).await.context("LIST")?;
    while let Some(item) = stream.next().await {
        names.push(item.context("LIST response")?.name().to_string());
    }
    Ok(names)
}

// ---------------------------------------------------------------------------------------------
// Start-up
// ---------------------------------------------------------------------------------------------

impl MailServers {
    fn start_once() -> Result<MailServers> {
        if sys::geteuid() != 0 {
            bail!(
                "MailServers needs root: Postfix must be started by root (and Dovecot's \
                 login processes switch users)"
            );
        }
        ensure_installed()?;

        // /tmp rather than $TMPDIR: the postfix and dovecot users must be able to traverse
        // every parent directory (a TMPDIR under /root would not do).
        let tempdir = tempfile::Builder::new()
            .prefix("intake311-mail-")
            .tempdir_in("/tmp")
            .context("creating temp dir in /tmp")?;
        let root = tempdir.path().to_path_buf();
        set_mode(&root, 0o755)?;

        let (dovecot_uid, dovecot_gid) = lookup_user("dovecot")?;
        let (postfix_uid, postfix_gid) = lookup_user("postfix")?;
        lookup_user("dovenull")?;

        let ports = pick_ports(6)?;
        let (imap_port, imaps_port, smtp_port, smtps_port, lmtp_port, auth_port) =
            (ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]);
        let servers = MailServers {
            imap_port,
            imaps_port,
            smtp_port,
            smtps_port,
            lmtp_port,
            auth_port,
            ca_file: root.join("tls/cert.pem"),
            dovecot_log: root.join("dovecot.log"),
            dovecot_auth_log: root.join("dovecot-auth.log"),
            postfix_log: root.join("postfix.log"),
            imap_dovecot: Dovecot::new(
                &root,
                "dovecot",
                vec![(imap_port, Some("* OK")), (imaps_port, None), (lmtp_port, Some("220"))],
            ),
            auth_dovecot: Dovecot::new(&root, "dovecot-auth", vec![(auth_port, None)]),
            postfix_conf_dir: root.join("postfix"),
            postfix_queue_dir: root.join("postfix-queue"),
            postfix_stderr: root.join("postfix.stderr"),
            users_dir: root.join("users"),
            mail_dir: root.join("mail"),
            watchdog: Mutex::new(None),
            postfix_lock: Mutex::new(()),
            tempdir: Some(tempdir),
            root,
        };
        // From here on, an early return drops `servers`, which stops whatever was started.
        let root = servers.root.clone();

        for d in [
            "tls",
            "dovecot",
            "dovecot/state",
            "dovecot-auth",
            "dovecot-auth/state",
            "users",
            "users/passdb",
            "users/userdb",
            "postfix",
            "postfix-queue",
        ] {
            mkdir(&root.join(d), 0o755)?;
        }
        mkdir(&servers.mail_dir, 0o700)?;
        chown(&servers.mail_dir, Some(dovecot_uid), Some(dovecot_gid))
            .with_context(|| format!("chown {}", servers.mail_dir.display()))?;
        let data_dir = root.join("postfix-data");
        mkdir(&data_dir, 0o700)?;
        chown(&data_dir, Some(postfix_uid), Some(postfix_gid))
            .with_context(|| format!("chown {}", data_dir.display()))?;

        let key_file = root.join("tls/key.pem");
        make_certificate(&root.join("tls"), &servers.ca_file, &key_file)?;

        servers.write_dovecot_config(&key_file)?;
        servers.write_postfix_config(&key_file, &data_dir)?;

        servers.spawn_watchdog()?;
        servers.imap_dovecot.spawn()?;
        servers.auth_dovecot.spawn()?;
        {
            // Postfix starts (~0.2-0.3 s) while Dovecot comes up.
            let _g = lock(&servers.postfix_lock);
            servers.start_postfix_locked()?;
        }
        let tail = || servers.log_tail();
        servers.imap_dovecot.wait_ready(&tail)?;
        servers.auth_dovecot.wait_ready(&tail)?;
        wait_ready(&[(servers.smtp_port, Some("220")), (servers.smtps_port, None)])
            .with_context(|| format!("Postfix did not become ready\n{}", servers.log_tail()))?;
        Ok(servers)
    }

    fn write_dovecot_config(&self, key_file: &Path) -> Result<()> {
        let tag = self
            .root
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("mail")
            .trim_start_matches("intake311-mail-")
            .to_string();
        let dict_conf = self.root.join("dovecot/dict-auth.conf");
        write_file(
            &dict_conf,
            format!(
                "# generated by tests/support/mailservers.rs: one JSON file per user\n\
                 uri = fs:posix:prefix={users}/\n\
                 password_key = passdb/%u\n\
                 user_key = userdb/%u\n\
                 iterate_disable = yes\n\
                 default_pass_scheme = PLAIN\n",
                users = self.users_dir.display()
            ),
            0o644,
        )?;
        // Shared by both instances.
        let common = |name: &str, log: &Path| {
            format!(
                r#"# generated by tests/support/mailservers.rs
instance_name = intake311-{tag}-{name}
base_dir = {base_dir}
state_dir = {root}/{name}/state
log_path = {log}
listen = 127.0.0.1
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
auth_verbose = yes
default_internal_user = dovecot
default_login_user = dovenull
mail_uid = dovecot
mail_gid = dovecot
first_valid_uid = 1
mail_location = maildir:~/Maildir

# Users: {users}/{{passdb,userdb}}/<address> (JSON), read on every lookup.
passdb {{
  driver = dict
  args = {dict_conf}
  result_failure = continue-fail
}}
# Never lets anyone in (return-fail); only adds "nodelay" so that a wrong password fails at
# once and counts no per-IP auth penalty (which would slow down later logins by seconds).
passdb {{
  driver = static
  args = nopassword=y nodelay=y
  result_success = return-fail
}}
userdb {{
  driver = dict
  args = {dict_conf}
}}
"#,
                base_dir = self.root.join(name).join("run").display(),
                root = self.root.display(),
                log = log.display(),
                users = self.users_dir.display(),
                dict_conf = dict_conf.display(),
            )
        };
        let main = format!(
            r#"{common}
protocols = imap lmtp
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
mail_fsync = never

namespace inbox {{
  inbox = yes
  separator = /
  mailbox Drafts {{
    special_use = \Drafts
  }}
  mailbox Sent {{
    special_use = \Sent
  }}
  mailbox Trash {{
    special_use = \Trash
  }}
  mailbox Junk {{
    special_use = \Junk
  }}
  mailbox Archive {{
    special_use = \Archive
  }}
}}

service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp}
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@localhost
}}
"#,
            common = common("dovecot", &self.dovecot_log),
            cert = self.ca_file.display(),
            key = key_file.display(),
            imap = self.imap_port,
            imaps = self.imaps_port,
            lmtp = self.lmtp_port,
        );
        write_file(&self.imap_dovecot.conf, main, 0o644)?;
        let auth = format!(
            r#"{common}
# Auth only: SASL for Postfix's SMTP AUTH. Kept apart from the IMAP instance so that
# stop_imap() leaves SMTP working.
protocols = none
ssl = no

service auth {{
  inet_listener sasl {{
    address = 127.0.0.1
    port = {auth}
  }}
}}
"#,
            common = common("dovecot-auth", &self.dovecot_auth_log),
            auth = self.auth_port,
        );
        write_file(&self.auth_dovecot.conf, auth, 0o644)
    }

    fn write_postfix_config(&self, key_file: &Path, data_dir: &Path) -> Result<()> {
        let main_cf = format!(
            r#"# generated by tests/support/mailservers.rs
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
maillog_file = {log}
maillog_file_prefixes = {root}
myhostname = mail.intake311.test
mydomain = intake311.test
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
biff = no
append_dot_mydomain = no

# Every domain is local: all mail goes by LMTP into Dovecot, which refuses unknown users (550),
# so Postfix mails a real DSN bounce back to the sender. Nothing can leave the machine.
virtual_mailbox_domains = static:all
virtual_mailbox_maps =
virtual_alias_domains =
virtual_alias_maps =
virtual_transport = lmtp:inet:127.0.0.1:{lmtp}
smtpd_reject_unlisted_recipient = no
local_recipient_maps =
alias_maps =
alias_database =
local_transport = error:local delivery is disabled
default_transport = error:mail leaving the test machine is disabled
relay_transport = error:mail leaving the test machine is disabled
relayhost =
smtp_dns_support_level = disabled
smtpd_peername_lookup = no

smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:{auth}
smtpd_sasl_security_options = noanonymous
smtpd_tls_security_level = may
smtpd_tls_auth_only = no
smtpd_tls_chain_files = {key}, {cert}
smtp_tls_security_level = none

# Fast, predictable behaviour for tests.
smtpd_error_sleep_time = 0
in_flow_delay = 0
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
maximal_queue_lifetime = 1h
bounce_queue_lifetime = 0
delay_warning_time = 0
notify_classes = resource, software
"#,
            queue = self.postfix_queue_dir.display(),
            data = data_dir.display(),
            log = self.postfix_log.display(),
            root = self.root.display(),
            lmtp = self.lmtp_port,
            auth = self.auth_port,
            key = key_file.display(),
            cert = self.ca_file.display(),
        );
        let master_cf = format!(
            r#"# generated by tests/support/mailservers.rs
127.0.0.1:{smtp} inet n - n - - smtpd
127.0.0.1:{smtps} inet n - n - - smtpd
  -o syslog_name=postfix/smtps
  -o smtpd_tls_wrappermode=yes
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"#,
            smtp = self.smtp_port,
            smtps = self.smtps_port,
        );
        let main_path = self.postfix_conf_dir.join("main.cf");
        let master_path = self.postfix_conf_dir.join("master.cf");
        write_file(&main_path, main_cf, 0o644)?;
        write_file(&master_path, master_cf, 0o644)?;
        // A main.cf younger than a second makes `postfix` stall ~1.5 s: backdate it.
        let past = SystemTime::now() - Duration::from_secs(2);
        for p in [&main_path, &master_path] {
            fs::File::options()
                .write(true)
                .open(p)
                .and_then(|f| f.set_modified(past))
                .with_context(|| format!("backdating {}", p.display()))?;
        }
        Ok(())
    }

    /// A shell that cleans up if this process dies without dropping us: it blocks reading its
    /// stdin (a pipe only we hold); "done" means Drop already cleaned up, EOF means we died.
    fn spawn_watchdog(&self) -> Result<()> {
        const SCRIPT: &str = r#"
trap '' INT HUP TERM QUIT PIPE
line=
read -r line
[ "$line" = done ] && exit 0
root=$1
# Twice: a `postfix start` that was under way when we died may start its master a bit later.
for pass in 1 2; do
  for f in "$root/dovecot.pgid" "$root/dovecot-auth.pgid" "$root/postfix-queue/pid/master.pid"; do
    p=
    read -r p < "$f" 2>/dev/null
    case "$p" in ''|0|1|*[!0-9]*) ;; *) kill -s KILL -- -"$p" 2>/dev/null ;; esac
  done
  sleep 0.5
done
rm -rf "$root"
"#;
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("mailservers-watchdog")
            .arg(&self.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("spawning watchdog /bin/sh")?;
        *lock(&self.watchdog) = Some(child);
        Ok(())
    }

    fn start_postfix_locked(&self) -> Result<()> {
        let err = fs::File::create(&self.postfix_stderr)
            .with_context(|| format!("creating {}", self.postfix_stderr.display()))?;
        let out = err.try_clone().context("dup stderr file")?;
        // Output goes to a file, not a pipe: the daemonised master could otherwise keep the pipe
        // open and make us wait for it forever.
        let status = Command::new(POSTFIX)
            .arg("-c")
            .arg(&self.postfix_conf_dir)
            .arg("start")
            .env_remove("MAIL_CONFIG")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0) // a Ctrl-C to the test run must not interrupt it half-way
            .status()
            .with_context(|| format!("running {POSTFIX} start"))?;
        if !status.success() {
            // `postfix` prints nothing unless stderr is a terminal; postconf does report
            // configuration errors on stderr.
            let diag = Command::new("/usr/sbin/postconf")
                .arg("-c")
                .arg(&self.postfix_conf_dir)
                .arg("-n")
                .env_remove("MAIL_CONFIG")
                .stdin(Stdio::null())
                .output()
                .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
                .unwrap_or_default();
            let diag = if diag.is_empty() { String::new() } else { format!(": {diag}") };
            bail!("`postfix start` failed ({status}){diag}\n{}", self.log_tail());
        }
        Ok(())
    }

    /// Waits (at most 2 s) until Postfix has no delivery in progress (its active queue is empty).
    /// Killing either server in the middle of an LMTP delivery can leave a message saved by
    /// Dovecot that Postfix delivers again later ("message may be sent more than once"), which
    /// would surprise tests that count messages.
    fn wait_deliveries_idle(&self) {
        if self.postfix_pid().is_none() {
            return; // nothing delivers; the active queue may hold leftovers of a killed Postfix
        }
        let active = self.postfix_queue_dir.join("active");
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            let busy = fs::read_dir(&active).map(|d| d.flatten().next().is_some()).unwrap_or(false);
            if !busy {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The master processes of this run's Dovecot instances (IMAP, auth), from their pgid files:
    /// with [`MailServers::postfix_pid`], what the benchmark measures the servers' CPU under.
    pub fn dovecot_pids(&self) -> [Option<i32>; 2] {
        [self.imap_dovecot.pid(), self.auth_dovecot.pid()]
    }

    /// Postfix master's pid, if it is running (pid file present and the process alive).
    pub fn postfix_pid(&self) -> Option<i32> {
        let text = fs::read_to_string(self.postfix_queue_dir.join("pid/master.pid")).ok()?;
        let pid: i32 = text.trim().parse().ok().filter(|p| *p > 1)?;
        match proc_stat(pid) {
            Some(st) if st.state != 'Z' && st.comm == "master" => Some(pid),
            _ => None,
        }
    }

    fn stop_postfix_locked(&self) -> Result<()> {
        let pid_file = self.postfix_queue_dir.join("pid/master.pid");
        if let Some(pid) = self.postfix_pid() {
            // master runs in its own session/process group (pgid == pid); kill all of it at once.
            sys::kill_group(pid);
            let deadline = Instant::now() + READY_TIMEOUT;
            while group_alive(pid) {
                if Instant::now() >= deadline {
                    bail!("Postfix processes (group {pid}) did not die");
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let _ = fs::remove_file(&pid_file);
        wait_closed(&[self.smtp_port, self.smtps_port])
    }
}

fn wait_ready(ports: &[(u16, Option<&str>)]) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut pending = ports.to_vec();
    let mut last = String::new();
    loop {
        pending.retain(|(port, greeting)| match probe(*port, *greeting) {
            Ok(()) => false,
            Err(e) => {
                last = format!("{e:#}");
                true
            }
        });
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "port(s) {:?} not ready within {READY_TIMEOUT:?}: {last}",
                pending.iter().map(|p| p.0).collect::<Vec<_>>()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn wait_closed(ports: &[u16]) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let open: Vec<u16> = ports
            .iter()
            .copied()
            .filter(|p| {
                TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, *p)), Duration::from_millis(200))
                    .is_ok()
            })
            .collect();
        if open.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("port(s) {open:?} still accept connections after stopping the server");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// One `dovecot -F` instance: a child of this process, leader of its own process group.
struct Dovecot {
    name: &'static str,
    conf: PathBuf,
    base_dir: PathBuf,
    pgid_file: PathBuf,
    stderr: PathBuf,
    /// Ports that must accept connections (and, if given, greet with this prefix) once it is up.
    ports: Vec<(u16, Option<&'static str>)>,
    child: Mutex<Option<Child>>,
}

impl Dovecot {
    fn new(root: &Path, name: &'static str, ports: Vec<(u16, Option<&'static str>)>) -> Dovecot {
        Dovecot {
            name,
            conf: root.join(name).join("dovecot.conf"),
            base_dir: root.join(name).join("run"),
            pgid_file: root.join(format!("{name}.pgid")),
            stderr: root.join(format!("{name}.stderr")),
            ports,
            child: Mutex::new(None),
        }
    }

    /// Its master's pid (which leads its process group), from the pgid file written at spawn
    /// and removed at stop.
    fn pid(&self) -> Option<i32> {
        fs::read_to_string(&self.pgid_file).ok()?.trim().parse().ok()
    }

    /// Starts it unless it is running, and waits until its ports accept connections.
    fn start(&self, log_tail: &dyn Fn() -> String) -> Result<()> {
        {
            let mut guard = lock(&self.child);
            if let Some(child) = guard.as_mut() {
                if matches!(child.try_wait(), Ok(None)) {
                    return Ok(());
                }
                // It died on its own; clean up before restarting.
                self.stop_locked(&mut guard)?;
            }
            self.spawn_locked(&mut guard)?;
        }
        self.wait_ready(log_tail)
    }

    fn spawn(&self) -> Result<()> {
        let mut guard = lock(&self.child);
        self.spawn_locked(&mut guard)
    }

    fn spawn_locked(&self, guard: &mut MutexGuard<'_, Option<Child>>) -> Result<()> {
        // A master.pid left by an earlier run makes dovecot refuse to start (gotcha 6).
        let _ = fs::remove_file(self.base_dir.join("master.pid"));
        let err = fs::File::options()
            .create(true)
            .append(true)
            .open(&self.stderr)
            .with_context(|| format!("opening {}", self.stderr.display()))?;
        let out = err.try_clone().context("dup stderr file")?;
        let child = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .with_context(|| format!("spawning {DOVECOT} ({})", self.name))?;
        let pid = child.id();
        **guard = Some(child);
        fs::write(&self.pgid_file, format!("{pid}\n"))
            .with_context(|| format!("writing {}", self.pgid_file.display()))?;
        Ok(())
    }

    fn wait_ready(&self, log_tail: &dyn Fn() -> String) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut pending = self.ports.clone();
        loop {
            {
                let mut guard = lock(&self.child);
                match guard.as_mut().map(|c| c.try_wait()) {
                    None => bail!("{} is not running\n{}", self.name, log_tail()),
                    Some(Ok(Some(status))) => {
                        guard.take();
                        let _ = fs::remove_file(&self.pgid_file);
                        bail!("{} exited during start-up ({status})\n{}", self.name, log_tail());
                    }
                    Some(Ok(None)) => {}
                    Some(Err(e)) => bail!("waiting for {}: {e}", self.name),
                }
            }
            pending.retain(|(port, greeting)| probe(*port, *greeting).is_err());
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not accept connections on port(s) {:?} within {READY_TIMEOUT:?}\n{}",
                    self.name,
                    pending.iter().map(|p| p.0).collect::<Vec<_>>(),
                    log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILLs the whole process group, reaps the master, waits until every process of the
    /// group is gone and the ports are closed, and removes master.pid. No-op when stopped.
    fn stop(&self) -> Result<()> {
        let mut guard = lock(&self.child);
        self.stop_locked(&mut guard)
    }

    fn stop_locked(&self, guard: &mut MutexGuard<'_, Option<Child>>) -> Result<()> {
        if let Some(mut child) = guard.take() {
            let pid = child.id() as i32;
            if matches!(child.try_wait(), Ok(None)) {
                sys::kill_group(pid); // the whole process group: master and children
            }
            let _ = child.kill();
            let _ = child.wait();
            let deadline = Instant::now() + READY_TIMEOUT;
            while group_alive(pid) {
                if Instant::now() >= deadline {
                    bail!("{} processes (group {pid}) did not die", self.name);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let _ = fs::remove_file(&self.pgid_file);
        let _ = fs::remove_file(self.base_dir.join("master.pid"));
        wait_closed(&self.ports.iter().map(|p| p.0).collect::<Vec<_>>())
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

mod sys {
    // Plain libc calls (std links libc anyway); both are safe to call with any argument.
    // kill(2) directly, never the `kill` command: procps-ng 4's /usr/bin/kill turns
    // `kill -9 -1234` into kill(-1, SIGKILL), i.e. every process on the machine.
    unsafe extern "C" {
        safe fn kill(pid: i32, sig: i32) -> i32;
        pub safe fn geteuid() -> u32;
    }
    const SIGKILL: i32 = 9;

    /// SIGKILLs process group `pgid` and its leader. Refuses 0 and 1 (which would mean "my own
    /// group" and "every process").
    pub fn kill_group(pgid: i32) {
        if pgid > 1 {
            kill(-pgid, SIGKILL);
            kill(pgid, SIGKILL);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Connects to 127.0.0.1:port; with `greeting`, also reads the first line and checks its prefix.
fn probe(port: u16, greeting: Option<&str>) -> Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
        .with_context(|| format!("connect 127.0.0.1:{port}"))?;
    let Some(prefix) = greeting else {
        return Ok(());
    };
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    reader.read_line(&mut line).with_context(|| format!("reading greeting on port {port}"))?;
    let bye: &[u8] = if prefix.starts_with('*') { b"a LOGOUT\r\n" } else { b"QUIT\r\n" };
    let _ = (&stream).write_all(bye);
    if !line.starts_with(prefix) {
        bail!("unexpected greeting on port {port}: {:?}", line.trim_end());
    }
    Ok(())
}

/// Ports handed out by this process, so parallel instances never share one.
static USED_PORTS: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

fn pick_ports(n: usize) -> Result<Vec<u16>> {
    let mut used = lock(&USED_PORTS);
    let mut picked = Vec::with_capacity(n);
    let mut held = Vec::with_capacity(n); // keep them bound until all are picked
    for _ in 0..10_000 {
        if picked.len() == n {
            break;
        }
        let port: u16 = rand::random_range(PORT_RANGE);
        if used.contains(&port) || picked.contains(&port) {
            continue;
        }
        if let Ok(l) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            held.push(l);
            picked.push(port);
        }
    }
    if picked.len() != n {
        bail!("could not find {n} free loopback ports in {PORT_RANGE:?}");
    }
    used.extend(picked.iter().copied());
    Ok(picked)
}

fn ensure_installed() -> Result<()> {
    fn missing() -> Vec<&'static str> {
        let mut m = Vec::new();
        for p in [DOVECOT, "/usr/lib/dovecot/imap", "/usr/lib/dovecot/imap-login", "/usr/lib/dovecot/lmtp", POSTFIX] {
            if !Path::new(p).exists() {
                m.push(p);
            }
        }
        if !in_path("openssl") {
            m.push("openssl");
        }
        m
    }
    let before = missing();
    if before.is_empty() {
        return Ok(());
    }
    let script = install_script().ok_or_else(|| {
        anyhow!("missing {before:?} and tests/support/install.sh was not found next to mailservers.rs")
    })?;
    let status = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() {
        bail!("{} failed ({status}); missing: {before:?}", script.display());
    }
    let after = missing();
    if !after.is_empty() {
        bail!("{} ran but {after:?} are still missing", script.display());
    }
    Ok(())
}

fn install_script() -> Option<PathBuf> {
    let here = Path::new(file!());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut candidates = Vec::new();
    if here.is_absolute() {
        candidates.push(here.with_file_name("install.sh"));
    } else {
        candidates.push(manifest.join(here).with_file_name("install.sh"));
    }
    candidates.push(manifest.join("tests/support/install.sh"));
    candidates.into_iter().find(|p| p.is_file())
}

fn in_path(bin: &str) -> bool {
    std::env::var_os("PATH").map(|paths| std::env::split_paths(&paths).any(|d| d.join(bin).is_file())).unwrap_or(false)
}

fn make_certificate(dir: &Path, cert: &Path, key: &Path) -> Result<()> {
    let cnf = dir.join("openssl.cnf");
    write_file(
        &cnf,
        "[req]\n\
         distinguished_name = dn\n\
         prompt = no\n\
         x509_extensions = ext\n\
         [dn]\n\
         CN = localhost\n\
         [ext]\n\
         basicConstraints = critical,CA:FALSE\n\
         subjectAltName = DNS:localhost,IP:127.0.0.1\n\
         keyUsage = critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage = serverAuth\n\
         subjectKeyIdentifier = hash\n"
            .to_string(),
        0o644,
    )?;
    let out = Command::new("openssl")
        .args(["req", "-x509", "-new", "-nodes", "-days", "3650"])
        .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .arg("-config")
        .arg(&cnf)
        .arg("-keyout")
        .arg(key)
        .arg("-out")
        .arg(cert)
        .env_remove("OPENSSL_CONF")
        .stdin(Stdio::null())
        .output()
        .context("running openssl req")?;
    if !out.status.success() {
        bail!(
            "openssl req failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    set_mode(key, 0o600)?;
    set_mode(cert, 0o644)?;
    Ok(())
}

/// (uid, gid) of a system user, from /etc/passwd.
pub fn lookup_user(name: &str) -> Result<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 4 && f[0] == name {
            let uid = f[2].parse().with_context(|| format!("bad uid for {name}"))?;
            let gid = f[3].parse().with_context(|| format!("bad gid for {name}"))?;
            return Ok((uid, gid));
        }
    }
    bail!("system user {name:?} not found in /etc/passwd (is the Debian dovecot/postfix package installed?)")
}

/// What `/proc/PID/stat` says about a process (see proc(5)).
pub struct ProcStat {
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    /// User + system CPU time of the process itself (all its threads), in seconds.
    pub cpu_seconds: f64,
    /// User + system CPU time of its children that exited and that it waited for, in seconds.
    pub reaped_cpu_seconds: f64,
}

pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_stat(s: &str) -> Option<ProcStat> {
    let open = s.find('(')?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let close = s.rfind(')')?;
    let comm = s.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = s.get(close + 1..)?.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Clock ticks; USER_HZ is 100 on Linux.
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).map(|t| t / 100.0);
    Some(ProcStat {
        comm,
        state,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        cpu_seconds: ticks(11)? + ticks(12)?,
        reaped_cpu_seconds: ticks(13)? + ticks(14)?,
    })
}

/// Whether any live (non-zombie) process is in process group `pgid`.
fn group_alive(pgid: i32) -> bool {
    let Ok(dir) = fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            return false;
        };
        matches!(proc_stat(pid), Some(st) if st.pgrp == pgid && st.state != 'Z' && st.state != 'X')
    })
}

fn mkdir(p: &Path, mode: u32) -> Result<()> {
    fs::create_dir_all(p).with_context(|| format!("mkdir {}", p.display()))?;
    set_mode(p, mode)
}

fn set_mode(p: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).with_context(|| format!("chmod {mode:o} {}", p.display()))
}

fn write_file(p: &Path, content: String, mode: u32) -> Result<()> {
    fs::write(p, content).with_context(|| format!("writing {}", p.display()))?;
    set_mode(p, mode)
}

fn write_atomic(p: &Path, content: &[u8]) -> Result<()> {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = p.with_file_name(format!(".{name}.{}.tmp", rand::random::<u32>()));
    fs::write(&tmp, content).with_context(|| format!("writing {}", tmp.display()))?;
    set_mode(&tmp, 0o644)?;
    fs::rename(&tmp, p).with_context(|| format!("renaming {} to {}", tmp.display(), p.display()))
}

fn json_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o
}
