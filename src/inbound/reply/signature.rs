//! Signature detection at the end of the new content: "-- ", rules, mobile taglines, closings,
//! "-Name" lines and contact blocks. Talks to `lines` for the per-line helpers.

use super::lines::*;

/// Where the signature starts in the kept lines, and where it ends (lines after the end are not
/// new content either: the unquoted original some mobile clients put under their tagline).
pub(super) fn find_signature(lines: &[&str]) -> Option<(usize, usize)> {
    /// Non-blank lines, counted from the end, in which a signature may start (mobile taglines
    /// excepted: they may be followed by an unquoted copy of the original of any length).
    const WINDOW: usize = 26;
    let first = lines.iter().position(|l| !is_blank(l))?;
    let n = lines.len();
    let window_start = {
        let mut seen = 0;
        let mut start = first;
        for k in (first..n).rev() {
            if !is_blank(at(lines, k)) {
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
        let raw = at(lines, i);
        let t = raw.trim();
        if t.is_empty() {
            continue;
        }
        if is_mobile_tagline(t) {
            // "Jane\nSent from my iPhone": a name paragraph right above the tagline goes with it.
            let named = i >= first + 2
                && is_blank(at(lines, i.saturating_sub(2)))
                && is_name_line(at(lines, i.saturating_sub(1)).trim(), 3);
            let start = if named { i.saturating_sub(1) } else { i };
            let tail = span(lines, i + 1, n).iter().map(|l| l.trim()).filter(|l| !l.is_empty());
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
            let end =
                (i + 1..n).find(|&k| !is_blank(at(lines, k)) && !is_mobile_tagline(at(lines, k).trim())).unwrap_or(n);
            return Some((start, end));
        }
        if i == first || i < window_start {
            continue;
        }
        let tail: Vec<&str> = span(lines, i + 1, n).iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect();
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
        if is_blank(at(lines, i.saturating_sub(1))) && is_contact_block(lines, i) {
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
        Some(p) if p > 0 => match lower.split_at_checked(p) {
            Some((text, link)) if link.contains("http") || link.contains("mailto") => text.trim_end().to_string(),
            _ => lower,
        },
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
    let above = span(lines, 0, i).iter().rev().find(|l| !is_blank(l));
    let below = span(lines, i + 1, lines.len()).iter().find(|l| !is_blank(l));
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
    let block: Vec<&str> = span(lines, i, end).iter().map(|l| l.trim()).collect();
    if block.len() < 2 || block.len() > 6 || block.iter().any(|l| l.is_empty()) {
        return false;
    }
    let Some((first, rest)) = block.split_first() else { return false };
    let name = first.split(',').next().unwrap_or("");
    let introduced = span(lines, 0, i).iter().rev().find(|l| !is_blank(l)).is_some_and(|l| l.trim_end().ends_with(':'));
    is_name_line(name, 4)
        && word_count(name) >= 2
        && !introduced
        && block.iter().all(|l| l.chars().count() <= 60)
        && rest.iter().any(|l| is_contact_line(l))
}
