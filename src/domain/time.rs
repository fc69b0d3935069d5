//! Time as the store records it: Unix milliseconds.
//!
//! Owns: the clock reading every timestamp column uses and the duration conversion that goes
//! with it. Talks to: the system clock only; `store`, `metrics` and the workers use it.

use std::time::Duration;

/// Milliseconds since the Unix epoch, as stored in every timestamp column.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A duration in milliseconds, capped so that `now_ms() + ms_of(d)` cannot overflow.
pub fn ms_of(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_convert_and_cap() {
        assert_eq!(ms_of(Duration::from_secs(3)), 3000);
        assert_eq!(ms_of(Duration::MAX), i64::MAX / 4);
        assert!(now_ms().checked_add(ms_of(Duration::MAX)).is_some());
        assert!(now_ms() > 1_700_000_000_000, "after 2023");
    }
}
