//! Turning an event stream into the final message.

use futures::StreamExt;
use serde_json::Value;

use crate::api::{ContentBlock, Delta, MessageResponse, StreamEvent};
use crate::error::{Error, Result};
use crate::provider::EventStream;

/// Builds the final [`MessageResponse`] from stream events, in time linear in their size.
///
/// Text, thinking (with its signature), citations, usage (cache tokens included) and the stop
/// reason are gathered as they arrive; a tool call's input JSON is parsed once, when its block
/// stops. Unknown events and deltas are skipped; unknown blocks are kept in place.
///
/// ```
/// use appforge_llm::{Accumulator, ContentBlock, Delta, MessageResponse, StreamEvent};
///
/// let mut acc = Accumulator::new();
/// acc.push(&StreamEvent::MessageStart { message: MessageResponse::new("msg_1", "claude") })?;
/// acc.push(&StreamEvent::ContentBlockStart {
///     index: 0,
///     content_block: ContentBlock::Text { text: String::new(), citations: vec![] },
/// })?;
/// acc.push(&StreamEvent::ContentBlockDelta { index: 0, delta: Delta::Text { text: "hi".into() } })?;
/// acc.push(&StreamEvent::ContentBlockStop { index: 0 })?;
/// acc.push(&StreamEvent::MessageStop)?;
/// assert_eq!(acc.finish()?.text(), "hi");
/// # Ok::<_, appforge_llm::Error>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct Accumulator {
    message: MessageResponse,
    started: bool,
    blocks: Vec<Slot>,
    events: u64,
    stopped: bool,
}

#[derive(Debug, Clone)]
struct Slot {
    block: ContentBlock,
    /// Tool input JSON gathered from `input_json_delta`s.
    json: String,
    open: bool,
}

impl Accumulator {
    /// An accumulator that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many events it has seen.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Whether `message_stop` has arrived.
    pub fn is_complete(&self) -> bool {
        self.stopped
    }

