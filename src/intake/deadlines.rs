//! Keeping the promise by mail: the reminders and the daily digest that are due at a moment,
//! each sent exactly once ([`crate::deadlines::notices`] decides, `deadline_notices` records).
//!
//! The daemon's scheduler calls [`Intake::run_deadlines`] every minute, and `intake311 deadlines
//! run --at` calls it for a chosen moment. Each notice is one transaction: claim its key, queue
//! its mail, record where it went; a key already claimed (a restart, another daemon) is skipped.
//! Talks to: [`crate::store`], [`crate::deadlines`], [`super::mailer`].

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;

use super::Intake;
use super::mailer::{Limit, Queued, format_date, mailbox};
use crate::deadlines::notices::{self, DigestSection, Reminder};
use crate::outbound::context::{DigestContext, DigestLineContext, DigestSectionContext, ReminderContext};
use crate::store::RequestRow;

/// What one run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeadlineRun {
    /// The local moment it ran for.
    pub at: String,
    /// One line per mail sent, e.g. `overdue 311-2027-0001 to ana@311.test (overdue by 1 business day)`.
    pub sent: Vec<String>,
    /// Notices due but already sent (by an earlier run or another daemon), by key.
    pub already: Vec<String>,
    /// Why nothing was due, when nothing was.
    pub idle: Option<String>,
}

impl std::fmt::Display for DeadlineRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for line in &self.sent {
            writeln!(f, "sent {line}")?;
        }
        for key in &self.already {
            writeln!(f, "already sent {key}")?;
        }
        match &self.idle {
            Some(why) => write!(f, "{}: nothing to do ({why})", self.at),
            None => write!(f, "{}: {} sent, {} already sent before", self.at, self.sent.len(), self.already.len()),
        }
    }
}

impl Intake {
    /// Sends the reminders and the digest due at `now` that have not been sent yet.
    pub async fn run_deadlines(&self, now: DateTime<Utc>) -> anyhow::Result<DeadlineRun> {
        let local: NaiveDateTime = now.with_timezone(&self.cfg.intake.timezone).naive_local();
        let mut run = DeadlineRun { at: local.format("%Y-%m-%d %H:%M").to_string(), ..Default::default() };
        let d = &self.cfg.deadlines;
        let digest_at = d.digest_time().unwrap_or_default();
        if !notices::acts_at(local, digest_at, &self.calendar) {
            run.idle = Some(if self.calendar.is_business_day(local.date()) {
                format!("before deadlines.digest_at {}", d.digest_at)
            } else {
                "not a business day".to_string()
            });
            return Ok(run);
        }
        let today = local.date();
        let rows = self.store.open_requests().await?;
        for reminder in notices::reminders(&rows, today, &self.calendar, d.remind_before) {
            let Some(row) = rows.iter().find(|r| r.id == reminder.request_id) else { continue };
            match self.send_reminder(row, &reminder, today).await? {
                Some(line) => run.sent.push(line),
                None => run.already.push(reminder.key()),
            }
        }
        let sections = notices::digest(&rows, today, &self.calendar, d.stale_after);
        match self.send_digest(&sections, today).await? {
            Some(line) => run.sent.push(line),
            None if sections.is_empty() => {}
            None => run.already.push(format!("digest:{today}")),
        }
        Ok(run)
    }

    async fn send_reminder(
        &self,
        row: &RequestRow,
        reminder: &Reminder,
        today: chrono::NaiveDate,
    ) -> anyhow::Result<Option<String>> {
        let key = reminder.key();
        let mut tx = self.store.begin().await?;
        if !tx.claim_notice(&key, reminder.kind.as_str(), Some(row.id), &today.to_string()).await? {
            return Ok(None);
        }
        let to = if row.assignee.is_empty() { self.cfg.intake.staff_address.clone() } else { row.assignee.clone() };
        let staff = self.staff_context(row, "", &[]);
        let ctx = ReminderContext {
            service_name: staff.service_name,
            tracking: staff.tracking,
            tag: staff.tag,
            subject: staff.subject,
            city: staff.city,
            official_name: staff.official_name,
            assignee: if row.assignee.is_empty() { "nobody yet".into() } else { row.assignee.clone() },
            due_date: format_date(reminder.due),
            when: reminder.words(),
            kind: reminder.kind.as_str().into(),
            status: row.status.to_string(),
            intake_address: staff.intake_address,
            help: staff.help,
        };
        let rendered = self.templates.render("staff_reminder", &ctx)?;
        let queued = self
            .queue_in_staff_thread(&mut tx, row, "staff_reminder", mailbox("", &to)?, rendered, Some("reminder sent"))
            .await?;
        let message_id = queued.message_id().unwrap_or_default().to_string();
        let line = format!("{} {} to {to} ({})", reminder.kind.as_str(), row.tracking, reminder.words());
        tx.notice_sent(&key, &to, &message_id, &line).await?;
        tx.commit().await?;
        self.wake_outbox.notify_one();
        Ok(Some(line))
    }

    async fn send_digest(
        &self,
        sections: &[DigestSection],
        today: chrono::NaiveDate,
    ) -> anyhow::Result<Option<String>> {
        let key = format!("digest:{today}");
        let mut tx = self.store.begin().await?;
        if !tx.claim_notice(&key, "digest", None, &today.to_string()).await? {
            return Ok(None);
        }
        if sections.is_empty() {
            tx.notice_sent(&key, "", "", "nothing to report: no digest sent").await?;
            tx.commit().await?;
            return Ok(None);
        }
        let summary = sections
            .iter()
            .map(|s| format!("{} {}", s.lines.len(), s.title.to_lowercase()))
            .collect::<Vec<_>>()
            .join(", ");
        let ctx = DigestContext {
            service_name: self.cfg.intake.service_name.clone(),
            date: format_date(today),
            summary: summary.clone(),
            sections: sections
                .iter()
                .map(|s| DigestSectionContext {
                    title: s.title.clone(),
                    count: s.lines.len(),
                    lines: s
                        .lines
                        .iter()
                        .map(|l| DigestLineContext {
                            tracking: l.tracking.clone(),
                            city: l.city.clone(),
                            subject: l.subject.clone(),
                            assignee: l.assignee.clone(),
                            when: l.when.clone(),
                        })
                        .collect(),
                })
                .collect(),
            intake_address: self.cfg.intake.address.clone(),
        };
        let rendered = self.templates.render("staff_digest", &ctx)?;
        let to = self.cfg.intake.staff_address.clone();
        let queued = self
            .queue(
                &mut tx,
                Queued {
                    request: None,
                    kind: "staff_digest",
                    to: vec![self.staff_mailbox.clone()],
                    cc: vec![],
                    reply_to: vec![self.intake_mailbox.clone()],
                    in_reply_to: None,
                    references: vec![],
                    auto_submitted: Some("auto-generated"),
                    tracking: None,
                    rendered,
                    attachments: &[],
                    limit: Limit::None,
                    event: None,
                },
            )
            .await?;
        let message_id = queued.message_id().unwrap_or_default().to_string();
        let line = format!("digest to {to} ({summary})");
        tx.notice_sent(&key, &to, &message_id, &line).await?;
        tx.commit().await?;
        self.wake_outbox.notify_one();
        Ok(Some(line))
    }
}
