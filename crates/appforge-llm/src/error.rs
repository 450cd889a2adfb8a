//! The crate's error type. Callers ask questions (`is_retryable()`, `retry_after()`, ...)
//! rather than match variants.

use std::fmt;
use std::time::Duration;

use crate::api::{ApiErrorKind, ErrorBody, MessageResponse, RateLimits, ResponseMeta};

/// The error type of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting or an argument is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The request asks for something its model does not accept (by the model table), so it
    /// was not sent.
    #[error("request not sent: model `{model}` would refuse it: {reason}")]
    InvalidRequest {
        /// The model named in the request.
        model: String,
        /// What it would refuse, and what it takes instead.
        reason: String,
    },
    /// The provider answered with an error: an HTTP error status, or an `error` event in the
    /// middle of a stream.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// The connection failed or dropped (connect, send or read).
    #[error("connection error{}: {message}", request_suffix(meta.as_deref()))]
    Connection {
        /// What the transport said.
        message: String,
        /// The response's metadata, when the failure came after the headers.
        meta: Option<Box<ResponseMeta>>,
    },
    /// A timeout expired.
    #[error("{kind} timeout after {after:?}{}", request_suffix(meta.as_deref()))]
    Timeout {
        /// Which timeout.
        kind: TimeoutKind,
        /// Its setting.
        after: Duration,
        /// The response's metadata, when it expired after the headers.
        meta: Option<Box<ResponseMeta>>,
    },
    /// Bytes from the provider could not be decoded.
    #[error("could not decode {what}: {detail}")]
    Decode {
        /// What was being decoded, such as "`content_block_delta` event".
        what: String,
        /// Why it failed.
        detail: String,
    },
    /// A stream broke after events had been handed to the caller, so it was not retried.
    #[error("stream interrupted after {events} events: {source}")]
    Interrupted {
        /// How many events the caller had received.
        events: u64,
        /// The message accumulated so far, when an accumulator saw the stream.
        partial: Option<Box<MessageResponse>>,
        /// The underlying failure.
        #[source]
        source: Box<Error>,
    },
    /// An event stream does not form a valid message (it ended early, named a block that
    /// never started, or carried invalid tool input).
    #[error("invalid message stream{}: {detail}", block_suffix(*block))]
    Stream {
        /// The content block at fault, when one is.
        block: Option<usize>,
        /// What is wrong.
        detail: String,
    },
    /// The scripted provider has no transcript for a request.
    #[error("scripted provider: {0}")]
    Script(String),
    /// A file path from a model was refused.
    #[cfg(feature = "pipelines")]
    #[cfg_attr(docsrs, doc(cfg(feature = "pipelines")))]
    #[error(transparent)]
    InvalidPath(#[from] crate::protocol::PathError),
    /// A model's reply is not a usable change set; the raw text is kept.
    #[cfg(feature = "pipelines")]
    #[cfg_attr(docsrs, doc(cfg(feature = "pipelines")))]
    #[error(transparent)]
    ChangeSet(#[from] crate::ChangeSetError),
    /// A change set does not fit the app it was applied to; nothing was applied.
    #[cfg(feature = "pipelines")]
    #[cfg_attr(docsrs, doc(cfg(feature = "pipelines")))]
    #[error(transparent)]
    Apply(#[from] crate::ApplyError),
    /// A model's output could not be read as the pipeline's result; the raw text is kept.
    #[cfg(feature = "pipelines")]
    #[cfg_attr(docsrs, doc(cfg(feature = "pipelines")))]
    #[error(transparent)]
    Parse(#[from] crate::pipeline::ParseError),
    /// The model declined the request (stop reason `refusal`).
    #[error("the model refused the {pipeline} request")]
    Refused {
        /// The pipeline (`full_app`, `modify`, ...).
        pipeline: &'static str,
        /// Whatever text came before the refusal.
        partial: String,
    },
    /// The caller cancelled the run.
    #[error("the {pipeline} run was cancelled")]
    Cancelled {
        /// The pipeline (`full_app`, `modify`, ...).
        pipeline: &'static str,
        /// The tokens the run had used when it stopped (every round so far, the one cut short
        /// included, as far as its stream had told).
        usage: crate::api::Usage,
    },
}

#[cfg(feature = "pipelines")]
impl From<appforge_files::Error> for Error {
    fn from(error: appforge_files::Error) -> Self {
        match error {
            appforge_files::Error::InvalidPath(e) => Self::InvalidPath(e),
            appforge_files::Error::ChangeSet(e) => Self::ChangeSet(e),
            appforge_files::Error::Apply(e) => Self::Apply(e),
            // The files crate's error is non-exhaustive; a later kind is still its message.
            other => Self::Config(other.to_string()),
        }
    }
}

fn request_suffix(meta: Option<&ResponseMeta>) -> String {
    match meta.and_then(|m| m.request_id.as_deref()) {
        Some(id) => format!(" (request {id})"),
        None => String::new(),
    }
}

fn block_suffix(block: Option<usize>) -> String {
    block.map(|b| format!(" at block {b}")).unwrap_or_default()
}

/// Which timeout expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// Opening the connection.
    Connect,
    /// From sending the request to the first event (or the whole body, when not streaming).
    FirstByte,
    /// Between two events of a stream (`ping` counts).
    Idle,
    /// The whole request, retries included.
    Total,
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::FirstByte => "first-byte",
            Self::Idle => "idle",
            Self::Total => "total",
        })
    }
}

