use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a handler's attempt came to.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Outcome {
    /// The job is done: store `result` and the token usage.
    Success {
        /// The result, stored on the job.
        result: Value,
        /// Input tokens used.
        input_tokens: u64,
        /// Output tokens produced.
        output_tokens: u64,
    },
    /// A transient failure: retry after backoff (or after `retry_after`) while attempts remain.
    Retryable {
        /// What went wrong.
        error: String,
        /// When the cause says how long to wait (a provider's 429 `retry-after`).
        retry_after: Option<Duration>,
        /// The tokens the attempt used; recorded when this failure (or a cancellation) ends
        /// the job.
        tokens: Option<TokenUsage>,
    },
    /// A failure that retrying cannot fix: fail the job now.
    Permanent {
        /// What went wrong.
        error: String,
        /// The tokens the attempt used; recorded on the failed (or cancelled) job.
        tokens: Option<TokenUsage>,
    },
}

/// The tokens an attempt used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Input tokens.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
}

impl TokenUsage {
    /// `input` and `output` tokens.
    #[must_use]
    pub const fn new(input: u64, output: u64) -> Self {
        Self { input, output }
    }
}

impl Outcome {
    /// Success with `result` and no token usage.
    #[must_use]
    pub const fn success(result: Value) -> Self {
        Self::Success {
            result,
            input_tokens: 0,
            output_tokens: 0,
        }
    }

    /// Sets the tokens the attempt used. A success stores them with its result; a failure
    /// that ends the job, or a cancellation that stops it, records them on the job (a host
    /// can charge what a cancelled generation spent).
    ///
    /// ```
    /// use appforge_jobs::{Outcome, TokenUsage};
    /// let failed = Outcome::permanent("the model refused").with_tokens(900, 40);
    /// assert_eq!(failed.tokens(), Some(TokenUsage::new(900, 40)));
    /// ```
    #[must_use]
    pub fn with_tokens(mut self, input: u64, output: u64) -> Self {
        match &mut self {
            Self::Success {
                input_tokens,
                output_tokens,
                ..
            } => {
                *input_tokens = input;
                *output_tokens = output;
            }
            Self::Retryable { tokens, .. } | Self::Permanent { tokens, .. } => {
                *tokens = Some(TokenUsage::new(input, output));
            }
        }
        self
    }

    /// The tokens the attempt used, when the handler said.
    #[must_use]
    pub const fn tokens(&self) -> Option<TokenUsage> {
        match self {
            Self::Success {
                input_tokens,
                output_tokens,
                ..
            } => Some(TokenUsage::new(*input_tokens, *output_tokens)),
            Self::Retryable { tokens, .. } | Self::Permanent { tokens, .. } => *tokens,
        }
    }

    /// A retryable failure.
    pub fn retry(error: impl Into<String>) -> Self {
        Self::Retryable {
            error: error.into(),
            retry_after: None,
            tokens: None,
        }
    }

    /// A retryable failure to run again no sooner than `after`.
    pub fn retry_after(error: impl Into<String>, after: Duration) -> Self {
        Self::Retryable {
            error: error.into(),
            retry_after: Some(after),
            tokens: None,
        }
    }

    /// A permanent failure.
    pub fn permanent(error: impl Into<String>) -> Self {
        Self::Permanent {
            error: error.into(),
            tokens: None,
        }
    }
}

/// A progress report from a running handler; stored as the job's `progress` and published as
/// a [`JobEventKind::Progress`](crate::JobEventKind::Progress) event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Progress {
    /// The model started writing a file.
    FileStarted {
        /// Its relative path.
        path: String,
    },
    /// The model finished a file.
    FileCompleted {
        /// Its relative path.
        path: String,
    },
    /// Tokens used so far.
    Tokens {
        /// Input tokens.
        input: u64,
        /// Output tokens.
        output: u64,
    },
    /// A free-form message (`"planning"`, `"continuing after truncation"`).
    Message {
        /// The text.
        text: String,
    },
    /// Anything else, as JSON.
    Custom {
        /// The value.
        value: Value,
    },
}
