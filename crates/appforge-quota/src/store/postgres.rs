use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgPool, PgPoolOptions};
use uuid::Uuid;

use super::sql::{MIGRATIONS_TABLE, PlanRow, PlanValues, count, storage_limit, stored};
use super::{ReserveOutcome, ReserveRequest, StoreContext, SweepReport, UsageStore};
use crate::plan::{Plan, PlanId};
use crate::reservation::{
    HeldReservation, ReservationId, ReservationState, Settlement, held_until,
};
use crate::resource::Resource;
use crate::usage::{Settle, Step, Usage, answer, live, step};
use crate::window::{BillingPeriod, Windows};
use crate::{Error, Result};

mod coalesce;

use coalesce::{Call, Coalescer, Lease};

/// A usage store in PostgreSQL, for many API and worker processes on one database.
///
/// A reservation is one conditional `UPDATE ... RETURNING` (with the reservation row inserted
/// by the same statement): the limits are checked against the row PostgreSQL has locked, so
/// concurrent callers in any number of processes never admit more than a limit. Time is the
/// quota clock's, passed as a parameter, never the database's `now()`.
///
/// **Batching.** Reservations and commits that arrive while others are running are carried
/// together by one statement (one round trip, one transaction, one WAL flush), which is what
/// lets a busy store do several thousand pairs a second on a small machine. A batched
/// reservation is still one atomic statement: it locks the users' rows in user order, admits
/// each user's calls in arrival order while they fit, and inserts the reservations. A call the
/// batch did not admit (a limit reached, a new user, a statement PostgreSQL refused) takes
/// the single-call path, so every answer is the one a lone call would get. A lone call runs at
/// once (after yielding twice to the scheduler, so that callers woken together go together):
/// there is no timer. [`batching`](Self::batching) sets how many batch statements of each kind
/// run at a time, or turns batching off.
///
/// **Connections.** Batch statements run on connections the store opens itself, with the
/// pool's connect options, and keeps between batches: one per batch statement in flight (two
/// by default), outside the pool's `max_connections`. A kept connection saves the ping of a
/// pool checkout and runs on a server process that has already planned the statement. One
/// idle for ten seconds is pinged before use, one whose statement failed is dropped, and when
/// none can be opened a batch runs on a pool connection.
#[derive(Debug, Clone)]
pub struct PgUsageStore {
    pool: PgPool,
    batches: Option<Arc<Batches>>,
}

/// How many batch statements of each kind run at a time, by default.
pub const DEFAULT_BATCH_STATEMENTS: usize = 1;

/// The most calls one batch statement carries.
const MAX_BATCH: usize = 256;

/// The two queues of a batching store.
#[derive(Debug)]
struct Batches {
    reserve: Arc<Coalescer<ReserveAsk, Option<UsageRow>>>,
    commit: Arc<Coalescer<CommitAsk, bool>>,
}

impl Batches {
    fn new(pool: &PgPool, statements: usize) -> Self {
        Self {
            reserve: Arc::new(Coalescer::new(
                pool.clone(),
                statements,
                MAX_BATCH,
                run_reserves,
            )),
            commit: Arc::new(Coalescer::new(
                pool.clone(),
                statements,
                MAX_BATCH,
                run_commits,
            )),
        }
    }
}

/// The plan limits a reservation is checked against, as statement parameters.
#[derive(Debug, PartialEq, Eq)]
struct Limits {
    default_plan: String,
    ids: Vec<String>,
    daily: Vec<Option<i64>>,
    monthly: Vec<Option<i64>>,
    tokens: Vec<Option<i64>>,
    chat: Vec<Option<i64>>,
}

