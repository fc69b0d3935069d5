//! The operations people perform, shared by mail, the command line and (later) the web door.
//!
//! Owns: the city CSV import as a plan and its application ([`city_import`]), the city editing
//! rules ([`cities`]), staff actions on a request with their immediate send ([`staff`]), the
//! review queue ([`review`]), the one view of a request ([`request_view`]), quarantine entries
//! ([`quarantine`]), and the crate's one [`sha256_hex`]. Each operation that changes something
//! takes an [`Actor`], and its effects land in one transaction with the audit or timeline row.
//! Talks to: [`crate::store`], [`crate::registry`], [`crate::intake`] (staff and review actions go
//! through the same code as mail commands), [`crate::outbound`] (send now), [`crate::mailbox`]
//! (quarantine moves).

pub mod cities;
pub mod city_import;
pub mod experts;
pub mod quarantine;
pub mod request_view;
pub mod review;
pub mod staff;

pub use crate::intake::Actor;

pub use crate::text::sha256_hex;

/// The zone [`fmt_ms`] shows times in: `intake.timezone`, set once by the command line when it
/// loads the config (UTC until then).
static DISPLAY_ZONE: std::sync::OnceLock<chrono_tz::Tz> = std::sync::OnceLock::new();

/// Shows times in `zone` from now on (the first call wins).
pub fn set_display_zone(zone: chrono_tz::Tz) {
    let _ = DISPLAY_ZONE.set(zone);
}

/// A Unix-ms timestamp as `YYYY-MM-DD HH:MM:SS ZONE` in the programme's zone (the raw number when
/// out of range).
pub fn fmt_ms(ms: i64) -> String {
    let zone = DISPLAY_ZONE.get().copied().unwrap_or(chrono_tz::UTC);
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.with_timezone(&zone).format("%Y-%m-%d %H:%M:%S %Z").to_string())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha256_of_a_known_input() {
        assert_eq!(super::sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(super::fmt_ms(0), "1970-01-01 00:00:00 UTC");
    }
}
