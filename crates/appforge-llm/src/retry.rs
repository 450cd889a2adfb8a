//! The retry policy: which failures to retry, and how long to wait.

use std::time::{Duration, SystemTime};

use http::HeaderMap;

use crate::error::Error;

/// Decides whether a failed attempt is retried, and after how long.
///
/// Defaults: 2 retries; the retryable errors of [`Error::is_retryable`] (408, 409, 429, 5xx,
/// connection errors, first-byte and idle timeouts, mid-stream overloaded errors);
/// exponential backoff from 0.5 s doubling to 8 s, less up to 25 % jitter; a `retry-after-ms`
/// or `retry-after` from the provider replaces the backoff, capped at 60 s.
///
/// ```
/// use appforge_llm::RetryPolicy;
/// use std::time::Duration;
///
/// let policy = RetryPolicy::default().jitter(0.0);
/// assert_eq!(policy.backoff(0), Duration::from_millis(500));
/// assert_eq!(policy.backoff(3), Duration::from_secs(4));
/// assert_eq!(policy.backoff(10), Duration::from_secs(8));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    max_retries: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    jitter: f64,
    max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            jitter: 0.25,
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn never() -> Self {
        Self::default().max_retries(0)
    }

    /// How many times a request is retried after its first attempt.
    #[must_use]
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// The first backoff, and the most any backoff grows to.
    #[must_use]
    pub fn backoff_range(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// The share of a backoff taken off at random, 0.0 (none) to 1.0.
    #[must_use]
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter.clamp(0.0, 1.0);
        self
    }

    /// The longest delay a `retry-after` header may ask for; longer requests are capped to it.
    #[must_use]
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// The configured number of retries.
    pub fn retries(&self) -> u32 {
        self.max_retries
    }

    /// The backoff before retry number `retry + 1` (0-based), jitter applied.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2_u32.saturating_pow(retry.min(20));
        let base = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        if self.jitter == 0.0 {
            return base;
        }
        base.mul_f64(1.0 - self.jitter * fastrand::f64())
    }

    /// Whether to retry after `error` when `retries_done` retries have already been made, and
    /// if so the delay.
    pub fn retry_delay(&self, retries_done: u32, error: &Error) -> Option<Duration> {
        if retries_done >= self.max_retries || !error.is_retryable() {
            return None;
        }
        Some(match error.retry_after() {
            Some(asked) => asked.min(self.max_retry_after),
            None => self.backoff(retries_done),
        })
    }
}

/// The delay a response asks for: `retry-after-ms`, then `retry-after` (seconds or an HTTP
/// date).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = text("retry-after")?;
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The `x-should-retry` verdict, if the response sent one.
pub(crate) fn should_retry(headers: &HeaderMap) -> Option<bool> {
    match headers.get("x-should-retry")?.to_str().ok()?.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn retry_after_ms_wins_over_retry_after() {
        let h = headers(&[("retry-after-ms", "1500"), ("retry-after", "9")]);
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        let h = headers(&[("retry-after", "2.5")]);
        assert_eq!(retry_after(&h), Some(Duration::from_millis(2500)));
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
    }

    #[test]
    fn retry_after_accepts_an_http_date() {
        let at = SystemTime::now() + Duration::from_secs(30);
        let h = headers(&[("retry-after", &httpdate::fmt_http_date(at))]);
        let delay = retry_after(&h).unwrap();
        assert!(
            delay > Duration::from_secs(27) && delay <= Duration::from_secs(30),
            "{delay:?}"
        );
        let past = headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]);
        assert_eq!(retry_after(&past), Some(Duration::ZERO));
    }

    #[test]
    fn should_retry_reads_true_and_false_only() {
        assert_eq!(
            should_retry(&headers(&[("x-should-retry", "true")])),
            Some(true)
        );
        assert_eq!(
            should_retry(&headers(&[("x-should-retry", "false")])),
            Some(false)
        );
        assert_eq!(should_retry(&headers(&[("x-should-retry", "maybe")])), None);
    }

    #[test]
    fn jitter_only_shortens_the_backoff() {
        let policy = RetryPolicy::default();
        for retry in 0..6 {
            let full = RetryPolicy::default().jitter(0.0).backoff(retry);
            let jittered = policy.backoff(retry);
            assert!(
                jittered <= full && jittered >= full.mul_f64(0.75),
                "{jittered:?} vs {full:?}"
            );
        }
    }

    #[test]
    fn stops_after_max_retries_and_caps_retry_after() {
        let policy = RetryPolicy::default()
            .jitter(0.0)
            .max_retry_after(Duration::from_secs(5));
        let timeout = Error::Timeout {
            kind: crate::error::TimeoutKind::Idle,
            after: Duration::from_secs(1),
            meta: None,
        };
        assert_eq!(
            policy.retry_delay(0, &timeout),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            policy.retry_delay(1, &timeout),
            Some(Duration::from_secs(1))
        );
        assert_eq!(policy.retry_delay(2, &timeout), None);
        let mut api = crate::error::ApiError::http(
            crate::api::ErrorBody {
                kind: crate::api::ApiErrorKind::RateLimit,
                message: String::new(),
            },
            crate::api::ResponseMeta {
                status: 429,
                ..Default::default()
            },
        );
        api.retry_after = Some(Duration::from_secs(600));
        assert_eq!(
            policy.retry_delay(0, &api.into()),
            Some(Duration::from_secs(5))
        );
    }
}
