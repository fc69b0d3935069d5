//! Unit tests of `db copy`'s pure parts: the table order, the binary COPY encoding, batch sizes,
//! sequence settings and the URL checks.

use super::*;

#[test]
fn the_tables_are_those_of_the_postgres_migrations_in_creation_order() {
    let tables = copy_order();
    assert_eq!(
        tables,
        [
            "cities",
            "city_domains",
            "staff",
            "tracking_counters",
            "requests",
            "messages",
            "contacts",
            "admin_tokens",
            "request_participants",
            "attachment_blobs",
            "attachments",
            "outbox",
            "suppressions",
            "mailbox_state",
            "quarantine",
            "request_events",
            "audit_log",
            "message_raw",
            "daemons",
            "mailbox_leases",
            "deadline_notices",
            "request_topics",
            "experts",
            "referrals",
        ]
    );
}

#[test]
fn later_migrations_that_drop_or_rename_tables_are_followed() {
    let sqls = [
        "-- CREATE TABLE in_a_comment (x)\nCREATE TABLE a (id BIGINT);\nCREATE TABLE IF NOT EXISTS \"B\"(x TEXT);",
        "DROP TABLE IF EXISTS a; ALTER TABLE b RENAME TO c; create table d (x bigint)",
    ];
    assert_eq!(tables_created(sqls), ["c", "d"]);
}

#[test]
fn fields_are_encoded_as_binary_copy_wants_them() -> anyhow::Result<()> {
    let mut buf = Vec::new();
    encode_field(&mut buf, Field::Null)?;
    encode_field(&mut buf, Field::Int(258))?;
    encode_field(&mut buf, Field::Bool(true))?;
    encode_field(&mut buf, Field::Bytes(b"ab"))?;
    encode_field(&mut buf, Field::Pieces(5))?;
    let expected: Vec<u8> = [
        &[0xff, 0xff, 0xff, 0xff][..],
        &[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 1, 2],
        &[0, 0, 0, 1, 1],
        &[0, 0, 0, 2, b'a', b'b'],
        &[0, 0, 0, 5],
    ]
    .concat();
    assert_eq!(buf, expected);
    assert_eq!(COPY_HEADER.len(), 19);
    assert_eq!(&COPY_HEADER[..11], b"PGCOPY\n\xff\r\n\0");
    Ok(())
}

#[test]
fn a_batch_is_bounded_by_rows_and_bytes_but_never_empty() {
    assert_eq!(batch_len(&[], 500, 100), 0);
    assert_eq!(batch_len(&[10; 20], 5, 1000), 5);
    assert_eq!(batch_len(&[40, 40, 40], 500, 100), 2);
    assert_eq!(batch_len(&[400, 1, 1], 500, 100), 1);
    assert_eq!(batch_len(&[1, 400], 500, 100), 1);
}

#[test]
fn the_next_id_is_above_the_rows_and_the_sqlite_sequence() {
    assert_eq!(next_id_setting(Some(7), Some(9)), (9, true));
    assert_eq!(next_id_setting(Some(7), None), (7, true));
    assert_eq!(next_id_setting(None, Some(3)), (3, true));
    assert_eq!(next_id_setting(None, None), (1, false));
    assert_eq!(next_id_setting(None, Some(0)), (1, false));
}

#[test]
fn only_sqlite_to_postgres_is_accepted_and_passwords_stay_hidden() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("x.db");
    std::fs::write(&db, b"")?;
    let sqlite = format!("sqlite://{}", db.display());
    assert!(check_direction(&sqlite, "postgresql://u:pw@h/db").is_ok());
    assert!(check_direction(&sqlite, "postgres://u:pw@h/db").is_ok());
    let msg = |r: Result<(), CopyError>| r.err().map(|e| e.to_string()).unwrap_or_default();
    let back = msg(check_direction("postgres://u:secret@h/db", &sqlite));
    assert!(back.contains("from SQLite to PostgreSQL only") && back.contains("--from"), "{back}");
    assert!(!back.contains("secret"), "{back}");
    assert!(msg(check_direction(&sqlite, &sqlite)).contains("--to"));
    assert!(msg(check_direction("mysql://h/db", "postgres://h/db")).contains("not a database URL"));
    let missing = format!("sqlite://{}", dir.path().join("nope.db").display());
    assert!(msg(check_direction(&missing, "postgres://h/db")).contains("no SQLite database at"));
    assert!(!dir.path().join("nope.db").exists());
    Ok(())
}

#[test]
fn the_refusals_name_tables_and_counts() {
    let e = CopyError::TargetNotEmpty { tables: vec![("requests".into(), 3), ("messages".into(), 7)] };
    assert_eq!(
        e.to_string(),
        "the target database is not empty: requests has 3 row(s), messages has 7 row(s). \
         db copy only fills an empty database"
    );
    let report = CopyReport {
        tables: vec![
            TableCount { table: "cities".into(), rows: 2 },
            TableCount { table: "audit_log".into(), rows: 10 },
        ],
        total: 12,
    };
    assert_eq!(report.to_string(), "cities     2 rows\naudit_log  10 rows\ntotal      12 rows");
}
