//! The settings of the HTTP edge: connection timers and cap, per-user limits, the metrics
//! endpoint, and the bounds of expensive reads.

use std::net::SocketAddr;
use std::time::Duration;

use appforge_core::SecretString;
use appforge_quota::RequestRates;

use super::{ConfigError, invalid};

/// How the server meets clients: see `docs/security.md` for what each limit protects.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EdgeConfig {
    /// `APPFORGE_HEADER_READ_TIMEOUT_SECS`: the time a client has to send a request's head,
    /// counted from the connection's start or from the first byte of the next request on a
    /// kept-alive connection (default 10; fractions allowed).
    pub header_read_timeout: Duration,
    /// `APPFORGE_KEEP_ALIVE_SECS`: how long a connection may stay idle between requests
    /// (default 75, longer than the usual load balancer's 60).
    pub keep_alive_timeout: Duration,
    /// `APPFORGE_MAX_CONNECTIONS`: open connections per process; further clients wait in the
    /// listen backlog until one closes (default 1024).
    pub max_connections: usize,
    /// `APPFORGE_REQUEST_RATES`: overrides of the plans' request rates (each plan's
    /// `request_limits.requests_per_minute` and `request_burst`), per user and process:
    /// `free=60/30,team=1200` (requests a minute, optionally `/burst`; `*` for plans not in
    /// the catalogue). Checked when the settings are read.
    pub request_rate_overrides: Option<String>,
    /// `APPFORGE_MAX_STREAMS_PER_USER`: event streams (job events, chat, the admin queue
    /// feed) open at once per user and process (default 4).
    pub max_streams_per_user: usize,
    /// `APPFORGE_BILLING_CALLS_PER_MINUTE`: checkout and portal sessions a user may open a
    /// minute, per process (default 6, bursts of half that).
    pub billing_calls_per_minute: u32,
    /// `APPFORGE_METRICS_TOKEN`: the bearer token `GET /metrics` requires. Without it (and
    /// without `APPFORGE_METRICS_ADDR`) the route answers 404.
    pub metrics_token: Option<SecretString>,
    /// `APPFORGE_METRICS_ADDR`: serve `/metrics` on this address only (a private interface),
    /// and not on the API's address.
    pub metrics_addr: Option<SocketAddr>,
    /// `APPFORGE_METRICS_REFRESH_SECS`: how long the queue gauges are reused between
    /// scrapes (default 5; 0 computes them on every scrape).
    pub metrics_refresh: Duration,
    /// `APPFORGE_DIFF_MAX_BYTES`: the most bytes of changed files a version diff compares
    /// (default 4 MiB).
    pub diff_max_bytes: u64,
    /// `APPFORGE_DIFF_TIMEOUT_MS`: the time a version diff's line matching may take before it
    /// settles for a coarser diff (default 2000).
    pub diff_timeout: Duration,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self::from_lookup(&|_| None).expect("the defaults are valid")
    }
}

impl EdgeConfig {
    /// Reads the edge settings through `get` (empty values already dropped).
    pub(super) fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let request_rate_overrides = get("APPFORGE_REQUEST_RATES");
        if let Some(text) = &request_rate_overrides {
            RequestRates::parse(text)
                .map_err(|e| invalid("APPFORGE_REQUEST_RATES", e.to_string()))?;
        }
        let metrics_addr = get("APPFORGE_METRICS_ADDR")
            .map(|raw| {
                raw.parse()
                    .map_err(|e| invalid("APPFORGE_METRICS_ADDR", format!("{raw:?}: {e}")))
            })
            .transpose()?;
        Ok(Self {
            header_read_timeout: seconds(get, "APPFORGE_HEADER_READ_TIMEOUT_SECS", 10.0, false)?,
            keep_alive_timeout: seconds(get, "APPFORGE_KEEP_ALIVE_SECS", 75.0, false)?,
            max_connections: count(get, "APPFORGE_MAX_CONNECTIONS", 1024)?,
            request_rate_overrides,
            max_streams_per_user: count(get, "APPFORGE_MAX_STREAMS_PER_USER", 4)?,
            billing_calls_per_minute: count(get, "APPFORGE_BILLING_CALLS_PER_MINUTE", 6)?,
            metrics_token: get("APPFORGE_METRICS_TOKEN").map(SecretString::from),
            metrics_addr,
            metrics_refresh: seconds(get, "APPFORGE_METRICS_REFRESH_SECS", 5.0, true)?,
            diff_max_bytes: count(get, "APPFORGE_DIFF_MAX_BYTES", 4 * 1024 * 1024)?,
            diff_timeout: Duration::from_millis(count(get, "APPFORGE_DIFF_TIMEOUT_MS", 2000)?),
        })
    }
}

