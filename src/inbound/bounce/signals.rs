//! Is it a bounce at all without a DSN verdict: the subject patterns, daemon senders and MTA
//! template phrases, searched with one Aho-Corasick automaton per list ([`Phrases`]).
//! Talks to: nothing; pure.

use super::*;
use aho_corasick::AhoCorasick;
use std::sync::OnceLock;

/// A phrase list searched in one pass over the text (Aho-Corasick) instead of one pass per
/// phrase: on ordinary mail, where no phrase occurs, that was most of the cost of detection.
pub(super) struct Phrases {
    pub(super) list: &'static [&'static str],
    /// ASCII case-insensitive, for a pre-filter on text that is not lower-cased.
    pub(super) any_case: bool,
    pub(super) automaton: OnceLock<Option<AhoCorasick>>,
}

impl Phrases {
    pub(super) const fn new(list: &'static [&'static str], any_case: bool) -> Phrases {
        Phrases { list, any_case, automaton: OnceLock::new() }
    }

    /// Whether any phrase occurs in `text`, exactly as `list.iter().any(|p| text.contains(p))`.
    /// (Building cannot fail for these short constant lists; a test builds each. Were it to fail,
    /// the slow search gives the same answer, and a case-insensitive pre-filter says "maybe".)
    pub(super) fn found_in(&self, text: &str) -> bool {
        let automaton = self.automaton.get_or_init(|| {
            aho_corasick::AhoCorasickBuilder::new()
                .ascii_case_insensitive(self.any_case)
                // A full DFA: a few hundred KB for these lists, and the fastest scan.
                .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                .build(self.list)
                .ok()
        });
        match automaton {
            Some(a) => a.is_match(text),
            None => self.any_case || self.list.iter().any(|p| text.contains(p)),
        }
    }
}

pub(super) static TEMPLATE: Phrases = Phrases::new(TEMPLATE_PHRASES, false);
pub(super) static GENERIC: Phrases = Phrases::new(GENERIC_PHRASES, false);
pub(super) static SUCCESS: Phrases = Phrases::new(SUCCESS_PHRASES, false);
pub(super) static DELAY: Phrases = Phrases::new(DELAY_PHRASES, false);
pub(super) static RETURNED: Phrases = Phrases::new(RETURNED_MARKERS, true);
/// [`TEMPLATE_PHRASES`] on text that is not lower-cased, for the ordinary-mail fast path.
pub(super) static TEMPLATE_ANY_CASE: Phrases = Phrases::new(TEMPLATE_PHRASES, true);

// -------------------------------------------------------------------------------------------
// Is it a bounce at all (no DSN verdict)?
// -------------------------------------------------------------------------------------------

pub(super) struct Signals {
    /// The subject is a bounce template ("Undelivered Mail Returned to Sender", ...).
    pub(super) subject: bool,
    /// The subject only talks about delivery ("not delivered", "delivery status").
    pub(super) subject_generic: bool,
    /// The subject forwards or answers something ("Fwd:", "Re:").
    pub(super) subject_reply: bool,
    pub(super) sender: bool,
    /// Wording only MTA templates use.
    pub(super) template: bool,
    /// Failure wording a person could also write.
    pub(super) generic: bool,
    pub(super) codes: bool,
    pub(super) returned: bool,
    pub(super) null_return_path: bool,
    pub(super) failed_recipients: bool,
    pub(super) auto_reply: bool,
    pub(super) delay_words: bool,
    pub(super) success_words: bool,
    pub(super) report_type_dsn: bool,
}

/// Subjects MTAs put on bounces (lower-case, matched anywhere in the subject).
pub(super) const SUBJECT_PATTERNS: &[&str] = &[
    "undelivered mail",
    "undeliverable",
    "returned mail",
    "mail delivery failed",
    "mail delivery failure",
    "delivery status notification",
    "delivery notification: delivery has",
    "failure notice",
    "delivery failure",
    "failure delivery",
    "delivery has failed",
    "message delivery has failed",
    "non-delivery",
    "nondelivery",
    "non delivery",
    "nondeliverable",
    "non-deliverable",
    "mail system error",
    "could not send message for past",
    "could not send mail for past",
    "cannot send message for",
    "see transcript for details",
    "postmaster notify",
    "delayed mail",
    "returning message to sender",
    "returning to sender",
    "mail failure",
    "mail delivery system",
    "mail could not be delivered",
    "message could not be delivered",
    "your message could not be delivered",
    "error sending your mail",
    "delivery status notification: error",
    "delivery status notification: failed",
    "delivery status notification: delayed",
    "delivery status notification: warning",
    "unzustellbar",
    "nicht zustellbar",
    "non remis",
    "non recapitabile",
    "no se puede entregar",
    "не доставлено",
];