impl Limits {
    fn of(catalogue: &crate::PlanCatalogue) -> Self {
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

/// One reservation waiting for a batch.
struct ReserveAsk {
    request: ReserveRequest,
    now: DateTime<Utc>,
    windows: Windows,
    limits: Arc<Limits>,
}

/// One commit waiting for a batch.
struct CommitAsk {
    id: ReservationId,
    tokens: u64,
    now: DateTime<Utc>,
    windows: Windows,
}

/// How many times a reservation retries after losing a race (a plan change, a release, a
/// first row) before answering with what it last read.
const MAX_ATTEMPTS: usize = 16;

/// The start of the row's monthly window at `$NOW`, given the calendar month start `$CAL`:
/// mirrors [`Windows::month`](crate::Windows::month).
const MONTH: &str = "(CASE WHEN u.period_start <= $NOW AND $NOW < u.period_end THEN u.period_start \
     WHEN $NOW >= u.period_end THEN GREATEST($CAL, u.period_end) ELSE $CAL END)";

/// The starts of the day and of the calendar month at `now`: the time parameters every
/// statement that may roll a window takes (the month actually used is worked out in SQL, see
/// [`MONTH`]).
fn starts(windows: Windows, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    (windows.day(now).0, windows.calendar_month(now).0)
}

/// Builds a statement from audited constants, numbering the time parameters.
fn sql(template: &str, now: &str, day: &str, cal: &str) -> String {
    template
        .replace("$MONTH", MONTH)
        .replace("$NOW", now)
        .replace("$DAY", day)
        .replace("$CAL", cal)
}

const USAGE_RETURNING: &str = "u.user_id, u.plan, u.daily_generations, u.monthly_generations, \
     u.daily_chat_messages, u.monthly_tokens_used, u.total_tokens_used, u.last_reset_daily, \
     u.last_reset_monthly, u.period_start, u.period_end";

/// The chat counter of a row after its day rolled to `$DAY` (every statement that moves
/// `last_reset_daily` sets it so).
const CHAT_ROLLED: &str = "daily_chat_messages = CASE WHEN u.last_reset_daily < $DAY THEN 0 \
     ELSE u.daily_chat_messages END";

/// `$1` user, `$2` now, `$3` cost, `$4` reservation id, `$5` expiry, `$6` day start, `$7`
/// calendar month start, `$8..$11` the catalogue's plan ids and limits.
static RESERVE: LazyLock<String> = LazyLock::new(|| {
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
                INSERT INTO quota_reservations \
                    (id, user_id, cost, state, day_start, month_start, created_at, expires_at) \
                SELECT $4, g.user_id, $3, 'pending', g.last_reset_daily, g.last_reset_monthly, \
                    $NOW, $5 FROM granted g \
             ) SELECT * FROM granted"
        ),
        "$2",
        "$6",
        "$7",
    )
});

/// A chat-message reservation: `$1` user, `$2` now, `$3` cost, `$4` reservation id, `$5`
/// expiry, `$6` day start, `$7` calendar month start, `$8..$10` the catalogue's plan ids, daily
/// chat limits and token limits. Chat messages have their own daily counter; the windows roll
/// as for a generation.
static RESERVE_CHAT: LazyLock<String> = LazyLock::new(|| {
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
                    month_start, created_at, expires_at) \
                SELECT $4, g.user_id, 'chat_message', $3, 'pending', g.last_reset_daily, \
                    g.last_reset_monthly, $NOW, $5 FROM granted g \
             ) SELECT * FROM granted"
        ),
        "$2",
        "$6",
        "$7",
    )
});

