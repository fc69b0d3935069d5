//! The figures of one run: one struct serialised to JSON, and the same figures as one aligned
//! plain-text table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::daemon::{DbFigures, Engine, LogProblems, Stage};
use crate::once::OnceFigures;
use crate::raw::{FetchFigures, SmtpFigure};

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub n: u64,
    /// The engine of the drain, trickle and memory phases (`--db`), and how many daemons drained.
    pub engine: Engine,
    pub daemons: usize,
    /// The private PostgreSQL cluster, when one was started: version, port, data directory.
    pub postgres: Option<String>,
    pub cpus: usize,
    pub started_at: String,
    pub total_seconds: f64,
    /// The machine's 1-minute load average as each phase started.
    pub load_average_1m: Vec<(String, f64)>,
    /// Where the daemon logs, configs, databases and stage reports of this run are.
    pub run_dir: String,
    /// Whether the daemon offered `run --stage-report` (per-stage times come from it).
    pub stage_report: bool,
    pub fill: FillFigures,
    pub raw: RawFigures,
    pub drain: DrainFigures,
    pub trickle: Option<TrickleFigures>,
    pub memory: Option<MemoryFigures>,
    /// `--quick`'s closing check: a small backlog drained by two daemons on PostgreSQL.
    pub pg_check: Option<DrainFigures>,
    /// One per `--lease` value (`--failover`, and `--quick`'s check).
    pub failover: Vec<FailoverFigures>,
    /// Questions not handled exactly once (see `once.rs`): each fails the run once the table is
    /// printed.
    pub problems: Vec<String>,
    /// WARN/ERROR lines per daemon log.
    pub daemon_logs: Vec<LogProblems>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FillFigures {
    pub messages: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub with_attachment: u64,
    /// Every question's Message-ID (without angle brackets), for the once-check.
    #[serde(skip)]
    pub message_ids: Vec<String>,
    /// The memory phase's ~20 MB messages (included in `messages` and `bytes`).
    pub big_messages: u64,
    pub big_bytes: u64,
    pub by_outcome: BTreeMap<String, u64>,
    pub cities: usize,
    pub officials: usize,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RawFigures {
    pub imap_fetch: Option<FetchFigures>,
    pub smtp: Vec<SmtpFigure>,
    /// Best of the runs that count (lettre with TCP_NODELAY, smtp-source).
    pub smtp_limit_per_second: f64,
    /// min(IMAP fetch rate, SMTP limit).
    pub limit_per_second: f64,
    pub limited_by: String,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DrainFigures {
    /// "SQLite" or "PostgreSQL".
    pub engine: String,
    /// Daemon processes on the one database and mailbox (one of them polls; all send).
    pub daemons: usize,
    pub questions: u64,
    /// From the first fetch to the last acknowledgement accepted by SMTP.
    pub seconds: f64,
    pub questions_per_second: f64,
    pub ratio_to_raw_limit: f64,
    /// "stage report" or "daemon start to MAX(outbox.sent_at)".
    pub window_source: String,
    pub window_start_unix_ms: i64,
    pub window_end_unix_ms: i64,
    /// Daemon start until every outbox row (staff notices too) was sent.
    pub all_mail_sent_seconds: f64,
    pub peak_rss_mb: Option<f64>,
    /// The daemons' CPU time (user + system, summed over the daemon processes) from their start
    /// until every outbox row was sent, per question, in milliseconds.
    pub daemon_cpu_ms_per_question: Option<f64>,
    /// PostgreSQL: the private cluster's CPU time (postmaster and every backend) over the same
    /// span, per question, in milliseconds.
    pub db_server_cpu_ms_per_question: Option<f64>,
    /// The whole machine's busy CPU time (every process and the kernel: the mail servers, the
    /// daemon, anything else) from just before the daemon's start until the benchmark saw the
    /// last acknowledgement sent (it looks every 500 ms), per question, in milliseconds. This is
    /// about the throughput window (first fetch to last acknowledgement); staff notices mostly go
    /// out after it.
    pub machine_cpu_ms_per_question: Option<f64>,
    /// The daemon's part of `machine_cpu_ms_per_question`, over the same span.
    pub window_daemon_cpu_ms_per_question: Option<f64>,
    /// Postfix's part, over the same span: every process under this run's Postfix master
    /// (see `daemon::ServerCpu`).
    pub postfix_cpu_ms_per_question: f64,
    /// Dovecot's part, over the same span: every process under this run's two Dovecot masters.
    /// What is left of the machine's time is the kernel's own threads and anything else.
    pub dovecot_cpu_ms_per_question: f64,
    /// PostgreSQL's part, over the same span (0 on SQLite).
    pub postgres_cpu_ms_per_question: f64,
    /// Share of the machine's CPU time left idle over the same span.
    pub machine_idle_share: Option<f64>,
    /// Of the idle share: time some task waited for the disk (fsync: SQLite's, Postfix's queue).
    pub machine_iowait_share: Option<f64>,
    /// Share of the machine's CPU time stolen by the hypervisor over the same span.
    pub machine_steal_share: Option<f64>,
    /// (seconds since daemon start, VmRSS in MB), about every 2 s.
    pub rss_timeline_mb: Vec<(f64, f64)>,
    /// .db plus -wal.
    pub db_bytes: u64,
    /// Of which the -wal file.
    pub db_wal_bytes: u64,
    pub db_bytes_per_1000_requests: f64,
    pub quarantined: i64,
    pub db: DbFigures,
    /// Summed over the daemons' stage reports.
    pub stages: Vec<Stage>,
    /// Other counters from the daemons' stage reports, summed.
    pub stage_report_extras: BTreeMap<String, f64>,
    pub per_daemon: Vec<DaemonFigures>,
    /// Every question handled once?
    pub once: Option<OnceFigures>,
}

/// One daemon process of a drain.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DaemonFigures {
    pub log: String,
    /// VmHWM.
    pub peak_rss_mb: Option<f64>,
    /// Its own CPU time per question of the whole backlog.
    pub cpu_ms_per_question: Option<f64>,
    /// From its stage report: messages it committed (fetched as the lease holder), acknowledgements
    /// and mails it sent.
    pub messages_committed: Option<u64>,
    pub acks_sent: Option<u64>,
    pub mails_sent: Option<u64>,
}

/// One SIGKILL of the lease holder; times in seconds from the kill.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FailoverFigures {
    /// `database.lease`.
    pub lease_seconds: f64,
    pub daemons: usize,
    /// When the killed daemon's lease ran out (`expires_at`): no one may take it before.
    pub lease_left_at_kill_seconds: f64,
    /// When another daemon took the lease (`acquired_at`).
    pub lease_taken_seconds: f64,
    /// When Postfix accepted the new question (sent right after the kill).
    pub question_sent_seconds: f64,
    /// When the new question's acknowledgement was accepted by SMTP (`outbox.sent_at`).
    pub question_acked_seconds: f64,
    pub killed_pid: u32,
    pub new_holder_pid: Option<i64>,
    pub once: OnceFigures,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `values` (ms).
    pub fn of(mut values: Vec<f64>) -> Percentiles {
        values.retain(|v| v.is_finite());
        values.sort_by(f64::total_cmp);
        let n = values.len();
        if n == 0 {
            return Percentiles::default();
        }
        let rank = |q: f64| values[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
        Percentiles {
            count: n,
            min_ms: values[0],
            p50_ms: rank(0.50),
            p95_ms: rank(0.95),
            p99_ms: rank(0.99),
            max_ms: values[n - 1],
            mean_ms: values.iter().sum::<f64>() / n as f64,
        }
    }

    fn line(&self) -> String {
        format!(
            "p50 {:.0}  p95 {:.0}  p99 {:.0}  max {:.0} ms  (min {:.0}, n={})",
            self.p50_ms, self.p95_ms, self.p99_ms, self.max_ms, self.min_ms, self.count
        )
    }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TrickleFigures {
    pub questions: u64,
    pub rate_per_second: f64,
    /// Which daemon and database served the trickle.
    pub setup: String,
    /// Postfix's 250 for the question to Postfix's 250 for our acknowledgement (outbox.sent_at).
    pub to_smtp_acceptance: Percentiles,
    /// Postfix's 250 for the question to the acknowledgement appearing in the official's Maildir.
    pub to_mailbox_delivery: Percentiles,
    /// Arrival in the Maildir minus outbox.sent_at: negative when the daemon stamped sent_at after
    /// the acknowledgement had already been delivered (sent_at then lags the real acceptance).
    pub mailbox_minus_sent_at: Percentiles,
    /// The slowest questions to SMTP acceptance: (position in the trickle from 0, ms).
    pub slowest: Vec<(usize, f64)>,
    pub peak_rss_mb: Option<f64>,
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MemoryFigures {
    pub engine: String,
    pub daemons: usize,
    pub ordinary: u64,
    pub big: u64,
    pub big_bytes_each: u64,
    pub backlog_bytes: u64,
    /// The highest of the daemons' peaks.
    pub peak_rss_mb: Option<f64>,
    pub per_daemon_peak_rss_mb: Vec<Option<f64>>,
    pub rss_timeline_mb: Vec<(f64, f64)>,
    pub seconds: f64,
    pub questions_per_second: f64,
    pub db_bytes: u64,
    pub stages: Vec<Stage>,
    pub once: Option<OnceFigures>,
}

pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// Rows of (label, value), with section headers, printed aligned.
struct Table {
    rows: Vec<(String, String)>,
}

impl Table {
    fn section(&mut self, title: &str) {
        self.rows.push((format!("[{title}]"), String::new()));
    }
    fn row(&mut self, label: impl Into<String>, value: impl Into<String>) {
        self.rows.push((format!("  {}", label.into()), value.into()));
    }
    fn render(&self) -> String {
        let width = self.rows.iter().filter(|r| !r.1.is_empty()).map(|r| r.0.chars().count()).max().unwrap_or(0);
        let mut s = String::new();
        for (label, value) in &self.rows {
            if value.is_empty() {
                let _ = writeln!(s, "{label}");
            } else {
                let _ = writeln!(s, "{label:<width$}  {value}");
            }
        }
        s
    }
}

fn stage_rows(t: &mut Table, stages: &[Stage], stage_report: bool) {
    if stages.is_empty() {
        t.row(
            "time per stage",
            if stage_report { "(stage report empty or missing)" } else { "n/a (daemon has no --stage-report)" },
        );
    }
    for s in stages {
        let per =
            if s.count > 0 { format!(", {:.3} ms each", s.seconds * 1000.0 / s.count as f64) } else { String::new() };
        t.row(format!("stage {}", s.name), format!("{:.3} s over {} item(s){per}", s.seconds, s.count));
    }
}

/// At most ~8 evenly spaced samples: "2s 21MB, 10s 40MB, ...".
fn timeline(samples: &[(f64, f64)]) -> String {
    if samples.is_empty() {
        return "n/a".into();
    }
    let step = samples.len().div_ceil(8);
    let mut picked: Vec<&(f64, f64)> = samples.iter().step_by(step).collect();
    if let Some(last) = samples.last()
        && picked.last().is_none_or(|p| !std::ptr::eq(*p, last))
    {
        picked.push(last);
    }
    picked.iter().map(|(t, m)| format!("{t:.0}s {m:.0}MB")).collect::<Vec<_>>().join(", ")
}

fn rss(mb: Option<f64>) -> String {
    mb.map(|m| format!("{m:.1} MB")).unwrap_or_else(|| "n/a".into())
}

fn daemons_on(n: usize, engine: &str) -> String {
    format!("{n} daemon{} on {engine}", if n == 1 { "" } else { "s" })
}

fn once_line(o: &OnceFigures) -> String {
    if o.ok() { format!("yes: {}", o.line()) } else { format!("NO: {}; {}", o.problems.join("; "), o.line()) }
}

/// The rows of one drain (the main one, or `--quick`'s PostgreSQL check).
fn drain_rows(t: &mut Table, title: &str, d: &DrainFigures, stage_report: bool, with_raw: bool) {
    t.section(&format!("{title}: {}", daemons_on(d.daemons, &d.engine)));
    t.row(
        "END TO END",
        format!(
            "{:.1} questions/s ({} in {:.2} s; window: {})",
            d.questions_per_second, d.questions, d.seconds, d.window_source
        ),
    );
    if with_raw {
        t.row("RATIO TO RAW LIMIT", format!("{:.3}", d.ratio_to_raw_limit));
    }
    t.row("all outbox mail sent (incl. staff)", format!("{:.2} s after daemon start", d.all_mail_sent_seconds));
    t.row(
        "PEAK RSS",
        format!("{}{}", rss(d.peak_rss_mb), if d.daemons > 1 { " (highest of the daemons)" } else { "" }),
    );
    t.row(
        "DAEMON CPU per question until all mail out",
        d.daemon_cpu_ms_per_question.map_or("?".into(), |ms| {
            format!(
                "{ms:.2} ms (user + system, all threads{})",
                if d.daemons > 1 { ", summed over the daemons" } else { "" }
            )
        }),
    );
    if let Some(ms) = d.db_server_cpu_ms_per_question {
        t.row(
            "DB SERVER CPU per question until all mail out",
            format!("{ms:.2} ms (the private cluster's postmaster and backends)"),
        );
    }
    if d.per_daemon.len() > 1 {
        for (k, p) in d.per_daemon.iter().enumerate() {
            let count = |x: Option<u64>| x.map_or("?".into(), |v| v.to_string());
            t.row(
                format!("daemon {}", k + 1),
                format!(
                    "peak RSS {}, CPU {} per question; committed {} questions, sent {} acks, {} mails",
                    rss(p.peak_rss_mb),
                    p.cpu_ms_per_question.map_or("?".into(), |ms| format!("{ms:.2} ms")),
                    count(p.messages_committed),
                    count(p.acks_sent),
                    count(p.mails_sent)
                ),
            );
        }
    }
    if let (Some(all), Some(own)) = (d.machine_cpu_ms_per_question, d.window_daemon_cpu_ms_per_question) {
        let pg = if d.db_server_cpu_ms_per_question.is_some() {
            format!(", PostgreSQL {:.2}", d.postgres_cpu_ms_per_question)
        } else {
            String::new()
        };
        t.row(
            "machine CPU per question until last ack",
            format!(
                "{all:.2} ms busy: the daemon{} {own:.2}, Postfix {:.2}, Dovecot {:.2}{pg}, the kernel's threads and \
                 the rest {:.2}; idle {:.0} % (waiting for the disk {:.0} %), stolen {:.0} %",
                if d.daemons > 1 { "s" } else { "" },
                d.postfix_cpu_ms_per_question,
                d.dovecot_cpu_ms_per_question,
                all - own
                    - d.postfix_cpu_ms_per_question
                    - d.dovecot_cpu_ms_per_question
                    - d.postgres_cpu_ms_per_question,
                d.machine_idle_share.unwrap_or(0.0) * 100.0,
                d.machine_iowait_share.unwrap_or(0.0) * 100.0,
                d.machine_steal_share.unwrap_or(0.0) * 100.0
            ),
        );
    }
    t.row("RSS during the drain", timeline(&d.rss_timeline_mb));
    t.row(
        "DB bytes per 1,000 requests",
        format!(
            "{:.2} MB ({:.1} MB for {} requests{})",
            d.db_bytes_per_1000_requests / 1e6,
            mb(d.db_bytes),
            d.db.requests,
            if d.db_wal_bytes == 0 && d.engine != "SQLite" { "; pg_database_size, WAL not counted" } else { "" }
        ),
    );
    t.row("sent by kind", d.db.sent_by_kind.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "));
    t.row(
        "requests by status",
        d.db.requests_by_status.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "),
    );
    if d.quarantined > 0 {
        t.row("quarantined", d.quarantined.to_string());
    }
    if let Some(o) = &d.once {
        t.row("HANDLED ONCE", once_line(o));
    }
    stage_rows(t, &d.stages, stage_report);
    if !d.stage_report_extras.is_empty() {
        t.row(
            "stage report counters",
            d.stage_report_extras.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "),
        );
    }
}

impl Summary {
    pub fn table(&self) -> String {
        let mut t = Table { rows: Vec::new() };
        let f = &self.fill;
        t.section(&format!(
            "intake311 throughput: N = {}, {}, {} CPUs, {} (total {:.0} s)",
            self.n,
            daemons_on(self.daemons, self.engine.name()),
            self.cpus,
            self.started_at,
            self.total_seconds
        ));
        t.section("backlog");
        t.row(
            "questions in the intake Maildir",
            format!(
                "{} ({:.1} MB, {} with attachments), filled in {:.2} s",
                f.messages,
                mb(f.bytes),
                f.with_attachment,
                f.seconds
            ),
        );
        t.row(
            "by expected outcome",
            f.by_outcome.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "),
        );
        t.row("registry / officials", format!("{} cities, {} officials", f.cities, f.officials));
        t.row(
            "load average (1 min) at phase start",
            self.load_average_1m.iter().map(|(p, l)| format!("{p} {l:.2}")).collect::<Vec<_>>().join(", "),
        );

        t.section("raw limit (same servers, same run)");
        if let Some(x) = &self.raw.imap_fetch {
            t.row(
                "IMAP UID FETCH 1:* BODY.PEEK[]",
                format!(
                    "{:.0} msg/s ({} msgs, {:.1} MB/s, {:.2} s; SELECT {:.2} s)",
                    x.messages_per_second, x.messages, x.megabytes_per_second, x.fetch_seconds, x.select_seconds
                ),
            );
        }
        for s in &self.raw.smtp {
            t.row(
                format!("SMTP {}", s.method),
                format!(
                    "{:.0} msg/s ({} msgs in {:.2} s; queue empty {:.1} s later; servers {:.2} ms CPU per mail){}",
                    s.messages_per_second,
                    s.messages,
                    s.seconds,
                    s.queue_drain_seconds,
                    s.servers_cpu_ms_per_mail,
                    if s.counts_for_limit { "" } else { "  [before: not counted]" }
                ),
            );
        }
        t.row("raw SMTP limit (best counted)", format!("{:.0} msg/s", self.raw.smtp_limit_per_second));
        t.row("RAW LIMIT", format!("{:.0} msg/s (limited by {})", self.raw.limit_per_second, self.raw.limited_by));

        drain_rows(&mut t, "drain of the backlog", &self.drain, self.stage_report, true);

        match &self.trickle {
            Some(tr) => {
                t.section(&format!(
                    "latency on a trickle: {} questions at {}/s, IDLE on",
                    tr.questions, tr.rate_per_second
                ));
                t.row("setup", tr.setup.clone());
                t.row("question 250 -> ack 250 (SMTP)", tr.to_smtp_acceptance.line());
                t.row("question 250 -> ack in Maildir", tr.to_mailbox_delivery.line());
                t.row("ack in Maildir - its sent_at", tr.mailbox_minus_sent_at.line());
                let slowest: Vec<String> = tr.slowest.iter().map(|(i, ms)| format!("#{i} {ms:.0} ms")).collect();
                t.row("slowest (position in the trickle)", slowest.join(", "));
                t.row("peak RSS", rss(tr.peak_rss_mb));
                stage_rows(&mut t, &tr.stages, self.stage_report);
            }
            None => {
                t.section("latency on a trickle");
                t.row("skipped", "--trickle 0");
            }
        }
        match &self.memory {
            Some(m) => {
                t.section(&format!(
                    "memory: {} ordinary + {} big ({:.1} MB each), {:.0} MB backlog; {}",
                    m.ordinary,
                    m.big,
                    mb(m.big_bytes_each),
                    mb(m.backlog_bytes),
                    daemons_on(m.daemons, &m.engine)
                ));
                t.row("PEAK RSS", rss(m.peak_rss_mb));
                if m.per_daemon_peak_rss_mb.len() > 1 {
                    t.row(
                        "peak RSS per daemon",
                        m.per_daemon_peak_rss_mb.iter().map(|p| rss(*p)).collect::<Vec<_>>().join(", "),
                    );
                }
                t.row("RSS during the drain", timeline(&m.rss_timeline_mb));
                t.row(
                    "drain",
                    format!(
                        "{:.1} questions/s ({:.2} s); DB {:.1} MB",
                        m.questions_per_second,
                        m.seconds,
                        mb(m.db_bytes)
                    ),
                );
                stage_rows(&mut t, &m.stages, self.stage_report);
                if let Some(o) = &m.once {
                    t.row("HANDLED ONCE", once_line(o));
                }
            }
            None => {
                t.section("memory");
                t.row("skipped", "--skip-memory");
            }
        }
        if let Some(d) = &self.pg_check {
            drain_rows(&mut t, "PostgreSQL check", d, self.stage_report, false);
        }
        for f in &self.failover {
            t.section(&format!(
                "failover: SIGKILL of the lease holder, {} daemons, database.lease = {}",
                f.daemons,
                humantime::format_duration(std::time::Duration::from_secs_f64(f.lease_seconds))
            ));
            t.row("killed holder's lease ran out", format!("{:.2} s after the kill", f.lease_left_at_kill_seconds));
            t.row(
                "LEASE TAKEN by another daemon",
                format!(
                    "{:.2} s after the kill (pid {} → {})",
                    f.lease_taken_seconds,
                    f.killed_pid,
                    f.new_holder_pid.map_or("?".into(), |p| p.to_string())
                ),
            );
            t.row(
                "FAILOVER: new question acknowledged",
                format!(
                    "{:.2} s after the kill (ack accepted by SMTP; the question was accepted {:.2} s after the kill)",
                    f.question_acked_seconds, f.question_sent_seconds
                ),
            );
            t.row(
                "of which",
                format!(
                    "waiting for the killed holder's lease to run out {:.2} s, the stand-by noticing {:.2} s, \
                     connecting and handling the question {:.2} s",
                    f.lease_left_at_kill_seconds.max(0.0),
                    f.lease_taken_seconds - f.lease_left_at_kill_seconds.max(0.0),
                    f.question_acked_seconds - f.lease_taken_seconds
                ),
            );
            t.row("HANDLED ONCE", once_line(&f.once));
        }
        t.section("daemon logs");
        for l in &self.daemon_logs {
            t.row(l.log.clone(), format!("{} ERROR, {} WARN", l.errors, l.warnings));
        }
        t.row("run directory", self.run_dir.clone());
        if let Some(pg) = &self.postgres {
            t.row("PostgreSQL", pg.clone());
        }
        if !self.problems.is_empty() {
            t.section("PROBLEMS (questions not handled exactly once)");
            for p in &self.problems {
                t.row("problem", p.clone());
            }
        }
        t.render()
    }
}
