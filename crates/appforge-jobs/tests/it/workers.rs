//! Worker pools on every backend: running, retrying, cancelling, shutting down, events.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use appforge_jobs::{
    Admit, JobEvent, JobEventKind, JobQueue, JobStatus, JobStore, NewJob, Outcome, Progress,
    WorkerPool, WorkerPoolBuilder,
};
use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::{Notify, broadcast};
use uuid::Uuid;

use crate::fixtures::{Fixture, job};

/// Upper bound for waiting on something that happens within milliseconds.
const BOUND: Duration = Duration::from_secs(10);

fn pool<S: JobStore>(queue: &JobQueue<S>) -> WorkerPoolBuilder<S> {
    WorkerPool::builder(queue.clone())
        .concurrency(4)
        .poll_interval(Duration::from_millis(20))
        .heartbeat(Duration::from_millis(20))
        .rescue_interval(Duration::from_millis(20))
}

/// Waits for the first event matching `pred`.
async fn wait_for(
    rx: &mut broadcast::Receiver<JobEvent>,
    pred: impl Fn(&JobEvent) -> bool,
) -> JobEvent {
    tokio::time::timeout(BOUND, async {
        loop {
            match rx.recv().await {
                Ok(e) if pred(&e) => return e,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event bus closed: {e}"),
            }
        }
    })
    .await
    .expect("the event arrives in time")
}

async fn wait_terminal<S: JobStore>(
    queue: &JobQueue<S>,
    user: Uuid,
    id: appforge_jobs::JobId,
) -> appforge_jobs::Job {
    let mut sub = queue.subscribe(user, id).await.unwrap();
    tokio::time::timeout(BOUND, async { while sub.next().await.is_some() {} })
        .await
        .expect("the job finishes in time");
    queue.get(user, id).await.unwrap()
}

pub(crate) async fn runs_a_job_and_streams_its_events<S: JobStore>(f: Fixture<S>) {
    let gate = Arc::new(Notify::new());
    let g = Arc::clone(&gate);
    let workers = pool(&f.queue)
        .handler("full_app", move |ctx| {
            let g = Arc::clone(&g);
            async move {
                g.notified().await;
                ctx.progress(Progress::FileStarted {
                    path: "src/App.tsx".into(),
                })
                .await
                .unwrap();
                ctx.progress(Progress::Tokens {
                    input: 10,
                    output: 20,
                })
                .await
                .unwrap();
                Outcome::success(json!({"ok": ctx.payload()["prompt"]})).with_tokens(10, 20)
            }
        })
        .start()
        .unwrap();
    let user = Uuid::new_v4();
    let id = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    let mut sub = f.queue.subscribe(user, id).await.unwrap();
    let first = sub.next().await.unwrap();
    assert!(
        matches!(first.kind, JobEventKind::Snapshot { .. }),
        "{first:?}"
    );
    gate.notify_one();
    let mut kinds = Vec::new();
    tokio::time::timeout(BOUND, async {
        while let Some(event) = sub.next().await {
            kinds.push(event.kind);
        }
    })
    .await
    .unwrap();
    let names: Vec<&str> = kinds
        .iter()
        .filter_map(|k| match k {
            JobEventKind::Started { .. } => Some("started"),
            JobEventKind::Progress { .. } => Some("progress"),
            JobEventKind::Completed { .. } => Some("completed"),
            _ => None,
        })
        .collect();
    assert_eq!(names.last(), Some(&"completed"), "{kinds:?}");
    assert_eq!(
        names.iter().filter(|n| **n == "progress").count(),
        2,
        "{kinds:?}"
    );
    let done = f.queue.get(user, id).await.unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(done.result, Some(json!({"ok": "a habit tracker"})));
    assert_eq!(
        done.progress,
        Some(json!({"type": "tokens", "input": 10, "output": 20}))
    );
    let report = workers.shutdown(BOUND).await;
    assert!(report.drained);
}

