//! IMAP: connect (plain, STARTTLS or implicit TLS via rustls), log in, select, list new UIDs,
//! fetch bodies with their INTERNALDATE in size-bounded batches, move a message (MOVE, or
//! COPY + \Deleted + UID EXPUNGE), and wait for new mail with IDLE.
//!
//! Owns: the protocol, and nothing above it. It talks to the config (server, TLS, folders) and
//! the TLS helper only; what a message becomes is decided in intake, and the poll loop that
//! hands messages there, reconnects and backs off is the daemon's poller. Every network step
//! has a timeout.

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use async_imap::types::UnsolicitedResponse;
use async_imap::{Client, Session};
use chrono::{DateTime, FixedOffset};
use futures::TryStreamExt as _;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::config::{ImapSection, Secret, TlsMode};
pub use crate::tls::MaybeTls as ImapStream;

/// Messages over this size are fetched alone and in pieces of this size
/// ([`ImapConn::fetch_large`]).
pub const LARGE_CHUNK: usize = 1024 * 1024;

/// What SELECT told us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selected {
    pub uidvalidity: u32,
    pub exists: u32,
}

/// A message waiting in the inbox: UID and RFC822.SIZE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    pub uid: u32,
    pub size: u32,
}

impl Waiting {
    /// Over [`LARGE_CHUNK`]: fetched alone, in pieces ([`ImapConn::fetch_large`]).
    pub fn is_large(&self) -> bool {
        self.size as usize > LARGE_CHUNK
    }
}

/// One message as fetched: its UID, its raw bytes and its INTERNALDATE (when the server
/// received it, in the server's offset; `None` when the server sent none or one that does not
/// parse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub uid: u32,
    pub raw: Vec<u8>,
    pub internal_date: Option<DateTime<FixedOffset>>,
}

/// How an IDLE ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The server reported a change (new mail, most likely).
    NewData,
    /// The IDLE timeout passed; re-issue it.
    Timeout,
    /// Shutdown was requested.
    Shutdown,
}

/// A logged-in IMAP session with the capabilities we care about.
pub struct ImapConn {
    session: Session<ImapStream>,
    timeout: Duration,
    pub has_idle: bool,
    pub has_move: bool,
    pub has_uidplus: bool,
}

async fn timed<T, E>(limit: Duration, what: &str, fut: impl Future<Output = Result<T, E>>) -> anyhow::Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(|e| anyhow!(e)).with_context(|| what.to_string()),
        Err(_) => Err(anyhow!("{what}: timed out after {limit:?}")),
    }
}

impl ImapConn {
    /// Connects, secures the connection as configured, logs in and reads the capabilities.
    pub async fn connect(cfg: &ImapSection, password: &Secret) -> anyhow::Result<ImapConn> {
        let addr = format!("{}:{}", cfg.host, cfg.port);
        let tcp = timed(cfg.timeout, &format!("connecting to IMAP server {addr}"), TcpStream::connect(&addr)).await?;
        tcp.set_nodelay(true).ok();
        let stream = match cfg.tls {
            TlsMode::Implicit => crate::tls::wrap(tcp, &cfg.host, cfg.ca_file.as_deref()).await?,
            TlsMode::None | TlsMode::Starttls => ImapStream::Plain(tcp),
        };
        let mut client = Client::new(stream);
        let greeting = timed(cfg.timeout, "reading the IMAP greeting", client.read_response()).await?;
        if greeting.is_none() {
            anyhow::bail!("IMAP server {addr} closed the connection before its greeting");
        }
        if cfg.tls == TlsMode::Starttls {
            timed(cfg.timeout, "IMAP STARTTLS", client.run_command_and_check_ok("STARTTLS", None)).await?;
            let ImapStream::Plain(tcp) = client.into_inner() else {
                anyhow::bail!("STARTTLS on a connection that is already TLS");
            };
            client = Client::new(crate::tls::wrap(tcp, &cfg.host, cfg.ca_file.as_deref()).await?);
        }
        let session = match tokio::time::timeout(cfg.timeout, client.login(&cfg.user, password.expose())).await {
            Ok(Ok(s)) => s,
            Ok(Err((e, _))) => anyhow::bail!("IMAP login as {} refused: {e}", cfg.user),
            Err(_) => anyhow::bail!("IMAP login as {}: timed out after {:?}", cfg.user, cfg.timeout),
        };
        let mut conn = ImapConn { session, timeout: cfg.timeout, has_idle: false, has_move: false, has_uidplus: false };
        let caps = timed(conn.timeout, "IMAP CAPABILITY", conn.session.capabilities()).await?;
        conn.has_idle = caps.has_str("IDLE");
        conn.has_move = caps.has_str("MOVE");
        conn.has_uidplus = caps.has_str("UIDPLUS");
        Ok(conn)
    }

