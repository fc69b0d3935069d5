//! Phase 4, trickle: a fresh daemon idle in IDLE, questions sent through Postfix at a steady
//! rate, and the latency from Postfix's 250 to the acknowledgement sent and delivered (the
//! officials' Maildirs watched independently).

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rand::Rng;
use rand::rngs::StdRng;

use crate::corpus::{self, INTAKE, Official};
use crate::daemon::{self, DaemonProc, DbTarget, unix_ms_f64, unix_ms_now};
use crate::mailservers::MailServers;
use crate::raw;
use crate::report::{Percentiles, TrickleFigures};
use crate::{Options, STOP_LIMIT, progress};

#[allow(clippy::too_many_arguments)]
pub async fn trickle(
    opts: &Options,
    servers: &MailServers,
    officials: &[Official],
    config: &Path,
    target: &DbTarget,
    run_dir: &Path,
    stage_report: Option<PathBuf>,
    rng: &mut StdRng,
) -> Result<TrickleFigures> {
    let log = run_dir.join("daemon-trickle.log");
    let mut d = DaemonProc::spawn(config, &log, stage_report.as_deref())?;
    let db = target.open().await?;
    d.wait_until_polled(&db, Duration::from_secs(60)).await?;
    // Let the first (empty) poll finish and IDLE begin.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The independent receiver: the officials' Maildirs, watched every 2 ms.
    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let dirs: Vec<PathBuf> = officials.iter().map(|o| servers.maildir(&o.email).join("new")).collect();
    let watcher = {
        let stop = Arc::clone(&stop.0);
        std::thread::spawn(move || watch_maildirs(&dirs, &stop, Duration::from_secs(3600)))
    };

    let since_ms = unix_ms_now() - 1000;
    let count = opts.trickle;
    let interval = Duration::from_secs_f64(1.0 / opts.rate);
    let mut sent: Vec<(String, f64)> = Vec::with_capacity(count as usize);
    let mut conn = Some(raw::connect_nodelay(servers.smtp_port).await?);
    let t0 = tokio::time::Instant::now();
    for i in 0..count {
        tokio::time::sleep_until(t0 + interval.mul_f64(i as f64)).await;
        let from = &officials[(i as usize) % officials.len()];
        let body_bytes = rng.random_range(1_000..=20_000);
        let q = corpus::question(rng, from, "trickle", i, body_bytes, None);
        let envelope = lettre::address::Envelope::new(
            Some(from.email.parse().with_context(|| format!("address {}", from.email))?),
            vec![INTAKE.parse().context("intake address")?],
        )
        .context("envelope")?;
        // One reconnect if the connection broke (Postfix closes idle sessions after a while).
        let mut attempt = 0;
        loop {
            let c = match conn.as_mut() {
                Some(c) => c,
                None => conn.insert(raw::connect_nodelay(servers.smtp_port).await?),
            };
            match raw::send_bounded(c, &envelope, &q.raw).await {
                Ok(_) => break,
                Err(e) if attempt == 0 => {
                    progress(format!("trickle: SMTP send failed ({e:#}); reconnecting"));
                    conn = None;
                    attempt += 1;
                }
                Err(e) => return Err(e.context(format!("trickle: sending question {i}"))),
            }
        }
        sent.push((q.message_id, unix_ms_f64()));
    }
    if let Some(mut c) = conn.take() {
        let _ = c.quit().await;
    }

    // Every acknowledgement accepted by SMTP (daemon's view) ...
    let want: HashSet<&str> = sent.iter().map(|(id, _)| id.as_str()).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let acks: HashMap<String, i64> = loop {
        d.check_alive()?;
        let acks: HashMap<String, i64> = daemon::acks_since(&db, since_ms)
            .await?
            .into_iter()
            .filter_map(|(id, at)| at.map(|t| (id, t)))
            .filter(|(id, _)| want.contains(id.as_str()))
            .collect();
        if acks.len() == want.len() {
            break acks;
        }
        if Instant::now() > deadline {
            bail!(
                "trickle: only {} of {} acknowledgements were sent within 120 s of the last question; log:\n{}",
                acks.len(),
                want.len(),
                daemon::log_tail(&log, 30)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // ... and in the officials' mailboxes (the receiver's view).
    let deadline = Instant::now() + Duration::from_secs(60);
    while !watcher.is_finished() && Instant::now() < deadline {
        if servers_delivered(&want, servers, officials) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.0.store(true, Ordering::Relaxed);
    let delivered = watcher.join().map_err(|_| anyhow!("the Maildir watcher panicked"))?;
    let peak = d.peak_rss_kb();
    db.close().await;
    d.terminate(STOP_LIMIT).await?;

    let mut to_smtp = Vec::new();
    let mut to_mailbox = Vec::new();
    let mut mailbox_minus_sent_at = Vec::new();
    let mut slowest = Vec::new();
    for (i, (id, accepted)) in sent.iter().enumerate() {
        let sent_at = acks.get(id).map(|t| *t as f64);
        let seen = delivered.get(id).copied();
        if let Some(at) = sent_at {
            to_smtp.push(at - accepted);
            slowest.push((i, at - accepted));
        }
        if let Some(at) = seen {
            to_mailbox.push(at - accepted);
        }
        if let (Some(s), Some(m)) = (sent_at, seen) {
            mailbox_minus_sent_at.push(m - s);
        }
    }
    if to_mailbox.len() < sent.len() {
        bail!(
            "trickle: only {} of {} acknowledgements reached the officials' Maildirs within 60 s; see {}",
            to_mailbox.len(),
            sent.len(),
            servers.postfix_log.display()
        );
    }
    let stages = match &stage_report {
        Some(p) if p.exists() => daemon::read_stage_report(p)?.stages,
        _ => Vec::new(),
    };
    Ok(TrickleFigures {
        questions: count,
        rate_per_second: opts.rate,
        setup: format!(
            "one fresh daemon process, same {} database as the drain (holding its requests), empty inbox",
            target.engine().name()
        ),
        to_smtp_acceptance: Percentiles::of(to_smtp),
        to_mailbox_delivery: Percentiles::of(to_mailbox),
        mailbox_minus_sent_at: Percentiles::of(mailbox_minus_sent_at),
        slowest: {
            slowest.sort_by(|a, b| b.1.total_cmp(&a.1));
            slowest.truncate(5);
            slowest
        },
        peak_rss_mb: peak.map(|kb| kb as f64 / 1024.0),
        stages,
    })
}

/// Tells the Maildir watcher to stop when the trickle ends, also on an early error return.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Whether every wanted acknowledgement is in some official's Maildir (a cheap check to stop
/// waiting; the watcher's timestamps are what is reported).
fn servers_delivered(want: &HashSet<&str>, servers: &MailServers, officials: &[Official]) -> bool {
    let mut found = 0;
    for o in officials {
        let Ok(rd) = fs::read_dir(servers.maildir(&o.email).join("new")) else { continue };
        for e in rd.flatten() {
            if read_in_reply_to(&e.path()).is_some_and(|id| want.contains(id.as_str())) {
                found += 1;
            }
        }
    }
    found >= want.len()
}

/// Polls `dirs` every 2 ms until `stop` (or `limit`): for each new file, the moment it was
/// first seen (Unix ms), keyed by the Message-ID in its In-Reply-To header.
fn watch_maildirs(dirs: &[PathBuf], stop: &AtomicBool, limit: Duration) -> HashMap<String, f64> {
    let start = Instant::now();
    let mut seen: HashSet<OsString> = HashSet::new();
    let mut found: HashMap<String, f64> = HashMap::new();
    // Files already there (earlier phases) are not ours.
    for d in dirs {
        if let Ok(rd) = fs::read_dir(d) {
            seen.extend(rd.flatten().map(|e| e.file_name()));
        }
    }
    while !stop.load(Ordering::Relaxed) && start.elapsed() < limit {
        for d in dirs {
            let Ok(rd) = fs::read_dir(d) else { continue };
            for e in rd.flatten() {
                let name = e.file_name();
                if seen.contains(&name) {
                    continue;
                }
                let at = unix_ms_f64();
                seen.insert(name);
                if let Some(id) = read_in_reply_to(&e.path()) {
                    found.entry(id).or_insert(at);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    found
}

/// The first Message-ID of a mail file's In-Reply-To header, without angle brackets.
pub fn read_in_reply_to(path: &Path) -> Option<String> {
    let mut buf = Vec::with_capacity(16 * 1024);
    fs::File::open(path).ok()?.take(64 * 1024).read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let head = text.split("\r\n\r\n").next().unwrap_or(&text);
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    let line = unfolded.lines().find(|l| l.len() > 12 && l[..12].eq_ignore_ascii_case("in-reply-to:"))?;
    let v = &line[12..];
    let start = v.find('<')? + 1;
    let end = start + v[start..].find('>')?;
    Some(v[start..end].trim().to_string())
}
