use std::time::Duration;

use rand::Rng;

use crate::job::DEFAULT_MAX_ATTEMPTS;

/// When to run a failed attempt again: exponential backoff with full jitter, capped.
///
/// The delay before attempt `n + 1` is drawn uniformly from `0..=min(cap, base * 2^(n-1))`;
/// a handler's `retry_after` (for example from a provider's 429) replaces the draw, still capped.
///
/// Built as `appforge_llm::RetryPolicy` is: start from [`RetryPolicy::default`] (or
/// [`RetryPolicy::never`]) and change what differs with plain-noun setters, which keep the
/// values in range. The two count different things: a job's policy counts the *attempts* of
/// a durable job (the first run included, stored with the job, spent across processes and
/// restarts), the llm policy the *retries* of one HTTP request inside a single attempt.
///
/// ```
/// use appforge_jobs::RetryPolicy;
/// use std::time::Duration;
/// let policy = RetryPolicy::default();
/// assert_eq!(policy.attempts(), 3);
/// assert_eq!(policy.ceiling(1), Duration::from_secs(5));
/// assert_eq!(policy.ceiling(3), Duration::from_secs(20));
/// assert!(policy.delay(2, None) <= Duration::from_secs(10));
///
/// let patient = RetryPolicy::default()
///     .max_attempts(5)
///     .backoff_range(Duration::from_secs(1), Duration::from_secs(60));
/// assert_eq!(patient.attempts(), 5);
/// assert_eq!(patient.ceiling(4), Duration::from_secs(8));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    base: Duration,
    cap: Duration,
}

impl RetryPolicy {
    /// The most attempts a policy gives a job.
    pub const MAX_ATTEMPTS: u32 = 1000;

    /// A policy of one attempt: a failure is final.
    #[must_use]
    pub fn never() -> Self {
        Self::default().max_attempts(1)
    }

    /// Attempts a job gets in total (the first run included), unless its [`NewJob`] says
    /// otherwise; kept within 1 to [`MAX_ATTEMPTS`](Self::MAX_ATTEMPTS).
    ///
    /// [`NewJob`]: crate::NewJob
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.clamp(1, Self::MAX_ATTEMPTS);
        self
    }

    /// The first backoff, and the most any backoff (or a handler's `retry_after`) grows to.
    /// The first is at least a millisecond, the most at least the first.
    #[must_use]
    pub fn backoff_range(mut self, initial: Duration, max: Duration) -> Self {
        self.base = initial.max(Duration::from_millis(1));
        self.cap = max.max(self.base);
        self
    }

    /// Attempts a job gets by default.
    #[must_use]
    pub const fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The largest delay after failed attempt `attempt` (1-based), before jitter.
    #[must_use]
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.base
            .checked_mul(1u32 << doublings)
            .map_or(self.cap, |d| d.min(self.cap))
    }

    /// The delay after failed attempt `attempt`, honouring a handler's `retry_after`.
    #[must_use]
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
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
        let policy = RetryPolicy::default()
            .max_attempts(10)
            .backoff_range(Duration::from_secs(5), Duration::from_secs(60));
        let ceilings: Vec<u64> = (1..=6).map(|n| policy.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, [5, 10, 20, 40, 60, 60]);
        assert_eq!(policy.ceiling(u32::MAX), Duration::from_secs(60));
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
    fn setters_keep_values_in_range() {
        assert_eq!(RetryPolicy::default().max_attempts(0).attempts(), 1);
        assert_eq!(RetryPolicy::default().max_attempts(5000).attempts(), 1000);
        assert_eq!(RetryPolicy::never().attempts(), 1);
        let zero = RetryPolicy::default().backoff_range(Duration::ZERO, Duration::from_secs(2));
        assert_eq!(zero.ceiling(1), Duration::from_millis(1));
        let inverted =
            RetryPolicy::default().backoff_range(Duration::from_secs(3), Duration::from_secs(2));
        assert_eq!(inverted.ceiling(5), Duration::from_secs(3));
    }
}
