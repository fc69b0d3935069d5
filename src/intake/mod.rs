//! The decisions: what one inbound message becomes, committed in one transaction.
//!
//! A message is exactly one of:
//! - a **new request** (raw bytes, eligibility decision, participants, timeline, the
//!   acknowledgement and, for eligible cities, the staff notice that opens the staff thread);
//! - a **follow-up** joining its request (matched by thread headers, subject tag or
//!   plus-address; see [`threads`]), which tells staff in the staff thread;
//! - a **staff reply** whose `#` commands ([`commands`]) are applied all together or not at all;
//! - a **duplicate** of a message already stored (same Message-ID);
//! - an **automatic** mail, recorded and never answered;
//! - a **quarantine** record with the reason.
//!
//! The IMAP position advances in the same transaction, so a crash before the commit replays the
//! message and a crash after it only moves it. Everything sent is rendered here and queued in the
//! outbox in that transaction. [`Intake::apply_staff_message`] is shared by mail commands and the
//! `requests` CLI, so both do exactly the same thing.
//! Talks to: [`crate::inbound`], [`crate::registry`], [`crate::store`], [`crate::outbound`]; never
//! to the network.

pub mod admin;
mod admin_mail;
mod arrival;
mod automatic;
mod clock;
pub mod commands;
mod deadlines;
pub mod decide;
pub mod fault;
mod follow_up;
mod mailer;
mod matching;
mod outcome;
mod quarantine;
mod question;
mod referrals;
mod review;
mod staff;
#[cfg(test)]
mod tests;
pub mod threads;

pub use deadlines::DeadlineRun;
pub use decide::Decision;
use mailer::mailbox;
use outcome::NewRequestError;
pub use outcome::{Actor, ApplyError, Outcome, Position};

use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

use anyhow::Context as _;
use lettre::message::Mailbox;
use tokio::sync::Notify;

use crate::config::{Config, ReplyToClosed};
use crate::domain::{RequestId, RequestStatus};
use crate::inbound::{self, Classification, InboundMail, bounce, reply};
use crate::metrics::{self, Stage};
use crate::outbound::Templates;
use crate::store::{Handoff, Source, Store, StoreTx};

/// The intake engine: shared by the poller, the CLI and tests.
pub struct Intake {
    store: Store,
    cfg: Arc<Config>,
    templates: Arc<Templates>,
    from: Mailbox,
    intake_mailbox: Mailbox,
    staff_mailbox: Mailbox,
    /// Business days for the promised date (`deadlines.holidays`).
    calendar: crate::deadlines::Calendar,
    topics: crate::topics::Topics,
    wake_outbox: Arc<Notify>,
    /// In the daemon: where the ids of freshly queued mail go once committed (see
    /// [`Intake::with_fast_lane`]).
    fast_lane: Option<FastLane>,
    /// Failed attempts per IMAP position, across reconnects (see [`Intake::handle`]).
    failures: std::sync::Mutex<std::collections::HashMap<(String, u32, u32), u32>>,
    /// Failures with a fault of ours per IMAP position, and until when a position that kept
    /// failing waits (see [`Intake::deferred`]).
    ours: std::sync::Mutex<std::collections::HashMap<(String, u32, u32), OursFailures>>,
}

/// What parsing a raw message found: the mail (or why it cannot be read) and, if it is a
/// delivery report, the bounce. Pure CPU work, done outside the transaction.
#[derive(Debug)]
pub struct Parsed {
    mail: Result<InboundMail, inbound::ParseError>,
    bounce: Option<bounce::Bounce>,
    /// When it arrived (see [`arrival`]): every calendar date of a request is taken from it.
    arrived: DateTime<Utc>,
}

impl Parsed {
    /// Parses `raw`; `internal_date` is the IMAP INTERNALDATE the server gave it, if any.
    pub fn new(raw: &[u8], internal_date: Option<DateTime<FixedOffset>>) -> Parsed {
        let _t = metrics::timer(Stage::Parse);
        let arrived = arrival::arrival(raw, internal_date, Utc::now());
        // Bounce detection first: it works on its own copy of the mail, which is freed before
        // the mail is parsed for keeps (for a 20 MB message the two would otherwise add up).
        let bounce = bounce::detect(raw);
        Parsed { mail: inbound::parse(raw), bounce, arrived }
    }
}

