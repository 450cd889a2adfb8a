use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use appforge_core::{SharedClock, SystemClock};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::store::{AnyEventStore, EventStore};
use crate::{AnalyticsEvent, Error, EventType, Result};

/// Records events without ever making its caller wait: [`record`](Recorder::record) puts the
/// event in a bounded buffer (or drops and counts it when the buffer is full) and a background
/// task writes batches to the store.
///
/// Cheap to clone; clones share the buffer and the counters. Call [`shutdown`](Self::shutdown)
/// before exit to write what is buffered.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

struct Inner {
    events: mpsc::Sender<AnalyticsEvent>,
    control: mpsc::Sender<Control>,
    counters: Arc<Counters>,
    closed: AtomicBool,
    clock: SharedClock,
}

enum Control {
    Flush(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

#[derive(Debug, Default)]
struct Counters {
    recorded: AtomicU64,
    written: AtomicU64,
    dropped_full: AtomicU64,
    dropped_failed: AtomicU64,
    write_errors: AtomicU64,
}

/// The recorder's counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[non_exhaustive]
pub struct RecorderStats {
    /// Events accepted into the buffer.
    pub recorded: u64,
    /// Events written to the store.
    pub written: u64,
    /// Events dropped because the buffer was full or the recorder was shut down.
    pub dropped_full: u64,
    /// Events dropped because their batch failed every write attempt.
    pub dropped_failed: u64,
    /// Failed write attempts (each retry counts).
    pub write_errors: u64,
}

impl RecorderStats {
    /// Every dropped event, whatever the reason.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped_full + self.dropped_failed
    }
}

/// Settings of a [`Recorder`], from [`Recorder::builder`].
#[derive(Debug)]
#[must_use]
pub struct RecorderBuilder<S = AnyEventStore> {
    store: S,
    capacity: usize,
    batch_size: usize,
    flush_interval: Duration,
    max_attempts: u32,
    retry_backoff: Duration,
    clock: SharedClock,
}

impl Recorder {
    /// Settings for a recorder writing to `store`: a buffer of 10 000 events, batches of 500,
    /// a write at least every second, 3 attempts a batch with 200 ms between them.
    pub fn builder<S: EventStore>(store: S) -> RecorderBuilder<S> {
        RecorderBuilder {
            store,
            capacity: 10_000,
            batch_size: 500,
            flush_interval: Duration::from_secs(1),
            max_attempts: 3,
            retry_backoff: Duration::from_millis(200),
            clock: SystemClock::shared(),
        }
    }

