//! Importing the eligible-city list from CSV, the same way by mail and on the command line.
//!
//! Owns: the plan (parse the whole file, diff it against the registry, and the audit detail
//! with the file's SHA-256) and its application in the caller's transaction. A dry run shows
//! the plan; the mail path shows it, keeps the file under a one-time token, and on `#confirm`
//! plans again against the registry as it is then and applies that.
//! Talks to: [`crate::registry`] (parse and diff, pure), [`crate::store`] (apply, audit).

use anyhow::Context as _;

use super::Actor;
pub use crate::registry::import::{Plan, PlanError, detail, plan};
use crate::store::{Store, StoreTx};

/// A failed import: a plan error, or the store failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

/// Applies a plan in `tx` and records it in the audit log under the actor. An empty diff
/// changes nothing and records nothing.
pub async fn apply(tx: &mut StoreTx, plan: &Plan, actor: &Actor) -> anyhow::Result<()> {
    if plan.diff.is_empty() {
        return Ok(());
    }
    tx.apply_city_diff(&plan.diff, &actor.email, &plan.detail).await.context("applying the city import")
}

/// Plans against the stored registry and, unless `dry_run`, applies in one transaction (the
/// registry cannot change between the diff and its application). Returns the plan.
pub async fn import(
    store: &Store,
    bytes: &[u8],
    source: &str,
    replace: bool,
    dry_run: bool,
    actor: &Actor,
) -> Result<Plan, ImportError> {
    if dry_run {
        return Ok(plan(bytes, source, &store.list_cities().await?, replace)?);
    }
    let mut tx = store.begin().await?;
    let existing = tx.list_cities().await?;
    let plan = plan(bytes, source, &existing, replace)?;
    apply(&mut tx, &plan, actor).await?;
    tx.commit().await?;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Source;

    const CSV: &[u8] = b"name,state,domains,eligible\nDayton,OH,daytonohio.gov,yes\nFlint,MI,cityofflint.com,no\n";

    fn admin() -> Actor {
        Actor { email: "alex@311.test".into(), name: "Alex".into(), source: Source::Cli }
    }

    #[tokio::test]
    async fn import_applies_once_with_the_actor_in_the_audit() -> anyhow::Result<()> {
        let (_dir, store) = Store::for_test().await?;
        let dry = import(&store, CSV, "file c.csv", false, true, &admin()).await?;
        assert_eq!(dry.diff.added.len(), 2);
        assert!(store.list_cities().await?.is_empty(), "a dry run changes nothing");
        import(&store, CSV, "file c.csv", false, false, &admin()).await?;
        assert_eq!(store.list_cities().await?.len(), 2);
        let audit = store.audit_log(10).await?;
        assert!(audit.iter().any(|(_, actor, _, detail)| actor == "alex@311.test" && detail.contains("sha256")));
        let again = import(&store, CSV, "file c.csv", false, false, &admin()).await?;
        assert!(again.diff.is_empty());
        let clash = b"name,state,domains,eligible\nKettering,OH,daytonohio.gov,yes\n";
        let err = import(&store, clash, "f", false, false, &admin()).await.expect_err("conflict");
        assert!(matches!(err, ImportError::Plan(PlanError::Conflict(_))), "{err}");
        Ok(())
    }
}
