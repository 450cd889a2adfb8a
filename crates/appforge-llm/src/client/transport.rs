//! Sending requests under the timeouts and the retry policy; shared by every HTTP provider.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tracing::Instrument as _;

use super::stream::{FrameMapper, MessageStream, ReadDeadlines, commit, decode_body};
use crate::api::{ApiErrorKind, ErrorBody, ResponseMeta};
use crate::error::{ApiError, Error, Result, TimeoutKind};
use crate::retry::{self, RetryPolicy};

/// The four timeouts of a request. `None` disables one.
///
/// Defaults: connect 10 s, first byte 60 s, idle 60 s, total 10 minutes. First byte and idle
/// apply to streams; a non-streaming request (whose answer only starts when it is complete)
/// is bounded by connect and total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Opening the connection.
    pub connect: Option<Duration>,
    /// From sending a streaming request to its first event.
    pub first_byte: Option<Duration>,
    /// Between two events (`ping` counts as life).
    pub idle: Option<Duration>,
    /// The whole request, retries and backoff included.
    pub total: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Some(Duration::from_secs(10)),
            first_byte: Some(Duration::from_secs(60)),
            idle: Some(Duration::from_secs(60)),
            total: Some(Duration::from_secs(600)),
        }
    }
}

impl Timeouts {
    /// No timeouts at all.
    pub fn none() -> Self {
        Self {
            connect: None,
            first_byte: None,
            idle: None,
            total: None,
        }
    }
}

/// A response body with the metadata of its response.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ApiResponse<T> {
    /// The decoded body.
    pub data: T,
    /// Status, request id and rate limits.
    pub meta: ResponseMeta,
}

impl<T> std::ops::Deref for ApiResponse<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.data
    }
}

/// An HTTP client with timeouts and a retry policy.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    pub(crate) http: reqwest::Client,
    pub(crate) timeouts: Timeouts,
    pub(crate) retry: RetryPolicy,
}

impl Transport {
    pub(crate) fn new(timeouts: Timeouts, retry: RetryPolicy) -> Result<Self> {
        let mut builder = reqwest::Client::builder();
        if let Some(connect) = timeouts.connect {
            builder = builder.connect_timeout(connect);
        }
        let http = builder
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            timeouts,
            retry,
        })
    }

    /// Sends a streaming request until a response starts content, retrying what the policy
    /// allows.
    pub(crate) async fn stream<M: FrameMapper>(
        &self,
        span: tracing::Span,
        request: impl Fn() -> reqwest::RequestBuilder,
        mapper: impl Fn() -> M,
    ) -> Result<MessageStream> {
        let started = Instant::now();
        let total = self.timeouts.total.map(|after| (started + after, after));
        let mut retries = 0;
        loop {
            let attempt_span =
                tracing::debug_span!(parent: &span, "attempt", attempt = retries + 1);
            let attempt = async {
                let sent = Instant::now();
                let first_byte = self.timeouts.first_byte.map(|after| (sent + after, after));
                let response = self.send(request(), earliest(first_byte, total)).await?;
                let meta =
                    ResponseMeta::from_headers(response.status().as_u16(), response.headers());
                tracing::debug!(request_id = meta.request_id.as_deref(), "response started");
                let deadlines = ReadDeadlines {
                    first_byte,
                    idle: self.timeouts.idle,
                    total,
                };
                let events =
                    decode_body(response.bytes_stream(), mapper(), meta.clone(), deadlines);
                let (held, rest) = commit(events).await?;
                Ok::<_, Error>((meta, held, rest, sent.elapsed()))
            }
            .instrument(attempt_span)
            .await;
            match attempt {
                Ok((meta, held, rest, first_token)) => {
                    span.record("request_id", meta.request_id.as_deref());
                    span.record("retries", retries);
                    span.record(
                        "ttft_ms",
                        u64::try_from(first_token.as_millis()).unwrap_or(u64::MAX),
                    );
                    return Ok(MessageStream::new(meta, retries, held, rest, span));
                }
                Err(error) => {
                    let delay = self.retry_delay(retries, &error, total)?;
                    let Some(delay) = delay else {
                        return Err(error);
                    };
                    tracing::warn!(parent: &span, %error, ?delay, attempt = retries + 1, "retrying");
                    tokio::time::sleep(delay).await;
                    retries += 1;
                }
            }
        }
    }

    /// Sends a request whose answer is one JSON body, retrying what the policy allows.
    #[cfg(feature = "anthropic")]
    pub(crate) async fn json<T: serde::de::DeserializeOwned>(
        &self,
        span: &tracing::Span,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<ApiResponse<T>> {
        let started = Instant::now();
        let total = self.timeouts.total.map(|after| (started + after, after));
        let mut retries = 0;
        loop {
            let attempt = async {
                let response = self.send(request(), earliest(None, total)).await?;
                let meta =
                    ResponseMeta::from_headers(response.status().as_u16(), response.headers());
                let body = read_body(response, total, &meta).await?;
                let data = serde_json::from_slice::<T>(&body).map_err(|e| Error::Decode {
                    what: "the response body".to_owned(),
                    detail: e.to_string(),
                })?;
                Ok::<_, Error>(ApiResponse { data, meta })
            }
            .await;
            match attempt {
                Ok(response) => {
                    span.record("request_id", response.meta.request_id.as_deref());
                    span.record("retries", retries);
                    return Ok(response);
                }
                Err(error) => {
                    let Some(delay) = self.retry_delay(retries, &error, total)? else {
                        return Err(error);
                    };
                    tracing::warn!(parent: span, %error, ?delay, attempt = retries + 1, "retrying");
                    tokio::time::sleep(delay).await;
                    retries += 1;
                }
            }
        }
    }

    /// The delay before the next retry, `None` to give up; a total timeout that the delay
    /// would overrun gives up too.
    fn retry_delay(
        &self,
        retries: u32,
        error: &Error,
        total: Option<(Instant, Duration)>,
    ) -> Result<Option<Duration>> {
        let Some(delay) = self.retry.retry_delay(retries, error) else {
            return Ok(None);
        };
        match total {
            Some((at, _)) if Instant::now() + delay >= at => Ok(None),
            _ => Ok(Some(delay)),
        }
    }

    /// Sends one request and waits for its headers; an error status becomes [`Error::Api`].
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        deadline: Option<(Instant, TimeoutKind, Duration)>,
    ) -> Result<reqwest::Response> {
        let sending = request.send();
        let response = match deadline {
            Some((at, kind, after)) => {
                tokio::time::timeout_at(at, sending)
                    .await
                    .map_err(|_| Error::Timeout {
                        kind,
                        after,
                        meta: None,
                    })?
            }
            None => sending.await,
        }
        .map_err(|e| transport_error(&e, self.timeouts.connect))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let meta = ResponseMeta::from_headers(response.status().as_u16(), &headers);
        let body = read_body(response, deadline.map(|(at, _, after)| (at, after)), &meta)
            .await
            .unwrap_or_default();
        let mut error = ApiError::http(error_body(meta.status, &body), meta);
        error.retry_after = retry::retry_after(&headers);
        error.should_retry = retry::should_retry(&headers);
        Err(error.into())
    }
}

