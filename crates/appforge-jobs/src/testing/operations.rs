//! History, retention, stats, bulk work, the worker registry and alerts.

use std::time::Duration;

use crate::{
    Finish, FinishRequest, JobFilter, JobId, JobStatus, JobStore, PageRequest, Priority, Retention,
    WorkerId, WorkerInfo,
};
use uuid::Uuid;

use super::{Fixture, LEASE, claim, complete, finish, job};

/// The scenario `history_pagination_newest_first`: history pagination newest first.
pub async fn history_pagination_newest_first<S: JobStore>(f: Fixture<S>) {
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let mut ids = Vec::new();
    for i in 0..25 {
        let kind = if i % 5 == 0 { "modify" } else { "full_app" };
        ids.push(f.queue.enqueue(job(kind, alice)).await.unwrap().id);
        if i % 2 == 0 {
            // Some share a timestamp: the id breaks the tie.
            f.advance(Duration::from_secs(1));
        }
    }
    for _ in 0..3 {
        f.queue.enqueue(job("full_app", bob)).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut page = PageRequest::first(10);
    loop {
        let got = f
            .queue
            .list(alice, &JobFilter::default(), &page)
            .await
            .unwrap();
        assert!(got.items.len() <= 10);
        seen.extend(got.items.iter().map(|j| j.id));
        match got.next {
            Some(cursor) => {
                let text = cursor.to_string();
                page = PageRequest::after(10, text.parse().unwrap());
            }
            None => break,
        }
    }
    let newest_first: Vec<JobId> = ids.iter().rev().copied().collect();
    assert_eq!(seen, newest_first);
    let modify = f
        .queue
        .list(
            alice,
            &JobFilter::default().kind("modify"),
            &PageRequest::first(100),
        )
        .await
        .unwrap();
    assert_eq!(modify.items.len(), 5);
    assert!(modify.next.is_none());
    f.queue.cancel(alice, ids[3]).await.unwrap();
    let cancelled = f
        .queue
        .list(
            alice,
            &JobFilter::default().status(JobStatus::Cancelled),
            &PageRequest::first(100),
        )
        .await
        .unwrap();
    assert_eq!(
        cancelled.items.iter().map(|j| j.id).collect::<Vec<_>>(),
        [ids[3]]
    );
    assert!(
        f.queue
            .list(alice, &JobFilter::default(), &PageRequest::first(0))
            .await
            .is_err()
    );
}

/// The scenario `retention_by_age_and_count`: retention by age and count.
pub async fn retention_by_age_and_count<S: JobStore>(f: Fixture<S>) {
    let user = Uuid::new_v4();
    let worker = WorkerId::new();
    let mut finished = Vec::new();
    for day in 0..6 {
        let id = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
        let lease = claim(&f, worker, 1).await.pop().unwrap().lease().unwrap();
        finish(
            &f,
            lease,
            if day % 2 == 0 {
                complete()
            } else {
                Finish::Fail {
                    error: "e".into(),
                    tokens: None,
                }
            },
        )
        .await
        .unwrap();
        finished.push(id);
        f.advance(Duration::from_secs(24 * 3600));
    }
    let pending = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    // Completed 6, 5, 4, 3, 2, 1 days ago: delete those older than 3.5 days.
    let by_age = Retention {
        older_than: Some(Duration::from_secs(84 * 3600)),
        keep_latest: None,
        batch_size: 2,
    };
    assert_eq!(f.queue.prune(&by_age).await.unwrap(), 3);
    // Keep the newest 2 of the remaining 3.
    let by_count = Retention {
        older_than: None,
        keep_latest: Some(2),
        batch_size: 1,
    };
    assert_eq!(f.queue.prune(&by_count).await.unwrap(), 1);
    let left: Vec<JobId> = f
        .queue
        .list(user, &JobFilter::default(), &PageRequest::first(100))
        .await
        .unwrap()
        .items
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(left, [pending, finished[5], finished[4]]);
}

/// The scenario `redaction_rewrites_finished_jobs_only`: redaction rewrites finished jobs only.
pub async fn redaction_rewrites_finished_jobs_only<S: JobStore>(f: Fixture<S>) {
    let (user, other) = (Uuid::new_v4(), Uuid::new_v4());
    let worker = WorkerId::new();
    let done = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    let lease = claim(&f, worker, 1).await.pop().unwrap().lease().unwrap();
    finish(&f, lease, complete()).await.unwrap();
    let cancelled = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    f.queue.cancel(user, cancelled).await.unwrap();
    let running = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    claim(&f, worker, 1).await;
    let pending = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    let others = f.queue.enqueue(job("full_app", other)).await.unwrap().id;
    f.queue.cancel(other, others).await.unwrap();

    let mut seen = Vec::new();
    let changed = f
        .queue
        .redact_finished(user, |payload, result| {
            seen.push(payload.clone());
            *payload = serde_json::json!({ "redacted": true });
            *result = None;
            true
        })
        .await
        .unwrap();
    assert_eq!(changed, 2);
    assert_eq!(seen.len(), 2, "only the user's finished jobs are offered");
    for id in [done, cancelled] {
        let job = f.queue.get(user, id).await.unwrap();
        assert_eq!(job.payload, serde_json::json!({ "redacted": true }));
        assert_eq!(job.result, None);
    }
    for (owner, id) in [(user, running), (user, pending), (other, others)] {
        let job = f.queue.get(owner, id).await.unwrap();
        assert_eq!(
            job.payload,
            serde_json::json!({ "prompt": "a habit tracker" })
        );
    }
    // A job that is not finished is never written, even when asked directly.
    assert!(
        !f.store
            .redact(running, &serde_json::json!({}), None)
            .await
            .unwrap()
    );
    // A redaction that changes nothing writes nothing.
    assert_eq!(
        f.queue.redact_finished(user, |_, _| false).await.unwrap(),
        0
    );
}

/// The scenario `stats_depth_rates_and_durations`: stats depth rates and durations.
pub async fn stats_depth_rates_and_durations<S: JobStore>(f: Fixture<S>) {
    let user = Uuid::new_v4();
    let worker = WorkerId::new();
    for _ in 0..4 {
        f.queue
            .enqueue(job("full_app", user).priority(Priority::TEAM))
            .await
            .unwrap();
    }
    for (i, lease) in claim(&f, worker, 4)
        .await
        .iter()
        .map(|j| j.lease().unwrap())
        .enumerate()
    {
        f.advance(Duration::from_millis(100));
        let ending = if i == 3 {
            Finish::Fail {
                error: "e".into(),
                tokens: None,
            }
        } else {
            complete()
        };
        finish(&f, lease, ending).await.unwrap();
    }
    f.queue.enqueue(job("full_app", user)).await.unwrap();
    f.queue.enqueue(job("full_app", user)).await.unwrap();
    f.queue
        .enqueue(job("full_app", user).priority(Priority::PRO))
        .await
        .unwrap();
    claim(&f, worker, 1).await; // the PRO job
    f.advance(Duration::from_secs(10));
    let stats = f.queue.stats().await.unwrap();
    assert_eq!(stats.count(JobStatus::Pending), 2);
    assert_eq!(stats.count(JobStatus::Processing), 1);
    assert_eq!(stats.count(JobStatus::Completed), 3);
    assert_eq!(stats.count(JobStatus::Failed), 1);
    let team_completed = stats
        .depth
        .iter()
        .find(|d| d.status == JobStatus::Completed && d.priority == Priority::TEAM)
        .unwrap();
    assert_eq!(team_completed.count, 3);
    assert_eq!((stats.completed_in_window, stats.failed_in_window), (3, 1));
    assert!((stats.failure_rate - 0.25).abs() < 1e-9);
    assert_eq!(stats.duration_p50_ms, Some(200));
    assert_eq!(stats.duration_p95_ms, Some(300));
    assert_eq!(stats.oldest_pending_age, Some(Duration::from_secs(10)));
    assert_eq!(stats.expired_leases, 0);
    f.advance(LEASE);
    assert_eq!(f.queue.stats().await.unwrap().expired_leases, 1);
    // Outside the window, nothing finished.
    f.advance(Duration::from_secs(600));
    let later = f.queue.stats().await.unwrap();
    assert_eq!((later.completed_in_window, later.failure_rate), (0, 0.0));
}

/// The scenario `bulk_enqueue_and_drain`: bulk enqueue and drain.
pub async fn bulk_enqueue_and_drain<S: JobStore>(f: Fixture<S>) {
    let user = Uuid::new_v4();
    let jobs = (0..500)
        .map(|i| job("noop", user).priority(i16::try_from(i % 3).unwrap()))
        .collect();
    let enqueued = f.queue.enqueue_many(jobs).await.unwrap();
    assert_eq!(enqueued.len(), 500);
    let worker = WorkerId::new();
    let mut seen = std::collections::HashSet::new();
    loop {
        let batch = claim(&f, worker, 64).await;
        if batch.is_empty() {
            break;
        }
        let requests: Vec<FinishRequest> = batch
            .iter()
            .map(|j| FinishRequest {
                lease: j.lease().unwrap(),
                finish: complete(),
                now: f.clock_now(),
            })
            .collect();
        for result in f.store.finish(&requests).await.unwrap() {
            assert!(seen.insert(result.unwrap().id), "completed twice");
        }
    }
    assert_eq!(seen.len(), 500);
    assert!(enqueued.iter().all(|e| seen.contains(&e.id)));
}

/// The scenario `workers_registry`: workers registry.
pub async fn workers_registry<S: JobStore>(f: Fixture<S>) {
    let info = WorkerInfo {
        id: WorkerId::new(),
        name: "host:1".into(),
        started_at: f.clock_now(),
        last_heartbeat: f.clock_now(),
        concurrency: 10,
        running: 2,
    };
    f.store.record_worker(&info).await.unwrap();
    let later = WorkerInfo {
        last_heartbeat: f.clock_now() + chrono::Duration::seconds(5),
        running: 3,
        ..info.clone()
    };
    f.store.record_worker(&later).await.unwrap();
    assert_eq!(
        f.store.workers().await.unwrap(),
        std::slice::from_ref(&later)
    );
    f.advance(Duration::from_secs(5));
    assert_eq!(f.queue.stats().await.unwrap().live_workers, 1);
    f.advance(Duration::from_secs(60));
    assert_eq!(f.queue.stats().await.unwrap().live_workers, 0);
    let alerts = f
        .queue
        .check_alerts(&crate::AlertPolicy::default())
        .await
        .unwrap();
    assert!(
        matches!(&alerts[..], [crate::Alert::WorkerSilent { worker }] if worker.id == info.id),
        "{alerts:?}"
    );
    f.store.remove_worker(info.id).await.unwrap();
    assert!(f.store.workers().await.unwrap().is_empty());

    // A pool gone silent for long is forgotten; a live one is kept.
    let live = WorkerInfo {
        id: WorkerId::new(),
        last_heartbeat: f.clock_now(),
        ..info.clone()
    };
    let gone = WorkerInfo {
        id: WorkerId::new(),
        last_heartbeat: f.clock_now() - chrono::Duration::hours(2),
        ..info
    };
    f.store.record_worker(&live).await.unwrap();
    f.store.record_worker(&gone).await.unwrap();
    assert_eq!(
        f.queue
            .forget_silent_workers(Duration::from_secs(3600))
            .await
            .unwrap(),
        1
    );
    assert_eq!(f.store.workers().await.unwrap(), [live]);
}

/// The scenario `alerts_on_length_failures_and_stuck_jobs`: alerts on length failures and stuck jobs.
pub async fn alerts_on_length_failures_and_stuck_jobs<S: JobStore>(f: Fixture<S>) {
    use crate::{Alert, AlertMonitor, AlertPolicy};
    let user = Uuid::new_v4();
    let policy = AlertPolicy::default();
    assert!(f.queue.check_alerts(&policy).await.unwrap().is_empty());
    f.queue
        .enqueue_many((0..63).map(|_| job("full_app", user)).collect())
        .await
        .unwrap();
    let worker = WorkerId::new();
    for (i, j) in claim(&f, worker, 12).await.iter().enumerate() {
        let ending = if i < 2 {
            Finish::Fail {
                error: "e".into(),
                tokens: None,
            }
        } else {
            complete()
        };
        finish(&f, j.lease().unwrap(), ending).await.unwrap();
    }
    claim(&f, worker, 1).await;
    f.advance(LEASE + Duration::from_secs(1));
    let alerts = f.queue.check_alerts(&policy).await.unwrap();
    assert!(
        !alerts
            .iter()
            .any(|a| matches!(a, Alert::QueueLength { .. })),
        "50 pending is not over 50: {alerts:?}"
    );
    f.queue.enqueue(job("full_app", user)).await.unwrap();
    let alerts = f.queue.check_alerts(&policy).await.unwrap();
    assert!(
        alerts.iter().any(|a| matches!(
            a,
            Alert::QueueLength {
                pending: 51,
                threshold: 50
            }
        )),
        "{alerts:?}"
    );
    assert!(
        alerts.iter().any(|a| matches!(a, Alert::FailureRate { failed: 2, rate, .. } if (*rate - 2.0 / 12.0).abs() < 1e-9)),
        "{alerts:?}"
    );
    assert!(
        alerts.contains(&Alert::StuckJobs { count: 1 }),
        "{alerts:?}"
    );
    // The same alerts reach a callback.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _monitor = AlertMonitor::start(
        f.queue.clone(),
        policy,
        Duration::from_millis(10),
        move |a| {
            let _ = tx.send(a.clone());
        },
    );
    let first = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(alerts.contains(&first), "{first:?}");
}

