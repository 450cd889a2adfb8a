//! Which model to use, and what each accepts: the [model table](appforge_core::models) applied
//! to requests.
//!
//! [`check_request`] refuses locally, before any network call, what the Messages API would
//! answer with a 400: sampling parameters on a model (or an API version) without them, a
//! thinking type the model does not take, an effort level it does not know, structured
//! output on a model without it, `max_tokens` above its maximum. [`check_model`] tells a host
//! at start whether its configured model is current, deprecated or past its end of life.
//!
//! ```
//! use appforge_llm::models::{self, ModelCheck};
//! use appforge_llm::{MessageRequest, Thinking};
//! use chrono::NaiveDate;
//!
//! // Claude Sonnet 5.5 thinks adaptively and refuses manual budgets.
//! let manual = MessageRequest::new("claude-sonnet-5-5", 4096)
//!     .user("hi")
//!     .thinking(Thinking::enabled(2048));
//! let err = models::check_request(&manual, models::API_VERSION).unwrap_err();
//! assert!(err.to_string().contains("adaptive"), "{err}");
//!
//! let today = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
//! match models::check_model("claude-sonnet-4-5", today) {
//!     ModelCheck::Retired { replacement, .. } => assert_eq!(replacement, Some("claude-sonnet-5-5")),
//!     other => panic!("{other}"),
//! }
//! ```

use std::fmt;

pub use appforge_core::models::{
    DEFAULT_MODEL, Family, Lifecycle, MODELS, ModelInfo, ThinkingMode, ThinkingTypes, find,
};
use chrono::NaiveDate;

use crate::api::{MessageRequest, Thinking};
use crate::error::{Error, Result};

/// The `anthropic-version` this crate speaks (and the client sends by default).
pub const API_VERSION: &str = "2026-10-21";

/// The first API version without `temperature`, `top_p` and `top_k`.
const SAMPLING_REMOVED_IN: &str = "2026-10-21";

/// The fewest thinking tokens a manual budget may have.
const MIN_THINKING_BUDGET: u32 = 1_024;

/// Checks `request` against what its model accepts under `api_version`; a model the table
/// does not know (a proxy's alias, a newer model) gets only the checks that hold for every
/// model.
///
/// # Errors
///
/// [`Error::InvalidRequest`] naming the model and what it would refuse.
pub fn check_request(request: &MessageRequest, api_version: &str) -> Result<()> {
    let model = find(&request.model);
    let refuse = |reason: String| {
        Err(Error::InvalidRequest {
            model: request.model.clone(),
            reason,
        })
    };
    let sampling: Vec<&str> = [
        ("temperature", request.temperature.is_some()),
        ("top_p", request.top_p.is_some()),
        ("top_k", request.top_k.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    if !sampling.is_empty() {
        // ISO dates compare as strings.
        if api_version >= SAMPLING_REMOVED_IN {
            return refuse(format!(
                "{} was removed from the Messages API in version {SAMPLING_REMOVED_IN}; leave it unset",
                sampling.join(", ")
            ));
        }
        if model.is_some_and(|m| !m.sampling) {
            return refuse(format!(
                "the model does not accept {}; leave it unset",
                sampling.join(", ")
            ));
        }
    }
    if let Some(Thinking::Enabled { budget_tokens, .. }) = request.thinking
        && (budget_tokens < MIN_THINKING_BUDGET || budget_tokens >= request.max_tokens)
    {
        return refuse(format!(
            "thinking.budget_tokens is {budget_tokens}; it must be at least {MIN_THINKING_BUDGET} and below max_tokens ({})",
            request.max_tokens
        ));
    }
    let Some(model) = model else {
        return Ok(());
    };
    if let Some(thinking) = &request.thinking
        && !model.thinking.accepts(thinking.kind())
    {
        return refuse(format!(
            "thinking.type `{}` is not accepted; it takes {}",
            thinking.kind(),
            accepted_thinking(&model.thinking)
        ));
    }
    if request.max_tokens > model.max_output_tokens {
        return refuse(format!(
            "max_tokens is {}; the model writes at most {} tokens",
            request.max_tokens, model.max_output_tokens
        ));
    }
    if let Some(config) = &request.output_config {
        if let Some(effort) = &config.effort
            && !model.accepts_effort(effort.as_str())
        {
            return refuse(if model.effort.is_empty() {
                format!(
                    "output_config.effort `{effort}` is not accepted: the model has no effort setting"
                )
            } else {
                format!(
                    "output_config.effort `{effort}` is not accepted; it takes {}",
                    model.effort.join(", ")
                )
            });
        }
        if config.format.is_some() && !model.structured_outputs {
            return refuse(
                "output_config.format is not accepted: the model has no structured outputs".into(),
            );
        }
    }
    Ok(())
}

fn accepted_thinking(types: &ThinkingTypes) -> String {
    let names: Vec<&str> = [
        ("adaptive", types.adaptive),
        ("enabled", types.enabled),
        ("disabled", types.disabled),
        ("between_tools", types.between_tools),
    ]
    .into_iter()
    .filter_map(|(name, ok)| ok.then_some(name))
    .collect();
    names.join(", ")
}

/// Where a configured model stands, from [`check_model`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelCheck {
    /// In the table and current.
    Current(&'static ModelInfo),
    /// Not in the table: a newer model, or a proxy's name for one. Nothing is known of it.
    Unknown,
    /// Deprecated: it still answers until `end_of_life`.
    Deprecated {
        /// The model.
        model: &'static ModelInfo,
        /// When it stops answering, if announced.
        end_of_life: Option<NaiveDate>,
        /// What to use instead.
        replacement: Option<&'static str>,
    },
    /// Past its end of life: every request fails.
    Retired {
        /// The model.
        model: &'static ModelInfo,
        /// The day it stopped answering.
        end_of_life: NaiveDate,
        /// What to use instead.
        replacement: Option<&'static str>,
    },
}

impl ModelCheck {
    /// Whether requests to the model fail (it is past its end of life).
    pub fn is_retired(&self) -> bool {
        matches!(self, Self::Retired { .. })
    }

    /// Whether a host should warn at start (deprecated or retired).
    pub fn needs_attention(&self) -> bool {
        matches!(self, Self::Deprecated { .. } | Self::Retired { .. })
    }
}

impl fmt::Display for ModelCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let instead = |replacement: Option<&str>| {
            replacement.map_or_else(
                || " Please migrate to a newer model.".to_owned(),
                |r| format!(" Use `{r}` instead."),
            )
        };
        match self {
            Self::Current(model) => write!(f, "model `{}` is current", model.id),
            Self::Unknown => f.write_str("the model is not in the model table"),
            Self::Deprecated {
                model,
                end_of_life: Some(end),
                replacement,
            } => write!(
                f,
                "model `{}` is deprecated and will reach end-of-life on {end}.{}",
                model.id,
                instead(*replacement)
            ),
            Self::Deprecated {
                model,
                end_of_life: None,
                replacement,
            } => write!(
                f,
                "model `{}` is deprecated.{}",
                model.id,
                instead(*replacement)
            ),
            Self::Retired {
                model,
                end_of_life,
                replacement,
            } => write!(
                f,
                "model `{}` reached its end of life on {end_of_life} and no longer answers.{}",
                model.id,
                instead(*replacement)
            ),
        }
    }
}