pub(crate) async fn retries_with_backoff_then_succeeds<S: JobStore>(f: Fixture<S>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let workers = pool(&f.queue)
        .handler("full_app", move |ctx| {
            let n = c.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                assert_eq!(usize::try_from(ctx.job().attempt).unwrap(), n);
                if n < 3 {
                    Outcome::retry(format!("overloaded {n}"))
                } else {
                    Outcome::success(json!(n))
                }
            }
        })
        .start()
        .unwrap();
    let mut events = f.queue.events();
    let user = Uuid::new_v4();
    let id = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    for (attempt, ceiling) in [(1, 5), (2, 10)] {
        let event = wait_for(&mut events, |e| {
            matches!(e.kind, JobEventKind::RetryScheduled { .. })
        })
        .await;
        let JobEventKind::RetryScheduled { run_at, error } = event.kind else {
            unreachable!()
        };
        assert_eq!(event.attempt, attempt);
        assert_eq!(error, format!("overloaded {attempt}"));
        let delay = run_at - f.clock_now();
        assert!(
            delay >= chrono::Duration::zero() && delay <= chrono::Duration::seconds(ceiling),
            "{delay}"
        );
        // Time stands still: not retried until the clock passes run_at.
        f.advance(Duration::from_secs(ceiling.unsigned_abs()));
    }
    let done = wait_terminal(&f.queue, user, id).await;
    assert_eq!((done.status, done.attempt), (JobStatus::Completed, 3));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    workers.shutdown(BOUND).await;
}

pub(crate) async fn permanent_error_fails_at_once<S: JobStore>(f: Fixture<S>) {
    let workers = pool(&f.queue)
        .handler("full_app", |_| async {
            Outcome::permanent("prompt refused").with_tokens(80, 0)
        })
        .start()
        .unwrap();
    let user = Uuid::new_v4();
    let id = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    let done = wait_terminal(&f.queue, user, id).await;
    assert_eq!((done.status, done.attempt), (JobStatus::Failed, 1));
    assert_eq!(done.error.as_deref(), Some("prompt refused"));
    assert_eq!((done.input_tokens, done.output_tokens), (Some(80), Some(0)));
    workers.shutdown(BOUND).await;
}

pub(crate) async fn panicking_handler_fails_the_attempt_not_the_pool<S: JobStore>(f: Fixture<S>) {
    let workers = pool(&f.queue)
        .handler("full_app", |ctx| async move {
            if ctx.payload()["panic"] == json!(true) {
                panic!("parser bug");
            }
            Outcome::success(json!("fine"))
        })
        .start()
        .unwrap();
    let user = Uuid::new_v4();
    let bad = f
        .queue
        .enqueue(
            appforge_jobs::NewJob::new("full_app", user, json!({"panic": true})).max_attempts(1),
        )
        .await
        .unwrap()
        .id;
    let done = wait_terminal(&f.queue, user, bad).await;
    assert_eq!(done.status, JobStatus::Failed);
    assert!(done.error.unwrap().contains("handler panicked: parser bug"));
    let good = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    assert_eq!(
        wait_terminal(&f.queue, user, good).await.status,
        JobStatus::Completed
    );
    workers.shutdown(BOUND).await;
}

pub(crate) async fn cancelling_a_running_job_fires_its_token<S: JobStore>(f: Fixture<S>) {
    let workers = pool(&f.queue)
        .handler("full_app", |ctx| async move {
            ctx.cancellation().cancelled().await;
            // What the attempt spent before it stopped is recorded with the cancellation.
            Outcome::retry("stopped").with_tokens(500, 120)
        })
        .start()
        .unwrap();
    let mut events = f.queue.events();
    let user = Uuid::new_v4();
    let id = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    wait_for(&mut events, |e| {
        e.job_id == id && matches!(e.kind, JobEventKind::Started { .. })
    })
    .await;
    let requested = f.queue.cancel(user, id).await.unwrap();
    assert!(requested.cancel_requested);
    let done = wait_terminal(&f.queue, user, id).await;
    assert_eq!(done.status, JobStatus::Cancelled);
    assert_eq!(
        (done.input_tokens, done.output_tokens),
        (Some(500), Some(120))
    );
    workers.shutdown(BOUND).await;
}

