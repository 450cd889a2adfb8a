use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota as Gcra, RateLimiter};
use uuid::Uuid;

use crate::catalogue::PlanCatalogue;
use crate::plan::{Burst, PlanId};

type Limiter<C> =
    RateLimiter<Uuid, DashMapStateStore<Uuid>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Per-user burst limits, one GCRA limiter per plan, keyed by user.
pub(crate) struct BurstLimiter<C: Clock = MonotonicClock> {
    limiters: HashMap<PlanId, Limiter<C>>,
    clock: C,
}

impl<C: Clock> fmt::Debug for BurstLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BurstLimiter")
            .field("plans", &self.limiters.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn gcra(burst: &Burst) -> Gcra {
    Gcra::with_period(burst.replenish_interval())
        .expect("Burst::new rejects a zero interval")
        .allow_burst(burst.burst)
}

impl BurstLimiter<MonotonicClock> {
    pub(crate) fn new(plans: &PlanCatalogue) -> Self {
        Self::with_clock(plans, MonotonicClock)
    }
}

impl<C: Clock + Clone> BurstLimiter<C> {
    pub(crate) fn with_clock(plans: &PlanCatalogue, clock: C) -> Self {
        let limiters = plans
            .plans()
            .iter()
            .filter_map(|plan| {
                let burst = plan.burst.as_ref()?;
                let limiter =
                    RateLimiter::new(gcra(burst), DashMapStateStore::default(), clock.clone());
                Some((plan.id.clone(), limiter))
            })
            .collect();
        Self { limiters, clock }
    }

    /// Counts one request of `user` on `plan`; `Err(wait)` when it must wait first.
    pub(crate) fn check(&self, plan: &PlanId, user: Uuid) -> Result<(), Duration> {
        match self.limiters.get(plan) {
            None => Ok(()),
            Some(limiter) => limiter
                .check_key(&user)
                .map_err(|not_until| not_until.wait_time_from(self.clock.now())),
        }
    }

    /// Forgets users whose state is back to full.
    pub(crate) fn shrink(&self) {
        for limiter in self.limiters.values() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// A shareable limiter.
pub(crate) type SharedBurst = Arc<BurstLimiter>;

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;
    use crate::plan::Plan;

    fn limiter() -> (BurstLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let mut free = Plan::free();
        free.burst = Some(Burst::new(6, Duration::from_secs(60), 3).unwrap());
        let mut team = Plan::team();
        team.burst = None;
        let plans = PlanCatalogue::new(vec![free, Plan::pro(), team], PlanId::free()).unwrap();
        let clock = FakeRelativeClock::default();
        (BurstLimiter::with_clock(&plans, clock.clone()), clock)
    }

    #[test]
    fn allows_the_burst_then_tells_how_long_to_wait() {
        let (limiter, clock) = limiter();
        let user = Uuid::new_v4();
        for _ in 0..3 {
            assert_eq!(limiter.check(&PlanId::free(), user), Ok(()));
        }
        // 6 a minute: one every 10 s.
        assert_eq!(
            limiter.check(&PlanId::free(), user),
            Err(Duration::from_secs(10))
        );
        clock.advance(Duration::from_secs(4));
        assert_eq!(
            limiter.check(&PlanId::free(), user),
            Err(Duration::from_secs(6))
        );
        clock.advance(Duration::from_secs(6));
        assert_eq!(limiter.check(&PlanId::free(), user), Ok(()));
        assert!(limiter.check(&PlanId::free(), user).is_err());
    }

    #[test]
    fn keys_by_user_and_skips_plans_without_a_burst() {
        let (limiter, _clock) = limiter();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for _ in 0..3 {
            limiter.check(&PlanId::free(), a).unwrap();
        }
        assert!(limiter.check(&PlanId::free(), a).is_err());
        assert_eq!(
            limiter.check(&PlanId::free(), b),
            Ok(()),
            "another user has its own"
        );
        for _ in 0..1_000 {
            assert_eq!(limiter.check(&PlanId::team(), a), Ok(()));
        }
        assert_eq!(limiter.check(&PlanId::new("custom"), a), Ok(()));
    }
}
