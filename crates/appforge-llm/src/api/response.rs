//! Response types: the final message, its content blocks, stop reasons and usage.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::request::{ContentBlockParam, Message, Role};
use super::server_tools::ServerToolOutput;

/// A complete assistant message, as `create` returns it and as the accumulator builds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MessageResponse {
    /// The message id (`msg_...`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    /// The model that wrote it.
    #[serde(default, deserialize_with = "null_as_default")]
    pub model: String,
    /// Always [`Role::Assistant`].
    #[serde(default = "assistant")]
    pub role: Role,
    /// Its content blocks, in index order.
    #[serde(default, deserialize_with = "null_as_default")]
    pub content: Vec<ContentBlock>,
    /// Why generation stopped (absent in `message_start`).
    #[serde(default)]
    pub stop_reason: Option<StopReason>,
    /// The stop sequence that ended generation, if one did.
    #[serde(default)]
    pub stop_sequence: Option<String>,
    /// Token usage.
    #[serde(default, deserialize_with = "null_as_default")]
    pub usage: Usage,
}

impl Default for MessageResponse {
    fn default() -> Self {
        Self::new("", "")
    }
}

fn assistant() -> Role {
    Role::Assistant
}

impl MessageResponse {
    /// An empty assistant message with the given id and model.
    pub fn new(id: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            model: model.into(),
            role: Role::Assistant,
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage: Usage::default(),
        }
    }

    /// The text of every text block, concatenated.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for block in &self.content {
            if let ContentBlock::Text { text, .. } = block {
                out.push_str(text);
            }
        }
        out
    }

    /// The tool calls, in order: `(id, name, input)`.
    pub fn tool_uses(&self) -> impl Iterator<Item = (&str, &str, &Value)> {
        self.content.iter().filter_map(|block| match block {
            ContentBlock::ToolUse { id, name, input } => Some((id.as_str(), name.as_str(), input)),
            _ => None,
        })
    }

    /// This message as a conversation turn, to send back in a later request.
    pub fn to_message(&self) -> Message {
        Message::new(
            Role::Assistant,
            self.content.iter().map(ContentBlock::to_param).collect(),
        )
    }
}

/// A content block the model produced.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ContentBlock {
    /// Text, with the citations that support it.
    Text {
        /// The text.
        text: String,
        /// Citations, as the API sent them.
        citations: Vec<Value>,
    },
    /// Extended thinking.
    Thinking {
        /// The thinking text.
        thinking: String,
        /// The signature (arrives in a `signature_delta`).
        signature: String,
    },
    /// Thinking the API redacted.
    RedactedThinking {
        /// The encrypted data.
        data: String,
    },
    /// A call of a client tool.
    ToolUse {
        /// The call's id.
        id: String,
        /// The tool's name.
        name: String,
        /// The input (empty object in `content_block_start`; parsed at block stop).
        input: Value,
    },
    /// A call of a server tool (such as web search).
    ServerToolUse {
        /// The call's id.
        id: String,
        /// The tool's name.
        name: String,
        /// The input.
        input: Value,
    },
    /// The result of a server tool (`web_search_tool_result`, `web_fetch_tool_result`,
    /// `code_execution_tool_result`, `bash_code_execution_tool_result`,
    /// `text_editor_code_execution_tool_result`, `tool_search_tool_result`, and any later
    /// `*_tool_result`).
    ServerToolResult {
        /// The block type, such as `web_search_tool_result`.
        kind: String,
        /// The id of the server tool call it answers.
        tool_use_id: String,
        /// The typed content, for the kinds and shapes this crate knows.
        output: Option<Box<ServerToolOutput>>,
        /// The whole block, as the API sent it (and as it goes back in a later turn).
        raw: Value,
    },
    /// A file uploaded into the code execution container (`container_upload`).
    ContainerUpload {
        /// The file's id.
        file_id: String,
    },
    /// A block type this crate does not know, kept as raw JSON.
    Unknown(Value),
}

