//! Reply stripping: the new content of a reply, without the quoted history and the signature.
//!
//! [`split_reply`] takes a plain-text body (what mail-parser gives for the text part, or its
//! HTML-to-text conversion) and splits it into what the sender wrote now (`visible`), their
//! signature and the quoted history. It is a pure function with no regular expressions; every
//! per-line test looks at a bounded number of lines and bytes, so the running time is linear in
//! the size of the body (a 766 KB quote takes a few milliseconds) and it never panics.
//!
//! How it reads a message, top to bottom:
//! - `>` lines are quotations (any depth, with or without a space). A lone `>` line or two in a
//!   message that has no quote header is kept as text (`>>> see here <<<` is not a quote).
//! - A quote header ends the new content: "On <date>, <name> wrote:" (also wrapped over up to
//!   five lines, with the address on its own line), and its equivalents in German, French, Dutch,
//!   Spanish, Catalan, Italian, Portuguese, Polish, Czech, the Scandinavian languages, Finnish,
//!   Russian, Greek, Turkish, Hungarian, Vietnamese, Chinese, Japanese, Korean and Hebrew (bidi
//!   marks ignored), the "<date> <name> <address>:" form used
//!   by Gmail in many locales, Android's "---- X wrote ----", Outlook's header block ("From: /
//!   Sent: / To: / Subject:" and its translations, bold or indented), "-----Original Message-----"
//!   and its translations. Separator lines just above a header (`____`, `----`, `====`) go with it.
//! - When a header is followed by `>` lines, only the header and the quoted block are removed and
//!   text after it is kept: that is how inline and bottom-posted answers are written. A header
//!   followed by unquoted text (Outlook, most mobile clients) cuts everything below it.
//! - Forwarded messages ("---------- Forwarded message ---------", "Begin forwarded message:")
//!   are NOT treated as quoted history: when someone forwards a message into a tracked request,
//!   the forwarded text is information they are passing on, so it stays in `visible` verbatim
//!   (this is also what Mailgun's talon does). A forward that appears below a quote header is
//!   part of the quoted history like everything else there.
//! - The signature is searched at the end of the remaining text: the "-- " delimiter (and `--`),
//!   a rule line (`---`, `___`, `—`) followed by a short block, "Sent from my iPhone" and the other
//!   mobile / Outlook-app taglines in several languages, a closing ("Regards," "Thanks," "Mit
//!   freundlichen Grüßen" …) followed by a few short lines, "-Name" lines, and a trailing contact
//!   block (a name followed by phone / e-mail / web lines). A signature never starts on the first
//!   line of the new content (except a mobile tagline), and a candidate whose tail contains prose
//!   is rejected, so "regards" or "Sent from" inside a sentence, markdown rules and `--` list items
//!   stay in the text.

/// A reply body split into what the sender wrote now, their signature, and the quoted history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyParts {
    /// The new text, trimmed.
    pub visible: String,
    /// The sender's signature block (delimiter included), if one was recognised.
    pub signature: Option<String>,
    /// The quoted history: quote headers, `>` lines and everything below a cutting header.
    pub quoted: Option<String>,
}

/// Splits a plain-text reply body into new text, signature and quoted history.
pub fn split_reply(body: &str) -> ReplyParts {
    let text = normalize_newlines(body);
    let lines: Vec<&str> = text.split('\n').collect();
    let is_quote: Vec<bool> = lines.iter().map(|l| is_quote_line(l)).collect();
    let splitters: Vec<Option<Splitter>> = (0..lines.len()).map(|i| detect_splitter(&lines, i, &is_quote)).collect();
    let quotes_active = splitters.iter().flatten().any(|s| s.kind != Kind::Forward) || has_quote_run(&lines, &is_quote);

    let mut out = Collector::default();
    let mut forward_at: Option<usize> = None;
    let mut i = 0;
    while i < lines.len() {
        if let Some(sp) = splitters[i] {
            match sp.kind {
                Kind::Forward => {
                    forward_at = Some(i);
                    break;
                }
                Kind::HeaderBlock | Kind::Separator => {
                    out.begin_removal(sp.prefix_len, lines[i]);
                    out.quote_rest(&lines[i][sp.prefix_len..]);
                    for l in &lines[i + 1..] {
                        out.quote_rest(l);
                    }
                    break;
                }
                Kind::Attribution => {
                    out.begin_removal(sp.prefix_len, lines[i]);
                    out.quote_rest(&lines[i][sp.prefix_len..]);
                    for l in &lines[i + 1..sp.end] {
                        out.quote_rest(l);
                    }
                    let next = next_nonblank(&lines, sp.end);
                    match next {
                        Some(k) if is_quote[k] => {
                            for l in &lines[sp.end..k] {
                                out.quote_rest(l);
                            }
                            i = consume_region(&lines, &is_quote, k, &mut out);
                        }
                        _ => {
                            for l in &lines[sp.end..] {
                                out.quote_rest(l);
                            }
                            break;
                        }
                    }
                    continue;
                }
            }
        }
        if quotes_active && is_quote[i] {
            out.begin_removal(0, lines[i]);
            i = consume_region(&lines, &is_quote, i, &mut out);
            continue;
        }
        out.keep(lines[i]);
        i += 1;
    }

    let kept = &out.kept;
    let (sig_start, sig_end) = find_signature(kept).unwrap_or((kept.len(), kept.len()));
    let mut visible = join_trimmed(&kept[..sig_start]);
    let signature = non_empty(join_trimmed(&kept[sig_start..sig_end]));
    let mut quoted_lines = out.quoted;
    quoted_lines.extend_from_slice(&kept[sig_end..]);
    if let Some(f) = forward_at {
        let forwarded = join_trimmed(&lines[f..]);
        if visible.is_empty() {
            visible = forwarded;
        } else if !forwarded.is_empty() {
            visible.push_str("\n\n");
            visible.push_str(&forwarded);
        }
    }
    ReplyParts { visible, signature, quoted: non_empty(join_trimmed(&quoted_lines)) }
}

/// The new content of a reply: [`split_reply`]'s visible part.
pub fn new_content(body: &str) -> String {
    split_reply(body).visible
}

// ---------------------------------------------------------------------------------------------
// Collecting kept and quoted lines
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Collector<'a> {
    kept: Vec<&'a str>,
    quoted: Vec<&'a str>,
    /// Lines were removed since the last kept line (used to avoid doubled blank lines).
    gap: bool,
}

impl<'a> Collector<'a> {
    fn keep(&mut self, line: &'a str) {
        if self.gap && is_blank(line) && self.kept.last().is_some_and(|l| is_blank(l)) {
            return;
        }
        // Text on both sides of a removed quote: keep the two answers apart.
        if self.gap && !is_blank(line) && self.kept.last().is_some_and(|l| !is_blank(l)) {
            self.kept.push("");
        }
        self.gap = false;
        self.kept.push(line);
    }

