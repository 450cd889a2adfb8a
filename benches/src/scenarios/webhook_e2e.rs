//! `webhook-e2e`: the full handling path of distinct events on a real database.

use std::sync::Arc;
use std::time::Instant;

use appforge_billing::{AnyBillingStore, Billing, BillingStore, WebhookVerifier, sign_payload};
use appforge_core::{Clock, SecretString, SystemClock};
use appforge_quota::{MemoryUsageStore, Plan, PlanCatalogue, PlanId, Quota};

use crate::report::Report;

const TEMPLATE: &str = include_str!("../../fixtures/customer.subscription.updated.json");
const PRO: &str = "price_1RqA2bKfT7xYw2QeP7oMonthly";
const TEAM: &str = "price_1RqA2cKfT7xYw2QeT3aMonthly";
const TEMPLATE_SUB: &str = "sub_1RqA8mKfT7xYw2Qe3LzN5bVd";
const TEMPLATE_EVENT: &str = "evt_1RrE3dKfT7xYw2QeSubCancel";
const TEMPLATE_USER: &str = "7d6f0b4e-3a52-4c1e-9f0a-2b8e5d1c9a41";

/// A storage backend.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// PostgreSQL at `--database-url` (or `DATABASE_URL`).
    Postgres,
}

/// Flags of the `webhook-e2e` scenario.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Where the ledger and subscriptions live.
    #[arg(long, value_enum)]
    backend: Backend,
    /// The PostgreSQL URL (a scratch database: the scenario writes to it).
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// How many distinct events to handle.
    #[arg(long, default_value_t = 2_000)]
    events: u64,
    /// How many deliveries are in flight at once.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
}

pub(crate) async fn run(args: &Args) -> Result<Report, Box<dyn std::error::Error + Send + Sync>> {
    let dir = tempfile::tempdir()?;
    let (store, backend) = match args.backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", dir.path().join("billing.db").display());
            (AnyBillingStore::connect(&url).await?, "sqlite")
        }
        Backend::Postgres => {
            let url = args
                .database_url
                .as_deref()
                .ok_or("--database-url or DATABASE_URL is required for postgres")?;
            (AnyBillingStore::connect(url).await?, "postgres")
        }
    };
    store.migrate().await?;

    let mut pro = Plan::pro();
    pro.stripe_price_id_monthly = Some(PRO.into());
    let mut team = Plan::team();
    team.stripe_price_id_monthly = Some(TEAM.into());
    let catalogue = PlanCatalogue::new(vec![Plan::free(), pro, team], PlanId::free())?;
    let quota = Quota::builder(MemoryUsageStore::new())
        .catalogue(catalogue)
        .build()?;
    let secret = SecretString::from("whsec_bench_0f1e2d3c4b5a69788796a5b4c3d2e1f0");
    let verifier = WebhookVerifier::builder().secret(secret.clone()).build()?;
    let billing = Billing::builder(store, verifier, Arc::new(quota)).build()?;

    // N distinct events: each its own event id, subscription and user, alternating plans,
    // so every event is a ledger insert, a subscription upsert and a plan change.
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let now = SystemClock.now().timestamp();
    let deliveries: Vec<(String, String)> = (0..args.events)
        .map(|i| {
            let body = TEMPLATE
                .replace(TEMPLATE_EVENT, &format!("evt_bench{run_id}{i}"))
                .replace(TEMPLATE_SUB, &format!("sub_bench{run_id}{i}"))
                .replace(TEMPLATE_USER, &uuid::Uuid::new_v4().to_string())
                .replace(TEAM, if i % 2 == 0 { PRO } else { TEAM });
            let header = sign_payload(&secret, now, body.as_bytes());
            (body, header)
        })
        .collect();
    let deliveries = Arc::new(deliveries);

    let start = Instant::now();
    let workers = args.concurrency.max(1);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(workers);
    for _ in 0..workers {
        let billing = billing.clone();
        let deliveries = Arc::clone(&deliveries);
        let next = Arc::clone(&next);
        tasks.push(tokio::spawn(async move {
            let mut processed = 0u64;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((body, header)) = deliveries.get(i) else {
                    break;
                };
                let outcome = billing
                    .handle_webhook(body.as_bytes(), Some(header))
                    .await?;
                processed += u64::from(matches!(
                    outcome,
                    appforge_billing::WebhookOutcome::Processed { .. }
                ));
            }
            Ok::<u64, appforge_billing::Error>(processed)
        }));
    }
    let mut processed = 0;
    for task in tasks {
        processed += task.await??;
    }
    let elapsed = start.elapsed();
    Ok(Report::new("webhook-e2e", args.events, elapsed)
        .with("backend", backend)
        .with("processed", processed)
        .with("concurrency", workers))
}
