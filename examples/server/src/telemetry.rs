//! Structured logs with `tracing`: human-readable by default, JSON lines with
//! `APPFORGE_LOG_FORMAT=json`; the level from `RUST_LOG` (default `info`).
//!
//! The same subscriber carries Sentry's layers: an `error!` event becomes an error report and a
//! `warn!` a breadcrumb of the next one. An `error!` with a `reported` field is left out (the
//! code that logs it captures the error itself, with its source chain), and so is one with a
//! `panic` field (the job pool's log of a handler panic, which the panic integration reports). While no Sentry client
//! is bound (no `SENTRY_DSN`) the layers do nothing; reports pass the reporting configuration's
//! scrub like every other event.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Installs the global subscriber. Calling it twice keeps the first.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(appforge_analytics::tracing_layers());
    let installed = match format {
        LogFormat::Json => registry
            .with(fmt.json().flatten_event(true).with_current_span(true))
            .try_init(),
        LogFormat::Pretty => registry.with(fmt.compact()).try_init(),
    };
    drop(installed);
}
