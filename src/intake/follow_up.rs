//! A reply from the city side joins its request: staff are told, a closed request reopens, and a
//! `needs_city` request takes the city the official names.
//! Talks to: [`crate::store`], [`crate::registry`], [`super::mailer`].

use super::mailer::Limit;
use super::outcome::NewRequestError;
use super::question::Filed;
use super::{Intake, Outcome, Position};
use crate::config::Verification;
use crate::domain::{RequestId, RequestStatus};
use crate::inbound::{InboundMail, auth_results, reply};
use crate::registry;
use crate::registry::names;
use crate::store::{CityRow, RequestRow, Source, StoreTx};
use crate::text::strip_reply_prefixes;

impl Intake {
    #[allow(clippy::too_many_arguments)] // the message, where it came from, and the day it arrived
    pub(super) async fn follow_up(
        &self,
        tx: &mut StoreTx,
        pos: Position<'_>,
        raw: &[u8],
        mail: &InboundMail,
        request: &RequestRow,
        quiet: bool,
        today: chrono::NaiveDate,
    ) -> Result<Outcome, NewRequestError> {
        let id = RequestId(request.id);
        let new_text = reply::new_content(&mail.text);
        self.store_inbound(
            tx,
            pos,
            raw,
            mail,
            Filed { request: Some(id), kind: "follow_up", new_text: &new_text, note: "" },
        )
        .await?;
        if mail.from == request.official_email {
            let copied = self.copied(mail);
            tx.add_participants(id, &copied, "cc").await?;
        }
        let summary: String = new_text.lines().next().unwrap_or_default().chars().take(120).collect();
        tx.add_event(id, &mail.from, Source::Mail, "follow-up", &summary).await?;
        let current = tx.request_by_id(id).await?;
        let reopen = match current.status {
            RequestStatus::Closed | RequestStatus::Responded | RequestStatus::WaitingOnCity => {
                Some(RequestStatus::InProgress)
            }
            _ => None,
        };
        if let Some(to) = reopen
            && let Err(e) = self.set_status(tx, id, to, &mail.from, Source::Mail, today).await?
        {
            tracing::warn!(error = %e, "follow-up could not change the status");
        }
        if current.status == RequestStatus::NeedsCity && self.is_city_side(id, tx, &mail.from).await? {
            let resolved = self.resolve_named_city(tx, id, mail, &new_text).await?;
            if resolved {
                tx.advance_position(pos.mailbox, pos.uidvalidity, pos.uid).await?;
                return Ok(Outcome::FollowUp { tracking: request.tracking.clone() });
            }
        }
        let names: Vec<String> = mail.attachments.iter().map(|a| a.filename.clone()).collect();
        let text = if new_text.is_empty() { mail.text.trim().to_string() } else { new_text.clone() };
        let row = tx.request_by_id(id).await?;
        let mut ctx = self.staff_context(&row, &text, &names);
        ctx.from_name = if mail.from_name.is_empty() { mail.from.clone() } else { mail.from_name.clone() };
        ctx.from_email = mail.from.clone();
        self.notify_staff_with(tx, &row, "staff_followup", ctx).await?;
        if self.cfg.intake.followup_note && !quiet {
            let row = tx.request_by_id(id).await?;
            let rendered =
                self.templates.render("followup_added", &self.ack_context(&row)).map_err(anyhow::Error::from)?;
            // A note that answers a reply is what a mail loop feeds on: the tighter limit. Staff
            // have the follow-up itself in the notice above, so a held note needs no notice.
            self.auto_reply(tx, &row, mail, "followup_added", rendered, Limit::Note, None).await?;
        }
        tx.advance_position(pos.mailbox, pos.uidvalidity, pos.uid).await?;
        Ok(Outcome::FollowUp { tracking: request.tracking.clone() })
    }

    pub(super) async fn is_city_side(&self, id: RequestId, tx: &mut StoreTx, email: &str) -> anyhow::Result<bool> {
        Ok(tx.participants(id).await?.iter().any(|(e, _)| e == email))
    }

