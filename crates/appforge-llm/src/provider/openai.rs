//! An OpenAI-compatible chat-completions provider (OpenAI, Ollama, vLLM, LM Studio, ...),
//! mapped onto the Messages API's stream events.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use appforge_core::{ExposeSecret, SecretString};
use futures::FutureExt;
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{EventStream, Provider};
use crate::api::{
    ContentBlock, ContentBlockParam, Delta, ImageSource, MessageRequest, MessageResponse,
    ResponseMeta, Role, StopReason, StreamEvent, SystemPrompt, Tool, ToolChoice, Usage,
};
use crate::client::{FrameMapper, Timeouts, Transport, encode, error_body, validate_base_url};
use crate::error::{ApiError, Error, Result};
use crate::retry::RetryPolicy;
use crate::sse::SseFrame;

/// A provider for servers that speak OpenAI's streaming chat completions
/// (`POST {base_url}/chat/completions`).
///
/// Text, reasoning (`reasoning_content` / `reasoning`, as vLLM and Ollama send) and tool
/// calls arrive as the same [`StreamEvent`]s as from the Messages API: a text block, a
/// thinking block, `tool_use` blocks with `input_json_delta`s, then the stop reason and usage.
///
/// ```
/// use appforge_llm::OpenAiProvider;
///
/// let ollama = OpenAiProvider::builder().base_url("http://127.0.0.1:11434/v1").build()?;
/// # Ok::<_, appforge_llm::Error>(())
/// ```
#[derive(Clone)]
pub struct OpenAiProvider {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    url: String,
    headers: HeaderMap,
}

impl fmt::Debug for OpenAiProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiProvider")
            .field("url", &self.inner.url)
            .field("api_key", &"[redacted]")
            .field("timeouts", &self.inner.transport.timeouts)
            .finish_non_exhaustive()
    }
}

/// Settings of an [`OpenAiProvider`].
pub struct OpenAiProviderBuilder {
    base_url: String,
    api_key: Option<SecretString>,
    timeouts: Timeouts,
    retry: RetryPolicy,
}

impl fmt::Debug for OpenAiProviderBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiProviderBuilder")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("timeouts", &self.timeouts)
            .field("retry", &self.retry)
            .finish()
    }
}

impl OpenAiProvider {
    /// A builder with OpenAI's base URL, no key, default timeouts and retries.
    pub fn builder() -> OpenAiProviderBuilder {
        OpenAiProviderBuilder {
            base_url: "https://api.openai.com/v1".to_owned(),
            api_key: None,
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
        }
    }
}

impl OpenAiProviderBuilder {
    /// The base URL, including any `/v1`: requests go to `{base_url}/chat/completions`.
    #[must_use]
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// A bearer token (optional: local servers usually need none).
    #[must_use]
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(SecretString::from(key.into()));
        self
    }

    /// The timeouts.
    #[must_use]
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The retry policy.
    #[must_use]
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Builds the provider.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a base URL that is not `http(s)` or a key that is not a valid
    /// header value.
    pub fn build(self) -> Result<OpenAiProvider> {
        let base = validate_base_url(&self.base_url)?;
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(key) = &self.api_key {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))
                .map_err(|_| Error::Config("the API key is not a valid header value".into()))?;
            value.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, value);
        }
        Ok(OpenAiProvider {
            inner: Arc::new(Inner {
                transport: Transport::new(self.timeouts, self.retry)?,
                url: format!("{base}/chat/completions"),
                headers,
            }),
        })
    }
}

impl Provider for OpenAiProvider {
    fn name(&self) -> &str {
        "openai-compatible"
    }

    fn stream(&self, request: MessageRequest) -> BoxFuture<'_, Result<EventStream>> {
        async move {
            let body = encode(&chat_body(&request))?;
            let span = tracing::info_span!(
                "llm.request",
                provider = "openai-compatible",
                operation = "stream",
                model = %request.model,
                request_id = tracing::field::Empty,
                retries = tracing::field::Empty,
                ttft_ms = tracing::field::Empty,
                input_tokens = tracing::field::Empty,
                output_tokens = tracing::field::Empty,
            );
            let inner = &self.inner;
            let stream = inner
                .transport
                .stream(
                    span,
                    || {
                        inner
                            .transport
                            .http
                            .post(&inner.url)
                            .headers(inner.headers.clone())
                            .body(body.clone())
                    },
                    ChatFrames::default,
                )
                .await?;
            Ok(Box::pin(stream) as EventStream)
        }
        .boxed()
    }
}

