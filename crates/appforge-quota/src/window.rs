use chrono::{DateTime, Datelike, FixedOffset, Months, NaiveTime, TimeZone, Utc};

const DAY_MS: i64 = 86_400_000;

/// A window, `[start, end)`.
type Span = (DateTime<Utc>, DateTime<Utc>);
/// The last answer for one key, per thread.
type Cache<K> = std::cell::Cell<Option<(K, Span)>>;

thread_local! {
    /// Keyed by (offset, local day number).
    static DAY_CACHE: Cache<(i32, i64)> = const { std::cell::Cell::new(None) };
    /// Keyed by (offset, day start).
    static MONTH_CACHE: Cache<(i32, DateTime<Utc>)> = const { std::cell::Cell::new(None) };
}

/// How usage windows are cut: days and calendar months at a fixed UTC offset.
///
/// The default is UTC: a day runs from 00:00:00 to 23:59:59.999... UTC, a month from the 1st
/// to the end of its last day. A deployment serving one region can set its offset (for
/// example `+02:00`) so that days end at local midnight. Monthly windows follow the user's
/// [`BillingPeriod`] instead when the billing crate has set one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    offset: FixedOffset,
}

impl Default for Windows {
    fn default() -> Self {
        Self::utc()
    }
}

impl Windows {
    /// Days and months in UTC.
    #[must_use]
    pub fn utc() -> Self {
        Self {
            offset: FixedOffset::east_opt(0).expect("zero offset"),
        }
    }

    /// Days and months at `offset` east of UTC.
    #[must_use]
    pub fn with_offset(offset: FixedOffset) -> Self {
        Self { offset }
    }

    /// The offset.
    #[must_use]
    pub fn offset(&self) -> FixedOffset {
        self.offset
    }

    /// The day containing `now`: `[start, end)`.
    #[must_use]
    pub fn day(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        // Fixed offsets have no daylight saving: a day is always 86,400 s, so plain
        // arithmetic gives the same answer as the calendar, much faster (reserving is hot).
        let offset_secs = self.offset.local_minus_utc();
        let offset_ms = i64::from(offset_secs) * 1_000;
        let index = (now.timestamp_millis() + offset_ms).div_euclid(DAY_MS);
        // Building the two times costs more than the arithmetic: remember the last day.
        let key = (offset_secs, index);
        if let Some((k, day)) = DAY_CACHE.with(std::cell::Cell::get)
            && k == key
        {
            return day;
        }
        let start_ms = index * DAY_MS - offset_ms;
        let day = match (
            DateTime::from_timestamp_millis(start_ms),
            DateTime::from_timestamp_millis(start_ms + DAY_MS),
        ) {
            (Some(start), Some(end)) => (start, end),
            _ => {
                let local = now.with_timezone(&self.offset).date_naive();
                let start = self.at_midnight(local);
                (start, self.at_midnight(local.succ_opt().unwrap_or(local)))
            }
        };
        DAY_CACHE.with(|cache| cache.set(Some((key, day))));
        day
    }

    /// The calendar month containing `now`: `[start, end)`.
    #[must_use]
    pub fn calendar_month(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        // The month only changes with the day: remember the last answer per thread.
        let key = (self.offset.local_minus_utc(), self.day(now).0);
        MONTH_CACHE.with(|cache| {
            if let Some((k, month)) = cache.get()
                && k == key
            {
                return month;
            }
            let month = self.compute_calendar_month(now);
            cache.set(Some((key, month)));
            month
        })
    }

    fn compute_calendar_month(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let local = now.with_timezone(&self.offset).date_naive();
        let first = local.with_day(1).unwrap_or(local);
        let next = first.checked_add_months(Months::new(1)).unwrap_or(first);
        (self.at_midnight(first), self.at_midnight(next))
    }

    /// The monthly window containing `now` for a user with `period`: the billing period while
    /// `now` is inside it; after it lapses (no renewal recorded yet), the rest of the calendar
    /// month, starting no earlier than the period's end; otherwise the calendar month.
    #[must_use]
    pub fn month(
        &self,
        now: DateTime<Utc>,
        period: Option<&BillingPeriod>,
    ) -> (DateTime<Utc>, DateTime<Utc>) {
        let (start, end) = self.calendar_month(now);
        match period {
            Some(p) if p.contains(now) => (p.start, p.end),
            Some(p) if now >= p.end => (start.max(p.end), end),
            _ => (start, end),
        }
    }

