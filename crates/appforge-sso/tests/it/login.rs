//! The login flow against the provider stand-in: what passes and what is refused.

use std::time::Duration;

use appforge_core::ManualClock;
use appforge_orgs::Role;
use appforge_sso::{Error, MemorySsoStore, NewSsoConfig, SecretsKey, Sso, VerifiedLogin};
use serde_json::json;
use uuid::Uuid;

use crate::idp::{CLIENT_ID, CLIENT_SECRET, Idp, Jwk, Plan, Signer};

const REDIRECT: &str = "https://app.example.com/sso/callback";

struct Fx {
    sso: Sso,
    idp: Idp,
    clock: ManualClock,
    org: Uuid,
}

async fn fx() -> Fx {
    fx_with(|config| config).await
}

async fn fx_with(edit: impl FnOnce(NewSsoConfig) -> NewSsoConfig) -> Fx {
    let clock = ManualClock::at(appforge_testing::fixed_now());
    let idp = Idp::start(clock.clone()).await;
    let store = MemorySsoStore::new();
    let sso = Sso::builder(store.clone(), store, SecretsKey::generate())
        .clock(clock.shared())
        .build()
        .unwrap();
    let org = Uuid::new_v4();
    let config = NewSsoConfig::new(&idp.issuer, CLIENT_ID, CLIENT_SECRET)
        .allowed_domains(["acme.com"])
        .default_role(Role::Member)
        .enforce_domain(true);
    sso.configure(org, edit(config)).await.unwrap();
    Fx {
        sso,
        idp,
        clock,
        org,
    }
}

impl Fx {
    /// A whole login: start, the provider's authorization, the callback.
    async fn login(&self) -> Result<VerifiedLogin, Error> {
        let started = self.sso.start(self.org, REDIRECT).await.unwrap();
        let code = self.idp.authorize(&started.url);
        self.sso.callback(&started.state, &code).await
    }

    async fn refused_with(&self, plan: Plan) -> Error {
        self.idp.plan(plan);
        let err = self.login().await.unwrap_err();
        assert!(err.is_login_refused(), "{err}");
        err
    }
}

fn id_token_error(err: &Error) -> &str {
    match err {
        Error::InvalidIdToken(reason) => reason,
        other => panic!("expected an invalid ID token, got {other:?}"),
    }
}

#[tokio::test]
async fn a_good_rsa_login_returns_the_verified_user() {
    let fx = fx().await;
    let login = fx.login().await.unwrap();
    assert_eq!(
        login,
        VerifiedLogin {
            org: fx.org,
            issuer: fx.idp.issuer.clone(),
            subject: "user-1".into(),
            email: "ada@acme.com".into(),
            email_verified: true,
            name: Some("Ada Lovelace".into()),
            default_role: Role::Member,
        }
    );
}

#[tokio::test]
async fn a_good_ec_login_passes() {
    let fx = fx().await;
    fx.idp.plan(Plan {
        signer: Signer::Ec,
        ..Plan::default()
    });
    assert_eq!(fx.login().await.unwrap().subject, "user-1");
}

#[tokio::test]
async fn the_authorization_url_carries_state_nonce_and_an_s256_challenge() {
    let fx = fx().await;
    let a = fx.sso.start(fx.org, REDIRECT).await.unwrap();
    let b = fx.sso.start(fx.org, REDIRECT).await.unwrap();
    assert_ne!(a.state, b.state);
    assert_eq!(
        a.expires_at,
        appforge_testing::fixed_now() + chrono::Duration::minutes(10)
    );
    let query: std::collections::HashMap<_, _> = a.url.query_pairs().into_owned().collect();
    assert_eq!(query["state"], a.state);
    assert_eq!(query["redirect_uri"], REDIRECT);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["code_challenge"].len(), 43);
    assert!(!a.url.as_str().contains(CLIENT_SECRET));
}

