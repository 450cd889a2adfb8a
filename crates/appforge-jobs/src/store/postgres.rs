use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use std::str::FromStr;
use std::time::Duration;

use appforge_core::db::{self, Connect};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::pg_notify::{self, Origin};
use super::sql::{
    FinishParams, MIGRATIONS_TABLE, column, job_columns, lease_error, owner_scope, rescue_requests,
    stored, stored_opt,
};
use super::{
    ClaimRequest, FinishRequest, JobStore, Lease, LeaseState, Notifications, Retention, WorkerInfo,
};
use crate::stats::{DepthCount, QueueStats};
use crate::{
    Enqueued, Error, Job, JobEvent, JobFilter, JobId, JobStatus, Owner, Page, PageRequest,
    Priority, Result, Transition, WorkerId,
};

/// The production job store on PostgreSQL.
///
/// Claims take a batch in one `UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED)` statement
/// in priority, `run_at`, id order, served by a partial index on runnable rows; completions are
/// written in batches with `unnest`; enqueues are bulk inserts. `LISTEN/NOTIFY` wakes idle
/// workers and carries job events between processes; workers still poll, so everything works
/// (more slowly) behind a transaction-pooling proxy that drops notifications.
#[derive(Debug, Clone)]
pub struct PgJobStore {
    pool: PgPool,
    origin: Origin,
    /// Whether the jobs this store just claimed or finished are watched (read in the same
    /// statement), so that publishing their events needs no extra query.
    watched: Arc<Mutex<HashMap<Uuid, bool>>>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    user_id: Uuid,
    kind: String,
    priority: i16,
    status: String,
    payload: Json<Value>,
    result: Option<Json<Value>>,
    error_message: Option<String>,
    attempt: i32,
    max_attempts: i32,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    duration_ms: Option<i64>,
    created_at: DateTime<Utc>,
    run_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    lease_owner: Option<Uuid>,
    lease_expires_at: Option<DateTime<Utc>>,
    progress: Option<Json<Value>>,
    cancel_requested: bool,
    dedupe_key: Option<String>,
    org_id: Option<Uuid>,
    /// Whether someone subscribes to the job (only some statements return it).
    #[sqlx(default)]
    watched: Option<bool>,
}

impl TryFrom<Row> for Job {
    type Error = Error;

    fn try_from(r: Row) -> Result<Self> {
        Ok(Self {
            id: JobId::from(r.id),
            user_id: r.user_id,
            kind: r.kind,
            priority: Priority(r.priority),
            status: JobStatus::from_str(&r.status)?,
            payload: r.payload.0,
            result: r.result.map(|j| j.0),
            error: r.error_message,
            attempt: stored("attempt", r.attempt)?,
            max_attempts: stored("max_attempts", r.max_attempts)?,
            input_tokens: stored_opt("input_tokens", r.input_tokens)?,
            output_tokens: stored_opt("output_tokens", r.output_tokens)?,
            duration_ms: stored_opt("duration_ms", r.duration_ms)?,
            created_at: r.created_at,
            run_at: r.run_at,
            started_at: r.started_at,
            completed_at: r.completed_at,
            lease_owner: r.lease_owner.map(WorkerId::from),
            lease_expires_at: r.lease_expires_at,
            progress: r.progress.map(|j| j.0),
            cancel_requested: r.cancel_requested,
            dedupe_key: r.dedupe_key,
            org_id: r.org_id,
        })
    }
}

/// `generation_job_workers` columns.
type WorkerRow = (Uuid, String, DateTime<Utc>, DateTime<Utc>, i32, i32);

fn jobs(rows: Vec<Row>) -> Result<Vec<Job>> {
    rows.into_iter().map(Job::try_from).collect()
}

const SELECT_ONE: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM generation_jobs WHERE id = $1"
);

/// Whether the error is a unique violation (a dedupe key already held).
fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "23505")
}

/// The bulk insert of new jobs from parallel arrays (`$1` ids ... `$9` dedupe keys, `$10`
/// orgs).
macro_rules! insert_jobs {
    () => {
        "INSERT INTO generation_jobs (id, user_id, kind, priority, status, payload, \
         attempt, max_attempts, created_at, run_at, dedupe_key, org_id) \
         SELECT u.id, u.user_id, u.kind, u.priority, 'pending', u.payload, 0, \
         u.max_attempts, u.created_at, u.run_at, u.dedupe_key, u.org_id \
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int2[], $5::jsonb[], \
         $6::int4[], $7::timestamptz[], $8::timestamptz[], $9::text[], $10::uuid[]) \
         AS u(id, user_id, kind, priority, payload, max_attempts, created_at, run_at, \
         dedupe_key, org_id)"
    };
}

/// A page of one space's history (`user` or `org`, whose id is `$1`), newest first: `$2`
/// status, `$3` kind, `$4` and `$5` the cursor, `$6` the limit.
macro_rules! list_in {
    ($scope:ident) => {
        concat!(
            "SELECT ",
            job_columns!(),
            " FROM generation_jobs WHERE ",
            owner_scope!($scope, "$1"),
            " AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR kind = $3) \
             AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5::uuid)) \
             ORDER BY created_at DESC, id DESC LIMIT $6"
        )
    };
}

