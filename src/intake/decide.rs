//! How a new question is answered: the eligibility and sender-verification decision.
//! [`decide`] is pure: the registry lookup, the verification result and the date are passed in.
//! [`Intake::decide`] gathers those inputs inside the transaction.
//! Talks to: [`crate::registry`], [`crate::store`] (reads only).

use super::Intake;
use crate::config::Verification;
use crate::domain::{Eligibility, EligibilityDecision, RequestStatus};
use crate::inbound::{InboundMail, auth_results};
use crate::registry;
use crate::registry::{Found, names};
use crate::store::StoreTx;

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
}

impl Decision {
    pub(super) fn from_eligibility(eligibility: EligibilityDecision) -> Decision {
        Decision {
            status: eligibility.outcome.initial_status(),
            template: eligibility.outcome.ack_template(),
            eligibility,
            review: String::new(),
            suggested_city: None,
        }
    }
}

impl Intake {
    /// Finds the sender's city — a known contact, then the mail domain (each subject to
    /// `intake.verification`), and as a suggestion for review only, a city and state named in the
    /// signature or subject — and decides how to answer.
    pub async fn decide(&self, tx: &mut StoreTx, mail: &InboundMail) -> anyhow::Result<Decision> {
        let cfg = &self.cfg.intake;
        let today = chrono::Utc::now().date_naive();
        let domain = mail.from_domain();
        let (city, via) = match registry::find_city(tx, &mail.from, domain, cfg.match_subdomains).await? {
            Found::Contact(c) => (c, format!("contact {}", mail.from)),
            Found::Domain(c, matched) if matched == domain => (c, format!("domain {matched}")),
            Found::Domain(c, matched) => (c, format!("domain {domain} (sub-domain of {matched})")),
            Found::Nothing => {
                let cities = tx.list_cities().await?;
                let text = format!("{}\n{}", mail.subject, names::signature_block(&mail.text));
                let named = names::cities_named(&text, &cities);
                let mut d = Decision::from_eligibility(EligibilityDecision {
                    outcome: Eligibility::Unknown,
                    city: None,
                    reason: format!("no known contact or city mail domain for {}", mail.from),
                });
                if let [one] = named.as_slice() {
                    d.review =
                        format!("no contact or domain matched; the signature or subject names {}", one.record.label());
                    d.suggested_city = Some(one.id);
                }
                return Ok(d);
            }
        };
        let mut decided = registry::decide(&city, &via, today);
        // `prefer` with no trusted server configured has nothing to check against.
        if cfg.verification == Verification::Off
            || (cfg.verification == Verification::Prefer && cfg.trusted_authserv_ids.is_empty())
        {
            return Ok(Decision::from_eligibility(decided));
        }
        let v = auth_results::verify(&mail.auth_results, &cfg.trusted_authserv_ids, domain);
        if v.verified {
            decided.reason.push_str(&format!("; sender verified: {}", v.reason));
            return Ok(Decision::from_eligibility(decided));
        }
        let label = city.record.label();
        let review = format!("sender not verified ({}); {via} → {label}", v.reason);
        Ok(match cfg.verification {
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
            },
            _ => {
                decided.reason.push_str(&format!("; sender not verified: {}", v.reason));
                Decision { review, suggested_city: Some(city.id), ..Decision::from_eligibility(decided) }
            }
        })
    }
}
