//! Staff mail and the `requests` CLI: `#` commands applied all together or not at all, through
//! one service ([`Intake::apply_staff_message`] and [`Intake::apply_in`]).
//! Talks to: [`crate::store`], [`super::mailer`].

use super::mailer::{Queued, mailbox};
use super::matching::thread_ids;
use super::question::Filed;
use super::{Actor, ApplyError, Intake, Outcome, Position, commands};
use chrono::NaiveDate;

use crate::deadlines::{Clock, DayKind};

use crate::domain::{RequestId, RequestStatus, TrackingNumber};
use crate::inbound::{InboundMail, auth_results, reply};
use crate::intake::commands::{Assignee, BodyKind, Change, CommandError, StaffMessage};
use crate::outbound::OutAttachment;
use crate::outbound::context::CommandErrorContext;
use crate::store::{RequestRow, StoreTx};
use crate::text::strip_reply_prefixes;

impl Intake {
    /// How a staff member's mail by mail proves it comes from them, since anyone can put a
    /// staff address in From: it answers a staff mail of this very request (In-Reply-To or
    /// References holds the Message-ID of a notice we sent to the staff address for it: random,
    /// 122 bits, and never shown to anyone else), or a trusted receiving server verified the
    /// sender (DMARC, or SPF/DKIM aligned). `Err` says why neither holds; nothing is applied then.
    pub(super) async fn staff_proof(
        &self,
        tx: &mut StoreTx,
        mail: &InboundMail,
        request: &RequestRow,
    ) -> anyhow::Result<Result<String, String>> {
        if tx.answers_staff_mail(RequestId(request.id), &thread_ids(mail)).await? {
            return Ok(Ok("answers a staff notice of this request".into()));
        }
        let cfg = &self.cfg.intake;
        let verification = if cfg.trusted_authserv_ids.is_empty() {
            "no trusted receiving server is configured to verify senders".to_string()
        } else {
            let v = auth_results::verify(&mail.auth_results, &cfg.trusted_authserv_ids, mail.from_domain());
            if v.verified {
                return Ok(Ok(format!("sender verified: {}", v.reason)));
            }
            format!("the sender could not be verified ({})", v.reason)
        };
        Ok(Err(format!(
            "this message does not answer a staff notice of {} and {verification}, so it cannot be told from a forgery; nothing was applied and nothing was sent. Reply to the staff notice itself to act on the request",
            request.tracking
        )))
    }

    #[allow(clippy::too_many_arguments)] // the message, where it came from, and the day it arrived
    pub(super) async fn staff_reply(
        &self,
        tx: &mut StoreTx,
        pos: Position<'_>,
        raw: &[u8],
        mail: &InboundMail,
        actor: &Actor,
        request: &RequestRow,
        today: NaiveDate,
    ) -> anyhow::Result<Outcome> {
        let new_text = reply::new_content(&mail.text);
        let message = match commands::parse(&new_text) {
            Ok(m) => m,
            Err(e) => return self.staff_rejected(tx, pos, raw, mail, actor, Some(request), &e.to_string()).await,
        };
        let id = RequestId(request.id);
        let attachments: Vec<OutAttachment> = mail
            .attachments
            .iter()
            .map(|a| OutAttachment {
                filename: a.filename.clone(),
                content_type: a.content_type.clone(),
                data: a.data.clone(),
            })
            .collect();
        // The commands apply all together or not at all.
        tx.savepoint("staff_commands").await?;
        self.store_inbound(
            tx,
            pos,
            raw,
            mail,
            Filed { request: Some(id), kind: "staff_reply", new_text: &new_text, note: "" },
        )
        .await?;
        match self.apply_in(tx, id, &message, actor, &attachments, today).await {
            Ok(summary) => {
                tx.release("staff_commands");
                tx.advance_position(pos.mailbox, pos.uidvalidity, pos.uid).await?;
                Ok(Outcome::StaffAction { tracking: request.tracking.clone(), summary })
            }
            Err(ApplyError::Command(e)) => {
                tx.rollback_to("staff_commands").await?;
                tx.release("staff_commands");
                self.staff_rejected(tx, pos, raw, mail, actor, Some(request), &e.to_string()).await
            }
            Err(ApplyError::Internal(e)) => Err(e),
        }
    }

