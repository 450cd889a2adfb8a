use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde_json::Value;

use super::{
    ClaimRequest, Finish, FinishRequest, JobStore, Lease, LeaseState, Retention, WorkerInfo,
};
use crate::stats::{DepthCount, QueueStats, percentile};
use crate::time::{millis_between, sub};
use crate::{
    Enqueued, Error, Job, JobFilter, JobId, JobStatus, Owner, Page, PageRequest, Priority, Result,
    Transition, WorkerId,
};

type QueueKey = (Reverse<Priority>, DateTime<Utc>, JobId);

/// A job store in memory: for tests, prototypes and single-process use. Clones share the jobs.
#[derive(Debug, Clone, Default)]
pub struct MemoryJobStore {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    jobs: HashMap<JobId, Job>,
    /// Pending jobs in claim order.
    pending: BTreeSet<QueueKey>,
    /// Dedupe keys held by active jobs.
    dedupe: HashMap<String, JobId>,
    workers: HashMap<WorkerId, WorkerInfo>,
}

fn key(job: &Job) -> QueueKey {
    (Reverse(job.priority), job.run_at, job.id)
}

impl MemoryJobStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl State {
    /// Applies `transition` to the job, keeping the indexes in step.
    fn transition(&mut self, id: JobId, transition: Transition) -> Result<&mut Job> {
        let job = self.jobs.get_mut(&id).ok_or(Error::NotFound(id))?;
        let to = transition.check(id, job.status)?;
        if job.status == JobStatus::Pending {
            self.pending.remove(&key(job));
        }
        if to.is_terminal()
            && let Some(k) = &job.dedupe_key
            && self.dedupe.get(k) == Some(&id)
        {
            self.dedupe.remove(k);
        }
        job.status = to;
        if to != JobStatus::Processing {
            job.lease_owner = None;
            job.lease_expires_at = None;
        }
        Ok(job)
    }

    fn reindex(&mut self, id: JobId) {
        if let Some(job) = self.jobs.get(&id)
            && job.status == JobStatus::Pending
        {
            self.pending.insert(key(job));
        }
    }

    /// The running job if `lease` still holds it.
    fn leased(&self, lease: &Lease) -> Result<&Job> {
        let job = self
            .jobs
            .get(&lease.job_id)
            .ok_or(Error::NotFound(lease.job_id))?;
        if job.status == JobStatus::Processing
            && job.lease_owner == Some(lease.worker)
            && job.attempt == lease.attempt
        {
            Ok(job)
        } else {
            Err(Error::LeaseLost {
                id: lease.job_id,
                attempt: lease.attempt,
            })
        }
    }

    fn finish_one(&mut self, request: &FinishRequest) -> Result<Job> {
        let started_at = self.leased(&request.lease)?.started_at;
        let now = request.now;
        let duration = started_at.map(|s| millis_between(s, now));
        let id = request.lease.job_id;
        let transition = match request.finish {
            Finish::Complete { .. } => Transition::Complete,
            Finish::Retry { .. } => Transition::Retry,
            Finish::Fail { .. } => Transition::Fail,
            Finish::Cancel { .. } => Transition::Cancel,
            Finish::Release | Finish::Defer { .. } => Transition::Release,
        };
        let job = self.transition(id, transition)?;
        match &request.finish {
            Finish::Complete {
                result,
                input_tokens,
                output_tokens,
            } => {
                job.result = Some(result.clone());
                job.input_tokens = Some(*input_tokens);
                job.output_tokens = Some(*output_tokens);
                job.error = None;
            }
            Finish::Retry { run_at, error } => {
                job.run_at = *run_at;
                job.error = Some(error.clone());
            }
            Finish::Fail { error, tokens } => {
                job.error = Some(error.clone());
                record_tokens(job, *tokens);
            }
            Finish::Cancel { tokens } => record_tokens(job, *tokens),
            Finish::Release => {
                job.run_at = now;
                job.attempt -= 1;
            }
            Finish::Defer { run_at } => {
                job.run_at = *run_at;
                job.attempt -= 1;
            }
        }
        if !matches!(request.finish, Finish::Release | Finish::Defer { .. }) {
            job.duration_ms = duration;
        }
        if job.status.is_terminal() {
            job.completed_at = Some(now);
        }
        let job = job.clone();
        self.reindex(id);
        Ok(job)
    }
}

