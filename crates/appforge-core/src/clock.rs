use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

/// A source of wall-clock time.
///
/// Production code uses [`SystemClock`]; tests use [`ManualClock`] and move time explicitly
/// instead of sleeping.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// A clock shared between components, cheap to clone.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// A [`SharedClock`] reading the system time.
    #[must_use]
    pub fn shared() -> SharedClock {
        Arc::new(Self)
    }
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to. Clones share the same time.
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock standing at `now`.
    #[must_use]
    pub fn at(now: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(Mutex::new(now)),
        }
    }

    /// Moves the clock forward by `by`.
    ///
    /// # Panics
    ///
    /// Panics if `by` does not fit a `chrono::Duration` (hundreds of millions of years).
    pub fn advance(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).expect("duration out of range");
        *self.now.lock() += by;
    }

    /// Sets the clock to `now`, forwards or backwards.
    pub fn set(&self, now: DateTime<Utc>) {
        *self.now.lock() = now;
    }

    /// This clock as a [`SharedClock`]; the two keep sharing the same time.
    #[must_use]
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock")
            .field(&*self.now.lock())
            .finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_time() {
        let clock = ManualClock::at(DateTime::UNIX_EPOCH);
        let shared = clock.shared();
        clock.advance(Duration::from_millis(1500));
        assert_eq!(shared.now().timestamp_millis(), 1500);
    }

    #[test]
    fn set_moves_backwards_too() {
        let clock = ManualClock::at(DateTime::UNIX_EPOCH + chrono::Duration::days(2));
        clock.set(DateTime::UNIX_EPOCH);
        assert_eq!(clock.now(), DateTime::UNIX_EPOCH);
    }
}
