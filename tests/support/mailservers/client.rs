//! Async client helpers for tests: SMTP submission and IMAP login, fetch, append, list, and
//! waiting until a folder holds some messages.
//!
//! Talks to: the servers of one [`MailServers`] over loopback (lettre, async-imap, rustls).

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use super::{MailServers, PASSWORD};
use futures::StreamExt;

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

/// [`imap_append`] into INBOX with an INTERNALDATE (`"23-Dec-2026 10:00:00 -0600"`): the arrival
/// date intake takes a mail's dates from.
pub async fn imap_append_at(servers: &MailServers, user: &str, raw: &[u8], internal_date: &str) -> Result<()> {
    let mut session = imap_login(servers, user).await?;
    let result = session
        .append("INBOX", None, Some(&format!("\"{internal_date}\"")), raw)
        .await
        .with_context(|| format!("APPEND with INTERNALDATE {internal_date:?}"));
    let _ = session.logout().await;
    result.with_context(|| format!("imap_append_at for {user}"))
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

pub(super) async fn fetch_all_in<T>(session: &mut async_imap::Session<T>, folder: &str) -> Result<Vec<Vec<u8>>>
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

pub(super) async fn list_names<T>(session: &mut async_imap::Session<T>, pattern: &str) -> Result<Vec<String>>
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
