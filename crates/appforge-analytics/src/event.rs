use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One row of `analytics_events`: something a user did or that happened to them.
///
/// Times are kept to the microsecond, the precision every store holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyticsEvent {
    /// The event's id (a UUID v7 from [`AnalyticsEvent::new`]); storing it twice keeps one row.
    pub id: Uuid,
    /// The user the event is about.
    pub user_id: Uuid,
    /// What happened.
    pub event_type: EventType,
    /// Facts about the event (a JSON object), such as [`GenerationFacts`] or [`RevenueFacts`].
    pub properties: serde_json::Value,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

impl AnalyticsEvent {
    /// An event of `event_type` for `user_id` at `at`, with no properties.
    #[must_use]
    pub fn new(user_id: Uuid, event_type: EventType, at: DateTime<Utc>) -> Self {
        Self {
            id: Uuid::now_v7(),
            user_id,
            event_type,
            properties: serde_json::Value::Object(serde_json::Map::new()),
            created_at: at.trunc_subsecs(6),
        }
    }

    /// Replaces the properties.
    #[must_use]
    pub fn with_properties(mut self, properties: serde_json::Value) -> Self {
        self.properties = properties;
        self
    }

    /// A generation event (`generation_requested`, `_completed`, `_failed` or `_cancelled`)
    /// carrying `facts` as its properties.
    #[must_use]
    pub fn generation(
        user_id: Uuid,
        event_type: EventType,
        facts: &GenerationFacts,
        at: DateTime<Utc>,
    ) -> Self {
        Self::new(user_id, event_type, at).with_properties(facts.to_properties())
    }

    /// A `revenue_recorded` event for a paid invoice (or a negative amount for a refund).
    #[must_use]
    pub fn revenue(user_id: Uuid, facts: &RevenueFacts, at: DateTime<Utc>) -> Self {
        Self::new(user_id, EventType::RevenueRecorded, at)
            .with_properties(serde_json::to_value(facts).unwrap_or(serde_json::Value::Null))
    }

    /// The generation facts in the properties; fields that are missing or of the wrong type
    /// read as `None`.
    #[must_use]
    pub fn generation_facts(&self) -> GenerationFacts {
        GenerationFacts::from_properties(&self.properties)
    }

    /// The revenue facts in the properties, when they are complete.
    #[must_use]
    pub fn revenue_facts(&self) -> Option<RevenueFacts> {
        serde_json::from_value(self.properties.clone()).ok()
    }
}

/// The kinds of events the assembly records; anything else is kept as [`EventType::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EventType {
    /// The first request of a user in a UTC day.
    SignInSeen,
    /// A generation job was accepted.
    GenerationRequested,
    /// A generation job finished with a result.
    GenerationCompleted,
    /// A generation job failed for good.
    GenerationFailed,
    /// A generation job was cancelled.
    GenerationCancelled,
    /// A request was refused by the quota.
    QuotaDenied,
    /// The user clicked an upgrade button.
    UpgradeClicked,
    /// A checkout session completed.
    CheckoutCompleted,
    /// A subscription changed plan or state.
    SubscriptionChanged,
    /// An invoice was paid (or refunded), with [`RevenueFacts`].
    RevenueRecorded,
    /// Any other event type, kept as written.
    Other(String),
}

