//! Settings read from the environment (see `docs/deployment.md` for the full list).
//!
//! Every setting is read and checked here, before the server opens its database or starts a
//! worker: a value that cannot be used is an error naming its variable.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use appforge_analytics::ReportingConfig;
use appforge_core::{ExposeSecret, SecretString};
use appforge_jobs::AlertPolicy;
use appforge_quota::PlanId;

mod edge;
mod orgs;

pub use edge::EdgeConfig;
pub use orgs::{OrgsConfig, SmtpConfig};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line (`APPFORGE_LOG_FORMAT=json`).
    Json,
}

pub use appforge_llm::ProviderConfig;

/// Stripe settings; billing routes answer 503 without them.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// `STRIPE_SECRET_KEY`.
    pub secret_key: SecretString,
    /// `STRIPE_WEBHOOK_SECRET`, comma-separated for rotation.
    pub webhook_secrets: Vec<SecretString>,
    /// `STRIPE_API_BASE`, for tests against a local stand-in.
    pub api_base: Option<String>,
    /// `STRIPE_PRICE_PRO`, overriding the catalogue's Pro monthly price.
    pub price_pro: Option<String>,
    /// `STRIPE_PRICE_TEAM`, overriding the catalogue's Team monthly price.
    pub price_team: Option<String>,
    /// `APPFORGE_BILLING_PASS_SECS`: how often each process runs billing's periodic pass
    /// (pending plan changes, ended grace periods); default 60.
    pub pass_every: Duration,
}

/// `DATABASE_URL`, whose password never reaches `Debug`. Dereferences to the URL.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL, password included.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for DatabaseUrl {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<&str> for DatabaseUrl {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Debug for DatabaseUrl {
    /// The URL with its password (`user:password@`) replaced by `[redacted]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = &self.0;
        let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
            return fmt::Debug::fmt(url, f);
        };
        let rest = &url[scheme_end..];
        // The last `@`, not the first one after the host: a password may hold `/`, `?` or `#`
        // unencoded. An `@` further on (in a query) only hides more than needed.
        let Some(at) = rest.rfind('@') else {
            return fmt::Debug::fmt(url, f);
        };
        let userinfo = &rest[..at];
        let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
        let redacted = if user.len() == userinfo.len() {
            url.clone()
        } else {
            format!("{}{user}:[redacted]{}", &url[..scheme_end], &rest[at..])
        };
        fmt::Debug::fmt(&redacted, f)
    }
}

/// The periodic upkeep every process runs: job retention, purging deleted apps, alerts.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct MaintenanceConfig {
    /// `APPFORGE_JOB_RETENTION_DAYS`: finished jobs older than this are deleted (default 30;
    /// 0 keeps them forever).
    pub job_retention: Option<Duration>,
    /// `APPFORGE_MAINTENANCE_EVERY_SECS`: how often finished jobs are pruned and apps past
    /// their retention purged (default 3600).
    pub every: Duration,
    /// `APPFORGE_ALERT_EVERY_SECS`: how often the queue is checked for alerts (default 60;
    /// 0 turns the checks off).
    pub alert_every: Option<Duration>,
    /// The alert thresholds: `APPFORGE_ALERT_QUEUE_LENGTH` (default 50),
    /// `APPFORGE_ALERT_FAILURE_RATE` (0.05), `APPFORGE_ALERT_WINDOW_SECS` (300),
    /// `APPFORGE_ALERT_MIN_FINISHED` (10), `APPFORGE_ALERT_WORKER_SILENT_SECS` (30).
    pub alerts: AlertPolicy,
}

