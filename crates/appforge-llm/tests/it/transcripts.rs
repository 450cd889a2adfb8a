//! Recorded transcripts: decoded events and accumulated messages, snapshot-tested, and the
//! same events whether replayed, chunked, or served over HTTP to the real client.

use appforge_llm::{
    ContentBlock, MessageRequest, OpenAiProvider, Provider, RetryPolicy, Script, ScriptedProvider,
    ServerToolOutput, StopReason, StreamEvent, TextEditorResult, Timeouts, ToolOutcome, accumulate,
};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::support::{client, drain, sse_response, transcript};

const ANTHROPIC: &[&str] = &[
    "text",
    "tool_use",
    "thinking",
    "adaptive_thinking",
    "server_tool",
    "server_tools_current",
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
        insta::assert_snapshot!(
            format!("transcript_{name}"),
            appforge_testing::sorted_json(&snapshot)
        );
    }
}

#[tokio::test]
async fn adaptive_thinking_accumulates_thinking_then_text_with_thinking_tokens() {
    let events = scripted_events(Script::new(transcript("adaptive_thinking").as_str())).await;
    let stream = futures::stream::iter(events.into_iter().map(Ok));
    let message = accumulate(Box::pin(stream)).await.unwrap();
    assert_eq!(message.model, "claude-sonnet-5-5");
    match &message.content[0] {
        ContentBlock::Thinking {
            thinking,
            signature,
        } => {
            assert_eq!(
                thinking,
                "A streak resets when a day is missed; store completion dates per habit."
            );
            assert_eq!(signature, "EuYBCkQIChgCKkCgadaptiveSignatureBytesA1b2C3");
        }
        other => panic!("expected thinking first, got {other:?}"),
    }
    assert_eq!(message.text(), "===NAME===\nStreaks\n===END===\n");
    assert_eq!(message.usage.output_tokens, 412);
    assert_eq!(message.usage.thinking_tokens(), 388);
    assert_eq!(message.usage.cache_creation_input_tokens, 3000);
    assert_eq!(message.usage.cache_write_1h_tokens(), 2000);
    let counts = message.usage.token_counts();
    assert_eq!((counts.cache_write, counts.cache_write_1h), (3000, 2000));
    // Sent back in a later turn, the thinking block keeps its signature.
    let turn = serde_json::to_value(message.to_message()).unwrap();
    assert_eq!(turn["content"][0]["type"], "thinking");
    assert_eq!(
        turn["content"][0]["signature"],
        "EuYBCkQIChgCKkCgadaptiveSignatureBytesA1b2C3"
    );
}

#[tokio::test]
async fn current_server_tool_results_are_typed_and_new_ones_kept() {
    let events = scripted_events(Script::new(transcript("server_tools_current").as_str())).await;
    let stream = futures::stream::iter(events.into_iter().map(Ok));
    let message = accumulate(Box::pin(stream)).await.unwrap();
    let output = |index: usize| match &message.content[index] {
        ContentBlock::ServerToolResult { output, .. } => output.as_deref().cloned(),
        other => panic!("block {index} is not a server tool result: {other:?}"),
    };
    match output(1) {
        Some(ServerToolOutput::WebFetch(ToolOutcome::Ok(page))) => {
            assert_eq!(page.url, "https://example.com/spec");
            assert_eq!(page.content["source"]["data"], "Habits have names.");
        }
        other => panic!("web fetch: {other:?}"),
    }
    match output(2) {
        Some(ServerToolOutput::CodeExecution(ToolOutcome::Ok(run))) => {
            assert_eq!((run.stdout.as_str(), run.return_code), ("42\n", 0));
            assert_eq!(run.file_ids, ["file_plot"]);
        }
        other => panic!("code execution: {other:?}"),
    }
    match output(3) {
        Some(ServerToolOutput::BashCodeExecution(ToolOutcome::Error { error_code, .. })) => {
            assert_eq!(error_code, "execution_time_exceeded");
        }
        other => panic!("bash: {other:?}"),
    }
    match output(4) {
        Some(ServerToolOutput::TextEditor(ToolOutcome::Ok(TextEditorResult::StrReplace {
            lines,
            new_start,
            ..
        }))) => assert_eq!((lines.len(), new_start), (2, Some(3))),
        other => panic!("text editor: {other:?}"),
    }
    assert_eq!(
        output(5),
        Some(ServerToolOutput::ToolSearch(ToolOutcome::Ok(vec![
            "create_habit".to_owned()
        ])))
    );
    assert_eq!(
        message.content[6],
        ContentBlock::ContainerUpload {
            file_id: "file_upload_1".into()
        }
    );
    // A result type that came later is still a result, with its raw JSON and no typed view.
    match &message.content[7] {
        ContentBlock::ServerToolResult {
            kind, output, raw, ..
        } => {
            assert_eq!(kind, "brand_new_tool_result");
            assert!(output.is_none());
            assert_eq!(raw["content"]["value"], 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        message.stop_reason,
        Some(StopReason::ModelContextWindowExceeded)
    );
    assert_eq!(message.usage.server_tool_use.unwrap().web_fetch_requests, 1);
    // Every block goes back to the API exactly as it came.
    for block in &message.content {
        assert_eq!(ContentBlock::from_value(block.to_value()), *block);
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
        insta::assert_snapshot!(
            format!("transcript_{name}"),
            appforge_testing::sorted_json(&snapshot)
        );
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
