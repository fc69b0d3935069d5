//! The raw limit: what the mail servers on this machine do without the daemon; phase 2 of the
//! benchmark ([`limit`]) and its measurements.
//!
//! * IMAP: one bare `UID FETCH 1:* (UID BODY.PEEK[])` of the whole backlog, streamed (bytes are
//!   counted and dropped).
//! * SMTP: acknowledgement-sized (~3 KB) messages pushed into the same Postfix: lettre's stock
//!   pooled transport (no TCP_NODELAY in lettre 0.11.23), lettre over sockets we connected with
//!   TCP_NODELAY (1 and 4 connections), and Postfix's own `smtp-source`.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt as _;
use lettre::address::Envelope;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};

use crate::corpus::{INTAKE, World};
use crate::daemon;
use crate::mailservers::{self, MailServers};
use crate::report::RawFigures;
use crate::{Options, RAW_SINK, progress, queue_limit};

/// Envelope sender of the raw SMTP runs.
pub const RAW_SENDER: &str = "raw-sender@bench.test";
/// Timeout of one SMTP command in the raw runs.
const SMTP_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, serde::Serialize)]
pub struct FetchFigures {
    pub messages: u64,
    pub bytes: u64,
    /// SELECT of the inbox (the first one after the fill also indexes the new mail).
    pub select_seconds: f64,
    /// The UID FETCH alone, from command to the last byte.
    pub fetch_seconds: f64,
    pub messages_per_second: f64,
    pub megabytes_per_second: f64,
}

