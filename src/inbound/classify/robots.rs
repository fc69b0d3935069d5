//! The signs of automatic mail beyond RFC 3834 headers: feedback and DMARC reports, auto-reply
//! subjects in the helpdesks' languages, mailing-list moderation notices, challenge-response
//! verification mails and the receiving server's spam verdict.
//!
//! Talks to: nothing; pure string work on the parsed mail (and, for the verdict headers, on the
//! raw header block), never panics. Each function returns the reason a staff member reads.
//!
//! What we followed: Zammad (`app/models/channel/filter/out_of_office_check.rb`,
//! `auto_response_check.rb`) and FreeScout (`app/Misc/Mail.php`, `isAutoResponder`) for the
//! header signs; FreeScout's source points at the multi_mail wiki "Detecting autoresponders"
//! (jpmckinney/multi_mail), whose list of localised auto-reply subject prefixes (`Auto:`,
//! `Automatic reply`, `Autosvar`, `Automatische Antwort`, `Abwesenheitsnotiz`, `Réponse
//! automatique`, `Respuesta automática`, `Risposta automatica`, `Resposta automática`,
//! `Automatisch antwoord`) is the one below; EGroupware's `is_automail2` matches the subjects
//! `out of the office`, `out of office` and `autoreply`. Unlike those substring matches, a phrase
//! here must stand alone at the start of the subject (followed by `:`, a dash, a bracket or the
//! end), so a person's "Out of office hours permits" or "Auto insurance for the fleet" is not
//! caught; the Lotus Notes prefix is matched in its exact form, upper-case `AUTO:`.

/// Auto-reply subject phrases (lower-case), English first, then de, fr, es, it, pt, nl, sv, da,
/// no, fi, pl, ru, ja.
const AUTO_REPLY_PHRASES: &[&str] = &[
    "automatic reply",
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto response",
    "auto-response",
    "autoresponse",
    "out of office autoreply",
    "out of office",
    "out of the office",
    "vacation reply",
    "abwesenheitsnotiz",
    "automatische antwort",
    "réponse automatique",
    "reponse automatique",
    "absence du bureau",
    "respuesta automática",
    "respuesta automatica",
    "fuera de la oficina",
    "risposta automatica",
    "fuori ufficio",
    "resposta automática",
    "resposta automatica",
    "ausente do escritório",
    "automatisch antwoord",
    "afwezigheidsmelding",
    "autosvar",
    "automatisk svar",
    "frånvaromeddelande",
    "fraværsmelding",
    "automaattinen vastaus",
    "automatyczna odpowiedź",
    "автоматический ответ",
    "自動応答",
    "自动回复",
];

/// The auto-reply phrase a subject starts with, if it stands alone: after the phrase comes the
/// end, `:`, a dash, a bracket or `re:`. Reply prefixes (`Re:`, `AW:` ...) are skipped first.
pub fn auto_reply_subject(subject: &str) -> Option<String> {
    let trimmed = subject.trim();
    // Lotus Notes / Domino: "AUTO: Jane Doe is out of the office (returning 12/08/2026)".
    if trimmed.starts_with("AUTO: ") {
        return Some("Lotus Notes AUTO: subject".to_string());
    }
    let s = crate::text::strip_reply_prefixes(trimmed).to_lowercase();
    AUTO_REPLY_PHRASES.iter().find_map(|p| {
        let rest = s.strip_prefix(p)?.trim_start();
        let alone = rest.is_empty()
            || rest.starts_with([':', '-', '–', '—', '(', '[', '|', '：'])
            || rest.starts_with("re:")
            || rest.starts_with("autoreply")
            || rest.starts_with("auto reply");
        alone.then(|| (*p).to_string())
    })
}

