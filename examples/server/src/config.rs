//! Settings read from the environment (see `docs/deployment.md` for the full list).

use std::net::SocketAddr;
use std::time::Duration;

use appforge_analytics::ReportingConfig;
use appforge_core::SecretString;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line (`APPFORGE_LOG_FORMAT=json`).
    Json,
}

/// Where generations come from.
#[derive(Debug, Clone)]
pub enum ProviderConfig {
    /// The Anthropic Messages API (`ANTHROPIC_API_KEY`).
    Anthropic {
        /// The API key.
        api_key: SecretString,
        /// `ANTHROPIC_BASE_URL`, when set.
        base_url: Option<String>,
        /// `APPFORGE_MODEL`, when set.
        model: Option<String>,
        /// `APPFORGE_EFFORT`, when set: `output_config.effort` of every generation.
        effort: Option<appforge_llm::Effort>,
    },
    /// An OpenAI-compatible chat-completions server (`OPENAI_BASE_URL`).
    OpenAiCompatible {
        /// The server's base URL.
        base_url: String,
        /// `OPENAI_API_KEY`, when set.
        api_key: Option<SecretString>,
        /// `APPFORGE_MODEL`, when set.
        model: Option<String>,
    },
    /// Recorded demo generations: no key, no network.
    OfflineDemo,
}

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
}

