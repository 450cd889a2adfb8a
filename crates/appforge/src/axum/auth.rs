//! The host's authentication, plugged into the router: a small trait, and a Supabase-style
//! JWT implementation.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use appforge_core::{ExposeSecret, Owner, SecretString};
use http::{HeaderMap, StatusCode, header};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use uuid::Uuid;

/// What a request asks to do in its space, for [`Authenticate::space`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Read a job, its events, or the quota.
    Read,
    /// Start a generation (a full app or a phase plan).
    Generate,
    /// Change an app.
    Modify,
    /// Cancel a job.
    Cancel,
    /// Chat about an app.
    Chat,
}

/// Who a request acts for, as the host's authentication decides. Implemented by the host (its
/// sessions, its API keys); [`SupabaseJwt`] checks Supabase Auth tokens.
pub trait Authenticate: Send + Sync + 'static {
    /// The user the request acts for, or the rejection to answer.
    fn authenticate(
        &self,
        headers: &HeaderMap,
    ) -> impl Future<Output = Result<Uuid, AuthRejection>> + Send;

    /// The space `user`'s request acts in, once the user may do `action` there. By default
    /// the user's personal space, where they may do anything.
    ///
    /// A host with organizations reads the org from the request (a path prefix it mounts the
    /// router under, a header) and checks the user's role there (`appforge-orgs`'
    /// `Orgs::authorize`): it answers [`Owner::Org`], or rejects with `404` for an org the
    /// user does not belong to and `403` for a role without the permission. The router then
    /// reads and writes only that space: its jobs, its pooled quota, its apps. An org with a
    /// daily cap per member (`appforge-orgs`' `Orgs::admit` answers it with the role, in the
    /// same lookup) passes it with [`Space::member_daily_cap`].
    fn space(
        &self,
        request: &http::request::Parts,
        user: Uuid,
        action: Action,
    ) -> impl Future<Output = Result<Space, AuthRejection>> + Send {
        let _ = (request, action);
        std::future::ready(Ok(Space::from(Owner::User(user))))
    }

    /// Who acts and in which space, in one pass: by default [`authenticate`](Self::authenticate)
    /// then [`space`](Self::space). A host whose own check answers both at once (or finds
    /// what an outer layer decided in the request's extensions) overrides it; the router calls
    /// only this.
    fn act(
        &self,
        request: &http::request::Parts,
        action: Action,
    ) -> impl Future<Output = Result<(Uuid, Space), AuthRejection>> + Send {
        async move {
            let user = self.authenticate(&request.headers).await?;
            let space = self.space(request, user, action).await?;
            Ok((user, space))
        }
    }
}

/// The space a request acts in ([`Authenticate::space`]): whose jobs, quota and apps it
/// reads and writes, and, in an org, the daily cap on the member's generations there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Space {
    /// The user's personal space or the org's.
    pub owner: Owner,
    /// In an org, the most generations the member may start there per day; `None`: no
    /// cap (only the org's pooled quota). Ignored in a personal space.
    pub member_daily_cap: Option<u32>,
}

impl Space {
    /// `owner`'s space, without a cap per member.
    #[must_use]
    pub const fn new(owner: Owner) -> Self {
        Self {
            owner,
            member_daily_cap: None,
        }
    }

    /// With the org's daily cap per member.
    #[must_use]
    pub const fn member_daily_cap(mut self, cap: Option<u32>) -> Self {
        self.member_daily_cap = cap;
        self
    }
}

impl From<Owner> for Space {
    fn from(owner: Owner) -> Self {
        Self::new(owner)
    }
}

/// A request the authentication refused: `401` (no or bad credentials) or `403`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRejection {
    /// The status to answer.
    pub status: StatusCode,
    /// Why, for the client (never the credential itself).
    pub message: String,
    /// The error code of the answer; by default the status's (`unauthorized`, `forbidden`,
    /// `not_found`, `internal`).
    pub code: Option<&'static str>,
    /// The answer's `details` (boxed: a `Value` is large with some of serde_json's features).
    pub details: Option<Box<serde_json::Value>>,
    /// Seconds for a `Retry-After` header (a rate limit).
    pub retry_after: Option<u64>,
}

impl AuthRejection {
    /// A rejection with `status` and `message`.
    #[must_use]
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            code: None,
            details: None,
            retry_after: None,
        }
    }

    /// `401 Unauthorized`.
    #[must_use]
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// `403 Forbidden`.
    #[must_use]
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// `500 Internal Server Error`: the check could not be made (a store that failed).
    #[must_use]
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// `404 Not Found`: for a space the user does not belong to, so that outsiders cannot
    /// tell it exists.
    #[must_use]
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// With the host's error code (`sso_required`, `rate_limited`, ...).
    #[must_use]
    pub fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// With `details`.
    #[must_use]
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    /// With a `Retry-After` of `seconds`.
    #[must_use]
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

/// HS256 JWTs with the claims Supabase Auth issues: `sub` (the user id), `exp`,
/// `aud = "authenticated"`, optional `nbf` and `iss`; anonymous sign-ins (`is_anonymous`)
/// are refused with `403`. 30 s of leeway on `exp` and `nbf`. The secret never reaches `Debug`.
#[derive(Clone)]
pub struct SupabaseJwt {
    decoding: Arc<DecodingKey>,
    validation: Arc<Validation>,
}

impl fmt::Debug for SupabaseJwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SupabaseJwt([REDACTED])")
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: Uuid,
    #[serde(default)]
    is_anonymous: bool,
}

impl SupabaseJwt {
    /// Verifies tokens signed with the project's JWT secret, from any issuer.
    #[must_use]
    pub fn new(secret: &SecretString) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&["authenticated"]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        Self {
            decoding: Arc::new(DecodingKey::from_secret(secret.expose_secret().as_bytes())),
            validation: Arc::new(validation),
        }
    }

    /// Requires `iss = issuer` (Supabase: `https://<project>.supabase.co/auth/v1`).
    #[must_use]
    pub fn issuer(mut self, issuer: &str) -> Self {
        let validation = Arc::make_mut(&mut self.validation);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "sub", "aud", "iss"]);
        self
    }

    /// The user id of a valid token.
    ///
    /// # Errors
    ///
    /// `401` for a malformed, forged, expired, not yet valid, wrong-audience or wrong-issuer
    /// token; `403` for an anonymous sign-in.
    pub fn verify(&self, token: &str) -> Result<Uuid, AuthRejection> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
                tracing::debug!(error = %e, "rejected bearer token");
                AuthRejection::unauthorized("invalid or expired token")
            })?
            .claims;
        if claims.is_anonymous {
            return Err(AuthRejection::forbidden(
                "anonymous users cannot use this API; sign in",
            ));
        }
        Ok(claims.sub)
    }
}

impl Authenticate for SupabaseJwt {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Uuid, AuthRejection> {
        let token = bearer(headers)?;
        self.verify(token)
    }
}

/// The token of an `Authorization: Bearer` header.
///
/// # Errors
///
/// `401` when the header is missing or not a bearer token.
pub fn bearer(headers: &HeaderMap) -> Result<&str, AuthRejection> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| AuthRejection::unauthorized("missing Authorization: Bearer token"))?;
    value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AuthRejection::unauthorized("Authorization must be `Bearer <token>`"))
}
