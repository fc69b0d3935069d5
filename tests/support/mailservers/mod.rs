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
//!
//! Files: this one holds [`MailServers`] (start-up, users, logs, teardown); `postfix`, `dovecot`,
//! `client` (the async SMTP/IMAP helpers tests call), `ports`, `cert` and `proc`.
#![allow(dead_code)]

mod cert;
mod client;
mod dovecot;
mod ports;
mod postfix;
mod proc;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

// The public API of the old single file, unchanged: each test binary and bench uses part of it.
#[allow(unused_imports)]
pub use client::*;
#[allow(unused_imports)]
pub use proc::{ProcStat, lookup_user, proc_stat};

use cert::make_certificate;
use dovecot::{DOVECOT, Dovecot};
use ports::{pick_ports, wait_ready};
use postfix::POSTFIX;
use proc::sys;

/// Every test user's password.
pub const PASSWORD: &str = "test-password";

/// How long servers get to come up (or go down) before we give up.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
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
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
        anyhow!("missing {before:?} and tests/support/install.sh was not found beside tests/support/mailservers/")
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
    // This file is tests/support/mailservers/mod.rs; install.sh sits one folder up.
    let here = Path::new(file!());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let here = if here.is_absolute() { here.to_path_buf() } else { manifest.join(here) };
    let mut candidates = Vec::new();
    if let Some(support) = here.parent().and_then(Path::parent) {
        candidates.push(support.join("install.sh"));
    }
    candidates.push(manifest.join("tests/support/install.sh"));
    candidates.into_iter().find(|p| p.is_file())
}

fn in_path(bin: &str) -> bool {
    std::env::var_os("PATH").map(|paths| std::env::split_paths(&paths).any(|d| d.join(bin).is_file())).unwrap_or(false)
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
