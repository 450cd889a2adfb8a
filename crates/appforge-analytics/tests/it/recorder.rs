//! The recorder: batching, the bounded buffer, retries and shutdown, on paused time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use appforge_analytics::{
    AnalyticsEvent, Error, EventStore, EventType, MemoryEventStore, Recorder, Result,
};
use appforge_testing::ManualClock;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::sync::Semaphore;
use uuid::Uuid;

const A: Uuid = Uuid::from_u128(0xa);

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("an RFC 3339 time")
}

/// A memory store that can fail the next N inserts, hold inserts until released, and logs
/// batch sizes.
#[derive(Debug, Clone, Default)]
struct TestStore {
    inner: MemoryEventStore,
    fail_next: Arc<AtomicU32>,
    gate: Option<Arc<Semaphore>>,
    batches: Arc<Mutex<Vec<usize>>>,
}

impl TestStore {
    fn gated() -> (Self, Arc<Semaphore>) {
        let gate = Arc::new(Semaphore::new(0));
        let store = Self {
            gate: Some(Arc::clone(&gate)),
            ..Self::default()
        };
        (store, gate)
    }

    fn batches(&self) -> Vec<usize> {
        self.batches.lock().clone()
    }
}

impl EventStore for TestStore {
    async fn insert_batch(&self, events: &[AnalyticsEvent]) -> Result<()> {
        if let Some(gate) = &self.gate {
            gate.acquire().await.expect("gate open").forget();
        }
        let failing = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(Error::Database {
                context: "inserting events",
                source: "connection pool timed out".into(),
            });
        }
        self.batches.lock().push(events.len());
        self.inner.insert_batch(events).await
    }

    async fn events_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AnalyticsEvent>> {
        self.inner.events_between(from, to).await
    }

    async fn first_seen_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>> {
        self.inner.first_seen_between(from, to).await
    }
}

fn event(i: i64) -> AnalyticsEvent {
    AnalyticsEvent::new(
        A,
        EventType::SignInSeen,
        at("2026-03-01T00:00:00Z") + chrono::Duration::seconds(i),
    )
}

/// Lets the background writer run until it waits again.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn full_batches_are_written_before_the_interval() {
    let store = TestStore::default();
    let recorder = Recorder::builder(store.clone())
        .batch_size(3)
        .flush_interval(Duration::from_secs(10))
        .spawn()
        .unwrap();
    for i in 0..7 {
        assert!(recorder.record(event(i)));
    }
    settle().await;
    assert_eq!(store.batches(), [3, 3]);
    tokio::time::advance(Duration::from_secs(10)).await;
    settle().await;
    assert_eq!(store.batches(), [3, 3, 1]);
    assert_eq!(recorder.stats().written, 7);
}

#[tokio::test(start_paused = true)]
async fn a_partial_batch_waits_for_the_interval() {
    let store = TestStore::default();
    let recorder = Recorder::builder(store.clone())
        .batch_size(100)
        .flush_interval(Duration::from_secs(1))
        .spawn()
        .unwrap();
    recorder.record(event(0));
    recorder.record(event(1));
    settle().await;
    tokio::time::advance(Duration::from_millis(999)).await;
    settle().await;
    assert!(store.batches().is_empty(), "written before the interval");
    tokio::time::advance(Duration::from_millis(1)).await;
    settle().await;
    assert_eq!(store.batches(), [2]);
}

