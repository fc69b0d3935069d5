//! Messages (every mail in and out), their attachments, and quarantine records.

use crate::store::backend::{on_pool, on_tx};
use anyhow::Context as _;
use serde::Serialize;

use super::{BlobRow, Store, StoreTx, now_ms};
use crate::domain::RequestId;
use crate::store::backend::Tx;

/// A row for the `messages` table.
#[derive(Debug, Clone, Default)]
pub struct NewMessage<'a> {
    pub request_id: Option<RequestId>,
    /// `in` or `out`.
    pub direction: &'a str,
    /// question, follow_up, auto, duplicate, acknowledgement, ...
    pub kind: &'a str,
    pub message_id: &'a str,
    pub in_reply_to: &'a str,
    pub references: &'a str,
    pub from_addr: &'a str,
    pub from_name: &'a str,
    pub to_addrs: &'a str,
    pub cc_addrs: &'a str,
    pub subject: &'a str,
    pub body_text: &'a str,
    /// What a reply adds, without quoted history and signature; '' for a question, whose whole
    /// text is new (readers fall back to `body_text`).
    pub new_text: &'a str,
    pub raw: Option<&'a [u8]>,
    pub size: i64,
    pub position: Option<(&'a str, u32, u32)>,
    pub outbox_id: Option<i64>,
    /// Why it was classified as it was (automatic, duplicate, quarantined).
    pub note: &'a str,
}

#[derive(Debug, Clone)]
pub struct NewAttachment<'a> {
    pub filename: &'a str,
    pub content_type: &'a str,
    pub data: &'a [u8],
}

/// A quarantine record as listed.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct QuarantineRow {
    pub id: i64,
    pub mailbox: String,
    pub uidvalidity: i64,
    pub uid: i64,
    pub from_addr: String,
    pub subject: String,
    pub size: i64,
    pub header_id: String,
    pub reason: String,
    pub status: String,
    pub created_at: i64,
}

/// The INSERT of a messages row whose 21 values are bound from `$first` on by [`bind_message`];
/// `outbox_id` is SQL for that column (its bound value is then not used).
pub(super) fn message_insert(first: usize, outbox_id: Option<&str>) -> String {
    const OUTBOX_ID: usize = 18;
    let values: Vec<String> = (0..21)
        .map(|i| match outbox_id {
            Some(sql) if i == OUTBOX_ID => sql.to_string(),
            _ => format!("${}", first + i),
        })
        .collect();
    format!(
        "INSERT INTO messages (request_id, direction, kind, message_id, in_reply_to, refs, from_addr, \
         from_name, to_addrs, cc_addrs, subject, body_text, new_text, raw, size, mailbox, uidvalidity, uid, \
         outbox_id, note, created_at) VALUES ({})",
        values.join(", ")
    )
}

/// Binds a messages row's 21 values (a [`NewMessage`] `$m`, and `$raw`, what goes in the row:
/// `None` for mail kept in `message_raw` or not kept) in [`message_insert`]'s order.
macro_rules! bind_message {
    ($q:expr, $m:expr, $raw:expr) => {{
        let m: &$crate::store::NewMessage<'_> = $m;
        let (mailbox, uidvalidity, uid) = match m.position {
            Some((mb, v, u)) => (Some(mb), Some(i64::from(v)), Some(i64::from(u))),
            None => (None, None, None),
        };
        $q.bind(m.request_id.map(|r| r.0))
            .bind(m.direction)
            .bind(m.kind)
            .bind(m.message_id)
            .bind(m.in_reply_to)
            .bind(m.references)
            .bind(m.from_addr)
            .bind(m.from_name)
            .bind(m.to_addrs)
            .bind(m.cc_addrs)
            .bind(m.subject)
            .bind(m.body_text)
            .bind(m.new_text)
            .bind($raw)
            .bind(m.size)
            .bind(mailbox)
            .bind(uidvalidity)
            .bind(uid)
            .bind(m.outbox_id)
            .bind(m.note)
            .bind($crate::store::now_ms())
    }};
}
pub(super) use bind_message;

