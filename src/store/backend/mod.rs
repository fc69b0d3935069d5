//! The two engines behind [`super::Store`]: SQLite (the embedded default) and PostgreSQL (for
//! several daemons on one database). Callers never see which one is behind a store.
//!
//! Owns: the pool and transaction enums, and the two macros that run one query written once on
//! whichever engine is behind them ([`on_pool!`], [`on_tx!`]); each expands the query twice, once
//! per engine, so a row maps through the same `FromRow` on both. What differs between the
//! engines lives in [`sqlite`] and [`postgres`]: connecting, blobs, counters, claims, liveness
//! and size. Talks to: sqlx.

pub(crate) mod postgres;
pub(crate) mod sqlite;

use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

/// Which engine a URL, pool or transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// The engine a `database.url` names, or `None` for another scheme.
    pub fn of_url(url: &str) -> Option<Engine> {
        let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase())?;
        match scheme.as_str() {
            "sqlite" => Some(Engine::Sqlite),
            "postgres" | "postgresql" => Some(Engine::Postgres),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

/// A connection pool of either engine. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    pub(crate) fn engine(&self) -> Engine {
        match self {
            Pool::Sqlite(_) => Engine::Sqlite,
            Pool::Postgres(_) => Engine::Postgres,
        }
    }

    pub(crate) async fn close(&self) {
        match self {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

/// An open transaction of either engine; dropping it rolls back.
pub(crate) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    pub(crate) fn engine(&self) -> Engine {
        match self {
            Tx::Sqlite(_) => Engine::Sqlite,
            Tx::Postgres(_) => Engine::Postgres,
        }
    }

    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.commit().await,
            Tx::Postgres(t) => t.commit().await,
        }
    }
}

/// Runs `$body` with `$db` bound to the pool of whichever engine `$pool` (a [`Pool`]) is:
/// `on_pool!(self.pool, db => sqlx::query(SQL).bind(x).execute(db).await.map(|r| r.rows_affected()))`.
macro_rules! on_pool {
    ($pool:expr, $db:ident => $body:expr) => {
        match &$pool {
            $crate::store::backend::Pool::Sqlite(p) => {
                let $db = p;
                $body
            }
            $crate::store::backend::Pool::Postgres(p) => {
                let $db = p;
                $body
            }
        }
    };
}

/// Runs `$body` with `$db` bound to the connection of the transaction `$tx` (a [`Tx`]), of
/// whichever engine it is.
macro_rules! on_tx {
    ($tx:expr, $db:ident => $body:expr) => {
        match &mut $tx {
            $crate::store::backend::Tx::Sqlite(t) => {
                let $db = &mut **t;
                $body
            }
            $crate::store::backend::Tx::Postgres(t) => {
                let $db = &mut **t;
                $body
            }
        }
    };
}

pub(crate) use {on_pool, on_tx};

#[cfg(test)]
mod tests {
    use super::Engine;

    #[test]
    fn the_engine_is_read_from_the_scheme() {
        assert_eq!(Engine::of_url("sqlite:///var/lib/x.db"), Some(Engine::Sqlite));
        assert_eq!(Engine::of_url("postgres://u@h/db"), Some(Engine::Postgres));
        assert_eq!(Engine::of_url("PostgreSQL://u@h/db?sslmode=require"), Some(Engine::Postgres));
        assert_eq!(Engine::of_url("mysql://u@h/db"), None);
        assert_eq!(Engine::of_url("no scheme"), None);
    }
}
