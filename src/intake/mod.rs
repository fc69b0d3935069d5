//! The decisions: what one inbound message becomes, committed in one transaction.
//!
//! A message is exactly one of: a new request (stored with its raw bytes, its eligibility
//! decision, its acknowledgement queued in the outbox and its timeline started), a duplicate of
//! a message already stored (same Message-ID), an automatic mail recorded but never answered,
//! or a quarantine record with the reason. The IMAP position advances in the same transaction,
//! so a crash before the commit replays the message and a crash after it only moves it.
//! Talks to: [`crate::inbound`] (parse, classify), [`crate::registry`] (city), [`crate::store`],
//! [`crate::outbound`] (render and compose); never to the network.

use std::fmt;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::Datelike as _;
use lettre::message::Mailbox;
use tokio::sync::Notify;

use crate::config::Config;
use crate::domain::{EligibilityDecision, TrackingNumber, add_business_days};
use crate::inbound::{self, Classification, InboundMail};
use crate::outbound::render::strip_reply_prefixes;
use crate::outbound::{self, AckContext, Templates};
use crate::registry;
use crate::store::{NewAttachment, NewMessage, NewOutbox, NewRequest, Source, Store};

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Request { tracking: TrackingNumber, eligibility: crate::domain::Eligibility },
    Duplicate { message_id: String },
    Automatic { reason: String },
    Quarantined { reason: String },
}

impl Outcome {
    /// Whether the message belongs in the quarantine folder (else the processed folder).
    pub fn is_quarantined(&self) -> bool {
        matches!(self, Outcome::Quarantined { .. })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Request { tracking, eligibility } => write!(f, "request {tracking} ({eligibility})"),
            Outcome::Duplicate { message_id } => write!(f, "duplicate of <{message_id}>"),
            Outcome::Automatic { reason } => write!(f, "automatic mail ({reason}), not answered"),
            Outcome::Quarantined { reason } => write!(f, "quarantined: {reason}"),
        }
    }
}

/// Where a message sits in IMAP.
#[derive(Debug, Clone, Copy)]
pub struct Position<'a> {
    pub mailbox: &'a str,
    pub uidvalidity: u32,
    pub uid: u32,
}

impl Position<'_> {
    fn tuple(&self) -> (&str, u32, u32) {
        (self.mailbox, self.uidvalidity, self.uid)
    }
}

/// The intake engine: shared by the poller, tools and tests.
pub struct Intake {
    store: Store,
    cfg: Arc<Config>,
    templates: Arc<Templates>,
    from: Mailbox,
    wake_outbox: Arc<Notify>,
}

