//! An org's own billing against a Stripe stand-in that keeps the subscription's quantity:
//! the org's checkout creates the org's customer and buys its seats, a subscription event
//! sets the org's plan (its pooled quota) and seats, and `PUT seats` changes the Stripe
//! quantity once, refuses fewer seats than are used and leaves everything as it was when
//! Stripe fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use appforge_billing::{BillingStore, sign_payload};
use appforge_core::SecretString;
use appforge_orgs::{Actor, AuditEntry, AuditQuery, AuditRange, Caller, NewOrg, OrgStore, Role};
use axum::body::Body;
use http::StatusCode;
use parking_lot::Mutex;
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::{Db, Options, TestServer};

const WEBHOOK_SECRET: &str = "whsec_test_4f2d9a7c1e8b6d3f0a5c";
/// The customer, subscription and Team price of the billing crate's recorded fixtures.
const CUSTOMER: &str = "cus_Rq8kYp2Lw3XzNa";
const SUB: &str = "sub_1RqA8mKfT7xYw2Qe3LzN5bVd";
const TEAM_MONTHLY: &str = "price_1RqA2cKfT7xYw2QeT3aMonthly";

fn fixture(kind: &str, name: &str) -> String {
    let path = format!(
        "{}/../../crates/appforge-billing/tests/fixtures/{kind}/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The subscription Stripe holds for the org: Team, `quantity` seats, a current period.
fn subscription(subject: Option<Uuid>, quantity: u64) -> Value {
    let mut sub: Value = serde_json::from_str(&fixture("api", "subscription-active-pro")).unwrap();
    let now = chrono::Utc::now().timestamp();
    let (start, end) = (now - 86_400, now + 29 * 86_400);
    let item = &mut sub["items"]["data"][0];
    for key in ["price", "plan"] {
        item[key]["id"] = json!(TEAM_MONTHLY);
        item[key]["metadata"] = json!({ "appforge_plan": "team" });
    }
    item["quantity"] = json!(quantity);
    item["current_period_start"] = json!(start);
    item["current_period_end"] = json!(end);
    sub["plan"] = item["plan"].clone();
    sub["quantity"] = json!(quantity);
    sub["metadata"] = match subject {
        Some(subject) => json!({ "appforge_user_id": subject.to_string() }),
        None => json!({}),
    };
    sub
}

/// A Stripe that keeps one subscription: `GET` shows it, `POST` sets its quantity (or
/// answers 500 while `failing`).
#[derive(Clone, Default)]
pub(crate) struct StandIn {
    subject: Arc<Mutex<Option<Uuid>>>,
    quantity: Arc<Mutex<u64>>,
    failing: Arc<AtomicBool>,
}

impl StandIn {
    fn answer(&self) -> ResponseTemplate {
        let sub = subscription(*self.subject.lock(), *self.quantity.lock());
        ResponseTemplate::new(200).set_body_json(sub)
    }
}

struct Retrieve(StandIn);

impl Respond for Retrieve {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.0.answer()
    }
}

struct Update(StandIn);

impl Respond for Update {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if self.0.failing.load(Ordering::SeqCst) {
            return ResponseTemplate::new(500).set_body_raw(
                r#"{"error":{"type":"api_error","message":"Something went wrong on Stripe's end"}}"#,
                "application/json",
            );
        }
        if let Some(quantity) = form(request).get("items[0][quantity]") {
            *self.0.quantity.lock() = quantity.parse().unwrap();
        }
        self.0.answer()
    }
}

fn form(request: &Request) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect()
}

fn json_fixture(name: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(fixture("api", name), "application/json")
}