/// An error the provider reported, with what the response carried.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiError {
    /// The error type and message.
    pub body: ErrorBody,
    /// Status, request id and rate limits. For a mid-stream error, the status is the stream's
    /// (200).
    pub meta: ResponseMeta,
    /// Whether it arrived in the middle of a stream rather than as an HTTP status.
    pub mid_stream: bool,
    /// The delay the provider asked for (`retry-after-ms` or `retry-after`).
    pub retry_after: Option<Duration>,
    /// The provider's `x-should-retry` verdict, when it sent one.
    pub should_retry: Option<bool>,
}

impl ApiError {
    /// An error answered with an HTTP status.
    pub fn http(body: ErrorBody, meta: ResponseMeta) -> Self {
        Self {
            body,
            meta,
            mid_stream: false,
            retry_after: None,
            should_retry: None,
        }
    }

    /// An `error` event in the middle of a stream.
    pub fn mid_stream(body: ErrorBody, meta: ResponseMeta) -> Self {
        Self {
            body,
            meta,
            mid_stream: true,
            retry_after: None,
            should_retry: None,
        }
    }

    /// The default retry rule: `x-should-retry` if sent, else 408, 409, 429 and 5xx for a
    /// status, and overloaded, api and timeout errors mid-stream.
    pub fn is_retryable(&self) -> bool {
        if let Some(verdict) = self.should_retry {
            return verdict;
        }
        if self.mid_stream {
            return matches!(
                self.body.kind,
                ApiErrorKind::Overloaded | ApiErrorKind::Api | ApiErrorKind::Timeout
            );
        }
        matches!(self.meta.status, 408 | 409 | 429 | 500..=599)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mid_stream {
            write!(f, "provider error in stream: {}", self.body)?;
        } else {
            write!(
                f,
                "provider error (status {}): {}",
                self.meta.status, self.body
            )?;
        }
        if let Some(id) = &self.meta.request_id {
            write!(f, " (request {id})")?;
        }
        Ok(())
    }
}

impl Error {
    /// Whether trying the same request again may succeed: retryable statuses and error types,
    /// connection errors, and first-byte or idle timeouts.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api(api) => api.is_retryable(),
            Self::Connection { .. } => true,
            Self::Timeout { kind, .. } => !matches!(kind, TimeoutKind::Total),
            Self::Interrupted { .. }
            | Self::Config(_)
            | Self::InvalidRequest { .. }
            | Self::Decode { .. }
            | Self::Stream { .. }
            | Self::Script(_)
            | Self::Refused { .. }
            | Self::Cancelled { .. } => false,
            #[cfg(feature = "pipelines")]
            Self::InvalidPath(_) | Self::ChangeSet(_) | Self::Apply(_) | Self::Parse(_) => false,
        }
    }

    /// Whether the failure is of a passing kind (overload, rate limit, server error, lost
    /// connection, timeout), looking through [`Error::Interrupted`]: a stream that broke
    /// after content was delivered is not retried by the client, but a job may start over.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Interrupted { source, .. } => source.is_transient(),
            Self::Api(api) if api.mid_stream => {
                api.should_retry != Some(false)
                    && matches!(
                        api.body.kind,
                        ApiErrorKind::Overloaded
                            | ApiErrorKind::Api
                            | ApiErrorKind::Timeout
                            | ApiErrorKind::RateLimit
                    )
            }
            other => other.is_retryable(),
        }
    }

    /// The delay the provider asked for before a retry, if it asked.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api(api) => api.retry_after,
            Self::Interrupted { source, .. } => source.retry_after(),
            _ => None,
        }
    }

    /// The HTTP status of the failed response, if there was one.
    pub fn status(&self) -> Option<u16> {
        self.meta().map(|m| m.status).filter(|s| *s != 0)
    }

    /// The tokens a cancelled run had used when it stopped; `None` for other errors.
    #[must_use]
    pub const fn usage(&self) -> Option<&crate::api::Usage> {
        match self {
            Self::Cancelled { usage, .. } => Some(usage),
            _ => None,
        }
    }

    /// The provider's request id, if the response carried one.
    pub fn request_id(&self) -> Option<&str> {
        self.meta().and_then(|m| m.request_id.as_deref())
    }

    /// The rate limits the response reported, if there was a response.
    pub fn rate_limits(&self) -> Option<&RateLimits> {
        self.meta().map(|m| &m.rate_limits)
    }

    /// The provider's error type, for an [`Error::Api`] (also inside [`Error::Interrupted`]).
    pub fn api_error_kind(&self) -> Option<&ApiErrorKind> {
        match self {
            Self::Api(api) => Some(&api.body.kind),
            Self::Interrupted { source, .. } => source.api_error_kind(),
            _ => None,
        }
    }

    /// The response metadata attached to this error, if any.
    pub fn meta(&self) -> Option<&ResponseMeta> {
        match self {
            Self::Api(api) => Some(&api.meta),
            Self::Connection { meta, .. } | Self::Timeout { meta, .. } => meta.as_deref(),
            Self::Interrupted { source, .. } => source.meta(),
            _ => None,
        }
    }

    /// The partial message carried by an [`Error::Interrupted`], if an accumulator saw it.
    pub fn partial_message(&self) -> Option<&MessageResponse> {
        match self {
            Self::Interrupted { partial, .. } => partial.as_deref(),
            _ => None,
        }
    }
}

impl From<ApiError> for Error {
    fn from(error: ApiError) -> Self {
        Self::Api(Box::new(error))
    }
}

/// A `Result` whose error defaults to this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
