//! Error reports of generation jobs to Sentry (`appforge-analytics`' [`ReportingConfig`],
//! whose scrub keeps prompts, tokens and secrets out of every report). Without a DSN nothing
//! is ever sent.
//!
//! Each job runs on a hub of its own tagged with the job's and the user's ids
//! ([`Reporting::around_job`]), so that a panic in a handler is reported with them; a job that
//! fails for good is captured with its kind and [error category](super::analytics::error_category),
//! its error text without what it quotes ([`Reporting::job_failed`]).
//!
//! ```
//! use appforge::analytics::ReportingConfig;
//! use appforge::generation::reports::Reporting;
//!
//! let config = ReportingConfig::from_lookup("my-app@1.0.0", |name| std::env::var(name).ok());
//! let reporting = Reporting::from_config(&config)?;
//! // GenerationService::builder(..).around_job(reporting.around_job())
//! //     .on_job_end(move |job| reporting.job_failed(job))
//! # Ok::<_, appforge::analytics::Error>(())
//! ```

use std::sync::Arc;
use std::time::Duration;

use appforge_analytics::{ReportingConfig, tag_job_id, tag_user_id};
use appforge_jobs::{Job, JobStatus, Outcome};
use futures::future::BoxFuture;
use sentry::{Hub, SentryFutureExt};
use uuid::Uuid;

use super::analytics::error_category;

/// The longest error text a job failure report carries.
pub const MAX_MESSAGE_CHARS: usize = 300;

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
    /// Reporting as `config` says. A process that called [`ReportingConfig::init`] first (which
    /// binds a process-wide client, so that panics anywhere are reported) has that client
    /// reused. Without it (a host or a test that did not initialise globally) a client of its
    /// own is built, used only by what runs on this reporting's hubs.
    ///
    /// # Errors
    ///
    /// A DSN that does not parse.
    pub fn from_config(config: &ReportingConfig) -> appforge_analytics::Result<Self> {
        if !config.is_enabled() {
            return Ok(Self::default());
        }
        if let Some(client) = Hub::main().client().filter(|c| c.is_enabled()) {
            return Ok(Self {
                client: Some(client),
            });
        }
        Ok(Self {
            client: config
                .client_options()?
                .map(|o| Arc::new(sentry::Client::from(sentry::apply_defaults(o)))),
        })
    }

    /// Whether reports are sent.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.client.is_some()
    }

    /// A fresh hub on the client, with an empty scope; `None` when reporting is off.
    #[must_use]
    pub fn hub(&self) -> Option<Arc<Hub>> {
        let client = self.client.as_ref()?;
        Some(Arc::new(Hub::new(Some(Arc::clone(client)), Arc::default())))
    }

    /// A hub tagged with a job and its user, for running the job's handler on.
    #[must_use]
    pub fn job_hub(&self, job: Uuid, user: Uuid) -> Option<Arc<Hub>> {
        let hub = self.hub()?;
        Hub::run(Arc::clone(&hub), || {
            tag_job_id(job);
            tag_user_id(user);
        });
        Some(hub)
    }

    /// The hook for [`GenerationServiceBuilder::around_job`](super::GenerationServiceBuilder::around_job):
    /// each job runs on its [`job_hub`](Self::job_hub).
    pub fn around_job(
        &self,
    ) -> impl Fn(&Job, BoxFuture<'static, Outcome>) -> BoxFuture<'static, Outcome> + Send + Sync + 'static
    {
        let reporting = self.clone();
        move |job: &Job, run: BoxFuture<'static, Outcome>| match reporting
            .job_hub(job.id.into(), job.user_id)
        {
            Some(hub) => Box::pin(run.bind_hub(hub)),
            None => run,
        }
    }

    /// Reports a job that failed for good (any other status is left alone): its kind, the
    /// error category and the error text with quoted strings removed (a decoding error may
    /// quote the payload, prompt included).
    pub fn job_failed(&self, job: &Job) {
        if job.status != JobStatus::Failed {
            return;
        }
        let Some(hub) = self.job_hub(job.id.into(), job.user_id) else {
            return;
        };
        let error = job.error.as_deref().unwrap_or("no error recorded");
        let category = error_category(error);
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

/// `text` with every double-quoted part replaced by `"…"`, at most [`MAX_MESSAGE_CHARS`]
/// characters.
#[must_use]
pub fn without_quotes(text: &str) -> String {
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
    use std::time::Duration;

    use appforge_analytics::ReportingConfig;
    use uuid::Uuid;

    use super::{MAX_MESSAGE_CHARS, Reporting, without_quotes};

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
        let config = ReportingConfig::from_lookup("appforge@0.1.0", |_| None);
        let reporting = Reporting::from_config(&config).unwrap();
        assert!(!reporting.is_enabled());
        assert!(reporting.job_hub(Uuid::nil(), Uuid::nil()).is_none());
        assert!(reporting.flush(Duration::from_millis(1)));
    }
}
