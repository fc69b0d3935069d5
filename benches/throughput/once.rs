//! Every question handled once: after a drain (any engine, any number of daemons), each question
//! of the backlog has exactly one inbound row and one request, the tracking numbers are
//! distinct, each question was acknowledged under exactly one Message-ID and that
//! acknowledgement reached the official's Maildir exactly once; the intake inbox is empty, the
//! processed folder grew by the backlog, and nothing is in quarantine. A violation is a
//! [`OnceFigures::problems`] line, which fails the run (after the table is printed).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sqlx::Row as _;

use crate::corpus::INTAKE;
use crate::daemon::{Db, strip_brackets};
use crate::mailservers::MailServers;
use crate::trickle::read_in_reply_to;

/// What the check found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OnceFigures {
    pub questions: usize,
    /// Questions with no inbound `messages` row, and with more than one.
    pub not_handled: usize,
    pub handled_twice: usize,
    /// Distinct requests opened for these questions, and questions with more than one.
    pub requests: usize,
    pub several_requests: usize,
    /// Over the whole database: requests and distinct tracking numbers.
    pub tracking_numbers: i64,
    pub distinct_tracking_numbers: i64,
    /// Distinct acknowledgement Message-IDs for these questions (outbox), questions with none
    /// or with several, and acknowledgements not marked sent.
    pub acks: usize,
    pub not_acked: usize,
    pub acked_twice: usize,
    pub acks_not_sent: usize,
    /// Acknowledgements of these questions found in the officials' Maildirs, questions whose
    /// acknowledgement is missing there, and questions whose acknowledgement arrived more than
    /// once (the same mail sent twice, or two acknowledgements).
    pub delivered: usize,
    pub not_delivered: usize,
    pub delivered_twice: usize,
    /// Messages left in the intake inbox, added to the processed folder, in the quarantine
    /// folder; rows in the quarantine table.
    pub inbox_left: usize,
    pub processed_added: i64,
    pub quarantine_folder: usize,
    pub quarantined_rows: i64,
    pub problems: Vec<String>,
}

impl OnceFigures {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// One line for the table.
    pub fn line(&self) -> String {
        format!(
            "{} questions: {} requests ({} tracking numbers, {} distinct), {} acks, {} delivered; handled twice {}, \
             several requests {}, acked twice {}, delivered twice {}; inbox left {}, processed +{}, quarantine {}",
            self.questions,
            self.requests,
            self.tracking_numbers,
            self.distinct_tracking_numbers,
            self.acks,
            self.delivered,
            self.handled_twice,
            self.several_requests,
            self.acked_twice,
            self.delivered_twice,
            self.inbox_left,
            self.processed_added,
            self.quarantine_folder + self.quarantined_rows as usize,
        )
    }
}

/// Messages in the intake user's folders, taken before a drain: `processed_added` is counted
/// from here.
#[derive(Debug, Clone, Copy)]
pub struct Folders {
    pub inbox: usize,
    processed: usize,
    quarantine: usize,
}

impl Folders {
    pub fn now(servers: &MailServers) -> Folders {
        let root = servers.maildir(INTAKE);
        Folders {
            inbox: count_mail(&root),
            processed: count_mail(&root.join(".Processed")),
            quarantine: count_mail(&root.join(".Quarantine")),
        }
    }
}

/// Files in a Maildir folder's `new/` and `cur/`.
fn count_mail(folder: &Path) -> usize {
    ["new", "cur"].iter().map(|s| fs::read_dir(folder.join(s)).map(|d| d.flatten().count()).unwrap_or(0)).sum()
}

