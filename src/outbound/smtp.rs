//! SMTP submission: a small pool of lettre connections on sockets we open ourselves, with
//! TCP_NODELAY set.
//!
//! Why not lettre's own pooled transport: lettre 0.11.23 (the newest release) never sets
//! TCP_NODELAY, so the last small write of every message (the `.` that ends DATA, and each
//! command) waits for the server's delayed ACK, about 40 ms on Linux: some 22 messages per second
//! per connection, whatever the server could take. lettre does let us hand it a connected stream
//! ([`AsyncSmtpConnection::connect_with_transport`]), so we connect (and, for implicit TLS, wrap
//! in rustls) ourselves, and let lettre speak the protocol: EHLO, STARTTLS, AUTH, MAIL/RCPT/DATA.
//!
//! Owns: connections to `[smtp]`, at most `smtp.pool_size` at once, idle ones kept for reuse
//! (checked with NOOP after a quiet spell, dropped after a minute). A connection that failed is
//! never reused. Talks to: the SMTP server only.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::config::{Config, TlsMode};
use crate::metrics::{self, Stage};
use crate::tls::MaybeTls;

/// Idle connections older than this are closed rather than reused.
const IDLE_MAX: Duration = Duration::from_secs(60);
/// Idle connections quieter than this are checked with NOOP before reuse.
const IDLE_CHECK: Duration = Duration::from_secs(5);

impl AsyncTokioStream for MaybeTls {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.tcp().peer_addr()
    }
}

/// Why a message was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection could be made (TCP, TLS, greeting, EHLO, AUTH): always worth a retry later.
    #[error("{0}")]
    Connect(String),
    /// The server answered with an error, or the connection broke while sending.
    #[error("{}", describe(.0))]
    Smtp(lettre::transport::smtp::Error),
    /// The whole exchange took longer than its limit.
    #[error("no answer from the SMTP server within {0:?}")]
    Timeout(Duration),
}

impl SendError {
    /// A 5xx answer: the server refused this message (retrying the same bytes will not help).
    pub fn is_permanent(&self) -> bool {
        matches!(self, SendError::Smtp(e) if e.is_permanent())
    }
}

/// The error with its whole source chain (lettre hides the OS error in `source()`).
pub fn describe(e: &lettre::transport::smtp::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

struct Idle {
    conn: AsyncSmtpConnection,
    since: Instant,
}

/// The SMTP client the outbox worker (and `check`) use.
pub struct Smtp {
    host: String,
    port: u16,
    tls: TlsMode,
    ca_file: Option<std::path::PathBuf>,
    starttls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    hello: ClientId,
    timeout: Duration,
    pool_size: usize,
    idle: Mutex<Vec<Idle>>,
    permits: Semaphore,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp").field("host", &self.host).field("port", &self.port).field("tls", &self.tls).finish()
    }
}

impl Smtp {
    /// Reads `[smtp]`; connects lazily.
    pub fn new(cfg: &Config) -> anyhow::Result<Smtp> {
        let smtp = &cfg.smtp;
        let starttls = if smtp.tls == TlsMode::Starttls {
            let mut params = TlsParameters::builder(smtp.host.clone());
            if let Some(ca) = &smtp.ca_file {
                let pem = std::fs::read(ca).with_context(|| format!("smtp.ca_file {}", ca.display()))?;
                let cert = Certificate::from_pem(&pem).with_context(|| format!("smtp.ca_file {}", ca.display()))?;
                params = params.add_root_certificate(cert);
            }
            Some(params.build_rustls().context("smtp TLS parameters")?)
        } else {
            None
        };
        if smtp.tls == TlsMode::Implicit {
            // Fail at start, not at the first send, when the CA file is unusable.
            crate::tls::client_config(smtp.ca_file.as_deref()).context("smtp.ca_file")?;
        }
        let credentials = (!smtp.user.is_empty())
            .then(|| Credentials::new(smtp.user.clone(), cfg.smtp_password.expose().to_string()));
        let hello =
            if smtp.helo_name.is_empty() { ClientId::default() } else { ClientId::Domain(smtp.helo_name.clone()) };
        let pool_size = usize::try_from(smtp.pool_size).unwrap_or(1).max(1);
        Ok(Smtp {
            host: smtp.host.clone(),
            port: smtp.port,
            tls: smtp.tls,
            ca_file: smtp.ca_file.clone(),
            starttls,
            credentials,
            hello,
            timeout: smtp.timeout,
            pool_size,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(pool_size),
        })
    }

