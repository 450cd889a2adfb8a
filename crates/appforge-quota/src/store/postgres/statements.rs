//! The statements of the PostgreSQL store, their parameters and the rows they return.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::Result;
use crate::plan::PlanId;
use crate::store::sql::{count, stored};
use crate::usage::Usage;
use crate::window::{BillingPeriod, Windows};

/// The plan limits a reservation is checked against, as statement parameters.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Limits {
    pub(super) default_plan: String,
    pub(super) ids: Vec<String>,
    pub(super) daily: Vec<Option<i64>>,
    pub(super) monthly: Vec<Option<i64>>,
    pub(super) tokens: Vec<Option<i64>>,
    pub(super) chat: Vec<Option<i64>>,
}

impl Limits {
    pub(super) fn of(catalogue: &crate::PlanCatalogue) -> Self {
        let plans = catalogue.plans();
        Self {
            default_plan: catalogue.default_plan().id.as_str().to_owned(),
            ids: plans.iter().map(|p| p.id.as_str().to_owned()).collect(),
            daily: plans
                .iter()
                .map(|p| p.daily_generations.map(i64::from))
                .collect(),
            monthly: plans
                .iter()
                .map(|p| p.monthly_generations.map(i64::from))
                .collect(),
            tokens: plans.iter().map(|p| p.monthly_tokens.map(stored)).collect(),
            chat: plans
                .iter()
                .map(|p| p.daily_chat_messages.map(i64::from))
                .collect(),
        }
    }
}

/// The start of the row's monthly window at `$NOW`, given the calendar month start `$CAL`:
/// mirrors [`Windows::month`](crate::Windows::month).
pub(super) const MONTH: &str = "(CASE WHEN u.period_start <= $NOW AND $NOW < u.period_end THEN u.period_start \
     WHEN $NOW >= u.period_end THEN GREATEST($CAL, u.period_end) ELSE $CAL END)";

/// The starts of the day and of the calendar month at `now`: the time parameters every
/// statement that may roll a window takes (the month actually used is worked out in SQL, see
/// [`MONTH`]).
pub(super) fn starts(windows: Windows, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    (windows.day(now).0, windows.calendar_month(now).0)
}

/// Builds a statement from audited constants, numbering the time parameters.
pub(super) fn sql(template: &str, now: &str, day: &str, cal: &str) -> String {
    template
        .replace("$MONTH", MONTH)
        .replace("$NOW", now)
        .replace("$DAY", day)
        .replace("$CAL", cal)
}

pub(super) const USAGE_RETURNING: &str = "u.user_id, u.plan, u.daily_generations, u.monthly_generations, \
     u.daily_chat_messages, u.monthly_tokens_used, u.total_tokens_used, u.last_reset_daily, \
     u.last_reset_monthly, u.period_start, u.period_end";

/// The chat counter of a row after its day rolled to `$DAY` (every statement that moves
/// `last_reset_daily` sets it so).
pub(super) const CHAT_ROLLED: &str = "daily_chat_messages = CASE WHEN u.last_reset_daily < $DAY THEN 0 \
     ELSE u.daily_chat_messages END";

