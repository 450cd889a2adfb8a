//! Error reports sent to a local stand-in for Sentry carry the tags and none of the secrets.

use std::sync::Arc;
use std::time::Duration;

use appforge_analytics::{ReportingConfig, tag_job_id, tag_request_id, tag_user_id};
use sentry::protocol::{Event, Request, Value};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PROMPT: &str = "build a diary app for my therapist notes";
const API_KEY: &str = "sk-ant-api03-0123456789abcdef";
const BEARER: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";

async fn stand_in() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/42/envelope/"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .mount(&server)
        .await;
    server
}

fn config(server: &MockServer) -> ReportingConfig {
    let dsn = format!("http://publickey@{}/42", server.address());
    ReportingConfig::from_lookup("appforge-server@1.2.3", |name| match name {
        "SENTRY_DSN" => Some(dsn.clone()),
        "SENTRY_ENVIRONMENT" => Some("staging".into()),
        _ => None,
    })
}

/// Captures one error with secrets in every place a host might put them, on a hub of its own.
fn capture(options: sentry::ClientOptions, job: Uuid, user: Uuid) {
    let client = Arc::new(sentry::Client::from(sentry::apply_defaults(options)));
    let hub = Arc::new(sentry::Hub::new(Some(Arc::clone(&client)), Arc::default()));
    sentry::Hub::run(hub, || {
        tag_request_id("req-7f3a");
        tag_job_id(job);
        tag_user_id(user);
        sentry::configure_scope(|scope| {
            scope.set_extra("prompt", PROMPT.into());
            scope.set_extra("anthropic_api_key", API_KEY.into());
            scope.set_extra("input_tokens", 1200.into());
            scope.set_tag("stripe_secret", "whsec_abcdefghijkl");
        });
        sentry::add_breadcrumb(sentry::Breadcrumb {
            message: Some(format!("calling provider with Bearer {BEARER}")),
            ..sentry::Breadcrumb::default()
        });
        let mut request = Request {
            method: Some("POST".into()),
            data: Some(format!("{{\"prompt\":\"{PROMPT}\"}}")),
            cookies: Some("session=abcdef".into()),
            ..Request::default()
        };
        request
            .headers
            .insert("Authorization".into(), format!("Bearer {BEARER}"));
        request.headers.insert("x-api-key".into(), API_KEY.into());
        request
            .headers
            .insert("x-request-id".into(), "req-7f3a".into());
        let mut event = Event {
            message: Some(format!("provider failed with key {API_KEY}: overloaded")),
            request: Some(request),
            ..Event::default()
        };
        event
            .extra
            .insert("messages".into(), Value::String(PROMPT.into()));
        sentry::capture_event(event);
    });
    assert!(
        client.flush(Some(Duration::from_secs(10))),
        "the report was sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_carry_tags_and_no_secrets() {
    let server = stand_in().await;
    let options = config(&server)
        .client_options()
        .unwrap()
        .expect("a DSN is set");
    let (job, user) = (Uuid::now_v7(), Uuid::now_v7());
    tokio::task::spawn_blocking(move || capture(options, job, user))
        .await
        .unwrap();

    let requests = server.received_requests().await.expect("recording is on");
    let bodies: Vec<String> = requests
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    let envelope = bodies
        .iter()
        .find(|b| b.contains("\"type\":\"event\""))
        .unwrap_or_else(|| panic!("no event among {bodies:?}"));
    let event: serde_json::Value = envelope
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|v| v.get("tags").is_some())
        .expect("an event payload");

    assert_eq!(event["tags"]["request_id"], "req-7f3a");
    assert_eq!(event["tags"]["job_id"], job.to_string());
    assert_eq!(event["tags"]["user_id"], user.to_string());
    assert_eq!(event["user"]["id"], user.to_string());
    assert_eq!(event["release"], "appforge-server@1.2.3");
    assert_eq!(event["environment"], "staging");
    assert_eq!(event["extra"]["input_tokens"], 1200);
    assert_eq!(event["request"]["headers"]["x-request-id"], "req-7f3a");
    assert!(event["message"].as_str().unwrap().ends_with("overloaded"));

    for body in &bodies {
        for secret in [
            PROMPT,
            "therapist",
            API_KEY,
            BEARER,
            "whsec_abcdefghijkl",
            "session=abcdef",
        ] {
            assert!(
                !body.contains(secret),
                "{secret:?} reached the report: {body}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_dsn_nothing_is_sent() {
    let server = stand_in().await;
    let config = ReportingConfig::from_lookup("appforge-server@1.2.3", |_| None);
    assert!(config.init().unwrap().is_none());
    tokio::task::spawn_blocking(|| {
        // No client is bound: capturing is a no-op.
        let hub = Arc::new(sentry::Hub::new(None, Arc::default()));
        sentry::Hub::run(hub, || {
            sentry::capture_message("nobody hears this", sentry::Level::Error);
        });
    })
    .await
    .unwrap();
    assert!(server.received_requests().await.unwrap().is_empty());
}
