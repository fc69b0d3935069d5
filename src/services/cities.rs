//! Editing one city of the registry by hand (`cities add/set/remove`, later the web console),
//! and the one view of a city (`cities show`).
//!
//! Owns: [`CityPatch`], the fields a person gives as text, checked with the registry's own
//! field parsers and the same whole-row rules as a CSV row (a name, no control characters,
//! `eligible_from` not after `eligible_until`); the defaults of a new city (eligible, no
//! dates); and [`CityView`]. Talks to: [`crate::registry`] (field parsers, eligibility on a
//! date), [`crate::store`] (write with an audit row under the actor).

use std::fmt;

use chrono::NaiveDate;
use serde::Serialize;

use super::Actor;
use crate::registry::{self, CityRecord};
use crate::store::{CityRow, ContactRow, Store};

/// One field that cannot be taken, by its CSV column name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: &'static str,
    pub reason: String,
}

fn bad(field: &'static str, reason: impl Into<String>) -> FieldError {
    FieldError { field, reason: reason.into() }
}

/// The whole-row rules of a city, as [`registry::parse_csv`] applies them to a row.
pub fn check_record(r: &CityRecord) -> Result<(), FieldError> {
    if r.name.trim().is_empty() {
        return Err(bad("name", "empty"));
    }
    if r.name.chars().any(char::is_control) {
        return Err(bad("name", "contains a control character"));
    }
    if let (Some(from), Some(until)) = (r.eligible_from, r.eligible_until)
        && from > until
    {
        return Err(bad("eligible_until", format!("{until} is before eligible_from {from}")));
    }
    Ok(())
}

/// Changes to a city, as text; `None` leaves a field as it is. Dates and the population take
/// an empty string to clear them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CityPatch {
    pub name: Option<String>,
    pub state: Option<String>,
    /// `;`-separated; replaces the list.
    pub domains: Option<String>,
    /// yes/no (as in the CSV).
    pub eligible: Option<String>,
    pub population: Option<String>,
    /// YYYY-MM-DD, or empty to clear.
    pub eligible_from: Option<String>,
    /// YYYY-MM-DD, or empty to clear.
    pub eligible_until: Option<String>,
    pub notes: Option<String>,
}

impl CityPatch {
    /// Applies the patch to `r`; `r` is unchanged when any field is refused.
    pub fn apply(&self, r: &CityRecord) -> Result<CityRecord, FieldError> {
        let mut out = r.clone();
        if let Some(n) = &self.name {
            out.name = n.trim().to_string();
        }
        if let Some(s) = &self.state {
            out.state = registry::parse_state(s).map_err(|e| bad("state", e))?;
        }
        if let Some(d) = &self.domains {
            out.domains = registry::parse_domains(d).map_err(|e| bad("domains", e))?;
        }
        if let Some(e) = &self.eligible {
            out.eligible = registry::parse_bool(e).ok_or_else(|| bad("eligible", format!("`{e}` is not yes/no")))?;
        }
        if let Some(p) = &self.population {
            out.population = registry::parse_population(p).map_err(|e| bad("population", e))?;
        }
        if let Some(d) = &self.eligible_from {
            out.eligible_from = registry::parse_date(d).map_err(|e| bad("eligible_from", e))?;
        }
        if let Some(d) = &self.eligible_until {
            out.eligible_until = registry::parse_date(d).map_err(|e| bad("eligible_until", e))?;
        }
        if let Some(n) = &self.notes {
            out.notes = n.clone();
        }
        check_record(&out)?;
        Ok(out)
    }

    /// A new city from the patch: name and state are required; it is eligible, with no dates,
    /// population, notes or domains unless given.
    pub fn new_record(&self) -> Result<CityRecord, FieldError> {
        let blank = CityRecord {
            name: String::new(),
            state: String::new(),
            population: None,
            eligible: true,
            eligible_from: None,
            eligible_until: None,
            notes: String::new(),
            domains: Vec::new(),
        };
        if self.state.is_none() {
            return Err(bad("state", "missing"));
        }
        self.apply(&blank)
    }
}