/// `$1` user, `$2` now, `$3` cost, `$4` reservation id, `$5` expiry, `$6` day start, `$7`
/// calendar month start, `$8..$11` the catalogue's plan ids and limits, `$12` the holder (or
/// `NULL`).
pub(super) static RESERVE: LazyLock<String> = LazyLock::new(|| {
    sql(
        &format!(
            "WITH limits AS ( \
                SELECT * FROM unnest($8::text[], $9::int8[], $10::int8[], $11::int8[]) \
                AS l(plan, daily, monthly, tokens) \
             ), granted AS ( \
                UPDATE usage_quotas u SET \
                    daily_generations = \
                        (CASE WHEN u.last_reset_daily < $DAY THEN 0 ELSE u.daily_generations END) + $3, \
                    monthly_generations = \
                        (CASE WHEN u.last_reset_monthly < $MONTH THEN 0 ELSE u.monthly_generations END) + $3, \
                    monthly_tokens_used = \
                        CASE WHEN u.last_reset_monthly < $MONTH THEN 0 ELSE u.monthly_tokens_used END, \
                    {CHAT_ROLLED}, \
                    last_reset_daily = GREATEST(u.last_reset_daily, $DAY), \
                    last_reset_monthly = GREATEST(u.last_reset_monthly, $MONTH), \
                    updated_at = $NOW \
                FROM limits l \
                WHERE u.user_id = $1 AND l.plan = u.plan \
                  AND (l.daily IS NULL OR (CASE WHEN u.last_reset_daily < $DAY THEN 0 \
                        ELSE u.daily_generations END) + $3 <= l.daily) \
                  AND (l.monthly IS NULL OR (CASE WHEN u.last_reset_monthly < $MONTH THEN 0 \
                        ELSE u.monthly_generations END) + $3 <= l.monthly) \
                  AND (l.tokens IS NULL OR (CASE WHEN u.last_reset_monthly < $MONTH THEN 0 \
                        ELSE u.monthly_tokens_used END) < l.tokens) \
                RETURNING {USAGE_RETURNING} \
             ), held AS ( \
                INSERT INTO quota_reservations (id, user_id, cost, state, day_start, \
                    month_start, created_at, expires_at, holder) \
                SELECT $4, g.user_id, $3, 'pending', g.last_reset_daily, g.last_reset_monthly, \
                    $NOW, $5, $12::uuid FROM granted g \
             ) SELECT * FROM granted"
        ),
        "$2",
        "$6",
        "$7",
    )
});

/// A chat-message reservation: `$1` user, `$2` now, `$3` cost, `$4` reservation id, `$5`
/// expiry, `$6` day start, `$7` calendar month start, `$8..$10` the catalogue's plan ids, daily
/// chat limits and token limits, `$11` the holder (or `NULL`). Chat messages have their own daily counter; the windows roll
/// as for a generation.
pub(super) static RESERVE_CHAT: LazyLock<String> = LazyLock::new(|| {
    sql(
        &format!(
            "WITH limits AS ( \
                SELECT * FROM unnest($8::text[], $9::int8[], $10::int8[]) AS l(plan, chat, tokens) \
             ), granted AS ( \
                UPDATE usage_quotas u SET \
                    daily_generations = \
                        CASE WHEN u.last_reset_daily < $DAY THEN 0 ELSE u.daily_generations END, \
                    monthly_generations = \
                        CASE WHEN u.last_reset_monthly < $MONTH THEN 0 ELSE u.monthly_generations END, \
                    daily_chat_messages = \
                        (CASE WHEN u.last_reset_daily < $DAY THEN 0 ELSE u.daily_chat_messages END) + $3, \
                    monthly_tokens_used = \
                        CASE WHEN u.last_reset_monthly < $MONTH THEN 0 ELSE u.monthly_tokens_used END, \
                    last_reset_daily = GREATEST(u.last_reset_daily, $DAY), \
                    last_reset_monthly = GREATEST(u.last_reset_monthly, $MONTH), \
                    updated_at = $NOW \
                FROM limits l \
                WHERE u.user_id = $1 AND l.plan = u.plan \
                  AND (l.chat IS NULL OR (CASE WHEN u.last_reset_daily < $DAY THEN 0 \
                        ELSE u.daily_chat_messages END) + $3 <= l.chat) \
                  AND (l.tokens IS NULL OR (CASE WHEN u.last_reset_monthly < $MONTH THEN 0 \
                        ELSE u.monthly_tokens_used END) < l.tokens) \
                RETURNING {USAGE_RETURNING} \
             ), held AS ( \
                INSERT INTO quota_reservations (id, user_id, resource, cost, state, day_start, \
                    month_start, created_at, expires_at, holder) \
                SELECT $4, g.user_id, 'chat_message', $3, 'pending', g.last_reset_daily, \
                    g.last_reset_monthly, $NOW, $5, $11::uuid FROM granted g \
             ) SELECT * FROM granted"
        ),
        "$2",
        "$6",
        "$7",
    )
});

