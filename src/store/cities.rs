//! The eligible-city registry: cities, their mail domains and known contacts, plus the audit
//! log of every change.

use crate::store::backend::{on_pool, on_tx};
use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context as _;
use serde::Serialize;

use super::{Store, StoreTx, now_ms};

use crate::domain::city::{CityRecord, CityRow, Diff, Found, domain_candidates};

/// A known official of a city.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ContactRow {
    pub email: String,
    pub name: String,
    pub title: String,
    pub city_id: i64,
    pub city: String,
    pub source: String,
}

/// A city as [`SELECT_CITY`] reads it: dates as text, domains comma-separated.
#[derive(sqlx::FromRow)]
struct StoredCity {
    id: i64,
    name: String,
    state: String,
    population: Option<i64>,
    eligible: bool,
    eligible_from: Option<String>,
    eligible_until: Option<String>,
    notes: String,
    domains: Option<String>,
}

impl From<StoredCity> for CityRow {
    fn from(c: StoredCity) -> Self {
        let date = |v: Option<String>| v.and_then(|s| s.parse().ok());
        let mut domains: Vec<String> =
            c.domains.unwrap_or_default().split(',').filter(|d| !d.is_empty()).map(str::to_string).collect();
        domains.sort();
        CityRow {
            id: c.id,
            record: CityRecord {
                name: c.name,
                state: c.state,
                population: c.population,
                eligible: c.eligible,
                eligible_from: date(c.eligible_from),
                eligible_until: date(c.eligible_until),
                notes: c.notes,
                domains,
            },
        }
    }
}

/// The registry as a transaction read it, and each mail domain's index in it.
pub(super) type Registry = (Arc<Vec<CityRow>>, Arc<HashMap<String, usize>>);

const SELECT_CITY: &str = "SELECT c.id, c.name, c.state, c.population, c.eligible, c.eligible_from, c.eligible_until, c.notes, \
     (SELECT string_agg(d.domain, ',') FROM city_domains d WHERE d.city_id = c.id) AS domains \
     FROM cities c";

fn city_by_id_sql() -> String {
    format!("{SELECT_CITY} WHERE c.id = $1")
}

fn city_of_contact_sql() -> String {
    format!("{SELECT_CITY} WHERE c.id = (SELECT city_id FROM contacts WHERE email = $1)")
}

impl StoreTx {
    /// The city owning the longest of `candidates` (a domain and its parents), with that
    /// domain, from the registry this transaction has read.
    pub async fn city_for_domains(&mut self, candidates: &[String]) -> anyhow::Result<Option<(String, CityRow)>> {
        let (cities, by_domain) = self.registry().await?;
        // The longest candidate that is a city's mail domain (each domain belongs to one city).
        Ok(candidates
            .iter()
            .filter_map(|c| by_domain.get(c).and_then(|&i| cities.get(i)).map(|city| (c, city)))
            .max_by_key(|(c, _)| c.len())
            .map(|(c, city)| (c.clone(), city.clone())))
    }

    /// Looks the sender up: a known contact first, then the mail domain (and, with
    /// `match_subdomains`, its parents; the longest registered one wins).
    pub async fn find_city(&mut self, email: &str, domain: &str, match_subdomains: bool) -> anyhow::Result<Found> {
        if let Some(city) = self.city_of_contact(email).await? {
            return Ok(Found::Contact(city));
        }
        let candidates = domain_candidates(domain, match_subdomains);
        Ok(match self.city_for_domains(&candidates).await? {
            Some((matched, city)) => Found::Domain(city, matched),
            None => Found::Nothing,
        })
    }

    /// [`Store::city_of_contact`] inside this transaction.
    pub async fn city_of_contact(&mut self, email: &str) -> anyhow::Result<Option<CityRow>> {
        let sql = city_of_contact_sql();
        let row: Option<StoredCity> = on_tx!(self.tx, db => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(email).fetch_optional(db).await)?;
        Ok(row.map(CityRow::from))
    }

    pub async fn city_by_id(&mut self, id: i64) -> anyhow::Result<Option<CityRow>> {
        let sql = city_by_id_sql();
        let row: Option<StoredCity> =
            on_tx!(self.tx, db => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(db).await)?;
        Ok(row.map(CityRow::from))
    }

