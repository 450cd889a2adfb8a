//! The provider of a process's generations, read from its environment: the Anthropic Messages
//! API, an OpenAI-compatible server, or the offline demo transcripts. A server, a worker and a
//! command-line tool that read the same variables build the same [`Pipelines`].
//!
//! | variable | meaning |
//! | --- | --- |
//! | `ANTHROPIC_API_KEY` | the Anthropic Messages API (wins over `OPENAI_BASE_URL`) |
//! | `ANTHROPIC_BASE_URL` | another base URL for it (a proxy, a test server) |
//! | `OPENAI_BASE_URL` | an OpenAI-compatible chat-completions server (Ollama, vLLM, ...) |
//! | `OPENAI_API_KEY` | its key, when it needs one |
//! | `APPFORGE_MODEL` | the model (default [`Pipelines::DEFAULT_MODEL`]) |
//! | `APPFORGE_EFFORT` | `output_config.effort` of every generation (Anthropic) |
//! | `APPFORGE_ALLOW_RETIRED_MODEL` | keep a model past its end of life (a proxy maps the name) |
//!
//! With none of the first two set, the offline demo transcripts play (with the `demo` feature;
//! without it, no provider is an error).
//!
//! ```
//! use appforge_llm::ProviderConfig;
//!
//! let vars = [("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1"), ("APPFORGE_MODEL", "qwen3")];
//! let config = ProviderConfig::from_lookup(|name| {
//!     vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
//! })?;
//! assert_eq!(config.model(), "qwen3");
//! # Ok::<_, appforge_llm::SettingError>(())
//! ```

use std::sync::Arc;
use std::time::Duration;

use appforge_core::SecretString;

use crate::{Effort, Pipelines, Provider, models};

/// Where generations come from. `Debug` never shows a key.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ProviderConfig {
    /// The Anthropic Messages API (`ANTHROPIC_API_KEY`; needs the `anthropic` feature).
    Anthropic {
        /// The API key.
        api_key: SecretString,
        /// `ANTHROPIC_BASE_URL`, when set.
        base_url: Option<String>,
        /// `APPFORGE_MODEL`, when set.
        model: Option<String>,
        /// `APPFORGE_EFFORT`, when set: `output_config.effort` of every generation.
        effort: Option<Effort>,
    },
    /// An OpenAI-compatible chat-completions server (`OPENAI_BASE_URL`; needs the `openai`
    /// feature).
    OpenAiCompatible {
        /// The server's base URL.
        base_url: String,
        /// `OPENAI_API_KEY`, when set.
        api_key: Option<SecretString>,
        /// `APPFORGE_MODEL`, when set.
        model: Option<String>,
    },
    /// Recorded demo generations: no key, no network (needs the `demo` feature).
    OfflineDemo,
}

/// A provider setting that cannot be used: the variable and why. It never repeats a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {reason}")]
pub struct SettingError {
    /// The variable.
    pub name: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl SettingError {
    fn new(name: &'static str, reason: impl Into<String>) -> Self {
        Self {
            name,
            reason: reason.into(),
        }
    }
}

impl ProviderConfig {
    /// Reads the provider from the process's environment (see the [module](self) for the
    /// variables).
    ///
    /// # Errors
    ///
    /// As [`from_lookup`](Self::from_lookup).
    pub fn from_env() -> Result<Self, SettingError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the provider through `lookup` (the environment, or a map in tests). Empty values
    /// count as unset. The model and effort are checked against the [`models`] table as of
    /// today.
    ///
    /// # Errors
    ///
    /// A base URL that is not `http(s)://`, a model past its end of life (unless
    /// `APPFORGE_ALLOW_RETIRED_MODEL`), an effort the model does not take, or a provider this
    /// build has no feature for.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let model = get("APPFORGE_MODEL");
        let config = if let Some(key) = get("ANTHROPIC_API_KEY") {
            let effort = get("APPFORGE_EFFORT").map(|e| Effort::parse(&e));
            let allow_retired = flag(get("APPFORGE_ALLOW_RETIRED_MODEL"))
                .map_err(|reason| SettingError::new("APPFORGE_ALLOW_RETIRED_MODEL", reason))?;
            check_anthropic_model(
                model.as_deref(),
                effort.as_ref(),
                allow_retired,
                chrono::Utc::now().date_naive(),
            )?;
            Self::Anthropic {
                api_key: SecretString::from(key),
                base_url: get("ANTHROPIC_BASE_URL")
                    .map(|url| http_url("ANTHROPIC_BASE_URL", url))
                    .transpose()?,
                model,
                effort,
            }
        } else if let Some(url) = get("OPENAI_BASE_URL") {
            Self::OpenAiCompatible {
                base_url: http_url("OPENAI_BASE_URL", url)?,
                api_key: get("OPENAI_API_KEY").map(SecretString::from),
                model,
            }
        } else {
            Self::OfflineDemo
        };
        config.check_built()?;
        Ok(config)
    }

