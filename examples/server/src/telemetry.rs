//! Structured logs with `tracing`: human-readable by default, JSON lines with
//! `APPFORGE_LOG_FORMAT=json`; the level from `RUST_LOG` (default `info`).
//!
//! The same subscriber carries Sentry's layers: an `error!` event becomes an error report and a
//! `warn!` a breadcrumb of the next one. An `error!` with a `reported` field is left out (the
//! code that logs it captures the error itself, with its source chain), and so is one with a
//! `panic` field (the job pool's log of a handler panic, which the panic integration reports). While no Sentry client
//! is bound (no `SENTRY_DSN`) the layers do nothing; reports pass the reporting configuration's
//! scrub like every other event.

use sentry::integrations::tracing::{BreadcrumbLayer, ErrorLayer};
use tracing::{Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Installs the global subscriber. Calling it twice keeps the first.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(sentry_layers());
    let installed = match format {
        LogFormat::Json => registry
            .with(fmt.json().flatten_event(true).with_current_span(true))
            .try_init(),
        LogFormat::Pretty => registry.with(fmt.compact()).try_init(),
    };
    drop(installed);
}

/// Warnings as breadcrumbs, errors (except those marked `reported` or `panic`) as error reports.
fn sentry_layers<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    BreadcrumbLayer::new()
        .with_filter(filter_fn(|m| *m.level() == Level::WARN))
        .and_then(ErrorLayer::new().with_filter(filter_fn(|m| {
            *m.level() == Level::ERROR
                && m.fields().field("reported").is_none()
                && m.fields().field("panic").is_none()
        })))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use sentry::{ClientOptions, Envelope, Hub, Transport};

    use super::*;

    /// Keeps what the client would send.
    #[derive(Default)]
    struct Captured(Mutex<Vec<Envelope>>);

    impl Transport for Captured {
        fn send_envelope(&self, envelope: Envelope) {
            self.0.lock().unwrap().push(envelope);
        }
    }

    #[test]
    fn error_logs_are_reported_with_warnings_as_breadcrumbs() {
        let captured = Arc::new(Captured::default());
        let transport = captured.clone();
        let mut options = ClientOptions::default();
        options.dsn = Some("http://key@127.0.0.1:9/1".parse().unwrap());
        options.transport = Some(Arc::new(move |_: &ClientOptions| {
            transport.clone() as Arc<dyn Transport>
        }));
        let client = sentry::Client::from(options);
        let hub = Arc::new(Hub::new(
            Some(Arc::new(client)),
            Arc::new(sentry::Scope::default()),
        ));
        let subscriber = tracing_subscriber::registry().with(sentry_layers());
        Hub::run(hub, || {
            tracing::subscriber::with_default(subscriber, || {
                tracing::info!("not a breadcrumb");
                tracing::warn!("the provider answered slowly");
                tracing::error!(reported = true, "captured by its own code");
                tracing::error!(panic = "parser bug", "job handler panicked");
                tracing::error!(job = "j-1", "the settlement failed");
            });
        });
        let events: Vec<_> = captured
            .0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| e.event().cloned())
            .collect();
        assert_eq!(events.len(), 1, "{events:#?}");
        let event = &events[0];
        assert_eq!(event.level, sentry::Level::Error);
        let text = format!("{event:?}");
        assert!(text.contains("the settlement failed"), "{text}");
        let crumbs: Vec<_> = event
            .breadcrumbs
            .iter()
            .filter_map(|b| b.message.clone())
            .collect();
        assert_eq!(crumbs, ["the provider answered slowly"]);
    }
}