    fn at_midnight(&self, date: chrono::NaiveDate) -> DateTime<Utc> {
        self.offset
            .from_local_datetime(&date.and_time(NaiveTime::MIN))
            .single()
            .map_or(DateTime::<Utc>::MIN_UTC, |t| t.with_timezone(&Utc))
    }
}

/// A subscription's billing period, `[start, end)`, used as the user's monthly window: one
/// type shared with the billing crate, defined in `appforge-core`.
pub use appforge_core::BillingPeriod;

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn utc_days_end_at_midnight() {
        let w = Windows::utc();
        let (start, end) = w.day(t("2026-03-14T23:59:59.999Z"));
        assert_eq!(
            (start, end),
            (t("2026-03-14T00:00:00Z"), t("2026-03-15T00:00:00Z"))
        );
        assert_eq!(
            w.day(t("2026-03-15T00:00:00Z")).0,
            t("2026-03-15T00:00:00Z")
        );
    }

    #[test]
    fn an_offset_moves_midnight() {
        let w = Windows::with_offset(FixedOffset::east_opt(2 * 3600).unwrap());
        let (start, end) = w.day(t("2026-03-14T21:59:59Z"));
        assert_eq!(
            (start, end),
            (t("2026-03-13T22:00:00Z"), t("2026-03-14T22:00:00Z"))
        );
        assert_eq!(
            w.day(t("2026-03-14T22:00:00Z")).0,
            t("2026-03-14T22:00:00Z")
        );
        let (m0, m1) = w.calendar_month(t("2026-03-31T22:30:00Z"));
        assert_eq!(
            (m0, m1),
            (t("2026-03-31T22:00:00Z"), t("2026-04-30T22:00:00Z"))
        );
    }

    #[test]
    fn day_arithmetic_matches_the_calendar() {
        for offset in [
            -11 * 3600 - 1800,
            -5 * 3600,
            0,
            3600,
            5 * 3600 + 2700,
            14 * 3600,
        ] {
            let w = Windows::with_offset(FixedOffset::east_opt(offset).unwrap());
            let mut now = t("2027-12-30T00:00:00Z");
            while now < t("2028-03-02T00:00:00Z") {
                let local = now.with_timezone(&w.offset).date_naive();
                let start = w.at_midnight(local);
                let end = w.at_midnight(local.succ_opt().unwrap());
                assert_eq!(w.day(now), (start, end), "offset {offset} at {now}");
                assert_eq!(w.calendar_month(now), w.compute_calendar_month(now));
                now += chrono::Duration::minutes(97);
            }
        }
    }

    #[test]
    fn calendar_months_handle_short_months_and_leap_years() {
        let w = Windows::utc();
        assert_eq!(
            w.calendar_month(t("2027-01-31T23:59:59.999Z")),
            (t("2027-01-01T00:00:00Z"), t("2027-02-01T00:00:00Z"))
        );
        assert_eq!(
            w.calendar_month(t("2028-02-29T12:00:00Z")),
            (t("2028-02-01T00:00:00Z"), t("2028-03-01T00:00:00Z"))
        );
        assert_eq!(
            w.calendar_month(t("2026-12-31T23:00:00Z")),
            (t("2026-12-01T00:00:00Z"), t("2027-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn billing_periods_replace_calendar_months_until_they_lapse() {
        let w = Windows::utc();
        let p = BillingPeriod::new(t("2026-03-10T08:00:00Z"), t("2026-04-10T08:00:00Z")).unwrap();
        assert_eq!(
            w.month(t("2026-04-01T00:00:00Z"), Some(&p)),
            (p.start, p.end)
        );
        assert_eq!(
            w.month(t("2026-04-12T00:00:00Z"), Some(&p)),
            (p.end, t("2026-05-01T00:00:00Z"))
        );
        assert_eq!(
            w.month(t("2026-05-02T00:00:00Z"), Some(&p)),
            (t("2026-05-01T00:00:00Z"), t("2026-06-01T00:00:00Z"))
        );
        assert!(BillingPeriod::new(p.end, p.start).is_err());
    }
}
