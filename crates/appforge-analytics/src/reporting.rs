//! Error reporting to Sentry for hosts: initialisation from `SENTRY_DSN`, a `before_send`
//! scrub that keeps prompts, tokens, authorization headers and secrets out of every report,
//! and helpers to tag the request id, job id and user id.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use appforge_core::{ExposeSecret, SecretString};
use sentry::protocol::{Event, Map, Value};
use uuid::Uuid;

use sentry::integrations::tracing::{BreadcrumbLayer, ErrorLayer};
use tracing::{Level, Subscriber};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::Layer;
use tracing_subscriber::registry::LookupSpan;

use crate::{Error, Result};

const REDACTED: &str = "[redacted]";

/// Where and how to report errors.
#[derive(Clone)]
#[must_use]
pub struct ReportingConfig {
    dsn: Option<SecretString>,
    release: String,
    environment: String,
}

impl fmt::Debug for ReportingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReportingConfig")
            .field("dsn", &self.dsn.as_ref().map(|_| REDACTED))
            .field("release", &self.release)
            .field("environment", &self.environment)
            .finish()
    }
}

impl ReportingConfig {
    /// Reports for `release` (such as `appforge-server@1.2.3`) to `dsn`; `None` disables
    /// reporting. The environment defaults to `production`.
    pub fn new(dsn: Option<SecretString>, release: impl Into<String>) -> Self {
        Self {
            dsn,
            release: release.into(),
            environment: "production".into(),
        }
    }

    /// Reads `SENTRY_DSN` (empty means unset) and `SENTRY_ENVIRONMENT` from the process
    /// environment.
    pub fn from_env(release: impl Into<String>) -> Self {
        Self::from_lookup(release, |name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env) with variables from `lookup`.
    pub fn from_lookup(
        release: impl Into<String>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let dsn = lookup("SENTRY_DSN")
            .filter(|dsn| !dsn.trim().is_empty())
            .map(SecretString::from);
        let mut config = Self::new(dsn, release);
        if let Some(environment) = lookup("SENTRY_ENVIRONMENT").filter(|e| !e.is_empty()) {
            config.environment = environment;
        }
        config
    }

    /// Sets the environment (`production`, `staging`, ...).
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = environment.into();
        self
    }

    /// Whether a DSN is set, so that reports will be sent.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.dsn.is_some()
    }

    /// Sentry client options for this configuration, with the scrub installed and
    /// `send_default_pii` off; `None` without a DSN. For hosts that build their own client.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a DSN that does not parse (the message does not repeat it).
    pub fn client_options(&self) -> Result<Option<sentry::ClientOptions>> {
        let Some(dsn) = &self.dsn else {
            return Ok(None);
        };
        let dsn: sentry::types::Dsn = dsn
            .expose_secret()
            .parse()
            .map_err(|_| Error::Config("SENTRY_DSN is not a valid DSN".into()))?;
        let mut options = sentry::ClientOptions::default();
        options.dsn = Some(dsn);
        options.release = Some(Cow::Owned(self.release.clone()));
        options.environment = Some(Cow::Owned(self.environment.clone()));
        options.send_default_pii = false;
        options.before_send = Some(Arc::new(|event| Some(scrub_event(event))));
        options.before_breadcrumb = Some(Arc::new(|mut crumb| {
            crumb.message = crumb.message.map(|m| scrub_text(&m));
            scrub_map(&mut crumb.data);
            Some(crumb)
        }));
        Ok(Some(options))
    }

    /// Starts reporting for the whole process (panics included). Returns `None`, and sends
    /// nothing ever, without a DSN. Keep the guard alive until exit: dropping it flushes.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a DSN that does not parse.
    pub fn init(&self) -> Result<Option<ReportingGuard>> {
        let Some(options) = self.client_options()? else {
            return Ok(None);
        };
        Ok(Some(ReportingGuard {
            guard: sentry::init(options),
        }))
    }
}

/// Keeps reporting on; dropping it sends what is queued (up to the client's shutdown
/// timeout).
#[must_use = "reporting stops when the guard is dropped"]
pub struct ReportingGuard {
    guard: sentry::ClientInitGuard,
}

impl ReportingGuard {
    /// Sends queued reports, waiting at most `timeout`; whether everything was sent.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.guard.flush(Some(timeout))
    }
}

impl fmt::Debug for ReportingGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReportingGuard")
            .field("enabled", &self.guard.is_enabled())
            .finish()
    }
}

