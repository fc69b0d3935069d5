//! Quarantined mail as people handle it: one entry with the headers of the message, and moving
//! it back to the inbox (retry) or on to the processed folder (release).
//!
//! Owns: [`QuarantineView`] and the lookup of one entry by id (one row, not the whole table).
//! Talks to: [`crate::store`], [`crate::mailbox`] (the IMAP move).

use std::fmt;

use serde::Serialize;

use super::{Actor, fmt_ms};
use crate::config::Config;
use crate::mailbox::ImapConn;
use crate::store::{QuarantineRow, Store};

/// Where a quarantined message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Back to the inbox: the daemon handles it again (a new quarantine record if it fails again).
    Retry,
    /// To the processed folder: a person has dealt with it; nothing more happens.
    Release,
}

/// One quarantine entry with the header block of the message, when it was fetched.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineView {
    pub entry: QuarantineRow,
    /// The message's header block (lossy UTF-8), or `None` when it was never fetched.
    pub headers: Option<String>,
    /// The IMAP folder the message sits in.
    pub folder: String,
}

/// Why a quarantine action was not taken.
#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error("no quarantine entry {0}")]
    NoEntry(i64),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The header block of a raw message (up to the first blank line; 4,000 bytes when none).
fn header_block(raw: &[u8]) -> String {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(raw.len().min(4000));
    String::from_utf8_lossy(raw.get(..end).unwrap_or(raw)).into_owned()
}

/// The entry with this id, with its headers.
pub async fn view(store: &Store, cfg: &Config, id: i64) -> Result<QuarantineView, QuarantineError> {
    let entry = store.quarantine_entry(id).await?.ok_or(QuarantineError::NoEntry(id))?;
    let headers = store.quarantine_raw(id).await?.map(|raw| header_block(&raw));
    Ok(QuarantineView { entry, headers, folder: cfg.imap.quarantine_folder.clone() })
}

/// Moves the entry's message (back to the inbox, or to the processed folder). Returns what was
/// done, naming the actor.
pub async fn move_entry(
    store: &Store,
    cfg: &Config,
    id: i64,
    target: Target,
    actor: &Actor,
) -> Result<String, QuarantineError> {
    let entry = store.quarantine_entry(id).await?.ok_or(QuarantineError::NoEntry(id))?;
    let done = move_quarantined(cfg, store, &entry, target, &actor.email).await?;
    tracing::info!(id, actor = %actor.email, "{done}");
    Ok(format!("{done} by {}", actor.email))
}

impl fmt::Display for QuarantineView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.entry;
        let or_dash = |s: &str| if s.is_empty() { "-".to_string() } else { s.to_string() };
        writeln!(f, "Entry       {} ({})", r.id, r.status)?;
        writeln!(f, "Reason      {}", r.reason)?;
        writeln!(f, "Received    {}", fmt_ms(r.created_at))?;
        writeln!(f, "From        {}", or_dash(&r.from_addr))?;
        writeln!(f, "Subject     {}", r.subject)?;
        writeln!(f, "Size        {} bytes", r.size)?;
        writeln!(f, "Message-ID  {}", or_dash(&r.header_id))?;
        writeln!(f, "Was         {} UID {} (UIDVALIDITY {})", r.mailbox, r.uid, r.uidvalidity)?;
        match &self.headers {
            Some(h) => write!(f, "\n{h}"),
            None => write!(f, "\n(the message was not fetched; it is in the {} folder)", self.folder),
        }
    }
}

/// Finds the entry's message in the quarantine folder (by its Message-ID header, or by its size
/// when it has none), moves it, and records the new status and who did it.
async fn move_quarantined(
    cfg: &Config,
    store: &Store,
    row: &QuarantineRow,
    target: Target,
    actor: &str,
) -> anyhow::Result<String> {
    if row.status != "held" {
        anyhow::bail!("quarantine entry {} is already {}", row.id, row.status);
    }
    let imap = &cfg.imap;
    let mut conn = ImapConn::connect(imap, &cfg.imap_password).await?;
    conn.select(&imap.quarantine_folder).await?;
    let size = u32::try_from(row.size).unwrap_or(u32::MAX);
    let Some(uid) = conn.find_message(&row.header_id, size).await? else {
        conn.logout().await;
        anyhow::bail!(
            "could not find quarantine entry {} in {} (by {}); move it by hand in a mail client",
            row.id,
            imap.quarantine_folder,
            if row.header_id.is_empty() { "size" } else { "Message-ID" }
        );
    };
    let (folder, status) = match target {
        Target::Retry => (&imap.inbox, "retried"),
        Target::Release => (&imap.processed_folder, "released"),
    };
    conn.move_message(uid, folder).await?;
    conn.logout().await;
    store.set_quarantine_status(row.id, status, actor).await?;
    Ok(format!("quarantine entry {} moved to {folder} ({status})", row.id))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_header_block_ends_at_the_blank_line() {
        assert_eq!(super::header_block(b"From: a\r\nTo: b\r\n\r\nbody"), "From: a\r\nTo: b");
        assert_eq!(super::header_block(b"no blank line"), "no blank line");
    }
}
