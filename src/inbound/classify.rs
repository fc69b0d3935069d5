//! What kind of mail this is, decided from the parsed message alone (pure).
//!
//! Rule 3 of the design: never talk to a robot. Automatic mail (auto-replies, bounces, lists,
//! our own mail) is recorded and never answered.

use super::InboundMail;

/// The kind of an inbound mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classification {
    /// A person writing: a new question (or, later, a follow-up).
    Human,
    /// Automatic mail that must never be answered, with the sign that gave it away.
    Automatic(String),
}

/// Classifies `mail`. `own_addresses` are our intake and From addresses; `own_domain` is the
/// domain of our Message-IDs.
pub fn classify(mail: &InboundMail, own_addresses: &[&str], own_domain: &str) -> Classification {
    let a = &mail.automation;
    if a.own_loop {
        return Classification::Automatic("our own loop header (X-Intake311-Loop)".into());
    }
    if own_addresses.iter().any(|o| o.eq_ignore_ascii_case(&mail.from)) {
        return Classification::Automatic(format!("sent from our own address {}", mail.from));
    }
    if !own_domain.is_empty()
        && mail.message_id.to_ascii_lowercase().ends_with(&format!("@{}", own_domain.to_ascii_lowercase()))
        && mail.message_id.starts_with("intake311.")
    {
        return Classification::Automatic("our own Message-ID".into());
    }
    if let Some(v) = &a.auto_submitted {
        let v = v.split(';').next().unwrap_or_default().trim();
        if v != "no" {
            return Classification::Automatic(format!("Auto-Submitted: {v}"));
        }
    }
    if let Some(p) = &a.precedence
        && matches!(p.as_str(), "bulk" | "junk" | "list" | "auto_reply")
    {
        return Classification::Automatic(format!("Precedence: {p}"));
    }
    if a.x_autoreply {
        return Classification::Automatic("X-Autoreply / X-Autorespond / X-Auto-Response-Suppress header".into());
    }
    if a.list_id {
        return Classification::Automatic("mailing-list mail (List-Id / List-Unsubscribe)".into());
    }
    if let Some(rp) = &a.return_path {
        if rp.is_empty() {
            return Classification::Automatic("null return path (<>)".into());
        }
        if is_system_sender(rp) {
            return Classification::Automatic(format!("return path {rp}"));
        }
    }
    if is_system_sender(&mail.from) {
        return Classification::Automatic(format!("sender {}", mail.from));
    }
    if let Some(phrase) = out_of_office(&mail.subject) {
        return Classification::Automatic(format!("out-of-office subject ({phrase})"));
    }
    Classification::Human
}

/// Subject phrases of automatic replies in the common languages (lower-case).
const OUT_OF_OFFICE: [&str; 34] = [
    "out of office",
    "out of the office",
    "automatic reply",
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto response",
    "auto-response",
    "away from the office",
    "on vacation",
    "vacation reply",
    "abwesenheitsnotiz",
    "automatische antwort",
    "abwesend",
    "réponse automatique",
    "reponse automatique",
    "absence du bureau",
    "respuesta automática",
    "respuesta automatica",
    "fuera de la oficina",
    "risposta automatica",
    "fuori ufficio",
    "automatisch antwoord",
    "afwezig",
    "autosvar",
    "frånvaro",
    "fravær",
    "automaattinen vastaus",
    "poza biurem",
    "automatyczna odpowiedź",
    "resposta automática",
    "fora do escritório",
    "автоматический ответ",
    "自動応答",
];

/// The out-of-office phrase a subject starts with (after any reply prefixes), if any.
pub fn out_of_office(subject: &str) -> Option<&'static str> {
    let s = crate::outbound::render::strip_reply_prefixes(subject).to_lowercase();
    OUT_OF_OFFICE.iter().copied().find(|p| s.starts_with(p))
}

fn is_system_sender(addr: &str) -> bool {
    let local = addr.split('@').next().unwrap_or_default().to_ascii_lowercase();
    matches!(local.as_str(), "mailer-daemon" | "postmaster" | "noreply" | "no-reply" | "do-not-reply" | "donotreply")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse;

    fn mail(headers: &str) -> InboundMail {
        let raw = format!(
            "From: Jane <jane@dayton.gov>\r\nSubject: Question\r\nMessage-ID: <m1@dayton.gov>\r\n{headers}\r\nBody\r\n"
        );
        parse(raw.as_bytes()).expect("parses")
    }

    #[test]
    fn a_person_is_human() {
        assert_eq!(classify(&mail(""), &["intake@311.test"], "311.test"), Classification::Human);
        assert_eq!(classify(&mail("Auto-Submitted: no\r\n"), &[], "311.test"), Classification::Human);
        assert_eq!(classify(&mail("Precedence: first-class\r\n"), &[], ""), Classification::Human);
    }

    #[test]
    fn robots_are_recognised() {
        for h in [
            "Auto-Submitted: auto-replied\r\n",
            "Auto-Submitted: auto-generated; type=x\r\n",
            "Precedence: bulk\r\n",
            "Precedence: list\r\n",
            "X-Autoreply: yes\r\n",
            "X-Auto-Response-Suppress: All\r\n",
            "List-Id: <city.lists.example>\r\n",
            "List-Unsubscribe: <mailto:u@x>\r\n",
            "Return-Path: <>\r\n",
            "Return-Path: <MAILER-DAEMON@mx.example>\r\n",
            "X-Intake311-Loop: intake@311.test\r\n",
        ] {
            assert!(matches!(classify(&mail(h), &[], "311.test"), Classification::Automatic(_)), "{h}");
        }
    }

    #[test]
    fn out_of_office_subjects_in_several_languages() {
        for subject in [
            "Out of Office: Water main financing",
            "Automatic reply: [311-2026-0042] Re: Roads",
            "AW: Abwesenheitsnotiz: Frage",
            "Réponse automatique : absent",
            "Respuesta automática: vacaciones",
            "Autosvar: Semester",
            "Automatyczna odpowiedź: urlop",
        ] {
            let m = mail("").clone();
            let m = InboundMail { subject: subject.to_string(), ..m };
            assert!(matches!(classify(&m, &[], ""), Classification::Automatic(_)), "{subject}");
        }
        let m = InboundMail { subject: "Question about out of office hours policy".into(), ..mail("") };
        assert_eq!(classify(&m, &[], ""), Classification::Human, "only a leading phrase counts");
    }

    #[test]
    fn our_own_mail_is_automatic() {
        let m = mail("");
        assert!(matches!(classify(&m, &["jane@dayton.gov"], "x"), Classification::Automatic(_)));
        let raw = b"From: postmaster@x.org\r\nSubject: hi\r\n\r\nbody";
        assert!(matches!(classify(&parse(raw).expect("parses"), &[], ""), Classification::Automatic(_)));
    }
}
