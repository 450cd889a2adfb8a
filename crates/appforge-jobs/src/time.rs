//! Timestamps at the precision every backend stores (microseconds).

use std::time::Duration;

use chrono::{DateTime, Utc};

/// `at` truncated to whole microseconds.
pub(crate) fn trunc(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// `at + by`, saturating far in the future.
pub(crate) fn add(at: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(by)
        .ok()
        .and_then(|by| at.checked_add_signed(by))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `at - by`, saturating far in the past.
pub(crate) fn sub(at: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(by)
        .ok()
        .and_then(|by| at.checked_sub_signed(by))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Whole milliseconds from `from` to `to`, 0 when negative.
pub(crate) fn millis_between(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    u64::try_from((to - from).num_milliseconds()).unwrap_or(0)
}