    /// Records a staff message whose commands could not be applied, and tells its sender why.
    /// Nothing else changes and nothing goes to the city.
    #[allow(clippy::too_many_arguments)] // the message, who sent it, where, and why
    pub(super) async fn staff_rejected(
        &self,
        tx: &mut StoreTx,
        pos: Position<'_>,
        raw: &[u8],
        mail: &InboundMail,
        actor: &Actor,
        request: Option<&RequestRow>,
        error: &str,
    ) -> anyhow::Result<Outcome> {
        let id = request.map(|r| RequestId(r.id));
        self.store_inbound(
            tx,
            pos,
            raw,
            mail,
            Filed { request: id, kind: "staff_reply", new_text: &reply::new_content(&mail.text), note: error },
        )
        .await?;
        if let Some(r) = id {
            tx.add_event(r, &actor.email, actor.source, "command rejected", error).await?;
        }
        let ctx = CommandErrorContext {
            service_name: self.cfg.intake.service_name.clone(),
            tag: request.map(|r| format!("[{}]", r.tracking)).unwrap_or_default(),
            subject: strip_reply_prefixes(&mail.subject),
            error: error.to_string(),
            help: commands::HELP.to_string(),
            intake_address: self.cfg.intake.address.clone(),
        };
        let rendered = self.templates.render("staff_command_error", &ctx)?;
        let to = mailbox(&actor.name, &actor.email)?;
        let mut q = Queued {
            request: id,
            tracking: request.map(|r| r.tracking.clone()),
            ..self.answer(mail, "staff_command_error", to, rendered)
        };
        // In the request's staff thread, where the real staff member sees it, rather than under
        // a message whose headers anyone could have written.
        if let Some(thread) = request.map(|r| r.staff_thread_id.as_str()).filter(|t| !t.is_empty()) {
            q.in_reply_to = Some(thread);
            q.references = vec![thread.to_string()];
        }
        self.queue(tx, q).await?;
        tx.advance_position(pos.mailbox, pos.uidvalidity, pos.uid).await?;
        Ok(Outcome::StaffRejected { reason: error.to_string() })
    }

    /// Applies a staff message to a request from the command line, exactly as the same commands
    /// would by mail. Returns a one-line summary.
    pub async fn apply_staff_message(
        &self,
        tracking: &TrackingNumber,
        message: &StaffMessage,
        actor: &Actor,
        attachments: &[OutAttachment],
    ) -> Result<String, ApplyError> {
        let request = self
            .store
            .request_by_tracking(tracking)
            .await?
            .ok_or_else(|| ApplyError::Command(CommandError(format!("no request {tracking}"))))?;
        let today = self.local_date(chrono::Utc::now());
        let mut tx = self.store.begin().await?;
        let summary = self.apply_in(&mut tx, RequestId(request.id), message, actor, attachments, today).await?;
        tx.commit().await?;
        self.wake_outbox.notify_one();
        Ok(summary)
    }

