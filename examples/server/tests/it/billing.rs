//! Stripe through the server, on SQLite and (with `DATABASE_URL`) on PostgreSQL: signed
//! webhooks change plans, duplicates are acknowledged once, forged ones change nothing, the
//! periodic pass enforces an ended grace period, and without Stripe keys the billing routes
//! answer 503.

use appforge_analytics::{AnalyticsEvent, EventType};
use appforge_billing::sign_payload;
use appforge_core::SecretString;
use axum::body::Body;
use http::StatusCode;
use serde_json::json;
use uuid::Uuid;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{Db, Options, TestServer, eventually};

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

pub(crate) async fn a_signed_webhook_upgrades_the_plan(db: Db) {
    let (server, _stripe) = with_stripe(db).await;
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
    crate::support::metrics_text(&server).await;
    server.stop().await;
}

pub(crate) async fn a_forged_webhook_is_refused_and_changes_nothing(db: Db) {
    let (server, stripe) = with_stripe(db).await;
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

pub(crate) async fn without_stripe_keys_billing_routes_are_503(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
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

pub(crate) async fn checkout_answers_the_stripe_url(db: Db) {
    let (server, stripe) = with_stripe(db).await;
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

/// Moves the deadline of every past-due subscription an hour into the past: the grace period
/// ran out (the server's billing reads the system clock, so time is moved in the data).
async fn grace_period_runs_out(server: &TestServer) {
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    let sql = "UPDATE subscriptions SET grace_until = $1 WHERE past_due";
    let updated = match server.state.db() {
        appforge_server::Database::Sqlite(pool) => sqlx::query(sql)
            .bind(appforge_core::db::encode_time(past))
            .execute(pool)
            .await
            .unwrap()
            .rows_affected(),
        appforge_server::Database::Postgres(pool) => sqlx::query(sql)
            .bind(past)
            .execute(pool)
            .await
            .unwrap()
            .rows_affected(),
    };
    assert_eq!(updated, 1);
}

pub(crate) async fn an_ended_grace_period_is_enforced_by_the_periodic_pass(db: Db) {
    let (server, _stripe) = with_stripe(db).await;
    let user: Uuid = USER.parse().unwrap();
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
    // The renewal payment fails now: the user keeps Pro for the grace period.
    let failed = fixture("events", "05-invoice.payment_failed").replace(
        "\"created\": 1775005200",
        &format!("\"created\": {}", chrono::Utc::now().timestamp()),
    );
    assert_eq!(
        deliver(&server, &failed, &signed(&failed, WEBHOOK_SECRET)).await,
        StatusCode::OK
    );
    assert_eq!(plan(&server, user).await, "pro");
    let report = appforge_server::reconcile::billing_pass(&server.state)
        .await
        .unwrap();
    assert_eq!((report.grace_enforced, report.errors), (0, 0));
    assert_eq!(plan(&server, user).await, "pro");

    // Four days later the deadline has passed: the pass each process runs downgrades.
    grace_period_runs_out(&server).await;
    let pass = appforge_server::reconcile::spawn_billing_pass(
        &server.state,
        std::time::Duration::from_secs(3600),
    );
    eventually("the periodic pass downgrades the user", || async {
        plan(&server, user).await == "free"
    })
    .await;
    // The loop ends at shutdown, once its pass (which also records the enforcement) is done.
    server.state.shutdown_token().cancel();
    pass.await.unwrap();
    let report = appforge_server::reconcile::billing_pass(&server.state)
        .await
        .unwrap();
    assert_eq!(report.grace_enforced, 0, "enforced once");
    server.stop().await;
}

/// Instantiates each scenario on SQLite and on PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::support::Db::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                #[cfg_attr(not(appforge_pg), ignore = "needs DATABASE_URL (PostgreSQL)")]
                async fn $name() {
                    super::$name(crate::support::Db::postgres().await).await;
                }
            )*
        }
    };
}

on_both_backends!(
    a_signed_webhook_upgrades_the_plan,
    a_forged_webhook_is_refused_and_changes_nothing,
    without_stripe_keys_billing_routes_are_503,
    checkout_answers_the_stripe_url,
    an_ended_grace_period_is_enforced_by_the_periodic_pass,
);
