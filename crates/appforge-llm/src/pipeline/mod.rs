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

use crate::api::{CacheControl, Message, MessageRequest, SystemBlock, SystemPrompt};
use crate::prompt::{HistoryRole, PromptSettings, RenderedPrompt};
use crate::provider::Provider;

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
    max_tokens: u32,
    continuation_rounds: u32,
    repair_rounds: u32,
    prompt: PromptSettings,
}

impl fmt::Debug for Pipelines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipelines")
            .field("provider", &self.provider.name())
            .field("model", &self.model)
            .field("max_tokens", &self.max_tokens)
            .field("continuation_rounds", &self.continuation_rounds)
            .field("repair_rounds", &self.repair_rounds)
            .field("prompt", &self.prompt)
            .finish()
    }
}

impl Pipelines {
    /// The model used unless [`Pipelines::model`] says otherwise.
    pub const DEFAULT_MODEL: &'static str = "claude-sonnet-4-5";

    /// Pipelines on `provider` with defaults: [`Pipelines::DEFAULT_MODEL`], 16 000 output
    /// tokens per call, 2 continuation rounds, 1 repair round, default [`PromptSettings`].
    pub fn new(provider: impl Provider + 'static) -> Self {
        Self {
            provider: Arc::new(provider),
            model: Self::DEFAULT_MODEL.to_owned(),
            max_tokens: 16_000,
            continuation_rounds: 2,
            repair_rounds: 1,
            prompt: PromptSettings::default(),
        }
    }

    /// Sets the model name sent to the provider.
    #[must_use]
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// Sets `max_tokens` for each model call.
    #[must_use]
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens;
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

    /// Sets the prompt limits (context budget, history length).
    #[must_use]
    pub fn prompt_settings(mut self, settings: PromptSettings) -> Self {
        self.prompt = settings;
        self
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
        let mut request = MessageRequest::new(self.model.as_str(), self.max_tokens)
            .system(SystemPrompt::Blocks(blocks));
        for message in &prompt.messages {
            request = request.message(match message.role {
                HistoryRole::User => Message::user(message.content.as_str()),
                HistoryRole::Assistant => Message::assistant(message.content.as_str()),
            });
        }
        request
    }
}
