//! The whole verification matrix of [`decide`]: `require` / `prefer` / `off` × verified or not ×
//! found by contact, by domain, by sub-domain, named only, or not at all; plus eligibility dates.

use chrono::NaiveDate;

use crate::config::{RawConfig, Verification};
use crate::domain::{Eligibility, RequestStatus};
use crate::inbound::auth_results;
use crate::intake::decide::{Sender, decide};
use crate::registry::{CityRecord, Found};
use crate::store::CityRow;

fn city(id: i64, name: &str, eligible: bool, until: Option<&str>) -> CityRow {
    CityRow {
        id,
        record: CityRecord {
            name: name.into(),
            state: "OH".into(),
            population: None,
            eligible,
            eligible_from: None,
            eligible_until: until.and_then(|u| u.parse().ok()),
            notes: String::new(),
            domains: vec![format!("{}.gov", name.to_lowercase())],
        },
    }
}

#[derive(Clone, Copy, Debug)]
enum How {
    Contact,
    Domain,
    SubDomain,
    NamedOnly,
    Nothing,
}

fn sender(how: How, verified: bool) -> Sender<'static> {
    let dayton = city(1, "Dayton", true, None);
    let found = match how {
        How::Contact => Found::Contact(dayton.clone()),
        How::Domain => Found::Domain(dayton.clone(), "dayton.gov".into()),
        How::SubDomain => Found::Domain(dayton.clone(), "dayton.gov".into()),
        How::NamedOnly | How::Nothing => Found::Nothing,
    };
    Sender {
        email: "mayor@water.dayton.gov",
        domain: if matches!(how, How::SubDomain) { "water.dayton.gov" } else { "dayton.gov" },
        found,
        named: if matches!(how, How::NamedOnly) { vec![dayton] } else { vec![] },
        verification: auth_results::Verification {
            verified,
            reason: if verified { "dmarc=pass (mx.test)".into() } else { "dmarc=fail (mx.test)".into() },
        },
    }
}

fn policy(mode: Verification, trusted: bool) -> crate::config::IntakeSection {
    let mut raw = RawConfig::default();
    raw.intake.verification = mode;
    raw.intake.trusted_authserv_ids = if trusted { vec!["mx.test".into()] } else { vec![] };
    raw.intake
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap_or_default()
}

/// What a row of the matrix expects.
#[derive(Debug, PartialEq)]
struct Expect {
    status: RequestStatus,
    template: &'static str,
    outcome: Eligibility,
    review: bool,
    suggested: Option<i64>,
}

fn expect(
    status: RequestStatus,
    template: &'static str,
    outcome: Eligibility,
    review: bool,
    suggested: Option<i64>,
) -> Expect {
    Expect { status, template, outcome, review, suggested }
}

#[test]
fn the_whole_matrix() {
    use Verification::*;
    let eligible = || expect(RequestStatus::Acknowledged, "ack_eligible", Eligibility::Eligible, false, None);
    let received = || expect(RequestStatus::New, "ack_received", Eligibility::Unknown, true, Some(1));
    let prefer_unverified =
        || expect(RequestStatus::Acknowledged, "ack_eligible", Eligibility::Eligible, true, Some(1));
    let unknown = || expect(RequestStatus::NeedsCity, "ack_unknown_city", Eligibility::Unknown, false, None);
    let named = || expect(RequestStatus::NeedsCity, "ack_unknown_city", Eligibility::Unknown, true, Some(1));
    let mut rows = 0;
    for mode in [Require, Prefer, Off] {
        for trusted in [true, false] {
            for verified in [true, false] {
                for how in [How::Contact, How::Domain, How::SubDomain, How::NamedOnly, How::Nothing] {
                    let found_city = matches!(how, How::Contact | How::Domain | How::SubDomain);
                    let want = match how {
                        How::Nothing => unknown(),
                        How::NamedOnly => named(),
                        _ if mode == Off || (mode == Prefer && !trusted) => eligible(),
                        _ if verified => eligible(),
                        _ if mode == Require => received(),
                        _ => prefer_unverified(),
                    };
                    let d = decide(sender(how, verified), &policy(mode, trusted), day("2026-12-03"));
                    let got = Expect {
                        status: d.status,
                        template: d.template,
                        outcome: d.eligibility.outcome,
                        review: !d.review.is_empty(),
                        suggested: d.suggested_city,
                    };
                    assert_eq!(got, want, "{mode:?} trusted={trusted} verified={verified} {how:?}: {d:?}");
                    if found_city && want.outcome == Eligibility::Eligible {
                        assert_eq!(d.eligibility.city.as_ref().map(|c| c.id.0), Some(1));
                    }
                    rows += 1;
                }
            }
        }
    }
    assert_eq!(rows, 60);
}