/// Many reservations in one statement: `$1` now, `$2` day start, `$3` calendar month start,
/// `$4..$8` the calls (position, user, cost, reservation id, expiry), `$9..$12` the
/// catalogue's plan ids and limits, `$13` the default plan, `$14` the calls' holders (`NULL`
/// for none).
///
/// The users' rows are locked in user order (so that two batches cannot deadlock); a user
/// without a row starts from a fresh one on the default plan, inserted by this statement
/// unless another transaction inserted it first (then that user's calls are not admitted
/// here). Each user's calls are admitted in position order while the running total fits
/// every limit, and the admitted calls' reservations are inserted. Returns one row per
/// admitted call: its position and the usage after it.
pub(super) static RESERVE_MANY: LazyLock<String> = LazyLock::new(|| {
    sql(
        "WITH calls AS ( \
            SELECT * FROM unnest($4::int4[], $5::uuid[], $6::int8[], $7::uuid[], \
                $8::timestamptz[], $14::uuid[]) AS c(idx, user_id, cost, id, expires_at, holder) \
         ), limits AS ( \
            SELECT * FROM unnest($9::text[], $10::int8[], $11::int8[], $12::int8[]) \
            AS l(plan, daily, monthly, tokens) \
         ), locked AS ( \
            SELECT u.* FROM usage_quotas u WHERE u.user_id = ANY($5::uuid[]) \
            ORDER BY u.user_id FOR UPDATE \
         ), known AS ( \
            SELECT u.user_id, u.plan, u.daily_generations, u.monthly_generations, \
                u.daily_chat_messages, u.monthly_tokens_used, u.total_tokens_used, \
                u.last_reset_daily, u.last_reset_monthly, u.period_start, u.period_end, \
                false AS is_new \
            FROM locked u \
            UNION ALL \
            SELECT DISTINCT c.user_id, $13::text, 0::int8, 0::int8, 0::int8, 0::int8, 0::int8, \
                $2::timestamptz, $3::timestamptz, NULL::timestamptz, NULL::timestamptz, true \
            FROM calls c WHERE NOT EXISTS (SELECT 1 FROM locked l WHERE l.user_id = c.user_id) \
         ), rolled AS ( \
            SELECT c.idx, c.user_id, c.cost, c.id, c.expires_at, c.holder, u.plan, \
                u.total_tokens_used, \
                u.period_start, u.period_end, u.is_new, l.daily, l.monthly, l.tokens, \
                CASE WHEN u.last_reset_daily < $DAY THEN 0 ELSE u.daily_generations END \
                    AS daily_used, \
                CASE WHEN u.last_reset_monthly < $MONTH THEN 0 ELSE u.monthly_generations END \
                    AS monthly_used, \
                CASE WHEN u.last_reset_monthly < $MONTH THEN 0 ELSE u.monthly_tokens_used END \
                    AS tokens_used, \
                CASE WHEN u.last_reset_daily < $DAY THEN 0 ELSE u.daily_chat_messages END \
                    AS chat_used, \
                GREATEST(u.last_reset_daily, $DAY) AS day_start, \
                GREATEST(u.last_reset_monthly, $MONTH) AS month_start, \
                (sum(c.cost) OVER (PARTITION BY c.user_id ORDER BY c.idx))::int8 AS spent \
            FROM calls c JOIN known u ON u.user_id = c.user_id JOIN limits l ON l.plan = u.plan \
         ), admitted AS ( \
            SELECT * FROM rolled \
            WHERE (daily IS NULL OR daily_used + spent <= daily) \
              AND (monthly IS NULL OR monthly_used + spent <= monthly) \
              AND (tokens IS NULL OR tokens_used < tokens) \
         ), totals AS ( \
            SELECT DISTINCT ON (user_id) * FROM admitted ORDER BY user_id, spent DESC \
         ), created AS ( \
            INSERT INTO usage_quotas (user_id, plan, daily_generations, monthly_generations, \
                last_reset_daily, last_reset_monthly, updated_at) \
            SELECT k.user_id, k.plan, COALESCE(t.spent, 0), COALESCE(t.spent, 0), \
                k.last_reset_daily, k.last_reset_monthly, $NOW \
            FROM known k LEFT JOIN totals t ON t.user_id = k.user_id WHERE k.is_new \
            ON CONFLICT (user_id) DO NOTHING RETURNING user_id \
         ), kept AS ( \
            SELECT a.* FROM admitted a \
            WHERE NOT a.is_new OR a.user_id IN (SELECT user_id FROM created) \
         ), granted AS ( \
            UPDATE usage_quotas u SET \
                daily_generations = t.daily_used + t.spent, \
                monthly_generations = t.monthly_used + t.spent, \
                daily_chat_messages = t.chat_used, \
                monthly_tokens_used = t.tokens_used, \
                last_reset_daily = t.day_start, \
                last_reset_monthly = t.month_start, \
                updated_at = $NOW \
            FROM totals t WHERE u.user_id = t.user_id AND NOT t.is_new \
            RETURNING u.user_id \
         ), held AS ( \
            INSERT INTO quota_reservations (id, user_id, cost, state, day_start, month_start, \
                created_at, expires_at, holder) \
            SELECT a.id, a.user_id, a.cost, 'pending', a.day_start, a.month_start, $NOW, \
                a.expires_at, a.holder FROM kept a \
         ) SELECT a.idx, a.user_id, a.plan, a.daily_used + a.spent AS daily_generations, \
            a.monthly_used + a.spent AS monthly_generations, \
            a.chat_used AS daily_chat_messages, \
            a.tokens_used AS monthly_tokens_used, a.total_tokens_used, \
            a.day_start AS last_reset_daily, a.month_start AS last_reset_monthly, \
            a.period_start, a.period_end \
         FROM kept a",
        "$1",
        "$2",
        "$3",
    )
});

