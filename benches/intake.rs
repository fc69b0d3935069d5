//! The intake alone, without mail servers: how much CPU and time one question costs from raw
//! bytes to a committed request with its acknowledgement and staff notice queued. The same
//! question mix as `cargo bench --bench throughput` (300 cities; eligible, not eligible and
//! unknown senders a third each; 1–20 KB bodies, a tenth with attachments), handled in groups
//! of `imap.fetch_batch` (200) exactly as the poller does: parse, decide and write each message
//! in one transaction, commit once per group. Good for profiling:
//!
//! ```sh
//! cargo bench --bench intake                      # 3,000 questions
//! cargo bench --bench intake -- --n 10000
//! cargo bench --bench intake -- --n 200 --big 2      # with two ~20 MB questions: peak RSS
//! perf record --call-graph dwarf target/release/deps/intake-* --bench   # where the time goes
//! ```
//!
//! It prints messages per second, milliseconds per message, the process's CPU time per message
//! and the daemon's stage report. Without `--bench` (as under `cargo test --all-targets`) it only
//! says how to run it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

#[path = "throughput/corpus.rs"]
#[allow(dead_code)]
mod corpus;
// corpus.rs's Maildir writer uses the harness's user lookup.
#[path = "../tests/support/mailservers/mod.rs"]
mod mailservers;

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use rand::SeedableRng;
use rand::rngs::StdRng;

use corpus::{Attachment, Outcome, World};
use intake311::config::Config;
use intake311::intake::{Intake, Parsed, Position};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench" || a == "--n") {
        println!("intake micro-benchmark: run it with `cargo bench --bench intake [-- --n N]`");
        return Ok(());
    }
    // `--name N`: the number after the flag, or `default` without the flag.
    let number = |name: &str, default: usize| -> Result<usize> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse())
            .transpose()
            .with_context(|| format!("{name} takes a number"))
            .map(|v| v.unwrap_or(default))
    };
    let (n, big) = (number("--n", 3000)?, number("--big", 0)?);
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(n, big))
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, from /proc (Linux); 0 elsewhere.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// Peak resident set size of this process so far (VmHWM), in MB; 0 where /proc has none.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// Binary bytes of a big question's attachment (~20.5 MB once base64-encoded), as in
/// `cargo bench --bench throughput`.
const BIG_ATTACHMENT_BYTES: usize = 15_000_000;

async fn run(n: usize, big: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let root = env!("CARGO_MANIFEST_DIR");
    let config = dir.path().join("intake.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"sqlite://{db}\"\n[imap]\nhost = \"127.0.0.1\"\nport = 1\ntls = \"none\"\nuser = \"intake@311.test\"\n\
             password = \"x\"\n[smtp]\nhost = \"127.0.0.1\"\nport = 1\ntls = \"none\"\nfrom = \"311 for Cities <intake@311.test>\"\n\
             [intake]\naddress = \"intake@311.test\"\nstaff_address = \"staff@311.test\"\ntemplates_dir = \"{root}/templates\"\n\
             [outbox]\nauto_limit = 100000000\n",
            db = dir.path().join("intake.db").display()
        ),
    )?;
    let cfg = Config::load(Some(&config)).map_err(|e| anyhow!("{e}"))?;
    let (store, templates) = intake311::daemon::prepare(&cfg).await?;
    let mut rng = StdRng::seed_from_u64(311);
    let world = World::generate(&mut rng, 300)?;
    let rows = intake311::registry::parse_csv(world.cities_csv.as_bytes()).map_err(|e| anyhow!("{e}"))?;
    let diff = intake311::registry::diff(&store.list_cities().await?, &rows, false).map_err(|e| anyhow!("{e}"))?;
    store.apply_city_diff(&diff, "bench", "bench").await?;

    let mut mail = Vec::with_capacity(n);
    for i in 0..n {
        let outcome = Outcome::ALL[i % 3];
        let from = world.pick(&mut rng, outcome).clone();
        let body = rand::Rng::random_range(&mut rng, 1_000..20_000);
        let size = rand::Rng::random_range(&mut rng, 3_000..200_000);
        let attachment = (i % 10 == 0).then(|| Attachment::random(&mut rng, size, i as u64));
        mail.push(corpus::question(&mut rng, &from, "intake", i as u64, body, attachment.as_ref()).raw);
    }
    // Big questions spread evenly among the ordinary ones. They are generated one at a time
    // while the intake runs, so the backlog itself does not count towards peak RSS.
    let big_every = n.checked_div(big).map_or(usize::MAX, |e| e.max(1));
    let mut big_made = 0;
    let rss_before = peak_rss_mb();

    let batch = usize::try_from(cfg.imap.fetch_batch).unwrap_or(200);
    let intake = Intake::new(store.clone(), Arc::new(cfg), templates, Arc::new(tokio::sync::Notify::new()))?;
    let cpu0 = cpu_seconds();
    let started = Instant::now();
    let mut uid = 0u32;
    for group in mail.chunks(batch) {
        let mut tx = store.begin().await?;
        let mut in_tx = 0;
        for raw in group {
            uid += 1;
            in_tx += 1;
            let pos = Position { mailbox: "INBOX", uidvalidity: 1, uid };
            intake.handle(&mut tx, pos, raw, Parsed::new(raw, None)).await?;
            if big_made < big && (uid as usize) % big_every == big_every / 2 {
                // Alone in its own group, as the poller handles any message over 1 MiB.
                intake.commit(tx, in_tx).await?;
                in_tx = 0;
                let from = world.pick(&mut rng, Outcome::ALL[big_made % 3]).clone();
                let a = Attachment::random(&mut rng, BIG_ATTACHMENT_BYTES, 1_000_000 + big_made as u64);
                let q = corpus::question(&mut rng, &from, "intake-big", big_made as u64, 2_000, Some(&a)).raw;
                drop(a);
                uid += 1;
                let mut alone = store.begin().await?;
                let pos = Position { mailbox: "INBOX", uidvalidity: 1, uid };
                intake.handle(&mut alone, pos, &q, Parsed::new(&q, None)).await?;
                intake.commit(alone, 1).await?;
                big_made += 1;
                tx = store.begin().await?;
            }
        }
        intake.commit(tx, in_tx).await?;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    println!("intake alone: {n} questions and {big_made} big ones in {wall:.2} s");
    println!(
        "  {:.0} questions/s, {:.3} ms each, {:.3} ms CPU each",
        n as f64 / wall,
        wall * 1e3 / n as f64,
        cpu * 1e3 / n as f64
    );
    println!("  peak RSS {:.1} MB (before the intake: {rss_before:.1} MB)", peak_rss_mb());
    println!(
        "  requests: {}, database {:.1} MB",
        store.count_requests().await?,
        store.size_bytes().await? as f64 / 1e6
    );
    println!("{}", serde_json::to_string_pretty(&intake311::metrics::report())?);
    Ok(())
}
