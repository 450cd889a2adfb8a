//! What each pipeline is asked: the typed inputs the prompts are rendered from.

use serde::{Deserialize, Serialize};

use crate::pipeline::PhasePlan;
use crate::protocol::AppFile;

/// Who said a message of the conversation history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HistoryRole {
    /// The user.
    User,
    /// The model.
    Assistant,
}

/// One earlier message of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HistoryMessage {
    /// Who said it.
    pub role: HistoryRole,
    /// What was said.
    pub content: String,
    /// Images sent with the message, before its text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Attachment>,
}

impl HistoryMessage {
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: HistoryRole::User,
            content: content.into(),
            images: Vec::new(),
        }
    }

    /// A model message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: HistoryRole::Assistant,
            content: content.into(),
            images: Vec::new(),
        }
    }
}

/// The phase being built, with the plan it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Reference images, sent before the text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
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
    /// Reference images, sent before the text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

/// The input of the `plan_phases` pipeline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRequest {
    /// The user's app idea.
    pub prompt: String,
    /// The conversation so far.
    #[serde(default)]
    pub history: Vec<HistoryMessage>,
    /// Reference images, sent before the text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
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
    /// Reference images, sent before the text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

/// An image attached to a request: a reference (a screenshot, a mock-up) the model is asked
/// to match. It is sent before the request's text, as an image block (base64 data for the
/// Messages API, a data URL for OpenAI-compatible providers).
///
/// Serialized with its bytes as base64. `Debug` shows the size, not the bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Attachment {
    /// The MIME type: `image/png`, `image/jpeg`, `image/webp` or `image/gif`.
    pub media_type: String,
    /// The image file's bytes.
    #[serde(with = "base64_bytes")]
    #[schemars(with = "String", extend("contentEncoding" = "base64"))]
    pub data: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Attachment {
    /// An image of `width` x `height` pixels.
    pub fn new(media_type: impl Into<String>, data: Vec<u8>, width: u32, height: u32) -> Self {
        Self {
            media_type: media_type.into(),
            data,
            width,
            height,
        }
    }

    /// The input tokens the image costs: width x height / 750, as the Messages API
    /// documents.
    #[must_use]
    pub fn estimated_tokens(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height) / 750
    }

    /// The bytes as base64.
    #[must_use]
    pub fn base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&self.data)
    }
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachment")
            .field("media_type", &self.media_type)
            .field("bytes", &self.data.len())
            .field("width", &self.width)
            .field("height", &self.height)
            .finish()
    }
}

mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}