    /// Creates each folder that does not exist yet.
    pub async fn ensure_folders(&mut self, folders: &[&str]) -> anyhow::Result<()> {
        let names: Vec<String> = {
            let stream = timed(self.timeout, "IMAP LIST", self.session.list(Some(""), Some("*"))).await?;
            timed(self.timeout, "IMAP LIST", stream.try_collect::<Vec<_>>())
                .await?
                .iter()
                .map(|n| n.name().to_string())
                .collect()
        };
        for folder in folders {
            if !names.iter().any(|n| n == folder) {
                timed(self.timeout, &format!("creating folder {folder}"), self.session.create(folder)).await?;
                tracing::info!(folder, "created IMAP folder");
            }
        }
        Ok(())
    }

    pub async fn select(&mut self, mailbox: &str) -> anyhow::Result<Selected> {
        let mb = timed(self.timeout, &format!("selecting {mailbox}"), self.session.select(mailbox)).await?;
        let uidvalidity = mb.uid_validity.ok_or_else(|| anyhow!("server sent no UIDVALIDITY for {mailbox}"))?;
        Ok(Selected { uidvalidity, exists: mb.exists })
    }

    /// Every message in the selected mailbox, UID order, with its size.
    pub async fn waiting(&mut self) -> anyhow::Result<Vec<Waiting>> {
        let mut out: Vec<Waiting> = Vec::new();
        {
            let mut stream =
                timed(self.timeout, "UID FETCH sizes", self.session.uid_fetch("1:*", "(UID RFC822.SIZE)")).await?;
            // Each response is reduced to its UID and size at once: async-imap gives every
            // response a buffer of its own, which for a 10,000-message backlog held ~50 MB.
            while let Some(f) = timed(self.timeout, "UID FETCH sizes", stream.try_next()).await? {
                if let Some(uid) = f.uid {
                    out.push(Waiting { uid, size: f.size.unwrap_or(0) });
                }
            }
        }
        out.sort_by_key(|w| w.uid);
        out.dedup_by_key(|w| w.uid);
        Ok(out)
    }