impl StoreTx {
    pub async fn insert_message(&mut self, m: &NewMessage<'_>) -> anyhow::Result<i64> {
        // Large raw mail goes to `message_raw`, written in pieces after the row exists (see
        // `write_blob` and migration 0003).
        let streamed = m.raw.filter(|r| r.len() > super::STREAM_BLOB_MIN);
        let sql = format!("{} RETURNING id", message_insert(1, None));
        let in_row = if streamed.is_some() { None } else { m.raw };
        let id: i64 = on_tx!(self.tx, db => {
            bind_message!(sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str())), m, in_row).fetch_one(db).await
        })
        .with_context(|| format!("storing message {}", m.message_id))?;
        if let Some(raw) = streamed {
            // SQLite: a zero-filled blob of the right size, written in place; PostgreSQL: an
            // empty bytea, appended to.
            let len = i64::try_from(raw.len()).unwrap_or(i64::MAX);
            let row = match &mut self.tx {
                Tx::Sqlite(t) => {
                    sqlx::query("INSERT INTO message_raw (message_id, raw) VALUES ($1, zeroblob($2))")
                        .bind(id)
                        .bind(len)
                        .execute(&mut **t)
                        .await
                        .context("storing the raw message")?;
                    BlobRow::Rowid(id)
                }
                Tx::Postgres(t) => {
                    sqlx::query("INSERT INTO message_raw (message_id, raw) VALUES ($1, ''::bytea)")
                        .bind(id)
                        .execute(&mut **t)
                        .await
                        .context("storing the raw message")?;
                    BlobRow::Id("message_id", id)
                }
            };
            self.write_blob("message_raw", "raw", row, raw).await.context("storing the raw message")?;
        }
        Ok(id)
    }

    /// Stores attachments: metadata per message, bytes once per SHA-256.
    pub async fn insert_attachments(&mut self, message: i64, atts: &[NewAttachment<'_>]) -> anyhow::Result<()> {
        use sha2::{Digest as _, Sha256};
        for a in atts {
            let sha: String = Sha256::digest(a.data).iter().map(|b| format!("{b:02x}")).collect();
            let size = i64::try_from(a.data.len()).unwrap_or(i64::MAX);
            let streamed = a.data.len() > super::STREAM_BLOB_MIN;
            let blob = if streamed { None } else { Some(a.data) };
            let row = match &mut self.tx {
                Tx::Sqlite(t) => {
                    let rowid: Option<i64> = sqlx::query_scalar(
                        "INSERT INTO attachment_blobs (sha256, size, data) \
                         VALUES ($1, $2, CASE WHEN $4 THEN zeroblob($2) ELSE $3 END) ON CONFLICT (sha256) DO NOTHING \
                         RETURNING rowid",
                    )
                    .bind(&sha)
                    .bind(size)
                    .bind(blob)
                    .bind(streamed)
                    .fetch_optional(&mut **t)
                    .await
                    .context("storing attachment bytes")?;
                    rowid.map(BlobRow::Rowid)
                }
                Tx::Postgres(t) => {
                    let inserted: Option<String> = sqlx::query_scalar(
                        "INSERT INTO attachment_blobs (sha256, size, data) VALUES ($1, $2, COALESCE($3, ''::bytea)) \
                         ON CONFLICT (sha256) DO NOTHING RETURNING sha256",
                    )
                    .bind(&sha)
                    .bind(size)
                    .bind(blob)
                    .fetch_optional(&mut **t)
                    .await
                    .context("storing attachment bytes")?;
                    inserted.map(|_| BlobRow::Text("sha256", sha.as_str()))
                }
            };
            if let (Some(row), true) = (row, streamed) {
                self.write_blob("attachment_blobs", "data", row, a.data).await.context("storing attachment bytes")?;
            }
            on_tx!(self.tx, db => sqlx::query("INSERT INTO attachments (message_id, filename, content_type, size, sha256) VALUES ($1, $2, $3, $4, $5)")
                .bind(message)
                .bind(a.filename)
                .bind(a.content_type)
                .bind(size)
                .bind(&sha)
                .execute(db)
                .await.map(|r| r.rows_affected()))
                .context("storing attachment metadata")?;
        }
        Ok(())
    }

    /// The inbound message with this Message-ID, if one was stored: `(row id, request id)`.
    pub async fn inbound_by_message_id(&mut self, message_id: &str) -> anyhow::Result<Option<(i64, Option<i64>)>> {
        Ok(on_tx!(self.tx, db => sqlx::query_as(
            "SELECT id, request_id FROM messages WHERE message_id = $1 AND direction = 'in' ORDER BY id LIMIT 1",
        )
        .bind(message_id)
        .fetch_optional(db)
        .await)?)
    }

    /// Records why a message went to quarantine. Re-recording the same position keeps the first.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_quarantine(
        &mut self,
        message: Option<i64>,
        pos: (&str, u32, u32),
        from_addr: &str,
        subject: &str,
        size: i64,
        header_id: &str,
        reason: &str,
    ) -> anyhow::Result<()> {
        on_tx!(self.tx, db => sqlx::query(
            "INSERT INTO quarantine (message_id, mailbox, uidvalidity, uid, from_addr, subject, size, header_id, reason, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (mailbox, uidvalidity, uid) DO NOTHING",
        )
        .bind(message)
        .bind(pos.0)
        .bind(i64::from(pos.1))
        .bind(i64::from(pos.2))
        .bind(from_addr)
        .bind(subject)
        .bind(size)
        .bind(header_id)
        .bind(reason)
        .bind(now_ms())
        .execute(db)
        .await.map(|r| r.rows_affected()))
        .context("recording a quarantine entry")?;
        Ok(())
    }
}

