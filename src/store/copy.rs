//! `intake311 db copy`: moving a deployment from SQLite to PostgreSQL, every table, every id.
//!
//! Owns: the table list (every table the PostgreSQL migrations create, in the order they create
//! them, so each row's foreign keys point at rows already copied), the column mapping (by name:
//! SQLite's `PRAGMA table_info` against the target's `information_schema.columns`, converting
//! INTEGER → bigint, 0/1 → boolean, BLOB → bytea, TEXT → text), and the copy itself.
//!
//! The source is read in one SQLite read transaction (one snapshot), table by table in rowid
//! order (the id, for tables that have one), in batches of at most [`BATCH_ROWS`] rows and
//! about [`BATCH_BYTES`] bytes. A BLOB over [`PIECE`] bytes is not part of its batch: it is read
//! in pieces of that size with `substr` and each piece goes out at once, so a 20 MB mail is
//! never held whole on this side. Rows go to PostgreSQL with `COPY … FROM STDIN (FORMAT
//! binary)` rather than multi-row INSERTs: no statement to prepare per batch size, no
//! 65,535-parameter limit, values sent as they are (no text escaping of bytea), and a large
//! value can be sent in pieces because a binary COPY field is just its length and its bytes.
//!
//! Everything lands in ONE target transaction that also locks the tables, checks they are
//! empty first, compares the row counts table by table, moves every identity sequence past
//! the highest id ever used (SQLite's `sqlite_sequence` included, so a removed city's id is
//! not handed out again) and writes the audit line: a failed copy leaves the target as it was.
//! Talks to: both databases, through the store's pools.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr as _;

use anyhow::Context as _;
use sqlx::{PgConnection, Row as _, SqliteConnection, TypeInfo as _, ValueRef as _};

use super::backend::postgres::redact;
/// A database URL with its password hidden, for messages.
pub use super::backend::postgres::redact as redact_url;
use super::backend::{Engine, Pool};
use super::{Store, migrations_of, now_ms};

mod wire;
use wire::{COPY_HEADER, COPY_TRAILER, Field, PgType, encode_field};

/// At most this many rows per batch read from SQLite.
const BATCH_ROWS: i64 = 500;
/// A batch ends once its rows hold about this many bytes (every batch has at least one row).
const BATCH_BYTES: i64 = 8 << 20;
/// BLOBs over this size are read and sent in pieces of this size.
const PIECE: i64 = 4 << 20;
/// COPY data is sent to the server in messages of about this size.
const SEND_BYTES: usize = 256 << 10;

/// Why a copy was refused or undone; the message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("db copy copies from SQLite to PostgreSQL only: {what}")]
    WrongEngine { what: String },
    #[error("there is no SQLite database at {path}")]
    NoSource { path: String },
    #[error(
        "the source database {url} cannot be copied: {state}. Run `intake311 migrate` with a config whose \
         database.url is {url}, then copy again"
    )]
    SourceSchema { url: String, state: String },
    #[error(
        "the target database is not empty: {}. db copy only fills an empty database",
        list_counts(.tables)
    )]
    TargetNotEmpty { tables: Vec<(String, i64)> },
    #[error("column {table}.{column} is in the {present} but not in the {missing}")]
    ColumnMismatch { table: String, column: String, present: &'static str, missing: &'static str },
    #[error("table {table} of the {side} has no counterpart in the {other}")]
    ExtraTable { table: String, side: &'static str, other: &'static str },
    #[error("the row counts differ after the copy, so nothing was kept: {}", list_mismatches(.tables))]
    CountMismatch { tables: Vec<(String, i64, i64)> },
}

fn list_counts(tables: &[(String, i64)]) -> String {
    tables.iter().map(|(t, n)| format!("{t} has {n} row(s)")).collect::<Vec<_>>().join(", ")
}

fn list_mismatches(tables: &[(String, i64, i64)]) -> String {
    tables.iter().map(|(t, s, d)| format!("{t}: {s} in the source, {d} in the target")).collect::<Vec<_>>().join(", ")
}

