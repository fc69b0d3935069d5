//! Tests of opening requests and handing out tracking numbers.

use super::*;
use crate::store::NewMessage;

fn new_request<'a>(tracking: &'a TrackingNumber, city: Option<CityId>) -> NewRequest<'a> {
    NewRequest {
        tracking,
        city_id: city,
        official_email: "mayor@dayton.test",
        official_name: "Mayor",
        subject: "Parks",
        status: RequestStatus::Acknowledged,
        eligibility: Eligibility::Eligible,
        eligibility_reason: "eligible",
        due_date: chrono::NaiveDate::from_ymd_opt(2026, 12, 9),
        parent_id: None,
        review_reason: "",
        suggested_city_id: None,
        received_on: chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap_or_default(),
    }
}

/// One round trip writes the row, its participants (a repeated address once) and its
/// first timeline lines, and reads back exactly what `request_by_id` reads.
#[tokio::test]
async fn open_request_writes_the_row_participants_and_events_and_reads_it_back() -> anyhow::Result<()> {
    let (_dir, store) = Store::for_test().await?;
    let city: i64 = sqlx::query_scalar(
        "INSERT INTO cities (name, state, created_at, updated_at) VALUES ('Dayton', 'OH', 0, 0) RETURNING id",
    )
    .fetch_one(store.sqlite())
    .await?;
    let mut tx = store.begin().await?;
    let tracking = tx.next_tracking_number("311", 2026).await?;
    let row = tx
        .open_request(
            &new_request(&tracking, Some(CityId(city))),
            &[("mayor@dayton.test", "official"), ("clerk@dayton.test", "cc"), ("mayor@dayton.test", "cc")],
            &[
                NewEvent { actor: "mayor@dayton.test", source: Source::Mail, event: "created", detail: "q" },
                NewEvent { actor: "intake311", source: Source::System, event: "needs review", detail: "why" },
            ],
        )
        .await?;
    let read = tx.request_by_id(RequestId(row.id)).await?;
    assert_eq!(format!("{row:?}"), format!("{read:?}"));
    assert_eq!(row.city.as_deref(), Some("Dayton, OH"));
    assert_eq!(row.tracking, tracking.to_string());
    assert_eq!(
        tx.participants(RequestId(row.id)).await?,
        vec![
            ("mayor@dayton.test".to_string(), "official".to_string()),
            ("clerk@dayton.test".to_string(), "cc".to_string())
        ]
    );
    // Queued mail of the request carries its own timeline line; mail of no request none.
    let recipients = vec!["mayor@dayton.test".to_string()];
    for (n, request_id) in [(1, Some(RequestId(row.id))), (2, None)] {
        let message_id = format!("ack{n}@311.test");
        tx.enqueue_recorded(
            &crate::store::outbox::test_ack(&message_id, request_id, &recipients, 0),
            &NewMessage { direction: "out", kind: "ack_eligible", message_id: &message_id, ..Default::default() },
            Some(&NewEvent {
                actor: "intake311",
                source: Source::System,
                event: "acknowledgement queued",
                detail: "ack_eligible",
            }),
        )
        .await?;
    }
    tx.commit().await?;
    let events: Vec<(String, String, String)> =
        store.request_events(row.id).await?.into_iter().map(|e| (e.actor, e.event, e.detail)).collect();
    let want = [
        ("mayor@dayton.test", "created", "q"),
        ("intake311", "needs review", "why"),
        ("intake311", "acknowledgement queued", "ack_eligible"),
    ];
    assert_eq!(events, want.map(|(a, e, d)| (a.to_string(), e.to_string(), d.to_string())));
    let all: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM request_events").fetch_one(store.sqlite()).await?;
    assert_eq!(all, 3, "mail of no request writes no timeline line");
    Ok(())
}

/// A Cc list of any length: past what goes in the one query, the rest follow row by row.
#[tokio::test]
async fn open_request_takes_a_huge_cc_list() -> anyhow::Result<()> {
    let (_dir, store) = Store::for_test().await?;
    let mut tx = store.begin().await?;
    let tracking = tx.next_tracking_number("311", 2026).await?;
    let cc: Vec<String> = (0..20_000).map(|i| format!("cc{i}@dayton.test")).collect();
    let participants: Vec<(&str, &str)> = std::iter::once(("mayor@dayton.test", "official"))
        .chain(cc.iter().map(|c| (c.as_str(), "cc")))
        .chain(std::iter::once(("cc7@dayton.test", "cc")))
        .collect();
    let row = tx.open_request(&new_request(&tracking, None), &participants, &[]).await?;
    let stored = tx.participants(RequestId(row.id)).await?;
    assert_eq!(stored.len(), 20_001);
    assert!(stored.contains(&("mayor@dayton.test".to_string(), "official".to_string())));
    assert!(stored.contains(&("cc19999@dayton.test".to_string(), "cc".to_string())));
    Ok(())
}

/// Tracking numbers: read once per transaction, written at commit, given back by ROLLBACK TO
/// and by a transaction that never commits, and a new year starts at 1.
#[tokio::test]
async fn tracking_numbers_go_with_the_commit_and_the_savepoints() -> anyhow::Result<()> {
    let (_dir, store) = Store::for_test().await?;
    let seq = |t: TrackingNumber| t.to_string();
    let mut tx = store.begin().await?;
    assert_eq!(seq(tx.next_tracking_number("311", 2026).await?), "311-2026-0001");
    tx.savepoint("m").await?;
    assert_eq!(seq(tx.next_tracking_number("311", 2026).await?), "311-2026-0002");
    tx.rollback_to("m").await?;
    tx.release("m");
    assert_eq!(seq(tx.next_tracking_number("311", 2026).await?), "311-2026-0002");
    // Across New Year inside one batch: each year keeps its own counter.
    assert_eq!(seq(tx.next_tracking_number("311", 2027).await?), "311-2027-0001");
    tx.commit().await?;

    let mut tx = store.begin().await?;
    assert_eq!(seq(tx.next_tracking_number("311", 2026).await?), "311-2026-0003");
    assert_eq!(seq(tx.next_tracking_number("311", 2027).await?), "311-2027-0002");
    drop(tx);
    let stored: Vec<(i32, i64)> =
        sqlx::query_as("SELECT year, last_seq FROM tracking_counters WHERE prefix = '311' ORDER BY year")
            .fetch_all(store.sqlite())
            .await?;
    assert_eq!(stored, vec![(2026, 2), (2027, 1)], "a transaction that never commits gives its numbers back");
    Ok(())
}
