//! Eligibility on a date, and the decision recorded for a found city.
//!
//! Owns: the eligibility window rule and the reason phrase a person reads. Pure. Talks to:
//! [`crate::domain`] for the city and decision types.

use chrono::NaiveDate;

use crate::domain::city::{CityRecord, CityRow};
use crate::domain::{CityId, CityRef, Eligibility, EligibilityDecision};

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

/// A decision from a found city on `date`; `via` says how it was found.
pub fn decide(city: &CityRow, via: &str, date: NaiveDate) -> EligibilityDecision {
    let (ok, phrase) = eligible_on(&city.record, date);
    EligibilityDecision {
        outcome: if ok { Eligibility::Eligible } else { Eligibility::NotEligible },
        city: Some(CityRef { id: CityId(city.id), name: city.record.name.clone(), state: city.record.state.clone() }),
        reason: format!("{via} → {} ({phrase})", city.record.label()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::test_city as row;

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
    fn decision_names_the_city_and_the_reason() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 26).expect("date");
        let yes = decide(&row(7, "Dayton", "OH", &["dayton.gov"], true), "domain dayton.gov", d);
        assert_eq!(yes.outcome, Eligibility::Eligible);
        assert_eq!(yes.city.map(|c| c.id), Some(CityId(7)));
        assert_eq!(yes.reason, "domain dayton.gov → Dayton, OH (eligible)");
        let no = decide(&row(8, "Flint", "MI", &[], false), "contact a@b.gov", d);
        assert_eq!(no.outcome, Eligibility::NotEligible);
        assert_eq!(no.reason, "contact a@b.gov → Flint, MI (not eligible)");
    }
}