/// What was copied: rows per table (equal on both sides), in copy order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CopyReport {
    pub tables: Vec<TableCount>,
    pub total: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableCount {
    pub table: String,
    pub rows: i64,
}

impl fmt::Display for CopyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.tables.iter().map(|t| t.table.len()).max().unwrap_or(0).max("total".len());
        for t in &self.tables {
            writeln!(f, "{:<width$}  {} rows", t.table, t.rows)?;
        }
        write!(f, "{:<width$}  {} rows", "total", self.total)
    }
}

/// Checks that `from` names SQLite and `to` PostgreSQL (the only direction supported), and
/// that the SQLite file exists (connecting would create an empty one).
pub fn check_direction(from: &str, to: &str) -> Result<(), CopyError> {
    let what = match (Engine::of_url(from), Engine::of_url(to)) {
        (Some(Engine::Sqlite), Some(Engine::Postgres)) => return source_exists(from),
        (Some(Engine::Postgres), _) => format!("--from {} is a PostgreSQL database", redact(from)),
        (None, _) => format!("--from `{}` is not a database URL (expected sqlite://PATH)", redact(from)),
        (_, Some(Engine::Sqlite)) => format!("--to {} is a SQLite database", redact(to)),
        (_, None) => format!("--to `{}` is not a database URL (expected postgres://…)", redact(to)),
    };
    Err(CopyError::WrongEngine { what })
}

fn source_exists(url: &str) -> Result<(), CopyError> {
    let path = sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .map(|o| o.get_filename().to_path_buf())
        .map_err(|e| CopyError::WrongEngine { what: format!("--from `{url}`: {e}") })?;
    if url.contains(":memory:") || url.contains("mode=memory") || !path.is_file() {
        return Err(CopyError::NoSource { path: path.display().to_string() });
    }
    Ok(())
}

/// Opens both ends of a copy: the SQLite source (whose schema must be current; it is not
/// changed) and the PostgreSQL target (migrated here, so an empty database will do).
pub async fn open_for_copy(from_url: &str, to_url: &str) -> anyhow::Result<(Store, Store)> {
    check_direction(from_url, to_url)?;
    let from = Store::connect(from_url, 2).await?;
    let state = from.schema_state().await.context("reading the source's schema version")?;
    if !state.is_current() {
        return Err(CopyError::SourceSchema { url: redact(from_url), state: state.to_string() }.into());
    }
    let to = Store::connect(to_url, 2).await?;
    to.migrate().await.with_context(|| format!("migrating the target {}", redact(to_url)))?;
    Ok((from, to))
}

/// A column as both sides have it.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    ty: PgType,
    identity: bool,
}

