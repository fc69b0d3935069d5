//! Automatic mail: delivery reports (bounces) and other robots' mail, recorded and never
//! answered; a hard bounce of city mail fails its outbox row and tells staff.
//! Talks to: [`crate::store`], [`super::mailer`].

use super::matching::thread_ids;
use super::question::Filed;
use super::{Intake, Outcome, Position};
use crate::domain::RequestId;
use crate::inbound::{InboundMail, bounce};
use crate::store::{Source, StoreTx};

impl Intake {
    /// A delivery report: the outbox row it reports on is marked failed with the status and
    /// class, a hard-bounced address gets no automatic mail for `outbox.bounce_suppress`, and
    /// staff are told in the request's thread. Never answered.
    pub(super) async fn record_bounce(
        &self,
        tx: &mut StoreTx,
        pos: Position<'_>,
        raw: &[u8],
        mail: &InboundMail,
        b: &bounce::Bounce,
    ) -> anyhow::Result<Outcome> {
        let class = match b.class {
            bounce::BounceClass::Hard => "hard",
            bounce::BounceClass::Soft => "soft",
        };
        let status = b.status.clone().unwrap_or_else(|| "-".into());
        let who = if b.recipients.is_empty() { "unknown recipient".to_string() } else { b.recipients.join(", ") };
        let summary = format!("{class} bounce {status} for {who}: {}", b.reason);
        let reported = match &b.original_message_id {
            Some(id) => tx.outbox_row_of(id).await?,
            None => None,
        };
        // Only mail to the city concerns the request; a bounce of staff or admin mail must never
        // cause more staff mail (a full staff mailbox would otherwise loop forever).
        let city_mail =
            reported.as_ref().is_some_and(|(kind, _)| !crate::domain::is_staff_mail(kind) && kind != "admin_reply");
        let request = reported.as_ref().and_then(|(_, r)| *r);
        self.store_inbound(
            tx,
            pos,
            raw,
            mail,
            Filed { request: request.map(RequestId), kind: "bounce", new_text: "", note: &summary },
        )
        .await?;
        let hard = b.class == bounce::BounceClass::Hard;
        if let Some(id) = &b.original_message_id {
            // A soft bounce (a delay, a full mailbox) is recorded; only a hard one fails the row.
            tx.mark_bounced(id, &format!("{status} {class}"), &summary, hard).await?;
        }
        // Only a report on mail we sent silences an address: a forged report could otherwise mute
        // an official's acknowledgements.
        if hard && reported.is_some() {
            let ttl = crate::store::ms_of(self.cfg.outbox.bounce_suppress);
            for r in &b.recipients {
                tx.suppress(r, crate::store::now_ms() + ttl, &summary).await?;
            }
        }
        let mut told = summary.clone();
        if hard
            && reported.as_ref().is_some_and(|(kind, _)| kind == "referral_intro")
            && let Some(id) = &b.original_message_id
            && let Some(words) = self.referral_bounce(tx, id, &b.recipients, &summary).await?
        {
            told = words;
        }
        if let Some(r) = request.map(RequestId) {
            tx.add_event(
                r,
                &mail.from,
                Source::Mail,
                if hard { "delivery failed" } else { "delivery delayed" },
                &summary,
            )
            .await?;
            if hard && city_mail {
                self.notify_staff(tx, r, "staff_delivery_failed", &told, &[]).await?;
            }
        }
        if !city_mail && reported.is_some() {
            tracing::warn!(%summary, "mail to staff or an administrator bounced");
        }
        tx.advance_position(pos.mailbox, pos.uidvalidity, pos.uid).await?;
        Ok(Outcome::Automatic { reason: summary })
    }

    pub(super) async fn record_automatic(
        &self,
        tx: &mut StoreTx,
        pos: Position<'_>,
        raw: &[u8],
        mail: &InboundMail,
        reason: &str,
    ) -> anyhow::Result<Outcome> {
        // An automatic reply in a thread of ours joins its request's timeline; never answered.
        let ids = thread_ids(mail);
        let request = tx.request_for_message_ids(&ids).await?.map(RequestId);
        self.store_inbound(tx, pos, raw, mail, Filed { request, kind: "automatic", new_text: "", note: reason })
            .await?;
        if let Some(r) = request {
            tx.add_event(r, &mail.from, Source::Mail, "automatic mail", reason).await?;
        }
        tx.advance_position(pos.mailbox, pos.uidvalidity, pos.uid).await?;
        Ok(Outcome::Automatic { reason: reason.to_string() })
    }
}
