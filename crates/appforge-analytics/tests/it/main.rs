//! Integration tests of appforge-analytics: the exported conformance suite on every store,
//! the recorder, and error reporting.

mod backends;
mod recorder;
#[cfg(feature = "sentry")]
mod reporting;