/// Every table `sqls` (migrations, in order) leave behind, in the order they create them.
fn tables_created<'a>(sqls: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut tables: Vec<String> = Vec::new();
    for sql in sqls {
        let text: String = sql.lines().map(|l| l.split("--").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
        let words: Vec<String> = text
            .split(|c: char| c.is_whitespace() || c == '(' || c == ';' || c == ',')
            .filter(|w| !w.is_empty())
            .map(|w| w.trim_matches('"').to_ascii_lowercase())
            .collect();
        let mut i = 0;
        while let Some(w) = words.get(i) {
            let next = |k: usize| words.get(i + k).map(String::as_str).unwrap_or("");
            let name_after = |k: usize| {
                if next(k) == "if" {
                    words.get(i + k + 2 + usize::from(next(k + 1) == "not"))
                } else {
                    words.get(i + k)
                }
            };
            match (w.as_str(), next(1)) {
                ("create", "table") => {
                    if let Some(n) = name_after(2).filter(|n| !tables.contains(n)) {
                        tables.push(n.clone());
                    }
                }
                ("drop", "table") => {
                    if let Some(n) = name_after(2) {
                        tables.retain(|t| t != n);
                    }
                }
                ("alter", "table") if next(3) == "rename" && next(4) == "to" => {
                    let (old, new) = (next(2).to_string(), next(5).to_string());
                    if let Some(t) = tables.iter_mut().find(|t| **t == old) {
                        *t = new;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
    tables.retain(|t| t != "_sqlx_migrations");
    tables
}

/// The tables a copy fills, in order: those of the PostgreSQL migrations.
fn copy_order() -> Vec<String> {
    tables_created(
        migrations_of(Engine::Postgres).iter().filter(|m| m.migration_type.is_up_migration()).map(|m| m.sql.as_str()),
    )
}

/// A name safe to put between double quotes in SQL as it is.
fn plain(name: &str) -> anyhow::Result<&str> {
    let ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    anyhow::ensure!(ok, "unexpected table or column name `{name}`");
    Ok(name)
}

/// How many of the first `sizes` (row bytes, in order) make the next batch: rows up to
/// `max_rows`, and up to `budget` bytes, but at least one.
fn batch_len(sizes: &[i64], max_rows: usize, budget: i64) -> usize {
    let mut total = 0i64;
    let mut n = 0;
    for &s in sizes.iter().take(max_rows) {
        if n > 0 && total.saturating_add(s) > budget {
            break;
        }
        total = total.saturating_add(s);
        n += 1;
    }
    n
}

/// `SELECT COUNT(*)` of `table`, on either side.
macro_rules! count {
    ($db:expr, $table:expr) => {{
        let sql = format!("SELECT COUNT(*) FROM \"{}\"", plain($table)?);
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one($db)
            .await
            .with_context(|| format!("counting {}", $table))?;
        n
    }};
}

/// Copies every table of `from` (SQLite) into `to` (PostgreSQL, migrated and empty), keeping
/// ids, tracking counters and IMAP positions; see the module doc. `source` (the source's URL,
/// redacted) and `actor` go into the audit line; `progress(table, rows so far)` is called after
/// every batch.
pub async fn copy_database(
    from: &Store,
    to: &Store,
    source: &str,
    actor: &str,
    mut progress: impl FnMut(&str, i64),
) -> anyhow::Result<CopyReport> {
    let (Pool::Sqlite(src_pool), Pool::Postgres(dst_pool)) = (&from.pool, &to.pool) else {
        return Err(CopyError::WrongEngine {
            what: format!("the source is {} and the target {}", from.engine().as_str(), to.engine().as_str()),
        }
        .into());
    };
    let tables = copy_order();
    let mut src = src_pool.begin().await.context("starting the read transaction on the source")?;
    let mut dst = dst_pool.begin().await.context("starting the transaction on the target")?;
    check_table_sets(&mut src, &mut dst, &tables).await?;

    // Nobody writes the target while it is filled, and it must be empty.
    let list = tables.iter().map(|t| plain(t).map(|t| format!("\"{t}\""))).collect::<anyhow::Result<Vec<_>>>()?;
    sqlx::query("SET LOCAL lock_timeout = '10s'").execute(&mut *dst).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("LOCK TABLE {} IN EXCLUSIVE MODE", list.join(", "))))
        .execute(&mut *dst)
        .await
        .context("locking the target's tables (is a daemon running on the target?)")?;
    let mut busy = Vec::new();
    for t in &tables {
        let n = count!(&mut *dst, t);
        if n > 0 {
            busy.push((t.clone(), n));
        }
    }
    if !busy.is_empty() {
        return Err(CopyError::TargetNotEmpty { tables: busy }.into());
    }

    for t in &tables {
        let columns = columns_of(&mut src, &mut dst, t).await?;
        copy_table(&mut src, &mut dst, t, &columns, &mut progress)
            .await
            .with_context(|| format!("copying table {t}"))?;
        set_sequences(&mut src, &mut dst, t, &columns).await.with_context(|| format!("setting {t}'s id sequence"))?;
    }

    let mut report = CopyReport { tables: Vec::new(), total: 0 };
    let mut mismatches = Vec::new();
    for t in &tables {
        let (s, d) = (count!(&mut *src, t), count!(&mut *dst, t));
        if s != d {
            mismatches.push((t.clone(), s, d));
        }
        report.total += d;
        report.tables.push(TableCount { table: t.clone(), rows: d });
    }
    if !mismatches.is_empty() {
        return Err(CopyError::CountMismatch { tables: mismatches }.into());
    }
    sqlx::query("INSERT INTO audit_log (at, actor, action, detail) VALUES ($1, $2, 'db copy', $3)")
        .bind(now_ms())
        .bind(actor)
        .bind(format!("from {source}: {} rows in {} tables", report.total, report.tables.len()))
        .execute(&mut *dst)
        .await
        .context("writing the audit line")?;
    dst.commit().await.context("committing the copy")?;
    src.rollback().await.ok();
    Ok(report)
}

/// Refuses a table on either side that the other does not have (besides sqlx's own).
async fn check_table_sets(src: &mut SqliteConnection, dst: &mut PgConnection, tables: &[String]) -> anyhow::Result<()> {
    let on_source: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
         AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&mut *src)
    .await?;
    let on_target: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() \
         AND table_type = 'BASE TABLE' AND table_name <> '_sqlx_migrations' ORDER BY table_name",
    )
    .fetch_all(&mut *dst)
    .await?;
    for (list, side) in [(&on_source, "source"), (&on_target, "target")] {
        if let Some(t) = list.iter().find(|t| !tables.contains(t)) {
            return Err(CopyError::ExtraTable { table: t.clone(), side, other: "PostgreSQL migrations" }.into());
        }
    }
    if let Some(t) = tables.iter().find(|t| !on_source.contains(t)) {
        return Err(CopyError::ExtraTable { table: t.clone(), side: "PostgreSQL migrations", other: "source" }.into());
    }
    Ok(())
}

/// `table`'s columns in the target's order, matched by name with the source's.
async fn columns_of(src: &mut SqliteConnection, dst: &mut PgConnection, table: &str) -> anyhow::Result<Vec<Column>> {
    let source: Vec<String> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT name FROM pragma_table_info('{}')", plain(table)?)))
            .fetch_all(&mut *src)
            .await?;
    let target: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text, is_identity::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut *dst)
    .await?;
    let mismatch = |column: &str, present, missing| CopyError::ColumnMismatch {
        table: table.to_string(),
        column: column.to_string(),
        present,
        missing,
    };
    if let Some(c) = source.iter().find(|c| !target.iter().any(|(t, _, _)| t == *c)) {
        return Err(mismatch(c, "source", "target").into());
    }
    let mut columns = Vec::new();
    for (name, data_type, identity) in target {
        if !source.contains(&name) {
            return Err(mismatch(&name, "target", "source").into());
        }
        let ty = PgType::of(&data_type).with_context(|| {
            format!("column {table}.{name} has type {data_type}, which db copy does not convert to")
        })?;
        plain(&name)?;
        columns.push(Column { name, ty, identity: identity == "YES" });
    }
    Ok(columns)
}

