//! Request types of the Messages API (`POST /v1/messages`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A Messages API request: model, limits, system prompt, conversation, tools and sampling.
///
/// Serialises exactly as the API expects; optional settings left unset are omitted. Build one
/// with [`MessageRequest::new`] and the chaining setters:
///
/// ```
/// use appforge_llm::{CacheControl, MessageRequest, SystemPrompt};
///
/// let request = MessageRequest::new("claude-sonnet-5-5", 1024)
///     .system(SystemPrompt::text("You write web apps.").cached(CacheControl::ephemeral()))
///     .user("A habit tracker with streaks")
///     .temperature(0.2);
/// let json = serde_json::to_value(&request).unwrap();
/// assert_eq!(json["messages"][0]["role"], "user");
/// assert_eq!(json["system"][0]["cache_control"]["type"], "ephemeral");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MessageRequest {
    /// The model name, such as `claude-sonnet-4-5`.
    pub model: String,
    /// The most tokens the model may generate.
    pub max_tokens: u32,
    /// The conversation so far, oldest first.
    pub messages: Vec<Message>,
    /// The system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemPrompt>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    /// How the model must choose among the tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Thinking: adaptive, manual extended thinking, between tool calls, or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking>,
    /// Output settings: effort and a JSON schema for structured output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_config: Option<OutputConfig>,
    /// Sampling temperature, 0.0 to 1.0. Removed from the Messages API in version
    /// `2026-10-21` (the client's default), and refused by the Claude 5 generation under any
    /// version; kept for OpenAI-compatible providers and older API versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling cut-off (see [`MessageRequest::temperature`] for which APIs take it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Top-k sampling cut-off (see [`MessageRequest::temperature`] for which APIs take it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// Strings that end generation when the model writes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<String>,
    /// Request metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

impl MessageRequest {
    /// A request for `model` that may generate up to `max_tokens`, with no messages yet.
    pub fn new(model: impl Into<String>, max_tokens: u32) -> Self {
        Self {
            model: model.into(),
            max_tokens,
            messages: Vec::new(),
            system: None,
            tools: Vec::new(),
            tool_choice: None,
            thinking: None,
            output_config: None,
            temperature: None,
            top_p: None,
            top_k: None,
            stop_sequences: Vec::new(),
            metadata: None,
        }
    }

    /// Sets the system prompt (a string converts into [`SystemPrompt::Text`]).
    #[must_use]
    pub fn system(mut self, system: impl Into<SystemPrompt>) -> Self {
        self.system = Some(system.into());
        self
    }

    /// Appends a message.
    #[must_use]
    pub fn message(mut self, message: Message) -> Self {
        self.messages.push(message);
        self
    }

    /// Appends a user message with one text block.
    #[must_use]
    pub fn user(self, text: impl Into<String>) -> Self {
        self.message(Message::user(text))
    }

    /// Appends an assistant message with one text block (a prefill when it is the last one).
    #[must_use]
    pub fn assistant(self, text: impl Into<String>) -> Self {
        self.message(Message::assistant(text))
    }

    /// Appends a tool definition.
    #[must_use]
    pub fn tool(mut self, tool: Tool) -> Self {
        self.tools.push(tool);
        self
    }

    /// Sets the tool choice.
    #[must_use]
    pub fn tool_choice(mut self, choice: ToolChoice) -> Self {
        self.tool_choice = Some(choice);
        self
    }

    /// Sets thinking.
    #[must_use]
    pub fn thinking(mut self, thinking: Thinking) -> Self {
        self.thinking = Some(thinking);
        self
    }

    /// Sets `output_config.effort`.
    #[must_use]
    pub fn effort(mut self, effort: Effort) -> Self {
        self.output_config
            .get_or_insert_with(OutputConfig::default)
            .effort = Some(effort);
        self
    }

    /// Sets `output_config.format`: the reply is JSON that matches the format's schema
    /// (structured outputs).
    #[must_use]
    pub fn output_format(mut self, format: OutputFormat) -> Self {
        self.output_config
            .get_or_insert_with(OutputConfig::default)
            .format = Some(format);
        self
    }

