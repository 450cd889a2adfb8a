use std::str::FromStr;
use std::time::Duration;

use appforge_core::db::{self, Connect};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{SqliteConnection, SqlitePool};
use uuid::Uuid;

use super::sql::{
    FinishParams, MIGRATIONS_TABLE, column, job_columns, json_text, lease_error, owner_scope,
    parse_json, rescue_requests, stored, stored_opt,
};
use super::{ClaimRequest, FinishRequest, JobStore, Lease, LeaseState, Retention, WorkerInfo};
use crate::stats::{DepthCount, QueueStats, percentile};
use crate::{
    Enqueued, Error, Job, JobFilter, JobId, JobStatus, Owner, Page, PageRequest, Priority, Result,
    Transition, WorkerId,
};

/// The embedded job store on SQLite (WAL mode; writes in `BEGIN IMMEDIATE` transactions).
///
/// Workers in several processes may share the file; they find work by polling (SQLite has no
/// notifications), and subscriptions in other processes catch up by re-reading.
#[derive(Debug, Clone)]
pub struct SqliteJobStore {
    pool: SqlitePool,
}

/// A time as every appforge SQLite table stores it (microseconds since the Unix epoch).
fn micros(at: DateTime<Utc>) -> i64 {
    appforge_core::db::encode_time(at)
}

fn from_micros(v: i64) -> Result<DateTime<Utc>> {
    appforge_core::db::decode_time(v).map_err(|e| Error::Corrupt(format!("bad timestamp: {e}")))
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    user_id: Uuid,
    kind: String,
    priority: i16,
    status: String,
    payload: String,
    result: Option<String>,
    error_message: Option<String>,
    attempt: i32,
    max_attempts: i32,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    duration_ms: Option<i64>,
    created_at: i64,
    run_at: i64,
    started_at: Option<i64>,
    completed_at: Option<i64>,
    lease_owner: Option<Uuid>,
    lease_expires_at: Option<i64>,
    progress: Option<String>,
    cancel_requested: bool,
    dedupe_key: Option<String>,
    org_id: Option<Uuid>,
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
            payload: parse_json(&r.payload)?,
            result: r.result.as_deref().map(parse_json).transpose()?,
            error: r.error_message,
            attempt: stored("attempt", r.attempt)?,
            max_attempts: stored("max_attempts", r.max_attempts)?,
            input_tokens: stored_opt("input_tokens", r.input_tokens)?,
            output_tokens: stored_opt("output_tokens", r.output_tokens)?,
            duration_ms: stored_opt("duration_ms", r.duration_ms)?,
            created_at: from_micros(r.created_at)?,
            run_at: from_micros(r.run_at)?,
            started_at: r.started_at.map(from_micros).transpose()?,
            completed_at: r.completed_at.map(from_micros).transpose()?,
            lease_owner: r.lease_owner.map(WorkerId::from),
            lease_expires_at: r.lease_expires_at.map(from_micros).transpose()?,
            progress: r.progress.as_deref().map(parse_json).transpose()?,
            cancel_requested: r.cancel_requested,
            dedupe_key: r.dedupe_key,
            org_id: r.org_id,
        })
    }
}

fn jobs(rows: Vec<Row>) -> Result<Vec<Job>> {
    rows.into_iter().map(Job::try_from).collect()
}

const SELECT_ONE: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM generation_jobs WHERE id = ?1"
);

/// A page of one space's history (`user` or `org`, whose id is `?1`), newest first: `?2`
/// status, `?3` kind, `?4` and `?5` the cursor, `?6` the limit.
macro_rules! list_in {
    ($scope:ident) => {
        concat!(
            "SELECT ",
            job_columns!(),
            " FROM generation_jobs WHERE ",
            owner_scope!($scope, "?1"),
            " AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR kind = ?3) \
             AND (?4 IS NULL OR created_at < ?4 OR (created_at = ?4 AND id < ?5)) \
             ORDER BY created_at DESC, id DESC LIMIT ?6"
        )
    };
}

