//! Direct access to the database the daemon writes, on either engine: [`TestDb`] runs one SQL
//! text on SQLite or PostgreSQL, so a test reads rows (or changes them) with one call whatever
//! `INTAKE311_TEST_ENGINE` chose.
//!
//! Write placeholders as `$1`, `$2`…: both engines accept them (sqlx's SQLite takes `$N` as
//! well as `?`). Column types differ in a few places (flags are BOOLEAN on PostgreSQL, INTEGER
//! on SQLite; `CAST(bytea AS TEXT)` is hex on PostgreSQL): read such columns as bytes or
//! compare in SQL. Talks to: sqlx.
#![allow(dead_code)]

use anyhow::Context as _;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{PgPool, SqlitePool};

use super::Engine;

/// A connection pool to the test's database, of the engine the test runs on.
#[derive(Debug, Clone)]
pub enum TestDb {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A value bound to a `$N` placeholder.
#[derive(Debug, Clone)]
pub enum Arg {
    Int(i64),
    Text(String),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::Int(v)
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(v.to_string())
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Arg {
        Arg::Text(v)
    }
}

/// Binds `args` in order to a sqlx query of either engine.
macro_rules! bound {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for a in $args {
            q = match a {
                Arg::Int(v) => q.bind(*v),
                Arg::Text(s) => q.bind(s.clone()),
            };
        }
        q
    }};
}

impl TestDb {
    /// Connects to `url` (`sqlite://…` or `postgres://…`), which must exist already.
    pub async fn connect(url: &str) -> anyhow::Result<TestDb> {
        Ok(match Engine::of_url(url) {
            Engine::Sqlite => {
                TestDb::Sqlite(SqlitePool::connect(url).await.with_context(|| format!("connecting {url}"))?)
            }
            Engine::Postgres => {
                TestDb::Postgres(PgPool::connect(url).await.with_context(|| format!("connecting {url}"))?)
            }
        })
    }

    pub fn engine(&self) -> Engine {
        match self {
            TestDb::Sqlite(_) => Engine::Sqlite,
            TestDb::Postgres(_) => Engine::Postgres,
        }
    }

    /// The first column of the one row `sql` returns, as an integer (`COUNT(*)`, an id…).
    pub async fn scalar_i64(&self, sql: &str, args: &[Arg]) -> anyhow::Result<i64> {
        let q = sqlx::AssertSqlSafe(sql.to_string());
        match self {
            TestDb::Sqlite(p) => bound!(sqlx::query_scalar(q), args).fetch_one(p).await,
            TestDb::Postgres(p) => bound!(sqlx::query_scalar(q), args).fetch_one(p).await,
        }
        .with_context(|| format!("{sql} {args:?}"))
    }

    /// Every row `sql` returns, each as `T` (a tuple of simple types: i64, String, Vec<u8>,
    /// Option of them).
    pub async fn rows<T>(&self, sql: &str, args: &[Arg]) -> anyhow::Result<Vec<T>>
    where
        T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
    {
        let q = sqlx::AssertSqlSafe(sql.to_string());
        match self {
            TestDb::Sqlite(p) => bound!(sqlx::query_as(q), args).fetch_all(p).await,
            TestDb::Postgres(p) => bound!(sqlx::query_as(q), args).fetch_all(p).await,
        }
        .with_context(|| format!("{sql} {args:?}"))
    }

    /// Runs a statement; returns the number of rows it changed.
    pub async fn execute(&self, sql: &str, args: &[Arg]) -> anyhow::Result<u64> {
        let q = sqlx::AssertSqlSafe(sql.to_string());
        match self {
            TestDb::Sqlite(p) => bound!(sqlx::query(q), args).execute(p).await.map(|r| r.rows_affected()),
            TestDb::Postgres(p) => bound!(sqlx::query(q), args).execute(p).await.map(|r| r.rows_affected()),
        }
        .with_context(|| format!("{sql} {args:?}"))
    }

    pub async fn close(&self) {
        match self {
            TestDb::Sqlite(p) => p.close().await,
            TestDb::Postgres(p) => p.close().await,
        }
    }
}
