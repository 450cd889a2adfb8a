//! Settlement and reconciliation on the memory stores: every way a job ends is settled by the
//! rules of `appforge::settlement`, once, by a reconciler that finds what a stopped process
//! left open.

use std::time::Duration;

use appforge::jobs::{JobId, JobQueue, JobStatus, MemoryJobStore, NewJob, Outcome, WorkerPool};
use appforge::quota::{Admission, MemoryUsageStore, Quota, Reservation, Resource};
use appforge::reconcile::Reconciler;
use appforge::settlement::{self, ChatEnd, MEMBER_RESERVATION_KEY, RESERVATION_KEY};
use appforge_core::ManualClock;
use futures::StreamExt;
use serde_json::json;
use uuid::Uuid;

struct Fixture {
    clock: ManualClock,
    quota: Quota,
    queue: JobQueue<MemoryJobStore>,
}

fn fixture() -> Fixture {
    let clock = ManualClock::at("2026-03-14T12:00:00Z".parse().unwrap());
    let quota = Quota::builder(MemoryUsageStore::new())
        .clock(clock.shared())
        .build()
        .unwrap();
    // No settlement hook: every job ends as if its process stopped right after its last write.
    let queue = JobQueue::builder(MemoryJobStore::new())
        .clock(clock.shared())
        .build()
        .unwrap();
    Fixture {
        clock,
        quota,
        queue,
    }
}

impl Fixture {
    async fn reserve(&self, user: Uuid) -> Reservation {
        match self
            .quota
            .reserve_for(user, Resource::Generation, 1)
            .await
            .unwrap()
        {
            Admission::Granted(reservation) => reservation,
            Admission::Denied(status) => panic!("denied: {status:?}"),
        }
    }

    /// Enqueues a job of `kind` carrying a fresh reservation, held by the job.
    async fn job(&self, user: Uuid, kind: &str) -> JobId {
        let reservation = self.reserve(user).await;
        let new =
            NewJob::new(kind, user, json!({ RESERVATION_KEY: reservation.id })).max_attempts(1);
        let job = self.queue.enqueue(new).await.unwrap();
        self.quota
            .hold(reservation.id, job.id.into())
            .await
            .unwrap();
        job.id
    }

    /// Runs the queued jobs to their end with handlers that end each kind its own way.
    async fn run(&self, user: Uuid, jobs: &[JobId]) {
        let pool = WorkerPool::builder(self.queue.clone())
            .handler("completes", |_ctx| async {
                Outcome::success(json!({})).with_tokens(100, 900)
            })
            .handler("request_error", |_ctx| async {
                Outcome::permanent(settlement::request_error("the app was deleted"))
                    .with_tokens(50, 10)
            })
            .handler("provider_error", |_ctx| async {
                Outcome::permanent("the provider is overloaded").with_tokens(30, 0)
            })
            .start()
            .unwrap();
        for id in jobs {
            let mut events = self.queue.subscribe(user, *id).await.unwrap();
            while events.next().await.is_some() {}
        }
        pool.shutdown(Duration::from_secs(5)).await;
    }
}

#[tokio::test]
async fn every_way_a_job_ends_is_settled_once_by_its_rule() {
    let f = fixture();
    let user = Uuid::new_v4();
    let completed = f.job(user, "completes").await;
    let by_request = f.job(user, "request_error").await;
    let by_provider = f.job(user, "provider_error").await;
    let cancelled = f.job(user, "completes").await;
    f.queue.cancel(user, cancelled).await.unwrap();
    f.run(user, &[completed, by_request, by_provider]).await;
    for (id, status) in [
        (completed, JobStatus::Completed),
        (by_request, JobStatus::Failed),
        (by_provider, JobStatus::Failed),
        (cancelled, JobStatus::Cancelled),
    ] {
        let job = f.queue.get(user, id).await.unwrap();
        assert_eq!(job.status, status, "{id}");
    }
    // Four generations reserved and none settled yet.
    assert_eq!(f.quota.status(user).await.unwrap().daily.used, 4);

    let reconciler = Reconciler::new(f.quota.clone(), f.queue.clone());
    let report = reconciler.at_start().await;
    // Completed and failed by the request: charged. Failed by the provider, cancelled before
    // it ran: refunded.
    assert_eq!((report.committed, report.refunded), (2, 2), "{report:?}");
    assert_eq!(report.errors, 0);
    let status = f.quota.status(user).await.unwrap();
    assert_eq!(status.daily.used, 2);
    // Every attempt that reached the model is paid for in tokens, refunded or not.
    assert_eq!(status.tokens.used, 1_000 + 60 + 30);

    // A second pass finds nothing left to do: nothing is charged twice.
    let again = reconciler.at_start().await;
    assert_eq!(
        (again.committed, again.refunded, again.released),
        (0, 0, 0),
        "{again:?}"
    );
    assert_eq!(f.quota.status(user).await.unwrap().daily.used, 2);
}

