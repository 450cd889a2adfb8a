//! `quota-reserve`: N reserve + commit pairs over U users at concurrency C, then a count
//! that nothing was admitted over the limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use appforge_quota::{
    Admission, AnyUsageStore, MemoryUsageStore, PgUsageStore, Plan, PlanCatalogue, PlanId, Quota,
    SqliteUsageStore,
};

use crate::report::Report;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which store to measure.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Backend {
    Memory,
    Sqlite,
    Postgres,
}

/// Flags of the `quota-reserve` scenario.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The store.
    #[arg(long, value_enum, default_value = "memory")]
    backend: Backend,
    /// PostgreSQL URL, used as it is. Without it the bench uses (and empties) the quota tables
    /// of an `appforge_bench` database next to `DATABASE_URL`'s, so that every run starts
    /// from the same empty tables.
    #[arg(long)]
    database_url: Option<String>,
    /// Distinct users the requests are spread over.
    #[arg(long, default_value_t = 1_000)]
    users: u64,
    /// Reserve + commit pairs.
    #[arg(long, default_value_t = 1_000_000)]
    requests: u64,
    /// Concurrent tasks.
    #[arg(long, default_value_t = 32)]
    concurrency: u64,
    /// PostgreSQL connections (default: one per task, at most 100).
    #[arg(long)]
    connections: Option<u32>,
    /// PostgreSQL batch statements of each kind in flight (`0`: every call its own statement).
    #[arg(long, default_value_t = appforge_quota::DEFAULT_BATCH_STATEMENTS)]
    batch_statements: usize,
}

async fn store(args: &Args) -> Result<(AnyUsageStore, Option<tempfile::TempDir>), BoxError> {
    Ok(match args.backend {
        Backend::Memory => (MemoryUsageStore::new().into(), None),
        Backend::Sqlite => {
            let dir = tempfile::tempdir()?;
            let url = format!("sqlite://{}", dir.path().join("quota.db").display());
            let store = SqliteUsageStore::connect(&url).await?;
            store.migrate().await?;
            (store.into(), Some(dir))
        }
        Backend::Postgres => {
            let (url, fresh) = match &args.database_url {
                Some(url) => (url.clone(), false),
                None => (super::bench_database().await?, true),
            };
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(match args.connections {
                    Some(n) => n.max(1),
                    None => u32::try_from(args.concurrency.clamp(1, 100))?,
                })
                .connect(&url)
                .await?;
            let store = PgUsageStore::from_pool(pool).batching(args.batch_statements);
            store.migrate().await?;
            if fresh {
                sqlx::query("TRUNCATE usage_quotas, quota_reservations")
                    .execute(store.pool())
                    .await?;
            }
            super::open_all(store.pool()).await?;
            (store.into(), None)
        }
    })
}

pub(crate) async fn run(args: &Args) -> Result<Report, BoxError> {
    if args.users == 0 || args.requests == 0 || args.concurrency == 0 {
        return Err("--users, --requests and --concurrency must be positive".into());
    }
    // A plan whose daily limit admits exactly the requests each user gets.
    let per_user = args.requests.div_ceil(args.users);
    let mut plan = Plan::new("bench", "Bench");
    plan.daily_generations = Some(u32::try_from(per_user)?);
    plan.monthly_generations = Some(u32::try_from(per_user)?);
    let catalogue = PlanCatalogue::new(vec![plan], PlanId::new("bench"))?;
    let (store, _dir) = store(args).await?;
    let quota = Quota::builder(store)
        .catalogue(catalogue)
        .burst_limits(false)
        .build()?;
    let users: Arc<Vec<uuid::Uuid>> =
        Arc::new((0..args.users).map(|_| uuid::Uuid::new_v4()).collect());
    let granted: Arc<Vec<AtomicU64>> =
        Arc::new((0..args.users).map(|_| AtomicU64::new(0)).collect());
    let denied = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));

    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (quota, users, granted, denied, next) = (
            quota.clone(),
            Arc::clone(&users),
            Arc::clone(&granted),
            Arc::clone(&denied),
            Arc::clone(&next),
        );
        let requests = args.requests;
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return Ok::<_, appforge_quota::Error>(());
                }
                let u = usize::try_from(i % users.len() as u64).expect("index fits");
                match quota.reserve(users[u], 1).await? {
                    Admission::Granted(r) => {
                        granted[u].fetch_add(1, Ordering::Relaxed);
                        quota.commit(r.id, 100).await?;
                    }
                    Admission::Denied(_) => {
                        denied.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = start.elapsed();

    // Count: no user over the limit by our own tally, nor in the store.
    let mut over_admitted = 0u64;
    let mut store_mismatches = 0u64;
    let mut total_granted = 0u64;
    for (u, user) in users.iter().enumerate() {
        let ours = granted[u].load(Ordering::Relaxed);
        total_granted += ours;
        let used = quota.status(*user).await?.daily.used;
        over_admitted += ours.saturating_sub(per_user) + used.saturating_sub(per_user);
        store_mismatches += u64::from(used != ours);
    }
    let backend = match args.backend {
        Backend::Memory => "memory",
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    Ok(Report::new("quota-reserve", args.requests, elapsed)
        .with("backend", backend)
        .with("users", args.users)
        .with("concurrency", args.concurrency)
        .with("batch_statements", args.batch_statements)
        .with("granted", total_granted)
        .with("denied", denied.load(Ordering::Relaxed))
        .with("over_admitted", over_admitted)
        .with("store_mismatches", store_mismatches))
}