/// Subjects that talk about delivery without being templates.
pub(super) const SUBJECT_GENERIC: &[&str] = &[
    "not delivered",
    "not be delivered",
    "delivery status",
    "delivery report",
    "delivery problem",
    "delivery failed",
    "returned message",
    "undelivered",
    "mail failed",
];

/// Wording only MTA bounce templates use (lower-case).
pub(super) const TEMPLATE_PHRASES: &[&str] = &[
    "the following addresses had permanent fatal errors",
    "the following addresses had transient non-fatal errors",
    "the following addresses had permanent delivery errors",
    "the following addresses had delivery errors",
    "this is the mail system at host",
    "this is the postfix program at host",
    "i'm sorry to have to inform you that your message could not",
    "i'm sorry to have to inform you that the message returned",
    "i'm afraid i wasn't able to deliver",
    "this is the qmail-send program",
    "this message was created automatically by mail delivery software",
    "a message that you sent could not be delivered",
    "delivery to the following recipient",
    "delivery has failed to these recipients",
    "did not reach the following recipient",
    "your message did not reach some or all",
    "transcript of session follows",
    "unsent message follows",
    "smtp error from remote mail server",
    "smtp error from remote server",
    "an error occurred while trying to deliver the mail",
    "the original message was received at",
    "remote host said:",
    "below this line is a copy of the message",
    "this is an automatically generated delivery status notification",
    "could not be delivered to one or more",
    "was not delivered to one or more",
    "the following recipients returned permanent errors",
    "permanent error; i've given up",
    "this is a permanent error",
    "the following message to <",
    "message could not be delivered to the following",
    "unable to deliver message to the following",
    "following recipient(s) could not be reached",
    "the following recipient(s) cannot be reached",
    "your message was not delivered to",
    "your message wasn't delivered to",
    "could not be delivered to the following",
    "has been delayed:",
    "delivery is delayed",
    "will continue to try",
    "is delayed for more than",
    "reporting-mta:",
    "final-recipient:",
    "diagnostic-code:",
    "failure reasons",
    "returned message --",
    "we had trouble delivering your message",
    "there was an error delivering your mail",
    "an error has occurred while attempting to deliver",
    "could not be delivered to:",
    "each of the following recipients was rejected",
    "mail delivery subsystem",
    "mail delivery system",
];

/// Failure wording a person might also write (lower-case).
pub(super) const GENERIC_PHRASES: &[&str] = &[
    "user unknown",
    "unknown user",
    "no such user",
    "mailbox unavailable",
    "mailbox is full",
    "mailbox full",
    "over quota",
    "quota exceeded",
    "does not exist",
    "could not be delivered",
    "couldn't be delivered",
    "not be delivered",
    "not delivered",
    "undeliverable",
    "unable to deliver",
    "failed to deliver",
    "could not deliver",
    "delivery failed",
    "delivery failure",
    "permanent error",
    "permanently",
    "rejected",
    "failed",
    "error",
    "配信",
    "届きません",
    "送信できません",
    "宛先",
    "не доставлено",
];

/// Wording of a delay notice (lower-case).
pub(super) const DELAY_PHRASES: &[&str] = &[
    "has been delayed",
    "not yet been delivered",
    "will continue to try",
    "will retry",
    "still trying",
    "still being retried",
    "delivery is delayed",
    "is delayed",
];

/// Wording of successful-delivery notices (lower-case).
pub(super) const SUCCESS_PHRASES: &[&str] = &[
    "delivery to these recipients or groups is complete",
    "your message has been delivered",
    "your message was delivered",
    "was successfully delivered",
    "has been successfully delivered",
    "delivery to the following recipients was successful",
    "delivery to the following recipient succeeded",
    "successfully relayed",
];