/// Everything the server reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`: `sqlite://...` (default `sqlite://appforge.db`) or `postgres://...`.
    pub database_url: DatabaseUrl,
    /// `APPFORGE_ADDR` (default `127.0.0.1:3000`).
    pub addr: SocketAddr,
    /// `APPFORGE_WORKERS`: in-process worker slots (default 4; 0 = API only).
    pub workers: usize,
    /// `ALLOWED_ORIGINS`: comma-separated origins allowed by CORS (none by default).
    pub allowed_origins: Vec<String>,
    /// `APPFORGE_JWT_SECRET`: HS256 secret of bearer tokens, at least 32 bytes; random when
    /// unset.
    pub jwt_secret: Option<SecretString>,
    /// `APPFORGE_JWT_ISSUER`: the `iss` every token must carry (not checked when unset).
    pub jwt_issuer: Option<String>,
    /// `APPFORGE_ANONYMOUS_PLAN`: the plan Supabase anonymous users are put on; unset, they
    /// are refused with 403.
    pub anonymous_plan: Option<PlanId>,
    /// `APPFORGE_ADMIN_TOKEN`: the token of the admin pages and routes.
    pub admin_token: Option<SecretString>,
    /// The model provider.
    pub provider: ProviderConfig,
    /// Stripe, when configured.
    pub stripe: Option<StripeConfig>,
    /// `APPFORGE_LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `APPFORGE_MAX_PROMPT_BYTES` (default 32 KiB).
    pub max_prompt_bytes: usize,
    /// `APPFORGE_MAX_BODY_BYTES`: any JSON body (default 2 MiB; apps travel in bodies).
    pub max_body_bytes: usize,
    /// `APPFORGE_SHUTDOWN_GRACE_SECS`: how long running jobs may finish on shutdown (default 30).
    pub shutdown_grace: Duration,
    /// `APPFORGE_APP_RETENTION_DAYS`: how long a deleted app can be restored before it is
    /// purged (default 30).
    pub app_retention: Duration,
    /// `APPFORGE_DEMO_PACE_MS`: with the offline demo provider, a delay between streamed
    /// events so that a demo streams visibly (default 0: instant).
    pub demo_pace: Duration,
    /// `SENTRY_DSN` (error reports; none when unset) and `SENTRY_ENVIRONMENT` (default
    /// `production`).
    pub reporting: ReportingConfig,
    /// Job retention, app purging and alerts.
    pub maintenance: MaintenanceConfig,
    /// Connection timers and cap, per-user limits, `/metrics` access, bounded reads.
    pub edge: EdgeConfig,
    /// Uploaded reference images: where they are kept and how large they may be.
    pub uploads: UploadsConfig,
    /// Team workspaces: seats, invitations, audit retention, invitation mail.
    pub orgs: OrgsConfig,
    /// `APPFORGE_SECRETS_KEY`: 32 bytes in standard base64, the key sealing SSO client
    /// secrets at rest; unset, the SSO and SCIM routes answer 503 `sso_unavailable`.
    pub secrets_key: Option<appforge_sso::SecretsKey>,
    /// Live previews: the npm dependency cache, the registry and the preview's origin.
    pub preview: PreviewConfig,
}

/// Live previews of saved apps (`docs/preview.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewConfig {
    /// `APPFORGE_PREVIEW_CACHE`: the npm dependency cache shared by every app (default: a
    /// `preview-cache` directory next to the SQLite file, or in the working directory).
    pub cache_dir: std::path::PathBuf,
    /// `APPFORGE_PREVIEW_CACHE_BYTES`: the cache's size cap (default 2 GiB); the least
    /// recently used packages are evicted past it.
    pub cache_bytes: u64,
    /// `APPFORGE_NPM_REGISTRY`: the npm registry (default `https://registry.npmjs.org`).
    pub registry: String,
    /// `APPFORGE_PREVIEW_OFFLINE`: resolve from the cache only, never asking the registry
    /// (fill it with `appforge-server preview-cache`).
    pub offline: bool,
    /// `APPFORGE_PREVIEW_ORIGIN`: the origin previews are served from
    /// (`https://preview.example.com`, pointing at this server); unset, they are served
    /// from the server's own origin, sandboxed.
    pub origin: Option<String>,
    /// `APPFORGE_PREVIEW_TIMEOUT_MS`: the longest a build may take (default 30 s).
    pub timeout: Duration,
    /// `APPFORGE_PREVIEW_BUILDS`: builds run at once (default 2).
    pub builds: usize,
}

/// Where uploads are kept and what an upload may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadsConfig {
    /// `APPFORGE_STORAGE_URL`: `file:///dir`, `s3://bucket/prefix`, `gs://bucket/prefix`,
    /// `az://container/prefix` or `memory://` (default: an `uploads` directory next to the
    /// SQLite file, or in the working directory with PostgreSQL). Cloud credentials come from
    /// the provider's usual variables (`AWS_ACCESS_KEY_ID`, ...).
    pub storage_url: String,
    /// `APPFORGE_MAX_UPLOAD_BYTES` (default 5 MB).
    pub max_bytes: u64,
    /// `APPFORGE_MAX_UPLOAD_SIDE`: pixels a side (default 8,000).
    pub max_side: u32,
}

