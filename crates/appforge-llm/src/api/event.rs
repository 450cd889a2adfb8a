//! Streaming events of the Messages API and their decoding from SSE frames.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::response::{ContentBlock, MessageResponse, StopReason, Usage, null_as_default};
use crate::error::{Error, Result};

/// One event of a streamed message, mirroring the API's server-sent events.
///
/// Unknown event types arrive as [`StreamEvent::Unknown`] with their raw JSON and never fail a
/// stream; block indexes are passed through as the API sent them.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StreamEvent {
    /// The message begins; `message` holds its id, model and initial usage.
    MessageStart {
        /// The message so far (no content yet).
        message: MessageResponse,
    },
    /// A content block begins.
    ContentBlockStart {
        /// The block's index in the message.
        index: usize,
        /// The block's initial state (empty text, tool name and id, ...).
        content_block: ContentBlock,
    },
    /// A content block grows.
    ContentBlockDelta {
        /// The block's index.
        index: usize,
        /// What to add.
        delta: Delta,
    },
    /// A content block is complete.
    ContentBlockStop {
        /// The block's index.
        index: usize,
    },
    /// Top-level changes: the stop reason and cumulative usage.
    MessageDelta {
        /// Why generation stopped.
        stop_reason: Option<StopReason>,
        /// The stop sequence that ended generation, if one did.
        stop_sequence: Option<String>,
        /// Extra detail about the stop (for example of a refusal), as the API sent it.
        stop_details: Option<Value>,
        /// Cumulative usage.
        usage: Usage,
    },
    /// The message is complete.
    MessageStop,
    /// Keep-alive.
    Ping,
    /// An error reported in the middle of the stream.
    Error {
        /// The error.
        error: ErrorBody,
    },
    /// An event type this crate does not know, kept as raw JSON.
    Unknown(Value),
}

/// What a `content_block_delta` adds to its block.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Delta {
    /// Text for a text block.
    Text {
        /// The text.
        text: String,
    },
    /// A piece of a tool call's input JSON (not valid JSON on its own).
    InputJson {
        /// The piece.
        partial_json: String,
    },
    /// Text for a thinking block.
    Thinking {
        /// The thinking text.
        thinking: String,
    },
    /// The signature of a thinking block.
    Signature {
        /// The signature.
        signature: String,
    },
    /// A citation for a text block.
    Citations {
        /// The citation, as the API sent it.
        citation: Value,
    },
    /// A delta type this crate does not know, kept as raw JSON.
    Unknown(Value),
}

/// The error object of the API, in an error response or a mid-stream `error` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error type.
    #[serde(rename = "type")]
    pub kind: ApiErrorKind,
    /// The API's message.
    #[serde(default)]
    pub message: String,
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

/// The API's `error.type`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApiErrorKind {
    /// `invalid_request_error` (400).
    InvalidRequest,
    /// `authentication_error` (401).
    Authentication,
    /// `billing_error` (402).
    Billing,
    /// `permission_error` (403).
    Permission,
    /// `not_found_error` (404).
    NotFound,
    /// `request_too_large` (413).
    RequestTooLarge,
    /// `rate_limit_error` (429).
    RateLimit,
    /// `api_error` (500).
    Api,
    /// `timeout_error` (504).
    Timeout,
    /// `overloaded_error` (529).
    Overloaded,
    /// A type this crate does not know, as the API spelled it.
    Unknown(String),
}

impl ApiErrorKind {
    /// The API's name for this type.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request_error",
            Self::Authentication => "authentication_error",
            Self::Billing => "billing_error",
            Self::Permission => "permission_error",
            Self::NotFound => "not_found_error",
            Self::RequestTooLarge => "request_too_large",
            Self::RateLimit => "rate_limit_error",
            Self::Api => "api_error",
            Self::Timeout => "timeout_error",
            Self::Overloaded => "overloaded_error",
            Self::Unknown(other) => other,
        }
    }

    /// Parses the API's name; an unknown name becomes [`ApiErrorKind::Unknown`].
    pub fn parse(name: &str) -> Self {
        match name {
            "invalid_request_error" => Self::InvalidRequest,
            "authentication_error" => Self::Authentication,
            "billing_error" => Self::Billing,
            "permission_error" => Self::Permission,
            "not_found_error" => Self::NotFound,
            "request_too_large" => Self::RequestTooLarge,
            "rate_limit_error" => Self::RateLimit,
            "api_error" => Self::Api,
            "timeout_error" => Self::Timeout,
            "overloaded_error" => Self::Overloaded,
            other => Self::Unknown(other.to_owned()),
        }
    }
}