    /// An error when this build cannot make the provider (its feature is off).
    fn check_built(&self) -> Result<(), SettingError> {
        let (name, feature, built) = match self {
            Self::Anthropic { .. } => (
                "ANTHROPIC_API_KEY",
                "anthropic",
                cfg!(feature = "anthropic"),
            ),
            Self::OpenAiCompatible { .. } => {
                ("OPENAI_BASE_URL", "openai", cfg!(feature = "openai"))
            }
            Self::OfflineDemo => ("ANTHROPIC_API_KEY", "demo", cfg!(feature = "demo")),
        };
        if built {
            return Ok(());
        }
        let reason = match self {
            Self::OfflineDemo => {
                "required: no provider is set (ANTHROPIC_API_KEY or OPENAI_BASE_URL), and this \
                 build has no offline demo (appforge-llm's `demo` feature)"
                    .to_owned()
            }
            _ => format!(
                "set, but this build has no such provider (appforge-llm's `{feature}` feature)"
            ),
        };
        Err(SettingError::new(name, reason))
    }

    /// The model generations are made and priced with: the configured one, the pipelines'
    /// default for a real provider, `offline-demo` for the demo transcripts (priced at zero).
    #[must_use]
    pub fn model(&self) -> String {
        match self {
            Self::Anthropic { model, .. } | Self::OpenAiCompatible { model, .. } => model
                .clone()
                .unwrap_or_else(|| Pipelines::DEFAULT_MODEL.to_owned()),
            Self::OfflineDemo => "offline-demo".to_owned(),
        }
    }

    /// The provider's client.
    ///
    /// # Errors
    ///
    /// A client that cannot be built (an invalid base URL), or a provider this build has no
    /// feature for.
    pub fn provider(&self) -> crate::Result<Arc<dyn Provider>> {
        match self {
            #[cfg(feature = "anthropic")]
            Self::Anthropic {
                api_key, base_url, ..
            } => {
                use appforge_core::ExposeSecret;
                let mut builder = crate::Client::builder().api_key(api_key.expose_secret());
                if let Some(url) = base_url {
                    builder = builder.base_url(url.clone());
                }
                Ok(Arc::new(builder.build()?))
            }
            #[cfg(feature = "openai")]
            Self::OpenAiCompatible {
                base_url, api_key, ..
            } => {
                use appforge_core::ExposeSecret;
                let mut builder = crate::OpenAiProvider::builder().base_url(base_url.clone());
                if let Some(key) = api_key {
                    builder = builder.api_key(key.expose_secret());
                }
                Ok(Arc::new(builder.build()?))
            }
            #[cfg(feature = "demo")]
            Self::OfflineDemo => Ok(Arc::new(crate::demo::offline_provider())),
            #[allow(unreachable_patterns)]
            _ => Err(crate::Error::Config(
                self.check_built()
                    .err()
                    .map_or_else(String::new, |e| e.to_string()),
            )),
        }
    }

