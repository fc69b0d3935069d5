//! Whose fault an error is: ours (the database, the deployment) or the message's.
//!
//! A fault of ours never quarantines good mail: the message stays in the inbox and its batch is
//! retried with backoff until the fault is gone (a locked, full or unreachable database; a
//! template that does not render). Only what may come from the message itself (a constraint its
//! data broke, a header we cannot compose) counts towards quarantine after
//! [`super::MAX_ATTEMPTS`]. Pure; talks to nothing.

use crate::outbound::TemplateError;

/// True when `e` (anywhere in its chain) is a fault of ours rather than of the message: any
/// template error, any I/O error, and any database error but a broken constraint (which the
/// message's data may have caused). Errors about the message itself (an address we cannot write
/// to, a mail we cannot compose) are not.
pub fn ours(e: &anyhow::Error) -> bool {
    if crate::store::is_transient(e) {
        return true;
    }
    e.chain().any(|cause| {
        if cause.is::<TemplateError>() || cause.is::<std::io::Error>() {
            return true;
        }
        if cause.is::<crate::store::StoreError>() {
            return crate::store::fault_of(e) != crate::store::Fault::Constraint;
        }
        match cause.downcast_ref::<sqlx::Error>() {
            // A constraint the message's data broke may be the message's; anything else the
            // database or the driver says (busy, locked, full, read-only, a row or column that
            // is not there, a value that does not decode) is ours.
            Some(sqlx::Error::Database(db)) => matches!(db.kind(), sqlx::error::ErrorKind::Other),
            Some(_) => true,
            None => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_and_io_errors_are_ours() {
        let t = anyhow::Error::from(TemplateError { file: "x.txt.hbs".into(), reason: "bad".into() });
        assert!(ours(&t.context("rendering the acknowledgement")));
        let io = anyhow::Error::from(std::io::Error::other("disk full"));
        assert!(ours(&io));
        assert!(ours(&anyhow::Error::from(sqlx::Error::PoolTimedOut).context("begin")));
    }

    #[test]
    fn message_faults_are_not_and_driver_faults_are() {
        assert!(!ours(&anyhow::anyhow!("`bob@` is not an address we can write to")));
        // A row or column that is not there is the code's or the schema's fault, not the mail's.
        assert!(ours(&anyhow::Error::from(sqlx::Error::RowNotFound)));
        assert!(ours(&anyhow::Error::from(sqlx::Error::ColumnNotFound("status".into()))));
    }

    #[tokio::test]
    async fn a_locked_database_is_ours_and_a_unique_violation_is_not() {
        use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
        let dir = tempfile::tempdir().expect("dir");
        let opts = SqliteConnectOptions::new()
            .filename(dir.path().join("f.db"))
            .create_if_missing(true)
            .busy_timeout(std::time::Duration::from_millis(50));
        let pool = SqlitePoolOptions::new().max_connections(2).connect_with(opts).await.expect("pool");
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY)").execute(&pool).await.expect("create");
        let mut holder = pool.acquire().await.expect("conn");
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *holder).await.expect("lock");
        let locked = sqlx::query("INSERT INTO t (id) VALUES (1)").execute(&pool).await.expect_err("must be busy");
        assert!(ours(&anyhow::Error::from(locked)));
        sqlx::query("INSERT INTO t (id) VALUES (1)").execute(&mut *holder).await.expect("insert");
        let dup = sqlx::query("INSERT INTO t (id) VALUES (1)").execute(&mut *holder).await.expect_err("unique");
        assert!(!ours(&anyhow::Error::from(dup)));
    }
}
