//! The eligible-city registry: finding a sender's city and validating import files.
//!
//! Owns: the CSV format (`name,state,domains,eligible`, domains separated by `;`), its
//! validation (every bad row reported with line, field and reason; nothing applied unless the
//! whole file is good), and the eligibility decision for a sender's mail domain: an exact domain,
//! or (when `intake.match_subdomains` is on) a sub-domain of a registered one.
//! Talks to: [`crate::store`] for the stored registry.

use std::collections::HashMap;
use std::fmt;

use crate::domain::{CityId, CityRef, Eligibility, EligibilityDecision};
use crate::store::{NewCity, Store};

/// The two-letter codes of the US states, DC and the territories.
const STATES: [&str; 56] = [
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY", "LA", "ME",
    "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA",
    "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "DC", "PR", "GU", "VI", "AS", "MP",
];

/// The header an import file must have (column order is free; unknown columns are an error).
pub const CSV_COLUMNS: [&str; 4] = ["name", "state", "domains", "eligible"];

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

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "1" => Some(true),
        "no" | "n" | "false" | "0" => Some(false),
        _ => None,
    }
}

/// Reads and validates a whole import file. Returns every city, or every problem.
pub fn parse_csv(bytes: &[u8]) -> Result<Vec<NewCity>, ImportErrors> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut errors = Vec::new();
    let err = |line: u64, field: &str, reason: String| RowError { line, field: field.to_string(), reason };
    let mut reader = csv::ReaderBuilder::new().flexible(false).trim(csv::Trim::All).from_reader(bytes);

    let headers = match reader.headers() {
        Ok(h) => h.iter().map(|h| h.to_ascii_lowercase()).collect::<Vec<_>>(),
        Err(e) => return Err(ImportErrors(vec![err(1, "header", format!("unreadable: {e}"))])),
    };
    if headers.iter().all(String::is_empty) {
        return Err(ImportErrors(vec![err(
            1,
            "header",
            "the file is empty; expected the header name,state,domains,eligible".into(),
        )]));
    }
    let mut col = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        if !CSV_COLUMNS.contains(&h.as_str()) {
            errors.push(err(1, "header", format!("unknown column `{h}` (columns are: {})", CSV_COLUMNS.join(","))));
        } else if col.insert(h.clone(), i).is_some() {
            errors.push(err(1, "header", format!("column `{h}` appears twice")));
        }
    }
    for c in CSV_COLUMNS {
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
    let mut cities = Vec::new();
    let mut seen_city: HashMap<(String, String), u64> = HashMap::new();
    let mut seen_domain: HashMap<String, u64> = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| line_at(p.byte())).unwrap_or(0);
                errors.push(err(line, "row", format!("{e}")));
                continue;
            }
        };
        let line = record.position().map(|p| line_at(p.byte())).unwrap_or(0);
        if record.iter().all(str::is_empty) {
            continue;
        }
        let get = |c: &str| col.get(c).and_then(|i| record.get(*i)).unwrap_or_default();
        let name = get("name").to_string();
        if name.is_empty() {
            errors.push(err(line, "name", "empty".into()));
        } else if name.chars().any(char::is_control) {
            errors.push(err(line, "name", "contains a control character".into()));
        }
        let state = get("state").to_ascii_uppercase();
        if !STATES.contains(&state.as_str()) {
            errors.push(err(line, "state", format!("`{}` is not a two-letter US state code", get("state"))));
        }
        let eligible = match parse_bool(get("eligible")) {
            Some(b) => b,
            None => {
                errors.push(err(line, "eligible", format!("`{}` is not yes/no/true/false/1/0", get("eligible"))));
                false
            }
        };
        let mut domains: Vec<String> = Vec::new();
        for d in get("domains").split(';').map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase()) {
            if d.is_empty() {
                continue;
            }
            if !valid_domain(&d) {
                errors.push(err(line, "domains", format!("`{d}` is not a valid mail domain")));
            } else if let Some(first) = seen_domain.get(&d) {
                errors.push(err(line, "domains", format!("`{d}` is already listed on line {first}")));
            } else {
                seen_domain.insert(d.clone(), line);
                domains.push(d);
            }
        }
        domains.sort();
        domains.dedup();
        if !name.is_empty() {
            let key = (name.to_lowercase(), state.clone());
            if let Some(first) = seen_city.insert(key, line) {
                errors.push(err(line, "name", format!("{name}, {state} is already listed on line {first}")));
            }
        }
        cities.push(NewCity { name, state, eligible, domains });
    }
    if errors.is_empty() { Ok(cities) } else { Err(ImportErrors(errors)) }
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

