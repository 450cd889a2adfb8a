//! Typed, streaming, fault-tolerant generation for AI app builders.
//!
//! A [`Provider`] streams a [`MessageRequest`] as typed [`StreamEvent`]s: the Anthropic
//! [`Client`], an [`OpenAiProvider`] for OpenAI-compatible servers (Ollama, vLLM, ...), or a
//! [`ScriptedProvider`] that replays recorded transcripts. Printing text as it arrives, with
//! the scripted provider so that the example runs offline:
//!
//! ```
//! use appforge_llm::{MessageRequest, Provider, ScriptedProvider, StopReason};
//! use futures::StreamExt;
//!
//! # futures::executor::block_on(async {
//! let provider = ScriptedProvider::new()
//!     .with(ScriptedProvider::text_transcript(["A habit ", "tracker"], &StopReason::EndTurn));
//! let request = MessageRequest::new("claude-sonnet-4-5", 1024).user("Name an app");
//! let mut events = provider.stream(request).await?;
//! while let Some(event) = events.next().await {
//!     if let Some(text) = event?.text() {
//!         print!("{text}");
//!     }
//! }
//! # Ok::<_, appforge_llm::Error>(())
//! # }).unwrap();
//! ```
//!
//! Against the API, the same loop runs on a [`Client`] (any `Provider` will do):
//!
//! ```no_run
//! # async fn run() -> appforge_llm::Result<()> {
//! use appforge_llm::{Client, MessageRequest};
//! use futures::StreamExt;
//!
//! let client = Client::from_env()?; // ANTHROPIC_API_KEY, and ANTHROPIC_BASE_URL if set
//! let request = MessageRequest::new("claude-sonnet-4-5", 1024).user("Name an app");
//! let mut stream = client.create_stream(&request).await?;
//! println!("request {:?}", stream.request_id());
//! while let Some(event) = stream.next().await {
//!     if let Some(text) = event?.text() {
//!         print!("{text}");
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! What the client does for you:
//!
//! - **Retries** under a [`RetryPolicy`] (2 retries; 408, 409, 429, 5xx and connection
//!   errors; exponential backoff with jitter; `retry-after-ms`, `retry-after` and
//!   `x-should-retry` honoured). A stream is only handed over once content has started, so a
//!   mid-stream `overloaded_error` or a dropped connection before that point is retried
//!   invisibly; after it, the stream ends with [`Error::Interrupted`].
//! - **Timeouts** ([`Timeouts`]): connect, first byte, idle between events (`ping` counts),
//!   and total.
//! - **Metadata**: every response and every error carries the request id and the
//!   `anthropic-ratelimit-*` headers ([`ResponseMeta`]); errors answer `is_retryable()`,
//!   `retry_after()`, `status()` and `request_id()`.
//! - **Forward compatibility**: unknown events, blocks, deltas, stop reasons and error types
//!   arrive as `Unknown` variants holding their raw JSON, never as a failed stream.
//! - **Accumulation**: [`accumulate`] (or [`MessageStream::final_message`]) builds the final
//!   [`MessageResponse`], with tool input parsed once per block and errors that name the block.
//! - **Secrets**: the API key is kept in a `SecretString` and never reaches `Debug`, errors
//!   or logs.
//!
//! Writing a provider of your own is described in `docs/providers.md`.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | (none) | | the client and every provider are always built |
#![cfg_attr(docsrs, feature(doc_cfg))]

mod accumulate;
mod api;
mod client;
mod error;
mod provider;
mod retry;
mod sse;

pub use accumulate::{Accumulator, accumulate};
pub use client::{
    ApiResponse, Client, ClientBuilder, DEFAULT_API_VERSION, DEFAULT_BASE_URL, MessageStream,
    Timeouts, TokenCount,
};
pub use retry::RetryPolicy;

pub use api::{
    ApiErrorKind, CacheControl, CacheTtl, ContentBlock, ContentBlockParam, CustomTool, Delta,
    ErrorBody, ImageSource, Message, MessageRequest, MessageResponse, Metadata, RateLimit,
    RateLimits, ResponseMeta, Role, StopReason, StreamEvent, SystemBlock, SystemPrompt, Thinking,
    Tool, ToolChoice, Usage,
};
pub use error::{ApiError, Error, Result, TimeoutKind};
pub use provider::{
    EventStream, Fault, OpenAiProvider, OpenAiProviderBuilder, Provider, Script, ScriptedProvider,
};
pub use sse::{SseDecoder, SseFrame};
