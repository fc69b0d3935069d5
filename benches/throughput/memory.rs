//! Phase 5, memory: a fresh database (on the engine under test) and fresh daemons (as many as
//! the drain), a backlog with ~20 MB messages in it, and each daemon's peak RSS.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rand::rngs::StdRng;

use crate::corpus::World;
use crate::daemon::{self, DbTarget};
use crate::drain::{DrainSetup, drain};
use crate::fill::fill;
use crate::mailservers::MailServers;
use crate::once::{self, Folders};
use crate::postgres::PgCluster;
use crate::report::{MemoryFigures, mb};
use crate::{Options, progress, queue_limit};

#[allow(clippy::too_many_arguments)]
pub async fn memory(
    opts: &Options,
    servers: &MailServers,
    pg: Option<&PgCluster>,
    world: &World,
    csv: &Path,
    run_dir: &Path,
    stage_report: bool,
    rng: &mut StdRng,
) -> Result<MemoryFigures> {
    let db = DbTarget::fresh(run_dir, "memory", pg)?;
    let config = run_dir.join("memory.toml");
    fs::write(&config, daemon::config_text(servers, &db, opts.leases.first().copied()))
        .context("writing the memory-phase config")?;
    daemon::cli(&config, &["migrate"])?;
    daemon::cli(&config, &["cities", "import", &csv.to_string_lossy()])?;
    let before = Folders::now(servers);
    let f = fill(servers, world, rng, opts.n, opts.big, "memory")?;
    let big_bytes = f.big_bytes / f.big_messages.max(1);
    progress(format!("memory: {} messages, {:.0} MB in the inbox; draining", f.messages, mb(f.bytes)));
    let setup = DrainSetup {
        name: "memory",
        config: &config,
        db: &db,
        daemons: opts.daemons,
        stage_report,
        postmaster: pg.and_then(PgCluster::pid),
    };
    let (d, _) = drain(servers, run_dir, &setup, f.messages, opts.drain_timeout).await?;
    servers.wait_queue_empty(queue_limit(opts.n)).await?;
    let officials: Vec<PathBuf> = world.officials().map(|o| servers.maildir(&o.email)).collect();
    let view = db.open().await?;
    let checked = once::check(&view, servers, &f.message_ids, &officials, before).await;
    view.close().await;
    Ok(MemoryFigures {
        engine: d.engine,
        daemons: d.daemons,
        ordinary: opts.n,
        big: opts.big,
        big_bytes_each: big_bytes,
        backlog_bytes: f.bytes,
        peak_rss_mb: d.peak_rss_mb,
        per_daemon_peak_rss_mb: d.per_daemon.iter().map(|p| p.peak_rss_mb).collect(),
        rss_timeline_mb: d.rss_timeline_mb,
        seconds: d.seconds,
        questions_per_second: d.questions_per_second,
        db_bytes: d.db_bytes,
        stages: d.stages,
        once: Some(checked?),
    })
}