/// Everything the server reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`: `sqlite://...` (default `sqlite://appforge.db`) or `postgres://...`.
    pub database_url: String,
    /// `APPFORGE_ADDR` (default `127.0.0.1:3000`).
    pub addr: SocketAddr,
    /// `APPFORGE_WORKERS`: in-process worker slots (default 4; 0 = API only).
    pub workers: usize,
    /// `ALLOWED_ORIGINS`: comma-separated origins allowed by CORS (none by default).
    pub allowed_origins: Vec<String>,
    /// `APPFORGE_JWT_SECRET`: HS256 secret of bearer tokens; random when unset.
    pub jwt_secret: Option<SecretString>,
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
    /// A setting that is present but cannot be parsed.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (the environment, or a map in tests). Empty values
    /// count as unset.
    ///
    /// # Errors
    ///
    /// A setting that is present but cannot be parsed.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let secret = |name: &str| get(name).map(SecretString::from);
        let model = get("APPFORGE_MODEL");
        let provider = if let Some(api_key) = secret("ANTHROPIC_API_KEY") {
            let effort = get("APPFORGE_EFFORT").map(|e| appforge_llm::Effort::parse(&e));
            check_anthropic_model(
                model.as_deref(),
                effort.as_ref(),
                flag(&get, "APPFORGE_ALLOW_RETIRED_MODEL")?,
                chrono::Utc::now().date_naive(),
            )?;
            ProviderConfig::Anthropic {
                api_key,
                base_url: get("ANTHROPIC_BASE_URL"),
                model,
                effort,
            }
        } else if let Some(base_url) = get("OPENAI_BASE_URL") {
            ProviderConfig::OpenAiCompatible {
                base_url,
                api_key: secret("OPENAI_API_KEY"),
                model,
            }
        } else {
            ProviderConfig::OfflineDemo
        };
        let stripe = secret("STRIPE_SECRET_KEY").map(|secret_key| StripeConfig {
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
            api_base: get("STRIPE_API_BASE"),
            price_pro: get("STRIPE_PRICE_PRO"),
            price_team: get("STRIPE_PRICE_TEAM"),
        });
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
        Ok(Self {
            database_url: get("DATABASE_URL").unwrap_or_else(|| "sqlite://appforge.db".into()),
            addr: parse(&get, "APPFORGE_ADDR", "127.0.0.1:3000")?,
            workers: parse(&get, "APPFORGE_WORKERS", "4")?,
            allowed_origins: get("ALLOWED_ORIGINS")
                .map(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            jwt_secret: secret("APPFORGE_JWT_SECRET"),
            admin_token: secret("APPFORGE_ADMIN_TOKEN"),
            provider,
            stripe,
            log_format,
            max_prompt_bytes: parse(&get, "APPFORGE_MAX_PROMPT_BYTES", "32768")?,
            max_body_bytes: parse(&get, "APPFORGE_MAX_BODY_BYTES", "2097152")?,
            shutdown_grace: Duration::from_secs(parse(&get, "APPFORGE_SHUTDOWN_GRACE_SECS", "30")?),
            app_retention: Duration::from_secs(
                parse::<u64>(&get, "APPFORGE_APP_RETENTION_DAYS", "30")?.saturating_mul(86_400),
            ),
            demo_pace: Duration::from_millis(parse(&get, "APPFORGE_DEMO_PACE_MS", "0")?),
            reporting: ReportingConfig::from_lookup(RELEASE, get),
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

/// The Anthropic model and effort against the model table: a model past its end of life is
/// refused (with its replacement named) unless `allow_retired` (a proxy that maps the name to
/// a current model); an effort the model does not take is refused.
pub(crate) fn check_anthropic_model(
    model: Option<&str>,
    effort: Option<&appforge_llm::Effort>,
    allow_retired: bool,
    today: chrono::NaiveDate,
) -> Result<(), ConfigError> {
    use appforge_llm::models;
    let id = model.unwrap_or(appforge_llm::Pipelines::DEFAULT_MODEL);
    let check = models::check_model(id, today);
    if check.is_retired() && !allow_retired {
        return Err(invalid(
            "APPFORGE_MODEL",
            format!(
                "{check} Set APPFORGE_ALLOW_RETIRED_MODEL=true only if a proxy maps this name to \
                 a current model"
            ),
        ));
    }
    if let (Some(effort), Some(info)) = (effort, models::find(id))
        && !info.accepts_effort(effort.as_str())
    {
        let accepted = if info.effort.is_empty() {
            "it has no effort setting".to_owned()
        } else {
            format!("it takes {}", info.effort.join(", "))
        };
        return Err(invalid(
            "APPFORGE_EFFORT",
            format!("model `{id}` does not take effort `{effort}`: {accepted}"),
        ));
    }
    Ok(())
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
        config(vars).expect_err("the settings are refused").to_string()
    }

    #[test]
    fn a_model_past_its_end_of_life_is_refused_at_start_with_its_replacement() {
        let message = refused_setting(&[
            ("ANTHROPIC_API_KEY", "sk-ant-x"),
            ("APPFORGE_MODEL", "claude-sonnet-4-5"),
        ]);
        assert!(message.contains("APPFORGE_MODEL"), "{message}");
        assert!(
            message.contains("reached its end of life on 2026-11-30"),
            "{message}"
        );
        assert!(
            message.contains("Use `claude-sonnet-5-5` instead"),
            "{message}"
        );
        // A proxy that maps the old name may keep it.
        config(&[
            ("ANTHROPIC_API_KEY", "sk-ant-x"),
            ("APPFORGE_MODEL", "claude-sonnet-4-5"),
            ("APPFORGE_ALLOW_RETIRED_MODEL", "true"),
        ])
        .unwrap();
        // The default model is current; a deprecated one still starts (with a warning).
        config(&[("ANTHROPIC_API_KEY", "sk-ant-x")]).unwrap();
        let december = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        check_anthropic_model(Some("claude-opus-4-5"), None, false, december).unwrap();
        let february = chrono::NaiveDate::from_ymd_opt(2027, 2, 1).unwrap();
        assert!(check_anthropic_model(Some("claude-opus-4-5"), None, false, february).is_err());
    }

    #[test]
    fn an_effort_the_model_does_not_take_is_refused_by_name() {
        let message = refused_setting(&[
            ("ANTHROPIC_API_KEY", "sk-ant-x"),
            ("APPFORGE_MODEL", "claude-sonnet-4-6"),
            ("APPFORGE_EFFORT", "xhigh"),
        ]);
        assert!(message.contains("APPFORGE_EFFORT"), "{message}");
        assert!(
            message.contains("it takes low, medium, high, max"),
            "{message}"
        );
        let config = config(&[
            ("ANTHROPIC_API_KEY", "sk-ant-x"),
            ("APPFORGE_EFFORT", "max"),
        ])
        .unwrap();
        match config.provider {
            ProviderConfig::Anthropic { effort, .. } => {
                assert_eq!(effort, Some(appforge_llm::Effort::Max));
            }
            other => panic!("{other:?}"),
        }
        let flag = refused_setting(&[
            ("ANTHROPIC_API_KEY", "sk-ant-x"),
            ("APPFORGE_ALLOW_RETIRED_MODEL", "maybe"),
        ]);
        assert!(flag.contains("APPFORGE_ALLOW_RETIRED_MODEL"), "{flag}");
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
