use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::plan::{Plan, PlanId};
use crate::reservation::{ReservationId, ReservationState, Settlement};
use crate::resource::Resource;
use crate::status::{LimitKind, QuotaStatus, WindowStatus, until};
use crate::window::{BillingPeriod, Windows};
use crate::{Error, Result};

/// A user's stored usage: the seed's `usage_quotas` row plus the plan and billing period.
///
/// `day_start` and `month_start` are the starts of the windows the counters belong to (the
/// seed's `last_reset_daily` / `last_reset_monthly`); a counter is reset when the current
/// window starts later than the stored one, so a window resets exactly once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Usage {
    /// The user.
    pub user: Uuid,
    /// The user's plan.
    pub plan: PlanId,
    /// Generations in the daily window, pending reservations included.
    pub daily_generations: u64,
    /// Generations in the monthly window, pending reservations included.
    pub monthly_generations: u64,
    /// Chat messages in the daily window, pending reservations included.
    pub daily_chat_messages: u64,
    /// Committed tokens in the monthly window.
    pub monthly_tokens: u64,
    /// Committed tokens ever.
    pub total_tokens: u64,
    /// Start of the daily window the counter belongs to.
    pub day_start: DateTime<Utc>,
    /// Start of the monthly window the counters belong to.
    pub month_start: DateTime<Utc>,
    /// The subscription's billing period, when the billing crate has set one.
    pub billing_period: Option<BillingPeriod>,
}

impl Usage {
    /// A new user's usage on `plan`, with empty windows at `now`: what a store answers for a
    /// user it has no row for.
    #[must_use]
    pub fn fresh(user: Uuid, plan: PlanId, now: DateTime<Utc>, windows: Windows) -> Self {
        Self {
            user,
            plan,
            daily_generations: 0,
            monthly_generations: 0,
            daily_chat_messages: 0,
            monthly_tokens: 0,
            total_tokens: 0,
            day_start: windows.day(now).0,
            month_start: windows.month(now, None).0,
            billing_period: None,
        }
    }

    /// Starts new windows if `now` is past the stored ones (each counter resets once, when
    /// its window ended); returns whether anything changed. A store calls it before reading
    /// or charging a user's usage.
    pub fn roll(&mut self, now: DateTime<Utc>, windows: Windows) -> bool {
        let mut changed = false;
        let day = windows.day(now).0;
        if self.day_start < day {
            self.day_start = day;
            self.daily_generations = 0;
            self.daily_chat_messages = 0;
            changed = true;
        }
        let month = windows.month(now, self.billing_period.as_ref()).0;
        if self.month_start < month {
            self.month_start = month;
            self.monthly_generations = 0;
            self.monthly_tokens = 0;
            changed = true;
        }
        changed
    }

    /// The first limit of `plan` that refuses `cost` more of `resource` (call it on rolled
    /// windows), or `None` when the reservation fits.
    #[must_use]
    pub fn refusal(&self, plan: &Plan, resource: Resource, cost: u32) -> Option<LimitKind> {
        let cost = u64::from(cost);
        let over = |used: u64, limit: Option<u32>| {
            limit.is_some_and(|l| used.saturating_add(cost) > u64::from(l))
        };
        let counted = match resource {
            Resource::Generation => {
                if over(self.daily_generations, plan.daily_generations) {
                    Some(LimitKind::Daily)
                } else if over(self.monthly_generations, plan.monthly_generations) {
                    Some(LimitKind::Monthly)
                } else {
                    None
                }
            }
            Resource::ChatMessage => over(self.daily_chat_messages, plan.daily_chat_messages)
                .then_some(LimitKind::ChatMessages),
        };
        if counted.is_some() {
            counted
        } else if plan
            .monthly_tokens
            .is_some_and(|l| self.monthly_tokens >= l)
        {
            Some(LimitKind::Tokens)
        } else {
            None
        }
    }

    /// Counts `cost` of `resource` in the current windows: a granted reservation.
    pub fn charge(&mut self, resource: Resource, cost: u32) {
        match resource {
            Resource::Generation => {
                self.daily_generations += u64::from(cost);
                self.monthly_generations += u64::from(cost);
            }
            Resource::ChatMessage => self.daily_chat_messages += u64::from(cost),
        }
    }

    /// Gives back a reservation's cost to the windows it was charged to, if they are still
    /// the current ones.
    pub(crate) fn release(&mut self, r: &Held) {
        self.uncharge(r.resource, r.cost, r.day_start, r.month_start);
    }