/// A whole number of at least 1.
fn count<T>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + From<u8>,
{
    let Some(raw) = get(name) else {
        return Ok(default);
    };
    match raw.parse::<T>() {
        Ok(n) if n >= T::from(1) => Ok(n),
        _ => Err(invalid(
            name,
            format!("{raw:?} is not a whole number of at least 1"),
        )),
    }
}

/// Seconds, fractions allowed (`0.5`); zero only where `zero_ok`.
fn seconds(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: f64,
    zero_ok: bool,
) -> Result<Duration, ConfigError> {
    let Some(raw) = get(name) else {
        return Ok(Duration::from_secs_f64(default));
    };
    match raw.parse::<f64>().map(Duration::try_from_secs_f64) {
        Ok(Ok(d)) if zero_ok || !d.is_zero() => Ok(d),
        _ => Err(invalid(
            name,
            format!(
                "{raw:?} is not a number of seconds{}",
                if zero_ok { "" } else { " above 0" }
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn edge(vars: &[(&str, &str)]) -> Result<EdgeConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        EdgeConfig::from_lookup(&|name: &str| map.get(name).cloned())
    }

    #[test]
    fn defaults() {
        let edge = EdgeConfig::default();
        assert_eq!(edge.header_read_timeout, Duration::from_secs(10));
        assert_eq!(edge.keep_alive_timeout, Duration::from_secs(75));
        assert_eq!(edge.max_connections, 1024);
        assert_eq!(edge.max_streams_per_user, 4);
        assert_eq!(edge.billing_calls_per_minute, 6);
        assert!(edge.metrics_token.is_none() && edge.metrics_addr.is_none());
        assert_eq!(edge.metrics_refresh, Duration::from_secs(5));
        assert_eq!(edge.diff_timeout, Duration::from_secs(2));
        assert_eq!(edge.request_rate_overrides, None);
    }

    #[test]
    fn values_are_read_and_the_token_is_redacted() {
        let edge = edge(&[
            ("APPFORGE_HEADER_READ_TIMEOUT_SECS", "0.2"),
            ("APPFORGE_MAX_CONNECTIONS", "2"),
            ("APPFORGE_REQUEST_RATES", "free=3/3"),
            ("APPFORGE_METRICS_TOKEN", "scrape-secret-value"),
            ("APPFORGE_METRICS_ADDR", "127.0.0.1:9100"),
            ("APPFORGE_METRICS_REFRESH_SECS", "0"),
        ])
        .unwrap();
        assert_eq!(edge.header_read_timeout, Duration::from_millis(200));
        assert_eq!(edge.max_connections, 2);
        assert_eq!(edge.request_rate_overrides.as_deref(), Some("free=3/3"));
        assert_eq!(edge.metrics_addr.unwrap().port(), 9100);
        assert!(edge.metrics_refresh.is_zero());
        assert!(!format!("{edge:?}").contains("scrape-secret-value"));
    }

    #[test]
    fn bad_values_name_their_setting() {
        for (name, value) in [
            ("APPFORGE_HEADER_READ_TIMEOUT_SECS", "0"),
            ("APPFORGE_KEEP_ALIVE_SECS", "-1"),
            ("APPFORGE_KEEP_ALIVE_SECS", "soon"),
            ("APPFORGE_MAX_CONNECTIONS", "0"),
            ("APPFORGE_MAX_STREAMS_PER_USER", "many"),
            ("APPFORGE_REQUEST_RATES", "free=0"),
            ("APPFORGE_METRICS_ADDR", "localhost"),
            ("APPFORGE_DIFF_MAX_BYTES", "0"),
        ] {
            let err = edge(&[(name, value)]).unwrap_err().to_string();
            assert!(err.contains(name), "{name}={value}: {err}");
        }
    }
}