impl ContentBlock {
    /// Builds a block from its JSON; unknown types become [`ContentBlock::Unknown`].
    ///
    /// A known type whose fields do not fit is kept as `Unknown` too: a block never fails a
    /// stream.
    pub fn from_value(value: Value) -> Self {
        #[derive(Deserialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        enum Known {
            Text {
                #[serde(default)]
                text: String,
                #[serde(default, deserialize_with = "null_as_default")]
                citations: Vec<Value>,
            },
            Thinking {
                #[serde(default)]
                thinking: String,
                #[serde(default)]
                signature: String,
            },
            RedactedThinking {
                #[serde(default)]
                data: String,
            },
            ToolUse {
                id: String,
                name: String,
                #[serde(default)]
                input: Value,
            },
            ServerToolUse {
                id: String,
                name: String,
                #[serde(default)]
                input: Value,
            },
            ContainerUpload {
                file_id: String,
            },
        }
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if kind.ends_with("_tool_result") && kind != "tool_result" {
            let tool_use_id = value
                .get("tool_use_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            return Self::ServerToolResult {
                kind: kind.to_owned(),
                tool_use_id,
                output: ServerToolOutput::from_block(kind, &value).map(Box::new),
                raw: value,
            };
        }
        match Known::deserialize(&value) {
            Ok(Known::Text { text, citations }) => Self::Text { text, citations },
            Ok(Known::Thinking {
                thinking,
                signature,
            }) => Self::Thinking {
                thinking,
                signature,
            },
            Ok(Known::RedactedThinking { data }) => Self::RedactedThinking { data },
            Ok(Known::ToolUse { id, name, input }) => Self::ToolUse { id, name, input },
            Ok(Known::ServerToolUse { id, name, input }) => Self::ServerToolUse { id, name, input },
            Ok(Known::ContainerUpload { file_id }) => Self::ContainerUpload { file_id },
            Err(_) => Self::Unknown(value),
        }
    }

    /// The block as JSON, in the API's shape.
    pub fn to_value(&self) -> Value {
        use serde_json::json;
        match self {
            Self::Text { text, citations } if citations.is_empty() => {
                json!({"type": "text", "text": text})
            }
            Self::Text { text, citations } => {
                json!({"type": "text", "text": text, "citations": citations})
            }
            Self::Thinking {
                thinking,
                signature,
            } => json!({"type": "thinking", "thinking": thinking, "signature": signature}),
            Self::RedactedThinking { data } => json!({"type": "redacted_thinking", "data": data}),
            Self::ToolUse { id, name, input } => {
                json!({"type": "tool_use", "id": id, "name": name, "input": input})
            }
            Self::ServerToolUse { id, name, input } => {
                json!({"type": "server_tool_use", "id": id, "name": name, "input": input})
            }
            Self::ContainerUpload { file_id } => {
                json!({"type": "container_upload", "file_id": file_id})
            }
            Self::ServerToolResult { raw, .. } | Self::Unknown(raw) => raw.clone(),
        }
    }

    /// The block as a request block, to send back in a later turn.
    pub fn to_param(&self) -> ContentBlockParam {
        match self {
            Self::Text { text, .. } => ContentBlockParam::text(text.clone()),
            Self::Thinking {
                thinking,
                signature,
            } => ContentBlockParam::Thinking {
                thinking: thinking.clone(),
                signature: signature.clone(),
            },
            Self::RedactedThinking { data } => {
                ContentBlockParam::RedactedThinking { data: data.clone() }
            }
            Self::ToolUse { id, name, input } => ContentBlockParam::ToolUse {
                id: id.clone(),
                name: name.clone(),
                input: input.clone(),
                cache_control: None,
            },
            other => ContentBlockParam::Raw(other.to_value()),
        }
    }
}

impl Serialize for ContentBlock {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ContentBlock {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Self::from_value)
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// It finished its turn.
    EndTurn,
    /// It hit `max_tokens`.
    MaxTokens,
    /// It wrote a stop sequence.
    StopSequence,
    /// It called a tool.
    ToolUse,
    /// A long server-tool turn paused; send the message back to continue.
    PauseTurn,
    /// It refused.
    Refusal,
    /// The conversation filled the model's context window.
    ModelContextWindowExceeded,
    /// A reason this crate does not know, as the API spelled it.
    Unknown(String),
}