#[tokio::test]
async fn held_reservations_of_live_jobs_stay_and_orphans_are_released() {
    let f = fixture();
    let user = Uuid::new_v4();
    // A job still waiting in the queue: its reservation must survive any number of passes.
    let waiting = f.job(user, "completes").await;
    // A reservation held for a job that never came to exist (the enqueue failed after it).
    let orphan = f.reserve(user).await;
    f.quota.hold(orphan.id, Uuid::new_v4()).await.unwrap();
    // Long after the reservation timeout.
    f.clock.advance(f.quota.reservation_timeout() * 3);

    let report = Reconciler::new(f.quota.clone(), f.queue.clone())
        .at_start()
        .await;
    assert_eq!(report.released, 1, "{report:?}");
    assert_eq!(
        f.quota.status(user).await.unwrap().daily.used,
        1,
        "the waiting job keeps its slot"
    );
    assert_eq!(
        f.queue.get(user, waiting).await.unwrap().status,
        JobStatus::Pending
    );
}

/// A job under an org's cap per member carries two reservations, the org's and the
/// member's: found by the reconciler long after its process stopped, both are settled by the
/// job's rule, and a job still waiting keeps both.
#[tokio::test]
async fn a_members_cap_reservation_is_settled_with_its_job() {
    let f = fixture();
    let (org, member) = (Uuid::new_v4(), Uuid::new_v4());
    let job = |kind: &'static str| {
        let f = &f;
        async move {
            // The member's first: the reconciler meets it before the org's.
            let capped = f.reserve(member).await;
            let pooled = f.reserve(org).await;
            let payload = json!({ RESERVATION_KEY: pooled.id, MEMBER_RESERVATION_KEY: capped.id });
            let user = Uuid::new_v4();
            let new = NewJob::new(kind, user, payload).max_attempts(1);
            let job = f.queue.enqueue(new).await.unwrap();
            for id in [pooled.id, capped.id] {
                f.quota.hold(id, job.id.into()).await.unwrap();
            }
            (job.id, user)
        }
    };
    let (completed, by) = job("completes").await;
    let (failed, failed_by) = job("provider_error").await;
    f.run(by, &[completed]).await;
    f.run(failed_by, &[failed]).await;
    let (waiting, _) = job("completes").await;
    f.clock.advance(f.quota.reservation_timeout() * 3);

    let report = Reconciler::new(f.quota.clone(), f.queue.clone())
        .at_start()
        .await;
    assert_eq!(
        (report.committed, report.refunded, report.released),
        (1, 1, 0),
        "{report:?}"
    );
    assert_eq!(report.errors, 0);
    // The completed job counts for both, the refunded one for neither, the waiting one
    // keeps its slot in both.
    for subject in [org, member] {
        assert_eq!(
            f.quota.status(subject).await.unwrap().daily.used,
            2,
            "{subject}"
        );
    }
    assert_eq!(
        f.queue.get_any(waiting).await.unwrap().status,
        JobStatus::Pending
    );
}

#[test]
fn chats_count_when_the_model_produced_something_or_the_request_failed() {
    assert!(ChatEnd::Replied.charged(true));
    assert!(ChatEnd::Refused.charged(false));
    assert!(ChatEnd::Stopped.charged(true));
    assert!(!ChatEnd::Stopped.charged(false));
    assert!(!ChatEnd::Failed.charged(true));
}