/// The release error reports name: `appforge-server@<version>`.
pub const RELEASE: &str = concat!("appforge-server@", env!("CARGO_PKG_VERSION"));

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {name}: {reason}")]
pub struct ConfigError {
    name: &'static str,
    reason: String,
}

impl Config {
    /// Reads the settings from the process environment.
    ///
    /// # Errors
    ///
    /// A setting that is present but cannot be parsed or used.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (the environment, or a map in tests). Empty values
    /// count as unset.
    ///
    /// # Errors
    ///
    /// A setting that is present but cannot be parsed or used: the error names its variable
    /// and never repeats a secret.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let secret = |name: &str| get(name).map(SecretString::from);
        let http_url = |name: &'static str| get(name).map(|url| http_url(name, url)).transpose();
        let provider = ProviderConfig::from_lookup(get).map_err(|e| invalid(e.name, e.reason))?;
        let stripe = match secret("STRIPE_SECRET_KEY") {
            Some(secret_key) => Some(StripeConfig {
                secret_key,
                webhook_secrets: get("STRIPE_WEBHOOK_SECRET")
                    .map(|list| {
                        list.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(SecretString::from)
                            .collect()
                    })
                    .unwrap_or_default(),
                api_base: http_url("STRIPE_API_BASE")?,
                price_pro: get("STRIPE_PRICE_PRO"),
                price_team: get("STRIPE_PRICE_TEAM"),
                pass_every: seconds(&get, "APPFORGE_BILLING_PASS_SECS", "60")?,
            }),
            None => None,
        };
        if stripe
            .as_ref()
            .is_some_and(|stripe| stripe.webhook_secrets.is_empty())
        {
            return Err(invalid(
                "STRIPE_WEBHOOK_SECRET",
                "required when STRIPE_SECRET_KEY is set (the signing secret of the webhook \
                 endpoint, whsec_...)"
                    .into(),
            ));
        }
        let log_format = match get("APPFORGE_LOG_FORMAT").as_deref() {
            None | Some("pretty" | "text") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(invalid(
                    "APPFORGE_LOG_FORMAT",
                    format!("{other:?} is neither `json` nor `pretty`"),
                ));
            }
        };
        let reporting = ReportingConfig::from_lookup(RELEASE, get);
        // The DSN is parsed now rather than when reporting starts (the message omits it).
        reporting
            .client_options()
            .map_err(|e| invalid("SENTRY_DSN", e.to_string()))?;
        Ok(Self {
            database_url: database_url(get("DATABASE_URL"))?,
            addr: parse(&get, "APPFORGE_ADDR", "127.0.0.1:3000")?,
            workers: parse(&get, "APPFORGE_WORKERS", "4")?,
            allowed_origins: get("ALLOWED_ORIGINS")
                .map(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(origin)
                        .collect::<Result<_, _>>()
                })
                .transpose()?
                .unwrap_or_default(),
            jwt_secret: jwt_secret(secret("APPFORGE_JWT_SECRET"))?,
            jwt_issuer: get("APPFORGE_JWT_ISSUER"),
            anonymous_plan: get("APPFORGE_ANONYMOUS_PLAN").map(PlanId::new),
            admin_token: secret("APPFORGE_ADMIN_TOKEN"),
            provider,
            stripe,
            log_format,
            max_prompt_bytes: positive(&get, "APPFORGE_MAX_PROMPT_BYTES", "32768")?,
            max_body_bytes: positive(&get, "APPFORGE_MAX_BODY_BYTES", "2097152")?,
            shutdown_grace: Duration::from_secs(parse(&get, "APPFORGE_SHUTDOWN_GRACE_SECS", "30")?),
            app_retention: Duration::from_secs(
                parse::<u64>(&get, "APPFORGE_APP_RETENTION_DAYS", "30")?.saturating_mul(86_400),
            ),
            demo_pace: Duration::from_millis(parse(&get, "APPFORGE_DEMO_PACE_MS", "0")?),
            reporting,
            maintenance: maintenance(&get)?,
            edge: EdgeConfig::from_lookup(&get)?,
            orgs: OrgsConfig::from_lookup(&get)?,
            secrets_key: get(appforge_sso::SECRETS_KEY_ENV)
                .map(|text| appforge_sso::SecretsKey::from_base64(&text))
                .transpose()
                .map_err(|e| invalid("APPFORGE_SECRETS_KEY", e.to_string()))?,
            uploads: UploadsConfig {
                storage_url: match get("APPFORGE_STORAGE_URL") {
                    Some(url) => url,
                    None => default_storage_url(get("DATABASE_URL").as_deref()),
                },
                max_bytes: positive(&get, "APPFORGE_MAX_UPLOAD_BYTES", "5242880")?,
                max_side: positive(&get, "APPFORGE_MAX_UPLOAD_SIDE", "8000")?,
            },
            preview: PreviewConfig {
                cache_dir: match get("APPFORGE_PREVIEW_CACHE") {
                    Some(dir) => dir.into(),
                    None => beside_database(get("DATABASE_URL").as_deref(), "preview-cache"),
                },
                cache_bytes: positive(&get, "APPFORGE_PREVIEW_CACHE_BYTES", "2147483648")?,
                registry: get("APPFORGE_NPM_REGISTRY")
                    .unwrap_or_else(|| appforge_preview::DEFAULT_REGISTRY.to_owned()),
                offline: flag(&get, "APPFORGE_PREVIEW_OFFLINE")?,
                origin: get("APPFORGE_PREVIEW_ORIGIN")
                    .map(|o| origin(&o).map_err(|e| invalid("APPFORGE_PREVIEW_ORIGIN", e.reason)))
                    .transpose()?,
                timeout: Duration::from_millis(positive(
                    &get,
                    "APPFORGE_PREVIEW_TIMEOUT_MS",
                    "30000",
                )?),
                builds: positive(&get, "APPFORGE_PREVIEW_BUILDS", "2")?,
            },
        })
    }
}

