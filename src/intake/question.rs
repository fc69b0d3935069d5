//! A new question becomes a tracked request: the request row, its participants and timeline,
//! the stored message, the acknowledgement and the staff notice, in one transaction.
//! Talks to: [`crate::store`], [`super::mailer`].

use chrono::Datelike as _;

use super::mailer::{Limit, mailbox};
use super::outcome::NewRequestError;
use super::{Decision, Intake, Outcome, Position, size_i64};
use crate::domain::{RequestId, RequestStatus};
use crate::inbound::InboundMail;
use crate::store::{NewAttachment, NewEvent, NewMessage, NewRequest, Source, StoreTx};

/// How an inbound message is filed: on which request, as what, with what it adds and why.
pub(super) struct Filed<'a> {
    pub(super) request: Option<RequestId>,
    pub(super) kind: &'a str,
    pub(super) new_text: &'a str,
    pub(super) note: &'a str,
}

impl Intake {
    /// Stores an inbound message as `rec` says, with its attachments' metadata.
    pub(super) async fn store_inbound(
        &self,
        tx: &mut StoreTx,
        pos: Position<'_>,
        raw: &[u8],
        mail: &InboundMail,
        rec: Filed<'_>,
    ) -> anyhow::Result<i64> {
        let Filed { request, kind, new_text, note } = rec;
        let row = tx
            .insert_message(&NewMessage {
                request_id: request,
                direction: "in",
                kind,
                message_id: &mail.message_id,
                in_reply_to: &mail.in_reply_to.join(" "),
                references: &mail.references.join(" "),
                from_addr: &mail.from,
                from_name: &mail.from_name,
                to_addrs: &mail.to.join(", "),
                cc_addrs: &mail.cc.join(", "),
                subject: &mail.subject,
                body_text: &mail.text,
                new_text,
                raw: Some(raw),
                size: size_i64(raw.len()),
                position: Some(pos.tuple()),
                note,
                ..Default::default()
            })
            .await?;
        let atts: Vec<NewAttachment<'_>> = mail
            .attachments
            .iter()
            .map(|a| NewAttachment { filename: &a.filename, content_type: &a.content_type, data: &a.data })
            .collect();
        tx.insert_attachments(row, &atts).await?;
        Ok(row)
    }

    /// Rule 2: a Message-ID we already stored is recorded as a duplicate and goes no further.
    /// Returns the outcome to commit, if it is one. [`Intake::dispatch`] asks this once for
    /// every kind of mail, before anything else is written.
    pub(super) async fn duplicate(
        &self,
        tx: &mut StoreTx,
        pos: Position<'_>,
        mail: &InboundMail,
    ) -> anyhow::Result<Option<Outcome>> {
        let Some((_, request)) = tx.inbound_by_message_id(&mail.message_id).await? else { return Ok(None) };
        tx.insert_message(&NewMessage {
            request_id: request.map(RequestId),
            direction: "in",
            kind: "duplicate",
            message_id: &mail.message_id,
            from_addr: &mail.from,
            subject: &mail.subject,
            position: Some(pos.tuple()),
            note: "same Message-ID as a message already stored",
            ..Default::default()
        })
        .await?;
        tx.advance_position(pos.mailbox, pos.uidvalidity, pos.uid).await?;
        Ok(Some(Outcome::Duplicate { message_id: mail.message_id.clone() }))
    }

