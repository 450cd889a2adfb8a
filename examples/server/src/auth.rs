//! Bearer tokens: HS256 JWTs with the claims Supabase Auth issues (`sub`, `exp`,
//! `aud = "authenticated"`, optional `email`, `nbf`, `iss` and `is_anonymous`).
//!
//! A token is refused before its `nbf`, after its `exp` (30 s of leeway each), for another
//! audience, and, when `APPFORGE_JWT_ISSUER` is set, without that `iss`. A Supabase anonymous
//! user (`is_anonymous: true`) is refused with 403 unless `APPFORGE_ANONYMOUS_PLAN` names the
//! plan such users are put on: an anonymous sign-up never gets a fresh Free quota.

use std::fmt;
use std::sync::Arc;

use appforge_core::{ExposeSecret, SecretString};
use appforge_quota::{PlanId, Quota};
use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::analytics::Analytics;
use crate::error::ApiError;
use crate::state::AppState;

/// The audience Supabase Auth puts in user tokens.
const AUDIENCE: &str = "authenticated";

/// The shortest HS256 secret accepted: 32 bytes, the hash's own size (RFC 7518, 3.2).
pub const MIN_SECRET_BYTES: usize = 32;

/// The claims of a user token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// The audience, `authenticated`.
    pub aud: String,
    /// The user's email, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Not before, seconds since the epoch, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// The issuer, when present (Supabase: `https://<project>.supabase.co/auth/v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// A Supabase anonymous sign-in (`is_anonymous: true`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_anonymous: bool,
    /// The org whose single sign-on issued the token (`/auth/sso/callback`); an org
    /// enforcing its domains accepts its members' tokens only with its own id here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sso_org: Option<Uuid>,
}

/// Signs and verifies user tokens. Cheap to clone; the secret never reaches `Debug`.
#[derive(Clone)]
pub struct JwtKeys {
    inner: Arc<Keys>,
}

#[derive(Clone)]
struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: Option<String>,
    anonymous_plan: Option<PlanId>,
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtKeys([REDACTED])")
    }
}

impl JwtKeys {
    /// Keys for the HS256 `secret`, accepting any issuer and refusing anonymous users. The
    /// secret's length is checked by [`Config`](crate::Config) (at least
    /// [`MIN_SECRET_BYTES`]), not here.
    #[must_use]
    pub fn new(secret: &SecretString) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        Self {
            inner: Arc::new(Keys {
                encoding: EncodingKey::from_secret(bytes),
                decoding: DecodingKey::from_secret(bytes),
                validation,
                issuer: None,
                anonymous_plan: None,
            }),
        }
    }

    /// Requires tokens to carry `iss = issuer` (`APPFORGE_JWT_ISSUER`); issued tokens carry it.
    /// `None` accepts any issuer.
    #[must_use]
    pub fn issuer(mut self, issuer: Option<String>) -> Self {
        let keys = Arc::make_mut(&mut self.inner);
        match &issuer {
            Some(iss) => {
                keys.validation.set_issuer(&[iss]);
                keys.validation
                    .set_required_spec_claims(&["exp", "sub", "aud", "iss"]);
            }
            None => {
                keys.validation.iss = None;
                keys.validation
                    .set_required_spec_claims(&["exp", "sub", "aud"]);
            }
        }
        keys.issuer = issuer;
        self
    }

    /// The plan anonymous users are put on (`APPFORGE_ANONYMOUS_PLAN`); `None` (the default)
    /// refuses them with 403.
    #[must_use]
    pub fn anonymous_plan(mut self, plan: Option<PlanId>) -> Self {
        Arc::make_mut(&mut self.inner).anonymous_plan = plan;
        self
    }

    /// Keys for a random secret, for a demo run without `APPFORGE_JWT_SECRET`.
    #[must_use]
    pub fn random() -> Self {
        let bytes: [u8; 32] = rand::random();
        let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Self::new(&SecretString::from(secret))
    }

    /// A token for `user`, valid for `ttl` from now.
    ///
    /// # Panics
    ///
    /// Panics only if HS256 signing fails, which it does not for a valid key.
    #[must_use]
    pub fn issue(&self, user: Uuid, email: Option<&str>, ttl: std::time::Duration) -> String {
        self.issue_with(user, email, None, ttl)
    }

    /// A token for `user` signed in through `org`'s single sign-on (`sso_org`), valid for
    /// `ttl` from now.
    ///
    /// # Panics
    ///
    /// As [`issue`](Self::issue).
    #[must_use]
    pub fn issue_sso(
        &self,
        user: Uuid,
        email: &str,
        org: Uuid,
        ttl: std::time::Duration,
    ) -> String {
        self.issue_with(user, Some(email), Some(org), ttl)
    }

    fn issue_with(
        &self,
        user: Uuid,
        email: Option<&str>,
        sso_org: Option<Uuid>,
        ttl: std::time::Duration,
    ) -> String {
        let exp = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0) + ttl.as_secs();
        let claims = Claims {
            sub: user,
            exp,
            aud: AUDIENCE.into(),
            email: email.map(str::to_owned),
            nbf: None,
            iss: self.inner.issuer.clone(),
            is_anonymous: false,
            sso_org,
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.inner.encoding,
        )
        .expect("HS256 signing succeeds")
    }

    /// The claims of a valid token.
    ///
    /// # Errors
    ///
    /// [`ApiError::unauthorized`] for a malformed, forged, expired, not yet valid,
    /// wrong-audience or (when an issuer is configured) wrong-issuer token.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.inner.decoding, &self.inner.validation)
            .map(|data| data.claims)
            .map_err(|e| {
                tracing::debug!(error = %e, "rejected bearer token");
                ApiError::unauthorized("invalid or expired token")
            })
    }
}

