//! The order test: a whole subscription lifecycle delivered in many random orders, with
//! duplicates, converges to one final state: with Stripe answering re-fetches and with
//! Stripe unreachable.

use appforge_billing::{BillingStore, StripeApi, WebhookOutcome};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{CUSTOMER, Harness, LIFECYCLE, SUB, TEAM_MONTHLY, api_fixture, harness, user};

/// What must be equal after any order (times and freshness versions aside).
#[derive(Debug, PartialEq, Eq)]
struct Final {
    subscription: (
        String,
        Option<uuid::Uuid>,
        String,
        String,
        Option<String>,
        u64,
        bool,
        bool,
    ),
    period: (Option<String>, Option<String>),
    invoices: Vec<(String, String, i64)>,
    customer_user: Option<uuid::Uuid>,
    quota_plan: String,
    processed: usize,
}

async fn final_state<S: BillingStore>(h: &Harness<S>) -> Final {
    let store = h.billing.store();
    let s = store
        .subscription(SUB)
        .await
        .unwrap()
        .expect("subscription stored");
    let mut invoices = Vec::new();
    for id in ["in_1RqA8nKfT7xYw2QeInv00001", "in_1RrB9pKfT7xYw2QeInv00002"] {
        let i = store.invoice(id).await.unwrap().expect("invoice stored");
        invoices.push((i.stripe_invoice_id, i.status, i.amount_paid));
    }
    let mut processed = 0;
    for name in LIFECYCLE {
        let body = crate::support::event_fixture(name);
        let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        if store.event(&id).await.unwrap().is_some() {
            processed += 1;
        }
    }
    Final {
        subscription: (
            s.stripe_customer_id,
            s.user_id,
            s.plan,
            s.status,
            s.price_id,
            s.quantity,
            s.cancel_at_period_end,
            s.past_due,
        ),
        period: (
            s.current_period_start.map(|t| t.to_rfc3339()),
            s.current_period_end.map(|t| t.to_rfc3339()),
        ),
        invoices,
        customer_user: store.user_of_customer(CUSTOMER).await.unwrap(),
        quota_plan: h.quota_plan().await,
        processed,
    }
}

fn expected() -> Final {
    Final {
        subscription: (
            CUSTOMER.into(),
            Some(user()),
            "team".into(),
            "canceled".into(),
            Some(TEAM_MONTHLY.into()),
            3,
            true,
            false,
        ),
        period: (
            Some("2026-04-01T00:00:00+00:00".into()),
            Some("2026-05-01T00:00:00+00:00".into()),
        ),
        invoices: vec![
            ("in_1RqA8nKfT7xYw2QeInv00001".into(), "paid".into(), 1000),
            ("in_1RrB9pKfT7xYw2QeInv00002".into(), "paid".into(), 1000),
        ],
        customer_user: Some(user()),
        quota_plan: "free".into(),
        processed: 9,
    }
}

/// The lifecycle shuffled by `seed`, with three duplicates.
fn order(seed: u64) -> Vec<&'static str> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut events: Vec<&str> = LIFECYCLE.to_vec();
    for _ in 0..3 {
        events.push(LIFECYCLE.choose(&mut rng).copied().unwrap());
    }
    events.shuffle(&mut rng);
    events
}

async fn run<S: BillingStore>(h: Harness<S>, seed: u64) -> Final {
    let events = order(seed);
    let mut duplicates = 0;
    for name in &events {
        match h
            .deliver(name)
            .await
            .unwrap_or_else(|e| panic!("seed {seed}, {name}: {e}"))
        {
            WebhookOutcome::Duplicate { .. } => duplicates += 1,
            WebhookOutcome::Processed { .. } => {}
            other => panic!("seed {seed}, {name}: {other:?}"),
        }
    }
    assert_eq!(duplicates, events.len() - LIFECYCLE.len(), "seed {seed}");
    final_state(&h).await
}

async fn stripe_answering() -> (MockServer, StripeApi) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/subscriptions/{SUB}")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(api_fixture("subscription-canceled"), "application/json"),
        )
        .mount(&server)
        .await;
    let api = crate::support::stripe_at(&server.uri());
    (server, api)
}

async fn stripe_unreachable() -> (MockServer, StripeApi) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).set_body_raw(
            r#"{"error":{"type":"api_error","message":"Stripe is temporarily unavailable"}}"#,
            "application/json",
        ))
        .mount(&server)
        .await;
    let api = crate::support::stripe_at(&server.uri());
    (server, api)
}

const SEEDS: u64 = 40;

#[tokio::test]
async fn random_orders_converge_with_stripe_answering() {
    let (server, api) = stripe_answering().await;
    for seed in 0..SEEDS {
        let h = harness(
            appforge_billing::MemoryBillingStore::new(),
            Some(api.clone()),
        );
        assert_eq!(run(h, seed).await, expected(), "seed {seed}");
    }
    assert!(!server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn random_orders_converge_with_stripe_unreachable() {
    let (server, api) = stripe_unreachable().await;
    for seed in 0..SEEDS {
        let h = harness(
            appforge_billing::MemoryBillingStore::new(),
            Some(api.clone()),
        );
        assert_eq!(run(h, seed).await, expected(), "seed {seed}");
    }
    assert!(!server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn random_orders_converge_without_a_stripe_client() {
    for seed in 0..SEEDS {
        let h = harness(appforge_billing::MemoryBillingStore::new(), None);
        assert_eq!(run(h, seed).await, expected(), "seed {seed}");
    }
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn random_orders_converge_on_sqlite_both_ways() {
    let (_answering, online) = stripe_answering().await;
    let (_down, offline) = stripe_unreachable().await;
    for seed in 0..8 {
        for api in [&online, &offline] {
            let file = appforge_testing::TempSqlite::new();
            let store = appforge_billing::SqliteBillingStore::connect(&file.url())
                .await
                .unwrap();
            store.migrate().await.unwrap();
            let h = harness(store, Some(api.clone()));
            assert_eq!(run(h, seed).await, expected(), "seed {seed}");
        }
    }
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn random_orders_converge_on_postgres_both_ways() {
    if appforge_testing::TestDatabase::create_or_skip()
        .await
        .is_none()
    {
        return;
    }
    let (_answering, online) = stripe_answering().await;
    let (_down, offline) = stripe_unreachable().await;
    for seed in 0..4 {
        for api in [&online, &offline] {
            let db = appforge_testing::TestDatabase::create().await;
            let store = appforge_billing::PgBillingStore::new(db.pool().await);
            store.migrate().await.unwrap();
            let h = harness(store, Some(api.clone()));
            assert_eq!(run(h, seed).await, expected(), "seed {seed}");
        }
    }
}

#[tokio::test]
async fn a_plan_sync_notice_carries_the_subscription_quantity() {
    let h = harness(appforge_billing::MemoryBillingStore::new(), None);
    let mut notices = h.billing.notices();
    let mut synced = Vec::new();
    for name in [
        "01-checkout.session.completed",
        "03-customer.subscription.updated-pro",
        "07-customer.subscription.updated-team",
        "09-customer.subscription.deleted",
    ] {
        h.deliver(name).await.unwrap();
        while let Ok(notice) = notices.try_recv() {
            if let appforge_billing::BillingNotice::PlanSynced {
                user,
                plan,
                quantity,
                ..
            } = notice
            {
                synced.push((user, plan, quantity));
            }
        }
    }
    assert_eq!(
        synced,
        [
            (user(), "pro".to_owned(), Some(1)),
            (user(), "team".to_owned(), Some(3)),
            (user(), "free".to_owned(), None),
        ]
    );
}
