//! Per-user limits on authenticated routes: a request rate by plan, a cap on open event
//! streams per user (and for the admin feed), and a rate of checkout and portal sessions that
//! keeps one user from spending the Stripe account's API rate.

use http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{Db, FULL_APP, Options, SseReader, TestServer};

fn options(vars: &[(&'static str, &str)]) -> Options {
    Options {
        env: vars.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        ..Options::api_only()
    }
}

fn assert_limited(status: StatusCode, headers: &http::HeaderMap, body: &Value, limit: &str) {
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "rate_limited", "{body}");
    assert_eq!(body["details"]["limit"], limit, "{body}");
    if limit != "streams" {
        let retry: u64 = headers[http::header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry >= 1, "{retry}");
    }
}

#[tokio::test]
async fn every_authenticated_route_counts_against_the_plans_request_rate() {
    let server = TestServer::start(
        Db::sqlite().await,
        options(&[("APPFORGE_REQUEST_RATES", "free=3/3,team=6/6")]),
    )
    .await;
    let (free, other, team) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    // Different routes share one allowance.
    for path in ["/api/quota", "/api/jobs", "/api/apps"] {
        let (status, _, body) = server.call("GET", path, Some(free), None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (status, headers, body) = server.call("GET", "/api/quota", Some(free), None).await;
    assert_limited(status, &headers, &body, "requests");
    // A generation too: refused before any quota is reserved.
    let (status, headers, body) = server
        .call(
            "POST",
            FULL_APP,
            Some(free),
            Some(json!({ "prompt": "an app" })),
        )
        .await;
    assert_limited(status, &headers, &body, "requests");
    // Another user has their own allowance; public routes have none.
    let (status, _, _) = server.call("GET", "/api/quota", Some(other), None).await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..10 {
        assert_eq!(
            server.call("GET", "/healthz", None, None).await.0,
            StatusCode::OK
        );
    }
    // The Team plan's rate is the Team entry.
    server
        .state
        .quota()
        .set_plan(team, &appforge_quota::PlanId::team())
        .await
        .unwrap();
    for _ in 0..6 {
        let (status, _, body) = server.call("GET", "/api/quota", Some(team), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, headers, body) = server.call("GET", "/api/quota", Some(team), None).await;
    assert_limited(status, &headers, &body, "requests");
    assert!(
        crate::support::metrics_text(&server)
            .await
            .contains("appforge_rate_limited_total{kind=\"requests\"} 3")
    );
    server.stop().await;
}

#[tokio::test]
async fn without_overrides_each_plan_brings_its_own_request_rate() {
    // The operator stored a Free plan of 2 requests a minute (bursts of 2) before the server
    // started; no APPFORGE_REQUEST_RATES override is set.
    let db = Db::sqlite().await;
    {
        let store = appforge_quota::AnyUsageStore::connect(&db.url())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let quota = appforge_quota::Quota::new(store);
        let mut free = appforge_quota::Plan::free();
        free.request_limits.requests_per_minute = 2;
        free.request_limits.request_burst = 2;
        quota.save_plans().await.unwrap();
        quota.save_plan(free).await.unwrap();
    }
    let server = TestServer::start(db, options(&[("APPFORGE_REQUEST_RATES", "")])).await;
    let user = Uuid::new_v4();
    for _ in 0..2 {
        let (status, _, body) = server.call("GET", "/api/quota", Some(user), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, headers, body) = server.call("GET", "/api/quota", Some(user), None).await;
    assert_limited(status, &headers, &body, "requests");
    // Pro keeps its built-in rate (bursts of 120).
    let pro = Uuid::new_v4();
    server
        .state
        .quota()
        .set_plan(pro, &appforge_quota::PlanId::pro())
        .await
        .unwrap();
    for _ in 0..3 {
        let (status, _, body) = server.call("GET", "/api/quota", Some(pro), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    server.stop().await;
}

async fn open_events(
    server: &TestServer,
    user: Uuid,
    job: &str,
) -> http::Response<axum::body::Body> {
    let request = http::Request::builder()
        .uri(format!("/api/jobs/{job}/events"))
        .header("authorization", format!("Bearer {}", server.token(user)))
        .body(axum::body::Body::empty())
        .unwrap();
    server.send(request).await
}

#[tokio::test]
async fn a_user_holds_at_most_the_configured_event_streams() {
    let server = TestServer::start(
        Db::sqlite().await,
        options(&[("APPFORGE_MAX_STREAMS_PER_USER", "2")]),
    )
    .await;
    let (user, other) = (Uuid::new_v4(), Uuid::new_v4());
    let mut jobs = Vec::new();
    for _ in 0..3 {
        jobs.push(
            server
                .generate(user, FULL_APP, json!({ "prompt": "an app" }))
                .await,
        );
    }
    let first = open_events(&server, user, &jobs[0]).await;
    assert_eq!(first.status(), StatusCode::OK);
    let second = open_events(&server, user, &jobs[1]).await;
    assert_eq!(second.status(), StatusCode::OK);
    let third = open_events(&server, user, &jobs[2]).await;
    let status = third.status();
    let headers = third.headers().clone();
    let body: Value = serde_json::from_slice(
        &http_body_util::BodyExt::collect(third.into_body())
            .await
            .unwrap()
            .to_bytes(),
    )
    .unwrap();
    assert_limited(status, &headers, &body, "streams");
    // Other requests of the user, and other users' streams, are not affected.
    assert_eq!(
        server.call("GET", "/api/quota", Some(user), None).await.0,
        StatusCode::OK
    );
    let job = server
        .generate(other, FULL_APP, json!({ "prompt": "an app" }))
        .await;
    assert_eq!(
        open_events(&server, other, &job).await.status(),
        StatusCode::OK
    );

    // A stream that ends (its job cancelled) gives its slot back...
    let mut first = SseReader::from_response(first);
    let (status, _, _) = server
        .call(
            "DELETE",
            &format!("/api/jobs/{}", jobs[0]),
            Some(user),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let frames = first.rest().await;
    assert_eq!(frames.last().unwrap().0, "cancelled", "{frames:?}");
    let third = open_events(&server, user, &jobs[2]).await;
    assert_eq!(third.status(), StatusCode::OK);
    // ... and so does one the client drops.
    assert_eq!(
        open_events(&server, user, &jobs[0]).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    drop(second);
    assert_eq!(
        open_events(&server, user, &jobs[0]).await.status(),
        StatusCode::OK
    );
    // A refused stream holds no slot: another user's job is not found, and counts nothing.
    drop(third);
    for _ in 0..3 {
        assert_eq!(
            open_events(&server, user, &job).await.status(),
            StatusCode::NOT_FOUND
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn the_admin_feed_is_capped_too() {
    let server = TestServer::start(
        Db::sqlite().await,
        options(&[
            ("APPFORGE_MAX_STREAMS_PER_USER", "1"),
            ("APPFORGE_ADMIN_TOKEN", "operator-token"),
        ]),
    )
    .await;
    let feed = || {
        http::Request::builder()
            .uri("/api/admin/queues/events")
            .header("authorization", "Bearer operator-token")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let open = server.send(feed()).await;
    assert_eq!(open.status(), StatusCode::OK);
    assert_eq!(
        server.send(feed()).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    drop(open);
    assert_eq!(server.send(feed()).await.status(), StatusCode::OK);
    server.stop().await;
}

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/../../crates/appforge-billing/tests/fixtures/api/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test]
async fn checkout_and_portal_sessions_are_limited_per_user() {
    let stripe = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex("^/v1/customers$"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(fixture("customer"), "application/json"),
        )
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("^/v1/checkout/sessions$"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("checkout-session"), "application/json"),
        )
        .mount(&stripe)
        .await;
    let server = TestServer::start(
        Db::sqlite().await,
        options(&[
            ("STRIPE_SECRET_KEY", "sk_test_51Pz9QeKfT7xYw2Qe"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_test_4f2d9a7c1e8b6d3f0a5c"),
            ("STRIPE_API_BASE", &stripe.uri()),
            ("STRIPE_PRICE_PRO", "price_1RqA2bKfT7xYw2QeP7oMonthly"),
            // Bursts of two.
            ("APPFORGE_BILLING_CALLS_PER_MINUTE", "4"),
        ]),
    )
    .await;
    let (user, other) = (Uuid::new_v4(), Uuid::new_v4());
    let checkout = json!({ "plan": "pro", "interval": "monthly" });
    for _ in 0..2 {
        let (status, _, body) = server
            .call(
                "POST",
                "/api/stripe/checkout",
                Some(user),
                Some(checkout.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let stripe_calls = stripe.received_requests().await.unwrap().len();
    let (status, headers, body) = server
        .call(
            "POST",
            "/api/stripe/checkout",
            Some(user),
            Some(checkout.clone()),
        )
        .await;
    assert_limited(status, &headers, &body, "billing");
    // The portal shares the allowance.
    let (status, headers, body) = server
        .call("POST", "/api/stripe/portal", Some(user), None)
        .await;
    assert_limited(status, &headers, &body, "billing");
    assert_eq!(
        stripe.received_requests().await.unwrap().len(),
        stripe_calls,
        "a refused session reaches Stripe"
    );
    // Other routes of the user, and other users, are not affected.
    assert_eq!(
        server.call("GET", "/api/quota", Some(user), None).await.0,
        StatusCode::OK
    );
    let (status, _, body) = server
        .call("POST", "/api/stripe/checkout", Some(other), Some(checkout))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.stop().await;
}