    /// Sets the sampling temperature.
    #[must_use]
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Sets nucleus sampling.
    #[must_use]
    pub fn top_p(mut self, top_p: f32) -> Self {
        self.top_p = Some(top_p);
        self
    }

    /// Sets top-k sampling.
    #[must_use]
    pub fn top_k(mut self, top_k: u32) -> Self {
        self.top_k = Some(top_k);
        self
    }

    /// Appends a stop sequence.
    #[must_use]
    pub fn stop_sequence(mut self, stop: impl Into<String>) -> Self {
        self.stop_sequences.push(stop.into());
        self
    }

    /// Sets the metadata's `user_id` (an opaque id, never personal data).
    #[must_use]
    pub fn user_id(mut self, user_id: impl Into<String>) -> Self {
        self.metadata = Some(Metadata {
            user_id: Some(user_id.into()),
        });
        self
    }

    /// The text of the last user message, if any (handy in tests and logs).
    pub fn last_user_text(&self) -> Option<String> {
        let message = self.messages.iter().rev().find(|m| m.role == Role::User)?;
        let mut out = String::new();
        for block in &message.content {
            if let ContentBlockParam::Text { text, .. } = block {
                out.push_str(text);
            }
        }
        Some(out)
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The user (and tool results).
    User,
    /// The model.
    Assistant,
}

/// One message of the conversation: a role and content blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its content blocks (a bare string is accepted when deserialising).
    #[serde(deserialize_with = "content_or_string")]
    pub content: Vec<ContentBlockParam>,
}

impl Message {
    /// A user message with one text block.
    pub fn user(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: vec![ContentBlockParam::text(text)],
        }
    }

    /// An assistant message with one text block.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: vec![ContentBlockParam::text(text)],
        }
    }

    /// A message with the given role and blocks.
    pub fn new(role: Role, content: Vec<ContentBlockParam>) -> Self {
        Self { role, content }
    }
}

fn content_or_string<'de, D>(deserializer: D) -> Result<Vec<ContentBlockParam>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Blocks(Vec<ContentBlockParam>),
    }
    Ok(match Either::deserialize(deserializer)? {
        Either::Text(text) => vec![ContentBlockParam::text(text)],
        Either::Blocks(blocks) => blocks,
    })
}

/// A content block sent to the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ContentBlockParam {
    /// Text.
    Text {
        /// The text.
        text: String,
        /// A cache breakpoint after this block.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    /// An image.
    Image {
        /// Where the image comes from.
        source: ImageSource,
        /// A cache breakpoint after this block.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    /// A tool call the assistant made earlier.
    ToolUse {
        /// The call's id.
        id: String,
        /// The tool's name.
        name: String,
        /// The tool's input.
        input: Value,
        /// A cache breakpoint after this block.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    /// The result of a tool call, sent in a user message.
    ToolResult {
        /// The id of the `tool_use` block this answers.
        tool_use_id: String,
        /// The result: a string or content blocks, as the API accepts.
        content: Value,
        /// Whether the tool failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_error: Option<bool>,
        /// A cache breakpoint after this block.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    /// A thinking block from an earlier assistant turn, with its signature.
    Thinking {
        /// The thinking text.
        thinking: String,
        /// The signature that proves it unmodified.
        signature: String,
    },
    /// A redacted thinking block from an earlier assistant turn.
    RedactedThinking {
        /// The encrypted data.
        data: String,
    },
    /// Any other block, sent as it is (server tool use and results, documents, ...).
    #[serde(untagged)]
    Raw(Value),
}

impl ContentBlockParam {
    /// A text block without cache control.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text {
            text: text.into(),
            cache_control: None,
        }
    }

    /// A successful tool result with text content.
    pub fn tool_result(tool_use_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self::ToolResult {
            tool_use_id: tool_use_id.into(),
            content: Value::String(content.into()),
            is_error: None,
            cache_control: None,
        }
    }
}

/// The source of an image block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ImageSource {
    /// Inline base64 data.
    Base64 {
        /// The MIME type, such as `image/png`.
        media_type: String,
        /// The base64 data.
        data: String,
    },
    /// An image the API fetches.
    Url {
        /// Its URL.
        url: String,
    },
}

