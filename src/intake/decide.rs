//! How a new question is answered: the eligibility and sender-verification decision.
//! [`decide`] is pure: the registry lookup, the verification result and the date are passed in.
//! [`Intake::decide`] gathers those inputs inside the transaction.
//! Talks to: [`crate::registry`], [`crate::store`] (reads only).

use super::Intake;
use chrono::NaiveDate;

use crate::config::{IntakeSection, Verification};
use crate::domain::{Eligibility, EligibilityDecision, RequestStatus};
use crate::inbound::{InboundMail, auth_results};
use crate::registry;
use crate::registry::{Found, names};
use crate::store::{CityRow, StoreTx};

/// How a new question is answered: the eligibility decision, the status and acknowledgement
/// that follow from it, and whether a person must look at it.
#[derive(Debug, Clone)]
pub struct Decision {
    pub eligibility: EligibilityDecision,
    pub status: RequestStatus,
    pub template: &'static str,
    /// Non-empty: the request goes to the review queue with this reason.
    pub review: String,
    pub suggested_city: Option<i64>,
    /// Why no automatic reply may go to the sender, if none may (backscatter: an unknown sender
    /// whose domain passed neither SPF nor DKIM at a trusted server). The request is still made.
    pub no_reply: Option<String>,
    /// The day it was decided on: the arrival date in `intake.timezone`. The request's year,
    /// eligibility and due date are taken from it.
    pub date: NaiveDate,
}

impl Decision {
    pub(super) fn from_eligibility(eligibility: EligibilityDecision, date: NaiveDate) -> Decision {
        Decision {
            no_reply: None,
            date,
            status: eligibility.outcome.initial_status(),
            template: eligibility.outcome.ack_template(),
            eligibility,
            review: String::new(),
            suggested_city: None,
        }
    }
}

/// What [`decide`] needs to know about the sender, gathered beforehand.
#[derive(Debug, Clone)]
pub struct Sender<'a> {
    /// The normalised From address.
    pub email: &'a str,
    /// Its domain.
    pub domain: &'a str,
    /// What the registry found for it: a contact, a mail domain, or nothing.
    pub found: Found,
    /// Registry cities named in the subject or signature (consulted only when nothing was
    /// found; a suggestion for review, never a decision).
    pub named: Vec<CityRow>,
    /// What the trusted receiving server said about the From domain.
    pub verification: auth_results::Verification,
}

/// The eligibility and verification decision, pure: the registry lookup, the verification
/// result and the date are passed in.
///
/// - A contact or mail domain decides the city, on `date`; under `verification = off`, or
///   `prefer` with no trusted server configured, that is the answer.
/// - A verified sender keeps that answer, with the reason.
/// - An unverified sender: `require` acknowledges receipt only (`ack_received`, status `new`) and
///   sends the request to review with the city suggested; `prefer` answers as the city but sends
///   the request to review.
/// - Nothing found: `needs_city` (asks which city), and when exactly one registry city is named
///   in the subject or signature, the request goes to review with that city suggested.
pub fn decide(sender: Sender<'_>, policy: &IntakeSection, date: NaiveDate) -> Decision {
    let (city, via) = match sender.found {
        Found::Contact(c) => (c, format!("contact {}", sender.email)),
        Found::Domain(c, matched) if matched == sender.domain => (c, format!("domain {matched}")),
        Found::Domain(c, matched) => (c, format!("domain {} (sub-domain of {matched})", sender.domain)),
        Found::Nothing => {
            let mut d = Decision::from_eligibility(
                EligibilityDecision {
                    outcome: Eligibility::Unknown,
                    city: None,
                    reason: format!("no known contact or city mail domain for {}", sender.email),
                },
                date,
            );
            if let [one] = sender.named.as_slice() {
                d.review =
                    format!("no contact or domain matched; the signature or subject names {}", one.record.label());
                d.suggested_city = Some(one.id);
            }
            // Mail from a stranger whose domain passed neither SPF nor DKIM is most likely spam
            // with a forged From: answering it would send our mail to whoever was forged.
            if !policy.trusted_authserv_ids.is_empty() && !sender.verification.verified {
                d.no_reply = Some(format!(
                    "unknown sender whose domain passed neither SPF nor DKIM ({}): no automatic reply, to send no backscatter",
                    sender.verification.reason
                ));
            }
            return d;
        }
    };
    let mut decided = registry::decide(&city, &via, date);
    // `prefer` with no trusted server configured has nothing to check against.
    if policy.verification == Verification::Off
        || (policy.verification == Verification::Prefer && policy.trusted_authserv_ids.is_empty())
    {
        return Decision::from_eligibility(decided, date);
    }
    let v = &sender.verification;
    if v.verified {
        decided.reason.push_str(&format!("; sender verified: {}", v.reason));
        return Decision::from_eligibility(decided, date);
    }
    let label = city.record.label();
    let review = format!("sender not verified ({}); {via} → {label}", v.reason);
    match policy.verification {
        Verification::Require => Decision {
            eligibility: EligibilityDecision {
                outcome: Eligibility::Unknown,
                city: None,
                reason: format!("{via} → {label}, but the sender is not verified: {}", v.reason),
            },
            status: RequestStatus::New,
            template: "ack_received",
            review,
            suggested_city: Some(city.id),
            no_reply: None,
            date,
        },
        _ => {
            decided.reason.push_str(&format!("; sender not verified: {}", v.reason));
            Decision { review, suggested_city: Some(city.id), ..Decision::from_eligibility(decided, date) }
        }
    }
}

impl Intake {
    /// Gathers what [`decide`] needs, inside `tx`: the registry's answer for the sender (a known
    /// contact, then the mail domain), the cities named in the subject or signature when that
    /// found nothing, and the verification of the From domain; then decides on `date`.
    pub async fn decide(&self, tx: &mut StoreTx, mail: &InboundMail, date: NaiveDate) -> anyhow::Result<Decision> {
        let cfg = &self.cfg.intake;
        let domain = mail.from_domain();
        let found = tx.find_city(&mail.from, domain, cfg.match_subdomains).await?;
        let named = if matches!(found, Found::Nothing) {
            let text = format!("{}\n{}", mail.subject, names::signature_block(&mail.text));
            names::cities_named(&text, &tx.list_cities().await?)
        } else {
            Vec::new()
        };
        let verification = auth_results::verify(&mail.auth_results, &cfg.trusted_authserv_ids, domain);
        let sender = Sender { email: &mail.from, domain, found, named, verification };
        Ok(decide(sender, cfg, date))
    }
}