/// Checks `questions` (Message-IDs without angle brackets) against the database and the mail
/// servers. Call it once Postfix's queue is empty (every acknowledgement delivered);
/// `officials` are the Maildirs the acknowledgements go to, `before` the folders before the
/// drain.
pub async fn check(
    db: &Db,
    servers: &MailServers,
    questions: &[String],
    officials: &[PathBuf],
    before: Folders,
) -> Result<OnceFigures> {
    let want: HashSet<&str> = questions.iter().map(String::as_str).collect();
    let mut f = OnceFigures { questions: want.len(), ..OnceFigures::default() };

    // Inbound rows and their requests, per question.
    let inbound: Vec<(String, Option<i64>)> = on_db!(db, p => {
        sqlx::query("SELECT message_id, request_id FROM messages WHERE direction = 'in'")
            .fetch_all(p)
            .await
            .context("reading inbound messages")?
            .iter()
            .map(|r| Ok((r.try_get::<String, _>("message_id")?, r.try_get::<Option<i64>, _>("request_id")?)))
            .collect::<Result<_>>()?
    });
    let mut rows: HashMap<&str, (usize, HashSet<i64>)> = HashMap::new();
    for (id, request) in &inbound {
        let id = strip_brackets(id);
        if let Some(q) = want.get(id) {
            let e = rows.entry(q).or_default();
            e.0 += 1;
            e.1.extend(*request);
        }
    }
    f.not_handled = want.len() - rows.len();
    f.handled_twice = rows.values().filter(|(n, _)| *n > 1).count();
    f.requests = rows.values().map(|(_, r)| r.len()).sum();
    f.several_requests = rows.values().filter(|(_, r)| r.len() > 1).count();
    let without_request = rows.values().filter(|(_, r)| r.is_empty()).count();

    let (total, distinct): (i64, i64) = on_db!(db, p => {
        let r = sqlx::query("SELECT COUNT(*) AS n, COUNT(DISTINCT tracking) AS d FROM requests")
            .fetch_one(p)
            .await
            .context("counting tracking numbers")?;
        (r.try_get("n")?, r.try_get("d")?)
    });
    f.tracking_numbers = total;
    f.distinct_tracking_numbers = distinct;

    // Acknowledgements in the outbox, per question.
    let acks: Vec<(String, String, String)> = on_db!(db, p => {
        sqlx::query(
            "SELECT m.in_reply_to AS irt, o.message_id AS mid, o.status AS status FROM outbox o \
             JOIN messages m ON m.outbox_id = o.id WHERE m.direction = 'out' AND substr(o.kind, 1, 4) = 'ack_'",
        )
        .fetch_all(p)
        .await
        .context("reading acknowledgements")?
        .iter()
        .map(|r| Ok((r.try_get("irt")?, r.try_get("mid")?, r.try_get("status")?)))
        .collect::<Result<_>>()?
    });
    let mut acked: HashMap<&str, HashSet<&str>> = HashMap::new();
    for (irt, mid, status) in &acks {
        if let Some(q) = want.get(strip_brackets(irt)) {
            acked.entry(q).or_default().insert(mid.as_str());
            f.acks_not_sent += usize::from(status != "sent");
        }
    }
    f.acks = acked.values().map(HashSet::len).sum();
    f.not_acked = want.len() - acked.len();
    f.acked_twice = acked.values().filter(|m| m.len() > 1).count();

    // The receiving end: acknowledgements in the officials' Maildirs, per question.
    let mut delivered: HashMap<String, usize> = HashMap::new();
    for dir in officials {
        for sub in ["new", "cur"] {
            let Ok(rd) = fs::read_dir(dir.join(sub)) else { continue };
            for e in rd.flatten() {
                if let Some(id) = read_in_reply_to(&e.path())
                    && want.contains(id.as_str())
                {
                    *delivered.entry(id).or_default() += 1;
                }
            }
        }
    }
    f.delivered = delivered.values().sum();
    f.not_delivered = want.len() - delivered.len();
    f.delivered_twice = delivered.values().filter(|n| **n > 1).count();

    let now = Folders::now(servers);
    f.inbox_left = now.inbox;
    f.processed_added = now.processed as i64 - before.processed as i64;
    f.quarantine_folder = now.quarantine.saturating_sub(before.quarantine);
    f.quarantined_rows = on_db!(db, p => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM quarantine")
        .fetch_one(p)
        .await)
    .context("counting quarantine rows")?;

    let mut problem = |bad: bool, what: String| {
        if bad {
            f.problems.push(what);
        }
    };
    let n = want.len();
    problem(f.not_handled > 0, format!("{} of {n} questions have no inbound row", f.not_handled));
    problem(f.handled_twice > 0, format!("{} questions have more than one inbound row", f.handled_twice));
    problem(without_request > 0, format!("{without_request} questions have no request"));
    problem(f.several_requests > 0, format!("{} questions opened more than one request", f.several_requests));
    problem(
        total != distinct,
        format!("{} requests share a tracking number ({total} requests, {distinct} distinct)", total - distinct),
    );
    problem(f.not_acked > 0, format!("{} questions have no acknowledgement in the outbox", f.not_acked));
    problem(f.acked_twice > 0, format!("{} questions were acknowledged under more than one Message-ID", f.acked_twice));
    problem(f.acks_not_sent > 0, format!("{} acknowledgements are not marked sent", f.acks_not_sent));
    problem(f.not_delivered > 0, format!("{} acknowledgements never reached the official's Maildir", f.not_delivered));
    problem(
        f.delivered_twice > 0,
        format!("{} acknowledgements reached the official's Maildir more than once", f.delivered_twice),
    );
    problem(f.inbox_left > 0, format!("{} messages left in the intake inbox", f.inbox_left));
    problem(
        f.processed_added != n as i64,
        format!("the processed folder grew by {} messages, not {n}", f.processed_added),
    );
    problem(f.quarantine_folder > 0, format!("{} messages went to the quarantine folder", f.quarantine_folder));
    problem(f.quarantined_rows > 0, format!("{} rows in the quarantine table", f.quarantined_rows));
    Ok(f)
}
