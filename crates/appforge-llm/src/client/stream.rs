//! From a response body to events: SSE decoding under the first-byte, idle and total
//! timeouts, the commit point before which a failure is retried, and [`MessageStream`].

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
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
pub(crate) trait FrameMapper: Send + Unpin + 'static {
    /// Maps one frame, pushing events, or one error that ends the stream, onto `out`.
    fn frame(
        &mut self,
        frame: SseFrame<'_>,
        meta: &ResponseMeta,
        out: &mut VecDeque<Result<StreamEvent>>,
    );

    /// The body ended: push any closing events and say whether the stream was complete.
    fn end(&mut self, out: &mut VecDeque<Result<StreamEvent>>) -> bool;

    /// Whether the message is complete, so that the rest of the body can be dropped.
    fn finished(&self) -> bool;
}

/// The largest event accepted: a peer that never ends a line or an event cannot make the
/// decoder hold more than this.
pub(crate) const MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;

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
///
/// A hand-written stream rather than a generator: the per-event cost is one queue pop.
pub(crate) fn decode_body<B, E, M>(
    body: B,
    mapper: M,
    meta: ResponseMeta,
    deadlines: ReadDeadlines,
) -> EventStream
where
    B: Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
    E: fmt::Display + Send + 'static,
    M: FrameMapper,
{
    Box::pin(BodyEvents {
        body: Box::pin(body),
        decoder: SseDecoder::new(),
        mapper,
        meta,
        deadlines,
        queue: VecDeque::new(),
        last_event: None,
        timer: None,
        done: false,
    })
}

struct BodyEvents<B, M> {
    body: Pin<Box<B>>,
    decoder: SseDecoder,
    mapper: M,
    meta: ResponseMeta,
    deadlines: ReadDeadlines,
    queue: VecDeque<Result<StreamEvent>>,
    last_event: Option<Instant>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// No more reads: the body ended, failed, timed out, or the message is complete.
    done: bool,
}

impl<B, E, M> BodyEvents<B, M>
where
    B: Stream<Item = std::result::Result<Bytes, E>>,
    E: fmt::Display,
    M: FrameMapper,
{
    fn meta(&self) -> Option<Box<ResponseMeta>> {
        Some(Box::new(self.meta.clone()))
    }

    fn chunk(&mut self, chunk: &[u8]) {
        let before = self.queue.len();
        let (mapper, meta, queue) = (&mut self.mapper, &self.meta, &mut self.queue);
        let Ok(()) = self.decoder.feed(chunk, |frame| {
            mapper.frame(frame, meta, queue);
            Ok::<_, Infallible>(())
        });
        if self.queue.len() > before {
            self.last_event = Some(Instant::now());
        }
        if self.mapper.finished() {
            self.done = true;
        } else if self.decoder.pending_bytes() > MAX_FRAME_BYTES {
            self.done = true;
            self.queue.push_back(Err(Error::Decode {
                what: "the stream".to_owned(),
                detail: format!("an event is larger than {MAX_FRAME_BYTES} bytes"),
            }));
        }
    }

    fn end(&mut self) {
        self.done = true;
        // A last event whose blank line never came is delivered when its data is whole (what
        // the providers' own SDKs do); one cut inside its JSON is not, and the stream ends
        // short of its end below.
        let mut cut = false;
        let (mapper, meta, queue) = (&mut self.mapper, &self.meta, &mut self.queue);
        let Ok(orphan) = self.decoder.finish_with(|frame| {
            if is_whole(frame.data_bytes()) {
                mapper.frame(frame, meta, queue);
            } else {
                cut = true;
            }
            Ok::<_, Infallible>(())
        });
        let partial_frame = cut || orphan;
        if !self.mapper.end(&mut self.queue) {
            let detail = if partial_frame {
                " (inside an event)"
            } else {
                ""
            };
            self.queue.push_back(Err(Error::Connection {
                message: format!("the stream ended before message_stop{detail}"),
                meta: self.meta(),
            }));
        }
    }

    /// Polls the deadline timer; `Some` once it has expired.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Option<Error> {
        let (at, kind, after) = self.deadlines.next(self.last_event)?;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if timer.deadline() != at {
            timer.as_mut().reset(at);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Some(Error::Timeout {
                kind,
                after,
                meta: self.meta(),
            }),
            Poll::Pending => None,
        }
    }
}

impl<B, E, M> Stream for BodyEvents<B, M>
where
    B: Stream<Item = std::result::Result<Bytes, E>>,
    E: fmt::Display,
    M: FrameMapper,
{
    type Item = Result<StreamEvent>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(item) = this.queue.pop_front() {
                if item.is_err() {
                    this.queue.clear();
                    this.done = true;
                }
                return Poll::Ready(Some(item));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match this.body.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => this.chunk(&chunk),
                Poll::Ready(Some(Err(error))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(Error::Connection {
                        message: format!("reading the stream failed: {error}"),
                        meta: this.meta(),
                    })));
                }
                Poll::Ready(None) => this.end(),
                Poll::Pending => {
                    if let Some(error) = this.poll_deadline(cx) {
                        this.done = true;
                        return Poll::Ready(Some(Err(error)));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

/// Whether the data of an event left unterminated at the end of the body is whole: a JSON
/// value, or the `[DONE]` marker of OpenAI-compatible streams.
fn is_whole(data: &[u8]) -> bool {
    data.trim_ascii() == b"[DONE]" || serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct Frames;

    impl FrameMapper for Frames {
        fn frame(
            &mut self,
            frame: SseFrame<'_>,
            _meta: &ResponseMeta,
            out: &mut VecDeque<Result<StreamEvent>>,
        ) {
            out.push_back(StreamEvent::from_frame(&frame));
        }

        fn end(&mut self, _out: &mut VecDeque<Result<StreamEvent>>) -> bool {
            true
        }

        fn finished(&self) -> bool {
            false
        }
    }

    #[tokio::test]
    async fn an_event_that_never_ends_is_refused_at_the_limit() {
        let chunk = Bytes::from(vec![b'x'; 1024 * 1024]);
        let mut first = b"data: ".to_vec();
        first.extend_from_slice(&chunk);
        let chunks = std::iter::once(Bytes::from(first))
            .chain(std::iter::repeat_n(chunk, 70))
            .map(Ok::<_, std::io::Error>);
        let deadlines = ReadDeadlines {
            first_byte: None,
            idle: None,
            total: None,
        };
        let mut events = decode_body(
            futures::stream::iter(chunks),
            Frames,
            ResponseMeta::default(),
            deadlines,
        );
        let err = events.next().await.unwrap().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("could not decode the stream: an event is larger than {MAX_FRAME_BYTES} bytes")
        );
        assert!(events.next().await.is_none());
    }
}
