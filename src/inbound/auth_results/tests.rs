//! Unit tests for Authentication-Results parsing and verification.

#![allow(clippy::indexing_slicing, clippy::string_slice)]

use super::verify::{not_verified, verified};
use super::*;

const MX: &str = "mx.311.example.org";
const CITY: &str = "daytonohio.gov";

fn h(values: &[&str]) -> Vec<String> {
    values.iter().map(ToString::to_string).collect()
}

fn trusted() -> Vec<String> {
    vec![MX.to_string()]
}

fn check(headers: &[&str], from: &str) -> Verification {
    verify(&h(headers), &trusted(), from)
}

// --- Real header shapes ----------------------------------------------------------------

/// Gmail / Google Workspace: one header with dkim, spf and dmarc, comments full of `:` and
/// addresses, folded over several lines with tabs.
const GMAIL_LIKE: &str = "mx.311.example.org;\r\n       dkim=pass header.i=@daytonohio.gov header.s=sel2025 header.b=Qx7vK2mD;\r\n       spf=pass (mx.311.example.org: domain of mayor@daytonohio.gov designates 203.0.113.25 as\r\n permitted sender) smtp.mailfrom=mayor@daytonohio.gov;\r\n       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=daytonohio.gov";

#[test]
fn gmail_shape_parses_and_verifies_by_dmarc() {
    let ar = parse(GMAIL_LIKE);
    assert_eq!(ar.authserv_id.as_deref(), Some(MX));
    assert_eq!(ar.results.len(), 3);
    let dkim = &ar.results[0];
    assert_eq!((dkim.method.as_str(), dkim.result.as_str()), ("dkim", "pass"));
    assert_eq!(dkim.prop("header", "i"), Some("@daytonohio.gov"));
    assert_eq!(dkim.prop("header", "s"), Some("sel2025"));
    assert_eq!(dkim.prop("header", "b"), Some("Qx7vK2mD"));
    assert_eq!(ar.results[1].prop("smtp", "mailfrom"), Some("mayor@daytonohio.gov"));
    assert_eq!(ar.results[2].prop("header", "from"), Some("daytonohio.gov"));

    let v = check(&[GMAIL_LIKE], CITY);
    assert_eq!(v, verified(format!("dmarc=pass header.from=daytonohio.gov ({MX})")));
}

/// Microsoft 365 / Exchange Online: no authserv-id at all, `;` without a following space,
/// `action=` and `compauth=... reason=`.
const M365_RESULTS: &str = "spf=pass (sender IP is 203.0.113.7)\r\n smtp.mailfrom=daytonohio.gov; dkim=pass (signature was verified)\r\n header.d=daytonohio.gov;dmarc=pass action=none\r\n header.from=daytonohio.gov;compauth=pass reason=100";

#[test]
fn microsoft_365_shape_parses_without_an_authserv_id() {
    let ar = parse(M365_RESULTS);
    assert_eq!(ar.authserv_id, None);
    let methods: Vec<(&str, &str)> = ar.results.iter().map(|r| (r.method.as_str(), r.result.as_str())).collect();
    assert_eq!(methods, [("spf", "pass"), ("dkim", "pass"), ("dmarc", "pass"), ("compauth", "pass")]);
    assert_eq!(ar.results[0].prop("smtp", "mailfrom"), Some("daytonohio.gov"));
    assert_eq!(ar.results[1].prop("header", "d"), Some("daytonohio.gov"));
    assert_eq!(ar.results[2].prop("", "action"), Some("none"));
    assert_eq!(ar.results[2].prop("header", "from"), Some("daytonohio.gov"));
    assert_eq!(ar.results[3].reason.as_deref(), Some("100"));
}

#[test]
fn microsoft_365_header_without_an_id_is_never_trusted() {
    // Anyone can write a header without an authserv-id, so it can never be "ours".
    let v = check(&[M365_RESULTS], CITY);
    assert!(!v.verified);
    assert_eq!(v.reason, format!("no Authentication-Results header from a trusted server (trusted: {MX})"));
}

