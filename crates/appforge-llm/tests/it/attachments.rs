//! Reference images through the pipelines: image blocks before the text, base64 for the
//! Messages API and data URLs for OpenAI-compatible providers; the offline demo ignores them.

use appforge_llm::demo::offline_provider;
use appforge_llm::{
    Attachment, ChatRequest, FullAppRequest, OpenAiProvider, Pipelines, PlanRequest, RetryPolicy,
    ScriptedProvider, StopReason, Timeouts,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::support::{client, sse_response, transcript};

/// Not a real PNG: the pipelines pass bytes through untouched.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n-reference-pixels-";
const PNG_BASE64: &str = "iVBORw0KGgotcmVmZXJlbmNlLXBpeGVscy0=";
const JPEG: &[u8] = b"\xff\xd8\xff\xe0-mockup-";

fn screenshot() -> Attachment {
    Attachment::new("image/png", PNG.to_vec(), 1280, 800)
}

fn mockup() -> Attachment {
    Attachment::new("image/jpeg", JPEG.to_vec(), 750, 1000)
}

async fn last_user_content(server: &MockServer) -> Value {
    let requests = server.received_requests().await.unwrap();
    let body: Value = requests.last().unwrap().body_json().unwrap();
    let messages = body["messages"].as_array().unwrap();
    let user = messages.iter().rev().find(|m| m["role"] == "user").unwrap();
    user["content"].clone()
}

#[tokio::test]
async fn the_messages_api_gets_base64_image_blocks_before_the_text() {
    let server = MockServer::start().await;
    let body = ScriptedProvider::text_transcript(["A calm landing page."], &StopReason::EndTurn);
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(sse_response(body))
        .mount(&server)
        .await;
    let request = ChatRequest {
        message: "Build this page".into(),
        attachments: vec![screenshot(), mockup()],
        ..ChatRequest::default()
    };
    Pipelines::new(client(&server.uri()))
        .chat(&request, |_| {}, &CancellationToken::new())
        .await
        .unwrap();

    let content = last_user_content(&server).await;
    let blocks = content.as_array().unwrap();
    assert_eq!(blocks.len(), 3, "{content:#}");
    assert_eq!(
        blocks[0],
        json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_BASE64}})
    );
    assert_eq!(blocks[1]["type"], "image");
    assert_eq!(blocks[1]["source"]["media_type"], "image/jpeg");
    assert_eq!(blocks[1]["source"]["data"], "/9j/4C1tb2NrdXAt");
    assert_eq!(blocks[2]["type"], "text");
    let text = blocks[2]["text"].as_str().unwrap();
    assert!(text.contains("The 2 images above are references"), "{text}");
    assert!(text.contains("Match them"), "{text}");
    assert!(text.ends_with("Build this page"), "{text}");
}

#[tokio::test]
async fn a_plan_without_images_sends_plain_text() {
    let server = MockServer::start().await;
    let body = ScriptedProvider::text_transcript(
        [r#"{"phases": [{"number": 1, "name": "One", "description": "d", "features": ["f"]}]}"#],
        &StopReason::EndTurn,
    );
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(sse_response(body))
        .mount(&server)
        .await;
    let request = PlanRequest {
        prompt: "A habit tracker".into(),
        ..PlanRequest::default()
    };
    Pipelines::new(client(&server.uri()))
        .structured_outputs(true)
        .plan_phases(&request, |_| {}, &CancellationToken::new())
        .await
        .unwrap();
    let content = last_user_content(&server).await;
    let text = content
        .as_str()
        .map(str::to_owned)
        .or_else(|| content[0]["text"].as_str().map(str::to_owned))
        .unwrap();
    assert!(!text.contains("reference_images"), "{text}");
    assert!(
        content
            .as_array()
            .is_none_or(|b| b.iter().all(|b| b["type"] == "text")),
        "{content:#}"
    );
}

#[tokio::test]
async fn openai_compatible_providers_get_data_url_parts_before_the_text() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(sse_response(transcript("openai_text")))
        .mount(&server)
        .await;
    let provider = OpenAiProvider::builder()
        .base_url(format!("{}/v1", server.uri()))
        .timeouts(Timeouts::none())
        .retry_policy(RetryPolicy::never())
        .build()
        .unwrap();
    let request = ChatRequest {
        message: "Make it look like this".into(),
        attachments: vec![screenshot()],
        ..ChatRequest::default()
    };
    Pipelines::new(provider)
        .model("gpt-4.1")
        .chat(&request, |_| {}, &CancellationToken::new())
        .await
        .unwrap();

    let content = last_user_content(&server).await;
    let parts = content.as_array().unwrap();
    assert_eq!(parts.len(), 2, "{content:#}");
    assert_eq!(
        parts[0],
        json!({"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG_BASE64}")}})
    );
    assert_eq!(parts[1]["type"], "text");
    let text = parts[1]["text"].as_str().unwrap();
    assert!(text.contains("The image above is a reference"), "{text}");
}

#[tokio::test]
async fn the_offline_demo_ignores_images() {
    let pipelines = Pipelines::new(offline_provider());
    let cancel = CancellationToken::new();
    let plain = FullAppRequest::new("A habit tracker with streaks");
    let with_image = FullAppRequest {
        attachments: vec![screenshot()],
        ..plain.clone()
    };
    let a = pipelines.full_app(&plain, |_| {}, &cancel).await.unwrap();
    let b = pipelines
        .full_app(&with_image, |_| {}, &cancel)
        .await
        .unwrap();
    assert_eq!(a.files, b.files);
    assert_eq!(a.name, b.name);
}

#[test]
fn images_count_in_the_token_estimate() {
    assert_eq!(screenshot().estimated_tokens(), 1280 * 800 / 750);
    assert_eq!(mockup().estimated_tokens(), 1000);
    let settings = appforge_llm::PromptSettings::default();
    let plain = appforge_llm::RenderedPrompt::full_app(&FullAppRequest::new("x"), &settings);
    let with = appforge_llm::RenderedPrompt::full_app(
        &FullAppRequest {
            attachments: vec![mockup()],
            ..FullAppRequest::new("x")
        },
        &settings,
    );
    let line = with.estimated_input_tokens() - plain.estimated_input_tokens();
    assert!(
        (1000..1100).contains(&line),
        "{line}: the image and its prompt line"
    );
}

#[test]
fn attachments_serialize_their_bytes_as_base64_and_debug_hides_them() {
    let json = serde_json::to_value(screenshot()).unwrap();
    assert_eq!(json["data"], PNG_BASE64);
    let back: Attachment = serde_json::from_value(json).unwrap();
    assert_eq!(back, screenshot());
    let shown = format!("{:?}", screenshot());
    assert!(
        shown.contains("bytes: 26") && !shown.contains("reference"),
        "{shown}"
    );
}
