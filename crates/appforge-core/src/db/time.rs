//! The one time encoding of the SQLite stores: `INTEGER` microseconds since the Unix epoch (UTC).
//!
//! Several crates share one SQLite file; every time column in it holds the same unit, so that a
//! report joining two crates' tables, or an operator reading one with `sqlite3`, compares like
//! with like. PostgreSQL stores use `timestamptz` and do not need this.

use std::fmt;

use chrono::{DateTime, Utc};

/// `at` as a SQLite store writes it: whole microseconds since the Unix epoch (UTC).
///
/// Sub-microsecond precision is dropped (towards the past), as PostgreSQL's `timestamptz` does.
///
/// ```
/// use appforge_core::db::{decode_time, encode_time};
/// use chrono::{TimeZone, Utc};
///
/// let at = Utc.with_ymd_and_hms(2026, 12, 3, 13, 20, 0).unwrap();
/// assert_eq!(encode_time(at), 1_796_304_000_000_000);
/// assert_eq!(decode_time(encode_time(at)), Ok(at));
/// ```
#[must_use]
pub fn encode_time(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// A time column's value (microseconds since the Unix epoch, UTC) back to a time.
///
/// # Errors
///
/// [`TimeOutOfRange`] when `micros` lies outside the times chrono represents (a corrupt row).
pub fn decode_time(micros: i64) -> Result<DateTime<Utc>, TimeOutOfRange> {
    DateTime::from_timestamp_micros(micros).ok_or(TimeOutOfRange { micros })
}

/// A stored time that is no representable time (see [`decode_time`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOutOfRange {
    micros: i64,
}

impl TimeOutOfRange {
    /// The stored value.
    #[must_use]
    pub const fn micros(&self) -> i64 {
        self.micros
    }
}

impl fmt::Display for TimeOutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} microseconds since the epoch is out of the range of times",
            self.micros
        )
    }
}

impl std::error::Error for TimeOutOfRange {}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Timelike};

    use super::*;

    #[test]
    fn a_time_round_trips_at_microsecond_precision() {
        let at = Utc
            .with_ymd_and_hms(2026, 12, 3, 13, 20, 0)
            .unwrap()
            .with_nanosecond(123_456_789)
            .unwrap();
        let back = decode_time(encode_time(at)).unwrap();
        assert_eq!(back, at.with_nanosecond(123_456_000).unwrap());
    }

    #[test]
    fn times_before_the_epoch_are_negative_and_round_trip() {
        let at = Utc
            .with_ymd_and_hms(1969, 12, 31, 23, 59, 59)
            .unwrap()
            .with_nanosecond(500_000_000)
            .unwrap();
        assert_eq!(encode_time(at), -500_000);
        assert_eq!(decode_time(-500_000), Ok(at));
    }

    #[test]
    fn the_extremes_of_chrono_round_trip() {
        for at in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
            let back = decode_time(encode_time(at)).unwrap();
            assert_eq!(back.timestamp_micros(), at.timestamp_micros());
        }
    }

    #[test]
    fn an_out_of_range_value_is_a_clear_error() {
        let err = decode_time(i64::MAX).unwrap_err();
        assert_eq!(err.micros(), i64::MAX);
        assert_eq!(
            err.to_string(),
            "9223372036854775807 microseconds since the epoch is out of the range of times"
        );
    }
}
