//! Whether the database's schema is the one this binary was built for, without changing it.
//!
//! Owns: the comparison of sqlx's `_sqlx_migrations` table with the migrations embedded in the
//! binary ([`super::SQLITE_MIGRATIONS`]). Only `intake311 migrate` and `intake311 run` change
//! the schema; every other command asks [`Store::schema_state`] first and stops when the answer
//! is not [`SchemaState::Current`]. Also holds the one-row quarantine read the command line
//! needs (see [`Store::quarantine_entry`]) until `messages.rs` takes it over.
//! Talks to: the database only (read-only statements).

use crate::store::backend::on_pool;
use std::fmt;

use serde::Serialize;

use super::backend::Pool;
use super::{QuarantineRow, Store, migrations_of};

/// How the database's schema compares with this binary's migrations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SchemaState {
    /// Every migration of this binary is applied, and no other.
    Current { applied: usize },
    /// No schema at all (a new or foreign database).
    Missing { known: usize },
    /// Some of this binary's migrations are not applied yet.
    Older { applied: usize, known: usize, pending: Vec<i64> },
    /// Migrations a newer intake311 applied, which this binary does not know.
    Newer { unknown: Vec<i64> },
    /// A migration failed part-way, or was changed after it was applied.
    Broken { version: i64, why: String },
}

impl SchemaState {
    pub fn is_current(&self) -> bool {
        matches!(self, SchemaState::Current { .. })
    }
}

impl fmt::Display for SchemaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaState::Current { applied } => write!(f, "schema is current ({applied} migration(s))"),
            SchemaState::Missing { .. } => {
                write!(f, "the database has no schema yet: run `intake311 migrate`")
            }
            SchemaState::Older { applied, known, .. } => write!(
                f,
                "the database schema is older than this intake311 ({applied} of {known} migrations applied): \
                 run `intake311 migrate`"
            ),
            SchemaState::Newer { unknown } => write!(
                f,
                "the database schema is newer than this intake311 (unknown migration(s) {}): use the newer intake311",
                unknown.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
            ),
            SchemaState::Broken { version, why } => {
                write!(f, "migration {version} {why}; the schema needs a person to look at it")
            }
        }
    }
}

/// One row of `_sqlx_migrations`.
#[derive(sqlx::FromRow)]
struct Applied {
    version: i64,
    success: bool,
    checksum: Vec<u8>,
}

/// Compares what the database recorded with what the binary knows (pure).
fn compare(applied: Option<Vec<Applied>>, known: &[(i64, &[u8])]) -> SchemaState {
    let Some(applied) = applied.filter(|a| !a.is_empty()) else {
        return SchemaState::Missing { known: known.len() };
    };
    for a in &applied {
        if !a.success {
            return SchemaState::Broken { version: a.version, why: "failed part-way".into() };
        }
        if let Some((_, sum)) = known.iter().find(|(v, _)| *v == a.version)
            && *sum != a.checksum.as_slice()
        {
            return SchemaState::Broken { version: a.version, why: "was changed after it was applied".into() };
        }
    }
    let unknown: Vec<i64> = applied.iter().map(|a| a.version).filter(|v| !known.iter().any(|(k, _)| k == v)).collect();
    if !unknown.is_empty() {
        return SchemaState::Newer { unknown };
    }
    let pending: Vec<i64> =
        known.iter().map(|(v, _)| *v).filter(|v| !applied.iter().any(|a| a.version == *v)).collect();
    if pending.is_empty() {
        SchemaState::Current { applied: applied.len() }
    } else {
        SchemaState::Older { applied: applied.len(), known: known.len(), pending }
    }
}

impl Store {
    /// The schema's state, read without changing anything.
    pub async fn schema_state(&self) -> anyhow::Result<SchemaState> {
        let has_table = match &self.pool {
            Pool::Sqlite(p) => {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
                )
                .fetch_one(p)
                .await?;
                n > 0
            }
            Pool::Postgres(p) => {
                sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL").fetch_one(p).await?
            }
        };
        let applied = if has_table {
            let rows: Vec<Applied> = on_pool!(self.pool, db => {
                sqlx::query_as("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version").fetch_all(db).await
            })?;
            Some(rows)
        } else {
            None
        };
        let known: Vec<(i64, &[u8])> = migrations_of(self.engine())
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .map(|m| (m.version, &*m.checksum))
            .collect();
        Ok(compare(applied, &known))
    }

    /// One quarantine record by id (`quarantine show/retry/release`), without listing them all.
    pub async fn quarantine_entry(&self, id: i64) -> anyhow::Result<Option<QuarantineRow>> {
        Ok(on_pool!(self.pool, db => sqlx::query_as(
            "SELECT id, mailbox, uidvalidity, uid, from_addr, subject, size, header_id, reason, status, created_at \
             FROM quarantine WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(db)
        .await)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(v: &[(i64, bool, &[u8])]) -> Option<Vec<Applied>> {
        Some(
            v.iter()
                .map(|(version, success, sum)| Applied { version: *version, success: *success, checksum: sum.to_vec() })
                .collect(),
        )
    }

    #[test]
    fn the_states_follow_from_the_two_lists() {
        let known: [(i64, &[u8]); 2] = [(1, b"a"), (2, b"b")];
        assert_eq!(compare(None, &known), SchemaState::Missing { known: 2 });
        assert_eq!(compare(applied(&[]), &known), SchemaState::Missing { known: 2 });
        assert_eq!(
            compare(applied(&[(1, true, b"a")]), &known),
            SchemaState::Older { applied: 1, known: 2, pending: vec![2] }
        );
        assert_eq!(compare(applied(&[(1, true, b"a"), (2, true, b"b")]), &known), SchemaState::Current { applied: 2 });
        assert_eq!(
            compare(applied(&[(1, true, b"a"), (2, true, b"b"), (3, true, b"c")]), &known),
            SchemaState::Newer { unknown: vec![3] }
        );
        assert!(matches!(compare(applied(&[(1, false, b"a")]), &known), SchemaState::Broken { version: 1, .. }));
        assert!(matches!(compare(applied(&[(1, true, b"x")]), &known), SchemaState::Broken { version: 1, .. }));
        assert!(compare(applied(&[(1, true, b"a")]), &known).to_string().contains("run `intake311 migrate`"));
    }

    #[tokio::test]
    async fn a_new_database_is_missing_then_current_after_migrate() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("s.db").display()), 1).await?;
        assert!(matches!(store.schema_state().await?, SchemaState::Missing { .. }));
        store.migrate().await?;
        assert!(store.schema_state().await?.is_current(), "{}", store.schema_state().await?);
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)")
            .execute(store.sqlite())
            .await?;
        assert!(matches!(store.schema_state().await?, SchemaState::Older { .. }));
        assert_eq!(store.quarantine_entry(1).await?.map(|q| q.id), None);
        Ok(())
    }
}
