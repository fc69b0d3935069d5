//! What kind of database fault an error is: one that passes (the database is locked, busy,
//! full, unreachable, or the pool ran dry), a constraint the data broke, or anything else.
//!
//! Owns: the classification, for SQLite result codes and, ready for PostgreSQL, SQLSTATE
//! classes. Callers hold `anyhow::Error`s, so [`fault_of`] walks an error's chain and looks for
//! a [`sqlx::Error`], a [`StoreError`] or a [`std::io::Error`] in it. Intake uses it to keep a
//! message in the inbox (and retry) on a transient fault rather than quarantine good mail.
//! Talks to: nothing; it only inspects errors.

use std::io;

/// The kind of a database fault, as a caller branches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The database could not do it now but may later: locked or busy past the busy timeout,
    /// disk full, an I/O error, the file cannot be opened, the pool timed out or closed, the
    /// connection was lost (PostgreSQL: SQLSTATE classes 08, 40, 53, 57, 58). Retry with backoff.
    Transient,
    /// The data broke a constraint: UNIQUE, PRIMARY KEY, FOREIGN KEY, NOT NULL, CHECK
    /// (SQLite `SQLITE_CONSTRAINT`, SQLSTATE class 23). Retrying the same write fails again.
    Constraint,
    /// Anything else: a bug, a schema mismatch, bad data read back, or no database error at all.
    Other,
}

/// A database error the store raises itself, outside sqlx (the incremental blob I/O).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    /// A SQLite call made directly, with its extended result code.
    #[error("{what}: {message} (SQLite code {code})")]
    Sqlite { what: String, code: i32, message: String },
}

impl StoreError {
    pub fn fault(&self) -> Fault {
        match self {
            StoreError::Sqlx(e) => sqlx_fault(e).unwrap_or(Fault::Other),
            StoreError::Sqlite { code, .. } => sqlite_code_fault(*code),
        }
    }
}

/// The fault behind `err`: the first database or I/O error in its chain decides;
/// [`Fault::Other`] when there is none.
pub fn fault_of(err: &anyhow::Error) -> Fault {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<StoreError>() {
            return e.fault();
        }
        if let Some(e) = cause.downcast_ref::<sqlx::Error>() {
            match sqlx_fault(e) {
                Some(f) => return f,
                // A wrapper (a migration's error): its source, further down the chain, decides.
                None => continue,
            }
        }
        if let Some(e) = cause.downcast_ref::<io::Error>() {
            return io_fault(e);
        }
    }
    Fault::Other
}

/// Whether `err` is a transient database fault (see [`Fault::Transient`]).
pub fn is_transient(err: &anyhow::Error) -> bool {
    fault_of(err) == Fault::Transient
}

/// The fault of one sqlx error; `None` for a wrapper whose source decides.
fn sqlx_fault(e: &sqlx::Error) -> Option<Fault> {
    Some(match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed | sqlx::Error::Tls(_) => {
            Fault::Transient
        }
        sqlx::Error::Io(io) => io_fault(io),
        sqlx::Error::Database(db) => database_fault(db.as_ref()),
        sqlx::Error::Migrate(_) => return None,
        _ => Fault::Other,
    })
}

fn database_fault(db: &dyn sqlx::error::DatabaseError) -> Fault {
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        return match db.code().and_then(|c| c.parse::<i32>().ok()) {
            Some(code) => sqlite_code_fault(code),
            None => Fault::Other,
        };
    }
    // Any other backend reports a SQLSTATE (PostgreSQL, MySQL).
    match db.code() {
        Some(code) => sqlstate_fault(&code),
        None if is_constraint_kind(db.kind()) => Fault::Constraint,
        None => Fault::Other,
    }
}

fn is_constraint_kind(kind: sqlx::error::ErrorKind) -> bool {
    use sqlx::error::ErrorKind;
    matches!(
        kind,
        ErrorKind::UniqueViolation
            | ErrorKind::ForeignKeyViolation
            | ErrorKind::NotNullViolation
            | ErrorKind::CheckViolation
            | ErrorKind::ExclusionViolation
    )
}

/// A SQLite (extended) result code: the primary code is its low byte.
pub fn sqlite_code_fault(code: i32) -> Fault {
    const BUSY: i32 = 5;
    const LOCKED: i32 = 6;
    const NOMEM: i32 = 7;
    const IOERR: i32 = 10;
    const FULL: i32 = 13;
    const CANTOPEN: i32 = 14;
    const PROTOCOL: i32 = 15;
    const CONSTRAINT: i32 = 19;
    match code & 0xff {
        BUSY | LOCKED | NOMEM | IOERR | FULL | CANTOPEN | PROTOCOL => Fault::Transient,
        CONSTRAINT => Fault::Constraint,
        _ => Fault::Other,
    }
}

/// A SQLSTATE by its class (the first two characters).
pub fn sqlstate_fault(code: &str) -> Fault {
    match code.get(..2) {
        // connection exception, transaction rollback (serialization failure, deadlock),
        // insufficient resources (disk full, out of memory, too many connections), operator
        // intervention (shutdown, cancelled), system error (I/O).
        Some("08" | "40" | "53" | "57" | "58") => Fault::Transient,
        Some("23") => Fault::Constraint,
        _ => Fault::Other,
    }
}

fn io_fault(e: &io::Error) -> Fault {
    match e.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported => Fault::Other,
        _ => Fault::Transient,
    }
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