fn invalid(name: &'static str, reason: String) -> ConfigError {
    ConfigError { name, reason }
}

/// A boolean setting: `true`/`1`/`yes` or `false`/`0`/`no`; unset is false.
fn flag(get: &impl Fn(&str) -> Option<String>, name: &'static str) -> Result<bool, ConfigError> {
    match get(name).map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some(other) => Err(invalid(
            name,
            format!("{other:?} is neither true nor false"),
        )),
    }
}

/// `DATABASE_URL` when unset: a SQLite file in the working directory.
pub(crate) const DEFAULT_DATABASE_URL: &str = "sqlite://appforge.db";

/// `DATABASE_URL`: SQLite or PostgreSQL, named by its scheme.
fn database_url(url: Option<String>) -> Result<DatabaseUrl, ConfigError> {
    let url = url.unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
    let scheme = url.split_once(':').map(|(scheme, _)| scheme);
    if matches!(scheme, Some("sqlite" | "postgres" | "postgresql")) {
        Ok(DatabaseUrl(url))
    } else {
        // The URL itself is not repeated: it may hold a password.
        Err(invalid(
            "DATABASE_URL",
            "must start with sqlite:// or postgres://".into(),
        ))
    }
}

/// `name` beside the SQLite file of `DATABASE_URL` (its default when unset).
fn beside_database(database_url: Option<&str>, name: &str) -> std::path::PathBuf {
    appforge_core::db::beside_database(database_url.unwrap_or(DEFAULT_DATABASE_URL), name)
}

/// `APPFORGE_STORAGE_URL` when unset: `uploads/` beside the database.
fn default_storage_url(database_url: Option<&str>) -> String {
    format!(
        "file://{}",
        beside_database(database_url, "uploads").display()
    )
}

/// An `ALLOWED_ORIGINS` entry: `scheme://host[:port]`, as browsers send it in `Origin`.
fn origin(entry: &str) -> Result<String, ConfigError> {
    let refuse = |why: String| Err(invalid("ALLOWED_ORIGINS", format!("{entry:?}: {why}")));
    if entry.contains('*') {
        return refuse(
            "wildcards are not accepted: list each origin the web app is served from \
             (https://app.example.com,https://staging.example.com)"
                .into(),
        );
    }
    let Ok(uri) = entry.parse::<http::Uri>() else {
        return refuse("not an origin (https://app.example.com)".into());
    };
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
        return refuse("an origin is http:// or https:// and a host".into());
    }
    if entry.ends_with('/') || uri.path() != "/" || uri.query().is_some() {
        return refuse("an origin has no path, not even a trailing /".into());
    }
    if http::HeaderValue::from_str(entry).is_err() {
        return refuse("not a valid header value".into());
    }
    Ok(entry.to_owned())
}