impl Serialize for ApiErrorKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ApiErrorKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let name = Cow::<'de, str>::deserialize(deserializer)?;
        Ok(Self::parse(&name))
    }
}

#[derive(Deserialize)]
struct DeltaWire<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    partial_json: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    signature: Option<Cow<'a, str>>,
    #[serde(default)]
    citation: Option<Value>,
}

impl DeltaWire<'_> {
    fn into_delta(self) -> Option<Delta> {
        Some(match &*self.kind {
            "text_delta" => Delta::Text {
                text: self.text?.into_owned(),
            },
            "input_json_delta" => Delta::InputJson {
                partial_json: self.partial_json?.into_owned(),
            },
            "thinking_delta" => Delta::Thinking {
                thinking: self.thinking?.into_owned(),
            },
            "signature_delta" => Delta::Signature {
                signature: self.signature?.into_owned(),
            },
            "citations_delta" => Delta::Citations {
                citation: self.citation?,
            },
            _ => return None,
        })
    }
}

impl Delta {
    /// Builds a delta from its JSON; unknown types become [`Delta::Unknown`].
    pub fn from_value(value: Value) -> Self {
        DeltaWire::deserialize(&value)
            .ok()
            .and_then(DeltaWire::into_delta)
            .unwrap_or(Self::Unknown(value))
    }
}

#[derive(Deserialize)]
struct IndexWire {
    index: usize,
}

#[derive(Deserialize)]
struct DeltaEventWire<'a> {
    index: usize,
    #[serde(borrow)]
    delta: DeltaWire<'a>,
}

#[derive(Deserialize)]
struct BlockStartWire {
    index: usize,
    content_block: Value,
}

#[derive(Deserialize)]
struct MessageStartWire {
    message: MessageResponse,
}

#[derive(Deserialize)]
struct MessageDeltaWire {
    #[serde(default)]
    delta: MessageDeltaBody,
    #[serde(default, deserialize_with = "null_as_default")]
    usage: Usage,
}

#[derive(Deserialize, Default)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<StopReason>,
    #[serde(default)]
    stop_sequence: Option<String>,
    #[serde(default)]
    stop_details: Option<Value>,
}

