//! A provider that replays recorded SSE transcripts, for tests and offline demos.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, stream};
use parking_lot::Mutex;

use super::{EventStream, Provider};
use crate::api::{ApiErrorKind, ErrorBody, MessageRequest, ResponseMeta, StopReason, StreamEvent};
use crate::error::{ApiError, Error, Result};
use crate::sse::SseDecoder;

/// Replays queued SSE transcripts, one per [`Provider::stream`] call, and records every
/// request it receives.
///
/// Transcripts are what the Messages API sends (`event:` / `data:` frames); they go through the
/// same decoder as a live stream, in chunks of [`Script::chunk_size`] bytes. A [`Fault`]
/// injects an HTTP error, a mid-stream error, a stall or a cut connection.
///
/// ```
/// # tokio_test_block_on(async {
/// use appforge_llm::{MessageRequest, Provider, ScriptedProvider, StopReason};
/// use futures::StreamExt;
///
/// let provider = ScriptedProvider::new();
/// provider.push(ScriptedProvider::text_transcript(["Hello", ", world"], &StopReason::EndTurn));
/// let mut events = provider.stream(MessageRequest::new("m", 64).user("hi")).await.unwrap();
/// let mut text = String::new();
/// while let Some(event) = events.next().await {
///     text.push_str(event.unwrap().text().unwrap_or_default());
/// }
/// assert_eq!(text, "Hello, world");
/// assert_eq!(provider.requests()[0].last_user_text().as_deref(), Some("hi"));
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     futures::executor::block_on(f)
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ScriptedProvider {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    scripts: VecDeque<Script>,
    requests: Vec<MessageRequest>,
}

/// One scripted response: a transcript, how to chunk it, and an optional fault.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Script {
    /// The SSE transcript.
    pub transcript: String,
    /// Feed the decoder this many bytes at a time (0: all at once).
    pub chunk_size: usize,
    /// A fault to inject.
    pub fault: Option<Fault>,
}

impl Script {
    /// A script that replays `transcript` without faults.
    pub fn new(transcript: impl Into<String>) -> Self {
        Self {
            transcript: transcript.into(),
            chunk_size: 0,
            fault: None,
        }
    }

    /// Feeds the decoder `chunk_size` bytes at a time.
    #[must_use]
    pub fn chunk_size(mut self, chunk_size: usize) -> Self {
        self.chunk_size = chunk_size;
        self
    }

    /// Injects a fault.
    #[must_use]
    pub fn fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }
}

impl From<String> for Script {
    fn from(transcript: String) -> Self {
        Self::new(transcript)
    }
}

impl From<&str> for Script {
    fn from(transcript: &str) -> Self {
        Self::new(transcript)
    }
}

/// A fault the scripted provider injects.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with an HTTP error status instead of a stream.
    Status {
        /// The status, such as 429 or 529.
        status: u16,
        /// The error type in the body.
        kind: ApiErrorKind,
        /// The delay a `retry-after` header would ask for.
        retry_after: Option<Duration>,
    },
    /// After `after` events, a mid-stream `error` event of this type.
    ErrorEvent {
        /// Events delivered first.
        after: usize,
        /// The error type, such as [`ApiErrorKind::Overloaded`].
        kind: ApiErrorKind,
    },
    /// After `after` events, the stream never yields again (for idle timeouts).
    Stall {
        /// Events delivered first.
        after: usize,
    },
    /// After `after` events, the connection drops.
    Cut {
        /// Events delivered first.
        after: usize,
    },
}

impl ScriptedProvider {
    /// A provider with nothing queued.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a transcript (or a [`Script`]) for the next unanswered `stream()` call.
    pub fn push(&self, script: impl Into<Script>) -> &Self {
        self.state.lock().scripts.push_back(script.into());
        self
    }