/// What we already know about an IMAP position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Committed as a message (moves to the processed folder).
    Processed,
    /// Committed as a quarantine record (moves to the quarantine folder).
    Quarantined,
}

impl StoreTx {
    /// Whether an IMAP position already has an outcome, seen after every other writer's commit.
    /// On PostgreSQL a transaction lock on the position comes first, so a second daemon that
    /// fetched the same UID waits for the first one's commit and then sees its rows; on SQLite
    /// the write lock already orders the two.
    pub async fn claim_position(
        &mut self,
        mailbox: &str,
        uidvalidity: u32,
        uid: u32,
    ) -> anyhow::Result<Option<Handled>> {
        if let Tx::Postgres(t) = &mut self.tx {
            use sha2::{Digest as _, Sha256};
            let digest = Sha256::digest(format!("{mailbox}\0{uidvalidity}\0{uid}").as_bytes());
            let mut key = [0u8; 8];
            key.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(i64::from_be_bytes(key))
                .execute(&mut **t)
                .await
                .context("locking the IMAP position")?;
        }
        let found: Option<bool> = on_tx!(self.tx, db => sqlx::query_scalar(
            "SELECT TRUE FROM quarantine WHERE mailbox = $1 AND uidvalidity = $2 AND uid = $3 \
             UNION ALL SELECT FALSE FROM messages WHERE mailbox = $1 AND uidvalidity = $2 AND uid = $3 LIMIT 1",
        )
        .bind(mailbox)
        .bind(i64::from(uidvalidity))
        .bind(i64::from(uid))
        .fetch_optional(db)
        .await)
        .context("checking the IMAP position")?;
        Ok(found.map(|q| if q { Handled::Quarantined } else { Handled::Processed }))
    }
}

/// The SELECT of [`Store::request_for_message_ids`] for `n` (> 0) Message-IDs, bound `$1..$n`.
fn request_for_message_ids_sql(n: usize) -> String {
    let placeholders: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    format!(
        "SELECT request_id FROM messages WHERE message_id IN ({}) AND request_id IS NOT NULL ORDER BY id DESC LIMIT 1",
        placeholders.join(", ")
    )
}

impl StoreTx {
    /// [`Store::request_for_message_ids`], seeing this transaction's own writes.
    pub async fn request_for_message_ids(&mut self, message_ids: &[String]) -> anyhow::Result<Option<i64>> {
        if message_ids.is_empty() {
            return Ok(None);
        }
        let sql = request_for_message_ids_sql(message_ids.len());
        on_tx!(self.tx, db => {
            let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()));
            for id in message_ids {
                q = q.bind(id);
            }
            q.fetch_optional(db).await
        })
        .context("matching a thread by Message-ID")
    }
}

/// One message of a request's conversation, as `requests show` prints it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ConversationMessage {
    /// When it was recorded (Unix ms).
    #[sqlx(rename = "created_at")]
    pub at: i64,
    /// `in` or `out`.
    pub direction: String,
    pub kind: String,
    pub from_addr: String,
    pub from_name: String,
    pub to_addrs: String,
    pub cc_addrs: String,
    pub subject: String,
    /// What it says. A question: its text. A follow-up or a staff member's mail: what it adds,
    /// without quoted history and signature (all of its text when nothing is left). Other mail
    /// in (bounces, automatic replies, duplicates): why it was classified so. Mail out that a
    /// person wrote (a response, a question back to the official): the text as mailed. Automatic
    /// mail out (acknowledgements, staff notices): empty, since its template says it.
    pub text: String,
}

