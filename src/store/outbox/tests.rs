//! Tests of the outbox: queueing with its record, claims, and recovery after a crash.

use super::*;
use crate::store::messages::NewMessage;
use crate::store::{Store, now_ms};

/// The outbox row and its messages row are written together and point at each other; a
/// row born claimed is handed to the worker.
#[tokio::test]
async fn a_queued_mail_is_recorded_with_its_outbox_row() -> anyhow::Result<()> {
    let (_dir, store) = Store::for_test().await?;
    let mut tx = store.begin().await?;
    let recipients = vec!["mayor@dayton.test".to_string()];
    let mut ids = Vec::new();
    for (n, lease_until) in [(1, 0), (2, now_ms() + 60_000)] {
        let message_id = format!("ack{n}@311.test");
        let id = tx
            .enqueue_recorded(
                &test_ack(&message_id, None, &recipients, lease_until),
                &NewMessage {
                    direction: "out",
                    kind: "ack_eligible",
                    message_id: &message_id,
                    subject: "hi",
                    ..Default::default()
                },
                None,
            )
            .await?;
        ids.push(id);
    }
    assert_eq!(tx.take_handoff().iter().map(|h| h.id).collect::<Vec<_>>(), vec![ids[1]], "only the claimed row");
    tx.commit().await?;
    let rows: Vec<(String, Option<i64>, i64)> = sqlx::query_as(
        "SELECT m.message_id, m.outbox_id, o.id FROM messages m JOIN outbox o ON o.message_id = m.message_id \
         ORDER BY o.id",
    )
    .fetch_all(store.sqlite())
    .await?;
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (row, id) in rows.iter().zip(&ids) {
        assert_eq!((row.1, row.2), (Some(*id), *id), "{rows:?}");
    }
    Ok(())
}

/// Queues `n` acknowledgements, unclaimed and due now. Their row ids.
async fn queue_acks(store: &Store, n: usize) -> anyhow::Result<Vec<i64>> {
    let recipients = vec!["mayor@dayton.test".to_string()];
    let mut tx = store.begin().await?;
    let mut ids = Vec::new();
    for n in 0..n {
        let message_id = format!("ack{n}@311.test");
        let record =
            NewMessage { direction: "out", kind: "ack_eligible", message_id: &message_id, ..Default::default() };
        ids.push(tx.enqueue_recorded(&test_ack(&message_id, None, &recipients, 0), &record, None).await?);
    }
    tx.commit().await?;
    Ok(ids)
}

/// A daemon killed with claims: the rows its journal names were accepted by the server and
/// are marked sent, its other claims are free at once, and its file goes. While it lived,
/// another process left its claims alone.
#[tokio::test]
async fn a_dead_claimants_journaled_rows_are_marked_sent_and_the_rest_freed() -> anyhow::Result<()> {
    let (dir, a) = Store::for_test().await?;
    let ids = queue_acks(&a, 4).await?;
    let claimed = a.claim_due_outbox(now_ms(), 10, 600_000).await?;
    assert_eq!(claimed.iter().map(|r| r.id).collect::<Vec<_>>(), ids);
    // The server accepted the first two; the daemon dies before marking them.
    assert_eq!(a.journal_sent(&ids[..2]).await, 2);

    let b = Store::connect(&format!("sqlite://{}", dir.path().join("t.db").display()), 2).await?;
    assert_eq!(b.recover_dead_claims().await?, Recovered::default(), "a live claimant is left alone");
    assert!(b.claim_due_outbox(now_ms(), 10, 600_000).await?.is_empty(), "its claims hold");

    a.close().await;
    drop(a);
    let r = b.recover_dead_claims().await?;
    assert_eq!(r, Recovered { claimants: 1, marked_sent: 2, released: 2 });
    let statuses: Vec<(i64, String, i64)> =
        sqlx::query_as("SELECT id, status, attempts FROM outbox ORDER BY id").fetch_all(b.sqlite()).await?;
    assert_eq!(
        statuses,
        vec![
            (ids[0], "sent".to_string(), 1),
            (ids[1], "sent".to_string(), 1),
            (ids[2], "pending".to_string(), 0),
            (ids[3], "pending".to_string(), 0)
        ]
    );
    let again = b.claim_due_outbox(now_ms(), 10, 600_000).await?;
    assert_eq!(again.iter().map(|r| r.id).collect::<Vec<_>>(), ids[2..], "freed at once, not after the lease");
    assert_eq!(b.owner.files_on_disk(), vec![b.owner.id().to_string()], "the dead claimant's file is gone");
    assert_eq!(b.recover_dead_claims().await?, Recovered::default(), "nothing left to recover");
    Ok(())
}

/// A clean stop settles what it still holds (a row whose mark failed is in its journal and
/// is marked sent; the rest is freed) and removes its file; an owner without a file (an
/// older version, say) may be alive, so its claims wait for their lease.
#[tokio::test]
async fn a_clean_stop_settles_its_claims_and_an_owner_without_a_file_keeps_them() -> anyhow::Result<()> {
    let (dir, a) = Store::for_test().await?;
    let ids = queue_acks(&a, 3).await?;
    assert_eq!(a.claim_due_outbox(now_ms(), 2, 600_000).await?.len(), 2);
    // The server accepted the first; marking it failed.
    assert_eq!(a.journal_sent(&ids[..1]).await, 1);
    // The third row claimed by a process that never had an owner file.
    sqlx::query("UPDATE outbox SET lease_until = $1, lease_owner = 'abc123' WHERE id = $2")
        .bind(now_ms() + 600_000)
        .bind(ids[2])
        .execute(a.sqlite())
        .await?;
    let b = Store::connect(&format!("sqlite://{}", dir.path().join("t.db").display()), 2).await?;
    assert_eq!(b.recover_dead_claims().await?, Recovered::default());
    assert_eq!(a.release_own_claims().await?, 1, "the unsent row is freed");
    a.close().await;
    drop(a);
    assert!(b.owner.files_on_disk().is_empty(), "a clean stop removes its file");
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT status FROM outbox ORDER BY id").fetch_all(b.sqlite()).await?;
    assert_eq!(statuses, ["sent", "pending", "pending"], "the journaled row is marked sent");
    let again = b.claim_due_outbox(now_ms(), 10, 600_000).await?;
    assert_eq!(again.iter().map(|r| r.id).collect::<Vec<_>>(), vec![ids[1]], "freed by the clean stop only");
    Ok(())
}