    /// Starts removing at `line[prefix_len..]`: keeps the prefix (text sharing the line with a
    /// header) and moves separator lines just above the header to the quoted part.
    fn begin_removal(&mut self, prefix_len: usize, line: &'a str) {
        if prefix_len > 0 {
            let prefix = line[..prefix_len].trim_end_matches(|c: char| c == '-' || c.is_whitespace());
            if !prefix.is_empty() {
                self.kept.push(prefix);
                self.gap = true;
                return;
            }
        }
        let mut moved = Vec::new();
        while let Some(last) = self.kept.last() {
            if is_separator_line(last) || is_blank(last) {
                moved.push(*last);
                self.kept.pop();
            } else {
                break;
            }
        }
        moved.reverse();
        self.quoted.extend(moved);
        self.gap = true;
    }

    fn quote_rest(&mut self, line: &'a str) {
        self.quoted.push(line);
        self.gap = true;
    }
}

/// Consumes a block of `>` lines starting at `start` (a quote line): quote lines, blank lines and
/// short unquoted lines wedged between two quote lines (a long quoted line that was re-wrapped,
/// or a link that broke the quote markers). Returns the index of the first line after it.
fn consume_region<'a>(lines: &[&'a str], is_quote: &[bool], start: usize, out: &mut Collector<'a>) -> usize {
    let mut i = start;
    while i < lines.len() {
        if is_quote[i] || is_blank(lines[i]) {
            out.quote_rest(lines[i]);
            i += 1;
            continue;
        }
        // Unquoted text: part of the quote only if wedged directly between quote lines.
        let prev_is_quote = i > 0 && is_quote[i - 1];
        let mut j = i;
        while j < lines.len() && j < i + 2 && !is_quote[j] && !is_blank(lines[j]) {
            j += 1;
        }
        if prev_is_quote && j < lines.len() && is_quote[j] {
            for l in &lines[i..j] {
                out.quote_rest(l);
            }
            i = j;
            continue;
        }
        break;
    }
    i
}

// ---------------------------------------------------------------------------------------------
// Line helpers
// ---------------------------------------------------------------------------------------------

fn normalize_newlines(body: &str) -> String {
    if !body.contains('\r') {
        return body.to_string();
    }
    body.replace("\r\n", "\n").replace('\r', "\n")
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

fn is_quote_line(line: &str) -> bool {
    let stripped = line.trim_start_matches([' ', '\t']);
    line.len() - stripped.len() <= 3 && stripped.starts_with('>')
}

fn next_nonblank(lines: &[&str], from: usize) -> Option<usize> {
    (from..lines.len()).find(|&k| !is_blank(lines[k]))
}

/// Whether the message has three or more `>` lines in a row (blank lines allowed between them).
fn has_quote_run(lines: &[&str], is_quote: &[bool]) -> bool {
    let mut run = 0;
    for (l, q) in lines.iter().zip(is_quote) {
        if *q {
            run += 1;
            if run >= 3 {
                return true;
            }
        } else if !is_blank(l) {
            run = 0;
        }
    }
    false
}

/// A line made only of rule characters (`----`, `____`, `====`, `***`, `—`).
fn is_separator_line(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && t.chars().all(|c| matches!(c, '-' | '_' | '=' | '*' | '~' | '—' | '–' | '━' | '─'))
}

fn join_trimmed(lines: &[&str]) -> String {
    lines.join("\n").trim().to_string()
}

fn non_empty(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

fn word_count(s: &str) -> usize {
    s.split_whitespace().count()
}

/// Prose rather than a signature line: a long sentence.
fn is_prose(line: &str) -> bool {
    let t = line.trim();
    let words = word_count(t);
    (words >= 8 && t.ends_with(['.', '!', '?', ':', ';'])) || words >= 12
}

fn has_digit(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit())
}

/// A four-digit year (19xx/20xx) or a time like 9:30 / 18.30 somewhere in `s`.
fn has_date_or_time(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let run = i - start;
            if run == 4 && (b[start] == b'1' && b[start + 1] == b'9' || b[start] == b'2' && b[start + 1] == b'0') {
                return true;
            }
            // 9:30, 18.30 — but not a piece of a dotted number (192.0.2.153, 5.1.1).
            let dotted_before = start > 0 && b[start - 1] == b'.';
            if (1..=2).contains(&run)
                && i + 2 < b.len()
                && (b[i] == b':' || (b[i] == b'.' && !dotted_before))
                && b[i + 1].is_ascii_digit()
                && b[i + 2].is_ascii_digit()
                && !(b[i] == b'.' && b.get(i + 3).is_some_and(|c| c.is_ascii_digit() || *c == b'.'))
            {
                return true;
            }
        } else {
            i += 1;
        }
    }
    false
}

// ---------------------------------------------------------------------------------------------
// Splitters: quote headers, header blocks, separators, forwards
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// "On … wrote:" and friends; removes a following `>` block, or cuts when none follows.
    Attribution,
    /// An Outlook-style "From: / Sent: / To: / Subject:" block; cuts.
    HeaderBlock,
    /// "-----Original Message-----"; cuts.
    Separator,
    /// "---------- Forwarded message ---------"; kept as content.
    Forward,
}

#[derive(Clone, Copy, Debug)]
struct Splitter {
    kind: Kind,
    /// Exclusive end line of the header itself.
    end: usize,
    /// Bytes at the start of the first line that belong to the new text ("reply On … wrote:").
    prefix_len: usize,
}

/// Longest header (in bytes, once its lines are joined) we consider.
const MAX_HEADER_BYTES: usize = 400;

fn detect_splitter(lines: &[&str], i: usize, is_quote: &[bool]) -> Option<Splitter> {
    if is_quote[i] {
        return None;
    }
    let t = lines[i].trim();
    if t.is_empty() {
        return None;
    }
    let one = |kind| Some(Splitter { kind, end: i + 1, prefix_len: 0 });
    if t.len() <= 120 {
        if is_forward_marker(t) {
            return one(Kind::Forward);
        }
        if is_original_separator(t) {
            return one(Kind::Separator);
        }
    }
    if let Some(end) = header_block(lines, i) {
        return Some(Splitter { kind: Kind::HeaderBlock, end, prefix_len: 0 });
    }
    let inline = inline_attribution(lines[i]);
    if let Some(prefix_len) = inline.filter(|&p| p > 0) {
        return Some(Splitter { kind: Kind::Attribution, end: i + 1, prefix_len });
    }
    if let Some(end) = attribution(lines, i, is_quote) {
        return Some(Splitter { kind: Kind::Attribution, end, prefix_len: 0 });
    }
    if let Some(prefix_len) = inline {
        return Some(Splitter { kind: Kind::Attribution, end: i + 1, prefix_len });
    }
    if let Some(prefix_len) = inline_from_block(lines, i) {
        return Some(Splitter { kind: Kind::HeaderBlock, end: i + 1, prefix_len });
    }
    None
}

