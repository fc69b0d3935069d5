//! The eligible-city registry, pure: the CSV format ([`csv`]), the diff an import would make
//! ([`diff`]), eligibility on a date ([`eligibility`]) and cities named in free text
//! ([`names`]).
//!
//! Owns: the registry's rules. Talks to: [`crate::domain`] for the city types; the stored
//! registry is read by [`crate::store`] (`StoreTx::find_city`, `list_cities`).

pub mod csv;
pub mod diff;
pub mod eligibility;
pub mod experts;
pub mod import;
pub mod names;

pub use self::csv::{
    CSV_EXPORT, CSV_OPTIONAL, CSV_REQUIRED, CsvCity, ImportErrors, RowError, STATES, export_csv, parse_bool, parse_csv,
    parse_date, parse_domains, parse_population, parse_state, valid_domain,
};
pub use self::diff::diff;
pub use self::eligibility::{decide, eligible_on};
/// Moved to [`crate::domain::city`]; re-exported while callers move.
pub use crate::domain::city::{Changed, CityRecord, CityRow, Diff, Found, domain_candidates};

/// A city for the registry's unit tests.
#[cfg(test)]
pub(crate) fn test_city(id: i64, name: &str, state: &str, domains: &[&str], eligible: bool) -> CityRow {
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
