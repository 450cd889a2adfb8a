use std::borrow::Borrow;
use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The id of a plan: `"free"`, `"pro"`, `"team"` or one of a deployment's own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct PlanId(String);

impl PlanId {
    /// The id of the default Free plan.
    pub const FREE: &'static str = "free";
    /// The id of the default Pro plan.
    pub const PRO: &'static str = "pro";
    /// The id of the default Team plan.
    pub const TEAM: &'static str = "team";

    /// A plan id. Any non-empty text works; see [`PlanCatalogue::new`](crate::PlanCatalogue::new) for validation.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// `"free"`.
    #[must_use]
    pub fn free() -> Self {
        Self::new(Self::FREE)
    }

    /// `"pro"`.
    #[must_use]
    pub fn pro() -> Self {
        Self::new(Self::PRO)
    }

    /// `"team"`.
    #[must_use]
    pub fn team() -> Self {
        Self::new(Self::TEAM)
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for PlanId {
    fn from(id: &str) -> Self {
        Self::new(id)
    }
}

impl From<String> for PlanId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl Borrow<str> for PlanId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// A burst limit: at most `requests` per `period` on average, with up to `burst` at once.
///
/// Enforced per user with `governor` (GCRA) in the process that calls
/// [`Quota::reserve`](crate::Quota::reserve).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Burst {
    /// Requests allowed per `period`, on average.
    pub requests: NonZeroU32,
    /// The period `requests` is counted over.
    #[serde(with = "period_ms", rename = "period_ms")]
    pub period: Duration,
    /// Requests allowed back to back before the rate applies.
    pub burst: NonZeroU32,
}

impl Burst {
    /// `requests` per `period` with bursts of `burst`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`](crate::Error::Config) when a number is zero.
    pub fn new(requests: u32, period: Duration, burst: u32) -> crate::Result<Self> {
        let requests = NonZeroU32::new(requests)
            .ok_or_else(|| crate::Error::Config("burst requests must be positive".into()))?;
        let burst = NonZeroU32::new(burst)
            .ok_or_else(|| crate::Error::Config("burst size must be positive".into()))?;
        if period.is_zero() || period / requests.get() == Duration::ZERO {
            return Err(crate::Error::Config(
                "burst period must be positive and longer than a nanosecond per request".into(),
            ));
        }
        Ok(Self {
            requests,
            period,
            burst,
        })
    }

    /// The time one request takes to replenish.
    #[must_use]
    pub fn replenish_interval(&self) -> Duration {
        self.period / self.requests.get()
    }
}

mod period_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// A plan: its limits, queue priority, features and prices.
///
/// Every limit is optional: `None` means unlimited. Build one with [`Plan::new`] and set the
/// fields, or deserialize it from configuration (JSON or TOML, snake_case fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Plan {
    /// The plan's id.
    pub id: PlanId,
    /// The name shown to users.
    pub name: String,
    /// A description shown to users.
    #[serde(default)]
    pub description: Option<String>,
    /// Generations per day (see [`Windows`](crate::Windows)).
    #[serde(default)]
    pub daily_generations: Option<u32>,
    /// Generations per month (calendar month or billing period).
    #[serde(default)]
    pub monthly_generations: Option<u32>,
    /// Model tokens per month: a reservation (of any resource) is refused once the month's
    /// recorded tokens reach it.
    #[serde(default)]
    pub monthly_tokens: Option<u64>,
    /// Chat messages per day (see [`Windows`](crate::Windows)), counted apart from
    /// generations.
    #[serde(default)]
    pub daily_chat_messages: Option<u32>,
    /// Bytes of uploads (reference images) an owner may keep, pooled per organization for a
    /// team; uploads are refused past it.
    #[serde(default)]
    pub storage_bytes: Option<u64>,
    /// Generation jobs of one user that may run at the same time (fair share of the workers).
    #[serde(default)]
    pub max_running_jobs: Option<u32>,
    /// What one request may send to the model and ask back (context sizes, output tokens).
    #[serde(default)]
    pub request_limits: RequestLimits,
    /// Burst limit, per user.
    #[serde(default)]
    pub burst: Option<Burst>,
    /// Queue priority: larger runs first (Free 0, Pro 10, Team 20).
    #[serde(default)]
    pub priority: i16,
    /// Feature flags shown on the pricing page and checked by the host.
    #[serde(default)]
    pub features: Vec<String>,
    /// Monthly price in cents (`None`: not sold monthly).
    #[serde(default)]
    pub price_monthly: Option<u32>,
    /// Yearly price in cents (`None`: not sold yearly).
    #[serde(default)]
    pub price_yearly: Option<u32>,
    /// The Stripe price id of the monthly subscription.
    #[serde(default)]
    pub stripe_price_id_monthly: Option<String>,
    /// The Stripe price id of the yearly subscription.
    #[serde(default)]
    pub stripe_price_id_yearly: Option<String>,
    /// Whether the plan can be chosen by new subscribers. Users already on an inactive plan
    /// keep its limits.
    #[serde(default = "yes")]
    pub is_active: bool,
}

