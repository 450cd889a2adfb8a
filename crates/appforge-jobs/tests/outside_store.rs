//! A store written outside the crate runs the exported suite: `JobStore` is public and
//! implementable, and `appforge_jobs::testing` holds the behaviour every store must have.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use appforge_jobs::testing::{Fixture, run_store_suite};
use appforge_jobs::{
    ClaimRequest, Enqueued, FinishRequest, Job, JobEvent, JobFilter, JobId, JobStore, Lease,
    LeaseState, MemoryJobStore, Notifications, Owner, Page, PageRequest, QueueStats, Result,
    Retention, WorkerId, WorkerInfo,
};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// A host's own backend: counts the claims, delegates the storage.
#[derive(Debug, Clone, Default)]
struct Counting {
    inner: MemoryJobStore,
    claims: Arc<AtomicU64>,
}

impl JobStore for Counting {
    async fn insert(&self, jobs: Vec<Job>) -> Result<Vec<Enqueued>> {
        self.inner.insert(jobs).await
    }
    async fn get(&self, id: JobId) -> Result<Option<Job>> {
        self.inner.get(id).await
    }
    async fn list(
        &self,
        owner: Owner,
        filter: &JobFilter,
        page: &PageRequest,
    ) -> Result<Page<Job>> {
        self.inner.list(owner, filter, page).await
    }
    async fn list_all(
        &self,
        filter: &JobFilter,
        finished_since: Option<DateTime<Utc>>,
        page: &PageRequest,
    ) -> Result<Page<Job>> {
        self.inner.list_all(filter, finished_since, page).await
    }
    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Job>> {
        self.claims.fetch_add(1, Ordering::Relaxed);
        self.inner.claim(request).await
    }
    async fn finish(&self, batch: &[FinishRequest]) -> Result<Vec<Result<Job>>> {
        self.inner.finish(batch).await
    }
    async fn renew(&self, leases: &[Lease], until: DateTime<Utc>) -> Result<Vec<LeaseState>> {
        self.inner.renew(leases, until).await
    }
    async fn set_progress(&self, lease: &Lease, progress: &Value) -> Result<Job> {
        self.inner.set_progress(lease, progress).await
    }
    async fn cancel(&self, id: JobId, owner: Option<Owner>, now: DateTime<Utc>) -> Result<Job> {
        self.inner.cancel(id, owner, now).await
    }
    async fn requeue(&self, id: JobId, now: DateTime<Utc>, payload: Option<Value>) -> Result<Job> {
        self.inner.requeue(id, now, payload).await
    }
    async fn rescue(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Job>> {
        self.inner.rescue(now, limit).await
    }
    async fn prune(&self, retention: &Retention, now: DateTime<Utc>) -> Result<u64> {
        self.inner.prune(retention, now).await
    }
    async fn redact(&self, id: JobId, payload: &Value, result: Option<&Value>) -> Result<bool> {
        self.inner.redact(id, payload, result).await
    }
    async fn stats(&self, now: DateTime<Utc>, window: Duration) -> Result<QueueStats> {
        self.inner.stats(now, window).await
    }
    async fn record_worker(&self, info: &WorkerInfo) -> Result<()> {
        self.inner.record_worker(info).await
    }
    async fn remove_worker(&self, id: WorkerId) -> Result<()> {
        self.inner.remove_worker(id).await
    }
    async fn workers(&self) -> Result<Vec<WorkerInfo>> {
        self.inner.workers().await
    }
    async fn publish(&self, events: &[JobEvent]) -> Result<()> {
        self.inner.publish(events).await
    }
    async fn listen(&self) -> Result<Option<Notifications>> {
        self.inner.listen().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_from_outside_the_crate_passes_the_suite() {
    let claims = Arc::new(AtomicU64::new(0));
    run_store_suite(|| {
        let store = Counting {
            inner: MemoryJobStore::new(),
            claims: Arc::clone(&claims),
        };
        async move { Fixture::new(store, Box::new(())) }
    })
    .await;
    assert!(
        claims.load(Ordering::Relaxed) > 0,
        "the suite ran through the outside store"
    );
}
