//! The diff between the stored registry and an import file: which cities the file adds,
//! changes (and what changed) and, with `--replace`, removes. The same diff is shown by a dry
//! run and applied by the import.
//!
//! Owns: matching file rows to cities (by id, else by name and state, else by a shared domain)
//! and domain ownership across the file. Talks to: [`crate::domain::city`] and
//! [`super::csv`] for the rows.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use crate::domain::city::{Changed, CityRecord, CityRow, Diff};

use super::csv::{CsvCity, ImportErrors, RowError};

fn show_opt<T: fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_else(|| "-".into())
}

fn changes(old: &CityRecord, new: &CityRecord) -> Vec<String> {
    let mut c = Vec::new();
    let yn = |b: bool| if b { "yes" } else { "no" };
    if old.name != new.name {
        c.push(format!("name: {} → {}", old.name, new.name));
    }
    if old.state != new.state {
        c.push(format!("state: {} → {}", old.state, new.state));
    }
    if old.eligible != new.eligible {
        c.push(format!("eligible: {} → {}", yn(old.eligible), yn(new.eligible)));
    }
    if old.domains != new.domains {
        c.push(format!("domains: {} → {}", old.domains.join(";"), new.domains.join(";")));
    }
    if old.eligible_from != new.eligible_from {
        c.push(format!("eligible_from: {} → {}", show_opt(&old.eligible_from), show_opt(&new.eligible_from)));
    }
    if old.eligible_until != new.eligible_until {
        c.push(format!("eligible_until: {} → {}", show_opt(&old.eligible_until), show_opt(&new.eligible_until)));
    }
    if old.population != new.population {
        c.push(format!("population: {} → {}", show_opt(&old.population), show_opt(&new.population)));
    }
    if old.notes != new.notes {
        c.push("notes changed".into());
    }
    c
}