/// Clears the backlog flag when dropped (see [`Intake::backlog`]).
pub struct BacklogGuard(Option<Arc<std::sync::atomic::AtomicBool>>);

impl Drop for BacklogGuard {
    fn drop(&mut self) {
        if let Some(f) = &self.0 {
            f.store(false, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Hands freshly committed outbox rows straight to the worker of the same process.
struct FastLane {
    sender: tokio::sync::mpsc::UnboundedSender<Vec<Handoff>>,
    lease_ms: i64,
    /// Set while the poller works through a backlog (see [`Intake::backlog`]).
    backlog: Arc<std::sync::atomic::AtomicBool>,
}

/// After this many failed attempts at one message it is quarantined with the error.
pub const MAX_ATTEMPTS: u32 = 3;

/// Failures with a fault of ours in a row at one IMAP position, and until when it waits.
type OursFailures = (u32, Option<std::time::Instant>);

/// After this many failures with a fault of ours in a row, a message waits [`DEFER_FOR`] in the
/// inbox while the mail behind it is handled.
pub const DEFER_AFTER: u32 = 5;
/// How long such a message waits before it is tried again.
pub const DEFER_FOR: std::time::Duration = std::time::Duration::from_secs(600);

fn size_i64(bytes: usize) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

impl Intake {
    pub fn new(
        store: Store,
        cfg: Arc<Config>,
        templates: Arc<Templates>,
        wake_outbox: Arc<Notify>,
    ) -> anyhow::Result<Intake> {
        let from: Mailbox = cfg.smtp.from.parse().with_context(|| format!("smtp.from `{}`", cfg.smtp.from))?;
        let intake_mailbox = mailbox(&cfg.intake.service_name, &cfg.intake.address)?;
        let staff_mailbox = mailbox("", &cfg.intake.staff_address)?;
        let calendar = crate::deadlines::Calendar::of(&cfg).context("deadlines.holidays")?;
        let topics = crate::topics::Topics::of(&cfg).context("intake.topics")?;
        Ok(Intake {
            store,
            cfg,
            templates,
            from,
            intake_mailbox,
            staff_mailbox,
            calendar,
            topics,
            wake_outbox,
            fast_lane: None,
            failures: Default::default(),
            ours: Default::default(),
        })
    }

    /// Mail queued by this intake is born claimed by this process for `lease` and its row ids are
    /// sent to `sender` after each commit, so the outbox worker sends it without a claim of its
    /// own (which would wait for the write lock behind the next group of messages). A row whose
    /// thread still has an earlier pending row is queued unclaimed instead, to keep its order. If
    /// the process dies, the lease runs out and the row is claimed and sent as usual.
    pub fn with_fast_lane(
        mut self,
        sender: tokio::sync::mpsc::UnboundedSender<Vec<Handoff>>,
        lease: std::time::Duration,
        backlog: Arc<std::sync::atomic::AtomicBool>,
    ) -> Intake {
        let lease_ms = crate::store::ms_of(lease);
        self.fast_lane = Some(FastLane { sender, lease_ms, backlog });
        self
    }

    /// Tells the outbox worker that the poller is working through a backlog (more than one
    /// fetch batch waiting) until the returned guard is dropped: meanwhile staff notices wait
    /// (at most a minute), so the mail servers' time goes to the officials' acknowledgements.
    pub fn backlog(&self) -> BacklogGuard {
        let flag = self.fast_lane.as_ref().map(|l| Arc::clone(&l.backlog));
        if let Some(f) = &flag {
            f.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        BacklogGuard(flag)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The calendar date of `at` in the programme's time zone (`intake.timezone`).
    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.cfg.intake.timezone).date_naive()
    }

    /// Commits a group of handled messages (see [`Intake::handle`]) and wakes the outbox worker
    /// for what they queued. Only after this returns may the messages leave the inbox.
    pub async fn commit(&self, mut tx: StoreTx, messages: usize) -> anyhow::Result<()> {
        let handoff = tx.take_handoff();
        {
            let _t = metrics::timer(Stage::Commit);
            tx.commit().await?;
        }
        metrics::committed(messages);
        if let Some(lane) = &self.fast_lane
            && !handoff.is_empty()
        {
            // A worker that has stopped leaves the rows to their lease and the ordinary claim.
            let _ = lane.sender.send(handoff);
        }
        self.wake_outbox.notify_one();
        Ok(())
    }

    /// Whether the message at `pos` kept failing with a fault of ours and waits, for now: it is
    /// left in the inbox, and tried again after [`DEFER_FOR`].
    pub fn deferred(&self, pos: Position<'_>) -> bool {
        let key = (pos.mailbox.to_string(), pos.uidvalidity, pos.uid);
        let ours = self.ours.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        ours.get(&key).and_then(|(_, until)| *until).is_some_and(|until| std::time::Instant::now() < until)
    }

    fn failed_ours(&self, key: &(String, u32, u32), e: &anyhow::Error) {
        let mut ours = self.ours.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = ours.entry(key.clone()).or_insert((0, None));
        entry.0 += 1;
        if entry.0 >= DEFER_AFTER {
            tracing::error!(
                uid = key.2,
                attempts = entry.0,
                error = format!("{e:#}"),
                retry_in = ?DEFER_FOR,
                "a message keeps failing with a fault of ours: it stays in the inbox and the mail behind it goes on"
            );
            *entry = (0, Some(std::time::Instant::now() + DEFER_FOR));
        }
    }

    /// Handles one fetched message inside `tx`, which may hold other messages of the same group
    /// commit: its writes sit under a savepoint, so when the store fails only this message is
    /// undone (`Err`: it stays in the inbox and is tried again). A message that fails
    /// [`MAX_ATTEMPTS`] times is quarantined with the error, so one message can never hold up the
    /// mail behind it. Every problem with the message itself becomes a quarantine outcome.
    ///
    /// `parsed` is [`Parsed::new`] of `raw`, done beforehand (the poller parses the next
    /// messages on another thread while this one is written).
    pub async fn handle(
        &self,
        tx: &mut StoreTx,
        pos: Position<'_>,
        raw: &[u8],
        parsed: Parsed,
    ) -> anyhow::Result<Outcome> {
        let key = (pos.mailbox.to_string(), pos.uidvalidity, pos.uid);
        // Two daemons may fetch the same UID (one's lease ran out while it was still at work):
        // the second waits for the first's commit here and then only moves the message.
        if let Some(handled) = tx.claim_position(pos.mailbox, pos.uidvalidity, pos.uid).await? {
            return Ok(Outcome::AlreadyHandled { quarantined: handled == crate::store::Handled::Quarantined });
        }
        tx.savepoint("message").await?;
        let result = self.dispatch(tx, pos, raw, parsed).await;
        match result {
            Ok(outcome) => {
                tx.release("message");
                self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
                self.ours.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
                Ok(outcome)
            }
            Err(e) => {
                tx.rollback_to("message").await?;
                tx.release("message");
                if fault::ours(&e) {
                    // The database or the deployment failed, not the message: it stays in the
                    // inbox, never quarantined, and the batch is retried with backoff. One that
                    // keeps failing (a fault that only its data brings out) waits a while, so the
                    // mail behind it goes on.
                    self.failed_ours(&key, &e);
                    return Err(e.context("a fault of ours, not of the message: it stays in the inbox"));
                }
                let attempts = {
                    let mut f = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    let n = f.entry(key.clone()).or_insert(0);
                    *n += 1;
                    *n
                };
                if attempts < MAX_ATTEMPTS {
                    return Err(e);
                }
                let reason = format!("could not be handled after {attempts} attempts: {e:#}");
                let outcome = self.quarantine(tx, pos, Some(raw), raw.len(), "", "", &reason).await?;
                self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
                Ok(outcome)
            }
        }
    }

    /// What one message is, and its writes, under the savepoint `message` that
    /// [`Intake::handle`] holds. Every read happens inside `tx`, so a message sees the requests,
    /// contacts and threads that earlier messages of the same group created.
    async fn dispatch(
        &self,
        tx: &mut StoreTx,
        pos: Position<'_>,
        raw: &[u8],
        parsed: Parsed,
    ) -> anyhow::Result<Outcome> {
        let Parsed { mail: parsed, bounce: detected, arrived } = parsed;
        let today = self.local_date(arrived);
        let mail = match parsed {
            Ok(m) => m,
            // Delivery reports often come from `MAILER-DAEMON` or `<>`: still a bounce.
            Err(inbound::ParseError::NoFrom | inbound::ParseError::BadFrom(_))
                if let Some(report) = detected.as_ref().and_then(|_| inbound::parse_report(raw).ok()) =>
            {
                report
            }
            Err(e) => return self.quarantine(tx, pos, Some(raw), raw.len(), "", "", &e.to_string()).await,
        };
        tracing::Span::current().record("message_id", mail.message_id.as_str());
        // Rule 2, checked once for every kind of mail: a Message-ID already stored goes no further.
        if let Some(duplicate) = self.duplicate(tx, pos, &mail).await? {
            return Ok(duplicate);
        }
        if let Some(b) = detected {
            return self.record_bounce(tx, pos, raw, &mail, &b).await;
        }
        let own = [self.cfg.intake.address.as_str(), self.from.email.as_ref()];
        if let Classification::Automatic(reason) = inbound::classify(&mail, &own, &self.cfg.message_id_domain) {
            return self.record_automatic(tx, pos, raw, &mail, &reason).await;
        }
        // The receiving server called it spam. From a known contact or a city's domain it may
        // still be a person's question: it is handled, and staff see it, but nothing answers it.
        // From anyone else it is recorded like other robots' mail.
        let quiet = match inbound::classify::spam_verdict(raw) {
            None => None,
            Some(verdict) => {
                let cfg = &self.cfg.intake;
                let found = tx.find_city(&mail.from, mail.from_domain(), cfg.match_subdomains).await?;
                if matches!(found, crate::registry::Found::Nothing) {
                    return self.record_automatic(tx, pos, raw, &mail, &verdict).await;
                }
                Some(format!("the receiving server marked it as spam ({verdict}): no automatic reply"))
            }
        };
        let _t = metrics::timer(Stage::Intake);
        let staff = tx.staff_member(&mail.from).await?;
        if let Some(member) = staff.as_ref().filter(|m| m.role == "admin")
            && let Some(command) = admin::parse(&mail.subject, &reply::new_content(&mail.text))
        {
            return self.admin_mail(tx, pos, raw, &mail, member, command).await;
        }
        let matched = self.match_request(tx, &mail, staff.is_some()).await?;
        if let Some(r) = &matched {
            tracing::Span::current().record("tracking", r.tracking.as_str());
        }
        let result = match (staff, matched) {
            (Some(member), Some(request)) => {
                let actor = Actor { email: member.email, name: member.name, source: Source::Mail };
                if let Err(why) = self.staff_proof(tx, &mail, &request).await? {
                    tracing::warn!(from = %mail.from, tracking = %request.tracking, "staff mail without proof refused");
                    return self.staff_rejected(tx, pos, raw, &mail, &actor, Some(&request), &why).await;
                }
                return self.staff_reply(tx, pos, raw, &mail, &actor, &request, today).await;
            }
            (Some(member), None) if commands::looks_like_commands(&reply::new_content(&mail.text)) => {
                let actor = Actor { email: member.email, name: member.name, source: Source::Mail };
                let error = "no request matched this message: reply to the staff notice of the request you mean";
                return self.staff_rejected(tx, pos, raw, &mail, &actor, None, error).await;
            }
            (_, Some(request))
                if matches!(request.status, RequestStatus::Closed | RequestStatus::Responded)
                    && self.cfg.intake.reply_to_closed == ReplyToClosed::NewRequest =>
            {
                let mut decision = self.decide(tx, &mail, today).await?;
                decision.no_reply = decision.no_reply.or(quiet);
                self.new_request(tx, pos, raw, &mail, &decision, Some(RequestId(request.id))).await
            }
            (_, Some(request)) => self.follow_up(tx, pos, raw, &mail, &request, quiet.is_some(), today).await,
            (_, None) => {
                let mut decision = self.decide(tx, &mail, today).await?;
                decision.no_reply = decision.no_reply.or(quiet);
                self.new_request(tx, pos, raw, &mail, &decision, None).await
            }
        };
        match result {
            Ok(outcome) => Ok(outcome),
            Err(NewRequestError::Store(e)) => Err(e),
            Err(NewRequestError::Unusable(reason)) => {
                // What the new request or follow-up wrote is undone (back to the savepoint
                // [`Intake::handle`] took for this message); the quarantine record replaces it.
                tx.rollback_to("message").await?;
                self.quarantine(tx, pos, Some(raw), raw.len(), &mail.from, &mail.subject, &reason).await
            }
        }
    }
}