    /// The pipelines over [`provider`](Self::provider), with the configured model and effort,
    /// and the provider's name (it goes in every result: `"anthropic"`, `"offline-demo"`,
    /// ...). `demo_pace` spaces the offline demo's events (zero: at once).
    ///
    /// A model that needs attention (deprecated, retiring soon) is logged as a warning.
    ///
    /// # Errors
    ///
    /// As [`provider`](Self::provider).
    pub fn pipelines(&self, demo_pace: Duration) -> crate::Result<(Pipelines, String)> {
        let provider: Arc<dyn Provider> = match self {
            #[cfg(feature = "demo")]
            Self::OfflineDemo => Arc::new(crate::demo::offline_provider().pace(demo_pace)),
            _ => self.provider()?,
        };
        #[cfg(not(feature = "demo"))]
        let _ = demo_pace;
        let name = provider.name().to_owned();
        let mut pipelines = Pipelines::new(provider);
        match self {
            Self::Anthropic { model, effort, .. } => {
                let id = model.as_deref().unwrap_or(Pipelines::DEFAULT_MODEL);
                let check = models::check_model(id, chrono::Utc::now().date_naive());
                if check.needs_attention() {
                    tracing::warn!(model = id, "{check}");
                }
                if let Some(model) = model {
                    pipelines = pipelines.model(model.clone());
                }
                if let Some(effort) = effort {
                    pipelines = pipelines.effort(effort.clone());
                }
            }
            Self::OpenAiCompatible {
                model: Some(model), ..
            } => pipelines = pipelines.model(model.clone()),
            _ => {}
        }
        Ok((pipelines, name))
    }
}