/// A Stripe stand-in for the org routes: customers, checkout and portal sessions, and one
/// subscription that keeps its quantity.
pub(crate) async fn stripe_stand_in() -> (MockServer, StandIn) {
    let server = MockServer::start().await;
    let stand_in = StandIn::default();
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(json_fixture("customer"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(json_fixture("checkout-session"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .respond_with(json_fixture("billing-portal-session"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/subscriptions/{SUB}")))
        .respond_with(Retrieve(stand_in.clone()))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/subscriptions/{SUB}")))
        .respond_with(Update(stand_in.clone()))
        .mount(&server)
        .await;
    (server, stand_in)
}

/// The server settings of a Stripe at `stripe`, with the fixtures' Team price.
pub(crate) fn with_stripe(stripe: &MockServer) -> Options {
    Options {
        env: vec![
            ("STRIPE_SECRET_KEY", "sk_test_51Pz9QeKfT7xYw2Qe".to_owned()),
            ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
            ("STRIPE_API_BASE", stripe.uri()),
            ("STRIPE_PRICE_TEAM", TEAM_MONTHLY.to_owned()),
        ],
        ..Options::api_only()
    }
}

/// Links the org to a Stripe customer, as its first checkout does (for the portal).
pub(crate) async fn link_customer(server: &TestServer, org: Uuid) {
    if let Some(billing) = server.state.billing() {
        billing
            .store()
            .link_customer(CUSTOMER, org, chrono::Utc::now())
            .await
            .unwrap();
    }
}

/// Delivers a signed `customer.subscription.updated` of the stand-in's subscription.
async fn deliver_subscription_update(server: &TestServer, stand_in: &StandIn) {
    let mut event: Value =
        serde_json::from_str(&fixture("events", "07-customer.subscription.updated-team")).unwrap();
    let now = chrono::Utc::now().timestamp();
    event["id"] = json!(format!("evt_org_{}", Uuid::new_v4().simple()));
    event["created"] = json!(now);
    event["data"]["object"] = subscription(*stand_in.subject.lock(), *stand_in.quantity.lock());
    let body = event.to_string();
    let signature = sign_payload(&SecretString::from(WEBHOOK_SECRET), now, body.as_bytes());
    let request = http::Request::builder()
        .method("POST")
        .uri("/api/stripe/webhook")
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(Body::from(body))
        .unwrap();
    assert_eq!(server.send(request).await.status(), StatusCode::OK);
}

/// An org of `owner` with an admin, a member and an open invitation (4 seats used) and
/// `seats` seats (`None`: no limit).
struct Team {
    org: Uuid,
    owner: Uuid,
    admin: Uuid,
    member: Uuid,
}

async fn team(server: &TestServer, seats: Option<u32>) -> Team {
    let orgs = server.state.orgs();
    let owner = Uuid::new_v4();
    let by_owner = Caller::user(owner);
    let slug = format!("team-{}", &Uuid::new_v4().simple().to_string()[..12]);
    let mut new = NewOrg::new("Team", slug);
    if let Some(seats) = seats {
        new = new.seats(seats);
    }
    let org = orgs.create_org(&by_owner, new).await.unwrap().id;
    let (admin, member) = (Uuid::new_v4(), Uuid::new_v4());
    orgs.add_member(&by_owner, org, admin, Role::Admin)
        .await
        .unwrap();
    orgs.add_member(&by_owner, org, member, Role::Member)
        .await
        .unwrap();
    orgs.invite(&by_owner, org, "next@example.com", Role::Member)
        .await
        .unwrap();
    Team {
        org,
        owner,
        admin,
        member,
    }
}

async fn seats_of(server: &TestServer, org: Uuid) -> Option<u32> {
    server
        .state
        .orgs()
        .store()
        .get_org(org)
        .await
        .unwrap()
        .unwrap()
        .seats
}

async fn audit(server: &TestServer, org: Uuid) -> Vec<AuditEntry> {
    server
        .state
        .orgs()
        .store()
        .audit_page(org, &AuditQuery::new(AuditRange::all(), 1000))
        .await
        .unwrap()
}

async fn received(stripe: &MockServer, verb: &str, p: &str) -> Vec<Request> {
    stripe
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == verb && r.url.path() == p)
        .collect()
}

/// Checks the org out on Team and delivers the subscription's event: the org is on Team
/// with `seats` seats at Stripe.
async fn subscribe(server: &TestServer, stand_in: &StandIn, t: &Team, seats: u64) {
    let (status, _, body) = server
        .call(
            "POST",
            &format!("/api/orgs/{}/billing/checkout", t.org),
            Some(t.owner),
            Some(json!({ "plan": "team", "interval": "monthly" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    *stand_in.subject.lock() = Some(t.org);
    *stand_in.quantity.lock() = seats;
    deliver_subscription_update(server, stand_in).await;
}

/// The org's checkout makes the org a Stripe customer (the billing subject is the org id,
/// the email the caller's) and buys its seats; only an owner may; the subscription's event
/// puts the org (its pooled quota) on Team and its seats follow the subscription's quantity.
pub(crate) async fn an_orgs_checkout_and_subscription_set_its_plan_and_seats(db: Db) {
    let (stripe, stand_in) = stripe_stand_in().await;
    let server = TestServer::start(db, with_stripe(&stripe)).await;
    let t = team(&server, Some(5)).await;
    let checkout = format!("/api/orgs/{}/billing/checkout", t.org);
    let body = json!({ "plan": "team", "interval": "monthly" });
    for (who, want) in [
        (t.admin, StatusCode::FORBIDDEN),
        (t.member, StatusCode::FORBIDDEN),
        (Uuid::new_v4(), StatusCode::NOT_FOUND),
    ] {
        let (status, _, answer) = server
            .call("POST", &checkout, Some(who), Some(body.clone()))
            .await;
        assert_eq!(status, want, "{answer}");
    }
    assert!(stripe.received_requests().await.unwrap().is_empty());

    let (status, _, answer) = server
        .call("POST", &checkout, Some(t.owner), Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(
        answer["url"]
            .as_str()
            .unwrap()
            .starts_with("https://checkout.stripe.com/")
    );
    let customers = received(&stripe, "POST", "/v1/customers").await;
    assert_eq!(customers.len(), 1);
    let customer = form(&customers[0]);
    assert_eq!(customer["metadata[appforge_user_id]"], t.org.to_string());
    assert_eq!(customer["email"], "someone@example.com");
    let sessions = received(&stripe, "POST", "/v1/checkout/sessions").await;
    assert_eq!(sessions.len(), 1);
    let session = form(&sessions[0]);
    assert_eq!(session["line_items[0][quantity]"], "5", "the org's seats");
    assert_eq!(session["line_items[0][price]"], TEAM_MONTHLY);
    assert_eq!(session["client_reference_id"], t.org.to_string());
    assert_eq!(session["customer"], CUSTOMER);
    let billing = server.state.billing().unwrap();
    assert_eq!(
        billing
            .store()
            .customer_of_user(t.org)
            .await
            .unwrap()
            .as_deref(),
        Some(CUSTOMER)
    );
    assert_eq!(
        billing.store().customer_of_user(t.owner).await.unwrap(),
        None,
        "the owner's own account has no customer"
    );
    let last = audit(&server, t.org).await.pop().unwrap();
    assert_eq!(
        (last.action.as_str(), last.actor),
        ("billing.checkout", Actor::User(t.owner))
    );
    assert_eq!(last.detail["seats"], 5);

    // Paid for 7 seats in the end (the quantity changed on Stripe's page).
    *stand_in.subject.lock() = Some(t.org);
    *stand_in.quantity.lock() = 7;
    deliver_subscription_update(&server, &stand_in).await;
    let plan = server.state.quota().plan_of(t.org).await.unwrap();
    assert_eq!(plan.id.as_str(), "team");
    let owners_plan = server.state.quota().plan_of(t.owner).await.unwrap();
    assert_eq!(
        owners_plan.id.as_str(),
        "free",
        "the org pays, not the owner"
    );
    assert_eq!(seats_of(&server, t.org).await, Some(7));
    let last = audit(&server, t.org).await.pop().unwrap();
    assert_eq!(
        (last.action.as_str(), last.actor),
        ("billing.seats", Actor::System)
    );
    assert_eq!(
        (last.detail["from"].clone(), last.detail["to"].clone()),
        (json!(5), json!(7))
    );

    // The same event again changes nothing and records nothing.
    let entries = audit(&server, t.org).await.len();
    deliver_subscription_update(&server, &stand_in).await;
    assert_eq!(audit(&server, t.org).await.len(), entries);

    // Every member sees what the org pays for; the portal is the owner's.
    let (status, _, view) = server
        .call(
            "GET",
            &format!("/api/orgs/{}/billing", t.org),
            Some(t.member),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["plan"], "team");
    assert_eq!(view["seats"], json!({ "used": 4, "total": 7 }));
    assert_eq!(view["subscription"]["seats"], 7);
    assert_eq!(view["subscription"]["status"], "active");
    let portal = format!("/api/orgs/{}/billing/portal", t.org);
    let (status, _, _) = server.call("POST", &portal, Some(t.admin), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, answer) = server.call("POST", &portal, Some(t.owner), None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let portals = received(&stripe, "POST", "/v1/billing_portal/sessions").await;
    assert_eq!(portals.len(), 1);
    assert_eq!(form(&portals[0])["customer"], CUSTOMER);
    assert_eq!(
        audit(&server, t.org).await.pop().unwrap().action,
        "billing.portal"
    );

    // An org without a seat limit buys the seats it uses: 4.
    let open = team(&server, None).await;
    let (status, _, _) = server
        .call(
            "POST",
            &format!("/api/orgs/{}/billing/checkout", open.org),
            Some(open.owner),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let sessions = received(&stripe, "POST", "/v1/checkout/sessions").await;
    assert_eq!(form(&sessions[1])["line_items[0][quantity]"], "4");
    server.stop().await;
}

/// `PUT seats` on a subscribed org changes the Stripe quantity once (the same seats again
/// send nothing), refuses fewer seats than members plus open invitations, and when Stripe
/// fails answers 502 with the org's seats and the subscription as they were.
pub(crate) async fn changing_an_orgs_seats_changes_its_subscription_once(db: Db) {
    let (stripe, stand_in) = stripe_stand_in().await;
    let server = TestServer::start(db, with_stripe(&stripe)).await;
    let t = team(&server, Some(5)).await;
    subscribe(&server, &stand_in, &t, 5).await;
    assert_eq!(seats_of(&server, t.org).await, Some(5));
    let seats = format!("/api/orgs/{}/seats", t.org);
    let sub_path = format!("/v1/subscriptions/{SUB}");
    assert!(received(&stripe, "POST", &sub_path).await.is_empty());

    let (status, _, _) = server
        .call("PUT", &seats, Some(t.admin), Some(json!({ "seats": 8 })))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _, answer) = server
        .call("PUT", &seats, Some(t.owner), Some(json!({ "seats": 8 })))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["seats"], json!({ "used": 4, "total": 8 }));
    let updates = received(&stripe, "POST", &sub_path).await;
    assert_eq!(updates.len(), 1);
    let update = form(&updates[0]);
    assert_eq!(update["items[0][quantity]"], "8");
    assert_eq!(update["proration_behavior"], "create_prorations");
    assert!(
        updates[0].headers.contains_key("idempotency-key"),
        "a retry is deduplicated by Stripe"
    );
    assert_eq!(*stand_in.quantity.lock(), 8);
    assert_eq!(seats_of(&server, t.org).await, Some(8));
    let last = audit(&server, t.org).await.pop().unwrap();
    assert_eq!(
        (last.action.as_str(), last.actor),
        ("billing.seats", Actor::User(t.owner))
    );
    assert_eq!(last.detail, json!({ "from": 5, "to": 8 }));

    // The same seats again: Stripe already has them, nothing is sent or recorded.
    let entries = audit(&server, t.org).await.len();
    let (status, _, _) = server
        .call("PUT", &seats, Some(t.owner), Some(json!({ "seats": 8 })))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(received(&stripe, "POST", &sub_path).await.len(), 1);
    assert_eq!(audit(&server, t.org).await.len(), entries);

    // Fewer than the 4 used.
    let (status, _, answer) = server
        .call("PUT", &seats, Some(t.owner), Some(json!({ "seats": 3 })))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"], "seats_in_use", "{answer}");
    assert_eq!(received(&stripe, "POST", &sub_path).await.len(), 1);
    assert_eq!(seats_of(&server, t.org).await, Some(8));

    // Stripe fails: nothing changes on either side.
    stand_in.failing.store(true, Ordering::SeqCst);
    let (status, _, answer) = server
        .call("PUT", &seats, Some(t.owner), Some(json!({ "seats": 10 })))
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{answer}");
    assert_eq!(answer["error"], "stripe_failed", "{answer}");
    assert_eq!(seats_of(&server, t.org).await, Some(8));
    assert_eq!(*stand_in.quantity.lock(), 8);
    assert_eq!(audit(&server, t.org).await.len(), entries);
    assert_eq!(
        server
            .state
            .quota()
            .plan_of(t.org)
            .await
            .unwrap()
            .id
            .as_str(),
        "team"
    );
    server.stop().await;
}
