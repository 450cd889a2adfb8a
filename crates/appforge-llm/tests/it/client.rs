//! The HTTP client: what it sends, and what every response carries.

use appforge_llm::{Client, MessageRequest, StopReason};
use serde_json::json;
use wiremock::matchers::{body_partial_json, header, headers, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{client, sse_response, transcript};

#[tokio::test]
async fn sends_the_headers_and_the_streaming_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", "sk-ant-test-key"))
        .and(header("anthropic-version", "2026-10-21"))
        .and(headers("anthropic-beta", vec!["a-1", "b-2"]))
        .and(body_partial_json(
            json!({"stream": true, "model": "m", "max_tokens": 9}),
        ))
        .respond_with(sse_response(transcript("text")))
        .expect(1)
        .mount(&server)
        .await;
    let client = Client::builder()
        .api_key("sk-ant-test-key")
        .base_url(format!("{}/", server.uri()))
        .beta("a-1")
        .beta("b-2")
        .build()
        .unwrap();
    let message = client
        .create_stream(&MessageRequest::new("m", 9).user("hi"))
        .await
        .unwrap()
        .final_message()
        .await
        .unwrap();
    assert_eq!(message.stop_reason, Some(StopReason::EndTurn));
    assert_eq!(message.usage.output_tokens, 15);
}

#[tokio::test]
async fn create_returns_the_message_with_its_metadata() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(body_partial_json(json!({"model": "m"})))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("request-id", "req_create")
                .insert_header("anthropic-ratelimit-tokens-remaining", "9000")
                .set_body_json(json!({
                    "id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                    "content": [{"type": "text", "text": "done"}, {"type": "mystery", "x": 1}],
                    "stop_reason": "end_turn", "stop_sequence": null,
                    "usage": {"input_tokens": 3, "output_tokens": 1}
                })),
        )
        .mount(&server)
        .await;
    let request = MessageRequest::new("m", 10).user("hi");
    let response = client(&server.uri()).create(&request).await.unwrap();
    let sent = &server.received_requests().await.unwrap()[0];
    assert!(
        sent.body_json::<serde_json::Value>()
            .unwrap()
            .get("stream")
            .is_none()
    );
    assert_eq!(response.text(), "done");
    assert_eq!(response.content.len(), 2);
    assert_eq!(response.meta.request_id.as_deref(), Some("req_create"));
    assert_eq!(response.meta.rate_limits.tokens.remaining, Some(9000));
}

#[tokio::test]
async fn count_tokens_posts_only_what_counting_needs() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages/count_tokens"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"input_tokens": 42})))
        .mount(&server)
        .await;
    let request = MessageRequest::new("m", 10)
        .system("sys")
        .user("hi")
        .stop_sequence("===END===");
    let count = client(&server.uri()).count_tokens(&request).await.unwrap();
    assert_eq!(count.input_tokens, 42);
    let sent: serde_json::Value = server.received_requests().await.unwrap()[0]
        .body_json()
        .unwrap();
    assert_eq!(
        sent,
        json!({"model": "m", "system": "sys", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]})
    );
}

#[tokio::test]
async fn an_error_body_that_is_not_json_still_gives_a_typed_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_string("<html>nope</html>"))
        .mount(&server)
        .await;
    let err = client(&server.uri())
        .create(&MessageRequest::new("m", 1).user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert_eq!(
        err.api_error_kind(),
        Some(&appforge_llm::ApiErrorKind::Authentication)
    );
    assert!(!err.to_string().contains("sk-ant-test-key"));
}