/// Many commits in one statement: `$1` now, `$2` day start, `$3` calendar month start, `$4`
/// the reservation ids (distinct), `$5` their tokens. The users' rows are locked in user order
/// before their windows roll and their tokens are added. Returns the ids committed; an id not
/// returned was not pending and live, and takes the single-call path.
///
/// The reservations are found by primary key: the open-reservation indexes are partial on
/// `settled_at IS NULL`, which this statement does not test, so a plan cannot read a whole
/// pending index instead (see the migration `open_reservation_indexes`).
pub(super) static COMMIT_MANY: LazyLock<String> = LazyLock::new(|| {
    sql(
        "WITH calls AS ( \
            SELECT * FROM unnest($4::uuid[], $5::int8[]) AS c(id, tokens) \
         ), r AS ( \
            UPDATE quota_reservations q SET state = 'committed', settled_at = $NOW, \
                tokens = COALESCE(q.tokens, 0) + c.tokens \
            FROM calls c \
            WHERE q.id = ANY($4::uuid[]) AND q.id = c.id AND q.state = 'pending' \
                AND q.expires_at > $NOW \
            RETURNING q.id, q.user_id, c.tokens \
         ), spent AS ( \
            SELECT user_id, sum(tokens)::int8 AS tokens FROM r GROUP BY user_id \
         ), locked AS ( \
            SELECT u.user_id FROM usage_quotas u \
            WHERE u.user_id IN (SELECT user_id FROM spent) \
            ORDER BY u.user_id FOR UPDATE \
         ), settled AS ( \
            UPDATE usage_quotas u SET \
                daily_generations = CASE WHEN u.last_reset_daily < $DAY THEN 0 \
                    ELSE u.daily_generations END, \
                monthly_generations = CASE WHEN u.last_reset_monthly < $MONTH THEN 0 \
                    ELSE u.monthly_generations END, \
                monthly_tokens_used = (CASE WHEN u.last_reset_monthly < $MONTH THEN 0 \
                    ELSE u.monthly_tokens_used END) + s.tokens, \
                daily_chat_messages = CASE WHEN u.last_reset_daily < $DAY THEN 0 \
                    ELSE u.daily_chat_messages END, \
                total_tokens_used = u.total_tokens_used + s.tokens, \
                last_reset_daily = GREATEST(u.last_reset_daily, $DAY), \
                last_reset_monthly = GREATEST(u.last_reset_monthly, $MONTH), \
                updated_at = $NOW \
            FROM spent s JOIN locked l ON l.user_id = s.user_id \
            WHERE u.user_id = s.user_id RETURNING u.user_id \
         ) SELECT id FROM r",
        "$1",
        "$2",
        "$3",
    )
});

