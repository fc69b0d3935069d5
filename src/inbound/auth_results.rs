//! Sender verification from `Authentication-Results` header fields (RFC 8601).
//!
//! Owns: parsing `Authentication-Results` values (authserv-id, version, `none`, `method=result`
//! entries with `reason=` and `ptype.property=value` properties, CFWS comments, quoted strings,
//! folded lines), choosing the one header the daemon may believe, and the verdict on whether the
//! message's From domain is authenticated by it. Talks to: nothing; pure functions, no I/O.
//!
//! # Which header is believed
//!
//! Only the receiving mail server's own result counts: the topmost (most recently added) header
//! whose authserv-id is configured as trusted. Every header below it is ignored, including
//! headers that carry the same trusted authserv-id, and so is every header with another
//! authserv-id (or none at all, like Exchange Online's). A sender can put any header into the
//! message before it reaches us, but only *below* what our server adds.
//!
//! Postfix with OpenDKIM and OpenDMARC writes one header per milter, all with the same
//! authserv-id (OpenDMARC's `dmarc=` header on top, OpenDKIM's `dkim=` below it). We still read
//! only the topmost one, deliberately: a forged header the sender placed directly below the
//! server's headers is indistinguishable from a genuine second milter header (the list holds only
//! `Authentication-Results` values, and even the full header block has no boundary between them),
//! and the milters do not reliably remove such forgeries (RFC 8601 section 5 asks the border MTA
//! to; OpenDKIM's removal is known to miss some, OpenDMARC does not remove them). Merging the run
//! would let a sender add a `dkim=pass`, `spf=pass` or `dmarc=pass` the server never wrote. The
//! cost: with separate milter headers the verdict rests on the topmost one (OpenDMARC's), so a
//! domain without a DMARC record is not verified through the DKIM result in OpenDKIM's header.
//!
//! This still assumes the trusted server always adds its header: if it let a message through
//! without one (a milter that is down with `milter_default_action = accept`), the topmost header
//! with its authserv-id would be whatever the sender wrote. Deployments should make the server
//! remove incoming headers that carry its authserv-id, or reject mail when its filters fail.
//!
//! # When a From domain is verified
//!
//! In that one header, in this order:
//! A DMARC result is "for the From domain" when its `header.from` equals the From domain
//! (case-insensitive) or it has no `header.from`.
//!
//! 1. a `dmarc=fail` for the From domain: not verified, whatever SPF and DKIM say (the server has
//!    already applied the domain owner's policy); results for the From domain that disagree
//!    (`pass` next to anything else) are treated the same way;
//! 2. `dmarc=pass` for the From domain: verified;
//! 3. `spf=pass` whose `smtp.mailfrom` domain is [aligned] with the From domain: verified;
//! 4. `dkim=pass` whose `header.d` (or, without it, the domain of `header.i`) is aligned: verified;
//! 5. otherwise not verified.

/// The verdict on a message's From domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// True when the From domain passed DMARC, or passed SPF or DKIM aligned with it, according
    /// to the topmost header from a trusted authserv-id.
    pub verified: bool,
    /// What decided it, for the request's eligibility reason, e.g. `dmarc=pass (mx.example.org)`.
    pub reason: String,
}

/// One parsed `Authentication-Results` value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthResults {
    /// As written (unquoted); `None` when the header starts directly with a result, as
    /// Exchange Online writes it, or is empty.
    pub authserv_id: Option<String>,
    /// The optional version number after the authserv-id (`mail.example.net 1;`).
    pub version: Option<String>,
    /// The header said `; none`: the server performed no authentication.
    pub none: bool,
    /// The results in the order written. Entries that could not be parsed are left out.
    pub results: Vec<MethodResult>,
}

/// One `method=result` entry (a "resinfo").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MethodResult {
    /// Lower-case, without the version (`dkim`, `spf`, `dmarc`, `compauth`, ...).
    pub method: String,
    /// The method version after `/` (`dkim/1=pass`), if any.
    pub method_version: Option<String>,
    /// Lower-case (`pass`, `fail`, `none`, ...).
    pub result: String,
    /// The `reason=` value, if any.
    pub reason: Option<String>,
    /// The properties in the order written.
    pub props: Vec<Property>,
}

/// One `ptype.property=value` (e.g. `header.from=example.org`). Keys without a dot, like
/// Exchange Online's `action=none`, have an empty `ptype`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Property {
    /// Lower-case (`header`, `smtp`, `policy`, ...).
    pub ptype: String,
    /// Lower-case (`from`, `d`, `i`, `mailfrom`, ...).
    pub property: String,
    /// As written, unquoted.
    pub value: String,
}

