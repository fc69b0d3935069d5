//! The staff list: who may answer requests by mail, and who may administer.
//!
//! Owns the `staff` table (and its lines of the audit log). Talks to: SQLite.

use crate::store::backend::{on_pool, on_tx};
use anyhow::Context as _;
use serde::Serialize;

use super::{Store, StoreTx, now_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StaffRole {
    Staff,
    Admin,
}

impl StaffRole {
    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Staff => "staff",
            StaffRole::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StaffMember {
    pub email: String,
    pub name: String,
    pub role: String,
    pub active: bool,
}

const STAFF_MEMBER: &str = "SELECT email, name, role, active FROM staff WHERE email = $1 AND active = TRUE";

/// The active staff, by address.
const ACTIVE_STAFF: &str = "SELECT email, name, role, active FROM staff WHERE active = TRUE ORDER BY email";

impl StoreTx {
    /// As [`Store::staff_member`], inside this transaction. The active staff are read once per
    /// transaction: it holds the write lock, and staff are only changed in transactions of
    /// their own, so the list cannot change under it.
    pub async fn staff_member(&mut self, email: &str) -> anyhow::Result<Option<StaffMember>> {
        if self.staff.is_none() {
            let staff: Vec<StaffMember> = on_tx!(self.tx, db => sqlx::query_as(ACTIVE_STAFF).fetch_all(db).await)?;
            self.staff = Some(staff.into_iter().map(|m| (m.email.clone(), m)).collect());
        }
        Ok(self.staff.as_ref().and_then(|s| s.get(email)).cloned())
    }
}

impl Store {
    /// Adds a staff member, or updates name and role of an existing one. Returns true when added.
    pub async fn upsert_staff(&self, email: &str, name: &str, role: StaffRole, actor: &str) -> anyhow::Result<bool> {
        let mut tx = self.begin().await?;
        let existed: Option<i64> = on_tx!(tx.tx, db => sqlx::query_scalar("SELECT id FROM staff WHERE email = $1").bind(email).fetch_optional(db).await)?;
        on_tx!(tx.tx, db => sqlx::query(
            "INSERT INTO staff (email, name, role, active, created_at) VALUES ($1, $2, $3, TRUE, $4) \
             ON CONFLICT (email) DO UPDATE SET name = excluded.name, role = excluded.role, active = TRUE",
        )
        .bind(email)
        .bind(name)
        .bind(role.as_str())
        .bind(now_ms())
        .execute(db)
        .await.map(|r| r.rows_affected()))
        .with_context(|| format!("saving staff member {email}"))?;
        on_tx!(tx.tx, db => sqlx::query("INSERT INTO audit_log (at, actor, action, detail) VALUES ($1, $2, 'staff add', $3)")
            .bind(now_ms())
            .bind(actor)
            .bind(format!("{email} ({})", role.as_str()))
            .execute(db)
            .await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(existed.is_none())
    }

    /// The active staff member with this address, if any.
    pub async fn staff_member(&self, email: &str) -> anyhow::Result<Option<StaffMember>> {
        Ok(on_pool!(self.pool, db => sqlx::query_as(STAFF_MEMBER).bind(email).fetch_optional(db).await)?)
    }

    /// Takes someone off the staff list (their history stays). Returns false if not on it.
    pub async fn deactivate_staff(&self, email: &str, actor: &str) -> anyhow::Result<bool> {
        let mut tx = self.begin().await?;
        let n = on_tx!(tx.tx, db => sqlx::query("UPDATE staff SET active = FALSE WHERE email = $1 AND active = TRUE")
            .bind(email)
            .execute(db)
            .await.map(|r| r.rows_affected()))?;
        if n > 0 {
            on_tx!(tx.tx, db => sqlx::query("INSERT INTO audit_log (at, actor, action, detail) VALUES ($1, $2, 'staff remove', $3)")
                .bind(now_ms())
                .bind(actor)
                .bind(email)
                .execute(db)
                .await.map(|r| r.rows_affected()))?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    pub async fn list_staff(&self) -> anyhow::Result<Vec<StaffMember>> {
        Ok(on_pool!(self.pool, db => sqlx::query_as(ACTIVE_STAFF).fetch_all(db).await)?)
    }
}
