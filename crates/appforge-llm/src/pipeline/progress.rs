//! Progress reports of a running pipeline.

use serde::{Deserialize, Serialize};

use crate::api::Usage;
use crate::protocol::{ProtocolEvent, Section, Warning};

/// What a running pipeline reports as the model's output arrives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Progress {
    /// A model call begins: round 0 is the first, later rounds continue a truncated output.
    RoundStarted {
        /// The round's number.
        round: u32,
    },
    /// Text from the model (chat, modify and plan pipelines).
    TextDelta {
        /// The new text.
        text: String,
    },
    /// A protocol section is complete.
    Section {
        /// Which section.
        section: Section,
        /// Its value.
        value: String,
    },
    /// A file begins.
    FileStarted {
        /// Its path.
        path: String,
    },
    /// More of a file.
    FileDelta {
        /// Its path.
        path: String,
        /// The new text.
        text: String,
    },
    /// A file is complete.
    FileCompleted {
        /// Its path.
        path: String,
        /// Its length in bytes.
        bytes: usize,
    },
    /// Something worth telling the user.
    Warning {
        /// The warning.
        warning: Warning,
    },
    /// Token usage so far, summed over rounds.
    Usage {
        /// The usage.
        usage: Usage,
    },
}

impl Progress {
    /// The owned report for a parser event (`None` for `===END===` and phases).
    pub(crate) fn from_event(event: ProtocolEvent<'_>) -> Option<Self> {
        Some(match event {
            ProtocolEvent::Section { section, value } => Self::Section {
                section,
                value: value.to_owned(),
            },
            ProtocolEvent::FileStarted { path } => Self::FileStarted {
                path: path.to_owned(),
            },
            ProtocolEvent::FileDelta { path, text } => Self::FileDelta {
                path: path.to_owned(),
                text: text.to_owned(),
            },
            ProtocolEvent::FileCompleted { path, bytes } => Self::FileCompleted {
                path: path.to_owned(),
                bytes,
            },
            ProtocolEvent::Warning(warning) => Self::Warning {
                warning: warning.clone(),
            },
            _ => return None,
        })
    }
}