/// Releases the user's expired reservations: `$1` user, `$2` now. Returns the count released.
pub(super) const RELEASE_EXPIRED: &str = "WITH expired AS ( \
        UPDATE quota_reservations SET state = 'expired', settled_at = $2 \
        WHERE user_id = $1 AND settled_at IS NULL AND state = 'pending' AND expires_at <= $2 \
        RETURNING resource, cost, day_start, month_start \
     ) UPDATE usage_quotas u SET \
        daily_generations = GREATEST(u.daily_generations - (SELECT COALESCE(SUM(e.cost), 0) \
            FROM expired e WHERE e.resource = 'generation' \
            AND e.day_start = u.last_reset_daily), 0), \
        monthly_generations = GREATEST(u.monthly_generations - (SELECT COALESCE(SUM(e.cost), 0) \
            FROM expired e WHERE e.resource = 'generation' \
            AND e.month_start = u.last_reset_monthly), 0), \
        daily_chat_messages = GREATEST(u.daily_chat_messages - (SELECT COALESCE(SUM(e.cost), 0) \
            FROM expired e WHERE e.resource = 'chat_message' \
            AND e.day_start = u.last_reset_daily), 0), \
        updated_at = $2 \
     WHERE u.user_id = $1 AND EXISTS (SELECT 1 FROM expired) \
     RETURNING (SELECT count(*) FROM expired)";

/// Commits: `$1` id, `$2` now, `$3` tokens, `$4` day start, `$5` calendar month start.
pub(super) static COMMIT: LazyLock<String> = LazyLock::new(|| {
    sql(
        "WITH r AS ( \
            UPDATE quota_reservations SET state = 'committed', settled_at = $NOW, \
                tokens = COALESCE(tokens, 0) + $3 \
            WHERE id = $1 AND state = 'pending' AND expires_at > $NOW \
            RETURNING user_id \
         ) UPDATE usage_quotas u SET \
            daily_generations = CASE WHEN u.last_reset_daily < $DAY THEN 0 \
                ELSE u.daily_generations END, \
            monthly_generations = CASE WHEN u.last_reset_monthly < $MONTH THEN 0 \
                ELSE u.monthly_generations END, \
            monthly_tokens_used = (CASE WHEN u.last_reset_monthly < $MONTH THEN 0 \
                ELSE u.monthly_tokens_used END) + $3, \
            daily_chat_messages = CASE WHEN u.last_reset_daily < $DAY THEN 0 \
                ELSE u.daily_chat_messages END, \
            total_tokens_used = u.total_tokens_used + $3, \
            last_reset_daily = GREATEST(u.last_reset_daily, $DAY), \
            last_reset_monthly = GREATEST(u.last_reset_monthly, $MONTH), \
            updated_at = $NOW \
         FROM r WHERE u.user_id = r.user_id RETURNING u.user_id",
        "$2",
        "$4",
        "$5",
    )
});

/// Releases one pending reservation (refunded before its deadline, expired after): `$1` id,
/// `$2` now, `$3` the tokens a refund records on the reservation (the user's usage takes them
/// by [`ADD_TOKENS`]). Returns the state it moved to and the user.
pub(super) const RELEASE: &str = "WITH r AS ( \
        UPDATE quota_reservations \
        SET state = CASE WHEN expires_at > $2 THEN 'refunded' ELSE 'expired' END, \
            settled_at = $2, \
            tokens = CASE WHEN expires_at > $2 AND $3 > 0 THEN COALESCE(tokens, 0) + $3 \
                ELSE tokens END \
        WHERE id = $1 AND state = 'pending' \
        RETURNING user_id, resource, cost, day_start, month_start, state \
     ), u AS ( \
        UPDATE usage_quotas u SET \
            daily_generations = CASE WHEN r.resource = 'generation' \
                AND u.last_reset_daily = r.day_start \
                THEN GREATEST(u.daily_generations - r.cost, 0) ELSE u.daily_generations END, \
            monthly_generations = CASE WHEN r.resource = 'generation' \
                AND u.last_reset_monthly = r.month_start \
                THEN GREATEST(u.monthly_generations - r.cost, 0) ELSE u.monthly_generations END, \
            daily_chat_messages = CASE WHEN r.resource = 'chat_message' \
                AND u.last_reset_daily = r.day_start \
                THEN GREATEST(u.daily_chat_messages - r.cost, 0) ELSE u.daily_chat_messages END, \
            updated_at = $2 \
        FROM r WHERE u.user_id = r.user_id RETURNING u.user_id \
     ) SELECT r.state, r.user_id FROM r";