/// Jobs by status and priority over the whole table (the admin view: its cost follows the
/// history).
const DEPTH_ALL: &str = "SELECT status, priority, COUNT(*) FROM generation_jobs \
     GROUP BY status, priority ORDER BY status, priority DESC";

/// Pending and processing jobs by priority, read from the partial indexes that hold only them.
const DEPTH_LIVE: &str = "SELECT 'pending', priority, COUNT(*) FROM generation_jobs \
     WHERE status = 'pending' GROUP BY priority \
     UNION ALL SELECT 'processing', priority, COUNT(*) FROM generation_jobs \
     WHERE status = 'processing' GROUP BY priority";

/// Finished jobs within the window, from the finished index: SQLite uses a partial index only
/// when the query repeats its predicate term, hence the `IN` list as the index has it.
const WINDOW: &str = "SELECT status, duration_ms FROM generation_jobs \
     WHERE status IN ('completed', 'failed', 'cancelled') AND status <> 'cancelled' \
     AND completed_at >= ?1";

/// The oldest runnable job and the expired leases, from the runnable and lease indexes.
const OLDEST_AND_EXPIRED: &str = "SELECT (SELECT MIN(created_at) FROM generation_jobs \
     WHERE status = 'pending' AND run_at <= ?1), (SELECT COUNT(*) FROM generation_jobs \
     WHERE status = 'processing' AND lease_expires_at < ?1)";

impl SqliteJobStore {
    /// Queue statistics with `depth` counted by `depth_sql` ([`DEPTH_ALL`] or [`DEPTH_LIVE`]).
    /// Everything else reads the partial indexes: the runnable and lease indexes hold only live
    /// jobs, and the finished index is read over the window only.
    async fn snapshot(
        &self,
        depth_sql: &'static str,
        now: DateTime<Utc>,
        window: Duration,
    ) -> Result<QueueStats> {
        let since = micros(crate::time::sub(now, window));
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
        let finished: Vec<(String, Option<i64>)> = sqlx::query_as(WINDOW)
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        let failed = finished.iter().filter(|(s, _)| s == "failed").count();
        let mut durations: Vec<u64> = finished
            .iter()
            .filter(|(s, _)| s == "completed")
            .filter_map(|(_, d)| *d)
            .map(|d| stored("duration_ms", d))
            .collect::<Result<_>>()?;
        durations.sort_unstable();
        let completed = finished.len() - failed;
        let (oldest, expired): (Option<i64>, i64) = sqlx::query_as(OLDEST_AND_EXPIRED)
            .bind(micros(now))
            .fetch_one(&self.pool)
            .await?;
        let oldest = oldest
            .map(from_micros)
            .transpose()?
            .map(|o| (now - o).to_std().unwrap_or_default());
        Ok(QueueStats::assemble(
            depth,
            u64::try_from(completed).unwrap_or(0),
            u64::try_from(failed).unwrap_or(0),
            percentile(&durations, 50),
            percentile(&durations, 95),
            oldest,
            u64::try_from(expired).unwrap_or(0),
            window,
        ))
    }

