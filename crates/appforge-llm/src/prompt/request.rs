//! What each pipeline is asked: the typed inputs the prompts are rendered from.

use serde::{Deserialize, Serialize};

use crate::pipeline::PhasePlan;
use crate::protocol::AppFile;

/// Who said a message of the conversation history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryRole {
    /// The user.
    User,
    /// The model.
    Assistant,
}

/// One earlier message of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryMessage {
    /// Who said it.
    pub role: HistoryRole,
    /// What was said.
    pub content: String,
}

impl HistoryMessage {
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: HistoryRole::User,
            content: content.into(),
        }
    }

    /// A model message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: HistoryRole::Assistant,
            content: content.into(),
        }
    }
}

/// The phase being built, with the plan it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseContext {
    /// The whole plan.
    pub plan: PhasePlan,
    /// The number of the phase to build now.
    pub number: u32,
}

/// The input of the `full_app` pipeline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FullAppRequest {
    /// What the user asked for.
    pub prompt: String,
    /// The conversation so far.
    #[serde(default)]
    pub history: Vec<HistoryMessage>,
    /// The app as it is now, for a rebuild or a later phase. Files the model does not
    /// rewrite are kept.
    #[serde(default)]
    pub current_app: Option<Vec<AppFile>>,
    /// The phase to build, when the app is built in phases.
    #[serde(default)]
    pub phase: Option<PhaseContext>,
}

impl FullAppRequest {
    /// A request for a new app from a prompt.
    pub fn new(prompt: impl Into<String>) -> Self {
        Self {
            prompt: prompt.into(),
            ..Self::default()
        }
    }
}

/// The input of the `modify` pipeline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModifyRequest {
    /// The change the user asks for.
    pub request: String,
    /// The conversation so far.
    #[serde(default)]
    pub history: Vec<HistoryMessage>,
    /// The app to change.
    pub app: Vec<AppFile>,
}

/// The input of the `plan_phases` pipeline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRequest {
    /// The user's app idea.
    pub prompt: String,
    /// The conversation so far.
    #[serde(default)]
    pub history: Vec<HistoryMessage>,
}

/// How the chat assistant answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatMode {
    /// Discuss and plan; no code.
    #[default]
    Plan,
    /// Concrete changes with code.
    Act,
}

/// The input of the `chat` pipeline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Plan or act.
    #[serde(default)]
    pub mode: ChatMode,
    /// The user's new message.
    pub message: String,
    /// The conversation so far.
    #[serde(default)]
    pub history: Vec<HistoryMessage>,
    /// The app being discussed, if any.
    #[serde(default)]
    pub current_app: Option<Vec<AppFile>>,
}