/// Adds tokens to a user's usage, rolling its windows: `$1` user, `$2` now, `$3` tokens, `$4`
/// day start, `$5` calendar month start.
pub(super) static ADD_TOKENS: LazyLock<String> = LazyLock::new(|| {
    sql(
        "UPDATE usage_quotas u SET \
            daily_generations = CASE WHEN u.last_reset_daily < $DAY THEN 0 \
                ELSE u.daily_generations END, \
            monthly_generations = CASE WHEN u.last_reset_monthly < $MONTH THEN 0 \
                ELSE u.monthly_generations END, \
            monthly_tokens_used = (CASE WHEN u.last_reset_monthly < $MONTH THEN 0 \
                ELSE u.monthly_tokens_used END) + $3, \
            daily_chat_messages = CASE WHEN u.last_reset_daily < $DAY THEN 0 \
                ELSE u.daily_chat_messages END, \
            total_tokens_used = u.total_tokens_used + $3, \
            last_reset_daily = GREATEST(u.last_reset_daily, $DAY), \
            last_reset_monthly = GREATEST(u.last_reset_monthly, $MONTH), \
            updated_at = $NOW \
         WHERE u.user_id = $1",
        "$2",
        "$4",
        "$5",
    )
});

/// Resets every ended window: `$1` now, `$2` day start, `$3` calendar month start.
pub(super) static ROLL_ALL: LazyLock<String> = LazyLock::new(|| {
    sql(
        "UPDATE usage_quotas u SET \
            daily_generations = CASE WHEN u.last_reset_daily < $DAY THEN 0 \
                ELSE u.daily_generations END, \
            monthly_generations = CASE WHEN u.last_reset_monthly < $MONTH THEN 0 \
                ELSE u.monthly_generations END, \
            monthly_tokens_used = CASE WHEN u.last_reset_monthly < $MONTH THEN 0 \
                ELSE u.monthly_tokens_used END, \
            daily_chat_messages = CASE WHEN u.last_reset_daily < $DAY THEN 0 \
                ELSE u.daily_chat_messages END, \
            last_reset_daily = GREATEST(u.last_reset_daily, $DAY), \
            last_reset_monthly = GREATEST(u.last_reset_monthly, $MONTH), \
            updated_at = $NOW \
         WHERE u.last_reset_daily < $DAY OR u.last_reset_monthly < $MONTH",
        "$1",
        "$2",
        "$3",
    )
});

#[derive(sqlx::FromRow)]
pub(super) struct UsageRow {
    pub(super) user_id: Uuid,
    pub(super) plan: String,
    pub(super) daily_generations: i64,
    pub(super) monthly_generations: i64,
    pub(super) daily_chat_messages: i64,
    pub(super) monthly_tokens_used: i64,
    pub(super) total_tokens_used: i64,
    pub(super) last_reset_daily: DateTime<Utc>,
    pub(super) last_reset_monthly: DateTime<Utc>,
    pub(super) period_start: Option<DateTime<Utc>>,
    pub(super) period_end: Option<DateTime<Utc>>,
}

/// An admitted call of a batch: its position, and the usage after it.
#[derive(sqlx::FromRow)]
pub(super) struct BatchedRow {
    pub(super) idx: i32,
    #[sqlx(flatten)]
    pub(super) usage: UsageRow,
}

impl UsageRow {
    pub(super) fn into_usage(self) -> Result<Usage> {
        let billing_period = match (self.period_start, self.period_end) {
            (Some(start), Some(end)) => Some(BillingPeriod { start, end }),
            _ => None,
        };
        Ok(Usage {
            user: self.user_id,
            plan: PlanId::new(self.plan),
            daily_generations: count("daily_generations", self.daily_generations)?,
            monthly_generations: count("monthly_generations", self.monthly_generations)?,
            daily_chat_messages: count("daily_chat_messages", self.daily_chat_messages)?,
            monthly_tokens: count("monthly_tokens_used", self.monthly_tokens_used)?,
            total_tokens: count("total_tokens_used", self.total_tokens_used)?,
            day_start: self.last_reset_daily,
            month_start: self.last_reset_monthly,
            billing_period,
        })
    }
}
