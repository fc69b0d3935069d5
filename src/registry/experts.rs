//! The expert roster's rules, pure: what an expert record is, the CSV file (`email`, `name`,
//! optional `org`, `topics`, `notes`), checked like the city file (every bad row named with
//! line, field and reason, and nothing applies unless the whole file is good), and the plan an
//! import makes against the stored roster.
//!
//! Owns: parsing, checking and diffing expert records. Talks to: [`crate::topics`] (topic names
//! are checked against the list), [`super::csv`] (reading the table).

use std::collections::HashMap;

use serde::Serialize;

use super::csv::{ImportErrors, RowError, read_table};
use crate::domain::normalize_email;
use crate::topics::Topics;

pub const EXPERT_REQUIRED: [&str; 2] = ["email", "name"];
pub const EXPERT_OPTIONAL: [&str; 3] = ["org", "topics", "notes"];
/// The column order of `experts export`.
pub const EXPERT_EXPORT: [&str; 5] = ["email", "name", "org", "topics", "notes"];

/// What the roster keeps about an expert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpertRecord {
    pub email: String,
    pub name: String,
    pub org: String,
    /// Topic names from the topics list.
    pub topics: Vec<String>,
    pub notes: String,
}

impl ExpertRecord {
    /// Checks and normalises a record as `experts add` gives it (topics as staff type them,
    /// separated by commas or semicolons). The error names the field.
    pub fn new(
        email: &str,
        name: &str,
        org: &str,
        topics: &str,
        notes: &str,
        list: &Topics,
    ) -> Result<ExpertRecord, (String, String)> {
        let email =
            normalize_email(email).ok_or_else(|| ("email".to_string(), format!("`{email}` is not an address")))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(("name".into(), "empty (the introduction greets the expert by it)".into()));
        }
        for (field, v) in [("name", name), ("org", org), ("notes", notes)] {
            if v.chars().any(|c| c.is_control() && c != '\n') {
                return Err((field.into(), "contains a control character".into()));
            }
        }
        let topics = list.names(&topics.replace(';', ",")).map_err(|e| ("topics".to_string(), e.to_string()))?;
        Ok(ExpertRecord { email, name: name.to_string(), org: org.trim().into(), topics, notes: notes.trim().into() })
    }
}

/// Parses an expert file, checking every row.
pub fn parse_experts(bytes: &[u8], list: &Topics) -> Result<Vec<(u64, ExpertRecord)>, ImportErrors> {
    let table = read_table(bytes, &EXPERT_REQUIRED, &EXPERT_OPTIONAL)?;
    let mut errors = table.errors.clone();
    let mut out = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for (line, record) in &table.rows {
        let get = |c: &str| table.get(record, c);
        match ExpertRecord::new(get("email"), get("name"), get("org"), get("topics"), get("notes"), list) {
            Ok(e) => {
                if let Some(first) = seen.insert(e.email.clone(), *line) {
                    errors.push(RowError {
                        line: *line,
                        field: "email".into(),
                        reason: format!("{} is already listed on line {first}", e.email),
                    });
                }
                out.push((*line, e));
            }
            Err((field, reason)) => errors.push(RowError { line: *line, field, reason }),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        errors.sort_by_key(|e| e.line);
        Err(ImportErrors(errors))
    }
}

/// What an import changes: experts added, updated (by address), and, with `replace`, removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExpertPlan {
    pub added: Vec<ExpertRecord>,
    pub updated: Vec<ExpertRecord>,
    pub removed: Vec<String>,
    pub unchanged: usize,
}

impl ExpertPlan {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.updated.is_empty() && self.removed.is_empty()
    }
}

impl std::fmt::Display for ExpertPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} added, {} updated, {} removed, {} unchanged",
            self.added.len(),
            self.updated.len(),
            self.removed.len(),
            self.unchanged
        )
    }
}

