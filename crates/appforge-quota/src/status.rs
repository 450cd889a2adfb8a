use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::plan::PlanId;

/// Which limit a status is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum LimitKind {
    /// Generations per day.
    Daily,
    /// Generations per month (or billing period).
    Monthly,
    /// Tokens per month (or billing period).
    Tokens,
    /// Requests in a short burst.
    Burst,
    /// Chat messages per day.
    ChatMessages,
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Daily => "daily",
            Self::Monthly => "monthly",
            Self::Tokens => "tokens",
            Self::Burst => "burst",
            Self::ChatMessages => "daily chat message",
        })
    }
}

impl LimitKind {
    /// The limit as a sentence names it: `daily generation limit`, `monthly token limit`.
    #[must_use]
    pub fn limit_name(self) -> &'static str {
        match self {
            Self::Daily => "daily generation limit",
            Self::Monthly => "monthly generation limit",
            Self::Tokens => "monthly token limit",
            Self::Burst => "burst limit",
            Self::ChatMessages => "daily chat message limit",
        }
    }
}

/// One usage window of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WindowStatus {
    /// The limit (`None`: unlimited).
    pub limit: Option<u64>,
    /// Used in this window, counting pending reservations.
    pub used: u64,
    /// What is left (`None`: unlimited).
    pub remaining: Option<u64>,
    /// When the window ends and usage starts again from zero.
    #[cfg_attr(
        feature = "json-schema",
        schemars(with = "String", extend("format" = "date-time"))
    )]
    pub resets_at: DateTime<Utc>,
    /// When the window is exhausted, how long until it resets.
    #[serde(with = "secs_ceil", rename = "retryAfterSeconds")]
    #[cfg_attr(feature = "json-schema", schemars(with = "Option<u64>"))]
    pub retry_after: Option<Duration>,
}

impl WindowStatus {
    pub(crate) fn new(
        limit: Option<u64>,
        used: u64,
        resets_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        let remaining = limit.map(|l| l.saturating_sub(used));
        let retry_after = (remaining == Some(0)).then(|| until(now, resets_at));
        Self {
            limit,
            used,
            remaining,
            resets_at,
            retry_after,
        }
    }

    /// Whether nothing is left.
    #[must_use]
    pub fn is_exhausted(&self) -> bool {
        self.remaining == Some(0)
    }
}

pub(crate) fn until(now: DateTime<Utc>, then: DateTime<Utc>) -> Duration {
    (then - now).to_std().unwrap_or(Duration::ZERO)
}

/// A user's quota: plan, each window, and (for a denial) why and when to retry.
///
/// Serializes in camelCase, with durations as whole seconds rounded up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct QuotaStatus {
    /// The user's plan.
    pub plan: PlanId,
    /// Generations today.
    pub daily: WindowStatus,
    /// Generations this month (or billing period).
    pub monthly: WindowStatus,
    /// Tokens this month (or billing period), of generations and chat messages alike.
    pub tokens: WindowStatus,
    /// Chat messages today.
    pub chat: WindowStatus,
    /// For a denial, the limit that refused it.
    pub denied_by: Option<LimitKind>,
    /// For a denial, how long until a retry can succeed.
    #[serde(with = "secs_ceil", rename = "retryAfterSeconds")]
    #[cfg_attr(feature = "json-schema", schemars(with = "Option<u64>"))]
    pub retry_after: Option<Duration>,
}

impl QuotaStatus {
    /// The window of one kind (`None` for [`LimitKind::Burst`], which has no window).
    #[must_use]
    pub fn window(&self, kind: LimitKind) -> Option<&WindowStatus> {
        match kind {
            LimitKind::Daily => Some(&self.daily),
            LimitKind::Monthly => Some(&self.monthly),
            LimitKind::Tokens => Some(&self.tokens),
            LimitKind::ChatMessages => Some(&self.chat),
            LimitKind::Burst => None,
        }
    }

    /// What a refusal tells the client: `your plan's daily generation limit is reached`,
    /// naming [`denied_by`](Self::denied_by) (the daily generation limit when unset).
    #[must_use]
    pub fn denial_message(&self) -> String {
        let limit = self.denied_by.unwrap_or(LimitKind::Daily).limit_name();
        format!("your plan's {limit} is reached")
    }

    /// The `Retry-After` header value: whole seconds, rounded up, at least 1.
    #[must_use]
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after.map(|d| ceil_secs(d).max(1))
    }
}

pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

mod secs_ceil {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::ref_option)] // serde's `with` signature
    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&super::ceil_secs(*d)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|s| s.map(Duration::from_secs))
    }
}