#[test]
fn microsoft_365_results_behind_a_trusted_id_verify() {
    let v = check(&[&format!("{MX}; {M365_RESULTS}")], CITY);
    assert_eq!(v, verified(format!("dmarc=pass header.from=daytonohio.gov ({MX})")));
    // Without DMARC in it, the aligned SPF decides (it comes first).
    let no_dmarc = format!(
        "{MX}; spf=pass (sender IP is 203.0.113.7) smtp.mailfrom=bounce.daytonohio.gov;\r\n dkim=pass (signature was verified) header.d=daytonohio.gov;compauth=pass reason=100"
    );
    assert_eq!(
        check(&[&no_dmarc], CITY),
        verified(format!("spf=pass smtp.mailfrom=bounce.daytonohio.gov aligned with daytonohio.gov ({MX})"))
    );
}

/// Postfix with OpenDKIM and OpenDMARC: one header per milter, same authserv-id, OpenDMARC's
/// on top; a version number after the id.
const OPENDMARC_PASS: &str = "mx.311.example.org 1; dmarc=pass (p=quarantine dis=none) header.from=daytonohio.gov";
const OPENDMARC_NONE: &str = "mx.311.example.org; dmarc=none (p=none dis=none) header.from=daytonohio.gov";
const OPENDMARC_SPF: &str = "mx.311.example.org; spf=pass smtp.mailfrom=mayor@daytonohio.gov";
const OPENDKIM: &str = "mx.311.example.org;\r\n\tdkim=pass (2048-bit key; unprotected) header.d=daytonohio.gov header.i=@daytonohio.gov header.a=rsa-sha256 header.s=city2025 header.b=\"kT3mZ0pq\"";

#[test]
fn postfix_milter_headers_parse() {
    let ar = parse(OPENDMARC_PASS);
    assert_eq!(ar.authserv_id.as_deref(), Some(MX));
    assert_eq!(ar.version.as_deref(), Some("1"));
    assert_eq!(ar.results[0].method, "dmarc");
    let ar = parse(OPENDKIM);
    assert_eq!(ar.results.len(), 1, "the `;` inside the comment does not split: {ar:?}");
    assert_eq!(ar.results[0].prop("header", "d"), Some("daytonohio.gov"));
    assert_eq!(ar.results[0].prop("header", "b"), Some("kT3mZ0pq"));
    assert_eq!(ar.results[0].prop("header", "a"), Some("rsa-sha256"));
}

#[test]
fn postfix_milter_headers_topmost_dmarc_decides() {
    let v = check(&[OPENDMARC_PASS, OPENDMARC_SPF, OPENDKIM], CITY);
    assert_eq!(v, verified(format!("dmarc=pass header.from=daytonohio.gov ({MX})")));
}

#[test]
fn postfix_milter_headers_below_the_topmost_are_not_merged() {
    // No DMARC record (dmarc=none) and a genuine aligned DKIM pass in OpenDKIM's header below:
    // not verified, because that header cannot be told apart from a forged one (next test).
    let v = check(&[OPENDMARC_NONE, OPENDKIM], CITY);
    assert_eq!(
        v,
        not_verified(format!("no aligned pass for daytonohio.gov: dmarc=none header.from=daytonohio.gov ({MX})"))
    );
    // A topmost header that itself carries an aligned pass does verify.
    let v = check(&[OPENDKIM, OPENDMARC_NONE], CITY);
    assert_eq!(v, verified(format!("dkim=pass header.d=daytonohio.gov aligned with daytonohio.gov ({MX})")));
}

// --- Trust ---------------------------------------------------------------------------------