/// The audience of preview tickets: no user token carries it, and a ticket is never taken
/// for a user token (whose audience is `authenticated`).
const PREVIEW_AUDIENCE: &str = "appforge-preview";

/// What a preview ticket grants: showing one version of one app of one owner, until `exp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewTicket {
    /// The app.
    pub sub: Uuid,
    /// The version.
    pub ver: u32,
    /// The space that owns the app.
    pub own: appforge_core::Owner,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// `appforge-preview`.
    pub aud: String,
}

impl JwtKeys {
    /// A ticket for the preview frame of `app` at `version` in `owner`'s space, valid for
    /// `ttl`: a frame's address cannot carry the user's bearer token, and must not, since
    /// the preview's scripts can read their own address. The ticket grants that one
    /// preview and nothing else.
    ///
    /// # Panics
    ///
    /// As [`issue`](Self::issue).
    #[must_use]
    pub fn preview_ticket(
        &self,
        app: Uuid,
        version: u32,
        owner: appforge_core::Owner,
        ttl: std::time::Duration,
    ) -> (String, u64) {
        let exp = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0) + ttl.as_secs();
        let ticket = PreviewTicket {
            sub: app,
            ver: version,
            own: owner,
            exp,
            aud: PREVIEW_AUDIENCE.to_owned(),
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &ticket,
            &self.inner.encoding,
        )
        .expect("HS256 signing succeeds");
        (token, exp)
    }

    /// The grant of a valid preview ticket.
    ///
    /// # Errors
    ///
    /// [`ApiError::unauthorized`] for a malformed, forged or expired ticket, or a user token.
    pub fn verify_preview_ticket(&self, ticket: &str) -> Result<PreviewTicket, ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[PREVIEW_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        validation.leeway = 30;
        jsonwebtoken::decode::<PreviewTicket>(ticket, &self.inner.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| {
                tracing::debug!(error = %e, "rejected preview ticket");
                ApiError::unauthorized("invalid or expired preview ticket")
            })
    }
}

/// The user a request acts for, from its `Authorization: Bearer` token.
///
/// Extracting it also records the user's first request of the UTC day for analytics
/// (`sign_in_seen`) and tags the request's error reports with the user id.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// The user id (`sub`).
    pub id: Uuid,
    /// The email claim, when present.
    pub email: Option<String>,
    /// The org whose single sign-on issued the token, if one did.
    pub sso_org: Option<Uuid>,
}

impl<S> FromRequestParts<S> for AuthUser
where
    JwtKeys: FromRef<S>,
    Analytics: FromRef<S>,
    Quota: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        if token.starts_with(API_KEY_PREFIX) {
            return Err(ApiError::unauthorized(
                "an org API key acts on its org's routes (/api/orgs/...) only",
            ));
        }
        let keys = JwtKeys::from_ref(state);
        let claims = keys.verify(token)?;
        if claims.is_anonymous {
            anonymous(&keys, &Quota::from_ref(state), claims.sub).await?;
        }
        Analytics::from_ref(state).seen(claims.sub);
        crate::reporting::tag_user(claims.sub);
        Ok(Self {
            id: claims.sub,
            email: claims.email,
            sso_org: claims.sso_org,
        })
    }
}

/// The start of an org API key.
const API_KEY_PREFIX: &str = "afk_";