fn earliest(
    first_byte: Option<(Instant, Duration)>,
    total: Option<(Instant, Duration)>,
) -> Option<(Instant, TimeoutKind, Duration)> {
    let first = first_byte.map(|(at, after)| (at, TimeoutKind::FirstByte, after));
    let total = total.map(|(at, after)| (at, TimeoutKind::Total, after));
    match (first, total) {
        (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
        (a, b) => a.or(b),
    }
}

async fn read_body(
    response: reqwest::Response,
    deadline: Option<(Instant, Duration)>,
    meta: &ResponseMeta,
) -> Result<Bytes> {
    let reading = response.bytes();
    let body = match deadline {
        Some((at, after)) => {
            tokio::time::timeout_at(at, reading)
                .await
                .map_err(|_| Error::Timeout {
                    kind: TimeoutKind::Total,
                    after,
                    meta: Some(Box::new(meta.clone())),
                })?
        }
        None => reading.await,
    };
    body.map_err(|e| Error::Connection {
        message: format!("reading the response failed: {e}"),
        meta: Some(Box::new(meta.clone())),
    })
}

fn transport_error(error: &reqwest::Error, connect: Option<Duration>) -> Error {
    if error.is_builder() {
        return Error::Config(format!("cannot build the request: {error}"));
    }
    if error.is_timeout()
        && let Some(after) = connect
    {
        return Error::Timeout {
            kind: TimeoutKind::Connect,
            after,
            meta: None,
        };
    }
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    Error::Connection {
        message,
        meta: None,
    }
}

/// The error object of an error response (`{"error": {"type", "message"}}`, as both the
/// Messages API and OpenAI-compatible servers send), or one made up from the status.
pub(crate) fn error_body(status: u16, body: &[u8]) -> ErrorBody {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        #[serde(rename = "type", default)]
        kind: Option<String>,
        #[serde(default)]
        message: Option<String>,
    }
    let parsed = serde_json::from_slice::<Envelope>(body).ok();
    let kind = parsed
        .as_ref()
        .and_then(|e| e.error.kind.as_deref())
        .map_or_else(|| kind_of_status(status), ApiErrorKind::parse);
    let message = parsed.and_then(|e| e.error.message).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let mut end = text.len().min(200);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        if text.is_empty() {
            format!("status {status}")
        } else {
            text[..end].to_owned()
        }
    });
    ErrorBody { kind, message }
}

fn kind_of_status(status: u16) -> ApiErrorKind {
    match status {
        400 => ApiErrorKind::InvalidRequest,
        401 => ApiErrorKind::Authentication,
        402 => ApiErrorKind::Billing,
        403 => ApiErrorKind::Permission,
        404 => ApiErrorKind::NotFound,
        413 => ApiErrorKind::RequestTooLarge,
        429 => ApiErrorKind::RateLimit,
        504 => ApiErrorKind::Timeout,
        529 => ApiErrorKind::Overloaded,
        _ => ApiErrorKind::Api,
    }
}