    pub(super) async fn new_request(
        &self,
        tx: &mut StoreTx,
        pos: Position<'_>,
        raw: &[u8],
        mail: &InboundMail,
        decision: &Decision,
        parent: Option<RequestId>,
    ) -> Result<Outcome, NewRequestError> {
        let cfg = &self.cfg;
        let today = decision.date;
        // An address we could not answer is refused before anything is written.
        mailbox(&mail.from_name, &mail.from)
            .map_err(|e| NewRequestError::Unusable(format!("sender address cannot be answered: {e:#}")))?;

        let tracking = tx.next_tracking_number(&cfg.intake.tracking_prefix, today.year()).await?;
        tracing::Span::current().record("tracking", tracing::field::display(&tracking));
        let due = self.calendar.add_business_days(today, cfg.intake.response_days);
        let elig = &decision.eligibility;
        let mut detail = format!("question received; {}", elig.reason);
        if let Some(p) = parent {
            let old = tx.request_by_id(p).await?;
            detail.push_str(&format!("; follows closed request {}", old.tracking));
        }
        let copied = self.copied(mail);
        let participants: Vec<(&str, &str)> = std::iter::once((mail.from.as_str(), "official"))
            .chain(copied.iter().map(|c| (c.as_str(), "cc")))
            .collect();
        let created = NewEvent { actor: &mail.from, source: Source::Mail, event: "created", detail: &detail };
        let review =
            NewEvent { actor: "intake311", source: Source::System, event: "needs review", detail: &decision.review };
        let events = if decision.review.is_empty() { vec![created] } else { vec![created, review] };
        let row = tx
            .open_request(
                &NewRequest {
                    tracking: &tracking,
                    city_id: elig.city.as_ref().map(|c| c.id),
                    official_email: &mail.from,
                    official_name: &mail.from_name,
                    subject: &mail.subject,
                    status: decision.status,
                    eligibility: elig.outcome,
                    eligibility_reason: &elig.reason,
                    due_date: Some(due),
                    parent_id: parent,
                    review_reason: &decision.review,
                    suggested_city_id: decision.suggested_city,
                    received_on: today,
                },
                &participants,
                &events,
            )
            .await?;
        let request_id = RequestId(row.id);
        let suggested = self.topics.suggest(&mail.subject, &mail.text);
        if !suggested.is_empty() {
            tx.suggest_topics(request_id, &suggested).await?;
        }
        self.store_inbound(
            tx,
            pos,
            raw,
            mail,
            // A question is all new: its text is `body_text`, not stored a second time.
            Filed { request: Some(request_id), kind: "question", new_text: "", note: "" },
        )
        .await?;

        // The acknowledgement, rendered now so its bytes and Message-ID are fixed in the row. A
        // template or store failure here is ours, never the message's (see [`super::fault`]).
        let template = decision.template;
        let rendered = self.templates.render(template, &self.ack_context(&row)).map_err(anyhow::Error::from)?;
        let limit = Limit::Acknowledgement(Some((&mail.subject, &mail.text)));
        let acknowledged = match &decision.no_reply {
            None => {
                Some(self.auto_reply(tx, &row, mail, template, rendered, limit, Some("acknowledgement queued")).await?)
            }
            Some(why) => {
                tx.add_event(request_id, "intake311", Source::System, "automatic mail not sent", why).await?;
                tracing::info!(from = %mail.from, reason = %why, "no acknowledgement");
                // Staff see the request in the list; a notice for every piece of spam would bury them.
                None
            }
        };
        if decision.status == RequestStatus::Acknowledged {
            let names: Vec<String> = mail.attachments.iter().map(|a| a.filename.clone()).collect();
            self.notify_staff_on(tx, &row, "staff_new_request", &mail.text, &names).await?;
        }
        if let Some(queued) = &acknowledged {
            let what = format!("the acknowledgement ({template}) to {}", mail.from);
            self.tell_staff_held(tx, request_id, &what, queued).await?;
        }
        tx.advance_position(pos.mailbox, pos.uidvalidity, pos.uid).await?;
        Ok(Outcome::Request { tracking, eligibility: elig.outcome })
    }

    /// Whoever the sender copied: the Cc addresses but the sender and our own addresses.
    pub(super) fn copied(&self, mail: &InboundMail) -> Vec<String> {
        mail.cc.iter().filter(|a| **a != mail.from && !self.is_ours(a)).cloned().collect()
    }

    pub(super) fn is_ours(&self, address: &str) -> bool {
        address.eq_ignore_ascii_case(&self.cfg.intake.address)
            || address.eq_ignore_ascii_case(self.from.email.as_ref())
            || address.eq_ignore_ascii_case(&self.cfg.intake.staff_address)
    }
}
