//! The expert roster (`experts`) and the referrals made to it (`referrals`).
//!
//! Removing an expert keeps the row (inactive): the referrals made to them still name them.
//! Every change to the roster is in the audit log. Talks to: the database; the rules of a record
//! and of an import are [`crate::registry::experts`]'.

use anyhow::Context as _;
use serde::Serialize;

use super::backend::{on_pool, on_tx};
use super::{Store, StoreTx, now_ms};
use crate::domain::RequestId;
use crate::registry::experts::{ExpertPlan, ExpertRecord};

/// An expert as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ExpertRow {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub org: String,
    /// Topic names, comma-separated.
    pub topics: String,
    pub notes: String,
    pub active: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ExpertRow {
    pub fn record(&self) -> ExpertRecord {
        ExpertRecord {
            email: self.email.clone(),
            name: self.name.clone(),
            org: self.org.clone(),
            topics: self.topics.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect(),
            notes: self.notes.clone(),
        }
    }
}

/// One referral.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ReferralRow {
    pub id: i64,
    pub request_id: i64,
    pub tracking: String,
    pub expert_email: String,
    pub expert_name: String,
    pub referred_by: String,
    pub note: String,
    pub message_id: String,
    pub referred_on: String,
    pub outcome: String,
    pub bounced: String,
}

/// A new referral, as [`StoreTx::add_referral`] records it.
#[derive(Debug, Clone)]
pub struct NewReferral<'a> {
    pub request: RequestId,
    pub expert: &'a ExpertRow,
    pub referred_by: &'a str,
    pub note: &'a str,
    pub message_id: &'a str,
    pub referred_on: chrono::NaiveDate,
}

/// Who `#refer` named.
#[derive(Debug, Clone)]
pub enum FoundExpert {
    One(ExpertRow),
    None,
    /// Several active experts have that name.
    Several(Vec<String>),
}

const EXPERT_COLUMNS: &str = "id, email, name, org, topics, notes, active, created_at, updated_at";
const REFERRAL_SELECT: &str = "SELECT f.id, f.request_id, r.tracking, f.expert_email, f.expert_name, f.referred_by, \
     f.note, f.message_id, f.referred_on, f.outcome, f.bounced FROM referrals f JOIN requests r ON r.id = f.request_id";

impl StoreTx {
    /// The active expert with this address, or else with this name (ignoring case).
    pub async fn find_expert(&mut self, given: &str) -> anyhow::Result<FoundExpert> {
        let given = given.trim();
        let email = crate::domain::normalize_email(given).unwrap_or_default();
        let rows: Vec<ExpertRow> = on_tx!(self.tx, db => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {EXPERT_COLUMNS} FROM experts WHERE active = TRUE AND (email = $1 OR lower(name) = lower($2)) ORDER BY id"
        )))
        .bind(&email)
        .bind(given)
        .fetch_all(db)
        .await)?;
        if let Some(e) = rows.iter().find(|e| e.email == email) {
            return Ok(FoundExpert::One(e.clone()));
        }
        Ok(match rows.len() {
            0 => FoundExpert::None,
            1 => FoundExpert::One(rows.into_iter().next().context("one row")?),
            _ => FoundExpert::Several(rows.into_iter().map(|e| format!("{} <{}>", e.name, e.email)).collect()),
        })
    }

    /// Whether request `request` was referred to `email`.
    pub async fn is_referred_expert(&mut self, request: i64, email: &str) -> anyhow::Result<bool> {
        let hit: Option<bool> = on_tx!(self.tx, db => sqlx::query_scalar(
            "SELECT TRUE FROM referrals WHERE request_id = $1 AND expert_email = $2 LIMIT 1",
        )
        .bind(request)
        .bind(email)
        .fetch_optional(db)
        .await)?;
        Ok(hit.is_some())
    }

    pub async fn add_referral(&mut self, r: &NewReferral<'_>) -> anyhow::Result<()> {
        on_tx!(self.tx, db => sqlx::query(
            "INSERT INTO referrals (request_id, expert_id, expert_email, expert_name, referred_by, note, message_id, \
             referred_on, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(r.request.0)
        .bind(r.expert.id)
        .bind(&r.expert.email)
        .bind(&r.expert.name)
        .bind(r.referred_by)
        .bind(r.note)
        .bind(r.message_id)
        .bind(r.referred_on.to_string())
        .bind(now_ms())
        .execute(db)
        .await.map(|x| x.rows_affected()))?;
        Ok(())
    }

    /// Records the outcome of the request's latest referral; false when it has none.
    pub async fn set_referral_outcome(&mut self, request: RequestId, outcome: &str) -> anyhow::Result<bool> {
        let n = on_tx!(self.tx, db => sqlx::query(
            "UPDATE referrals SET outcome = $1 WHERE id = (SELECT max(id) FROM referrals WHERE request_id = $2)",
        )
        .bind(outcome)
        .bind(request.0)
        .execute(db)
        .await.map(|x| x.rows_affected()))?;
        Ok(n > 0)
    }

    /// A bounce reported the introduction `message_id` undeliverable to `recipient`: when that
    /// is the referral's expert, the referral records why and is returned.
    pub async fn referral_bounced(
        &mut self,
        message_id: &str,
        recipient: &str,
        reason: &str,
    ) -> anyhow::Result<Option<ReferralRow>> {
        let row: Option<ReferralRow> = on_tx!(self.tx, db => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{REFERRAL_SELECT} WHERE f.message_id = $1 AND (f.expert_email = $2 OR $2 = '')"
        )))
        .bind(message_id)
        .bind(recipient)
        .fetch_optional(db)
        .await)?;
        if let Some(r) = &row {
            on_tx!(self.tx, db => sqlx::query("UPDATE referrals SET bounced = $1 WHERE id = $2")
                .bind(reason)
                .bind(r.id)
                .execute(db)
                .await.map(|x| x.rows_affected()))?;
        }
        Ok(row)
    }

    async fn upsert_expert_in(&mut self, e: &ExpertRecord) -> anyhow::Result<()> {
        let now = now_ms();
        on_tx!(self.tx, db => sqlx::query(
            "INSERT INTO experts (email, name, org, topics, notes, active, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, TRUE, $6, $6) ON CONFLICT (email) DO UPDATE SET name = excluded.name, \
             org = excluded.org, topics = excluded.topics, notes = excluded.notes, active = TRUE, updated_at = excluded.updated_at",
        )
        .bind(&e.email)
        .bind(&e.name)
        .bind(&e.org)
        .bind(e.topics.join(","))
        .bind(&e.notes)
        .bind(now)
        .execute(db)
        .await.map(|r| r.rows_affected()))
        .with_context(|| format!("saving expert {}", e.email))?;
        Ok(())
    }

    async fn deactivate_expert_in(&mut self, email: &str) -> anyhow::Result<bool> {
        let n = on_tx!(self.tx, db => sqlx::query("UPDATE experts SET active = FALSE, updated_at = $1 WHERE email = $2 AND active = TRUE")
            .bind(now_ms())
            .bind(email)
            .execute(db)
            .await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }
}