    /// Opens (creating when missing) the database at a `sqlite://` URL with the settings of
    /// [`appforge_core::db::Connect`] (WAL mode, a 10 s busy timeout), 4 connections.
    ///
    /// # Errors
    ///
    /// Connection errors.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = Connect::new(url).max_connections(4).sqlite().await?;
        Ok(Self { pool })
    }

    /// A store over an existing pool (shared with other crates). Use WAL mode and a busy
    /// timeout on it.
    #[must_use]
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Creates or updates the tables (migration table `_appforge_jobs_migrations`).
    ///
    /// # Errors
    ///
    /// Migration errors.
    pub async fn migrate(&self) -> Result<()> {
        db::migrate(
            sqlx::migrate!("./migrations/sqlite"),
            MIGRATIONS_TABLE,
            &self.pool,
        )
        .await?;
        Ok(())
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

async fn fetch(conn: &mut SqliteConnection, id: JobId) -> Result<Option<Job>> {
    sqlx::query_as::<_, Row>(SELECT_ONE)
        .bind(id.as_uuid())
        .fetch_optional(conn)
        .await?
        .map(Job::try_from)
        .transpose()
}

/// Attempt endings written by one statement (14 parameters each, well under SQLite's limit of
/// 32,766).
const FINISH_CHUNK: usize = 500;

/// The statement ending `n` attempts: each row of the `VALUES` list is one guarded write.
fn finish_statement(n: usize) -> String {
    let row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    let rows = vec![row; n].join(", ");
    format!(
        "UPDATE generation_jobs SET status = u.n_status, result = COALESCE(u.n_result, result), \
         input_tokens = COALESCE(u.n_input, input_tokens), \
         output_tokens = COALESCE(u.n_output, output_tokens), \
         error_message = CASE WHEN u.n_set_error THEN u.n_error ELSE error_message END, \
         run_at = COALESCE(u.n_run_at, run_at), attempt = attempt - u.n_attempt_back, \
         duration_ms = CASE WHEN u.n_set_duration THEN MAX(0, (u.n_now - started_at) / 1000) \
         ELSE duration_ms END, \
         completed_at = u.n_completed_at, lease_owner = NULL, lease_expires_at = NULL \
         FROM (SELECT column1 AS n_id, column2 AS n_owner, column3 AS n_attempt, \
         column4 AS n_status, column5 AS n_result, column6 AS n_input, column7 AS n_output, \
         column8 AS n_set_error, column9 AS n_error, column10 AS n_run_at, \
         column11 AS n_attempt_back, column12 AS n_set_duration, column13 AS n_now, \
         column14 AS n_completed_at FROM (VALUES {rows})) AS u \
         WHERE generation_jobs.id = u.n_id AND generation_jobs.status = 'processing' \
         AND generation_jobs.lease_owner = u.n_owner AND generation_jobs.attempt = u.n_attempt \
         RETURNING {}",
        job_columns!()
    )
}

/// Ends a chunk of attempts in one statement (a statement per job would hand every job to the
/// connection's thread and back); one result per request, in order.
async fn finish_many(
    conn: &mut SqliteConnection,
    batch: &[FinishRequest],
) -> Result<Vec<Result<Job>>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let sql = finish_statement(batch.len());
    let mut query = sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql)).persistent(false);
    for request in batch {
        let p = FinishParams::of(request)?;
        query = query
            .bind(request.lease.job_id.as_uuid())
            .bind(request.lease.worker.as_uuid())
            .bind(column::<i32>("attempt", request.lease.attempt)?)
            .bind(p.status)
            .bind(p.result.as_ref().map(json_text))
            .bind(p.input_tokens)
            .bind(p.output_tokens)
            .bind(p.set_error)
            .bind(p.error)
            .bind(p.run_at.map(micros))
            .bind(p.attempt_back)
            .bind(p.set_duration)
            .bind(micros(p.now))
            .bind(p.completed_at.map(micros));
    }
    let mut written: std::collections::HashMap<JobId, Job> =
        jobs(query.fetch_all(&mut *conn).await?)?
            .into_iter()
            .map(|job| (job.id, job))
            .collect();
    let mut out = Vec::with_capacity(batch.len());
    for request in batch {
        match written.remove(&request.lease.job_id) {
            Some(job) => out.push(Ok(job)),
            None => {
                let exists = fetch(conn, request.lease.job_id).await?.is_some();
                out.push(Err(lease_error(&request.lease, exists)));
            }
        }
    }
    Ok(out)
}