fn yes() -> bool {
    true
}

impl Plan {
    /// An active plan with no limits, no burst limit, priority 0, no features and no prices;
    /// its request limits are [`RequestLimits::default`].
    pub fn new(id: impl Into<PlanId>, name: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            description: None,
            daily_generations: None,
            monthly_generations: None,
            monthly_tokens: None,
            daily_chat_messages: None,
            storage_bytes: None,
            max_running_jobs: None,
            request_limits: RequestLimits::default(),
            burst: None,
            priority: 0,
            features: Vec::new(),
            price_monthly: None,
            price_yearly: None,
            stripe_price_id_monthly: None,
            stripe_price_id_yearly: None,
            is_active: true,
        }
    }

    /// Free: 5 generations and 20 chat messages a day, 1,000,000 tokens a month, 50 MB of
    /// uploads, one job running at a time, priority 0, bursts of 10 then 10 a minute, [`RequestLimits::free`].
    #[must_use]
    pub fn free() -> Self {
        let mut plan = Self::new(PlanId::free(), "Free");
        plan.description = Some("5 generations a day, basic features".into());
        plan.daily_generations = Some(5);
        plan.daily_chat_messages = Some(20);
        plan.storage_bytes = Some(50 * MB);
        plan.monthly_tokens = Some(1_000_000);
        plan.max_running_jobs = Some(1);
        plan.request_limits = RequestLimits::free();
        plan.burst = Some(burst(10, 10));
        plan.priority = 0;
        plan.features = vec!["basic".into()];
        plan.price_monthly = Some(0);
        plan
    }

    /// Pro: 50 generations and 500 chat messages a day, 20,000,000 tokens a month, 2 GB of
    /// uploads, two jobs running at a time, $10 a month, priority 10, bursts of 10 then 20 a minute.
    #[must_use]
    pub fn pro() -> Self {
        let mut plan = Self::new(PlanId::pro(), "Pro");
        plan.description = Some("50 generations a day, all features".into());
        plan.daily_generations = Some(50);
        plan.daily_chat_messages = Some(500);
        plan.storage_bytes = Some(2 * GB);
        plan.monthly_tokens = Some(20_000_000);
        plan.max_running_jobs = Some(2);
        plan.burst = Some(burst(20, 10));
        plan.priority = 10;
        plan.features = vec!["basic".into(), "all".into()];
        plan.price_monthly = Some(1_000);
        plan
    }

    /// Team: unlimited generations, chat messages and tokens, 20 GB of uploads pooled per
    /// organization, three jobs running at a time (so
    /// that one account does not take every worker), $30 a month, priority 20, bursts of 20
    /// then 60 a minute, [`RequestLimits::team`].
    #[must_use]
    pub fn team() -> Self {
        let mut plan = Self::new(PlanId::team(), "Team");
        plan.description = Some("Unlimited generations, priority queue".into());
        plan.storage_bytes = Some(20 * GB);
        plan.max_running_jobs = Some(3);
        plan.request_limits = RequestLimits::team();
        plan.burst = Some(burst(60, 20));
        plan.priority = 20;
        plan.features = vec!["basic".into(), "all".into(), "priority".into()];
        plan.price_monthly = Some(3_000);
        plan
    }

    /// Whether `feature` is in the plan's features.
    #[must_use]
    pub fn has_feature(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }

    pub(crate) fn validate(&self) -> crate::Result<()> {
        let bad = |what: &str| Err(crate::Error::Config(format!("plan {}: {what}", self.id)));
        if self.id.as_str().is_empty() || self.id.as_str().len() > 64 {
            return bad("id must be 1 to 64 characters");
        }
        if self.name.is_empty() {
            return bad("name must not be empty");
        }
        if self
            .monthly_tokens
            .is_some_and(|t| i64::try_from(t).is_err())
        {
            return bad("monthly token limit is too large");
        }
        if self
            .storage_bytes
            .is_some_and(|b| i64::try_from(b).is_err())
        {
            return bad("storage allowance is too large");
        }
        if self.max_running_jobs == Some(0) {
            return bad("max_running_jobs must be positive (omit it for no limit)");
        }
        self.request_limits
            .validate()
            .map_err(|what| crate::Error::Config(format!("plan {}: {what}", self.id)))
    }
}

