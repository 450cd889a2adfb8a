//! A login between the redirect to the provider and its callback.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// How long a started login waits for its callback.
pub const PENDING_LOGIN_TTL: Duration = Duration::from_secs(10 * 60);

/// What [`Sso::start`](crate::Sso::start) keeps server-side until the callback: the `state`
/// it is found by, the `nonce` the ID token must carry, the PKCE verifier the code exchange
/// proves possession with. Taken once ([`PendingLogins::take_pending`](crate::PendingLogins::take_pending)).
/// Its `Debug` redacts the nonce and the verifier.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingLogin {
    /// The `state` parameter (32 random bytes, base64url).
    pub state: String,
    /// The `nonce` parameter (32 random bytes, base64url).
    pub nonce: String,
    /// The PKCE code verifier (RFC 7636, S256).
    pub pkce_verifier: String,
    /// The org signing in.
    pub org: Uuid,
    /// The redirect URI sent to the provider, sent again with the code.
    pub redirect_uri: String,
    /// When the login started.
    pub created_at: DateTime<Utc>,
    /// When the login stops being accepted.
    pub expires_at: DateTime<Utc>,
}

impl PendingLogin {
    /// Whether the login is expired at `now`.
    #[must_use]
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }
}

impl fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingLogin")
            .field("state", &self.state)
            .field("nonce", &"[redacted]")
            .field("pkce_verifier", &"[redacted]")
            .field("org", &self.org)
            .field("redirect_uri", &self.redirect_uri)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}
