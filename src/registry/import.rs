//! Planning a city import (pure): parse the whole file, diff it against the registry, and the
//! audit detail with the file's SHA-256. The same plan serves the command line
//! ([`crate::services::city_import`]) and administrators' mail (intake), which applies it with
//! [`crate::store::StoreTx::apply_city_diff`].
//! Talks to: [`super::csv`], [`super::diff`], [`crate::text`].

use super::{Diff, ImportErrors, diff, parse_csv};
use crate::domain::city::CityRow;
use crate::text::sha256_hex;

/// What an import file would do to the registry.
#[derive(Debug, Clone)]
pub struct Plan {
    pub diff: Diff,
    /// Lower-case hex SHA-256 of the file.
    pub sha256: String,
    /// What the audit log records with it: `SOURCE (sha256 …)`, plus `, --replace`.
    pub detail: String,
    pub replace: bool,
}

/// Why a file cannot be imported; nothing was changed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PlanError {
    /// The file itself has errors (every bad line, field and reason).
    #[error("{0}")]
    Invalid(ImportErrors),
    /// The file is valid but does not fit the registry (a domain another city owns, an unknown id).
    #[error("{0}")]
    Conflict(ImportErrors),
}

/// The audit detail of a file: `source` (e.g. `file cities.csv`, `file cities.csv by mail`),
/// its digest, and whether it replaces the registry.
pub fn detail(source: &str, sha256: &str, replace: bool) -> String {
    format!("{source} (sha256 {sha256}){}", if replace { ", --replace" } else { "" })
}

/// Parses `bytes` and diffs them against `existing` (pure). With `replace`, cities the file
/// does not list are removed.
pub fn plan(bytes: &[u8], source: &str, existing: &[CityRow], replace: bool) -> Result<Plan, PlanError> {
    let rows = parse_csv(bytes).map_err(PlanError::Invalid)?;
    let diff = diff(existing, &rows, replace).map_err(PlanError::Conflict)?;
    let sha256 = sha256_hex(bytes);
    Ok(Plan { detail: detail(source, &sha256, replace), diff, sha256, replace })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &[u8] = b"name,state,domains,eligible\nDayton,OH,daytonohio.gov,yes\nFlint,MI,cityofflint.com,no\n";

    #[test]
    fn a_plan_has_the_diff_and_the_digest() {
        let p = plan(CSV, "file c.csv", &[], true).expect("plans");
        assert_eq!(p.diff.added.len(), 2);
        assert_eq!(p.sha256, sha256_hex(CSV));
        assert_eq!(p.detail, format!("file c.csv (sha256 {}), --replace", p.sha256));
        let bad = plan(b"name,state,domains,eligible\nX,ZZ,x.gov,yes\n", "f", &[], false);
        assert!(matches!(bad, Err(PlanError::Invalid(e)) if e.to_string().contains("line 2: state")));
    }
}
