//! Phase 5, memory: a fresh database and daemon, a backlog with ~20 MB messages in it, and the
//! daemon's peak RSS.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rand::rngs::StdRng;

use crate::corpus::World;
use crate::daemon::{self};
use crate::drain::drain;
use crate::fill::fill;
use crate::mailservers::MailServers;
use crate::report::{MemoryFigures, mb};
use crate::{Options, progress, queue_limit};

pub async fn memory(
    opts: &Options,
    servers: &MailServers,
    world: &World,
    csv: &Path,
    run_dir: &Path,
    stage_report: Option<PathBuf>,
    rng: &mut StdRng,
) -> Result<MemoryFigures> {
    let db = run_dir.join("memory.db");
    let config = run_dir.join("memory.toml");
    fs::write(&config, daemon::config_text(servers, &db)).context("writing the memory-phase config")?;
    daemon::cli(&config, &["migrate"])?;
    daemon::cli(&config, &["cities", "import", &csv.to_string_lossy()])?;
    let f = fill(servers, world, rng, opts.n, opts.big, "memory")?;
    let big_bytes = f.big_bytes / f.big_messages.max(1);
    progress(format!("memory: {} messages, {:.0} MB in the inbox; draining", f.messages, mb(f.bytes)));
    let (d, report) =
        drain(servers, &config, &db, &run_dir.join("daemon-memory.log"), stage_report, f.messages, opts.drain_timeout)
            .await?;
    servers.wait_queue_empty(queue_limit(opts.n)).await?;
    Ok(MemoryFigures {
        ordinary: opts.n,
        big: opts.big,
        big_bytes_each: big_bytes,
        backlog_bytes: f.bytes,
        peak_rss_mb: d.peak_rss_mb,
        rss_timeline_mb: d.rss_timeline_mb,
        seconds: d.seconds,
        questions_per_second: d.questions_per_second,
        db_bytes: d.db_bytes,
        stages: report.map(|r| r.stages).unwrap_or_default(),
    })
}
