//! The axum webhook endpoint: status codes for each outcome.

use appforge_billing::{MemoryBillingStore, webhook_handler};
use appforge_quota::{Plan, PlanCatalogue, PlanId};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use crate::support::{Harness, event_fixture, memory_harness, sign};

fn app(h: &Harness<MemoryBillingStore>) -> axum::Router {
    axum::Router::new()
        .route(
            "/api/stripe/webhook",
            axum::routing::post(webhook_handler::<MemoryBillingStore>),
        )
        .with_state(h.billing.clone())
}

async fn post(h: &Harness<MemoryBillingStore>, body: &str, signature: Option<&str>) -> StatusCode {
    let mut request =
        Request::post("/api/stripe/webhook").header("content-type", "application/json");
    if let Some(signature) = signature {
        request = request.header("stripe-signature", signature);
    }
    app(h)
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn the_endpoint_answers_each_outcome() {
    let h = memory_harness();
    let body = event_fixture("03-customer.subscription.updated-pro");
    let header = sign(&h.clock, &body);

    // Forged, unsigned and malformed deliveries: 400.
    assert_eq!(
        post(&h, &body.replace("active", "paused"), Some(&header)).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(post(&h, &body, None).await, StatusCode::BAD_REQUEST);
    assert_eq!(post(&h, &body, Some("t=1")).await, StatusCode::BAD_REQUEST);

    // A failing handler: 500, so that Stripe retries.
    let without_prices = PlanCatalogue::new(
        vec![Plan::free(), Plan::pro(), Plan::team()],
        PlanId::free(),
    )
    .unwrap();
    h.quota.set_catalogue(without_prices);
    assert_eq!(
        post(&h, &body, Some(&header)).await,
        StatusCode::INTERNAL_SERVER_ERROR
    );

    // The retry succeeds; a duplicate and an unknown type are acknowledged.
    h.quota.set_catalogue(crate::support::catalogue());
    assert_eq!(post(&h, &body, Some(&header)).await, StatusCode::OK);
    assert_eq!(post(&h, &body, Some(&header)).await, StatusCode::OK);
    let unknown = event_fixture("unknown-type");
    assert_eq!(
        post(&h, &unknown, Some(&sign(&h.clock, &unknown))).await,
        StatusCode::OK
    );
}
