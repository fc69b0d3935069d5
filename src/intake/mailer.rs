//! Everything intake sends: the rendered mail, its threading headers and recipients, queued in
//! the outbox inside the caller's transaction (rule 1 of DESIGN.md). Rate limits for automatic
//! mail are applied here.
//! Talks to: [`crate::outbound`] (rendering, composing), [`crate::store`] (outbox rows).

use anyhow::Context as _;
use lettre::message::Mailbox;

use super::{Actor, Intake, commands, size_i64, threads};
use crate::domain::{RequestId, TrackingNumber};
use crate::inbound::InboundMail;
use crate::outbound::context::{DueChangedContext, ResponseContext, StaffContext};
use crate::outbound::markdown::markdown_to_html;
use crate::outbound::{self, AckContext, OutAttachment, Rendered};
use crate::store::{NewEvent, NewMessage, NewOutbox, RequestRow, Source, StoreTx};
use crate::text::{opens_with_greeting, strip_reply_prefixes};

/// Which limit an automatic mail to the city is under. The limits stop mail loops with robots
/// that our classifier did not recognise, without leaving a person's question unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Limit<'a> {
    /// Written by a person, or mail to staff: never held.
    None,
    /// The acknowledgement of a person's question (its subject and text, when it answers a new
    /// mail): held only after a hard bounce, when the same mail from the same address was
    /// acknowledged within `outbox.auto_window` (a loop resending one mail), or past
    /// `outbox.question_limit` (never below `outbox.auto_limit`) automatic mails to the address in that window (a robot that varies
    /// its text).
    Acknowledgement(Option<(&'a str, &'a str)>),
    /// Notes that answer other mail (follow-up notes, too-large notes): held after a hard bounce
    /// or past `outbox.auto_limit` automatic mails to the address within `outbox.auto_window`.
    Note,
}

/// What [`Intake::queue`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Queue {
    /// Queued under this Message-ID.
    Queued(String),
    /// Held back by a limit, for this reason (on the timeline, and in the log).
    Held(String),
}

impl Queue {
    pub(super) fn message_id(&self) -> Option<&str> {
        match self {
            Queue::Queued(id) => Some(id),
            Queue::Held(_) => None,
        }
    }
}

/// One mail to queue: who, threading, rendered content.
pub(super) struct Queued<'a> {
    pub(super) request: Option<RequestId>,
    pub(super) kind: &'a str,
    pub(super) to: Vec<Mailbox>,
    pub(super) cc: Vec<Mailbox>,
    /// Reply-To: one address, or several when a reply must reach them all (an introduction).
    pub(super) reply_to: Vec<Mailbox>,
    pub(super) in_reply_to: Option<&'a str>,
    pub(super) references: Vec<String>,
    pub(super) auto_submitted: Option<&'a str>,
    pub(super) tracking: Option<String>,
    pub(super) rendered: Rendered,
    pub(super) attachments: &'a [OutAttachment],
    /// Which limit on automatic mail applies.
    pub(super) limit: Limit<'a>,
    /// A line for the request's timeline, written with the row only if the mail is queued: this
    /// event, by intake311, with the kind as its detail.
    pub(super) event: Option<&'static str>,
}

pub(super) fn mailbox(name: &str, email: &str) -> anyhow::Result<Mailbox> {
    let address = email.parse().with_context(|| format!("`{email}` is not an address we can write to"))?;
    Ok(Mailbox::new(if name.is_empty() { None } else { Some(name.to_string()) }, address))
}

/// Bare addresses, comma-separated, as the messages table records To and Cc.
pub(super) fn addresses(list: &[Mailbox]) -> String {
    list.iter().map(|m| m.email.to_string()).collect::<Vec<_>>().join(", ")
}

pub(super) fn format_date(d: chrono::NaiveDate) -> String {
    d.format("%A, %B %-d, %Y").to_string()
}

impl Intake {
    /// Renders `mail` to bytes and queues it in the outbox, with a messages row so replies to it
    /// match its request. Returns its Message-ID, or why a limit held it back.
    pub(super) async fn queue(&self, tx: &mut StoreTx, q: Queued<'_>) -> anyhow::Result<Queue> {
        self.queue_with_inline(tx, q, &[]).await
    }

