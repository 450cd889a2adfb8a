//! Shared helpers: transcripts on disk, clients pointed at test servers.

use std::path::PathBuf;

use appforge_llm::{Client, Error, RetryPolicy, StreamEvent, Timeouts};
use futures::StreamExt;

pub(crate) fn transcript(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/transcripts")
        .join(format!("{name}.sse"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A client with no timeouts and retries without jitter: only backoff sleeps use the clock.
pub(crate) fn client(base_url: &str) -> Client {
    Client::builder()
        .api_key("sk-ant-test-key")
        .base_url(base_url)
        .timeouts(Timeouts::none())
        .retry_policy(RetryPolicy::default().jitter(0.0))
        .build()
        .unwrap()
}

pub(crate) async fn drain<S>(stream: S) -> Vec<Result<StreamEvent, Error>>
where
    S: futures::Stream<Item = Result<StreamEvent, Error>>,
{
    stream.collect().await
}

pub(crate) fn text_of(events: &[Result<StreamEvent, Error>]) -> String {
    events
        .iter()
        .filter_map(|e| e.as_ref().ok().and_then(StreamEvent::text))
        .collect()
}

pub(crate) fn sse_response(body: impl Into<String>) -> wiremock::ResponseTemplate {
    wiremock::ResponseTemplate::new(200)
        .insert_header("content-type", "text/event-stream")
        .insert_header("request-id", "req_stream_1")
        .set_body_string(body.into())
}
