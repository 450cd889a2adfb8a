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
//! let request = MessageRequest::new("claude-sonnet-5-5", 1024).user("Name an app");
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
//! let request = MessageRequest::new("claude-sonnet-5-5", 1024).user("Name an app");
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
//! # Models and effort
//!
//! The client speaks Messages API version `2026-10-21` ([`models::API_VERSION`]). The
//! pipelines use [`Pipelines::DEFAULT_MODEL`], **`claude-sonnet-5-5`** (the newest generally
//! available Sonnet), unless told otherwise; the [`models`] table gives each model's limits,
//! thinking types, effort levels, prices and end of life, and refuses locally what a model
//! would reject:
//!
//! ```
//! use appforge_llm::{Effort, MessageRequest, Pipelines, ScriptedProvider, Thinking, models};
//!
//! let pipelines = Pipelines::new(ScriptedProvider::new())
//!     .model("claude-opus-5-5")
//!     .effort(Effort::High);
//! assert_eq!(pipelines.max_tokens_in_effect(), 128_000); // from the model table
//!
//! let request = MessageRequest::new("claude-opus-5-5", 4096)
//!     .user("Plan a habit tracker")
//!     .thinking(Thinking::adaptive())
//!     .effort(Effort::XHigh);
//! models::check_request(&request, models::API_VERSION)?;
//! let manual = request.thinking(Thinking::enabled(2048)); // Opus 5.5 thinks adaptively only
//! assert!(models::check_request(&manual, models::API_VERSION).is_err());
//! # Ok::<_, appforge_llm::Error>(())
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
//! - **Local checks**: a request the [`models`] table says its model would refuse (sampling
//!   parameters, a thinking type or effort it does not take, too many output tokens) fails
//!   with [`Error::InvalidRequest`] before any network call.
//! - **Accumulation**: [`accumulate`] (or [`MessageStream::final_message`]) builds the final
//!   [`MessageResponse`], with tool input parsed once per block and errors that name the block.
//! - **Secrets**: the API key is kept in a `SecretString` and never reaches `Debug`, errors
//!   or logs.
//!
//! Writing a provider of your own is described in `docs/providers.md`.
//!
//! # Pipelines
//!
//! [`Pipelines`] turn a provider's stream into what an app builder needs, reporting
//! [`Progress`] through a callback and honouring a
//! [`CancellationToken`](tokio_util::sync::CancellationToken):
//!
//! - [`Pipelines::full_app`]: [`FullAppRequest`] -> [`GeneratedApp`] (name, files,
//!   dependencies, ...), parsed as it streams from the [`protocol`] (`===FILE:path===`
//!   sections); a truncated output is continued from its last complete file.
//! - [`Pipelines::modify`]: [`ModifyRequest`] -> a [`ChangeSet`], applied all or nothing by
//!   [`ChangeSet::apply`].
//! - [`Pipelines::plan_phases`]: an idea -> a [`PhasePlan`], whose
//!   [`PhasePlan::full_app_request`] builds each phase.
//! - [`Pipelines::chat`]: plan or act mode -> a [`ChatReply`], streaming text deltas.
//!
//! Prompts are [`RenderedPrompt`]s: deterministic, with a `cache_control` breakpoint on the
//! stable system part and app files within a [`PromptSettings::context_budget`]. A
//! [`ScriptedProvider`] replays a reply (the `demo` feature's offline provider replays whole
//! recorded generations), so this runs offline:
//!
//! ```
//! use appforge_llm::{FullAppRequest, Pipelines, Progress, ScriptedProvider, StopReason};
//! use tokio_util::sync::CancellationToken;
//!
//! # futures::executor::block_on(async {
//! let reply = "===NAME===\nTodo\n===FILE:src/App.tsx===\nexport default () => null;\n\
//!              ===FILE:src/main.tsx===\nimport App from './App';\n===END===\n";
//! let provider = ScriptedProvider::new()
//!     .with(ScriptedProvider::text_transcript([reply], &StopReason::EndTurn));
//! let pipelines = Pipelines::new(provider).continuation_rounds(2);
//! let mut files_done = 0;
//! let app = pipelines
//!     .full_app(
//!         &FullAppRequest::new("A todo list with filters"),
//!         |progress| files_done += usize::from(matches!(progress, Progress::FileCompleted { .. })),
//!         &CancellationToken::new(),
//!     )
//!     .await?;
//! assert_eq!(app.files.len(), files_done);
//! assert!(app.files.iter().any(|f| f.path == "src/App.tsx"));
//! println!("{} ({} output tokens)", app.name, app.usage.output_tokens);
//! # Ok::<_, appforge_llm::Error>(())
//! # }).unwrap();
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `anthropic` | yes | [`Client`], the Messages API client (`reqwest` with rustls) |
//! | `pipelines` | yes | [`Pipelines`], their prompts, [`structured`] outputs (`schemars`) and the files of a generation ([`protocol`], [`AppFile`], [`ChangeSet`], from `appforge-files`) |
//! | `openai` | no | `OpenAiProvider`, for OpenAI-compatible servers (Ollama, vLLM, ...) |
//! | `demo` | no | `demo`: recorded generations (about 0.5 MB) and the offline provider that replays them (turns on `pipelines`) |
//!
//! Without features the crate holds the message types, the [`Provider`] trait, the
//! [`ScriptedProvider`], the accumulator, the SSE decoder and the [`models`] table, and no
//! HTTP client. A host that only streams messages takes `default-features = false,
//! features = ["anthropic"]`: no `schemars`, `appforge-files` or pipelines.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod accumulate;
mod api;
#[cfg(any(feature = "anthropic", feature = "openai"))]
mod client;
#[cfg(feature = "demo")]
#[cfg_attr(docsrs, doc(cfg(feature = "demo")))]
pub mod demo;
mod error;
pub mod models;
#[cfg(feature = "pipelines")]
mod pipeline;
#[cfg(feature = "pipelines")]
mod prompt;
#[cfg(feature = "pipelines")]
#[cfg_attr(docsrs, doc(cfg(feature = "pipelines")))]
pub use appforge_files::protocol;
mod provider;
#[cfg(any(feature = "anthropic", feature = "openai"))]
mod retry;
#[cfg(feature = "pipelines")]
#[cfg_attr(docsrs, doc(cfg(feature = "pipelines")))]
pub mod settings;
mod sse;
#[cfg(feature = "pipelines")]
#[cfg_attr(docsrs, doc(cfg(feature = "pipelines")))]
pub mod structured;