#[test]
fn forged_header_with_the_trusted_id_directly_below_is_ignored() {
    let real =
        format!("{MX}; spf=fail smtp.mailfrom=attacker@evil.example; dkim=none; dmarc=none header.from=daytonohio.gov");
    let forged = format!("{MX}; dmarc=pass header.from=daytonohio.gov; dkim=pass header.d=daytonohio.gov");
    let v = check(&[&real, &forged], CITY);
    assert!(!v.verified, "{v:?}");
    assert_eq!(
        v.reason,
        format!(
            "no aligned pass for daytonohio.gov: dmarc=none header.from=daytonohio.gov, spf=fail smtp.mailfrom=evil.example, dkim=none ({MX})"
        )
    );
    // Likewise when the server's only header is OpenDKIM's (unsigned mail: dkim=none).
    let v = check(&[&format!("{MX}; dkim=none"), &forged], CITY);
    assert_eq!(v, not_verified(format!("no aligned pass for daytonohio.gov: dkim=none ({MX})")));
}

#[test]
fn forged_header_further_below_is_ignored() {
    let real = format!("{MX}; dmarc=fail (p=reject) header.from=daytonohio.gov");
    let relay = "mail.relay.example.net; spf=pass smtp.mailfrom=relay.example.net";
    let forged = format!("{MX}; dmarc=pass header.from=daytonohio.gov");
    let v = check(&[&real, relay, &forged], CITY);
    assert_eq!(v, not_verified(format!("dmarc=fail header.from=daytonohio.gov ({MX})")));
}

#[test]
fn headers_with_other_ids_above_are_skipped() {
    // An internal hop above ours (or anything else not ours) claims a pass: skipped; our own
    // server's verdict below it decides.
    let other = "mx.google.com; dmarc=pass header.from=daytonohio.gov; dkim=pass header.d=daytonohio.gov";
    let ours = format!("{MX}; dmarc=fail header.from=daytonohio.gov");
    let v = check(&[other, &ours], CITY);
    assert_eq!(v, not_verified(format!("dmarc=fail header.from=daytonohio.gov ({MX})")));
    // Only untrusted ones: nothing to believe.
    let v = check(&[other, "evil.example; dmarc=pass header.from=daytonohio.gov"], CITY);
    assert_eq!(v, not_verified(format!("no Authentication-Results header from a trusted server (trusted: {MX})")));
}

#[test]
fn any_of_several_trusted_ids_and_their_case() {
    let trusted = h(&["  MX.311.Example.ORG ", "backup-mx.311.example.org."]);
    let header = "Backup-MX.311.example.org; DMARC=pass header.from=daytonohio.gov";
    let v = verify(&h(&[header]), &trusted, CITY);
    assert_eq!(v, verified("dmarc=pass header.from=daytonohio.gov (Backup-MX.311.example.org)".into()));
    let v = verify(&h(&["x.example; dmarc=pass"]), &trusted, CITY);
    assert_eq!(
        v.reason,
        "no Authentication-Results header from a trusted server (trusted: mx.311.example.org, backup-mx.311.example.org)"
    );
}

#[test]
fn nothing_trusted_configured() {
    for trusted in [h(&[]), h(&["", "  "])] {
        let v = verify(&h(&[GMAIL_LIKE]), &trusted, CITY);
        assert_eq!(v, not_verified("no trusted_authserv_ids configured".into()));
    }
}

#[test]
fn no_headers_at_all() {
    let v = check(&[], CITY);
    assert_eq!(v, not_verified(format!("no Authentication-Results header from a trusted server (trusted: {MX})")));
}

#[test]
fn quoted_authserv_id_is_accepted() {
    let v = check(&["\"mx.311.example.org\"; dmarc=pass header.from=daytonohio.gov"], CITY);
    assert!(v.verified, "{v:?}");
}

// --- DMARC ----------------------------------------------------------------------------------

#[test]
fn dmarc_fail_overrides_aligned_spf_and_dkim() {
    let header = format!(
        "{MX}; dkim=pass header.d=daytonohio.gov; spf=pass smtp.mailfrom=daytonohio.gov; dmarc=fail (p=reject) header.from=daytonohio.gov"
    );
    let v = check(&[&header], CITY);
    assert_eq!(
        v,
        not_verified(format!("dmarc=fail header.from=daytonohio.gov overrides aligned spf=pass and dkim=pass ({MX})"))
    );
}