/// Copies one table in batches through one COPY; returns the rows copied.
async fn copy_table(
    src: &mut SqliteConnection,
    dst: &mut PgConnection,
    table: &str,
    columns: &[Column],
    progress: &mut impl FnMut(&str, i64),
) -> anyhow::Result<i64> {
    let q = |c: &Column| format!("\"{}\"", c.name);
    let names: Vec<String> = columns.iter().map(q).collect();
    let sizes: Vec<String> = columns
        .iter()
        .map(|c| match c.ty {
            PgType::BigInt | PgType::Boolean => "8".to_string(),
            PgType::Text => format!("COALESCE(length({}), 0)", q(c)),
            PgType::Bytea => format!("min(COALESCE(length({}), 0), {PIECE})", q(c)),
        })
        .collect();
    // Each BLOB column is read twice: the value when small (NULL when large) and its length.
    let fields: Vec<String> = columns
        .iter()
        .map(|c| match c.ty {
            PgType::Bytea => format!("CASE WHEN length({0}) > {PIECE} THEN NULL ELSE {0} END, length({0})", q(c)),
            _ => q(c),
        })
        .collect();
    let plan_sql = format!(
        "SELECT rowid, {} FROM \"{table}\" WHERE rowid > $1 ORDER BY rowid LIMIT {BATCH_ROWS}",
        sizes.join(" + ")
    );
    let read_sql =
        format!("SELECT rowid, {} FROM \"{table}\" WHERE rowid > $1 AND rowid <= $2 ORDER BY rowid", fields.join(", "));
    let copy_sql = format!("COPY \"{table}\" ({}) FROM STDIN (FORMAT binary)", names.join(", "));
    let ncols = i16::try_from(columns.len()).context("too many columns")?;

    let mut copy = dst.copy_in_raw(&copy_sql).await.with_context(|| format!("starting {copy_sql}"))?;
    let mut buf: Vec<u8> = COPY_HEADER.to_vec();
    let mut after = i64::MIN;
    let mut copied = 0i64;
    let fed: anyhow::Result<()> = async {
        loop {
            let plan: Vec<(i64, i64)> =
                sqlx::query_as(sqlx::AssertSqlSafe(plan_sql.as_str())).bind(after).fetch_all(&mut *src).await?;
            let sizes: Vec<i64> = plan.iter().map(|(_, s)| *s).collect();
            let n = batch_len(&sizes, plan.len(), BATCH_BYTES);
            let Some(&(upto, _)) = n.checked_sub(1).and_then(|i| plan.get(i)) else { break };
            let rows =
                sqlx::query(sqlx::AssertSqlSafe(read_sql.as_str())).bind(after).bind(upto).fetch_all(&mut *src).await?;
            for row in &rows {
                let rowid: i64 = row.try_get(0)?;
                buf.extend_from_slice(&ncols.to_be_bytes());
                let mut at = 1;
                for c in columns {
                    let field = field_of(row, at, c).with_context(|| format!("{table}.{} of row {rowid}", c.name))?;
                    at += if c.ty == PgType::Bytea { 2 } else { 1 };
                    encode_field(&mut buf, field)?;
                    if let Field::Pieces(len) = field {
                        copy.send(std::mem::take(&mut buf)).await?;
                        send_pieces(&mut *src, &mut copy, table, &c.name, rowid, len).await?;
                    }
                }
                if buf.len() >= SEND_BYTES {
                    copy.send(std::mem::take(&mut buf)).await?;
                }
            }
            copied += i64::try_from(rows.len()).unwrap_or(i64::MAX);
            after = upto;
            progress(table, copied);
        }
        buf.extend_from_slice(COPY_TRAILER);
        copy.send(std::mem::take(&mut buf)).await?;
        Ok(())
    }
    .await;
    if let Err(e) = fed {
        copy.abort(format!("db copy failed: {e:#}")).await.ok();
        return Err(e);
    }
    let n = copy.finish().await.with_context(|| format!("finishing {copy_sql}"))?;
    progress(table, copied);
    anyhow::ensure!(
        i64::try_from(n).ok() == Some(copied),
        "the server took {n} rows of {table} but {copied} were sent"
    );
    Ok(copied)
}

