//! The provider contract pipelines build on, and the providers this crate ships.

mod openai;
mod scripted;

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use futures::future::BoxFuture;

use crate::api::{MessageRequest, StreamEvent};
use crate::error::Result;

pub use openai::{OpenAiProvider, OpenAiProviderBuilder};
pub use scripted::{Fault, Script, ScriptedProvider};

/// A stream of message events, as every provider returns.
///
/// A provider turns a mid-stream `error` event into an `Err(Error::Api)` item and ends the
/// stream there; every other event, known or not, is an `Ok` item.
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
}

impl<P: Provider + ?Sized> Provider for Arc<P> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn stream(&self, request: MessageRequest) -> BoxFuture<'_, Result<EventStream>> {
        (**self).stream(request)
    }
}

impl<P: Provider + ?Sized> Provider for Box<P> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn stream(&self, request: MessageRequest) -> BoxFuture<'_, Result<EventStream>> {
        (**self).stream(request)
    }
}
