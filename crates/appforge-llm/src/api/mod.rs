//! The Messages API's data types: requests, responses, streaming events, response metadata.

mod event;
mod meta;
mod request;
mod response;

pub use event::{ApiErrorKind, Delta, ErrorBody, StreamEvent};
pub use meta::{RateLimit, RateLimits, ResponseMeta};
pub use request::{
    CacheControl, CacheTtl, ContentBlockParam, CustomTool, ImageSource, Message, MessageRequest,
    Metadata, Role, SystemBlock, SystemPrompt, Thinking, Tool, ToolChoice,
};
pub use response::{ContentBlock, MessageResponse, StopReason, Usage};
