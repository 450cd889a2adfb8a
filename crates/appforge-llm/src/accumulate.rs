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
/// use appforge_llm::{Accumulator, Delta, ContentBlock, StreamEvent};
///
/// let mut acc = Accumulator::new();
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
            *input = serde_json::from_str::<Value>(&json).map_err(|e| {
                block_error(
                    index,
                    format!(
                        "tool `{name}` input is not valid JSON ({e}): {}",
                        preview(&json)
                    ),
                )
            })?;
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
/// Any error of the stream or of the [`Accumulator`], wrapped in [`Error::Interrupted`]
/// carrying the partial message and the number of events received.
pub async fn accumulate(mut stream: EventStream) -> Result<MessageResponse> {
    let mut acc = Accumulator::new();
    while let Some(item) = stream.next().await {
        let result = item.and_then(|event| acc.push(&event));
        if let Err(error) = result {
            return Err(interrupted(&acc, error));
        }
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