impl Store {
    /// The active roster, by name.
    pub async fn list_experts(&self) -> anyhow::Result<Vec<ExpertRow>> {
        Ok(on_pool!(self.pool, db => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {EXPERT_COLUMNS} FROM experts WHERE active = TRUE ORDER BY lower(name), email"
        )))
        .fetch_all(db)
        .await)?)
    }

    /// An expert by address, active or removed.
    pub async fn expert(&self, email: &str) -> anyhow::Result<Option<ExpertRow>> {
        Ok(on_pool!(self.pool, db => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {EXPERT_COLUMNS} FROM experts WHERE email = $1"
        )))
        .bind(email)
        .fetch_optional(db)
        .await)?)
    }

    /// Adds an expert or updates one with the same address (bringing back a removed one).
    /// Returns true when added.
    pub async fn upsert_expert(&self, e: &ExpertRecord, actor: &str) -> anyhow::Result<bool> {
        let mut tx = self.begin().await?;
        // Read in the transaction that writes, so "added" and "updated" cannot be mixed up by a
        // concurrent change.
        let active: Option<bool> = on_tx!(tx.tx, db => sqlx::query_scalar("SELECT active FROM experts WHERE email = $1")
            .bind(&e.email)
            .fetch_optional(db)
            .await)?;
        let existed = active == Some(true);
        tx.upsert_expert_in(e).await?;
        tx.audit(actor, "expert add", &format!("{} ({})", e.email, e.name)).await?;
        tx.commit().await?;
        Ok(!existed)
    }

    /// Takes an expert off the roster (their referrals stay). False when not on it.
    pub async fn remove_expert(&self, email: &str, actor: &str) -> anyhow::Result<bool> {
        let mut tx = self.begin().await?;
        let removed = tx.deactivate_expert_in(email).await?;
        if removed {
            tx.audit(actor, "expert remove", email).await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// Applies an import plan in one transaction, with one audit line (`detail`: the file).
    pub async fn apply_expert_plan(&self, plan: &ExpertPlan, actor: &str, detail: &str) -> anyhow::Result<()> {
        if plan.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for e in plan.added.iter().chain(&plan.updated) {
            tx.upsert_expert_in(e).await?;
        }
        for email in &plan.removed {
            tx.deactivate_expert_in(email).await?;
        }
        tx.audit(actor, "expert import", &format!("{detail}: {plan}")).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The referrals of a request, oldest first.
    pub async fn referrals_of(&self, request: i64) -> anyhow::Result<Vec<ReferralRow>> {
        Ok(on_pool!(self.pool, db => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{REFERRAL_SELECT} WHERE f.request_id = $1 ORDER BY f.id"
        )))
        .bind(request)
        .fetch_all(db)
        .await)?)
    }

    /// The referrals made to an expert, newest first.
    pub async fn referrals_to(&self, email: &str) -> anyhow::Result<Vec<ReferralRow>> {
        Ok(on_pool!(self.pool, db => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{REFERRAL_SELECT} WHERE f.expert_email = $1 ORDER BY f.id DESC"
        )))
        .bind(email)
        .fetch_all(db)
        .await)?)
    }
}
