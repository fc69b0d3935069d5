//! One-time confirmation tokens for administrators' changes by mail.
//!
//! Owns the `admin_tokens` table. Talks to: SQLite through a [`StoreTx`].

use super::{StoreTx, now_ms};
use crate::store::backend::on_tx;

/// A pending change waiting for `#confirm TOKEN`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AdminToken {
    pub token: String,
    pub admin: String,
    pub action: String,
    pub payload: Vec<u8>,
    pub detail: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

impl StoreTx {
    pub async fn insert_admin_token(&mut self, t: &AdminToken) -> anyhow::Result<()> {
        on_tx!(self.tx, db => sqlx::query(
            "INSERT INTO admin_tokens (token, admin, action, payload, detail, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&t.token)
        .bind(&t.admin)
        .bind(&t.action)
        .bind(&t.payload)
        .bind(&t.detail)
        .bind(now_ms())
        .bind(t.expires_at)
        .execute(db)
        .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn admin_token(&mut self, token: &str) -> anyhow::Result<Option<AdminToken>> {
        Ok(on_tx!(self.tx, db => sqlx::query_as(
            "SELECT token, admin, action, payload, detail, expires_at, used_at FROM admin_tokens WHERE token = $1",
        )
        .bind(token)
        .fetch_optional(db)
        .await)?)
    }

    pub async fn use_admin_token(&mut self, token: &str) -> anyhow::Result<()> {
        on_tx!(self.tx, db => sqlx::query("UPDATE admin_tokens SET used_at = $1 WHERE token = $2")
            .bind(now_ms())
            .bind(token)
            .execute(db)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
