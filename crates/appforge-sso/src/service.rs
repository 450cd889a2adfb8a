//! The login flow: [`Sso::start`] and [`Sso::callback`].

use std::sync::Arc;
use std::time::Duration;

use appforge_core::{ExposeSecret, SharedClock, SystemClock};
use appforge_orgs::Role;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreIdTokenClaims, CoreIdTokenVerifier,
    CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, Nonce,
    OAuth2TokenResponse as _, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError,
    Scope, SignatureVerificationError, TokenResponse as _,
};
use url::Url;
use uuid::Uuid;

use crate::config::{NewSsoConfig, SsoConfig, email_domain};
use crate::http::HttpClient;
use crate::pending::{PENDING_LOGIN_TTL, PendingLogin};
use crate::provider::{DEFAULT_DISCOVERY_TTL, Providers};
use crate::secrets::SecretsKey;
use crate::store::memory::MemorySsoStore;
use crate::store::{PendingLogins, SsoConfigStore};
use crate::{Error, Result};

/// The only ID token signature algorithms accepted: `alg: none` and the HMAC algorithms
/// (whose key a client could be tricked into taking from a public key) are refused.
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 2] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
];

/// Per-organization OpenID Connect sign-in: the settings ([`configure`](Self::configure)),
/// the redirect to the provider ([`start`](Self::start)) and the checks of its answer
/// ([`callback`](Self::callback)). Cheap to clone.
#[derive(Debug)]
pub struct Sso<C = MemorySsoStore, P = MemorySsoStore> {
    inner: Arc<Inner<C, P>>,
}

impl<C, P> Clone for Sso<C, P> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

#[derive(Debug)]
struct Inner<C, P> {
    configs: C,
    pending: P,
    key: SecretsKey,
    clock: SharedClock,
    providers: Providers,
    pending_ttl: Duration,
}

/// Builds an [`Sso`]: [`Sso::builder`].
#[derive(Debug)]
pub struct SsoBuilder<C, P> {
    configs: C,
    pending: P,
    key: SecretsKey,
    clock: SharedClock,
    http: Option<reqwest::Client>,
    discovery_ttl: Duration,
    pending_ttl: Duration,
}

impl<C, P> SsoBuilder<C, P> {
    /// The clock deciding expiry of pending logins and ID tokens (the system clock by
    /// default).
    #[must_use]
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The HTTP client for the providers (proxy, TLS roots). It should follow no redirects;
    /// the default follows none and times out after 10 s.
    #[must_use]
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// How long a provider's discovery document and key set are reused
    /// ([`DEFAULT_DISCOVERY_TTL`], one hour, by default). A token naming an unknown key
    /// fetches the key set again regardless.
    #[must_use]
    pub fn discovery_ttl(mut self, ttl: Duration) -> Self {
        self.discovery_ttl = ttl;
        self
    }

    /// How long a started login waits for its callback ([`PENDING_LOGIN_TTL`], 10 minutes,
    /// by default).
    #[must_use]
    pub fn pending_ttl(mut self, ttl: Duration) -> Self {
        self.pending_ttl = ttl;
        self
    }

    /// The service.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a zero or out of range pending login lifetime.
    pub fn build(self) -> Result<Sso<C, P>> {
        if self.pending_ttl.is_zero() || chrono::Duration::from_std(self.pending_ttl).is_err() {
            return Err(Error::InvalidArgument(
                "the pending login lifetime must be positive and below a century".into(),
            ));
        }
        let http = self
            .http
            .map_or_else(HttpClient::new, HttpClient::from_client);
        Ok(Sso {
            inner: Arc::new(Inner {
                configs: self.configs,
                pending: self.pending,
                key: self.key,
                clock: self.clock,
                providers: Providers::new(http, self.discovery_ttl),
                pending_ttl: self.pending_ttl,
            }),
        })
    }
}

/// A started login: send the browser to [`url`](Self::url).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedLogin {
    /// The provider's authorization URL with `state`, `nonce` and the PKCE challenge.
    pub url: Url,
    /// The `state` the callback will carry. A host may also bind it to the browser (a
    /// short-lived cookie) and compare on the callback.
    pub state: String,
    /// When the login stops being accepted.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// A user the org's provider vouched for, after every check passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedLogin {
    /// The org signed in to.
    pub org: Uuid,
    /// The provider's issuer URL; with [`subject`](Self::subject), the user's stable
    /// identity.
    pub issuer: String,
    /// The `sub` claim: the user's id at the provider.
    pub subject: String,
    /// The `email` claim.
    pub email: String,
    /// The `email_verified` claim (always `true`: an unverified email is refused).
    pub email_verified: bool,
    /// The `name` claim, if sent.
    pub name: Option<String>,
    /// The org's role for users signing in for the first time.
    pub default_role: Role,
}

