//! Stripe calls against a wiremock Stripe answering recorded JSON.

use appforge_billing::{BillingStore, CancelMode, CheckoutRequest, Interval, MemoryBillingStore};
use wiremock::matchers::{body_string_contains, header_exists, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{CUSTOMER, SUB, TEAM_MONTHLY, api_fixture, harness, stripe_at, user};

fn json(name: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(api_fixture(name), "application/json")
}

async fn server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .and(header_exists("idempotency-key"))
        .respond_with(json("customer"))
        .expect(0..=1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .and(header_exists("idempotency-key"))
        .respond_with(json("checkout-session"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .and(header_exists("idempotency-key"))
        .respond_with(json("billing-portal-session"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/subscriptions/{SUB}")))
        .respond_with(json("subscription-active-pro"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/subscriptions/{SUB}")))
        .and(header_exists("idempotency-key"))
        .respond_with(json("subscription-active-pro"))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/subscriptions/{SUB}")))
        .and(header_exists("idempotency-key"))
        .respond_with(json("subscription-canceled"))
        .mount(&server)
        .await;
    server
}

fn form(req: &wiremock::Request) -> String {
    let raw = String::from_utf8(req.body.clone()).unwrap();
    url_decode(&raw)
}

fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

async fn requests(server: &MockServer, verb: &str, p: &str) -> Vec<wiremock::Request> {
    server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == verb && r.url.path() == p)
        .collect()
}

#[tokio::test]
async fn checkout_creates_a_customer_once_and_a_session_for_the_plan() {
    let server = server().await;
    let h = harness(MemoryBillingStore::new(), Some(stripe_at(&server.uri())));
    let request = CheckoutRequest {
        plan: "team".into(),
        interval: Interval::Monthly,
        seats: 3,
        success_url: "https://app.example.com/billing/success".into(),
        cancel_url: "https://app.example.com/pricing".into(),
        email: Some("ada@example.com".into()),
    };
    let session = h.billing.checkout(user(), &request).await.unwrap();
    assert!(session.url.starts_with("https://checkout.stripe.com/"));
    // A second checkout reuses the linked customer (the customer mock expects one call).
    h.billing.checkout(user(), &request).await.unwrap();
    assert_eq!(
        h.billing
            .store()
            .customer_of_user(user())
            .await
            .unwrap()
            .as_deref(),
        Some(CUSTOMER)
    );

    let customers = requests(&server, "POST", "/v1/customers").await;
    assert_eq!(customers.len(), 1, "one customer per user");
    let body = form(&customers[0]);
    assert!(
        body.contains(&format!("metadata[appforge_user_id]={}", user())),
        "{body}"
    );
    assert!(body.contains("email=ada@example.com"), "{body}");
    assert_eq!(
        customers[0]
            .headers
            .get("idempotency-key")
            .unwrap()
            .to_str()
            .unwrap(),
        format!("appforge-customer-{}", user())
    );

    let sessions = requests(&server, "POST", "/v1/checkout/sessions").await;
    assert_eq!(sessions.len(), 2);
    let body = form(&sessions[0]);
    for part in [
        "mode=subscription".to_owned(),
        format!("line_items[0][price]={TEAM_MONTHLY}"),
        "line_items[0][quantity]=3".to_owned(),
        format!("client_reference_id={}", user()),
        format!("customer={CUSTOMER}"),
        "success_url=https://app.example.com/billing/success".to_owned(),
        "cancel_url=https://app.example.com/pricing".to_owned(),
        format!("subscription_data[metadata][appforge_user_id]={}", user()),
    ] {
        assert!(body.contains(&part), "{part} not in {body}");
    }
    let keys: Vec<_> = sessions
        .iter()
        .map(|r| {
            r.headers
                .get("idempotency-key")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_ne!(keys[0], keys[1], "each checkout is its own request");
}

#[tokio::test]
async fn checkout_of_a_plan_without_that_price_is_refused() {
    let server = server().await;
    let h = harness(MemoryBillingStore::new(), Some(stripe_at(&server.uri())));
    let request = CheckoutRequest {
        plan: "pro".into(),
        interval: Interval::Yearly,
        seats: 1,
        success_url: "https://a/s".into(),
        cancel_url: "https://a/c".into(),
        email: None,
    };
    let err = h.billing.checkout(user(), &request).await.unwrap_err();
    assert!(
        matches!(err, appforge_billing::Error::NoPrice { .. }),
        "{err}"
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn portal_cancel_and_plan_changes_call_stripe() {
    let server = server().await;
    let h = harness(MemoryBillingStore::new(), Some(stripe_at(&server.uri())));
    // Without a customer there is no portal.
    let err = h.billing.portal(user(), "https://a/r").await.unwrap_err();
    assert!(matches!(err, appforge_billing::Error::NoCustomer(_)));

    h.clock.set("2026-04-10T00:00:00Z".parse().unwrap());
    h.deliver("01-checkout.session.completed").await.unwrap();
    h.deliver("03-customer.subscription.updated-pro")
        .await
        .unwrap();

    let portal = h
        .billing
        .portal(user(), "https://app.example.com/account/billing")
        .await
        .unwrap();
    assert!(portal.url.starts_with("https://billing.stripe.com/"));
    let body = form(&requests(&server, "POST", "/v1/billing_portal/sessions").await[0]);
    assert!(body.contains(&format!("customer={CUSTOMER}")), "{body}");

    h.billing
        .change_plan(user(), "team", Interval::Monthly)
        .await
        .unwrap();
    h.billing.change_seats(user(), 5).await.unwrap();
    h.billing
        .cancel(user(), CancelMode::AtPeriodEnd)
        .await
        .unwrap();
    h.billing.cancel(user(), CancelMode::Now).await.unwrap();

    let updates = requests(&server, "POST", &format!("/v1/subscriptions/{SUB}")).await;
    assert_eq!(updates.len(), 3);
    let change = form(&updates[0]);
    assert!(
        change.contains("items[0][id]=si_RqA8mYw2QeItem01"),
        "{change}"
    );
    assert!(
        change.contains(&format!("items[0][price]={TEAM_MONTHLY}")),
        "{change}"
    );
    assert!(
        change.contains("proration_behavior=create_prorations"),
        "{change}"
    );
    let seats = form(&updates[1]);
    assert!(seats.contains("items[0][quantity]=5"), "{seats}");
    assert!(!seats.contains("items[0][price]"), "{seats}");
    assert!(form(&updates[2]).contains("cancel_at_period_end=true"));
    assert_eq!(
        requests(&server, "DELETE", &format!("/v1/subscriptions/{SUB}"))
            .await
            .len(),
        1
    );
    for r in server.received_requests().await.unwrap() {
        if r.method.as_str() != "GET" {
            assert!(
                r.headers.contains_key("idempotency-key"),
                "{} {}",
                r.method,
                r.url
            );
        }
    }
}

#[tokio::test]
async fn debug_output_never_shows_the_api_key() {
    let api = stripe_at("http://127.0.0.1:9");
    let shown = format!("{api:?}");
    assert!(!shown.contains("sk_test"), "{shown}");
}

#[tokio::test]
async fn a_stripe_error_is_reported_with_its_status() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .and(body_string_contains("metadata"))
        .respond_with(ResponseTemplate::new(400).set_body_raw(
            r#"{"error":{"type":"invalid_request_error","message":"Invalid email address: nope"}}"#,
            "application/json",
        ))
        .mount(&server)
        .await;
    let api = stripe_at(&server.uri());
    let err = api.create_customer(user(), Some("nope")).await.unwrap_err();
    assert!(!err.is_retryable());
    assert_eq!(
        err.to_string(),
        "stripe create customer failed with status 400: Invalid email address: nope"
    );
}

fn idempotency_key(r: &wiremock::Request) -> String {
    r.headers
        .get("idempotency-key")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_seat_change_to_the_live_quantity_sends_nothing() {
    let server = server().await;
    let h = harness(MemoryBillingStore::new(), Some(stripe_at(&server.uri())));
    h.clock.set("2026-04-10T00:00:00Z".parse().unwrap());
    h.deliver("01-checkout.session.completed").await.unwrap();
    h.deliver("03-customer.subscription.updated-pro")
        .await
        .unwrap();

    // Stripe's live item has quantity 1 (the fixture): setting 1 reads it and sends nothing.
    let sub_path = format!("/v1/subscriptions/{SUB}");
    let reads = requests(&server, "GET", &sub_path).await.len();
    h.billing.change_seats(user(), 1).await.unwrap();
    assert!(requests(&server, "POST", &sub_path).await.is_empty());
    assert_eq!(requests(&server, "GET", &sub_path).await.len(), reads + 1);

    let err = h.billing.change_seats(user(), 0).await.unwrap_err();
    assert!(matches!(err, appforge_billing::Error::Config(_)), "{err}");
    assert!(requests(&server, "POST", &sub_path).await.is_empty());
}

#[tokio::test]
async fn a_retried_seat_change_carries_the_same_idempotency_key() {
    let server = server().await;
    let h = harness(MemoryBillingStore::new(), Some(stripe_at(&server.uri())));
    h.clock.set("2026-04-10T00:00:00Z".parse().unwrap());
    h.deliver("01-checkout.session.completed").await.unwrap();
    h.deliver("03-customer.subscription.updated-pro")
        .await
        .unwrap();
    let version = h
        .billing
        .store()
        .subscription(SUB)
        .await
        .unwrap()
        .unwrap()
        .synced_version;

    // The stand-in keeps answering quantity 1, as Stripe would while the first request is
    // still in flight (or lost on the way back): the retry is the same request to Stripe.
    h.billing.change_seats(user(), 4).await.unwrap();
    h.billing.change_seats(user(), 4).await.unwrap();
    h.billing.change_seats(user(), 5).await.unwrap();
    let updates = requests(&server, "POST", &format!("/v1/subscriptions/{SUB}")).await;
    assert_eq!(updates.len(), 3);
    let keys: Vec<String> = updates.iter().map(idempotency_key).collect();
    assert_eq!(
        keys[0],
        format!("appforge-seats-{SUB}-si_RqA8mYw2QeItem01-4-v{version}")
    );
    assert_eq!(keys[0], keys[1], "a retry is deduplicated by Stripe");
    assert_ne!(keys[0], keys[2], "another quantity is another change");
    for update in &updates[..2] {
        let body = form(update);
        assert!(body.contains("items[0][quantity]=4"), "{body}");
        assert!(
            body.contains("proration_behavior=create_prorations"),
            "{body}"
        );
    }

    // Once the change's own event is handled (a newer copy of the subscription), a later
    // change to the same quantity is a new change with a new key.
    h.clock.set("2026-04-20T00:00:00Z".parse().unwrap());
    h.deliver("07-customer.subscription.updated-team")
        .await
        .unwrap();
    h.billing.change_seats(user(), 4).await.unwrap();
    let updates = requests(&server, "POST", &format!("/v1/subscriptions/{SUB}")).await;
    assert_eq!(updates.len(), 4);
    assert_ne!(idempotency_key(&updates[3]), keys[0]);
}

#[tokio::test]
async fn a_seat_change_stripe_refuses_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/subscriptions/{SUB}")))
        .respond_with(json("subscription-active-pro"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/subscriptions/{SUB}")))
        .respond_with(ResponseTemplate::new(500).set_body_raw(
            r#"{"error":{"type":"api_error","message":"Something went wrong"}}"#,
            "application/json",
        ))
        .mount(&server)
        .await;
    let h = harness(MemoryBillingStore::new(), Some(stripe_at(&server.uri())));
    h.clock.set("2026-04-10T00:00:00Z".parse().unwrap());
    h.deliver("01-checkout.session.completed").await.unwrap();
    h.deliver("03-customer.subscription.updated-pro")
        .await
        .unwrap();
    let err = h.billing.change_seats(user(), 4).await.unwrap_err();
    assert!(
        matches!(err, appforge_billing::Error::Stripe { .. }),
        "{err}"
    );
}