/// Inserts jobs on `conn`, which may be inside the caller's transaction.
pub(crate) async fn insert_on(
    conn: &mut SqliteConnection,
    jobs: Vec<Job>,
) -> Result<Vec<Enqueued>> {
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        if let Some(key) = &job.dedupe_key {
            let existing: Option<Uuid> = sqlx::query_scalar(
                "SELECT id FROM generation_jobs WHERE dedupe_key = ?1 \
                 AND status IN ('pending', 'processing')",
            )
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(id) = existing {
                out.push(Enqueued {
                    id: JobId::from(id),
                    deduplicated: true,
                });
                continue;
            }
        }
        sqlx::query(
            "INSERT INTO generation_jobs (id, user_id, kind, priority, status, payload, \
             attempt, max_attempts, created_at, run_at, dedupe_key, org_id) \
             VALUES (?1, ?2, ?3, ?4, 'pending', ?5, 0, ?6, ?7, ?8, ?9, ?10)",
        )
        .bind(job.id.as_uuid())
        .bind(job.user_id)
        .bind(&job.kind)
        .bind(job.priority.get())
        .bind(json_text(&job.payload))
        .bind(column::<i32>("max_attempts", job.max_attempts)?)
        .bind(micros(job.created_at))
        .bind(micros(job.run_at))
        .bind(&job.dedupe_key)
        .bind(job.org_id)
        .execute(&mut *conn)
        .await?;
        out.push(Enqueued {
            id: job.id,
            deduplicated: false,
        });
    }
    Ok(out)
}