/// SELECTs `user`'s INBOX and streams `UID FETCH 1:* (UID BODY.PEEK[])`; nothing is kept.
pub async fn imap_fetch_all(servers: &MailServers, user: &str) -> Result<FetchFigures> {
    let mut session = mailservers::imap_login(servers, user).await?;
    let t0 = Instant::now();
    let mailbox = session.select("INBOX").await.context("SELECT INBOX")?;
    let select_seconds = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let (mut messages, mut bytes) = (0u64, 0u64);
    {
        let mut stream = session.uid_fetch("1:*", "(UID BODY.PEEK[])").await.context("UID FETCH 1:*")?;
        while let Some(item) = stream.next().await {
            let fetch = item.context("UID FETCH response")?;
            if let Some(body) = fetch.body() {
                messages += 1;
                bytes += body.len() as u64;
            }
        }
    }
    let fetch_seconds = t1.elapsed().as_secs_f64();
    let _ = session.logout().await;
    if u64::from(mailbox.exists) != messages {
        bail!("INBOX of {user} holds {} messages but UID FETCH returned {messages}", mailbox.exists);
    }
    Ok(FetchFigures {
        messages,
        bytes,
        select_seconds,
        fetch_seconds,
        messages_per_second: rate(messages, fetch_seconds),
        megabytes_per_second: bytes as f64 / 1e6 / fetch_seconds.max(1e-9),
    })
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SmtpFigure {
    /// Short name, e.g. "lettre nodelay x4".
    pub method: String,
    pub connections: u32,
    pub messages: u64,
    pub seconds: f64,
    pub messages_per_second: f64,
    /// Whether this run counts for the raw SMTP limit (the stock lettre run does not).
    pub counts_for_limit: bool,
    /// After the last message was accepted, how long Postfix took to deliver the rest to Dovecot.
    pub queue_drain_seconds: f64,
    /// Postfix's and Dovecot's CPU time from the first message until the queue was empty (so
    /// delivery included), per message, in milliseconds.
    pub servers_cpu_ms_per_mail: f64,
}

/// An acknowledgement-sized message (~3 KB) to `to`.
pub fn ack_sized(seq: u64, to: &str) -> Vec<u8> {
    let mut body = String::with_capacity(3000);
    let line = "Thank you for writing to 311 for Cities. Your question has been received and assigned \
                a tracking number; a researcher will reply by the date stated below.";
    while body.len() < 2500 {
        body.push_str(line);
        body.push_str("\r\n\r\n");
    }
    format!(
        "From: 311 for Cities <{RAW_SENDER}>\r\nTo: <{to}>\r\nSubject: [311-2026-{seq:04}] Re: raw SMTP benchmark\r\n\
         Message-ID: <raw.{seq}.{pid}@bench.test>\r\nIn-Reply-To: <q.{seq}@bench.test>\r\nAuto-Submitted: auto-replied\r\n\
         X-Auto-Response-Suppress: All\r\nDate: {date}\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}",
        pid = std::process::id(),
        date = chrono::Utc::now().to_rfc2822(),
    )
    .into_bytes()
}

fn envelope(to: &str) -> Result<Envelope> {
    let from: Address = RAW_SENDER.parse().context("raw sender address")?;
    let to: Address = to.parse().with_context(|| format!("recipient {to:?}"))?;
    Envelope::new(Some(from), vec![to]).context("SMTP envelope")
}

/// (a) lettre 0.11's stock pooled transport, `pool` connections, `count` sends in flight `pool`
/// at a time. lettre 0.11.23 leaves Nagle on, so each message waits for a delayed ACK.
pub async fn lettre_pool_stock(port: u16, count: u64, pool: u32, recipients: &[String]) -> Result<SmtpFigure> {
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(Ipv4Addr::LOCALHOST.to_string())
        .port(port)
        .timeout(Some(SMTP_TIMEOUT))
        .hello_name(ClientId::Domain("bench.test".into()))
        .pool_config(PoolConfig::new().max_size(pool))
        .build();
    let t0 = Instant::now();
    let mut results = futures::stream::iter(0..count)
        .map(|i| {
            let transport = &transport;
            async move {
                let to = &recipients[(i as usize) % recipients.len()];
                let raw = ack_sized(i, to);
                transport
                    .send_raw(&envelope(to)?, &raw)
                    .await
                    .with_context(|| format!("lettre pooled send #{i} to {to}"))
            }
        })
        .buffer_unordered(pool as usize);
    while let Some(r) = results.next().await {
        r?;
    }
    let seconds = t0.elapsed().as_secs_f64();
    Ok(SmtpFigure {
        method: format!("lettre pool (stock, no TCP_NODELAY) x{pool}"),
        connections: pool,
        messages: count,
        seconds,
        messages_per_second: rate(count, seconds),
        counts_for_limit: false,
        queue_drain_seconds: 0.0,
        servers_cpu_ms_per_mail: 0.0,
    })
}

/// (b) lettre's `AsyncSmtpConnection` over `connections` sockets we connected with TCP_NODELAY;
/// `count` messages split over them, sent one after the other on each.
pub async fn lettre_nodelay(port: u16, count: u64, connections: u32, recipients: &[String]) -> Result<SmtpFigure> {
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..u64::from(connections) {
        let share = count / u64::from(connections) + u64::from(c < count % u64::from(connections));
        let recipients = recipients.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut conn = connect_nodelay(port).await?;
            for k in 0..share {
                let i = c + k * u64::from(connections);
                let to = &recipients[(i as usize) % recipients.len()];
                let raw = ack_sized(i, to);
                send_bounded(&mut conn, &envelope(to)?, &raw)
                    .await
                    .with_context(|| format!("nodelay send #{i} to {to}"))?;
            }
            let _ = conn.quit().await;
            Ok::<(), anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await.context("SMTP sender task")??;
    }
    let seconds = t0.elapsed().as_secs_f64();
    Ok(SmtpFigure {
        method: format!("lettre + TCP_NODELAY x{connections}"),
        connections,
        messages: count,
        seconds,
        messages_per_second: rate(count, seconds),
        counts_for_limit: true,
        queue_drain_seconds: 0.0,
        servers_cpu_ms_per_mail: 0.0,
    })
}

/// One lettre SMTP connection over a socket with TCP_NODELAY (plain, no AUTH), connected and
/// greeted within [`SMTP_TIMEOUT`].
pub async fn connect_nodelay(port: u16) -> Result<AsyncSmtpConnection> {
    let connect = async {
        let tcp = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .with_context(|| format!("connecting to SMTP 127.0.0.1:{port}"))?;
        tcp.set_nodelay(true).context("TCP_NODELAY")?;
        AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &ClientId::Domain("bench.test".into()))
            .await
            .context("SMTP greeting/EHLO")
    };
    tokio::time::timeout(SMTP_TIMEOUT, connect)
        .await
        .map_err(|_| anyhow!("SMTP connection to 127.0.0.1:{port} not ready within {SMTP_TIMEOUT:?}"))?
}

/// `conn.send`, bounded by [`SMTP_TIMEOUT`] (a connection made with `connect_with_transport`
/// has no timeout of its own).
pub async fn send_bounded(conn: &mut AsyncSmtpConnection, envelope: &Envelope, raw: &[u8]) -> Result<()> {
    tokio::time::timeout(SMTP_TIMEOUT, conn.send(envelope, raw))
        .await
        .map_err(|_| anyhow!("no answer to the SMTP transaction within {SMTP_TIMEOUT:?}"))?
        .map(|_| ())
        .map_err(|e| anyhow!(e))
}

