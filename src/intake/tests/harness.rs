//! [`Harness`]: an [`Intake`] over a fresh SQLite database in a temporary folder.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use tokio::sync::Notify;

use crate::config::{Config, RawConfig};
use crate::intake::{Intake, Outcome, Parsed, Position};
use crate::outbound::Templates;
use crate::registry;
use crate::store::{StaffRole, Store};

pub const INTAKE: &str = "ask@311.example";
pub const STAFF: &str = "staff@311.example";

/// The cities every harness starts with.
const CITIES: &str = "name,state,domains,eligible,eligible_from,eligible_until\n\
Dayton,OH,daytonohio.gov,yes,,\n\
Gary,IN,gary.gov,no,,\n\
Flint,MI,cityofflint.com,yes,2026-01-01,2026-12-31\n";

/// One mail in the outbox.
#[derive(Debug)]
pub struct Sent {
    pub kind: String,
    pub recipients: Vec<String>,
    pub raw: String,
}

impl Sent {
    /// The value of header `name` (unfolded), or "".
    pub fn header(&self, name: &str) -> String {
        let head = self.raw.split("\r\n\r\n").next().unwrap_or_default().replace("\r\n ", " ").replace("\r\n\t", " ");
        head.lines()
            .find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
            .unwrap_or_default()
            .to_string()
    }
}

pub struct Harness {
    pub intake: Intake,
    pub store: Store,
    uid: u32,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn new() -> Harness {
        Harness::with(|_| {}).await
    }

    /// A harness whose config `edit` changes first.
    pub async fn with(edit: impl FnOnce(&mut RawConfig)) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut raw = RawConfig::default();
        raw.database.url = format!("sqlite://{}", dir.path().join("intake311.db").display());
        raw.imap.user = INTAKE.into();
        raw.imap.secret.password = Some("secret".into());
        raw.smtp.from = format!("311 for Cities <{INTAKE}>");
        raw.intake.address = INTAKE.into();
        raw.intake.staff_address = STAFF.into();
        edit(&mut raw);
        let cfg = Arc::new(Config::from_raw(raw, "harness".into()).expect("config"));
        let store = Store::connect(&cfg.database.url, 1).await.expect("store");
        store.migrate().await.expect("migrate");
        let templates = Templates::load(cfg.intake.templates_dir.as_deref()).expect("templates");
        let rows = registry::parse_csv(CITIES.as_bytes()).expect("cities");
        let diff = registry::diff(&store.list_cities().await.expect("cities"), &rows, false).expect("diff");
        store.apply_city_diff(&diff, "harness", "fixture").await.expect("apply");
        store.upsert_staff("lee@311.example", "Lee Staff", StaffRole::Staff, "harness").await.expect("staff");
        store.upsert_staff("ada@311.example", "Ada Admin", StaffRole::Admin, "harness").await.expect("admin");
        let intake =
            Intake::new(store.clone(), Arc::clone(&cfg), Arc::new(templates), Arc::new(Notify::new())).expect("intake");
        Harness { intake, store, uid: 0, _dir: dir }
    }

    /// The database file.
    pub fn db_path(&self) -> std::path::PathBuf {
        self._dir.path().join("intake311.db")
    }

    /// Handles `raw` at IMAP `uid` and commits; the error is returned, as the poller sees it.
    pub async fn try_deliver(&mut self, raw: &str, uid: u32) -> anyhow::Result<Outcome> {
        let pos = Position { mailbox: "INBOX", uidvalidity: 1, uid };
        let mut tx = self.store.begin().await?;
        let outcome = self.intake.handle(&mut tx, pos, raw.as_bytes(), Parsed::new(raw.as_bytes(), None)).await?;
        self.intake.commit(tx, 1).await?;
        Ok(outcome)
    }

    /// Handles `raw` as the next message of the inbox and commits.
    pub async fn deliver(&mut self, raw: &str) -> Outcome {
        self.deliver_at(raw, None).await
    }

    /// [`Harness::deliver`] with an IMAP INTERNALDATE.
    pub async fn deliver_at(&mut self, raw: &str, internal_date: Option<DateTime<FixedOffset>>) -> Outcome {
        self.uid += 1;
        let pos = Position { mailbox: "INBOX", uidvalidity: 1, uid: self.uid };
        let mut tx = self.store.begin().await.expect("begin");
        let parsed = Parsed::new(raw.as_bytes(), internal_date);
        let outcome = self.intake.handle(&mut tx, pos, raw.as_bytes(), parsed).await.expect("handle");
        self.intake.commit(tx, 1).await.expect("commit");
        outcome
    }

    /// Everything queued since the last call, in the order the outbox worker would send it; each
    /// is marked sent, as if the SMTP server had accepted it.
    pub async fn sent(&self) -> Vec<Sent> {
        let mut out = Vec::new();
        loop {
            let far = crate::store::now_ms() + 86_400_000;
            let rows = self.store.claim_due_outbox(far, 1000, 86_400_000).await.expect("claim");
            if rows.is_empty() {
                return out;
            }
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            self.store.finish_outbox_pass(&ids, &[], 0).await.expect("mark sent");
            out.extend(rows.into_iter().map(|r| Sent {
                kind: r.kind,
                recipients: r.recipients,
                raw: String::from_utf8_lossy(&r.raw).into_owned(),
            }));
        }
    }
}

/// A reply from `from` to the mail `sent` of request `tracking` (In-Reply-To and References name
/// it), with `body`.
pub fn reply_to(sent: &Sent, from: &str, tracking: &str, body: &str) -> String {
    let id = uuid::Uuid::new_v4();
    format!(
        "From: {from}\r\nTo: {INTAKE}\r\nSubject: Re: [{tracking}] Lead pipes\r\nMessage-ID: <{id}@x.example>\r\n\
In-Reply-To: {0}\r\nReferences: {0}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n",
        sent.header("Message-ID")
    )
}

/// A plain question from `from` with `subject`, and extra header lines.
pub fn question(from: &str, subject: &str, extra: &str, body: &str) -> String {
    let id = uuid::Uuid::new_v4();
    format!(
        "From: {from}\r\nTo: {INTAKE}\r\nSubject: {subject}\r\nMessage-ID: <{id}@sender.example>\r\n\
Date: Thu, 03 Dec 2026 10:00:00 -0500\r\n{extra}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
}
