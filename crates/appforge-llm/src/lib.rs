//! Typed, streaming, fault-tolerant generation for AI app builders.
//!
//! A [`Provider`] streams a [`MessageRequest`] as typed [`StreamEvent`]s. The
//! [`ScriptedProvider`] replays recorded transcripts, so this example runs without a network:
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
//! stable system part and app files within a [`PromptSettings::context_budget`]. The
//! [`demo::offline_provider`] replays recorded generations, so this runs offline:
//!
//! ```
//! use appforge_llm::{FullAppRequest, Pipelines, Progress, demo};
//! use tokio_util::sync::CancellationToken;
//!
//! # futures::executor::block_on(async {
//! let pipelines = Pipelines::new(demo::offline_provider()).continuation_rounds(2);
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
//! | (none) | | the client and every provider are always built |
#![cfg_attr(docsrs, feature(doc_cfg))]

mod accumulate;
mod api;
mod changeset;
mod client;
pub mod demo;
mod error;
mod pipeline;
mod prompt;
pub mod protocol;
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
pub use changeset::{ApplyError, ApplyErrorKind, ChangeSet, ChangeSetError, Edit, FileChange};
pub use error::{ApiError, Error, Result, TimeoutKind};
pub use pipeline::{
    ChatReply, GeneratedApp, Modification, ParseError, Phase, PhasePlan, Pipelines, PlannedPhases,
    Progress,
};
pub use prompt::{
    ChatMode, ChatRequest, FullAppRequest, HistoryMessage, HistoryRole, ModifyRequest,
    PhaseContext, PlanRequest, PromptSettings, RenderedPrompt, SystemPart,
};
pub use protocol::{AppFile, PathError, Warning, validate_path};
pub use provider::{
    EventStream, Fault, OpenAiProvider, OpenAiProviderBuilder, Provider, Script, ScriptedProvider,
};
pub use sse::{SseDecoder, SseFrame};