pub(crate) async fn graceful_shutdown_releases_unfinished_jobs<S: JobStore>(f: Fixture<S>) {
    let started = Arc::new(Notify::new());
    let s = Arc::clone(&started);
    let workers = pool(&f.queue)
        .handler("full_app", move |_| {
            let s = Arc::clone(&s);
            async move {
                s.notify_one();
                // A handler that ignores cancellation.
                std::future::pending::<()>().await;
                Outcome::success(json!(null))
            }
        })
        .handler("quick", |_| async { Outcome::success(json!("quick")) })
        .start()
        .unwrap();
    let user = Uuid::new_v4();
    let id = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    tokio::time::timeout(BOUND, started.notified())
        .await
        .unwrap();
    let report = workers.shutdown(Duration::from_millis(50)).await;
    assert!(!report.drained);
    assert_eq!(report.released, 1);
    let released = f.queue.get(user, id).await.unwrap();
    assert_eq!((released.status, released.attempt), (JobStatus::Pending, 0));
    assert_eq!(released.lease_owner, None);
    // Stopped pools claim nothing more.
    let quick = f.queue.enqueue(job("quick", user)).await.unwrap().id;
    assert_eq!(workers.running(), 0);
    assert_eq!(
        f.queue.get(user, quick).await.unwrap().status,
        JobStatus::Pending
    );
    assert!(f.store.workers().await.unwrap().is_empty(), "unregistered");
}

pub(crate) async fn stop_claiming_lets_running_jobs_finish<S: JobStore>(f: Fixture<S>) {
    let started = Arc::new(Notify::new());
    let finish = Arc::new(Notify::new());
    let (s, go) = (Arc::clone(&started), Arc::clone(&finish));
    let workers = pool(&f.queue)
        .handler("full_app", move |_| {
            let (s, go) = (Arc::clone(&s), Arc::clone(&go));
            async move {
                s.notify_one();
                go.notified().await;
                Outcome::success(json!("done"))
            }
        })
        .start()
        .unwrap();
    let user = Uuid::new_v4();
    let running = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    tokio::time::timeout(BOUND, started.notified())
        .await
        .unwrap();
    assert!(workers.is_claiming());
    workers.stop_claiming();
    assert!(!workers.is_claiming());
    let waiting = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    // The running job goes on to completion; the new one is never claimed.
    finish.notify_one();
    let report = workers.shutdown(BOUND).await;
    assert!(report.drained);
    assert_eq!(
        f.queue.get(user, running).await.unwrap().status,
        JobStatus::Completed
    );
    let waiting = f.queue.get(user, waiting).await.unwrap();
    assert_eq!((waiting.status, waiting.attempt), (JobStatus::Pending, 0));
}

pub(crate) async fn concurrency_limit_holds<S: JobStore>(f: Fixture<S>) {
    let active = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (a, p) = (Arc::clone(&active), Arc::clone(&peak));
    let workers = pool(&f.queue)
        .concurrency(3)
        .handler("full_app", move |_| {
            let (a, p) = (Arc::clone(&a), Arc::clone(&p));
            async move {
                let now = a.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
                a.fetch_sub(1, Ordering::SeqCst);
                Outcome::success(json!(null))
            }
        })
        .start()
        .unwrap();
    let user = Uuid::new_v4();
    let ids: Vec<_> = f
        .queue
        .enqueue_many((0..20).map(|_| job("full_app", user)).collect())
        .await
        .unwrap();
    for e in ids {
        assert_eq!(
            wait_terminal(&f.queue, user, e.id).await.status,
            JobStatus::Completed
        );
    }
    let peak = peak.load(Ordering::SeqCst);
    assert!((1..=3).contains(&peak), "peak concurrency {peak}");
    workers.shutdown(BOUND).await;
}

