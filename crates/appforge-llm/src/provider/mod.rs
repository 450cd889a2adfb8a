//! The provider contract pipelines build on, and the providers this crate ships.

#[cfg(feature = "openai")]
mod openai;
mod scripted;

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use futures::future::BoxFuture;

use crate::api::{MessageRequest, StreamEvent};
use crate::error::Result;

#[cfg(feature = "openai")]
#[cfg_attr(docsrs, doc(cfg(feature = "openai")))]
pub use openai::{OpenAiProvider, OpenAiProviderBuilder};
pub use scripted::{Fault, Script, ScriptedProvider};

/// A stream of message events, as every provider returns.
///
/// Every event, known or not, is an `Ok` item. A failure after content has started (a
/// mid-stream `error` event, a dropped connection, a timeout) is one `Err` item, then the end;
/// the providers of this crate give it as [`Error::Interrupted`](crate::Error::Interrupted)
/// around the cause, so ask [`Error::api_error_kind`](crate::Error::api_error_kind) or
/// [`Error::is_transient`](crate::Error::is_transient) rather than match variants.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent>> + Send + 'static>>;

/// Something that streams a message for a request: the Anthropic client, an
/// OpenAI-compatible server, or a scripted replay.
///
/// The future resolves once the provider has accepted the request (an HTTP error status, or a
/// failure before anything could be streamed, is an `Err` here); the stream then yields the
/// events.
pub trait Provider: Send + Sync + fmt::Debug {
    /// A short name for logs: `"anthropic"`, `"openai-compatible"`, `"scripted"`, ...
    fn name(&self) -> &str;

    /// Starts streaming a message for `request`.
    fn stream(&self, request: MessageRequest) -> BoxFuture<'_, Result<EventStream>>;

    /// Whether the provider honours `output_config.format` (structured outputs) for models
    /// that have it. The pipelines ask for structured output only when it does, and fall back
    /// to reading and repairing free text otherwise. `false` unless a provider says so.
    fn supports_structured_outputs(&self) -> bool {
        false
    }
}

impl<P: Provider + ?Sized> Provider for Arc<P> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn stream(&self, request: MessageRequest) -> BoxFuture<'_, Result<EventStream>> {
        (**self).stream(request)
    }

    fn supports_structured_outputs(&self) -> bool {
        (**self).supports_structured_outputs()
    }
}

impl<P: Provider + ?Sized> Provider for Box<P> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn stream(&self, request: MessageRequest) -> BoxFuture<'_, Result<EventStream>> {
        (**self).stream(request)
    }

    fn supports_structured_outputs(&self) -> bool {
        (**self).supports_structured_outputs()
    }
}
