//! Usage analytics through the server: the standard events land in the shared database, the
//! admin metrics route reports them, `/metrics` shows today's figures, and error reports reach
//! a local stand-in for Sentry with their tags and without prompts or tokens.

use std::time::Duration;

use appforge_analytics::{AnalyticsEvent, EventStore, EventType};
use appforge_jobs::NewJob;
use axum::body::Body;
use chrono::Utc;
use http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{Db, FULL_APP, Options, TestServer, eventually};

const ADMIN: &str = "operator-token";
const PROMPT: &str = "a diary for my therapist notes";

fn with_admin(options: Options) -> Options {
    let mut env = options.env;
    env.push(("APPFORGE_ADMIN_TOKEN", ADMIN.to_owned()));
    Options { env, ..options }
}

/// Every stored event of `event_type`, after writing what the recorder holds.
async fn stored(server: &TestServer, event_type: EventType) -> Vec<AnalyticsEvent> {
    server
        .analytics_events()
        .await
        .into_iter()
        .filter(|e| e.event_type == event_type)
        .collect()
}

/// Waits until `count` events of `event_type` are stored (a job's end is recorded by the
/// process that wrote it, right after the write the client sees).
async fn stored_count(
    server: &TestServer,
    event_type: EventType,
    count: usize,
) -> Vec<AnalyticsEvent> {
    eventually(&format!("{count} {event_type} events"), || async {
        stored(server, event_type.clone()).await.len() >= count
    })
    .await;
    stored(server, event_type).await
}

async fn admin_get(server: &TestServer, path: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = http::Request::builder().uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = server.send(request.body(Body::empty()).unwrap()).await;
    let status = response.status();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn today() -> String {
    Utc::now().date_naive().to_string()
}

pub(crate) async fn a_generation_is_recorded_and_reported(db: Db) {
    let server = TestServer::start(db, with_admin(Options::default())).await;
    let user = Uuid::new_v4();
    let job = server
        .generate(user, FULL_APP, json!({ "prompt": PROMPT }))
        .await;
    let frames = server.events(user, &job).await.rest().await;
    assert_eq!(frames.last().unwrap().0, "completed", "{frames:?}");
    let (_, _, view) = server
        .call("GET", &format!("/api/jobs/{job}"), Some(user), None)
        .await;
    let (input, output) = (
        view["inputTokens"].as_u64().unwrap(),
        view["outputTokens"].as_u64().unwrap(),
    );

    let requested = stored_count(&server, EventType::GenerationRequested, 1).await;
    assert_eq!(requested.len(), 1);
    let facts = requested[0].generation_facts();
    assert_eq!(facts.job_id.map(|id| id.to_string()), Some(job.clone()));
    assert_eq!(facts.kind.as_deref(), Some("full_app"));
    assert_eq!(facts.plan.as_deref(), Some("free"));
    let completed = stored_count(&server, EventType::GenerationCompleted, 1).await;
    assert_eq!(completed.len(), 1);
    let facts = completed[0].generation_facts();
    assert_eq!(completed[0].user_id, user);
    assert_eq!(facts.input_tokens, Some(input));
    assert_eq!(facts.output_tokens, Some(output));
    assert_eq!(facts.model.as_deref(), Some("offline-demo"));
    assert!(facts.duration_ms.is_some());
    let all = format!(
        "{:?}",
        stored(&server, EventType::GenerationCompleted).await
    );
    assert!(!all.contains("therapist"), "no prompt in events: {all}");

    let day = today();
    let (status, report) = admin_get(
        &server,
        &format!("/api/admin/metrics?from={day}&to={day}"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let totals = &report["generations"]["totals"];
    assert_eq!(totals["requested"], 1, "{report}");
    assert_eq!(totals["completed"], 1, "{report}");
    assert_eq!(totals["failed"], 0, "{report}");
    assert_eq!(report["generations"]["byKind"]["full_app"]["completed"], 1);
    assert_eq!(report["usage"]["tokens"]["input"], input);
    assert_eq!(report["usage"]["tokens"]["output"], output);
    // The offline demo is free on purpose, not an unpriced model.
    assert_eq!(report["usage"]["costMicroUsd"], 0);
    assert_eq!(
        report["usage"]["freeModels"],
        serde_json::json!(["offline-demo"])
    );
    assert_eq!(report["usage"]["unpricedModels"], serde_json::json!([]));
    assert_eq!(report["active"]["distinctUsers"], 1);
    assert_eq!(report["active"]["days"][0]["dau"], 1);
    assert_eq!(report["failures"]["failureRate"], 0.0);
    assert_eq!(report["durations"]["count"], 1);
    assert_eq!(report["from"], day);
    server.stop().await;
}

pub(crate) async fn a_quota_denial_is_recorded(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let user = Uuid::new_v4();
    let (status, _, _) = server.use_up_free_plan(user).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let denied = stored(&server, EventType::QuotaDenied).await;
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].user_id, user);
    assert_eq!(denied[0].properties["kind"], "full_app");
    assert_eq!(denied[0].properties["denied_by"], "daily");
    assert_eq!(
        stored(&server, EventType::GenerationRequested).await.len(),
        5
    );
    server.stop().await;
}

pub(crate) async fn failed_and_cancelled_jobs_are_recorded(db: Db) {
    let mut server = TestServer::start(db, Options::api_only()).await;
    let user = Uuid::new_v4();
    // Cancelled while pending: no worker runs yet.
    let job = server
        .generate(user, FULL_APP, json!({ "prompt": "an app" }))
        .await;
    let (status, _, _) = server
        .call("DELETE", &format!("/api/jobs/{job}"), Some(user), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let cancelled = stored(&server, EventType::GenerationCancelled).await;
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].user_id, user);
    assert_eq!(
        cancelled[0]
            .generation_facts()
            .job_id
            .map(|id| id.to_string()),
        Some(job)
    );

    // A payload the handler cannot read fails for good.
    let failing = NewJob::new(
        "full_app",
        user,
        json!({ "prompt": PROMPT, "request": PROMPT }),
    );
    let failed = server.state.queue().enqueue(failing).await.unwrap();
    server.workers = Some(appforge_server::work::start(&server.state, 1).unwrap());
    let failed_events = stored_count(&server, EventType::GenerationFailed, 1).await;
    assert_eq!(failed_events.len(), 1);
    let facts = failed_events[0].generation_facts();
    assert_eq!(facts.job_id, Some(failed.id.into()));
    assert_eq!(facts.kind.as_deref(), Some("full_app"));
    assert_eq!(facts.error_category.as_deref(), Some("invalid_input"));
    let text = serde_json::to_string(&failed_events[0]).unwrap();
    assert!(
        !text.contains("therapist"),
        "the error text is not recorded: {text}"
    );
    server.stop().await;
}