#[derive(Deserialize)]
struct ErrorWire {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct TypeWire<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

impl StreamEvent {
    /// Decodes one SSE frame: its `event:` name (empty when absent) and its `data:`.
    ///
    /// The event name selects the type when present (the API always sends it); otherwise the
    /// data's `type` field does.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the data is not JSON, or when a known event lacks a field it
    /// cannot do without (such as a delta's `index`).
    pub fn from_sse(event: &str, data: &str) -> Result<Self> {
        let kind: Cow<'_, str> = if event.is_empty() || event == "message" {
            match serde_json::from_str::<TypeWire<'_>>(data) {
                Ok(wire) => wire.kind,
                Err(_) => return Self::slow_path(event, data),
            }
        } else {
            Cow::Borrowed(event)
        };
        let fast = match &*kind {
            "content_block_delta" => serde_json::from_str::<DeltaEventWire<'_>>(data)
                .ok()
                .and_then(|w| {
                    let index = w.index;
                    w.delta
                        .into_delta()
                        .map(|delta| Self::ContentBlockDelta { index, delta })
                }),
            "ping" => Some(Self::Ping),
            "message_stop" => Some(Self::MessageStop),
            "content_block_stop" => serde_json::from_str::<IndexWire>(data)
                .ok()
                .map(|w| Self::ContentBlockStop { index: w.index }),
            "content_block_start" => {
                serde_json::from_str::<BlockStartWire>(data)
                    .ok()
                    .map(|w| Self::ContentBlockStart {
                        index: w.index,
                        content_block: ContentBlock::from_value(w.content_block),
                    })
            }
            "message_start" => serde_json::from_str::<MessageStartWire>(data)
                .ok()
                .map(|w| Self::MessageStart { message: w.message }),
            "message_delta" => serde_json::from_str::<MessageDeltaWire>(data)
                .ok()
                .map(|w| Self::MessageDelta {
                    stop_reason: w.delta.stop_reason,
                    stop_sequence: w.delta.stop_sequence,
                    stop_details: w.delta.stop_details,
                    usage: w.usage,
                }),
            "error" => serde_json::from_str::<ErrorWire>(data)
                .ok()
                .map(|w| Self::Error { error: w.error }),
            _ => None,
        };
        match fast {
            Some(event) => Ok(event),
            None => Self::slow_path(&kind, data),
        }
    }

    /// The rare path: unknown types, unknown delta types, or a shape the fast path refused.
    fn slow_path(event: &str, data: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(data).map_err(|source| Error::Decode {
            what: format!(
                "`{}` event",
                if event.is_empty() { "message" } else { event }
            ),
            detail: source.to_string(),
        })?;
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(event)
            .to_owned();
        let missing = |field: &str| Error::Decode {
            what: format!("`{kind}` event"),
            detail: format!("missing or invalid `{field}`"),
        };
        let index = || {
            value
                .get("index")
                .and_then(Value::as_u64)
                .and_then(|i| usize::try_from(i).ok())
                .ok_or_else(|| missing("index"))
        };
        match kind.as_str() {
            "content_block_delta" => {
                let index = index()?;
                let delta = value
                    .get("delta")
                    .cloned()
                    .ok_or_else(|| missing("delta"))?;
                Ok(Self::ContentBlockDelta {
                    index,
                    delta: Delta::from_value(delta),
                })
            }
            "content_block_start" => {
                let index = index()?;
                let block = value
                    .get("content_block")
                    .cloned()
                    .ok_or_else(|| missing("content_block"))?;
                Ok(Self::ContentBlockStart {
                    index,
                    content_block: ContentBlock::from_value(block),
                })
            }
            "content_block_stop" => Ok(Self::ContentBlockStop { index: index()? }),
            "message_start" => serde_json::from_value::<MessageStartWire>(value.clone())
                .map(|w| Self::MessageStart { message: w.message })
                .map_err(|_| missing("message")),
            "message_delta" => serde_json::from_value::<MessageDeltaWire>(value.clone())
                .map(|w| Self::MessageDelta {
                    stop_reason: w.delta.stop_reason,
                    stop_sequence: w.delta.stop_sequence,
                    stop_details: w.delta.stop_details,
                    usage: w.usage,
                })
                .map_err(|_| missing("delta")),
            "error" => serde_json::from_value::<ErrorWire>(value.clone())
                .map(|w| Self::Error { error: w.error })
                .map_err(|_| missing("error")),
            "ping" => Ok(Self::Ping),
            "message_stop" => Ok(Self::MessageStop),
            _ => Ok(Self::Unknown(value)),
        }
    }

    /// The API's name of this event type (`"unknown"` for one this crate does not know).
    pub fn name(&self) -> &str {
        match self {
            Self::MessageStart { .. } => "message_start",
            Self::ContentBlockStart { .. } => "content_block_start",
            Self::ContentBlockDelta { .. } => "content_block_delta",
            Self::ContentBlockStop { .. } => "content_block_stop",
            Self::MessageDelta { .. } => "message_delta",
            Self::MessageStop => "message_stop",
            Self::Ping => "ping",
            Self::Error { .. } => "error",
            Self::Unknown(raw) => raw.get("type").and_then(Value::as_str).unwrap_or("unknown"),
        }
    }

    /// The text this event adds, if it is a text delta.
    pub fn text(&self) -> Option<&str> {
        match self {
            Self::ContentBlockDelta {
                delta: Delta::Text { text },
                ..
            } => Some(text),
            _ => None,
        }
    }

    /// The event as one SSE frame (`event:` line, `data:` line, blank line), as the API sends
    /// it: the inverse of [`StreamEvent::from_sse`], handy for writing transcripts.
    pub fn to_sse(&self) -> String {
        format!("event: {}\ndata: {}\n\n", self.name(), self.to_value())
    }

    /// The event as JSON, in the API's shape (what a transcript would carry).
    pub fn to_value(&self) -> Value {
        use serde_json::json;
        match self {
            Self::MessageStart { message } => json!({"type": "message_start", "message": message}),
            Self::ContentBlockStart {
                index,
                content_block,
            } => {
                json!({"type": "content_block_start", "index": index, "content_block": content_block.to_value()})
            }
            Self::ContentBlockDelta { index, delta } => {
                json!({"type": "content_block_delta", "index": index, "delta": delta.to_value()})
            }
            Self::ContentBlockStop { index } => {
                json!({"type": "content_block_stop", "index": index})
            }
            Self::MessageDelta {
                stop_reason,
                stop_sequence,
                stop_details,
                usage,
            } => {
                let mut delta = json!({"stop_reason": stop_reason, "stop_sequence": stop_sequence});
                if let Some(details) = stop_details {
                    delta["stop_details"] = details.clone();
                }
                json!({"type": "message_delta", "delta": delta, "usage": usage})
            }
            Self::MessageStop => json!({"type": "message_stop"}),
            Self::Ping => json!({"type": "ping"}),
            Self::Error { error } => json!({"type": "error", "error": error}),
            Self::Unknown(raw) => raw.clone(),
        }
    }
}

