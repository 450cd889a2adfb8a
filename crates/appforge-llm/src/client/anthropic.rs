//! The Anthropic Messages API client.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use appforge_core::{ExposeSecret, SecretString};
use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};

use super::{
    ApiResponse, FrameMapper, MessageStream, Timeouts, Transport, encode, validate_base_url,
};
use crate::api::{MessageRequest, MessageResponse, ResponseMeta, StreamEvent};
use crate::error::{ApiError, Error, Result};
use crate::provider::{EventStream, Provider};
use crate::retry::RetryPolicy;
use crate::sse::SseFrame;

/// The default base URL of the Messages API.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The default `anthropic-version` header: the version this crate's types follow.
pub const DEFAULT_API_VERSION: &str = crate::models::API_VERSION;

/// A client of the Anthropic Messages API: cheap to clone, safe to share.
///
/// Streaming ([`Client::create_stream`]), non-streaming ([`Client::create`]) and token
/// counting ([`Client::count_tokens`]) all run under the client's [`Timeouts`] and
/// [`RetryPolicy`]; every response and every error carries the request id and rate limits.
///
/// ```
/// use appforge_llm::Client;
/// use std::time::Duration;
///
/// let client = Client::builder()
///     .api_key("sk-ant-secret")
///     .base_url("http://127.0.0.1:9")
///     .beta("prompt-caching-2024-07-31")
///     .idle_timeout(Duration::from_secs(30))
///     .max_retries(3)
///     .build()?;
/// assert!(!format!("{client:?}").contains("sk-ant-secret"));
/// # Ok::<_, appforge_llm::Error>(())
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    base_url: String,
    headers: HeaderMap,
    version: String,
    betas: Vec<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url)
            .field("api_key", &"[redacted]")
            .field("version", &self.inner.version)
            .field("betas", &self.inner.betas)
            .field("timeouts", &self.inner.transport.timeouts)
            .field("retry", &self.inner.transport.retry)
            .finish()
    }
}

/// Settings of a [`Client`]; validated by [`ClientBuilder::build`].
pub struct ClientBuilder {
    api_key: Option<SecretString>,
    base_url: String,
    version: String,
    betas: Vec<String>,
    timeouts: Timeouts,
    retry: RetryPolicy,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("base_url", &self.base_url)
            .field("version", &self.version)
            .field("betas", &self.betas)
            .field("timeouts", &self.timeouts)
            .field("retry", &self.retry)
            .finish()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            api_key: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            version: DEFAULT_API_VERSION.to_owned(),
            betas: Vec::new(),
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
        }
    }
}

impl ClientBuilder {
    /// Reads `ANTHROPIC_API_KEY` and, when set, `ANTHROPIC_BASE_URL` from the environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut builder = Self::default();
        if let Some(key) = lookup("ANTHROPIC_API_KEY").filter(|k| !k.is_empty()) {
            builder.api_key = Some(SecretString::from(key));
        }
        if let Some(url) = lookup("ANTHROPIC_BASE_URL").filter(|u| !u.is_empty()) {
            builder.base_url = url;
        }
        builder
    }

    /// The API key (sent as `x-api-key`; never printed).
    #[must_use]
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(SecretString::from(key.into()));
        self
    }

    /// The base URL; requests go to `{base_url}/v1/messages`.
    #[must_use]
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The `anthropic-version` header.
    #[must_use]
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Adds an `anthropic-beta` feature.
    #[must_use]
    pub fn beta(mut self, beta: impl Into<String>) -> Self {
        self.betas.push(beta.into());
        self
    }

    /// All four timeouts at once.
    #[must_use]
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The connect timeout (`None` disables it).
    #[must_use]
    pub fn connect_timeout(mut self, after: impl Into<Option<Duration>>) -> Self {
        self.timeouts.connect = after.into();
        self
    }

    /// The first-byte timeout (`None` disables it).
    #[must_use]
    pub fn first_byte_timeout(mut self, after: impl Into<Option<Duration>>) -> Self {
        self.timeouts.first_byte = after.into();
        self
    }

    /// The idle timeout between events (`None` disables it).
    #[must_use]
    pub fn idle_timeout(mut self, after: impl Into<Option<Duration>>) -> Self {
        self.timeouts.idle = after.into();
        self
    }

    /// The total timeout, retries included (`None` disables it).
    #[must_use]
    pub fn total_timeout(mut self, after: impl Into<Option<Duration>>) -> Self {
        self.timeouts.total = after.into();
        self
    }

    /// The retry policy.
    #[must_use]
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Shorthand for the retry policy's number of retries.
    #[must_use]
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.retry = self.retry.max_retries(retries);
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when no API key is set, the base URL is not an `http(s)` URL, or a
    /// header value is not valid (the key itself is never quoted).
    pub fn build(self) -> Result<Client> {
        let key = self
            .api_key
            .ok_or_else(|| Error::Config("an API key is required (ANTHROPIC_API_KEY)".into()))?;
        let base_url = validate_base_url(&self.base_url)?;
        let mut headers = HeaderMap::new();
        let mut key_value = HeaderValue::from_str(key.expose_secret())
            .map_err(|_| Error::Config("the API key is not a valid header value".into()))?;
        key_value.set_sensitive(true);
        headers.insert("x-api-key", key_value);
        headers.insert(
            "anthropic-version",
            header_value("anthropic-version", &self.version)?,
        );
        if !self.betas.is_empty() {
            headers.insert(
                "anthropic-beta",
                header_value("anthropic-beta", &self.betas.join(","))?,
            );
        }
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(Client {
            inner: Arc::new(Inner {
                transport: Transport::new(self.timeouts, self.retry)?,
                base_url,
                headers,
                version: self.version,
                betas: self.betas,
            }),
        })
    }
}