    /// Applies one event.
    ///
    /// # Errors
    ///
    /// [`Error::Stream`], naming the block, for a delta or stop of a block that never started
    /// (or already stopped), a block started twice, a delta that does not fit its block, or
    /// tool input that is not valid JSON when its block stops. The accumulator stays usable
    /// for [`Accumulator::partial`].
    pub fn push(&mut self, event: &StreamEvent) -> Result<()> {
        self.events += 1;
        match event {
            StreamEvent::MessageStart { message } => {
                let usage = self.message.usage;
                self.message.id.clone_from(&message.id);
                self.message.model.clone_from(&message.model);
                self.message.usage = message.usage;
                self.message.usage.merge(&usage);
                self.started = true;
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => {
                let index = *index;
                if index < self.blocks.len() {
                    return Err(block_error(index, "started twice"));
                }
                if index > self.blocks.len() {
                    return Err(block_error(
                        index,
                        format!("started before block {}", self.blocks.len()),
                    ));
                }
                self.blocks.push(Slot {
                    block: content_block.clone(),
                    json: String::new(),
                    open: true,
                });
            }
            StreamEvent::ContentBlockDelta { index, delta } => self.delta(*index, delta)?,
            StreamEvent::ContentBlockStop { index } => self.stop(*index)?,
            StreamEvent::MessageDelta {
                stop_reason,
                stop_sequence,
                usage,
                ..
            } => {
                if stop_reason.is_some() {
                    self.message.stop_reason.clone_from(stop_reason);
                }
                if stop_sequence.is_some() {
                    self.message.stop_sequence.clone_from(stop_sequence);
                }
                self.message.usage.merge(usage);
            }
            StreamEvent::MessageStop => self.stopped = true,
            StreamEvent::Error { error } => {
                return Err(Error::Stream {
                    block: None,
                    detail: format!("error event: {error}"),
                });
            }
            _ => {}
        }
        Ok(())
    }

    fn slot(&mut self, index: usize, what: &str) -> Result<&mut Slot> {
        match self.blocks.get_mut(index) {
            Some(slot) if slot.open => Ok(slot),
            Some(_) => Err(block_error(
                index,
                format!("received {what} after it stopped"),
            )),
            None => Err(block_error(
                index,
                format!("received {what} but never started"),
            )),
        }
    }

    fn delta(&mut self, index: usize, delta: &Delta) -> Result<()> {
        let slot = self.slot(index, "a delta")?;
        match (&mut slot.block, delta) {
            (ContentBlock::Text { text, .. }, Delta::Text { text: more }) => text.push_str(more),
            (ContentBlock::Text { citations, .. }, Delta::Citations { citation }) => {
                citations.push(citation.clone());
            }
            (ContentBlock::Thinking { thinking, .. }, Delta::Thinking { thinking: more }) => {
                thinking.push_str(more);
            }
            (ContentBlock::Thinking { signature, .. }, Delta::Signature { signature: more }) => {
                signature.push_str(more);
            }
            (
                ContentBlock::ToolUse { .. } | ContentBlock::ServerToolUse { .. },
                Delta::InputJson { partial_json },
            ) => slot.json.push_str(partial_json),
            (_, Delta::Unknown(_)) | (ContentBlock::Unknown(_), _) => {}
            (block, delta) => {
                return Err(block_error(
                    index,
                    format!(
                        "a {} delta does not fit a {} block",
                        delta_name(delta),
                        block_name(block)
                    ),
                ));
            }
        }
        Ok(())
    }

    fn stop(&mut self, index: usize) -> Result<()> {
        let slot = self.slot(index, "a stop")?;
        slot.open = false;
        if let ContentBlock::ToolUse { name, input, .. }
        | ContentBlock::ServerToolUse { name, input, .. } = &mut slot.block
            && !slot.json.trim().is_empty()
        {
            let json = std::mem::take(&mut slot.json);
            match serde_json::from_str::<Value>(&json) {
                Ok(parsed) => *input = parsed,
                Err(e) => {
                    let error = block_error(
                        index,
                        format!(
                            "tool `{name}` input is not valid JSON ({e}): {}",
                            preview(&json)
                        ),
                    );
                    // Keep the text, so that the partial message loses nothing.
                    *input = Value::String(json);
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// The message as far as it has arrived (open blocks included as they stand).
    pub fn partial(&self) -> MessageResponse {
        let mut message = self.message.clone();
        message.content = self.blocks.iter().map(|slot| slot.block.clone()).collect();
        message
    }

    /// The final message.
    ///
    /// # Errors
    ///
    /// [`Error::Stream`] when `message_start` or `message_stop` never arrived, or a block is
    /// still open (naming it).
    pub fn finish(self) -> Result<MessageResponse> {
        if let Some(open) = self.blocks.iter().position(|slot| slot.open) {
            return Err(block_error(open, "the stream ended inside this block"));
        }
        if !self.started {
            return Err(Error::Stream {
                block: None,
                detail: "the stream had no message_start".to_owned(),
            });
        }
        if !self.stopped {
            return Err(Error::Stream {
                block: None,
                detail: "the stream ended before message_stop".to_owned(),
            });
        }
        let mut message = self.message;
        message.content = self.blocks.into_iter().map(|slot| slot.block).collect();
        Ok(message)
    }
}

/// Drains a provider's event stream into the final message.
///
/// # Errors
///
/// Any error of the stream or of the [`Accumulator`] (the first one), wrapped in
/// [`Error::Interrupted`] carrying the partial message and the number of events received.
/// Tool input that is not valid JSON is kept in the partial message as a JSON string.
pub async fn accumulate(mut stream: EventStream) -> Result<MessageResponse> {
    let mut acc = Accumulator::new();
    // An invalid event does not stop the reading: the rest (stop reason, usage) still
    // belongs in the partial message the error carries.
    let mut invalid = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => {
                if let Err(error) = acc.push(&event) {
                    invalid.get_or_insert(error);
                }
            }
            Err(error) => return Err(interrupted(&acc, invalid.unwrap_or(error))),
        }
    }
    if let Some(error) = invalid {
        return Err(interrupted(&acc, error));
    }
    let events = acc.events;
    let partial = acc.partial();
    acc.finish().map_err(|source| Error::Interrupted {
        events,
        partial: Some(Box::new(partial)),
        source: Box::new(source),
    })
}

fn interrupted(acc: &Accumulator, error: Error) -> Error {
    let source = match error {
        Error::Interrupted { source, .. } => source,
        other => Box::new(other),
    };
    Error::Interrupted {
        events: acc.events,
        partial: Some(Box::new(acc.partial())),
        source,
    }
}

fn block_error(index: usize, detail: impl Into<String>) -> Error {
    Error::Stream {
        block: Some(index),
        detail: detail.into(),
    }
}

fn preview(json: &str) -> String {
    const MAX: usize = 80;
    if json.len() <= MAX {
        return json.to_owned();
    }
    let mut end = MAX;
    while !json.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &json[..end])
}

fn block_name(block: &ContentBlock) -> &'static str {
    match block {
        ContentBlock::Text { .. } => "text",
        ContentBlock::Thinking { .. } => "thinking",
        ContentBlock::RedactedThinking { .. } => "redacted_thinking",
        ContentBlock::ToolUse { .. } => "tool_use",
        ContentBlock::ServerToolUse { .. } => "server_tool_use",
        ContentBlock::ServerToolResult { .. } => "server tool result",
        ContentBlock::ContainerUpload { .. } => "container_upload",
        ContentBlock::Unknown(_) => "unknown",
    }
}

fn delta_name(delta: &Delta) -> &'static str {
    match delta {
        Delta::Text { .. } => "text_delta",
        Delta::InputJson { .. } => "input_json_delta",
        Delta::Thinking { .. } => "thinking_delta",
        Delta::Signature { .. } => "signature_delta",
        Delta::Citations { .. } => "citations_delta",
        Delta::Unknown(_) => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{StopReason, Usage};

    fn start() -> StreamEvent {
        StreamEvent::MessageStart {
            message: MessageResponse::new("msg", "m"),
        }
    }

    fn text_block(index: usize) -> StreamEvent {
        StreamEvent::ContentBlockStart {
            index,
            content_block: ContentBlock::Text {
                text: String::new(),
                citations: vec![],
            },
        }
    }

    fn text(index: usize, text: &str) -> StreamEvent {
        StreamEvent::ContentBlockDelta {
            index,
            delta: Delta::Text { text: text.into() },
        }
    }

    #[test]
    fn names_the_block_that_never_started() {
        let mut acc = Accumulator::new();
        acc.push(&start()).unwrap();
        let err = acc.push(&text(3, "x")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid message stream at block 3: received a delta but never started"
        );
        let err = acc.push(&text_block(1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid message stream at block 1: started before block 0"
        );
    }

    #[test]
    fn a_stream_that_ends_early_names_the_open_block() {
        let mut acc = Accumulator::new();
        for event in [start(), text_block(0), text(0, "par")] {
            acc.push(&event).unwrap();
        }
        assert_eq!(acc.partial().text(), "par");
        let err = acc.finish().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid message stream at block 0: the stream ended inside this block"
        );
        let mut acc = Accumulator::new();
        acc.push(&start()).unwrap();
        assert_eq!(
            acc.finish().unwrap_err().to_string(),
            "invalid message stream: the stream ended before message_stop"
        );
    }

    #[test]
    fn a_delta_that_does_not_fit_its_block_is_an_error_and_a_late_delta_too() {
        let mut acc = Accumulator::new();
        for event in [start(), text_block(0)] {
            acc.push(&event).unwrap();
        }
        let json = StreamEvent::ContentBlockDelta {
            index: 0,
            delta: Delta::InputJson {
                partial_json: "{".into(),
            },
        };
        assert_eq!(
            acc.push(&json).unwrap_err().to_string(),
            "invalid message stream at block 0: a input_json_delta delta does not fit a text block"
        );
        acc.push(&StreamEvent::ContentBlockStop { index: 0 })
            .unwrap();
        assert_eq!(
            acc.push(&text(0, "late")).unwrap_err().to_string(),
            "invalid message stream at block 0: received a delta after it stopped"
        );
    }

    #[tokio::test]
    async fn invalid_tool_json_keeps_reading_and_the_partial_loses_nothing() {
        let events = vec![
            start(),
            StreamEvent::ContentBlockStart {
                index: 0,
                content_block: ContentBlock::ToolUse {
                    id: "t".into(),
                    name: "write_file".into(),
                    input: serde_json::json!({}),
                },
            },
            StreamEvent::ContentBlockDelta {
                index: 0,
                delta: Delta::InputJson {
                    partial_json: "{\"path\": \"a".into(),
                },
            },
            StreamEvent::ContentBlockStop { index: 0 },
            StreamEvent::MessageDelta {
                stop_reason: Some(StopReason::MaxTokens),
                stop_sequence: None,
                stop_details: None,
                usage: Usage {
                    output_tokens: 9,
                    ..Usage::default()
                },
            },
            StreamEvent::MessageStop,
        ];
        let err = accumulate(Box::pin(futures::stream::iter(events.into_iter().map(Ok))))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("at block 0: tool `write_file` input is not valid JSON"),
            "{err}"
        );
        let partial = err.partial_message().unwrap();
        assert_eq!(partial.stop_reason, Some(StopReason::MaxTokens));
        assert_eq!(partial.usage.output_tokens, 9);
        let (_, _, input) = partial.tool_uses().next().unwrap();
        assert_eq!(input, &serde_json::json!("{\"path\": \"a"));
    }
}
