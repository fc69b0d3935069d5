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
pub mod commands;
pub mod threads;

use std::fmt;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::Datelike as _;
use lettre::message::Mailbox;
use tokio::sync::Notify;

use crate::config::{Config, ReplyToClosed, Verification};
use crate::domain::{Eligibility, EligibilityDecision, RequestId, RequestStatus, TrackingNumber, add_business_days};
use crate::inbound::{self, Classification, InboundMail, auth_results, bounce, reply};
use crate::metrics::{self, Stage};
use crate::outbound::render::{
    AdminContext, CommandErrorContext, ResponseContext, StaffContext, TooLargeContext, human_bytes, markdown_to_html,
    opens_with_greeting, strip_reply_prefixes,
};
use crate::outbound::{self, AckContext, OutAttachment, Rendered, Templates};
use crate::registry;
use crate::registry::{Found, names};
use crate::store::{
    CityRow, Handoff, NewAttachment, NewEvent, NewMessage, NewOutbox, NewRequest, RequestRow, Source, StaffMember,
    Store, StoreTx,
};
use commands::{Assignee, BodyKind, Change, CommandError, StaffMessage};

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Request { tracking: TrackingNumber, eligibility: crate::domain::Eligibility },
    FollowUp { tracking: String },
    StaffAction { tracking: String, summary: String },
    StaffRejected { reason: String },
    Admin { summary: String },
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
            Outcome::FollowUp { tracking } => write!(f, "follow-up to {tracking}"),
            Outcome::StaffAction { tracking, summary } => write!(f, "staff on {tracking}: {summary}"),
            Outcome::StaffRejected { reason } => write!(f, "staff command rejected: {reason}"),
            Outcome::Admin { summary } => write!(f, "administrator: {summary}"),
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

/// Who did something, for the timeline and signatures.
#[derive(Debug, Clone)]
pub struct Actor {
    pub email: String,
    pub name: String,
    pub source: Source,
}

/// Why a staff action was not applied.
#[derive(Debug)]
pub enum ApplyError {
    /// The staff member asked for something that cannot be done; they are told, nothing changes.
    Command(CommandError),
    /// The store (or rendering) failed.
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for ApplyError {
    fn from(e: anyhow::Error) -> Self {
        ApplyError::Internal(e)
    }
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Command(e) => write!(f, "{e}"),
            ApplyError::Internal(e) => write!(f, "{e:#}"),
        }
    }
}

/// How a new question is answered: the eligibility decision, the status and acknowledgement
/// that follow from it, and whether a person must look at it.
#[derive(Debug, Clone)]
pub struct Decision {
    pub eligibility: EligibilityDecision,
    pub status: RequestStatus,
    pub template: &'static str,
    /// Non-empty: the request goes to the review queue with this reason.
    pub review: String,
    pub suggested_city: Option<i64>,
}

impl Decision {
    fn from_eligibility(eligibility: EligibilityDecision) -> Decision {
        Decision {
            status: eligibility.outcome.initial_status(),
            template: eligibility.outcome.ack_template(),
            eligibility,
            review: String::new(),
            suggested_city: None,
        }
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

/// How an inbound message is filed: on which request, as what, with what it adds and why.
struct Filed<'a> {
    request: Option<RequestId>,
    kind: &'a str,
    new_text: &'a str,
    note: &'a str,
}

/// One mail to queue: who, threading, rendered content.
struct Queued<'a> {
    request: Option<RequestId>,
    kind: &'a str,
    to: Vec<Mailbox>,
    cc: Vec<Mailbox>,
    reply_to: Mailbox,
    in_reply_to: Option<&'a str>,
    references: Vec<String>,
    auto_submitted: Option<&'a str>,
    tracking: Option<String>,
    rendered: Rendered,
    attachments: &'a [OutAttachment],
    /// Automatic city-facing mail: subject to the per-address rate limit and bounce suppression.
    rate_limited: bool,
    /// A line for the request's timeline, written with the row only if the mail is queued: this
    /// event, by intake311, with the kind as its detail.
    event: Option<&'static str>,
}

/// The intake engine: shared by the poller, the CLI and tests.
pub struct Intake {
    store: Store,
    cfg: Arc<Config>,
    templates: Arc<Templates>,
    from: Mailbox,
    intake_mailbox: Mailbox,
    staff_mailbox: Mailbox,
    wake_outbox: Arc<Notify>,
    /// In the daemon: where the ids of freshly queued mail go once committed (see
    /// [`Intake::with_fast_lane`]).
    fast_lane: Option<FastLane>,
    /// Failed attempts per IMAP position, across reconnects (see [`Intake::handle_or_give_up`]).
    failures: std::sync::Mutex<std::collections::HashMap<(String, u32, u32), u32>>,
}

/// What parsing a raw message found: the mail (or why it cannot be read) and, if it is a
/// delivery report, the bounce. Pure CPU work, done outside the transaction.
#[derive(Debug)]
pub struct Parsed {
    mail: Result<InboundMail, inbound::ParseError>,
    bounce: Option<bounce::Bounce>,
}