impl Delta {
    /// The delta as JSON, in the API's shape.
    pub fn to_value(&self) -> Value {
        use serde_json::json;
        match self {
            Self::Text { text } => json!({"type": "text_delta", "text": text}),
            Self::InputJson { partial_json } => {
                json!({"type": "input_json_delta", "partial_json": partial_json})
            }
            Self::Thinking { thinking } => json!({"type": "thinking_delta", "thinking": thinking}),
            Self::Signature { signature } => {
                json!({"type": "signature_delta", "signature": signature})
            }
            Self::Citations { citation } => {
                json!({"type": "citations_delta", "citation": citation})
            }
            Self::Unknown(raw) => raw.clone(),
        }
    }
}

impl Serialize for StreamEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_a_text_delta_on_the_fast_path() {
        let event = StreamEvent::from_sse(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"h\"i"}}"#,
        )
        .unwrap();
        assert_eq!(
            event,
            StreamEvent::ContentBlockDelta {
                index: 2,
                delta: Delta::Text {
                    text: "h\"i".into()
                }
            }
        );
    }

    #[test]
    fn takes_the_type_from_data_when_the_event_name_is_absent() {
        let event =
            StreamEvent::from_sse("", r#"{"type":"content_block_stop","index":1}"#).unwrap();
        assert_eq!(event, StreamEvent::ContentBlockStop { index: 1 });
    }

    #[test]
    fn unknown_event_delta_block_and_stop_reason_keep_their_raw_json() {
        let raw = json!({"type": "brand_new", "x": 1});
        let event = StreamEvent::from_sse("brand_new", &raw.to_string()).unwrap();
        assert_eq!(event, StreamEvent::Unknown(raw));
        assert_eq!(event.name(), "brand_new");

        let delta = json!({"type": "sparkle_delta", "sparkle": 3});
        let data = json!({"type": "content_block_delta", "index": 4, "delta": delta}).to_string();
        let event = StreamEvent::from_sse("content_block_delta", &data).unwrap();
        assert_eq!(
            event,
            StreamEvent::ContentBlockDelta {
                index: 4,
                delta: Delta::Unknown(delta)
            }
        );

        let block = json!({"type": "hologram", "id": "h1"});
        let data =
            json!({"type": "content_block_start", "index": 5, "content_block": block}).to_string();
        let event = StreamEvent::from_sse("content_block_start", &data).unwrap();
        assert_eq!(
            event,
            StreamEvent::ContentBlockStart {
                index: 5,
                content_block: ContentBlock::Unknown(block)
            }
        );

        let data = r#"{"type":"message_delta","delta":{"stop_reason":"nap_time"},"usage":{"output_tokens":9}}"#;
        let StreamEvent::MessageDelta {
            stop_reason, usage, ..
        } = StreamEvent::from_sse("message_delta", data).unwrap()
        else {
            panic!("not a message_delta");
        };
        assert_eq!(stop_reason, Some(StopReason::Unknown("nap_time".into())));
        assert_eq!(usage.output_tokens, 9);
    }

    #[test]
    fn a_known_event_without_its_index_is_a_clear_error() {
        let err = StreamEvent::from_sse("content_block_stop", r#"{"type":"content_block_stop"}"#)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "could not decode `content_block_stop` event: missing or invalid `index`"
        );
        let err = StreamEvent::from_sse("message_start", "{not json").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("could not decode `message_start` event"),
            "{err}"
        );
    }

    #[test]
    fn to_sse_round_trips() {
        let events = [
            StreamEvent::Ping,
            StreamEvent::ContentBlockDelta {
                index: 0,
                delta: Delta::InputJson {
                    partial_json: "{\"a\":".into(),
                },
            },
            StreamEvent::Error {
                error: ErrorBody {
                    kind: ApiErrorKind::Overloaded,
                    message: "busy".into(),
                },
            },
        ];
        for event in events {
            let sse = event.to_sse();
            let (name, data) = sse
                .trim_end()
                .split_once('\n')
                .map(|(e, d)| {
                    (
                        e.trim_start_matches("event: "),
                        d.trim_start_matches("data: "),
                    )
                })
                .unwrap();
            assert_eq!(StreamEvent::from_sse(name, data).unwrap(), event);
        }
    }
}