impl PgJobStore {
    /// Connects to a `postgres://` URL with a pool of up to 20 connections
    /// ([`appforge_core::db::Connect`]).
    ///
    /// # Errors
    ///
    /// Connection errors.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = Connect::new(url).max_connections(20).postgres().await?;
        Ok(Self::from_pool(pool))
    }

    /// A store over an existing pool (shared with other crates).
    #[must_use]
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            pool,
            origin: Origin::new(),
            watched: Arc::default(),
        }
    }

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates or updates the tables (migration table `_appforge_jobs_migrations`).
    ///
    /// # Errors
    ///
    /// Migration errors.
    pub async fn migrate(&self) -> Result<()> {
        db::migrate(
            sqlx::migrate!("./migrations/postgres"),
            MIGRATIONS_TABLE,
            &self.pool,
        )
        .await?;
        Ok(())
    }

    /// Inserts jobs on `conn`, which may be inside the caller's transaction: they become
    /// visible, and idle workers in every process are woken, only when it commits.
    pub(crate) async fn insert_on(conn: &mut PgConnection, jobs: &[Job]) -> Result<Vec<Enqueued>> {
        let mut out: Vec<Option<Enqueued>> = vec![None; jobs.len()];
        let mut todo: Vec<usize> = (0..jobs.len()).collect();
        // A dedupe key's holder may finish between the insert and the look-up: go again.
        for _ in 0..5 {
            if todo.is_empty() {
                break;
            }
            let batch: Vec<&Job> = todo.iter().map(|&i| &jobs[i]).collect();
            // Without a dedupe key in the batch nothing can conflict: a plain insert skips the
            // speculative insertion that `ON CONFLICT` costs on every row.
            let sql = if batch.iter().all(|j| j.dedupe_key.is_none()) {
                concat!(insert_jobs!(), " RETURNING id")
            } else {
                concat!(
                    insert_jobs!(),
                    " ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL \
                     AND status IN ('pending', 'processing') DO NOTHING RETURNING id"
                )
            };
            let inserted: Vec<Uuid> = sqlx::query_scalar(sql)
                .bind(batch.iter().map(|j| j.id.as_uuid()).collect::<Vec<_>>())
                .bind(batch.iter().map(|j| j.user_id).collect::<Vec<_>>())
                .bind(batch.iter().map(|j| j.kind.as_str()).collect::<Vec<_>>())
                .bind(batch.iter().map(|j| j.priority.get()).collect::<Vec<_>>())
                .bind(batch.iter().map(|j| Json(&j.payload)).collect::<Vec<_>>())
                .bind(
                    batch
                        .iter()
                        .map(|j| column::<i32>("max_attempts", j.max_attempts))
                        .collect::<Result<Vec<_>>>()?,
                )
                .bind(batch.iter().map(|j| j.created_at).collect::<Vec<_>>())
                .bind(batch.iter().map(|j| j.run_at).collect::<Vec<_>>())
                .bind(
                    batch
                        .iter()
                        .map(|j| j.dedupe_key.as_deref())
                        .collect::<Vec<_>>(),
                )
                .bind(batch.iter().map(|j| j.org_id).collect::<Vec<_>>())
                .fetch_all(&mut *conn)
                .await?;
            let inserted: std::collections::HashSet<Uuid> = inserted.into_iter().collect();
            let mut missing_keys = Vec::new();
            for &i in &todo {
                if inserted.contains(&jobs[i].id.as_uuid()) {
                    out[i] = Some(Enqueued {
                        id: jobs[i].id,
                        deduplicated: false,
                    });
                } else if let Some(key) = &jobs[i].dedupe_key {
                    missing_keys.push(key.as_str());
                }
            }
            let holders: Vec<(String, Uuid)> = if missing_keys.is_empty() {
                Vec::new()
            } else {
                sqlx::query_as(
                    "SELECT dedupe_key, id FROM generation_jobs WHERE dedupe_key = ANY($1) \
                     AND status IN ('pending', 'processing')",
                )
                .bind(&missing_keys)
                .fetch_all(&mut *conn)
                .await?
            };
            let holders: HashMap<String, Uuid> = holders.into_iter().collect();
            todo.retain(|&i| {
                if out[i].is_some() {
                    return false;
                }
                match jobs[i].dedupe_key.as_ref().and_then(|k| holders.get(k)) {
                    Some(holder) => {
                        out[i] = Some(Enqueued {
                            id: JobId::from(*holder),
                            deduplicated: true,
                        });
                        false
                    }
                    None => true,
                }
            });
        }
        let wake = out.iter().flatten().any(|e| !e.deduplicated);
        if wake {
            pg_notify::wake_on(conn).await?;
        }
        out.into_iter()
            .map(|e| e.ok_or_else(|| Error::Corrupt("a dedupe key kept changing hands".into())))
            .collect()
    }
}

/// Jobs by status and priority over the whole table (the admin view: its cost follows the
/// history).
const DEPTH_ALL: &str =
    "SELECT status, priority, count(*) FROM generation_jobs GROUP BY status, priority";

/// Pending and processing jobs by priority, read from the partial indexes that hold only them.
const DEPTH_LIVE: &str = "SELECT 'pending', priority, count(*) FROM generation_jobs \
     WHERE status = 'pending' GROUP BY priority \
     UNION ALL SELECT 'processing', priority, count(*) FROM generation_jobs \
     WHERE status = 'processing' GROUP BY priority";

/// Finished jobs within the window, from the finished index (its predicate is repeated so that
/// the planner can prove the index applies).
const WINDOW: &str = "SELECT count(*) FILTER (WHERE status = 'completed'), \
     count(*) FILTER (WHERE status = 'failed'), \
     percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms) \
     FILTER (WHERE status = 'completed'), \
     percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms) \
     FILTER (WHERE status = 'completed') \
     FROM generation_jobs WHERE status IN ('completed', 'failed', 'cancelled') \
     AND status <> 'cancelled' AND completed_at >= $1";

