//! Per-user request rates by plan: a limit on every authenticated call, not only on
//! generations (which [`Plan::burst`](crate::Plan::burst) limits).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota as Gcra, RateLimiter};
use uuid::Uuid;

use crate::PlanCatalogue;
use crate::plan::{Burst, PlanId, RequestLimits};
use crate::{Error, Result};

type Limiter<C> =
    RateLimiter<Uuid, DashMapStateStore<Uuid>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The request rate of each plan, as [`Burst`]s: `requests` per `period` on average, `burst`
/// back to back. A plan without an entry gets the fallback rate.
///
/// A plan's rate is part of the plan ([`RequestLimits::requests_per_minute`] and
/// [`RequestLimits::request_burst`]): [`RequestRates::from_catalogue`] reads them. The
/// defaults are the built-in plans': Free 120 a minute (bursts of 60), Pro 300 (120), Team 600
/// (240), any other plan Free's. [`RequestRates::parse`] reads `free=120,pro=300/100,*=60`
/// (requests a minute, optionally `/burst`; `*` is the fallback) over the defaults, and
/// [`RequestRates::parse_onto`] over any rates, for an operator's overrides.
///
/// ```
/// use appforge_quota::{PlanId, RequestRates};
///
/// let rates = RequestRates::parse("free=30,team=600/300,*=10")?;
/// assert_eq!(rates.of(&PlanId::free()).burst.get(), 15); // half the rate by default
/// assert_eq!(rates.of(&PlanId::team()).burst.get(), 300);
/// assert_eq!(rates.of(&PlanId::new("custom")).requests.get(), 10);
/// # Ok::<(), appforge_quota::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRates {
    by_plan: BTreeMap<PlanId, Burst>,
    fallback: Burst,
}

impl Default for RequestRates {
    /// The built-in plans' rates.
    fn default() -> Self {
        Self::from_catalogue(&PlanCatalogue::default())
    }
}

/// A plan's rate; limits that slipped past validation at zero count as one.
fn rate_of(limits: &RequestLimits) -> Burst {
    Burst::new(
        limits.requests_per_minute.max(1),
        Duration::from_secs(60),
        limits.request_burst.max(1),
    )
    .expect("positive numbers")
}

impl RequestRates {
    /// Each plan's own rate (its [`RequestLimits`]); plans outside the catalogue get the
    /// default plan's.
    ///
    /// ```
    /// use appforge_quota::{PlanCatalogue, PlanId, RequestRates};
    ///
    /// let rates = RequestRates::from_catalogue(&PlanCatalogue::default());
    /// assert_eq!(rates.of(&PlanId::team()).requests.get(), 600);
    /// assert_eq!(rates.of(&PlanId::new("custom")), rates.of(&PlanId::free()));
    /// ```
    #[must_use]
    pub fn from_catalogue(catalogue: &PlanCatalogue) -> Self {
        Self {
            by_plan: catalogue
                .plans()
                .iter()
                .map(|plan| (plan.id.clone(), rate_of(&plan.request_limits)))
                .collect(),
            fallback: rate_of(&catalogue.default_plan().request_limits),
        }
    }

    /// Every plan at `rate`.
    #[must_use]
    pub fn uniform(rate: Burst) -> Self {
        Self {
            by_plan: BTreeMap::new(),
            fallback: rate,
        }
    }

    /// `plan` at `rate`.
    #[must_use]
    pub fn with(mut self, plan: impl Into<PlanId>, rate: Burst) -> Self {
        self.by_plan.insert(plan.into(), rate);
        self
    }

    /// Plans without an entry at `rate`.
    #[must_use]
    pub fn fallback(mut self, rate: Burst) -> Self {
        self.fallback = rate;
        self
    }

    /// The rate of `plan`.
    #[must_use]
    pub fn of(&self, plan: &PlanId) -> Burst {
        self.by_plan.get(plan).copied().unwrap_or(self.fallback)
    }

    /// Reads `plan=requests[/burst]` entries, comma-separated, over the defaults: requests
    /// a minute, the burst half of it (at least 1) unless given; the plan `*` sets the
    /// fallback.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the entry that does not parse or has a zero.
    pub fn parse(text: &str) -> Result<Self> {
        Self::default().parse_onto(text)
    }

