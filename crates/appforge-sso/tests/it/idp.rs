//! An OpenID provider stand-in on 127.0.0.1: discovery, a JWKS endpoint serving test RSA and
//! EC P-256 keys, and a token endpoint that checks the client, the code and the PKCE verifier
//! and returns an ID token made as the test planned it.

use std::collections::HashMap;
use std::sync::Arc;

use appforge_core::{Clock, ManualClock};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parking_lot::Mutex;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

pub(crate) const CLIENT_ID: &str = "appforge";
pub(crate) const CLIENT_SECRET: &str = "idp-client-secret";

const RSA1: &str = include_str!("../fixtures/rsa1.pem");
const RSA1_PUBLIC: &str = include_str!("../fixtures/rsa1.pub.pem");
const RSA2: &str = include_str!("../fixtures/rsa2.pem");
const EC: &str = include_str!("../fixtures/ec.pem");

/// A key the stand-in can sign with (or a forgery it can produce).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signer {
    /// RS256 with `rsa-1`.
    Rsa1,
    /// RS256 with `rsa-2` (the key after rotation).
    Rsa2,
    /// ES256 with `ec-1`.
    Ec,
    /// `alg: none`, no signature.
    None,
    /// HS256 keyed with the PEM of `rsa-1`'s public key (the algorithm confusion attack).
    Hs256WithRsaPublicKey,
}

/// The published keys.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Jwk {
    Rsa1,
    Rsa2,
    Ec,
}

fn jwk(key: Jwk) -> Value {
    let text = match key {
        Jwk::Rsa1 => include_str!("../fixtures/rsa1.jwk.json"),
        Jwk::Rsa2 => include_str!("../fixtures/rsa2.jwk.json"),
        Jwk::Ec => include_str!("../fixtures/ec.jwk.json"),
    };
    serde_json::from_str(text).unwrap()
}

/// How the next ID token is made. The defaults make a valid token.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) signer: Signer,
    /// The `kid` header; by default the signer's.
    pub(crate) kid: Option<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) aud: Option<String>,
    pub(crate) iss: Option<String>,
    /// Seconds from now to `exp`.
    pub(crate) expires_in: i64,
    pub(crate) email: Option<String>,
    pub(crate) email_verified: Value,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            signer: Signer::Rsa1,
            kid: None,
            nonce: None,
            aud: None,
            iss: None,
            expires_in: 300,
            email: Some("ada@acme.com".into()),
            email_verified: json!(true),
        }
    }
}

#[derive(Debug)]
struct Issued {
    nonce: String,
    challenge: String,
    redirect_uri: String,
}

#[derive(Debug, Default)]
struct Shared {
    jwks: Vec<Value>,
    jwks_fetches: usize,
    codes: HashMap<String, Issued>,
    plan: Plan,
    token_requests: usize,
}

#[derive(Clone)]
struct AppState {
    issuer: String,
    clock: ManualClock,
    shared: Arc<Mutex<Shared>>,
}

/// The running stand-in.
pub(crate) struct Idp {
    pub(crate) issuer: String,
    shared: Arc<Mutex<Shared>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Idp {
    /// A provider serving `rsa-1` and `ec-1`, reading `clock`.
    pub(crate) async fn start(clock: ManualClock) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Mutex::new(Shared {
            jwks: vec![jwk(Jwk::Rsa1), jwk(Jwk::Ec)],
            ..Shared::default()
        }));
        let state = AppState {
            issuer: issuer.clone(),
            clock,
            shared: shared.clone(),
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/token", post(token))
            .with_state(state);
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            issuer,
            shared,
            server,
        }
    }

    /// Publishes exactly `keys` from now on.
    pub(crate) fn publish(&self, keys: &[Jwk]) {
        self.shared.lock().jwks = keys.iter().map(|key| jwk(*key)).collect();
    }

    /// How the next ID tokens are made.
    pub(crate) fn plan(&self, plan: Plan) {
        self.shared.lock().plan = plan;
    }

    /// How many times the key set was fetched.
    pub(crate) fn jwks_fetches(&self) -> usize {
        self.shared.lock().jwks_fetches
    }

    /// How many code exchanges were attempted.
    pub(crate) fn token_requests(&self) -> usize {
        self.shared.lock().token_requests
    }

    /// What the provider does when the browser arrives at `url`: checks the request (client,
    /// scope, PKCE S256) and issues a code bound to its nonce, challenge and redirect URI.
    pub(crate) fn authorize(&self, url: &Url) -> String {
        assert!(
            url.as_str()
                .starts_with(&format!("{}/authorize?", self.issuer))
        );
        let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(query["response_type"], "code");
        assert_eq!(query["client_id"], CLIENT_ID);
        assert_eq!(query["code_challenge_method"], "S256");
        let scopes: Vec<&str> = query["scope"].split(' ').collect();
        for scope in ["openid", "email", "profile"] {
            assert!(scopes.contains(&scope), "scope {scope} missing: {scopes:?}");
        }
        assert!(query["state"].len() >= 22 && query["nonce"].len() >= 22);
        let code = format!("code-{}", uuid::Uuid::new_v4().simple());
        self.shared.lock().codes.insert(
            code.clone(),
            Issued {
                nonce: query["nonce"].clone(),
                challenge: query["code_challenge"].clone(),
                redirect_uri: query["redirect_uri"].clone(),
            },
        );
        code
    }
}

