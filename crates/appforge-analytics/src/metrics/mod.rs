//! Key metrics over a range of UTC days, computed from stored events.

mod compute;
mod report;

use std::fmt;

use appforge_core::{SharedClock, SystemClock};
use chrono::{DateTime, Days, NaiveDate, Utc};

use crate::store::{AnyEventStore, EventStore};
use crate::{Error, PriceTable, Result};

pub use report::{
    ActiveUsers, Cohort, DailyActive, DailyGenerations, DailyRevenue, DailyUsage, DurationStats,
    ErrorCount, Failures, GenerationCounts, Generations, MetricsReport, RetentionPoint, Revenue,
    Usage, UserUsage,
};

/// The longest range a report covers, in days.
pub const MAX_RANGE_DAYS: u64 = 800;

/// Computes [`MetricsReport`]s from the events in a store.
///
/// The computation runs in Rust over the events fetched from the store (the range, plus 29
/// days before it for WAU / MAU and 31 days after it for retention), so every backend gives
/// the same answers.
///
/// The store is any [`EventStore`], by default [`AnyEventStore`] (the built-in backends
/// chosen at run time); a store implemented outside this crate works the same.
#[derive(Clone)]
pub struct Metrics<S = AnyEventStore> {
    store: S,
    prices: PriceTable,
    clock: SharedClock,
    top_errors: usize,
}

impl<S: fmt::Debug> fmt::Debug for Metrics<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("store", &self.store)
            .field("top_errors", &self.top_errors)
            .finish_non_exhaustive()
    }
}

fn start_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

impl<S: EventStore> Metrics<S> {
    /// Metrics over `store` with the default [`PriceTable`], the system clock and the top 10
    /// error categories.
    pub fn new(store: S) -> Self {
        Self {
            store,
            prices: PriceTable::default(),
            clock: SystemClock::shared(),
            top_errors: 10,
        }
    }

    /// Uses `prices` for costs.
    #[must_use]
    pub fn prices(mut self, prices: PriceTable) -> Self {
        self.prices = prices;
        self
    }

    /// Uses `clock` to decide which retention days have ended.
    #[must_use]
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Lists at most `n` error categories.
    #[must_use]
    pub fn top_errors(mut self, n: usize) -> Self {
        self.top_errors = n;
        self
    }

    /// The metrics of the UTC days `from` (included) to `to` (excluded). `from == to` is an
    /// empty range with empty series.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRange`] when `from > to`, [`Error::Config`] for a range longer than
    /// [`MAX_RANGE_DAYS`] or at the ends of the calendar, the store's error when it fails.
    pub async fn report(&self, from: NaiveDate, to: NaiveDate) -> Result<MetricsReport> {
        if from > to {
            return Err(Error::InvalidRange { from, to });
        }
        let span = u64::try_from((to - from).num_days()).unwrap_or(u64::MAX);
        if span > MAX_RANGE_DAYS {
            return Err(Error::Config(format!(
                "a metrics range of {span} days is longer than {MAX_RANGE_DAYS}"
            )));
        }
        let out_of_calendar = || Error::Config("metrics range is out of the calendar".into());
        let lookback = from
            .checked_sub_days(Days::new(29))
            .ok_or_else(out_of_calendar)?;
        let lookahead = to
            .checked_add_days(Days::new(31))
            .ok_or_else(out_of_calendar)?;
        let (from_at, to_at) = (start_of(from), start_of(to));

        let events = self
            .store
            .events_between(start_of(lookback), start_of(lookahead))
            .await?;
        let before_to = events.partition_point(|e| e.created_at < to_at);
        let from_index = events.partition_point(|e| e.created_at < from_at);
        let in_range = &events[from_index..before_to];
        let first_seen = self.store.first_seen_between(from_at, to_at).await?;
        let today = self.clock.now().date_naive();

        Ok(MetricsReport {
            from,
            to,
            active: compute::active_users(&events[..before_to], from, to),
            generations: compute::generations(in_range, from, to),
            failures: compute::failures(in_range, self.top_errors),
            durations: compute::durations(in_range),
            usage: compute::usage(in_range, from, to, &self.prices),
            revenue: compute::revenue(in_range, from, to),
            retention: compute::retention(&first_seen, &events[from_index..], today),
        })
    }
}