impl StopReason {
    /// The API's name for this reason.
    pub fn as_str(&self) -> &str {
        match self {
            Self::EndTurn => "end_turn",
            Self::MaxTokens => "max_tokens",
            Self::StopSequence => "stop_sequence",
            Self::ToolUse => "tool_use",
            Self::PauseTurn => "pause_turn",
            Self::Refusal => "refusal",
            Self::ModelContextWindowExceeded => "model_context_window_exceeded",
            Self::Unknown(other) => other,
        }
    }

    /// Parses the API's name; an unknown name becomes [`StopReason::Unknown`].
    pub fn parse(name: &str) -> Self {
        match name {
            "end_turn" => Self::EndTurn,
            "max_tokens" => Self::MaxTokens,
            "stop_sequence" => Self::StopSequence,
            "tool_use" => Self::ToolUse,
            "pause_turn" => Self::PauseTurn,
            "refusal" => Self::Refusal,
            "model_context_window_exceeded" => Self::ModelContextWindowExceeded,
            other => Self::Unknown(other.to_owned()),
        }
    }
}

impl Serialize for StopReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for StopReason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(Self::parse(&name))
    }
}

/// Token usage. The API reports cumulative counts, so merging keeps the larger of each.
///
/// ```
/// use appforge_llm::Usage;
///
/// let usage: Usage = serde_json::from_value(serde_json::json!({
///     "input_tokens": 12, "output_tokens": 900,
///     "cache_creation_input_tokens": 3000, "cache_read_input_tokens": 0,
///     "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
///     "output_tokens_details": {"thinking_tokens": 640}
/// })).unwrap();
/// assert_eq!(usage.thinking_tokens(), 640);
/// assert_eq!(usage.cache_write_1h_tokens(), 2000);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Usage {
    /// Input tokens not read from or written to the cache.
    #[serde(default, deserialize_with = "null_as_default")]
    pub input_tokens: u64,
    /// Output tokens, thinking included.
    #[serde(default, deserialize_with = "null_as_default")]
    pub output_tokens: u64,
    /// Input tokens written to the cache.
    #[serde(default, deserialize_with = "null_as_default")]
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the cache.
    #[serde(default, deserialize_with = "null_as_default")]
    pub cache_read_input_tokens: u64,
    /// The cache writes split by time to live, when the API reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation: Option<CacheCreation>,
    /// Detail of the output tokens, when the API reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens_details: Option<OutputTokensDetails>,
    /// Server tool requests (web search, web fetch), when any ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_tool_use: Option<ServerToolUsage>,
}

/// Cache writes split by time to live (`usage.cache_creation`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CacheCreation {
    /// Tokens written with the five-minute time to live.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ephemeral_5m_input_tokens: u64,
    /// Tokens written with the one-hour time to live.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ephemeral_1h_input_tokens: u64,
}

/// Detail of the output tokens (`usage.output_tokens_details`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    /// Output tokens spent thinking (always at most `output_tokens`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub thinking_tokens: u64,
}

/// Server tool requests (`usage.server_tool_use`), billed per request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServerToolUsage {
    /// Web search requests.
    #[serde(default, deserialize_with = "null_as_default")]
    pub web_search_requests: u64,
    /// Web fetch requests.
    #[serde(default, deserialize_with = "null_as_default")]
    pub web_fetch_requests: u64,
}

fn max_option<T: Copy>(
    earlier: Option<T>,
    later: Option<T>,
    merge: impl FnOnce(T, T) -> T,
) -> Option<T> {
    match (earlier, later) {
        (Some(a), Some(b)) => Some(merge(a, b)),
        (a, b) => a.or(b),
    }
}

fn add_option<T: Copy>(a: Option<T>, b: Option<T>, add: impl FnOnce(T, T) -> T) -> Option<T> {
    max_option(a, b, add)
}