/// Many reservations in one statement: `$1` now, `$2` day start, `$3` calendar month start,
/// `$4..$8` the calls (position, user, cost, reservation id, expiry), `$9..$12` the
/// catalogue's plan ids and limits, `$13` the default plan.
///
/// The users' rows are locked in user order (so that two batches cannot deadlock); a user
/// without a row starts from a fresh one on the default plan, inserted by this statement
/// unless another transaction inserted it first (then that user's calls are not admitted
/// here). Each user's calls are admitted in position order while the running total fits
/// every limit, and the admitted calls' reservations are inserted. Returns one row per
/// admitted call: its position and the usage after it.
static RESERVE_MANY: LazyLock<String> = LazyLock::new(|| {
    sql(
        "WITH calls AS ( \
            SELECT * FROM unnest($4::int4[], $5::uuid[], $6::int8[], $7::uuid[], \
                $8::timestamptz[]) AS c(idx, user_id, cost, id, expires_at) \
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
            SELECT c.idx, c.user_id, c.cost, c.id, c.expires_at, u.plan, u.total_tokens_used, \
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
            INSERT INTO quota_reservations \
                (id, user_id, cost, state, day_start, month_start, created_at, expires_at) \
            SELECT a.id, a.user_id, a.cost, 'pending', a.day_start, a.month_start, $NOW, \
                a.expires_at FROM kept a \
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
static COMMIT_MANY: LazyLock<String> = LazyLock::new(|| {
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
const RELEASE_EXPIRED: &str = "WITH expired AS ( \
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
static COMMIT: LazyLock<String> = LazyLock::new(|| {
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
const RELEASE: &str = "WITH r AS ( \
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
static ADD_TOKENS: LazyLock<String> = LazyLock::new(|| {
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
static ROLL_ALL: LazyLock<String> = LazyLock::new(|| {
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
struct UsageRow {
    user_id: Uuid,
    plan: String,
    daily_generations: i64,
    monthly_generations: i64,
    daily_chat_messages: i64,
    monthly_tokens_used: i64,
    total_tokens_used: i64,
    last_reset_daily: DateTime<Utc>,
    last_reset_monthly: DateTime<Utc>,
    period_start: Option<DateTime<Utc>>,
    period_end: Option<DateTime<Utc>>,
}

/// An admitted call of a batch: its position, and the usage after it.
#[derive(sqlx::FromRow)]
struct BatchedRow {
    idx: i32,
    #[sqlx(flatten)]
    usage: UsageRow,
}

impl UsageRow {
    fn into_usage(self) -> Result<Usage> {
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

impl PgUsageStore {
    /// Connects to `url` (`postgres://...`) with a pool of up to 10 connections. Call
    /// [`migrate`](Self::migrate) before use.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the database cannot be reached.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect(url)
            .await?;
        Ok(Self::from_pool(pool))
    }

    /// A store on an existing pool (shared with other crates), batching with
    /// [`DEFAULT_BATCH_STATEMENTS`] statements of each kind in flight.
    #[must_use]
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            batches: Some(Arc::new(Batches::new(&pool, DEFAULT_BATCH_STATEMENTS))),
            pool,
        }
    }

    /// Sets how many batch statements of each kind (reservations, commits) may run at a time;
    /// `0` turns batching off, so that every call is its own statement.
    #[must_use]
    pub fn batching(mut self, statements: usize) -> Self {
        self.batches = (statements > 0).then(|| Arc::new(Batches::new(&self.pool, statements)));
        self
    }

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates or updates this crate's tables (migration table `_appforge_quota_migrations`).
    ///
    /// # Errors
    ///
    /// [`Error::Migrate`] when a migration fails.
    pub async fn migrate(&self) -> Result<()> {
        let mut migrator = sqlx::migrate!("./migrations/postgres");
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.run(&self.pool).await?;
        Ok(())
    }

    async fn read_usage(&self, user: Uuid) -> Result<Option<Usage>> {
        let row: Option<UsageRow> = sqlx::query_as(
            "SELECT user_id, plan, daily_generations, monthly_generations, daily_chat_messages, \
             monthly_tokens_used, total_tokens_used, last_reset_daily, last_reset_monthly, \
             period_start, period_end FROM usage_quotas WHERE user_id = $1",
        )
        .bind(user)
        .fetch_optional(&self.pool)
        .await?;
        row.map(UsageRow::into_usage).transpose()
    }

    async fn release_expired(&self, user: Uuid, now: DateTime<Utc>) -> Result<u64> {
        let released: Option<i64> = sqlx::query_scalar(RELEASE_EXPIRED)
            .bind(user)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        Ok(released.map_or(0, |n| count("released", n).unwrap_or(0)))
    }

    /// Stores a new user's row on the default plan, unless one appeared meanwhile.
    async fn insert_fresh(&self, cx: &StoreContext<'_>, user: Uuid) -> Result<()> {
        let fresh = Usage::fresh(user, cx.plans.default_plan().id.clone(), cx.now, cx.windows);
        sqlx::query(
            "INSERT INTO usage_quotas (user_id, plan, last_reset_daily, last_reset_monthly, \
             updated_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(user)
        .bind(fresh.plan.as_str())
        .bind(fresh.day_start)
        .bind(fresh.month_start)
        .bind(cx.now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn settle(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        how: Settle,
        tokens: u64,
    ) -> Result<Settlement> {
        let (day, cal) = starts(cx.windows, cx.now);
        let mut batched = false;
        if let (Settle::Commit, Some(batches)) = (how, &self.batches) {
            let ask = CommitAsk {
                id,
                tokens,
                now: cx.now,
                windows: cx.windows,
            };
            if batches.commit.submit(ask).await? {
                return Ok(Settlement::Settled);
            }
            batched = true;
        }
        for _ in 0..MAX_ATTEMPTS {
            // The fast paths: one statement each (a commit the batch did not settle goes
            // straight to finding out why).
            match how {
                Settle::Commit if std::mem::take(&mut batched) => {}
                Settle::Commit => {
                    let done = sqlx::query(AssertSqlSafe(COMMIT.as_str()))
                        .bind(id.as_uuid())
                        .bind(cx.now)
                        .bind(stored(tokens))
                        .bind(day)
                        .bind(cal)
                        .execute(&self.pool)
                        .await?;
                    if done.rows_affected() > 0 {
                        return Ok(Settlement::Settled);
                    }
                }
                Settle::Refund => {
                    if let Some(state) = self.release(&cx, id, tokens).await? {
                        return Ok(match state {
                            ReservationState::Refunded => Settlement::Settled,
                            _ => Settlement::AlreadyReleased,
                        });
                    }
                }
            }
            // Not pending (or expired): say why, releasing an expired one.
            let row: Option<(String, DateTime<Utc>)> =
                sqlx::query_as("SELECT state, expires_at FROM quota_reservations WHERE id = $1")
                    .bind(id.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?;
            let (state, expires_at) = row.ok_or(Error::ReservationNotFound(id))?;
            let state = ReservationState::parse(&state)?;
            match step(state, expires_at <= cx.now, how) {
                Step::Stay(a) => return answer(id, a),
                Step::Move {
                    to: ReservationState::Expired,
                    answer: a,
                    ..
                } => {
                    self.release(&cx, id, 0).await?;
                    return answer(id, a);
                }
                // Pending and live after all: it changed under us; try again.
                Step::Move { .. } => {}
            }
        }
        Err(Error::Busy(format!(
            "reservation {id} kept changing while being settled"
        )))
    }

    /// Releases a pending reservation (refunded before its deadline, with `tokens` added to
    /// the user's usage; expired after); `None` when it was not pending.
    async fn release(
        &self,
        cx: &StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
    ) -> Result<Option<ReservationState>> {
        if tokens == 0 {
            let row: Option<(String, Uuid)> = sqlx::query_as(RELEASE)
                .bind(id.as_uuid())
                .bind(cx.now)
                .bind(0_i64)
                .fetch_optional(&self.pool)
                .await?;
            return row.map(|(s, _)| ReservationState::parse(&s)).transpose();
        }
        let mut tx = self.pool.begin().await?;
        let row: Option<(String, Uuid)> = sqlx::query_as(RELEASE)
            .bind(id.as_uuid())
            .bind(cx.now)
            .bind(stored(tokens))
            .fetch_optional(&mut *tx)
            .await?;
        let Some((state, user)) = row else {
            return Ok(None);
        };
        let state = ReservationState::parse(&state)?;
        if state == ReservationState::Refunded {
            self.add_tokens(&mut tx, cx, user, tokens).await?;
        }
        tx.commit().await?;
        Ok(Some(state))
    }

    /// Adds `tokens` to the user's usage inside `tx`.
    async fn add_tokens(
        &self,
        tx: &mut sqlx::PgConnection,
        cx: &StoreContext<'_>,
        user: Uuid,
        tokens: u64,
    ) -> Result<()> {
        let (day, cal) = starts(cx.windows, cx.now);
        sqlx::query(AssertSqlSafe(ADD_TOKENS.as_str()))
            .bind(user)
            .bind(cx.now)
            .bind(stored(tokens))
            .bind(day)
            .bind(cal)
            .execute(tx)
            .await?;
        Ok(())
    }

    /// Records tokens on, or attaches a holder to, a live pending reservation.
    async fn touch(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
        holder: Option<Uuid>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(String, DateTime<Utc>, Uuid)> = sqlx::query_as(
            "SELECT state, expires_at, user_id FROM quota_reservations WHERE id = $1 FOR UPDATE",
        )
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
        let (state, expires_at, user) = row.ok_or(Error::ReservationNotFound(id))?;
        let state = ReservationState::parse(&state)?;
        if let Err(state) = live(state, expires_at <= cx.now) {
            drop(tx);
            if state == ReservationState::Expired {
                self.release(&cx, id, 0).await?;
            }
            return Err(Error::AlreadySettled { id, state });
        }
        match holder {
            Some(holder) => {
                sqlx::query(
                    "UPDATE quota_reservations SET holder = $2, expires_at = $3 WHERE id = $1",
                )
                .bind(id.as_uuid())
                .bind(holder)
                .bind(held_until())
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query(
                    "UPDATE quota_reservations SET tokens = COALESCE(tokens, 0) + $2 WHERE id = $1",
                )
                .bind(id.as_uuid())
                .bind(stored(tokens))
                .execute(&mut *tx)
                .await?;
                self.add_tokens(&mut tx, &cx, user, tokens).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Runs a batch of reservations: one statement for each group of calls that share windows
/// and a catalogue (normally all of them), evaluated at the latest of their times.
fn run_reserves(
    lease: &mut Lease,
    calls: Vec<Call<ReserveAsk, Option<UsageRow>>>,
) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
    Box::pin(async move {
        let mut rest = calls;
        while let Some(first) = rest.first() {
            let (windows, limits) = (first.ask.windows, Arc::clone(&first.ask.limits));
            let (group, others): (Vec<_>, Vec<_>) = rest
                .into_iter()
                .partition(|c| c.ask.windows == windows && *c.ask.limits == *limits);
            rest = others;
            reserve_group(lease, group, windows, &limits).await;
        }
    })
}

async fn reserve_group(
    lease: &mut Lease,
    calls: Vec<Call<ReserveAsk, Option<UsageRow>>>,
    windows: Windows,
    limits: &Limits,
) {
    let Some(now) = calls.iter().map(|c| c.ask.now).max() else {
        return;
    };
    let conn = match lease.conn().await {
        Ok(conn) => conn,
        Err(e) => return batch_failed(lease, calls, &e, || None, "reservations"),
    };
    let (day, cal) = starts(windows, now);
    let positions: Vec<i32> = (0..).take(calls.len()).collect();
    let users: Vec<Uuid> = calls.iter().map(|c| c.ask.request.user).collect();
    let costs: Vec<i64> = calls
        .iter()
        .map(|c| i64::from(c.ask.request.cost))
        .collect();
    let ids: Vec<Uuid> = calls.iter().map(|c| c.ask.request.id.as_uuid()).collect();
    let expiries: Vec<DateTime<Utc>> = calls.iter().map(|c| c.ask.request.expires_at).collect();
    let rows: std::result::Result<Vec<BatchedRow>, sqlx::Error> =
        sqlx::query_as(AssertSqlSafe(RESERVE_MANY.as_str()))
            .bind(now)
            .bind(day)
            .bind(cal)
            .bind(&positions)
            .bind(&users)
            .bind(&costs)
            .bind(&ids)
            .bind(&expiries)
            .bind(&limits.ids)
            .bind(&limits.daily)
            .bind(&limits.monthly)
            .bind(&limits.tokens)
            .bind(&limits.default_plan)
            .fetch_all(&mut *conn)
            .await;
    match rows {
        Ok(rows) => {
            let mut granted: Vec<Option<UsageRow>> = calls.iter().map(|_| None).collect();
            for row in rows {
                if let Some(slot) = usize::try_from(row.idx)
                    .ok()
                    .and_then(|i| granted.get_mut(i))
                {
                    *slot = Some(row.usage);
                }
            }
            for (call, answer) in calls.into_iter().zip(granted) {
                call.answer(Ok(answer));
            }
        }
        Err(e) => batch_failed(lease, calls, &e, || None, "reservations"),
    }
}

/// Runs a batch of commits: one statement for each group of calls that share windows,
/// evaluated at the latest of their times. A repeated id is left to the single-call path, so
/// that exactly one call settles it and with its own tokens.
fn run_commits(
    lease: &mut Lease,
    calls: Vec<Call<CommitAsk, bool>>,
) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
    Box::pin(async move {
        let mut seen = std::collections::HashSet::with_capacity(calls.len());
        let mut rest = Vec::with_capacity(calls.len());
        for call in calls {
            if seen.insert(call.ask.id) {
                rest.push(call);
            } else {
                call.answer(Ok(false));
            }
        }
        while let Some(first) = rest.first() {
            let windows = first.ask.windows;
            let (group, others): (Vec<_>, Vec<_>) =
                rest.into_iter().partition(|c| c.ask.windows == windows);
            rest = others;
            commit_group(lease, group, windows).await;
        }
    })
}

async fn commit_group(lease: &mut Lease, calls: Vec<Call<CommitAsk, bool>>, windows: Windows) {
    let Some(now) = calls.iter().map(|c| c.ask.now).max() else {
        return;
    };
    let conn = match lease.conn().await {
        Ok(conn) => conn,
        Err(e) => return batch_failed(lease, calls, &e, || false, "commits"),
    };
    let (day, cal) = starts(windows, now);
    let ids: Vec<Uuid> = calls.iter().map(|c| c.ask.id.as_uuid()).collect();
    let tokens: Vec<i64> = calls.iter().map(|c| stored(c.ask.tokens)).collect();
    let settled: std::result::Result<Vec<Uuid>, sqlx::Error> =
        sqlx::query_scalar(AssertSqlSafe(COMMIT_MANY.as_str()))
            .bind(now)
            .bind(day)
            .bind(cal)
            .bind(&ids)
            .bind(&tokens)
            .fetch_all(&mut *conn)
            .await;
    match settled {
        Ok(settled) => {
            let settled: std::collections::HashSet<Uuid> = settled.into_iter().collect();
            for call in calls {
                let done = settled.contains(&call.ask.id.as_uuid());
                call.answer(Ok(done));
            }
        }
        Err(e) => batch_failed(lease, calls, &e, || false, "commits"),
    }
}

/// Answers every call of a batch whose statement (or connection) failed, and leaves the
/// connection unkept. A statement PostgreSQL refused (a deadlock with another process's
/// batch, say) applied nothing, so each call is answered `not_done` and takes the single-call
/// path; any other failure (a lost connection) is each call's error.
fn batch_failed<T, A>(
    lease: &mut Lease,
    calls: Vec<Call<T, A>>,
    e: &sqlx::Error,
    not_done: fn() -> A,
    kind: &str,
) {
    lease.unfit();
    if let sqlx::Error::Database(refused) = e {
        tracing::debug!(error = %refused, calls = calls.len(), kind, "batch refused; one call at a time");
        for call in calls {
            call.answer(Ok(not_done()));
        }
    } else {
        for call in calls {
            call.answer(Err(shared(e)));
        }
    }
}

/// The error a failed batch statement gives each of its calls (`sqlx::Error` is not `Clone`):
/// the same kind, so that [`Error::is_retryable`] answers as it would for the original.
fn shared(e: &sqlx::Error) -> Error {
    Error::from(match e {
        sqlx::Error::Io(io) => sqlx::Error::Io(std::io::Error::new(io.kind(), io.to_string())),
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        sqlx::Error::WorkerCrashed => sqlx::Error::WorkerCrashed,
        other => sqlx::Error::Protocol(other.to_string()),
    })
}

impl UsageStore for PgUsageStore {
    async fn reserve(
        &self,
        cx: StoreContext<'_>,
        request: ReserveRequest,
    ) -> Result<ReserveOutcome> {
        let limits = Arc::new(Limits::of(cx.plans));
        let (day, cal) = starts(cx.windows, cx.now);
        let mut batched = None;
        // Chat messages are fewer than generations: they take the single-call path.
        if let (Resource::Generation, Some(batches)) = (request.resource, &self.batches) {
            let ask = ReserveAsk {
                request,
                now: cx.now,
                windows: cx.windows,
                limits: Arc::clone(&limits),
            };
            batched = Some(batches.reserve.submit(ask).await?);
        }
        let mut last = None;
        for _ in 0..MAX_ATTEMPTS {
            // The batch's answer first: granted, or not admitted (straight to finding out why).
            let granted: Option<UsageRow> = match batched.take() {
                Some(answer) => answer,
                None => match request.resource {
                    Resource::Generation => {
                        sqlx::query_as(AssertSqlSafe(RESERVE.as_str()))
                            .bind(request.user)
                            .bind(cx.now)
                            .bind(i64::from(request.cost))
                            .bind(request.id.as_uuid())
                            .bind(request.expires_at)
                            .bind(day)
                            .bind(cal)
                            .bind(&limits.ids)
                            .bind(&limits.daily)
                            .bind(&limits.monthly)
                            .bind(&limits.tokens)
                            .fetch_optional(&self.pool)
                            .await?
                    }
                    Resource::ChatMessage => {
                        sqlx::query_as(AssertSqlSafe(RESERVE_CHAT.as_str()))
                            .bind(request.user)
                            .bind(cx.now)
                            .bind(i64::from(request.cost))
                            .bind(request.id.as_uuid())
                            .bind(request.expires_at)
                            .bind(day)
                            .bind(cal)
                            .bind(&limits.ids)
                            .bind(&limits.chat)
                            .bind(&limits.tokens)
                            .fetch_optional(&self.pool)
                            .await?
                    }
                },
            };
            if let Some(row) = granted {
                return Ok(ReserveOutcome {
                    refused_by: None,
                    usage: row.into_usage()?,
                });
            }
            // Refused, or no row yet, or lost a race: release what expired, then look.
            let released = self.release_expired(request.user, cx.now).await?;
            let Some(mut usage) = self.read_usage(request.user).await? else {
                self.insert_fresh(&cx, request.user).await?;
                continue;
            };
            usage.roll(cx.now, cx.windows);
            let plan = cx.plans.require(&usage.plan)?;
            match usage.refusal(plan, request.resource, request.cost) {
                Some(kind) if released == 0 => {
                    return Ok(ReserveOutcome {
                        refused_by: Some(kind),
                        usage,
                    });
                }
                refusal => last = refusal.map(|kind| (kind, usage)),
            }
        }
        // Still contended: refuse if the last look said so, else give up without holding.
        match last {
            Some((kind, usage)) => Ok(ReserveOutcome {
                refused_by: Some(kind),
                usage,
            }),
            None => Err(Error::Busy(format!(
                "usage of {} kept changing while reserving",
                request.user
            ))),
        }
    }

    async fn commit(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
    ) -> Result<Settlement> {
        self.settle(cx, id, Settle::Commit, tokens).await
    }

    async fn refund(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
    ) -> Result<Settlement> {
        self.settle(cx, id, Settle::Refund, tokens).await
    }

    async fn record_tokens(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
    ) -> Result<()> {
        self.touch(cx, id, tokens, None).await
    }

    async fn hold(&self, cx: StoreContext<'_>, id: ReservationId, holder: Uuid) -> Result<()> {
        self.touch(cx, id, 0, Some(holder)).await
    }

    async fn held(
        &self,
        _cx: StoreContext<'_>,
        before: DateTime<Utc>,
        after: Option<ReservationId>,
        limit: u32,
    ) -> Result<Vec<HeldReservation>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: Uuid,
            user_id: Uuid,
            holder: Uuid,
            resource: String,
            cost: i32,
            created_at: DateTime<Utc>,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, user_id, holder, resource, cost, created_at FROM quota_reservations \
             WHERE settled_at IS NULL AND holder IS NOT NULL AND state = 'pending' \
             AND created_at < $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
        )
        .bind(before)
        .bind(after.map(|a| a.as_uuid()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(HeldReservation {
                    id: ReservationId::from_uuid(r.id),
                    user: r.user_id,
                    holder: r.holder,
                    resource: Resource::parse(&r.resource)?,
                    cost: u32::try_from(r.cost)
                        .map_err(|_| Error::Corrupt(format!("reservation cost {}", r.cost)))?,
                    created_at: r.created_at,
                })
            })
            .collect()
    }

    async fn usage(&self, cx: StoreContext<'_>, user: Uuid) -> Result<Usage> {
        self.release_expired(user, cx.now).await?;
        let mut usage = match self.read_usage(user).await? {
            Some(usage) => usage,
            None => Usage::fresh(user, cx.plans.default_plan().id.clone(), cx.now, cx.windows),
        };
        usage.roll(cx.now, cx.windows);
        Ok(usage)
    }

    async fn set_plan(&self, cx: StoreContext<'_>, user: Uuid, plan: &PlanId) -> Result<()> {
        let fresh = Usage::fresh(user, plan.clone(), cx.now, cx.windows);
        sqlx::query(
            "INSERT INTO usage_quotas (user_id, plan, last_reset_daily, last_reset_monthly, \
             updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id) DO UPDATE SET plan = excluded.plan, \
             updated_at = excluded.updated_at",
        )
        .bind(user)
        .bind(plan.as_str())
        .bind(fresh.day_start)
        .bind(fresh.month_start)
        .bind(cx.now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_billing_period(
        &self,
        cx: StoreContext<'_>,
        user: Uuid,
        period: Option<BillingPeriod>,
    ) -> Result<()> {
        let fresh = Usage::fresh(user, cx.plans.default_plan().id.clone(), cx.now, cx.windows);
        sqlx::query(
            "INSERT INTO usage_quotas (user_id, plan, last_reset_daily, last_reset_monthly, \
             period_start, period_end, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (user_id) DO UPDATE SET period_start = excluded.period_start, \
             period_end = excluded.period_end, updated_at = excluded.updated_at",
        )
        .bind(user)
        .bind(fresh.plan.as_str())
        .bind(fresh.day_start)
        .bind(fresh.month_start)
        .bind(period.map(|p| p.start))
        .bind(period.map(|p| p.end))
        .bind(cx.now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn sweep(&self, cx: StoreContext<'_>) -> Result<SweepReport> {
        let users: Vec<Uuid> = sqlx::query_scalar(
            "SELECT DISTINCT user_id FROM quota_reservations \
             WHERE settled_at IS NULL AND state = 'pending' AND expires_at <= $1",
        )
        .bind(cx.now)
        .fetch_all(&self.pool)
        .await?;
        let mut report = SweepReport::default();
        for user in users {
            report.released += self.release_expired(user, cx.now).await?;
        }
        let (day, cal) = starts(cx.windows, cx.now);
        report.reset = sqlx::query(AssertSqlSafe(ROLL_ALL.as_str()))
            .bind(cx.now)
            .bind(day)
            .bind(cal)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(report)
    }

    async fn load_plans(&self) -> Result<Vec<Plan>> {
        let rows: Vec<PlanRow> = sqlx::query_as(
            "SELECT id, name, description, price_monthly::int8 AS price_monthly, \
             price_yearly::int8 AS price_yearly, daily_limit::int8 AS daily_limit, \
             monthly_limit::int8 AS monthly_limit, features::text AS features, \
             stripe_price_id_monthly, stripe_price_id_yearly, is_active, monthly_token_limit, \
             burst_requests::int8 AS burst_requests, burst_period_ms, \
             burst_size::int8 AS burst_size, priority::int8 AS priority, \
             daily_chat_limit::int8 AS daily_chat_limit, \
             max_running_jobs::int8 AS max_running_jobs, request_limits::text AS request_limits, \
             storage_limit_bytes FROM pricing_plans ORDER BY position, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(PlanRow::into_plan).collect()
    }

    async fn save_plan(&self, plan: &Plan) -> Result<()> {
        let v = PlanValues::new(plan)?;
        let priority = plan.priority;
        let int = |v: Option<u32>, what: &str| {
            v.map(i32::try_from).transpose().map_err(|_| {
                Error::Config(format!("plan {}: {what} does not fit the table", plan.id))
            })
        };
        let burst_requests = v.burst_requests.map(i32::try_from).transpose();
        let burst_size = v.burst_size.map(i32::try_from).transpose();
        let (Ok(burst_requests), Ok(burst_size)) = (burst_requests, burst_size) else {
            return Err(Error::Config(format!(
                "plan {}: burst does not fit the table",
                plan.id
            )));
        };
        sqlx::query(
            "INSERT INTO pricing_plans (id, name, description, price_monthly, price_yearly, \
             daily_limit, monthly_limit, features, stripe_price_id_monthly, \
             stripe_price_id_yearly, is_active, monthly_token_limit, burst_requests, \
             burst_period_ms, burst_size, priority, daily_chat_limit, max_running_jobs, \
             request_limits, storage_limit_bytes, position) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12, $13, $14, $15, \
             $16, $17, $18, $19::jsonb, $20, (SELECT COALESCE(MAX(position), 0) + 1 FROM pricing_plans)) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
             description = excluded.description, price_monthly = excluded.price_monthly, \
             price_yearly = excluded.price_yearly, daily_limit = excluded.daily_limit, \
             monthly_limit = excluded.monthly_limit, features = excluded.features, \
             stripe_price_id_monthly = excluded.stripe_price_id_monthly, \
             stripe_price_id_yearly = excluded.stripe_price_id_yearly, \
             is_active = excluded.is_active, monthly_token_limit = excluded.monthly_token_limit, \
             burst_requests = excluded.burst_requests, \
             burst_period_ms = excluded.burst_period_ms, burst_size = excluded.burst_size, \
             priority = excluded.priority, daily_chat_limit = excluded.daily_chat_limit, \
             max_running_jobs = excluded.max_running_jobs, \
             request_limits = excluded.request_limits, \
             storage_limit_bytes = excluded.storage_limit_bytes",
        )
        .bind(plan.id.as_str())
        .bind(&plan.name)
        .bind(plan.description.as_deref())
        .bind(int(plan.price_monthly, "monthly price")?)
        .bind(int(plan.price_yearly, "yearly price")?)
        .bind(int(plan.daily_generations, "daily limit")?)
        .bind(int(plan.monthly_generations, "monthly limit")?)
        .bind(&v.features)
        .bind(plan.stripe_price_id_monthly.as_deref())
        .bind(plan.stripe_price_id_yearly.as_deref())
        .bind(plan.is_active)
        .bind(v.token_limit)
        .bind(burst_requests)
        .bind(v.burst_period_ms)
        .bind(burst_size)
        .bind(priority)
        .bind(int(plan.daily_chat_messages, "daily chat limit")?)
        .bind(int(plan.max_running_jobs, "running job cap")?)
        .bind(&v.request_limits)
        .bind(storage_limit(plan)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use appforge_testing::TestDatabase;

    /// The plan PostgreSQL caches for a batch of settlements on a busy table that has not been
    /// analyzed yet (a new or freshly emptied one): it finds each reservation by primary key.
    /// With the indexes partial on `state = 'pending'` (the first migration) it read a whole
    /// pending index instead, with the entries of every row settled since the last vacuum, on
    /// every commit.
    #[tokio::test]
    async fn batch_settlements_find_reservations_by_primary_key() {
        let Some(db) = TestDatabase::create_or_skip().await else {
            return;
        };
        let store = PgUsageStore::from_pool(db.pool().await);
        store.migrate().await.unwrap();
        let mut conn = store.pool().acquire().await.unwrap();
        sqlx::raw_sql(
            "INSERT INTO quota_reservations (id, user_id, cost, state, day_start, month_start, \
             created_at, expires_at) SELECT gen_random_uuid(), gen_random_uuid(), 1, 'pending', \
             now(), now(), now(), now() + interval '1 hour' FROM generate_series(1, 5000)",
        )
        .execute(&mut *conn)
        .await
        .unwrap();
        let plan: Vec<String> = sqlx::raw_sql(AssertSqlSafe(format!(
            "SET plan_cache_mode = force_generic_plan; \
             PREPARE commit_many(timestamptz, timestamptz, timestamptz, uuid[], int8[]) AS {}; \
             EXPLAIN EXECUTE commit_many(now(), now(), now(), \
                ARRAY[gen_random_uuid(), gen_random_uuid()], ARRAY[1, 2]::int8[]);",
            COMMIT_MANY.as_str()
        )))
        .fetch_all(&mut *conn)
        .await
        .unwrap()
        .iter()
        .filter_map(|row| sqlx::Row::try_get(row, 0).ok())
        .collect();
        let plan = plan.join("\n");
        assert!(plan.contains("quota_reservations_pkey"), "{plan}");
        assert!(!plan.contains("quota_reservations_open"), "{plan}");
    }
}