    /// Reads `plan=requests[/burst]` entries as [`RequestRates::parse`] does, over these
    /// rates: the plans named take the rates given, the others keep theirs.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the entry that does not parse or has a zero.
    pub fn parse_onto(self, text: &str) -> Result<Self> {
        let mut rates = self;
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = |why: &str| Error::Config(format!("request rate {entry:?}: {why}"));
            let (plan, rate) = entry
                .split_once('=')
                .ok_or_else(|| bad("expected plan=requests[/burst]"))?;
            let (requests, burst) = match rate.split_once('/') {
                Some((r, b)) => (r.trim(), Some(b.trim())),
                None => (rate.trim(), None),
            };
            let requests: u32 = requests
                .parse()
                .map_err(|_| bad("requests a minute must be a whole number"))?;
            let burst: u32 = match burst {
                Some(b) => b
                    .parse()
                    .map_err(|_| bad("the burst must be a whole number"))?,
                None => (requests / 2).max(1),
            };
            let rate = Burst::new(requests, Duration::from_secs(60), burst)
                .map_err(|_| bad("requests and burst must be positive"))?;
            match plan.trim() {
                "" => return Err(bad("the plan is missing")),
                "*" => rates.fallback = rate,
                plan => rates = rates.with(plan, rate),
            }
        }
        Ok(rates)
    }
}

/// Limits each user's requests to their plan's [`RequestRates`] entry: one GCRA limiter per
/// plan (from `governor`), keyed by user.
///
/// The state lives in this process: with `N` processes behind a load balancer that spreads a
/// user's requests over them, a user can make up to `N` times the rate. Divide the rates by
/// `N` for a firm total, or route each user to one process.
pub struct RequestRateLimiter<C: Clock = MonotonicClock> {
    rates: RequestRates,
    by_plan: BTreeMap<PlanId, Limiter<C>>,
    fallback: Limiter<C>,
    clock: C,
}

impl<C: Clock> fmt::Debug for RequestRateLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestRateLimiter")
            .field("rates", &self.rates)
            .finish_non_exhaustive()
    }
}

fn gcra(rate: &Burst) -> Gcra {
    Gcra::with_period(rate.replenish_interval())
        .expect("Burst::new rejects a zero interval")
        .allow_burst(rate.burst)
}

impl RequestRateLimiter<MonotonicClock> {
    /// A limiter enforcing `rates`.
    #[must_use]
    pub fn new(rates: RequestRates) -> Self {
        Self::with_clock(rates, MonotonicClock)
    }
}

impl<C: Clock + Clone> RequestRateLimiter<C> {
    pub(crate) fn with_clock(rates: RequestRates, clock: C) -> Self {
        let limiter = |rate: &Burst| {
            RateLimiter::new(gcra(rate), DashMapStateStore::default(), clock.clone())
        };
        Self {
            by_plan: rates
                .by_plan
                .iter()
                .map(|(plan, rate)| (plan.clone(), limiter(rate)))
                .collect(),
            fallback: limiter(&rates.fallback),
            rates,
            clock,
        }
    }

    /// The rates enforced.
    #[must_use]
    pub fn rates(&self) -> &RequestRates {
        &self.rates
    }

