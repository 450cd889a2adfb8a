//! The current Messages API through the pipelines: structured outputs for `modify` and
//! `plan_phases`, effort, limits from the model table, and local refusals before any call.

use appforge_llm::{
    AppFile, Effort, Error, ModifyRequest, Pipelines, PlanRequest, ScriptedProvider, StopReason,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::support::{client, sse_response};

const CHANGE_SET: &str = r#"{"summary": "Sticky header", "changes": [{"action": "update", "path": "src/App.tsx", "edits": [{"op": "replace", "find": "<header>", "with": "<header className=\"sticky\">"}]}]}"#;

const PLAN: &str = r#"{"phases": [{"number": 1, "name": "Track", "description": "Log habits", "features": ["add a habit"]}, {"number": 2, "name": "Streaks", "description": "See streaks", "features": ["streak counter"]}]}"#;

async fn api_answering(text: &str) -> MockServer {
    let server = MockServer::start().await;
    let body = ScriptedProvider::text_transcript([text], &StopReason::EndTurn);
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(sse_response(body))
        .mount(&server)
        .await;
    server
}

async fn sent_bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.body_json().unwrap())
        .collect()
}

fn plan_request() -> PlanRequest {
    PlanRequest {
        prompt: "A habit tracker".into(),
        history: Vec::new(),
        attachments: Vec::new(),
    }
}

fn app() -> Vec<AppFile> {
    vec![AppFile::new("src/App.tsx", "<header>Habits</header>\n")]
}

#[tokio::test]
async fn modify_asks_for_the_change_set_schema_and_applies_the_reply_without_repair() {
    let server = api_answering(CHANGE_SET).await;
    let pipelines = Pipelines::new(client(&server.uri()))
        .model("claude-sonnet-5-5")
        .effort(Effort::High);
    assert!(pipelines.structured_outputs_in_effect());
    let modification = pipelines
        .modify(
            &ModifyRequest {
                request: "Make the header sticky".into(),
                history: Vec::new(),
                app: app(),
                attachments: Vec::new(),
            },
            |_| {},
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let applied = modification.change_set.apply(&app()).unwrap();
    assert_eq!(
        applied[0].content,
        "<header className=\"sticky\">Habits</header>\n"
    );

    let bodies = sent_bodies(&server).await;
    assert_eq!(bodies.len(), 1, "one call: no repair round");
    let body = &bodies[0];
    assert_eq!(body["model"], "claude-sonnet-5-5");
    assert_eq!(body["max_tokens"], 128_000, "the model's maximum output");
    assert_eq!(body["output_config"]["effort"], "high");
    let format = &body["output_config"]["format"];
    assert_eq!(format["type"], "json_schema");
    let schema = &format["schema"];
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["required"], json!(["changes"]));
    let change = &schema["properties"]["changes"]["items"];
    let actions: Vec<&Value> = change["anyOf"]
        .as_array()
        .expect("the tagged enum is an anyOf")
        .iter()
        .map(|variant| &variant["properties"]["action"]["const"])
        .collect();
    assert_eq!(
        actions,
        [&json!("create"), &json!("delete"), &json!("update")]
    );
    for key in ["temperature", "top_p", "top_k", "thinking"] {
        assert!(body.get(key).is_none(), "{key} is not sent");
    }
}

#[tokio::test]
async fn plan_phases_asks_for_the_plan_schema_with_a_json_prompt() {
    let server = api_answering(PLAN).await;
    let planned = Pipelines::new(client(&server.uri()))
        .plan_phases(&plan_request(), |_| {}, &CancellationToken::new())
        .await
        .unwrap();
    let names: Vec<&str> = planned
        .plan
        .phases
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["Track", "Streaks"]);

    let body = &sent_bodies(&server).await[0];
    assert_eq!(body["model"], Pipelines::DEFAULT_MODEL);
    let schema = &body["output_config"]["format"]["schema"];
    assert_eq!(schema["required"], json!(["phases"]));
    assert_eq!(
        schema["properties"]["phases"]["items"]["additionalProperties"],
        false
    );
    assert!(
        body["output_config"].get("effort").is_none(),
        "the model's default effort unless one is set"
    );
    let system = body["system"][0]["text"].as_str().unwrap();
    assert!(system.contains("Answer with one JSON object"), "{system}");
    assert!(!system.contains("===PHASE:1==="), "{system}");
}

#[tokio::test]
async fn models_and_providers_without_structured_outputs_keep_the_text_path() {
    // A model the table does not know: no schema, the section prompt, the fixed max_tokens.
    let server = api_answering("===PHASE:1===\nName: Track\n===END===\n").await;
    let planned = Pipelines::new(client(&server.uri()))
        .model("proxy-model")
        .plan_phases(&plan_request(), |_| {}, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(planned.plan.phases[0].name, "Track");
    let body = &sent_bodies(&server).await[0];
    assert!(body.get("output_config").is_none());
    assert_eq!(body["max_tokens"], Pipelines::FALLBACK_MAX_TOKENS);
    assert!(
        body["system"][0]["text"]
            .as_str()
            .unwrap()
            .contains("===PHASE:1===")
    );

    // The scripted provider does not honour schemas, whatever the model.
    let scripted = Pipelines::new(ScriptedProvider::new()).model("claude-sonnet-5-5");
    assert!(!scripted.structured_outputs_in_effect());
}

#[tokio::test]
async fn a_request_the_model_would_refuse_never_reaches_the_network() {
    let server = MockServer::start().await;
    // Haiku 4.5 has no effort parameter.
    let error = Pipelines::new(client(&server.uri()))
        .model("claude-haiku-4-5")
        .effort(Effort::Low)
        .plan_phases(&plan_request(), |_| {}, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::InvalidRequest { model, .. } if model == "claude-haiku-4-5"),
        "{error}"
    );
    assert!(error.to_string().contains("no effort setting"), "{error}");
    assert!(!error.is_retryable());
    assert!(server.received_requests().await.unwrap().is_empty());
}
