//! Bearer tokens: HS256 JWTs with the claims Supabase Auth issues (`sub`, `exp`,
//! `aud = "authenticated"`, optional `email`).

use std::fmt;
use std::sync::Arc;

use appforge_core::{ExposeSecret, SecretString};
use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::analytics::Analytics;
use crate::error::ApiError;

/// The audience Supabase Auth puts in user tokens.
const AUDIENCE: &str = "authenticated";

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
}

/// Signs and verifies user tokens. Cheap to clone; the secret never reaches `Debug`.
#[derive(Clone)]
pub struct JwtKeys {
    inner: Arc<Keys>,
}

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtKeys([REDACTED])")
    }
}

impl JwtKeys {
    /// Keys for the HS256 `secret`.
    #[must_use]
    pub fn new(secret: &SecretString) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        validation.leeway = 30;
        Self {
            inner: Arc::new(Keys {
                encoding: EncodingKey::from_secret(bytes),
                decoding: DecodingKey::from_secret(bytes),
                validation,
            }),
        }
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
        let exp = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0) + ttl.as_secs();
        let claims = Claims {
            sub: user,
            exp,
            aud: AUDIENCE.into(),
            email: email.map(str::to_owned),
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
    /// [`ApiError::unauthorized`] for a malformed, forged, expired or wrong-audience token.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.inner.decoding, &self.inner.validation)
            .map(|data| data.claims)
            .map_err(|e| {
                tracing::debug!(error = %e, "rejected bearer token");
                ApiError::unauthorized("invalid or expired token")
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
}

impl<S> FromRequestParts<S> for AuthUser
where
    JwtKeys: FromRef<S>,
    Analytics: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
            })?;
        let claims = JwtKeys::from_ref(state).verify(token)?;
        Analytics::from_ref(state).seen(claims.sub);
        crate::reporting::tag_user(claims.sub);
        Ok(Self {
            id: claims.sub,
            email: claims.email,
        })
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

    #[test]
    fn expired_and_wrong_audience_tokens_are_rejected() {
        let secret = SecretString::from("s3cret");
        let keys = JwtKeys::new(&secret);
        let encode = |claims: &Claims| {
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                claims,
                &EncodingKey::from_secret(b"s3cret"),
            )
            .unwrap()
        };
        let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap();
        let expired = Claims {
            sub: Uuid::new_v4(),
            exp: now - 3600,
            aud: AUDIENCE.into(),
            email: None,
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