pub use accumulate::{Accumulator, accumulate};
#[cfg(any(feature = "anthropic", feature = "openai"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "anthropic", feature = "openai"))))]
pub use client::{ApiResponse, MessageStream, Timeouts};
#[cfg(feature = "anthropic")]
#[cfg_attr(docsrs, doc(cfg(feature = "anthropic")))]
pub use client::{Client, ClientBuilder, DEFAULT_API_VERSION, DEFAULT_BASE_URL, TokenCount};
#[cfg(any(feature = "anthropic", feature = "openai"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "anthropic", feature = "openai"))))]
pub use retry::RetryPolicy;

pub use api::{
    ApiErrorKind, CacheControl, CacheCreation, CacheTtl, CodeExecutionResult, ContentBlock,
    ContentBlockParam, CustomTool, Delta, Effort, ErrorBody, ImageSource, Message, MessageRequest,
    MessageResponse, Metadata, OutputConfig, OutputFormat, OutputTokensDetails, RateLimit,
    RateLimits, ResponseMeta, Role, ServerToolOutput, ServerToolUsage, StopReason, StreamEvent,
    SystemBlock, SystemPrompt, TextEditorResult, Thinking, ThinkingDisplay, Tool, ToolChoice,
    ToolOutcome, Usage, WebFetchResult, WebSearchHit,
};
#[cfg(feature = "pipelines")]
#[cfg_attr(docsrs, doc(cfg(feature = "pipelines")))]
pub use appforge_files::{ApplyError, ApplyErrorKind, ChangeSet, ChangeSetError, Edit, FileChange};
pub use error::{ApiError, Error, Result, TimeoutKind};
#[cfg(feature = "pipelines")]
#[cfg_attr(docsrs, doc(cfg(feature = "pipelines")))]
pub use pipeline::{
    ChatReply, GeneratedApp, Modification, ParseError, Phase, PhasePlan, Pipelines, PlannedPhases,
    Progress,
};
#[cfg(feature = "pipelines")]
#[cfg_attr(docsrs, doc(cfg(feature = "pipelines")))]
pub use prompt::{
    Attachment, ChatMode, ChatRequest, FullAppRequest, HistoryMessage, HistoryRole, ModifyRequest,
    PhaseContext, PlanRequest, PromptSettings, RenderedPrompt, SystemPart,
};
#[cfg(feature = "pipelines")]
#[cfg_attr(docsrs, doc(cfg(feature = "pipelines")))]
pub use protocol::{AppFile, PathError, Warning, validate_path};
pub use provider::{EventStream, Fault, Provider, Script, ScriptedProvider};
#[cfg(feature = "openai")]
pub use provider::{OpenAiProvider, OpenAiProviderBuilder};
#[cfg(feature = "pipelines")]
#[cfg_attr(docsrs, doc(cfg(feature = "pipelines")))]
pub use settings::{ProviderConfig, SettingError};
pub use sse::{SseDecoder, SseFrame};