#[test]
fn dmarc_pass_without_header_from_counts() {
    let v = check(&[&format!("{MX}; dmarc=pass")], CITY);
    assert_eq!(v, verified(format!("dmarc=pass (no header.from) ({MX})")));
    let v = check(&[&format!("{MX}; dkim=pass header.d=daytonohio.gov; dmarc=fail")], CITY);
    assert_eq!(v, not_verified(format!("dmarc=fail (no header.from) overrides aligned dkim=pass ({MX})")));
}

#[test]
fn dmarc_pass_for_another_from_domain_does_not_count() {
    // The server evaluated a different From (e.g. a second From header): its pass is not ours.
    let v = check(&[&format!("{MX}; dmarc=pass header.from=evil.example; spf=pass smtp.mailfrom=evil.example")], CITY);
    assert_eq!(
        v,
        not_verified(format!(
            "no aligned pass for daytonohio.gov: dmarc=pass header.from=evil.example, spf=pass smtp.mailfrom=evil.example ({MX})"
        ))
    );
    // Nor is DMARC pass for a subdomain: header.from must equal the From domain.
    let v = check(&[&format!("{MX}; dmarc=pass header.from=mail.daytonohio.gov")], CITY);
    assert!(!v.verified);
}

#[test]
fn conflicting_dmarc_results_are_not_trusted() {
    let v =
        check(&[&format!("{MX}; dmarc=none header.from=daytonohio.gov; dmarc=pass header.from=daytonohio.gov")], CITY);
    assert_eq!(v, not_verified(format!("conflicting dmarc results for daytonohio.gov: pass and none ({MX})")));
}

#[test]
fn bestguesspass_is_not_a_dmarc_pass() {
    let v = check(&[&format!("{MX}; dmarc=bestguesspass header.from=daytonohio.gov")], CITY);
    assert!(!v.verified);
    assert!(v.reason.contains("dmarc=bestguesspass"), "{}", v.reason);
}

// --- SPF and DKIM alignment -----------------------------------------------------------------

#[test]
fn spf_pass_for_an_unaligned_mailfrom_does_not_verify() {
    let v = check(&[&format!("{MX}; spf=pass smtp.mailfrom=bounces@evil.example; dkim=none")], CITY);
    assert_eq!(
        v,
        not_verified(format!(
            "no aligned pass for daytonohio.gov: spf=pass smtp.mailfrom=evil.example, dkim=none ({MX})"
        ))
    );
}

#[test]
fn spf_fail_or_helo_only_does_not_verify() {
    assert!(!check(&[&format!("{MX}; spf=softfail smtp.mailfrom=x@daytonohio.gov")], CITY).verified);
    assert!(!check(&[&format!("{MX}; spf=pass smtp.helo=mail.daytonohio.gov")], CITY).verified);
    assert!(!check(&[&format!("{MX}; spf=pass smtp.mailfrom=")], CITY).verified);
}

#[test]
fn dkim_pass_for_another_domain_does_not_verify() {
    let v = check(&[&format!("{MX}; dkim=pass header.d=mailer.example header.i=@mailer.example header.s=s1")], CITY);
    assert_eq!(
        v,
        not_verified(format!("no aligned pass for daytonohio.gov: dkim=pass header.d=mailer.example ({MX})"))
    );
    // header.d decides when present; a header.i naming the city does not help.
    assert!(!check(&[&format!("{MX}; dkim=pass header.d=mailer.example header.i=@daytonohio.gov")], CITY).verified);
    // dkim=fail for the right domain does not verify either.
    assert!(!check(&[&format!("{MX}; dkim=fail (bad signature) header.d=daytonohio.gov")], CITY).verified);
}

