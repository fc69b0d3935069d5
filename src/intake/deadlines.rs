//! Keeping the promise by mail: the reminders and the daily digest that are due at a moment,
//! each sent exactly once ([`crate::deadlines::notices`] decides, `deadline_notices` records),
//! and on the first business day of a month the last month's report to the admin staff
//! ([`crate::report`]), with its charts inline.
//!
//! The daemon's scheduler calls [`Intake::run_deadlines`] every minute, and `intake311 deadlines
//! run --at` calls it for a chosen moment. Each notice is one transaction: claim its key, queue
//! its mail, record where it went; a key already claimed (a restart, another daemon) is skipped.
//! Talks to: [`crate::store`], [`crate::deadlines`], [`super::mailer`].

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;

use super::Intake;
use super::mailer::{Limit, Queued, addresses, format_date, mailbox};
use crate::deadlines::Calendar;
use crate::deadlines::notices::{self, DigestSection, Reminder};
use crate::outbound::context::{DigestContext, DigestLineContext, DigestSectionContext, ReminderContext};
use crate::outbound::{InlineImage, Rendered};
use crate::report::charts::Chart;
use crate::report::{Month, Report, render};
use crate::store::RequestRow;
use crate::store::{StaffMember, StaffRole};
use lettre::message::Mailbox;

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

/// What [`Intake::send_monthly_report`] did.
enum MonthlyReport {
    Sent(String),
    /// Sent (or decided) before.
    Already,
    /// Decided now: nothing to report, or nobody to send it to.
    NotSent,
}

/// The month whose report is due on `today`: the month before, when `today` is the first
/// business day of its month. (A daemon down all that day sends none; `intake311 report`
/// gives it at any time.)
pub fn report_due(today: NaiveDate, cal: &Calendar) -> Option<Month> {
    let month = Month::of(today);
    (cal.on_or_after(month.first_day()) == today).then(|| month.prev())
}

/// The notice key of a month's report, e.g. `report:2026-11`.
fn report_key(month: Month) -> String {
    format!("report:{month}")
}

impl Intake {
    /// An automatic mail to staff outside any request's thread (the digest, the monthly report).
    fn bulletin<'a>(&self, kind: &'a str, to: Vec<Mailbox>, rendered: Rendered) -> Queued<'a> {
        Queued {
            request: None,
            kind,
            to,
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
        }
    }

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
        if let Some(month) = report_due(today, &self.calendar) {
            match self.send_monthly_report(month, today).await? {
                MonthlyReport::Sent(line) => run.sent.push(line),
                MonthlyReport::Already => run.already.push(report_key(month)),
                MonthlyReport::NotSent => {}
            }
        }
        Ok(run)
    }

    /// Mails the report of `month` to the active admin staff, once: claimed as
    /// `report:YYYY-MM`. A month with nothing to report, or a deployment without an admin,
    /// is recorded as decided and sends nothing.
    async fn send_monthly_report(&self, month: Month, today: NaiveDate) -> anyhow::Result<MonthlyReport> {
        let key = report_key(month);
        // Every minute of the day after it went out: a cheap look before the figures and charts.
        if self.store.notice_claimed(&key).await? {
            return Ok(MonthlyReport::Already);
        }
        let report = Report::gather(&self.store, month, self.cfg.intake.timezone, &self.calendar).await?;
        let admins: Vec<StaffMember> =
            self.store.list_staff().await?.into_iter().filter(|m| m.role == StaffRole::Admin.as_str()).collect();
        let mut tx = self.store.begin().await?;
        if !tx.claim_notice(&key, "report", None, &today.to_string()).await? {
            return Ok(MonthlyReport::Already);
        }
        let why_not = if report.figures.is_empty() {
            Some("nothing to report: no report sent")
        } else if admins.is_empty() {
            Some("no active admin staff: no report sent")
        } else {
            None
        };
        if let Some(why) = why_not {
            tracing::info!(month = %month, "monthly report: {why}");
            tx.notice_sent(&key, "", "", why).await?;
            tx.commit().await?;
            return Ok(MonthlyReport::NotSent);
        }
        let domain = &self.cfg.message_id_domain;
        let inline: Vec<InlineImage> = report
            .charts
            .iter()
            .map(|c| InlineImage {
                content_id: format!("{}.{}@{domain}", c.name, uuid::Uuid::new_v4().simple()),
                content_type: "image/png".into(),
                data: c.png.clone(),
            })
            .collect();
        let cid = |c: &Chart| {
            let i = report.charts.iter().position(|x| x.name == c.name).unwrap_or_default();
            inline.get(i).map(|img| format!("cid:{}", img.content_id)).unwrap_or_default()
        };
        let ctx = render::context(
            &report.figures,
            &report.charts,
            &self.cfg.intake.service_name,
            &self.cfg.intake.address,
            cid,
        )?;
        let rendered = self.templates.render("monthly_report", &ctx)?;
        let to = admins.iter().map(|m| mailbox(&m.name, &m.email)).collect::<anyhow::Result<Vec<_>>>()?;
        let queued =
            self.queue_with_inline(&mut tx, self.bulletin("monthly_report", to.clone(), rendered), &inline).await?;
        let message_id = queued.message_id().unwrap_or_default().to_string();
        let who = addresses(&to);
        let line = format!("report {month} to {who} ({})", report.figures.summary());
        tx.notice_sent(&key, &who, &message_id, &line).await?;
        tx.commit().await?;
        self.wake_outbox.notify_one();
        Ok(MonthlyReport::Sent(line))
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
        let queued =
            self.queue(&mut tx, self.bulletin("staff_digest", vec![self.staff_mailbox.clone()], rendered)).await?;
        let message_id = queued.message_id().unwrap_or_default().to_string();
        let line = format!("digest to {to} ({summary})");
        tx.notice_sent(&key, &to, &message_id, &line).await?;
        tx.commit().await?;
        self.wake_outbox.notify_one();
        Ok(Some(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_of_a_month_is_due_on_the_next_months_first_business_day_only() {
        let d = |s: &str| s.parse::<NaiveDate>().expect("date");
        let cal = Calendar::from_holidays([(d("2027-01-01"), "New Year's Day".to_string())]);
        let due = |s: &str| report_due(d(s), &cal).map(|m| m.to_string());
        // Friday 1 January is a holiday, then a weekend: Monday 4 January.
        assert_eq!(due("2027-01-01"), None);
        assert_eq!(due("2027-01-04"), Some("2026-12".into()));
        assert_eq!(due("2027-01-05"), None);
        assert_eq!(due("2027-02-01"), Some("2027-01".into()));
        // Tuesday 1 December 2026.
        assert_eq!(due("2026-12-01"), Some("2026-11".into()));
        assert_eq!(report_key("2026-11".parse().expect("month")), "report:2026-11");
    }
}
