//! The generation service on PostgreSQL: when the quota and the jobs share the database, a
//! submission's reservation, held by its job from the start, and the job commit in one
//! transaction. Skipped (with its reason) without `DATABASE_URL`.
#![cfg(all(feature = "postgres", feature = "generation"))]

use std::time::Duration;

use appforge::apps::MemoryAppStore;
use appforge::generation::{GenerationService, Submission, SubmitError, Submitted};
use appforge::jobs::{JobId, JobStatus, PgJobStore};
use appforge::llm::{FullAppRequest, Pipelines, ScriptedProvider, StopReason};
use appforge::quota::{PgUsageStore, Quota};
use appforge_testing::TestDatabase;
use futures::StreamExt;
use sqlx::PgPool;
use uuid::Uuid;

const APP: &str =
    "===NAME===\nTodo\n===FILE: src/App.tsx===\nexport default () => null;\n===END===\n";

type Service = GenerationService<PgJobStore, PgUsageStore, MemoryAppStore>;

/// A service with its quota on `usage` and its jobs on `jobs`, both migrated.
async fn service(usage: PgPool, jobs: PgPool, provider: ScriptedProvider) -> Service {
    let store = PgUsageStore::from_pool(usage);
    store.migrate().await.unwrap();
    let queue = PgJobStore::from_pool(jobs);
    queue.migrate().await.unwrap();
    GenerationService::builder(
        Quota::builder_with_store(store).build().unwrap(),
        queue,
        MemoryAppStore::new(),
        Pipelines::new(provider),
    )
    .build()
    .unwrap()
}

async fn submit(service: &Service, user: Uuid) -> Result<Submitted, SubmitError> {
    service
        .submit(
            user,
            Submission::full_app(FullAppRequest::new("a todo list")),
        )
        .await
}

/// The reservations of `user` in the table: (holder, state).
async fn reservations(pool: &PgPool, user: Uuid) -> Vec<(Option<Uuid>, String)> {
    sqlx::query_as("SELECT holder, state FROM quota_reservations WHERE user_id = $1")
        .bind(user)
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Many users submitting at once on one database: each gets its job, each job holds its
/// reservation from the start (no later step attaches it), and a job that runs settles it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_commits_its_reservation_and_job_together() {
    let Some(db) = TestDatabase::create_or_skip().await else {
        return;
    };
    let pool = db.pool().await;
    let provider = ScriptedProvider::new();
    let service = service(pool.clone(), pool.clone(), provider.clone()).await;
    assert!(service.submits_in_one_transaction());

    let users: Vec<Uuid> = (0..40).map(|_| Uuid::new_v4()).collect();
    let tasks: Vec<_> = users
        .iter()
        .map(|&user| {
            let service = service.clone();
            tokio::spawn(async move { (user, submit(&service, user).await.unwrap()) })
        })
        .collect();
    let mut submitted = Vec::new();
    for task in tasks {
        submitted.push(task.await.unwrap());
    }
    for (user, s) in &submitted {
        let job = service.queue().get(*user, s.job).await.unwrap();
        assert_eq!(job.status, JobStatus::Pending);
        assert_eq!(job.payload["reservationId"], s.reservation.to_string());
        assert_eq!(
            reservations(&pool, *user).await,
            [(Some(s.job.as_uuid()), "pending".to_owned())],
            "held by its job from the start"
        );
        assert_eq!(service.quota().status(*user).await.unwrap().daily.used, 1);
        // Rows written by one transaction carry its id (`xmin`) until they are updated.
        let (reservation, job): (String, String) = sqlx::query_as(
            "SELECT (SELECT xmin::text FROM quota_reservations WHERE id = $1), \
                    (SELECT xmin::text FROM generation_jobs WHERE id = $2)",
        )
        .bind(s.reservation.as_uuid())
        .bind(s.job.as_uuid())
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(reservation, job, "written by the same transaction");
    }

    // The jobs run (in whatever order the workers claim them): the end of each commits the
    // reservation it carried.
    for _ in &submitted {
        provider.push(ScriptedProvider::text_transcript(
            [APP],
            &StopReason::EndTurn,
        ));
    }
    let (user, first) = &submitted[0];
    let done = only_job(&service, *user, first.job).await;
    assert_eq!(done, JobStatus::Completed);
    assert_eq!(
        reservations(&pool, *user).await,
        [(Some(first.job.as_uuid()), "committed".to_owned())]
    );
}