/// A spam tag the receiving server put at the start of the subject: `***SPAM***`, `[SPAM]`,
/// `{Spam?}`, `[Suspected Spam]`, `*** SPAM ***` (SpamAssassin's `rewrite_header Subject`,
/// Rspamd's "rewrite subject", Exchange and gateway appliances). Not after a `Fwd:`: a person
/// forwarding spam to ask about it is a person.
pub fn spam_subject(subject: &str) -> Option<String> {
    let s = subject.trim_start();
    let (open, close) = match s.chars().next()? {
        '*' => ('*', '*'),
        '[' => ('[', ']'),
        '{' => ('{', '}'),
        '(' => ('(', ')'),
        _ => return None,
    };
    let inner = s.trim_start_matches(open);
    let end = inner.find(close)?;
    let tag = inner.get(..end)?.trim().trim_end_matches('?').trim().to_lowercase();
    let spam = matches!(tag.as_str(), "spam" | "suspected spam" | "possible spam" | "probable spam" | "likely spam");
    spam.then(|| format!("spam: the receiving server tagged the subject ({})", one_token(s, 24)))
}

fn one_token(s: &str, max: usize) -> String {
    s.chars().take(max).collect::<String>().trim().to_string()
}

/// The receiving server's spam verdict in the raw header block: `X-Spam-Flag: YES`,
/// `X-Spam-Status: Yes, …` (SpamAssassin), `X-Spam: Yes`, `X-Rspamd-Action` / `X-Spam-Action`
/// of `reject`, `add header` or `rewrite subject` (Rspamd), `X-Barracuda-Spam-Status: Yes`, and
/// Microsoft's `X-Forefront-Antispam-Report` with `SFV:SPM`. Also the ARF report type of the top
/// Content-Type. Only the top-level header block is read (at most 64 KB), so a header quoted in
/// a body never counts.
pub fn header_verdict(raw: &[u8]) -> Option<String> {
    for (name, value) in header_block(raw) {
        let v = value.trim().to_ascii_lowercase();
        let verdict = match name.as_str() {
            "x-spam-flag" | "x-spam" | "x-barracuda-spam-status" => v.starts_with("yes") || v.starts_with("true"),
            "x-spam-status" => v.starts_with("yes"),
            "x-rspamd-action" | "x-spam-action" => {
                matches!(v.as_str(), "reject" | "add header" | "add_header" | "rewrite subject" | "rewrite_subject")
            }
            "x-forefront-antispam-report" => v.split(';').any(|f| f.trim() == "sfv:spm"),
            "content-type" if v.starts_with("multipart/report") && v.contains("feedback-report") => {
                return Some("feedback report (ARF, report-type=feedback-report)".to_string());
            }
            _ => false,
        };
        if verdict {
            let shown: String = value.trim().chars().take(40).collect();
            return Some(format!("spam by the receiving server's verdict ({}: {shown})", header_name(&name)));
        }
    }
    None
}

fn header_name(lower: &str) -> String {
    lower
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The unfolded fields of the top-level header block, names lower-cased.
fn header_block(raw: &[u8]) -> Vec<(String, String)> {
    let head = raw.get(..raw.len().min(64 * 1024)).unwrap_or(raw);
    let text = String::from_utf8_lossy(head);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        match line.split_once(':') {
            Some((n, v)) if !n.is_empty() && !n.contains(' ') => out.push((n.to_ascii_lowercase(), v.to_string())),
            // An mbox "From " line or junk before the headers: skip it.
            _ => {}
        }
    }
    out
}

/// The local part of an address, lower-cased.
fn local_part(addr: &str) -> String {
    addr.rsplit_once('@').map(|(l, _)| l).unwrap_or(addr).to_ascii_lowercase()
}

