//! An existing axum app (its own routes, its own sessions) that mounts the whole generation
//! API of appforge under `/builder`, on one SQLite file, with the offline demo model.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use appforge::apps::AnyAppStore;
use appforge::axum::{AuthRejection, Authenticate, bearer};
use appforge::generation::GenerationService;
use appforge::jobs::{AnyJobStore, WorkerPool};
use appforge::llm::Pipelines;
use appforge::quota::{AnyUsageStore, Quota};
use axum::Router;
use axum::routing::get;
use http::HeaderMap;
use uuid::Uuid;

/// The host's own sessions: an opaque token per signed-in user.
#[derive(Clone, Default)]
pub struct Sessions(Arc<RwLock<HashMap<String, Uuid>>>);

impl Sessions {
    /// Signs `user` in and answers their token.
    pub fn sign_in(&self, user: Uuid) -> String {
        let token = Uuid::new_v4().simple().to_string();
        self.0
            .write()
            .expect("sessions")
            .insert(token.clone(), user);
        token
    }
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions([REDACTED])")
    }
}

/// appforge asks the host who a request acts for.
impl Authenticate for Sessions {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Uuid, AuthRejection> {
        let token = bearer(headers)?;
        let user = self.0.read().expect("sessions").get(token).copied();
        user.ok_or_else(|| AuthRejection::unauthorized("unknown session"))
    }
}

/// The host's router with the generation API mounted, and the workers that run its jobs.
///
/// # Errors
///
/// The database's or a crate's set-up error.
pub async fn app(
    database_url: &str,
    sessions: Sessions,
) -> Result<(Router, WorkerPool<AnyJobStore>), Box<dyn std::error::Error>> {
    let pool = sqlx::SqlitePool::connect(database_url).await?;
    let usage = AnyUsageStore::from_sqlite_pool(pool.clone());
    let jobs = AnyJobStore::from_sqlite_pool(pool.clone());
    let apps = AnyAppStore::from_sqlite_pool(pool);
    usage.migrate().await?;
    jobs.migrate().await?;
    apps.migrate().await?;

    let quota = Quota::new(usage);
    quota.load_plans().await?;
    let pipelines = Pipelines::new(appforge_llm::demo::offline_provider());
    let service = GenerationService::builder(quota, jobs, apps, pipelines)
        .provider("demo")
        .build()?;
    let workers = service.start_workers(2)?;

    let router = Router::new()
        .route("/", get(|| async { "the host's own page" }))
        .nest("/builder", appforge::axum::router(service, sessions));
    Ok((router, workers))
}