/// The text between the dashes of "-----Original Message-----", lowercased; None without dashes.
fn dashed_phrase(t: &str) -> Option<String> {
    let inner = t.trim_matches(|c: char| c == '-' || c == '=' || c == '_' || c.is_whitespace());
    if inner.len() == t.len() || inner.is_empty() {
        return None;
    }
    Some(inner.trim_end_matches(':').trim().to_lowercase())
}

const FORWARD_PHRASES: &[&str] = &[
    "forwarded message",
    "begin forwarded message",
    "forwarded by",
    "weitergeleitete nachricht",
    "message transféré",
    "message transfere",
    "mensaje reenviado",
    "messaggio inoltrato",
    "doorgestuurd bericht",
    "videresendt meddelelse",
    "videresendt melding",
    "vidarebefordrat meddelande",
    "przekazana wiadomość",
    "wiadomość przekazana",
    "mensagem encaminhada",
    "пересылаемое сообщение",
    "пересланное сообщение",
    "välitetty viesti",
];

fn is_forward_marker(t: &str) -> bool {
    let (phrase, framed) = match dashed_phrase(t) {
        Some(p) => (p, true),
        None => (t.trim_end_matches(':').trim().to_lowercase(), t.ends_with(':')),
    };
    FORWARD_PHRASES
        .iter()
        .any(|f| phrase.starts_with(f) && phrase.len() <= f.len() + 12 && (framed || phrase.len() == f.len()))
}

const ORIGINAL_PHRASES: &[&str] = &[
    "original message",
    "original message follows",
    "reply message",
    "ursprüngliche nachricht",
    "ursprungliche nachricht",
    "antwort nachricht",
    "originalnachricht",
    "oprindelig besked",
    "oprindelig meddelelse",
    "message d'origine",
    "message d’origine",
    "message original",
    "mensaje original",
    "messaggio originale",
    "oorspronkelijk bericht",
    "origineel bericht",
    "opprinnelig melding",
    "ursprungligt meddelande",
    "alkuperäinen viesti",
    "исходное сообщение",
    "wiadomość oryginalna",
    "oryginalna wiadomość",
    "mensagem original",
    "původní zpráva",
    "eredeti üzenet",
    "orijinal mesaj",
    "原始邮件",
    "原始郵件",
    "元のメッセージ",
];

fn is_original_separator(t: &str) -> bool {
    if !t.starts_with("--") && !t.starts_with("__") {
        return false;
    }
    dashed_phrase(t).is_some_and(|p| ORIGINAL_PHRASES.contains(&p.as_str()))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    From,
    Date,
    To,
    Cc,
    Subject,
}

fn field_kind(name: &str) -> Option<Field> {
    Some(match name {
        "from" | "de" | "von" | "van" | "da" | "fra" | "från" | "od" | "от" | "lähettäjä" | "feladó" | "afzender"
        | "expéditeur" | "remitente" | "mittente" | "frá" | "kimden" | "από" | "差出人" | "发件人" | "寄件者"
        | "보낸 사람" => Field::From,
        "sent"
        | "date"
        | "gesendet"
        | "datum"
        | "envoyé"
        | "envoyé le"
        | "verzonden"
        | "verstuurd"
        | "inviato"
        | "enviado"
        | "enviada"
        | "enviado el"
        | "sendt"
        | "skickat"
        | "wysłano"
        | "wysłane"
        | "отправлено"
        | "дата"
        | "lähetetty"
        | "päivämäärä"
        | "data"
        | "fecha"
        | "dato"
        | "message du"
        | "elküldve"
        | "tarih"
        | "odesláno"
        | "gönderildi"
        | "στάλθηκε"
        | "送信日時"
        | "发送时间"
        | "寄件日期"
        | "보낸 날짜" => Field::Date,
        "to" | "an" | "à" | "a" | "aan" | "para" | "til" | "till" | "do" | "кому" | "vastaanottaja" | "címzett"
        | "kime" | "komu" | "προς" | "宛先" | "收件人" | "받는 사람" => Field::To,
        "cc" | "bcc" | "kopie" | "copie à" | "copie" | "kopia" | "копия" | "kopio" | "reply-to" | "antwort an" => {
            Field::Cc
        }
        "subject" | "betreff" | "objet" | "onderwerp" | "oggetto" | "asunto" | "assunto" | "emne" | "ämne"
        | "temat" | "тема" | "aihe" | "sujet" | "tárgy" | "konu" | "předmět" | "θέμα" | "件名" | "主题" | "主旨"
        | "제목" => Field::Subject,
        _ => return None,
    })
}

/// "From: x" → (From, "x"); tolerates bold (`*From:*`), indentation, "De :" and no-break spaces.
fn parse_field(line: &str) -> Option<(Field, &str)> {
    let s = line.trim().trim_start_matches('*').trim_start();
    let (idx, c) = s.char_indices().take(24).find(|(_, c)| *c == ':' || *c == '：')?;
    let name = s[..idx].trim_matches(|c: char| c.is_whitespace() || c == '*' || c == '\u{200e}').to_lowercase();
    let kind = field_kind(&name)?;
    let rest = s[idx + c.len_utf8()..].trim_start_matches(|c: char| c == '*' || c.is_whitespace());
    Some((kind, rest))
}

/// An Outlook-style header block starting at line `i`; returns its exclusive end.
fn header_block(lines: &[&str], i: usize) -> Option<usize> {
    if lines[i].len() > 300 {
        return None;
    }
    let (first, rest) = parse_field(lines[i])?;
    if first != Field::From && first != Field::Date {
        return None;
    }
    // A memo written in the reply ("To: residents / From: Public Works / …") starts with another
    // field; a client's header block starts with From (or Date/Sent).
    if i > 0 && parse_field(lines[i - 1]).is_some() {
        return None;
    }
    let mut kinds = vec![first];
    let mut has_at = rest.contains('@');
    let mut end = i + 1;
    let mut continuation = false;
    let mut j = i + 1;
    while j < lines.len() && j < i + 12 {
        let l = lines[j];
        if is_blank(l) {
            break;
        }
        if let Some((kind, rest)) = parse_field(l) {
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
            has_at |= rest.contains('@');
            end = j + 1;
            continuation = false;
        } else if !continuation && l.trim().len() <= 100 {
            continuation = true;
            has_at |= l.contains('@');
        } else {
            break;
        }
        j += 1;
    }
    if kinds.len() >= 3 || (kinds.len() == 2 && has_at) {
        return Some(end);
    }
    // A lone "From: Name <address>" line between blank lines.
    let alone_above = i == 0 || is_blank(lines[i - 1]);
    let alone_below = i + 1 >= lines.len() || is_blank(lines[i + 1]);
    if kinds == [Field::From] && rest.contains('@') && alone_above && alone_below {
        return Some(i + 1);
    }
    None
}