/// The bearer token of a request, or a 401.
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer token"))?;
    header
        .to_str()
        .ok()
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <token>`"))
}

/// Who a request on an org route acts for: a signed-in user (a JWT, as [`AuthUser`]) or an
/// org API key (`Authorization: Bearer afk_...`), which acts as its org with its role.
///
/// A key is looked up on every request (nothing is cached), so a revoked or expired key is
/// refused (401) from the next request on; using it records its last-used time.
#[derive(Debug, Clone)]
pub enum AuthPrincipal {
    /// A signed-in user.
    User(AuthUser),
    /// An org API key.
    ApiKey(appforge_orgs::ApiKeyPrincipal),
}

impl AuthPrincipal {
    /// The principal as the orgs service names it.
    #[must_use]
    pub fn principal(&self) -> appforge_orgs::Principal {
        match self {
            Self::User(user) => appforge_orgs::Principal::User(user.id),
            Self::ApiKey(key) => appforge_orgs::Principal::ApiKey(key.clone()),
        }
    }
}

impl FromRequestParts<AppState> for AuthPrincipal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        if !token.starts_with(API_KEY_PREFIX) {
            return AuthUser::from_request_parts(parts, state)
                .await
                .map(Self::User);
        }
        match state.orgs().authenticate(token).await {
            Ok(Some(key)) => Ok(Self::ApiKey(key)),
            Ok(None) => Err(ApiError::unauthorized(
                "invalid, expired or revoked API key",
            )),
            Err(error) => Err(ApiError::internal(&error)),
        }
    }
}

/// An anonymous user is refused, or moved to the configured plan before the request goes on
/// (so that every quota decision judges them by it).
async fn anonymous(keys: &JwtKeys, quota: &Quota, user: Uuid) -> Result<(), ApiError> {
    let Some(plan) = &keys.inner.anonymous_plan else {
        return Err(ApiError::new(
            http::StatusCode::FORBIDDEN,
            "anonymous_not_allowed",
            "anonymous sign-ins cannot use this service: sign in with an account",
        ));
    };
    let current = quota
        .plan_of(user)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    if &current.id != plan {
        quota
            .set_plan(user, plan)
            .await
            .map_err(|e| ApiError::internal(&e))?;
    }
    Ok(())
}

impl FromRef<AppState> for Quota {
    fn from_ref(state: &AppState) -> Self {
        state.quota().clone()
    }
}

/// The operator token of the admin routes and pages (`APPFORGE_ADMIN_TOKEN`); `None` when it
/// is not configured, which closes every admin route.
#[derive(Clone, Default)]
pub struct AdminToken(pub Option<SecretString>);

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.0.is_some() {
            "[REDACTED]"
        } else {
            "unset"
        };
        write!(f, "AdminToken({state})")
    }
}

/// A request made with the admin token, as `Authorization: Bearer <APPFORGE_ADMIN_TOKEN>`.
///
/// Rejects with 401 when the token is missing or wrong and with 404 when the server has no
/// admin token, so that an unconfigured deployment does not reveal its admin routes. The
/// comparison is constant-time.
#[derive(Debug, Clone, Copy)]
pub struct AdminAuth;

impl<S> FromRequestParts<S> for AdminAuth
where
    AdminToken: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use subtle::ConstantTimeEq;

        let AdminToken(Some(expected)) = AdminToken::from_ref(state) else {
            return Err(ApiError::not_found("route"));
        };
        let given = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <admin token>"))?;
        let ok: bool = given
            .as_bytes()
            .ct_eq(expected.expose_secret().as_bytes())
            .into();
        if ok {
            Ok(Self)
        } else {
            Err(ApiError::unauthorized("invalid admin token"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn issued_tokens_verify() {
        let keys = JwtKeys::random();
        let user = Uuid::new_v4();
        let token = keys.issue(user, Some("a@example.com"), Duration::from_secs(60));
        let claims = keys.verify(&token).unwrap();
        assert_eq!(claims.sub, user);
        assert_eq!(claims.email.as_deref(), Some("a@example.com"));
    }

    #[test]
    fn another_secret_is_rejected() {
        let token = JwtKeys::random().issue(Uuid::new_v4(), None, Duration::from_secs(60));
        assert_eq!(
            JwtKeys::random().verify(&token).unwrap_err().status(),
            http::StatusCode::UNAUTHORIZED
        );
    }

    const SECRET: &str = "a-test-secret-of-thirty-two-bytes-or-more";

    fn encode(claims: &Claims) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    fn now() -> u64 {
        u64::try_from(chrono::Utc::now().timestamp()).unwrap()
    }

    /// Valid claims for an hour from `now`.
    fn claims(now: u64) -> Claims {
        Claims {
            sub: Uuid::new_v4(),
            exp: now + 3600,
            aud: AUDIENCE.into(),
            email: None,
            nbf: None,
            iss: None,
            is_anonymous: false,
            sso_org: None,
        }
    }

    #[test]
    fn a_token_is_refused_before_its_nbf() {
        let keys = JwtKeys::new(&SecretString::from(SECRET));
        let now = now();
        let early = Claims {
            nbf: Some(now + 600),
            ..claims(now)
        };
        assert!(keys.verify(&encode(&early)).is_err());
        // Within the leeway, and once it has passed, the token is good.
        for nbf in [now + 10, now - 600] {
            let ok = Claims {
                nbf: Some(nbf),
                ..claims(now)
            };
            assert!(keys.verify(&encode(&ok)).is_ok(), "nbf {nbf}, now {now}");
        }
    }

    #[test]
    fn a_configured_issuer_is_required() {
        const ISS: &str = "https://project.supabase.co/auth/v1";
        let keys = JwtKeys::new(&SecretString::from(SECRET)).issuer(Some(ISS.into()));
        let now = now();
        let right = Claims {
            iss: Some(ISS.into()),
            ..claims(now)
        };
        assert!(keys.verify(&encode(&right)).is_ok());
        let wrong = Claims {
            iss: Some("https://other.supabase.co/auth/v1".into()),
            ..claims(now)
        };
        assert!(keys.verify(&encode(&wrong)).is_err());
        assert!(keys.verify(&encode(&claims(now))).is_err(), "no iss");
        // Issued tokens carry it; keys without an issuer accept any.
        let issued = keys.issue(Uuid::new_v4(), None, Duration::from_secs(60));
        assert_eq!(keys.verify(&issued).unwrap().iss.as_deref(), Some(ISS));
        let any = JwtKeys::new(&SecretString::from(SECRET));
        assert!(any.verify(&encode(&wrong)).is_ok());
    }

    #[tokio::test]
    async fn anonymous_users_are_refused_or_put_on_the_configured_plan() {
        let quota = Quota::new(
            appforge_quota::AnyUsageStore::connect("memory:")
                .await
                .unwrap(),
        );
        let user = Uuid::new_v4();
        let refuse = JwtKeys::new(&SecretString::from(SECRET));
        let err = anonymous(&refuse, &quota, user).await.unwrap_err();
        assert_eq!(err.status(), http::StatusCode::FORBIDDEN);
        assert_eq!(quota.plan_of(user).await.unwrap().id, PlanId::free());

        let mut catalogue = (*quota.catalogue()).clone();
        catalogue = catalogue
            .with_plan(appforge_quota::Plan::new("guest", "Guest"))
            .unwrap();
        quota.set_catalogue(catalogue);
        let guest = refuse.anonymous_plan(Some(PlanId::new("guest")));
        anonymous(&guest, &quota, user).await.unwrap();
        assert_eq!(quota.plan_of(user).await.unwrap().id, PlanId::new("guest"));
        // Again: nothing changes.
        anonymous(&guest, &quota, user).await.unwrap();
        assert_eq!(quota.plan_of(user).await.unwrap().id, PlanId::new("guest"));
    }

    #[test]
    fn the_anonymous_claim_is_read() {
        let keys = JwtKeys::new(&SecretString::from(SECRET));
        let token = encode(&Claims {
            is_anonymous: true,
            ..claims(now())
        });
        assert!(keys.verify(&token).unwrap().is_anonymous);
        let issued = keys.issue(Uuid::new_v4(), None, Duration::from_secs(60));
        assert!(!keys.verify(&issued).unwrap().is_anonymous);
    }

    #[test]
    fn expired_and_wrong_audience_tokens_are_rejected() {
        let keys = JwtKeys::new(&SecretString::from(SECRET));
        let now = now();
        let expired = Claims {
            exp: now - 3600,
            ..claims(now)
        };
        assert!(keys.verify(&encode(&expired)).is_err());
        let wrong_aud = Claims {
            exp: now + 3600,
            aud: "anon".into(),
            ..expired
        };
        assert!(keys.verify(&encode(&wrong_aud)).is_err());
        assert!(keys.verify("not.a.jwt").is_err());
    }

    #[test]
    fn admin_token_debug_hides_the_secret() {
        let token = AdminToken(Some(SecretString::from("admin-secret-value")));
        assert!(!format!("{token:?}").contains("admin-secret-value"));
    }

    #[test]
    fn debug_hides_the_secret() {
        let keys = JwtKeys::new(&SecretString::from("very-secret-value"));
        assert!(!format!("{keys:?}").contains("very-secret-value"));
    }
}