/// A base URL setting: `http://` or `https://` with a host.
fn http_url(name: &'static str, url: String) -> Result<String, ConfigError> {
    match url.parse::<http::Uri>() {
        Ok(uri)
            if matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some() =>
        {
            Ok(url)
        }
        _ => Err(invalid(
            name,
            format!("{url:?} is not an http:// or https:// URL"),
        )),
    }
}

/// `APPFORGE_JWT_SECRET`: HS256 needs a key at least as long as its hash.
fn jwt_secret(secret: Option<SecretString>) -> Result<Option<SecretString>, ConfigError> {
    match secret {
        Some(secret) if secret.expose_secret().len() < crate::auth::MIN_SECRET_BYTES => {
            Err(invalid(
                "APPFORGE_JWT_SECRET",
                format!(
                    "{} bytes, shorter than the {} an HS256 secret needs (Supabase: Project \
                     Settings > API > JWT secret)",
                    secret.expose_secret().len(),
                    crate::auth::MIN_SECRET_BYTES
                ),
            ))
        }
        secret => Ok(secret),
    }
}

fn maintenance(get: &impl Fn(&str) -> Option<String>) -> Result<MaintenanceConfig, ConfigError> {
    let days: u64 = parse(get, "APPFORGE_JOB_RETENTION_DAYS", "30")?;
    let mut alerts = AlertPolicy::default();
    alerts.queue_length = parse(get, "APPFORGE_ALERT_QUEUE_LENGTH", "50")?;
    alerts.failure_rate = parse(get, "APPFORGE_ALERT_FAILURE_RATE", "0.05")?;
    if !(0.0..=1.0).contains(&alerts.failure_rate) {
        return Err(invalid(
            "APPFORGE_ALERT_FAILURE_RATE",
            format!("{} is not a rate between 0 and 1", alerts.failure_rate),
        ));
    }
    alerts.window = seconds(get, "APPFORGE_ALERT_WINDOW_SECS", "300")?;
    alerts.min_finished = parse(get, "APPFORGE_ALERT_MIN_FINISHED", "10")?;
    alerts.worker_silent_after = seconds(get, "APPFORGE_ALERT_WORKER_SILENT_SECS", "30")?;
    let alert_every: u64 = parse(get, "APPFORGE_ALERT_EVERY_SECS", "60")?;
    Ok(MaintenanceConfig {
        job_retention: (days > 0).then(|| Duration::from_secs(days.saturating_mul(86_400))),
        every: seconds(get, "APPFORGE_MAINTENANCE_EVERY_SECS", "3600")?,
        alert_every: (alert_every > 0).then(|| Duration::from_secs(alert_every)),
        alerts,
    })
}

/// A positive number.
fn positive<T>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: &str,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + Default + PartialEq,
    T::Err: std::fmt::Display,
{
    let value: T = parse(get, name, default)?;
    if value == T::default() {
        return Err(invalid(name, "must be positive".into()));
    }
    Ok(value)
}

/// A positive number of seconds.
fn seconds(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: &str,
) -> Result<Duration, ConfigError> {
    positive::<u64>(get, name, default).map(Duration::from_secs)
}