    /// Gives back `cost` of `resource` charged in the windows starting at `day_start` and
    /// `month_start` (a refunded or expired reservation), to those of them that are still the
    /// current ones: a window that has ended since keeps its count.
    pub fn uncharge(
        &mut self,
        resource: Resource,
        cost: u32,
        day_start: DateTime<Utc>,
        month_start: DateTime<Utc>,
    ) {
        let cost = u64::from(cost);
        match resource {
            Resource::Generation => {
                if self.day_start == day_start {
                    self.daily_generations = self.daily_generations.saturating_sub(cost);
                }
                if self.month_start == month_start {
                    self.monthly_generations = self.monthly_generations.saturating_sub(cost);
                }
            }
            Resource::ChatMessage => {
                if self.day_start == day_start {
                    self.daily_chat_messages = self.daily_chat_messages.saturating_sub(cost);
                }
            }
        }
    }

    /// Adds `tokens` to the month's and the lifetime token counts.
    pub fn add_tokens(&mut self, tokens: u64) {
        self.monthly_tokens = self.monthly_tokens.saturating_add(tokens);
        self.total_tokens = self.total_tokens.saturating_add(tokens);
    }

    /// The status at `now` (windows rolled on a copy).
    pub(crate) fn status(
        &self,
        plan: &Plan,
        now: DateTime<Utc>,
        windows: Windows,
        denied_by: Option<LimitKind>,
    ) -> QuotaStatus {
        let mut u = self.clone();
        u.roll(now, windows);
        let day_end = windows.day(now).1;
        let month_end = windows.month(now, u.billing_period.as_ref()).1;
        let daily = WindowStatus::new(
            plan.daily_generations.map(u64::from),
            u.daily_generations,
            day_end,
            now,
        );
        let monthly = WindowStatus::new(
            plan.monthly_generations.map(u64::from),
            u.monthly_generations,
            month_end,
            now,
        );
        let tokens = WindowStatus::new(plan.monthly_tokens, u.monthly_tokens, month_end, now);
        let chat = WindowStatus::new(
            plan.daily_chat_messages.map(u64::from),
            u.daily_chat_messages,
            day_end,
            now,
        );
        let retry_after = denied_by.map(|kind| match kind {
            LimitKind::Daily | LimitKind::ChatMessages => until(now, day_end),
            LimitKind::Monthly | LimitKind::Tokens | LimitKind::Burst => until(now, month_end),
        });
        QuotaStatus {
            plan: u.plan,
            daily,
            monthly,
            tokens,
            chat,
            denied_by,
            retry_after,
        }
    }
}

/// What a reservation holds: its resource, its cost and the windows it was charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Held {
    pub(crate) resource: Resource,
    pub(crate) cost: u32,
    pub(crate) day_start: DateTime<Utc>,
    pub(crate) month_start: DateTime<Utc>,
    pub(crate) expires_at: DateTime<Utc>,
}

/// Settling a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settle {
    Commit,
    Refund,
}

/// What to do with a reservation in `state` asked to `settle` at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Move to `to`; release the cost if `release`; answer `answer`.
    Move {
        to: ReservationState,
        release: bool,
        answer: Result<Settlement, ReservationState>,
    },
    /// Change nothing; answer.
    Stay(Result<Settlement, ReservationState>),
}

pub(crate) fn step(state: ReservationState, expired: bool, settle: Settle) -> Step {
    use ReservationState::{Committed, Expired, Pending, Refunded};
    match (state, settle) {
        (Pending, _) if expired => Step::Move {
            to: Expired,
            release: true,
            answer: match settle {
                Settle::Commit => Err(Expired),
                Settle::Refund => Ok(Settlement::AlreadyReleased),
            },
        },
        (Pending, Settle::Commit) => Step::Move {
            to: Committed,
            release: false,
            answer: Ok(Settlement::Settled),
        },
        (Pending, Settle::Refund) => Step::Move {
            to: Refunded,
            release: true,
            answer: Ok(Settlement::Settled),
        },
        (Committed, Settle::Commit) | (Refunded, Settle::Refund) => {
            Step::Stay(Ok(Settlement::AlreadyDone))
        }
        (Expired, Settle::Refund) => Step::Stay(Ok(Settlement::AlreadyReleased)),
        (other, _) => Step::Stay(Err(other)),
    }
}

/// Whether a reservation in `state` can take tokens or a holder now: `Ok` while pending and
/// live; an expired pending one answers `Err(Expired)` (the caller releases it), a settled
/// one its state.
pub(crate) fn live(state: ReservationState, expired: bool) -> Result<(), ReservationState> {
    match state {
        ReservationState::Pending if expired => Err(ReservationState::Expired),
        ReservationState::Pending => Ok(()),
        other => Err(other),
    }
}

pub(crate) fn answer(
    id: ReservationId,
    answer: Result<Settlement, ReservationState>,
) -> Result<Settlement> {
    answer.map_err(|state| Error::AlreadySettled { id, state })
}
