use uuid::Uuid;

use crate::plans::PlanSyncError;
#[cfg(feature = "webhook")]
use crate::signature::SignatureError;

/// The error type of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting or an argument is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A webhook delivery failed verification.
    #[cfg(feature = "webhook")]
    #[error("webhook rejected: {0}")]
    Signature(#[from] SignatureError),
    /// A verified payload is not an event async-stripe can read.
    #[error("unparseable stripe event: {0}")]
    Parse(String),
    /// A subscription's price maps to no plan in the catalogue.
    #[error("stripe price {0} maps to no plan in the catalogue")]
    UnknownPrice(String),
    /// A plan has no Stripe price for the requested interval.
    #[error("plan {plan} has no {interval} stripe price")]
    NoPrice {
        /// The plan id.
        plan: String,
        /// `monthly` or `yearly`.
        interval: &'static str,
    },
    /// The user has no Stripe customer yet.
    #[error("user {0} has no stripe customer")]
    NoCustomer(Uuid),
    /// The user has no live subscription.
    #[error("user {0} has no live subscription")]
    NoSubscription(Uuid),
    /// A call to Stripe failed.
    #[error("stripe {operation} failed{}: {message}", status.map(|s| format!(" with status {s}")).unwrap_or_default())]
    Stripe {
        /// What was being done (`retrieve subscription`, ...).
        operation: &'static str,
        /// The HTTP status, when Stripe answered.
        status: Option<u16>,
        /// What went wrong.
        message: String,
    },
    /// The plan catalogue or the user's plan (the [`PlanSync`](crate::PlanSync), usually the
    /// quota) could not be read or written.
    #[error("plan sync: {0}")]
    PlanSync(#[from] PlanSyncError),
    /// The store failed.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[error("billing store: {0}")]
    Store(#[from] sqlx::Error),
    /// A migration failed.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[error("billing migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A store of the host's own failed (see [`BillingStore`](crate::BillingStore)).
    #[error("billing store: {message}")]
    Backend {
        /// What went wrong.
        message: String,
        /// Whether trying again later may succeed.
        retryable: bool,
    },
    /// A stored value could not be read back.
    #[error("billing store holds an invalid {what}: {value}")]
    Corrupt {
        /// The column or field.
        what: &'static str,
        /// The value found.
        value: String,
    },
}

impl Error {
    /// Whether trying again later may succeed (Stripe or the database unreachable or
    /// overloaded); configuration and input errors are not retryable.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Stripe { status, .. } => status.is_none_or(|s| s == 409 || s == 429 || s >= 500),
            // The workspace's one check: I/O, pool timeouts, serialization failures and
            // deadlocks, SQLite's BUSY and LOCKED.
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Self::Store(e) => appforge_core::db::is_transient(e),
            Self::Backend { retryable, .. } => *retryable,
            Self::PlanSync(_) | Self::UnknownPrice(_) => true,
            _ => false,
        }
    }

    /// Whether Stripe could not be reached (network error, timeout, 429 or 5xx).
    #[must_use]
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Stripe { status, .. } if status.is_none_or(|s| s == 429 || s >= 500))
    }

    #[cfg(feature = "stripe-api")]
    pub(crate) fn stripe(operation: &'static str, e: stripe::StripeError) -> Self {
        let (status, message) = match e {
            stripe::StripeError::Stripe(api, status) => (
                Some(status),
                api.message.unwrap_or_else(|| "no message".to_owned()),
            ),
            other => (None, other.to_string()),
        };
        Self::Stripe {
            operation,
            status,
            message,
        }
    }
}

/// A `Result` whose error defaults to this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