fn header_value(name: &str, value: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(value)
        .map_err(|_| Error::Config(format!("`{value}` is not a valid {name} header value")))
}

/// The answer of [`Client::count_tokens`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenCount {
    /// The input tokens the request would use.
    pub input_tokens: u64,
}

#[derive(Serialize)]
struct StreamingBody<'a> {
    #[serde(flatten)]
    request: &'a MessageRequest,
    stream: bool,
}

#[derive(Serialize)]
struct CountTokensBody<'a> {
    model: &'a str,
    messages: &'a [crate::api::Message],
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'a crate::api::SystemPrompt>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tools: &'a [crate::api::Tool],
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'a crate::api::ToolChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a crate::api::Thinking>,
}

impl Client {
    /// A builder with the defaults.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client configured from `ANTHROPIC_API_KEY` and `ANTHROPIC_BASE_URL`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `ANTHROPIC_API_KEY` is unset or a value is invalid.
    pub fn from_env() -> Result<Self> {
        ClientBuilder::from_env().build()
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    fn post(&self, path: &str, body: Bytes) -> impl Fn() -> reqwest::RequestBuilder + use<'_> {
        let url = format!("{}{path}", self.inner.base_url);
        move || {
            self.inner
                .transport
                .http
                .post(&url)
                .headers(self.inner.headers.clone())
                .body(body.clone())
        }
    }

    fn span(request: &MessageRequest, operation: &'static str) -> tracing::Span {
        tracing::info_span!(
            "llm.request",
            provider = "anthropic",
            operation,
            model = %request.model,
            request_id = tracing::field::Empty,
            retries = tracing::field::Empty,
            ttft_ms = tracing::field::Empty,
            input_tokens = tracing::field::Empty,
            output_tokens = tracing::field::Empty,
        )
    }

    /// Streams a message (`POST /v1/messages` with `stream: true`).
    ///
    /// Resolves once the response has started content. Failures before that (an error
    /// status, a dropped connection, a mid-stream `overloaded_error`, a first-byte timeout)
    /// are retried under the policy; later ones end the stream with [`Error::Interrupted`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRequest`], before any network call, when the model table says the
    /// model would refuse the request ([`crate::models::check_request`]); otherwise the last
    /// failure once retries are exhausted or not allowed.
    pub async fn create_stream(&self, request: &MessageRequest) -> Result<MessageStream> {
        crate::models::check_request(request, &self.inner.version)?;
        let body = encode(&StreamingBody {
            request,
            stream: true,
        })?;
        let span = Self::span(request, "stream");
        self.inner
            .transport
            .stream(
                span,
                self.post("/v1/messages", body),
                AnthropicFrames::default,
            )
            .await
    }

