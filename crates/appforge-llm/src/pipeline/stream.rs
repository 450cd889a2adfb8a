//! One model call: stream the text, watch for cancellation, collect usage and stop reason.

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::api::{MessageRequest, StopReason, StreamEvent, Usage};
use crate::error::{Error, Result};
use crate::provider::Provider;

/// What one model call produced.
#[derive(Debug, Default)]
pub(crate) struct Round {
    pub(crate) text: String,
    pub(crate) stop_reason: Option<StopReason>,
    pub(crate) usage: Usage,
}

/// Streams `request`, handing each text delta to `on_text`. A refusal is an error.
pub(crate) async fn stream_round(
    provider: &dyn Provider,
    pipeline: &'static str,
    request: MessageRequest,
    cancel: &CancellationToken,
    mut on_text: impl FnMut(&str) + Send,
) -> Result<Round> {
    let cancelled = |usage: &Usage| Error::Cancelled {
        pipeline,
        usage: *usage,
    };
    let mut events = tokio::select! {
        biased;
        () = cancel.cancelled() => return Err(cancelled(&Usage::default())),
        events = provider.stream(request) => events?,
    };
    let mut round = Round::default();
    loop {
        let event = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(cancelled(&round.usage)),
            event = events.next() => event,
        };
        let Some(event) = event else { break };
        match event? {
            StreamEvent::MessageStart { message } => round.usage.merge(&message.usage),
            StreamEvent::MessageDelta {
                stop_reason, usage, ..
            } => {
                round.usage.merge(&usage);
                if stop_reason.is_some() {
                    round.stop_reason = stop_reason;
                }
            }
            StreamEvent::MessageStop => break,
            other => {
                if let Some(text) = other.text() {
                    round.text.push_str(text);
                    on_text(text);
                }
            }
        }
    }
    if round.stop_reason == Some(StopReason::Refusal) {
        return Err(Error::Refused {
            pipeline,
            partial: round.text,
        });
    }
    Ok(round)
}

/// Adds the usage of the rounds before to a cancellation's, so that it tells the whole run.
pub(crate) fn with_prior_usage(error: Error, prior: &Usage) -> Error {
    match error {
        Error::Cancelled {
            pipeline,
            mut usage,
        } => {
            add_usage(&mut usage, prior);
            Error::Cancelled { pipeline, usage }
        }
        other => other,
    }
}

/// Adds one round's usage to a running total.
pub(crate) fn add_usage(total: &mut Usage, round: &Usage) {
    total.add(round);
}
