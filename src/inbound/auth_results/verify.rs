//! The verdict on a From domain from the one trusted `Authentication-Results` header (see the
//! module documentation of `auth_results` for which header and in which order). Talks to
//! `parse` for the parsed header.

use super::parse::{AuthResults, MethodResult, parse};

/// The verdict on a message's From domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// True when the From domain passed DMARC, or passed SPF or DKIM aligned with it, according
    /// to the topmost header from a trusted authserv-id.
    pub verified: bool,
    /// What decided it, for the request's eligibility reason, e.g. `dmarc=pass (mx.example.org)`.
    pub reason: String,
}

/// added) first. Only the topmost header whose authserv-id is in `trusted` (case-insensitive) is
/// read; see the module documentation for why not the run of headers below it.
pub fn verify(headers: &[String], trusted: &[String], from_domain: &str) -> Verification {
    let trusted: Vec<String> = trusted.iter().map(|t| normalize_id(t)).filter(|t| !t.is_empty()).collect();
    if trusted.is_empty() {
        return not_verified("no trusted_authserv_ids configured".into());
    }
    let Some(header) = headers
        .iter()
        .map(|h| parse(h))
        .find(|ar| ar.authserv_id.as_deref().is_some_and(|id| trusted.contains(&normalize_id(id))))
    else {
        let list: Vec<String> = trusted.iter().map(|t| clean(t)).collect();
        return not_verified(format!(
            "no Authentication-Results header from a trusted server (trusted: {})",
            list.join(", ")
        ));
    };
    let id = clean(header.authserv_id.as_deref().unwrap_or_default());
    let from = address_domain(from_domain);
    if !is_domain(&from) {
        return not_verified(format!("no usable From domain to verify (`{}`) ({id})", clean(from_domain)));
    }
    evaluate(&header, &from, &id)
}

/// Relaxed identifier alignment (RFC 7489 section 3.1), approximated without a public-suffix
/// list: two domains are aligned when they are equal, or when one ends with `.` followed by the
/// other (`bounce.daytonohio.gov` and `daytonohio.gov`, either way round). Case and one trailing
/// dot are ignored. Because there is no public-suffix list, the shorter domain must have at least
/// two labels (a bare TLD like `gov` never aligns with anything below it); a parent that is a
/// multi-label public suffix (`co.uk`, or a shared-hosting suffix) would still align with its
/// subdomains. Siblings under one organizational domain (`a.example.org`, `b.example.org`) are
/// not aligned, which is stricter than DMARC.
pub fn aligned(a: &str, b: &str) -> bool {
    let (a, b) = (normalize_domain(a), normalize_domain(b));
    if !is_domain(&a) || !is_domain(&b) {
        return false;
    }
    let below = |long: &str, short: &str| {
        short.contains('.') && long.len() > short.len() + 1 && long.ends_with(short) && {
            let cut = long.len().saturating_sub(short.len() + 1);
            long.as_bytes().get(cut) == Some(&b'.')
        }
    };
    a == b || below(&a, &b) || below(&b, &a)
}