    /// Creates a message without streaming.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRequest`], before any network call, when the model table says the
    /// model would refuse the request ([`crate::models::check_request`]); otherwise the last
    /// failure once retries are exhausted or not allowed.
    pub async fn create(&self, request: &MessageRequest) -> Result<ApiResponse<MessageResponse>> {
        crate::models::check_request(request, &self.inner.version)?;
        let body = encode(request)?;
        let span = Self::span(request, "create");
        let response = self
            .inner
            .transport
            .json::<MessageResponse>(&span, self.post("/v1/messages", body))
            .await?;
        span.record("input_tokens", response.data.usage.total_input_tokens());
        span.record("output_tokens", response.data.usage.output_tokens);
        Ok(response)
    }

    /// Counts the input tokens of a request (`POST /v1/messages/count_tokens`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRequest`], before any network call, when the model table says the
    /// model would refuse the request ([`crate::models::check_request`]); otherwise the last
    /// failure once retries are exhausted or not allowed.
    pub async fn count_tokens(&self, request: &MessageRequest) -> Result<ApiResponse<TokenCount>> {
        crate::models::check_request(request, &self.inner.version)?;
        let body = encode(&CountTokensBody {
            model: &request.model,
            messages: &request.messages,
            system: request.system.as_ref(),
            tools: &request.tools,
            tool_choice: request.tool_choice.as_ref(),
            thinking: request.thinking.as_ref(),
        })?;
        let span = Self::span(request, "count_tokens");
        self.inner
            .transport
            .json::<TokenCount>(&span, self.post("/v1/messages/count_tokens", body))
            .await
    }
}

impl Provider for Client {
    fn name(&self) -> &str {
        "anthropic"
    }

    fn supports_structured_outputs(&self) -> bool {
        true
    }

    fn stream(&self, request: MessageRequest) -> BoxFuture<'_, Result<EventStream>> {
        async move {
            let stream = self.create_stream(&request).await?;
            Ok(Box::pin(stream) as EventStream)
        }
        .boxed()
    }
}

/// Maps Messages API frames: decode, and turn an `error` event into an error.
#[derive(Debug, Default)]
struct AnthropicFrames {
    stopped: bool,
}

impl FrameMapper for AnthropicFrames {
    fn frame(
        &mut self,
        frame: SseFrame<'_>,
        meta: &ResponseMeta,
        out: &mut VecDeque<Result<StreamEvent>>,
    ) {
        out.push_back(
            StreamEvent::from_frame(&frame).and_then(|event| match event {
                StreamEvent::Error { error } => {
                    Err(ApiError::mid_stream(error, meta.clone()).into())
                }
                StreamEvent::MessageStop => {
                    self.stopped = true;
                    Ok(event)
                }
                other => Ok(other),
            }),
        );
    }

    fn end(&mut self, _out: &mut VecDeque<Result<StreamEvent>>) -> bool {
        self.stopped
    }

    fn finished(&self) -> bool {
        self.stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_env_honours_the_base_url_and_requires_a_key() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let client = ClientBuilder::from_lookup(env(&[
            ("ANTHROPIC_API_KEY", "sk-ant-1"),
            ("ANTHROPIC_BASE_URL", "http://proxy.local:8080/"),
        ]))
        .build()
        .unwrap();
        assert_eq!(client.base_url(), "http://proxy.local:8080");
        let err = ClientBuilder::from_lookup(env(&[])).build().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: an API key is required (ANTHROPIC_API_KEY)"
        );
    }

    #[test]
    fn the_key_never_reaches_debug_or_errors() {
        let builder = Client::builder().api_key("sk-ant-topsecret");
        assert!(!format!("{builder:?}").contains("topsecret"));
        let client = builder.build().unwrap();
        assert!(!format!("{client:?}").contains("topsecret"));
        let err = Client::builder()
            .api_key("sk-ant-topsecret\n")
            .build()
            .unwrap_err();
        assert!(!err.to_string().contains("topsecret"));
        assert!(!format!("{err:?}").contains("topsecret"));
    }

    #[test]
    fn rejects_a_base_url_that_is_not_http() {
        let err = Client::builder()
            .api_key("k")
            .base_url("ftp://x")
            .build()
            .unwrap_err();
        assert!(
            err.to_string().contains("the scheme must be http or https"),
            "{err}"
        );
    }
}
