//! Who belongs to a request's city-side thread: the official and whoever they copied.
//!
//! Owns the `request_participants` table. Talks to: SQLite; [`super::requests`] batches the
//! first participants into the request's insert with [`PARTICIPANT_INSERT`].

use crate::store::backend::{on_pool, on_tx};
use anyhow::Context as _;

use super::{Store, StoreTx};
use crate::domain::RequestId;

/// The same for participants (`(request_id, email, role)` each), and what keeps an address that
/// is already there.
pub(super) const PARTICIPANT_INSERT: &str = "INSERT INTO request_participants (request_id, email, role) VALUES ";
pub(super) const PARTICIPANT_KEEP: &str = " ON CONFLICT (request_id, email) DO NOTHING";

const IS_PARTICIPANT: &str = "SELECT TRUE FROM request_participants WHERE request_id = $1 AND email = $2";

impl StoreTx {
    /// The request as this transaction sees it.
    /// [`Store::is_participant`] inside this transaction.
    pub async fn is_participant(&mut self, request: i64, email: &str) -> anyhow::Result<bool> {
        let hit: Option<bool> = on_tx!(self.tx, db => sqlx::query_scalar(IS_PARTICIPANT).bind(request).bind(email).fetch_optional(db).await)?;
        Ok(hit.is_some())
    }

    /// Records the official and the people they copied (existing entries are kept).
    pub async fn add_participants(&mut self, id: RequestId, emails: &[String], role: &str) -> anyhow::Result<()> {
        for email in emails {
            self.add_participant(id, email, role).await?;
        }
        Ok(())
    }

    pub(super) async fn add_participant(&mut self, id: RequestId, email: &str, role: &str) -> anyhow::Result<()> {
        on_tx!(self.tx, db => sqlx::query(sqlx::AssertSqlSafe(format!("{PARTICIPANT_INSERT}($1, $2, $3){PARTICIPANT_KEEP}")))
            .bind(id.0)
            .bind(email)
            .bind(role)
            .execute(db)
            .await.map(|r| r.rows_affected()))
            .context("adding a participant")?;
        Ok(())
    }

    /// `(email, role)` of a request's participants.
    pub async fn participants(&mut self, id: RequestId) -> anyhow::Result<Vec<(String, String)>> {
        Ok(on_tx!(self.tx, db => sqlx::query_as(
            "SELECT email, role FROM request_participants WHERE request_id = $1 ORDER BY role DESC, email",
        )
        .bind(id.0)
        .fetch_all(db)
        .await)?)
    }
}

impl Store {
    /// Whether `email` is the request's official or someone they copied.
    pub async fn is_participant(&self, request: i64, email: &str) -> anyhow::Result<bool> {
        let hit: Option<bool> = on_pool!(self.pool, db => sqlx::query_scalar(IS_PARTICIPANT).bind(request).bind(email).fetch_optional(db).await)?;
        Ok(hit.is_some())
    }
}
