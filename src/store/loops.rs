//! The lookup behind the mail-loop limit on acknowledgements.

use crate::store::StoreTx;
use crate::store::backend::on_tx;

impl StoreTx {
    /// Whether a question from `email` with exactly this `subject` and `text`, received since
    /// `since` (Unix ms), was already acknowledged: one mail sent again (a loop, or a resend), not
    /// a person's new question.
    pub async fn same_question_acknowledged(
        &mut self,
        email: &str,
        subject: &str,
        text: &str,
        since: i64,
    ) -> anyhow::Result<bool> {
        // Index messages_sender_subject (migration 0005): one short lookup per question.
        let hit: Option<bool> = on_tx!(self.tx, db => sqlx::query_scalar(
            "SELECT TRUE FROM messages m WHERE m.from_addr = $1 AND m.subject = $2 AND m.direction = 'in' \
             AND m.kind = 'question' AND m.body_text = $3 AND m.created_at > $4 AND EXISTS (SELECT 1 FROM outbox o \
             WHERE o.request_id = m.request_id AND o.kind LIKE 'ack\\_%' ESCAPE '\\') LIMIT 1",
        )
        .bind(email)
        .bind(subject)
        .bind(text)
        .bind(since)
        .fetch_optional(db)
        .await)?;
        Ok(hit.is_some())
    }
}
