//! Ids are never handed out again (migration 0004): a removed city's id stays retired, and the
//! migration that brought AUTOINCREMENT keeps every row, id, foreign key and index.

use crate::domain::city::CityRecord;
use crate::registry;
use crate::store::Store;

fn city(name: &str, domain: &str) -> CityRecord {
    CityRecord {
        name: name.into(),
        state: "OH".into(),
        population: None,
        eligible: true,
        eligible_from: None,
        eligible_until: None,
        notes: String::new(),
        domains: vec![domain.into()],
    }
}

/// Add A and B, export, remove B, add C: C does not get B's id, and the old export imported
/// again names an id that no longer exists instead of "updating" C.
#[tokio::test]
async fn a_removed_citys_id_is_not_handed_out_again() -> anyhow::Result<()> {
    let (_dir, store) = Store::for_test().await?;
    let a = store.add_city(&city("Akron", "akron.gov"), "test").await?;
    let b = store.add_city(&city("Berea", "berea.gov"), "test").await?;
    let export = registry::export_csv(&store.list_cities().await?)?;
    assert!(store.remove_city(b, "test").await?);
    let c = store.add_city(&city("Canton", "canton.gov"), "test").await?;
    assert_ne!(c, b, "the removed city's id came back");
    assert!(c > b && b > a, "ids only grow: {a} {b} {c}");

    let rows = registry::parse_csv(&export).map_err(|e| anyhow::anyhow!("{e}"))?;
    for replace in [false, true] {
        let errors = registry::diff(&store.list_cities().await?, &rows, replace).expect_err("stale id").0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].reason, format!("no city has id {b}"), "{errors:?}");
    }
    let canton = store.city_by_id(c).await?.expect("Canton is still there");
    assert_eq!(canton.record, city("Canton", "canton.gov"));
    Ok(())
}

/// A database at migration 0003, with cities, domains, contacts, a request, staff, a
/// quarantined message and an audit log naming a city removed earlier, migrated to 0004.
#[tokio::test]
async fn the_migration_keeps_rows_ids_and_foreign_keys() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let old = dir.path().join("migrations");
    std::fs::create_dir(&old)?;
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for name in ["0001_initial.sql", "0002_outbox_lease_owner.sql", "0003_message_raw.sql"] {
        std::fs::copy(all.join(name), old.join(name))?;
    }
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("t.db").display()), 2).await?;
    sqlx::migrate::Migrator::new(old.as_path()).await?.run(store.sqlite()).await?;
    for sql in [
        "INSERT INTO cities (id, name, state, eligible, created_at, updated_at) VALUES \
         (1, 'Akron', 'OH', 1, 1, 1), (2, 'Berea', 'OH', 0, 1, 1), (4, 'Dover', 'OH', 1, 1, 1)",
        "INSERT INTO city_domains (domain, city_id) VALUES ('akron.gov', 1), ('berea.gov', 2), ('dover.gov', 4)",
        "INSERT INTO contacts (email, city_id, source, created_at) VALUES ('m@berea.gov', 2, 'admin', 1)",
        "INSERT INTO audit_log (at, actor, action, detail) VALUES (1, 't', 'cities add', '#5 Elyria, OH'), \
         (2, 't', 'cities remove', '#5 Elyria, OH'), (3, 't', 'contact add', 'x@y.gov → city #7 (admin)')",
        "INSERT INTO requests (id, tracking, city_id, suggested_city_id, official_email, status, eligibility, \
         created_at, updated_at) VALUES (1, '311-2026-0001', 4, 2, 'm@dover.gov', 'acknowledged', 'eligible', 1, 1)",
        "INSERT INTO staff (id, email, created_at) VALUES (3, 'a@311.test', 1), (9, 'b@311.test', 1)",
        "INSERT INTO messages (id, direction, kind, message_id, created_at) VALUES (1, 'in', 'question', 'q@x', 1)",
        "INSERT INTO quarantine (id, message_id, mailbox, uidvalidity, uid, reason, created_at) \
         VALUES (6, 1, 'INBOX', 1, 10, 'unreadable', 1)",
    ] {
        sqlx::query(sql).execute(store.sqlite()).await?;
    }

    let later = std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite"))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".sql") && name.as_str() >= "0004")
        .count();
    assert!(later >= 5);
    assert_eq!(store.migrate().await?, later, "0004 and every later one are the ones to run");

    let ids: Vec<(i64, String, bool)> =
        sqlx::query_as("SELECT id, name, eligible FROM cities ORDER BY id").fetch_all(store.sqlite()).await?;
    assert_eq!(ids, vec![(1, "Akron".into(), true), (2, "Berea".into(), false), (4, "Dover".into(), true)]);
    let domains: Vec<(String, i64)> =
        sqlx::query_as("SELECT domain, city_id FROM city_domains ORDER BY domain").fetch_all(store.sqlite()).await?;
    assert_eq!(domains.len(), 3, "{domains:?}");
    let request: (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT city_id, suggested_city_id FROM requests").fetch_one(store.sqlite()).await?;
    assert_eq!(request, (Some(4), Some(2)), "the request still names its cities");
    let staff: Vec<i64> = sqlx::query_scalar("SELECT id FROM staff ORDER BY id").fetch_all(store.sqlite()).await?;
    assert_eq!(staff, vec![3, 9]);
    let held: (i64, Option<i64>) =
        sqlx::query_as("SELECT id, message_id FROM quarantine").fetch_one(store.sqlite()).await?;
    assert_eq!(held, (6, Some(1)));

    for table in ["cities", "staff", "quarantine"] {
        let sql: String = sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = $1")
            .bind(table)
            .fetch_one(store.sqlite())
            .await?;
        assert!(sql.contains("AUTOINCREMENT"), "{sql}");
    }
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('cities', 'staff', 'quarantine') \
         ORDER BY name",
    )
    .fetch_all(store.sqlite())
    .await?;
    assert_eq!(indexes, ["cities_name_state", "quarantine_position", "sqlite_autoindex_staff_1"]);
    let violations: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM pragma_foreign_key_check").fetch_one(store.sqlite()).await?;
    assert_eq!(violations, 0);
    let fk_on: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(store.sqlite()).await?;
    assert_eq!(fk_on, 1, "foreign keys are back on for the pool's connection");

    // New ids continue above every id ever used, the audit log's #7 included.
    assert_eq!(store.add_city(&city("Fremont", "fremont.gov"), "test").await?, 8);
    assert!(store.upsert_staff("c@311.test", "", crate::store::StaffRole::Staff, "test").await?);
    let new_staff: i64 = sqlx::query_scalar("SELECT MAX(id) FROM staff").fetch_one(store.sqlite()).await?;
    assert_eq!(new_staff, 10);
    // The children still follow their city: removing Berea takes its domain and contact along
    // and clears the request's suggestion.
    assert!(store.remove_city(2, "test").await?);
    let left: (i64, i64) =
        sqlx::query_as("SELECT (SELECT COUNT(*) FROM contacts), (SELECT COUNT(*) FROM city_domains WHERE city_id = 2)")
            .fetch_one(store.sqlite())
            .await?;
    assert_eq!(left, (0, 0));
    let suggested: Option<i64> =
        sqlx::query_scalar("SELECT suggested_city_id FROM requests").fetch_one(store.sqlite()).await?;
    assert_eq!(suggested, None);
    Ok(())
}