/// The Anthropic model and effort against the [`models`] table on `today`: a model past its
/// end of life is refused (with its replacement named) unless `allow_retired` (a proxy that
/// maps the name to a current model); an effort the model does not take is refused.
///
/// # Errors
///
/// `APPFORGE_MODEL` or `APPFORGE_EFFORT`, with the reason.
pub fn check_anthropic_model(
    model: Option<&str>,
    effort: Option<&Effort>,
    allow_retired: bool,
    today: chrono::NaiveDate,
) -> Result<(), SettingError> {
    let id = model.unwrap_or(Pipelines::DEFAULT_MODEL);
    let check = models::check_model(id, today);
    if check.is_retired() && !allow_retired {
        return Err(SettingError::new(
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
        return Err(SettingError::new(
            "APPFORGE_EFFORT",
            format!("model `{id}` does not take effort `{effort}`: {accepted}"),
        ));
    }
    Ok(())
}

/// A boolean: `true`/`1`/`yes` or `false`/`0`/`no`; unset is false.
fn flag(value: Option<String>) -> Result<bool, String> {
    match value.map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some(other) => Err(format!("{other:?} is neither true nor false")),
    }
}

/// A base URL: `http://` or `https://` with a host.
fn http_url(name: &'static str, url: String) -> Result<String, SettingError> {
    match url.parse::<http::Uri>() {
        Ok(uri)
            if matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some() =>
        {
            Ok(url)
        }
        _ => Err(SettingError::new(
            name,
            format!("{url:?} is not an http:// or https:// URL"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::{ProviderConfig, SettingError, check_anthropic_model};
    use crate::Effort;

    fn read(vars: &[(&str, &str)]) -> Result<ProviderConfig, SettingError> {
        ProviderConfig::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    fn refused(vars: &[(&str, &str)]) -> String {
        read(vars)
            .expect_err("the settings are refused")
            .to_string()
    }

    #[cfg(feature = "demo")]
    #[test]
    fn nothing_set_plays_the_offline_demo() {
        let config = read(&[("APPFORGE_MODEL", "  ")]).unwrap();
        assert!(matches!(config, ProviderConfig::OfflineDemo));
        assert_eq!(config.model(), "offline-demo");
        let (_, name) = config.pipelines(std::time::Duration::ZERO).unwrap();
        assert_eq!(name, "offline-demo");
    }

    #[cfg(not(feature = "demo"))]
    #[test]
    fn nothing_set_without_the_demo_is_an_error() {
        let message = refused(&[]);
        assert!(message.contains("`demo` feature"), "{message}");
    }

    #[test]
    fn the_anthropic_key_wins_over_openai_and_is_redacted() {
        let config = read(&[
            ("ANTHROPIC_API_KEY", "sk-ant-secret-value"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1"),
        ]);
        if cfg!(feature = "anthropic") {
            let config = config.unwrap();
            assert!(matches!(config, ProviderConfig::Anthropic { .. }));
            assert!(!format!("{config:?}").contains("sk-ant-secret-value"));
            assert_eq!(config.model(), crate::Pipelines::DEFAULT_MODEL);
        } else {
            let message = config.unwrap_err().to_string();
            assert!(message.contains("`anthropic` feature"), "{message}");
            assert!(!message.contains("sk-ant-secret-value"));
        }
    }

    #[cfg(feature = "openai")]
    #[test]
    fn an_openai_server_takes_the_model() {
        let config = read(&[
            ("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1"),
            ("OPENAI_API_KEY", "sk-openai-secret"),
            ("APPFORGE_MODEL", "qwen3"),
        ])
        .unwrap();
        assert_eq!(config.model(), "qwen3");
        assert!(!format!("{config:?}").contains("sk-openai-secret"));
        let (pipelines, name) = config.pipelines(std::time::Duration::ZERO).unwrap();
        assert_eq!(name, "openai-compatible");
        assert_eq!(pipelines.model_name(), "qwen3");
    }

    #[test]
    fn base_urls_must_be_http() {
        let message = refused(&[("OPENAI_BASE_URL", "localhost:11434")]);
        assert!(message.starts_with("OPENAI_BASE_URL: "), "{message}");
        let message = refused(&[
            ("ANTHROPIC_API_KEY", "sk-ant-x"),
            ("ANTHROPIC_BASE_URL", "ftp://proxy"),
        ]);
        assert!(message.starts_with("ANTHROPIC_BASE_URL: "), "{message}");
    }

    #[test]
    fn a_model_past_its_end_of_life_is_refused_with_its_replacement() {
        let message = refused(&[
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
        if cfg!(feature = "anthropic") {
            read(&[
                ("ANTHROPIC_API_KEY", "sk-ant-x"),
                ("APPFORGE_MODEL", "claude-sonnet-4-5"),
                ("APPFORGE_ALLOW_RETIRED_MODEL", "true"),
            ])
            .unwrap();
        }
        let december = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        check_anthropic_model(Some("claude-opus-4-5"), None, false, december).unwrap();
        let february = chrono::NaiveDate::from_ymd_opt(2027, 2, 1).unwrap();
        assert!(check_anthropic_model(Some("claude-opus-4-5"), None, false, february).is_err());
    }

    #[test]
    fn an_effort_the_model_does_not_take_is_refused_by_name() {
        let message = refused(&[
            ("ANTHROPIC_API_KEY", "sk-ant-x"),
            ("APPFORGE_MODEL", "claude-sonnet-4-6"),
            ("APPFORGE_EFFORT", "xhigh"),
        ]);
        assert!(message.contains("APPFORGE_EFFORT"), "{message}");
        assert!(
            message.contains("it takes low, medium, high, max"),
            "{message}"
        );
        if cfg!(feature = "anthropic") {
            match read(&[
                ("ANTHROPIC_API_KEY", "sk-ant-x"),
                ("APPFORGE_EFFORT", "max"),
            ])
            .unwrap()
            {
                ProviderConfig::Anthropic { effort, .. } => assert_eq!(effort, Some(Effort::Max)),
                other => panic!("{other:?}"),
            }
        }
        let flag = refused(&[
            ("ANTHROPIC_API_KEY", "sk-ant-x"),
            ("APPFORGE_ALLOW_RETIRED_MODEL", "maybe"),
        ]);
        assert!(flag.contains("APPFORGE_ALLOW_RETIRED_MODEL"), "{flag}");
    }
}