/// The value of column `c`, read at `at` of a batch row, converted to `c`'s target type.
fn field_of<'r>(row: &'r sqlx::sqlite::SqliteRow, at: usize, c: &Column) -> anyhow::Result<Field<'r>> {
    // SQLite keeps whatever was stored; say what was found rather than sqlx's type names.
    let wrong = |_: sqlx::Error| {
        let found = row.try_get_raw(at).map(|v| v.type_info().name().to_string()).unwrap_or_default();
        anyhow::anyhow!("holds a {found} value, which does not convert to {}", c.ty.name())
    };
    Ok(match c.ty {
        PgType::BigInt => row.try_get::<Option<i64>, _>(at).map_err(wrong)?.map_or(Field::Null, Field::Int),
        PgType::Boolean => match row.try_get::<Option<i64>, _>(at).map_err(wrong)? {
            None => Field::Null,
            Some(v @ (0 | 1)) => Field::Bool(v == 1),
            Some(v) => anyhow::bail!("holds {v}, which is not a boolean (0 or 1)"),
        },
        PgType::Text => {
            row.try_get::<Option<&str>, _>(at).map_err(wrong)?.map_or(Field::Null, |s| Field::Bytes(s.as_bytes()))
        }
        PgType::Bytea => match row.try_get::<Option<i64>, _>(at + 1)? {
            None => Field::Null,
            Some(len) if len > PIECE => Field::Pieces(len),
            Some(_) => Field::Bytes(row.try_get::<&[u8], _>(at).map_err(wrong)?),
        },
    })
}

