//! What only PostgreSQL does: connecting (TLS through rustls, `sslmode` and `sslrootcert` in the
//! URL), writing large blobs in pieces, the database's size and the server's version.
//!
//! Owns: the PostgreSQL connection options. Talks to: PostgreSQL through sqlx.

use std::str::FromStr as _;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions as _, PgConnection, PgPool};

use super::sqlite::STREAM_BLOB_MIN;

/// Connects a pool. The URL's `sslmode` (`disable`, `prefer`, `require`, `verify-ca`,
/// `verify-full`) and `sslrootcert` (a CA file for a private CA) choose TLS; the connection is
/// tested before this returns, so a wrong password or host is reported at start.
pub(crate) async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let opts = PgConnectOptions::from_str(url)
        .with_context(|| format!("database.url `{}` is not a valid postgres URL", redact(url)))?
        .application_name("intake311")
        .log_statements(log::LevelFilter::Off)
        .log_slow_statements(log::LevelFilter::Warn, Duration::from_secs(2));
    let pool = PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        // A dead server is noticed quickly; the daemon retries and waits.
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(opts)
        .await
        .with_context(|| format!("connecting to {}", redact(url)))?;
    Ok(pool)
}

/// The URL with its password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (auth, host) = match rest.rsplit_once('@') {
        Some((auth, host)) => (auth, host),
        None => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// Size of the current database in bytes.
pub(crate) async fn size_bytes(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT pg_database_size(current_database())").fetch_one(pool).await?)
}

/// The server's version, for `check`.
pub(crate) async fn version(pool: &PgPool) -> anyhow::Result<String> {
    let v: String = sqlx::query_scalar("SELECT version()").fetch_one(pool).await?;
    // "PostgreSQL 15.8 (Debian 15.8-0+deb12u1) on x86_64-pc-linux-gnu, compiled by …"
    Ok(v.split(" on ").next().unwrap_or(&v).to_string())
}

/// Writes `data` into the (empty) bytea at `table.column` of the row whose `key` is `id`, sent
/// in 1 MiB pieces, so no 20 MB parameter is ever built. The pieces go into a temporary table of
/// this session and are joined once on the server (`string_agg`): appending each piece to the
/// column (`col = col || $1`) would rewrite the whole value per piece, quadratic in WAL and dead
/// rows for a 20 MB mail.
pub(crate) async fn write_blob<K>(
    db: &mut PgConnection,
    table: &str,
    column: &str,
    key: &str,
    id: K,
    data: &[u8],
) -> anyhow::Result<()>
where
    K: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Clone + Send + Sync + std::fmt::Display,
{
    let context = || format!("writing blob {table}.{column} #{id}");
    // A temporary table lives as long as the session, unless the transaction that created it
    // rolled back: look before creating, so no NOTICE is raised on every blob.
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass('pg_temp.blob_pieces')::text")
        .fetch_one(&mut *db)
        .await
        .with_context(context)?;
    if exists.is_none() {
        sqlx::raw_sql("CREATE TEMP TABLE blob_pieces (n INTEGER NOT NULL, data BYTEA NOT NULL) ON COMMIT DELETE ROWS")
            .execute(&mut *db)
            .await
            .with_context(context)?;
    }
    sqlx::raw_sql("DELETE FROM blob_pieces").execute(&mut *db).await.with_context(context)?;
    for (n, piece) in data.chunks(STREAM_BLOB_MIN).enumerate() {
        sqlx::query("INSERT INTO blob_pieces (n, data) VALUES ($1, $2)")
            .bind(i32::try_from(n).context("too many pieces")?)
            .bind(piece)
            .execute(&mut *db)
            .await
            .with_context(context)?;
    }
    let sql = format!(
        "UPDATE {table} SET {column} = (SELECT COALESCE(string_agg(data, ''::bytea ORDER BY n), ''::bytea) \
         FROM blob_pieces) WHERE {key} = $1"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(id.clone()).execute(&mut *db).await.with_context(context)?;
    sqlx::raw_sql("DELETE FROM blob_pieces").execute(&mut *db).await.with_context(context)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn a_password_never_reaches_a_message() {
        assert_eq!(
            redact("postgres://intake:s3cret@db.example:5432/intake"),
            "postgres://intake:***@db.example:5432/intake"
        );
        assert_eq!(redact("postgres://intake@db/x"), "postgres://intake@db/x");
        assert_eq!(redact("postgresql://db/x?sslmode=require"), "postgresql://db/x?sslmode=require");
    }
}