    /// Counts one request of `user` on `plan`.
    ///
    /// # Errors
    ///
    /// How long the user must wait before the next request is allowed.
    pub fn check(&self, plan: &PlanId, user: Uuid) -> Result<(), Duration> {
        self.by_plan
            .get(plan)
            .unwrap_or(&self.fallback)
            .check_key(&user)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets users whose allowance is back to full (call it now and then: the state
    /// holds one entry per user seen).
    pub fn shrink(&self) {
        for limiter in self.by_plan.values().chain([&self.fallback]) {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// How many users the limiter holds state for.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_plan
            .values()
            .chain([&self.fallback])
            .map(RateLimiter::len)
            .sum()
    }

    /// Whether the limiter holds no state.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn limiter() -> (RequestRateLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let rates = RequestRates::parse("free=6/2,team=600/300,*=60/1").unwrap();
        let clock = FakeRelativeClock::default();
        (RequestRateLimiter::with_clock(rates, clock.clone()), clock)
    }

    #[test]
    fn rates_come_from_the_plans_and_overrides_replace_only_the_plans_they_name() {
        let mut custom = crate::Plan::new("custom", "Custom");
        custom.request_limits.requests_per_minute = 30;
        custom.request_limits.request_burst = 5;
        let catalogue = PlanCatalogue::default().with_plan(custom).unwrap();
        let rates = RequestRates::from_catalogue(&catalogue);
        let custom = rates.of(&PlanId::new("custom"));
        assert_eq!((custom.requests.get(), custom.burst.get()), (30, 5));
        let free = rates.of(&PlanId::free());
        assert_eq!((free.requests.get(), free.burst.get()), (120, 60));
        assert_eq!(
            rates,
            RequestRates::default().with(
                "custom",
                Burst::new(30, Duration::from_secs(60), 5).unwrap(),
            )
        );

        let overridden = rates.clone().parse_onto("free=3/3").unwrap();
        assert_eq!(overridden.of(&PlanId::free()).burst.get(), 3);
        assert_eq!(
            overridden.of(&PlanId::new("custom")),
            custom,
            "not named: kept"
        );
        assert!(rates.parse_onto("custom=0").is_err());
    }

    #[test]
    fn each_user_gets_the_burst_then_the_rate_of_their_plan() {
        let (limiter, clock) = limiter();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let free = PlanId::free();
        assert_eq!(limiter.check(&free, a), Ok(()));
        assert_eq!(limiter.check(&free, a), Ok(()));
        // 6 a minute: one every 10 s.
        assert_eq!(limiter.check(&free, a), Err(Duration::from_secs(10)));
        assert_eq!(
            limiter.check(&free, b),
            Ok(()),
            "another user has their own"
        );
        clock.advance(Duration::from_secs(10));
        assert_eq!(limiter.check(&free, a), Ok(()));
        assert!(limiter.check(&free, a).is_err());
        for _ in 0..300 {
            assert_eq!(limiter.check(&PlanId::team(), a), Ok(()));
        }
        assert!(limiter.check(&PlanId::team(), a).is_err());
    }

    #[test]
    fn unknown_plans_share_the_fallback_rate() {
        let (limiter, _clock) = limiter();
        let user = Uuid::new_v4();
        assert_eq!(limiter.check(&PlanId::new("custom"), user), Ok(()));
        assert_eq!(
            limiter.check(&PlanId::new("custom"), user),
            Err(Duration::from_secs(1))
        );
        // Another plan without an entry: the same fallback limiter, keyed by the same user.
        assert!(limiter.check(&PlanId::new("enterprise"), user).is_err());
    }

    #[test]
    fn idle_users_are_forgotten() {
        let (limiter, clock) = limiter();
        for _ in 0..10 {
            let _ = limiter.check(&PlanId::free(), Uuid::new_v4());
        }
        assert_eq!(limiter.len(), 10);
        clock.advance(Duration::from_secs(3600));
        limiter.shrink();
        assert!(limiter.is_empty());
    }

    #[test]
    fn parse_reads_rates_and_names_a_bad_entry() {
        let rates = RequestRates::parse(" pro = 50 , enterprise=1000/10 ").unwrap();
        assert_eq!(rates.of(&PlanId::pro()).requests.get(), 50);
        assert_eq!(rates.of(&PlanId::pro()).burst.get(), 25);
        assert_eq!(rates.of(&PlanId::new("enterprise")).burst.get(), 10);
        // Entries not given keep their defaults.
        assert_eq!(rates.of(&PlanId::free()).requests.get(), 120);
        assert_eq!(RequestRates::parse("").unwrap(), RequestRates::default());
        assert_eq!(
            RequestRates::parse("free=1")
                .unwrap()
                .of(&PlanId::free())
                .burst
                .get(),
            1
        );
        for bad in ["free", "free=0", "free=10/0", "=5", "free=ten", "free=5/x"] {
            let err = RequestRates::parse(bad).unwrap_err().to_string();
            assert!(err.contains(bad.trim()), "{bad}: {err}");
        }
    }
}