#[test]
fn dkim_header_i_is_used_without_header_d() {
    let v = check(&[&format!("{MX}; dkim=pass header.i=mayor@Alerts.DaytonOhio.gov")], CITY);
    assert_eq!(v, verified(format!("dkim=pass header.i=alerts.daytonohio.gov aligned with daytonohio.gov ({MX})")));
}

#[test]
fn any_of_several_dkim_signatures_may_align() {
    let header = format!("{MX}; dkim=pass header.d=esp.example; dkim=pass header.d=daytonohio.gov; dmarc=none");
    assert!(check(&[&header], CITY).verified);
}

#[test]
fn subdomain_alignment_both_ways() {
    // Envelope on a subdomain of the From domain.
    let v = check(&[&format!("{MX}; spf=pass smtp.mailfrom=bounce.daytonohio.gov")], CITY);
    assert_eq!(v, verified(format!("spf=pass smtp.mailfrom=bounce.daytonohio.gov aligned with daytonohio.gov ({MX})")));
    // From on a subdomain of the signing domain.
    let v = check(&[&format!("{MX}; dkim=pass header.d=daytonohio.gov")], "mail.daytonohio.gov");
    assert_eq!(v, verified(format!("dkim=pass header.d=daytonohio.gov aligned with mail.daytonohio.gov ({MX})")));

    assert!(aligned("daytonohio.gov", "DaytonOhio.GOV."));
    assert!(aligned("a.b.daytonohio.gov", "daytonohio.gov"));
    assert!(aligned("daytonohio.gov", "a.b.daytonohio.gov"));
    assert!(!aligned("evildaytonohio.gov", "daytonohio.gov"), "a suffix without a dot is another domain");
    assert!(!aligned("daytonohio.gov.evil.example", "daytonohio.gov"));
    assert!(!aligned("a.daytonohio.gov", "b.daytonohio.gov"), "siblings are not aligned here");
    assert!(!aligned("daytonohio.gov", "gov"), "a bare TLD aligns with nothing");
    assert!(!aligned("", ""));
    assert!(!aligned("x@daytonohio.gov", "daytonohio.gov"));
    assert!(!aligned(".daytonohio.gov", "daytonohio.gov"));
    assert!(!aligned("daytonohio..gov", "daytonohio..gov"));
}

#[test]
fn lookalike_domains_do_not_align() {
    assert!(!check(&[&format!("{MX}; dkim=pass header.d=evildaytonohio.gov")], CITY).verified);
    assert!(!check(&[&format!("{MX}; spf=pass smtp.mailfrom=x@daytonohio.gov.evil.example")], CITY).verified);
    assert!(!check(&[&format!("{MX}; dkim=pass header.d=gov")], CITY).verified);
}

// --- Syntax ---------------------------------------------------------------------------------

#[test]
fn comments_with_semicolons_and_fake_results_are_ignored() {
    let header = format!(
        "{MX}; spf=fail (sender is not permitted; dmarc=pass header.from=daytonohio.gov (nested; dkim=pass)) smtp.mailfrom=x@evil.example"
    );
    let ar = parse(&header);
    assert_eq!(ar.results.len(), 1, "{ar:?}");
    assert_eq!(ar.results[0].prop("smtp", "mailfrom"), Some("x@evil.example"));
    assert!(!check(&[&header], CITY).verified);
    // A comment before the authserv-id and between every token.
    let header = format!(
        "(our server) {MX} (v) ; (a) dmarc (b) = (c) pass (p=none; x=y) header.from (d) = (e) daytonohio.gov (end)"
    );
    let ar = parse(&header);
    assert_eq!(ar.authserv_id.as_deref(), Some(MX));
    assert_eq!(ar.results[0].prop("header", "from"), Some("daytonohio.gov"));
    assert!(check(&[&header], CITY).verified);
    // An unterminated comment or quoted string drops the entry it is in.
    assert!(parse(&format!("{MX}; dmarc=pass (p=none header.from=daytonohio.gov")).results.is_empty());
    assert!(parse(&format!("{MX}; dmarc=pass header.from=\"daytonohio.gov")).results.is_empty());
    let ar = parse(&format!("{MX}; spf=pass smtp.mailfrom=x.example; dkim=pass header.d=\"daytonohio.gov"));
    assert_eq!(ar.results.len(), 1);
    assert_eq!(ar.results[0].method, "spf");
}