/// Tags reports from the current scope with the request id.
pub fn tag_request_id(request_id: &str) {
    let request_id = scrub_text(request_id);
    sentry::configure_scope(|scope| scope.set_tag("request_id", request_id));
}

/// Tags reports from the current scope with the job id.
pub fn tag_job_id(job_id: Uuid) {
    sentry::configure_scope(|scope| scope.set_tag("job_id", job_id));
}

/// Tags reports from the current scope with the user id (the id only: no email, name or IP).
pub fn tag_user_id(user_id: Uuid) {
    sentry::configure_scope(|scope| {
        scope.set_tag("user_id", user_id);
        scope.set_user(Some(sentry::User {
            id: Some(user_id.to_string()),
            ..sentry::User::default()
        }));
    });
}

/// Whether a field named `key` may hold a prompt, a credential or a secret.
fn is_sensitive_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase().replace('-', "_");
    const PARTS: &[&str] = &[
        "prompt",
        "secret",
        "password",
        "passwd",
        "authorization",
        "cookie",
        "api_key",
        "apikey",
        "private_key",
        "signature",
        "credential",
        "session",
        "bearer",
        "dsn",
        "messages",
        "system",
    ];
    PARTS.iter().any(|part| key.contains(part))
        || key == "token"
        || key == "auth"
        || key == "key"
        || key.ends_with("_token")
        || key.ends_with("_key")
}

/// Whether a word looks like a credential whatever its context.
fn looks_secret(word: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "sk-",
        "sk_",
        "rk_",
        "whsec_",
        "xoxb-",
        "xoxp-",
        "ghp_",
        "gho_",
        "github_pat_",
        "AKIA",
    ];
    let word = word.trim_matches(|c: char| matches!(c, '"' | '\'' | ',' | ';' | '(' | ')'));
    PREFIXES.iter().any(|p| word.starts_with(p) && word.len() > p.len() + 4)
        // A JWT: three base64url parts, the first a JSON header.
        || (word.starts_with("eyJ") && word.matches('.').count() == 2)
}

/// `text` with credentials replaced by `[redacted]`: known key formats, JWTs, the word after
/// `Bearer` / `Basic` / `token` / `Authorization:`, `key=value` pairs with a sensitive key, and
/// passwords in URLs.
#[must_use]
pub fn scrub_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut redact_next = false;
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let bare = word.trim_end_matches(':').to_ascii_lowercase();
        if redact_next && !word.is_empty() {
            out.push_str(REDACTED);
            redact_next = matches!(bare.as_str(), "bearer" | "basic");
            continue;
        }
        if looks_secret(word) {
            out.push_str(REDACTED);
        } else if let Some((key, _)) = word.split_once('=').filter(|(k, _)| is_sensitive_key(k)) {
            out.push_str(key);
            out.push('=');
            out.push_str(REDACTED);
        } else if let Some(url) = scrub_url_password(word) {
            out.push_str(&url);
        } else {
            out.push_str(word);
        }
        redact_next = matches!(
            bare.as_str(),
            "bearer" | "basic" | "token" | "authorization" | "api_key" | "x-api-key" | "password"
        );
    }
    out
}

/// `scheme://user:password@host...` with the password redacted, when `word` is such a URL.
fn scrub_url_password(word: &str) -> Option<String> {
    let (scheme, rest) = word.split_once("://")?;
    let (userinfo, host) = rest.split_once('@')?;
    let (user, _password) = userinfo.split_once(':')?;
    Some(format!("{scheme}://{user}:{REDACTED}@{host}"))
}

fn scrub_value(value: &mut Value) {
    match value {
        Value::String(s) => *s = scrub_text(s),
        Value::Array(items) => items.iter_mut().for_each(scrub_value),
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                if is_sensitive_key(key) {
                    *item = Value::String(REDACTED.into());
                } else {
                    scrub_value(item);
                }
            }
        }
        _ => {}
    }
}

fn scrub_map(map: &mut Map<String, Value>) {
    for (key, value) in map.iter_mut() {
        if is_sensitive_key(key) {
            *value = Value::String(REDACTED.into());
        } else {
            scrub_value(value);
        }
    }
}

