//! The review queue: approve (give the request its city and answer the official) or reject.
//! Talks to: [`crate::store`], [`super::mailer`].

use super::mailer::{Limit, Queue, Queued, mailbox};
use super::{Actor, ApplyError, Intake};
use crate::domain::{RequestId, RequestStatus, TrackingNumber};
use crate::intake::commands::CommandError;

impl Intake {
    /// `review approve`: gives the request `city`, optionally records the official as a contact,
    /// and, when the official has had no definitive answer yet, sends the acknowledgement.
    pub async fn review_approve(
        &self,
        tracking: &TrackingNumber,
        city: i64,
        add_contact: bool,
        actor: &Actor,
    ) -> Result<String, ApplyError> {
        let command = |m: String| ApplyError::Command(CommandError(m));
        // Read inside the transaction: the daemon may have settled the request (and sent its
        // acknowledgement) while this waited for the write lock.
        let mut tx = self.store.begin().await?;
        let row = tx.request_by_tracking(tracking).await?.ok_or_else(|| command(format!("no request {tracking}")))?;
        let city = tx
            .city_by_id(city)
            .await?
            .ok_or_else(|| command(format!("no city has id {city} (intake311 cities list)")))?;
        let id = RequestId(row.id);
        if add_contact {
            tx.upsert_contact(&row.official_email, &row.official_name, "", city.id, "admin", &actor.email).await?;
        }
        let answered = !matches!(row.status, RequestStatus::New | RequestStatus::NeedsCity);
        let via = format!("approved by {}", actor.email);
        self.settle_city(&mut tx, &row, &city, &via, &actor.email, actor.source).await?;
        let row = tx.request_by_id(id).await?;
        let mut summary = format!("{} → {} ({})", row.tracking, city.record.label(), row.eligibility);
        if !answered {
            let template = row.eligibility.ack_template();
            let rendered = self.templates.render(template, &self.ack_context(&row)).map_err(anyhow::Error::from)?;
            let (parent, references) = self.city_thread(&mut tx, id, &row.official_email).await?;
            let queued = self
                .queue(
                    &mut tx,
                    Queued {
                        request: Some(id),
                        kind: template,
                        to: vec![mailbox(&row.official_name, &row.official_email)?],
                        cc: vec![],
                        reply_to: vec![self.city_reply_to(&row.tracking)],
                        in_reply_to: parent.as_deref(),
                        references,
                        auto_submitted: Some("auto-replied"),
                        tracking: Some(row.tracking.clone()),
                        rendered,
                        attachments: &[],
                        limit: Limit::Acknowledgement(None),
                        event: None,
                    },
                )
                .await?;
            match &queued {
                Queue::Queued(_) => summary.push_str(&format!("; {template} queued")),
                Queue::Held(reason) => summary.push_str(&format!("; {template} NOT sent: {reason}")),
            }
        }
        if add_contact {
            summary.push_str(&format!("; {} recorded as a contact", row.official_email));
        }
        tx.commit().await?;
        self.wake_outbox.notify_one();
        Ok(summary)
    }

    /// `review reject`: takes the request out of review and closes it. Nothing is sent (a forged
    /// sender's mail would reach the real owner of the address).
    pub async fn review_reject(
        &self,
        tracking: &TrackingNumber,
        reason: &str,
        actor: &Actor,
    ) -> Result<String, ApplyError> {
        let row = self
            .store
            .request_by_tracking(tracking)
            .await?
            .ok_or_else(|| ApplyError::Command(CommandError(format!("no request {tracking}"))))?;
        let id = RequestId(row.id);
        let mut tx = self.store.begin().await?;
        tx.set_review(id, "", None, &actor.email, actor.source).await?;
        tx.add_event(id, &actor.email, actor.source, "review rejected", reason).await?;
        self.set_status(
            &mut tx,
            id,
            RequestStatus::Closed,
            &actor.email,
            actor.source,
            self.local_date(chrono::Utc::now()),
        )
        .await?
        .map_err(|e| ApplyError::Command(CommandError(e.to_string())))?;
        tx.commit().await?;
        Ok(format!("{} rejected and closed", row.tracking))
    }
}