impl EventType {
    /// The string stored in `event_type`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::SignInSeen => "sign_in_seen",
            Self::GenerationRequested => "generation_requested",
            Self::GenerationCompleted => "generation_completed",
            Self::GenerationFailed => "generation_failed",
            Self::GenerationCancelled => "generation_cancelled",
            Self::QuotaDenied => "quota_denied",
            Self::UpgradeClicked => "upgrade_clicked",
            Self::CheckoutCompleted => "checkout_completed",
            Self::SubscriptionChanged => "subscription_changed",
            Self::RevenueRecorded => "revenue_recorded",
            Self::Other(other) => other,
        }
    }

    /// The type stored as `s`; unknown strings become [`EventType::Other`].
    #[must_use]
    pub fn parse(s: &str) -> Self {
        match s {
            "sign_in_seen" => Self::SignInSeen,
            "generation_requested" => Self::GenerationRequested,
            "generation_completed" => Self::GenerationCompleted,
            "generation_failed" => Self::GenerationFailed,
            "generation_cancelled" => Self::GenerationCancelled,
            "quota_denied" => Self::QuotaDenied,
            "upgrade_clicked" => Self::UpgradeClicked,
            "checkout_completed" => Self::CheckoutCompleted,
            "subscription_changed" => Self::SubscriptionChanged,
            "revenue_recorded" => Self::RevenueRecorded,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for EventType {
    fn from(s: &str) -> Self {
        Self::parse(s)
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(Self::parse(&s))
    }
}

/// What the metrics read from a generation event's properties. Every field is optional: the
/// host sends what it knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GenerationFacts {
    /// The job's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<Uuid>,
    /// The job kind (`full_app`, `modify`, `plan_phases`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The user's plan id (`free`, `pro`, `team`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// How long the generation ran, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The model id (`claude-sonnet-4-5-20250929`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Input tokens billed at the base rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Input tokens written to the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// The part of `cache_creation_input_tokens` written with the one-hour time to live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_1h_input_tokens: Option<u64>,
    /// Input tokens read from the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// A short category for a failure (`timeout`, `overloaded`, `parse`, ...), never a message
    /// that could hold user text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_category: Option<String>,
}

impl GenerationFacts {
    /// Facts for a job of `kind` for a user on `plan`.
    #[must_use]
    pub fn new(kind: impl Into<String>, plan: impl Into<String>) -> Self {
        Self {
            kind: Some(kind.into()),
            plan: Some(plan.into()),
            ..Self::default()
        }
    }

    /// Sets the job id.
    #[must_use]
    pub fn job_id(mut self, id: Uuid) -> Self {
        self.job_id = Some(id);
        self
    }

    /// Sets the duration in milliseconds.
    #[must_use]
    pub fn duration_ms(mut self, ms: u64) -> Self {
        self.duration_ms = Some(ms);
        self
    }

    /// Sets the model and its token usage (input, output, cache write, cache read).
    #[must_use]
    pub fn usage(
        mut self,
        model: impl Into<String>,
        input: u64,
        output: u64,
        cache_write: u64,
        cache_read: u64,
    ) -> Self {
        self.model = Some(model.into());
        self.input_tokens = Some(input);
        self.output_tokens = Some(output);
        self.cache_creation_input_tokens = Some(cache_write);
        self.cache_read_input_tokens = Some(cache_read);
        self
    }

    /// Sets the part of the cache writes made with the one-hour time to live.
    #[must_use]
    pub fn cache_write_1h(mut self, tokens: u64) -> Self {
        self.cache_creation_1h_input_tokens = Some(tokens);
        self
    }

    /// The token counts these facts report (zero where missing).
    #[must_use]
    pub fn tokens(&self) -> crate::TokenCounts {
        crate::TokenCounts {
            input: self.input_tokens.unwrap_or(0),
            output: self.output_tokens.unwrap_or(0),
            cache_write: self.cache_creation_input_tokens.unwrap_or(0),
            cache_write_1h: self.cache_creation_1h_input_tokens.unwrap_or(0),
            cache_read: self.cache_read_input_tokens.unwrap_or(0),
        }
    }

    /// Sets the error category.
    #[must_use]
    pub fn error_category(mut self, category: impl Into<String>) -> Self {
        self.error_category = Some(category.into());
        self
    }

    /// These facts as a JSON object.
    #[must_use]
    pub fn to_properties(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Reads facts leniently: a field that is missing or of the wrong type reads as `None`.
    #[must_use]
    pub fn from_properties(properties: &serde_json::Value) -> Self {
        let text = |key: &str| properties.get(key)?.as_str().map(str::to_owned);
        let number = |key: &str| properties.get(key)?.as_u64();
        Self {
            job_id: text("job_id").and_then(|s| s.parse().ok()),
            kind: text("kind"),
            plan: text("plan"),
            duration_ms: number("duration_ms"),
            model: text("model"),
            input_tokens: number("input_tokens"),
            output_tokens: number("output_tokens"),
            cache_creation_input_tokens: number("cache_creation_input_tokens"),
            cache_creation_1h_input_tokens: number("cache_creation_1h_input_tokens"),
            cache_read_input_tokens: number("cache_read_input_tokens"),
            error_category: text("error_category"),
        }
    }
}

/// The properties of a `revenue_recorded` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevenueFacts {
    /// The amount in the currency's minor unit; negative for a refund.
    pub amount_cents: i64,
    /// The ISO currency code, lowercase as Stripe writes it (`usd`).
    pub currency: String,
    /// The invoice id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_round_trip_through_their_string_form() {
        for ty in [
            EventType::SignInSeen,
            EventType::GenerationRequested,
            EventType::GenerationCompleted,
            EventType::GenerationFailed,
            EventType::GenerationCancelled,
            EventType::QuotaDenied,
            EventType::UpgradeClicked,
            EventType::CheckoutCompleted,
            EventType::SubscriptionChanged,
            EventType::RevenueRecorded,
            EventType::Other("app_published".into()),
        ] {
            assert_eq!(EventType::parse(ty.as_str()), ty);
            let json = serde_json::to_string(&ty).unwrap();
            assert_eq!(serde_json::from_str::<EventType>(&json).unwrap(), ty);
        }
        assert_eq!(
            EventType::parse("made_up"),
            EventType::Other("made_up".into())
        );
    }

    #[test]
    fn generation_facts_read_leniently() {
        let facts = GenerationFacts::new("full_app", "pro")
            .duration_ms(1200)
            .usage("claude-sonnet-4-5", 10, 20, 30, 40);
        assert_eq!(
            GenerationFacts::from_properties(&facts.to_properties()),
            facts
        );
        let odd = serde_json::json!({"kind": 3, "plan": "free", "duration_ms": "slow"});
        let read = GenerationFacts::from_properties(&odd);
        assert_eq!(read.kind, None);
        assert_eq!(read.plan.as_deref(), Some("free"));
        assert_eq!(read.duration_ms, None);
    }

    #[test]
    fn times_are_kept_to_the_microsecond() {
        let at: DateTime<Utc> = "2026-03-14T12:00:00.123456789Z".parse().unwrap();
        let event = AnalyticsEvent::new(Uuid::nil(), EventType::SignInSeen, at);
        assert_eq!(event.created_at.timestamp_subsec_nanos(), 123_456_000);
    }
}
