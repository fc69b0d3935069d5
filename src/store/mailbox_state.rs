//! Where the poller stands in each mailbox: UIDVALIDITY and the highest UID handled.

use sqlx::Row as _;

use super::{Store, StoreTx, now_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxState {
    pub uidvalidity: u32,
    pub last_uid: u32,
    pub last_poll_at: Option<i64>,
}

impl Store {
    pub async fn mailbox_state(&self, mailbox: &str) -> anyhow::Result<Option<MailboxState>> {
        let row = sqlx::query("SELECT uidvalidity, last_uid, last_poll_at FROM mailbox_state WHERE mailbox = $1")
            .bind(mailbox)
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(MailboxState {
            uidvalidity: u32::try_from(r.try_get::<i64, _>("uidvalidity")?).unwrap_or(0),
            last_uid: u32::try_from(r.try_get::<i64, _>("last_uid")?).unwrap_or(0),
            last_poll_at: r.try_get("last_poll_at")?,
        }))
    }

    /// Records a successful poll. A new UIDVALIDITY resets the position to 0 (re-scan; the
    /// Message-ID check keeps that from creating duplicates).
    pub async fn record_poll(&self, mailbox: &str, uidvalidity: u32) -> anyhow::Result<()> {
        let _writer = self.writer().await;
        sqlx::query(
            "INSERT INTO mailbox_state (mailbox, uidvalidity, last_uid, last_poll_at) VALUES ($1, $2, 0, $3) \
             ON CONFLICT (mailbox) DO UPDATE SET last_poll_at = excluded.last_poll_at, \
             last_uid = CASE WHEN mailbox_state.uidvalidity = excluded.uidvalidity THEN mailbox_state.last_uid ELSE 0 END, \
             uidvalidity = excluded.uidvalidity",
        )
        .bind(mailbox)
        .bind(i64::from(uidvalidity))
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

impl StoreTx {
    /// Moves the position forward to `uid` (never backwards), in the same transaction as the
    /// message it belongs to.
    pub async fn advance_position(&mut self, mailbox: &str, uidvalidity: u32, uid: u32) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE mailbox_state SET last_uid = CASE WHEN last_uid < $1 THEN $1 ELSE last_uid END \
             WHERE mailbox = $2 AND uidvalidity = $3",
        )
        .bind(i64::from(uid))
        .bind(mailbox)
        .bind(i64::from(uidvalidity))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
