//! The retry matrix, against wiremock with the clock paused: backoff sleeps take no real
//! time, and the virtual time elapsed shows which delay was used.

use std::time::Duration;

use appforge_llm::{ApiErrorKind, Error, MessageRequest, ScriptedProvider, StopReason};
use tokio::time::Instant;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{client, drain, sse_response, text_of, transcript};

fn request() -> MessageRequest {
    MessageRequest::new("claude-sonnet-4-5", 64).user("hi")
}

fn error_json(kind: &str) -> serde_json::Value {
    serde_json::json!({"type": "error", "error": {"type": kind, "message": format!("{kind} happened")}})
}

async fn server_failing_once(failure: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(failure)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(sse_response(transcript("text")))
        .mount(&server)
        .await;
    server
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test(start_paused = true)]
async fn each_retryable_status_is_retried_after_the_backoff() {
    for status in [408, 409, 429, 500, 502, 503, 504, 529] {
        let server = server_failing_once(
            ResponseTemplate::new(status).set_body_json(error_json("api_error")),
        )
        .await;
        let started = Instant::now();
        let stream = client(&server.uri())
            .create_stream(&request())
            .await
            .unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(500),
            "status {status}"
        );
        assert_eq!(stream.retries(), 1, "status {status}");
        assert_eq!(
            text_of(&drain(stream).await),
            "Hello, w\u{f6}rld \u{1f600}\n"
        );
        assert_eq!(requests(&server).await, 2, "status {status}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_400_is_not_retried_and_carries_the_request_id_and_rate_limits() {
    let server = server_failing_once(
        ResponseTemplate::new(400)
            .insert_header("request-id", "req_bad")
            .insert_header("anthropic-ratelimit-requests-remaining", "41")
            .set_body_json(error_json("invalid_request_error")),
    )
    .await;
    let err = client(&server.uri())
        .create_stream(&request())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.request_id(), Some("req_bad"));
    assert_eq!(err.rate_limits().unwrap().requests.remaining, Some(41));
    assert_eq!(err.api_error_kind(), Some(&ApiErrorKind::InvalidRequest));
    assert!(!err.is_retryable());
    assert_eq!(
        err.to_string(),
        "provider error (status 400): invalid_request_error: invalid_request_error happened (request req_bad)"
    );
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test(start_paused = true)]
async fn retry_after_ms_and_retry_after_replace_the_backoff() {
    for (header, value, at_least) in [
        ("retry-after-ms", "3000", Duration::from_secs(3)),
        ("retry-after", "2", Duration::from_secs(2)),
    ] {
        let server = server_failing_once(
            ResponseTemplate::new(429)
                .insert_header(header, value)
                .set_body_json(error_json("rate_limit_error")),
        )
        .await;
        let started = Instant::now();
        let stream = client(&server.uri())
            .create_stream(&request())
            .await
            .unwrap();
        assert!(
            started.elapsed() >= at_least,
            "{header}: {:?}",
            started.elapsed()
        );
        assert_eq!(stream.retries(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn x_should_retry_overrides_the_status_rule() {
    let server = server_failing_once(
        ResponseTemplate::new(529)
            .insert_header("x-should-retry", "false")
            .set_body_json(error_json("overloaded_error")),
    )
    .await;
    let err = client(&server.uri())
        .create_stream(&request())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(529));
    assert_eq!(requests(&server).await, 1);

    let server = server_failing_once(
        ResponseTemplate::new(400)
            .insert_header("x-should-retry", "true")
            .set_body_json(error_json("invalid_request_error")),
    )
    .await;
    let stream = client(&server.uri())
        .create_stream(&request())
        .await
        .unwrap();
    assert_eq!(stream.retries(), 1);
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_the_configured_retries_with_doubling_backoff() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(529).set_body_json(error_json("overloaded_error")))
        .mount(&server)
        .await;
    let started = Instant::now();
    let err = client(&server.uri())
        .create_stream(&request())
        .await
        .unwrap_err();
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.api_error_kind(), Some(&ApiErrorKind::Overloaded));
    assert_eq!(requests(&server).await, 3);
}

#[tokio::test(start_paused = true)]
async fn an_overloaded_error_before_content_is_retried_invisibly() {
    let before_content = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_x\",\"model\":\"m\",\"usage\":{\"input_tokens\":1,\"output_tokens\":0}}}\n\n\
        event: ping\ndata: {\"type\":\"ping\"}\n\n\
        event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let server = server_failing_once(sse_response(before_content)).await;
    let stream = client(&server.uri())
        .create_stream(&request())
        .await
        .unwrap();
    assert_eq!(stream.retries(), 1);
    let events = drain(stream).await;
    assert!(events.iter().all(Result::is_ok));
    assert_eq!(text_of(&events), "Hello, w\u{f6}rld \u{1f600}\n");
    let starts = events
        .iter()
        .filter(|e| matches!(e, Ok(appforge_llm::StreamEvent::MessageStart { .. })))
        .count();
    assert_eq!(
        starts, 1,
        "the failed attempt's message_start must not leak"
    );
}

#[tokio::test(start_paused = true)]
async fn an_overloaded_error_after_content_is_an_error_carrying_what_was_received() {
    let mut after_content = ScriptedProvider::text_transcript(["Hel", "lo"], &StopReason::EndTurn);
    let cut = after_content.find("event: content_block_delta").unwrap();
    let second_delta = cut
        + after_content[cut + 1..]
            .find("event: content_block_delta")
            .unwrap()
        + 1;
    after_content.truncate(second_delta);
    after_content.push_str(
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
    );
    let server = server_failing_once(sse_response(after_content)).await;
    let stream = client(&server.uri())
        .create_stream(&request())
        .await
        .unwrap();
    let events = drain(stream).await;
    assert_eq!(text_of(&events), "Hel");
    let err = events.last().unwrap().as_ref().unwrap_err();
    let Error::Interrupted {
        events: received, ..
    } = err
    else {
        panic!("expected an interruption, got {err:?}");
    };
    assert_eq!(*received, 3);
    assert_eq!(err.api_error_kind(), Some(&ApiErrorKind::Overloaded));
    assert!(!err.is_retryable());
    assert_eq!(requests(&server).await, 1);
}
