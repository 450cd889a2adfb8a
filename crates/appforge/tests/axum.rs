//! The mountable generation API: authentication through the host's trait, the answers a client
//! relies on (202, 400 naming the field, 401/403, 404 for another user's job, 429 with
//! Retry-After), and the job's events as SSE.

#![cfg(feature = "axum")]

use std::time::Duration;

use appforge::apps::MemoryAppStore;
use appforge::apps::Owner;
use appforge::axum::{Action, AuthRejection, Authenticate, Space, SupabaseJwt, router};
use appforge::core::SecretString;
use appforge::generation::GenerationService;
use appforge::jobs::{MemoryJobStore, WorkerPool};
use appforge::llm::{Pipelines, ScriptedProvider, StopReason};
use appforge::quota::{AnyUsageStore, MemoryUsageStore, Quota};
use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const APP: &str = "===NAME===\nTodo\n===FILE: src/App.tsx===\nexport default function App() { return null; }\n===END===\n";

type Service = GenerationService<MemoryJobStore, AnyUsageStore, MemoryAppStore>;

fn service(provider: &ScriptedProvider) -> Service {
    GenerationService::builder(
        Quota::new(MemoryUsageStore::new()),
        MemoryJobStore::new(),
        MemoryAppStore::new(),
        Pipelines::new(provider.clone()),
    )
    .build()
    .unwrap()
}

fn token(user: Uuid, anonymous: bool) -> String {
    let exp = chrono::Utc::now().timestamp() + 3600;
    let claims =
        json!({ "sub": user, "exp": exp, "aud": "authenticated", "is_anonymous": anonymous });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn app(service: &Service) -> Router {
    let api = router(
        service.clone(),
        SupabaseJwt::new(&SecretString::from(SECRET)),
    );
    Router::new().nest("/builder", api)
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, HeaderMap, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = bearer {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = match body {
        Some(body) => request
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string())),
        None => request.body(Body::empty()),
    }
    .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    conforms(method, uri, status, &value);
    (status, headers, value)
}

/// Every answer is documented in the router's OpenAPI document (its status under its
/// operation), and a JSON body validates against the schema generated for it.
fn conforms(method: &str, uri: &str, status: StatusCode, body: &Value) {
    let document = appforge::axum::openapi("/builder");
    let path = uri
        .strip_prefix("/builder")
        .unwrap_or(uri)
        .split('?')
        .next()
        .unwrap();
    let template = match path.strip_prefix("/jobs/") {
        Some(rest) => match rest.split_once('/') {
            Some((_, tail)) => format!("/jobs/{{id}}/{tail}"),
            None => "/jobs/{id}".to_owned(),
        },
        None => path.to_owned(),
    };
    let operation = &document["paths"][&template][method.to_lowercase()];
    assert!(
        operation.is_object(),
        "{method} {template} is not in the document"
    );
    let answer = &operation["responses"][status.as_str()];
    assert!(
        answer.is_object(),
        "{method} {template} answered {status}, which the document does not list"
    );
    let Some(schema) = answer["content"]["application/json"]["schema"].as_object() else {
        return;
    };
    let mut schema = schema.clone();
    schema.insert("components".into(), document["components"].clone());
    let validator = jsonschema::validator_for(&Value::Object(schema)).unwrap();
    if let Err(error) = validator.validate(body) {
        panic!("{method} {template} {status}: the body does not match its schema: {error}\n{body}");
    }
}

