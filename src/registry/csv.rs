//! The registry's file format: the columns (see [`CSV_REQUIRED`] and [`CSV_OPTIONAL`]), the
//! field parsers the command line shares, validation that reports every bad row with line,
//! field and reason (nothing applies unless the whole file is good), and the export that
//! reads back unchanged.
//!
//! Owns: parsing and writing CSV. Talks to: [`crate::domain::city`] for the city types.

use std::collections::HashMap;
use std::fmt;

use chrono::NaiveDate;

use crate::domain::city::{CityRecord, CityRow};

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
/// A CSV file's data rows with their 1-based line numbers (blank rows skipped), and where each
/// column is, once the header has exactly the `required` columns and only known `optional`
/// ones (any order, any case). Rows that do not parse are reported in the errors, with the
/// others still returned, so one pass names every problem.
pub(crate) struct Table {
    pub col: HashMap<String, usize>,
    pub rows: Vec<(u64, csv::StringRecord)>,
    pub errors: Vec<RowError>,
}

impl Table {
    /// Field `c` of `record` ('' when the file has no such column).
    pub fn get<'r>(&self, record: &'r csv::StringRecord, c: &str) -> &'r str {
        self.col.get(c).and_then(|i| record.get(*i)).unwrap_or_default()
    }
}

pub(crate) fn read_table(bytes: &[u8], required: &[&str], optional: &[&str]) -> Result<Table, ImportErrors> {
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
            format!("the file is empty; expected the header {}", required.join(",")),
        )]));
    }
    let mut col = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        if !required.contains(&h.as_str()) && !optional.contains(&h.as_str()) {
            errors.push(err(
                1,
                "header",
                format!("unknown column `{h}` (columns: {}; optional: {})", required.join(","), optional.join(",")),
            ));
        } else if col.insert(h.clone(), i).is_some() {
            errors.push(err(1, "header", format!("column `{h}` appears twice")));
        }
    }
    for c in required {
        if !col.contains_key(*c) {
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
        rows.push((line, record));
    }
    Ok(Table { col, rows, errors })
}

pub fn parse_csv(bytes: &[u8]) -> Result<Vec<CsvCity>, ImportErrors> {
    let err = |line: u64, field: &str, reason: String| RowError { line, field: field.to_string(), reason };
    let table = read_table(bytes, &CSV_REQUIRED, &CSV_OPTIONAL)?;
    let mut errors = table.errors.clone();
    let mut rows = Vec::new();
    let mut seen_domain: HashMap<String, u64> = HashMap::new();
    let mut seen_id: HashMap<i64, u64> = HashMap::new();
    for (line, record) in &table.rows {
        let line = *line;
        let get = |c: &str| table.get(record, c);
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn domains_are_checked() {
        assert!(valid_domain("springfield.il.us"));
        assert!(!valid_domain("localhost"));
        assert!(!valid_domain("-x.gov"));
        assert_eq!(
            parse_domains(" @Dayton.gov; ;dayton.gov;a.gov"),
            Ok(vec!["a.gov".to_string(), "dayton.gov".to_string()])
        );
    }
}
