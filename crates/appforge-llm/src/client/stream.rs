//! From a response body to events: SSE decoding under the first-byte, idle and total
//! timeouts, the commit point before which a failure is retried, and [`MessageStream`].

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::time::Instant;

use crate::accumulate::accumulate;
use crate::api::{MessageResponse, ResponseMeta, StreamEvent};
use crate::error::{Error, Result, TimeoutKind};
use crate::provider::EventStream;
use crate::sse::{SseDecoder, SseFrame};

/// Turns SSE frames of one wire format into stream events.
pub(crate) trait FrameMapper: Send + 'static {
    /// Maps one frame, pushing events, or one error that ends the stream, onto `out`.
    fn frame(
        &mut self,
        frame: SseFrame<'_>,
        meta: &ResponseMeta,
        out: &mut Vec<Result<StreamEvent>>,
    );

    /// The body ended: push any closing events and say whether the stream was complete.
    fn end(&mut self, out: &mut Vec<Result<StreamEvent>>) -> bool;

    /// Whether the message is complete, so that the rest of the body can be dropped.
    fn finished(&self) -> bool;
}

/// When each read of the body must complete.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadDeadlines {
    pub(crate) first_byte: Option<(Instant, Duration)>,
    pub(crate) idle: Option<Duration>,
    pub(crate) total: Option<(Instant, Duration)>,
}

impl ReadDeadlines {
    fn next(&self, last_event: Option<Instant>) -> Option<(Instant, TimeoutKind, Duration)> {
        let own = match last_event {
            None => self
                .first_byte
                .map(|(at, after)| (at, TimeoutKind::FirstByte, after)),
            Some(last) => self
                .idle
                .map(|after| (last + after, TimeoutKind::Idle, after)),
        };
        let total = self
            .total
            .map(|(at, after)| (at, TimeoutKind::Total, after));
        match (own, total) {
            (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

/// Decodes a response body into events, enforcing the read deadlines.
pub(crate) fn decode_body<B, E, M>(
    body: B,
    mut mapper: M,
    meta: ResponseMeta,
    deadlines: ReadDeadlines,
) -> EventStream
where
    B: Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
    E: fmt::Display + Send + 'static,
    M: FrameMapper,
{
    Box::pin(async_stream::stream! {
        let mut body = Box::pin(body);
        let mut decoder = SseDecoder::new();
        let mut out: Vec<Result<StreamEvent>> = Vec::new();
        let mut last_event: Option<Instant> = None;
        loop {
            let next = match deadlines.next(last_event) {
                Some((at, kind, after)) => match tokio::time::timeout_at(at, body.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        yield Err(Error::Timeout { kind, after, meta: Some(Box::new(meta.clone())) });
                        return;
                    }
                },
                None => body.next().await,
            };
            match next {
                Some(Ok(chunk)) => {
                    let Ok(()) = decoder.feed(&chunk, |frame| {
                        mapper.frame(frame, &meta, &mut out);
                        Ok::<_, Infallible>(())
                    });
                    if !out.is_empty() {
                        last_event = Some(Instant::now());
                    }
                    for item in out.drain(..) {
                        let failed = item.is_err();
                        yield item;
                        if failed {
                            return;
                        }
                    }
                    if mapper.finished() {
                        return;
                    }
                }
                Some(Err(error)) => {
                    yield Err(Error::Connection {
                        message: format!("reading the stream failed: {error}"),
                        meta: Some(Box::new(meta.clone())),
                    });
                    return;
                }
                None => {
                    let partial_frame = decoder.finish();
                    let complete = mapper.end(&mut out);
                    for item in out.drain(..) {
                        yield item;
                    }
                    if !complete {
                        let detail = if partial_frame { " (inside an event)" } else { "" };
                        yield Err(Error::Connection {
                            message: format!("the stream ended before message_stop{detail}"),
                            meta: Some(Box::new(meta.clone())),
                        });
                    }
                    return;
                }
            }
        }
    })
}

/// Reads events until the first one that must reach the caller (anything but `message_start`
/// and `ping`). Until then a failure is still retryable, because the caller has seen nothing.
pub(crate) async fn commit(
    mut events: EventStream,
) -> Result<(VecDeque<StreamEvent>, EventStream)> {
    let mut held = VecDeque::new();
    while let Some(item) = events.next().await {
        let event = item?;
        let visible = !matches!(event, StreamEvent::MessageStart { .. } | StreamEvent::Ping);
        held.push_back(event);
        if visible {
            break;
        }
    }
    Ok((held, events))
}

/// A streamed message: the events, and the metadata of the response that carries them.
///
/// Created once the response has started content, so that a failure before that point is
/// retried without the caller noticing. A failure after it ends the stream with
/// [`Error::Interrupted`], which counts the events delivered.
pub struct MessageStream {
    meta: ResponseMeta,
    retries: u32,
    held: VecDeque<StreamEvent>,
    rest: EventStream,
    delivered: u64,
    done: bool,
    span: tracing::Span,
}

impl fmt::Debug for MessageStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageStream")
            .field("meta", &self.meta)
            .field("retries", &self.retries)
            .field("delivered", &self.delivered)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl MessageStream {
    pub(crate) fn new(
        meta: ResponseMeta,
        retries: u32,
        held: VecDeque<StreamEvent>,
        rest: EventStream,
        span: tracing::Span,
    ) -> Self {
        Self {
            meta,
            retries,
            held,
            rest,
            delivered: 0,
            done: false,
            span,
        }
    }

    /// The request id and rate limits of the response carrying this stream.
    pub fn meta(&self) -> &ResponseMeta {
        &self.meta
    }

    /// The provider's request id.
    pub fn request_id(&self) -> Option<&str> {
        self.meta.request_id.as_deref()
    }

    /// How many retries it took to get this stream.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Drains the stream into the final message (see [`accumulate`](crate::accumulate)).
    ///
    /// # Errors
    ///
    /// As [`accumulate`](crate::accumulate).
    pub async fn final_message(self) -> Result<MessageResponse> {
        accumulate(Box::pin(self)).await
    }

    fn observe(&self, event: &StreamEvent) {
        match event {
            StreamEvent::MessageStart { message } => {
                self.span
                    .record("input_tokens", message.usage.total_input_tokens());
            }
            StreamEvent::MessageDelta { usage, .. } => {
                self.span.record("output_tokens", usage.output_tokens);
            }
            _ => {}
        }
    }
}

impl Stream for MessageStream {
    type Item = Result<StreamEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(event) = self.held.pop_front() {
            self.delivered += 1;
            self.observe(&event);
            return Poll::Ready(Some(Ok(event)));
        }
        if self.done {
            return Poll::Ready(None);
        }
        match self.rest.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(event))) => {
                self.delivered += 1;
                if !matches!(event, StreamEvent::ContentBlockDelta { .. }) {
                    self.observe(&event);
                }
                Poll::Ready(Some(Ok(event)))
            }
            Poll::Ready(Some(Err(source))) => {
                self.done = true;
                let _entered = self.span.enter();
                tracing::warn!(error = %source, events = self.delivered, "stream interrupted");
                Poll::Ready(Some(Err(Error::Interrupted {
                    events: self.delivered,
                    partial: None,
                    source: Box::new(source),
                })))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
