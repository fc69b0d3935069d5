//! Parsing one `Authentication-Results` value (RFC 8601) into [`AuthResults`]: a lexer for
//! words, quoted strings and CFWS comments, and a forgiving parser that skips what it cannot
//! read up to the next `;`. Talks to nothing; `verify.rs` reads the result.

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
                            depth = depth.saturating_sub(1);
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
