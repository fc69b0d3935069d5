//! Sender verification from Authentication-Results (RFC 8601).
//! (Placeholder: the parser lands with its tests.)

/// The verdict on a message's From domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// True when the From domain passed DMARC, or passed SPF or DKIM aligned with it, according
    /// to the topmost header from a trusted authserv-id.
    pub verified: bool,
    /// What decided it, for the request's eligibility reason, e.g. `dmarc=pass (mx.example.org)`.
    pub reason: String,
}

/// `headers`: the raw values of every `Authentication-Results` header, topmost (most recently
/// added) first. Only the topmost header whose authserv-id is in `trusted` is read.
pub fn verify(headers: &[String], trusted: &[String], from_domain: &str) -> Verification {
    let _ = (headers, trusted, from_domain);
    Verification { verified: false, reason: "no trusted Authentication-Results header".into() }
}