pub(crate) async fn sign_in_is_seen_once_per_user_per_day(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
    for user in [ada, bob, ada, ada, bob] {
        let (status, _, _) = server.call("GET", "/api/quota", Some(user), None).await;
        assert_eq!(status, StatusCode::OK);
    }
    // An unauthenticated request is nobody's sign-in.
    server.call("GET", "/api/quota", None, None).await;
    let seen = stored(&server, EventType::SignInSeen).await;
    let mut users: Vec<Uuid> = seen.iter().map(|e| e.user_id).collect();
    users.sort();
    let mut expected = vec![ada, bob];
    expected.sort();
    assert_eq!(users, expected);
    server.stop().await;
}

pub(crate) async fn the_metrics_route_needs_the_token_and_a_sane_range(db: Db) {
    let server = TestServer::start(db, with_admin(Options::api_only())).await;
    let user = Uuid::new_v4();
    let (status, _) = admin_get(
        &server,
        "/api/admin/metrics",
        Some(server.token(user).as_str()),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a user token is not the admin token"
    );
    let (status, _) = admin_get(&server, "/api/admin/metrics", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = admin_get(&server, "/api/admin/metrics", Some("wrong-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for (query, says) in [
        ("from=2026-03-02&to=2026-03-01", "is after"),
        ("from=yesterday", "YYYY-MM-DD"),
        ("from=2024-01-01&to=2026-01-01", "at most 366"),
        ("window=3", "invalid query"),
    ] {
        let (status, body) =
            admin_get(&server, &format!("/api/admin/metrics?{query}"), Some(ADMIN)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(says),
            "{query}: {body}"
        );
    }
    let (status, report) = admin_get(&server, "/api/admin/metrics", Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report["active"]["days"].as_array().unwrap().len(),
        7,
        "the last 7 days"
    );
    assert_eq!(report["generations"]["totals"]["requested"], 0);
    server.stop().await;
}

pub(crate) async fn prometheus_shows_todays_figures(db: Db) {
    let server = TestServer::start(db, Options::default()).await;
    let user = Uuid::new_v4();
    let job = server
        .generate(user, FULL_APP, json!({ "prompt": "an app" }))
        .await;
    server.events(user, &job).await.rest().await;
    stored_count(&server, EventType::GenerationCompleted, 1).await;
    let text = crate::support::metrics_text(&server).await;
    for line in [
        "appforge_active_users_today 1",
        "appforge_generations_today{outcome=\"requested\"} 1",
        "appforge_generations_today{outcome=\"completed\"} 1",
        "appforge_generations_today{outcome=\"failed\"} 0",
        "appforge_generation_failure_rate_today 0.0",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    let written = text
        .lines()
        .find_map(|l| l.strip_prefix("appforge_analytics_events_total{outcome=\"written\"} "))
        .unwrap_or_else(|| panic!("a written counter in {text}"));
    assert!(written.parse::<u64>().unwrap() >= 3, "{written}");
    assert!(text.contains("appforge_analytics_events_total{outcome=\"dropped\"} 0"));
    server.stop().await;
}

/// The event payloads the stand-in received.
async fn sentry_events(stand_in: &MockServer) -> Vec<(String, Value)> {
    let requests = stand_in.received_requests().await.expect("recording is on");
    let mut events = Vec::new();
    for request in requests {
        let body = String::from_utf8_lossy(&request.body).into_owned();
        if !body.contains("\"type\":\"event\"") {
            continue;
        }
        if let Some(event) = body
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|v| v.get("tags").is_some())
        {
            events.push((body, event));
        }
    }
    events
}

pub(crate) async fn errors_reach_sentry_with_tags_and_no_secrets(db: Db) {
    let stand_in = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/42/envelope/"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .mount(&stand_in)
        .await;
    let mut options = Options::default();
    options.env.push((
        "SENTRY_DSN",
        format!("http://publickey@{}/42", stand_in.address()),
    ));
    options.env.push(("SENTRY_ENVIRONMENT", "test".to_owned()));
    let server = TestServer::start(db, options).await;
    assert!(server.state.reporting().is_enabled());
    let user = Uuid::new_v4();

    // A job that fails for good.
    let failing = NewJob::new(
        "full_app",
        user,
        json!({ "prompt": PROMPT, "request": PROMPT }),
    );
    let failed = server.state.queue().enqueue(failing).await.unwrap();
    stored_count(&server, EventType::GenerationFailed, 1).await;

    // A handler error answered 500: the database is gone.
    server.state.db().close().await;
    let token = server.token(user);
    let request = http::Request::builder()
        .method("POST")
        .uri(FULL_APP)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("x-request-id", "req-sentry-7f3a")
        .body(Body::from(json!({ "prompt": PROMPT }).to_string()))
        .unwrap();
    let response = server.send(request).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);

    let reporting = server.state.reporting().clone();
    let sent = tokio::task::spawn_blocking(move || reporting.flush(Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(sent, "the reports were sent");
    let events = sentry_events(&stand_in).await;
    let job_report = events
        .iter()
        .find(|(_, e)| e["tags"]["job_id"] == failed.id.to_string())
        .unwrap_or_else(|| panic!("a job failure report among {events:?}"));
    assert_eq!(job_report.1["tags"]["user_id"], user.to_string());
    assert_eq!(job_report.1["tags"]["error_category"], "invalid_input");
    assert_eq!(job_report.1["release"], appforge_server::RELEASE);
    assert_eq!(job_report.1["environment"], "test");
    let request_report = events
        .iter()
        .find(|(_, e)| e["tags"]["request_id"] == "req-sentry-7f3a")
        .unwrap_or_else(|| panic!("a request error report among {events:?}"));
    assert_eq!(request_report.1["tags"]["user_id"], user.to_string());
    assert_eq!(request_report.1["user"]["id"], user.to_string());
    for (body, _) in &events {
        for secret in [PROMPT, "therapist", token.as_str(), crate::support::SECRET] {
            assert!(
                !body.contains(secret),
                "{secret:?} reached a report: {body}"
            );
        }
    }
    server.stop().await;
}

pub(crate) async fn a_graceful_shutdown_writes_the_buffered_events(db: Db) {
    let url = db.url();
    let env = [
        ("DATABASE_URL", url.clone()),
        ("APPFORGE_JWT_SECRET", crate::support::SECRET.to_owned()),
        ("APPFORGE_WORKERS", "0".to_owned()),
    ];
    let config = appforge_server::Config::from_lookup(|k| {
        env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })
    .unwrap();
    let (state, _) = appforge_server::server::assemble(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(appforge_server::server::serve(
        state.clone(),
        listener,
        async move {
            let _ = stopped.await;
        },
    ));
    let user = Uuid::new_v4();
    let token =
        appforge_server::JwtKeys::new(&appforge_core::SecretString::from(crate::support::SECRET))
            .issue(user, None, Duration::from_secs(60));
    let answer = reqwest::Client::new()
        .get(format!("http://{addr}/api/quota"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();

    // The recorder wrote its buffer before the database closed, and records nothing more.
    assert!(
        state.analytics().flush().await.is_err(),
        "the recorder is shut down"
    );
    let stats = state.analytics().stats();
    assert_eq!((stats.recorded, stats.written), (1, 1), "{stats:?}");
    let store = appforge_analytics::AnyEventStore::connect(&url)
        .await
        .unwrap();
    let now = Utc::now();
    let events = store
        .events_between(
            now - chrono::TimeDelta::days(1),
            now + chrono::TimeDelta::days(1),
        )
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].user_id, &events[0].event_type),
        (user, &EventType::SignInSeen)
    );
}