/// The oldest runnable job and the expired leases, from the runnable and lease indexes.
const OLDEST_AND_EXPIRED: &str = "SELECT (SELECT min(created_at) FROM generation_jobs \
     WHERE status = 'pending' AND run_at <= $1), (SELECT count(*) FROM generation_jobs \
     WHERE status = 'processing' AND lease_expires_at < $1)";

impl PgJobStore {
    /// Queue statistics with `depth` counted by `depth_sql` ([`DEPTH_ALL`] or [`DEPTH_LIVE`]).
    /// Everything else reads the partial indexes: the runnable and lease indexes hold only live
    /// jobs, and the finished index is read over the window only.
    async fn snapshot(
        &self,
        depth_sql: &'static str,
        now: DateTime<Utc>,
        window: Duration,
    ) -> Result<QueueStats> {
        let since = crate::time::sub(now, window);
        let depth: Vec<(String, i16, i64)> =
            sqlx::query_as(depth_sql).fetch_all(&self.pool).await?;
        let mut depth = depth
            .into_iter()
            .map(|(status, priority, count)| {
                Ok(DepthCount {
                    status: JobStatus::from_str(&status)?,
                    priority: Priority(priority),
                    count: u64::try_from(count).unwrap_or(0),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        depth.sort_by_key(|d| (d.status, std::cmp::Reverse(d.priority)));
        let (completed, failed, p50, p95): (i64, i64, Option<i64>, Option<i64>) =
            sqlx::query_as(WINDOW)
                .bind(since)
                .fetch_one(&self.pool)
                .await?;
        let (oldest, expired): (Option<DateTime<Utc>>, i64) = sqlx::query_as(OLDEST_AND_EXPIRED)
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        Ok(QueueStats::assemble(
            depth,
            u64::try_from(completed).unwrap_or(0),
            u64::try_from(failed).unwrap_or(0),
            stored_opt("duration_ms", p50)?,
            stored_opt("duration_ms", p95)?,
            oldest.map(|o| (now - o).to_std().unwrap_or_default()),
            u64::try_from(expired).unwrap_or(0),
            window,
        ))
    }

    fn note_watched(&self, rows: &[Row]) {
        let mut watched = self.watched.lock();
        // Bounded: entries are taken by the next publish; a store whose events are never
        // published (no queue) must not grow without end.
        if watched.len() > 100_000 {
            watched.clear();
        }
        for row in rows {
            if let Some(w) = row.watched {
                watched.insert(row.id, w);
            }
        }
    }
}

async fn fetch(conn: &mut PgConnection, id: JobId) -> Result<Option<Job>> {
    sqlx::query_as::<_, Row>(SELECT_ONE)
        .bind(id.as_uuid())
        .fetch_optional(conn)
        .await?
        .map(Job::try_from)
        .transpose()
}

/// A claim: `$1` now, `$2` the worker, `$3` the end of the lease, `$4` the kinds (NULL: any),
/// `$5` how many, `$6` the submitters to skip (NULL: none). Run after [`CLAIM_BEGIN`].
const CLAIM: &str = "UPDATE generation_jobs SET status = 'processing', attempt = attempt + 1, \
     started_at = $1, lease_owner = $2, lease_expires_at = $3 \
     WHERE id = ANY(ARRAY(SELECT id FROM generation_jobs \
     WHERE status = 'pending' AND run_at <= $1 \
     AND ($4::text[] IS NULL OR kind = ANY($4)) \
     AND ($6::uuid[] IS NULL OR NOT (user_id = ANY($6))) \
     ORDER BY priority DESC, run_at, id LIMIT $5 FOR UPDATE SKIP LOCKED)) \
     RETURNING *, EXISTS (SELECT 1 FROM generation_job_watches w \
     WHERE w.job_id = generation_jobs.id AND w.expires_at > now()) AS watched";

/// Attempt endings from parallel arrays (`$1` the ids ... `$15` the status each job must still
/// have). Run after [`FINISH_BEGIN`].
const FINISH: &str = "UPDATE generation_jobs j SET status = u.status, \
     result = COALESCE(u.result, j.result), \
     input_tokens = COALESCE(u.input_tokens, j.input_tokens), \
     output_tokens = COALESCE(u.output_tokens, j.output_tokens), \
     error_message = CASE WHEN u.set_error THEN u.error ELSE j.error_message END, \
     run_at = COALESCE(u.run_at, j.run_at), attempt = j.attempt - u.attempt_back, \
     duration_ms = CASE WHEN u.set_duration \
     THEN GREATEST(0, floor(extract(epoch FROM (u.now - j.started_at)) * 1000))::bigint \
     ELSE j.duration_ms END, \
     completed_at = u.completed_at, lease_owner = NULL, lease_expires_at = NULL \
     FROM unnest($1::uuid[], $2::uuid[], $3::int4[], $4::text[], $5::jsonb[], \
     $6::int8[], $7::int8[], $8::bool[], $9::text[], $10::timestamptz[], $11::int4[], \
     $12::bool[], $13::timestamptz[], $14::timestamptz[], $15::text[]) \
     AS u(id, owner, attempt, status, result, input_tokens, output_tokens, set_error, \
     error, run_at, attempt_back, set_duration, completed_at, now, expected) \
     WHERE j.id = ANY($1) AND j.id = u.id AND j.status = u.expected \
     AND j.lease_owner = u.owner AND j.attempt = u.attempt \
     RETURNING j.*, EXISTS (SELECT 1 FROM generation_job_watches w \
     WHERE w.job_id = j.id AND w.expires_at > now()) AS watched";

/// How a claim's transaction starts. Its commit does not wait for the log flush (a claim lost
/// in a crash leaves its jobs pending, as if never claimed). The runnable jobs are read in
/// claim order from `generation_jobs_runnable`, never gathered and sorted: while the table
/// has no statistics (new, or emptied by `TRUNCATE`, until autovacuum analyzes it) the
/// planner takes the pending jobs for a handful and would read and sort all of them on every
/// claim, so that draining a burst would cost the square of its length. With the sort ruled
/// out the plan no longer depends on the parameters, and each connection plans it once.
const CLAIM_BEGIN: &str = "BEGIN; SET LOCAL synchronous_commit = off; \
     SET LOCAL enable_sort = off; SET LOCAL plan_cache_mode = force_generic_plan";

/// How a batch of attempt endings starts its transaction: its jobs are found by primary key,
/// never by scanning the table, which the planner prices below a few hundred index look-ups
/// while the table holds a few thousand jobs; each connection plans the statement once.
const FINISH_BEGIN: &str = "BEGIN; SET LOCAL enable_seqscan = off; \
     SET LOCAL plan_cache_mode = force_generic_plan";

impl JobStore for PgJobStore {
    async fn insert(&self, jobs: Vec<Job>) -> Result<Vec<Enqueued>> {
        let mut conn = self.pool.acquire().await?;
        Self::insert_on(&mut conn, &jobs).await
    }

    async fn get(&self, id: JobId) -> Result<Option<Job>> {
        let mut conn = self.pool.acquire().await?;
        fetch(&mut conn, id).await
    }

    async fn list(
        &self,
        owner: Owner,
        filter: &JobFilter,
        page: &PageRequest,
    ) -> Result<Page<Job>> {
        let sql = match owner {
            Owner::User(_) => list_in!(user),
            Owner::Org(_) => list_in!(org),
        };
        let rows = sqlx::query_as::<_, Row>(sql)
            .bind(owner.id())
            .bind(filter.status.map(JobStatus::as_str))
            .bind(filter.kind.as_deref())
            .bind(page.after.as_ref().map(|c| c.created_at))
            .bind(page.after.as_ref().map(|c| c.id.as_uuid()))
            .bind(i64::from(page.limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        Ok(Page::from_overfetch(jobs(rows)?, page.limit))
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Job>> {
        let mut tx = self.pool.begin_with(CLAIM_BEGIN).await?;
        let rows = sqlx::query_as::<_, Row>(CLAIM)
            .bind(request.now)
            .bind(request.worker.as_uuid())
            .bind(request.lease_until)
            .bind(request.kinds.as_deref())
            .bind(i64::from(request.limit))
            .bind((!request.exclude_users.is_empty()).then_some(&request.exclude_users))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        self.note_watched(&rows);
        let mut claimed = jobs(rows)?;
        claimed.sort_by_key(|j| (std::cmp::Reverse(j.priority), j.run_at, j.id));
        Ok(claimed)
    }

    async fn finish(&self, batch: &[FinishRequest]) -> Result<Vec<Result<Job>>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let params: Vec<FinishParams> =
            batch.iter().map(FinishParams::of).collect::<Result<_>>()?;
        let attempts: Vec<i32> = batch
            .iter()
            .map(|r| column("attempt", r.lease.attempt))
            .collect::<Result<_>>()?;
        // The expected status travels as a column rather than a constant: with a constant,
        // the planner picks the partial lease index, whose dead entries grow with every job
        // that ever ran; by id it touches only the batch's rows.
        let mut tx = self.pool.begin_with(FINISH_BEGIN).await?;
        let rows = sqlx::query_as::<_, Row>(FINISH)
            .bind(
                batch
                    .iter()
                    .map(|r| r.lease.job_id.as_uuid())
                    .collect::<Vec<_>>(),
            )
            .bind(
                batch
                    .iter()
                    .map(|r| r.lease.worker.as_uuid())
                    .collect::<Vec<_>>(),
            )
            .bind(attempts)
            .bind(params.iter().map(|p| p.status).collect::<Vec<_>>())
            .bind(
                params
                    .iter()
                    .map(|p| p.result.as_ref().map(Json))
                    .collect::<Vec<_>>(),
            )
            .bind(params.iter().map(|p| p.input_tokens).collect::<Vec<_>>())
            .bind(params.iter().map(|p| p.output_tokens).collect::<Vec<_>>())
            .bind(params.iter().map(|p| p.set_error).collect::<Vec<_>>())
            .bind(
                params
                    .iter()
                    .map(|p| p.error.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(params.iter().map(|p| p.run_at).collect::<Vec<_>>())
            .bind(params.iter().map(|p| p.attempt_back).collect::<Vec<_>>())
            .bind(params.iter().map(|p| p.set_duration).collect::<Vec<_>>())
            .bind(params.iter().map(|p| p.completed_at).collect::<Vec<_>>())
            .bind(params.iter().map(|p| p.now).collect::<Vec<_>>())
            .bind(vec![JobStatus::Processing.as_str(); batch.len()])
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        self.note_watched(&rows);
        let mut done: HashMap<JobId, Job> = HashMap::with_capacity(rows.len());
        for row in rows {
            let job = Job::try_from(row)?;
            done.insert(job.id, job);
        }
        let missing: Vec<Uuid> = batch
            .iter()
            .filter(|r| !done.contains_key(&r.lease.job_id))
            .map(|r| r.lease.job_id.as_uuid())
            .collect();
        let existing: std::collections::HashSet<Uuid> = if missing.is_empty() {
            std::collections::HashSet::new()
        } else {
            sqlx::query_scalar::<_, Uuid>("SELECT id FROM generation_jobs WHERE id = ANY($1)")
                .bind(&missing)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .collect()
        };
        Ok(batch
            .iter()
            .map(|r| {
                done.remove(&r.lease.job_id).ok_or_else(|| {
                    lease_error(&r.lease, existing.contains(&r.lease.job_id.as_uuid()))
                })
            })
            .collect())
    }

    async fn renew(&self, leases: &[Lease], until: DateTime<Utc>) -> Result<Vec<LeaseState>> {
        let rows: Vec<(Uuid, bool)> = sqlx::query_as(
            "UPDATE generation_jobs j SET lease_expires_at = $4 \
             FROM unnest($1::uuid[], $2::uuid[], $3::int4[], $5::text[]) \
             AS u(id, owner, attempt, expected) \
             WHERE j.id = ANY($1) AND j.id = u.id AND j.status = u.expected \
             AND j.lease_owner = u.owner AND j.attempt = u.attempt \
             AND set_config('synchronous_commit', 'off', true) IS NOT NULL \
             RETURNING j.id, j.cancel_requested",
        )
        .bind(
            leases
                .iter()
                .map(|l| l.job_id.as_uuid())
                .collect::<Vec<_>>(),
        )
        .bind(
            leases
                .iter()
                .map(|l| l.worker.as_uuid())
                .collect::<Vec<_>>(),
        )
        .bind(
            leases
                .iter()
                .map(|l| column::<i32>("attempt", l.attempt))
                .collect::<Result<Vec<_>>>()?,
        )
        .bind(until)
        .bind(vec![JobStatus::Processing.as_str(); leases.len()])
        .fetch_all(&self.pool)
        .await?;
        let held: HashMap<Uuid, bool> = rows.into_iter().collect();
        Ok(leases
            .iter()
            .map(|lease| {
                let state = held.get(&lease.job_id.as_uuid());
                LeaseState {
                    lease: *lease,
                    held: state.is_some(),
                    cancel_requested: state.copied().unwrap_or(false),
                }
            })
            .collect())
    }

    async fn set_progress(&self, lease: &Lease, progress: &Value) -> Result<Job> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query_as::<_, Row>(concat!(
            "UPDATE generation_jobs SET progress = $1 WHERE id = $2 AND status = 'processing' \
             AND lease_owner = $3 AND attempt = $4 RETURNING ",
            job_columns!()
        ))
        .bind(Json(progress))
        .bind(lease.job_id.as_uuid())
        .bind(lease.worker.as_uuid())
        .bind(column::<i32>("attempt", lease.attempt)?)
        .fetch_optional(&mut *conn)
        .await?;
        match row {
            Some(row) => Job::try_from(row),
            None => {
                let exists = fetch(&mut conn, lease.job_id).await?.is_some();
                Err(lease_error(lease, exists))
            }
        }
    }

    async fn cancel(&self, id: JobId, owner: Option<Owner>, now: DateTime<Utc>) -> Result<Job> {
        // The scope, in the query: `$3` a user's personal space, `$4` an org's (both NULL:
        // any job).
        let (user, org) = match owner {
            Some(Owner::User(u)) => (Some(u), None),
            Some(Owner::Org(o)) => (None, Some(o)),
            None => (None, None),
        };
        let mut conn = self.pool.acquire().await?;
        // A job may change between the write and the explaining read (it just finished):
        // then the next round reports it.
        for _ in 0..3 {
            // Pending: cancelled now. Processing: flagged, its worker ends it.
            let row = sqlx::query_as::<_, Row>(concat!(
                "UPDATE generation_jobs SET cancel_requested = (status = 'processing'), \
                 status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END, \
                 completed_at = CASE WHEN status = 'pending' THEN $2 ELSE completed_at END \
                 WHERE id = $1 AND ($3::uuid IS NULL OR (user_id = $3 AND org_id IS NULL)) \
                 AND ($4::uuid IS NULL OR org_id = $4) \
                 AND status IN ('pending', 'processing') RETURNING ",
                job_columns!()
            ))
            .bind(id.as_uuid())
            .bind(now)
            .bind(user)
            .bind(org)
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(row) = row {
                return Job::try_from(row);
            }
            let job = fetch(&mut conn, id)
                .await?
                .filter(|j| j.in_scope(owner))
                .ok_or(Error::NotFound(id))?;
            Transition::Cancel.check(id, job.status)?;
        }
        Err(Error::Corrupt(format!(
            "job {id} kept changing while being cancelled"
        )))
    }

    async fn requeue(&self, id: JobId, now: DateTime<Utc>, payload: Option<Value>) -> Result<Job> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query_as::<_, Row>(concat!(
            "UPDATE generation_jobs SET status = 'pending', attempt = 0, run_at = $2, \
             cancel_requested = false, completed_at = NULL, result = NULL, started_at = NULL, \
             input_tokens = NULL, output_tokens = NULL, duration_ms = NULL, progress = NULL, \
             payload = COALESCE($3, payload) \
             WHERE id = $1 AND status IN ('failed', 'cancelled') RETURNING ",
            job_columns!()
        ))
        .bind(id.as_uuid())
        .bind(now)
        .bind(payload.map(Json))
        .fetch_optional(&mut *conn)
        .await;
        match row {
            Ok(Some(row)) => {
                pg_notify::wake_on(&mut conn).await?;
                Job::try_from(row)
            }
            Ok(None) => {
                let job = fetch(&mut conn, id).await?.ok_or(Error::NotFound(id))?;
                Transition::Requeue.check(id, job.status)?;
                Err(Error::Corrupt(format!(
                    "job {id} changed while being requeued"
                )))
            }
            Err(e) if is_unique_violation(&e) => Err(Error::InvalidInput(format!(
                "job {id} cannot be requeued: another active job holds its dedupe key"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    async fn rescue(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Job>> {
        let rows = sqlx::query_as::<_, Row>(concat!(
            "SELECT ",
            job_columns!(),
            " FROM generation_jobs WHERE status = 'processing' AND lease_expires_at < $1 LIMIT $2"
        ))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let expired = jobs(rows)?;
        if expired.is_empty() {
            return Ok(Vec::new());
        }
        let requests = rescue_requests(&expired, now);
        Ok(self
            .finish(&requests)
            .await?
            .into_iter()
            .filter_map(Result::ok)
            .collect())
    }

    async fn prune(&self, retention: &Retention, now: DateTime<Utc>) -> Result<u64> {
        let mut deleted = 0;
        let batch = i64::from(retention.batch_size);
        if let Some(age) = retention.older_than {
            let cutoff = crate::time::sub(now, age);
            loop {
                let n = sqlx::query(
                    "DELETE FROM generation_jobs WHERE id IN (SELECT id FROM generation_jobs \
                     WHERE status IN ('completed', 'failed', 'cancelled') AND completed_at < $1 \
                     LIMIT $2)",
                )
                .bind(cutoff)
                .bind(batch)
                .execute(&self.pool)
                .await?
                .rows_affected();
                deleted += n;
                if n == 0 {
                    break;
                }
            }
        }
        if let Some(keep) = retention.keep_latest {
            let keep = i64::try_from(keep).unwrap_or(i64::MAX);
            loop {
                let n = sqlx::query(
                    "DELETE FROM generation_jobs WHERE id IN (SELECT id FROM generation_jobs \
                     WHERE status IN ('completed', 'failed', 'cancelled') \
                     ORDER BY completed_at DESC, id DESC OFFSET $1 LIMIT $2)",
                )
                .bind(keep)
                .bind(batch)
                .execute(&self.pool)
                .await?
                .rows_affected();
                deleted += n;
                if n == 0 {
                    break;
                }
            }
        }
        Ok(deleted)
    }

    async fn redact(&self, id: JobId, payload: &Value, result: Option<&Value>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE generation_jobs SET payload = $2, result = $3 WHERE id = $1 \
             AND status IN ('completed', 'failed', 'cancelled')",
        )
        .bind(id.as_uuid())
        .bind(Json(payload))
        .bind(result.map(Json))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn stats(&self, now: DateTime<Utc>, window: Duration) -> Result<QueueStats> {
        self.snapshot(DEPTH_ALL, now, window).await
    }

    async fn gauges(&self, now: DateTime<Utc>, window: Duration) -> Result<QueueStats> {
        self.snapshot(DEPTH_LIVE, now, window).await
    }

    async fn record_worker(&self, info: &WorkerInfo) -> Result<()> {
        sqlx::query(
            "INSERT INTO generation_job_workers (id, name, started_at, last_heartbeat, \
             concurrency, running) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE \
             SET last_heartbeat = excluded.last_heartbeat, running = excluded.running",
        )
        .bind(info.id.as_uuid())
        .bind(&info.name)
        .bind(info.started_at)
        .bind(info.last_heartbeat)
        .bind(i32::try_from(info.concurrency).unwrap_or(i32::MAX))
        .bind(i32::try_from(info.running).unwrap_or(i32::MAX))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn remove_worker(&self, id: WorkerId) -> Result<()> {
        sqlx::query("DELETE FROM generation_job_workers WHERE id = $1")
            .bind(id.as_uuid())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn workers(&self) -> Result<Vec<WorkerInfo>> {
        let rows: Vec<WorkerRow> = sqlx::query_as(
            "SELECT id, name, started_at, last_heartbeat, concurrency, running \
             FROM generation_job_workers ORDER BY started_at",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, name, started_at, last_heartbeat, concurrency, running)| WorkerInfo {
                    id: WorkerId::from(id),
                    name,
                    started_at,
                    last_heartbeat,
                    concurrency: u32::try_from(concurrency).unwrap_or(0),
                    running: u32::try_from(running).unwrap_or(0),
                },
            )
            .collect())
    }

    async fn publish(&self, events: &[JobEvent]) -> Result<()> {
        let known: HashMap<Uuid, bool> = {
            let mut watched = self.watched.lock();
            events
                .iter()
                .filter_map(|e| {
                    let id = e.job_id.as_uuid();
                    watched.remove(&id).map(|w| (id, w))
                })
                .collect()
        };
        pg_notify::publish(&self.pool, self.origin, events, &known).await
    }

    async fn watch(&self, id: JobId) -> Result<()> {
        pg_notify::watch(&self.pool, self.origin, id.as_uuid()).await
    }

    async fn unwatch(&self, id: JobId) -> Result<()> {
        pg_notify::unwatch(&self.pool, self.origin, id.as_uuid()).await
    }

    async fn wake(&self) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        pg_notify::wake_on(&mut conn).await
    }

    async fn listen(&self) -> Result<Option<Notifications>> {
        Ok(Some(
            pg_notify::listen(self.pool.clone(), self.origin).await?,
        ))
    }

    async fn list_all(
        &self,
        filter: &JobFilter,
        finished_since: Option<DateTime<Utc>>,
        page: &PageRequest,
    ) -> Result<Page<Job>> {
        // With `finished_since`, the terminal statuses are named so that the planner reads
        // the partial index of finished jobs from that time on, not the whole history (the
        // settlement reconciliation asks this every minute).
        let sql = if finished_since.is_some() {
            concat!(
                "SELECT ",
                job_columns!(),
                " FROM generation_jobs WHERE status IN ('completed', 'failed', 'cancelled') \
                 AND completed_at >= $3 AND ($1::text IS NULL OR status = $1) \
                 AND ($2::text IS NULL OR kind = $2) \
                 AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5::uuid)) \
                 ORDER BY created_at DESC, id DESC LIMIT $6"
            )
        } else {
            concat!(
                "SELECT ",
                job_columns!(),
                " FROM generation_jobs WHERE ($1::text IS NULL OR status = $1) \
                 AND ($2::text IS NULL OR kind = $2) AND $3::timestamptz IS NULL \
                 AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5::uuid)) \
                 ORDER BY created_at DESC, id DESC LIMIT $6"
            )
        };
        let rows = sqlx::query_as::<_, Row>(sql)
            .bind(filter.status.map(JobStatus::as_str))
            .bind(filter.kind.as_deref())
            .bind(finished_since)
            .bind(page.after.as_ref().map(|c| c.created_at))
            .bind(page.after.as_ref().map(|c| c.id.as_uuid()))
            .bind(i64::from(page.limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        Ok(Page::from_overfetch(jobs(rows)?, page.limit))
    }
}

impl<S: crate::JobStore> crate::JobQueue<S> {
    /// The PostgreSQL store's pool, when this queue runs on PostgreSQL (a [`PgJobStore`],
    /// directly or in an [`AnyJobStore`](crate::AnyJobStore)): where
    /// [`enqueue_in`](Self::enqueue_in) must be given a connection.
    #[must_use]
    pub fn postgres_pool(&self) -> Option<&PgPool> {
        let store: &dyn std::any::Any = self.store();
        if let Some(crate::AnyJobStore::Postgres(pg)) = store.downcast_ref::<crate::AnyJobStore>() {
            return Some(pg.pool());
        }
        store.downcast_ref::<PgJobStore>().map(PgJobStore::pool)
    }

    /// Enqueues jobs on `conn`, a connection to this queue's PostgreSQL database, typically
    /// inside the caller's transaction: the jobs exist, and workers in every process are
    /// woken, only if and when it commits. Dedupe applies as in
    /// [`enqueue_many`](Self::enqueue_many).
    ///
    /// No in-process `Enqueued` event is sent (the transaction may still roll back).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a malformed job, or when the queue does not run on
    /// PostgreSQL ([`postgres_pool`](Self::postgres_pool)); database errors.
    pub async fn enqueue_in(
        &self,
        conn: &mut PgConnection,
        jobs: Vec<crate::NewJob>,
    ) -> Result<Vec<Enqueued>> {
        if self.postgres_pool().is_none() {
            return Err(Error::InvalidInput(
                "enqueue_in needs a queue on PostgreSQL".into(),
            ));
        }
        let jobs = self.prepare(jobs)?;
        PgJobStore::insert_on(conn, &jobs).await
    }
}

#[cfg(test)]
mod gauge_plans {
    use super::*;

    /// The partial indexes that hold only live jobs or finished ones by completion time.
    const BOUNDED: &[&str] = &[
        "generation_jobs_runnable",
        "generation_jobs_leases",
        "generation_jobs_finished",
    ];

    /// Whether every scan of `generation_jobs` in the plan of `sql` reads one of the bounded
    /// indexes (no sequential scan, no index over the whole history), with the plan.
    async fn bounded(pool: &PgPool, sql: &'static str, bind: bool) -> (bool, String) {
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query("SET enable_seqscan = off")
            .execute(&mut *conn)
            .await
            .unwrap();
        let explain = sqlx::AssertSqlSafe(format!("EXPLAIN {sql}"));
        let query = sqlx::query_as::<_, (String,)>(explain);
        let query = if bind { query.bind(Utc::now()) } else { query };
        let plan: Vec<String> = query
            .fetch_all(&mut *conn)
            .await
            .unwrap()
            .into_iter()
            .map(|(line,)| line)
            .collect();
        let ok = plan.iter().filter(|l| l.contains("Scan")).all(|line| {
            line.contains("Bitmap Heap Scan") || BOUNDED.iter().any(|index| line.contains(index))
        });
        (ok, plan.join("\n"))
    }

    #[tokio::test]
    async fn gauges_read_only_the_live_and_windowed_indexes() {
        let Some(db) = appforge_testing::TestDatabase::create_or_skip().await else {
            return;
        };
        let store = PgJobStore::from_pool(db.pool().await);
        store.migrate().await.unwrap();
        // A history of finished jobs and a few live ones, analyzed as production tables are.
        sqlx::query(
            "INSERT INTO generation_jobs (id, user_id, kind, priority, status, payload, \
             max_attempts, duration_ms, created_at, run_at, completed_at) \
             SELECT gen_random_uuid(), gen_random_uuid(), 'full-app', 0, \
             (ARRAY['completed', 'failed', 'cancelled'])[1 + i % 3], '{}', 3, i, \
             now() - interval '2 days', now() - interval '2 days', now() - interval '1 day' \
             FROM generate_series(1, 5000) AS i",
        )
        .execute(store.pool())
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO generation_jobs (id, user_id, kind, priority, status, payload, \
             max_attempts, created_at, run_at) SELECT gen_random_uuid(), gen_random_uuid(), \
             'full-app', 0, 'pending', '{}', 3, now(), now() FROM generate_series(1, 5)",
        )
        .execute(store.pool())
        .await
        .unwrap();
        sqlx::query("ANALYZE generation_jobs")
            .execute(store.pool())
            .await
            .unwrap();
        let pool = store.pool();
        for (sql, bind) in [
            (DEPTH_LIVE, false),
            (WINDOW, true),
            (OLDEST_AND_EXPIRED, true),
        ] {
            let (ok, plan) = bounded(pool, sql, bind).await;
            assert!(
                ok,
                "{sql}\nreads more than the live jobs and the window:\n{plan}"
            );
        }
        // The whole-table view is what the gauges avoid.
        let (ok, plan) = bounded(pool, DEPTH_ALL, false).await;
        assert!(!ok, "{plan}");

        let gauges = store
            .gauges(Utc::now(), Duration::from_secs(300))
            .await
            .unwrap();
        assert_eq!(gauges.count(crate::JobStatus::Pending), 5);
        assert_eq!(
            gauges.count(crate::JobStatus::Completed),
            0,
            "history is not a gauge"
        );
        assert_eq!(
            gauges.completed_in_window, 0,
            "the history is outside the window"
        );
        let stats = store
            .stats(Utc::now(), Duration::from_secs(300))
            .await
            .unwrap();
        // i % 3 == 0 for 1,666 of 1..=5000.
        assert_eq!(stats.count(crate::JobStatus::Completed), 1666);
    }
}

#[cfg(test)]
mod claim_plans {
    use super::*;

    /// A burst of pending jobs in a table that has never been analyzed (new, or emptied by
    /// `TRUNCATE`): what the planner sees until autovacuum first analyzes it.
    async fn burst(pool: &PgPool) {
        sqlx::query(
            "INSERT INTO generation_jobs (id, user_id, kind, priority, status, payload, \
             max_attempts, created_at, run_at) SELECT gen_random_uuid(), \
             gen_random_uuid(), 'full-app', (i % 3 * 10)::int2, 'pending', '{}', 3, \
             clock_timestamp(), clock_timestamp() FROM generate_series(1, 5000) AS i",
        )
        .execute(pool)
        .await
        .unwrap();
    }

    /// The plan of `EXPLAIN {sql}` in a transaction begun with `begin`, and `$1` ... bound by
    /// `bind`.
    async fn plan<'q>(
        pool: &PgPool,
        begin: &'static str,
        sql: &'static str,
        bind: impl FnOnce(
            sqlx::query::QueryScalar<'q, sqlx::Postgres, String, sqlx::postgres::PgArguments>,
        ) -> sqlx::query::QueryScalar<
            'q,
            sqlx::Postgres,
            String,
            sqlx::postgres::PgArguments,
        >,
    ) -> String {
        let mut tx = pool.begin_with(begin).await.unwrap();
        let explain = sqlx::AssertSqlSafe(format!("EXPLAIN {sql}"));
        let lines: Vec<String> = bind(sqlx::query_scalar(explain))
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        lines.join("\n")
    }

    #[tokio::test]
    async fn claims_read_runnable_jobs_in_order_without_sorting_them() {
        let Some(db) = appforge_testing::TestDatabase::create_or_skip().await else {
            return;
        };
        let store = PgJobStore::from_pool(db.pool().await);
        store.migrate().await.unwrap();
        burst(store.pool()).await;
        let now = Utc::now();
        let plan = plan(store.pool(), CLAIM_BEGIN, CLAIM, |q| {
            q.bind(now)
                .bind(Uuid::new_v4())
                .bind(now + chrono::Duration::seconds(30))
                .bind(vec!["full-app".to_owned()])
                .bind(500_i64)
                .bind(None::<Vec<Uuid>>)
        })
        .await;
        assert!(
            plan.contains("Index Scan using generation_jobs_runnable") && !plan.contains("Sort"),
            "a claim sorts the runnable jobs:\n{plan}"
        );
    }

    #[tokio::test]
    async fn attempt_endings_find_their_jobs_by_primary_key() {
        let Some(db) = appforge_testing::TestDatabase::create_or_skip().await else {
            return;
        };
        let store = PgJobStore::from_pool(db.pool().await);
        store.migrate().await.unwrap();
        burst(store.pool()).await;
        let ids: Vec<Uuid> =
            sqlx::query_scalar("SELECT id FROM generation_jobs WHERE status = 'pending' LIMIT 500")
                .fetch_all(store.pool())
                .await
                .unwrap();
        let n = ids.len();
        let now = Utc::now();
        let plan = plan(store.pool(), FINISH_BEGIN, FINISH, |q| {
            q.bind(ids)
                .bind(vec![Uuid::new_v4(); n])
                .bind(vec![1_i32; n])
                .bind(vec!["completed"; n])
                .bind(vec![None::<Json<Value>>; n])
                .bind(vec![None::<i64>; n])
                .bind(vec![None::<i64>; n])
                .bind(vec![false; n])
                .bind(vec![None::<String>; n])
                .bind(vec![None::<DateTime<Utc>>; n])
                .bind(vec![0_i32; n])
                .bind(vec![true; n])
                .bind(vec![Some(now); n])
                .bind(vec![now; n])
                .bind(vec!["processing"; n])
        })
        .await;
        assert!(
            plan.contains("generation_jobs_pkey")
                && !plan.contains("Seq Scan on generation_jobs j"),
            "attempt endings scan the table:\n{plan}"
        );
    }
}
