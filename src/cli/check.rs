//! `intake311 check`: prints [`intake311::check::run`]'s report (text or `--json`); exits
//! non-zero when any check failed. Never changes the schema.

use std::path::Path;
use std::process::ExitCode;

use super::output::emit;

pub async fn run(config: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let report = intake311::check::run(config).await;
    emit(json, &report)?;
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
