use std::time::Duration;

use rand::Rng;

use crate::job::DEFAULT_MAX_ATTEMPTS;
use crate::{Error, Result};

/// When to run a failed attempt again: exponential backoff with full jitter, capped.
///
/// The delay before attempt `n + 1` is drawn uniformly from `0..=min(cap, base * 2^(n-1))`;
/// a handler's `retry_after` (for example from a provider's 429) replaces the draw, still capped.
///
/// ```
/// use appforge_jobs::RetryPolicy;
/// use std::time::Duration;
/// let policy = RetryPolicy::default();
/// assert_eq!(policy.max_attempts(), 3);
/// assert_eq!(policy.ceiling(1), Duration::from_secs(5));
/// assert_eq!(policy.ceiling(3), Duration::from_secs(20));
/// assert!(policy.delay(2, None) <= Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: i32,
    base: Duration,
    cap: Duration,
}

impl RetryPolicy {
    /// A policy of `max_attempts` attempts, backoff from `base`, capped at `cap`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `max_attempts` is not 1 to 1000, `base` is zero or `cap < base`.
    pub fn new(max_attempts: i32, base: Duration, cap: Duration) -> Result<Self> {
        if !(1..=1000).contains(&max_attempts) {
            return Err(Error::Config(format!(
                "max_attempts must be between 1 and 1000, got {max_attempts}"
            )));
        }
        if base.is_zero() || cap < base {
            return Err(Error::Config(format!(
                "backoff base {base:?} must be positive and at most the cap {cap:?}"
            )));
        }
        Ok(Self {
            max_attempts,
            base,
            cap,
        })
    }

    /// Attempts a job gets by default.
    #[must_use]
    pub const fn max_attempts(&self) -> i32 {
        self.max_attempts
    }

    /// The largest delay after failed attempt `attempt` (1-based), before jitter.
    #[must_use]
    pub fn ceiling(&self, attempt: i32) -> Duration {
        let doublings = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(0)
            .min(32);
        self.base
            .checked_mul(1u32 << doublings.min(31))
            .map_or(self.cap, |d| d.min(self.cap))
    }

    /// The delay after failed attempt `attempt`, honouring a handler's `retry_after`.
    #[must_use]
    pub fn delay(&self, attempt: i32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.cap);
        }
        let ceiling = self.ceiling(attempt);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }
}

impl Default for RetryPolicy {
    /// 3 attempts, backoff from 5 seconds, capped at 10 minutes.
    fn default() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            base: Duration::from_secs(5),
            cap: Duration::from_secs(600),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_then_caps() {
        let policy = RetryPolicy::new(10, Duration::from_secs(5), Duration::from_secs(60)).unwrap();
        let ceilings: Vec<u64> = (1..=6).map(|n| policy.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, [5, 10, 20, 40, 60, 60]);
        assert_eq!(policy.ceiling(i32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn jitter_stays_within_the_ceiling_and_varies() {
        let policy = RetryPolicy::default();
        let draws: Vec<Duration> = (0..200).map(|_| policy.delay(2, None)).collect();
        assert!(draws.iter().all(|d| *d <= Duration::from_secs(10)));
        assert!(draws.iter().any(|d| *d != draws[0]), "full jitter varies");
    }

    #[test]
    fn retry_after_wins_but_is_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(42))),
            Duration::from_secs(42)
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(99_999))),
            Duration::from_secs(600)
        );
    }

    #[test]
    fn rejects_nonsense() {
        assert!(RetryPolicy::new(0, Duration::from_secs(1), Duration::from_secs(2)).is_err());
        assert!(RetryPolicy::new(3, Duration::ZERO, Duration::from_secs(2)).is_err());
        assert!(RetryPolicy::new(3, Duration::from_secs(3), Duration::from_secs(2)).is_err());
    }
}