    /// Queues a transcript and returns the provider, for construction in one expression.
    #[must_use]
    pub fn with(self, script: impl Into<Script>) -> Self {
        self.push(script);
        self
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<MessageRequest> {
        self.state.lock().requests.clone()
    }

    /// How many scripts are still queued.
    pub fn remaining(&self) -> usize {
        self.state.lock().scripts.len()
    }

    /// A well-formed transcript of one text block made of `chunks`, ending with `stop_reason`.
    pub fn text_transcript<I, S>(chunks: I, stop_reason: &StopReason) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = String::new();
        let mut output_tokens = 0_u64;
        let _ = write!(
            out,
            "event: message_start\ndata: {{\"type\":\"message_start\",\"message\":{{\"id\":\"msg_scripted\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"scripted\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{{\"input_tokens\":10,\"output_tokens\":1}}}}}}\n\n\
             event: content_block_start\ndata: {{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{{\"type\":\"text\",\"text\":\"\"}}}}\n\n"
        );
        for chunk in chunks {
            output_tokens += 1;
            let event = StreamEvent::ContentBlockDelta {
                index: 0,
                delta: crate::api::Delta::Text {
                    text: chunk.as_ref().to_owned(),
                },
            };
            out.push_str(&event.to_sse());
        }
        let _ = write!(
            out,
            "event: content_block_stop\ndata: {{\"type\":\"content_block_stop\",\"index\":0}}\n\n\
             event: message_delta\ndata: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"{}\",\"stop_sequence\":null}},\"usage\":{{\"output_tokens\":{output_tokens}}}}}\n\n\
             event: message_stop\ndata: {{\"type\":\"message_stop\"}}\n\n",
            stop_reason.as_str()
        );
        out
    }
}

impl Provider for ScriptedProvider {
    fn name(&self) -> &str {
        "scripted"
    }

    fn stream(&self, request: MessageRequest) -> BoxFuture<'_, Result<EventStream>> {
        let script = {
            let mut state = self.state.lock();
            state.requests.push(request);
            let number = state.requests.len();
            state
                .scripts
                .pop_front()
                .ok_or_else(|| Error::Script(format!("no transcript queued for request {number}")))
        };
        async move { replay(script?) }.boxed()
    }
}

fn replay(script: Script) -> Result<EventStream> {
    let meta = ResponseMeta {
        status: 200,
        request_id: Some("req_scripted".to_owned()),
        ..ResponseMeta::default()
    };
    if let Some(Fault::Status {
        status,
        kind,
        retry_after,
    }) = &script.fault
    {
        let mut error = ApiError::http(
            ErrorBody {
                kind: kind.clone(),
                message: format!("scripted {status}"),
            },
            ResponseMeta {
                status: *status,
                ..meta
            },
        );
        error.retry_after = *retry_after;
        return Err(error.into());
    }
    let mut items: Vec<Result<StreamEvent>> = Vec::new();
    let mut decoder = SseDecoder::new();
    let bytes = script.transcript.as_bytes();
    let chunk_size = if script.chunk_size == 0 {
        bytes.len().max(1)
    } else {
        script.chunk_size
    };
    let mut on_frame = |frame: crate::sse::SseFrame<'_>| {
        let item = StreamEvent::from_sse(frame.event, frame.data).and_then(|event| match event {
            StreamEvent::Error { error } => Err(ApiError::mid_stream(error, meta.clone()).into()),
            other => Ok(other),
        });
        items.push(item);
        Ok::<_, std::convert::Infallible>(())
    };
    for chunk in bytes.chunks(chunk_size) {
        let Ok(()) = decoder.feed(chunk, &mut on_frame);
    }
    // A transcript file may lack its final blank line.
    let Ok(()) = decoder.feed(b"\n\n", &mut on_frame);
    if let Some(end) = items.iter().position(Result::is_err) {
        items.truncate(end + 1);
    }
    let items = stream::iter(items);
    Ok(match script.fault {
        None | Some(Fault::Status { .. }) => items.boxed(),
        Some(Fault::ErrorEvent { after, kind }) => {
            let error = ApiError::mid_stream(
                ErrorBody {
                    kind,
                    message: "scripted mid-stream error".to_owned(),
                },
                meta,
            );
            items
                .take(after)
                .chain(stream::once(async move { Err(error.into()) }))
                .boxed()
        }
        Some(Fault::Stall { after }) => items.take(after).chain(stream::pending()).boxed(),
        Some(Fault::Cut { after }) => {
            let error = Error::Connection {
                message: "scripted connection cut".to_owned(),
                meta: Some(Box::new(meta)),
            };
            items
                .take(after)
                .chain(stream::once(async move { Err(error) }))
                .boxed()
        }
    })
}
