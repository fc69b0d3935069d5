//! Where the poller stands in each mailbox: UIDVALIDITY and the highest UID handled.

use crate::store::backend::{on_pool, on_tx};
use anyhow::Context as _;

use super::{Store, StoreTx, now_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct MailboxState {
    #[sqlx(try_from = "i64")]
    pub uidvalidity: u32,
    #[sqlx(try_from = "i64")]
    pub last_uid: u32,
    pub last_poll_at: Option<i64>,
}

impl Store {
    pub async fn mailbox_state(&self, mailbox: &str) -> anyhow::Result<Option<MailboxState>> {
        Ok(
            on_pool!(self.pool, db => sqlx::query_as("SELECT uidvalidity, last_uid, last_poll_at FROM mailbox_state WHERE mailbox = $1")
            .bind(mailbox)
            .fetch_optional(db)
            .await)?,
        )
    }

    /// Records a successful poll. A new UIDVALIDITY resets the position to 0 (re-scan; the
    /// Message-ID check keeps that from creating duplicates).
    pub async fn record_poll(&self, mailbox: &str, uidvalidity: u32) -> anyhow::Result<()> {
        let _writer = self.writer().await;
        on_pool!(self.pool, db => sqlx::query(
            "INSERT INTO mailbox_state (mailbox, uidvalidity, last_uid, last_poll_at) VALUES ($1, $2, 0, $3) \
             ON CONFLICT (mailbox) DO UPDATE SET last_poll_at = excluded.last_poll_at, \
             last_uid = CASE WHEN mailbox_state.uidvalidity = excluded.uidvalidity THEN mailbox_state.last_uid ELSE 0 END, \
             uidvalidity = excluded.uidvalidity",
        )
        .bind(mailbox)
        .bind(i64::from(uidvalidity))
        .bind(now_ms())
        .execute(db)
        .await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}

/// How far a mailbox has been handled, held by a transaction until it commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    mailbox: String,
    uidvalidity: u32,
    uid: u32,
}

impl StoreTx {
    /// Moves the position forward to `uid` (never backwards), in the same transaction as the
    /// message it belongs to. Written once, just before the transaction commits: a group of
    /// messages costs one UPDATE, not one each. (A position of another mailbox or UIDVALIDITY
    /// is written at once.)
    pub async fn advance_position(&mut self, mailbox: &str, uidvalidity: u32, uid: u32) -> anyhow::Result<()> {
        match &mut self.position {
            Some(p) if p.mailbox == mailbox && p.uidvalidity == uidvalidity => p.uid = p.uid.max(uid),
            held => {
                let next = Position { mailbox: mailbox.to_string(), uidvalidity, uid };
                if let Some(other) = held.replace(next) {
                    self.write_position(&other).await?;
                }
            }
        }
        Ok(())
    }

    pub(super) async fn write_position(&mut self, p: &Position) -> anyhow::Result<()> {
        let Position { mailbox, uidvalidity, uid } = p;
        let (uid, uidvalidity) = (*uid, *uidvalidity);
        on_tx!(self.tx, db => sqlx::query(
            "UPDATE mailbox_state SET last_uid = CASE WHEN last_uid < $1 THEN $1 ELSE last_uid END \
             WHERE mailbox = $2 AND uidvalidity = $3",
        )
        .bind(i64::from(uid))
        .bind(mailbox)
        .bind(i64::from(uidvalidity))
        .execute(db)
        .await.map(|r| r.rows_affected()))
        .context("recording how far the mailbox is handled")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    /// The position is written with the commit, follows ROLLBACK TO like every other write, and
    /// is gone with a transaction that never commits.
    #[tokio::test]
    async fn the_position_goes_with_the_commit_and_the_savepoints() -> anyhow::Result<()> {
        let (_dir, store) = Store::for_test().await?;
        store.record_poll("INBOX", 7).await?;
        let last = |store: Store| async move { anyhow::Ok(store.mailbox_state("INBOX").await?.map(|s| s.last_uid)) };

        let mut tx = store.begin().await?;
        tx.advance_position("INBOX", 7, 5).await?;
        tx.savepoint("message").await?;
        tx.advance_position("INBOX", 7, 9).await?;
        tx.rollback_to("message").await?;
        tx.release("message");
        tx.savepoint("message").await?; // sends the pending RELEASE with it
        tx.advance_position("INBOX", 7, 6).await?;
        tx.release("message");
        assert_eq!(last(store.clone()).await?, Some(0), "nothing before the commit");
        tx.commit().await?;
        assert_eq!(last(store.clone()).await?, Some(6), "the furthest position that was kept");

        let mut tx = store.begin().await?;
        tx.advance_position("INBOX", 7, 40).await?;
        drop(tx);
        assert_eq!(last(store.clone()).await?, Some(6), "a transaction dropped moves nothing");

        let mut tx = store.begin().await?;
        tx.advance_position("INBOX", 7, 3).await?;
        tx.commit().await?;
        assert_eq!(last(store).await?, Some(6), "never backwards");
        Ok(())
    }
}
