//! Per-organization single sign-on: OpenID Connect with PKCE, every ID token check, client
//! secrets sealed at rest, and SCIM 2.0 types for provisioning.
//!
//! An org owner enters the provider's issuer URL, a client id and secret, the email domains
//! allowed and the role new users get ([`NewSsoConfig`]); [`Sso::configure`] seals the secret
//! with the host's [`SecretsKey`] (AES-256-GCM, the org id as associated data) before a store
//! sees it.
//!
//! ```
//! use appforge_core::ExposeSecret;
//! use appforge_orgs::Role;
//! use appforge_sso::{MemorySsoStore, NewSsoConfig, SecretsKey, Sso};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> appforge_sso::Result<()> {
//! // A server reads the key from APPFORGE_SECRETS_KEY (`SecretsKey::from_env`).
//! let key = SecretsKey::generate();
//! let store = MemorySsoStore::new();
//! let sso = Sso::new(store.clone(), store, key.clone());
//!
//! let org = uuid::Uuid::new_v4();
//! let config = NewSsoConfig::new("https://login.acme.com/realms/acme", "appforge", "s3cret")
//!     .allowed_domains(["acme.com"])
//!     .default_role(Role::Member)
//!     .enforce_domain(true);
//! let stored = sso.configure(org, config).await?;
//!
//! // The store holds the sealed secret only; the key opens it for this org alone.
//! assert!(!stored.client_secret.as_stored().contains("s3cret"));
//! assert_eq!(key.open(org, &stored.client_secret)?.expose_secret(), "s3cret");
//! assert!(SecretsKey::generate().open(org, &stored.client_secret).is_err());
//! assert!(stored.allows_email("ada@acme.com") && !stored.allows_email("eve@evil.com"));
//! # Ok(()) }
//! ```
//!
//! # The flow
//!
//! ```no_run
//! # async fn demo(sso: appforge_sso::Sso, org: uuid::Uuid, state: &str, code: &str) -> appforge_sso::Result<()> {
//! // GET /sso/{org}/start: redirect the browser to the provider.
//! let started = sso.start(org, "https://app.example.com/sso/callback").await?;
//! let redirect_to = started.url; // 302 Location
//!
//! // GET /sso/callback?state=...&code=...: the provider sent the browser back.
//! let login = sso.callback(state, code).await?;
//! // Find or create the user (login.issuer, login.subject), add them to login.org with
//! // login.default_role when new, start a session.
//! # Ok(()) }
//! ```
//!
//! [`Sso::start`] discovers the provider (`/.well-known/openid-configuration`, cached per
//! issuer with its key set), keeps a [`PendingLogin`] (random `state` and `nonce`, a PKCE
//! S256 verifier, the org, 10 minutes to live) and returns the authorization URL.
//! [`Sso::callback`] takes the pending login of `state` (once: a replay is
//! [`Error::UnknownState`], a late one [`Error::ExpiredState`]), exchanges the code with the
//! verifier and the client secret, and verifies the ID token:
//!
//! - the signature against the provider's key set, RS256 or ES256 only (`alg: none` and
//!   the HMAC algorithms are refused); a `kid` the cached set lacks fetches the set once
//!   more (the provider rotated its keys) before the token is refused;
//! - `iss` is the configured issuer, `aud` contains the client id, `exp` is in the future
//!   (by the injected clock), `nonce` is the pending login's;
//! - `email` is present and `email_verified` is `true`; with `enforce_domain`, the email's
//!   domain is one of the allowed domains (exactly: a subdomain is another domain).
//!
//! Every refusal is one [`Error`] whose [`is_login_refused`](Error::is_login_refused) is
//! true; no error carries a secret, a code or a token.
//!
//! # HTTP
//!
//! openidconnect 4 ships a client for reqwest 0.12; this crate leaves its `reqwest` feature
//! off and implements its `AsyncHttpClient` over the workspace's reqwest 0.13 (no redirects
//! followed, 10 s timeout, or the host's client through [`SsoBuilder::http_client`]).
//! Issuers must be `https` (plain `http` only on a loopback host).
//!
//! # Stores
//!
//! [`SsoConfigStore`] keeps each org's [`SsoConfig`], [`PendingLogins`] the started logins
//! ([`take_pending`](PendingLogins::take_pending) is atomic: one statement
//! `DELETE ... RETURNING`). [`MemorySsoStore`], [`SqliteSsoStore`] and `PgSsoStore` implement
//! both (tables `sso_configs`, `sso_pending_logins`, migration table
//! `_appforge_sso_migrations`); the conformance suite in `testing` checks any implementation.
//!
//! # SCIM
//!
//! [`scim`] holds the SCIM 2.0 shapes a provisioning endpoint needs (`User`,
//! `ListResponse`, `PatchOp`, `Error`, the `userName eq "..."` filter), the discovery
//! resources ([`scim::ServiceProviderConfig`], [`scim::ResourceType`]) and the org's bearer
//! token ([`scim::ScimToken`]: random, shown once, stored as SHA-256, compared in constant
//! time). The routes are the host's.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `sqlite` | yes | [`SqliteSsoStore`], the embedded store |
//! | `postgres` | no | `PgSsoStore`, for many processes on one database |
//! | `testing` | no | `testing`: the conformance suite every store passes |
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod error;
mod http;
mod pending;
mod provider;
pub mod scim;
mod secrets;
mod service;
mod store;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use config::{NewSsoConfig, SsoConfig};
pub use error::{Error, Result};
pub use pending::{PENDING_LOGIN_TTL, PendingLogin};
pub use provider::DEFAULT_DISCOVERY_TTL;
pub use secrets::{SECRETS_KEY_ENV, SealedSecret, SecretsKey};
pub use service::{Sso, SsoBuilder, StartedLogin, VerifiedLogin};
pub use store::memory::MemorySsoStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use store::postgres::PgSsoStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use store::sqlite::SqliteSsoStore;
pub use store::{PendingLogins, SsoConfigStore};