/// Decides eligibility from the sender's mail domain.
pub async fn decide_by_domain(
    store: &Store,
    domain: &str,
    match_subdomains: bool,
) -> anyhow::Result<EligibilityDecision> {
    let candidates = domain_candidates(domain, match_subdomains);
    let Some((matched, city)) = store.city_for_domains(&candidates).await? else {
        return Ok(EligibilityDecision {
            outcome: Eligibility::Unknown,
            city: None,
            reason: format!("no city has the mail domain {domain}"),
        });
    };
    let via = if matched == domain {
        format!("domain {matched}")
    } else {
        format!("domain {domain} (sub-domain of {matched})")
    };
    let city_ref = CityRef { id: CityId(city.id), name: city.name.clone(), state: city.state.clone() };
    let label = city_ref.display_name();
    Ok(if city.eligible {
        EligibilityDecision {
            outcome: Eligibility::Eligible,
            city: Some(city_ref),
            reason: format!("{via} → {label} (eligible)"),
        }
    } else {
        EligibilityDecision {
            outcome: Eligibility::NotEligible,
            city: Some(city_ref),
            reason: format!("{via} → {label} (not eligible)"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_hold_with_crlf_and_multiline_fields() {
        let csv = "name,state,domains,eligible\r\n\"Two\r\nLines\",OH,two.gov,yes\r\nBad,ZZ,bad.gov,yes\r\n";
        let errs = parse_csv(csv.as_bytes()).expect_err("bad state").0;
        let lines: Vec<(u64, &str)> = errs.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(lines, vec![(2, "name"), (4, "state")], "{errs:?}");
    }

    #[test]
    fn good_file_parses_with_bom_crlf_and_quotes() {
        let csv = "\u{feff}name,state,domains,eligible\r\nDayton,OH,\"daytonohio.gov; dayton.gov\",yes\r\n\"Springfield, City of\",il,springfield.il.us,no\r\n\r\n";
        let cities = parse_csv(csv.as_bytes()).expect("valid");
        assert_eq!(cities.len(), 2);
        assert_eq!(cities[0].domains, vec!["dayton.gov", "daytonohio.gov"]);
        assert!(cities[0].eligible);
        assert_eq!(cities[1].name, "Springfield, City of");
        assert_eq!(cities[1].state, "IL");
        assert!(!cities[1].eligible);
    }

    #[test]
    fn every_bad_row_is_reported_with_line_and_field() {
        let csv = "name,state,domains,eligible\nDayton,OH,dayton.gov,yes\n,OH,x.gov,yes\nFlint,XX,flint.gov,maybe\nToledo,OH,dayton.gov,yes\nAkron,OH,not a domain,yes\n";
        let errs = parse_csv(csv.as_bytes()).expect_err("invalid").0;
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(text.contains(&"line 3: name: empty".to_string()), "{text:?}");
        assert!(text.iter().any(|t| t.starts_with("line 4: state:")), "{text:?}");
        assert!(text.iter().any(|t| t.starts_with("line 4: eligible:")), "{text:?}");
        assert!(text.iter().any(|t| t.starts_with("line 5: domains:") && t.contains("line 2")), "{text:?}");
        assert!(text.iter().any(|t| t.starts_with("line 6: domains:")), "{text:?}");
    }

    #[test]
    fn header_problems_are_reported() {
        let errs = parse_csv(b"name,state,domain,eligible,extra\n").expect_err("bad header").0;
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(text.iter().any(|t| t.contains("unknown column `domain`")), "{text:?}");
        assert!(text.iter().any(|t| t.contains("missing column `domains`")), "{text:?}");
        assert!(parse_csv(b"").is_err());
        let ragged = parse_csv(b"name,state,domains,eligible\nDayton,OH\n").expect_err("short row").0;
        assert_eq!(ragged[0].line, 2, "{ragged:?}");
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
