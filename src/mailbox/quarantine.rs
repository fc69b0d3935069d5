//! Moving a quarantined message out of the quarantine folder: back to the inbox to be handled
//! again (`quarantine retry`), or to the processed folder once a person has dealt with it
//! (`quarantine release`). The message is found by its Message-ID header, or by its size when
//! it has none.

use super::ImapConn;
use crate::config::Config;
use crate::store::{QuarantineRow, Store};

/// Where a quarantined message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Back to the inbox: the daemon handles it again (a new quarantine record if it fails again).
    Retry,
    /// To the processed folder: a person has dealt with it; nothing more happens.
    Release,
}

pub async fn move_quarantined(
    cfg: &Config,
    store: &Store,
    row: &QuarantineRow,
    target: Target,
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
    store.set_quarantine_status(row.id, status).await?;
    Ok(format!("quarantine entry {} moved to {folder} ({status})", row.id))
}
