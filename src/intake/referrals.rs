//! Expert referrals: `#refer EXPERT` (and `requests refer`) introduces the official to an expert
//! on the roster in one mail to both, in the request's thread, and the request becomes
//! `referred`. Replies from either join the request by its thread headers like any follow-up;
//! a referred expert's mail with only the [tag] joins too (see [`super::matching`]), but the
//! expert never receives later mail to the city. Closing a referred request with a note
//! records the referral's outcome; a bounce of the introduction is recorded on the referral and
//! staff are told. Talks to: [`crate::store`], [`super::mailer`].

use chrono::NaiveDate;

use super::mailer::{Limit, Queued, mailbox};
use super::{Actor, ApplyError, Intake};
use crate::domain::{RequestId, RequestStatus};
use crate::intake::commands::CommandError;
use crate::outbound::context::ReferralContext;
use crate::store::{FoundExpert, NewReferral, Source, StoreTx};
use crate::text::strip_reply_prefixes;

impl Intake {
    /// Introduces the official of request `id` to the expert `given` (an address or a name on
    /// the roster), with the staff member's `note`. Returns the summary line.
    pub(super) async fn refer(
        &self,
        tx: &mut StoreTx,
        id: RequestId,
        given: &str,
        note: &str,
        actor: &Actor,
        today: NaiveDate,
    ) -> Result<String, ApplyError> {
        let refuse = |why: String| Err(ApplyError::Command(CommandError(format!("#refer {given}: {why}"))));
        let expert = match tx.find_expert(given).await? {
            FoundExpert::One(e) => e,
            FoundExpert::None => {
                return refuse("no expert on the roster has that address or name (intake311 experts list)".into());
            }
            FoundExpert::Several(who) => {
                return refuse(format!("several experts have that name ({}); give the address", who.join(", ")));
            }
        };
        let row = tx.request_by_id(id).await?;
        if row.status == RequestStatus::Closed {
            return refuse(format!("{} is closed; reopen it first (#status in_progress)", row.tracking));
        }
        if expert.email == row.official_email {
            return refuse("that is the official's own address".into());
        }
        let question = tx.question_text(id).await?;
        let official_first =
            if row.official_name.is_empty() { row.official_email.clone() } else { row.official_name.clone() };
        let ctx = ReferralContext {
            service_name: self.cfg.intake.service_name.clone(),
            tracking: row.tracking.clone(),
            tag: format!("[{}]", row.tracking),
            subject: strip_reply_prefixes(&row.subject),
            official_name: row.official_name.clone(),
            official_first,
            official_email: row.official_email.clone(),
            city: row.city.clone().unwrap_or_default(),
            expert_name: expert.name.clone(),
            expert_email: expert.email.clone(),
            expert_org: expert.org.clone(),
            question: question.trim().to_string(),
            note: note.trim().to_string(),
            staff_name: actor.name.clone(),
            intake_address: self.cfg.intake.address.clone(),
        };
        let rendered = self.templates.render("referral_intro", &ctx).map_err(anyhow::Error::from)?;
        let (in_reply_to, references) = self.city_thread(tx, id, &row.official_email).await?;
        let official = mailbox(&row.official_name, &row.official_email)?;
        let to_expert = mailbox(&expert.name, &expert.email)?;
        // "Reply" as well as "Reply all" reaches all three: the official, the expert, and us.
        let reply_to = vec![self.city_reply_to(&row.tracking), official.clone(), to_expert.clone()];
        let queued = self
            .queue(
                tx,
                Queued {
                    request: Some(id),
                    kind: "referral_intro",
                    to: vec![official, to_expert],
                    cc: vec![],
                    reply_to,
                    in_reply_to: in_reply_to.as_deref(),
                    references,
                    auto_submitted: None,
                    tracking: Some(row.tracking.clone()),
                    rendered,
                    attachments: &[],
                    limit: Limit::None,
                    event: None,
                },
            )
            .await?;
        let message_id = queued.message_id().unwrap_or_default().to_string();
        tx.add_referral(&NewReferral {
            request: id,
            expert: &expert,
            referred_by: &actor.email,
            note: note.trim(),
            message_id: &message_id,
            referred_on: today,
        })
        .await?;
        let org = if expert.org.is_empty() { String::new() } else { format!(", {}", expert.org) };
        let detail = format!("{} <{}>{org}: <{message_id}>", expert.name, expert.email);
        tx.add_event(id, &actor.email, actor.source, "referral sent", &detail).await?;
        if !note.trim().is_empty() {
            tx.add_event(id, &actor.email, actor.source, "referral note", note.trim()).await?;
        }
        if row.status != RequestStatus::Referred
            && let Err(e) = self.set_status(tx, id, RequestStatus::Referred, &actor.email, actor.source, today).await?
        {
            return Err(ApplyError::Command(CommandError(e.to_string())));
        }
        self.human_response(tx, id, today).await?;
        Ok(format!(
            "referred to {} <{}>; the introduction is queued to the official and the expert",
            expert.name, expert.email
        ))
    }

    /// The introduction `message_id` bounced for `recipients`: the referral records it, and the
    /// words staff are told (`None` when it was no introduction, or the expert's address did not
    /// bounce).
    pub(super) async fn referral_bounce(
        &self,
        tx: &mut StoreTx,
        message_id: &str,
        recipients: &[String],
        summary: &str,
    ) -> anyhow::Result<Option<String>> {
        let who: Vec<&str> =
            if recipients.is_empty() { vec![""] } else { recipients.iter().map(String::as_str).collect() };
        for r in who {
            if let Some(f) = tx.referral_bounced(message_id, r, summary).await? {
                tx.add_event(
                    RequestId(f.request_id),
                    "intake311",
                    Source::System,
                    "referral bounced",
                    &format!("{} <{}>: {summary}", f.expert_name, f.expert_email),
                )
                .await?;
                return Ok(Some(format!(
                    "The introduction to the expert {} <{}> bounced: {summary}\n\nThe official and the expert may not \
                     have met. Check the address (intake311 experts show {}), then refer again (#refer) or tell the official.",
                    f.expert_name, f.expert_email, f.expert_email
                )));
            }
        }
        Ok(None)
    }
}
