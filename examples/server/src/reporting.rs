//! Error reports to Sentry when `SENTRY_DSN` is set (through appforge-analytics'
//! `ReportingConfig`, whose scrub keeps prompts, tokens and secrets out of every report).
//! Without a DSN nothing is ever sent.
//!
//! Each request runs on a hub of its own tagged with the request id (and, once the bearer
//! token is verified, the user id); each job runs on one tagged with the job and user ids.
//! Panics reach Sentry through its panic integration; internal errors answered 500 and jobs
//! that fail for good are captured explicitly.

use std::sync::Arc;
use std::time::Duration;

use appforge_analytics::{ReportingConfig, tag_job_id, tag_request_id, tag_user_id};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use sentry::{Hub, SentryFutureExt};
use uuid::Uuid;

use crate::request_id::RequestId;
use crate::state::StartError;

/// The longest error text a job failure report carries.
const MAX_MESSAGE_CHARS: usize = 300;

/// Where error reports go: a Sentry client, or nowhere. Cheap to clone.
#[derive(Clone, Default)]
pub struct Reporting {
    client: Option<Arc<sentry::Client>>,
}

impl std::fmt::Debug for Reporting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporting")
            .field("enabled", &self.is_enabled())
            .finish()
    }
}

impl Reporting {
    /// Reporting as `config` says. The binaries call [`ReportingConfig::init`] first, which
    /// binds a process-wide client (panics anywhere are reported); that client is reused.
    /// Without it (a host or a test that did not initialise globally) a client of its own is
    /// built, used only by this state's requests and jobs.
    ///
    /// # Errors
    ///
    /// [`StartError::Setup`] for a DSN that does not parse.
    pub(crate) fn from_config(config: &ReportingConfig) -> Result<Self, StartError> {
        if !config.is_enabled() {
            return Ok(Self::default());
        }
        if let Some(client) = Hub::main().client().filter(|c| c.is_enabled()) {
            return Ok(Self {
                client: Some(client),
            });
        }
        let options = config
            .client_options()
            .map_err(|e| StartError::setup("error reporting", e))?;
        Ok(Self {
            client: options.map(|o| Arc::new(sentry::Client::from(sentry::apply_defaults(o)))),
        })
    }

    /// Whether reports are sent.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.client.is_some()
    }

    /// A fresh hub on the client, with an empty scope.
    fn hub(&self) -> Option<Arc<Hub>> {
        let client = self.client.as_ref()?;
        Some(Arc::new(Hub::new(Some(Arc::clone(client)), Arc::default())))
    }

    /// A hub tagged with a job and its user, for running the job's handler on.
    pub(crate) fn job_hub(&self, job: Uuid, user: Uuid) -> Option<Arc<Hub>> {
        let hub = self.hub()?;
        Hub::run(Arc::clone(&hub), || {
            tag_job_id(job);
            tag_user_id(user);
        });
        Some(hub)
    }

    /// Reports a job that failed for good: its kind, the error category and the error text
    /// with quoted strings removed (a decoding error may quote the payload, prompt included).
    pub(crate) fn job_failed(&self, job: &appforge_jobs::Job) {
        let Some(hub) = self.job_hub(job.id.into(), job.user_id) else {
            return;
        };
        let error = job.error.as_deref().unwrap_or("no error recorded");
        let category = crate::analytics::error_category(error);
        let message = format!(
            "{} job failed ({category}): {}",
            job.kind,
            without_quotes(error)
        );
        Hub::run(hub, || {
            sentry::configure_scope(|scope| {
                scope.set_tag("job_kind", &job.kind);
                scope.set_tag("error_category", category);
                scope.set_tag("attempt", job.attempt);
            });
            sentry::capture_message(&message, sentry::Level::Error);
        });
    }

    /// Sends queued reports, waiting at most `timeout`; whether everything was sent (true
    /// when reporting is off).
    pub fn flush(&self, timeout: Duration) -> bool {
        self.client
            .as_ref()
            .is_none_or(|client| client.flush(Some(timeout)))
    }
}

/// Tags the current request's reports with the user the bearer token names. Only a request
/// running on a reporting hub is tagged: without a client the thread's own hub (shared by
/// whatever runs next on that thread) is left alone.
pub(crate) fn tag_user(user: Uuid) {
    if Hub::current().client().is_some_and(|c| c.is_enabled()) {
        tag_user_id(user);
    }
}

/// Middleware: runs the request on a hub of its own tagged with the request id, so that a
/// panic or an internal error in it is reported with its tags and nothing of another request.
pub(crate) async fn layer(
    State(reporting): State<Reporting>,
    request: Request,
    next: Next,
) -> Response {
    let Some(hub) = reporting.hub() else {
        return next.run(request).await;
    };
    if let Some(RequestId(id)) = request.extensions().get::<RequestId>() {
        Hub::run(Arc::clone(&hub), || tag_request_id(id));
    }
    next.run(request).bind_hub(hub).await
}

/// `text` with every double-quoted part replaced by `"…"`, at most [`MAX_MESSAGE_CHARS`]
/// characters.
fn without_quotes(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_MESSAGE_CHARS));
    let mut quoted = false;
    for c in text.chars() {
        if c == '"' {
            if !quoted {
                out.push_str("\"…\"");
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out.chars().take(MAX_MESSAGE_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_text_is_left_out_of_job_reports() {
        assert_eq!(
            without_quotes(
                r#"invalid job payload: invalid type: string "my diary", expected a map"#
            ),
            r#"invalid job payload: invalid type: string "…", expected a map"#
        );
        assert_eq!(without_quotes(&"x".repeat(1000)).len(), MAX_MESSAGE_CHARS);
    }

    #[test]
    fn without_a_dsn_reporting_is_off() {
        let config = ReportingConfig::from_lookup("appforge-server@0.1.0", |_| None);
        let reporting = Reporting::from_config(&config).unwrap();
        assert!(!reporting.is_enabled());
        assert!(reporting.job_hub(Uuid::nil(), Uuid::nil()).is_none());
        assert!(reporting.flush(Duration::from_millis(1)));
    }
}
