//! The billing and pricing pages with a Stripe subscription, against a Stripe stand-in.

use std::time::Duration;

use appforge_core::SecretString;
use appforge_server::JwtKeys;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{SECRET, in_chromium, start_server};

const WEBHOOK_SECRET: &str = "whsec_browser_7c1e8b6d3f0a5c4f2d9a";
/// The user and price the billing crate's recorded fixtures carry.
const STRIPE_USER: &str = "7d6f0b4e-3a52-4c1e-9f0a-2b8e5d1c9a41";
const PRO_MONTHLY: &str = "price_1RqA2bKfT7xYw2QeP7oMonthly";

fn fixture(kind: &str, name: &str) -> String {
    let path = format!(
        "{}/../../crates/appforge-billing/tests/fixtures/{kind}/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A Stripe stand-in: the subscription (Pro, cancelling at the period's end) and a customer
/// portal session whose page is the stand-in's own, so the browser never leaves this machine.
async fn stripe_stand_in() -> wiremock::MockServer {
    use wiremock::matchers::{method, path, path_regex};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let stripe = MockServer::start().await;
    let mut subscription: Value =
        serde_json::from_str(&fixture("api", "subscription-active-pro")).unwrap();
    subscription["cancel_at_period_end"] = json!(true);
    // The recorded object's period is in the past; a live one runs around now.
    let now = chrono::Utc::now().timestamp();
    for item in subscription["items"]["data"].as_array_mut().unwrap() {
        item["current_period_start"] = json!(now - 10 * 86_400);
        item["current_period_end"] = json!(now + 20 * 86_400);
    }
    Mock::given(method("GET"))
        .and(path_regex("^/v1/subscriptions/.+"))
        .respond_with(ResponseTemplate::new(200).set_body_json(subscription))
        .mount(&stripe)
        .await;
    let mut portal: Value =
        serde_json::from_str(&fixture("api", "billing-portal-session")).unwrap();
    portal["url"] = json!(format!("{}/portal/session", stripe.uri()));
    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(portal))
        .mount(&stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/portal/session"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            "<!doctype html><title>Customer portal</title><h1>Customer portal</h1>",
            "text/html",
        ))
        .mount(&stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/favicon.ico"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&stripe)
        .await;
    stripe
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(appforge_browser),
    ignore = "needs chromium and chromedriver (/usr/bin/chromedriver or CHROMEDRIVER)"
)]
async fn the_billing_pages_show_a_stripe_subscription_in_chromium() {
    let stripe = stripe_stand_in().await;
    let dir = tempfile::tempdir().unwrap();
    let (base, stop) = start_server(
        &dir,
        &[
            ("STRIPE_SECRET_KEY", "sk_test_51Pz9QeKfT7xYw2Qe".to_owned()),
            ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
            ("STRIPE_API_BASE", stripe.uri()),
            ("STRIPE_PRICE_PRO", PRO_MONTHLY.to_owned()),
        ],
    )
    .await;
    // Stripe's deliveries: the checkout, the subscription, then a renewal payment that failed
    // just now (its grace period runs from the event's time).
    let http = reqwest::Client::new();
    for name in [
        "01-checkout.session.completed",
        "03-customer.subscription.updated-pro",
        "05-invoice.payment_failed",
    ] {
        let mut event: Value = serde_json::from_str(&fixture("events", name)).unwrap();
        if name.ends_with("payment_failed") {
            event["created"] = json!(chrono::Utc::now().timestamp());
        }
        let body = event.to_string();
        let signature = appforge_billing::sign_payload(
            &SecretString::from(WEBHOOK_SECRET),
            chrono::Utc::now().timestamp(),
            body.as_bytes(),
        );
        let answer = http
            .post(format!("{base}/api/stripe/webhook"))
            .header("stripe-signature", signature)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{name}");
    }
    let user: Uuid = STRIPE_USER.parse().unwrap();
    let token = JwtKeys::new(&SecretString::from(SECRET)).issue(
        user,
        Some("subscriber@example.com"),
        Duration::from_secs(3600),
    );
    let portal_page = format!("{}/portal/session", stripe.uri());
    in_chromium(&base, async |browser| {
        browser.goto("/account/billing").await;
        browser.sign_in(&token).await;
        // Plan, status, period end and renewal, with the past-due warning.
        browser
            .until(
                "the subscription is shown",
                "return document.querySelectorAll('#subscription dt').length >= 4",
            )
            .await;
        let details = browser.find("#subscription").await.text().await.unwrap();
        for expected in [
            "pro",
            "Current period ends",
            "Cancels at the end of the period",
        ] {
            assert!(details.contains(expected), "{expected:?} in {details}");
        }
        let warning = browser
            .find("#past-due:not([hidden])")
            .await
            .text()
            .await
            .unwrap();
        assert!(warning.contains("last payment failed"), "{warning}");
        browser.screenshot("20-billing-past-due").await;
        browser.assert_clean("billing with Stripe", &[]).await;

        // Pricing marks the Pro plan as the current one.
        browser.goto("/pricing").await;
        let current = browser.find("#plans tr[aria-current=true]").await;
        assert_eq!(
            current.attr("data-plan").await.unwrap().as_deref(),
            Some("pro")
        );
        browser.screenshot("21-pricing-pro").await;
        browser.assert_clean("pricing on Pro", &[]).await;

        // The portal button opens the customer portal session Stripe answered.
        browser.goto("/account/billing").await;
        browser.find("#subscription dt").await;
        browser.find("#portal").await.click().await.unwrap();
        browser
            .until(
                "the customer portal opens",
                &format!("return location.href === {portal_page:?}"),
            )
            .await;
    })
    .await;
    stop.cancel();
}