/// (c) Postfix's `smtp-source`: `count` messages with a 3,000-byte payload over `sessions`
/// parallel sessions, each reusing its connection (`-d`).
pub async fn smtp_source(port: u16, count: u64, sessions: u32, to: &str) -> Result<SmtpFigure> {
    const SMTP_SOURCE: &str = "/usr/sbin/smtp-source";
    let t0 = Instant::now();
    let out = tokio::process::Command::new(SMTP_SOURCE)
        .args(["-4", "-d", "-l", "3000", "-M", "bench.test", "-f", RAW_SENDER, "-t", to])
        .arg("-s")
        .arg(sessions.to_string())
        .arg("-m")
        .arg(count.to_string())
        .arg(format!("127.0.0.1:{port}"))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(600), out)
        .await
        .map_err(|_| anyhow!("{SMTP_SOURCE} did not finish within 10 minutes"))?
        .with_context(|| format!("running {SMTP_SOURCE} (from the postfix package)"))?;
    let seconds = t0.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "{SMTP_SOURCE} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(SmtpFigure {
        method: format!("smtp-source -d -s {sessions}"),
        connections: sessions,
        messages: count,
        seconds,
        messages_per_second: rate(count, seconds),
        counts_for_limit: true,
        queue_drain_seconds: 0.0,
        servers_cpu_ms_per_mail: 0.0,
    })
}

pub fn rate(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 { n as f64 / seconds } else { 0.0 }
}

// ---------------------------------------------------------------------------------------------
// Phase 2: the raw limit
// ---------------------------------------------------------------------------------------------

pub async fn limit(opts: &Options, servers: &MailServers, world: &World) -> Result<RawFigures> {
    progress("raw: UID FETCH of the backlog");
    let fetch = tokio::time::timeout(Duration::from_secs(600), imap_fetch_all(servers, INTAKE))
        .await
        .map_err(|_| anyhow!("the raw UID FETCH did not finish within 10 minutes"))??;
    let recipients: Vec<String> = world.officials().map(|o| o.email.clone()).collect();
    let port = servers.smtp_port;
    let n = opts.n;
    let qlimit = queue_limit(n);
    let mut smtp = Vec::new();

    let stock = n.min(opts.stock_cap);
    progress(format!("raw: {stock} messages with lettre's stock pool (no TCP_NODELAY; slow by design)"));
    let since = daemon::ServerCpu::now(servers);
    smtp.push(lettre_pool_stock(port, stock, 4, &recipients).await?);
    drained(&mut smtp, servers, qlimit, since).await?;
    for conns in [1, 4] {
        progress(format!("raw: {n} messages with lettre + TCP_NODELAY over {conns} connection(s)"));
        let since = daemon::ServerCpu::now(servers);
        smtp.push(lettre_nodelay(port, n, conns, &recipients).await?);
        drained(&mut smtp, servers, qlimit, since).await?;
    }
    for sessions in [1, 4] {
        progress(format!("raw: {n} messages with smtp-source over {sessions} session(s)"));
        let since = daemon::ServerCpu::now(servers);
        smtp.push(smtp_source(port, n, sessions, RAW_SINK).await?);
        drained(&mut smtp, servers, qlimit, since).await?;
    }
    let smtp_limit = smtp.iter().filter(|s| s.counts_for_limit).map(|s| s.messages_per_second).fold(0.0, f64::max);
    let (limit, by) = if fetch.messages_per_second < smtp_limit {
        (fetch.messages_per_second, "IMAP fetch")
    } else {
        (smtp_limit, "SMTP")
    };
    Ok(RawFigures {
        imap_fetch: Some(fetch),
        smtp,
        smtp_limit_per_second: smtp_limit,
        limit_per_second: limit,
        limited_by: by.into(),
    })
}

/// Waits until Postfix has delivered everything, and notes on the last run how long that took
/// and what the mail servers' processes used from `since` (its start) until then.
async fn drained(
    smtp: &mut [SmtpFigure],
    servers: &MailServers,
    limit: Duration,
    since: daemon::ServerCpu,
) -> Result<()> {
    let waited = servers.wait_queue_empty(limit).await?;
    let used = since.until(daemon::ServerCpu::now(servers));
    if let Some(last) = smtp.last_mut() {
        last.queue_drain_seconds = waited;
        last.servers_cpu_ms_per_mail = (used.postfix + used.dovecot) * 1000.0 / last.messages.max(1) as f64;
    }
    Ok(())
}
