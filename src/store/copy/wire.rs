//! The binary format of `COPY … FROM STDIN (FORMAT binary)` for the four column types `db copy`
//! converts to: the stream's header and trailer, and one field (its length, -1 for NULL, and
//! its bytes in the server's binary form: big-endian integers, one byte per boolean, text and
//! bytea as they are). Talks to: nothing.

use anyhow::Context as _;

/// The PostgreSQL type of a target column, and so how a SQLite value converts to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PgType {
    BigInt,
    Boolean,
    Bytea,
    Text,
}

impl PgType {
    pub(super) fn of(data_type: &str) -> Option<PgType> {
        match data_type {
            "bigint" => Some(PgType::BigInt),
            "boolean" => Some(PgType::Boolean),
            "bytea" => Some(PgType::Bytea),
            "text" => Some(PgType::Text),
            _ => None,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            PgType::BigInt => "bigint",
            PgType::Boolean => "boolean",
            PgType::Bytea => "bytea",
            PgType::Text => "text",
        }
    }
}

/// One field of a COPY row, borrowed from the batch read from SQLite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Field<'a> {
    Null,
    Int(i64),
    Bool(bool),
    Bytes(&'a [u8]),
    /// A BLOB of this many bytes, sent in pieces after its length.
    Pieces(i64),
}

/// The header of a binary COPY stream (signature, flags, header extension length).
pub(super) const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The trailer: a field count of -1.
pub(super) const COPY_TRAILER: &[u8] = &[0xff, 0xff];

/// Appends one field in binary COPY format: its length (-1 for NULL) and its bytes; for
/// [`Field::Pieces`] only the length (the bytes follow).
pub(super) fn encode_field(buf: &mut Vec<u8>, field: Field<'_>) -> anyhow::Result<()> {
    let len = |n: usize| i32::try_from(n).context("a value over 2 GiB");
    match field {
        Field::Null => buf.extend_from_slice(&(-1i32).to_be_bytes()),
        Field::Int(v) => {
            buf.extend_from_slice(&8i32.to_be_bytes());
            buf.extend_from_slice(&v.to_be_bytes());
        }
        Field::Bool(b) => {
            buf.extend_from_slice(&1i32.to_be_bytes());
            buf.push(u8::from(b));
        }
        Field::Bytes(b) => {
            buf.extend_from_slice(&len(b.len())?.to_be_bytes());
            buf.extend_from_slice(b);
        }
        Field::Pieces(n) => {
            buf.extend_from_slice(&i32::try_from(n).context("a value over 2 GiB")?.to_be_bytes());
        }
    }
    Ok(())
}
