//! The embedded API answers under the host's prefix, behind the host's sessions, and its jobs
//! run to a saved app on the SQLite file.

use std::time::Duration;

use appforge_example_embed::{Sessions, app};
use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

async fn send(router: &axum::Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_signed_in_user_generates_an_app_through_the_mounted_api() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("embed.db").display()
    );
    let sessions = Sessions::default();
    let token = sessions.sign_in(uuid::Uuid::new_v4());
    let (router, workers) = app(&url, sessions).await.unwrap();

    let page = router
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK, "the host's own routes stay");
    let anonymous = Request::post("/builder/ai-builder/full-app")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&router, anonymous).await.0, StatusCode::UNAUTHORIZED);

    let request = Request::post("/builder/ai-builder/full-app")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"prompt":"a todo list"}"#))
        .unwrap();
    let (status, body) = send(&router, request).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let job = body["jobId"].as_str().unwrap().to_owned();

    let events = Request::get(format!("/builder/jobs/{job}/events"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let stream = router.clone().oneshot(events).await.unwrap();
    let text = stream.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&text).contains("event: completed"));

    let get = Request::get(format!("/builder/jobs/{job}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let (status, job) = send(&router, get).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(job["status"], "completed");
    assert_eq!(job["result"]["version"], 1);
    assert_eq!(job["result"]["provider"], "demo");
    workers.shutdown(Duration::from_secs(5)).await;
}