/// Why a city edit was not made.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("{0}")]
    Field(#[from] FieldError),
    #[error("no city has id {0}")]
    NoCity(i64),
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

/// Adds a city; returns its id and record.
pub async fn add(store: &Store, patch: &CityPatch, actor: &Actor) -> Result<(i64, CityRecord), EditError> {
    let record = patch.new_record()?;
    let id = store.add_city(&record, &actor.email).await?;
    Ok((id, record))
}

/// Changes the fields the patch gives; returns the city as it is now.
pub async fn update(store: &Store, id: i64, patch: &CityPatch, actor: &Actor) -> Result<CityRow, EditError> {
    let city = store.city_by_id(id).await?.ok_or(EditError::NoCity(id))?;
    let record = patch.apply(&city.record)?;
    store.update_city(id, &record, &actor.email).await?;
    Ok(CityRow { id, record })
}

/// Removes a city (its domains and contacts go with it; its requests keep their history).
pub async fn remove(store: &Store, id: i64, actor: &Actor) -> Result<(), EditError> {
    if store.remove_city(id, &actor.email).await? { Ok(()) } else { Err(EditError::NoCity(id)) }
}

/// One city as `cities show` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct CityView {
    pub city: CityRow,
    pub contacts: Vec<ContactRow>,
    /// How many requests name it.
    pub requests: i64,
    /// Whether it is eligible on `today`, and why.
    pub today: NaiveDate,
    pub eligible_today: bool,
    pub eligible_today_reason: String,
}

/// The city with this id, with its contacts and request count; eligibility is taken on `today`.
pub async fn view(store: &Store, id: i64, today: NaiveDate) -> anyhow::Result<Option<CityView>> {
    let Some(city) = store.city_by_id(id).await? else { return Ok(None) };
    let contacts = store.list_contacts(Some(id)).await?;
    let requests = store.requests_of_city(id).await?;
    let (eligible_today, eligible_today_reason) = registry::eligible_on(&city.record, today);
    Ok(Some(CityView { city, contacts, requests, today, eligible_today, eligible_today_reason }))
}

impl fmt::Display for CityView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.city.record;
        let date = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
        writeln!(f, "City        {} (#{})", r.label(), self.city.id)?;
        writeln!(f, "Eligible    {}", if r.eligible { "yes" } else { "no" })?;
        writeln!(f, "From/until  {} / {}", date(r.eligible_from), date(r.eligible_until))?;
        writeln!(f, "Today       {}", self.eligible_today_reason)?;
        writeln!(f, "Population  {}", r.population.map(|p| p.to_string()).unwrap_or_else(|| "-".into()))?;
        writeln!(f, "Domains     {}", r.domains.join("; "))?;
        writeln!(f, "Notes       {}", r.notes)?;
        writeln!(f, "Requests    {}", self.requests)?;
        write!(f, "Contacts:")?;
        for c in &self.contacts {
            write!(f, "\n  {:<32} {:<24} {:<20} {}", c.email, c.name, c.title, c.source)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch() -> CityPatch {
        CityPatch { name: Some(" Dayton ".into()), state: Some("oh".into()), ..CityPatch::default() }
    }

    #[test]
    fn a_new_city_takes_the_defaults() {
        let r = patch().new_record().expect("valid");
        assert_eq!((r.name.as_str(), r.state.as_str(), r.eligible), ("Dayton", "OH", true));
        assert!(r.domains.is_empty() && r.eligible_from.is_none() && r.population.is_none());
        let err = CityPatch { name: Some("  ".into()), ..patch() }.new_record().expect_err("empty name");
        assert_eq!(err.field, "name");
        assert_eq!(CityPatch::default().new_record().expect_err("no state").field, "state");
    }

    #[test]
    fn each_field_is_checked_by_the_registry_rules() {
        let base = patch().new_record().expect("valid");
        for (p, field) in [
            (CityPatch { state: Some("ZZ".into()), ..Default::default() }, "state"),
            (CityPatch { domains: Some("not a domain".into()), ..Default::default() }, "domains"),
            (CityPatch { eligible: Some("perhaps".into()), ..Default::default() }, "eligible"),
            (CityPatch { population: Some("-3".into()), ..Default::default() }, "population"),
            (CityPatch { eligible_from: Some("2026-13-01".into()), ..Default::default() }, "eligible_from"),
            (CityPatch { name: Some("A\u{7}B".into()), ..Default::default() }, "name"),
            (
                CityPatch {
                    eligible_from: Some("2027-01-01".into()),
                    eligible_until: Some("2026-01-01".into()),
                    ..Default::default()
                },
                "eligible_until",
            ),
        ] {
            assert_eq!(p.apply(&base).expect_err(field).field, field, "{p:?}");
        }
        let ok = CityPatch {
            domains: Some("DaytonOhio.gov; @dayton.gov".into()),
            eligible: Some("no".into()),
            population: Some("137,644".into()),
            eligible_until: Some("2027-06-30".into()),
            ..Default::default()
        }
        .apply(&base)
        .expect("valid");
        assert_eq!(ok.domains, vec!["dayton.gov".to_string(), "daytonohio.gov".to_string()]);
        assert_eq!((ok.eligible, ok.population), (false, Some(137_644)));
        let cleared = CityPatch { eligible_until: Some(String::new()), ..Default::default() }.apply(&ok).expect("ok");
        assert_eq!(cleared.eligible_until, None);
    }
}
