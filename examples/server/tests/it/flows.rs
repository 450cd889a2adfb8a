//! The scenarios every backend runs.

use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Db, FULL_APP, Options, TestServer, eventually};

async fn daily_used(server: &TestServer, user: Uuid) -> u64 {
    let (_, _, quota) = server.call("GET", "/api/quota", Some(user), None).await;
    quota["daily"]["used"].as_u64().unwrap()
}

pub(crate) async fn generate_streams_events_and_completes(db: Db) {
    let server = TestServer::start(db, Options::default()).await;
    let user = Uuid::new_v4();
    let job = server
        .generate(
            user,
            FULL_APP,
            json!({ "prompt": "a habit tracker with streaks" }),
        )
        .await;
    let mut events = server.events(user, &job).await;
    let frames = events.rest().await;
    let (first, state) = &frames[0];
    assert_eq!(first, "state");
    assert_eq!(state["id"], json!(job));
    let terminal: Vec<&(String, Value)> = frames
        .iter()
        .filter(|(n, _)| ["completed", "failed", "cancelled"].contains(&n.as_str()))
        .collect();
    assert_eq!(terminal.len(), 1, "exactly one terminal event: {frames:?}");
    assert_eq!(terminal[0].0, "completed");
    assert_eq!(frames.last().unwrap().0, "completed");

    let (status, _, view) = server
        .call("GET", &format!("/api/jobs/{job}"), Some(user), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["status"], "completed");
    assert_eq!(view["prompt"], "a habit tracker with streaks");
    assert_eq!(view["result"]["provider"], "offline-demo");
    assert!(
        view["result"]["files"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
    );
    let output = view["outputTokens"].as_i64().unwrap();
    assert!(output > 0);
    let input = view["inputTokens"].as_i64().unwrap();
    // Money follows the job: the reservation is committed with the tokens used.
    let expected = u64::try_from(input + output).unwrap();
    eventually(
        "the reservation is committed with the job's tokens",
        || async {
            let (_, _, quota) = server.call("GET", "/api/quota", Some(user), None).await;
            quota["tokens"]["used"].as_u64() == Some(expected)
        },
    )
    .await;
    assert_eq!(daily_used(&server, user).await, 1);
    let metrics = crate::support::metrics_text(&server).await;
    assert!(
        metrics.contains("appforge_jobs_finished_recently{outcome=\"completed\"} 1"),
        "{metrics}"
    );
    server.stop().await;
}

pub(crate) async fn modify_and_plan_phases_complete(db: Db) {
    let server = TestServer::start(db, Options::default()).await;
    let user = Uuid::new_v4();
    // Modify the app a generation made, as the builder does (the demo change set adds dark
    // mode to the demo todo app).
    let first = server
        .generate(
            user,
            FULL_APP,
            json!({ "prompt": "a todo list with filters" }),
        )
        .await;
    server.events(user, &first).await.rest().await;
    let (_, _, generated) = server
        .call("GET", &format!("/api/jobs/{first}"), Some(user), None)
        .await;
    let app = json!({ "files": generated["result"]["files"] });
    let modify = server
        .generate(
            user,
            "/api/ai-builder/modify",
            json!({ "prompt": "add a dark mode toggle", "currentAppState": app }),
        )
        .await;
    let plan = server
        .generate(
            user,
            "/api/ai-builder/plan-phases",
            json!({ "prompt": "a recipe manager" }),
        )
        .await;
    for job in [&modify, &plan] {
        let frames = server.events(user, job).await.rest().await;
        assert_eq!(frames.last().unwrap().0, "completed", "{frames:?}");
    }
    let (_, _, view) = server
        .call("GET", &format!("/api/jobs/{modify}"), Some(user), None)
        .await;
    assert_eq!(view["kind"], "modify");
    assert!(view["result"]["changeSet"].is_object(), "{view}");
    assert_eq!(view["result"]["provider"], "offline-demo");
    let (_, _, view) = server
        .call("GET", &format!("/api/jobs/{plan}"), Some(user), None)
        .await;
    assert_eq!(view["status"], "completed", "{view}");
    assert!(view["result"]["plan"].is_object(), "{view}");
    assert_eq!(view["result"]["provider"], "offline-demo");
    server.stop().await;
}

pub(crate) async fn sixth_free_generation_is_refused(db: Db) {
    // No workers: the jobs stay pending, their reservations held.
    let server = TestServer::start(db, Options::api_only()).await;
    let user = Uuid::new_v4();
    let (status, headers, body) = server.use_up_free_plan(user).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0);
    assert_eq!(body["error"], "quota_exceeded");
    assert_eq!(body["details"]["deniedBy"], "daily");
    assert_eq!(body["details"]["daily"]["remaining"], 0);
    let (_, _, list) = server.call("GET", "/api/jobs", Some(user), None).await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        5,
        "the refused one was not enqueued"
    );
    server.stop().await;
}

