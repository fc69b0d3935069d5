//! What only SQLite does: opening the file with the pragmas the daemon relies on, writing large
//! blobs in pieces through SQLite's incremental blob I/O, and the file's size.
//!
//! Owns: the SQLite connection options and the blob FFI. Talks to: SQLite through sqlx and
//! libsqlite3-sys.

use std::str::FromStr as _;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions as _, Sqlite, SqlitePool, Transaction};

use crate::store::StoreError;

/// Blobs larger than this are written in pieces with SQLite's incremental blob I/O instead of
/// being bound whole: a bound 20 MB blob is copied by sqlx, by SQLite's bind and again into the
/// record, which with the mail itself held over 100 MB at once.
pub(crate) const STREAM_BLOB_MIN: usize = 1024 * 1024;

/// Opens (creating the file if missing) and configures the database: WAL, `synchronous =
/// FULL`, foreign keys, a busy timeout. Returns the pool and the canonical path of the file
/// (`None` in memory).
pub(crate) async fn connect(
    url: &str,
    max_connections: u32,
) -> anyhow::Result<(SqlitePool, Option<std::path::PathBuf>)> {
    let opts = SqliteConnectOptions::from_str(url)
        .with_context(|| format!("database.url `{url}` is not a valid sqlite URL"))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
        // Savepoint sub-journals (one per message of a group commit) and temporary sort
        // structures stay in memory instead of a temp file written through syscalls: a
        // sub-journal holds only the pages one message changed.
        .pragma("temp_store", "memory")
        // Every statement would otherwise be formatted for a debug log line nobody reads;
        // statements slower than a second are still logged as warnings.
        .log_statements(log::LevelFilter::Off);
    let opts_path = opts.get_filename().to_path_buf();
    let pool = SqlitePoolOptions::new()
        .max_connections(max_connections.max(1))
        .connect_with(opts)
        .await
        .with_context(|| format!("opening database {url}"))?;
    let on_disk = !(url.contains(":memory:") || url.contains("mode=memory"));
    // Every process must name the same owner files, however it reached the database.
    let db_path = std::fs::canonicalize(&opts_path).unwrap_or(opts_path);
    Ok((pool, on_disk.then_some(db_path)))
}

/// Size of the database in bytes (page_count * page_size).
pub(crate) async fn size_bytes(pool: &SqlitePool) -> anyhow::Result<i64> {
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(pool).await?;
    let size: i64 = sqlx::query_scalar("PRAGMA page_size").fetch_one(pool).await?;
    Ok(pages * size)
}

/// The SQLite library's version, for `check`.
pub(crate) async fn version(pool: &SqlitePool) -> anyhow::Result<String> {
    let v: String = sqlx::query_scalar("SELECT sqlite_version()").fetch_one(pool).await?;
    Ok(format!("SQLite {v}"))
}

/// Writes `data` into the (zero-filled, same-sized) blob at `table.column`, row `rowid`, in
/// 1 MiB pieces, on this transaction's connection.
pub(crate) async fn write_blob(
    tx: &mut Transaction<'static, Sqlite>,
    table: &str,
    column: &str,
    rowid: i64,
    data: &[u8],
) -> anyhow::Result<()> {
    use libsqlite3_sys as ffi;
    use std::ffi::{CStr, CString};
    let table_c = CString::new(table).context("table name")?;
    let column_c = CString::new(column).context("column name")?;
    let mut handle = tx.lock_handle().await.context("locking the SQLite handle")?;
    let db = handle.as_raw_handle().as_ptr();
    let errmsg = |db: *mut ffi::sqlite3| -> String {
        // SAFETY: `db` is the live handle we hold the lock on; sqlite3_errmsg returns a
        // NUL-terminated string owned by SQLite, copied out at once.
        unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)).to_string_lossy().into_owned() }
    };
    let mut blob: *mut ffi::sqlite3_blob = std::ptr::null_mut();
    // SAFETY: the handle is locked for us (no other thread uses it), the names are
    // NUL-terminated, and `blob` is closed on every path below.
    let rc = unsafe {
        ffi::sqlite3_blob_open(db, c"main".as_ptr(), table_c.as_ptr(), column_c.as_ptr(), rowid, 1, &mut blob)
    };
    let fail = |what: &str, code: i32, message: String| StoreError::Sqlite {
        what: format!("{what} blob {table}.{column} #{rowid}"),
        code,
        message,
    };
    if rc != ffi::SQLITE_OK {
        return Err(fail("opening", rc, errmsg(db)).into());
    }
    let mut failure = None;
    for (i, piece) in data.chunks(STREAM_BLOB_MIN).enumerate() {
        let (Ok(len), Ok(offset)) = (i32::try_from(piece.len()), i32::try_from(i * STREAM_BLOB_MIN)) else {
            failure = Some((ffi::SQLITE_TOOBIG, "blob over 2 GiB".to_string()));
            break;
        };
        // SAFETY: `blob` is open for writing and `piece` is valid for `len` bytes.
        let rc = unsafe { ffi::sqlite3_blob_write(blob, piece.as_ptr().cast(), len, offset) };
        if rc != ffi::SQLITE_OK {
            failure = Some((rc, errmsg(db)));
            break;
        }
    }
    // SAFETY: `blob` came from a successful sqlite3_blob_open and is closed exactly once.
    let rc = unsafe { ffi::sqlite3_blob_close(blob) };
    if let Some((code, e)) = failure {
        return Err(fail("writing", code, e).into());
    }
    if rc != ffi::SQLITE_OK {
        return Err(fail("closing", rc, errmsg(db)).into());
    }
    Ok(())
}