#[tokio::test]
async fn the_document_lists_every_route_with_generated_schemas() {
    let document = appforge::axum::openapi("/builder");
    assert_eq!(document["openapi"], "3.1.0");
    for (path, method) in [
        ("/ai-builder/full-app", "post"),
        ("/ai-builder/modify", "post"),
        ("/ai-builder/plan-phases", "post"),
        ("/chat", "post"),
        ("/jobs/{id}", "get"),
        ("/jobs/{id}", "delete"),
        ("/jobs/{id}/events", "get"),
        ("/quota", "get"),
        ("/openapi.json", "get"),
    ] {
        assert!(
            document["paths"][path][method].is_object(),
            "{method} {path}"
        );
    }
    let schemas = &document["components"]["schemas"];
    // Field names come from the types: the request body's camelCase names, the quota status.
    let body = &schemas["FullAppBody"]["properties"];
    for field in [
        "prompt",
        "conversationHistory",
        "currentAppState",
        "phaseContext",
        "appId",
        "baseVersion",
        "attachments",
    ] {
        assert!(body[field].is_object(), "FullAppBody.{field}: {body}");
    }
    assert_eq!(schemas["FullAppBody"]["additionalProperties"], false);
    let quota = &schemas["QuotaView"]["properties"];
    assert!(quota["retryAfterSeconds"].is_object(), "{quota}");
    assert!(quota["memberCap"].is_object(), "{quota}");
    assert!(schemas["AppFile"]["properties"]["path"].is_object());

    // The router serves the same document.
    let service = service(&ScriptedProvider::new());
    let app = Router::new().nest(
        "/builder",
        appforge::axum::Api::new(service, SupabaseJwt::new(&SecretString::from(SECRET)))
            .mounted_at("/builder")
            .router(),
    );
    let (status, _, served) = call(&app, "GET", "/builder/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served, document);
}

#[tokio::test]
async fn a_generation_is_accepted_followed_and_kept_private() {
    let provider = ScriptedProvider::new().with(ScriptedProvider::text_transcript(
        [APP],
        &StopReason::EndTurn,
    ));
    let service = service(&provider);
    let app = app(&service);
    let user = Uuid::new_v4();
    let alice = token(user, false);

    let (status, _, body) = call(
        &app,
        "POST",
        "/builder/ai-builder/full-app",
        Some(&alice),
        Some(json!({ "prompt": "a todo list" })),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "pending");
    let job = body["jobId"].as_str().unwrap().to_owned();

    let workers: WorkerPool<MemoryJobStore> = service.start_workers(1).unwrap();
    // The events stream ends after the job's last event.
    let response = app
        .clone()
        .oneshot(
            Request::get(format!("/builder/jobs/{job}/events"))
                .header(header::AUTHORIZATION, format!("Bearer {alice}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let text = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(text.starts_with("event: state"), "{text}");
    // Progress in camelCase, then exactly one terminal event, last.
    assert!(text.contains("\"type\":\"fileStarted\""), "{text}");
    assert!(!text.contains("file_started"), "{text}");
    let names: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("event: "))
        .collect();
    assert_eq!(
        names.iter().filter(|n| **n == "completed").count(),
        1,
        "{names:?}"
    );
    assert_eq!(names.last(), Some(&"completed"), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| ["failed", "cancelled", "snapshot"].contains(n)),
        "{names:?}"
    );
    assert!(
        !text.contains("reservationId"),
        "the payload is not shown: {text}"
    );
    workers.shutdown(Duration::from_secs(5)).await;

    let (status, _, body) = call(
        &app,
        "GET",
        &format!("/builder/jobs/{job}"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "completed");
    assert_eq!(body["result"]["version"], 1);
    assert!(body.get("payload").is_none());

    // Another user: the job does not exist for them.
    let bob = token(Uuid::new_v4(), false);
    let (status, _, body) = call(
        &app,
        "GET",
        &format!("/builder/jobs/{job}"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, _, _) = call(
        &app,
        "DELETE",
        &format!("/builder/jobs/{job}"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    service.flush_settlements(Duration::from_secs(5)).await;
    let (status, _, body) = call(&app, "GET", "/builder/quota", Some(&alice), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["daily"]["used"], 1);
}

#[tokio::test]
async fn credentials_are_checked_before_anything_else() {
    let service = service(&ScriptedProvider::new());
    let app = app(&service);
    let body = json!({ "prompt": "a todo list" });
    let (status, _, answer) = call(
        &app,
        "POST",
        "/builder/ai-builder/full-app",
        None,
        Some(body.clone()),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (status, _, _) = call(
        &app,
        "POST",
        "/builder/ai-builder/full-app",
        Some("not.a.jwt"),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let forged = {
        let claims = json!({ "sub": Uuid::new_v4(), "exp": chrono::Utc::now().timestamp() + 60, "aud": "authenticated" });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"another-secret-of-thirty-two-byt"),
        )
        .unwrap()
    };
    let (status, _, _) = call(
        &app,
        "POST",
        "/builder/ai-builder/full-app",
        Some(&forged),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, answer) = call(
        &app,
        "POST",
        "/builder/ai-builder/full-app",
        Some(&token(Uuid::new_v4(), true)),
        Some(body),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    assert!(format!("{:?}", SupabaseJwt::new(&SecretString::from(SECRET))).contains("REDACTED"));
}

#[tokio::test]
async fn bad_requests_name_the_field_and_cost_nothing() {
    let service = service(&ScriptedProvider::new());
    let app = app(&service);
    let user = Uuid::new_v4();
    let alice = token(user, false);
    let url = "/builder/ai-builder/full-app";
    let (status, _, body) = call(
        &app,
        "POST",
        url,
        Some(&alice),
        Some(json!({ "prompt": "  " })),
    )
    .await;
    assert_eq!(
        (status, body["details"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("prompt"))
    );
    let history: Vec<Value> = (0..1000)
        .map(|_| json!({ "role": "user", "content": "hi" }))
        .collect();
    let (status, _, body) = call(
        &app,
        "POST",
        url,
        Some(&alice),
        Some(json!({ "prompt": "x", "conversationHistory": history })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["details"]["limit"], "history_messages");
    let (status, _, body) = call(&app, "POST", url, Some(&alice), Some(json!({ "prompt": "x", "currentAppState": { "files": [{ "path": "../x", "content": "" }] } }))).await;
    assert_eq!(
        (status, body["details"]["field"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("currentAppState.files[0].path")
        )
    );
    let (status, _, body) = call(
        &app,
        "POST",
        url,
        Some(&alice),
        Some(json!({ "prompt": "x", "appId": Uuid::new_v4() })),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, _, body) = call(
        &app,
        "POST",
        url,
        Some(&alice),
        Some(json!({ "prompt": "x", "unknown": 1 })),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_body"))
    );
    // A field of the wrong type is named by its path.
    let (status, _, body) = call(
        &app,
        "POST",
        url,
        Some(&alice),
        Some(json!({ "prompt": "x", "conversationHistory": [{ "role": "user", "content": 7 }] })),
    )
    .await;
    assert_eq!(
        (status, body["details"]["field"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("conversationHistory[0].content")
        ),
        "{body}"
    );
    // Not JSON at all: 415.
    let request = Request::post(url)
        .header(header::AUTHORIZATION, format!("Bearer {alice}"))
        .body(Body::from("prompt=x"))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _, body) = call(
        &app,
        "POST",
        "/builder/ai-builder/modify",
        Some(&alice),
        Some(json!({ "prompt": "x" })),
    )
    .await;
    assert_eq!(
        (status, body["details"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("currentAppState"))
    );
    let (status, _, body) = call(&app, "GET", "/builder/jobs/not-an-id", Some(&alice), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    let quota = service.quota().status(user).await.unwrap();
    assert_eq!(
        quota.daily.remaining, quota.daily.limit,
        "nothing was reserved"
    );
}

#[tokio::test]
async fn a_spent_quota_answers_429_with_retry_after_and_the_windows() {
    let service = service(&ScriptedProvider::new());
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = events.clone();
    let api = appforge::axum::Api::new(
        service.clone(),
        SupabaseJwt::new(&SecretString::from(SECRET)),
    )
    .on_event(move |event| seen.lock().unwrap().push(event.clone()))
    .router();
    let app = Router::new().nest("/builder", api);
    let user = Uuid::new_v4();
    let alice = token(user, false);
    let daily = service
        .quota()
        .plan_of(user)
        .await
        .unwrap()
        .daily_generations
        .unwrap();
    for _ in 0..daily {
        let (status, _, _) = call(
            &app,
            "POST",
            "/builder/ai-builder/plan-phases",
            Some(&alice),
            Some(json!({ "prompt": "plan" })),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let (status, headers, body) = call(
        &app,
        "POST",
        "/builder/ai-builder/plan-phases",
        Some(&alice),
        Some(json!({ "prompt": "plan" })),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"], "quota_exceeded");
    let retry: u64 = headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert!(body["details"]["deniedBy"].is_string(), "{body}");

    // The host heard of each accepted generation and of the refusal.
    let events = events.lock().unwrap();
    let accepted = events
        .iter()
        .filter(|e| matches!(e, appforge::axum::ApiEvent::Accepted { user: u, kind: "plan_phases", .. } if *u == user))
        .count();
    assert_eq!(u64::from(daily), u64::try_from(accepted).unwrap());
    assert!(
        matches!(
            events.last(),
            Some(appforge::axum::ApiEvent::Refused {
                code: "quota_exceeded",
                kind: "plan_phases",
                ..
            })
        ),
        "{events:?}"
    );
}

/// A host that decides who acts and where in one pass (`act`), answering with its own error
/// code, details and `Retry-After`.
struct OnePass;

impl Authenticate for OnePass {
    async fn authenticate(&self, _: &HeaderMap) -> Result<Uuid, AuthRejection> {
        unreachable!("the router calls act")
    }

    async fn act(
        &self,
        request: &http::request::Parts,
        _: Action,
    ) -> Result<(Uuid, Space), AuthRejection> {
        match request.headers.get("x-user").and_then(|v| v.to_str().ok()) {
            Some(user) => {
                let user: Uuid = user.parse().unwrap();
                Ok((user, Owner::User(user).into()))
            }
            None => Err(
                AuthRejection::forbidden("sign in through your organization")
                    .code("sso_required")
                    .details(json!({ "org": "acme" }))
                    .retry_after(7),
            ),
        }
    }
}

#[tokio::test]
async fn a_host_may_decide_in_one_pass_with_its_own_codes() {
    let service = service(&ScriptedProvider::new());
    let app = Router::new().nest("/builder", router(service.clone(), OnePass));
    let (status, headers, body) = call(&app, "GET", "/builder/quota", None, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("sso_required")),
        "{body}"
    );
    assert_eq!(body["details"]["org"], "acme");
    assert_eq!(headers[header::RETRY_AFTER], "7");
    let user = Uuid::new_v4();
    let request = Request::get("/builder/quota")
        .header("x-user", user.to_string())
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// A host's own authentication: an API key header naming the user.
struct HeaderKeys;

impl Authenticate for HeaderKeys {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Uuid, AuthRejection> {
        headers
            .get("x-user")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| AuthRejection::unauthorized("x-user required"))
    }
}

#[tokio::test]
async fn a_host_brings_its_own_authentication() {
    let service = service(&ScriptedProvider::new());
    let app = Router::new().nest("/api", router(service, HeaderKeys));
    let user = Uuid::new_v4();
    let request = Request::get("/api/quota")
        .header("x-user", user.to_string())
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app.clone().oneshot(request).await.unwrap().status(),
        StatusCode::OK
    );
    let request = Request::get("/api/quota").body(Body::empty()).unwrap();
    assert_eq!(
        app.oneshot(request).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

/// A host with teams: the org is named by an `x-org` header, and only its members (by the
/// host's own table) act there; viewers only read.
struct Teams {
    org: Uuid,
    members: Vec<(Uuid, &'static str)>,
    /// The org's daily generations per member.
    member_daily_cap: Option<u32>,
}

impl Authenticate for Teams {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Uuid, AuthRejection> {
        HeaderKeys.authenticate(headers).await
    }

    async fn space(
        &self,
        request: &http::request::Parts,
        user: Uuid,
        action: Action,
    ) -> Result<Space, AuthRejection> {
        let Some(org) = request.headers.get("x-org") else {
            return Ok(Owner::User(user).into());
        };
        let role = self
            .members
            .iter()
            .find(|(member, _)| *member == user)
            .map(|(_, role)| *role)
            .filter(|_| org.to_str().ok() == Some(self.org.to_string().as_str()))
            .ok_or_else(|| AuthRejection::not_found("no such org"))?;
        if role == "viewer" && action != Action::Read {
            return Err(AuthRejection::forbidden("viewers only read"));
        }
        Ok(Space::new(Owner::Org(self.org)).member_daily_cap(self.member_daily_cap))
    }
}

/// Sends a request as `user`, in `org` when given; the status and the body.
async fn as_member(
    app: &Router,
    method: &str,
    uri: &str,
    user: Uuid,
    org: Option<Uuid>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("x-user", user.to_string());
    if let Some(org) = org {
        request = request.header("x-org", org.to_string());
    }
    let request = match body {
        Some(body) => request
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string())),
        None => request.body(Body::empty()),
    }
    .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    conforms(method, uri, status, &value);
    (status, value)
}

#[tokio::test]
async fn a_hosts_spaces_scope_jobs_and_quota_and_its_roles_gate_writes() {
    let provider = ScriptedProvider::new();
    let service = service(&provider);
    let (member, viewer, outsider, org) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    let teams = Teams {
        org,
        members: vec![(member, "member"), (viewer, "viewer")],
        member_daily_cap: None,
    };
    let app = Router::new().nest("/builder", router(service.clone(), teams));
    let prompt = json!({ "prompt": "a todo list" });

    let (status, body) = as_member(
        &app,
        "POST",
        "/builder/ai-builder/full-app",
        member,
        Some(org),
        Some(prompt.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let job = body["jobId"].as_str().unwrap().to_owned();
    let path = format!("/builder/jobs/{job}");

    // The org's job: read by its viewer in the org, unknown in anyone's personal space.
    let (status, body) = as_member(&app, "GET", &path, viewer, Some(org), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = as_member(&app, "GET", &path, member, None, None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "not in the member's personal space"
    );
    let (status, body) = as_member(&app, "GET", &path, outsider, Some(org), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    // A viewer reads but does not generate or cancel.
    let (status, _) = as_member(
        &app,
        "POST",
        "/builder/ai-builder/full-app",
        viewer,
        Some(org),
        Some(prompt),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = as_member(&app, "DELETE", &path, viewer, Some(org), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // One pooled quota: the generation counts for the org, not for the member.
    let (_, quota) = as_member(&app, "GET", "/builder/quota", viewer, Some(org), None).await;
    assert_eq!(quota["daily"]["used"], 1, "{quota}");
    let (_, quota) = as_member(&app, "GET", "/builder/quota", member, None, None).await;
    assert_eq!(quota["daily"]["used"], 0, "{quota}");
    let stored = service
        .queue()
        .get(Owner::Org(org), job.parse().unwrap())
        .await
        .unwrap();
    assert_eq!((stored.owner(), stored.user_id), (Owner::Org(org), member));
}

/// An org's daily cap per member: a member who started the cap's generations is refused
/// (`429 member_cap_reached`) while another member and the org's pool go on; a generation
/// cancelled before it ran is refunded to the member's count as to the org's.
#[tokio::test]
async fn an_orgs_cap_per_member_stops_that_member_only() {
    let provider = ScriptedProvider::new();
    let service = service(&provider);
    let (ada, bob, org) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    service
        .quota()
        .set_plan(org, &appforge::quota::PlanId::team())
        .await
        .unwrap();
    let teams = Teams {
        org,
        members: vec![(ada, "member"), (bob, "member")],
        member_daily_cap: Some(2),
    };
    let app = Router::new().nest("/builder", router(service.clone(), teams));
    let generate = |user| {
        let app = app.clone();
        async move {
            as_member(
                &app,
                "POST",
                "/builder/ai-builder/full-app",
                user,
                Some(org),
                Some(json!({ "prompt": "a todo list" })),
            )
            .await
        }
    };
    let mut jobs = Vec::new();
    for _ in 0..2 {
        let (status, body) = generate(ada).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        jobs.push(body["jobId"].as_str().unwrap().to_owned());
    }
    let (status, body) = generate(ada).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "member_cap_reached", "{body}");
    assert_eq!(body["details"]["daily"]["limit"], 2, "{body}");
    let (status, body) = generate(bob).await;
    assert_eq!(status, StatusCode::ACCEPTED, "another member: {body}");
    let (_, quota) = as_member(&app, "GET", "/builder/quota", ada, Some(org), None).await;
    assert_eq!(
        quota["daily"]["used"], 3,
        "the refused one is not the org's: {quota}"
    );

    // Cancelled before it ran: refunded, to the org and to the member.
    let (status, body) = as_member(
        &app,
        "DELETE",
        &format!("/builder/jobs/{}", jobs[0]),
        ada,
        Some(org),
        None,
    )
    .await;
    assert!(status.is_success(), "{status} {body}");
    service.flush_settlements(Duration::from_secs(5)).await;
    let (_, quota) = as_member(&app, "GET", "/builder/quota", ada, Some(org), None).await;
    assert_eq!(quota["daily"]["used"], 2, "{quota}");
    let (status, body) = generate(ada).await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "the refund gave the member one back: {body}"
    );
    let (status, _) = generate(ada).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // The member's cap is their own: their personal space has none.
    let member = appforge::generation::member_cap_subject(org, ada);
    assert_eq!(service.quota().status(member).await.unwrap().daily.used, 2);
    assert_ne!(member, appforge::generation::member_cap_subject(org, bob));
}

/// The org's pool refusing after the member's cap granted: `429 quota_exceeded`, and the
/// member's count gives the refused generation back.
#[tokio::test]
async fn a_refusal_by_the_orgs_pool_gives_the_members_count_back() {
    let provider = ScriptedProvider::new();
    let service = service(&provider);
    let (ada, org) = (Uuid::new_v4(), Uuid::new_v4());
    let teams = Teams {
        org,
        members: vec![(ada, "member")],
        member_daily_cap: Some(100),
    };
    // The org on Free: 5 generations a day for the whole org.
    let app = Router::new().nest("/builder", router(service.clone(), teams));
    let mut refused = None;
    for _ in 0..6 {
        let (status, body) = as_member(
            &app,
            "POST",
            "/builder/ai-builder/full-app",
            ada,
            Some(org),
            Some(json!({ "prompt": "a todo list" })),
        )
        .await;
        if status != StatusCode::ACCEPTED {
            refused = Some((status, body));
        }
    }
    let (status, body) = refused.expect("the sixth is over the org's Free plan");
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(
        body["error"], "quota_exceeded",
        "the org's pool, not the cap: {body}"
    );
    let member = appforge::generation::member_cap_subject(org, ada);
    assert_eq!(service.quota().status(member).await.unwrap().daily.used, 5);
}

/// `OrgSpaces`: the router mounted for personal spaces and under `/orgs/{org}`, where the
/// org's members act in its space by their roles (appforge-orgs), with the org's cap per
/// member; an outsider and an unknown org get `404`, a viewer `403` for a write.
#[cfg(feature = "orgs")]
#[tokio::test]
async fn org_spaces_from_appforge_orgs_scope_the_router_by_role() {
    use appforge::axum::OrgSpaces;
    use appforge::orgs::{Caller, MemoryOrgStore, NewOrg, Orgs, Role};

    let provider = ScriptedProvider::new();
    let service = service(&provider);
    let orgs = Orgs::new(MemoryOrgStore::new());
    let (owner, viewer, outsider) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let org = orgs
        .create_org(&Caller::user(owner), NewOrg::new("Acme", "acme"))
        .await
        .unwrap()
        .id;
    orgs.add_member(&Caller::user(owner), org, viewer, Role::Viewer)
        .await
        .unwrap();
    orgs.set_member_daily_cap(&Caller::user(owner), org, Some(1))
        .await
        .unwrap();
    let api = router(service.clone(), OrgSpaces::new(HeaderKeys, orgs.clone()));
    let app = Router::new()
        .nest("/builder", api.clone())
        .nest("/builder/orgs/{org}", api);
    let in_org = |path: &str| format!("/builder/orgs/{org}{path}");
    let prompt = json!({ "prompt": "a todo list" });
    let send = |method: &'static str, uri: String, user: Uuid, body: Option<Value>| {
        let app = app.clone();
        async move {
            let mut request = Request::builder()
                .method(method)
                .uri(&uri)
                .header("x-user", user.to_string());
            let request = match body {
                Some(body) => {
                    request = request.header(header::CONTENT_TYPE, "application/json");
                    request.body(Body::from(body.to_string()))
                }
                None => request.body(Body::empty()),
            }
            .unwrap();
            let response = app.oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };

    // The owner generates in the org: the org's job, the org's pooled quota.
    let (status, body) = send(
        "POST",
        in_org("/ai-builder/full-app"),
        owner,
        Some(prompt.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let job: appforge::jobs::JobId = body["jobId"].as_str().unwrap().parse().unwrap();
    let stored = service.queue().get(Owner::Org(org), job).await.unwrap();
    assert_eq!((stored.owner(), stored.user_id), (Owner::Org(org), owner));
    let (_, quota) = send("GET", in_org("/quota"), viewer, None).await;
    assert_eq!(quota["daily"]["used"], 1, "{quota}");
    // The owner's own count against the cap per member rides along, in the org only.
    let (_, quota) = send("GET", in_org("/quota"), owner, None).await;
    assert_eq!(
        (
            &quota["memberCap"]["limit"],
            &quota["memberCap"]["used"],
            &quota["memberCap"]["remaining"]
        ),
        (&json!(1), &json!(1), &json!(0)),
        "{quota}"
    );
    let (_, quota) = send("GET", "/builder/quota".into(), owner, None).await;
    assert_eq!(
        quota["daily"]["used"], 0,
        "the personal space is another: {quota}"
    );

    // The cap per member: the owner's second generation there is refused, not the personal one.
    let (status, body) = send(
        "POST",
        in_org("/ai-builder/full-app"),
        owner,
        Some(prompt.clone()),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("member_cap_reached")),
        "{body}"
    );
    let (status, _) = send(
        "POST",
        "/builder/ai-builder/full-app".into(),
        owner,
        Some(prompt.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    // A viewer reads the org's job but neither generates nor cancels.
    let (status, _) = send("GET", in_org(&format!("/jobs/{job}")), viewer, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send(
        "POST",
        in_org("/ai-builder/full-app"),
        viewer,
        Some(prompt.clone()),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "{body}"
    );
    let (status, _) = send("DELETE", in_org(&format!("/jobs/{job}")), viewer, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // An outsider, an unknown org and a malformed id: 404, whatever exists.
    let (status, _) = send("GET", in_org(&format!("/jobs/{job}")), outsider, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let unknown = format!("/builder/orgs/{}/quota", Uuid::new_v4());
    assert_eq!(
        send("GET", unknown, owner, None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send("GET", "/builder/orgs/acme/quota".into(), owner, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // A change of role takes effect at once.
    orgs.change_role(&Caller::user(owner), org, viewer, Role::Member)
        .await
        .unwrap();
    let (status, body) = send(
        "POST",
        in_org("/ai-builder/plan-phases"),
        viewer,
        Some(prompt),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

/// Attached images, with the service's loader over `appforge-uploads`: an upload of another
/// space is `404` naming it, images past the plan's request tokens are `400 request_tokens`
/// with the estimate, and neither costs a generation; an image within them is accepted.
#[cfg(feature = "uploads")]
#[tokio::test]
async fn attached_images_are_the_spaces_and_count_against_the_request_tokens() {
    use appforge::generation::UploadedImages;
    use appforge::uploads::{AnyUploadStore, Storage, Uploads};

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        image::DynamicImage::new_rgba8(width, height)
            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    let provider = ScriptedProvider::new();
    let uploads = Uploads::new(Storage::in_memory(), AnyUploadStore::default());
    // A Free plan with 3 KiB of request text and a 1 KiB prompt: (3 + 1) KiB / 4 = 1,024
    // input tokens a request.
    let catalogue = appforge::quota::PlanCatalogue::default();
    let mut free = catalogue.default_plan().clone();
    free.request_limits.history_bytes = 1024;
    free.request_limits.app_bytes = 1024;
    free.request_limits.phase_context_bytes = 1024;
    let quota = Quota::builder(MemoryUsageStore::new())
        .catalogue(catalogue.with_plan(free).unwrap())
        .build()
        .unwrap();
    let service: Service = GenerationService::builder(
        quota,
        MemoryJobStore::new(),
        MemoryAppStore::new(),
        Pipelines::new(provider.clone()),
    )
    .attachments(UploadedImages(uploads.clone()))
    .build()
    .unwrap();
    let api = appforge::axum::Api::new(
        service.clone(),
        SupabaseJwt::new(&SecretString::from(SECRET)),
    )
    .max_prompt_bytes(1024)
    .router();
    let app = Router::new().nest("/builder", api);
    let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let small = uploads.upload(ada, &png(40, 30), 1 << 20).await.unwrap();
    // 1,000 x 1,000 / 750 = 1,333 tokens: past the 1,024 alone.
    let huge = uploads
        .upload(ada, &png(1000, 1000), 50 << 20)
        .await
        .unwrap();
    let bobs = uploads.upload(bob, &png(4, 4), 1 << 20).await.unwrap();
    let generate = |user: Uuid, attachments: Vec<Uuid>| {
        let app = app.clone();
        async move {
            call(
                &app,
                "POST",
                "/builder/ai-builder/full-app",
                Some(&token(user, false)),
                Some(json!({ "prompt": "an app like this", "attachments": attachments })),
            )
            .await
        }
    };

    let (status, _, body) = generate(ada, vec![small.id, bobs.id]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["details"]["uploadId"], bobs.id.to_string(), "{body}");

    let (status, _, body) = generate(ada, vec![huge.id]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["details"]["limit"], "request_tokens", "{body}");
    assert_eq!(body["details"]["imageTokens"], 1_333, "{body}");
    assert_eq!(body["details"]["max"], 1_024, "{body}");
    assert_eq!(
        service.quota().status(ada).await.unwrap().daily.used,
        0,
        "nothing was reserved"
    );

    let (status, _, body) = generate(ada, vec![small.id]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let job: appforge::jobs::JobId = body["jobId"].as_str().unwrap().parse().unwrap();
    let stored = service.queue().get(ada, job).await.unwrap();
    let view = serde_json::to_value(appforge::axum::JobView::from(&stored)).unwrap();
    assert_eq!(view["attachments"], json!([small.id.to_string()]), "{view}");
}

/// `POST /chat`: the reply streams as `delta` events then `done`, and one of the space's chat
/// messages is counted; a bad body costs nothing.
#[tokio::test]
async fn a_chat_message_streams_its_reply_and_counts_one_message() {
    let provider = ScriptedProvider::new().with(ScriptedProvider::text_transcript(
        ["Start with ", "a list."],
        &StopReason::EndTurn,
    ));
    let service = service(&provider);
    let app = app(&service);
    let user = Uuid::new_v4();
    let alice = token(user, false);
    let (status, _, body) = call(
        &app,
        "POST",
        "/builder/chat",
        Some(&alice),
        Some(json!({ "prompt": "x", "mode": "shout" })),
    )
    .await;
    assert_eq!(
        (status, body["details"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("mode")),
        "{body}"
    );
    let request = Request::post("/builder/chat")
        .header(header::AUTHORIZATION, format!("Bearer {alice}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({ "prompt": "How should I start?", "mode": "plan" }).to_string(),
        ))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("event: "))
        .collect();
    assert_eq!(names.last(), Some(&"done"), "{text}");
    assert!(
        names.iter().filter(|n| **n == "delta").count() >= 1,
        "{text}"
    );
    assert!(text.contains("a list."), "{text}");
    assert!(text.contains("\"stopReason\":\"end_turn\""), "{text}");
    service.flush_settlements(Duration::from_secs(5)).await;
    let quota = service.quota().status(user).await.unwrap();
    assert_eq!(quota.chat.used, 1, "{quota:?}");
    assert_eq!(quota.daily.used, 0, "a chat message is not a generation");
}