/// The scenario `operator_listing_across_users`: operator listing across users.
pub async fn operator_listing_across_users<S: JobStore>(f: Fixture<S>) {
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let mut ids = Vec::new();
    for i in 0..12 {
        let owner = if i % 3 == 0 { bob } else { alice };
        let kind = if i % 4 == 0 { "modify" } else { "full_app" };
        ids.push(f.queue.enqueue(job(kind, owner)).await.unwrap().id);
        if i % 2 == 0 {
            f.advance(Duration::from_secs(1));
        }
    }
    // Every user's jobs, newest first, across pages.
    let mut seen = Vec::new();
    let mut page = PageRequest::first(5);
    loop {
        let got = f
            .queue
            .list_all(&JobFilter::default(), None, &page)
            .await
            .unwrap();
        assert!(got.items.len() <= 5);
        seen.extend(got.items.iter().map(|j| j.id));
        match got.next {
            Some(cursor) => page = PageRequest::after(5, cursor.to_string().parse().unwrap()),
            None => break,
        }
    }
    let newest_first: Vec<JobId> = ids.iter().rev().copied().collect();
    assert_eq!(seen, newest_first);
    let modify = f
        .queue
        .list_all(
            &JobFilter::default().kind("modify"),
            None,
            &PageRequest::first(100),
        )
        .await
        .unwrap();
    let expected: Vec<JobId> = [8, 4, 0].iter().map(|&i| ids[i]).collect();
    assert_eq!(
        modify.items.iter().map(|j| j.id).collect::<Vec<_>>(),
        expected
    );

    // Two jobs finish now, one a minute later: `finished_since` keeps only the later one.
    let worker = WorkerId::new();
    let running = claim(&f, worker, 3).await;
    assert_eq!(running.len(), 3);
    finish(&f, running[0].lease().unwrap(), complete())
        .await
        .unwrap();
    finish(
        &f,
        running[1].lease().unwrap(),
        Finish::Fail {
            error: "model refused".into(),
            tokens: None,
        },
    )
    .await
    .unwrap();
    f.advance(Duration::from_secs(60));
    let since = f.clock_now();
    finish(
        &f,
        running[2].lease().unwrap(),
        Finish::Fail {
            error: "provider overloaded".into(),
            tokens: None,
        },
    )
    .await
    .unwrap();
    let failed = f
        .queue
        .list_all(
            &JobFilter::default().status(JobStatus::Failed),
            None,
            &PageRequest::first(100),
        )
        .await
        .unwrap();
    assert_eq!(failed.items.len(), 2);
    assert!(failed.items.iter().all(|j| j.status == JobStatus::Failed));
    let recent = f
        .queue
        .list_all(&JobFilter::default(), Some(since), &PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(
        recent.items.iter().map(|j| j.id).collect::<Vec<_>>(),
        [running[2].id]
    );
    assert_eq!(
        recent.items[0].error.as_deref(),
        Some("provider overloaded")
    );
    assert!(
        f.queue
            .list_all(&JobFilter::default(), None, &PageRequest::first(101))
            .await
            .is_err()
    );
}