/// A prompt-cache breakpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CacheControl {
    /// The ephemeral cache, with an optional time to live.
    Ephemeral {
        /// How long the entry lives (the API's default is five minutes).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl: Option<CacheTtl>,
    },
}

impl CacheControl {
    /// An ephemeral breakpoint with the API's default time to live.
    pub fn ephemeral() -> Self {
        Self::Ephemeral { ttl: None }
    }

    /// An ephemeral breakpoint with the given time to live.
    pub fn ephemeral_ttl(ttl: CacheTtl) -> Self {
        Self::Ephemeral { ttl: Some(ttl) }
    }
}

/// The time to live of a cache entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum CacheTtl {
    /// Five minutes.
    #[serde(rename = "5m")]
    FiveMinutes,
    /// One hour.
    #[serde(rename = "1h")]
    OneHour,
}

/// The system prompt: a plain string or text blocks (which may carry cache control).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SystemPrompt {
    /// A plain string.
    Text(String),
    /// Text blocks.
    Blocks(Vec<SystemBlock>),
}

impl SystemPrompt {
    /// A system prompt of one text block (use [`SystemPrompt::cached`] to add a breakpoint).
    pub fn text(text: impl Into<String>) -> Self {
        Self::Blocks(vec![SystemBlock::text(text)])
    }

    /// Puts a cache breakpoint on the last block (turning a plain string into a block).
    #[must_use]
    pub fn cached(self, cache_control: CacheControl) -> Self {
        let mut blocks = match self {
            Self::Text(text) => vec![SystemBlock::text(text)],
            Self::Blocks(blocks) => blocks,
        };
        if let Some(last) = blocks.last_mut() {
            last.cache_control = Some(cache_control);
        }
        Self::Blocks(blocks)
    }

    /// Appends a text block.
    #[must_use]
    pub fn block(self, block: SystemBlock) -> Self {
        let mut blocks = match self {
            Self::Text(text) => vec![SystemBlock::text(text)],
            Self::Blocks(blocks) => blocks,
        };
        blocks.push(block);
        Self::Blocks(blocks)
    }

    /// The whole prompt as one string (blocks joined without separator).
    pub fn to_text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Blocks(blocks) => blocks.iter().map(|b| b.text.as_str()).collect(),
        }
    }
}

impl From<String> for SystemPrompt {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<&str> for SystemPrompt {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

/// One text block of a system prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "text")]
pub struct SystemBlock {
    /// The text.
    pub text: String,
    /// A cache breakpoint after this block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
}

impl SystemBlock {
    /// A text block without cache control.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            cache_control: None,
        }
    }

    /// The same block with a cache breakpoint.
    #[must_use]
    pub fn cached(mut self, cache_control: CacheControl) -> Self {
        self.cache_control = Some(cache_control);
        self
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Tool {
    /// A client tool described by a JSON schema.
    Custom(CustomTool),
    /// A server tool (such as `web_search_20250305`), sent as it is.
    Server(Value),
}

impl Tool {
    /// A client tool with a name, a description and an input schema.
    pub fn custom(
        name: impl Into<String>,
        description: impl Into<String>,
        input_schema: Value,
    ) -> Self {
        Self::Custom(CustomTool {
            name: name.into(),
            description: Some(description.into()),
            input_schema,
            cache_control: None,
        })
    }
}

/// A client tool described by a JSON schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomTool {
    /// The tool's name.
    pub name: String,
    /// What the tool does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The JSON schema of its input.
    pub input_schema: Value,
    /// A cache breakpoint after this tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
}

/// How the model must choose among the tools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ToolChoice {
    /// The model decides.
    Auto {
        /// Allow at most one tool call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// The model must call some tool.
    Any {
        /// Allow at most one tool call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// The model must call this tool.
    Tool {
        /// The tool's name.
        name: String,
        /// Allow at most one tool call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// The model must not call tools.
    None,
}

impl ToolChoice {
    /// The model decides.
    pub fn auto() -> Self {
        Self::Auto {
            disable_parallel_tool_use: None,
        }
    }

    /// The model must call the named tool.
    pub fn tool(name: impl Into<String>) -> Self {
        Self::Tool {
            name: name.into(),
            disable_parallel_tool_use: None,
        }
    }
}

/// How the model thinks before it answers (`thinking`).
///
/// Which types a model accepts depends on the model: the Claude 5 generation thinks
/// adaptively and refuses manual budgets; Haiku 4.5 and Opus 4.5 take only manual budgets
/// (see [`appforge_core::models`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Thinking {
    /// The model decides when and how much to think; `output_config.effort` steers it.
    Adaptive {
        /// Whether thinking text is returned or only its signature.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display: Option<ThinkingDisplay>,
    },
    /// Manual extended thinking with a token budget (at least 1,024, below `max_tokens`).
    Enabled {
        /// The most tokens thinking may use.
        budget_tokens: u32,
        /// Whether thinking text is returned or only its signature.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display: Option<ThinkingDisplay>,
    },
    /// Thinking off, except for short progress notes between tool calls, which come back as
    /// thinking blocks.
    BetweenTools,
    /// Thinking off.
    Disabled,
}

impl Thinking {
    /// Adaptive thinking with the model's default display.
    pub fn adaptive() -> Self {
        Self::Adaptive { display: None }
    }

    /// Manual extended thinking with the given budget.
    pub fn enabled(budget_tokens: u32) -> Self {
        Self::Enabled {
            budget_tokens,
            display: None,
        }
    }

    /// The API's name for this type (`adaptive`, `enabled`, `between_tools`, `disabled`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Adaptive { .. } => "adaptive",
            Self::Enabled { .. } => "enabled",
            Self::BetweenTools => "between_tools",
            Self::Disabled => "disabled",
        }
    }
}

