//! Splitters: where the quoted history starts. Quote headers ("On … wrote:" and translations),
//! Outlook header blocks, "-----Original Message-----" separators and forward markers, with
//! their phrase lists. Talks to `lines` for the per-line helpers; `mod.rs` acts on the result.

use super::lines::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
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
pub(super) struct Splitter {
    pub(super) kind: Kind,
    /// Exclusive end line of the header itself.
    pub(super) end: usize,
    /// Bytes at the start of the first line that belong to the new text ("reply On … wrote:").
    pub(super) prefix_len: usize,
}

/// Longest header (in bytes, once its lines are joined) we consider.
const MAX_HEADER_BYTES: usize = 400;

pub(super) fn detect_splitter(lines: &[&str], i: usize, is_quote: &[bool]) -> Option<Splitter> {
    if flag(is_quote, i) {
        return None;
    }
    let t = at(lines, i).trim();
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
    let inline = inline_attribution(at(lines, i));
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
    // Gmail's framed marker in the CJK locales.
    "转发的邮件",
    "轉寄的郵件",
    "転送されたメッセージ",
    "전달된 메일",
    // Apple Mail's unframed "Begin forwarded message:" in its translations.
    "anfang der weitergeleiteten nachricht",
    "début du message réexpédié",
    "début du message transféré",
    "inicio del mensaje reenviado",
    "inizio messaggio inoltrato",
    "início da mensagem reencaminhada",
    "início da mensagem encaminhada",
    "begin doorgestuurd bericht",
    "vidarebefordrat mejl",
    "vidarebefordrat brev",
    "videresendt besked",
    "转发邮件",
    "転送メッセージ",
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
    let (name, rest) = s.split_at_checked(idx)?;
    let name = name.trim_matches(|c: char| c.is_whitespace() || c == '*' || c == '\u{200e}').to_lowercase();
    let kind = field_kind(&name)?;
    let rest = rest.strip_prefix(c).unwrap_or(rest);
    let rest = rest.trim_start_matches(|c: char| c == '*' || c.is_whitespace());
    Some((kind, rest))
}

/// An Outlook-style header block starting at line `i`; returns its exclusive end.
fn header_block(lines: &[&str], i: usize) -> Option<usize> {
    let line = at(lines, i);
    if line.len() > 300 {
        return None;
    }
    let (first, rest) = parse_field(line)?;
    if first != Field::From && first != Field::Date {
        return None;
    }
    // A memo written in the reply ("To: residents / From: Public Works / …") starts with another
    // field; a client's header block starts with From (or Date/Sent).
    if i.checked_sub(1).is_some_and(|p| parse_field(at(lines, p)).is_some()) {
        return None;
    }
    let mut kinds = vec![first];
    let mut has_at = rest.contains('@');
    let mut dated = first == Field::Date && has_date_or_time(rest);
    let mut end = i + 1;
    let mut continuation = false;
    let mut j = i + 1;
    while j < lines.len() && j < i + 12 {
        let l = at(lines, j);
        if is_blank(l) {
            break;
        }
        if let Some((kind, rest)) = parse_field(l) {
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
            has_at |= rest.contains('@');
            dated |= kind == Field::Date && has_date_or_time(rest);
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
    // Outlook's pair without addresses, "From: Pat Lee / Sent: Tuesday, June 4, 2024 10:00 AM"
    // (talon's RE_FROM_COLON_OR_DATE_COLON looks for the same two fields). "From: my side all
    // is ready. / Sent: the forms by post" has no date and a sentence, so it stays text.
    if first == Field::From && kinds == [Field::From, Field::Date] && dated && is_sender_value(rest) {
        return Some(end);
    }
    // Under Outlook's rule of underscores, a lone "From: Name" (or "Von: Name") starts the
    // history even without an address.
    if first == Field::From && is_sender_value(rest) && below_underscore_rule(lines, i) {
        return Some(end);
    }
    // A lone "From: Name <address>" line between blank lines.
    let alone_above = i.checked_sub(1).is_none_or(|p| is_blank(at(lines, p)));
    let alone_below = is_blank(at(lines, i + 1));
    if kinds == [Field::From] && rest.contains('@') && alone_above && alone_below {
        return Some(i + 1);
    }
    None
}

/// The value of a From field that names a sender: an address, or a few words that do not end a
/// sentence ("Pat Lee", "Max Muster", "王伟"), not "the mayor's office we heard that…".
fn is_sender_value(v: &str) -> bool {
    let v = v.trim();
    !v.is_empty()
        && (v.contains('@')
            || (word_count(v) <= 5 && v.chars().count() <= 60 && !v.ends_with(['.', '!', '?', ',', ';', ':'])))
}

/// Line `i` comes right below a rule of underscores as Outlook writes it (at least 20 `_`).
fn below_underscore_rule(lines: &[&str], i: usize) -> bool {
    i.checked_sub(1).is_some_and(|p| {
        let t = at(lines, p).trim();
        t.len() >= 20 && t.chars().all(|c| c == '_')
    })
}

/// "Reply text From: a@b.c" followed by Date:/To:/Subject: lines (an HTML reply flattened to text).
fn inline_from_block(lines: &[&str], i: usize) -> Option<usize> {
    let line = at(lines, i);
    if line.len() > 2000 {
        return None;
    }
    let p = line.find("From:").filter(|&p| p > 0)?;
    // "Reply From: a@b.c Date: Thu, 24 Mar 2016 08:07:12 -0700 Quoted" all on one line.
    let rest = tail_from(line, p);
    if let Some(d) = rest.find(" Date: ").or_else(|| rest.find(" Sent: "))
        && let Some((who, when)) = rest.split_at_checked(d)
        && who.contains('@')
        && has_date_or_time(when)
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
    let lower = t.get(..floor_char_boundary(t, 40)).unwrap_or(t).to_lowercase();
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
        Some(p) => tail_from(s, p).contains('@'),
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
    let tail = tail_from(end, start).to_lowercase();
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
    let first = at(lines, i).trim();
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
            if k < lines.len() && is_blank(at(lines, k)) {
                if !lead || blanks > 0 {
                    return None;
                }
                blanks += 1;
                k += 1;
            }
            if k >= lines.len() {
                return None;
            }
            let next = at(lines, k).trim();
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
        let quote_follows = next_nonblank(lines, last + 1).is_some_and(|k| flag(is_quote, k));
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
        let p = from + tail_from(line, from).find("On ")?;
        from = p + 3;
        let (before, rest) = line.split_at_checked(p)?;
        let before_ok = before.is_empty() || before.ends_with(|c: char| c.is_whitespace() || c == '-' || c == '>');
        if !before_ok {
            continue;
        }
        let window = rest.get(..floor_char_boundary(rest, MAX_HEADER_BYTES)).unwrap_or(rest);
        let Some(w) = window.find("wrote") else { continue };
        let header = window.get(..w).unwrap_or_default();
        let after = tail_from(rest, w + "wrote".len());
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