/// What one request may send to the model and ask back, and how often a user's requests may
/// come. Requests beyond a size limit are refused before anything is reserved (`400` naming
/// the limit), so that the size of a request, which is what a model call costs, is bounded by
/// the plan; the rate (`requests_per_minute`, `request_burst`) applies to every authenticated
/// call of the user (see [`RequestRates::from_catalogue`](crate::RequestRates::from_catalogue)).
///
/// Deserialized field by field: a missing field takes its [`RequestLimits::default`] value.
///
/// ```
/// use appforge_quota::{Plan, RequestLimits};
/// assert_eq!(Plan::pro().request_limits, RequestLimits::default());
/// assert!(Plan::free().request_limits.output_tokens < RequestLimits::default().output_tokens);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RequestLimits {
    /// Messages of conversation history one request may carry.
    pub history_messages: u32,
    /// Bytes of conversation history (the messages' text) one request may carry.
    pub history_bytes: u64,
    /// Files of the current app (`currentAppState.files`) one request may carry.
    pub app_files: u32,
    /// Bytes of the current app (its files' paths and contents) one request may carry.
    pub app_bytes: u64,
    /// Bytes of the phase context (the phase plan's text) one request may carry.
    pub phase_context_bytes: u64,
    /// Output tokens one model call may produce (its `max_tokens`).
    pub output_tokens: u32,
    /// Reference images (uploads) one request may attach.
    pub attachments: u32,
    /// Authenticated requests a user may make a minute, on average, per process.
    pub requests_per_minute: u32,
    /// Requests a user may make back to back before `requests_per_minute` applies.
    pub request_burst: u32,
}

impl Default for RequestLimits {
    /// The safe defaults (Pro's): 50 history messages of 256 KiB in all, 500 files of 1 MiB
    /// in all, 64 KiB of phase context, 16,000 output tokens a call, 4 images attached, 300
    /// requests a minute in bursts of 120.
    fn default() -> Self {
        Self {
            history_messages: 50,
            history_bytes: 256 * 1024,
            app_files: 500,
            app_bytes: 1024 * 1024,
            phase_context_bytes: 64 * 1024,
            output_tokens: 16_000,
            attachments: 4,
            requests_per_minute: 300,
            request_burst: 120,
        }
    }
}

impl RequestLimits {
    /// Free's: 20 history messages of 64 KiB in all, 200 files of 512 KiB in all, 16 KiB of
    /// phase context, 8,000 output tokens a call, 120 requests a minute in bursts of 60.
    #[must_use]
    pub fn free() -> Self {
        Self {
            history_messages: 20,
            history_bytes: 64 * 1024,
            app_files: 200,
            app_bytes: 512 * 1024,
            phase_context_bytes: 16 * 1024,
            output_tokens: 8_000,
            attachments: 4,
            requests_per_minute: 120,
            request_burst: 60,
        }
    }

    /// Team's: 100 history messages of 512 KiB in all, 1,000 files of 2 MiB in all, 128 KiB
    /// of phase context, 16,000 output tokens a call, 600 requests a minute in bursts of 240.
    #[must_use]
    pub fn team() -> Self {
        Self {
            history_messages: 100,
            history_bytes: 512 * 1024,
            app_files: 1_000,
            app_bytes: 2 * 1024 * 1024,
            phase_context_bytes: 128 * 1024,
            output_tokens: 16_000,
            attachments: 4,
            requests_per_minute: 600,
            request_burst: 240,
        }
    }

    fn validate(&self) -> Result<(), &'static str> {
        if self.output_tokens == 0 {
            return Err("request_limits.output_tokens must be positive");
        }
        if self.requests_per_minute == 0 || self.request_burst == 0 {
            return Err("request_limits.requests_per_minute and request_burst must be positive");
        }
        for bytes in [self.history_bytes, self.app_bytes, self.phase_context_bytes] {
            if i64::try_from(bytes).is_err() {
                return Err("a request limit in bytes is too large");
            }
        }
        Ok(())
    }
}

const MB: u64 = 1024 * 1024;
const GB: u64 = 1024 * MB;

fn burst(per_minute: u32, size: u32) -> Burst {
    Burst::new(per_minute, Duration::from_secs(60), size).expect("valid built-in burst")
}