/// Whether thinking text is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ThinkingDisplay {
    /// Thinking is returned (summarised).
    Summarized,
    /// Thinking text is left out; the signature still comes, for multi-turn continuity.
    Omitted,
}

/// `output_config`: how hard the model works and the shape of its reply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OutputConfig {
    /// How much effort (thinking and thoroughness) the model spends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<Effort>,
    /// A JSON schema the reply must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<OutputFormat>,
}

/// `output_config.effort`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Effort {
    /// The least effort: fastest and cheapest.
    Low,
    /// Medium.
    Medium,
    /// High (the default of most models).
    High,
    /// Extra high (Opus 4.7 and later, the Claude 5 generation).
    XHigh,
    /// The most effort.
    Max,
    /// A level this crate does not know, sent as it is.
    Other(String),
}

impl Effort {
    /// The API's name for this level.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::XHigh => "xhigh",
            Self::Max => "max",
            Self::Other(other) => other,
        }
    }

    /// Parses the API's name; an unknown name becomes [`Effort::Other`].
    pub fn parse(name: &str) -> Self {
        match name {
            "low" => Self::Low,
            "medium" => Self::Medium,
            "high" => Self::High,
            "xhigh" => Self::XHigh,
            "max" => Self::Max,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl std::fmt::Display for Effort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Effort {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Effort {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(Self::parse(&name))
    }
}

/// `output_config.format`: the shape of the reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum OutputFormat {
    /// JSON matching a schema; the reply arrives as a text block holding the JSON.
    JsonSchema {
        /// The JSON schema.
        schema: Value,
    },
}

impl OutputFormat {
    /// A JSON-schema format. The API takes a subset of JSON Schema (every object closed with
    /// `"additionalProperties": false`, `anyOf` where `oneOf` would stand, no numeric or
    /// length bounds); [`crate::structured::schema_for`] builds such a schema from a Rust
    /// type.
    pub fn json_schema(schema: Value) -> Self {
        Self::JsonSchema { schema }
    }

    /// The schema.
    pub fn schema(&self) -> &Value {
        match self {
            Self::JsonSchema { schema } => schema,
        }
    }
}

/// Request metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// An opaque id of the end user, for abuse detection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serialises_exactly_as_the_api_expects() {
        let request = MessageRequest::new("claude-sonnet-4-5", 2048)
            .system(SystemPrompt::text("rules").block(
                SystemBlock::text("app").cached(CacheControl::ephemeral_ttl(CacheTtl::OneHour)),
            ))
            .user("hi")
            .tool(Tool::custom(
                "write_file",
                "Writes a file",
                json!({"type": "object"}),
            ))
            .tool_choice(ToolChoice::auto())
            .thinking(Thinking::enabled(1024))
            .top_k(5)
            .stop_sequence("===END===")
            .user_id("u1");
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            json!({
                "model": "claude-sonnet-4-5",
                "max_tokens": 2048,
                "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                "system": [
                    {"type": "text", "text": "rules"},
                    {"type": "text", "text": "app", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
                ],
                "tools": [{"name": "write_file", "description": "Writes a file", "input_schema": {"type": "object"}}],
                "tool_choice": {"type": "auto"},
                "thinking": {"type": "enabled", "budget_tokens": 1024},
                "top_k": 5,
                "stop_sequences": ["===END==="],
                "metadata": {"user_id": "u1"}
            })
        );
    }

    #[test]
    fn a_plain_system_string_stays_a_string_and_content_may_be_a_string() {
        let request = MessageRequest::new("m", 1).system("be brief");
        assert_eq!(
            serde_json::to_value(&request).unwrap()["system"],
            json!("be brief")
        );
        let message: Message =
            serde_json::from_value(json!({"role": "assistant", "content": "ok"})).unwrap();
        assert_eq!(message, Message::assistant("ok"));
    }

    /// Each new field against the wire shapes of the official SDK's types
    /// (`ThinkingConfigParam`, `OutputConfig`, `JSONOutputFormat` in `@anthropic-ai/sdk` 1.16).
    #[test]
    fn current_request_fields_serialise_as_the_sdk_types() {
        let shapes = [
            (Thinking::adaptive(), json!({"type": "adaptive"})),
            (
                Thinking::Adaptive {
                    display: Some(ThinkingDisplay::Summarized),
                },
                json!({"type": "adaptive", "display": "summarized"}),
            ),
            (
                Thinking::Enabled {
                    budget_tokens: 8000,
                    display: Some(ThinkingDisplay::Omitted),
                },
                json!({"type": "enabled", "budget_tokens": 8000, "display": "omitted"}),
            ),
            (Thinking::BetweenTools, json!({"type": "between_tools"})),
            (Thinking::Disabled, json!({"type": "disabled"})),
        ];
        for (thinking, wire) in shapes {
            assert_eq!(serde_json::to_value(thinking).unwrap(), wire);
            assert_eq!(serde_json::from_value::<Thinking>(wire).unwrap(), thinking);
        }
        let efforts = [
            Effort::Low,
            Effort::Medium,
            Effort::High,
            Effort::XHigh,
            Effort::Max,
        ];
        let names: Vec<String> = efforts
            .iter()
            .map(|e| serde_json::to_value(e).unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            [
                r#""low""#,
                r#""medium""#,
                r#""high""#,
                r#""xhigh""#,
                r#""max""#
            ]
        );
        assert_eq!(Effort::parse("ultra"), Effort::Other("ultra".into()));

        let schema = json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"], "additionalProperties": false});
        let request = MessageRequest::new("claude-opus-5-5", 4096)
            .user("name it")
            .thinking(Thinking::adaptive())
            .effort(Effort::Medium)
            .output_format(OutputFormat::json_schema(schema.clone()));
        let wire = serde_json::to_value(&request).unwrap();
        // Maps sorted: the same snapshot whether or not serde_json keeps insertion order.
        insta::assert_snapshot!(appforge_testing::sorted_json(&wire));
        assert_eq!(
            wire["output_config"],
            json!({"effort": "medium", "format": {"type": "json_schema", "schema": schema}})
        );
        let back: MessageRequest = serde_json::from_value(wire).unwrap();
        assert_eq!(back, request);
        // Nothing new is sent unless set.
        let plain = serde_json::to_value(MessageRequest::new("m", 1)).unwrap();
        assert!(plain.get("output_config").is_none() && plain.get("thinking").is_none());
    }

    #[test]
    fn raw_blocks_pass_through_untouched() {
        let raw = json!({"type": "web_search_tool_result", "tool_use_id": "s1", "content": []});
        let block: ContentBlockParam = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(block, ContentBlockParam::Raw(raw.clone()));
        assert_eq!(serde_json::to_value(&block).unwrap(), raw);
    }
}
