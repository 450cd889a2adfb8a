//! Recorded transcripts: decoded events and accumulated messages, snapshot-tested, and the
//! same events whether replayed, chunked, or served over HTTP to the real client.

use appforge_llm::{
    MessageRequest, OpenAiProvider, Provider, RetryPolicy, Script, ScriptedProvider, StreamEvent,
    Timeouts, accumulate,
};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::support::{client, drain, sse_response, transcript};

const ANTHROPIC: &[&str] = &[
    "text",
    "tool_use",
    "thinking",
    "server_tool",
    "refusal",
    "max_tokens_tool",
    "unknown_fields",
    "unknown_event_and_block",
    "usage_in_message_delta",
];

fn request() -> MessageRequest {
    MessageRequest::new("claude-sonnet-4-5", 1024).user("build me an app")
}

async fn scripted_events(script: Script) -> Vec<StreamEvent> {
    let provider = ScriptedProvider::new().with(script);
    let stream = provider.stream(request()).await.unwrap();
    drain(stream)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

async fn outcome(events: Vec<StreamEvent>) -> Value {
    let stream = futures::stream::iter(events.into_iter().map(Ok));
    match accumulate(Box::pin(stream)).await {
        Ok(message) => json!({"message": message}),
        Err(error) => json!({
            "error": error.to_string(),
            "partial": error.partial_message(),
        }),
    }
}

#[tokio::test]
async fn anthropic_transcripts_decode_and_accumulate() {
    for name in ANTHROPIC {
        let text = transcript(name);
        let events = scripted_events(Script::new(text.as_str())).await;
        for chunk_size in [1, 7, 64] {
            let chunked = scripted_events(Script::new(text.as_str()).chunk_size(chunk_size)).await;
            assert_eq!(chunked, events, "{name} in chunks of {chunk_size}");
        }
        let snapshot = json!({"events": events, "outcome": outcome(events.clone()).await});
        insta::assert_json_snapshot!(format!("transcript_{name}"), snapshot);
    }
}

#[tokio::test]
async fn the_http_client_decodes_the_same_events() {
    let server = MockServer::start().await;
    let client = client(&server.uri());
    for name in ANTHROPIC {
        let text = transcript(name);
        server.reset().await;
        Mock::given(method("POST"))
            .and(path("/v1/messages"))
            .respond_with(sse_response(text.as_str()))
            .mount(&server)
            .await;
        let expected = scripted_events(Script::new(text.as_str())).await;
        let stream = client.create_stream(&request()).await.unwrap();
        assert_eq!(stream.request_id(), Some("req_stream_1"));
        let got: Vec<StreamEvent> = drain(stream)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, expected, "{name}");
    }
}

#[tokio::test]
async fn openai_compatible_streams_map_onto_the_same_events() {
    let server = MockServer::start().await;
    let provider = OpenAiProvider::builder()
        .base_url(format!("{}/v1", server.uri()))
        .timeouts(Timeouts::none())
        .retry_policy(RetryPolicy::never())
        .build()
        .unwrap();
    for name in ["openai_text", "openai_tools"] {
        server.reset().await;
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(sse_response(transcript(name)))
            .mount(&server)
            .await;
        let stream = provider.stream(request()).await.unwrap();
        let events: Vec<StreamEvent> = drain(stream)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let snapshot = json!({"events": events, "outcome": outcome(events.clone()).await});
        insta::assert_json_snapshot!(format!("transcript_{name}"), snapshot);
    }
    let sent: Value = server.received_requests().await.unwrap()[0]
        .body_json()
        .unwrap();
    assert_eq!(sent["stream"], true);
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": "build me an app"}])
    );
}