#[tokio::test(start_paused = true)]
async fn a_full_buffer_drops_and_counts_instead_of_waiting() {
    let (store, gate) = TestStore::gated();
    let recorder = Recorder::builder(store.clone())
        .capacity(4)
        .batch_size(1)
        .spawn()
        .unwrap();
    assert!(recorder.record(event(0)));
    settle().await; // the writer holds event 0 and waits on the store
    let accepted: Vec<bool> = (1..=10).map(|i| recorder.record(event(i))).collect();
    assert_eq!(accepted.iter().filter(|a| **a).count(), 4);
    assert!(accepted[..4].iter().all(|a| *a), "the first four fit");
    let stats = recorder.stats();
    assert_eq!(
        (stats.recorded, stats.dropped_full, stats.written),
        (5, 6, 0)
    );

    gate.add_permits(100);
    recorder.flush().await.unwrap();
    let stats = recorder.stats();
    assert_eq!(
        (stats.written, stats.dropped(), stats.write_errors),
        (5, 6, 0)
    );
    assert_eq!(store.inner.len(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_failing_batch_is_retried_then_written() {
    let store = TestStore::default();
    store.fail_next.store(2, Ordering::SeqCst);
    let recorder = Recorder::builder(store.clone())
        .max_attempts(3)
        .retry_backoff(Duration::from_millis(100))
        .spawn()
        .unwrap();
    for i in 0..3 {
        recorder.record(event(i));
    }
    let started = tokio::time::Instant::now();
    recorder.flush().await.unwrap();
    // Backoff doubles: 100 ms then 200 ms.
    assert_eq!(started.elapsed(), Duration::from_millis(300));
    let stats = recorder.stats();
    assert_eq!(
        (stats.written, stats.write_errors, stats.dropped()),
        (3, 2, 0)
    );
    assert_eq!(store.inner.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_batch_failing_every_attempt_is_dropped_and_counted() {
    let store = TestStore::default();
    store.fail_next.store(3, Ordering::SeqCst);
    let recorder = Recorder::builder(store.clone())
        .max_attempts(3)
        .spawn()
        .unwrap();
    recorder.record(event(0));
    recorder.record(event(1));
    recorder.flush().await.unwrap();
    let stats = recorder.stats();
    assert_eq!(
        (
            stats.written,
            stats.write_errors,
            stats.dropped_failed,
            stats.dropped_full
        ),
        (0, 3, 2, 0)
    );
    assert!(store.inner.is_empty());

    // The store is back: later events are written.
    recorder.record(event(2));
    recorder.flush().await.unwrap();
    assert_eq!(recorder.stats().written, 1);
    assert_eq!(store.inner.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn shutdown_writes_what_is_buffered_and_refuses_later_events() {
    let store = TestStore::default();
    let recorder = Recorder::builder(store.clone())
        .flush_interval(Duration::from_secs(3600))
        .spawn()
        .unwrap();
    for i in 0..5 {
        recorder.record(event(i));
    }
    let clone = recorder.clone();
    recorder.shutdown().await;
    assert_eq!(store.inner.len(), 5);
    assert!(!clone.record(event(5)), "a shut-down recorder drops");
    let stats = clone.stats();
    assert_eq!(
        (stats.recorded, stats.written, stats.dropped_full),
        (5, 5, 1)
    );
    settle().await;
    assert!(matches!(clone.flush().await, Err(Error::RecorderClosed)));
    clone.shutdown().await; // a second shutdown returns at once
}

#[tokio::test(start_paused = true)]
async fn dropping_every_handle_writes_what_is_buffered() {
    let store = TestStore::default();
    let recorder = Recorder::builder(store.clone())
        .flush_interval(Duration::from_secs(3600))
        .spawn()
        .unwrap();
    for i in 0..3 {
        recorder.record(event(i));
    }
    drop(recorder);
    settle().await;
    assert_eq!(store.inner.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn track_stamps_events_with_the_clock() {
    let store = MemoryEventStore::new();
    let clock = ManualClock::at(at("2026-12-31T23:59:59.5Z"));
    let recorder = Recorder::builder(store.clone())
        .clock(clock.shared())
        .spawn()
        .unwrap();
    assert!(recorder.track(
        A,
        EventType::UpgradeClicked,
        serde_json::json!({"from": "free"})
    ));
    recorder.flush().await.unwrap();
    let stored = store.events();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].created_at, at("2026-12-31T23:59:59.5Z"));
    assert_eq!(stored[0].event_type, EventType::UpgradeClicked);
    assert_eq!(stored[0].properties["from"], "free");
}

#[tokio::test]
async fn zero_settings_are_refused() {
    let store = MemoryEventStore::new();
    for builder in [
        Recorder::builder(store.clone()).capacity(0),
        Recorder::builder(store.clone()).batch_size(0),
        Recorder::builder(store.clone()).max_attempts(0),
        Recorder::builder(store).flush_interval(Duration::ZERO),
    ] {
        assert!(matches!(builder.spawn(), Err(Error::Config(_))));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_ends_while_producers_keep_recording() {
    let store = TestStore::default();
    let recorder = Recorder::builder(store.clone())
        .capacity(100_000)
        .spawn()
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = {
        let (recorder, stop) = (recorder.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                recorder.record(event(i));
                i += 1;
                if i % 10 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    for _ in 0..20 {
        // A guard against a flush that chases the producer forever, not a timing assertion.
        tokio::time::timeout(Duration::from_secs(30), recorder.flush())
            .await
            .expect("flush ended under load")
            .unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    producer.await.unwrap();
    recorder.shutdown().await;
    let stats = recorder.stats();
    assert_eq!(
        stats.written + stats.dropped(),
        stats.recorded + stats.dropped_full
    );
    assert_eq!(u64::try_from(store.inner.len()).unwrap(), stats.written);
}