/// The chat-completions body for a Messages API request.
pub(crate) fn chat_body(request: &MessageRequest) -> Value {
    let mut messages = Vec::new();
    if let Some(system) = &request.system {
        let text = match system {
            SystemPrompt::Text(text) => text.clone(),
            SystemPrompt::Blocks(_) => system.to_text(),
        };
        messages.push(json!({"role": "system", "content": text}));
    }
    for message in &request.messages {
        let role = match message.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        let mut parts = Vec::new();
        let mut tool_calls = Vec::new();
        for block in &message.content {
            match block {
                ContentBlockParam::Text { text, .. } => {
                    parts.push(json!({"type": "text", "text": text}));
                }
                ContentBlockParam::Image { source, .. } => {
                    let url = match source {
                        ImageSource::Base64 { media_type, data } => {
                            format!("data:{media_type};base64,{data}")
                        }
                        ImageSource::Url { url } => url.clone(),
                    };
                    parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
                }
                ContentBlockParam::ToolUse {
                    id, name, input, ..
                } => tool_calls.push(json!({
                    "id": id, "type": "function",
                    "function": {"name": name, "arguments": input.to_string()}
                })),
                ContentBlockParam::ToolResult {
                    tool_use_id,
                    content,
                    ..
                } => {
                    let text = match content {
                        Value::String(text) => text.clone(),
                        Value::Array(items) => items
                            .iter()
                            .filter_map(|item| item.get("text").and_then(Value::as_str))
                            .collect(),
                        other => other.to_string(),
                    };
                    messages.push(
                        json!({"role": "tool", "tool_call_id": tool_use_id, "content": text}),
                    );
                }
                _ => {}
            }
        }
        if parts.is_empty() && tool_calls.is_empty() {
            continue;
        }
        let all_text = parts.iter().all(|p| p["type"] == "text");
        let content = if all_text {
            Value::String(parts.iter().filter_map(|p| p["text"].as_str()).collect())
        } else {
            Value::Array(parts)
        };
        let mut out = json!({"role": role, "content": content});
        if !tool_calls.is_empty() {
            out["tool_calls"] = Value::Array(tool_calls);
        }
        messages.push(out);
    }
    let mut body = json!({
        "model": request.model,
        "messages": messages,
        "max_tokens": request.max_tokens,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(p) = request.top_p {
        body["top_p"] = json!(p);
    }
    if !request.stop_sequences.is_empty() {
        body["stop"] = json!(request.stop_sequences);
    }
    let tools: Vec<Value> = request
        .tools
        .iter()
        .filter_map(|tool| match tool {
            Tool::Custom(tool) => Some(json!({"type": "function", "function": {
                "name": tool.name, "description": tool.description, "parameters": tool.input_schema
            }})),
            Tool::Server(_) => None,
        })
        .collect();
    if !tools.is_empty() {
        body["tools"] = Value::Array(tools);
        if let Some(choice) = &request.tool_choice {
            body["tool_choice"] = match choice {
                ToolChoice::Auto { .. } => json!("auto"),
                ToolChoice::Any { .. } => json!("required"),
                ToolChoice::Tool { name, .. } => {
                    json!({"type": "function", "function": {"name": name}})
                }
                ToolChoice::None => json!("none"),
            };
        }
    }
    body
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<ChatUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<ChoiceDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ToolCallDelta>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: usize,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct ChatUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: u64,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text(usize),
    Thinking(usize),
    Tool { call: usize, block: usize },
}

/// The state machine from chat-completion chunks to Messages API events.
#[derive(Debug, Default)]
pub(crate) struct ChatFrames {
    started: bool,
    open: Option<Open>,
    open_tool_id: Option<String>,
    next_index: usize,
    stop_reason: Option<StopReason>,
    usage: Usage,
    done: bool,
}

impl ChatFrames {
    fn start(&mut self, chunk: &Chunk, out: &mut VecDeque<Result<StreamEvent>>) {
        if !self.started {
            self.started = true;
            let message = MessageResponse::new(
                chunk.id.clone().unwrap_or_default(),
                chunk.model.clone().unwrap_or_default(),
            );
            out.push_back(Ok(StreamEvent::MessageStart { message }));
        }
    }

    fn close(&mut self, out: &mut VecDeque<Result<StreamEvent>>) {
        if let Some(open) = self.open.take() {
            let index = match open {
                Open::Text(index) | Open::Thinking(index) | Open::Tool { block: index, .. } => {
                    index
                }
            };
            out.push_back(Ok(StreamEvent::ContentBlockStop { index }));
        }
    }

    fn open(&mut self, block: ContentBlock, out: &mut VecDeque<Result<StreamEvent>>) -> usize {
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        out.push_back(Ok(StreamEvent::ContentBlockStart {
            index,
            content_block: block,
        }));
        index
    }

    fn text(&mut self, text: String, out: &mut VecDeque<Result<StreamEvent>>) {
        let index = match self.open {
            Some(Open::Text(index)) => index,
            _ => {
                let block = ContentBlock::Text {
                    text: String::new(),
                    citations: Vec::new(),
                };
                let index = self.open(block, out);
                self.open = Some(Open::Text(index));
                index
            }
        };
        out.push_back(Ok(StreamEvent::ContentBlockDelta {
            index,
            delta: Delta::Text { text },
        }));
    }

    fn thinking(&mut self, thinking: String, out: &mut VecDeque<Result<StreamEvent>>) {
        let index = match self.open {
            Some(Open::Thinking(index)) => index,
            _ => {
                let block = ContentBlock::Thinking {
                    thinking: String::new(),
                    signature: String::new(),
                };
                let index = self.open(block, out);
                self.open = Some(Open::Thinking(index));
                index
            }
        };
        out.push_back(Ok(StreamEvent::ContentBlockDelta {
            index,
            delta: Delta::Thinking { thinking },
        }));
    }

    fn tool(&mut self, call: ToolCallDelta, out: &mut VecDeque<Result<StreamEvent>>) {
        let function = call.function.unwrap_or(FunctionDelta {
            name: None,
            arguments: None,
        });
        // Same call index and no new id (some servers repeat the id): the same call goes on.
        let same_id = call.id.is_none() || call.id == self.open_tool_id;
        let index = match self.open {
            Some(Open::Tool { call: open, block }) if open == call.index && same_id => block,
            _ => {
                let id = call.id.unwrap_or_else(|| format!("call_{}", call.index));
                self.open_tool_id = Some(id.clone());
                let block = ContentBlock::ToolUse {
                    id,
                    name: function.name.unwrap_or_default(),
                    input: json!({}),
                };
                let index = self.open(block, out);
                self.open = Some(Open::Tool {
                    call: call.index,
                    block: index,
                });
                index
            }
        };
        if let Some(arguments) = function.arguments.filter(|a| !a.is_empty()) {
            out.push_back(Ok(StreamEvent::ContentBlockDelta {
                index,
                delta: Delta::InputJson {
                    partial_json: arguments,
                },
            }));
        }
    }

    fn finish(&mut self, out: &mut VecDeque<Result<StreamEvent>>) {
        if self.done {
            return;
        }
        self.done = true;
        self.close(out);
        out.push_back(Ok(StreamEvent::MessageDelta {
            stop_reason: Some(self.stop_reason.take().unwrap_or(StopReason::EndTurn)),
            stop_sequence: None,
            stop_details: None,
            usage: self.usage,
        }));
        out.push_back(Ok(StreamEvent::MessageStop));
    }
}

fn stop_reason(finish: &str) -> StopReason {
    match finish {
        "stop" => StopReason::EndTurn,
        "length" => StopReason::MaxTokens,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "content_filter" => StopReason::Refusal,
        other => StopReason::Unknown(other.to_owned()),
    }
}

impl FrameMapper for ChatFrames {
    fn frame(
        &mut self,
        frame: SseFrame<'_>,
        meta: &ResponseMeta,
        out: &mut VecDeque<Result<StreamEvent>>,
    ) {
        if self.done {
            return;
        }
        let data = frame.data();
        let data = data.trim();
        if data == "[DONE]" {
            self.finish(out);
            return;
        }
        let chunk: Chunk = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(e) => {
                out.push_back(Err(Error::Decode {
                    what: "a chat completion chunk".to_owned(),
                    detail: e.to_string(),
                }));
                return;
            }
        };
        if let Some(error) = &chunk.error {
            let body = error_body(0, json!({"error": error}).to_string().as_bytes());
            out.push_back(Err(ApiError::mid_stream(body, meta.clone()).into()));
            return;
        }
        self.start(&chunk, out);
        if let Some(usage) = &chunk.usage {
            let cached = usage
                .prompt_tokens_details
                .as_ref()
                .map_or(0, |d| d.cached_tokens);
            self.usage = Usage {
                input_tokens: usage.prompt_tokens.saturating_sub(cached),
                output_tokens: usage.completion_tokens,
                cache_read_input_tokens: cached,
                output_tokens_details: usage.completion_tokens_details.as_ref().map(|d| {
                    crate::api::OutputTokensDetails {
                        thinking_tokens: d.reasoning_tokens,
                    }
                }),
                ..Usage::default()
            };
        }
        for choice in chunk.choices {
            if let Some(delta) = choice.delta {
                if let Some(thinking) = delta
                    .reasoning_content
                    .or(delta.reasoning)
                    .filter(|t| !t.is_empty())
                {
                    self.thinking(thinking, out);
                }
                if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                    self.text(text, out);
                }
                for call in delta.tool_calls {
                    self.tool(call, out);
                }
            }
            if let Some(finish) = choice.finish_reason {
                self.stop_reason = Some(stop_reason(&finish));
            }
        }
    }

    fn end(&mut self, out: &mut VecDeque<Result<StreamEvent>>) -> bool {
        // Some servers omit `[DONE]`; a finish reason is enough to know the answer is whole.
        if !self.done && self.stop_reason.is_some() {
            self.finish(out);
        }
        self.done
    }

    fn finished(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Message;

    #[test]
    fn maps_system_tools_tool_calls_and_results_onto_chat_messages() {
        let request = MessageRequest::new("qwen", 100)
            .system("be brief")
            .user("write a.ts")
            .message(Message::new(
                Role::Assistant,
                vec![ContentBlockParam::ToolUse {
                    id: "call_1".into(),
                    name: "write_file".into(),
                    input: json!({"path": "a.ts"}),
                    cache_control: None,
                }],
            ))
            .message(Message::new(
                Role::User,
                vec![ContentBlockParam::tool_result("call_1", "ok")],
            ))
            .tool(Tool::custom(
                "write_file",
                "Writes",
                json!({"type": "object"}),
            ))
            .tool_choice(ToolChoice::Any {
                disable_parallel_tool_use: None,
            })
            .stop_sequence("END")
            .temperature(0.5);
        let body = chat_body(&request);
        assert_eq!(
            body["messages"],
            json!([
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "write a.ts"},
                {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "write_file", "arguments": "{\"path\":\"a.ts\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "ok"}
            ])
        );
        assert_eq!(body["tools"][0]["function"]["name"], "write_file");
        assert_eq!(body["tool_choice"], "required");
        assert_eq!(body["stop"], json!(["END"]));
        assert_eq!(body["stream_options"]["include_usage"], true);
    }

    #[test]
    fn an_error_chunk_ends_the_stream_as_an_api_error() {
        let mut frames = ChatFrames::default();
        let mut out = VecDeque::new();
        let mut decoder = crate::sse::SseDecoder::new();
        let Ok(()) = decoder.feed(
            b"data: {\"error\":{\"message\":\"model not found\",\"type\":\"not_found_error\"}}\n\n",
            |frame| {
                frames.frame(frame, &ResponseMeta::default(), &mut out);
                Ok::<_, std::convert::Infallible>(())
            },
        );
        let err = out.pop_front().unwrap().unwrap_err();
        assert_eq!(
            err.api_error_kind(),
            Some(&crate::api::ApiErrorKind::NotFound)
        );
        assert!(err.to_string().contains("model not found"), "{err}");
        assert!(
            !frames.end(&mut out),
            "a stream without a finish reason is incomplete"
        );
    }

    #[test]
    fn the_bearer_token_stays_out_of_debug() {
        let provider = OpenAiProvider::builder()
            .api_key("sk-openai-secret")
            .build()
            .unwrap();
        assert!(!format!("{provider:?}").contains("secret"));
        let builder = OpenAiProvider::builder().api_key("sk-openai-secret");
        assert!(!format!("{builder:?}").contains("secret"));
    }
}