/// The `before_send` scrub: request bodies, cookies, query strings and sensitive headers go;
/// extra data, tags, contexts and breadcrumbs lose sensitive fields; messages and exception
/// values lose credentials; the user keeps only an id.
#[must_use]
pub fn scrub_event(mut event: Event<'static>) -> Event<'static> {
    if let Some(request) = &mut event.request {
        request.data = None;
        request.cookies = None;
        request.query_string = None;
        request.env.clear();
        if let Some(url) = &mut request.url {
            url.set_query(None);
            let _ = url.set_password(None);
        }
        request.headers.retain(|name, _| !is_sensitive_key(name));
        for value in request.headers.values_mut() {
            *value = scrub_text(value);
        }
    }
    scrub_map(&mut event.extra);
    for (key, value) in &mut event.tags {
        if is_sensitive_key(key) {
            *value = REDACTED.into();
        } else {
            *value = scrub_text(value);
        }
    }
    for context in event.contexts.values_mut() {
        if let sentry::protocol::Context::Other(map) = context {
            scrub_map(map);
        }
    }
    for crumb in &mut event.breadcrumbs.values {
        crumb.message = crumb.message.take().map(|m| scrub_text(&m));
        scrub_map(&mut crumb.data);
    }
    event.message = event.message.take().map(|m| scrub_text(&m));
    if let Some(entry) = &mut event.logentry {
        entry.message = scrub_text(&entry.message);
        entry.params.iter_mut().for_each(scrub_value);
    }
    for exception in &mut event.exception.values {
        exception.value = exception.value.take().map(|v| scrub_text(&v));
    }
    if let Some(user) = &mut event.user {
        user.email = None;
        user.ip_address = None;
        user.username = None;
        user.other.clear();
    }
    event
}

/// `sentry`'s `tracing` layers for a process's subscriber: warnings become breadcrumbs of the
/// next report, errors become reports, except those with a `reported` field (the code that
/// logs it captures the error itself, with its source chain) or a `panic` field (a job pool's
/// log of a handler panic, which the panic integration reports). While no client is bound
/// they do nothing; reports pass the scrub of [`ReportingConfig`] like every other event.
pub fn tracing_layers<S>() -> impl Layer<S>
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
    use super::*;

    #[test]
    fn text_loses_credentials_and_keeps_the_rest() {
        let text = "call failed: Authorization: Bearer abc.def key=sk-ant-api03-abcdefgh \
                    api_key=plain db postgres://app:hunter2@db:5432/x token zzz";
        let scrubbed = scrub_text(text);
        for secret in ["abc.def", "sk-ant-api03", "plain", "hunter2", "zzz"] {
            assert!(!scrubbed.contains(secret), "{secret} in {scrubbed}");
        }
        assert!(scrubbed.starts_with("call failed: Authorization: "));
        assert!(scrubbed.contains("postgres://app:[redacted]@db:5432/x"));
        assert_eq!(scrub_text("job 42 timed out"), "job 42 timed out");
    }

    #[test]
    fn keys_are_judged_by_name() {
        for key in [
            "prompt",
            "user_prompt",
            "X-Api-Key",
            "Authorization",
            "access_token",
            "stripe_secret",
        ] {
            assert!(is_sensitive_key(key), "{key}");
        }
        for key in ["request_id", "job_id", "input_tokens", "kind", "status"] {
            assert!(!is_sensitive_key(key), "{key}");
        }
    }

    #[test]
    fn without_a_dsn_nothing_is_configured() {
        let config = ReportingConfig::from_lookup("appforge@0.1.0", |_| Some(String::new()));
        assert!(!config.is_enabled());
        assert!(config.client_options().unwrap().is_none());
        assert!(config.init().unwrap().is_none());
    }

    #[test]
    fn a_bad_dsn_is_refused_without_echoing_it() {
        let config = ReportingConfig::from_lookup("appforge@0.1.0", |name| {
            (name == "SENTRY_DSN").then(|| "not a dsn sk-live-secret".to_owned())
        });
        let err = config.client_options().unwrap_err();
        assert!(!err.to_string().contains("sk-live-secret"), "{err}");
        assert!(!format!("{config:?}").contains("sk-live-secret"));
    }
}

#[cfg(test)]
mod layer_tests {
    use std::sync::{Arc, Mutex};

    use sentry::{ClientOptions, Envelope, Hub, Transport};
    use tracing_subscriber::layer::SubscriberExt;

    use super::tracing_layers;

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
        let subscriber = tracing_subscriber::registry().with(tracing_layers());
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