/// The plan of importing `file` over the active roster `existing` (pure).
pub fn plan_experts(existing: &[ExpertRecord], file: Vec<ExpertRecord>, replace: bool) -> ExpertPlan {
    let by_email: HashMap<&str, &ExpertRecord> = existing.iter().map(|e| (e.email.as_str(), e)).collect();
    let mut plan = ExpertPlan::default();
    if replace {
        let listed: std::collections::HashSet<&str> = file.iter().map(|e| e.email.as_str()).collect();
        plan.removed =
            existing.iter().filter(|e| !listed.contains(e.email.as_str())).map(|e| e.email.clone()).collect();
    }
    for e in file {
        match by_email.get(e.email.as_str()) {
            None => plan.added.push(e),
            Some(old) if **old == e => plan.unchanged += 1,
            Some(_) => plan.updated.push(e),
        }
    }
    plan
}

/// The roster as CSV that `experts import` reads back unchanged.
pub fn export_experts(rows: &[ExpertRecord]) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(EXPERT_EXPORT)?;
    for e in rows {
        w.write_record([e.email.as_str(), &e.name, &e.org, &e.topics.join("; "), &e.notes])?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("writing CSV: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics() -> Topics {
        Topics::parse(crate::topics::BUILT_IN, "built-in").expect("topics")
    }

    #[test]
    fn a_good_file_reads_back_from_its_export() {
        let csv = b"email,name,org,topics\nLee@Water.test,Dr. Ana Lee,Water Institute,\"infrastructure; finance\"\nkim@pd.test,Sam Kim,,public-safety\n";
        let rows = parse_experts(csv, &topics()).expect("parses");
        assert_eq!(rows[0].0, 2);
        assert_eq!(rows[0].1.email, "lee@water.test");
        assert_eq!(rows[0].1.topics, ["infrastructure", "finance"]);
        let records: Vec<ExpertRecord> = rows.into_iter().map(|(_, e)| e).collect();
        let again = parse_experts(&export_experts(&records).expect("export"), &topics()).expect("reads back");
        assert_eq!(again.into_iter().map(|(_, e)| e).collect::<Vec<_>>(), records);
    }

    #[test]
    fn every_bad_row_is_named_and_nothing_applies() {
        let csv =
            b"email,name,topics\nnot-an-address,X,\nok@x.test,,\nok2@x.test,Y,parks\nok3@x.test,Z,\nOK3@x.test,Z2,\n";
        let err = parse_experts(csv, &topics()).expect_err("refused").to_string();
        assert!(err.starts_with("4 problem(s) in the file; nothing was changed:"), "{err}");
        assert!(err.contains("line 2: email: `not-an-address` is not an address"), "{err}");
        assert!(err.contains("line 3: name: empty"), "{err}");
        assert!(err.contains("line 4: topics: `parks` is not a topic"), "{err}");
        assert!(err.contains("line 6: email: ok3@x.test is already listed on line 5"), "{err}");
        let err = parse_experts(b"email,org\n", &topics()).expect_err("header").to_string();
        assert!(err.contains("line 1: header: missing column `name`"), "{err}");
    }

    #[test]
    fn a_plan_adds_updates_and_with_replace_removes() {
        let t = topics();
        let rec = |email: &str, name: &str| ExpertRecord::new(email, name, "", "", "", &t).expect("record");
        let existing = vec![rec("a@x.test", "A"), rec("b@x.test", "B"), rec("c@x.test", "C")];
        let file = vec![rec("a@x.test", "A"), rec("b@x.test", "B. Brown"), rec("d@x.test", "D")];
        let p = plan_experts(&existing, file.clone(), false);
        assert_eq!(p.to_string(), "1 added, 1 updated, 0 removed, 1 unchanged");
        let p = plan_experts(&existing, file, true);
        assert_eq!(p.removed, ["c@x.test"]);
        assert!(plan_experts(&existing, existing.clone(), true).is_empty());
    }
}
