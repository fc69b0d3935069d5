//! Thread matching helpers (pure): tracking tags in subjects and plus-addresses.
//!
//! A message joins a request by, in this order: In-Reply-To/References against every Message-ID
//! we stored (in [`crate::store`]); a tracking tag anywhere in the subject (`[311-2026-0042]`, any
//! case, behind any stack of Re:/Fwd:/AW:… prefixes); a plus-address `intake+311-2026-0042@…`.
//! The decision of who may use a tag is in [`crate::intake`].

use crate::domain::TrackingNumber;

/// At most this many Message-IDs in the References of mail we write.
const MAX_REFERENCES: usize = 20;

/// In-Reply-To and References for mail to the city in a request's thread: References start
/// with the question's Message-ID, then our first mail to the city (the acknowledgement), then
/// the latest official mail's own References, and end with that mail, which In-Reply-To names.
/// So the thread keeps its root even when the official's latest mail broke the chain (a new
/// subject, no References), and mail clients do not split it. Long lists lose their middle, as
/// RFC 5322 §3.6.4 suggests, never the root or the parent.
pub fn city_references(
    question: Option<&str>,
    ours: Option<&str>,
    latest: Option<(&str, &str)>,
) -> (Option<String>, Vec<String>) {
    let mut refs: Vec<String> = Vec::new();
    let mut push = |id: &str| {
        let id = id.trim().trim_matches(['<', '>']);
        if !id.is_empty() && !refs.iter().any(|r| r == id) {
            refs.push(id.to_string());
        }
    };
    question.into_iter().chain(ours).for_each(&mut push);
    let parent = latest.map(|(parent, _)| parent.trim().trim_matches(['<', '>']).to_string()).filter(|p| !p.is_empty());
    if let Some((_, theirs)) = latest {
        theirs.split_whitespace().for_each(&mut push);
    }
    // The parent ends the list, unless it is the question itself (the official wrote nothing
    // since): the question stays first, then our acknowledgement.
    if let Some(p) = parent.as_ref().filter(|p| question.map(|q| q.trim().trim_matches(['<', '>'])) != Some(p.as_str()))
    {
        refs.retain(|r| r != p);
        refs.push(p.clone());
    }
    if refs.len() > MAX_REFERENCES {
        let keep_head = question.iter().chain(ours.iter()).count().min(2);
        let cut = refs.len() - MAX_REFERENCES;
        refs.drain(keep_head..keep_head + cut);
    }
    (parent, refs)
}

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

    #[test]
    fn references_keep_the_question_first_when_the_official_broke_the_chain() {
        // The official's latest mail has a new subject and no References at all.
        let (parent, refs) = city_references(Some("q@city"), Some("ack@311"), Some(("new@city", "")));
        assert_eq!(parent.as_deref(), Some("new@city"));
        assert_eq!(refs, ["q@city", "ack@311", "new@city"]);
    }

    #[test]
    fn a_reply_to_the_question_itself_keeps_the_question_first() {
        let (parent, refs) = city_references(Some("<q@city>"), Some("ack@311"), Some(("q@city", "")));
        assert_eq!(parent.as_deref(), Some("q@city"));
        assert_eq!(refs, ["q@city", "ack@311"]);
    }

    #[test]
    fn references_merge_without_repeats_and_end_with_the_parent() {
        let (parent, refs) =
            city_references(Some("q@city"), Some("ack@311"), Some(("f2@city", "<q@city> <ack@311> <f1@city>")));
        assert_eq!(parent.as_deref(), Some("f2@city"));
        assert_eq!(refs, ["q@city", "ack@311", "f1@city", "f2@city"]);
    }

    #[test]
    fn references_without_a_latest_mail_thread_under_the_root() {
        let (parent, refs) = city_references(Some("q@city"), Some("ack@311"), None);
        assert_eq!(parent, None);
        assert_eq!(refs, ["q@city", "ack@311"]);
        assert_eq!(city_references(None, None, None), (None, vec![]));
    }

    #[test]
    fn long_references_lose_their_middle_not_the_root_or_parent() {
        let middle: Vec<String> = (0..40).map(|i| format!("<m{i}@x>")).collect();
        let (parent, refs) = city_references(Some("q@city"), Some("ack@311"), Some(("p@city", &middle.join(" "))));
        assert_eq!(refs.len(), MAX_REFERENCES);
        assert_eq!(&refs[..2], ["q@city", "ack@311"]);
        assert_eq!(refs.last().map(String::as_str), Some("p@city"));
        assert_eq!(refs[refs.len() - 2], "m39@x");
        assert_eq!(parent.as_deref(), Some("p@city"));
    }

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