    /// As [`Intake::queue`], with images the HTML part shows inline (`cid:`).
    pub(super) async fn queue_with_inline(
        &self,
        tx: &mut StoreTx,
        q: Queued<'_>,
        inline: &[outbound::InlineImage],
    ) -> anyhow::Result<Queue> {
        let rate_key = match q.limit {
            Limit::None => String::new(),
            _ => q.to.first().map(|m| m.email.to_string()).unwrap_or_default(),
        };
        if !rate_key.is_empty()
            && let Some(reason) = self.held(tx, &rate_key, q.limit).await?
        {
            tracing::warn!(kind = q.kind, to = %rate_key, %reason, "automatic mail not sent");
            if let Some(r) = q.request {
                let detail = format!("{}: {reason}", q.kind);
                tx.add_event(r, "intake311", Source::System, "automatic mail not sent", &detail).await?;
            }
            return Ok(Queue::Held(reason));
        }
        let message_id = outbound::new_message_id(&self.cfg.message_id_domain);
        let bytes = outbound::compose_with_inline(
            &outbound::Envelope {
                from: &self.from,
                reply_to: &q.reply_to,
                to: q.to.clone(),
                cc: q.cc.clone(),
                message_id: &message_id,
                in_reply_to: q.in_reply_to,
                references: &q.references,
                auto_submitted: q.auto_submitted,
                tracking: q.tracking.as_deref(),
                loop_address: &self.cfg.intake.address,
            },
            &q.rendered,
            inline,
            q.attachments,
        )?;
        let recipients: Vec<String> = q.to.iter().chain(&q.cc).map(|m| m.email.to_string()).collect();
        let lease_until = match (&self.fast_lane, q.request) {
            (None, _) => 0,
            (Some(lane), None) => crate::store::now_ms() + lane.lease_ms,
            (Some(lane), Some(r)) => {
                if tx.has_pending_in_thread(r, crate::domain::is_staff_mail(q.kind)).await? {
                    0
                } else {
                    crate::store::now_ms() + lane.lease_ms
                }
            }
        };
        // The outbox row and the messages row that records it, in one round trip.
        tx.enqueue_recorded(
            &NewOutbox {
                request_id: q.request,
                kind: q.kind,
                message_id: &message_id,
                envelope_from: &self.cfg.intake.address,
                recipients: &recipients,
                raw: &bytes,
                rate_key: &rate_key,
                lease_until,
            },
            &NewMessage {
                request_id: q.request,
                direction: "out",
                kind: q.kind,
                message_id: &message_id,
                in_reply_to: q.in_reply_to.unwrap_or_default(),
                references: &q.references.join(" "),
                from_addr: &self.cfg.intake.address,
                to_addrs: &addresses(&q.to),
                cc_addrs: &addresses(&q.cc),
                subject: &q.rendered.subject,
                body_text: &q.rendered.text,
                size: size_i64(bytes.len()),
                ..Default::default()
            },
            // Written only for mail of a request (enqueue_recorded checks).
            q.event
                .map(|event| NewEvent { actor: "intake311", source: Source::System, event, detail: q.kind })
                .as_ref(),
        )
        .await?;
        Ok(Queue::Queued(message_id))
    }

    /// Why automatic mail to `email` under `limit` must not go out now, if it must not.
    async fn held(&self, tx: &mut StoreTx, email: &str, limit: Limit<'_>) -> anyhow::Result<Option<String>> {
        let out = &self.cfg.outbox;
        let window = crate::store::ms_of(out.auto_window);
        match limit {
            Limit::None => Ok(None),
            Limit::Note => tx.auto_mail_blocked(email, out.auto_limit, window).await,
            Limit::Acknowledgement(text) => {
                if let Some((subject, text)) = text
                    && tx.same_question_acknowledged(email, subject, text, crate::store::now_ms() - window).await?
                {
                    return Ok(Some(format!(
                        "the same mail from {email} was already acknowledged within {} (sent again, or a mail loop)",
                        humantime::format_duration(out.auto_window)
                    )));
                }
                tx.auto_mail_blocked(email, out.question_limit.max(out.auto_limit), window).await
            }
        }
    }