/// Reads the BLOB `table.column` of row `rowid` in pieces and sends each as COPY data.
async fn send_pieces(
    src: &mut SqliteConnection,
    copy: &mut sqlx::postgres::PgCopyIn<&mut PgConnection>,
    table: &str,
    column: &str,
    rowid: i64,
    len: i64,
) -> anyhow::Result<()> {
    let sql = format!("SELECT substr(\"{column}\", $1, $2) FROM \"{table}\" WHERE rowid = $3");
    let mut offset = 0i64;
    while offset < len {
        let piece: Vec<u8> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(offset + 1)
            .bind(PIECE.min(len - offset))
            .bind(rowid)
            .fetch_one(&mut *src)
            .await?;
        anyhow::ensure!(!piece.is_empty(), "the blob ended at {offset} of {len} bytes");
        offset += i64::try_from(piece.len()).unwrap_or(i64::MAX);
        copy.send(piece).await?;
    }
    anyhow::ensure!(offset == len, "the blob has {offset} bytes, {len} were announced");
    Ok(())
}

/// Moves `table`'s identity sequence past every id SQLite ever handed out: the highest id
/// copied, or `sqlite_sequence` (AUTOINCREMENT tables remember removed ids) if higher.
async fn set_sequences(
    src: &mut SqliteConnection,
    dst: &mut PgConnection,
    table: &str,
    columns: &[Column],
) -> anyhow::Result<()> {
    let has_sequence_table: bool =
        sqlx::query_scalar("SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'")
            .fetch_one(&mut *src)
            .await?;
    let seq: Option<i64> = if has_sequence_table {
        sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = $1")
            .bind(table)
            .fetch_optional(&mut *src)
            .await?
    } else {
        None
    };
    for c in columns.iter().filter(|c| c.identity) {
        let max: Option<i64> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT MAX(\"{}\") FROM \"{table}\"", c.name)))
                .fetch_one(&mut *dst)
                .await?;
        let (value, is_called) = next_id_setting(max, seq);
        sqlx::query("SELECT setval(pg_get_serial_sequence($1, $2), $3, $4)")
            .bind(format!("\"{table}\""))
            .bind(&c.name)
            .bind(value)
            .bind(is_called)
            .execute(&mut *dst)
            .await?;
    }
    Ok(())
}

/// `setval`'s value and `is_called` for a table whose highest id is `max` and whose SQLite
/// sequence is `seq`: the next id is one above both; with neither, it is 1.
fn next_id_setting(max: Option<i64>, seq: Option<i64>) -> (i64, bool) {
    let n = max.unwrap_or(0).max(seq.unwrap_or(0));
    if n > 0 { (n, true) } else { (1, false) }
}

/// Tables and counts as a map (for tests and callers comparing two reports).
impl CopyReport {
    pub fn counts(&self) -> HashMap<&str, i64> {
        self.tables.iter().map(|t| (t.table.as_str(), t.rows)).collect()
    }
}

#[cfg(test)]
#[path = "copy_tests.rs"]
mod tests;