/// Runs workers until `job` ends; its final status.
async fn only_job(service: &Service, user: Uuid, job: JobId) -> JobStatus {
    let mut events = service.queue().subscribe(user, job).await.unwrap();
    let workers = service.start_workers(1).unwrap();
    while events.next().await.is_some() {}
    workers.shutdown(Duration::from_secs(5)).await;
    service.flush_settlements(Duration::from_secs(5)).await;
    service.queue().get(user, job).await.unwrap().status
}

/// A submission the transaction does not admit takes the separate steps, which decide: a
/// spent quota is refused with its status and nothing is enqueued.
#[tokio::test]
async fn a_spent_quota_is_refused_and_nothing_is_enqueued() {
    let Some(db) = TestDatabase::create_or_skip().await else {
        return;
    };
    let pool = db.pool().await;
    let service = service(pool.clone(), pool.clone(), ScriptedProvider::new()).await;
    let user = Uuid::new_v4();
    for _ in 0..5 {
        submit(&service, user).await.unwrap();
    }
    match submit(&service, user).await {
        Err(SubmitError::Denied(status)) => assert_eq!(status.daily.used, 5),
        other => panic!("expected a denial, got {other:?}"),
    }
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM generation_jobs WHERE user_id = $1")
        .bind(user)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(jobs, 5);
}

/// The job's insert fails inside the transaction (a trigger refuses it): the reservation
/// made before it in the same transaction is gone with it. The separate steps then try once
/// more, fail the same way and refund their reservation: nothing is charged, nothing runs.
#[tokio::test]
async fn a_job_that_cannot_be_written_leaves_no_reservation() {
    let Some(db) = TestDatabase::create_or_skip().await else {
        return;
    };
    let pool = db.pool().await;
    let service = service(pool.clone(), pool.clone(), ScriptedProvider::new()).await;
    for statement in [
        "CREATE FUNCTION refuse_jobs() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'no jobs today'; END $$",
        "CREATE TRIGGER refuse_jobs BEFORE INSERT ON generation_jobs \
         FOR EACH ROW EXECUTE FUNCTION refuse_jobs()",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    let user = Uuid::new_v4();
    let error = submit(&service, user).await.unwrap_err();
    assert!(matches!(error, SubmitError::Jobs(_)), "{error:?}");
    assert_eq!(
        reservations(&pool, user).await,
        [(None, "refunded".to_owned())],
        "one reservation, the separate steps' own, refunded; none from the transaction"
    );
    assert_eq!(service.quota().status(user).await.unwrap().daily.used, 0);
}

/// The quota and the jobs on two databases: no shared transaction; submissions take the
/// separate steps (reserve, enqueue, hold) and still work.
#[tokio::test]
async fn two_databases_submit_in_separate_steps() {
    let (Some(usage), Some(jobs)) = (
        TestDatabase::create_or_skip().await,
        TestDatabase::create_or_skip().await,
    ) else {
        return;
    };
    let usage_pool = usage.pool().await;
    let service = service(
        usage_pool.clone(),
        jobs.pool().await,
        ScriptedProvider::new(),
    )
    .await;
    assert!(!service.submits_in_one_transaction());
    let user = Uuid::new_v4();
    let submitted = submit(&service, user).await.unwrap();
    assert_eq!(
        reservations(&usage_pool, user).await,
        [(Some(submitted.job.as_uuid()), "pending".to_owned())]
    );
}
