//! A signed `customer.subscription.updated` reaches the handler; a forged one is refused
//! with its reason, through the router itself.

use appforge_billing::{WebhookVerifier, sign_payload};
use appforge_core::{Clock, ManualClock, SecretString};
use appforge_example_stripe_webhook::app;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

const SECRET: &str = "whsec_example_5b1f0c";

const EVENT: &str = r#"{"id":"evt_1","object":"event","api_version":"2026-09-30.endive",
"created":1773489600,"data":{"object":{"id":"sub_1","object":"subscription",
"customer":"cus_1","status":"active","cancel_at_period_end":false,"trial_end":null,
"metadata":{},"items":{"object":"list","data":[{"id":"si_1","price":{"id":"price_pro"},
"quantity":3,"current_period_start":1773489600,"current_period_end":1776168000}]}}},
"type":"customer.subscription.updated"}"#;

async fn post(clock: &ManualClock, body: &str, signature: Option<&str>) -> (StatusCode, String) {
    let verifier = WebhookVerifier::builder()
        .secret(SecretString::from(SECRET))
        .clock(clock.shared())
        .build()
        .unwrap();
    let mut request = Request::post("/stripe/webhook");
    if let Some(signature) = signature {
        request = request.header("stripe-signature", signature);
    }
    let response = app(verifier)
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = to_bytes(response.into_body(), 1 << 16).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn a_signed_subscription_update_is_handled() {
    let clock = ManualClock::at("2026-03-14T12:00:00Z".parse().unwrap());
    let header = sign_payload(
        &SecretString::from(SECRET),
        clock.now().timestamp(),
        EVENT.as_bytes(),
    );
    let (status, body) = post(&clock, EVENT, Some(&header)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        "subscription sub_1 of cus_1 is active on price_pro (3 seats)"
    );
}

#[tokio::test]
async fn forged_unsigned_and_replayed_deliveries_are_refused_with_their_reason() {
    let clock = ManualClock::at("2026-03-14T12:00:00Z".parse().unwrap());
    let header = sign_payload(
        &SecretString::from(SECRET),
        clock.now().timestamp(),
        EVENT.as_bytes(),
    );

    let forged = EVENT.replace("\"active\"", "\"canceled\"");
    let (status, body) = post(&clock, &forged, Some(&header)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        "invalid stripe webhook: no signature matches the payload"
    );

    let wrong_secret = sign_payload(
        &SecretString::from("whsec_other"),
        clock.now().timestamp(),
        EVENT.as_bytes(),
    );
    let (status, body) = post(&clock, EVENT, Some(&wrong_secret)).await;
    assert_eq!(
        (status, body.as_str()),
        (
            StatusCode::BAD_REQUEST,
            "invalid stripe webhook: no signature matches the payload"
        )
    );

    let (status, body) = post(&clock, EVENT, None).await;
    assert_eq!(
        (status, body.as_str()),
        (
            StatusCode::BAD_REQUEST,
            "invalid stripe webhook: missing Stripe-Signature header"
        )
    );

    clock.advance(std::time::Duration::from_secs(600));
    let (status, body) = post(&clock, EVENT, Some(&header)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("over the 300 s tolerance"), "{body}");
}
