//! How long to wait before trying a failed registry call again: bounded, jittered
//! exponential backoff that defers to what the server asked for.
//!
//! A pure function of the attempt number, a jitter value the caller draws, and the server's
//! hint (`Retry-After`, or GHCR's `retry-after: 10.5ms` inside an error message), so every
//! case is testable without a clock or a random source.

use std::time::Duration;

/// The retry policy of one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry (before jitter).
    pub base: Duration,
    /// No computed delay is longer than this.
    pub max_delay: Duration,
    /// Longest server-requested wait that is honoured; a longer `Retry-After` means give up.
    pub max_server_delay: Duration,
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_server_delay: Duration::from_secs(60),
            max_attempts: 6,
        }
    }
}

impl Backoff {
    /// The wait before attempt `failed + 1`, after `failed` attempts have failed (1 = the
    /// first failed), or `None` when the attempts are used up or the server asks for a wait
    /// longer than `max_server_delay`.
    ///
    /// `jitter` in `[0, 1]` spreads the computed delay over `[d/2, d]` ("equal jitter"), so
    /// clients that failed together do not retry together. A server hint is honoured as is,
    /// never shortened; a hint shorter than the computed delay still waits the hint (the
    /// server knows best when it will be ready).
    pub fn delay(
        &self,
        failed: u32,
        jitter: f64,
        server_hint: Option<Duration>,
    ) -> Option<Duration> {
        if failed == 0 || failed >= self.max_attempts {
            return None;
        }
        if let Some(hint) = server_hint {
            return (hint <= self.max_server_delay).then_some(hint);
        }
        let exponent = (failed - 1).min(20);
        let full = self
            .base
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let jitter = jitter.clamp(0.0, 1.0);
        Some(full.mul_f64(0.5 + 0.5 * jitter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Backoff {
        Backoff {
            base: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_server_delay: Duration::from_secs(30),
            max_attempts: 6,
        }
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        let p = policy();
        let full: Vec<_> = (1..6).map(|n| p.delay(n, 1.0, None).unwrap()).collect();
        assert_eq!(
            full,
            [100, 200, 400, 800, 1000]
                .map(Duration::from_millis)
                .to_vec()
        );
    }

    #[test]
    fn jitter_spreads_over_the_upper_half() {
        let p = policy();
        assert_eq!(p.delay(3, 0.0, None), Some(Duration::from_millis(200)));
        assert_eq!(p.delay(3, 0.5, None), Some(Duration::from_millis(300)));
        assert_eq!(p.delay(3, 7.0, None), Some(Duration::from_millis(400)));
    }

    #[test]
    fn attempts_are_bounded() {
        let p = policy();
        assert!(p.delay(5, 0.5, None).is_some());
        assert_eq!(p.delay(6, 0.5, None), None);
        assert_eq!(p.delay(0, 0.5, None), None);
        assert_eq!(p.delay(6, 0.5, Some(Duration::from_millis(1))), None);
    }

    #[test]
    fn server_hints_are_honoured_unless_too_long() {
        let p = policy();
        let hint = Some(Duration::from_micros(10_500));
        assert_eq!(p.delay(1, 0.0, hint), hint);
        assert_eq!(
            p.delay(4, 0.0, Some(Duration::from_secs(20))),
            Some(Duration::from_secs(20))
        );
        assert_eq!(p.delay(1, 0.0, Some(Duration::from_secs(31))), None);
    }
}
