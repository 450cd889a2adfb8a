use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    ClaimRequest, FinishRequest, JobStore, Lease, LeaseState, Notifications, Retention, WorkerInfo,
};
#[cfg(feature = "postgres")]
use crate::PgJobStore;
#[cfg(feature = "sqlite")]
use crate::SqliteJobStore;
use crate::{
    Enqueued, Error, Job, JobEvent, JobFilter, JobId, MemoryJobStore, Owner, Page, PageRequest,
    QueueStats, Result, WorkerId,
};

/// A job store chosen at run time, for hosts that read `DATABASE_URL`.
///
/// ```
/// # tokio_test_block_on(async {
/// use appforge_jobs::{AnyJobStore, JobQueue};
/// let store = AnyJobStore::connect("memory:").await?;
/// store.migrate().await?;
/// let queue = JobQueue::new(store);
/// # let _ = queue;
/// # Ok::<_, appforge_jobs::Error>(()) }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyJobStore {
    /// In memory.
    Memory(MemoryJobStore),
    /// SQLite.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    Sqlite(SqliteJobStore),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    Postgres(PgJobStore),
}

impl AnyJobStore {
    /// Connects by URL: `memory:`, `sqlite://path?mode=rwc` (feature `sqlite`) or
    /// `postgres://...` (feature `postgres`). Call [`migrate`](Self::migrate) before use.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an unsupported scheme; connection errors.
    pub async fn connect(url: &str) -> Result<Self> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "memory" => Ok(Self::Memory(MemoryJobStore::new())),
            #[cfg(feature = "sqlite")]
            "sqlite" => Ok(Self::Sqlite(SqliteJobStore::connect(url).await?)),
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => Ok(Self::Postgres(PgJobStore::connect(url).await?)),
            _ => Err(Error::Config(format!(
                "unsupported job store URL scheme {scheme:?} (enabled: {})",
                Self::schemes()
            ))),
        }
    }

    fn schemes() -> &'static str {
        match (cfg!(feature = "sqlite"), cfg!(feature = "postgres")) {
            (true, true) => "memory, sqlite, postgres",
            (true, false) => "memory, sqlite",
            (false, true) => "memory, postgres",
            (false, false) => "memory",
        }
    }

    /// A store over an existing SQLite pool (shared with other crates).
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    #[must_use]
    pub fn from_sqlite_pool(pool: sqlx::SqlitePool) -> Self {
        Self::Sqlite(SqliteJobStore::from_pool(pool))
    }

    /// A store over an existing PostgreSQL pool (shared with other crates).
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    #[must_use]
    pub fn from_pg_pool(pool: sqlx::PgPool) -> Self {
        Self::Postgres(PgJobStore::from_pool(pool))
    }

    /// Creates or updates the tables (a no-op in memory).
    ///
    /// # Errors
    ///
    /// Migration errors.
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Self::Memory(_) => Ok(()),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(s) => s.migrate().await,
            #[cfg(feature = "postgres")]
            Self::Postgres(s) => s.migrate().await,
        }
    }
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $body:expr) => {
        match $self {
            Self::Memory($s) => $body,
            #[cfg(feature = "sqlite")]
            Self::Sqlite($s) => $body,
            #[cfg(feature = "postgres")]
            Self::Postgres($s) => $body,
        }
    };
}

impl JobStore for AnyJobStore {
    async fn insert(&self, jobs: Vec<Job>) -> Result<Vec<Enqueued>> {
        dispatch!(self, s => s.insert(jobs).await)
    }
    async fn get(&self, id: JobId) -> Result<Option<Job>> {
        dispatch!(self, s => s.get(id).await)
    }
    async fn list(
        &self,
        owner: Owner,
        filter: &JobFilter,
        page: &PageRequest,
    ) -> Result<Page<Job>> {
        dispatch!(self, s => s.list(owner, filter, page).await)
    }
    async fn list_all(
        &self,
        filter: &JobFilter,
        finished_since: Option<DateTime<Utc>>,
        page: &PageRequest,
    ) -> Result<Page<Job>> {
        dispatch!(self, s => s.list_all(filter, finished_since, page).await)
    }
    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Job>> {
        dispatch!(self, s => s.claim(request).await)
    }
    async fn finish(&self, batch: &[FinishRequest]) -> Result<Vec<Result<Job>>> {
        dispatch!(self, s => s.finish(batch).await)
    }
    async fn renew(&self, leases: &[Lease], until: DateTime<Utc>) -> Result<Vec<LeaseState>> {
        dispatch!(self, s => s.renew(leases, until).await)
    }
    async fn set_progress(&self, lease: &Lease, progress: &Value) -> Result<Job> {
        dispatch!(self, s => s.set_progress(lease, progress).await)
    }
    async fn cancel(&self, id: JobId, owner: Option<Owner>, now: DateTime<Utc>) -> Result<Job> {
        dispatch!(self, s => s.cancel(id, owner, now).await)
    }
    async fn requeue(
        &self,
        id: JobId,
        now: DateTime<Utc>,
        payload: Option<serde_json::Value>,
    ) -> Result<Job> {
        dispatch!(self, s => s.requeue(id, now, payload.clone()).await)
    }
    async fn rescue(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Job>> {
        dispatch!(self, s => s.rescue(now, limit).await)
    }
    async fn prune(&self, retention: &Retention, now: DateTime<Utc>) -> Result<u64> {
        dispatch!(self, s => s.prune(retention, now).await)
    }
    async fn redact(&self, id: JobId, payload: &Value, result: Option<&Value>) -> Result<bool> {
        dispatch!(self, s => s.redact(id, payload, result).await)
    }
    async fn stats(&self, now: DateTime<Utc>, window: Duration) -> Result<QueueStats> {
        dispatch!(self, s => s.stats(now, window).await)
    }
    async fn gauges(&self, now: DateTime<Utc>, window: Duration) -> Result<QueueStats> {
        dispatch!(self, s => s.gauges(now, window).await)
    }
    async fn record_worker(&self, info: &WorkerInfo) -> Result<()> {
        dispatch!(self, s => s.record_worker(info).await)
    }
    async fn remove_worker(&self, id: WorkerId) -> Result<()> {
        dispatch!(self, s => s.remove_worker(id).await)
    }
    async fn workers(&self) -> Result<Vec<WorkerInfo>> {
        dispatch!(self, s => s.workers().await)
    }
    async fn publish(&self, events: &[JobEvent]) -> Result<()> {
        dispatch!(self, s => s.publish(events).await)
    }
    async fn watch(&self, id: JobId) -> Result<()> {
        dispatch!(self, s => s.watch(id).await)
    }
    async fn unwatch(&self, id: JobId) -> Result<()> {
        dispatch!(self, s => s.unwatch(id).await)
    }
    async fn wake(&self) -> Result<()> {
        dispatch!(self, s => s.wake().await)
    }
    async fn listen(&self) -> Result<Option<Notifications>> {
        dispatch!(self, s => s.listen().await)
    }
}
