//! Prompt rendering: deterministic requests for each pipeline.

mod context;
mod render;
mod request;
pub(crate) mod text;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use request::{
    Attachment, ChatMode, ChatRequest, FullAppRequest, HistoryMessage, HistoryRole, ModifyRequest,
    PhaseContext, PlanRequest,
};

/// Limits applied while rendering prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptSettings {
    /// Bytes of app files included as context; files beyond it are listed by path and size.
    pub context_budget: usize,
    /// How many of the latest history messages are sent.
    pub max_history: usize,
}

impl Default for PromptSettings {
    fn default() -> Self {
        Self {
            context_budget: 200_000,
            max_history: 20,
        }
    }
}

/// One block of the system prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemPart {
    /// The text.
    pub text: String,
    /// Whether a `cache_control` breakpoint ends this block (the stable prefix).
    pub cache: bool,
}

/// A rendered prompt: system blocks and messages, ready to become a provider request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedPrompt {
    /// The system prompt; the first block is the stable, cached part.
    pub system: Vec<SystemPart>,
    /// The conversation, ending with the user's request.
    pub messages: Vec<HistoryMessage>,
}

impl fmt::Display for RenderedPrompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for block in &self.system {
            let cache = if block.cache {
                " [cache_control: ephemeral]"
            } else {
                ""
            };
            writeln!(f, "----- system{cache} -----\n{}", block.text)?;
        }
        for message in &self.messages {
            let role = match message.role {
                HistoryRole::User => "user",
                HistoryRole::Assistant => "assistant",
            };
            writeln!(f, "----- {role} -----\n{}", message.content)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