impl Intake {
    pub fn new(
        store: Store,
        cfg: Arc<Config>,
        templates: Arc<Templates>,
        wake_outbox: Arc<Notify>,
    ) -> anyhow::Result<Intake> {
        let from: Mailbox = cfg.smtp.from.parse().with_context(|| format!("smtp.from `{}`", cfg.smtp.from))?;
        Ok(Intake { store, cfg, templates, from, wake_outbox })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Handles one fetched message. `Err` means the store failed (the message stays in the inbox
    /// and is tried again); every problem with the message itself becomes a quarantine outcome.
    pub async fn handle(&self, pos: Position<'_>, raw: &[u8]) -> anyhow::Result<Outcome> {
        let mail = match inbound::parse(raw) {
            Ok(m) => m,
            Err(e) => return self.quarantine(pos, Some(raw), raw.len(), "", "", &e.to_string()).await,
        };
        tracing::Span::current().record("message_id", mail.message_id.as_str());
        let own = [self.cfg.intake.address.as_str(), self.from.email.as_ref()];
        if let Classification::Automatic(reason) = inbound::classify(&mail, &own, &self.cfg.message_id_domain) {
            return self.record_automatic(pos, raw, &mail, &reason).await;
        }
        let decision =
            registry::decide_by_domain(&self.store, mail.from_domain(), self.cfg.intake.match_subdomains).await?;
        match self.new_request(pos, raw, &mail, &decision).await {
            Ok(outcome) => Ok(outcome),
            Err(NewRequestError::Store(e)) => Err(e),
            Err(NewRequestError::Unusable(reason)) => {
                self.quarantine(pos, Some(raw), raw.len(), &mail.from, &mail.subject, &reason).await
            }
        }
    }

    /// Records a quarantine entry (and the raw bytes when we have them). The caller moves the
    /// message to the quarantine folder after this returns.
    pub async fn quarantine(
        &self,
        pos: Position<'_>,
        raw: Option<&[u8]>,
        size: usize,
        from: &str,
        subject: &str,
        reason: &str,
    ) -> anyhow::Result<Outcome> {
        let mut tx = self.store.begin().await?;
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        let message_row = match raw {
            Some(raw) => Some(
                tx.insert_message(&NewMessage {
                    direction: "in",
                    kind: "quarantined",
                    message_id: "",
                    from_addr: from,
                    subject,
                    raw: Some(raw),
                    size,
                    position: Some(pos.tuple()),
                    note: reason,
                    ..Default::default()
                })
                .await?,
            ),
            None => None,
        };
        tx.insert_quarantine(message_row, pos.tuple(), from, subject, size, reason).await?;
        tx.advance_position(pos.mailbox, pos.uidvalidity, pos.uid).await?;
        tx.commit().await?;
        tracing::warn!(uid = pos.uid, reason, "message quarantined");
        Ok(Outcome::Quarantined { reason: reason.to_string() })
    }

    async fn record_automatic(
        &self,
        pos: Position<'_>,
        raw: &[u8],
        mail: &InboundMail,
        reason: &str,
    ) -> anyhow::Result<Outcome> {
        let mut tx = self.store.begin().await?;
        let refs = mail.references.join(" ");
        let irt = mail.in_reply_to.join(" ");
        tx.insert_message(&NewMessage {
            direction: "in",
            kind: "automatic",
            message_id: &mail.message_id,
            in_reply_to: &irt,
            references: &refs,
            from_addr: &mail.from,
            from_name: &mail.from_name,
            subject: &mail.subject,
            body_text: &mail.text,
            raw: Some(raw),
            size: i64::try_from(raw.len()).unwrap_or(i64::MAX),
            position: Some(pos.tuple()),
            note: reason,
            ..Default::default()
        })
        .await?;
        tx.advance_position(pos.mailbox, pos.uidvalidity, pos.uid).await?;
        tx.commit().await?;
        Ok(Outcome::Automatic { reason: reason.to_string() })
    }

    async fn new_request(
        &self,
        pos: Position<'_>,
        raw: &[u8],
        mail: &InboundMail,
        decision: &EligibilityDecision,
    ) -> Result<Outcome, NewRequestError> {
        let cfg = &self.cfg;
        let official: Mailbox = {
            let address = mail.from.parse().map_err(|e| {
                NewRequestError::Unusable(format!("sender address {} cannot be answered: {e}", mail.from))
            })?;
            let name = if mail.from_name.is_empty() { None } else { Some(mail.from_name.clone()) };
            Mailbox::new(name, address)
        };
        let mut tx = self.store.begin().await?;
        let refs_joined = mail.references.join(" ");
        let irt_joined = mail.in_reply_to.join(" ");
        let size = i64::try_from(raw.len()).unwrap_or(i64::MAX);

        // Rule 2: one request per question, whatever the IMAP position says.
        if let Some((_, request)) = tx.inbound_by_message_id(&mail.message_id).await? {
            tx.insert_message(&NewMessage {
                request_id: request.map(crate::domain::RequestId),
                direction: "in",
                kind: "duplicate",
                message_id: &mail.message_id,
                from_addr: &mail.from,
                subject: &mail.subject,
                size,
                position: Some(pos.tuple()),
                note: "same Message-ID as a message already stored",
                ..Default::default()
            })
            .await?;
            tx.advance_position(pos.mailbox, pos.uidvalidity, pos.uid).await?;
            tx.commit().await?;
            return Ok(Outcome::Duplicate { message_id: mail.message_id.clone() });
        }

        let today = chrono::Utc::now().date_naive();
        let tracking = tx.next_tracking_number(&cfg.intake.tracking_prefix, today.year()).await?;
        let due = add_business_days(today, cfg.intake.response_days);
        let status = decision.outcome.initial_status();
        let request_id = tx
            .insert_request(&NewRequest {
                tracking: &tracking,
                city_id: decision.city.as_ref().map(|c| c.id),
                official_email: &mail.from,
                official_name: &mail.from_name,
                subject: &mail.subject,
                status,
                eligibility: decision.outcome,
                eligibility_reason: &decision.reason,
                due_date: Some(due),
            })
            .await?;
        let cc = mail.cc.join(", ");
        let to = mail.to.join(", ");
        let question_row = tx
            .insert_message(&NewMessage {
                request_id: Some(request_id),
                direction: "in",
                kind: "question",
                message_id: &mail.message_id,
                in_reply_to: &irt_joined,
                references: &refs_joined,
                from_addr: &mail.from,
                from_name: &mail.from_name,
                to_addrs: &to,
                cc_addrs: &cc,
                subject: &mail.subject,
                body_text: &mail.text,
                raw: Some(raw),
                size,
                position: Some(pos.tuple()),
                ..Default::default()
            })
            .await?;
        let atts: Vec<NewAttachment<'_>> = mail
            .attachments
            .iter()
            .map(|a| NewAttachment {
                filename: &a.filename,
                content_type: &a.content_type,
                size: i64::try_from(a.size).unwrap_or(i64::MAX),
            })
            .collect();
        tx.insert_attachments(question_row, &atts).await?;
        tx.add_event(
            request_id,
            &mail.from,
            Source::Mail,
            "created",
            &format!("question received; {}", decision.reason),
        )
        .await?;

        // The acknowledgement, rendered now so its bytes and Message-ID are fixed in the row.
        let subject = strip_reply_prefixes(&mail.subject);
        let ctx = AckContext {
            service_name: cfg.intake.service_name.clone(),
            tracking: tracking.to_string(),
            tag: tracking.tag(),
            subject: if subject.is_empty() { "(no subject)".into() } else { subject },
            official_name: mail.from_name.clone(),
            official_email: mail.from.clone(),
            city: decision.city.as_ref().map(|c| c.display_name()),
            due_date: due.format("%A, %B %-d, %Y").to_string(),
            response_days: cfg.intake.response_days,
            intake_address: cfg.intake.address.clone(),
            reason: decision.reason.clone(),
        };
        let template = decision.outcome.ack_template();
        let rendered = self.templates.render(template, &ctx).map_err(|e| NewRequestError::Unusable(e.to_string()))?;
        let ack_id = outbound::new_message_id(&cfg.message_id_domain);
        let mut references = mail.references.clone();
        references.push(mail.message_id.clone());
        let reply_to: Mailbox =
            cfg.intake.address.parse().map_err(|e| NewRequestError::Unusable(format!("intake.address: {e}")))?;
        let tracking_text = tracking.to_string();
        let bytes = outbound::compose(
            &outbound::Envelope {
                from: &self.from,
                reply_to: Some(&reply_to),
                to: vec![official],
                cc: vec![],
                message_id: &ack_id,
                in_reply_to: Some(&mail.message_id),
                references: &references,
                auto_submitted: Some("auto-replied"),
                tracking: Some(&tracking_text),
                loop_address: &cfg.intake.address,
            },
            &rendered,
        )
        .map_err(|e| NewRequestError::Unusable(format!("{e:#}")))?;
        let recipients = vec![mail.from.clone()];
        let outbox_id = tx
            .enqueue(&NewOutbox {
                request_id: Some(request_id),
                kind: template,
                message_id: &ack_id,
                envelope_from: &cfg.intake.address,
                recipients: &recipients,
                raw: &bytes,
            })
            .await?;
        tx.insert_message(&NewMessage {
            request_id: Some(request_id),
            direction: "out",
            kind: template,
            message_id: &ack_id,
            in_reply_to: &mail.message_id,
            references: &references.join(" "),
            from_addr: &cfg.intake.address,
            to_addrs: &mail.from,
            subject: &rendered.subject,
            body_text: &rendered.text,
            size: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
            outbox_id: Some(outbox_id),
            ..Default::default()
        })
        .await?;
        tx.add_event(request_id, "intake311", Source::System, "acknowledgement queued", template).await?;
        tx.advance_position(pos.mailbox, pos.uidvalidity, pos.uid).await?;
        tx.commit().await?;
        self.wake_outbox.notify_one();
        Ok(Outcome::Request { tracking, eligibility: decision.outcome })
    }
}

enum NewRequestError {
    /// The store failed: leave the message where it is and try again later.
    Store(anyhow::Error),
    /// Something about this message makes it unusable: quarantine it with this reason.
    Unusable(String),
}

impl From<anyhow::Error> for NewRequestError {
    fn from(e: anyhow::Error) -> Self {
        NewRequestError::Store(e)
    }
}