#[tokio::test]
async fn a_wrong_nonce_is_refused() {
    let fx = fx().await;
    let err = fx
        .refused_with(Plan {
            nonce: Some("another-login's-nonce".into()),
            ..Plan::default()
        })
        .await;
    assert!(id_token_error(&err).contains("nonce"), "{err}");
}

#[tokio::test]
async fn a_wrong_audience_is_refused() {
    let fx = fx().await;
    let err = fx
        .refused_with(Plan {
            aud: Some("some-other-client".into()),
            ..Plan::default()
        })
        .await;
    assert!(id_token_error(&err).contains("audience"), "{err}");
}

#[tokio::test]
async fn a_wrong_issuer_is_refused() {
    let fx = fx().await;
    let err = fx
        .refused_with(Plan {
            iss: Some("https://evil.example.com".into()),
            ..Plan::default()
        })
        .await;
    assert!(id_token_error(&err).contains("issuer"), "{err}");
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let fx = fx().await;
    let err = fx
        .refused_with(Plan {
            expires_in: -60,
            ..Plan::default()
        })
        .await;
    assert!(id_token_error(&err).contains("xpired"), "{err}");
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_the_login_passes() {
    let fx = fx().await;
    fx.login().await.unwrap();
    // Discovery fetched the key set once; the cache serves the second login.
    fx.login().await.unwrap();
    assert_eq!(fx.idp.jwks_fetches(), 1);

    // The provider rotates: rsa-1 is gone, rsa-2 signs.
    fx.idp.publish(&[Jwk::Rsa2, Jwk::Ec]);
    fx.idp.plan(Plan {
        signer: Signer::Rsa2,
        ..Plan::default()
    });
    assert_eq!(fx.login().await.unwrap().subject, "user-1");
    assert_eq!(fx.idp.jwks_fetches(), 2);
    // The refreshed set is cached.
    fx.login().await.unwrap();
    assert_eq!(fx.idp.jwks_fetches(), 2);
}

#[tokio::test]
async fn an_unknown_kid_is_refused_after_one_refetch() {
    let fx = fx().await;
    let err = fx
        .refused_with(Plan {
            signer: Signer::Rsa2,
            ..Plan::default()
        })
        .await;
    assert!(id_token_error(&err).contains("No matching key"), "{err}");
    assert_eq!(fx.idp.jwks_fetches(), 2);
}

#[tokio::test]
async fn alg_none_is_refused() {
    let fx = fx().await;
    let err = fx
        .refused_with(Plan {
            signer: Signer::None,
            ..Plan::default()
        })
        .await;
    assert!(id_token_error(&err).contains("No signature"), "{err}");
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let fx = fx().await;
    let err = fx
        .refused_with(Plan {
            signer: Signer::Hs256WithRsaPublicKey,
            ..Plan::default()
        })
        .await;
    assert!(
        id_token_error(&err).contains("Disallowed signature algorithm"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unverified_email_is_refused() {
    let fx = fx().await;
    for verified in [json!(false), json!(null), json!("true")] {
        let err = fx
            .refused_with(Plan {
                email_verified: verified.clone(),
                ..Plan::default()
            })
            .await;
        assert!(
            matches!(&err, Error::EmailNotVerified(email) if email == "ada@acme.com")
                // A string where a boolean belongs does not parse at all.
                || (verified.is_string() && matches!(err, Error::TokenExchange(_))),
            "{verified}: {err}"
        );
    }
}

#[tokio::test]
async fn a_missing_email_is_refused() {
    let fx = fx().await;
    let err = fx
        .refused_with(Plan {
            email: None,
            ..Plan::default()
        })
        .await;
    assert!(matches!(err, Error::MissingEmail), "{err}");
}

#[tokio::test]
async fn an_email_outside_the_allowed_domains_is_refused() {
    let fx = fx().await;
    for email in ["ada@evil.com", "ada@sub.acme.com", "ada@acme.com.evil.com"] {
        let err = fx
            .refused_with(Plan {
                email: Some(email.into()),
                ..Plan::default()
            })
            .await;
        assert!(
            matches!(&err, Error::DomainNotAllowed { org, .. } if *org == fx.org),
            "{email}: {err}"
        );
    }
}

#[tokio::test]
async fn without_domain_enforcement_any_verified_email_signs_in() {
    let fx = fx_with(|config| config.enforce_domain(false)).await;
    fx.idp.plan(Plan {
        email: Some("ada@elsewhere.org".into()),
        ..Plan::default()
    });
    assert_eq!(fx.login().await.unwrap().email, "ada@elsewhere.org");
}

#[tokio::test]
async fn a_replayed_state_is_refused() {
    let fx = fx().await;
    let started = fx.sso.start(fx.org, REDIRECT).await.unwrap();
    let code = fx.idp.authorize(&started.url);
    fx.sso.callback(&started.state, &code).await.unwrap();
    let requests = fx.idp.token_requests();
    let err = fx.sso.callback(&started.state, &code).await.unwrap_err();
    assert!(matches!(err, Error::UnknownState), "{err}");
    // Refused before reaching the provider.
    assert_eq!(fx.idp.token_requests(), requests);
    let err = fx.sso.callback("made-up", &code).await.unwrap_err();
    assert!(matches!(err, Error::UnknownState), "{err}");
}

#[tokio::test]
async fn an_expired_pending_login_is_refused() {
    let fx = fx().await;
    let started = fx.sso.start(fx.org, REDIRECT).await.unwrap();
    let code = fx.idp.authorize(&started.url);
    fx.clock.advance(Duration::from_secs(10 * 60));
    let err = fx.sso.callback(&started.state, &code).await.unwrap_err();
    assert!(
        matches!(err, Error::ExpiredState { org } if org == fx.org),
        "{err}"
    );
    assert_eq!(fx.idp.token_requests(), 0);
    // Taken: expired once, unknown after.
    let err = fx.sso.callback(&started.state, &code).await.unwrap_err();
    assert!(matches!(err, Error::UnknownState), "{err}");
}

#[tokio::test]
async fn a_login_just_inside_ten_minutes_passes() {
    let fx = fx().await;
    let started = fx.sso.start(fx.org, REDIRECT).await.unwrap();
    let code = fx.idp.authorize(&started.url);
    fx.clock.advance(Duration::from_secs(10 * 60 - 1));
    fx.sso.callback(&started.state, &code).await.unwrap();
}

#[tokio::test]
async fn a_wrong_client_secret_fails_the_exchange_without_leaking_it() {
    let fx = fx().await;
    // The org's settings name the stand-in with a secret it does not know.
    fx.sso
        .configure(
            fx.org,
            NewSsoConfig::new(&fx.idp.issuer, CLIENT_ID, "not-the-secret"),
        )
        .await
        .unwrap();
    let err = fx.login().await.unwrap_err();
    assert!(matches!(err, Error::TokenExchange(_)), "{err}");
    assert!(err.to_string().contains("invalid_client"), "{err}");
    assert!(!format!("{err} {err:?}").contains("not-the-secret"));
}

#[tokio::test]
async fn an_org_without_settings_cannot_start() {
    let fx = fx().await;
    let other = Uuid::new_v4();
    let err = fx.sso.start(other, REDIRECT).await.unwrap_err();
    assert!(err.is_not_configured(), "{err}");
    let err = fx.sso.start(fx.org, "not a url").await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
}

#[tokio::test]
async fn expired_pending_logins_are_purged() {
    let fx = fx().await;
    fx.sso.start(fx.org, REDIRECT).await.unwrap();
    fx.clock.advance(Duration::from_secs(5 * 60));
    let fresh = fx.sso.start(fx.org, REDIRECT).await.unwrap();
    fx.clock.advance(Duration::from_secs(5 * 60));
    assert_eq!(fx.sso.purge_expired().await.unwrap(), 1);
    let code = fx.idp.authorize(&fresh.url);
    fx.sso.callback(&fresh.state, &code).await.unwrap();
}
