//! `intake311 stats`: the store's counts, as text or JSON.

use std::fmt;
use std::process::ExitCode;

use serde::Serialize;

use intake311::services::fmt_ms;
use intake311::store::Stats;

use super::Context;
use super::output::emit;

/// The store's figures with their text form.
#[derive(Serialize)]
#[serde(transparent)]
struct StatsView(Stats);

impl fmt::Display for StatsView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = &self.0;
        writeln!(f, "Inbound mail by outcome:")?;
        for (kind, n) in &st.inbound {
            writeln!(f, "  {kind:<20} {n}")?;
        }
        writeln!(f, "Requests by status:")?;
        for (status, n) in &st.requests_by_status {
            writeln!(f, "  {status:<20} {n}")?;
        }
        writeln!(f, "In review           {}", st.in_review)?;
        let o = &st.outbox;
        writeln!(f, "Outbox              {} pending, {} sent, {} failed", o.pending, o.sent, o.failed)?;
        writeln!(f, "Oldest unsent       {}", o.oldest_pending_at.map(fmt_ms).unwrap_or_else(|| "-".into()))?;
        writeln!(f, "Quarantine (held)   {}", st.quarantine_held)?;
        writeln!(f, "Suppressed (bounce) {}", st.suppressed_addresses)?;
        write!(f, "Last good poll      {}", st.last_poll_at.map(fmt_ms).unwrap_or_else(|| "never".into()))
    }
}

pub async fn run(ctx: Context, json: bool) -> anyhow::Result<ExitCode> {
    emit(json, &StatsView(ctx.store.stats().await?))?;
    Ok(ExitCode::SUCCESS)
}