    pub(super) async fn audit(&mut self, actor: &str, action: &str, detail: &str) -> anyhow::Result<()> {
        on_tx!(self.tx, db => sqlx::query("INSERT INTO audit_log (at, actor, action, detail) VALUES ($1, $2, $3, $4)")
            .bind(now_ms())
            .bind(actor)
            .bind(action)
            .bind(detail)
            .execute(db)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn insert_city(&mut self, r: &CityRecord) -> anyhow::Result<i64> {
        self.cities = None;
        let now = now_ms();
        let id: i64 = on_tx!(self.tx, db => sqlx::query_scalar(
            "INSERT INTO cities (name, state, population, eligible, eligible_from, eligible_until, notes, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
        )
        .bind(&r.name)
        .bind(&r.state)
        .bind(r.population)
        .bind(r.eligible)
        .bind(r.eligible_from.map(|d| d.to_string()))
        .bind(r.eligible_until.map(|d| d.to_string()))
        .bind(&r.notes)
        .bind(now)
        .fetch_one(db)
        .await)?;
        Ok(id)
    }

    async fn update_city_row(&mut self, id: i64, r: &CityRecord) -> anyhow::Result<()> {
        self.cities = None;
        on_tx!(self.tx, db => sqlx::query(
            "UPDATE cities SET name = $1, state = $2, population = $3, eligible = $4, eligible_from = $5, \
             eligible_until = $6, notes = $7, updated_at = $8 WHERE id = $9",
        )
        .bind(&r.name)
        .bind(&r.state)
        .bind(r.population)
        .bind(r.eligible)
        .bind(r.eligible_from.map(|d| d.to_string()))
        .bind(r.eligible_until.map(|d| d.to_string()))
        .bind(&r.notes)
        .bind(now_ms())
        .bind(id)
        .execute(db)
        .await.map(|r| r.rows_affected()))?;
        on_tx!(self.tx, db => sqlx::query("DELETE FROM city_domains WHERE city_id = $1").bind(id).execute(db).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Gives `id` exactly these domains; a domain owned by another city is an error.
    async fn insert_domains(&mut self, id: i64, r: &CityRecord) -> anyhow::Result<()> {
        for d in &r.domains {
            let owner: Option<String> = on_tx!(self.tx, db => sqlx::query_scalar(
                "SELECT c.name || ', ' || c.state || ' (#' || c.id || ')' FROM city_domains d JOIN cities c ON c.id = d.city_id \
                 WHERE d.domain = $1 AND d.city_id <> $2",
            )
            .bind(d)
            .bind(id)
            .fetch_optional(db)
            .await)?;
            if let Some(owner) = owner {
                anyhow::bail!("domain {d} already belongs to {owner}");
            }
            on_tx!(self.tx, db => sqlx::query("INSERT INTO city_domains (domain, city_id) VALUES ($1, $2) ON CONFLICT (domain) DO NOTHING")
                .bind(d)
                .bind(id)
                .execute(db)
                .await.map(|r| r.rows_affected()))?;
        }
        Ok(())
    }

    /// As [`Store::apply_city_diff`], inside this transaction.
    pub async fn apply_city_diff(&mut self, diff: &Diff, actor: &str, detail: &str) -> anyhow::Result<()> {
        self.cities = None;
        for r in &diff.removed {
            on_tx!(self.tx, db => sqlx::query("DELETE FROM cities WHERE id = $1").bind(r.id).execute(db).await.map(|r| r.rows_affected()))?;
        }
        // Domains move between cities of the same file: clear the changed ones first.
        for c in &diff.changed {
            self.update_city_row(c.id, &c.record).await?;
        }
        for c in &diff.changed {
            self.insert_domains(c.id, &c.record).await?;
        }
        for a in &diff.added {
            let id = self.insert_city(a).await?;
            self.insert_domains(id, a).await?;
        }
        let summary = format!(
            "{detail}; added {}, changed {}, removed {}, unchanged {}",
            diff.added.len(),
            diff.changed.len(),
            diff.removed.len(),
            diff.unchanged
        );
        self.audit(actor, "cities import", &summary).await
    }

    /// Every city, as this transaction sees the registry. Read once per transaction: it holds
    /// the write lock, so only its own writes (which drop the copy) can change the registry.
    pub async fn list_cities(&mut self) -> anyhow::Result<Arc<Vec<CityRow>>> {
        Ok(self.registry().await?.0)
    }

    /// The registry and each mail domain's index in it, read once per transaction.
    async fn registry(&mut self) -> anyhow::Result<Registry> {
        if let Some((cities, by_domain)) = &self.cities {
            return Ok((Arc::clone(cities), Arc::clone(by_domain)));
        }
        let rows: Vec<StoredCity> = on_tx!(self.tx, db => sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_CITY} ORDER BY c.state, c.name, c.id")))
                .fetch_all(db)
                .await)?;
        let cities: Vec<CityRow> = rows.into_iter().map(CityRow::from).collect();
        let by_domain: HashMap<String, usize> =
            cities.iter().enumerate().flat_map(|(i, c)| c.record.domains.iter().map(move |d| (d.clone(), i))).collect();
        let registry = (Arc::new(cities), Arc::new(by_domain));
        self.cities = Some(registry.clone());
        Ok(registry)
    }

    /// Records a known official (an existing contact is updated).
    pub async fn upsert_contact(
        &mut self,
        email: &str,
        name: &str,
        title: &str,
        city: i64,
        source: &str,
        actor: &str,
    ) -> anyhow::Result<()> {
        on_tx!(self.tx, db => sqlx::query(
            "INSERT INTO contacts (email, name, title, city_id, source, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (email) DO UPDATE SET name = excluded.name, title = excluded.title, city_id = excluded.city_id, \
             source = excluded.source",
        )
        .bind(email)
        .bind(name)
        .bind(title)
        .bind(city)
        .bind(source)
        .bind(now_ms())
        .execute(db)
        .await.map(|r| r.rows_affected()))
        .with_context(|| format!("saving contact {email}"))?;
        self.audit(actor, "contact add", &format!("{email} → city #{city} ({source})")).await
    }
}

impl Store {
    pub async fn list_cities(&self) -> anyhow::Result<Vec<CityRow>> {
        let rows: Vec<StoredCity> =
            on_pool!(self.pool, db => sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_CITY} ORDER BY c.state, c.name, c.id")))
                .fetch_all(db)
                .await)
                .context("listing cities")?;
        Ok(rows.into_iter().map(CityRow::from).collect())
    }

    pub async fn city_by_id(&self, id: i64) -> anyhow::Result<Option<CityRow>> {
        let sql = city_by_id_sql();
        let row: Option<StoredCity> = on_pool!(self.pool, db => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(db).await)?;
        Ok(row.map(CityRow::from))
    }

    /// The city of a known contact.
    pub async fn city_of_contact(&self, email: &str) -> anyhow::Result<Option<CityRow>> {
        let sql = city_of_contact_sql();
        let row: Option<StoredCity> = on_pool!(self.pool, db => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(email).fetch_optional(db).await)?;
        Ok(row.map(CityRow::from))
    }

    /// Applies an import's diff in one transaction and records who did it, with `detail` (the
    /// file name and its SHA-256).
    pub async fn apply_city_diff(&self, diff: &Diff, actor: &str, detail: &str) -> anyhow::Result<()> {
        let mut tx = self.begin().await?;
        tx.apply_city_diff(diff, actor, detail).await?;
        tx.commit().await
    }

    pub async fn add_city(&self, r: &CityRecord, actor: &str) -> anyhow::Result<i64> {
        let mut tx = self.begin().await?;
        let id = tx.insert_city(r).await?;
        tx.insert_domains(id, r).await?;
        tx.audit(actor, "cities add", &format!("#{id} {}", r.label())).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn update_city(&self, id: i64, r: &CityRecord, actor: &str) -> anyhow::Result<()> {
        let mut tx = self.begin().await?;
        tx.update_city_row(id, r).await?;
        tx.insert_domains(id, r).await?;
        tx.audit(actor, "cities set", &format!("#{id} {}", r.label())).await?;
        tx.commit().await
    }

    /// Removes a city (its domains and contacts go with it; its requests keep their history).
    pub async fn remove_city(&self, id: i64, actor: &str) -> anyhow::Result<bool> {
        let mut tx = self.begin().await?;
        let Some(city) = tx.city_by_id(id).await? else { return Ok(false) };
        on_tx!(tx.tx, db => sqlx::query("DELETE FROM cities WHERE id = $1").bind(id).execute(db).await.map(|r| r.rows_affected()))?;
        tx.audit(actor, "cities remove", &format!("#{id} {}", city.record.label())).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// How many requests name this city.
    pub async fn requests_of_city(&self, id: i64) -> anyhow::Result<i64> {
        Ok(on_pool!(self.pool, db => sqlx::query_scalar("SELECT COUNT(*) FROM requests WHERE city_id = $1")
            .bind(id)
            .fetch_one(db)
            .await)?)
    }

    pub async fn add_contact(
        &self,
        email: &str,
        name: &str,
        title: &str,
        city: i64,
        actor: &str,
    ) -> anyhow::Result<()> {
        let mut tx = self.begin().await?;
        tx.upsert_contact(email, name, title, city, "admin", actor).await?;
        tx.commit().await
    }

    pub async fn remove_contact(&self, email: &str, actor: &str) -> anyhow::Result<bool> {
        let mut tx = self.begin().await?;
        let n = on_tx!(tx.tx, db => sqlx::query("DELETE FROM contacts WHERE email = $1")
            .bind(email)
            .execute(db)
            .await.map(|r| r.rows_affected()))?;
        if n > 0 {
            tx.audit(actor, "contact remove", email).await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    pub async fn list_contacts(&self, city: Option<i64>) -> anyhow::Result<Vec<ContactRow>> {
        Ok(on_pool!(self.pool, db => sqlx::query_as(
            "SELECT k.email, k.name, k.title, k.city_id, c.name || ', ' || c.state AS city, k.source FROM contacts k \
             JOIN cities c ON c.id = k.city_id WHERE $1 IS NULL OR k.city_id = $1 ORDER BY c.state, c.name, k.email",
        )
        .bind(city)
        .fetch_all(db)
        .await)?)
    }

    /// The audit log, newest first.
    pub async fn audit_log(&self, limit: i64) -> anyhow::Result<Vec<(i64, String, String, String)>> {
        Ok(
            on_pool!(self.pool, db => sqlx::query_as("SELECT at, actor, action, detail FROM audit_log ORDER BY id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(db)
            .await)?,
        )
    }
}