    /// Tells staff, in the request's staff thread, that mail meant for the city was held back.
    pub(super) async fn tell_staff_held(
        &self,
        tx: &mut StoreTx,
        id: RequestId,
        what: &str,
        queued: &Queue,
    ) -> anyhow::Result<()> {
        if let Queue::Held(reason) = queued {
            self.notify_staff(tx, id, "staff_mail_held", &format!("{what}: {reason}"), &[]).await?;
        }
        Ok(())
    }

    /// An automatic answer (`Auto-Submitted: auto-replied`) to the sender of `mail`, in their
    /// own thread, from the intake address; callers override what differs.
    pub(super) fn answer<'a>(
        &self,
        mail: &'a InboundMail,
        kind: &'a str,
        to: Mailbox,
        rendered: Rendered,
    ) -> Queued<'a> {
        let mut references = mail.references.clone();
        references.push(mail.message_id.clone());
        Queued {
            request: None,
            kind,
            to: vec![to],
            cc: vec![],
            reply_to: vec![self.intake_mailbox.clone()],
            in_reply_to: Some(&mail.message_id),
            references,
            auto_submitted: Some("auto-replied"),
            tracking: None,
            rendered,
            attachments: &[],
            limit: Limit::None,
            event: None,
        }
    }

    /// Queues an automatic answer (`Auto-Submitted: auto-replied`) to the sender of `mail`, in
    /// their own thread.
    #[allow(clippy::too_many_arguments)] // each is one field of the mail; a struct would only rename them
    pub(super) async fn auto_reply(
        &self,
        tx: &mut StoreTx,
        row: &RequestRow,
        mail: &InboundMail,
        kind: &str,
        rendered: Rendered,
        limit: Limit<'_>,
        event: Option<&'static str>,
    ) -> anyhow::Result<Queue> {
        let to = mailbox(&mail.from_name, &mail.from)?;
        let q = Queued {
            request: Some(RequestId(row.id)),
            reply_to: vec![self.city_reply_to(&row.tracking)],
            tracking: Some(row.tracking.clone()),
            limit,
            event,
            ..self.answer(mail, kind, to, rendered)
        };
        self.queue(tx, q).await
    }

    pub(super) fn city_reply_to(&self, tracking: &str) -> Mailbox {
        if self.cfg.intake.plus_addressing
            && let Ok(t) = tracking.parse::<TrackingNumber>()
            && let Some(plus) = threads::plus_address(&self.cfg.intake.address, &t)
            && let Ok(m) = mailbox(&self.cfg.intake.service_name, &plus)
        {
            return m;
        }
        self.intake_mailbox.clone()
    }

    pub(super) fn ack_context(&self, request: &RequestRow) -> AckContext {
        let subject = strip_reply_prefixes(&request.subject);
        AckContext {
            service_name: self.cfg.intake.service_name.clone(),
            tracking: request.tracking.clone(),
            tag: format!("[{}]", request.tracking),
            subject: if subject.is_empty() { "(no subject)".into() } else { subject },
            official_name: request.official_name.clone(),
            official_email: request.official_email.clone(),
            city: request.city.clone(),
            due_date: request
                .due_date
                .as_deref()
                .and_then(|d| d.parse::<chrono::NaiveDate>().ok())
                .map(format_date)
                .unwrap_or_default(),
            response_days: self.cfg.intake.response_days,
            intake_address: self.cfg.intake.address.clone(),
            reason: request.eligibility_reason.clone(),
        }
    }

    pub(super) fn staff_context(&self, request: &RequestRow, text: &str, attachments: &[String]) -> StaffContext {
        let ack = self.ack_context(request);
        StaffContext {
            service_name: ack.service_name,
            tracking: ack.tracking,
            tag: ack.tag,
            subject: ack.subject,
            city: request.city.clone().unwrap_or_else(|| format!("unknown city ({})", request.eligibility)),
            official_name: if request.official_name.is_empty() {
                request.official_email.clone()
            } else {
                request.official_name.clone()
            },
            official_email: request.official_email.clone(),
            from_name: if request.official_name.is_empty() {
                request.official_email.clone()
            } else {
                request.official_name.clone()
            },
            from_email: request.official_email.clone(),
            due_date: ack.due_date,
            status: request.status.to_string(),
            eligibility: request.eligibility.to_string(),
            reason: request.eligibility_reason.clone(),
            text: text.to_string(),
            attachments: attachments.to_vec(),
            topics: Vec::new(),
            topics_confirmed: false,
            intake_address: ack.intake_address,
            help: commands::HELP.to_string(),
        }
    }

    /// Queues a notice to the staff address in the request's staff thread (opening it if there is
    /// none yet). Staff mail never names the official in To or Cc, so reply-all stays internal.
    pub(super) async fn notify_staff(
        &self,
        tx: &mut StoreTx,
        request: RequestId,
        template: &str,
        text: &str,
        attachments: &[String],
    ) -> anyhow::Result<()> {
        let row = tx.request_by_id(request).await?;
        self.notify_staff_on(tx, &row, template, text, attachments).await
    }

    /// [`Intake::notify_staff`] with the request's current row already in hand.
    pub(super) async fn notify_staff_on(
        &self,
        tx: &mut StoreTx,
        row: &RequestRow,
        template: &str,
        text: &str,
        attachments: &[String],
    ) -> anyhow::Result<()> {
        let ctx = self.staff_context(row, text, attachments);
        self.notify_staff_with(tx, row, template, ctx).await
    }

    /// [`Intake::notify_staff_on`] with the context in hand (e.g. naming who wrote a follow-up).
    pub(super) async fn notify_staff_with(
        &self,
        tx: &mut StoreTx,
        row: &RequestRow,
        template: &str,
        mut ctx: StaffContext,
    ) -> anyhow::Result<()> {
        let request = RequestId(row.id);
        let topics = tx.topics_of(request).await?;
        ctx.topics = topics.topics.iter().map(|t| self.topics.label_of(t).to_string()).collect();
        ctx.topics_confirmed = topics.confirmed;
        let rendered = self.templates.render(template, &ctx)?;
        let queued = self.queue_in_staff_thread(tx, row, template, self.staff_mailbox.clone(), rendered, None).await?;
        if let Some(id) = queued.message_id().filter(|_| row.staff_thread_id.is_empty()) {
            tx.set_staff_thread(request, id).await?;
        }
        Ok(())
    }

    /// Queues automatic staff mail of request `row` to `to`, in the request's staff thread when it
    /// has one (staff notices, reminders). Staff mail never names the official in To or Cc.
    pub(super) async fn queue_in_staff_thread(
        &self,
        tx: &mut StoreTx,
        row: &RequestRow,
        template: &str,
        to: Mailbox,
        rendered: Rendered,
        event: Option<&'static str>,
    ) -> anyhow::Result<Queue> {
        let thread = row.staff_thread_id.as_str();
        self.queue(
            tx,
            Queued {
                request: Some(RequestId(row.id)),
                kind: template,
                to: vec![to],
                cc: vec![],
                reply_to: vec![self.intake_mailbox.clone()],
                in_reply_to: if thread.is_empty() { None } else { Some(thread) },
                references: if thread.is_empty() { vec![] } else { vec![thread.to_string()] },
                auto_submitted: Some("auto-generated"),
                tracking: Some(row.tracking.clone()),
                rendered,
                attachments: &[],
                limit: Limit::None,
                event,
            },
        )
        .await
    }

    /// In-Reply-To and References for mail to the city in request `id`'s thread: rooted at the
    /// question and our acknowledgement, answering the official's latest mail (see
    /// [`threads::city_references`]).
    pub(super) async fn city_thread(
        &self,
        tx: &mut StoreTx,
        id: RequestId,
        official: &str,
    ) -> anyhow::Result<(Option<String>, Vec<String>)> {
        let (question, ours) = tx.thread_roots(id).await?;
        let latest = tx.latest_official_message(id, official).await?;
        Ok(threads::city_references(
            question.as_deref(),
            ours.as_deref(),
            latest.as_ref().map(|(p, r)| (p.as_str(), r.as_str())),
        ))
    }

    /// Queues staff-written mail to the official (and whoever they copied, unless
    /// `intake.copy_cc` is off), threaded under the official's latest message.
    pub(super) async fn queue_to_city(
        &self,
        tx: &mut StoreTx,
        id: RequestId,
        template: &str,
        body: &str,
        actor: &Actor,
        attachments: &[OutAttachment],
    ) -> anyhow::Result<String> {
        let row = tx.request_by_id(id).await?;
        let ctx = ResponseContext {
            service_name: self.cfg.intake.service_name.clone(),
            tracking: row.tracking.clone(),
            tag: format!("[{}]", row.tracking),
            subject: strip_reply_prefixes(&row.subject),
            official_name: row.official_name.clone(),
            body_text: body.to_string(),
            body_html: markdown_to_html(body),
            greeted: opens_with_greeting(body, &row.official_name),
            staff_name: actor.name.clone(),
            attachments: attachments.iter().map(|a| crate::inbound::sanitize_filename(&a.filename)).collect(),
            intake_address: self.cfg.intake.address.clone(),
        };
        let rendered = self.templates.render(template, &ctx)?;
        self.queue_rendered_to_city(tx, &row, template, rendered, attachments).await
    }

    /// A new promised date, told to the official in the thread (`due_changed`).
    pub(super) async fn queue_due_changed(
        &self,
        tx: &mut StoreTx,
        id: RequestId,
        old: Option<chrono::NaiveDate>,
        reason: &str,
        actor: &Actor,
    ) -> anyhow::Result<String> {
        let row = tx.request_by_id(id).await?;
        let ctx = DueChangedContext {
            service_name: self.cfg.intake.service_name.clone(),
            tracking: row.tracking.clone(),
            tag: format!("[{}]", row.tracking),
            subject: strip_reply_prefixes(&row.subject),
            official_name: row.official_name.clone(),
            old_due_date: old.map(format_date).unwrap_or_default(),
            due_date: row.due_date.as_deref().and_then(|d| d.parse().ok()).map(format_date).unwrap_or_default(),
            reason: reason.to_string(),
            staff_name: actor.name.clone(),
            intake_address: self.cfg.intake.address.clone(),
        };
        let rendered = self.templates.render("due_changed", &ctx)?;
        self.queue_rendered_to_city(tx, &row, "due_changed", rendered, &[]).await
    }

    /// Queues rendered mail to the official in the request's thread, copying whoever they
    /// copied (`intake.copy_cc`); returns its Message-ID.
    async fn queue_rendered_to_city(
        &self,
        tx: &mut StoreTx,
        row: &RequestRow,
        template: &str,
        rendered: Rendered,
        attachments: &[OutAttachment],
    ) -> anyhow::Result<String> {
        let id = RequestId(row.id);
        let (in_reply_to, references) = self.city_thread(tx, id, &row.official_email).await?;
        let mut cc = Vec::new();
        if self.cfg.intake.copy_cc {
            for (email, role) in tx.participants(id).await? {
                if role == "cc" && email != row.official_email && !self.is_ours(&email) {
                    cc.push(mailbox("", &email)?);
                }
            }
        }
        self.queue(
            tx,
            Queued {
                request: Some(id),
                kind: template,
                to: vec![mailbox(&row.official_name, &row.official_email)?],
                cc,
                reply_to: vec![self.city_reply_to(&row.tracking)],
                in_reply_to: in_reply_to.as_deref(),
                references,
                auto_submitted: None,
                tracking: Some(row.tracking.clone()),
                rendered,
                attachments,
                limit: Limit::None,
                event: None,
            },
        )
        .await?
        .message_id()
        .map(str::to_string)
        .context("staff-written mail is never held")
    }
}