impl Store {
    /// A request's messages, in and out, in the order they were recorded.
    pub async fn conversation(&self, request: i64) -> anyhow::Result<Vec<ConversationMessage>> {
        // Mail out that a person wrote: a response, and a question back to the official.
        let mut rows: Vec<ConversationMessage> = on_pool!(self.pool, db => sqlx::query_as(
            "SELECT created_at, direction, kind, from_addr, from_name, to_addrs, cc_addrs, subject, \
                    CASE WHEN direction = 'in' AND kind IN ('question', 'follow_up', 'staff_reply') \
                              THEN (CASE WHEN new_text <> '' THEN new_text ELSE body_text END) \
                         WHEN direction = 'in' THEN note \
                         WHEN kind IN ('response', 'reply') THEN body_text ELSE '' END AS text \
             FROM messages WHERE request_id = $1 ORDER BY id",
        )
        .bind(request)
        .fetch_all(db)
        .await)?;
        // Trailing blank lines and spaces, trimmed here: the engines' rtrim differ.
        for m in &mut rows {
            m.text.truncate(m.text.trim_end().len());
        }
        Ok(rows)
    }

    /// The request any of `message_ids` (ours or theirs, in or out) belongs to; the most recent
    /// message wins when they point at different requests.
    pub async fn request_for_message_ids(&self, message_ids: &[String]) -> anyhow::Result<Option<i64>> {
        if message_ids.is_empty() {
            return Ok(None);
        }
        let sql = request_for_message_ids_sql(message_ids.len());
        on_pool!(self.pool, db => {
            let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()));
            for id in message_ids {
                q = q.bind(id);
            }
            q.fetch_optional(db).await
        })
        .context("matching a thread by Message-ID")
    }

    /// Which UIDs from `first` to `last` in this mailbox and UIDVALIDITY are already handled
    /// (committed before a crash between commit and IMAP move, or before a move failed): such a
    /// message is only moved, never processed again. One query for a whole inbox listing.
    pub async fn handled_between(
        &self,
        mailbox: &str,
        uidvalidity: u32,
        first: u32,
        last: u32,
    ) -> anyhow::Result<std::collections::HashMap<u32, Handled>> {
        let rows: Vec<(i64, i64)> = on_pool!(self.pool, db => sqlx::query_as(
            "SELECT uid, CAST(1 AS BIGINT) FROM quarantine WHERE mailbox = $1 AND uidvalidity = $2 AND uid BETWEEN $3 AND $4 \
             UNION ALL SELECT uid, CAST(0 AS BIGINT) FROM messages WHERE mailbox = $1 AND uidvalidity = $2 AND uid BETWEEN $3 AND $4",
        )
        .bind(mailbox)
        .bind(i64::from(uidvalidity))
        .bind(i64::from(first))
        .bind(i64::from(last))
        .fetch_all(db)
        .await)?;
        let mut out = std::collections::HashMap::new();
        for (uid, quarantined) in rows {
            let Ok(uid) = u32::try_from(uid) else { continue };
            // A quarantine record wins: its message row (if any) is the quarantined mail itself.
            if quarantined == 1 {
                out.insert(uid, Handled::Quarantined);
            } else {
                out.entry(uid).or_insert(Handled::Processed);
            }
        }
        Ok(out)
    }

    pub async fn list_quarantine(&self) -> anyhow::Result<Vec<QuarantineRow>> {
        Ok(on_pool!(self.pool, db => sqlx::query_as(
            "SELECT id, mailbox, uidvalidity, uid, from_addr, subject, size, header_id, reason, status, created_at \
             FROM quarantine ORDER BY id",
        )
        .fetch_all(db)
        .await)?)
    }

    /// Sets a quarantine record's status (`released`, `retried`).
    pub async fn set_quarantine_status(&self, id: i64, status: &str, actor: &str) -> anyhow::Result<()> {
        let mut tx = self.begin().await?;
        on_tx!(tx.tx, db => {
            sqlx::query("UPDATE quarantine SET status = $1 WHERE id = $2").bind(status).bind(id).execute(db).await.map(|_| ())
        })?;
        on_tx!(tx.tx, db => {
            sqlx::query("INSERT INTO audit_log (at, actor, action, detail) VALUES ($1, $2, $3, $4)")
                .bind(now_ms())
                .bind(actor)
                .bind(format!("quarantine {status}"))
                .bind(format!("#{id}"))
                .execute(db)
                .await
                .map(|_| ())
        })?;
        tx.commit().await?;
        Ok(())
    }

    /// The raw bytes kept for a quarantined message, when it was fetched.
    pub async fn quarantine_raw(&self, id: i64) -> anyhow::Result<Option<Vec<u8>>> {
        let raw: Option<Option<Vec<u8>>> = on_pool!(self.pool, db => sqlx::query_scalar(
            "SELECT COALESCE(m.raw, (SELECT r.raw FROM message_raw r WHERE r.message_id = m.id)) \
                 FROM quarantine q JOIN messages m ON m.id = q.message_id WHERE q.id = $1",
        )
        .bind(id)
        .fetch_optional(db)
        .await)?;
        Ok(raw.flatten())
    }

    /// How many IMAP positions of `mailbox` have an outcome (a message row or a quarantine record).
    pub async fn handled_in(&self, mailbox: &str) -> anyhow::Result<i64> {
        Ok(on_pool!(self.pool, db => sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT uidvalidity, uid FROM messages WHERE mailbox = $1 AND direction = 'in' \
             UNION SELECT uidvalidity, uid FROM quarantine WHERE mailbox = $1) AS handled",
        )
        .bind(mailbox)
        .fetch_one(db)
        .await)?)
    }

    /// How many of our outgoing messages answer an automatic mail or a bounce (must stay 0).
    pub async fn answered_automatic(&self) -> anyhow::Result<i64> {
        Ok(on_pool!(self.pool, db => sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages o JOIN messages i ON o.in_reply_to = i.message_id \
             WHERE o.direction = 'out' AND i.direction = 'in' AND i.kind IN ('automatic', 'bounce') AND i.message_id <> ''",
        )
        .fetch_one(db)
        .await)?)
    }

    /// `(attachment rows, distinct stored blobs, blob bytes)`.
    pub async fn attachment_counts(&self) -> anyhow::Result<(i64, i64, i64)> {
        let rows: i64 =
            on_pool!(self.pool, db => sqlx::query_scalar("SELECT COUNT(*) FROM attachments").fetch_one(db).await)?;
        let blobs: i64 =
            on_pool!(self.pool, db => sqlx::query_scalar("SELECT COUNT(*) FROM attachment_blobs").fetch_one(db).await)?;
        let bytes: i64 = on_pool!(self.pool, db => sqlx::query_scalar("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM attachment_blobs").fetch_one(db).await)?;
        Ok((rows, blobs, bytes))
    }

    /// `(kind, count)` of inbound messages, for stats.
    pub async fn inbound_counts(&self) -> anyhow::Result<Vec<(String, i64)>> {
        Ok(on_pool!(self.pool, db => sqlx::query_as(
            "SELECT kind, COUNT(*) AS n FROM messages WHERE direction = 'in' GROUP BY kind ORDER BY kind",
        )
        .fetch_all(db)
        .await)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// Raw mail is given back byte for byte whether it was small enough to sit in its messages
    /// row or was written in pieces to `message_raw`.
    #[tokio::test]
    async fn raw_mail_of_any_size_comes_back_whole() -> anyhow::Result<()> {
        let (_dir, store) = Store::for_test().await?;
        let small = b"From: a@b.test\r\n\r\nhello\r\n".to_vec();
        let big: Vec<u8> = (0..(3 * super::super::STREAM_BLOB_MIN + 17) as u32).map(|i| (i % 251) as u8).collect();
        for (uid, raw) in [(1u32, &small), (2, &big)] {
            let mut tx = store.begin().await?;
            let id = tx
                .insert_message(&NewMessage {
                    direction: "in",
                    kind: "unusable",
                    message_id: &format!("m{uid}@b.test"),
                    raw: Some(raw),
                    size: raw.len() as i64,
                    position: Some(("INBOX", 1, uid)),
                    ..Default::default()
                })
                .await?;
            tx.insert_quarantine(Some(id), ("INBOX", 1, uid), "a@b.test", "s", raw.len() as i64, "", "test").await?;
            tx.commit().await?;
            let q: i64 = sqlx::query_scalar("SELECT id FROM quarantine WHERE uid = $1")
                .bind(i64::from(uid))
                .fetch_one(store.sqlite())
                .await?;
            let back = store.quarantine_raw(q).await?.expect("raw kept");
            assert_eq!(back.len(), raw.len());
            assert!(back == *raw, "message {uid} differs");
        }
        let apart: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM message_raw").fetch_one(store.sqlite()).await?;
        assert_eq!(apart, 1, "only the big one is kept apart");
        Ok(())
    }
}
