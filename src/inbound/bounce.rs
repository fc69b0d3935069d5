//! Bounces and delivery reports (RFC 3464 and the common non-standard shapes).
//! (Placeholder: the detector lands with its corpus measurement.)

/// Hard (permanent, 5.x.x) or soft (temporary, 4.x.x).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceClass {
    Hard,
    Soft,
}

/// What a delivery report says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    /// The failed recipient(s), lower-cased.
    pub recipients: Vec<String>,
    /// Enhanced status code, e.g. `5.1.1`, when one was found.
    pub status: Option<String>,
    pub class: BounceClass,
    /// Message-ID (without brackets) of the message it reports on, from the returned headers.
    pub original_message_id: Option<String>,
    /// A short human-readable reason (the diagnostic code or the first line of the explanation).
    pub reason: String,
}

/// `Some` when `raw` is a bounce or delivery-status report (not a successful-delivery or
/// read notice).
pub fn detect(raw: &[u8]) -> Option<Bounce> {
    let _ = raw;
    None
}
