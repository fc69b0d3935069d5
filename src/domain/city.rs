//! Cities as the registry and the store see them: a city as a file describes it
//! ([`CityRecord`]), a stored city with its id ([`CityRow`]), what an import changes ([`Diff`]),
//! how a sender's city was found ([`Found`]), and the mail domains a sender's domain may match.
//!
//! Owns: these types and the pure domain-candidate rule. Talks to: nothing; `registry` computes
//! diffs and decisions over them and `store` reads and writes them.

use std::fmt;

use chrono::NaiveDate;
use serde::Serialize;

/// A city as a file (or the command line) describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CityRecord {
    pub name: String,
    pub state: String,
    pub population: Option<i64>,
    pub eligible: bool,
    pub eligible_from: Option<NaiveDate>,
    pub eligible_until: Option<NaiveDate>,
    pub notes: String,
    /// Lower-case, sorted, unique.
    pub domains: Vec<String>,
}

impl CityRecord {
    pub fn label(&self) -> String {
        format!("{}, {}", self.name, self.state)
    }
}

/// A stored city.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CityRow {
    pub id: i64,
    #[serde(flatten)]
    pub record: CityRecord,
}

/// One changed city: its id, new record, and what changed (`eligible: no → yes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Changed {
    pub id: i64,
    pub record: CityRecord,
    pub changes: Vec<String>,
}

/// What an import does to the registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub added: Vec<CityRecord>,
    pub changed: Vec<Changed>,
    /// Cities not in the file (only removed with `--replace`).
    pub removed: Vec<CityRow>,
    pub unchanged: usize,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "added {}, changed {}, removed {}, unchanged {}",
            self.added.len(),
            self.changed.len(),
            self.removed.len(),
            self.unchanged
        )?;
        for a in &self.added {
            writeln!(
                f,
                "  + {} [{}] eligible={}",
                a.label(),
                a.domains.join(";"),
                if a.eligible { "yes" } else { "no" }
            )?;
        }
        for c in &self.changed {
            writeln!(f, "  ~ {} (#{}): {}", c.record.label(), c.id, c.changes.join("; "))?;
        }
        for r in &self.removed {
            writeln!(f, "  - {} (#{})", r.record.label(), r.id)?;
        }
        Ok(())
    }
}

/// How the sender's city was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A known contact (`email`) of the city.
    Contact(CityRow),
    /// The sender's mail domain (the registered domain that matched).
    Domain(CityRow, String),
    Nothing,
}

/// The domain and its parents down to two labels: `a.b.dayton.gov` gives
/// `[a.b.dayton.gov, b.dayton.gov, dayton.gov]`.
pub fn domain_candidates(domain: &str, match_subdomains: bool) -> Vec<String> {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty() {
        return Vec::new();
    }
    if !match_subdomains {
        return vec![domain];
    }
    let labels: Vec<&str> = domain.split('.').collect();
    (0..labels.len().saturating_sub(1)).filter_map(|i| labels.get(i..)).map(|tail| tail.join(".")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_walk_up_to_two_labels() {
        assert_eq!(domain_candidates("a.b.Dayton.gov", true), vec!["a.b.dayton.gov", "b.dayton.gov", "dayton.gov"]);
        assert_eq!(domain_candidates("dayton.gov.", true), vec!["dayton.gov"]);
        assert_eq!(domain_candidates("dayton.gov", false), vec!["dayton.gov"]);
        assert_eq!(domain_candidates("gov", true), Vec::<String>::new());
        assert_eq!(domain_candidates("  ", true), Vec::<String>::new());
    }
}
