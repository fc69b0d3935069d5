//! The eligible-city registry: cities and their mail domains, plus the audit log of changes.

use anyhow::Context as _;
use serde::Serialize;
use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;

use super::{Store, now_ms};

/// A city as stored, with its domains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CityRow {
    pub id: i64,
    pub name: String,
    pub state: String,
    pub eligible: bool,
    pub domains: Vec<String>,
}

/// A city as an import file gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCity {
    pub name: String,
    pub state: String,
    pub eligible: bool,
    /// Lower-case, sorted, unique.
    pub domains: Vec<String>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: usize,
}

fn city_from_row(row: &SqliteRow) -> anyhow::Result<CityRow> {
    let domains: Option<String> = row.try_get("domains")?;
    let mut domains: Vec<String> =
        domains.unwrap_or_default().split(',').filter(|d| !d.is_empty()).map(str::to_string).collect();
    domains.sort();
    Ok(CityRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        state: row.try_get("state")?,
        eligible: row.try_get::<i64, _>("eligible")? != 0,
        domains,
    })
}

const SELECT_CITY: &str = "SELECT c.id, c.name, c.state, c.eligible, \
     (SELECT GROUP_CONCAT(d.domain, ',') FROM city_domains d WHERE d.city_id = c.id) AS domains \
     FROM cities c";

impl Store {
    pub async fn list_cities(&self) -> anyhow::Result<Vec<CityRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT_CITY} ORDER BY c.state, c.name")))
            .fetch_all(&self.pool)
            .await
            .context("listing cities")?;
        rows.iter().map(city_from_row).collect()
    }

    /// The city owning the longest of `candidates` (a domain and its parents), with that domain.
    pub async fn city_for_domains(&self, candidates: &[String]) -> anyhow::Result<Option<(String, CityRow)>> {
        if candidates.is_empty() {
            return Ok(None);
        }
        let placeholders: Vec<String> = (1..=candidates.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT d.domain, c.id, c.name, c.state, c.eligible, NULL AS domains FROM city_domains d \
             JOIN cities c ON c.id = d.city_id WHERE d.domain IN ({}) ORDER BY LENGTH(d.domain) DESC LIMIT 1",
            placeholders.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for c in candidates {
            q = q.bind(c);
        }
        let Some(row) = q.fetch_optional(&self.pool).await.context("looking up a city by domain")? else {
            return Ok(None);
        };
        let domain: String = row.try_get("domain")?;
        Ok(Some((domain, city_from_row(&row)?)))
    }

    /// Adds or updates every city in one transaction (keyed by name and state); a city's domains
    /// become exactly those given. A domain already owned by another city fails the whole import.
    pub async fn import_cities(&self, cities: &[NewCity], actor: &str, detail: &str) -> anyhow::Result<ImportSummary> {
        let mut tx = self.begin().await?;
        let mut summary = ImportSummary::default();
        let now = now_ms();
        // Pass 1: add or update the cities and drop the domains of those that change, so that a
        // domain moving between two cities of the same file does not depend on row order.
        let mut domains_to_insert: Vec<(i64, &NewCity)> = Vec::new();
        for city in cities {
            let label = format!("{}, {}", city.name, city.state);
            let existing =
                sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT_CITY} WHERE c.name = $1 AND c.state = $2")))
                    .bind(&city.name)
                    .bind(&city.state)
                    .fetch_optional(&mut *tx.tx)
                    .await?;
            let existing = existing.as_ref().map(city_from_row).transpose()?;
            let id = match &existing {
                Some(row) if row.eligible == city.eligible && row.domains == city.domains => {
                    summary.unchanged += 1;
                    continue;
                }
                Some(row) => {
                    sqlx::query("UPDATE cities SET eligible = $1, updated_at = $2 WHERE id = $3")
                        .bind(i64::from(city.eligible))
                        .bind(now)
                        .bind(row.id)
                        .execute(&mut *tx.tx)
                        .await?;
                    sqlx::query("DELETE FROM city_domains WHERE city_id = $1")
                        .bind(row.id)
                        .execute(&mut *tx.tx)
                        .await?;
                    summary.changed.push(label);
                    row.id
                }
                None => {
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO cities (name, state, eligible, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING id",
                    )
                    .bind(&city.name)
                    .bind(&city.state)
                    .bind(i64::from(city.eligible))
                    .bind(now)
                    .fetch_one(&mut *tx.tx)
                    .await?;
                    summary.added.push(label);
                    id
                }
            };
            domains_to_insert.push((id, city));
        }
        // Pass 2: the new domains. One still owned by a city outside the file fails the import.
        for (id, city) in domains_to_insert {
            for domain in &city.domains {
                let owner: Option<String> = sqlx::query_scalar(
                    "SELECT c.name || ', ' || c.state FROM city_domains d JOIN cities c ON c.id = d.city_id WHERE d.domain = $1",
                )
                .bind(domain)
                .fetch_optional(&mut *tx.tx)
                .await?;
                if let Some(owner) = owner {
                    anyhow::bail!(
                        "domain {domain} of {}, {} already belongs to {owner}; nothing was changed",
                        city.name,
                        city.state
                    );
                }
                sqlx::query("INSERT INTO city_domains (domain, city_id) VALUES ($1, $2)")
                    .bind(domain)
                    .bind(id)
                    .execute(&mut *tx.tx)
                    .await?;
            }
        }
        sqlx::query("INSERT INTO audit_log (at, actor, action, detail) VALUES ($1, $2, 'cities import', $3)")
            .bind(now)
            .bind(actor)
            .bind(format!(
                "{detail}; added {}, changed {}, unchanged {}",
                summary.added.len(),
                summary.changed.len(),
                summary.unchanged
            ))
            .execute(&mut *tx.tx)
            .await?;
        tx.commit().await?;
        Ok(summary)
    }
}