    /// Raw bytes and INTERNALDATE of the given UIDs (BODY.PEEK[], so nothing is marked read).
    /// A UID that vanished meanwhile is simply absent from the result.
    pub async fn fetch_bodies(&mut self, uids: &[u32]) -> anyhow::Result<Vec<Fetched>> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let set = uid_set(uids);
        let mut out: Vec<Fetched> = Vec::with_capacity(uids.len());
        {
            let mut stream =
                timed(self.timeout, "UID FETCH bodies", self.session.uid_fetch(&set, "(UID INTERNALDATE BODY.PEEK[])"))
                    .await?;
            // One response at a time: each is copied out and its buffer freed before the next,
            // so a batch never holds two copies of its bodies.
            while let Some(f) = timed(self.timeout * 4, "UID FETCH bodies", stream.try_next()).await? {
                if let Some(uid) = f.uid {
                    out.push(Fetched {
                        uid,
                        raw: f.body().unwrap_or_default().to_vec(),
                        internal_date: f.internal_date(),
                    });
                }
            }
        }
        out.sort_by_key(|m| m.uid);
        Ok(out)
    }

    /// One large message, in `LARGE_CHUNK` pieces (`BODY.PEEK[]<offset.length>`, the first with
    /// its INTERNALDATE) copied into one buffer of its announced size: async-imap reads a whole
    /// literal into a buffer that grows by reallocation, which for a 20 MB message held three
    /// copies at once. `None` when the message vanished meanwhile.
    pub async fn fetch_large(&mut self, uid: u32, size: u32, limit: u64) -> anyhow::Result<Option<Fetched>> {
        let mut out: Vec<u8> = Vec::with_capacity(size as usize);
        let mut internal_date = None;
        loop {
            let offset = out.len();
            let date_item = if offset == 0 { "INTERNALDATE " } else { "" };
            let query = format!("(UID {date_item}BODY.PEEK[]<{offset}.{LARGE_CHUNK}>)");
            let piece = {
                let stream =
                    timed(self.timeout, "UID FETCH part", self.session.uid_fetch(uid.to_string(), &query)).await?;
                let fetches = timed(self.timeout, "UID FETCH part", stream.try_collect::<Vec<_>>()).await?;
                if offset == 0 {
                    internal_date = fetches.iter().filter(|f| f.uid == Some(uid)).find_map(|f| f.internal_date());
                }
                // Only a response that carries the body counts (a FLAGS update may come too).
                match fetches.iter().filter(|f| f.uid == Some(uid)).find_map(|f| f.body()) {
                    Some(body) => body.to_vec(),
                    None if offset == 0 => return Ok(None),
                    // A size that is an exact multiple of the piece: nothing past the end.
                    None if offset >= size as usize => return Ok(Some(Fetched { uid, raw: out, internal_date })),
                    None => anyhow::bail!("UID {uid}: no body in the FETCH of bytes {offset}.. ({size} announced)"),
                }
            };
            out.extend_from_slice(&piece);
            if out.len() as u64 > limit {
                anyhow::bail!("UID {uid}: more than {limit} bytes although {size} were announced");
            }
            if piece.len() < LARGE_CHUNK {
                if out.len() < size as usize {
                    anyhow::bail!("UID {uid}: the server sent {} of {size} bytes", out.len());
                }
                return Ok(Some(Fetched { uid, raw: out, internal_date }));
            }
        }
    }

    /// Only the header block of one message (for over-size mail, which is never fetched whole).
    pub async fn fetch_header(&mut self, uid: u32) -> anyhow::Result<Option<Vec<u8>>> {
        let fetches = {
            let stream = timed(
                self.timeout,
                "UID FETCH header",
                self.session.uid_fetch(uid.to_string(), "(UID BODY.PEEK[HEADER])"),
            )
            .await?;
            timed(self.timeout, "UID FETCH header", stream.try_collect::<Vec<_>>()).await?
        };
        Ok(fetches.iter().find(|f| f.uid == Some(uid)).and_then(|f| f.header()).map(<[u8]>::to_vec))
    }

    /// Moves one message to `folder` (see [`ImapConn::move_messages`]).
    pub async fn move_message(&mut self, uid: u32, folder: &str) -> anyhow::Result<()> {
        self.move_messages(&[uid], folder).await
    }

    /// Moves messages to `folder` in one command: MOVE where offered, else COPY + \Deleted +
    /// UID EXPUNGE (plain EXPUNGE when the server lacks UIDPLUS).
    pub async fn move_messages(&mut self, uids: &[u32], folder: &str) -> anyhow::Result<()> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        if self.has_move {
            return timed(self.timeout, &format!("UID MOVE {set} to {folder}"), self.session.uid_mv(&set, folder))
                .await;
        }
        timed(self.timeout, &format!("UID COPY {set} to {folder}"), self.session.uid_copy(&set, folder)).await?;
        {
            let stream =
                timed(self.timeout, "UID STORE \\Deleted", self.session.uid_store(&set, "+FLAGS.SILENT (\\Deleted)"))
                    .await?;
            timed(self.timeout, "UID STORE \\Deleted", stream.try_collect::<Vec<_>>()).await?;
        }
        if self.has_uidplus {
            let stream = timed(self.timeout, "UID EXPUNGE", self.session.uid_expunge(&set)).await?;
            timed(self.timeout, "UID EXPUNGE", stream.try_collect::<Vec<_>>()).await?;
        } else {
            let stream = timed(self.timeout, "EXPUNGE", self.session.expunge()).await?;
            timed(self.timeout, "EXPUNGE", stream.try_collect::<Vec<_>>()).await?;
        }
        Ok(())
    }

    /// The UID of a message in the selected folder: by its Message-ID header when it has one,
    /// else by its exact size when only one message has that size.
    pub async fn find_message(&mut self, header_id: &str, size: u32) -> anyhow::Result<Option<u32>> {
        let clean: String = header_id.chars().filter(|c| !c.is_control() && *c != '"' && *c != '\\').collect();
        let query = if clean.is_empty() {
            format!("LARGER {} SMALLER {}", size.saturating_sub(1), size.saturating_add(1))
        } else {
            format!("HEADER Message-ID \"{clean}\"")
        };
        let hits = timed(self.timeout, "UID SEARCH", self.session.uid_search(&query)).await?;
        let mut hits: Vec<u32> = hits.into_iter().collect();
        hits.sort_unstable();
        Ok(if hits.len() == 1 { hits.first().copied() } else { None })
    }

    /// Appends a message to `folder` (used by tools and tests).
    pub async fn append(&mut self, folder: &str, raw: &[u8]) -> anyhow::Result<()> {
        timed(self.timeout, &format!("APPEND to {folder}"), self.session.append(folder, None, None, raw)).await
    }

    /// Whether the server already told us about new mail (EXISTS/RECENT) since the last look.
    fn drain_unsolicited(&mut self) -> bool {
        let mut news = false;
        while let Ok(r) = self.session.unsolicited_responses.try_recv() {
            if matches!(r, UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)) {
                news = true;
            }
        }
        news
    }

    /// Waits in IDLE until the server reports a change, `limit` passes, or `cancel` fires.
    /// Returns the session ready for the next command.
    ///
    /// Mail that arrived between the caller's last fetch and the IDLE command is announced by an
    /// EXISTS around the IDLE continuation. One that comes after it wakes us at once; one that
    /// comes before it lands in async-imap's bounded queue (which drops when full, hence the
    /// drain first) and turns the timeout into `NewData`. `limit` bounds the rare miss.
    pub async fn idle(mut self, limit: Duration, cancel: &CancellationToken) -> anyhow::Result<(ImapConn, Wake)> {
        self.drain_unsolicited();
        let ImapConn { session, timeout, has_idle, has_move, has_uidplus } = self;
        let mut handle = session.idle();
        timed(timeout, "starting IDLE", handle.init()).await?;
        let wake = {
            let (wait, stop) = handle.wait_with_timeout(limit);
            tokio::select! {
                biased;
                _ = cancel.cancelled() => {
                    drop(stop);
                    Wake::Shutdown
                }
                r = wait => match r.context("waiting in IDLE")? {
                    async_imap::extensions::idle::IdleResponse::NewData(_) => Wake::NewData,
                    async_imap::extensions::idle::IdleResponse::Timeout => Wake::Timeout,
                    async_imap::extensions::idle::IdleResponse::ManualInterrupt => Wake::Shutdown,
                },
            }
        };
        let session = timed(timeout, "ending IDLE", handle.done()).await?;
        let mut conn = ImapConn { session, timeout, has_idle, has_move, has_uidplus };
        let wake = if conn.drain_unsolicited() && wake == Wake::Timeout { Wake::NewData } else { wake };
        Ok((conn, wake))
    }

    /// NOOP: the server looks at the mailbox now and reports what changed. Returns whether it
    /// reported new mail (EXISTS or RECENT).
    pub async fn check_now(&mut self) -> anyhow::Result<bool> {
        timed(self.timeout, "IMAP NOOP", self.session.noop()).await?;
        Ok(self.drain_unsolicited())
    }

    pub async fn logout(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.session.logout()).await;
    }
}

/// `1,2,3,7,9,10` as `1:3,7,9:10`.
pub fn uid_set(uids: &[u32]) -> String {
    let mut sorted: Vec<u32> = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end { start.to_string() } else { format!("{start}:{end}") });
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_are_compact() {
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[3, 1, 2, 2]), "1:3");
        assert_eq!(uid_set(&[]), "");
    }
}
