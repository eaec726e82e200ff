//! The one place that reads the wall clock. Domain code takes `now` as a parameter instead.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in whole seconds.
pub type UnixTime = i64;

/// Wall clock with an adjustable offset, so end-to-end tests can move time forward (and stop it, so that a test
/// about one-second waits does not depend on where a second boundary falls).
#[derive(Debug)]
pub struct Clock {
    offset_seconds: AtomicI64,
    frozen_at: AtomicI64,
}

const NOT_FROZEN: i64 = i64::MIN;

impl Default for Clock {
    fn default() -> Self {
        Self {
            offset_seconds: AtomicI64::new(0),
            frozen_at: AtomicI64::new(NOT_FROZEN),
        }
    }
}

impl Clock {
    /// The system clock, with no offset.
    pub fn system() -> Self {
        Self::default()
    }

    /// Seconds since the Unix epoch, plus any offset a test applied.
    #[allow(clippy::disallowed_methods)] // The one sanctioned read of the wall clock.
    pub fn now(&self) -> UnixTime {
        let frozen = self.frozen_at.load(Ordering::Relaxed);
        let system = if frozen != NOT_FROZEN {
            frozen
        } else {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                .unwrap_or(0)
        };
        system.saturating_add(self.offset_seconds.load(Ordering::Relaxed))
    }

    /// Stops the wall clock where it is; only [`Clock::advance`] moves it from then on (tests).
    pub fn freeze(&self) {
        let now = self.now() - self.offset_seconds.load(Ordering::Relaxed);
        self.frozen_at.store(now, Ordering::Relaxed);
    }

    /// Moves this clock forward (tests only need forward).
    pub fn advance(&self, seconds: i64) {
        self.offset_seconds.fetch_add(seconds, Ordering::Relaxed);
    }
}

/// Formats Unix seconds as RFC 3339 (UTC) for API responses.
pub fn rfc3339(at: UnixTime) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_now_forward() {
        let clock = Clock::system();
        let before = clock.now();
        clock.advance(600);
        assert!(clock.now() >= before + 600);
    }

    #[test]
    fn a_frozen_clock_moves_only_when_advanced() {
        let clock = Clock::system();
        clock.advance(5);
        clock.freeze();
        let frozen = clock.now();
        std::thread::sleep(std::time::Duration::from_millis(1_100));
        assert_eq!(clock.now(), frozen);
        clock.advance(2);
        assert_eq!(clock.now(), frozen + 2);
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
