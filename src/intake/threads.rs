//! Thread matching helpers (pure): tracking tags in subjects and plus-addresses.
//!
//! A message joins a request by, in this order: In-Reply-To/References against every Message-ID
//! we stored (in [`crate::store`]); a tracking tag anywhere in the subject (`[311-2026-0042]`, any
//! case, behind any stack of Re:/Fwd:/AW:… prefixes); a plus-address `intake+311-2026-0042@…`.
//! The decision of who may use a tag is in [`crate::intake`].

use crate::domain::TrackingNumber;

/// Every `[PREFIX-YYYY-NNNN]` tag in `subject` with our prefix, case-insensitive, in order.
pub fn tags_in_subject(subject: &str, prefix: &str) -> Vec<TrackingNumber> {
    let mut out = Vec::new();
    let mut rest = subject;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else { break };
        let inner = after[..close].trim();
        if let Ok(t) = inner.parse::<TrackingNumber>()
            && t.prefix.eq_ignore_ascii_case(prefix)
        {
            let t = TrackingNumber { prefix: prefix.to_string(), ..t };
            if !out.contains(&t) {
                out.push(t);
            }
        }
        rest = &after[close..];
    }
    out
}

/// The tracking number in a plus-address of our intake address among `addresses`
/// (`intake+311-2026-0042@311.example.org` when the intake address is `intake@311.example.org`).
pub fn plus_tracking(addresses: &[String], intake_address: &str, prefix: &str) -> Option<TrackingNumber> {
    let (local, domain) = intake_address.rsplit_once('@')?;
    addresses.iter().find_map(|a| {
        let (alocal, adomain) = a.rsplit_once('@')?;
        if !adomain.eq_ignore_ascii_case(domain) {
            return None;
        }
        let (base, tag) = alocal.split_once('+')?;
        if !base.eq_ignore_ascii_case(local) {
            return None;
        }
        let t: TrackingNumber = tag.parse().ok()?;
        t.prefix.eq_ignore_ascii_case(prefix).then(|| TrackingNumber { prefix: prefix.to_string(), ..t })
    })
}

/// The plus-address for a request, for Reply-To headers when plus addressing is on.
pub fn plus_address(intake_address: &str, tracking: &TrackingNumber) -> Option<String> {
    let (local, domain) = intake_address.rsplit_once('@')?;
    Some(format!("{local}+{tracking}@{domain}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seq: i64) -> TrackingNumber {
        TrackingNumber::new("311", 2026, seq)
    }

    #[test]
    fn tags_are_found_wherever_they_stand() {
        assert_eq!(tags_in_subject("[311-2026-0042] Re: Water", "311"), vec![t(42)]);
        assert_eq!(tags_in_subject("RE: AW: Fwd: SV: VS: Réf: WG: FW: [311-2026-0042] Water", "311"), vec![t(42)]);
        assert_eq!(tags_in_subject("Water budget (edited) [311-2026-0042]", "311"), vec![t(42)]);
        assert_eq!(tags_in_subject("re: [ 311-2026-0042 ] water", "311"), vec![t(42)]);
        assert_eq!(tags_in_subject("[ext] [311-2026-0007] and [311-2026-0042]", "311"), vec![t(7), t(42)]);
        assert!(tags_in_subject("[999-2026-0042] other prefix", "311").is_empty());
        assert!(tags_in_subject("311-2026-0042 without brackets", "311").is_empty());
        assert!(tags_in_subject("[311-2026-42] too short [", "311").is_empty());
        let upper = tags_in_subject("[CITY-2026-0042]", "city");
        assert_eq!(upper, vec![TrackingNumber::new("city", 2026, 42)]);
    }

    #[test]
    fn plus_addresses_match_our_intake_only() {
        let intake = "intake@311.test";
        let addrs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(plus_tracking(&addrs(&["intake+311-2026-0042@311.test"]), intake, "311"), Some(t(42)));
        assert_eq!(plus_tracking(&addrs(&["x@y.z", "Intake+311-2026-0042@311.TEST"]), intake, "311"), Some(t(42)));
        assert_eq!(plus_tracking(&addrs(&["other+311-2026-0042@311.test"]), intake, "311"), None);
        assert_eq!(plus_tracking(&addrs(&["intake+311-2026-0042@evil.test"]), intake, "311"), None);
        assert_eq!(plus_tracking(&addrs(&["intake+hello@311.test"]), intake, "311"), None);
        assert_eq!(plus_address(intake, &t(42)).as_deref(), Some("intake+311-2026-0042@311.test"));
    }
}
