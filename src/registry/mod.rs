//! The eligible-city registry: the CSV format, the diff an import would make, eligibility on a
//! date, and finding a sender's city.
//!
//! Owns: the file format (see [`CSV_REQUIRED`] and [`CSV_OPTIONAL`]), its validation (every bad
//! row reported with line, field and reason; nothing applied unless the whole file is good), the
//! pure diff between the registry and a file (the same diff is shown by a dry run and applied by
//! the import), and the city decision for a sender, in order: a known contact, a (verified) mail
//! domain, and, as a suggestion for review only, a city and state named in the signature or
//! subject. Talks to: [`crate::store`] for the stored registry.

pub mod names;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use chrono::NaiveDate;
use serde::Serialize;

use crate::domain::{CityId, CityRef, Eligibility, EligibilityDecision};
use crate::store::{CityRow, StoreTx};

/// The two-letter codes of the US states, DC and the territories.
pub const STATES: [&str; 56] = [
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY", "LA", "ME",
    "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA",
    "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "DC", "PR", "GU", "VI", "AS", "MP",
];

/// Columns every import file has (in any order).
pub const CSV_REQUIRED: [&str; 4] = ["name", "state", "domains", "eligible"];
/// Columns an import file may have. `id` ties a row to an existing city (export writes it).
pub const CSV_OPTIONAL: [&str; 5] = ["id", "population", "eligible_from", "eligible_until", "notes"];
/// The column order of `cities export`.
pub const CSV_EXPORT: [&str; 9] =
    ["id", "name", "state", "domains", "eligible", "eligible_from", "eligible_until", "population", "notes"];

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

/// One data row of an import file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvCity {
    pub line: u64,
    pub id: Option<i64>,
    pub record: CityRecord,
}

/// One problem in an import file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
    pub field: String,
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.field, self.reason)
    }
}

/// Every problem found in an import file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ImportErrors(pub Vec<RowError>);

impl fmt::Display for ImportErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} problem(s) in the file; nothing was changed:", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

/// Checks a domain's syntax: labels of letters, digits and hyphens, at least two labels.
pub fn valid_domain(d: &str) -> bool {
    let labels: Vec<&str> = d.split('.').collect();
    d.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels.last().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_alphabetic()))
}

pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "1" => Some(true),
        "no" | "n" | "false" | "0" => Some(false),
        _ => None,
    }
}

/// Normalises and checks a `;`-separated domain list.
pub fn parse_domains(v: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for d in v.split(';').map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase()) {
        if d.is_empty() {
            continue;
        }
        if !valid_domain(&d) {
            return Err(format!("`{d}` is not a valid mail domain"));
        }
        out.push(d);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

pub fn parse_state(v: &str) -> Result<String, String> {
    let s = v.trim().to_ascii_uppercase();
    if STATES.contains(&s.as_str()) { Ok(s) } else { Err(format!("`{}` is not a two-letter US state code", v.trim())) }
}

pub fn parse_date(v: &str) -> Result<Option<NaiveDate>, String> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(v, "%Y-%m-%d").map(Some).map_err(|_| format!("`{v}` is not a date (YYYY-MM-DD)"))
}

pub fn parse_population(v: &str) -> Result<Option<i64>, String> {
    let v = v.trim().replace([',', '_'], "");
    if v.is_empty() {
        return Ok(None);
    }
    match v.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(Some(n)),
        _ => Err(format!("`{v}` is not a whole number of people")),
    }
}

