//! The Free plan's daily limit on `POST /generate`, through the router itself.

use appforge_core::ManualClock;
use appforge_example_quota_axum::app;
use appforge_quota::{MemoryUsageStore, Quota};
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

/// Half a minute before midnight UTC, so that the retry-after is known.
fn quota() -> Quota {
    let clock = ManualClock::at("2026-03-14T23:59:30Z".parse().unwrap());
    Quota::builder(MemoryUsageStore::new())
        .clock(clock.shared())
        .build()
        .unwrap()
}

async fn generate(quota: &Quota, user: Option<&str>) -> (StatusCode, Option<String>, Value) {
    let mut request = Request::post("/generate");
    if let Some(user) = user {
        request = request.header("x-user-id", user);
    }
    let response = app(quota.clone())
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = to_bytes(response.into_body(), 1 << 16).await.unwrap();
    (status, retry_after, serde_json::from_slice(&body).unwrap())
}

const USER: &str = "0196f8c2-0000-7000-8000-000000000001";

#[tokio::test]
async fn five_free_generations_pass_and_the_sixth_is_a_429_with_the_quota() {
    let quota = quota();
    for done in 1..=5 {
        let (status, _, body) = generate(&quota, Some(USER)).await;
        assert_eq!(status, StatusCode::OK, "generation {done}: {body}");
        assert_eq!(body["plan"], "free");
        assert_eq!(body["dailyRemaining"], 5 - done);
    }

    let (status, retry_after, body) = generate(&quota, Some(USER)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after.as_deref(), Some("30"), "30 s to midnight");
    assert_eq!(body["error"], "quota_exceeded");
    assert_eq!(body["message"], "daily limit of the free plan reached");
    assert_eq!(body["quota"]["plan"], "free");
    assert_eq!(body["quota"]["deniedBy"], "daily");
    assert_eq!(body["quota"]["daily"]["limit"], 5);
    assert_eq!(body["quota"]["daily"]["used"], 5);
    assert_eq!(body["quota"]["daily"]["remaining"], 0);
    assert_eq!(body["quota"]["daily"]["resetsAt"], "2026-03-15T00:00:00Z");
    assert_eq!(body["quota"]["tokens"]["used"], 6_000);
}

#[tokio::test]
async fn the_limit_is_per_user() {
    let quota = quota();
    for _ in 0..5 {
        assert_eq!(generate(&quota, Some(USER)).await.0, StatusCode::OK);
    }
    let other = "0196f8c2-0000-7000-8000-000000000002";
    let (status, _, body) = generate(&quota, Some(other)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["dailyRemaining"], 4);
}

#[tokio::test]
async fn a_request_without_a_valid_user_is_a_401() {
    let quota = quota();
    for user in [None, Some("not-a-uuid")] {
        let (status, _, body) = generate(&quota, user).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{user:?}");
        assert_eq!(body["error"], "unauthenticated");
    }
}