    /// Buffers `event` for writing. Never waits: when the buffer is full or the recorder is
    /// shut down, the event is dropped and counted. Returns whether it was buffered.
    pub fn record(&self, event: AnalyticsEvent) -> bool {
        let counters = &self.inner.counters;
        if self.inner.closed.load(Ordering::Acquire) {
            counters.dropped_full.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        match self.inner.events.try_send(event) {
            Ok(()) => {
                counters.recorded.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(_) => {
                counters.dropped_full.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Records an event of `event_type` for `user_id` now (by the recorder's clock) with
    /// `properties`. Never waits, like [`record`](Self::record).
    pub fn track(
        &self,
        user_id: Uuid,
        event_type: EventType,
        properties: serde_json::Value,
    ) -> bool {
        let now = self.inner.clock.now();
        self.record(AnalyticsEvent::new(user_id, event_type, now).with_properties(properties))
    }

    /// Writes every event recorded before this call (or gives up on it after the retries).
    ///
    /// # Errors
    ///
    /// [`Error::RecorderClosed`] when the recorder was shut down.
    pub async fn flush(&self) -> Result<()> {
        let (ack, done) = oneshot::channel();
        self.inner
            .control
            .send(Control::Flush(ack))
            .await
            .map_err(|_| Error::RecorderClosed)?;
        done.await.map_err(|_| Error::RecorderClosed)
    }

    /// Stops accepting events, writes what is buffered and stops the background task. Later
    /// calls return at once.
    pub async fn shutdown(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let (ack, done) = oneshot::channel();
        if self
            .inner
            .control
            .send(Control::Shutdown(ack))
            .await
            .is_ok()
        {
            let _ = done.await;
        }
    }

    /// The counters now.
    #[must_use]
    pub fn stats(&self) -> RecorderStats {
        let c = &self.inner.counters;
        RecorderStats {
            recorded: c.recorded.load(Ordering::Relaxed),
            written: c.written.load(Ordering::Relaxed),
            dropped_full: c.dropped_full.load(Ordering::Relaxed),
            dropped_failed: c.dropped_failed.load(Ordering::Relaxed),
            write_errors: c.write_errors.load(Ordering::Relaxed),
        }
    }
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("stats", &self.stats())
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<S: EventStore> RecorderBuilder<S> {
    /// How many events the buffer holds before `record` drops (default 10 000).
    pub fn capacity(mut self, events: usize) -> Self {
        self.capacity = events;
        self
    }

    /// How many events a write carries at most; a full batch is written at once (default 500).
    pub fn batch_size(mut self, events: usize) -> Self {
        self.batch_size = events;
        self
    }

    /// How often a partial batch is written (default 1 s).
    pub fn flush_interval(mut self, every: Duration) -> Self {
        self.flush_interval = every;
        self
    }

    /// How many times a batch is tried before its events are dropped (default 3).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The pause before the first retry of a batch, doubled for each further one
    /// (default 200 ms).
    pub fn retry_backoff(mut self, pause: Duration) -> Self {
        self.retry_backoff = pause;
        self
    }

    /// The clock [`Recorder::track`] stamps events with (default the system clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Starts the background writer on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a zero capacity, batch size, interval or attempt count.
    ///
    /// # Panics
    ///
    /// Panics when called outside a tokio runtime.
    pub fn spawn(self) -> Result<Recorder> {
        if self.capacity == 0 || self.batch_size == 0 || self.max_attempts == 0 {
            return Err(Error::Config(
                "recorder capacity, batch size and attempts must be positive".into(),
            ));
        }
        if self.flush_interval.is_zero() {
            return Err(Error::Config(
                "recorder flush interval must be positive".into(),
            ));
        }
        let (events, events_rx) = mpsc::channel(self.capacity);
        let (control, control_rx) = mpsc::channel(16);
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            store: self.store,
            counters: Arc::clone(&counters),
            batch_size: self.batch_size,
            max_attempts: self.max_attempts,
            retry_backoff: self.retry_backoff,
            buffer: Vec::with_capacity(self.batch_size),
        };
        tokio::spawn(writer.run(events_rx, control_rx, self.flush_interval));
        Ok(Recorder {
            inner: Arc::new(Inner {
                events,
                control,
                counters,
                closed: AtomicBool::new(false),
                clock: self.clock,
            }),
        })
    }
}

/// The background task: collects events into batches and writes them.
struct Writer<S> {
    store: S,
    counters: Arc<Counters>,
    batch_size: usize,
    max_attempts: u32,
    retry_backoff: Duration,
    buffer: Vec<AnalyticsEvent>,
}

impl<S: EventStore> Writer<S> {
    async fn run(
        mut self,
        mut events: mpsc::Receiver<AnalyticsEvent>,
        mut control: mpsc::Receiver<Control>,
        every: Duration,
    ) {
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                command = control.recv() => {
                    self.drain(&mut events).await;
                    match command {
                        Some(Control::Flush(ack)) => {
                            let _ = ack.send(());
                        }
                        Some(Control::Shutdown(ack)) => {
                            let _ = ack.send(());
                            return;
                        }
                        // Every handle is gone.
                        None => return,
                    }
                }
                event = events.recv() => match event {
                    Some(event) => {
                        self.buffer.push(event);
                        if self.buffer.len() >= self.batch_size {
                            self.write_buffer().await;
                        }
                    }
                    None => {
                        self.write_buffer().await;
                        return;
                    }
                },
                _ = ticker.tick() => self.write_buffer().await,
            }
        }
    }

    /// Takes what is in the channel now (not what producers add meanwhile, so that a flush
    /// under steady load ends) and writes it all.
    async fn drain(&mut self, events: &mut mpsc::Receiver<AnalyticsEvent>) {
        for _ in 0..events.len() {
            let Ok(event) = events.try_recv() else {
                break;
            };
            self.buffer.push(event);
            if self.buffer.len() >= self.batch_size {
                self.write_buffer().await;
            }
        }
        self.write_buffer().await;
    }

    async fn write_buffer(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut self.buffer, Vec::with_capacity(self.batch_size));
        let count = u64::try_from(batch.len()).unwrap_or(u64::MAX);
        let mut pause = self.retry_backoff;
        for attempt in 1..=self.max_attempts {
            match self.store.insert_batch(&batch).await {
                Ok(()) => {
                    self.counters.written.fetch_add(count, Ordering::Relaxed);
                    return;
                }
                Err(e) => {
                    self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                    if attempt == self.max_attempts {
                        self.counters
                            .dropped_failed
                            .fetch_add(count, Ordering::Relaxed);
                        tracing::error!(
                            error = %e,
                            events = count,
                            attempts = attempt,
                            "dropping a batch of analytics events after repeated write failures"
                        );
                        return;
                    }
                    tracing::warn!(error = %e, attempt, "writing analytics events failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = pause.saturating_mul(2);
                }
            }
        }
    }
}