impl MethodResult {
    /// The value of the first `ptype.property` (case-insensitive), if present.
    pub fn prop(&self, ptype: &str, property: &str) -> Option<&str> {
        self.props
            .iter()
            .find(|p| p.ptype.eq_ignore_ascii_case(ptype) && p.property.eq_ignore_ascii_case(property))
            .map(|p| p.value.as_str())
    }
}

/// `headers`: the raw values of every `Authentication-Results` header, topmost (most recently
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
            let cut = long.len() - short.len() - 1;
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

fn verified(reason: String) -> Verification {
    Verification { verified: true, reason }
}

fn not_verified(reason: String) -> Verification {
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

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A run of characters other than white space, `(`, `)`, `;`, `=` and `"`. Dots, slashes and
    /// `@` stay inside words (`header.from`, `dkim/1`, `x@example.org`); so do other control
    /// characters, which then make a domain unusable instead of splitting it.
    Word(String),
    /// A quoted string, unescaped.
    Quoted(String),
    Semi,
    Eq,
    /// An unterminated comment or quoted string (it ran to the end of the value). The resinfo it
    /// is in is dropped rather than guessed at.
    Broken,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// White space or a comment came directly before it.
    spaced: bool,
}

/// Splits a header value into tokens, dropping white space (folded lines included) and comments
/// (nested, with quoted-pairs; an unterminated comment or quoted string runs to the end).
fn lex(input: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = input.chars().peekable();
    let mut spaced = true;
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() || c == ')' => {
                chars.next();
                spaced = true;
            }
            '(' => {
                chars.next();
                let mut depth = 1usize;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                if depth > 0 {
                    out.push(Token { tok: Tok::Broken, spaced: true });
                }
                spaced = true;
            }
            ';' | '=' => {
                chars.next();
                out.push(Token { tok: if c == ';' { Tok::Semi } else { Tok::Eq }, spaced });
                spaced = false;
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(e) = chars.next() {
                                s.push(e);
                            }
                        }
                        '"' => {
                            closed = true;
                            break;
                        }
                        _ => s.push(c),
                    }
                }
                out.push(Token { tok: if closed { Tok::Quoted(s) } else { Tok::Broken }, spaced });
                spaced = false;
            }
            _ => {
                let mut s = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | ';' | '=' | '"') {
                        break;
                    }
                    s.push(c);
                    chars.next();
                }
                out.push(Token { tok: Tok::Word(s), spaced });
                spaced = false;
            }
        }
    }
    out
}

#[derive(Clone, Copy)]
struct Parser<'a> {
    toks: &'a [Token],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|t| &t.tok)
    }

    fn peek_token(&self) -> Option<&Token> {
        self.toks.get(self.at)
    }

    fn bump(&mut self) {
        self.at = self.at.saturating_add(1);
    }

    fn at_end_of_resinfo(&self) -> bool {
        matches!(self.peek(), None | Some(Tok::Semi))
    }

    fn skip_to_semi(&mut self) {
        while !self.at_end_of_resinfo() {
            self.bump();
        }
    }

    /// A method or property name: a word, with words joined across `.` and `/` when CFWS was
    /// written around them (`header . from`, `dkim / 1`).
    fn key(&mut self) -> Option<String> {
        let Some(Tok::Word(w)) = self.peek() else { return None };
        let mut key = w.clone();
        self.bump();
        while let Some(Tok::Word(next)) = self.peek() {
            let joins = key.ends_with(['.', '/']) || next.starts_with(['.', '/']);
            if !joins {
                break;
            }
            key.push_str(next);
            self.bump();
        }
        Some(key)
    }

    /// Whether a `key =` starts here (without consuming anything).
    fn at_key_eq(&self) -> bool {
        let mut p = *self;
        p.key().is_some() && p.peek() == Some(&Tok::Eq)
    }

    /// A value after `=`: a word or quoted string, continued by whatever follows it without
    /// white space (`"quoted local part"@example.org`, `abc==`). Empty when nothing follows.
    fn value(&mut self) -> String {
        let mut v = match self.peek() {
            Some(Tok::Word(w) | Tok::Quoted(w)) => w.clone(),
            _ => return String::new(),
        };
        self.bump();
        while let Some(t) = self.peek_token() {
            if t.spaced {
                break;
            }
            match &t.tok {
                Tok::Word(w) | Tok::Quoted(w) => v.push_str(w),
                Tok::Eq => v.push('='),
                Tok::Semi | Tok::Broken => break,
            }
            self.bump();
        }
        v
    }

    /// One resinfo, from its `method=result` to the next `;` or the end.
    fn resinfo(&mut self) -> Option<MethodResult> {
        let method = self.key()?;
        if self.peek() != Some(&Tok::Eq) {
            self.skip_to_semi();
            return None;
        }
        self.bump();
        let result = match self.peek() {
            Some(Tok::Word(w) | Tok::Quoted(w)) => {
                let r = w.to_lowercase();
                self.bump();
                r
            }
            _ => String::new(),
        };
        let (name, version) = match method.split_once('/') {
            Some((n, v)) => (n, Some(v.trim().to_string())),
            None => (method.as_str(), None),
        };
        let mut out = MethodResult {
            method: name.trim().to_lowercase(),
            method_version: version,
            result,
            reason: None,
            props: Vec::new(),
        };
        while !self.at_end_of_resinfo() {
            if self.peek() == Some(&Tok::Broken) {
                return None;
            }
            if !self.at_key_eq() {
                self.bump();
                continue;
            }
            let Some(key) = self.key() else {
                self.bump();
                continue;
            };
            self.bump(); // the `=`
            let value = self.value();
            let key = key.to_lowercase();
            if key == "reason" {
                if out.reason.is_none() {
                    out.reason = Some(value);
                }
                continue;
            }
            let (ptype, property) = key.split_once('.').unwrap_or(("", key.as_str()));
            out.props.push(Property { ptype: ptype.to_string(), property: property.to_string(), value });
        }
        Some(out)
    }
}

