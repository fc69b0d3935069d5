//! Which request a message belongs to: thread headers first, then a subject tag or
//! plus-address from the official, someone they copied, or staff.
//! Talks to: [`crate::store`] (reads only); the pure parts are in [`super::threads`].

use super::{Intake, threads};
use crate::domain::RequestId;
use crate::inbound::InboundMail;
use crate::store::{RequestRow, StoreTx};

/// The Message-IDs that place a mail in a thread: In-Reply-To and the most recent References,
/// at most 50 (a hostile References list must not become an unbounded query).
pub(super) fn thread_ids(mail: &InboundMail) -> Vec<String> {
    let recent = mail.references.len().saturating_sub(49);
    let mut ids: Vec<String> = mail.in_reply_to.iter().take(1).chain(&mail.references[recent..]).cloned().collect();
    ids.sort();
    ids.dedup();
    ids
}

impl Intake {
    /// The request a message belongs to: by thread headers (anyone), then by subject tag or
    /// plus-address (only the official, someone they copied, or staff).
    pub async fn match_request(
        &self,
        tx: &mut StoreTx,
        mail: &InboundMail,
        from_staff: bool,
    ) -> anyhow::Result<Option<RequestRow>> {
        let ids = thread_ids(mail);
        if let Some(id) = tx.request_for_message_ids(&ids).await? {
            return Ok(Some(tx.request_by_id(RequestId(id)).await?));
        }
        let prefix = &self.cfg.intake.tracking_prefix;
        let mut candidates = threads::tags_in_subject(&mail.subject, prefix);
        candidates.extend(threads::plus_tracking(&mail.recipients(), &self.cfg.intake.address, prefix));
        for tracking in candidates {
            let Some(request) = tx.request_by_tracking(&tracking).await? else { continue };
            let allowed = from_staff
                || request.official_email == mail.from
                || tx.is_participant(request.id, &mail.from).await?
                || tx.is_referred_expert(request.id, &mail.from).await?;
            if allowed {
                return Ok(Some(request));
            }
            tracing::info!(%tracking, from = %mail.from, "tracking tag from an outsider ignored; treated as a new question");
        }
        Ok(None)
    }
}