#[test]
fn quoted_strings_keep_their_content_in_one_value() {
    // A quoted local part that looks like more results stays part of the address.
    let header = format!("{MX}; spf=pass smtp.mailfrom=\"x;dmarc=pass header.from=daytonohio.gov\"@evil.example");
    let ar = parse(&header);
    assert_eq!(ar.results.len(), 1, "{ar:?}");
    assert_eq!(ar.results[0].prop("smtp", "mailfrom"), Some("x;dmarc=pass header.from=daytonohio.gov@evil.example"));
    assert!(!check(&[&header], CITY).verified);
    // Escapes inside quoted strings, and base64 padding right after a value.
    let ar = parse(&format!("{MX}; dkim=pass header.b=\"a\\\"b\" header.bh=abc== reason=\"x y\""));
    assert_eq!(ar.results[0].prop("header", "b"), Some("a\"b"));
    assert_eq!(ar.results[0].prop("header", "bh"), Some("abc=="));
    assert_eq!(ar.results[0].reason.as_deref(), Some("x y"));
}

#[test]
fn none_results() {
    let ar = parse(&format!("{MX} 1; none"));
    assert!(ar.none && ar.results.is_empty());
    assert_eq!(ar.version.as_deref(), Some("1"));
    let v = check(&[&format!("{MX}; none")], CITY);
    assert_eq!(v, not_verified(format!("no authentication results (none) for daytonohio.gov ({MX})")));
    let v = check(&[&format!("{MX}; dkim=none; spf=none smtp.mailfrom=daytonohio.gov; dmarc=none")], CITY);
    assert_eq!(
        v,
        not_verified(format!(
            "no aligned pass for daytonohio.gov: dmarc=none (no header.from), spf=none smtp.mailfrom=daytonohio.gov, dkim=none ({MX})"
        ))
    );
    let v = check(&[&format!("{MX}; iprev=pass policy.iprev=203.0.113.9; arc=none")], CITY);
    assert_eq!(v, not_verified(format!("no dmarc, spf or dkim result for daytonohio.gov ({MX})")));
}

#[test]
fn case_insensitive_methods_results_and_properties() {
    let header = "MX.311.EXAMPLE.ORG; DKIM=PASS Header.D=DaytonOhio.GOV; SPF=Pass SMTP.MailFrom=X@DAYTONOHIO.GOV; DMARC=Pass HEADER.FROM=DaytonOhio.Gov";
    let ar = parse(header);
    assert_eq!(ar.results[2].method, "dmarc");
    assert_eq!(ar.results[2].result, "pass");
    assert_eq!(ar.results[2].props[0].ptype, "header");
    assert_eq!(ar.results[2].props[0].property, "from");
    let v = check(&[header], "DAYTONOHIO.gov");
    assert_eq!(v, verified("dmarc=pass header.from=daytonohio.gov (MX.311.EXAMPLE.ORG)".into()));
}

#[test]
fn method_versions_and_spaced_keys() {
    let ar = parse(&format!("{MX}; dkim/1=pass header . d=daytonohio.gov; dkim / 2 = fail header.d=x.example"));
    assert_eq!(ar.results[0].method, "dkim");
    assert_eq!(ar.results[0].method_version.as_deref(), Some("1"));
    assert_eq!(ar.results[0].prop("header", "d"), Some("daytonohio.gov"));
    assert_eq!(ar.results[1].method_version.as_deref(), Some("2"));
    assert_eq!(ar.results[1].result, "fail");
}