impl Usage {
    /// Usage with the given input and output tokens.
    pub fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Self {
            input_tokens,
            output_tokens,
            ..Self::default()
        }
    }

    /// Merges a later cumulative report into this one (field-wise maximum).
    pub fn merge(&mut self, later: &Usage) {
        self.input_tokens = self.input_tokens.max(later.input_tokens);
        self.output_tokens = self.output_tokens.max(later.output_tokens);
        self.cache_creation_input_tokens = self
            .cache_creation_input_tokens
            .max(later.cache_creation_input_tokens);
        self.cache_read_input_tokens = self
            .cache_read_input_tokens
            .max(later.cache_read_input_tokens);
        self.cache_creation = max_option(self.cache_creation, later.cache_creation, |a, b| {
            CacheCreation {
                ephemeral_5m_input_tokens: a
                    .ephemeral_5m_input_tokens
                    .max(b.ephemeral_5m_input_tokens),
                ephemeral_1h_input_tokens: a
                    .ephemeral_1h_input_tokens
                    .max(b.ephemeral_1h_input_tokens),
            }
        });
        self.output_tokens_details = max_option(
            self.output_tokens_details,
            later.output_tokens_details,
            |a, b| OutputTokensDetails {
                thinking_tokens: a.thinking_tokens.max(b.thinking_tokens),
            },
        );
        self.server_tool_use = max_option(self.server_tool_use, later.server_tool_use, |a, b| {
            ServerToolUsage {
                web_search_requests: a.web_search_requests.max(b.web_search_requests),
                web_fetch_requests: a.web_fetch_requests.max(b.web_fetch_requests),
            }
        });
    }

    /// Adds the usage of another request (a later round of the same job) to this one.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cache_creation_input_tokens = self
            .cache_creation_input_tokens
            .saturating_add(other.cache_creation_input_tokens);
        self.cache_read_input_tokens = self
            .cache_read_input_tokens
            .saturating_add(other.cache_read_input_tokens);
        self.cache_creation = add_option(self.cache_creation, other.cache_creation, |a, b| {
            CacheCreation {
                ephemeral_5m_input_tokens: a
                    .ephemeral_5m_input_tokens
                    .saturating_add(b.ephemeral_5m_input_tokens),
                ephemeral_1h_input_tokens: a
                    .ephemeral_1h_input_tokens
                    .saturating_add(b.ephemeral_1h_input_tokens),
            }
        });
        self.output_tokens_details = add_option(
            self.output_tokens_details,
            other.output_tokens_details,
            |a, b| OutputTokensDetails {
                thinking_tokens: a.thinking_tokens.saturating_add(b.thinking_tokens),
            },
        );
        self.server_tool_use = add_option(self.server_tool_use, other.server_tool_use, |a, b| {
            ServerToolUsage {
                web_search_requests: a.web_search_requests.saturating_add(b.web_search_requests),
                web_fetch_requests: a.web_fetch_requests.saturating_add(b.web_fetch_requests),
            }
        });
    }

    /// Every input token: uncached, cache writes and cache reads.
    pub fn total_input_tokens(&self) -> u64 {
        self.input_tokens
            .saturating_add(self.cache_creation_input_tokens)
            .saturating_add(self.cache_read_input_tokens)
    }

    /// Output tokens spent thinking (0 when the API did not report them).
    pub fn thinking_tokens(&self) -> u64 {
        self.output_tokens_details
            .map_or(0, |details| details.thinking_tokens)
    }

    /// Cache writes made with the one-hour time to live (0 when the API did not split them).
    pub fn cache_write_1h_tokens(&self) -> u64 {
        self.cache_creation
            .map_or(0, |split| split.ephemeral_1h_input_tokens)
    }

    /// These counts as the price table's [`TokenCounts`](appforge_core::TokenCounts).
    pub fn token_counts(&self) -> appforge_core::TokenCounts {
        appforge_core::TokenCounts {
            input: self.input_tokens,
            output: self.output_tokens,
            cache_write: self.cache_creation_input_tokens,
            cache_write_1h: self.cache_write_1h_tokens(),
            cache_read: self.cache_read_input_tokens,
        }
    }
}

pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