/// ARF feedback / abuse reports (RFC 5965) and DMARC failure reports (RFC 6591): a
/// `message/feedback-report` part, or its `Feedback-Type:` field in a text part.
pub fn feedback_report(mail: &super::InboundMail) -> Option<String> {
    let part = mail.attachments.iter().find(|a| a.content_type == "message/feedback-report");
    let fields =
        part.map(|a| String::from_utf8_lossy(a.data.get(..a.data.len().min(8192)).unwrap_or(&[])).into_owned());
    let in_text = || mail.text.lines().take(200).find(|l| l.to_ascii_lowercase().starts_with("feedback-type:"));
    let feedback_type = fields
        .as_deref()
        .and_then(|f| f.lines().find(|l| l.to_ascii_lowercase().starts_with("feedback-type:")).map(str::to_string))
        .or_else(|| in_text().map(str::to_string).filter(|_| has_arf_fields(&mail.text)));
    match (part, feedback_type) {
        (_, Some(line)) => {
            let t = line.split_once(':').map(|(_, v)| v.trim().to_ascii_lowercase()).unwrap_or_default();
            Some(match t.as_str() {
                "auth-failure" => "DMARC failure report (ARF, Feedback-Type: auth-failure)".to_string(),
                "" => "feedback report (ARF)".to_string(),
                other => format!("feedback report (ARF, Feedback-Type: {other})"),
            })
        }
        (Some(_), None) => Some("feedback report (ARF, message/feedback-report part)".to_string()),
        (None, None) => None,
    }
}

/// ARF's required fields beside Feedback-Type: `User-Agent:` and `Version:`.
fn has_arf_fields(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.lines().any(|l| l.starts_with("user-agent:")) && lower.lines().any(|l| l.starts_with("version:"))
}

/// DMARC aggregate reports (RFC 7489 §7.2.1.1): subject `Report domain: … Submitter: …
/// Report-ID: …`, a zipped or gzipped XML attachment, a reporter address such as
/// `noreply-dmarc-support@google.com` or `dmarcreport@microsoft.com`. Two of the three signs.
pub fn dmarc_aggregate(mail: &super::InboundMail) -> Option<String> {
    let subject = mail.subject.to_ascii_lowercase();
    let subject_sign =
        subject.contains("report domain:") && (subject.contains("report-id") || subject.contains("submitter:"));
    let attachment_sign = mail.attachments.iter().any(|a| {
        let name = a.filename.to_ascii_lowercase();
        let zipped = [".xml.gz", ".zip", ".xml", ".gz"].iter().any(|e| name.ends_with(e))
            || matches!(a.content_type.as_str(), "application/zip" | "application/gzip" | "application/x-gzip");
        zipped && name.contains('!')
    });
    let sender_sign = local_part(&mail.from).contains("dmarc");
    let signs = [subject_sign, attachment_sign, sender_sign].iter().filter(|s| **s).count();
    (signs >= 2).then(|| "DMARC aggregate report".to_string())
}

/// Feedback-loop and DMARC reporter senders.
pub fn reporter_sender(from: &str) -> Option<String> {
    let local = local_part(from);
    let reporter = local.contains("dmarc")
        || matches!(local.as_str(), "fbl" | "feedbackloop" | "feedback-loop" | "abuse-report" | "arf" | "scomp");
    reporter.then(|| format!("report sender {from}"))
}

/// List-manager wording that alone says "a list robot wrote this" (lower-case).
const LIST_STRONG: &[&str] = &[
    "awaits moderator approval",
    "is being held until the list moderator",
    "held for moderator approval",
    "has been held for moderation",
    "you are not allowed to post to this mailing list",
    "you are not allowed to post to this list",
    "post by non-member to a members-only list",
    "you do not have permission to post to this group",
    "you are not authorized to send mail to the",
    "has been forwarded to editor",
    "is a members-only list",
    "your message to the list has been rejected",
];

/// Wording that counts only from a list-manager sender (lower-case).
const LIST_WEAK: &[&str] =
    &["not a member", "not subscribed", "moderator", "mailing list", "subscri", "the list owner", "members only"];

/// List-manager programs that write from their own name.
const LIST_PROGRAMS: &[&str] = &["listserv", "majordomo", "sympa", "mailman", "listproc", "lyris", "ecartis"];