#[test]
fn folded_multi_line_values() {
    let header = "mx.311.example.org;\r\n\tspf=pass\r\n\t  (sender SPF authorized)\r\n smtp.mailfrom=mayor@daytonohio.gov\r\n\t(client-ip=203.0.113.25;\r\n\thelo=mail.daytonohio.gov);\r\n\tdmarc=pass\n header.from=daytonohio.gov\n";
    let ar = parse(header);
    assert_eq!(ar.results.len(), 2, "{ar:?}");
    assert!(check(&[header], CITY).verified);
}

#[test]
fn missing_semicolon_after_the_id_is_tolerated() {
    let ar = parse(&format!("{MX} dmarc=pass (p=none dis=none) header.from=daytonohio.gov"));
    assert_eq!(ar.authserv_id.as_deref(), Some(MX));
    assert_eq!(ar.results.len(), 1);
}

#[test]
fn malformed_entries_are_skipped_not_guessed() {
    let ar =
        parse(&format!("{MX}; garbage dmarc=pass header.from=daytonohio.gov; spf=pass smtp.mailfrom=x.example; ;;"));
    assert_eq!(ar.results.len(), 1, "{ar:?}");
    assert_eq!(ar.results[0].method, "spf");
    assert!(!check(&[&format!("{MX}; garbage dmarc=pass header.from=daytonohio.gov")], CITY).verified);
}

#[test]
fn empty_and_garbage_input_never_panics() {
    let samples = [
        "",
        " ",
        ";",
        ";;;;",
        "=",
        "==;==",
        "(",
        "((((((",
        ")",
        "\"",
        "\"\\",
        "\\",
        "mx.311.example.org",
        "mx.311.example.org;",
        "mx.311.example.org; dmarc",
        "mx.311.example.org; dmarc=",
        "mx.311.example.org; dmarc=pass header.from=",
        "mx.311.example.org; =pass",
        "mx.311.example.org; dmarc=pass header.from=\"daytonohio.gov",
        "mx.311.example.org; dmarc=pass (header.from=daytonohio.gov",
        "\u{0}\u{1}\u{7f}\r\n\t",
        "mx.311.example.org; dkim=pass header.d=daytonohio.gov\u{0}evil",
        "mx.311.example.org; spf=pass smtp.mailfrom=@",
        "mx.311.example.org; spf=pass smtp.mailfrom=<>",
        "mx.311.example.org; dkim=pass header.i=@",
        "ü€😀; dmarc=pass header.from=ü€😀",
        "mx.311.example.org 99999999999999999999999999; none",
    ];
    for s in samples {
        let _ = parse(s);
        let v = check(&[s], CITY);
        assert!(!v.reason.is_empty());
        assert!(!v.verified, "{s:?} gave {v:?}");
        let _ = check(&[s], "");
    }
    // A dangling `header.from` without `=` is skipped, which leaves a plain `dmarc=pass`.
    assert!(check(&["mx.311.example.org; dmarc=pass header.from"], CITY).verified);
    // Deep nesting and long input.
    let deep = format!("{MX}; {}dmarc=pass", "(".repeat(100_000));
    assert!(!check(&[&deep], CITY).verified);
    let long = format!("{MX}; {}", "dkim=pass header.d=x.example; ".repeat(10_000));
    assert_eq!(parse(&long).results.len(), 10_000);
}

