//! The Messages API's data types: requests, responses, streaming events, response metadata.

mod event;
mod meta;
mod request;
mod response;
mod server_tools;

pub use event::{ApiErrorKind, Delta, ErrorBody, StreamEvent};
pub use meta::{RateLimit, RateLimits, ResponseMeta};
pub use request::{
    CacheControl, CacheTtl, ContentBlockParam, CustomTool, Effort, ImageSource, Message,
    MessageRequest, Metadata, OutputConfig, OutputFormat, Role, SystemBlock, SystemPrompt,
    Thinking, ThinkingDisplay, Tool, ToolChoice,
};
pub use response::{
    CacheCreation, ContentBlock, MessageResponse, OutputTokensDetails, ServerToolUsage, StopReason,
    Usage,
};
pub use server_tools::{
    CodeExecutionResult, ServerToolOutput, TextEditorResult, ToolOutcome, WebFetchResult,
    WebSearchHit,
};
