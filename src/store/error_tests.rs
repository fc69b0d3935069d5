//! Tests of the fault classification, on real SQLite conditions where they can be made.

use std::str::FromStr as _;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::ConnectOptions as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

use super::*;
use crate::store::Store;

fn options(path: &std::path::Path, busy: Duration) -> anyhow::Result<SqliteConnectOptions> {
    Ok(SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(busy))
}

/// Another connection holds the write lock (`BEGIN IMMEDIATE`) while this one writes with a
/// short busy timeout: "database is locked", a transient fault, also through context layers.
#[tokio::test]
async fn a_write_behind_a_held_write_lock_is_transient() -> anyhow::Result<()> {
    let (dir, store) = Store::for_test().await?;
    store.close().await;
    let path = dir.path().join("t.db");
    let mut holder = options(&path, Duration::from_secs(1))?.connect().await?;
    sqlx::query("BEGIN IMMEDIATE").execute(&mut holder).await?;

    let mut writer = options(&path, Duration::from_millis(50))?.connect().await?;
    let started = std::time::Instant::now();
    let err = sqlx::query("INSERT INTO audit_log (at, actor, action) VALUES (1, 'a', 'b')")
        .execute(&mut writer)
        .await
        .context("recording")
        .context("handling a message")
        .expect_err("the write lock is held");
    assert!(started.elapsed() < Duration::from_secs(5), "gave up after the busy timeout");
    assert_eq!(fault_of(&err), Fault::Transient, "{err:#}");
    assert!(is_transient(&err));
    let begin = sqlx::query("BEGIN IMMEDIATE").execute(&mut writer).await.map_err(anyhow::Error::from);
    assert_eq!(begin.as_ref().map_err(fault_of).err(), Some(Fault::Transient), "BEGIN IMMEDIATE as well");

    sqlx::query("ROLLBACK").execute(&mut holder).await?;
    sqlx::query("INSERT INTO audit_log (at, actor, action) VALUES (1, 'a', 'b')").execute(&mut writer).await?;
    Ok(())
}

/// A UNIQUE (and a FOREIGN KEY) violation is a constraint fault, not a transient one.
#[tokio::test]
async fn a_unique_violation_is_a_constraint() -> anyhow::Result<()> {
    let (_dir, store) = Store::for_test().await?;
    let insert = "INSERT INTO staff (email, created_at) VALUES ('a@311.test', 1)";
    sqlx::query(insert).execute(store.sqlite()).await?;
    let err = sqlx::query(insert).execute(store.sqlite()).await.context("adding staff").expect_err("unique");
    assert_eq!(fault_of(&err), Fault::Constraint, "{err:#}");
    let err = sqlx::query("INSERT INTO city_domains (domain, city_id) VALUES ('x.gov', 999)")
        .execute(store.sqlite())
        .await
        .map_err(StoreError::from)
        .expect_err("no such city");
    assert_eq!(err.fault(), Fault::Constraint, "{err}");
    let err = sqlx::query("SELECT nope FROM staff").execute(store.sqlite()).await.map_err(anyhow::Error::from);
    assert_eq!(err.as_ref().map_err(fault_of).err(), Some(Fault::Other), "a bad statement is not transient");
    Ok(())
}

/// A pool whose only connection is taken times out (transient), and so does a closed pool.
#[tokio::test]
async fn a_pool_that_runs_dry_or_closes_is_transient() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let opts = options(&dir.path().join("p.db"), Duration::from_millis(50))?.create_if_missing(true);
    let pool = SqlitePoolOptions::new().max_connections(1).acquire_timeout(Duration::from_millis(50));
    let pool = pool.connect_with(opts).await?;
    let held = pool.acquire().await?;
    let err = anyhow::Error::from(pool.acquire().await.expect_err("no connection free"));
    assert_eq!(fault_of(&err), Fault::Transient, "{err:#}");
    drop(held);
    pool.close().await;
    let err = anyhow::Error::from(pool.acquire().await.expect_err("closed"));
    assert_eq!(fault_of(&err), Fault::Transient, "{err:#}");
    Ok(())
}

/// A database file that cannot be opened (its directory is missing) is transient: the disk or
/// mount may come back.
#[tokio::test]
async fn a_database_that_cannot_be_opened_is_transient() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let err = Store::connect(&format!("sqlite://{}", dir.path().join("gone/x.db").display()), 1)
        .await
        .expect_err("no such directory");
    assert_eq!(fault_of(&err), Fault::Transient, "{err:#}");
    Ok(())
}

#[test]
fn codes_and_sqlstates_map_to_faults() {
    // SQLite: BUSY, BUSY_SNAPSHOT (517), LOCKED, IOERR_WRITE (778), FULL, CANTOPEN.
    for code in [5, 517, 6, 778, 13, 14] {
        assert_eq!(sqlite_code_fault(code), Fault::Transient, "{code}");
    }
    // CONSTRAINT, CONSTRAINT_UNIQUE (2067), CONSTRAINT_FOREIGNKEY (787).
    for code in [19, 2067, 787] {
        assert_eq!(sqlite_code_fault(code), Fault::Constraint, "{code}");
    }
    // ERROR, READONLY, CORRUPT, MISMATCH.
    for code in [1, 8, 11, 20] {
        assert_eq!(sqlite_code_fault(code), Fault::Other, "{code}");
    }
    for code in ["08006", "40001", "40P01", "53100", "57P01", "58030"] {
        assert_eq!(sqlstate_fault(code), Fault::Transient, "{code}");
    }
    for code in ["23505", "23503", "23502"] {
        assert_eq!(sqlstate_fault(code), Fault::Constraint, "{code}");
    }
    for code in ["42P01", "22001", "", "4"] {
        assert_eq!(sqlstate_fault(code), Fault::Other, "{code}");
    }
}

#[test]
fn the_chain_is_walked_and_non_database_errors_are_other() {
    let plain = anyhow::anyhow!("template `ack` failed to render");
    assert_eq!(fault_of(&plain), Fault::Other);
    let io = anyhow::Error::from(io::Error::new(io::ErrorKind::StorageFull, "disk full")).context("writing");
    assert_eq!(fault_of(&io), Fault::Transient);
    let blob =
        anyhow::Error::from(StoreError::Sqlite { what: "writing blob".into(), code: 13, message: "full".into() })
            .context("storing a message");
    assert_eq!(fault_of(&blob), Fault::Transient);
    let pool = anyhow::Error::from(sqlx::Error::PoolTimedOut).context("a").context("b");
    assert_eq!(fault_of(&pool), Fault::Transient);
    assert_eq!(fault_of(&anyhow::Error::from(sqlx::Error::RowNotFound)), Fault::Other);
}