    /// A needs_city request whose official answered with a city and state: when exactly one
    /// registry city is named, the request takes it (decided on its arrival date), the sender
    /// becomes a confirmed contact, and the official gets the matching acknowledgement. Otherwise
    /// the request goes to review. Returns whether it was resolved.
    pub(super) async fn resolve_named_city(
        &self,
        tx: &mut StoreTx,
        id: RequestId,
        mail: &InboundMail,
        new_text: &str,
    ) -> anyhow::Result<bool> {
        let cities = tx.list_cities().await?;
        let text = format!("{}\n{}", strip_reply_prefixes(&mail.subject), new_text);
        let named = names::cities_named(&text, &cities);
        // The answer makes its sender a confirmed contact of the city: it must be the official's
        // own, as far as the receiving server can tell, whenever verification is on.
        let cfg = &self.cfg.intake;
        let unverified = match cfg.verification {
            Verification::Off => None,
            Verification::Prefer if cfg.trusted_authserv_ids.is_empty() => None,
            _ => {
                let v = auth_results::verify(&mail.auth_results, &cfg.trusted_authserv_ids, mail.from_domain());
                (!v.verified).then_some(v.reason)
            }
        };
        if let [city] = named.as_slice()
            && let Some(why) = unverified
        {
            let reason =
                format!("the official named {} (sender not verified: {why}; approve to accept)", city.record.label());
            tx.set_review(id, &reason, Some(city.id), &mail.from, Source::Mail).await?;
            return Ok(false);
        }
        let [city] = named.as_slice() else {
            let reason = if named.is_empty() {
                "the official's reply names no registered city and state".to_string()
            } else {
                format!(
                    "the official's reply names several cities: {}",
                    named.iter().map(|c| c.record.label()).collect::<Vec<_>>().join(", ")
                )
            };
            tx.set_review(id, &reason, named.first().map(|c| c.id), &mail.from, Source::Mail).await?;
            return Ok(false);
        };
        let row = tx.request_by_id(id).await?;
        let via = format!("the official named {}", city.record.label());
        tx.upsert_contact(&mail.from, &mail.from_name, "", city.id, "confirmed", &mail.from).await?;
        self.settle_city(tx, &row, city, &via, &mail.from, Source::Mail).await?;
        let row = tx.request_by_id(id).await?;
        let template = row.eligibility.ack_template();
        let rendered = self.templates.render(template, &self.ack_context(&row))?;
        let queued = self.auto_reply(tx, &row, mail, template, rendered, Limit::Acknowledgement(None), None).await?;
        self.tell_staff_held(tx, id, &format!("the acknowledgement ({template}) to {}", mail.from), &queued).await?;
        Ok(true)
    }

    /// Gives a request its city, decided on the arrival date, and moves it on: eligible →
    /// acknowledged (and the staff thread opens), not eligible → ineligible.
    pub(super) async fn settle_city(
        &self,
        tx: &mut StoreTx,
        row: &RequestRow,
        city: &CityRow,
        via: &str,
        actor: &str,
        source: Source,
    ) -> anyhow::Result<()> {
        let id = RequestId(row.id);
        let date = row.received_on.parse().unwrap_or_else(|_| self.local_date(chrono::Utc::now()));
        let decided = registry::decide(city, via, date);
        tx.set_city_decision(id, Some(city.id), decided.outcome, &decided.reason, actor, source).await?;
        let to = decided.outcome.initial_status();
        if let Err(e) = self.set_status(tx, id, to, actor, source, self.local_date(chrono::Utc::now())).await? {
            tracing::warn!(error = %e, "city decided, status unchanged");
        }
        // Staff hear of the question once it is theirs to answer, even when earlier mail (a
        // follow-up, a held acknowledgement) already opened the staff thread.
        if to == RequestStatus::Acknowledged && !tx.has_mail_of_kind(id, "staff_new_request").await? {
            let question = tx.question_text(id).await?;
            self.notify_staff(tx, id, "staff_new_request", &question, &[]).await?;
        }
        Ok(())
    }
}
