//! The pipelines: typed request in, provider stream, typed result out.

mod chat;
mod full_app;
mod modify;
mod output_error;
mod plan;
mod progress;
mod stream;

use std::fmt;
use std::sync::Arc;

use crate::api::{
    CacheControl, ContentBlockParam, Effort, ImageSource, Message, MessageRequest, OutputFormat,
    Role, SystemBlock, SystemPrompt,
};
use crate::prompt::{HistoryRole, PromptSettings, RenderedPrompt};
use crate::provider::Provider;
use crate::{models, structured};

pub use chat::ChatReply;
pub use full_app::GeneratedApp;
pub use modify::Modification;
pub use output_error::ParseError;
pub use plan::{Phase, PhasePlan, PlannedPhases};
pub use progress::Progress;

/// Runs the app-builder pipelines (`full_app`, `modify`, `plan_phases`, `chat`) on a
/// provider. Cheap to clone.
///
/// Every pipeline takes a progress callback and a
/// [`CancellationToken`](tokio_util::sync::CancellationToken), and returns token usage with its
/// result.
#[derive(Clone)]
pub struct Pipelines {
    provider: Arc<dyn Provider>,
    model: String,
    max_tokens: Option<u32>,
    effort: Option<Effort>,
    structured_outputs: Option<bool>,
    continuation_rounds: u32,
    repair_rounds: u32,
    prompt: Option<PromptSettings>,
}

impl fmt::Debug for Pipelines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipelines")
            .field("provider", &self.provider.name())
            .field("model", &self.model)
            .field("max_tokens", &self.max_tokens_in_effect())
            .field("effort", &self.effort)
            .field("structured_outputs", &self.structured_outputs_in_effect())
            .field("continuation_rounds", &self.continuation_rounds)
            .field("repair_rounds", &self.repair_rounds)
            .field("prompt", &self.prompt_settings_in_effect())
            .finish()
    }
}

impl Pipelines {
    /// The model used unless [`Pipelines::model`] says otherwise: the newest generally
    /// available Sonnet ([`models::DEFAULT_MODEL`]).
    pub const DEFAULT_MODEL: &'static str = models::DEFAULT_MODEL;

    /// `max_tokens` for a model the [model table](crate::models) does not know.
    pub const FALLBACK_MAX_TOKENS: u32 = 16_000;

    /// Pipelines on `provider` with defaults: [`Pipelines::DEFAULT_MODEL`]; `max_tokens` and
    /// the context budget from the model table (its maximum output; a quarter of its context
    /// window as bytes of app files); the model's default effort; structured outputs where
    /// the provider and the model have them; 2 continuation rounds; 1 repair round.
    pub fn new(provider: impl Provider + 'static) -> Self {
        Self {
            provider: Arc::new(provider),
            model: Self::DEFAULT_MODEL.to_owned(),
            max_tokens: None,
            effort: None,
            structured_outputs: None,
            continuation_rounds: 2,
            repair_rounds: 1,
            prompt: None,
        }
    }

    /// Sets the model name sent to the provider.
    #[must_use]
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// Sets `max_tokens` for each model call (by default the model's maximum output, or
    /// [`Pipelines::FALLBACK_MAX_TOKENS`] for a model the table does not know).
    #[must_use]
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Sets `output_config.effort` for each model call (by default the model's own default).
    #[must_use]
    pub fn effort(mut self, effort: Effort) -> Self {
        self.effort = Some(effort);
        self
    }

    /// Forces structured outputs on or off for `modify` and `plan_phases`. By default they
    /// are on when the provider honours them and the model table says the model has them.
    #[must_use]
    pub fn structured_outputs(mut self, on: bool) -> Self {
        self.structured_outputs = Some(on);
        self
    }

    /// Sets how many times a truncated `full_app` output is continued.
    #[must_use]
    pub fn continuation_rounds(mut self, rounds: u32) -> Self {
        self.continuation_rounds = rounds;
        self
    }

    /// Sets how many times a `modify` change set that is invalid or does not apply is sent
    /// back for a corrected one.
    #[must_use]
    pub fn repair_rounds(mut self, rounds: u32) -> Self {
        self.repair_rounds = rounds;
        self
    }

    /// Sets the prompt limits (context budget, history length); by default the context budget
    /// follows the model's context window.
    #[must_use]
    pub fn prompt_settings(mut self, settings: PromptSettings) -> Self {
        self.prompt = Some(settings);
        self
    }

    /// The model name sent to the provider.
    #[must_use]
    pub fn model_name(&self) -> &str {
        &self.model
    }

    /// The `max_tokens` of each model call.
    #[must_use]
    pub fn max_tokens_in_effect(&self) -> u32 {
        self.max_tokens
            .unwrap_or_else(|| models::max_output_tokens(&self.model, Self::FALLBACK_MAX_TOKENS))
    }

    /// The prompt limits in effect: the configured ones, or the defaults with a context
    /// budget of a quarter of the model's context window (about four bytes a token).
    #[must_use]
    pub fn prompt_settings_in_effect(&self) -> PromptSettings {
        self.prompt.unwrap_or_else(|| {
            let mut settings = PromptSettings::default();
            if let Some(model) = models::find(&self.model) {
                settings.context_budget =
                    usize::try_from(model.context_window).unwrap_or(settings.context_budget);
            }
            settings
        })
    }

    /// Whether `modify` and `plan_phases` ask for structured output.
    #[must_use]
    pub fn structured_outputs_in_effect(&self) -> bool {
        self.structured_outputs.unwrap_or_else(|| {
            self.provider.supports_structured_outputs()
                && models::supports_structured_outputs(&self.model)
        })
    }

    /// The request for `prompt`, asking for a reply shaped as `T` when `structured`.
    fn structured_request<T: structured::StructuredOutput>(
        &self,
        prompt: &RenderedPrompt,
        structured: bool,
    ) -> MessageRequest {
        let request = self.request(prompt);
        if structured {
            request.output_format(OutputFormat::json_schema(T::schema().clone()))
        } else {
            request
        }
    }

    /// The provider request for a rendered prompt.
    #[must_use]
    pub fn request(&self, prompt: &RenderedPrompt) -> MessageRequest {
        let blocks = prompt
            .system
            .iter()
            .map(|part| {
                let block = SystemBlock::text(part.text.as_str());
                if part.cache {
                    block.cached(CacheControl::ephemeral())
                } else {
                    block
                }
            })
            .collect();
        let mut request = MessageRequest::new(self.model.as_str(), self.max_tokens_in_effect())
            .system(SystemPrompt::Blocks(blocks));
        if let Some(effort) = &self.effort {
            request = request.effort(effort.clone());
        }
        for message in &prompt.messages {
            request = request.message(match message.role {
                HistoryRole::User if !message.images.is_empty() => {
                    // Images first, then the text: the order the Messages API guide
                    // recommends.
                    let mut content: Vec<ContentBlockParam> = message
                        .images
                        .iter()
                        .map(|image| ContentBlockParam::Image {
                            source: ImageSource::Base64 {
                                media_type: image.media_type.clone(),
                                data: image.base64(),
                            },
                            cache_control: None,
                        })
                        .collect();
                    content.push(ContentBlockParam::text(message.content.as_str()));
                    Message::new(Role::User, content)
                }
                HistoryRole::User => Message::user(message.content.as_str()),
                HistoryRole::Assistant => Message::assistant(message.content.as_str()),
            });
        }
        request
    }
}