    /// Assignments and status changes first, then the body (note, reply or response, with
    /// their status), then `#close`. Any refusal rolls everything back (the caller drops `tx`).
    pub(super) async fn apply_in(
        &self,
        tx: &mut StoreTx,
        id: RequestId,
        message: &StaffMessage,
        actor: &Actor,
        attachments: &[OutAttachment],
        today: NaiveDate,
    ) -> Result<String, ApplyError> {
        let mut done: Vec<String> = Vec::new();
        let status = |r: Result<bool, crate::store::IllegalTransition>| -> Result<bool, ApplyError> {
            r.map_err(|e| ApplyError::Command(CommandError(e.to_string())))
        };
        for change in &message.changes {
            match change {
                Change::Assign(who) => {
                    let email = match who {
                        Assignee::Me => actor.email.clone(),
                        Assignee::Email(e) => e.clone(),
                    };
                    if tx.staff_member(&email).await?.is_none() {
                        return Err(ApplyError::Command(CommandError(format!(
                            "#assign: {email} is not on the staff list (intake311 staff list)"
                        ))));
                    }
                    tx.set_assignee(id, &email, &actor.email, actor.source).await?;
                    let current = tx.request_by_id(id).await?.status;
                    if matches!(
                        current,
                        RequestStatus::New
                            | RequestStatus::Acknowledged
                            | RequestStatus::Ineligible
                            | RequestStatus::NeedsCity
                    ) {
                        status(
                            self.set_status(tx, id, RequestStatus::Assigned, &actor.email, actor.source, today).await?,
                        )?;
                    }
                    done.push(format!("assigned to {email}"));
                }
                Change::Status(to) => {
                    status(self.set_status(tx, id, *to, &actor.email, actor.source, today).await?)?;
                    done.push(format!("status {to}"));
                }
                Change::Due { date, reason } => {
                    let row = tx.request_by_id(id).await?;
                    let refuse = |why: String| Err(ApplyError::Command(CommandError(format!("#due {date}: {why}"))));
                    if matches!(row.status, RequestStatus::Responded | RequestStatus::Closed) {
                        return refuse(format!(
                            "{} is {}; reopen it first (#status in_progress)",
                            row.tracking, row.status
                        ));
                    }
                    if *date < today {
                        return refuse(format!("the date is in the past (today is {today})"));
                    }
                    match self.calendar.kind(*date) {
                        DayKind::Business => {}
                        DayKind::Weekend => {
                            return refuse(format!("{date} is a {}; choose a business day", date.format("%A")));
                        }
                        DayKind::Holiday(name) => {
                            return refuse(format!("{date} is a holiday ({name}); choose a business day"));
                        }
                    }
                    let mut clock = Clock::of(&row);
                    let old = clock.set_due(*date, today);
                    if old == Some(*date) {
                        done.push(format!("due date already {date}"));
                        continue;
                    }
                    tx.set_clock(id, &clock.fields()).await?;
                    let from = old.map_or_else(|| "none".to_string(), |d| d.to_string());
                    tx.add_event(id, &actor.email, actor.source, "due date", &format!("{from} → {date}: {reason}"))
                        .await?;
                    let message_id = self.queue_due_changed(tx, id, old, reason, actor).await?;
                    tx.add_event(id, &actor.email, actor.source, "due date sent", &format!("<{message_id}>")).await?;
                    done.push(format!("due date {date}; the official is told"));
                }
                Change::Topics(given) => {
                    let names = self
                        .topics
                        .names(given)
                        .map_err(|e| ApplyError::Command(CommandError(format!("#topic: {e}"))))?;
                    if names.is_empty() {
                        return Err(ApplyError::Command(CommandError("#topic: no topic named".into())));
                    }
                    tx.set_topics(id, &names, &actor.email, actor.source).await?;
                    done.push(format!("topics {}", names.join(", ")));
                }
                Change::Refer(given) => {
                    done.push(self.refer(tx, id, given, &message.body, actor, today).await?);
                }
                Change::Close => {}
            }
        }
        // Closing a referred request: the text is the referral's outcome.
        let outcome = message.changes.contains(&Change::Close)
            && !message.body.is_empty()
            && tx.request_by_id(id).await?.status == RequestStatus::Referred;
        if outcome {
            tx.set_referral_outcome(id, &message.body).await?;
            tx.add_event(id, &actor.email, actor.source, "referral outcome", &message.body).await?;
            done.push("outcome recorded".into());
        }
        match message.kind {
            BodyKind::Note => {
                // A referral's note went into the introduction, an outcome into the referral.
                if !message.body.is_empty() && message.referral().is_none() && !outcome {
                    tx.add_event(id, &actor.email, actor.source, "note", &message.body).await?;
                    done.push("note added".into());
                }
            }
            BodyKind::Reply | BodyKind::Respond => {
                let (template, to) = match message.kind {
                    BodyKind::Reply => ("reply", RequestStatus::WaitingOnCity),
                    _ => ("response", RequestStatus::Responded),
                };
                status(self.set_status(tx, id, to, &actor.email, actor.source, today).await?)?;
                self.human_response(tx, id, today).await?;
                let message_id = self.queue_to_city(tx, id, template, &message.body, actor, attachments).await?;
                let files: Vec<&str> = attachments.iter().map(|a| a.filename.as_str()).collect();
                let detail = if files.is_empty() {
                    format!("<{message_id}>")
                } else {
                    format!("<{message_id}> with {}", files.join(", "))
                };
                tx.add_event(
                    id,
                    &actor.email,
                    actor.source,
                    if template == "reply" { "reply sent" } else { "response sent" },
                    &detail,
                )
                .await?;
                done.push(format!("{template} queued to the official"));
            }
        }
        if message.changes.contains(&Change::Close) {
            status(self.set_status(tx, id, RequestStatus::Closed, &actor.email, actor.source, today).await?)?;
            done.push("closed".into());
        }
        if done.is_empty() {
            done.push("nothing to do (empty note)".into());
        }
        Ok(done.join(", "))
    }
}