pub(crate) async fn cancel_pending_refunds(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let user = Uuid::new_v4();
    let job = server
        .generate(user, FULL_APP, json!({ "prompt": "an app" }))
        .await;
    assert_eq!(daily_used(&server, user).await, 1);
    let (status, _, view) = server
        .call("DELETE", &format!("/api/jobs/{job}"), Some(user), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["status"], "cancelled");
    // Idempotent.
    let (status, _, view) = server
        .call("DELETE", &format!("/api/jobs/{job}"), Some(user), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["status"], "cancelled");
    eventually("the cancelled job's reservation is refunded", || async {
        daily_used(&server, user).await == 0
    })
    .await;
    let frames = server.events(user, &job).await.rest().await;
    assert_eq!(frames.first().unwrap().0, "state");
    assert_eq!(frames.last().unwrap().0, "cancelled");
    server.stop().await;
}

pub(crate) async fn cancel_running_job(db: Db) {
    let server = TestServer::start(
        db,
        Options {
            pace: Some(Duration::from_millis(20)),
            ..Options::default()
        },
    )
    .await;
    let user = Uuid::new_v4();
    let job = server
        .generate(user, FULL_APP, json!({ "prompt": "an app" }))
        .await;
    let mut events = server.events(user, &job).await;
    // Wait until it runs: its first progress report.
    loop {
        let (name, _) = events.next().await.expect("progress before the end");
        if name == "progress" {
            break;
        }
        assert_ne!(
            name, "completed",
            "the job finished before it could be cancelled"
        );
    }
    let (status, _, _) = server
        .call("DELETE", &format!("/api/jobs/{job}"), Some(user), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let rest = events.rest().await;
    assert_eq!(rest.last().unwrap().0, "cancelled", "{rest:?}");
    let (_, _, view) = server
        .call("GET", &format!("/api/jobs/{job}"), Some(user), None)
        .await;
    assert_eq!(view["status"], "cancelled");
    // It ran and spent tokens: the generation counts, with what it spent.
    let spent = view["inputTokens"].as_u64().unwrap() + view["outputTokens"].as_u64().unwrap();
    assert!(spent > 0, "{view}");
    eventually("the cancelled job is charged what it spent", || async {
        let (_, _, quota) = server.call("GET", "/api/quota", Some(user), None).await;
        quota["daily"]["used"] == 1 && quota["tokens"]["used"] == spent
    })
    .await;
    server.stop().await;
}

pub(crate) async fn another_users_job_is_not_found(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let owner = Uuid::new_v4();
    let other = Uuid::new_v4();
    let job = server
        .generate(owner, FULL_APP, json!({ "prompt": "mine" }))
        .await;
    for (method, path) in [
        ("GET", format!("/api/jobs/{job}")),
        ("DELETE", format!("/api/jobs/{job}")),
        ("GET", format!("/api/jobs/{job}/events")),
    ] {
        let (status, _, body) = server.call(method, &path, Some(other), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(body["error"], "not_found");
    }
    let (_, _, view) = server
        .call("GET", &format!("/api/jobs/{job}"), Some(owner), None)
        .await;
    assert_eq!(
        view["status"], "pending",
        "the other user's cancel changed nothing"
    );
    let (status, _, _) = server.call("GET", "/api/jobs", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

pub(crate) async fn bad_bodies_are_field_level_400s(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let user = Uuid::new_v4();
    let (status, _, body) = server
        .call("POST", FULL_APP, Some(user), Some(json!({ "prompt": 42 })))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["details"]["field"], "prompt");
    assert!(body["requestId"].is_string());
    let (status, _, body) = server
        .call(
            "POST",
            "/api/ai-builder/modify",
            Some(user),
            Some(json!({ "prompt": "x" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("currentAppState"),
        "{body}"
    );
    let (status, _, body) = server
        .call(
            "POST",
            FULL_APP,
            Some(user),
            Some(json!({ "prompt": "x".repeat(5000) })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["details"]["field"], "prompt");
    // Not JSON at all.
    let request = http::Request::builder()
        .method("POST")
        .uri(FULL_APP)
        .header("authorization", format!("Bearer {}", server.token(user)))
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{not json"))
        .unwrap();
    assert_eq!(server.send(request).await.status(), StatusCode::BAD_REQUEST);
    // Larger than the body limit.
    let big = json!({ "prompt": "x", "conversationHistory": [{ "role": "user", "content": "y".repeat(70_000) }] });
    let (status, _, body) = server.call("POST", FULL_APP, Some(user), Some(big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    // Nothing was reserved or enqueued by any of them.
    assert_eq!(daily_used(&server, user).await, 0);
    server.stop().await;
}

pub(crate) async fn chat_streams_deltas_then_done(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let user = Uuid::new_v4();
    let request = http::Request::builder()
        .method("POST")
        .uri("/api/chat")
        .header("authorization", format!("Bearer {}", server.token(user)))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            json!({ "prompt": "how should I structure it?", "mode": "plan" }).to_string(),
        ))
        .unwrap();
    let response = server.send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut reader = crate::support::SseReader::from_response(response);
    let frames = reader.rest().await;
    let deltas: Vec<&Value> = frames
        .iter()
        .filter(|(n, _)| n == "delta")
        .map(|(_, v)| v)
        .collect();
    assert!(deltas.len() > 1, "{frames:?}");
    let (last, done) = frames.last().unwrap();
    assert_eq!(last, "done");
    assert!(
        done["usage"]["outputTokens"].as_u64().unwrap() > 0,
        "{done}"
    );
    server.stop().await;
}

pub(crate) async fn finished_job_events_replay_state_then_terminal(db: Db) {
    let server = TestServer::start(db, Options::default()).await;
    let user = Uuid::new_v4();
    let job = server
        .generate(user, FULL_APP, json!({ "prompt": "an app" }))
        .await;
    server.events(user, &job).await.rest().await;
    let frames = server.events(user, &job).await.rest().await;
    let names: Vec<&str> = frames.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["state", "completed"]);
    server.stop().await;
}

pub(crate) async fn list_is_newest_first_and_paginated(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let user = Uuid::new_v4();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            server
                .generate(user, FULL_APP, json!({ "prompt": format!("app {i}") }))
                .await,
        );
    }
    let (_, _, page) = server
        .call("GET", "/api/jobs?limit=2", Some(user), None)
        .await;
    let first: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(first, [ids[2].as_str(), ids[1].as_str()]);
    let cursor = page["nextCursor"].as_str().unwrap();
    let (_, _, page) = server
        .call(
            "GET",
            &format!("/api/jobs?limit=2&cursor={cursor}"),
            Some(user),
            None,
        )
        .await;
    let second: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(second, [ids[0].as_str()]);
    let (_, _, page) = server
        .call("GET", "/api/jobs?status=completed", Some(user), None)
        .await;
    assert!(page["items"].as_array().unwrap().is_empty());
    let (status, _, _) = server
        .call("GET", "/api/jobs?limit=0", Some(user), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    server.stop().await;
}

/// Every route the OpenAPI document lists is served (an unauthenticated call is answered by
/// the route, not 404/405).
pub(crate) async fn every_listed_route_is_served(db: Db) {
    let options = Options {
        env: vec![("APPFORGE_ADMIN_TOKEN", "operator-token".to_owned())],
        ..Options::api_only()
    };
    let server = TestServer::start(db, options).await;
    let id = Uuid::new_v4();
    for (method, path) in appforge_server::routes::ROUTES.iter() {
        let path = path
            .replace("{id}", &id.to_string())
            .replace("{file}", "app.css");
        let (status, headers, body) = server.call(&method.to_uppercase(), &path, None, None).await;
        // A handler's own 404 (an unknown preview slug) has a body, JSON or a preview frame's
        // HTML; the router's has none.
        let unrouted = status == StatusCode::NOT_FOUND
            && body["error"] != "not_found"
            && !headers.contains_key(http::header::CONTENT_TYPE);
        assert!(
            !unrouted && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {status}"
        );
    }
    server.stop().await;
}

pub(crate) async fn ready_once_migrated(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let (status, _, body) = server.call("GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["provider"], "offline-demo");
    assert_eq!(body["sso"], "off", "no secrets key: {body}");
    let (status, _, _) = server.call("GET", "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

/// A process that dies between a job's terminal write and its settlement leaves the
/// reservation open; the next start (or any node's periodic pass) settles it: the completed
/// job and the one cancelled while running are charged with their tokens, the failed one
/// refunded, and only once.
pub(crate) async fn lost_settlements_are_reconciled(db: Db) {
    use appforge_jobs::{ClaimRequest, Finish, FinishRequest, JobStore, TokenUsage, WorkerId};

    let server = TestServer::start(db, Options::api_only()).await;
    let user = Uuid::new_v4();
    let mut jobs = Vec::new();
    for prompt in ["kept", "failed", "cancelled"] {
        jobs.push(
            server
                .generate(user, FULL_APP, json!({ "prompt": prompt }))
                .await,
        );
    }
    assert_eq!(daily_used(&server, user).await, 3);

    // Finish the jobs through the bare store: the writes a crashed worker made before it
    // could settle anything.
    let store = server.state.queue().store().clone();
    let now = chrono::Utc::now();
    let claimed = store
        .claim(&ClaimRequest {
            worker: WorkerId::new(),
            kinds: None,
            limit: 10,
            now,
            lease_until: now + chrono::Duration::seconds(30),
            exclude_users: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let ending = |prompt: &str| match prompt {
        "kept" => Finish::Complete {
            result: json!({ "name": "Kept" }),
            input_tokens: 120,
            output_tokens: 30,
        },
        "failed" => Finish::Fail {
            error: "the model refused".into(),
            tokens: None,
        },
        _ => Finish::Cancel {
            tokens: Some(TokenUsage::new(40, 0)),
        },
    };
    let batch: Vec<FinishRequest> = claimed
        .iter()
        .map(|job| FinishRequest {
            lease: job.lease().unwrap(),
            finish: ending(job.payload["prompt"].as_str().unwrap()),
            now,
        })
        .collect();
    for written in store.finish(&batch).await.unwrap() {
        assert!(written.unwrap().status.is_terminal());
    }
    assert_eq!(
        daily_used(&server, user).await,
        3,
        "nothing settled them yet"
    );

    // A periodic pass leaves jobs that finished after its cut-off to their own process.
    let early = appforge_server::reconcile::reconcile_since(
        &server.state,
        now - chrono::Duration::minutes(5),
        Some(now - chrono::Duration::seconds(1)),
    )
    .await;
    assert_eq!((early.scanned, early.committed, early.refunded), (0, 0, 0));
    assert_eq!(daily_used(&server, user).await, 3);

    let report = appforge_server::server::reconcile(&server.state).await;
    assert_eq!(
        (
            report.scanned,
            report.committed,
            report.refunded,
            report.errors
        ),
        (3, 2, 1, 0),
        "the completed job and the one cancelled while it ran are charged; the failed one not"
    );
    let (_, _, quota) = server.call("GET", "/api/quota", Some(user), None).await;
    assert_eq!(quota["daily"]["used"], 2, "{quota}");
    assert_eq!(quota["tokens"]["used"], 150 + 40, "{quota}");

    // Again: nothing left to settle, nothing charged twice.
    let again = appforge_server::server::reconcile(&server.state).await;
    assert_eq!((again.committed, again.refunded, again.errors), (0, 0, 0));
    assert_eq!(daily_used(&server, user).await, 2);
    server.stop().await;
}