impl JobStore for MemoryJobStore {
    async fn insert(&self, jobs: Vec<Job>) -> Result<Vec<Enqueued>> {
        let mut state = self.state.lock();
        // As a primary key would: a caller-chosen id already taken refuses the whole batch.
        if let Some(taken) = jobs.iter().find(|j| state.jobs.contains_key(&j.id)) {
            return Err(crate::Error::InvalidInput(format!(
                "a job with id {} exists",
                taken.id
            )));
        }
        let mut out = Vec::with_capacity(jobs.len());
        for job in jobs {
            if let Some(k) = &job.dedupe_key {
                if let Some(existing) = state.dedupe.get(k) {
                    out.push(Enqueued {
                        id: *existing,
                        deduplicated: true,
                    });
                    continue;
                }
                state.dedupe.insert(k.clone(), job.id);
            }
            out.push(Enqueued {
                id: job.id,
                deduplicated: false,
            });
            state.pending.insert(key(&job));
            state.jobs.insert(job.id, job);
        }
        Ok(out)
    }

    async fn get(&self, id: JobId) -> Result<Option<Job>> {
        Ok(self.state.lock().jobs.get(&id).cloned())
    }

    async fn list(
        &self,
        owner: Owner,
        filter: &JobFilter,
        page: &PageRequest,
    ) -> Result<Page<Job>> {
        Ok(self.page(page, |job| job.in_scope(Some(owner)) && filter.matches(job)))
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Job>> {
        let mut state = self.state.lock();
        let limit = usize::try_from(request.limit).unwrap_or(usize::MAX);
        let picked: Vec<JobId> = state
            .pending
            .iter()
            .filter(|(_, run_at, id)| {
                *run_at <= request.now
                    && request
                        .kinds
                        .as_ref()
                        .is_none_or(|kinds| kinds.contains(&state.jobs[id].kind))
                    && !request.exclude_users.contains(&state.jobs[id].user_id)
            })
            .take(limit)
            .map(|(_, _, id)| *id)
            .collect();
        let mut claimed = Vec::with_capacity(picked.len());
        for id in picked {
            let job = state.transition(id, Transition::Claim)?;
            job.attempt += 1;
            job.started_at = Some(request.now);
            job.lease_owner = Some(request.worker);
            job.lease_expires_at = Some(request.lease_until);
            claimed.push(job.clone());
        }
        Ok(claimed)
    }

    async fn finish(&self, batch: &[FinishRequest]) -> Result<Vec<Result<Job>>> {
        let mut state = self.state.lock();
        Ok(batch.iter().map(|r| state.finish_one(r)).collect())
    }

    async fn renew(&self, leases: &[Lease], until: DateTime<Utc>) -> Result<Vec<LeaseState>> {
        let mut state = self.state.lock();
        Ok(leases
            .iter()
            .map(|lease| {
                let held = state.leased(lease).is_ok();
                let mut cancel_requested = false;
                if held && let Some(job) = state.jobs.get_mut(&lease.job_id) {
                    job.lease_expires_at = Some(until);
                    cancel_requested = job.cancel_requested;
                }
                LeaseState {
                    lease: *lease,
                    held,
                    cancel_requested,
                }
            })
            .collect())
    }

    async fn set_progress(&self, lease: &Lease, progress: &Value) -> Result<Job> {
        let mut state = self.state.lock();
        state.leased(lease)?;
        let job = state
            .jobs
            .get_mut(&lease.job_id)
            .ok_or(Error::NotFound(lease.job_id))?;
        job.progress = Some(progress.clone());
        Ok(job.clone())
    }

    async fn cancel(&self, id: JobId, owner: Option<Owner>, now: DateTime<Utc>) -> Result<Job> {
        let mut state = self.state.lock();
        let job = state
            .jobs
            .get_mut(&id)
            .filter(|job| job.in_scope(owner))
            .ok_or(Error::NotFound(id))?;
        Transition::Cancel.check(id, job.status)?;
        if job.status == JobStatus::Processing {
            job.cancel_requested = true;
            return Ok(job.clone());
        }
        let job = state.transition(id, Transition::Cancel)?;
        job.completed_at = Some(now);
        Ok(job.clone())
    }

    async fn requeue(&self, id: JobId, now: DateTime<Utc>, payload: Option<Value>) -> Result<Job> {
        let mut state = self.state.lock();
        if let Some(k) = state.jobs.get(&id).and_then(|j| j.dedupe_key.clone())
            && state.dedupe.contains_key(&k)
        {
            return Err(Error::InvalidInput(format!(
                "job {id} cannot be requeued: another active job holds its dedupe key"
            )));
        }
        let job = state.transition(id, Transition::Requeue)?;
        job.attempt = 0;
        job.run_at = now;
        job.cancel_requested = false;
        job.completed_at = None;
        job.result = None;
        job.started_at = None;
        job.input_tokens = None;
        job.output_tokens = None;
        job.duration_ms = None;
        job.progress = None;
        if let Some(payload) = payload {
            job.payload = payload;
        }
        let job = job.clone();
        if let Some(k) = &job.dedupe_key {
            state.dedupe.insert(k.clone(), id);
        }
        state.reindex(id);
        Ok(job)
    }

    async fn rescue(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Job>> {
        let mut state = self.state.lock();
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let expired: Vec<Job> = state
            .jobs
            .values()
            .filter(|j| {
                j.status == JobStatus::Processing && j.lease_expires_at.is_some_and(|e| e < now)
            })
            .take(limit)
            .cloned()
            .collect();
        let mut rescued = Vec::with_capacity(expired.len());
        for old in expired {
            let lease = old.lease().ok_or(Error::NotFound(old.id))?;
            let (finish, error) = rescue_finish(&old, now);
            let job = state.finish_one(&FinishRequest { lease, finish, now })?;
            let job = state.jobs.get_mut(&job.id).ok_or(Error::NotFound(job.id))?;
            job.error = error.or(job.error.take());
            rescued.push(job.clone());
        }
        Ok(rescued)
    }

    async fn prune(&self, retention: &Retention, now: DateTime<Utc>) -> Result<u64> {
        let mut state = self.state.lock();
        let mut finished: Vec<(DateTime<Utc>, JobId)> = state
            .jobs
            .values()
            .filter(|j| j.status.is_terminal())
            .map(|j| (j.completed_at.unwrap_or(j.created_at), j.id))
            .collect();
        finished.sort_unstable_by(|a, b| b.cmp(a));
        let keep = retention
            .keep_latest
            .and_then(|k| usize::try_from(k).ok())
            .unwrap_or(usize::MAX);
        let cutoff = retention.older_than.map(|age| sub(now, age));
        let doomed: Vec<JobId> = finished
            .iter()
            .enumerate()
            .filter(|(i, (at, _))| *i >= keep || cutoff.is_some_and(|c| *at < c))
            .map(|(_, (_, id))| *id)
            .collect();
        for id in &doomed {
            state.jobs.remove(id);
        }
        Ok(u64::try_from(doomed.len()).unwrap_or(u64::MAX))
    }

    async fn redact(&self, id: JobId, payload: &Value, result: Option<&Value>) -> Result<bool> {
        let mut state = self.state.lock();
        match state.jobs.get_mut(&id) {
            Some(job) if job.status.is_terminal() => {
                job.payload = payload.clone();
                job.result = result.cloned();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn stats(&self, now: DateTime<Utc>, window: Duration) -> Result<QueueStats> {
        let state = self.state.lock();
        let since = sub(now, window);
        let mut depth: HashMap<(JobStatus, Priority), u64> = HashMap::new();
        let mut durations = Vec::new();
        let (mut completed, mut failed, mut expired) = (0u64, 0u64, 0u64);
        let mut oldest: Option<DateTime<Utc>> = None;
        for job in state.jobs.values() {
            *depth.entry((job.status, job.priority)).or_default() += 1;
            let recent = job.completed_at.is_some_and(|c| c >= since);
            match job.status {
                JobStatus::Completed if recent => {
                    completed += 1;
                    durations.extend(job.duration_ms);
                }
                JobStatus::Failed if recent => failed += 1,
                JobStatus::Pending if job.run_at <= now => {
                    oldest = Some(oldest.map_or(job.created_at, |o| o.min(job.created_at)));
                }
                JobStatus::Processing if job.lease_expires_at.is_some_and(|e| e < now) => {
                    expired += 1;
                }
                _ => {}
            }
        }
        durations.sort_unstable();
        let mut depth: Vec<DepthCount> = depth
            .into_iter()
            .map(|((status, priority), count)| DepthCount {
                status,
                priority,
                count,
            })
            .collect();
        depth.sort_by_key(|d| (d.status, Reverse(d.priority)));
        Ok(QueueStats::assemble(
            depth,
            completed,
            failed,
            percentile(&durations, 50),
            percentile(&durations, 95),
            oldest.map(|o| (now - o).to_std().unwrap_or_default()),
            expired,
            window,
        ))
    }

    async fn record_worker(&self, info: &WorkerInfo) -> Result<()> {
        self.state.lock().workers.insert(info.id, info.clone());
        Ok(())
    }

    async fn remove_worker(&self, id: WorkerId) -> Result<()> {
        self.state.lock().workers.remove(&id);
        Ok(())
    }

    async fn workers(&self) -> Result<Vec<WorkerInfo>> {
        let mut workers: Vec<WorkerInfo> = self.state.lock().workers.values().cloned().collect();
        workers.sort_by_key(|w| w.started_at);
        Ok(workers)
    }

    async fn list_all(
        &self,
        filter: &JobFilter,
        finished_since: Option<DateTime<Utc>>,
        page: &PageRequest,
    ) -> Result<Page<Job>> {
        Ok(self.page(page, |job| {
            filter.matches(job)
                && finished_since.is_none_or(|t| job.completed_at.is_some_and(|c| c >= t))
        }))
    }
}

/// Records the tokens an attempt that failed or was cancelled reports.
fn record_tokens(job: &mut Job, tokens: Option<crate::TokenUsage>) {
    if let Some(tokens) = tokens {
        job.input_tokens = Some(tokens.input);
        job.output_tokens = Some(tokens.output);
    }
}

impl MemoryJobStore {
    /// The page of jobs that `keep` admits, newest first, after the page's cursor.
    fn page(&self, page: &PageRequest, keep: impl Fn(&Job) -> bool) -> Page<Job> {
        let state = self.state.lock();
        let mut items: Vec<&Job> = state
            .jobs
            .values()
            .filter(|job| keep(job) && page.after.as_ref().is_none_or(|c| c.precedes(job)))
            .collect();
        items.sort_by_key(|j| Reverse((j.created_at, j.id)));
        let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
        let items = items
            .into_iter()
            .take(limit.saturating_add(1))
            .cloned()
            .collect();
        Page::from_overfetch(items, page.limit)
    }
}

impl JobFilter {
    /// Whether `job` has the filter's status and kind.
    fn matches(&self, job: &Job) -> bool {
        self.status.is_none_or(|s| job.status == s)
            && self.kind.as_ref().is_none_or(|k| &job.kind == k)
    }
}

/// How a rescue ends an expired attempt, and the error it records (shared by every store).
pub(crate) fn rescue_finish(job: &Job, now: DateTime<Utc>) -> (Finish, Option<String>) {
    if job.cancel_requested {
        (Finish::Cancel { tokens: None }, None)
    } else if job.attempt >= job.max_attempts {
        let error = format!(
            "lease expired on attempt {} of {} (worker stopped heartbeating)",
            job.attempt, job.max_attempts
        );
        (
            Finish::Fail {
                error: error.clone(),
                tokens: None,
            },
            Some(error),
        )
    } else {
        let error = format!(
            "lease expired on attempt {} (worker stopped heartbeating)",
            job.attempt
        );
        (
            Finish::Retry {
                run_at: now,
                error: error.clone(),
            },
            Some(error),
        )
    }
}