/// A list-manager sender: `owner-x@`, `x-owner@`, `x-bounces@` (Mailman's, also with a VERP
/// `+…` tail), or a list program. `x-request@` only with list wording, since offices name
/// mailboxes like `records-request@`.
fn list_sender(addr: &str, lower_text: &str) -> bool {
    let local = local_part(addr);
    let base = local.split('+').next().unwrap_or_default();
    base.starts_with("owner-")
        || base.ends_with("-owner")
        || base.ends_with("-bounces")
        || base.ends_with("+owners")
        || local.ends_with("+owners")
        || LIST_PROGRAMS.contains(&base)
        || (base.ends_with("-request") && LIST_WEAK.iter().any(|w| lower_text.contains(w)))
}

/// Mailing-list moderation and "you are not a member" notices.
pub fn list_notice(mail: &super::InboundMail, own_domain: &str) -> Option<String> {
    let head = bounded(&mail.text, 8192);
    let lower = format!("{}\n{}", mail.subject, head).to_lowercase();
    let sender = [Some(mail.from.as_str()), mail.automation.return_path.as_deref()]
        .into_iter()
        .flatten()
        .find(|a| list_sender(a, &lower));
    if let Some(s) = sender {
        return Some(format!("mailing-list manager sender {s}"));
    }
    // The wording alone could be a person's question about their own list; it counts when the
    // mail answers ours (a list holding our acknowledgement writes back about it).
    LIST_STRONG
        .iter()
        .find(|p| lower.contains(*p))
        .filter(|_| answers_us(mail, own_domain))
        .map(|p| format!("mailing-list notice (\"{p}\")"))
}

/// The marks of challenge-response systems (lower-case): BoxTrapper, Spam Arrest and the
/// "release your message" systems. Each counts alone.
const CHALLENGE_SYSTEMS: &[&str] = &[
    "to release your message",
    "your message is being held until you",
    "requires verification verify#",
    "uses spam arrest",
    "spamarrest.com",
    "boxtrapper",
    "sender verification required",
];

/// "Prove you are a person" wording (lower-case). A person may write it too ("how do other
/// cities verify you are human on web forms?"), so it counts only in mail that answers ours: a
/// challenge system holds our acknowledgement and writes back about it.
const CHALLENGE_WORDING: &[&str] = &[
    "verify that you are a real live human",
    "verify you are a human",
    "verify that you are a human",
    "verify you are human",
    "confirm you are a human",
    "confirm that you are a human",
    "confirm you are human",
    "prove you are a human",
    "prove that you are a human",
    "verify that you are a real person",
    "confirm that you are a real person",
];

/// Challenge-response verification mails.
pub fn challenge(mail: &super::InboundMail, own_domain: &str) -> Option<String> {
    let lower = format!("{}\n{}", mail.subject, bounded(&mail.text, 8192)).to_lowercase();
    let found = CHALLENGE_SYSTEMS
        .iter()
        .find(|p| lower.contains(*p))
        .or_else(|| CHALLENGE_WORDING.iter().find(|p| lower.contains(*p)).filter(|_| answers_us(mail, own_domain)));
    found.map(|p| format!("challenge-response verification (\"{p}\")"))
}

/// Whether `mail` answers mail of ours: its In-Reply-To or References name one of our
/// Message-IDs, or its subject or first lines carry a tracking tag (`[311-2026-0042]`).
fn answers_us(mail: &super::InboundMail, own_domain: &str) -> bool {
    let ours = format!("@{}", own_domain.to_ascii_lowercase());
    let refers = !own_domain.is_empty()
        && mail.in_reply_to.iter().chain(&mail.references).any(|id| id.to_ascii_lowercase().ends_with(&ours));
    refers || has_tracking_tag(&mail.subject) || has_tracking_tag(bounded(&mail.text, 4096))
}

/// A `[PREFIX-YYYY-NNNN]` tag anywhere in `s`.
fn has_tracking_tag(s: &str) -> bool {
    s.split('[').skip(1).any(|rest| {
        rest.split(']').next().is_some_and(|inner| inner.trim().parse::<crate::domain::TrackingNumber>().is_ok())
    })
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn bounded(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    s.get(..end).unwrap_or_default()
}