#[test]
fn reasons_say_how_the_city_was_found_and_what_verification_said() {
    let p = policy(Verification::Prefer, true);
    let d = decide(sender(How::SubDomain, true), &p, day("2026-12-03"));
    assert!(d.eligibility.reason.contains("domain water.dayton.gov (sub-domain of dayton.gov)"), "{d:?}");
    assert!(d.eligibility.reason.contains("sender verified: dmarc=pass (mx.test)"), "{d:?}");
    let d = decide(sender(How::Contact, false), &policy(Verification::Require, true), day("2026-12-03"));
    assert!(d.eligibility.reason.contains("contact mayor@water.dayton.gov"), "{d:?}");
    assert!(d.review.contains("sender not verified (dmarc=fail (mx.test))"), "{d:?}");
    let d = decide(sender(How::NamedOnly, false), &p, day("2026-12-03"));
    assert!(d.review.contains("names Dayton, OH"), "{d:?}");
}

#[test]
fn eligibility_is_decided_on_the_date_given() {
    let p = policy(Verification::Off, false);
    let flint = city(3, "Flint", true, Some("2026-12-31"));
    let on = |date: &str| {
        let s = Sender {
            email: "clerk@flint.gov",
            domain: "flint.gov",
            found: Found::Domain(flint.clone(), "flint.gov".into()),
            named: vec![],
            verification: auth_results::Verification { verified: false, reason: String::new() },
        };
        decide(s, &p, day(date))
    };
    assert_eq!(on("2026-12-31").eligibility.outcome, Eligibility::Eligible);
    let after = on("2027-01-01");
    assert_eq!(after.eligibility.outcome, Eligibility::NotEligible);
    assert_eq!(after.template, "ack_not_eligible");
    assert!(after.eligibility.reason.contains("eligibility ended 2026-12-31"), "{after:?}");
}

#[test]
fn two_cities_named_is_no_suggestion() {
    let mut s = sender(How::NamedOnly, true);
    s.named.push(city(2, "Kettering", true, None));
    let d = decide(s, &policy(Verification::Prefer, true), day("2026-12-03"));
    assert!(d.review.is_empty() && d.suggested_city.is_none(), "{d:?}");
}

#[test]
fn an_unknown_sender_that_passed_neither_spf_nor_dkim_gets_no_reply_where_servers_are_trusted() {
    let quiet = |mode, trusted, verified, how| {
        decide(sender(how, verified), &policy(mode, trusted), day("2026-12-03")).no_reply
    };
    let why = quiet(Verification::Prefer, true, false, How::Nothing).expect("backscatter held");
    assert!(why.contains("neither SPF nor DKIM") && why.contains("dmarc=fail (mx.test)"), "{why}");
    assert!(quiet(Verification::Off, true, false, How::NamedOnly).is_some(), "named only is still unknown");
    assert_eq!(quiet(Verification::Prefer, true, true, How::Nothing), None, "a verified stranger is answered");
    assert_eq!(
        quiet(Verification::Prefer, false, false, How::Nothing),
        None,
        "nothing to judge by without trusted servers"
    );
    assert_eq!(quiet(Verification::Require, true, false, How::Domain), None, "a known city's domain is answered");
}
