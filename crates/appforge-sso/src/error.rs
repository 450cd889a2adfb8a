use uuid::Uuid;

/// The error type of this crate.
///
/// No variant carries a secret: client secrets, codes, PKCE verifiers, nonces and tokens never
/// reach a message. The texts of provider errors are the provider's own error codes and the
/// ID token checks' reasons.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The organization has no SSO configuration.
    #[error("organization {0} has no SSO configuration")]
    NotConfigured(Uuid),

    /// A configuration value or an argument is invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The secrets key is malformed (not 32 bytes of standard base64).
    #[error("invalid secrets key: {0}")]
    InvalidKey(String),

    /// A sealed secret does not open: the key is not the one it was sealed with, the org is
    /// not the one it was sealed for, or the stored value was altered.
    #[error(
        "cannot decrypt the SSO client secret of organization {org}: wrong secrets key \
         (APPFORGE_SECRETS_KEY) or altered data"
    )]
    Decrypt {
        /// The org whose secret was opened.
        org: Uuid,
    },

    /// The `state` of a callback matches no pending login: unknown, or already used.
    #[error("unknown or already used login state")]
    UnknownState,

    /// The pending login expired before the callback.
    #[error("the login started for organization {org} expired; start again")]
    ExpiredState {
        /// The org the login was for.
        org: Uuid,
    },

    /// The provider's discovery document or key set cannot be fetched or read.
    #[error("cannot discover the OpenID provider {issuer}: {reason}")]
    Discovery {
        /// The issuer URL.
        issuer: String,
        /// What went wrong.
        reason: String,
    },

    /// The code exchange at the provider's token endpoint failed.
    #[error("the code exchange failed: {0}")]
    TokenExchange(String),

    /// The ID token failed a check: signature, algorithm, issuer, audience, expiry or nonce.
    #[error("the ID token is invalid: {0}")]
    InvalidIdToken(String),

    /// The ID token carries no email.
    #[error("the identity provider sent no email")]
    MissingEmail,

    /// The provider does not vouch for the email (`email_verified` is not `true`).
    #[error("the email {0} is not verified by the identity provider")]
    EmailNotVerified(String),

    /// The email's domain is not one of the org's allowed domains.
    #[error("the email domain {domain:?} is not allowed for organization {org}")]
    DomainNotAllowed {
        /// The org.
        org: Uuid,
        /// The email's domain.
        domain: String,
    },

    /// A SCIM request is malformed (RFC 7644 `invalidFilter`, `invalidSyntax`, ...).
    #[error("invalid SCIM request: {0}")]
    Scim(String),

    /// Stored data cannot be read back.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),

    /// The database failed.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
    #[error("sso database error: {0}")]
    Database(#[from] sqlx::Error),

    /// A migration failed.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
    #[error("sso migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the login was refused for a reason of the login itself (state, token, email,
    /// domain): a host answers `401`/`403` and asks the user to start again, logging the
    /// detail. Other errors are configuration or infrastructure failures (`5xx`).
    #[must_use]
    pub fn is_login_refused(&self) -> bool {
        matches!(
            self,
            Self::UnknownState
                | Self::ExpiredState { .. }
                | Self::TokenExchange(_)
                | Self::InvalidIdToken(_)
                | Self::MissingEmail
                | Self::EmailNotVerified(_)
                | Self::DomainNotAllowed { .. }
        )
    }

    /// Whether the org has no SSO configuration (a host answers `404`).
    #[must_use]
    pub fn is_not_configured(&self) -> bool {
        matches!(self, Self::NotConfigured(_))
    }
}
