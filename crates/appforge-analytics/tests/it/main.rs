//! Integration tests of appforge-analytics: one behavioural suite run on every store, the
//! recorder, and error reporting.

mod backends;
mod data;
mod recorder;
#[cfg(feature = "sentry")]
mod reporting;
mod suite;