async fn discovery(State(state): State<AppState>) -> Response {
    let issuer = &state.issuer;
    axum::Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "code_challenge_methods_supported": ["S256"],
    }))
    .into_response()
}

async fn jwks(State(state): State<AppState>) -> Response {
    let mut shared = state.shared.lock();
    shared.jwks_fetches += 1;
    axum::Json(json!({ "keys": shared.jwks })).into_response()
}

fn oauth_error(code: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "error": code })),
    )
        .into_response()
}

async fn token(State(state): State<AppState>, headers: HeaderMap, body: String) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let expected_auth = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let mut shared = state.shared.lock();
    shared.token_requests += 1;
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&expected_auth) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({ "error": "invalid_client" })),
        )
            .into_response();
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return oauth_error("unsupported_grant_type");
    }
    let Some(issued) = form.get("code").and_then(|code| shared.codes.remove(code)) else {
        return oauth_error("invalid_grant");
    };
    if form.get("redirect_uri") != Some(&issued.redirect_uri) {
        return oauth_error("invalid_grant");
    }
    let Some(verifier) = form.get("code_verifier") else {
        return oauth_error("invalid_request");
    };
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != issued.challenge {
        return oauth_error("invalid_grant");
    }

    let plan = shared.plan.clone();
    drop(shared);
    let now = state.clock.now().timestamp();
    let mut claims = json!({
        "iss": plan.iss.unwrap_or(state.issuer.clone()),
        "sub": "user-1",
        "aud": plan.aud.unwrap_or(CLIENT_ID.into()),
        "iat": now,
        "exp": now + plan.expires_in,
        "nonce": plan.nonce.unwrap_or(issued.nonce),
        "email_verified": plan.email_verified,
        "name": "Ada Lovelace",
    });
    if let Some(email) = plan.email {
        claims["email"] = json!(email);
    }
    let id_token = sign(plan.signer, plan.kid, &claims);
    axum::Json(json!({
        "access_token": "access-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
    .into_response()
}

fn sign(signer: Signer, kid: Option<String>, claims: &Value) -> String {
    let (alg, key, default_kid) = match signer {
        Signer::Rsa1 => (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(RSA1.as_bytes()).unwrap(),
            "rsa-1",
        ),
        Signer::Rsa2 => (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(RSA2.as_bytes()).unwrap(),
            "rsa-2",
        ),
        Signer::Ec => (
            Algorithm::ES256,
            EncodingKey::from_ec_pem(EC.as_bytes()).unwrap(),
            "ec-1",
        ),
        Signer::Hs256WithRsaPublicKey => (
            Algorithm::HS256,
            EncodingKey::from_secret(RSA1_PUBLIC.as_bytes()),
            "rsa-1",
        ),
        Signer::None => {
            let header =
                json!({ "alg": "none", "typ": "JWT", "kid": kid.unwrap_or("rsa-1".into()) });
            return format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
        }
    };
    let mut header = Header::new(alg);
    header.kid = Some(kid.unwrap_or(default_kid.into()));
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}