impl Signals {
    pub(super) fn read(top: &Top, parts: &Parts, lower_expl: &str) -> Signals {
        let subject_lower = top.subject.as_deref().unwrap_or("").to_lowercase();
        let subj_trim = subject_lower.trim_start();
        let subject_reply =
            ["re:", "re :", "fwd:", "fw:", "fwd ", "aw:", "wg:", "tr:", "sv:", "vs:", "rif:", "antw:", "r:"]
                .iter()
                .any(|p| subj_trim.starts_with(p));
        let subject = SUBJECT_PATTERNS.iter().any(|p| subject_lower.contains(p));
        let subject_generic = SUBJECT_GENERIC.iter().any(|p| subject_lower.contains(p));
        let sender = is_daemon(&top.from_addr, &top.from_name);
        let delay_subject = ["delay", "warning: could not send", "warning--could not send", "still being retried"]
            .iter()
            .any(|p| subject_lower.contains(p));
        let delay_words = delay_subject || DELAY.found_in(lower_expl);
        let success_subject =
            ["delivered:", "relayed:", "(relay)", "(success)", "delivery receipt", "successful delivery"]
                .iter()
                .any(|p| subject_lower.contains(p));
        let success_words = success_subject || SUCCESS.found_in(lower_expl);
        let auto_reply = top.x_autoreply
            || top.auto_submitted.as_deref().is_some_and(|a| a.starts_with("auto-replied"))
            || [
                "auto:",
                "automatic reply",
                "auto reply",
                "autoreply",
                "auto-reply",
                "auto response",
                "autoresponse",
                "out of office",
                "out of the office",
                "vacation",
                "away until",
                "abwesenheit",
                "absence",
                "réponse automatique",
            ]
            .iter()
            .any(|p| subject_lower.contains(p));
        let codes =
            find_enhanced(lower_expl, false).is_some() || lower_expl.lines().take(2000).any(|l| find_smtp(l).is_some());
        Signals {
            subject: subject && !subject_reply,
            subject_generic: subject_generic && !subject_reply,
            subject_reply,
            sender,
            template: TEMPLATE.found_in(lower_expl),
            generic: GENERIC.found_in(lower_expl),
            codes,
            returned: parts.returned,
            null_return_path: top.null_return_path,
            failed_recipients: !top.failed_recipients.is_empty(),
            auto_reply,
            delay_words,
            success_words,
            report_type_dsn: top.report_type.as_deref().is_some_and(|t| t.contains("delivery-status")),
        }
    }

    /// Whether a message without a failing delivery-status record is a bounce.
    pub(super) fn is_bounce(&self, dsn_part: bool) -> bool {
        if self.failed_recipients {
            return true;
        }
        // Vacation and other auto-replies (RFC 3834) from a person's address.
        if self.auto_reply && !self.subject && !self.sender {
            return false;
        }
        // A delivery notice that reports success, with no failure code in it.
        if self.success_words && !self.codes && !self.subject {
            return false;
        }
        if (dsn_part || self.report_type_dsn) && (self.subject || self.subject_generic || self.sender || self.template)
        {
            return true;
        }
        (self.subject
            && (self.sender || self.template || self.generic || self.codes || self.returned || self.null_return_path))
            || (self.sender && (self.template || self.generic || self.codes))
            || (self.template && (self.codes || self.returned || self.null_return_path || self.subject_generic))
    }
}

/// MAILER-DAEMON, postmaster and friends.
pub(super) fn is_daemon(addr: &str, name: &str) -> bool {
    let local = addr.split('@').next().unwrap_or("").to_ascii_lowercase();
    let local = local.trim();
    let name = name.to_ascii_lowercase();
    matches!(
        local,
        "mailer-daemon"
            | "mailer_daemon"
            | "mailerdaemon"
            | "mail-daemon"
            | "maildaemon"
            | "mdaemon"
            | "postmaster"
            | "post_master"
            | "poostmaster"
            | "mail.delivery.system"
            | "mail-delivery-system"
            | "mail-delivery"
            | "mailer"
    ) || name.contains("mailer-daemon")
        || name.contains("mailer daemon")
        || name.contains("mail delivery")
        || name.contains("mail deliver system")
        || name.contains("postmaster")
        || name.contains("mail administrator")
        || (addr.is_empty() && name.trim().eq_ignore_ascii_case("mailer-daemon"))
}
