//! Runs the example against a local Messages API that replays a recorded stream.

use std::process::{Command, Output};

use appforge_llm::{ScriptedProvider, StopReason};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn run_example(server: &MockServer, key: &str) -> Output {
    let base_url = server.uri();
    let key = key.to_owned();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_appforge-example-stream-text"))
            .arg("Name a habit tracker")
            .env("ANTHROPIC_BASE_URL", base_url)
            .env("ANTHROPIC_API_KEY", key)
            .output()
            .expect("the example runs")
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn prints_the_streamed_text() {
    let server = MockServer::start().await;
    let transcript = ScriptedProvider::text_transcript(
        ["Streak", "Keeper", ": one tap a day"],
        &StopReason::EndTurn,
    );
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", "sk-ant-test-key"))
        .and(body_partial_json(serde_json::json!({
            "model": appforge_llm::models::DEFAULT_MODEL,
            "stream": true,
        })))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(transcript),
        )
        .expect(1)
        .mount(&server)
        .await;

    let output = run_example(&server, "sk-ant-test-key").await;

    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "StreakKeeper: one tap a day\n"
    );
}

#[tokio::test]
async fn an_api_error_exits_with_a_failure() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "type": "error",
            "error": {"type": "authentication_error", "message": "invalid x-api-key"},
        })))
        .mount(&server)
        .await;

    let output = run_example(&server, "sk-ant-wrong-key").await;

    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        !stderr.contains("sk-ant-wrong-key"),
        "the key leaked: {stderr}"
    );
}
