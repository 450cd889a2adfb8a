//! Stripe through the server: signed webhooks change plans, forged ones change nothing, and
//! without Stripe keys the billing routes answer 503.

use appforge_analytics::{AnalyticsEvent, EventType};
use appforge_billing::sign_payload;
use appforge_core::SecretString;
use axum::body::Body;
use http::StatusCode;
use serde_json::json;
use uuid::Uuid;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{Db, Options, TestServer};

const WEBHOOK_SECRET: &str = "whsec_test_4f2d9a7c1e8b6d3f0a5c";
/// The user, price and subscription the billing crate's recorded fixtures carry.
const USER: &str = "7d6f0b4e-3a52-4c1e-9f0a-2b8e5d1c9a41";
const PRO_MONTHLY: &str = "price_1RqA2bKfT7xYw2QeP7oMonthly";

fn fixture(kind: &str, name: &str) -> String {
    let path = format!(
        "{}/../../crates/appforge-billing/tests/fixtures/{kind}/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn with_stripe(db: Db) -> (TestServer, MockServer) {
    let stripe = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex("^/v1/subscriptions/.+"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("api", "subscription-active-pro"),
            "application/json",
        ))
        .mount(&stripe)
        .await;
    let options = Options {
        workers: 0,
        env: vec![
            ("STRIPE_SECRET_KEY", "sk_test_51Pz9QeKfT7xYw2Qe".to_owned()),
            ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
            ("STRIPE_API_BASE", stripe.uri()),
            ("STRIPE_PRICE_PRO", PRO_MONTHLY.to_owned()),
        ],
        ..Options::default()
    };
    (TestServer::start(db, options).await, stripe)
}

async fn deliver(server: &TestServer, body: &str, signature: &str) -> StatusCode {
    let request = http::Request::builder()
        .method("POST")
        .uri("/api/stripe/webhook")
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(Body::from(body.to_owned()))
        .unwrap();
    server.send(request).await.status()
}

async fn plan(server: &TestServer, user: Uuid) -> String {
    let (_, _, quota) = server.call("GET", "/api/quota", Some(user), None).await;
    quota["plan"].as_str().unwrap().to_owned()
}

fn signed(body: &str, secret: &str) -> String {
    sign_payload(
        &SecretString::from(secret),
        chrono::Utc::now().timestamp(),
        body.as_bytes(),
    )
}

#[tokio::test]
async fn a_signed_webhook_upgrades_the_plan() {
    let (server, _stripe) = with_stripe(Db::sqlite().await).await;
    let user: Uuid = USER.parse().unwrap();
    assert_eq!(plan(&server, user).await, "free");
    for name in [
        "01-checkout.session.completed",
        "03-customer.subscription.updated-pro",
    ] {
        let body = fixture("events", name);
        assert_eq!(
            deliver(&server, &body, &signed(&body, WEBHOOK_SECRET)).await,
            StatusCode::OK,
            "{name}"
        );
    }
    assert_eq!(plan(&server, user).await, "pro");
    let invoice = fixture("events", "04-invoice.paid");
    for _ in 0..2 {
        // The second delivery is a duplicate: acknowledged, recorded once.
        assert_eq!(
            deliver(&server, &invoice, &signed(&invoice, WEBHOOK_SECRET)).await,
            StatusCode::OK
        );
    }
    let events = server.analytics_events().await;
    let of = |ty: EventType| -> Vec<&AnalyticsEvent> {
        events.iter().filter(|e| e.event_type == ty).collect()
    };
    let checkout = of(EventType::CheckoutCompleted);
    assert_eq!(checkout.len(), 1, "{events:?}");
    assert_eq!(checkout[0].user_id, user);
    assert_eq!(
        checkout[0].properties["session_id"],
        "cs_test_a1RqA8kYw2QeCheckout0001"
    );
    let changed = of(EventType::SubscriptionChanged);
    assert_eq!(changed.len(), 1, "{events:?}");
    assert_eq!(changed[0].user_id, user);
    assert_eq!(changed[0].properties["plan"], "pro");
    assert_eq!(changed[0].properties["status"], "active");
    let revenue = of(EventType::RevenueRecorded);
    assert_eq!(revenue.len(), 1, "{events:?}");
    assert_eq!(revenue[0].user_id, user);
    let facts = revenue[0].revenue_facts().unwrap();
    assert_eq!((facts.amount_cents, facts.currency.as_str()), (1000, "usd"));
    let (_, _, quota) = server.call("GET", "/api/quota", Some(user), None).await;
    assert_ne!(
        quota["daily"]["limit"],
        json!(5),
        "Pro limits apply: {quota}"
    );
    let metrics = server.call("GET", "/metrics", None, None).await;
    assert_eq!(metrics.0, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn a_forged_webhook_is_refused_and_changes_nothing() {
    let (server, stripe) = with_stripe(Db::sqlite().await).await;
    let user: Uuid = USER.parse().unwrap();
    let body = fixture("events", "03-customer.subscription.updated-pro");
    let forged = signed(&body, "whsec_not_the_secret");
    assert_eq!(
        deliver(&server, &body, &forged).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        deliver(&server, &body, "t=1,v1=00").await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(plan(&server, user).await, "free");
    assert!(
        stripe.received_requests().await.unwrap().is_empty(),
        "nothing was asked of Stripe"
    );
    server.stop().await;
}

#[tokio::test]
async fn without_stripe_keys_billing_routes_are_503() {
    let server = TestServer::start(Db::sqlite().await, Options::api_only()).await;
    let user = Uuid::new_v4();
    for (method, path, body) in [
        ("GET", "/api/billing/subscription", None),
        (
            "POST",
            "/api/stripe/checkout",
            Some(json!({ "plan": "pro", "interval": "monthly" })),
        ),
        ("POST", "/api/stripe/portal", None),
        ("POST", "/api/stripe/webhook", Some(json!({}))),
    ] {
        let (status, _, answer) = server.call(method, path, Some(user), body).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("STRIPE_SECRET_KEY"),
            "{answer}"
        );
    }
    // Everything else works.
    let (status, _, plans) = server.call("GET", "/api/plans", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(plans["plans"].as_array().unwrap().len() >= 3);
    let (status, _, _) = server.call("GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn checkout_answers_the_stripe_url() {
    let (server, stripe) = with_stripe(Db::sqlite().await).await;
    Mock::given(method("POST"))
        .and(path_regex("^/v1/customers$"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(fixture("api", "customer"), "application/json"),
        )
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("^/v1/checkout/sessions$"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("api", "checkout-session"), "application/json"),
        )
        .mount(&stripe)
        .await;
    let user = Uuid::new_v4();
    let (status, _, answer) = server
        .call(
            "POST",
            "/api/stripe/checkout",
            Some(user),
            Some(json!({ "plan": "pro", "interval": "monthly" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(
        answer["url"].as_str().unwrap().starts_with("https://"),
        "{answer}"
    );
    let clicks: Vec<AnalyticsEvent> = server
        .analytics_events()
        .await
        .into_iter()
        .filter(|e| e.event_type == EventType::UpgradeClicked)
        .collect();
    assert_eq!(clicks.len(), 1);
    assert_eq!(clicks[0].user_id, user);
    assert_eq!(clicks[0].properties["plan"], "pro");
    assert_eq!(clicks[0].properties["interval"], "monthly");
    server.stop().await;
}