/// "Reply text From: a@b.c" followed by Date:/To:/Subject: lines (an HTML reply flattened to text).
fn inline_from_block(lines: &[&str], i: usize) -> Option<usize> {
    let line = lines[i];
    if line.len() > 2000 {
        return None;
    }
    let p = line.find("From:").filter(|&p| p > 0)?;
    // "Reply From: a@b.c Date: Thu, 24 Mar 2016 08:07:12 -0700 Quoted" all on one line.
    let rest = &line[p..];
    if let Some(d) = rest.find(" Date: ").or_else(|| rest.find(" Sent: "))
        && rest[..d].contains('@')
        && has_date_or_time(&rest[d..])
    {
        return Some(p);
    }
    let mut kinds: Vec<Field> = Vec::new();
    for l in lines.iter().skip(i + 1).take(6) {
        match parse_field(l) {
            Some((k, _)) if k != Field::From => {
                if !kinds.contains(&k) {
                    kinds.push(k);
                }
            }
            _ => break,
        }
    }
    if kinds.len() >= 2 { Some(p) } else { None }
}

/// Words that open a date-first quote header in the major clients' languages (lowercase).
const LEAD_WORDS: &[&str] =
    &["on ", "am ", "le ", "el ", "il ", "em ", "w dniu", "dnia ", "den ", "op ", "på ", "in data ", "vào ", "在"];

fn has_lead_word(t: &str) -> bool {
    let t = t.trim_start_matches(|c: char| c == '-' || c == '*' || c.is_whitespace());
    let lower = t[..floor_char_boundary(t, 40)].to_lowercase();
    LEAD_WORDS.iter().any(|w| lower.starts_with(w))
}

/// Verbs that end a quote header; a "strong" one does not need a lead word.
const STRONG_VERBS: &[&str] = &[
    "wrote",
    "schrieb",
    "geschrieben",
    "a écrit",
    "a ecrit",
    "escribió",
    "escribio",
    "escrit",
    "ha scritto",
    "escreveu",
    "schreef",
    "geschreven",
    "napisał",
    "napisała",
    "napisał(a)",
    "napisal",
    "pisze",
    "skrev",
    "kirjoitti",
    "писал",
    "писал(а)",
    "пишет",
    "написал",
    "написала",
    "написал(а)",
    "đã viết",
    "írta",
    "napsal",
    "yazdı",
    "έγραψε",
    "kirjutas",
];
const WEAK_VERBS: &[&str] = &["writes", "sent"];
const CJK_VERBS: &[&str] = &["写道", "寫道", "작성", "のメッセージ", "wrote"];

fn ends_with_word(s: &str, w: &str) -> bool {
    match s.strip_suffix(w) {
        Some(before) => {
            before.is_empty()
                || before.ends_with(|c: char| c.is_whitespace() || matches!(c, '>' | ')' | '"' | ',' | ']'))
        }
        None => false,
    }
}

/// `s` ends with an address in brackets: "… <a@b.c>" or "… (a@b.c)".
fn ends_with_address(s: &str) -> bool {
    if !s.ends_with(['>', ')', ']']) {
        return false;
    }
    match s.rfind(['<', '(', '[']) {
        Some(p) => s[p..].contains('@'),
        None => false,
    }
}

/// Cheap pre-check on the end of a header candidate: a colon, an address, or a verb.
fn could_end_header(h: &str) -> bool {
    let end = h.trim_end_matches(|c: char| c == '-' || c.is_whitespace() || is_bidi_mark(c));
    if end.ends_with([':', '：', '>', ')']) {
        return true;
    }
    let start = floor_char_boundary(end, end.len().saturating_sub(24));
    let tail = end[start..].to_lowercase();
    STRONG_VERBS.iter().chain(WEAK_VERBS).chain(CJK_VERBS).any(|v| tail.ends_with(v))
}