impl Parsed {
    pub fn new(raw: &[u8]) -> Parsed {
        let _t = metrics::timer(Stage::Parse);
        // Bounce detection first: it works on its own copy of the mail, which is freed before
        // the mail is parsed for keeps (for a 20 MB message the two would otherwise add up).
        let bounce = bounce::detect(raw);
        Parsed { mail: inbound::parse(raw), bounce }
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

fn mailbox(name: &str, email: &str) -> anyhow::Result<Mailbox> {
    let address = email.parse().with_context(|| format!("`{email}` is not an address we can write to"))?;
    Ok(Mailbox::new(if name.is_empty() { None } else { Some(name.to_string()) }, address))
}

/// Bare addresses, comma-separated, as the messages table records To and Cc.
fn addresses(list: &[Mailbox]) -> String {
    list.iter().map(|m| m.email.to_string()).collect::<Vec<_>>().join(", ")
}

/// The Message-IDs that place a mail in a thread: In-Reply-To and the most recent References,
/// at most 50 (a hostile References list must not become an unbounded query).
fn thread_ids(mail: &InboundMail) -> Vec<String> {
    let recent = mail.references.len().saturating_sub(49);
    let mut ids: Vec<String> = mail.in_reply_to.iter().take(1).chain(&mail.references[recent..]).cloned().collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The Message-ID header of raw mail that may not parse (a plain scan of the header block).
fn header_message_id(raw: &[u8]) -> Option<String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..end]);
    head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim().eq_ignore_ascii_case("message-id").then(|| value.trim().trim_matches(['<', '>']).to_string())
    })
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

fn size_of(bytes: usize) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