/// Reads and validates a whole import file. Returns every row, or every problem.
pub fn parse_csv(bytes: &[u8]) -> Result<Vec<CsvCity>, ImportErrors> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut errors = Vec::new();
    let err = |line: u64, field: &str, reason: String| RowError { line, field: field.to_string(), reason };
    if std::str::from_utf8(bytes).is_err() {
        return Err(ImportErrors(vec![err(1, "file", "not UTF-8 text (save the sheet as CSV UTF-8)".into())]));
    }
    let mut reader = csv::ReaderBuilder::new().flexible(false).trim(csv::Trim::All).from_reader(bytes);
    let headers = match reader.headers() {
        Ok(h) => h.iter().map(|h| h.to_ascii_lowercase()).collect::<Vec<_>>(),
        Err(e) => return Err(ImportErrors(vec![err(1, "header", format!("unreadable: {e}"))])),
    };
    if headers.iter().all(String::is_empty) {
        return Err(ImportErrors(vec![err(
            1,
            "header",
            format!("the file is empty; expected the header {}", CSV_REQUIRED.join(",")),
        )]));
    }
    let mut col = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        if !CSV_REQUIRED.contains(&h.as_str()) && !CSV_OPTIONAL.contains(&h.as_str()) {
            errors.push(err(
                1,
                "header",
                format!(
                    "unknown column `{h}` (columns: {}; optional: {})",
                    CSV_REQUIRED.join(","),
                    CSV_OPTIONAL.join(",")
                ),
            ));
        } else if col.insert(h.clone(), i).is_some() {
            errors.push(err(1, "header", format!("column `{h}` appears twice")));
        }
    }
    for c in CSV_REQUIRED {
        if !col.contains_key(c) {
            errors.push(err(1, "header", format!("missing column `{c}`")));
        }
    }
    if !errors.is_empty() {
        return Err(ImportErrors(errors));
    }

    // The csv crate's own line counter is off by one with CRLF endings, and a record's byte
    // offset may point at the `\n` of the previous terminator: skip terminator bytes, then count.
    let line_at = |byte: u64| {
        let mut at = usize::try_from(byte).unwrap_or(usize::MAX).min(bytes.len());
        while at < bytes.len() && matches!(bytes[at], b'\r' | b'\n') {
            at += 1;
        }
        bytes[..at].iter().filter(|b| **b == b'\n').count() as u64 + 1
    };
    let mut rows = Vec::new();
    let mut seen_domain: HashMap<String, u64> = HashMap::new();
    let mut seen_id: HashMap<i64, u64> = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| line_at(p.byte())).unwrap_or(0);
                let reason = match e.kind() {
                    csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                        format!(
                            "has {len} field(s), the header has {expected_len} (a missing or extra comma, or an unquoted comma in a value?)"
                        )
                    }
                    _ => e.to_string(),
                };
                errors.push(err(line, "row", reason));
                continue;
            }
        };
        let line = record.position().map(|p| line_at(p.byte())).unwrap_or(0);
        if record.iter().all(str::is_empty) {
            continue;
        }
        let get = |c: &str| col.get(c).and_then(|i| record.get(*i)).unwrap_or_default();
        let mut check = |field: &str, r: Result<(), String>| {
            if let Err(reason) = r {
                errors.push(err(line, field, reason));
            }
        };
        let name = get("name").to_string();
        check("name", if name.is_empty() { Err("empty".into()) } else { Ok(()) });
        check(
            "name",
            if name.chars().any(char::is_control) { Err("contains a control character".into()) } else { Ok(()) },
        );
        let state = parse_state(get("state"));
        let eligible =
            parse_bool(get("eligible")).ok_or_else(|| format!("`{}` is not yes/no/true/false/1/0", get("eligible")));
        let domains = parse_domains(get("domains"));
        let from = parse_date(get("eligible_from"));
        let until = parse_date(get("eligible_until"));
        let population = parse_population(get("population"));
        let id = match get("id").trim() {
            "" => Ok(None),
            v => v.parse::<i64>().map(Some).map_err(|_| format!("`{v}` is not a city id")),
        };
        check("state", state.as_ref().map(|_| ()).map_err(Clone::clone));
        check("eligible", eligible.as_ref().map(|_| ()).map_err(Clone::clone));
        check("domains", domains.as_ref().map(|_| ()).map_err(Clone::clone));
        check("eligible_from", from.as_ref().map(|_| ()).map_err(Clone::clone));
        check("eligible_until", until.as_ref().map(|_| ()).map_err(Clone::clone));
        check("population", population.as_ref().map(|_| ()).map_err(Clone::clone));
        check("id", id.as_ref().map(|_| ()).map_err(Clone::clone));
        if let (Ok(Some(f)), Ok(Some(u))) = (&from, &until)
            && f > u
        {
            errors.push(err(line, "eligible_until", format!("{u} is before eligible_from {f}")));
        }
        if let Ok(ds) = &domains {
            for d in ds {
                if let Some(first) = seen_domain.insert(d.clone(), line) {
                    errors.push(err(line, "domains", format!("`{d}` is already listed on line {first}")));
                }
            }
        }
        if let Ok(Some(i)) = id
            && let Some(first) = seen_id.insert(i, line)
        {
            errors.push(err(line, "id", format!("city {i} is already listed on line {first}")));
        }
        if let (Ok(state), Ok(eligible), Ok(domains), Ok(from), Ok(until), Ok(population), Ok(id)) =
            (state, eligible, domains, from, until, population, id)
        {
            let record = CityRecord {
                name,
                state,
                population,
                eligible,
                eligible_from: from,
                eligible_until: until,
                notes: get("notes").to_string(),
                domains,
            };
            rows.push(CsvCity { line, id, record });
        }
    }
    if errors.is_empty() { Ok(rows) } else { Err(ImportErrors(errors)) }
}

