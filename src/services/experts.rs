//! The expert roster as administrators keep it, shared by the command line and (later) the web
//! console: adding one expert, and importing a CSV file all or nothing, like the city list.
//! Talks to: [`crate::registry::experts`] (rules, pure), [`crate::store`] (roster, audit).

use super::Actor;
use crate::registry::ImportErrors;
use crate::registry::experts::{ExpertPlan, ExpertRecord, parse_experts, plan_experts};
use crate::store::Store;
use crate::topics::Topics;

/// A failed import: the file has problems (each named), or the store failed.
#[derive(Debug, thiserror::Error)]
pub enum ExpertImportError {
    #[error("{0}")]
    Invalid(#[from] ImportErrors),
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

/// Checks the whole file, plans it against the active roster and, unless `dry_run`, applies
/// it in one transaction with one audit line (`source` and the file's SHA-256).
pub async fn import(
    store: &Store,
    bytes: &[u8],
    source: &str,
    replace: bool,
    dry_run: bool,
    topics: &Topics,
    actor: &Actor,
) -> Result<ExpertPlan, ExpertImportError> {
    let file: Vec<ExpertRecord> = parse_experts(bytes, topics)?.into_iter().map(|(_, e)| e).collect();
    let existing: Vec<ExpertRecord> = store.list_experts().await?.iter().map(|e| e.record()).collect();
    let plan = plan_experts(&existing, file, replace);
    if !dry_run {
        let detail =
            format!("{source} (sha256 {}){}", super::sha256_hex(bytes), if replace { ", --replace" } else { "" });
        store.apply_expert_plan(&plan, &actor.email, &detail).await?;
    }
    Ok(plan)
}