/// The diff between the registry (`existing`) and a validated file. A row with an `id` updates
/// that city; a row without one updates the only city of that name and state, or adds a city.
/// With `replace`, cities the file does not mention are removed. Every domain must end up with
/// one city. Problems are reported with the file's line numbers and nothing is applied.
pub fn diff(existing: &[CityRow], rows: &[CsvCity], replace: bool) -> Result<Diff, ImportErrors> {
    let mut errors = Vec::new();
    let by_id: HashMap<i64, &CityRow> = existing.iter().map(|c| (c.id, c)).collect();
    let mut by_name: HashMap<(String, String), Vec<&CityRow>> = HashMap::new();
    for c in existing {
        by_name.entry((c.record.name.to_lowercase(), c.record.state.clone())).or_default().push(c);
    }
    let mut rows_by_name: HashMap<(String, String), usize> = HashMap::new();
    for r in rows.iter().filter(|r| r.id.is_none()) {
        *rows_by_name.entry((r.record.name.to_lowercase(), r.record.state.clone())).or_default() += 1;
    }
    let mut out = Diff::default();
    let mut mentioned: HashSet<i64> = HashSet::new();
    // Final owner of each domain: existing owners first, then the file's rows override theirs.
    let mut owner: BTreeMap<String, (String, Option<u64>)> = BTreeMap::new();
    for c in existing {
        for d in &c.record.domains {
            owner.insert(d.clone(), (format!("{} (#{})", c.record.label(), c.id), None));
        }
    }
    let mut matched: Vec<(&CsvCity, Option<&CityRow>)> = Vec::new();
    for row in rows {
        let key = (row.record.name.to_lowercase(), row.record.state.clone());
        let target = match row.id {
            Some(id) => match by_id.get(&id) {
                Some(c) => Some(*c),
                None => {
                    errors.push(RowError {
                        line: row.line,
                        field: "id".into(),
                        reason: format!("no city has id {id}"),
                    });
                    continue;
                }
            },
            None => match by_name.get(&key).map(Vec::as_slice) {
                None | Some([]) => None,
                Some([one]) if rows_by_name.get(&key) == Some(&1) => Some(*one),
                // Several cities or rows of one name: a shared domain tells them apart.
                Some(same_name) => {
                    let hits: Vec<&CityRow> = same_name
                        .iter()
                        .copied()
                        .filter(|c| c.record.domains.iter().any(|d| row.record.domains.contains(d)))
                        .collect();
                    match hits.as_slice() {
                        [one] => Some(*one),
                        [] => None,
                        _ => {
                            errors.push(RowError {
                                line: row.line,
                                field: "id".into(),
                                reason: format!(
                                    "{} is ambiguous (several cities of that name share its domains): give the id column (see cities export)",
                                    row.record.label()
                                ),
                            });
                            continue;
                        }
                    }
                }
            },
        };
        if let Some(c) = target {
            mentioned.insert(c.id);
            for d in &c.record.domains {
                owner.remove(d);
            }
        }
        matched.push((row, target));
    }
    if replace {
        // Every city is either in the file or removed, so only the file's domains remain.
        owner.clear();
        out.removed = existing.iter().filter(|c| !mentioned.contains(&c.id)).cloned().collect();
    }
    for (row, _) in &matched {
        for d in &row.record.domains {
            if let Some((other, other_line)) = owner.get(d) {
                let where_ = other_line.map(|l| format!(" (line {l})")).unwrap_or_default();
                errors.push(RowError {
                    line: row.line,
                    field: "domains".into(),
                    reason: format!("`{d}` already belongs to {other}{where_}"),
                });
            } else {
                owner.insert(d.clone(), (row.record.label(), Some(row.line)));
            }
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line);
        return Err(ImportErrors(errors));
    }
    for (row, target) in matched {
        match target {
            None => out.added.push(row.record.clone()),
            Some(c) => {
                let ch = changes(&c.record, &row.record);
                if ch.is_empty() {
                    out.unchanged += 1;
                } else {
                    out.changed.push(Changed { id: c.id, record: row.record.clone(), changes: ch });
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::csv::{export_csv, parse_csv};
    use crate::registry::test_city as row;

    #[test]
    fn diff_is_exact_and_export_round_trips() {
        let existing = vec![
            row(1, "Dayton", "OH", &["daytonohio.gov"], true),
            row(2, "Lincoln", "WI", &["lincolnwi.gov"], true),
            row(3, "Lincoln", "WI", &["townoflincoln.org"], false),
            row(4, "Flint", "MI", &["cityofflint.com"], true),
        ];
        let exported = export_csv(&existing).expect("export");
        let rows = parse_csv(&exported).expect("re-import");
        let d = diff(&existing, &rows, true).expect("diff");
        assert_eq!((d.added.len(), d.changed.len(), d.removed.len(), d.unchanged), (0, 0, 0, 4), "{d}");

        let file = "id,name,state,domains,eligible\n,Dayton,OH,daytonohio.gov;dayton.gov,yes\n3,Lincoln,WI,townoflincoln.org,yes\n,Toledo,OH,toledo.oh.gov,no\n";
        let d = diff(&existing, &parse_csv(file.as_bytes()).expect("valid"), false).expect("diff");
        assert_eq!(d.added.iter().map(CityRecord::label).collect::<Vec<_>>(), vec!["Toledo, OH"]);
        assert_eq!(d.changed.len(), 2, "{d}");
        assert_eq!(d.changed[0].changes, vec!["domains: daytonohio.gov → dayton.gov;daytonohio.gov"]);
        assert_eq!(d.changed[1].changes, vec!["eligible: no → yes"]);
        assert!(d.removed.is_empty());
        let d = diff(&existing, &parse_csv(file.as_bytes()).expect("valid"), true).expect("diff");
        assert_eq!(d.removed.iter().map(|r| r.id).collect::<Vec<_>>(), vec![2, 4]);

        // Two cities named Lincoln, WI: the shared domain picks the right one; none shared is a new city.
        let by_domain =
            "name,state,domains,eligible\nLincoln,WI,townoflincoln.org,yes\nLincoln,WI,lincoln-three.gov,yes\n";
        let d = diff(&existing, &parse_csv(by_domain.as_bytes()).expect("valid"), false).expect("diff");
        assert_eq!(d.changed.iter().map(|c| c.id).collect::<Vec<_>>(), vec![3]);
        assert_eq!(d.added.len(), 1);
        let ambiguous = "name,state,domains,eligible\nLincoln,WI,lincolnwi.gov;townoflincoln.org,yes\n";
        let e = diff(&existing, &parse_csv(ambiguous.as_bytes()).expect("valid"), false).expect_err("ambiguous").0;
        assert!(e[0].reason.contains("ambiguous") && e[0].line == 2, "{e:?}");
        let clash = "name,state,domains,eligible\nKettering,OH,daytonohio.gov,yes\n";
        let e = diff(&existing, &parse_csv(clash.as_bytes()).expect("valid"), false).expect_err("clash").0;
        assert!(e[0].reason.contains("already belongs to Dayton, OH (#1)"), "{e:?}");
        // With --replace and Dayton absent from the file, its domain is free for Kettering.
        assert!(diff(&existing, &parse_csv(clash.as_bytes()).expect("valid"), true).is_ok());
        let unknown = "id,name,state,domains,eligible\n99,X,OH,x.gov,yes\n";
        assert!(diff(&existing, &parse_csv(unknown.as_bytes()).expect("valid"), false).is_err());
    }
}