#[test]
fn pseudo_random_input_never_panics() {
    const ALPHABET: &[char] = &[
        'a', 'd', 'm', 'r', 'c', 'p', 's', '.', '@', '/', ';', '=', '(', ')', '"', '\\', ' ', '\t', '\r', '\n', '1',
        'é', '\u{0}',
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..2_000 {
        let len = (next() % 64) as usize;
        let mut s = String::from(if next() % 2 == 0 { "mx.311.example.org; " } else { "" });
        for _ in 0..len {
            s.push(ALPHABET[(next() % ALPHABET.len() as u64) as usize]);
        }
        let _ = parse(&s);
        let _ = check(&[&s], CITY);
    }
    // Every prefix of a realistic header (cut anywhere, even mid-comment or mid-quote).
    for (i, _) in GMAIL_LIKE.char_indices() {
        let _ = check(&[&GMAIL_LIKE[..i]], CITY);
    }
}

#[test]
fn unusable_from_domain() {
    let v = check(&[GMAIL_LIKE], "");
    assert_eq!(v, not_verified(format!("no usable From domain to verify (``) ({MX})")));
    assert!(!check(&[&format!("{MX}; dmarc=pass")], "not a domain").verified);
    // An address instead of a domain is reduced to its domain.
    assert!(check(&[GMAIL_LIKE], "Mayor@DaytonOhio.gov").verified);
}

#[test]
fn reasons_stay_on_one_short_line() {
    let long = "a".repeat(300);
    let header = format!("{MX}; spf=pass smtp.mailfrom=x@{long}.example; dkim=pass header.d=\"evil\r\nBcc: x\"");
    let v = check(&[&header], CITY);
    assert!(!v.verified);
    assert!(!v.reason.contains(['\r', '\n']), "{}", v.reason);
    assert!(v.reason.len() < 300, "{}", v.reason);
}

#[test]
fn unbalanced_comments_and_quotes_swallow_what_follows() {
    // An unclosed comment runs to the end: the dmarc=pass written after it is not believed.
    let v = check(&[&format!("{MX}; spf=fail smtp.mailfrom=x.example (unclosed; dmarc=pass header.from={CITY}")], CITY);
    assert!(!v.verified, "{v:?}");
    // An unclosed quoted string: likewise, and the resinfo it is in is dropped.
    let ar = parse(&format!("{MX}; dkim=pass reason=\"open; dmarc=pass header.from={CITY}"));
    assert!(ar.results.is_empty(), "{ar:?}");
    // A stray closing parenthesis is white space; the result next to it still counts.
    assert!(check(&[&format!("{MX}; dmarc=pass) header.from={CITY}")], CITY).verified);
    // A backslash at the very end of a comment or a quoted string.
    assert!(!check(&[&format!("{MX}; dmarc=pass header.from={CITY} (x\\")], CITY).verified);
    assert!(parse(&format!("{MX}; dmarc=pass header.from=\"{CITY}\\")).results.is_empty());
}

#[test]
fn multi_byte_and_huge_values_are_handled_by_characters() {
    // A look-alike with a multi-byte letter is another domain.
    assert!(!check(&[&format!("{MX}; dmarc=pass header.from=däytonohio.gov")], CITY).verified);
    // The authserv-id compares case-insensitively; multi-byte ids are compared, not sliced.
    assert!(check(&[&format!("{}; dmarc=pass header.from={CITY}", MX.to_uppercase())], CITY).verified);
    let v = verify(&h(&["ü€😀.example; dmarc=pass"]), &["Ü€😀.EXAMPLE.".to_string()], CITY);
    assert!(v.verified, "{v:?}");
    // A reason built from a long multi-byte value is cut at a character, not a byte.
    let long_domain = format!("{}.example", "é".repeat(200));
    let v = check(&[&format!("{MX}; spf=pass smtp.mailfrom={long_domain}")], CITY);
    assert!(!v.verified);
    assert!(v.reason.contains('…') && v.reason.chars().count() < 300, "{}", v.reason);
    // One megabyte in a comment, and one megabyte of a single word.
    let comment = format!("{MX}; dmarc=pass ({}) header.from={CITY}", "x".repeat(1 << 20));
    assert!(check(&[&comment], CITY).verified);
    let word = format!("{MX}; dmarc=pass header.from={}", "a".repeat(1 << 20));
    assert!(!check(&[&word], CITY).verified);
    // Lone CRs and empty folded lines are white space.
    assert!(check(&[&format!("{MX};\r\r\n\r\n dmarc=pass\rheader.from={CITY}")], CITY).verified);
}