impl<C: SsoConfigStore, P: PendingLogins> Sso<C, P> {
    /// A service with the system clock and default settings.
    pub fn new(configs: C, pending: P, key: SecretsKey) -> Self {
        Self::builder(configs, pending, key)
            .build()
            .expect("the default settings are valid")
    }

    /// A builder over the two stores and the key that seals client secrets.
    pub fn builder(configs: C, pending: P, key: SecretsKey) -> SsoBuilder<C, P> {
        SsoBuilder {
            configs,
            pending,
            key,
            clock: SystemClock::shared(),
            http: None,
            discovery_ttl: DEFAULT_DISCOVERY_TTL,
            pending_ttl: PENDING_LOGIN_TTL,
        }
    }

    /// Validates and stores the org's settings, sealing the client secret. The host checks
    /// first that the caller may (`appforge_orgs::Permission::ManageSso`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for invalid settings; storage errors.
    pub async fn configure(&self, org: Uuid, new: NewSsoConfig) -> Result<SsoConfig> {
        let (issuer, allowed_domains) = new.validate()?;
        let config = SsoConfig {
            org,
            issuer,
            client_id: new.client_id.trim().to_owned(),
            client_secret: self.inner.key.seal(org, new.client_secret.expose_secret()),
            allowed_domains,
            default_role: new.default_role,
            enforce_domain: new.enforce_domain,
            updated_at: self.inner.clock.now(),
        };
        self.inner.configs.put_config(&config).await?;
        Ok(config)
    }

