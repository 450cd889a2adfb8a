//! `audit-append`: N audit entries appended to org chains (SHA-256 chain kept, every append its
//! own transaction holding the chain head) by C concurrent tasks, then the chains verified.
//! Also reports the latency of one permission check (`Orgs::authorize` of a member, one
//! indexed read), what a generation request in an org adds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use appforge_orgs::{
    AnyOrgStore, AuditRange, Caller, NewOrg, Orgs, Permission, PgOrgStore, SqliteOrgStore,
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

/// Flags of the `audit-append` scenario.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The store.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// PostgreSQL URL, used as it is. Without it the bench uses (and empties) the org tables
    /// of an `appforge_bench` database next to `DATABASE_URL`'s.
    #[arg(long)]
    database_url: Option<String>,
    /// Entries to append.
    #[arg(long, default_value_t = 20_000)]
    entries: u64,
    /// Orgs the entries are spread over (1: every task appends to one chain).
    #[arg(long, default_value_t = 1)]
    orgs: u64,
    /// Concurrent tasks appending.
    #[arg(long, default_value_t = 8)]
    concurrency: u64,
    /// Permission checks timed one after the other, after the appends.
    #[arg(long, default_value_t = 2_000)]
    checks: usize,
}

async fn store(args: &Args) -> Result<(AnyOrgStore, Option<tempfile::TempDir>), BoxError> {
    Ok(match args.backend {
        Backend::Memory => (AnyOrgStore::connect("memory:").await?, None),
        Backend::Sqlite => {
            let dir = tempfile::tempdir()?;
            let url = format!("sqlite://{}", dir.path().join("orgs.db").display());
            let store = SqliteOrgStore::connect(&url).await?;
            store.migrate().await?;
            (store.into(), Some(dir))
        }
        Backend::Postgres => {
            let (url, fresh) = match &args.database_url {
                Some(url) => (url.clone(), false),
                None => (super::bench_database().await?, true),
            };
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(u32::try_from(args.concurrency.clamp(1, 100))?)
                .connect(&url)
                .await?;
            let store = PgOrgStore::from_pool(pool);
            store.migrate().await?;
            if fresh {
                sqlx::query(
                    "TRUNCATE orgs, org_members, org_invitations, org_api_keys, org_audit_log, \
                     org_audit_heads",
                )
                .execute(store.pool())
                .await?;
            }
            super::open_all(store.pool()).await?;
            (store.into(), None)
        }
    })
}

pub(crate) async fn run(args: &Args) -> Result<Report, BoxError> {
    if args.entries == 0 || args.orgs == 0 || args.concurrency == 0 {
        return Err("--entries, --orgs and --concurrency must be positive".into());
    }
    let (store, _dir) = store(args).await?;
    let orgs = Orgs::new(store);
    let actor = Caller::user(uuid::Uuid::new_v4());
    let mut ids = Vec::new();
    for i in 0..args.orgs {
        let slug = format!(
            "bench-{i}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        ids.push(
            orgs.create_org(&actor, NewOrg::new("Bench", slug))
                .await?
                .id,
        );
    }
    let ids = Arc::new(ids);
    let next = Arc::new(AtomicU64::new(0));

    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (orgs, actor, ids, next) = (
            orgs.clone(),
            actor.clone(),
            Arc::clone(&ids),
            Arc::clone(&next),
        );
        let entries = args.entries;
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= entries {
                    return Ok::<_, appforge_orgs::Error>(());
                }
                let org = ids[usize::try_from(i % ids.len() as u64).expect("index fits")];
                orgs.record(
                    &actor,
                    org,
                    "app.publish",
                    Some(format!("app:{i}")),
                    serde_json::json!({"version": i, "slug": "bench"}),
                )
                .await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = start.elapsed();

    // The chains are whole: each org verifies with its creation plus its share of entries.
    let verify_start = Instant::now();
    let mut verified = 0;
    for org in ids.iter() {
        verified += orgs.verify_audit(*org, AuditRange::all()).await?;
    }
    let verify_seconds = verify_start.elapsed().as_secs_f64();
    if verified != args.entries + args.orgs {
        return Err(format!(
            "verified {verified} entries, expected {}",
            args.entries + args.orgs
        )
        .into());
    }
    // One permission check, as a generation request in an org makes it.
    let mut latencies = Vec::with_capacity(args.checks);
    for _ in 0..args.checks {
        let check = Instant::now();
        orgs.authorize(&actor, ids[0], Permission::Generate).await?;
        latencies.push(check.elapsed());
    }
    latencies.sort_unstable();
    let quantile = |q: f64| -> f64 {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )] // an index into a short sorted list
        let i = ((latencies.len().saturating_sub(1)) as f64 * q).round() as usize;
        latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };

    let backend = match args.backend {
        Backend::Memory => "memory",
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    Ok(Report::new("audit-append", args.entries, elapsed)
        .with("backend", backend)
        .with("orgs", args.orgs)
        .with("concurrency", args.concurrency)
        .with("verified", verified)
        .with("verify_seconds", verify_seconds)
        .with("authorize_p50_us", quantile(0.5))
        .with("authorize_p99_us", quantile(0.99)))
}