/// Bidirectional-text marks that Gmail wraps around names in right-to-left locales.
fn is_bidi_mark(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whether the joined lines `h` read as a quote header.
fn is_attribution_text(h: &str, lead: bool, quote_follows: bool, multi_line: bool) -> bool {
    if !could_end_header(h) {
        return false;
    }
    let lower: String = h.chars().filter(|&c| !is_bidi_mark(c)).collect::<String>().to_lowercase();
    let framed = lower.starts_with("--");
    let core = lower.trim_start_matches(|c: char| c == '-' || c == '*' || c.is_whitespace());
    let core = core.trim_end_matches(|c: char| c == '-' || c.is_whitespace());
    let colon = core.ends_with([':', '：']);
    let core = core.trim_end_matches([':', '：']).trim_end();
    let strong = STRONG_VERBS.iter().any(|v| ends_with_word(core, v)) || CJK_VERBS.iter().any(|v| core.ends_with(v));
    let weak = WEAK_VERBS.iter().any(|v| ends_with_word(core, v));
    let address = colon && ends_with_address(core);
    // "Am 25.06.2015 um 10:55 schrieb Test user:": the verb before the name.
    let verb_inside = colon && lead && STRONG_VERBS.iter().any(|v| core.contains(&format!(" {v} ")));
    let at = core.contains('@');
    let digit = has_digit(core);
    if lead && (strong || weak || address || verb_inside) && (digit || at) {
        return true;
    }
    if strong && (at || quote_follows || (framed && !multi_line)) {
        return true;
    }
    if address && at && has_date_or_time(core) {
        return true;
    }
    // "2011/4/7 Name <a@b.c>" directly above a quote.
    if quote_follows && at && core.starts_with(|c: char| c.is_ascii_digit()) && core.ends_with('>') {
        return true;
    }
    // Any short "…:" line with an address or a time directly above a quote.
    colon && quote_follows && core.len() <= 200 && (at || has_date_or_time(core))
}

/// A quote header starting at line `i` (possibly wrapped over up to five lines); its exclusive end.
fn attribution(lines: &[&str], i: usize, is_quote: &[bool]) -> Option<usize> {
    let first = lines[i].trim();
    if first.len() > MAX_HEADER_BYTES {
        return None;
    }
    let lead = has_lead_word(first);
    if !lead && !first.contains(char::is_whitespace) {
        return None; // base64, URLs, rules: a header has words
    }
    let first_has_anchor = has_digit(first) || first.contains('@');
    let mut joined = first.to_string();
    let mut last = i;
    let mut blanks = 0;
    for step in 0..5 {
        if step > 0 {
            if first.ends_with(['.', '!', '?']) || (!lead && !first_has_anchor) {
                return None;
            }
            let mut k = last + 1;
            if k < lines.len() && is_blank(lines[k]) {
                if !lead || blanks > 0 {
                    return None;
                }
                blanks += 1;
                k += 1;
            }
            if k >= lines.len() {
                return None;
            }
            let next = lines[k].trim();
            if next.is_empty() || (next.starts_with('>') && next.len() > 20) {
                return None;
            }
            let unquoted = next.trim_start_matches(|c: char| c == '>' || c.is_whitespace());
            if has_lead_word(unquoted) || joined.len() + next.len() + 1 > MAX_HEADER_BYTES {
                return None;
            }
            joined.push(' ');
            joined.push_str(next);
            last = k;
        }
        let quote_follows = next_nonblank(lines, last + 1).is_some_and(|k| is_quote[k]);
        if is_attribution_text(&joined, lead, quote_follows, step > 0) {
            return Some(last + 1);
        }
    }
    None
}

/// "reply On <date>, <name> wrote: quoted…" on one line: returns where the header starts.
fn inline_attribution(line: &str) -> Option<usize> {
    if line.len() > 5000 {
        return None;
    }
    let mut from = 0;
    for _ in 0..8 {
        let p = from + line[from..].find("On ")?;
        from = p + 3;
        let before_ok = p == 0 || line[..p].ends_with(|c: char| c.is_whitespace() || c == '-' || c == '>');
        if !before_ok {
            continue;
        }
        let window_end = floor_char_boundary(line, p + MAX_HEADER_BYTES);
        let sub = &line[p..window_end];
        let Some(w) = sub.find("wrote") else { continue };
        let header = &sub[..w];
        let after = &line[p + w + 5..];
        if !after.starts_with(':') && !after.trim().is_empty() {
            continue;
        }
        if p == 0 && after.trim_start_matches(':').trim().is_empty() {
            continue; // a whole-line header is attribution()'s job
        }
        if has_digit(header) && header.contains('@') {
            return Some(p);
        }
    }
    None
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

// ---------------------------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------------------------

/// Where the signature starts in the kept lines, and where it ends (lines after the end are not
/// new content either: the unquoted original some mobile clients put under their tagline).
fn find_signature(lines: &[&str]) -> Option<(usize, usize)> {
    /// Non-blank lines, counted from the end, in which a signature may start (mobile taglines
    /// excepted: they may be followed by an unquoted copy of the original of any length).
    const WINDOW: usize = 26;
    let first = lines.iter().position(|l| !is_blank(l))?;
    let n = lines.len();
    let window_start = {
        let mut seen = 0;
        let mut start = first;
        for k in (first..n).rev() {
            if !is_blank(lines[k]) {
                seen += 1;
                start = k;
                if seen == WINDOW {
                    break;
                }
            }
        }
        start
    };
    for i in first..n {
        let raw = lines[i];
        let t = raw.trim();
        if t.is_empty() {
            continue;
        }
        if is_mobile_tagline(t) {
            // "Jane\nSent from my iPhone": a name paragraph right above the tagline goes with it.
            let named = i >= first + 2 && is_blank(lines[i - 2]) && is_name_line(lines[i - 1].trim(), 3);
            let start = if named { i - 1 } else { i };
            let tail = lines[i + 1..].iter().map(|l| l.trim()).filter(|l| !l.is_empty());
            let mut count = 0;
            let mut sig_tail = true;
            for l in tail {
                count += 1;
                if count > 6 || !(is_mobile_tagline(l) || (l.len() <= 60 && !is_prose(l))) {
                    sig_tail = false;
                    break;
                }
            }
            if sig_tail {
                return Some((start, n));
            }
            let end = (i + 1..n).find(|&k| !is_blank(lines[k]) && !is_mobile_tagline(lines[k].trim())).unwrap_or(n);
            return Some((start, end));
        }
        if i == first || i < window_start {
            continue;
        }
        let tail: Vec<&str> = lines[i + 1..].iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect();
        let short_tail = |max_lines: usize, max_len: usize| {
            tail.len() <= max_lines && tail.iter().all(|l| l.chars().count() <= max_len && !is_prose(l))
        };
        if raw.trim_end() == "--" {
            return Some((i, n));
        }
        // A rule, then a short block that names someone or gives contact details.
        if is_signature_rule(t)
            && short_tail(12, 80)
            && tail.iter().any(|l| is_name_line(l, 4) || is_contact_line(l) || l.contains("mailing list"))
        {
            return Some((i, n));
        }
        // A closing, then a few short lines starting with a name or title (not a sentence).
        if let Some(inline_name) = closing_phrase(t) {
            let lines_ok = tail.iter().all(|l| is_url_line(l) || is_signature_like(l));
            let starts_ok = tail.first().is_none_or(|l| word_count(l) <= 4 || is_contact_line(l));
            if (inline_name || !tail.is_empty()) && tail.len() <= 8 && lines_ok && starts_ok {
                return Some((i, n));
            }
        }
        if !raw.starts_with([' ', '\t']) && is_dash_name(t) && short_tail(6, 80) && !is_bullet_context(lines, i) {
            return Some((i, n));
        }
        if is_blank(lines[i - 1]) && is_contact_block(lines, i) {
            return Some((i, n));
        }
    }
    None
}

/// A rule line that may open a signature: dashes, underscores or an em dash.
fn is_signature_rule(t: &str) -> bool {
    (t.len() >= 2 || t.contains('\u{2014}')) && t.chars().all(|c| matches!(c, '-' | '_' | '—' | '–' | '─' | '━'))
}

/// A short line that does not read as a sentence of the message.
fn is_signature_like(l: &str) -> bool {
    l.chars().count() <= 60 && (word_count(l) <= 4 || !l.trim_end().ends_with(['.', '!', '?']))
}

fn is_url_line(l: &str) -> bool {
    let l = l.trim();
    !l.contains(' ') && (l.starts_with("http") || l.starts_with("www.") || l.starts_with('<'))
}

const MOBILE_PREFIXES: &[&str] = &[
    "sent from my ",
    "sent from ",
    "sent with ",
    "sent via ",
    "sent using ",
    "sent wirelessly from ",
    "get outlook for ",
    "envoyé de mon ",
    "envoyé depuis ",
    "envoyé à partir de ",
    "envoyé avec ",
    "envoyé sans fil par ",
    "enviado desde ",
    "enviado do meu ",
    "enviado de mi ",
    "enviado com ",
    "von meinem ",
    "gesendet von ",
    "gesendet mit ",
    "gesendet vom ",
    "verstuurd vanaf ",
    "verzonden vanaf ",
    "verzonden met ",
    "inviato da ",
    "inviato dal ",
    "skickat från ",
    "sendt fra ",
    "lähetetty ",
    "wysłane z ",
    "wysłano z ",
    "отправлено с ",
    "отправлено из ",
];

/// "Sent from my iPhone", "Get Outlook for iOS<https://aka.ms/…>", "Von meinem iPad gesendet" …
fn is_mobile_tagline(t: &str) -> bool {
    if t.len() > 160 {
        return false;
    }
    let lower = t.to_lowercase();
    // Drop a trailing link: "Sent from TypeApp<http://…>", "Sent with Sparrow (http://…)".
    let lower = match lower.find(['<', '(']) {
        Some(p) if p > 0 && (lower[p..].contains("http") || lower[p..].contains("mailto")) => {
            lower[..p].trim_end().to_string()
        }
        _ => lower,
    };
    if lower == "via mobile" || lower == "sent from mobile" {
        return true;
    }
    // "iPhoneから送信", "发自我的iPhone", "iPhone에서 보냄".
    let short = lower.chars().count() <= 30;
    if short && (lower.ends_with("から送信") || lower.starts_with("发自我的") || lower.ends_with("에서 보냄"))
    {
        return true;
    }
    for p in MOBILE_PREFIXES {
        if let Some(rest) = lower.strip_prefix(p) {
            let rest = rest.trim_end_matches(['.', '!']);
            let words = word_count(rest);
            let limit = match *p {
                "sent from my " => 4,
                "sent from " | "sent with " | "sent via " | "sent using " | "lähetetty " => 5,
                _ => 10,
            };
            return words >= 1 && words <= limit && !rest.contains([',', '?', ';', ':']);
        }
    }
    false
}

const CLOSINGS: &[&str] = &[
    "regards",
    "best regards",
    "kind regards",
    "warm regards",
    "warmest regards",
    "with regards",
    "with kind regards",
    "many regards",
    "best wishes",
    "best",
    "all the best",
    "cheers",
    "thanks",
    "thank you",
    "thanks again",
    "thanks in advance",
    "thank you in advance",
    "many thanks",
    "with thanks",
    "thx",
    "ty",
    "sincerely",
    "yours sincerely",
    "sincerely yours",
    "yours truly",
    "yours",
    "respectfully",
    "cordially",
    "take care",
    "cordialement",
    "bien cordialement",
    "bien à vous",
    "salutations",
    "mit freundlichen grüßen",
    "mit freundlichen grüssen",
    "freundliche grüße",
    "freundliche grüsse",
    "viele grüße",
    "viele grüsse",
    "beste grüße",
    "liebe grüße",
    "gruß",
    "grüße",
    "saludos",
    "un saludo",
    "atentamente",
    "saluti",
    "cordiali saluti",
    "distinti saluti",
    "met vriendelijke groet",
    "met vriendelijke groeten",
    "vriendelijke groet",
    "groeten",
    "groet",
    "pozdrawiam",
    "z poważaniem",
    "atenciosamente",
    "cumprimentos",
    "med venlig hilsen",
    "venlig hilsen",
    "med vennlig hilsen",
    "vennlig hilsen",
    "med vänliga hälsningar",
    "vänliga hälsningar",
    "hälsningar",
    "mvh",
    "ystävällisin terveisin",
    "terveisin",
    "с уважением",
];

/// A closing line ("Regards,", "Thanks!", "Best regards, Ann"); `Some(true)` when a name follows
/// on the same line.
fn closing_phrase(t: &str) -> Option<bool> {
    if t.len() > 60 {
        return None;
    }
    let lower = t.to_lowercase();
    let core = lower.trim_end_matches(|c: char| !c.is_alphanumeric()).trim_end();
    if CLOSINGS.contains(&core) {
        return Some(false);
    }
    let (head, name) = t.split_once(',')?;
    if !CLOSINGS.contains(&head.trim().to_lowercase().as_str()) {
        return None;
    }
    if is_name_line(name.trim(), 3) { Some(true) } else { None }
}

/// One to `max_words` capitalised words ("Jane Doe", "J. R. Smith", "O'Brien").
fn is_name_line(t: &str, max_words: usize) -> bool {
    let t = t.trim_end_matches(['.', ',']);
    let words: Vec<&str> = t.split_whitespace().collect();
    if words.is_empty() || words.len() > max_words || t.chars().count() > 40 {
        return false;
    }
    words.iter().all(|w| {
        let mut chars = w.chars();
        chars.next().is_some_and(|c| c.is_uppercase())
            && w.chars().all(|c| c.is_alphabetic() || matches!(c, '.' | '\'' | '-' | '’'))
    })
}

/// "-Abhishek Kona", "- roman", "-Lev." (not "--", not a bullet list).
fn is_dash_name(t: &str) -> bool {
    let Some(rest) = t.strip_prefix('-') else { return false };
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    if rest.chars().count() > 30 || !rest.starts_with(|c: char| c.is_alphabetic()) {
        return false;
    }
    let words = word_count(rest);
    (1..=3).contains(&words)
        && rest.chars().all(|c| c.is_alphabetic() || c.is_whitespace() || matches!(c, '.' | '\'' | '-'))
}

fn is_bullet(t: &str) -> bool {
    let t = t.trim_start();
    t.starts_with(['-', '*', '•', '+'])
        || t.split_once('.')
            .is_some_and(|(n, _)| !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether line `i` sits in a list (the nearest non-blank line above or below is a bullet).
fn is_bullet_context(lines: &[&str], i: usize) -> bool {
    let above = lines[..i].iter().rev().find(|l| !is_blank(l));
    let below = lines[i + 1..].iter().find(|l| !is_blank(l));
    above.is_some_and(|l| is_bullet(l)) || below.is_some_and(|l| is_bullet(l) && !is_separator_line(l))
}

fn is_contact_line(l: &str) -> bool {
    let digits = l.bytes().filter(|b| b.is_ascii_digit()).count();
    l.contains('@') || l.contains("http") || l.contains("www.") || digits >= 7
}

/// A trailing paragraph "Jane Doe / Public Works / 555-123-4567": a name, then short lines with at
/// least one phone number, address or link; the paragraph above must not introduce it with ':'.
fn is_contact_block(lines: &[&str], i: usize) -> bool {
    let end = lines.iter().rposition(|l| !is_blank(l)).map_or(i, |e| e + 1);
    let block: Vec<&str> = lines[i..end.max(i)].iter().map(|l| l.trim()).collect();
    if block.len() < 2 || block.len() > 6 || block.iter().any(|l| l.is_empty()) {
        return false;
    }
    let name = block[0].split(',').next().unwrap_or("");
    let introduced = lines[..i].iter().rev().find(|l| !is_blank(l)).is_some_and(|l| l.trim_end().ends_with(':'));
    is_name_line(name, 4)
        && word_count(name) >= 2
        && !introduced
        && block.iter().all(|l| l.chars().count() <= 60)
        && block[1..].iter().any(|l| is_contact_line(l))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(body: &str) -> ReplyParts {
        split_reply(body)
    }

    #[test]
    fn plain_message_is_all_visible() {
        let p = parts("The streetlight on Elm St is still out.\nPlease send someone.\n");
        assert_eq!(p.visible, "The streetlight on Elm St is still out.\nPlease send someone.");
        assert_eq!(p.signature, None);
        assert_eq!(p.quoted, None);
        assert_eq!(parts(""), ReplyParts::default());
        assert_eq!(new_content("  \r\n "), "");
    }

    #[test]
    fn gmail_on_wrote_with_angle_quotes() {
        let body = "We fixed it this morning.\r\n\r\nOn Mon, Jun 3, 2024 at 9:12 AM Pat Lee <pat@city.example> wrote:\r\n> Is the hydrant fixed?\r\n>\r\n> Pat\r\n";
        let p = parts(body);
        assert_eq!(p.visible, "We fixed it this morning.");
        let q = p.quoted.unwrap_or_default();
        assert!(q.starts_with("On Mon, Jun 3") && q.contains("> Is the hydrant fixed?"), "{q}");
    }

    #[test]
    fn header_wrapped_over_lines_and_no_quote_markers() {
        let body = "Done.\n\nOn Tue, 4 Jun 2024 at 10:00, Public Works <\nworks@city.example> wrote:\n\nOld text without markers.\n";
        assert_eq!(new_content(body), "Done.");
        let body = "Yes.\n\nOn Jun 4, 2024, at 10:00 AM, Sam Roe\n<sam@x.example>\nwrote:\n\n> old\n";
        assert_eq!(new_content(body), "Yes.");
    }

    #[test]
    fn localized_quote_headers() {
        let cases = [
            "Am 04.06.2024 um 10:00 schrieb Max Muster <max@stadt.example>:",
            "Le mar. 4 juin 2024 à 10:00, Jean Dupont <jean@ville.example> a écrit :",
            "Op 4 jun. 2024 om 10:00 heeft Jan Jansen <jan@stad.example> het volgende geschreven:",
            "El mar, 4 jun 2024 a las 10:00, Ana Ruiz (<ana@ciudad.example>) escribió:",
            "Il giorno mar 4 giu 2024 alle ore 10:00 Luca Bianchi <luca@citta.example> ha scritto:",
            "Em ter., 4 de jun. de 2024 às 10:00, João Silva <joao@cidade.example> escreveu:",
            "W dniu 4.06.2024 o 10:00, Jan Kowalski <jan@miasto.example> pisze:",
            "Den 4 juni 2024 kl. 10:00 skrev Sven Svensson <sven@stad.example>:",
            "ti 4. kesäk. 2024 klo 10.00 Matti Meikäläinen <matti@kaupunki.example> kirjoitti:",
            "вт, 4 июн. 2024 г. в 10:00, Иван Петров <ivan@gorod.example>:",
            "Vào 10:00 4 tháng 6, 2024, Nguyễn Văn A <a@thanhpho.example> đã viết:",
            "2024年6月4日(火) 10:00 Taro Yamada <taro@city.example>:",
        ];
        for header in cases {
            let body = format!("New answer.\n\n{header}\n\nOld question.\n");
            let p = parts(&body);
            assert_eq!(p.visible, "New answer.", "header: {header}");
            assert!(p.quoted.unwrap_or_default().contains("Old question."), "header: {header}");
        }
    }

    #[test]
    fn outlook_header_blocks() {
        let en = "Scheduled for Friday.\n\n________________________________\nFrom: Resident <r@home.example>\nSent: Tuesday, June 4, 2024 10:00 AM\nTo: 311 <311@city.example>\nSubject: Pothole\n\nThere is a pothole.\n";
        assert_eq!(new_content(en), "Scheduled for Friday.");
        let de = "Erledigt.\n\nVon: Bürger <b@home.example>\nGesendet: Dienstag, 4. Juni 2024 10:00\nAn: Stadt <s@stadt.example>\nBetreff: Schlagloch\n\nText\n";
        assert_eq!(new_content(de), "Erledigt.");
        let fr = "C'est fait.\n\n   De : Habitant <h@maison.example>\n   Envoyé : mardi 4 juin 2024 10:00\n   À : Mairie <m@ville.example>\n   Objet : Nid-de-poule\n\nTexte\n";
        assert_eq!(new_content(fr), "C'est fait.");
        let bold = "Ok\n\n*From:* Resident [mailto:r@home.example]\n*Sent:* Tuesday, June 4, 2024 10:00 AM\n*To:* 311\n*Subject:* Pothole\n";
        assert_eq!(new_content(bold), "Ok");
    }

    #[test]
    fn original_message_separators() {
        for sep in [
            "-----Original Message-----",
            "----- Original Message -----",
            "-----Ursprüngliche Nachricht-----",
            "-------- Message d'origine --------",
        ] {
            let body = format!("Thanks, noted.\n\n{sep}\nHello city\n");
            assert_eq!(new_content(&body), "Thanks, noted.", "{sep}");
        }
    }

    #[test]
    fn signatures_of_each_kind() {
        let p = parts("The crew is on its way.\n\n-- \nAlex Kim\nStreets Division\n");
        assert_eq!(p.visible, "The crew is on its way.");
        assert_eq!(p.signature.as_deref(), Some("-- \nAlex Kim\nStreets Division"));

        let p = parts("Approved.\n\nSent from my iPhone\n");
        assert_eq!(p.visible, "Approved.");
        assert_eq!(p.signature.as_deref(), Some("Sent from my iPhone"));

        let p = parts("Approved.\n\nGet Outlook for Android<https://aka.ms/x>\n");
        assert_eq!(p.visible, "Approved.");

        let p = parts("We will look into it.\n\nBest regards,\nDana Ortiz\nParks Department\n");
        assert_eq!(p.visible, "We will look into it.");
        assert_eq!(p.signature.as_deref(), Some("Best regards,\nDana Ortiz\nParks Department"));

        let p = parts("Fixed.\n\n-Robin\n");
        assert_eq!(p.visible, "Fixed.");

        let p = parts("The inspection is booked.\n\nJane Roe\nBuilding Inspections\n(555) 010-2233\n");
        assert_eq!(p.visible, "The inspection is booked.");
    }

    #[test]
    fn signature_then_quote() {
        let body = "On it.\n\nThanks,\nLee\n\nOn Jun 4, 2024, at 10:00, Resident <r@home.example> wrote:\n\n> Help\n";
        let p = parts(body);
        assert_eq!(p.visible, "On it.");
        assert_eq!(p.signature.as_deref(), Some("Thanks,\nLee"));
        assert!(p.quoted.is_some());
    }

    #[test]
    fn inline_answers_are_kept() {
        let body = "On Jun 4, 2024, at 10:00 AM, Resident <r@home.example> wrote:\n> Where is the leak?\n\nAt 5th and Main.\n\n> When will it be fixed?\n\nTomorrow.\n";
        assert_eq!(new_content(body), "At 5th and Main.\n\nTomorrow.");
        let bottom = "> Is it open?\n> The park, I mean.\n> Thanks\nYes, it reopened today.\n";
        assert_eq!(new_content(bottom), "Yes, it reopened today.");
    }

    #[test]
    fn body_text_that_only_looks_like_headers_is_kept() {
        let body = "On the whole the repair went well.\nOn Monday we start the second phase.\n\nThe data comes From: our sensors.\nI wrote: see the attached plan.\n\nThe notice was sent from my office, not Sent from my iPhone.\nWith regards to the budget, we are fine.\n";
        let p = parts(body);
        assert_eq!(p.visible, body.trim());
        assert_eq!(p.signature, None);
        assert_eq!(p.quoted, None);
    }

    #[test]
    fn lists_and_rules_are_not_signatures() {
        let body = "Steps:\n\n- call the office\n- Fill form\n\n---\n\nThe rule above separates two sections of this reply, it is not a signature.\n";
        let p = parts(body);
        assert_eq!(p.visible, body.trim());
        assert_eq!(p.signature, None);
        let dashes = "Points:\n-- first item to check\n-- second item to check\n\nThat is all.";
        assert_eq!(new_content(dashes), dashes);
    }

    #[test]
    fn a_stray_angle_line_without_header_is_text() {
        let body = "See the banner:\n>>> NEW HOURS <<<\nOpen daily.";
        assert_eq!(new_content(body), body);
    }

    #[test]
    fn forwarded_messages_stay_visible() {
        let body = "FYI, from the contractor.\n\n---------- Forwarded message ---------\nFrom: Contractor <c@firm.example>\nDate: Tue, Jun 4, 2024 at 10:00 AM\nSubject: Repair\nTo: Works <w@city.example>\n\nThe repair is done.\n";
        let p = parts(body);
        assert!(p.visible.starts_with("FYI, from the contractor."));
        assert!(p.visible.ends_with("The repair is done."));
        assert_eq!(p.quoted, None);
    }

    #[test]
    fn header_sharing_a_line_with_the_reply() {
        assert_eq!(new_content("ok On Wed, Jun 5, 2024 at 3:59 PM, a@b.example wrote:\n> hi\n"), "ok");
        assert_eq!(new_content("Sure--- On Wed, Jun 5, 2024 at 3:59 PM, a@b.example wrote:\n> hi\n"), "Sure");
    }

    #[test]
    fn more_client_families() {
        let cjk = [
            "Pat <pat@city.example> 于2024年6月4日周二 10:00写道：",
            "2024년 6월 4일 (화) 오전 10:00, Pat <pat@city.example>님이 작성:",
            "\u{202b}בתאריך יום ג׳, 4 ביוני 2024 ב-10:00 מאת \u{202a}Pat\u{202c}\u{200f} <\u{202a}pat@city.example\u{202c}\u{200f}>:\u{202c}",
            "wt., 4 cze 2024 o 10:00 Pat <pat@city.example> napisał(a):",
            "Pat <pat@city.example>, 4 Haz 2024 Sal, 10:00 tarihinde şunu yazdı:",
        ];
        for header in cjk {
            let body = format!("Reply text.\n\n{header}\n\n> old\n> older\n");
            assert_eq!(new_content(&body), "Reply text.", "{header}");
        }
        let jp = "了解です。\n\n差出人: Pat <pat@city.example>\n送信日時: 2024年6月4日 10:00\n宛先: 311 <311@city.example>\n件名: 道路\n\n本文\n";
        assert_eq!(new_content(jp), "了解です。");
        let ios = "OK\n\niPhoneから送信\n";
        assert_eq!(split_reply(ios).signature.as_deref(), Some("iPhoneから送信"));
        let android = "Fine.\n\n---- Pat Lee wrote ----\n\n> old\n";
        assert_eq!(new_content(android), "Fine.");
        let thunderbird = "Agreed.\n\nOn 04.06.24 10:00, Pat Lee wrote:\n> old\n";
        assert_eq!(new_content(thunderbird), "Agreed.");
        let yahoo =
            "Yes.\n\nOn Tuesday, June 4, 2024, 10:00:00 AM EDT, Pat Lee <pat@home.example> wrote:\n\nOld text\n";
        assert_eq!(new_content(yahoo), "Yes.");
    }

    #[test]
    fn sentences_after_a_closing_or_a_rule_stay_visible() {
        let body = "Hello,\n\nThanks!\nWe will send a crew tomorrow morning.\n";
        assert_eq!(new_content(body), body.trim());
        let body = "The work order is complete.\n\n=====\nWork order: 12345\nCrew: B\nCompleted: June 4\n";
        assert_eq!(new_content(body), body.trim());
        let body = "Thanks,\nplease tell us if it happens again.\n";
        assert_eq!(new_content(body), body.trim());
    }

    #[test]
    fn memo_in_the_reply_is_not_a_header_block() {
        let body =
            "To: All residents\nFrom: Public Works\nSubject: Water shutoff\nDate: June 4, 2024\n\nWater is off 9-11am.";
        assert_eq!(new_content(body), body);
    }

    #[test]
    fn random_mixtures_never_panic() {
        const TOKENS: &[&str] = &[
            "On ",
            "wrote:",
            "From: ",
            "Sent: ",
            "To: ",
            "Subject: ",
            "> ",
            ">",
            "--",
            "-- ",
            "\n",
            "\r\n",
            "\r",
            " ",
            "a@b.c",
            "<x@y.z>",
            "2024",
            "10:30",
            "Thanks,",
            "Regards",
            "Sent from my iPhone",
            "-----Original Message-----",
            "---------- Forwarded message ---------",
            "é",
            "Ü",
            "İ",
            "日本",
            "写道：",
            "\u{a0}",
            "\u{200e}",
            "—",
            "___",
            "Jane Doe",
            "-Bob",
            "Am ",
            "schrieb",
            "Le ",
            " a écrit :",
            "(",
            ")",
            "[",
            "]",
            "*",
            "<",
            ":",
            "http://x.y",
            "555-123-4567",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..3000 {
            let mut body = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 60) as usize;
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                body.push_str(TOKENS[(seed % TOKENS.len() as u64) as usize]);
            }
            let p = split_reply(&body);
            assert_eq!(p.visible, p.visible.trim());
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        let long_quote = format!("top\n{}\nend", ">".repeat(200_000));
        let inputs = [
            "\r",
            "\n\n\n",
            ">",
            "-- ",
            "--",
            "On",
            "On \u{e9}",
            "From:",
            "From: a@b",
            "é\u{200e}:",
            "\u{0}\u{1}",
            "Ünïcödé On 2024 wrote",
            "x On 2024-01-01 12:00 a@b wrote",
            long_quote.as_str(),
        ];
        for s in inputs {
            let _ = split_reply(s);
        }
        let many_lines = "On 1 Jan 2024 a@b\n".repeat(20_000);
        let _ = split_reply(&many_lines);
    }
}
