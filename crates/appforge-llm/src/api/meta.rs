//! What every response and every error carries: the request id and the rate-limit headers.

use chrono::{DateTime, Utc};
use http::HeaderMap;
use serde::{Deserialize, Serialize};

/// The request id and rate limits of one HTTP response (success or error).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResponseMeta {
    /// The HTTP status.
    pub status: u16,
    /// The `request-id` header, to quote to the provider's support.
    pub request_id: Option<String>,
    /// The parsed `anthropic-ratelimit-*` headers.
    pub rate_limits: RateLimits,
}

impl ResponseMeta {
    /// Reads the request id and the rate limits from response headers.
    pub fn from_headers(status: u16, headers: &HeaderMap) -> Self {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let request_id = text("request-id")
            .or_else(|| text("x-request-id"))
            .map(str::to_owned);
        let limit = |family: &str| RateLimit {
            limit: text(&format!("anthropic-ratelimit-{family}-limit"))
                .and_then(|v| v.trim().parse().ok()),
            remaining: text(&format!("anthropic-ratelimit-{family}-remaining"))
                .and_then(|v| v.trim().parse().ok()),
            reset: text(&format!("anthropic-ratelimit-{family}-reset"))
                .and_then(|v| DateTime::parse_from_rfc3339(v.trim()).ok())
                .map(|t| t.with_timezone(&Utc)),
        };
        Self {
            status,
            request_id,
            rate_limits: RateLimits {
                requests: limit("requests"),
                tokens: limit("tokens"),
                input_tokens: limit("input-tokens"),
                output_tokens: limit("output-tokens"),
            },
        }
    }
}

/// The `anthropic-ratelimit-*` headers of a response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RateLimits {
    /// `anthropic-ratelimit-requests-*`.
    pub requests: RateLimit,
    /// `anthropic-ratelimit-tokens-*`.
    pub tokens: RateLimit,
    /// `anthropic-ratelimit-input-tokens-*`.
    pub input_tokens: RateLimit,
    /// `anthropic-ratelimit-output-tokens-*`.
    pub output_tokens: RateLimit,
}

/// One rate-limit family: its limit, what remains, and when it is fully replenished.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RateLimit {
    /// The limit in the current window.
    pub limit: Option<u64>,
    /// What remains of it.
    pub remaining: Option<u64>,
    /// When it resets.
    pub reset: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_request_id_and_every_rate_limit_family() {
        let mut headers = HeaderMap::new();
        headers.insert("request-id", "req_123".parse().unwrap());
        headers.insert("anthropic-ratelimit-requests-limit", "50".parse().unwrap());
        headers.insert(
            "anthropic-ratelimit-requests-remaining",
            "49".parse().unwrap(),
        );
        headers.insert(
            "anthropic-ratelimit-requests-reset",
            "2026-01-01T00:00:10Z".parse().unwrap(),
        );
        headers.insert(
            "anthropic-ratelimit-output-tokens-remaining",
            "7".parse().unwrap(),
        );
        headers.insert(
            "anthropic-ratelimit-tokens-limit",
            "not a number".parse().unwrap(),
        );
        let meta = ResponseMeta::from_headers(429, &headers);
        assert_eq!(meta.request_id.as_deref(), Some("req_123"));
        assert_eq!(meta.rate_limits.requests.limit, Some(50));
        assert_eq!(meta.rate_limits.requests.remaining, Some(49));
        assert_eq!(
            meta.rate_limits.requests.reset.map(|t| t.to_rfc3339()),
            Some("2026-01-01T00:00:10+00:00".to_owned())
        );
        assert_eq!(meta.rate_limits.output_tokens.remaining, Some(7));
        assert_eq!(meta.rate_limits.tokens.limit, None);
    }
}
