//! `http-enqueue`: the generation request over HTTP. `POST /api/ai-builder/full-app` against
//! the example server with no workers (`APPFORGE_WORKERS=0`), from many concurrent
//! connections, each request from a distinct Free user (so every one is admitted, reserved
//! and enqueued), beside `GET /healthz` on the same server in the same run: the price of a
//! generation request (plan read, reservation, job, analytics) over the bare HTTP stack.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use appforge_server::{Config, server};
use parking_lot::Mutex;

use super::metrics_scrape::{Backend, database_for, quantile_ms};
use crate::report::Report;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const JWT_SECRET: &str = "bench-secret-of-at-least-thirty-two-bytes-0123";

/// Flags of the `http-enqueue` scenario.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// PostgreSQL URL, used as it is; default: the `appforge_bench` database next to
    /// `DATABASE_URL`'s, its jobs and quota tables emptied first.
    #[arg(long)]
    database_url: Option<String>,
    /// Generation requests, each from a new Free user (tokens made before the clock starts).
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
}

/// Builds the i-th request of a phase.
type MakeRequest = Arc<dyn Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Send + Sync>;

/// What one phase measured.
struct Phase {
    latencies: Vec<Duration>,
    elapsed: Duration,
    failures: u64,
}

/// Sends `requests` requests over `connections` concurrent keep-alive connections; `make`
/// builds the i-th request, `ok` is the status that counts as success.
async fn phase(
    connections: usize,
    requests: usize,
    ok: reqwest::StatusCode,
    make: MakeRequest,
) -> Result<Phase, BoxError> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()?;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(requests)));
    let failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, next, latencies, failures, make) = (
            client.clone(),
            next.clone(),
            latencies.clone(),
            failures.clone(),
            make.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                let sent = Instant::now();
                let answer = make(&client, i).send().await?;
                let status = answer.status();
                answer.bytes().await?;
                mine.push(sent.elapsed());
                if status != ok {
                    failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            latencies.lock().extend(mine);
            Ok::<_, reqwest::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed();
    let latencies = std::mem::take(&mut *latencies.lock());
    Ok(Phase {
        latencies,
        elapsed,
        failures: failures.load(std::sync::atomic::Ordering::Relaxed),
    })
}

#[allow(clippy::cast_precision_loss)] // request counts far below 2^52
fn per_second(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}

pub(crate) async fn run(args: &Args) -> Result<Report, BoxError> {
    let (url, _dir, fresh) = database_for(args.backend, args.database_url.as_deref()).await?;
    let settings: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", url),
        ("APPFORGE_WORKERS", "0".to_owned()),
        ("APPFORGE_JWT_SECRET", JWT_SECRET.to_owned()),
        (
            "APPFORGE_REQUEST_RATES",
            "*=100000000/100000000,free=100000000/100000000".to_owned(),
        ),
    ]);
    let config = Config::from_lookup(|name| settings.get(name).cloned())?;
    let (state, _) = server::assemble(config).await?;
    if fresh && let appforge_server::Database::Postgres(pool) = state.db() {
        sqlx::query("TRUNCATE generation_jobs, quota_reservations, usage_quotas")
            .execute(pool)
            .await?;
    }
    eprintln!("http-enqueue: {} tokens", args.requests);
    let tokens: Arc<Vec<String>> = Arc::new(
        (0..args.requests)
            .map(|_| {
                state
                    .jwt()
                    .issue(uuid::Uuid::new_v4(), None, Duration::from_secs(3600))
            })
            .collect(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server::serve(state, listener, async move {
        let _ = stopped.await;
    }));

    let health = format!("{base}/healthz");
    eprintln!("http-enqueue: GET /healthz x {}", args.requests);
    let bare = phase(
        args.connections,
        args.requests,
        reqwest::StatusCode::OK,
        Arc::new(move |client, _| client.get(&health)),
    )
    .await?;
    let generate = format!("{base}/api/ai-builder/full-app");
    eprintln!(
        "http-enqueue: POST /api/ai-builder/full-app x {} over {} connections",
        args.requests, args.connections
    );
    let body = serde_json::json!({ "prompt": "a habit tracker with streaks" }).to_string();
    let mut enqueued = phase(
        args.connections,
        args.requests,
        reqwest::StatusCode::ACCEPTED,
        Arc::new(move |client, i| {
            client
                .post(&generate)
                .bearer_auth(&tokens[i])
                .header("content-type", "application/json")
                .body(body.clone())
        }),
    )
    .await?;
    let _ = stop.send(());
    serving.await??;
    let mut bare_latencies = bare.latencies;

    Ok(Report::new(
        "http-enqueue",
        u64::try_from(args.requests).unwrap_or(u64::MAX),
        enqueued.elapsed,
    )
    .with(
        "backend",
        match args.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        },
    )
    .with("connections", args.connections)
    .with("enqueue_per_s", per_second(args.requests, enqueued.elapsed))
    .with("enqueue_failures", enqueued.failures)
    .with("enqueue_p50_ms", quantile_ms(&mut enqueued.latencies, 0.5))
    .with("enqueue_p99_ms", quantile_ms(&mut enqueued.latencies, 0.99))
    .with("enqueue_max_ms", quantile_ms(&mut enqueued.latencies, 1.0))
    .with("healthz_per_s", per_second(args.requests, bare.elapsed))
    .with("healthz_failures", bare.failures)
    .with("healthz_p50_ms", quantile_ms(&mut bare_latencies, 0.5)))
}
