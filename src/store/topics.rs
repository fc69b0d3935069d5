//! The topics of each request (`request_topics`): suggested when the request is made, confirmed
//! or changed by staff. A request's topics are its staff-given rows when it has any, else its
//! suggestions. Talks to: the database; the list of topics itself is [`crate::topics`].

use super::backend::{on_pool, on_tx};
use super::{Source, Store, StoreTx, now_ms};
use crate::domain::RequestId;

const TOPICS_OF: &str = "SELECT topic, source FROM request_topics WHERE request_id = $1 \
     ORDER BY CASE source WHEN 'staff' THEN 0 ELSE 1 END, created_at, topic";

/// A request's topics: the staff-given ones when there are any, else the suggestions; with
/// whether they were confirmed by staff.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestTopics {
    pub topics: Vec<String>,
    pub confirmed: bool,
}

fn effective(rows: Vec<(String, String)>) -> RequestTopics {
    let confirmed = rows.iter().any(|(_, s)| s == "staff");
    let topics = rows.into_iter().filter(|(_, s)| !confirmed || s == "staff").map(|(t, _)| t).collect();
    RequestTopics { topics, confirmed }
}

impl StoreTx {
    /// Records the topics suggested for a new request.
    pub async fn suggest_topics(&mut self, id: RequestId, topics: &[String]) -> anyhow::Result<()> {
        // created_at keeps the order given (best first): one millisecond apart.
        let now = now_ms();
        for (i, topic) in (0i64..).zip(topics) {
            on_tx!(self.tx, db => sqlx::query(
                "INSERT INTO request_topics (request_id, topic, source, created_at) VALUES ($1, $2, 'suggested', $3) \
                 ON CONFLICT (request_id, topic) DO NOTHING",
            )
            .bind(id.0)
            .bind(topic)
            .bind(now + i)
            .execute(db)
            .await.map(|r| r.rows_affected()))?;
        }
        Ok(())
    }

    /// Staff confirm or change a request's topics: they replace every topic it had, and the
    /// timeline says what changed. Returns the topics before.
    pub async fn set_topics(
        &mut self,
        id: RequestId,
        topics: &[String],
        actor: &str,
        source: Source,
    ) -> anyhow::Result<RequestTopics> {
        let before = self.topics_of(id).await?;
        on_tx!(self.tx, db => sqlx::query("DELETE FROM request_topics WHERE request_id = $1")
            .bind(id.0)
            .execute(db)
            .await.map(|r| r.rows_affected()))?;
        let now = now_ms();
        for (i, topic) in (0i64..).zip(topics) {
            on_tx!(self.tx, db => sqlx::query(
                "INSERT INTO request_topics (request_id, topic, source, created_at) VALUES ($1, $2, 'staff', $3)",
            )
            .bind(id.0)
            .bind(topic)
            .bind(now + i)
            .execute(db)
            .await.map(|r| r.rows_affected()))?;
        }
        let was = if before.topics.is_empty() { "none".to_string() } else { before.topics.join(", ") };
        let detail = format!("{} (was: {was}{})", topics.join(", "), if before.confirmed { "" } else { ", suggested" });
        self.add_event(id, actor, source, "topics", &detail).await?;
        Ok(before)
    }

    /// [`Store::topics_of`] inside this transaction.
    pub async fn topics_of(&mut self, id: RequestId) -> anyhow::Result<RequestTopics> {
        let rows: Vec<(String, String)> =
            on_tx!(self.tx, db => sqlx::query_as(TOPICS_OF).bind(id.0).fetch_all(db).await)?;
        Ok(effective(rows))
    }
}

impl Store {
    /// A request's topics.
    pub async fn topics_of(&self, id: RequestId) -> anyhow::Result<RequestTopics> {
        let rows: Vec<(String, String)> =
            on_pool!(self.pool, db => sqlx::query_as(TOPICS_OF).bind(id.0).fetch_all(db).await)?;
        Ok(effective(rows))
    }

    /// The ids of the requests whose topics (as [`RequestTopics`] defines them) include `topic`.
    pub async fn requests_with_topic(&self, topic: &str) -> anyhow::Result<Vec<i64>> {
        Ok(on_pool!(self.pool, db => sqlx::query_scalar(
            "SELECT t.request_id FROM request_topics t WHERE t.topic = $1 AND (t.source = 'staff' OR NOT EXISTS \
             (SELECT 1 FROM request_topics s WHERE s.request_id = t.request_id AND s.source = 'staff')) \
             ORDER BY t.request_id DESC",
        )
        .bind(topic)
        .fetch_all(db)
        .await)?)
    }
}