/// A job the admission check defers goes back to the queue unstarted (its attempt unspent)
/// while other users' jobs run, and runs once its delay passed and the check lets it.
pub(crate) async fn admission_defers_without_spending_an_attempt<S: JobStore>(f: Fixture<S>) {
    let open = Arc::new(AtomicBool::new(false));
    let o = Arc::clone(&open);
    let workers = pool(&f.queue)
        .handler("full_app", |_| async { Outcome::success(json!(null)) })
        .admission(move |job| {
            let wait = job.payload["wait"] == true && !o.load(Ordering::SeqCst);
            async move {
                if wait {
                    Admit::Defer(Duration::from_secs(30))
                } else {
                    Admit::Run
                }
            }
        })
        .start()
        .unwrap();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let held = f
        .queue
        .enqueue(NewJob::new("full_app", a, json!({ "wait": true })))
        .await
        .unwrap()
        .id;
    let other = f.queue.enqueue(job("full_app", b)).await.unwrap().id;
    assert_eq!(
        wait_terminal(&f.queue, b, other).await.status,
        JobStatus::Completed
    );
    let deferred = tokio::time::timeout(BOUND, async {
        loop {
            let job = f.queue.get(a, held).await.unwrap();
            if job.status == JobStatus::Pending && job.run_at > f.clock_now() {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the job is deferred");
    assert_eq!(deferred.attempt, 0, "no attempt spent");
    open.store(true, Ordering::SeqCst);
    f.advance(Duration::from_secs(31));
    let done = wait_terminal(&f.queue, a, held).await;
    assert_eq!((done.status, done.attempt), (JobStatus::Completed, 1));
    workers.shutdown(BOUND).await;
}

pub(crate) async fn heartbeat_renews_the_lease<S: JobStore>(f: Fixture<S>) {
    let release = Arc::new(Notify::new());
    let r = Arc::clone(&release);
    let workers = pool(&f.queue)
        .lease(Duration::from_secs(30))
        .handler("full_app", move |_| {
            let r = Arc::clone(&r);
            async move {
                r.notified().await;
                Outcome::success(json!(null))
            }
        })
        .start()
        .unwrap();
    let mut events = f.queue.events();
    let user = Uuid::new_v4();
    let id = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    wait_for(&mut events, |e| {
        e.job_id == id && matches!(e.kind, JobEventKind::Started { .. })
    })
    .await;
    let first = f
        .queue
        .get(user, id)
        .await
        .unwrap()
        .lease_expires_at
        .unwrap();
    f.advance(Duration::from_secs(20));
    let want = first + chrono::Duration::seconds(20);
    tokio::time::timeout(BOUND, async {
        while f.queue.get(user, id).await.unwrap().lease_expires_at != Some(want) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a heartbeat renews the lease");
    // Past the original lease: a renewed job is not rescued.
    f.advance(Duration::from_secs(20));
    assert!(f.queue.rescue_expired().await.unwrap().is_empty());
    release.notify_one();
    let done = wait_terminal(&f.queue, user, id).await;
    assert_eq!((done.status, done.attempt), (JobStatus::Completed, 1));
    workers.shutdown(BOUND).await;
}

pub(crate) async fn terminal_hook_fires_once_per_terminal_job<S: JobStore>(f: Fixture<S>) {
    let seen: Arc<Mutex<Vec<(appforge_jobs::JobId, JobStatus)>>> = Arc::default();
    let s = Arc::clone(&seen);
    let queue = JobQueue::builder(f.store.clone())
        .clock(f.clock.shared())
        .on_terminal(move |job| s.lock().push((job.id, job.status)))
        .build()
        .unwrap();
    let workers = pool(&queue)
        .handler("ok", |_| async {
            Outcome::success(json!(1)).with_tokens(1, 2)
        })
        .handler("bad", |_| async { Outcome::permanent("no") })
        .start()
        .unwrap();
    let user = Uuid::new_v4();
    let ok = queue.enqueue(job("ok", user)).await.unwrap().id;
    let bad = queue.enqueue(job("bad", user)).await.unwrap().id;
    let cancelled = queue.enqueue(job("later", user)).await.unwrap().id;
    queue.cancel(user, cancelled).await.unwrap();
    wait_terminal(&queue, user, ok).await;
    wait_terminal(&queue, user, bad).await;
    workers.shutdown(BOUND).await;
    let mut seen = seen.lock().clone();
    seen.sort();
    let mut want = vec![
        (ok, JobStatus::Completed),
        (bad, JobStatus::Failed),
        (cancelled, JobStatus::Cancelled),
    ];
    want.sort();
    assert_eq!(seen, want);
}

pub(crate) async fn late_subscriber_gets_state_then_the_rest<S: JobStore>(f: Fixture<S>) {
    let step = Arc::new(Notify::new());
    let st = Arc::clone(&step);
    let workers = pool(&f.queue)
        .handler("full_app", move |ctx| {
            let st = Arc::clone(&st);
            async move {
                ctx.progress(Progress::FileCompleted {
                    path: "a.tsx".into(),
                })
                .await
                .unwrap();
                st.notified().await;
                Outcome::success(json!("done"))
            }
        })
        .start()
        .unwrap();
    let mut events = f.queue.events();
    let user = Uuid::new_v4();
    let id = f.queue.enqueue(job("full_app", user)).await.unwrap().id;
    wait_for(&mut events, |e| {
        e.job_id == id && matches!(e.kind, JobEventKind::Progress { .. })
    })
    .await;
    // Joining late: the snapshot shows the job running with its progress.
    let mut sub = f.queue.subscribe(user, id).await.unwrap();
    let first = sub.next().await.unwrap();
    let JobEventKind::Snapshot { job } = first.kind else {
        panic!("{first:?}")
    };
    assert_eq!(job.status, JobStatus::Processing);
    assert_eq!(
        job.progress,
        Some(json!({"type": "file_completed", "path": "a.tsx"}))
    );
    step.notify_one();
    let rest: Vec<JobEvent> = tokio::time::timeout(BOUND, sub.collect()).await.unwrap();
    assert!(rest.last().unwrap().is_terminal());
    assert_eq!(rest.last().unwrap().status, JobStatus::Completed);
    // A subscriber to a finished job gets its final state and the stream ends.
    let sub = f.queue.subscribe(user, id).await.unwrap();
    let all: Vec<JobEvent> = sub.collect().await;
    assert_eq!(all.len(), 1);
    assert!(
        matches!(&all[0].kind, JobEventKind::Snapshot { job } if job.result == Some(json!("done")))
    );
    // Someone else's job cannot be watched.
    assert!(
        f.queue
            .subscribe(Uuid::new_v4(), id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    workers.shutdown(BOUND).await;
}

pub(crate) async fn prefetched_jobs_wait_for_a_slot_and_are_given_back<S: JobStore>(f: Fixture<S>) {
    let active = Arc::new(AtomicUsize::new(0));
    let a = Arc::clone(&active);
    let workers = pool(&f.queue)
        .concurrency(1)
        .prefetch(3)
        .handler("full_app", move |_| {
            a.fetch_add(1, Ordering::SeqCst);
            async {
                std::future::pending::<()>().await;
                Outcome::success(json!(null))
            }
        })
        .start()
        .unwrap();
    let user = Uuid::new_v4();
    let ids: Vec<_> = f
        .queue
        .enqueue_many((0..5).map(|_| job("full_app", user)).collect())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    // One running plus three claimed ahead; the fifth stays pending.
    tokio::time::timeout(BOUND, async {
        while f.queue.stats().await.unwrap().count(JobStatus::Processing) < 4
            || active.load(Ordering::SeqCst) == 0
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(f.queue.stats().await.unwrap().count(JobStatus::Pending), 1);
    assert_eq!(active.load(Ordering::SeqCst), 1, "only one handler runs");
    let report = workers.shutdown(Duration::from_millis(50)).await;
    assert_eq!(
        report.released, 1,
        "the running job is released at the deadline"
    );
    for id in ids {
        let job = f.queue.get(user, id).await.unwrap();
        assert_eq!(
            (job.status, job.attempt),
            (JobStatus::Pending, 0),
            "{job:?}"
        );
    }
}

/// Typed arguments of the `full_app` kind.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct FullApp {
    prompt: String,
    files: u32,
}

impl appforge_jobs::JobArgs for FullApp {
    const KIND: &'static str = "full_app";

    fn priority(&self) -> appforge_jobs::Priority {
        appforge_jobs::Priority::PRO
    }
}

pub(crate) async fn typed_jobs_round_trip_alongside_string_kinds<S: JobStore>(f: Fixture<S>) {
    let workers = pool(&f.queue)
        .handle::<FullApp>(|ctx, args| async move {
            assert_eq!(ctx.job().kind, "full_app");
            Outcome::success(json!({ "name": args.prompt, "files": args.files }))
        })
        .handler("modify", |ctx| async move {
            Outcome::success(json!({ "modified": ctx.payload()["prompt"] }))
        })
        .start()
        .unwrap();
    let user = Uuid::new_v4();
    let args = FullApp {
        prompt: "habit tracker".into(),
        files: 3,
    };
    let typed = f.queue.enqueue_args(user, &args).await.unwrap().id;
    let stored = f.queue.get(user, typed).await.unwrap();
    assert_eq!(stored.kind, "full_app");
    assert_eq!(stored.priority, appforge_jobs::Priority::PRO);
    assert_eq!(stored.args::<FullApp>().unwrap(), args);
    let dynamic = f.queue.enqueue(job("modify", user)).await.unwrap().id;
    // A dynamic host's raw JSON under the typed kind runs on the typed handler too.
    let raw = f
        .queue
        .enqueue(NewJob::new(
            "full_app",
            user,
            json!({ "prompt": "raw", "files": 1 }),
        ))
        .await
        .unwrap()
        .id;

    let done = wait_terminal(&f.queue, user, typed).await;
    assert_eq!(done.status, JobStatus::Completed, "{done:?}");
    assert_eq!(
        done.result,
        Some(json!({ "name": "habit tracker", "files": 3 }))
    );
    let done = wait_terminal(&f.queue, user, dynamic).await;
    assert_eq!(done.status, JobStatus::Completed, "{done:?}");
    assert_eq!(done.result, Some(json!({ "modified": "a habit tracker" })));
    let done = wait_terminal(&f.queue, user, raw).await;
    assert_eq!(done.status, JobStatus::Completed, "{done:?}");
    assert_eq!(done.result, Some(json!({ "name": "raw", "files": 1 })));
    // Decoding a job of another kind names both kinds.
    let other = f.queue.get(user, dynamic).await.unwrap();
    let err = other.args::<FullApp>().unwrap_err().to_string();
    assert!(
        err.contains("\"modify\"") && err.contains("\"full_app\""),
        "{err}"
    );
    workers.shutdown(BOUND).await;
}

pub(crate) async fn undecodable_typed_payload_fails_permanently<S: JobStore>(f: Fixture<S>) {
    let ran = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&ran);
    let workers = pool(&f.queue)
        .handle::<FullApp>(move |_ctx, _args| {
            r.fetch_add(1, Ordering::SeqCst);
            async { Outcome::success(json!(null)) }
        })
        .start()
        .unwrap();
    let user = Uuid::new_v4();
    let id = f
        .queue
        .enqueue(NewJob::new("full_app", user, json!({ "prompt": 42 })).max_attempts(3))
        .await
        .unwrap()
        .id;
    let done = wait_terminal(&f.queue, user, id).await;
    assert_eq!(
        (done.status, done.attempt),
        (JobStatus::Failed, 1),
        "no retry: {done:?}"
    );
    let error = done.error.unwrap_or_default();
    assert!(
        // serde_json words the number `integer `42`` or, when another crate of the build turns
        // on its `arbitrary_precision` feature, `number`.
        error.contains("job kind \"full_app\"") && error.contains("invalid type"),
        "{error}"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the handler never runs");
    workers.shutdown(BOUND).await;
}