fn parse<T>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: &str,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let raw = get(name).unwrap_or_else(|| default.to_owned());
    raw.parse()
        .map_err(|e| invalid(name, format!("{raw:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_run_offline_on_sqlite() {
        let config = config(&[]).unwrap();
        assert_eq!(config.database_url, "sqlite://appforge.db");
        assert_eq!(config.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(config.workers, 4);
        assert!(matches!(config.provider, ProviderConfig::OfflineDemo));
        assert!(config.stripe.is_none());
        assert_eq!(config.log_format, LogFormat::Pretty);
        assert_eq!(config.app_retention, Duration::from_secs(30 * 86_400));
        assert!(!config.reporting.is_enabled());
    }

    #[test]
    fn a_sentry_dsn_turns_reporting_on_and_is_redacted() {
        let config = config(&[("SENTRY_DSN", "https://secretkey@o1.ingest.sentry.io/42")]).unwrap();
        assert!(config.reporting.is_enabled());
        assert!(!format!("{config:?}").contains("secretkey"));
    }

    #[test]
    fn anthropic_key_wins_over_openai_and_is_redacted() {
        let config = config(&[
            ("ANTHROPIC_API_KEY", "sk-ant-secret-value"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1"),
        ])
        .unwrap();
        assert!(matches!(config.provider, ProviderConfig::Anthropic { .. }));
        assert!(!format!("{config:?}").contains("sk-ant-secret-value"));
    }

    fn refused_setting(vars: &[(&str, &str)]) -> String {
        config(vars)
            .expect_err("the settings are refused")
            .to_string()
    }

    /// The provider's own checks (`appforge_llm::ProviderConfig`, tested there) stop the
    /// settings, naming the variable.
    #[test]
    fn a_refused_provider_setting_stops_the_settings_by_name() {
        let message = refused_setting(&[
            ("ANTHROPIC_API_KEY", "sk-ant-x"),
            ("APPFORGE_MODEL", "claude-sonnet-4-5"),
        ]);
        assert!(
            message.starts_with("invalid setting APPFORGE_MODEL: "),
            "{message}"
        );
        assert!(message.contains("claude-sonnet-5-5"), "{message}");
        let message = refused_setting(&[("OPENAI_BASE_URL", "localhost:11434")]);
        assert!(
            message.starts_with("invalid setting OPENAI_BASE_URL: "),
            "{message}"
        );
    }

    #[test]
    fn webhook_secrets_split_on_commas() {
        let config = config(&[
            ("STRIPE_SECRET_KEY", "sk_test_x"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_a, whsec_b,"),
        ])
        .unwrap();
        let stripe = config.stripe.unwrap();
        assert_eq!(stripe.webhook_secrets.len(), 2);
        assert!(!format!("{stripe:?}").contains("whsec_a"));
        assert_eq!(stripe.pass_every, Duration::from_secs(60));
    }

    #[test]
    fn the_billing_pass_interval_is_positive() {
        let stripe = [
            ("STRIPE_SECRET_KEY", "sk_test_x"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_x"),
        ];
        let every = |secs: &'static str| {
            let mut vars = stripe.to_vec();
            vars.push(("APPFORGE_BILLING_PASS_SECS", secs));
            config(&vars)
        };
        assert_eq!(
            every("5").unwrap().stripe.unwrap().pass_every,
            Duration::from_secs(5)
        );
        let err = every("0").unwrap_err().to_string();
        assert!(
            err.starts_with("invalid setting APPFORGE_BILLING_PASS_SECS"),
            "{err}"
        );
    }

    fn refused(vars: &[(&str, &str)]) -> String {
        match config(vars) {
            Ok(config) => panic!("accepted: {config:?}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn a_wildcard_origin_is_refused_naming_the_setting() {
        for list in ["*", "https://a.example.com,*", "https://*.example.com"] {
            let err = refused(&[("ALLOWED_ORIGINS", list)]);
            assert!(
                err.starts_with("invalid setting ALLOWED_ORIGINS") && err.contains("wildcard"),
                "{err}"
            );
        }
    }

    #[test]
    fn origins_are_origins() {
        let config = config(&[(
            "ALLOWED_ORIGINS",
            "https://app.example.com, http://localhost:5173",
        )])
        .unwrap();
        assert_eq!(
            config.allowed_origins,
            ["https://app.example.com", "http://localhost:5173"]
        );
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "ftp://app.example.com",
            "https://",
        ] {
            let err = refused(&[("ALLOWED_ORIGINS", bad)]);
            assert!(
                err.starts_with("invalid setting ALLOWED_ORIGINS"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn a_short_jwt_secret_is_refused_without_repeating_it() {
        let err = refused(&[("APPFORGE_JWT_SECRET", "short-but-secret")]);
        assert!(
            err.starts_with("invalid setting APPFORGE_JWT_SECRET"),
            "{err}"
        );
        assert!(err.contains("16 bytes"), "{err}");
        assert!(!err.contains("short-but-secret"), "{err}");
        let long = "x".repeat(crate::auth::MIN_SECRET_BYTES);
        assert!(config(&[("APPFORGE_JWT_SECRET", &long)]).is_ok());
    }

    #[test]
    fn issuer_and_anonymous_plan_are_read() {
        let set = config(&[
            ("APPFORGE_JWT_ISSUER", "https://p.supabase.co/auth/v1"),
            ("APPFORGE_ANONYMOUS_PLAN", "guest"),
        ])
        .unwrap();
        assert_eq!(
            set.jwt_issuer.as_deref(),
            Some("https://p.supabase.co/auth/v1")
        );
        assert_eq!(set.anonymous_plan, Some(PlanId::new("guest")));
        let defaults = config(&[]).unwrap();
        assert_eq!(defaults.jwt_issuer, None);
        assert_eq!(defaults.anonymous_plan, None, "anonymous users refused");
    }

    #[test]
    fn debug_redacts_the_database_password() {
        for (url, shown) in [
            (
                "postgres://app:pa55w0rd@db.internal:5432/appforge",
                "postgres://app:[redacted]@db.internal:5432/appforge",
            ),
            (
                "postgresql://app:p@ss@db/appforge?sslmode=require",
                "postgresql://app:[redacted]@db/appforge?sslmode=require",
            ),
            (
                "postgres://app:pa/ss?w#rd@db/appforge",
                "postgres://app:[redacted]@db/appforge",
            ),
            ("postgres://app@db/appforge", "postgres://app@db/appforge"),
            ("sqlite://appforge.db", "sqlite://appforge.db"),
        ] {
            let config = config(&[("DATABASE_URL", url)]).unwrap();
            let debug = format!("{config:?}");
            assert!(debug.contains(shown), "{debug}");
            assert!(
                !debug.contains("pa55w0rd") && !debug.contains("p@ss"),
                "{debug}"
            );
            assert_eq!(config.database_url, url);
        }
        let err = refused(&[("DATABASE_URL", "mysql://root:hunter2@db/app")]);
        assert!(err.starts_with("invalid setting DATABASE_URL"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn urls_and_numbers_are_checked_before_anything_starts() {
        for (name, value) in [
            ("OPENAI_BASE_URL", "localhost:11434/v1"),
            ("APPFORGE_MAX_BODY_BYTES", "0"),
            ("APPFORGE_ALERT_FAILURE_RATE", "5"),
            ("APPFORGE_MAINTENANCE_EVERY_SECS", "0"),
            ("APPFORGE_JOB_RETENTION_DAYS", "-1"),
            ("SENTRY_DSN", "not a dsn"),
        ] {
            let err = refused(&[(name, value)]);
            assert!(err.starts_with(&format!("invalid setting {name}")), "{err}");
        }
        let err = refused(&[
            ("ANTHROPIC_API_KEY", "sk-ant-x"),
            ("ANTHROPIC_BASE_URL", "api.anthropic.com"),
        ]);
        assert!(
            err.starts_with("invalid setting ANTHROPIC_BASE_URL"),
            "{err}"
        );
        let err = refused(&[("STRIPE_SECRET_KEY", "sk_test_x")]);
        assert!(
            err.starts_with("invalid setting STRIPE_WEBHOOK_SECRET"),
            "{err}"
        );
        let err = refused(&[
            ("STRIPE_SECRET_KEY", "sk_test_x"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_x"),
            ("STRIPE_API_BASE", "stripe"),
        ]);
        assert!(err.starts_with("invalid setting STRIPE_API_BASE"), "{err}");
    }

    #[test]
    fn maintenance_settings_have_defaults_and_off_switches() {
        let defaults = config(&[]).unwrap().maintenance;
        assert_eq!(
            defaults.job_retention,
            Some(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(defaults.every, Duration::from_secs(3600));
        assert_eq!(defaults.alert_every, Some(Duration::from_secs(60)));
        assert_eq!(defaults.alerts, AlertPolicy::default());
        let set = config(&[
            ("APPFORGE_JOB_RETENTION_DAYS", "0"),
            ("APPFORGE_ALERT_EVERY_SECS", "0"),
            ("APPFORGE_ALERT_QUEUE_LENGTH", "7"),
            ("APPFORGE_ALERT_FAILURE_RATE", "0.5"),
        ])
        .unwrap()
        .maintenance;
        assert_eq!(set.job_retention, None);
        assert_eq!(set.alert_every, None);
        assert_eq!(set.alerts.queue_length, 7);
        assert!((set.alerts.failure_rate - 0.5).abs() < f64::EPSILON);
    }

    #[test]
    fn a_bad_number_names_the_setting() {
        let err = config(&[("APPFORGE_WORKERS", "many")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid setting APPFORGE_WORKERS"),
            "{err}"
        );
        let err = config(&[("APPFORGE_LOG_FORMAT", "xml")]).unwrap_err();
        assert!(err.to_string().contains("APPFORGE_LOG_FORMAT"), "{err}");
    }
}