fn format_date(d: chrono::NaiveDate) -> String {
    d.format("%A, %B %-d, %Y").to_string()
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
        Ok(Intake {
            store,
            cfg,
            templates,
            from,
            intake_mailbox,
            staff_mailbox,
            wake_outbox,
            fast_lane: None,
            failures: Default::default(),
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
        tx.savepoint("message").await?;
        let result = self.dispatch(tx, pos, raw, parsed).await;
        match result {
            Ok(outcome) => {
                tx.release("message");
                self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
                Ok(outcome)
            }
            Err(e) => {
                tx.rollback_to("message").await?;
                tx.release("message");
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
        let Parsed { mail: parsed, bounce: detected } = parsed;
        let mail = match parsed {
            Ok(m) => m,
            Err(e @ (inbound::ParseError::NoFrom | inbound::ParseError::BadFrom(_))) => {
                // Delivery reports often come from `MAILER-DAEMON` or `<>`: still a bounce.
                if let Some(b) = detected
                    && let Ok(report) = inbound::parse_report(raw)
                {
                    return self.record_bounce(tx, pos, raw, &report, &b).await;
                }
                return self.quarantine(tx, pos, Some(raw), raw.len(), "", "", &e.to_string()).await;
            }
            Err(e) => return self.quarantine(tx, pos, Some(raw), raw.len(), "", "", &e.to_string()).await,
        };
        tracing::Span::current().record("message_id", mail.message_id.as_str());
        if let Some(b) = detected {
            return self.record_bounce(tx, pos, raw, &mail, &b).await;
        }
        let own = [self.cfg.intake.address.as_str(), self.from.email.as_ref()];
        if let Classification::Automatic(reason) = inbound::classify(&mail, &own, &self.cfg.message_id_domain) {
            return self.record_automatic(tx, pos, raw, &mail, &reason).await;
        }
        let _t = metrics::timer(Stage::Intake);
        let staff = tx.staff_member(&mail.from).await?;
        if let Some(member) = staff.as_ref().filter(|m| m.role == "admin")
            && let Some(command) = admin::parse(&mail.subject, &reply::new_content(&mail.text))
        {
            return self.admin_mail(tx, pos, raw, &mail, member, command).await;
        }
        let matched = self.match_request(tx, &mail, staff.is_some()).await?;
        let result = match (staff, matched) {
            (Some(member), Some(request)) => {
                let actor = Actor { email: member.email, name: member.name, source: Source::Mail };
                if let Some(why) = self.staff_unverified(&mail) {
                    return self.staff_rejected(tx, pos, raw, &mail, &actor, Some(&request), &why).await;
                }
                return self.staff_reply(tx, pos, raw, &mail, &actor, &request).await;
            }
            (Some(member), None) if commands::looks_like_commands(&reply::new_content(&mail.text)) => {
                let actor = Actor { email: member.email, name: member.name, source: Source::Mail };
                let error = "no request matched this message: reply to a staff notice, or keep the [tracking number] in the subject";
                return self.staff_rejected(tx, pos, raw, &mail, &actor, None, error).await;
            }
            (_, Some(request))
                if matches!(request.status, RequestStatus::Closed | RequestStatus::Responded)
                    && self.cfg.intake.reply_to_closed == ReplyToClosed::NewRequest =>
            {
                let decision = self.decide(tx, &mail).await?;
                self.new_request(tx, pos, raw, &mail, &decision, Some(RequestId(request.id))).await
            }
            (_, Some(request)) => self.follow_up(tx, pos, raw, &mail, &request).await,
            (_, None) => {
                let decision = self.decide(tx, &mail).await?;
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

    /// Why a staff member's mail must not be acted on: when trusted receiving servers are
    /// configured (and verification is not off), staff commands need a verified sender, as
    /// administrators' do, so a forged From cannot make us write to a city.
    fn staff_unverified(&self, mail: &InboundMail) -> Option<String> {
        let cfg = &self.cfg.intake;
        if cfg.verification == Verification::Off || cfg.trusted_authserv_ids.is_empty() {
            return None;
        }
        let v = auth_results::verify(&mail.auth_results, &cfg.trusted_authserv_ids, mail.from_domain());
        (!v.verified).then(|| {
            format!("your message could not be verified as coming from you ({}); nothing was applied", v.reason)
        })
    }

    /// Finds the sender's city — a known contact, then the mail domain (each subject to
    /// `intake.verification`), and as a suggestion for review only, a city and state named in the
    /// signature or subject — and decides how to answer.
    pub async fn decide(&self, tx: &mut StoreTx, mail: &InboundMail) -> anyhow::Result<Decision> {
        let cfg = &self.cfg.intake;
        let today = chrono::Utc::now().date_naive();
        let domain = mail.from_domain();
        let (city, via) = match registry::find_city(tx, &mail.from, domain, cfg.match_subdomains).await? {
            Found::Contact(c) => (c, format!("contact {}", mail.from)),
            Found::Domain(c, matched) if matched == domain => (c, format!("domain {matched}")),
            Found::Domain(c, matched) => (c, format!("domain {domain} (sub-domain of {matched})")),
            Found::Nothing => {
                let cities = tx.list_cities().await?;
                let text = format!("{}\n{}", mail.subject, names::signature_block(&mail.text));
                let named = names::cities_named(&text, &cities);
                let mut d = Decision::from_eligibility(EligibilityDecision {
                    outcome: Eligibility::Unknown,
                    city: None,
                    reason: format!("no known contact or city mail domain for {}", mail.from),
                });
                if let [one] = named.as_slice() {
                    d.review =
                        format!("no contact or domain matched; the signature or subject names {}", one.record.label());
                    d.suggested_city = Some(one.id);
                }
                return Ok(d);
            }
        };
        let mut decided = registry::decide(&city, &via, today);
        // `prefer` with no trusted server configured has nothing to check against.
        if cfg.verification == Verification::Off
            || (cfg.verification == Verification::Prefer && cfg.trusted_authserv_ids.is_empty())
        {
            return Ok(Decision::from_eligibility(decided));
        }
        let v = auth_results::verify(&mail.auth_results, &cfg.trusted_authserv_ids, domain);
        if v.verified {
            decided.reason.push_str(&format!("; sender verified: {}", v.reason));
            return Ok(Decision::from_eligibility(decided));
        }
        let label = city.record.label();
        let review = format!("sender not verified ({}); {via} → {label}", v.reason);
        Ok(match cfg.verification {
            Verification::Require => Decision {
                eligibility: EligibilityDecision {
                    outcome: Eligibility::Unknown,
                    city: None,
                    reason: format!("{via} → {label}, but the sender is not verified: {}", v.reason),
                },
                status: RequestStatus::New,
                template: "ack_received",
                review,
                suggested_city: Some(city.id),
            },
            _ => {
                decided.reason.push_str(&format!("; sender not verified: {}", v.reason));
                Decision { review, suggested_city: Some(city.id), ..Decision::from_eligibility(decided) }
            }
        })
    }

    /// The request a message belongs to: by thread headers (anyone), then by subject tag or
    /// plus-address (only the official, someone they copied, or staff).
    pub async fn match_request(
        &self,
        tx: &mut StoreTx,
        mail: &InboundMail,
        from_staff: bool,
    ) -> anyhow::Result<Option<RequestRow>> {
        let ids = thread_ids(mail);
        if let Some(id) = tx.request_for_message_ids(&ids).await? {
            return Ok(Some(tx.request_by_id(RequestId(id)).await?));
        }
        let prefix = &self.cfg.intake.tracking_prefix;
        let mut candidates = threads::tags_in_subject(&mail.subject, prefix);
        candidates.extend(threads::plus_tracking(&mail.recipients(), &self.cfg.intake.address, prefix));
        for tracking in candidates {
            let Some(request) = tx.request_by_tracking(&tracking).await? else { continue };
            let allowed =
                from_staff || request.official_email == mail.from || tx.is_participant(request.id, &mail.from).await?;
            if allowed {
                return Ok(Some(request));
            }
            tracing::info!(%tracking, from = %mail.from, "tracking tag from an outsider ignored; treated as a new question");
        }
        Ok(None)
    }

    /// Records a quarantine entry (and the raw bytes when we have them). The caller moves the
    /// message to the quarantine folder after this returns.
    pub async fn quarantine(
        &self,
        tx: &mut StoreTx,
        pos: Position<'_>,
        raw: Option<&[u8]>,
        size: usize,
        from: &str,
        subject: &str,
        reason: &str,
    ) -> anyhow::Result<Outcome> {
        let message_row = match raw {
            Some(raw) => Some(
                tx.insert_message(&NewMessage {
                    direction: "in",
                    kind: "quarantined",
                    from_addr: from,
                    subject,
                    raw: Some(raw),
                    size: size_of(size),
                    position: Some(pos.tuple()),
                    note: reason,
                    ..Default::default()
                })
                .await?,
            ),
            None => None,
        };
        let header_id = raw.and_then(header_message_id).unwrap_or_default();
        tx.insert_quarantine(message_row, pos.tuple(), from, subject, size_of(size), &header_id, reason).await?;
        tx.advance_position(pos.mailbox, pos.uidvalidity, pos.uid).await?;
        tracing::warn!(uid = pos.uid, reason, "message quarantined");
        Ok(Outcome::Quarantined { reason: reason.to_string() })
    }

    /// Quarantines a message over `imap.max_message_bytes` (only its header was fetched) and,
    /// when a person sent it, tells them once, politely, what the limit is.
    pub async fn quarantine_oversize(
        &self,
        tx: &mut StoreTx,
        pos: Position<'_>,
        size: usize,
        header: &[u8],
        reason: &str,
    ) -> anyhow::Result<Outcome> {
        let parsed = inbound::parse(header).ok();
        let (from, subject) = parsed.as_ref().map(|m| (m.from.as_str(), m.subject.as_str())).unwrap_or(("", ""));
        let header_id = header_message_id(header).unwrap_or_default();
        tx.insert_quarantine(None, pos.tuple(), from, subject, size_of(size), &header_id, reason).await?;
        let own = [self.cfg.intake.address.as_str(), self.from.email.as_ref()];
        let human = parsed.filter(|m| inbound::classify(m, &own, &self.cfg.message_id_domain) == Classification::Human);
        if let Some((mail, to)) = human.and_then(|m| mailbox(&m.from_name, &m.from).ok().map(|to| (m, to))) {
            let ctx = TooLargeContext {
                service_name: self.cfg.intake.service_name.clone(),
                subject: if mail.subject.is_empty() { "(no subject)".into() } else { mail.subject.clone() },
                official_name: mail.from_name.clone(),
                size: human_bytes(size as u64),
                limit: human_bytes(self.cfg.imap.max_message_bytes),
                intake_address: self.cfg.intake.address.clone(),
            };
            let rendered = self.templates.render("too_large", &ctx)?;
            self.queue(tx, Queued { rate_limited: true, ..self.answer(&mail, "too_large", to, rendered) }).await?;
        }
        tx.advance_position(pos.mailbox, pos.uidvalidity, pos.uid).await?;
        tracing::warn!(uid = pos.uid, reason, "message quarantined");
        Ok(Outcome::Quarantined { reason: reason.to_string() })
    }

    /// Stores an inbound message as `rec` says, with its attachments' metadata.
    async fn store_inbound(
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
                size: size_of(raw.len()),
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

    /// Files a message, unless its Message-ID is already stored: then the duplicate is
    /// recorded, and its outcome returned as `Err`.
    async fn open_and_file(
        &self,
        tx: &mut StoreTx,
        pos: Position<'_>,
        raw: &[u8],
        mail: &InboundMail,
        rec: Filed<'_>,
    ) -> anyhow::Result<Result<(), Outcome>> {
        if let Some(outcome) = self.duplicate(tx, pos, mail).await? {
            return Ok(Err(outcome));
        }
        self.store_inbound(tx, pos, raw, mail, rec).await?;
        Ok(Ok(()))
    }

    /// Rule 2: a Message-ID we already stored is recorded as a duplicate and goes no further.
    /// Returns the outcome to commit, if it is one.
    async fn duplicate(
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

    /// A delivery report: the outbox row it reports on is marked failed with the status and
    /// class, a hard-bounced address gets no automatic mail for `outbox.bounce_suppress`, and
    /// staff are told in the request's thread. Never answered.
    async fn record_bounce(
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
        if let Err(duplicate) = self
            .open_and_file(
                tx,
                pos,
                raw,
                mail,
                Filed { request: request.map(RequestId), kind: "bounce", new_text: "", note: &summary },
            )
            .await?
        {
            return Ok(duplicate);
        }
        let hard = b.class == bounce::BounceClass::Hard;
        if let Some(id) = &b.original_message_id {
            // A soft bounce (a delay, a full mailbox) is recorded; only a hard one fails the row.
            tx.mark_bounced(id, &format!("{status} {class}"), &summary, hard).await?;
        }
        if hard {
            let ttl = crate::store::ms_of(self.cfg.outbox.bounce_suppress);
            for r in &b.recipients {
                tx.suppress(r, crate::store::now_ms() + ttl, &summary).await?;
            }
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
                self.notify_staff(tx, r, "staff_delivery_failed", &summary, &[]).await?;
            }
        }
        if !city_mail && reported.is_some() {
            tracing::warn!(%summary, "mail to staff or an administrator bounced");
        }
        tx.advance_position(pos.mailbox, pos.uidvalidity, pos.uid).await?;
        Ok(Outcome::Automatic { reason: summary })
    }

    async fn record_automatic(
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

    /// Renders `mail` to bytes and queues it in the outbox, with a messages row so replies to it
    /// match its request. Returns the new Message-ID.
    async fn queue(&self, tx: &mut StoreTx, q: Queued<'_>) -> anyhow::Result<Option<String>> {
        let rate_key =
            if q.rate_limited { q.to.first().map(|m| m.email.to_string()).unwrap_or_default() } else { String::new() };
        if !rate_key.is_empty() {
            let window = crate::store::ms_of(self.cfg.outbox.auto_window);
            if let Some(reason) = tx.auto_mail_blocked(&rate_key, self.cfg.outbox.auto_limit, window).await? {
                tracing::warn!(kind = q.kind, to = %rate_key, %reason, "automatic mail not sent");
                if let Some(r) = q.request {
                    tx.add_event(
                        r,
                        "intake311",
                        Source::System,
                        "automatic mail not sent",
                        &format!("{}: {reason}", q.kind),
                    )
                    .await?;
                }
                return Ok(None);
            }
        }
        let message_id = outbound::new_message_id(&self.cfg.message_id_domain);
        let bytes = outbound::compose(
            &outbound::Envelope {
                from: &self.from,
                reply_to: Some(&q.reply_to),
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
                size: size_of(bytes.len()),
                ..Default::default()
            },
            // Written only for mail of a request (enqueue_recorded checks).
            q.event
                .map(|event| NewEvent { actor: "intake311", source: Source::System, event, detail: q.kind })
                .as_ref(),
        )
        .await?;
        Ok(Some(message_id))
    }

    /// An automatic answer (`Auto-Submitted: auto-replied`) to the sender of `mail`, in their
    /// own thread, from the intake address; callers override what differs.
    fn answer<'a>(&self, mail: &'a InboundMail, kind: &'a str, to: Mailbox, rendered: Rendered) -> Queued<'a> {
        let mut references = mail.references.clone();
        references.push(mail.message_id.clone());
        Queued {
            request: None,
            kind,
            to: vec![to],
            cc: vec![],
            reply_to: self.intake_mailbox.clone(),
            in_reply_to: Some(&mail.message_id),
            references,
            auto_submitted: Some("auto-replied"),
            tracking: None,
            rendered,
            attachments: &[],
            rate_limited: false,
            event: None,
        }
    }

    /// Queues an automatic answer (`Auto-Submitted: auto-replied`) to the sender of `mail`, in
    /// their own thread.
    async fn auto_reply(
        &self,
        tx: &mut StoreTx,
        row: &RequestRow,
        mail: &InboundMail,
        kind: &str,
        rendered: Rendered,
        event: Option<&'static str>,
    ) -> anyhow::Result<Option<String>> {
        let to = mailbox(&mail.from_name, &mail.from)?;
        let q = Queued {
            request: Some(RequestId(row.id)),
            reply_to: self.city_reply_to(&row.tracking),
            tracking: Some(row.tracking.clone()),
            rate_limited: true,
            event,
            ..self.answer(mail, kind, to, rendered)
        };
        self.queue(tx, q).await
    }

    fn city_reply_to(&self, tracking: &str) -> Mailbox {
        if self.cfg.intake.plus_addressing
            && let Ok(t) = tracking.parse::<TrackingNumber>()
            && let Some(plus) = threads::plus_address(&self.cfg.intake.address, &t)
            && let Ok(m) = mailbox(&self.cfg.intake.service_name, &plus)
        {
            return m;
        }
        self.intake_mailbox.clone()
    }

    fn ack_context(&self, request: &RequestRow) -> AckContext {
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

    fn staff_context(&self, request: &RequestRow, text: &str, attachments: &[String]) -> StaffContext {
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
            due_date: ack.due_date,
            status: request.status.to_string(),
            eligibility: request.eligibility.to_string(),
            reason: request.eligibility_reason.clone(),
            text: text.to_string(),
            attachments: attachments.to_vec(),
            intake_address: ack.intake_address,
            help: commands::HELP.to_string(),
        }
    }

    /// Queues a notice to the staff address in the request's staff thread (opening it if there is
    /// none yet). Staff mail never names the official in To or Cc, so reply-all stays internal.
    async fn notify_staff(
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
    async fn notify_staff_on(
        &self,
        tx: &mut StoreTx,
        row: &RequestRow,
        template: &str,
        text: &str,
        attachments: &[String],
    ) -> anyhow::Result<()> {
        let request = RequestId(row.id);
        let ctx = self.staff_context(row, text, attachments);
        let rendered = self.templates.render(template, &ctx)?;
        let thread = row.staff_thread_id.clone();
        let message_id = self
            .queue(
                tx,
                Queued {
                    request: Some(request),
                    kind: template,
                    to: vec![self.staff_mailbox.clone()],
                    cc: vec![],
                    reply_to: self.intake_mailbox.clone(),
                    in_reply_to: if thread.is_empty() { None } else { Some(&thread) },
                    references: if thread.is_empty() { vec![] } else { vec![thread.clone()] },
                    auto_submitted: Some("auto-generated"),
                    tracking: Some(row.tracking.clone()),
                    rendered,
                    attachments: &[],
                    rate_limited: false,
                    event: None,
                },
            )
            .await?;
        if let Some(id) = message_id.filter(|_| thread.is_empty()) {
            tx.set_staff_thread(request, &id).await?;
        }
        Ok(())
    }

    async fn new_request(
        &self,
        tx: &mut StoreTx,
        pos: Position<'_>,
        raw: &[u8],
        mail: &InboundMail,
        decision: &Decision,
        parent: Option<RequestId>,
    ) -> Result<Outcome, NewRequestError> {
        let cfg = &self.cfg;
        // An address we could not answer is refused before anything is written.
        mailbox(&mail.from_name, &mail.from)
            .map_err(|e| NewRequestError::Unusable(format!("sender address cannot be answered: {e:#}")))?;
        if let Some(outcome) = self.duplicate(tx, pos, mail).await? {
            return Ok(outcome);
        }

        let today = chrono::Utc::now().date_naive();
        let tracking = tx.next_tracking_number(&cfg.intake.tracking_prefix, today.year()).await?;
        let due = add_business_days(today, cfg.intake.response_days);
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
        self.store_inbound(
            tx,
            pos,
            raw,
            mail,
            // A question is all new: its text is `body_text`, not stored a second time.
            Filed { request: Some(request_id), kind: "question", new_text: "", note: "" },
        )
        .await?;

        // The acknowledgement, rendered now so its bytes and Message-ID are fixed in the row.
        let template = decision.template;
        let rendered = self
            .templates
            .render(template, &self.ack_context(&row))
            .map_err(|e| NewRequestError::Unusable(e.to_string()))?;
        self.auto_reply(tx, &row, mail, template, rendered, Some("acknowledgement queued"))
            .await
            .map_err(|e| NewRequestError::Unusable(format!("{e:#}")))?;
        if decision.status == RequestStatus::Acknowledged {
            let names: Vec<String> = mail.attachments.iter().map(|a| a.filename.clone()).collect();
            self.notify_staff_on(tx, &row, "staff_new_request", &mail.text, &names)
                .await
                .map_err(|e| NewRequestError::Unusable(format!("{e:#}")))?;
        }
        tx.advance_position(pos.mailbox, pos.uidvalidity, pos.uid).await?;
        Ok(Outcome::Request { tracking, eligibility: elig.outcome })
    }

    /// Whoever the sender copied: the Cc addresses but the sender and our own addresses.
    fn copied(&self, mail: &InboundMail) -> Vec<String> {
        mail.cc.iter().filter(|a| **a != mail.from && !self.is_ours(a)).cloned().collect()
    }

    fn is_ours(&self, address: &str) -> bool {
        address.eq_ignore_ascii_case(&self.cfg.intake.address)
            || address.eq_ignore_ascii_case(self.from.email.as_ref())
            || address.eq_ignore_ascii_case(&self.cfg.intake.staff_address)
    }

    async fn follow_up(
        &self,
        tx: &mut StoreTx,
        pos: Position<'_>,
        raw: &[u8],
        mail: &InboundMail,
        request: &RequestRow,
    ) -> Result<Outcome, NewRequestError> {
        let id = RequestId(request.id);
        let new_text = reply::new_content(&mail.text);
        if let Err(duplicate) = self
            .open_and_file(
                tx,
                pos,
                raw,
                mail,
                Filed { request: Some(id), kind: "follow_up", new_text: &new_text, note: "" },
            )
            .await?
        {
            return Ok(duplicate);
        }
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
            && let Err(e) = tx.set_status(id, to, &mail.from, Source::Mail).await?
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
        self.notify_staff(tx, id, "staff_followup", &text, &names)
            .await
            .map_err(|e| NewRequestError::Unusable(format!("{e:#}")))?;
        if self.cfg.intake.followup_note {
            let row = tx.request_by_id(id).await?;
            let rendered = self
                .templates
                .render("followup_added", &self.ack_context(&row))
                .map_err(|e| NewRequestError::Unusable(e.to_string()))?;
            self.auto_reply(tx, &row, mail, "followup_added", rendered, None)
                .await
                .map_err(|e| NewRequestError::Unusable(format!("{e:#}")))?;
        }
        tx.advance_position(pos.mailbox, pos.uidvalidity, pos.uid).await?;
        Ok(Outcome::FollowUp { tracking: request.tracking.clone() })
    }

    async fn staff_reply(
        &self,
        tx: &mut StoreTx,
        pos: Position<'_>,
        raw: &[u8],
        mail: &InboundMail,
        actor: &Actor,
        request: &RequestRow,
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
        if let Err(duplicate) = self
            .open_and_file(
                tx,
                pos,
                raw,
                mail,
                Filed { request: Some(id), kind: "staff_reply", new_text: &new_text, note: "" },
            )
            .await?
        {
            tx.release("staff_commands");
            return Ok(duplicate);
        }
        match self.apply_in(tx, id, &message, actor, &attachments).await {
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
    async fn staff_rejected(
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
        if let Err(duplicate) = self
            .open_and_file(
                tx,
                pos,
                raw,
                mail,
                Filed { request: id, kind: "staff_reply", new_text: &reply::new_content(&mail.text), note: error },
            )
            .await?
        {
            return Ok(duplicate);
        }
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
        let q = Queued {
            request: id,
            tracking: request.map(|r| r.tracking.clone()),
            ..self.answer(mail, "staff_command_error", to, rendered)
        };
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
        let mut tx = self.store.begin().await?;
        let summary = self.apply_in(&mut tx, RequestId(request.id), message, actor, attachments).await?;
        tx.commit().await?;
        self.wake_outbox.notify_one();
        Ok(summary)
    }

    /// Assignments and status changes first, then the body (note, reply or response, with
    /// their status), then `#close`. Any refusal rolls everything back (the caller drops `tx`).
    async fn apply_in(
        &self,
        tx: &mut StoreTx,
        id: RequestId,
        message: &StaffMessage,
        actor: &Actor,
        attachments: &[OutAttachment],
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
                        status(tx.set_status(id, RequestStatus::Assigned, &actor.email, actor.source).await?)?;
                    }
                    done.push(format!("assigned to {email}"));
                }
                Change::Status(to) => {
                    status(tx.set_status(id, *to, &actor.email, actor.source).await?)?;
                    done.push(format!("status {to}"));
                }
                Change::Close => {}
            }
        }
        match message.kind {
            BodyKind::Note => {
                if !message.body.is_empty() {
                    tx.add_event(id, &actor.email, actor.source, "note", &message.body).await?;
                    done.push("note added".into());
                }
            }
            BodyKind::Reply | BodyKind::Respond => {
                let (template, to) = match message.kind {
                    BodyKind::Reply => ("reply", RequestStatus::WaitingOnCity),
                    _ => ("response", RequestStatus::Responded),
                };
                status(tx.set_status(id, to, &actor.email, actor.source).await?)?;
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
            status(tx.set_status(id, RequestStatus::Closed, &actor.email, actor.source).await?)?;
            done.push("closed".into());
        }
        if done.is_empty() {
            done.push("nothing to do (empty note)".into());
        }
        Ok(done.join(", "))
    }

    async fn is_city_side(&self, id: RequestId, tx: &mut StoreTx, email: &str) -> anyhow::Result<bool> {
        Ok(tx.participants(id).await?.iter().any(|(e, _)| e == email))
    }

    /// A needs_city request whose official answered with a city and state: when exactly one
    /// registry city is named, the request takes it (decided on its arrival date), the sender
    /// becomes a confirmed contact, and the official gets the matching acknowledgement. Otherwise
    /// the request goes to review. Returns whether it was resolved.
    async fn resolve_named_city(
        &self,
        tx: &mut StoreTx,
        id: RequestId,
        mail: &InboundMail,
        new_text: &str,
    ) -> anyhow::Result<bool> {
        let cities = tx.list_cities().await?;
        let text = format!("{}\n{}", strip_reply_prefixes(&mail.subject), new_text);
        let named = names::cities_named(&text, &cities);
        if let [city] = named.as_slice()
            && self.cfg.intake.verification == Verification::Require
        {
            let reason = format!("the official named {} (sender not verified: approve to accept)", city.record.label());
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
        self.auto_reply(tx, &row, mail, template, rendered, None).await?;
        Ok(true)
    }

    /// Gives a request its city, decided on the arrival date, and moves it on: eligible →
    /// acknowledged (and the staff thread opens), not eligible → ineligible.
    async fn settle_city(
        &self,
        tx: &mut StoreTx,
        row: &RequestRow,
        city: &CityRow,
        via: &str,
        actor: &str,
        source: Source,
    ) -> anyhow::Result<()> {
        let id = RequestId(row.id);
        let date = row.received_on.parse().unwrap_or_else(|_| chrono::Utc::now().date_naive());
        let decided = registry::decide(city, via, date);
        tx.set_city_decision(id, Some(city.id), decided.outcome, &decided.reason, actor, source).await?;
        let to = decided.outcome.initial_status();
        if let Err(e) = tx.set_status(id, to, actor, source).await? {
            tracing::warn!(error = %e, "city decided, status unchanged");
        }
        if to == RequestStatus::Acknowledged && row.staff_thread_id.is_empty() {
            let question = tx.question_text(id).await?;
            self.notify_staff(tx, id, "staff_new_request", &question, &[]).await?;
        }
        Ok(())
    }

    /// `review approve`: gives the request `city`, optionally records the official as a contact,
    /// and, when the official has had no definitive answer yet, sends the acknowledgement.
    pub async fn review_approve(
        &self,
        tracking: &TrackingNumber,
        city: i64,
        add_contact: bool,
        actor: &Actor,
    ) -> Result<String, ApplyError> {
        let command = |m: String| ApplyError::Command(CommandError(m));
        let row =
            self.store.request_by_tracking(tracking).await?.ok_or_else(|| command(format!("no request {tracking}")))?;
        let mut tx = self.store.begin().await?;
        let city = tx
            .city_by_id(city)
            .await?
            .ok_or_else(|| command(format!("no city has id {city} (intake311 cities list)")))?;
        let id = RequestId(row.id);
        if add_contact {
            tx.upsert_contact(&row.official_email, &row.official_name, "", city.id, "admin", &actor.email).await?;
        }
        let answered = !matches!(row.status, RequestStatus::New | RequestStatus::NeedsCity);
        let via = format!("approved by {}", actor.email);
        self.settle_city(&mut tx, &row, &city, &via, &actor.email, actor.source).await?;
        let row = tx.request_by_id(id).await?;
        let mut summary = format!("{} → {} ({})", row.tracking, city.record.label(), row.eligibility);
        if !answered {
            let template = row.eligibility.ack_template();
            let rendered = self.templates.render(template, &self.ack_context(&row)).map_err(anyhow::Error::from)?;
            let (parent, refs) = tx.latest_official_message(id, &row.official_email).await?.unwrap_or_default();
            let mut references: Vec<String> = refs.split_whitespace().map(str::to_string).collect();
            if !parent.is_empty() {
                references.push(parent.clone());
            }
            self.queue(
                &mut tx,
                Queued {
                    request: Some(id),
                    kind: template,
                    to: vec![mailbox(&row.official_name, &row.official_email)?],
                    cc: vec![],
                    reply_to: self.city_reply_to(&row.tracking),
                    in_reply_to: if parent.is_empty() { None } else { Some(&parent) },
                    references,
                    auto_submitted: Some("auto-replied"),
                    tracking: Some(row.tracking.clone()),
                    rendered,
                    attachments: &[],
                    rate_limited: true,
                    event: None,
                },
            )
            .await?;
            summary.push_str(&format!("; {template} queued"));
        }
        if add_contact {
            summary.push_str(&format!("; {} recorded as a contact", row.official_email));
        }
        tx.commit().await?;
        self.wake_outbox.notify_one();
        Ok(summary)
    }

    /// `review reject`: takes the request out of review and closes it. Nothing is sent (a forged
    /// sender's mail would reach the real owner of the address).
    pub async fn review_reject(
        &self,
        tracking: &TrackingNumber,
        reason: &str,
        actor: &Actor,
    ) -> Result<String, ApplyError> {
        let row = self
            .store
            .request_by_tracking(tracking)
            .await?
            .ok_or_else(|| ApplyError::Command(CommandError(format!("no request {tracking}"))))?;
        let id = RequestId(row.id);
        let mut tx = self.store.begin().await?;
        tx.set_review(id, "", None, &actor.email, actor.source).await?;
        tx.add_event(id, &actor.email, actor.source, "review rejected", reason).await?;
        tx.set_status(id, RequestStatus::Closed, &actor.email, actor.source)
            .await?
            .map_err(|e| ApplyError::Command(CommandError(e.to_string())))?;
        tx.commit().await?;
        Ok(format!("{} rejected and closed", row.tracking))
    }

    /// An administrator's command by mail. Always needs a verified sender; the reply goes to
    /// the administrator only.
    async fn admin_mail(
        &self,
        tx: &mut StoreTx,
        pos: Position<'_>,
        raw: &[u8],
        mail: &InboundMail,
        member: &StaffMember,
        command: admin::AdminCommand,
    ) -> anyhow::Result<Outcome> {
        if let Err(duplicate) = self
            .open_and_file(
                tx,
                pos,
                raw,
                mail,
                Filed { request: None, kind: "admin", new_text: &reply::new_content(&mail.text), note: "" },
            )
            .await?
        {
            return Ok(duplicate);
        }
        let verification =
            auth_results::verify(&mail.auth_results, &self.cfg.intake.trusted_authserv_ids, mail.from_domain());
        let mut attachments = Vec::new();
        let (title, body) = if !verification.verified {
            (
                "Not applied: your message could not be verified".to_string(),
                format!(
                    "Administrators' commands by mail need a sender verified by the receiving server (DMARC, or SPF/DKIM aligned with your address).\n\nWhat the server reported: {}\n\nNothing was changed. You can run the same command on the server: intake311 cities import FILE.csv",
                    verification.reason
                ),
            )
        } else {
            match command {
                admin::AdminCommand::Export => {
                    let cities = tx.list_cities().await?;
                    attachments.push(OutAttachment {
                        filename: "cities.csv".into(),
                        content_type: "text/csv".into(),
                        data: registry::export_csv(&cities)?,
                    });
                    (
                        format!("The city list: {} cities, attached", cities.len()),
                        "Edit it and send it back with the subject #cities import to change the registry.".to_string(),
                    )
                }
                admin::AdminCommand::Import { replace } => {
                    self.admin_import_preview(tx, mail, &member.email, replace).await?
                }
                admin::AdminCommand::Confirm(token) => self.admin_confirm(tx, &member.email, &token).await?,
            }
        };
        let ctx = AdminContext {
            service_name: self.cfg.intake.service_name.clone(),
            subject: strip_reply_prefixes(&mail.subject),
            title: title.clone(),
            body,
            intake_address: self.cfg.intake.address.clone(),
        };
        let rendered = self.templates.render("admin_reply", &ctx)?;
        let to = mailbox(&member.name, &member.email)?;
        self.queue(tx, Queued { attachments: &attachments, ..self.answer(mail, "admin_reply", to, rendered) }).await?;
        tx.advance_position(pos.mailbox, pos.uidvalidity, pos.uid).await?;
        Ok(Outcome::Admin { summary: title })
    }

    async fn admin_import_preview(
        &self,
        tx: &mut StoreTx,
        mail: &InboundMail,
        admin: &str,
        replace: bool,
    ) -> anyhow::Result<(String, String)> {
        let Some(file) = mail.attachments.iter().find(|a| {
            a.filename.to_ascii_lowercase().ends_with(".csv")
                || a.content_type == "text/csv"
                || a.content_type == "application/vnd.ms-excel"
        }) else {
            return Ok((
                "Not applied: no CSV file attached".into(),
                "Attach the city list as a .csv file (columns: name,state,domains,eligible; see cities export).".into(),
            ));
        };
        let digest = sha256_hex(&file.data);
        let detail =
            format!("file {} (sha256 {digest}) by mail{}", file.filename, if replace { ", --replace" } else { "" });
        let rows = match registry::parse_csv(&file.data) {
            Ok(rows) => rows,
            Err(e) => return Ok((format!("Not applied: {} has errors", file.filename), e.to_string())),
        };
        let diff = match registry::diff(&tx.list_cities().await?, &rows, replace) {
            Ok(d) => d,
            Err(e) => return Ok((format!("Not applied: {} does not fit the registry", file.filename), e.to_string())),
        };
        let token = admin::new_token();
        let ttl = crate::store::ms_of(self.cfg.intake.admin_token_ttl);
        let expires_at = crate::store::now_ms() + ttl;
        tx.insert_admin_token(&crate::store::AdminToken {
            token: token.clone(),
            admin: admin.to_string(),
            action: if replace { "cities import --replace".into() } else { "cities import".into() },
            payload: file.data.clone(),
            detail: detail.clone(),
            expires_at,
            used_at: None,
        })
        .await?;
        let until = chrono::DateTime::from_timestamp_millis(expires_at)
            .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default();
        Ok((
            format!("Dry run of {}: nothing has changed yet", file.filename),
            format!(
                "{diff}\nTo apply exactly this change, reply to this message with the line\n\n#confirm {token}\n\nThe token works once, until {until}.\n({detail})"
            ),
        ))
    }

    async fn admin_confirm(&self, tx: &mut StoreTx, admin: &str, token: &str) -> anyhow::Result<(String, String)> {
        let not = |why: String| {
            Ok((
                format!("Not applied: {why}"),
                "Nothing was changed. Send the file again with the subject #cities import for a new token.".to_string(),
            ))
        };
        let Some(t) = tx.admin_token(token).await? else {
            return not(format!("there is no pending change with token {token}"));
        };
        if t.admin != admin {
            return not(format!("token {token} was issued to another administrator"));
        }
        if let Some(at) = t.used_at {
            let when = chrono::DateTime::from_timestamp_millis(at).map(|d| d.to_rfc3339()).unwrap_or_default();
            return not(format!("token {token} was already used ({when})"));
        }
        if t.expires_at < crate::store::now_ms() {
            return not(format!("token {token} has expired"));
        }
        let replace = t.action.ends_with("--replace");
        let rows = registry::parse_csv(&t.payload).map_err(|e| anyhow::anyhow!("stored file no longer parses: {e}"))?;
        let diff = match registry::diff(&tx.list_cities().await?, &rows, replace) {
            Ok(d) => d,
            Err(e) => return Ok(("Not applied: the registry changed since the dry run".into(), e.to_string())),
        };
        tx.apply_city_diff(&diff, admin, &t.detail).await?;
        tx.use_admin_token(token).await?;
        Ok(("Applied: the city list is updated".into(), format!("{diff}\n({})", t.detail)))
    }

    /// Queues staff-written mail to the official (and whoever they copied, unless
    /// `intake.copy_cc` is off), threaded under the official's latest message.
    async fn queue_to_city(
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
        let (in_reply_to, references) = match tx.latest_official_message(id, &row.official_email).await? {
            Some((parent, refs)) => {
                let mut references: Vec<String> = refs.split_whitespace().map(str::to_string).collect();
                references.push(parent.clone());
                (Some(parent), references)
            }
            None => (None, vec![]),
        };
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
                reply_to: self.city_reply_to(&row.tracking),
                in_reply_to: in_reply_to.as_deref(),
                references,
                auto_submitted: None,
                tracking: Some(row.tracking.clone()),
                rendered,
                attachments,
                rate_limited: false,
                event: None,
            },
        )
        .await?
        .context("staff-written mail is never rate-limited")
    }
}