    /// The org's settings, if any.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn config(&self, org: Uuid) -> Result<Option<SsoConfig>> {
        self.inner.configs.get_config(org).await
    }

    /// Removes the org's settings; whether there were any.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn remove_config(&self, org: Uuid) -> Result<bool> {
        self.inner.configs.delete_config(org).await
    }

    /// Starts a login to `org`: keeps a [`PendingLogin`] (fresh `state`, `nonce` and PKCE
    /// verifier) and returns the provider's authorization URL (scopes `openid email
    /// profile`, PKCE S256). The provider sends the browser back to `redirect_uri`, which
    /// must be registered there.
    ///
    /// # Errors
    ///
    /// [`Error::NotConfigured`]; [`Error::InvalidArgument`] for a malformed `redirect_uri`;
    /// [`Error::Discovery`]; storage errors.
    pub async fn start(&self, org: Uuid, redirect_uri: &str) -> Result<StartedLogin> {
        let config = self.require_config(org).await?;
        let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(|e| {
            Error::InvalidArgument(format!(
                "the redirect URI {redirect_uri:?} is not a URL: {e}"
            ))
        })?;
        let now = self.inner.clock.now();
        let metadata = self.inner.providers.metadata(&config.issuer, now).await?;
        // The secret is not needed to build the URL.
        let client = CoreClient::from_provider_metadata(
            CoreProviderMetadata::clone(&metadata),
            ClientId::new(config.client_id.clone()),
            None,
        )
        .set_redirect_uri(redirect);

        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();
        let expires_at = now
            + chrono::Duration::from_std(self.inner.pending_ttl).expect("checked by the builder");
        let login = PendingLogin {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            org,
            redirect_uri: redirect_uri.to_owned(),
            created_at: now,
            expires_at,
        };
        self.inner.pending.insert_pending(&login).await?;
        Ok(StartedLogin {
            url,
            state: login.state,
            expires_at,
        })
    }

    /// Finishes a login: takes the pending login of `state` (once: a replay finds nothing),
    /// exchanges `code` with its PKCE verifier, verifies the ID token (signature against
    /// the provider's keys, RS256 or ES256 only; `iss`, `aud`, `exp`, `nonce`), then the
    /// email (present, verified, in an allowed domain when the org enforces them).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownState`], [`Error::ExpiredState`], [`Error::NotConfigured`],
    /// [`Error::TokenExchange`], [`Error::InvalidIdToken`], [`Error::MissingEmail`],
    /// [`Error::EmailNotVerified`], [`Error::DomainNotAllowed`] (all
    /// [`is_login_refused`](Error::is_login_refused)); [`Error::Decrypt`],
    /// [`Error::Discovery`]; storage errors.
    pub async fn callback(&self, state: &str, code: &str) -> Result<VerifiedLogin> {
        let login = self
            .inner
            .pending
            .take_pending(state)
            .await?
            .ok_or(Error::UnknownState)?;
        let now = self.inner.clock.now();
        if login.is_expired(now) {
            return Err(Error::ExpiredState { org: login.org });
        }
        let config = self.require_config(login.org).await?;
        let secret = self.inner.key.open(login.org, &config.client_secret)?;
        let redirect = RedirectUrl::new(login.redirect_uri.clone())
            .map_err(|e| Error::Corrupt(format!("stored redirect URI: {e}")))?;
        let metadata = self.inner.providers.metadata(&config.issuer, now).await?;
        let client = CoreClient::from_provider_metadata(
            CoreProviderMetadata::clone(&metadata),
            ClientId::new(config.client_id.clone()),
            Some(ClientSecret::new(secret.expose_secret().to_owned())),
        )
        .set_redirect_uri(redirect);

        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| Error::TokenExchange(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(login.pkce_verifier.clone()))
            .request_async(self.inner.providers.http())
            .await
            .map_err(|e| Error::TokenExchange(describe_token_error(&e)))?;
        // The access token is not used: the ID token says who signed in.
        let _ = response.access_token();
        let id_token = response
            .id_token()
            .ok_or_else(|| Error::InvalidIdToken("the token response has no id_token".into()))?;

        let nonce = Nonce::new(login.nonce.clone());
        let claims = match self.verify(&config, &metadata, id_token, &nonce) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // A key the cached set lacks: the provider may have rotated. Fetch once more.
                let metadata = self
                    .inner
                    .providers
                    .refresh_jwks(&config.issuer, &metadata, now)
                    .await?;
                self.verify(&config, &metadata, id_token, &nonce)
            }
            other => other,
        }
        .map_err(|e| Error::InvalidIdToken(describe_claims_error(&e)))?;

        let email = claims
            .email()
            .map(|email| email.as_str().to_owned())
            .ok_or(Error::MissingEmail)?;
        if claims.email_verified() != Some(true) {
            return Err(Error::EmailNotVerified(email));
        }
        if config.enforce_domain && !config.allows_email(&email) {
            return Err(Error::DomainNotAllowed {
                org: login.org,
                domain: email_domain(&email).unwrap_or_default(),
            });
        }
        Ok(VerifiedLogin {
            org: login.org,
            issuer: config.issuer.clone(),
            subject: claims.subject().as_str().to_owned(),
            email,
            email_verified: true,
            name: claims
                .name()
                .and_then(|name| name.get(None))
                .map(|name| name.as_str().to_owned()),
            default_role: config.default_role,
        })
    }

    /// Removes the pending logins expired now; how many.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn purge_expired(&self) -> Result<u64> {
        self.inner
            .pending
            .purge_expired(self.inner.clock.now())
            .await
    }

    async fn require_config(&self, org: Uuid) -> Result<SsoConfig> {
        self.inner
            .configs
            .get_config(org)
            .await?
            .ok_or(Error::NotConfigured(org))
    }

    fn verify<'t>(
        &self,
        config: &SsoConfig,
        metadata: &CoreProviderMetadata,
        id_token: &'t CoreIdToken,
        nonce: &Nonce,
    ) -> std::result::Result<&'t CoreIdTokenClaims, ClaimsVerificationError> {
        let clock = self.inner.clock.clone();
        // A public-client verifier: it has no client secret, so no HMAC key to verify with.
        let verifier = CoreIdTokenVerifier::new_public_client(
            ClientId::new(config.client_id.clone()),
            metadata.issuer().clone(),
            metadata.jwks().clone(),
        )
        .set_allowed_algs(ALLOWED_ALGS)
        .set_time_fn(move || clock.now());
        id_token.claims(&verifier, nonce)
    }
}

/// A token endpoint error without the response body (which may echo what was sent).
fn describe_token_error<RE, TE>(error: &RequestTokenError<RE, TE>) -> String
where
    RE: std::error::Error + 'static,
    TE: openidconnect::ErrorResponse + 'static,
{
    match error {
        RequestTokenError::ServerResponse(response) => {
            format!("the provider answered {response}")
        }
        RequestTokenError::Request(e) => format!("cannot reach the token endpoint: {e}"),
        RequestTokenError::Parse(e, _) => {
            format!("malformed token response at {}", e.path())
        }
        RequestTokenError::Other(message) => message.clone(),
    }
}

/// A claims error with its cause (openidconnect's `Display` of a signature error stops at
/// "Signature verification failed").
fn describe_claims_error(error: &ClaimsVerificationError) -> String {
    match error {
        ClaimsVerificationError::SignatureVerification(e) => {
            format!("signature verification failed: {e}")
        }
        other => other.to_string(),
    }
}