/// Parses one `Authentication-Results` value. Never fails: anything that does not fit the
/// grammar is skipped up to the next `;`, so garbage gives an empty result list.
pub fn parse(value: &str) -> AuthResults {
    let toks = lex(value);
    let mut p = Parser { toks: &toks, at: 0 };
    let mut out = AuthResults::default();

    // authserv-id [version], unless the header starts with `method=` (Exchange Online).
    if !p.at_key_eq()
        && let Some(Tok::Word(id) | Tok::Quoted(id)) = p.peek()
    {
        out.authserv_id = Some(id.clone()).filter(|id| !id.trim().is_empty());
        p.bump();
        if let Some(Tok::Word(v)) = p.peek()
            && !v.is_empty()
            && v.chars().all(|c| c.is_ascii_digit())
            && !p.at_key_eq()
        {
            out.version = Some(v.clone());
            p.bump();
        }
    }

    // Results. A `method=` straight after the authserv-id (no `;`) is accepted too.
    let mut first = true;
    loop {
        match p.peek() {
            None => break,
            Some(Tok::Semi) => {
                p.bump();
                first = false;
                let is_none = matches!(p.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("none"));
                if is_none {
                    let mut after = p;
                    after.bump();
                    if after.at_end_of_resinfo() {
                        out.none |= out.results.is_empty();
                        p = after;
                        continue;
                    }
                }
                if p.at_key_eq() {
                    out.results.extend(p.resinfo());
                } else {
                    p.skip_to_semi();
                }
            }
            _ if first && p.at_key_eq() => {
                first = false;
                out.results.extend(p.resinfo());
            }
            _ => {
                first = false;
                p.skip_to_semi();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
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
        let real = format!(
            "{MX}; spf=fail smtp.mailfrom=attacker@evil.example; dkim=none; dmarc=none header.from=daytonohio.gov"
        );
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
            not_verified(format!(
                "dmarc=fail header.from=daytonohio.gov overrides aligned spf=pass and dkim=pass ({MX})"
            ))
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
        let v =
            check(&[&format!("{MX}; dmarc=pass header.from=evil.example; spf=pass smtp.mailfrom=evil.example")], CITY);
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
        let v = check(
            &[&format!("{MX}; dmarc=none header.from=daytonohio.gov; dmarc=pass header.from=daytonohio.gov")],
            CITY,
        );
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
        let v =
            check(&[&format!("{MX}; dkim=pass header.d=mailer.example header.i=@mailer.example header.s=s1")], CITY);
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
        assert_eq!(
            v,
            verified(format!("spf=pass smtp.mailfrom=bounce.daytonohio.gov aligned with daytonohio.gov ({MX})"))
        );
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
        assert_eq!(
            ar.results[0].prop("smtp", "mailfrom"),
            Some("x;dmarc=pass header.from=daytonohio.gov@evil.example")
        );
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
        let ar = parse(&format!(
            "{MX}; garbage dmarc=pass header.from=daytonohio.gov; spf=pass smtp.mailfrom=x.example; ;;"
        ));
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
            'a', 'd', 'm', 'r', 'c', 'p', 's', '.', '@', '/', ';', '=', '(', ')', '"', '\\', ' ', '\t', '\r', '\n',
            '1', 'é', '\u{0}',
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
}
