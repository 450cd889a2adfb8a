//! The generation service on one SQLite file: a submission's reservation, held by its job from
//! the start, and the job commit in one immediate transaction.
#![cfg(all(feature = "sqlite", feature = "generation"))]

use appforge::apps::MemoryAppStore;
use appforge::generation::{GenerationService, Submission, SubmitError, Submitted};
use appforge::jobs::{JobStatus, SqliteJobStore};
use appforge::llm::{FullAppRequest, Pipelines, ScriptedProvider};
use appforge::quota::{Quota, SqliteUsageStore};
use sqlx::SqlitePool;
use uuid::Uuid;

type Service = GenerationService<SqliteJobStore, SqliteUsageStore, MemoryAppStore>;

/// A service with its quota and its jobs on `usage` and `jobs`, both migrated.
async fn service(usage: SqlitePool, jobs: SqlitePool) -> Service {
    let store = SqliteUsageStore::from_pool(usage);
    store.migrate().await.unwrap();
    let queue = SqliteJobStore::from_pool(jobs);
    queue.migrate().await.unwrap();
    GenerationService::builder(
        Quota::builder_with_store(store).build().unwrap(),
        queue,
        MemoryAppStore::new(),
        Pipelines::new(ScriptedProvider::new()),
    )
    .build()
    .unwrap()
}

async fn pool(path: &std::path::Path) -> SqlitePool {
    match appforge::core::db::Connect::new(format!("sqlite://{}", path.display()))
        .connect()
        .await
        .unwrap()
    {
        appforge::core::db::Pool::Sqlite(pool) => pool,
        #[allow(unreachable_patterns)] // with the postgres feature too
        _ => unreachable!("a sqlite:// URL"),
    }
}

async fn submit(service: &Service, user: Uuid) -> Result<Submitted, SubmitError> {
    service
        .submit(
            user,
            Submission::full_app(FullAppRequest::new("a todo list")),
        )
        .await
}

/// Logs every later change of a reservation's holder (what a separate `hold` step does).
async fn log_holds(pool: &SqlitePool) {
    for statement in [
        "CREATE TABLE holds (id BLOB)",
        "CREATE TRIGGER log_holds AFTER UPDATE OF holder ON quota_reservations \
         BEGIN INSERT INTO holds VALUES (new.id); END",
    ] {
        sqlx::query(statement).execute(pool).await.unwrap();
    }
}

async fn count(pool: &SqlitePool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// On one file, the reservation is written held by its job (no later step holds it) in the
/// transaction that writes the job; a spent quota is still refused with its status.
#[tokio::test]
async fn a_submission_writes_its_reservation_held_with_its_job() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(&dir.path().join("app.db")).await;
    let service = service(pool.clone(), pool.clone()).await;
    assert!(service.submits_in_one_transaction());
    log_holds(&pool).await;

    let user = Uuid::new_v4();
    let mut jobs = Vec::new();
    for _ in 0..5 {
        jobs.push(submit(&service, user).await.unwrap().job);
    }
    for job in &jobs {
        let job = service.queue().get(user, *job).await.unwrap();
        assert_eq!(job.status, JobStatus::Pending);
    }
    let held: Vec<Uuid> =
        sqlx::query_scalar("SELECT holder FROM quota_reservations WHERE state = 'pending'")
            .fetch_all(&pool)
            .await
            .unwrap();
    let mut expected: Vec<Uuid> = jobs.iter().map(|j| j.as_uuid()).collect();
    let mut held = held;
    held.sort_unstable();
    expected.sort_unstable();
    assert_eq!(held, expected);
    assert_eq!(count(&pool, "SELECT count(*) FROM holds").await, 0);

    match submit(&service, user).await {
        Err(SubmitError::Denied(status)) => assert_eq!(status.daily.used, 5),
        other => panic!("expected a denial, got {other:?}"),
    }
    assert_eq!(
        count(&pool, "SELECT count(*) FROM generation_jobs").await,
        5
    );
}

/// The job's insert fails (a trigger refuses it): the transaction's reservation goes with
/// it. The separate steps then fail the same way and refund their own: nothing is charged.
#[tokio::test]
async fn a_job_that_cannot_be_written_leaves_no_reservation() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(&dir.path().join("app.db")).await;
    let service = service(pool.clone(), pool.clone()).await;
    sqlx::query(
        "CREATE TRIGGER refuse_jobs BEFORE INSERT ON generation_jobs \
         BEGIN SELECT RAISE(ABORT, 'no jobs today'); END",
    )
    .execute(&pool)
    .await
    .unwrap();
    let user = Uuid::new_v4();
    let error = submit(&service, user).await.unwrap_err();
    assert!(matches!(error, SubmitError::Jobs(_)), "{error:?}");
    let states: Vec<String> = sqlx::query_scalar("SELECT state FROM quota_reservations")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(states, ["refunded"]);
    assert_eq!(service.quota().status(user).await.unwrap().daily.used, 0);
}

/// Two files (or in-memory databases, one per pool): separate steps, still working.
#[tokio::test]
async fn two_files_submit_in_separate_steps() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(
        pool(&dir.path().join("quota.db")).await,
        pool(&dir.path().join("jobs.db")).await,
    )
    .await;
    assert!(!service.submits_in_one_transaction());
    submit(&service, Uuid::new_v4()).await.unwrap();
}
