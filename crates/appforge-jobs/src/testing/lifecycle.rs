//! Transitions, ordering, retries, dedupe, cancellation and leases.

use std::time::Duration;

use crate::{
    ClaimRequest, Finish, JobFilter, JobId, JobStatus, JobStore, Lease, PageRequest, Priority,
    TokenUsage, WorkerId,
};
use serde_json::json;
use uuid::Uuid;

use super::{Fixture, LEASE, claim, complete, finish, job};

/// The scenario `enqueue_and_owner_only_get`: enqueue and owner only get.
pub async fn enqueue_and_owner_only_get<S: JobStore>(f: Fixture<S>) {
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let enq = f
        .queue
        .enqueue(job("full_app", alice).priority(Priority::PRO))
        .await
        .unwrap();
    assert!(!enq.deduplicated);
    let got = f.queue.get(alice, enq.id).await.unwrap();
    assert_eq!(got.status, JobStatus::Pending);
    assert_eq!(got.priority, Priority::PRO);
    assert_eq!(got.attempt, 0);
    assert_eq!(got.max_attempts, 3);
    assert_eq!(got.created_at, f.clock_now());
    assert_eq!(got.payload, json!({"prompt": "a habit tracker"}));
    assert!(f.queue.get(bob, enq.id).await.unwrap_err().is_not_found());
    assert!(
        f.queue
            .get(alice, JobId::new())
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(f.queue.get_any(enq.id).await.unwrap(), got);
    // Bad input is refused and nothing is written.
    let err = f.queue.enqueue(job("", alice)).await.unwrap_err();
    assert!(matches!(err, crate::Error::InvalidInput(_)), "{err}");
    let page = f
        .queue
        .list(alice, &JobFilter::default(), &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
}

/// The scenario `claims_by_priority_then_fifo`: claims by priority then fifo.
pub async fn claims_by_priority_then_fifo<S: JobStore>(f: Fixture<S>) {
    let user = Uuid::new_v4();
    let mut ids = Vec::new();
    for p in [
        Priority::FREE,
        Priority::PRO,
        Priority::TEAM,
        Priority::FREE,
        Priority::PRO,
        Priority::TEAM,
    ] {
        ids.push(
            f.queue
                .enqueue(job("full_app", user).priority(p))
                .await
                .unwrap()
                .id,
        );
        f.advance(Duration::from_millis(1));
    }
    let worker = WorkerId::new();
    let first = claim(&f, worker, 1).await;
    assert_eq!(first.iter().map(|j| j.id).collect::<Vec<_>>(), [ids[2]]);
    let rest = claim(&f, worker, 10).await;
    let order: Vec<JobId> = rest.iter().map(|j| j.id).collect();
    assert_eq!(order, [ids[5], ids[1], ids[4], ids[0], ids[3]]);
    for j in &rest {
        assert_eq!(j.status, JobStatus::Processing);
        assert_eq!(j.attempt, 1);
        assert_eq!(j.lease_owner, Some(worker));
        assert_eq!(j.started_at, Some(f.clock_now()));
    }
    assert!(claim(&f, worker, 10).await.is_empty());
}

/// The scenario `claim_waits_for_run_at_and_filters_kinds`: claim waits for run at and filters kinds.
pub async fn claim_waits_for_run_at_and_filters_kinds<S: JobStore>(f: Fixture<S>) {
    let user = Uuid::new_v4();
    let later = f.clock_now() + chrono::Duration::seconds(60);
    let delayed = f
        .queue
        .enqueue(job("full_app", user).run_at(later))
        .await
        .unwrap()
        .id;
    let other = f.queue.enqueue(job("plan_phases", user)).await.unwrap().id;
    let worker = WorkerId::new();
    let now = f.clock_now();
    let request = ClaimRequest {
        worker,
        kinds: Some(vec!["full_app".into()]),
        limit: 10,
        now,
        lease_until: now + chrono::Duration::seconds(30),
        exclude_users: Vec::new(),
    };
    assert!(
        f.store.claim(&request).await.unwrap().is_empty(),
        "nothing runnable of that kind"
    );
    f.advance(Duration::from_secs(60));
    let request = ClaimRequest {
        now: f.clock_now(),
        ..request
    };
    let got: Vec<JobId> = f
        .store
        .claim(&request)
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(got, [delayed]);
    let got: Vec<JobId> = claim(&f, worker, 10).await.iter().map(|j| j.id).collect();
    assert_eq!(got, [other]);
}

/// The scenario `complete_records_result_tokens_and_duration`: complete records result tokens and duration.
pub async fn complete_records_result_tokens_and_duration<S: JobStore>(f: Fixture<S>) {
    let user = Uuid::new_v4();
    let id = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    let claimed = claim(&f, WorkerId::new(), 1).await.pop().unwrap();
    f.advance(Duration::from_millis(1500));
    let done = finish(&f, claimed.lease().unwrap(), complete())
        .await
        .unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    let stored = f.queue.get(user, id).await.unwrap();
    assert_eq!(stored, done);
    assert_eq!(stored.result, Some(json!({"files": 3})));
    assert_eq!(
        (stored.input_tokens, stored.output_tokens),
        (Some(100), Some(2000))
    );
    assert_eq!(stored.duration_ms, Some(1500));
    assert_eq!(stored.completed_at, Some(f.clock_now()));
    assert_eq!(stored.lease_owner, None);
    assert_eq!(stored.lease_expires_at, None);
}

/// The scenario `illegal_transitions_are_errors`: illegal transitions are errors.
pub async fn illegal_transitions_are_errors<S: JobStore>(f: Fixture<S>) {
    let user = Uuid::new_v4();
    let id = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    // Requeue is only for failed or cancelled jobs.
    assert!(f.queue.retry(id).await.unwrap_err().is_illegal_transition());
    let claimed = claim(&f, WorkerId::new(), 1).await.pop().unwrap();
    assert!(f.queue.retry(id).await.unwrap_err().is_illegal_transition());
    let lease = claimed.lease().unwrap();
    finish(&f, lease, complete()).await.unwrap();
    // A finished job cannot be completed, failed, cancelled or retried by anyone.
    for again in [
        complete(),
        Finish::Fail {
            error: "x".into(),
            tokens: None,
        },
        Finish::Cancel { tokens: None },
        Finish::Release,
    ] {
        assert!(finish(&f, lease, again).await.unwrap_err().is_lease_lost());
    }
    let err = f.queue.cancel(user, id).await.unwrap_err();
    assert!(err.is_illegal_transition(), "{err}");
    assert!(
        err.to_string().contains("cannot cancel while completed"),
        "{err}"
    );
    assert!(f.queue.retry(id).await.unwrap_err().is_illegal_transition());
    assert_eq!(
        f.queue.get(user, id).await.unwrap().status,
        JobStatus::Completed
    );
    // An unknown job.
    let ghost = Lease {
        job_id: JobId::new(),
        worker: WorkerId::new(),
        attempt: 1,
    };
    assert!(
        finish(&f, ghost, complete())
            .await
            .unwrap_err()
            .is_not_found()
    );
}

/// The scenario `retry_schedules_attempt_in_the_future`: retry schedules attempt in the future.
pub async fn retry_schedules_attempt_in_the_future<S: JobStore>(f: Fixture<S>) {
    let user = Uuid::new_v4();
    let id = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    let worker = WorkerId::new();
    let claimed = claim(&f, worker, 1).await.pop().unwrap();
    let run_at = f.clock_now() + chrono::Duration::seconds(5);
    let job = finish(
        &f,
        claimed.lease().unwrap(),
        Finish::Retry {
            run_at,
            error: "429".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(job.status, JobStatus::Pending);
    assert_eq!(job.run_at, run_at);
    assert_eq!(job.attempt, 1);
    assert_eq!(job.error.as_deref(), Some("429"));
    assert!(claim(&f, worker, 1).await.is_empty(), "not before run_at");
    f.advance(Duration::from_secs(5));
    let again = claim(&f, worker, 1).await.pop().unwrap();
    assert_eq!((again.id, again.attempt), (id, 2));
}

/// The scenario `fail_is_terminal`: fail is terminal.
pub async fn fail_is_terminal<S: JobStore>(f: Fixture<S>) {
    let user = Uuid::new_v4();
    let id = f
        .queue
        .enqueue(job("full_app", user).dedupe_key("k"))
        .await
        .unwrap()
        .id;
    let claimed = claim(&f, WorkerId::new(), 1).await.pop().unwrap();
    let failed = finish(
        &f,
        claimed.lease().unwrap(),
        Finish::Fail {
            error: "bad prompt".into(),
            tokens: Some(TokenUsage::new(700, 25)),
        },
    )
    .await
    .unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("bad prompt"));
    // What the failed attempt spent is kept, for costs.
    assert_eq!(
        (failed.input_tokens, failed.output_tokens),
        (Some(700), Some(25))
    );
    let stored = f.store.get(id).await.unwrap().unwrap();
    assert_eq!(
        (stored.input_tokens, stored.output_tokens),
        (Some(700), Some(25))
    );
    assert_eq!(failed.completed_at, Some(f.clock_now()));
    assert!(claim(&f, WorkerId::new(), 1).await.is_empty());
    // The dedupe key is free again.
    let next = f
        .queue
        .enqueue(job("full_app", user).dedupe_key("k"))
        .await
        .unwrap();
    assert!(!next.deduplicated);
    assert_ne!(next.id, id);
}

/// The scenario `dedupe_while_active`: dedupe while active.
pub async fn dedupe_while_active<S: JobStore>(f: Fixture<S>) {
    let user = Uuid::new_v4();
    let first = f
        .queue
        .enqueue(job("full_app", user).dedupe_key("gen-1"))
        .await
        .unwrap();
    let dup = f
        .queue
        .enqueue(job("full_app", user).dedupe_key("gen-1"))
        .await
        .unwrap();
    assert!(dup.deduplicated);
    assert_eq!(dup.id, first.id);
    // In one batch, too.
    let batch = f
        .queue
        .enqueue_many(vec![
            job("full_app", user).dedupe_key("gen-2"),
            job("full_app", user).dedupe_key("gen-2"),
            job("full_app", user).dedupe_key("gen-1"),
            job("full_app", user),
        ])
        .await
        .unwrap();
    assert!(!batch[0].deduplicated);
    assert_eq!((batch[1].id, batch[1].deduplicated), (batch[0].id, true));
    assert_eq!((batch[2].id, batch[2].deduplicated), (first.id, true));
    assert!(!batch[3].deduplicated);
    // Still held while processing.
    let worker = WorkerId::new();
    let claimed = claim(&f, worker, 10).await;
    assert_eq!(claimed.len(), 3);
    let dup = f
        .queue
        .enqueue(job("full_app", user).dedupe_key("gen-1"))
        .await
        .unwrap();
    assert_eq!((dup.id, dup.deduplicated), (first.id, true));
    // Released once finished.
    let lease = claimed
        .iter()
        .find(|j| j.id == first.id)
        .unwrap()
        .lease()
        .unwrap();
    finish(&f, lease, complete()).await.unwrap();
    let fresh = f
        .queue
        .enqueue(job("full_app", user).dedupe_key("gen-1"))
        .await
        .unwrap();
    assert!(!fresh.deduplicated);
    assert_ne!(fresh.id, first.id);
}

/// The scenario `cancel_pending_job`: cancel pending job.
pub async fn cancel_pending_job<S: JobStore>(f: Fixture<S>) {
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let id = f
        .queue
        .enqueue(job("full_app", alice).dedupe_key("c"))
        .await
        .unwrap()
        .id;
    assert!(f.queue.cancel(bob, id).await.unwrap_err().is_not_found());
    let cancelled = f.queue.cancel(alice, id).await.unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    assert_eq!(cancelled.completed_at, Some(f.clock_now()));
    assert!(claim(&f, WorkerId::new(), 10).await.is_empty());
    assert!(
        f.queue
            .cancel(alice, id)
            .await
            .unwrap_err()
            .is_illegal_transition()
    );
    assert!(
        !f.queue
            .enqueue(job("full_app", alice).dedupe_key("c"))
            .await
            .unwrap()
            .deduplicated
    );
}

/// The scenario `cancel_running_job_requests_then_cancels`: cancel running job requests then cancels.
pub async fn cancel_running_job_requests_then_cancels<S: JobStore>(f: Fixture<S>) {
    let user = Uuid::new_v4();
    let id = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    let claimed = claim(&f, WorkerId::new(), 1).await.pop().unwrap();
    let lease = claimed.lease().unwrap();
    let requested = f.queue.cancel(user, id).await.unwrap();
    assert_eq!(requested.status, JobStatus::Processing);
    assert!(requested.cancel_requested);
    // Asking twice is fine.
    assert!(f.queue.cancel(user, id).await.unwrap().cancel_requested);
    let states = f
        .store
        .renew(&[lease], f.clock_now() + chrono::Duration::seconds(30))
        .await
        .unwrap();
    assert!(states[0].held && states[0].cancel_requested);
    let spent = Some(TokenUsage::new(1200, 300));
    let done = finish(&f, lease, Finish::Cancel { tokens: spent })
        .await
        .unwrap();
    assert_eq!(done.status, JobStatus::Cancelled);
    // A job stopped midway keeps what it spent: a host may charge for it.
    let stored = f.store.get(id).await.unwrap().unwrap();
    assert_eq!(
        (stored.input_tokens, stored.output_tokens),
        (Some(1200), Some(300))
    );

    // A running job whose worker died while cancelling ends cancelled on rescue.
    let id = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    claim(&f, WorkerId::new(), 1).await;
    f.queue.cancel(user, id).await.unwrap();
    f.advance(LEASE + Duration::from_secs(1));
    let rescued = f.queue.rescue_expired().await.unwrap();
    assert_eq!(rescued.len(), 1);
    assert_eq!(rescued[0].status, JobStatus::Cancelled);
}

/// The scenario `lease_expiry_rescues_and_fences_the_stale_worker`: lease expiry rescues and fences the stale worker.
pub async fn lease_expiry_rescues_and_fences_the_stale_worker<S: JobStore>(f: Fixture<S>) {
    let user = Uuid::new_v4();
    let id = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    let stale = WorkerId::new();
    let old = claim(&f, stale, 1).await.pop().unwrap().lease().unwrap();
    f.advance(LEASE);
    assert!(
        f.queue.rescue_expired().await.unwrap().is_empty(),
        "not expired at the instant"
    );
    f.advance(Duration::from_secs(1));
    let rescued = f.queue.rescue_expired().await.unwrap();
    assert_eq!(rescued.len(), 1);
    let job = &rescued[0];
    assert_eq!(
        (job.id, job.status, job.attempt),
        (id, JobStatus::Pending, 1)
    );
    assert!(
        job.error.as_deref().unwrap().contains("lease expired"),
        "{:?}",
        job.error
    );
    assert_eq!(job.lease_owner, None);
    // Another worker takes it.
    let fresh = WorkerId::new();
    let new = claim(&f, fresh, 1).await.pop().unwrap();
    assert_eq!((new.id, new.attempt, new.lease_owner), (id, 2, Some(fresh)));
    // The stale worker wakes up: it can neither renew, report, complete nor fail.
    let states = f.store.renew(&[old], f.clock_now()).await.unwrap();
    assert!(!states[0].held);
    assert!(
        f.store
            .set_progress(&old, &json!({"x": 1}))
            .await
            .unwrap_err()
            .is_lease_lost()
    );
    assert!(
        finish(&f, old, complete())
            .await
            .unwrap_err()
            .is_lease_lost()
    );
    assert!(
        finish(
            &f,
            old,
            Finish::Fail {
                error: "late".into(),
                tokens: None,
            }
        )
        .await
        .unwrap_err()
        .is_lease_lost()
    );
    // Even with the same worker id but the old attempt number.
    let same_owner_old_attempt = Lease {
        worker: fresh,
        ..old
    };
    assert!(
        finish(&f, same_owner_old_attempt, complete())
            .await
            .unwrap_err()
            .is_lease_lost()
    );
    let done = finish(&f, new.lease().unwrap(), complete()).await.unwrap();
    assert_eq!((done.status, done.attempt), (JobStatus::Completed, 2));
}

/// The scenario `rescue_fails_when_attempts_are_spent`: rescue fails when attempts are spent.
pub async fn rescue_fails_when_attempts_are_spent<S: JobStore>(f: Fixture<S>) {
    let user = Uuid::new_v4();
    let id = f
        .queue
        .enqueue(job("full_app", user).max_attempts(1))
        .await
        .unwrap()
        .id;
    claim(&f, WorkerId::new(), 1).await;
    f.advance(LEASE + Duration::from_secs(1));
    let rescued = f.queue.rescue_expired().await.unwrap();
    assert_eq!(rescued.len(), 1);
    let job = f.queue.get(user, id).await.unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert!(job.error.unwrap().contains("attempt 1 of 1"));
    assert_eq!(job.completed_at, Some(f.clock_now()));
}

/// The scenario `renew_extends_only_held_leases`: renew extends only held leases.
pub async fn renew_extends_only_held_leases<S: JobStore>(f: Fixture<S>) {
    let user = Uuid::new_v4();
    f.queue.enqueue(job("full_app", user)).await.unwrap();
    let lease = claim(&f, WorkerId::new(), 1)
        .await
        .pop()
        .unwrap()
        .lease()
        .unwrap();
    f.advance(Duration::from_secs(20));
    let until = f.clock_now() + chrono::Duration::seconds(30);
    let states = f.store.renew(&[lease], until).await.unwrap();
    assert!(states[0].held && !states[0].cancel_requested);
    assert_eq!(
        f.queue
            .get_any(lease.job_id)
            .await
            .unwrap()
            .lease_expires_at,
        Some(until)
    );
    f.advance(Duration::from_secs(20));
    assert!(
        f.queue.rescue_expired().await.unwrap().is_empty(),
        "renewed lease holds"
    );
    let other = Lease {
        worker: WorkerId::new(),
        ..lease
    };
    assert!(!f.store.renew(&[other], until).await.unwrap()[0].held);
}

/// The scenario `release_gives_the_attempt_back`: release gives the attempt back.
pub async fn release_gives_the_attempt_back<S: JobStore>(f: Fixture<S>) {
    let user = Uuid::new_v4();
    let id = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    let lease = claim(&f, WorkerId::new(), 1)
        .await
        .pop()
        .unwrap()
        .lease()
        .unwrap();
    let released = finish(&f, lease, Finish::Release).await.unwrap();
    assert_eq!((released.status, released.attempt), (JobStatus::Pending, 0));
    let again = claim(&f, WorkerId::new(), 1).await.pop().unwrap();
    assert_eq!((again.id, again.attempt), (id, 1));
}

/// A claim skips the jobs of excluded users; a deferred job goes back to pending with its
/// attempt given back and waits for its `run_at`.
pub async fn excluded_users_are_skipped_and_deferred_jobs_wait<S: JobStore>(f: Fixture<S>) {
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let first = f.queue.enqueue(job("full_app", a)).await.unwrap().id;
    let other = f.queue.enqueue(job("full_app", b)).await.unwrap().id;
    let now = f.clock_now();
    let request = ClaimRequest {
        worker: WorkerId::new(),
        kinds: None,
        limit: 10,
        now,
        lease_until: now + chrono::Duration::seconds(30),
        exclude_users: vec![a],
    };
    let got: Vec<JobId> = f
        .store
        .claim(&request)
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(got, [other], "a's job is skipped");
    let lease = claim(&f, WorkerId::new(), 10)
        .await
        .pop()
        .unwrap()
        .lease()
        .unwrap();
    assert_eq!(lease.job_id, first);
    let run_at = f.clock_now() + chrono::Duration::seconds(60);
    let deferred = finish(&f, lease, Finish::Defer { run_at }).await.unwrap();
    assert_eq!(
        (deferred.status, deferred.attempt, deferred.run_at),
        (JobStatus::Pending, 0, run_at)
    );
    assert!(claim(&f, WorkerId::new(), 10).await.is_empty(), "not yet");
    f.advance(Duration::from_secs(60));
    let again = claim(&f, WorkerId::new(), 10).await.pop().unwrap();
    assert_eq!((again.id, again.attempt), (first, 1));
}

/// The scenario `progress_is_guarded_by_the_lease`: progress is guarded by the lease.
pub async fn progress_is_guarded_by_the_lease<S: JobStore>(f: Fixture<S>) {
    let user = Uuid::new_v4();
    let id = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    let lease = claim(&f, WorkerId::new(), 1)
        .await
        .pop()
        .unwrap()
        .lease()
        .unwrap();
    let progress = json!({"type": "file_started", "path": "src/App.tsx"});
    f.store.set_progress(&lease, &progress).await.unwrap();
    assert_eq!(
        f.queue.get(user, id).await.unwrap().progress,
        Some(progress)
    );
    let wrong = Lease {
        attempt: 2,
        ..lease
    };
    assert!(
        f.store
            .set_progress(&wrong, &json!(1))
            .await
            .unwrap_err()
            .is_lease_lost()
    );
}

/// The scenario `operator_requeue`: operator requeue.
pub async fn operator_requeue<S: JobStore>(f: Fixture<S>) {
    let user = Uuid::new_v4();
    let id = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    let lease = claim(&f, WorkerId::new(), 1)
        .await
        .pop()
        .unwrap()
        .lease()
        .unwrap();
    finish(
        &f,
        lease,
        Finish::Fail {
            error: "boom".into(),
            tokens: Some(TokenUsage::new(120, 30)),
        },
    )
    .await
    .unwrap();
    let failed = f.queue.get(user, id).await.unwrap();
    assert_eq!(
        (failed.input_tokens, failed.output_tokens),
        (Some(120), Some(30))
    );
    assert!(failed.started_at.is_some());
    f.advance(Duration::from_secs(10));
    let requeued = f.queue.retry(id).await.unwrap();
    assert_eq!((requeued.status, requeued.attempt), (JobStatus::Pending, 0));
    assert_eq!(requeued.run_at, f.clock_now());
    assert_eq!(requeued.completed_at, None);
    assert_eq!(
        (
            requeued.started_at,
            requeued.input_tokens,
            requeued.output_tokens,
            requeued.duration_ms
        ),
        (None, None, None, None),
        "the last run's traces are cleared"
    );
    assert_eq!(requeued.payload, failed.payload);
    let again = claim(&f, WorkerId::new(), 1).await.pop().unwrap();
    assert_eq!((again.id, again.attempt), (id, 1));
    // With a new payload.
    finish(
        &f,
        again.lease().unwrap(),
        Finish::Fail {
            error: "boom".into(),
            tokens: None,
        },
    )
    .await
    .unwrap();
    let payload = json!({ "prompt": "again", "reservationId": "r2" });
    let requeued = f
        .queue
        .retry_with_payload(id, payload.clone())
        .await
        .unwrap();
    assert_eq!(requeued.payload, payload);
    assert_eq!(f.queue.get(user, id).await.unwrap().payload, payload);
    assert!(
        f.queue
            .retry_with_payload(id, payload.clone())
            .await
            .unwrap_err()
            .is_illegal_transition(),
        "a pending job is not retried"
    );
    // Cancelled jobs too.
    let id = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    f.queue.cancel(user, id).await.unwrap();
    assert_eq!(f.queue.retry(id).await.unwrap().status, JobStatus::Pending);
}