impl JobStore for SqliteJobStore {
    async fn insert(&self, jobs: Vec<Job>) -> Result<Vec<Enqueued>> {
        let mut tx = self.begin().await?;
        let out = insert_on(&mut tx, jobs).await?;
        tx.commit().await?;
        Ok(out)
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
            .bind(page.after.as_ref().map(|c| micros(c.created_at)))
            .bind(page.after.as_ref().map(|c| c.id.as_uuid()))
            .bind(i64::from(page.limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        Ok(Page::from_overfetch(jobs(rows)?, page.limit))
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Job>> {
        let kinds = request
            .kinds
            .as_ref()
            .map(|k| serde_json::to_string(k).unwrap_or_else(|_| "[]".into()));
        // User ids are stored as 16-byte blobs: compared by their upper-case hex.
        let excluded = (!request.exclude_users.is_empty()).then(|| {
            let hex: Vec<String> = request
                .exclude_users
                .iter()
                .map(|u| u.simple().to_string().to_uppercase())
                .collect();
            serde_json::to_string(&hex).unwrap_or_else(|_| "[]".into())
        });
        let rows = sqlx::query_as::<_, Row>(concat!(
            "UPDATE generation_jobs SET status = 'processing', attempt = attempt + 1, \
             started_at = ?1, lease_owner = ?2, lease_expires_at = ?3 \
             WHERE id IN (SELECT id FROM generation_jobs WHERE status = 'pending' AND run_at <= ?1 \
             AND (?4 IS NULL OR kind IN (SELECT value FROM json_each(?4))) \
             AND (?6 IS NULL OR hex(user_id) NOT IN (SELECT value FROM json_each(?6))) \
             ORDER BY priority DESC, run_at, id LIMIT ?5) RETURNING ",
            job_columns!()
        ))
        .bind(micros(request.now))
        .bind(request.worker.as_uuid())
        .bind(micros(request.lease_until))
        .bind(kinds)
        .bind(i64::from(request.limit))
        .bind(excluded)
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = jobs(rows)?;
        claimed.sort_by_key(|j| (std::cmp::Reverse(j.priority), j.run_at, j.id));
        Ok(claimed)
    }

    async fn finish(&self, batch: &[FinishRequest]) -> Result<Vec<Result<Job>>> {
        let mut tx = self.begin().await?;
        let mut out = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(FINISH_CHUNK) {
            out.extend(finish_many(&mut tx, chunk).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn renew(&self, leases: &[Lease], until: DateTime<Utc>) -> Result<Vec<LeaseState>> {
        let mut tx = self.begin().await?;
        let mut out = Vec::with_capacity(leases.len());
        for lease in leases {
            let cancel: Option<bool> = sqlx::query_scalar(
                "UPDATE generation_jobs SET lease_expires_at = ?1 WHERE id = ?2 \
                 AND status = 'processing' AND lease_owner = ?3 AND attempt = ?4 \
                 RETURNING cancel_requested",
            )
            .bind(micros(until))
            .bind(lease.job_id.as_uuid())
            .bind(lease.worker.as_uuid())
            .bind(column::<i32>("attempt", lease.attempt)?)
            .fetch_optional(&mut *tx)
            .await?;
            out.push(LeaseState {
                lease: *lease,
                held: cancel.is_some(),
                cancel_requested: cancel.unwrap_or(false),
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn set_progress(&self, lease: &Lease, progress: &Value) -> Result<Job> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query_as::<_, Row>(concat!(
            "UPDATE generation_jobs SET progress = ?1 WHERE id = ?2 AND status = 'processing' \
             AND lease_owner = ?3 AND attempt = ?4 RETURNING ",
            job_columns!()
        ))
        .bind(json_text(progress))
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
        // The read and the write share one `BEGIN IMMEDIATE` transaction: the job cannot
        // change (or change spaces) between the scope check and the write.
        let mut tx = self.begin().await?;
        let job = fetch(&mut tx, id)
            .await?
            .filter(|j| j.in_scope(owner))
            .ok_or(Error::NotFound(id))?;
        Transition::Cancel.check(id, job.status)?;
        let row = if job.status == JobStatus::Processing {
            sqlx::query_as::<_, Row>(concat!(
                "UPDATE generation_jobs SET cancel_requested = 1 WHERE id = ?1 RETURNING ",
                job_columns!()
            ))
            .bind(id.as_uuid())
            .fetch_one(&mut *tx)
            .await?
        } else {
            sqlx::query_as::<_, Row>(concat!(
                "UPDATE generation_jobs SET status = 'cancelled', completed_at = ?2 \
                 WHERE id = ?1 RETURNING ",
                job_columns!()
            ))
            .bind(id.as_uuid())
            .bind(micros(now))
            .fetch_one(&mut *tx)
            .await?
        };
        tx.commit().await?;
        Job::try_from(row)
    }

    async fn requeue(&self, id: JobId, now: DateTime<Utc>, payload: Option<Value>) -> Result<Job> {
        let mut tx = self.begin().await?;
        let job = fetch(&mut tx, id).await?.ok_or(Error::NotFound(id))?;
        Transition::Requeue.check(id, job.status)?;
        if let Some(key) = &job.dedupe_key {
            let held: Option<Uuid> = sqlx::query_scalar(
                "SELECT id FROM generation_jobs WHERE dedupe_key = ?1 \
                 AND status IN ('pending', 'processing')",
            )
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
            if held.is_some() {
                return Err(Error::InvalidInput(format!(
                    "job {id} cannot be requeued: another active job holds its dedupe key"
                )));
            }
        }
        let row = sqlx::query_as::<_, Row>(concat!(
            "UPDATE generation_jobs SET status = 'pending', attempt = 0, run_at = ?2, \
             cancel_requested = 0, completed_at = NULL, result = NULL, started_at = NULL, \
             input_tokens = NULL, output_tokens = NULL, duration_ms = NULL, progress = NULL, \
             payload = COALESCE(?3, payload) WHERE id = ?1 RETURNING ",
            job_columns!()
        ))
        .bind(id.as_uuid())
        .bind(micros(now))
        .bind(payload.as_ref().map(json_text))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Job::try_from(row)
    }

    async fn rescue(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Job>> {
        let rows = sqlx::query_as::<_, Row>(concat!(
            "SELECT ",
            job_columns!(),
            " FROM generation_jobs WHERE status = 'processing' AND lease_expires_at < ?1 LIMIT ?2"
        ))
        .bind(micros(now))
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
        if let Some(age) = retention.older_than {
            let cutoff = micros(crate::time::sub(now, age));
            loop {
                let n = sqlx::query(
                    "DELETE FROM generation_jobs WHERE id IN (SELECT id FROM generation_jobs \
                     WHERE status IN ('completed', 'failed', 'cancelled') AND completed_at < ?1 \
                     LIMIT ?2)",
                )
                .bind(cutoff)
                .bind(i64::from(retention.batch_size))
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
                     ORDER BY completed_at DESC, id DESC LIMIT ?2 OFFSET ?1)",
                )
                .bind(keep)
                .bind(i64::from(retention.batch_size))
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
            "UPDATE generation_jobs SET payload = ?2, result = ?3 WHERE id = ?1 \
             AND status IN ('completed', 'failed', 'cancelled')",
        )
        .bind(id.as_uuid())
        .bind(json_text(payload))
        .bind(result.map(json_text))
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
             concurrency, running) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO UPDATE \
             SET last_heartbeat = excluded.last_heartbeat, running = excluded.running",
        )
        .bind(info.id.as_uuid())
        .bind(&info.name)
        .bind(micros(info.started_at))
        .bind(micros(info.last_heartbeat))
        .bind(i64::from(info.concurrency))
        .bind(i64::from(info.running))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn remove_worker(&self, id: WorkerId) -> Result<()> {
        sqlx::query("DELETE FROM generation_job_workers WHERE id = ?1")
            .bind(id.as_uuid())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn workers(&self) -> Result<Vec<WorkerInfo>> {
        let rows: Vec<(Uuid, String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT id, name, started_at, last_heartbeat, concurrency, running \
             FROM generation_job_workers ORDER BY started_at",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, name, started, beat, concurrency, running)| {
                Ok(WorkerInfo {
                    id: WorkerId::from(id),
                    name,
                    started_at: from_micros(started)?,
                    last_heartbeat: from_micros(beat)?,
                    concurrency: u32::try_from(concurrency).unwrap_or(0),
                    running: u32::try_from(running).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn list_all(
        &self,
        filter: &JobFilter,
        finished_since: Option<DateTime<Utc>>,
        page: &PageRequest,
    ) -> Result<Page<Job>> {
        // With `finished_since`, the terminal statuses are named so that the partial index
        // of finished jobs serves the range, not a scan of the whole history.
        let sql = if finished_since.is_some() {
            concat!(
                "SELECT ",
                job_columns!(),
                " FROM generation_jobs WHERE status IN ('completed', 'failed', 'cancelled') \
                 AND completed_at >= ?3 AND (?1 IS NULL OR status = ?1) \
                 AND (?2 IS NULL OR kind = ?2) \
                 AND (?4 IS NULL OR created_at < ?4 OR (created_at = ?4 AND id < ?5)) \
                 ORDER BY created_at DESC, id DESC LIMIT ?6"
            )
        } else {
            concat!(
                "SELECT ",
                job_columns!(),
                " FROM generation_jobs WHERE (?1 IS NULL OR status = ?1) \
                 AND (?2 IS NULL OR kind = ?2) AND ?3 IS NULL \
                 AND (?4 IS NULL OR created_at < ?4 OR (created_at = ?4 AND id < ?5)) \
                 ORDER BY created_at DESC, id DESC LIMIT ?6"
            )
        };
        let rows = sqlx::query_as::<_, Row>(sql)
            .bind(filter.status.map(JobStatus::as_str))
            .bind(filter.kind.as_deref())
            .bind(finished_since.map(micros))
            .bind(page.after.as_ref().map(|c| micros(c.created_at)))
            .bind(page.after.as_ref().map(|c| c.id.as_uuid()))
            .bind(i64::from(page.limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        Ok(Page::from_overfetch(jobs(rows)?, page.limit))
    }
}

impl<S: crate::JobStore> crate::JobQueue<S> {
    /// The SQLite store's pool, when this queue runs on SQLite (a [`SqliteJobStore`],
    /// directly or in an [`AnyJobStore`](crate::AnyJobStore)): where
    /// [`enqueue_in_sqlite`](Self::enqueue_in_sqlite) must be given a connection.
    #[must_use]
    pub fn sqlite_pool(&self) -> Option<&SqlitePool> {
        let store: &dyn std::any::Any = self.store();
        if let Some(crate::AnyJobStore::Sqlite(sqlite)) = store.downcast_ref::<crate::AnyJobStore>()
        {
            return Some(sqlite.pool());
        }
        store
            .downcast_ref::<SqliteJobStore>()
            .map(SqliteJobStore::pool)
    }

    /// Enqueues jobs on `conn`, a connection to this queue's SQLite database, typically inside
    /// the caller's transaction: the jobs exist only if and when it commits. Dedupe applies
    /// as in [`enqueue_many`](Self::enqueue_many). Call [`wake_workers`](Self::wake_workers)
    /// once it has committed, so that this process's idle workers look at once.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for a malformed job, or when the
    /// queue does not run on SQLite; database errors.
    pub async fn enqueue_in_sqlite(
        &self,
        conn: &mut SqliteConnection,
        jobs: Vec<crate::NewJob>,
    ) -> Result<Vec<Enqueued>> {
        if self.sqlite_pool().is_none() {
            return Err(crate::Error::InvalidInput(
                "enqueue_in_sqlite needs a queue on SQLite".into(),
            ));
        }
        let jobs = self.prepare(jobs)?;
        insert_on(conn, jobs).await
    }
}

#[cfg(test)]
mod gauge_plans {
    use super::*;

    /// The plan of `sql` (`EXPLAIN QUERY PLAN`): one line a step.
    async fn plan(pool: &SqlitePool, sql: &'static str, params: usize) -> Vec<String> {
        let explain = sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}"));
        let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(explain);
        for _ in 0..params {
            query = query.bind(0_i64);
        }
        query
            .fetch_all(pool)
            .await
            .unwrap()
            .into_iter()
            .map(|(.., detail)| detail)
            .collect()
    }

    #[tokio::test]
    async fn gauges_search_the_partial_indexes() {
        let file = appforge_testing::TempSqlite::new();
        let store = SqliteJobStore::connect(&file.url()).await.unwrap();
        store.migrate().await.unwrap();
        for (sql, params) in [(DEPTH_LIVE, 0), (WINDOW, 1), (OLDEST_AND_EXPIRED, 1)] {
            let plan = plan(store.pool(), sql, params).await;
            for step in plan.iter().filter(|s| s.contains("generation_jobs")) {
                let bounded = [
                    "generation_jobs_runnable",
                    "generation_jobs_leases",
                    "generation_jobs_finished",
                ]
                .iter()
                .any(|index| step.contains(index));
                assert!(
                    bounded,
                    "{sql}\nreads more than the live jobs and the window: {plan:?}"
                );
            }
        }
        // The whole-table view is what the gauges avoid.
        let all = plan(store.pool(), DEPTH_ALL, 0).await;
        assert!(all.contains(&"SCAN generation_jobs".to_owned()), "{all:?}");
    }

    #[tokio::test]
    async fn each_space_pages_its_history_from_its_index() {
        let file = appforge_testing::TempSqlite::new();
        let store = SqliteJobStore::connect(&file.url()).await.unwrap();
        store.migrate().await.unwrap();
        for (sql, index) in [
            (list_in!(user), "generation_jobs_history"),
            (list_in!(org), "generation_jobs_org_history"),
        ] {
            let plan = plan(store.pool(), sql, 6).await;
            assert!(
                plan.iter().any(|step| step.contains(index)),
                "{sql}\ndoes not read {index}: {plan:?}"
            );
        }
    }
}