/// Writes the registry as CSV (the format `cities import` reads back unchanged).
pub fn export_csv(cities: &[CityRow]) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_EXPORT)?;
    for c in cities {
        w.write_record([
            c.id.to_string(),
            c.record.name.clone(),
            c.record.state.clone(),
            c.record.domains.join(";"),
            if c.record.eligible { "yes".into() } else { "no".into() },
            c.record.eligible_from.map(|d| d.to_string()).unwrap_or_default(),
            c.record.eligible_until.map(|d| d.to_string()).unwrap_or_default(),
            c.record.population.map(|p| p.to_string()).unwrap_or_default(),
            c.record.notes.clone(),
        ])?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("writing CSV: {e}"))
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

/// Whether `city` is eligible on `date`, and the phrase for the reason
/// (`eligible until 2027-06-30`, `eligibility ended 2026-06-30`, `not eligible`).
pub fn eligible_on(city: &CityRecord, date: NaiveDate) -> (bool, String) {
    if !city.eligible {
        return (false, "not eligible".into());
    }
    if let Some(from) = city.eligible_from
        && date < from
    {
        return (false, format!("not eligible before {from}"));
    }
    if let Some(until) = city.eligible_until {
        if date > until {
            return (false, format!("eligibility ended {until}"));
        }
        return (true, format!("eligible until {until}"));
    }
    (true, "eligible".into())
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
    (0..labels.len().saturating_sub(1)).map(|i| labels[i..].join(".")).collect()
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

/// A decision from a found city on `date`; `via` says how it was found.
pub fn decide(city: &CityRow, via: &str, date: NaiveDate) -> EligibilityDecision {
    let (ok, phrase) = eligible_on(&city.record, date);
    EligibilityDecision {
        outcome: if ok { Eligibility::Eligible } else { Eligibility::NotEligible },
        city: Some(CityRef { id: CityId(city.id), name: city.record.name.clone(), state: city.record.state.clone() }),
        reason: format!("{via} → {} ({phrase})", city.record.label()),
    }
}

/// Looks the sender up: a known contact first, then the mail domain.
pub async fn find_city(tx: &mut StoreTx, email: &str, domain: &str, match_subdomains: bool) -> anyhow::Result<Found> {
    if let Some(city) = tx.city_of_contact(email).await? {
        return Ok(Found::Contact(city));
    }
    let candidates = domain_candidates(domain, match_subdomains);
    Ok(match tx.city_for_domains(&candidates).await? {
        Some((matched, city)) => Found::Domain(city, matched),
        None => Found::Nothing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, name: &str, state: &str, domains: &[&str], eligible: bool) -> CityRow {
        CityRow {
            id,
            record: CityRecord {
                name: name.into(),
                state: state.into(),
                population: None,
                eligible,
                eligible_from: None,
                eligible_until: None,
                notes: String::new(),
                domains: domains.iter().map(|d| d.to_string()).collect(),
            },
        }
    }

    #[test]
    fn good_file_parses_with_bom_crlf_and_quotes() {
        let csv = "\u{feff}name,state,domains,eligible,eligible_until,population,notes\r\nDayton,OH,\"daytonohio.gov; dayton.gov\",yes,2027-06-30,\"137,644\",\"Pilot city, 2026\"\r\n\"Springfield, City of\",il,springfield.il.us,no,,,\r\n\r\n";
        let rows = parse_csv(csv.as_bytes()).expect("valid");
        assert_eq!(rows.len(), 2);
        let d = &rows[0].record;
        assert_eq!(d.domains, vec!["dayton.gov", "daytonohio.gov"]);
        assert_eq!(d.eligible_until, NaiveDate::from_ymd_opt(2027, 6, 30));
        assert_eq!(d.population, Some(137_644));
        assert_eq!(d.notes, "Pilot city, 2026");
        assert_eq!(rows[1].record.name, "Springfield, City of");
        assert_eq!(rows[1].record.state, "IL");
        assert_eq!((rows[0].line, rows[1].line), (2, 3));
    }

    #[test]
    fn every_bad_row_is_reported_with_line_and_field() {
        let csv = "name,state,domains,eligible,eligible_from,eligible_until\nDayton,OH,dayton.gov,yes,,\n,OH,x.gov,yes,,\nFlint,XX,flint.gov,maybe,,\nToledo,OH,dayton.gov,yes,,\nAkron,OH,not a domain,yes,2026-13-01,\nKent,OH,kent.gov,yes,2027-01-01,2026-01-01\n";
        let errs = parse_csv(csv.as_bytes()).expect_err("invalid").0;
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        for expected in [
            "line 3: name: empty",
            "line 4: state: `XX` is not a two-letter US state code",
            "line 4: eligible: `maybe` is not yes/no/true/false/1/0",
            "line 5: domains: `dayton.gov` is already listed on line 2",
            "line 6: domains: `not a domain` is not a valid mail domain",
            "line 6: eligible_from: `2026-13-01` is not a date (YYYY-MM-DD)",
            "line 7: eligible_until: 2026-01-01 is before eligible_from 2027-01-01",
        ] {
            assert!(text.contains(&expected.to_string()), "missing {expected:?} in {text:#?}");
        }
    }

    #[test]
    fn header_and_structure_problems_are_reported() {
        let errs = parse_csv(b"name,state,domain,eligible,extra\n").expect_err("bad header").0;
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(text.iter().any(|t| t.contains("unknown column `domain`")), "{text:?}");
        assert!(text.iter().any(|t| t.contains("missing column `domains`")), "{text:?}");
        assert!(parse_csv(b"").is_err());
        let short = parse_csv(b"name,state,domains,eligible\nDayton,OH\n").expect_err("short row").0;
        assert_eq!((short[0].line, short[0].field.as_str()), (2, "row"), "{short:?}");
        assert!(short[0].reason.contains("has 2 field(s)"), "{short:?}");
        let truncated = parse_csv(b"name,state,domains,eligible\nDayton,OH,\"dayton.gov").expect_err("truncated").0;
        assert_eq!(truncated[0].line, 2, "{truncated:?}");
        assert!(parse_csv(b"name,state,domains,eligible\n\xff\xfe,OH,x.gov,yes\n").is_err(), "not UTF-8");
    }

    #[test]
    fn line_numbers_hold_with_crlf_and_multiline_fields() {
        let csv = "name,state,domains,eligible\r\n\"Two\r\nLines\",OH,two.gov,yes\r\nBad,ZZ,bad.gov,yes\r\n";
        let errs = parse_csv(csv.as_bytes()).expect_err("bad state").0;
        let lines: Vec<(u64, &str)> = errs.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(lines, vec![(2, "name"), (4, "state")], "{errs:?}");
    }

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

    #[test]
    fn eligibility_depends_on_the_date() {
        let mut c = row(1, "Dayton", "OH", &[], true).record;
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).expect("date");
        assert_eq!(eligible_on(&c, d(2026, 11, 26)), (true, "eligible".into()));
        c.eligible_until = Some(d(2027, 6, 30));
        assert_eq!(eligible_on(&c, d(2026, 11, 26)), (true, "eligible until 2027-06-30".into()));
        assert_eq!(eligible_on(&c, d(2027, 7, 1)), (false, "eligibility ended 2027-06-30".into()));
        c.eligible_from = Some(d(2027, 1, 1));
        assert_eq!(eligible_on(&c, d(2026, 11, 26)), (false, "not eligible before 2027-01-01".into()));
        c.eligible = false;
        assert!(!eligible_on(&c, d(2027, 3, 1)).0);
    }

    #[test]
    fn candidates_walk_up_to_two_labels() {
        assert_eq!(domain_candidates("a.b.Dayton.gov", true), vec!["a.b.dayton.gov", "b.dayton.gov", "dayton.gov"]);
        assert_eq!(domain_candidates("dayton.gov", false), vec!["dayton.gov"]);
        assert_eq!(domain_candidates("gov", true), Vec::<String>::new());
        assert!(valid_domain("springfield.il.us"));
        assert!(!valid_domain("localhost"));
        assert!(!valid_domain("-x.gov"));
    }
}