fn evaluate(ar: &AuthResults, from: &str, id: &str) -> Verification {
    let of = |m: &'static str| ar.results.iter().filter(move |r| r.method == m);

    // DMARC results about the From domain. A result without header.from counts: DMARC is by
    // definition evaluated on the message's RFC 5322 From domain, so the server that wrote this
    // header evaluated the From of this very message, and header.from only names it (RFC 7489
    // section 11.2 registers it, but writers may leave it out). The one way the server's From and
    // ours could differ is a message with several From headers; when header.from is present and
    // names another domain, that result is not counted for ours.
    let dmarc: Vec<&MethodResult> =
        of("dmarc").filter(|r| r.prop("header", "from").is_none_or(|d| address_domain(d) == from)).collect();
    let dmarc_text = |r: &MethodResult| match r.prop("header", "from") {
        Some(d) => format!("dmarc={} header.from={}", clean(&r.result), clean(&address_domain(d))),
        None => format!("dmarc={} (no header.from)", clean(&r.result)),
    };

    let spf_pass = of("spf").filter(|r| r.result == "pass").find_map(|r| {
        let d = address_domain(r.prop("smtp", "mailfrom")?);
        aligned(&d, from).then(|| format!("spf=pass smtp.mailfrom={} aligned with {from}", clean(&d)))
    });
    let dkim_pass = of("dkim").filter(|r| r.result == "pass").find_map(|r| {
        let (key, d) = match (r.prop("header", "d"), r.prop("header", "i")) {
            (Some(d), _) => ("header.d", address_domain(d)),
            (None, Some(i)) => ("header.i", address_domain(i)),
            (None, None) => return None,
        };
        aligned(&d, from).then(|| format!("dkim=pass {key}={} aligned with {from}", clean(&d)))
    });

    if let Some(fail) = dmarc.iter().find(|r| r.result == "fail") {
        let overridden: Vec<String> = [&spf_pass, &dkim_pass]
            .into_iter()
            .flatten()
            .filter_map(|t| t.split(' ').next().map(str::to_string))
            .collect();
        let reason = if overridden.is_empty() {
            format!("{} ({id})", dmarc_text(fail))
        } else {
            format!("{} overrides aligned {} ({id})", dmarc_text(fail), overridden.join(" and "))
        };
        return not_verified(reason);
    }
    if let Some(pass) = dmarc.iter().find(|r| r.result == "pass") {
        if let Some(other) = dmarc.iter().find(|r| r.result != "pass") {
            return not_verified(format!(
                "conflicting dmarc results for {from}: pass and {} ({id})",
                clean(&other.result)
            ));
        }
        return verified(format!("{} ({id})", dmarc_text(pass)));
    }
    if let Some(text) = spf_pass.or(dkim_pass) {
        return verified(format!("{text} ({id})"));
    }

    // Not verified: say what the server did find.
    let mut found: Vec<String> = Vec::new();
    if let Some(r) = of("dmarc").next() {
        found.push(dmarc_text(r));
    }
    if let Some(r) = of("spf").next() {
        found.push(match r.prop("smtp", "mailfrom") {
            Some(m) => format!("spf={} smtp.mailfrom={}", clean(&r.result), clean(&address_domain(m))),
            None => format!("spf={}", clean(&r.result)),
        });
    }
    if let Some(r) = of("dkim").find(|r| r.result == "pass").or_else(|| of("dkim").next()) {
        found.push(match (r.prop("header", "d"), r.prop("header", "i")) {
            (Some(d), _) => format!("dkim={} header.d={}", clean(&r.result), clean(&address_domain(d))),
            (None, Some(i)) => format!("dkim={} header.i={}", clean(&r.result), clean(&address_domain(i))),
            (None, None) => format!("dkim={}", clean(&r.result)),
        });
    }
    if found.is_empty() {
        if ar.none {
            return not_verified(format!("no authentication results (none) for {from} ({id})"));
        }
        return not_verified(format!("no dmarc, spf or dkim result for {from} ({id})"));
    }
    not_verified(format!("no aligned pass for {from}: {} ({id})", found.join(", ")))
}

pub(super) fn verified(reason: String) -> Verification {
    Verification { verified: true, reason }
}

pub(super) fn not_verified(reason: String) -> Verification {
    Verification { verified: false, reason }
}

/// An authserv-id for comparison: trimmed, lower-case, without a trailing dot.
fn normalize_id(id: &str) -> String {
    let id = id.trim().to_lowercase();
    id.strip_suffix('.').map(str::to_string).unwrap_or(id)
}

/// A domain for comparison: trimmed, without angle brackets, lower-case, without a trailing dot.
fn normalize_domain(d: &str) -> String {
    let d = d.trim().trim_start_matches('<').trim_end_matches('>').trim().to_lowercase();
    let d = d.strip_prefix('@').unwrap_or(&d);
    d.strip_suffix('.').unwrap_or(d).to_string()
}

/// The domain of an address (`x@example.org`, `@example.org`) or the value itself when it is
/// already a domain.
fn address_domain(v: &str) -> String {
    let v = v.trim().trim_start_matches('<').trim_end_matches('>');
    let d = v.rsplit_once('@').map_or(v, |(_, d)| d);
    normalize_domain(d)
}

/// Something shaped like a domain name: non-empty labels of letters, digits, `-` and `_`
/// (non-ASCII letters allowed for internationalized names), separated by single dots.
fn is_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_'))
}

/// A value from a header made safe for a one-line reason: control characters and runs of white
/// space become one space, and it is cut at 80 characters.
fn clean(s: &str) -> String {
    const MAX: usize = 80;
    let mut out = String::new();
    for (n, w) in s.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()).enumerate() {
        if n > 0 {
            out.push(' ');
        }
        out.push_str(w);
    }
    if out.chars().count() > MAX {
        let mut cut: String = out.chars().take(MAX).collect();
        cut.push('…');
        return cut;
    }
    out
}