/// Where the model `id` stands on `today`.
#[must_use]
pub fn check_model(id: &str, today: NaiveDate) -> ModelCheck {
    let Some(model) = find(id) else {
        return ModelCheck::Unknown;
    };
    match model.lifecycle(today) {
        Lifecycle::Active => ModelCheck::Current(model),
        Lifecycle::Deprecated { end_of_life } => ModelCheck::Deprecated {
            model,
            end_of_life,
            replacement: model.replacement,
        },
        Lifecycle::Retired { end_of_life } => ModelCheck::Retired {
            model,
            end_of_life,
            replacement: model.replacement,
        },
    }
}

/// The `max_tokens` the pipelines use for `model`: its maximum output, or `fallback` for a
/// model the table does not know.
#[must_use]
pub fn max_output_tokens(model: &str, fallback: u32) -> u32 {
    find(model).map_or(fallback, |m| m.max_output_tokens)
}

/// Whether `model` takes structured outputs (`output_config.format`); `false` for a model the
/// table does not know.
#[must_use]
pub fn supports_structured_outputs(model: &str) -> bool {
    find(model).is_some_and(|m| m.structured_outputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Effort, OutputFormat};
    use serde_json::json;

    fn request(model: &str) -> MessageRequest {
        MessageRequest::new(model, 4096).user("hi")
    }

    fn refused(request: &MessageRequest, version: &str) -> String {
        match check_request(request, version) {
            Err(err @ Error::InvalidRequest { .. }) => {
                assert!(!err.is_retryable());
                err.to_string()
            }
            other => panic!("expected a local refusal, got {other:?}"),
        }
    }

    #[test]
    fn sampling_parameters_are_refused_by_version_and_by_model() {
        let hot = request("claude-sonnet-4-6").temperature(0.2);
        assert!(
            refused(&hot, API_VERSION)
                .contains("removed from the Messages API in version 2026-10-21")
        );
        // Under the older version, Sonnet 4.6 still takes them, the Claude 5 generation does not.
        check_request(&hot, "2023-06-01").unwrap();
        let five = request("claude-sonnet-5-5").top_p(0.9).top_k(5);
        let message = refused(&five, "2023-06-01");
        assert!(message.contains("top_p, top_k"), "{message}");
        assert!(message.contains("claude-sonnet-5-5"), "{message}");
        // A model the table does not know is left to the API under the older version.
        check_request(&request("proxy-model").temperature(0.5), "2023-06-01").unwrap();
    }

    #[test]
    fn thinking_types_are_checked_per_model() {
        let manual = |model| request(model).thinking(Thinking::enabled(2048));
        for model in [
            "claude-sonnet-5-5",
            "claude-opus-5-5",
            "claude-fable-5-2",
            "claude-opus-4-7",
        ] {
            let message = refused(&manual(model), API_VERSION);
            assert!(
                message.contains("thinking.type `enabled` is not accepted"),
                "{message}"
            );
        }
        for model in [
            "claude-sonnet-4-6",
            "claude-opus-4-6",
            "claude-haiku-4-5",
            "claude-opus-4-5",
        ] {
            check_request(&manual(model), API_VERSION).unwrap();
        }
        let adaptive = |model| request(model).thinking(Thinking::adaptive());
        check_request(&adaptive("claude-sonnet-5-5"), API_VERSION).unwrap();
        let message = refused(&adaptive("claude-haiku-4-5"), API_VERSION);
        assert!(message.contains("it takes enabled, disabled"), "{message}");
        let off = request("claude-opus-5-5").thinking(Thinking::Disabled);
        assert!(refused(&off, API_VERSION).contains("it takes adaptive"));
        let between = request("claude-sonnet-5-5").thinking(Thinking::BetweenTools);
        check_request(&between, API_VERSION).unwrap();
    }

    #[test]
    fn a_manual_budget_must_fit_under_max_tokens() {
        let small = request("proxy-model").thinking(Thinking::enabled(512));
        assert!(refused(&small, API_VERSION).contains("at least 1024"));
        let large = request("claude-haiku-4-5").thinking(Thinking::enabled(4096));
        assert!(refused(&large, API_VERSION).contains("below max_tokens (4096)"));
    }

    #[test]
    fn too_many_output_tokens_are_refused_per_model() {
        let haiku = MessageRequest::new("claude-haiku-4-5", 64_001).user("hi");
        assert!(refused(&haiku, API_VERSION).contains("at most 64000"));
        check_request(
            &MessageRequest::new("claude-haiku-4-5", 64_000),
            API_VERSION,
        )
        .unwrap();
        check_request(
            &MessageRequest::new("claude-sonnet-5-5", 128_000),
            API_VERSION,
        )
        .unwrap();
        let sonnet = MessageRequest::new("claude-sonnet-5-5", 128_001);
        assert!(refused(&sonnet, API_VERSION).contains("at most 128000"));
    }

    #[test]
    fn effort_and_structured_output_need_a_model_that_has_them() {
        check_request(
            &request("claude-opus-5-5").effort(Effort::XHigh),
            API_VERSION,
        )
        .unwrap();
        let no_xhigh = request("claude-sonnet-4-6").effort(Effort::XHigh);
        assert!(refused(&no_xhigh, API_VERSION).contains("it takes low, medium, high, max"));
        let no_effort = request("claude-haiku-4-5").effort(Effort::Low);
        assert!(refused(&no_effort, API_VERSION).contains("no effort setting"));
        let format = OutputFormat::json_schema(json!({"type": "object"}));
        check_request(
            &request("claude-sonnet-5-5").output_format(format.clone()),
            API_VERSION,
        )
        .unwrap();
        let retired = request("claude-3-5-haiku-latest").output_format(format);
        assert!(refused(&retired, API_VERSION).contains("no structured outputs"));
    }

    #[test]
    fn configured_models_are_checked_against_their_end_of_life() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let today = day(2026, 12, 2);
        assert!(matches!(
            check_model(DEFAULT_MODEL, today),
            ModelCheck::Current(_)
        ));
        assert_eq!(check_model("my-proxy-name", today), ModelCheck::Unknown);
        let opus = check_model("claude-opus-4-5-20251101", today);
        assert!(opus.needs_attention() && !opus.is_retired());
        assert_eq!(
            opus.to_string(),
            "model `claude-opus-4-5` is deprecated and will reach end-of-life on 2027-01-22. Use `claude-opus-5-5` instead."
        );
        let sonnet = check_model("claude-sonnet-4-5", today);
        assert!(sonnet.is_retired());
        assert_eq!(
            sonnet.to_string(),
            "model `claude-sonnet-4-5` reached its end of life on 2026-11-30 and no longer answers. Use `claude-sonnet-5-5` instead."
        );
        // The day before its end of life it was only deprecated.
        assert!(!check_model("claude-sonnet-4-5", day(2026, 11, 29)).is_retired());
    }
}