    /// How many messages can be in flight at once.
    pub fn pool_size(&self) -> usize {
        self.pool_size
    }

    /// The longest one [`Smtp::send`] can take (connect, then MAIL, RCPT, DATA and the body,
    /// each within `smtp.timeout`).
    pub fn send_limit(&self) -> Duration {
        self.timeout.saturating_mul(4)
    }

    /// Submits one message. Waits for a free connection when `pool_size` are busy.
    pub async fn send(&self, envelope: &Envelope, raw: &[u8]) -> Result<(), SendError> {
        let _permit = self.permits.acquire().await.map_err(|_| SendError::Connect("SMTP client closed".into()))?;
        let limit = self.send_limit();
        match tokio::time::timeout(limit, self.send_on_a_connection(envelope, raw)).await {
            Ok(r) => r,
            Err(_) => Err(SendError::Timeout(limit)),
        }
    }

    async fn send_on_a_connection(&self, envelope: &Envelope, raw: &[u8]) -> Result<(), SendError> {
        let mut conn = match self.take_idle().await {
            Some(c) => c,
            None => self.connect().await?,
        };
        let started = Instant::now();
        let result = conn.send(envelope, raw).await;
        metrics::record(Stage::SmtpSend, started.elapsed(), 1);
        match result {
            Ok(_) => {
                self.put_idle(conn);
                Ok(())
            }
            Err(e) => {
                // lettre has already sent QUIT and closed a connection that failed mid-command;
                // after a clean refusal (5xx to RCPT, say) the session is reset for the next mail.
                if !conn.has_broken() {
                    self.put_idle(conn);
                }
                Err(SendError::Smtp(e))
            }
        }
    }

    /// An idle connection that still answers, if there is one.
    async fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop()?;
            let age = idle.since.elapsed();
            let mut conn = idle.conn;
            if age > IDLE_MAX {
                conn.abort().await;
                continue;
            }
            if age > IDLE_CHECK && !conn.test_connected().await {
                conn.abort().await;
                continue;
            }
            return Some(conn);
        }
    }

    fn put_idle(&self, conn: AsyncSmtpConnection) {
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Idle { conn, since: Instant::now() });
    }

    /// A new, ready connection: TCP with TCP_NODELAY, TLS as configured, EHLO, AUTH.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let _t = metrics::timer(Stage::SmtpConnect);
        let addr = format!("{}:{}", self.host, self.port);
        let fail = |what: &str, e: &dyn std::fmt::Display| SendError::Connect(format!("{what} {addr}: {e}"));
        let tcp = match tokio::time::timeout(self.timeout, TcpStream::connect(&addr)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(fail("connecting to", &e)),
            Err(_) => return Err(fail("connecting to", &format!("timed out after {:?}", self.timeout))),
        };
        tcp.set_nodelay(true).map_err(|e| fail("setting TCP_NODELAY on the connection to", &e))?;
        let stream = if self.tls == TlsMode::Implicit {
            crate::tls::wrap(tcp, &self.host, self.ca_file.as_deref())
                .await
                .map_err(|e| fail("TLS with", &format!("{e:#}")))?
        } else {
            MaybeTls::Plain(tcp)
        };
        let setup = async {
            let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello).await?;
            if let Some(params) = &self.starttls {
                conn.starttls(params.clone(), &self.hello).await?;
            }
            if let Some(credentials) = &self.credentials {
                conn.auth(DEFAULT_MECHANISMS, credentials).await?;
            }
            Ok::<_, lettre::transport::smtp::Error>(conn)
        };
        match tokio::time::timeout(self.timeout.saturating_mul(3), setup).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(fail("SMTP session with", &describe(&e))),
            Err(_) => Err(fail("SMTP session with", &format!("no answer within {:?}", self.timeout * 3))),
        }
    }

    /// Connects, greets, secures and authenticates as configured, then says QUIT (for `check`).
    pub async fn test_connection(&self) -> Result<(), SendError> {
        let mut conn = self.connect().await?;
        let _ = conn.quit().await;
        Ok(())
    }

    /// Closes the idle connections politely.
    pub async fn close(&self) {
        let idle: Vec<Idle> = std::mem::take(&mut *self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for mut i in idle {
            let _ = tokio::time::timeout(Duration::from_secs(2), i.conn.quit()).await;
        }
    }
}
