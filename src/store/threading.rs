//! Thread lookups: the Message-IDs a request's mail to the city is threaded under, and the one
//! that proves a staff member's mail answers our staff mail of a request.

use crate::domain::RequestId;
use crate::store::StoreTx;
use crate::store::backend::on_tx;

impl StoreTx {
    /// Whether any of `message_ids` is the Message-ID of staff mail of `request`: a notice or an
    /// error reply we sent, or a staff member's reply we accepted (a colleague answering it, in
    /// a client that keeps only In-Reply-To). None of them ever reached the city.
    pub async fn answers_staff_mail(&mut self, request: RequestId, message_ids: &[String]) -> anyhow::Result<bool> {
        if message_ids.is_empty() {
            return Ok(false);
        }
        let placeholders: Vec<String> = (0..message_ids.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT TRUE FROM messages WHERE request_id = $1 AND ((direction = 'out' AND kind LIKE 'staff\\_%' ESCAPE '\\') \
             OR (direction = 'in' AND kind = 'staff_reply' AND note = '')) \
             AND message_id IN ({}) LIMIT 1",
            placeholders.join(", ")
        );
        let hit: Option<bool> = on_tx!(self.tx, db => {
            let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(request.0);
            for id in message_ids {
                q = q.bind(id);
            }
            q.fetch_optional(db).await
        })?;
        Ok(hit.is_some())
    }

    /// The root of a request's thread on the city side: the Message-ID of its question and of
    /// our first mail to the city (the acknowledgement), when there are such.
    pub async fn thread_roots(&mut self, request: RequestId) -> anyhow::Result<(Option<String>, Option<String>)> {
        let (question, ours): (Option<String>, Option<String>) = on_tx!(self.tx, db => sqlx::query_as(
            "SELECT (SELECT message_id FROM messages WHERE request_id = $1 AND direction = 'in' AND kind = 'question' \
                     ORDER BY id LIMIT 1), \
                    (SELECT message_id FROM messages WHERE request_id = $1 AND direction = 'out' \
                     AND kind NOT LIKE 'staff\\_%' ESCAPE '\\' ORDER BY id LIMIT 1)",
        )
        .bind(request.0)
        .fetch_one(db)
        .await)?;
        Ok((question.filter(|q| !q.is_empty()), ours.filter(|o| !o.is_empty())))
    }

    /// Whether mail of `kind` was already queued for `request`.
    pub async fn has_mail_of_kind(&mut self, request: RequestId, kind: &str) -> anyhow::Result<bool> {
        let hit: Option<bool> = on_tx!(self.tx, db => sqlx::query_scalar(
            "SELECT TRUE FROM messages WHERE request_id = $1 AND direction = 'out' AND kind = $2 LIMIT 1",
        )
        .bind(request.0)
        .bind(kind)
        .fetch_optional(db)
        .await)?;
        Ok(hit.is_some())
    }
}
