//! An OpenID provider stand-in on 127.0.0.1, shared by the API and the browser tests:
//! discovery, its RS256 key (the SSO crate's test key), a token endpoint answering an ID
//! token for a code it issued, and a sign-in page: `GET /authorize` shows "Sign in to the
//! test provider as <email>" for the identity the test chose, and its link (`GET /login`)
//! sends the browser back to the client's `redirect_uri` with a code and the `state`.
//!
//! Each test binary uses part of it (the API tests hand codes out directly through
//! [`Idp::authorize`], the browser tests go through the page).
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use http::{StatusCode, header};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parking_lot::Mutex;
use serde_json::{Value, json};
use url::Url;
use uuid::Uuid;

/// The client registered at the provider.
pub(crate) const CLIENT_ID: &str = "appforge";
/// The client's secret at the provider.
pub(crate) const CLIENT_SECRET: &str = "idp-client-secret";

// The signing key of the SSO crate's own tests.
const RSA1: &str = include_str!("../../../../crates/appforge-sso/tests/fixtures/rsa1.pem");
const RSA1_JWK: &str = include_str!("../../../../crates/appforge-sso/tests/fixtures/rsa1.jwk.json");

/// Who the provider says signed in, for a code it issued.
#[derive(Debug, Clone)]
struct Issued {
    nonce: String,
    subject: String,
    email: String,
}

/// Who signs in on the provider's page: the subject and email.
type Identity = (String, String);

#[derive(Clone)]
struct IdpState {
    issuer: String,
    redirect_uri: String,
    codes: Arc<Mutex<HashMap<String, Issued>>>,
    identity: Arc<Mutex<Option<Identity>>>,
}

impl IdpState {
    /// The query of an authorization request, checked as a provider checks it: the
    /// registered client and redirect URI, the code flow, a state and a nonce.
    fn authorization(&self, query: &str) -> Result<HashMap<String, String>, String> {
        let query: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let field = |name: &str| query.get(name).map(String::as_str).unwrap_or_default();
        if field("client_id") != CLIENT_ID {
            return Err(format!("unknown client_id {:?}", field("client_id")));
        }
        if field("redirect_uri") != self.redirect_uri {
            return Err(format!(
                "redirect_uri {:?} is not the registered {:?}",
                field("redirect_uri"),
                self.redirect_uri
            ));
        }
        if field("response_type") != "code" {
            return Err(format!("response_type {:?}", field("response_type")));
        }
        if field("state").is_empty() || field("nonce").is_empty() {
            return Err("no state or nonce".to_owned());
        }
        Ok(query)
    }

    /// A new code for `subject` (`email`) with the nonce of the authorization request.
    fn issue(&self, query: &HashMap<String, String>, subject: &str, email: &str) -> String {
        let code = format!("code-{}", Uuid::new_v4().simple());
        self.codes.lock().insert(
            code.clone(),
            Issued {
                nonce: query["nonce"].clone(),
                subject: subject.into(),
                email: email.into(),
            },
        );
        code
    }
}

/// The provider stand-in, stopped on drop.
pub(crate) struct Idp {
    /// Its issuer URL, `http://127.0.0.1:<port>`.
    pub(crate) issuer: String,
    state: IdpState,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Idp {
    /// Starts the provider with the client [`CLIENT_ID`] registered to return to
    /// `<public_url>/auth/sso/callback`.
    pub(crate) async fn start(public_url: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let state = IdpState {
            issuer: issuer.clone(),
            redirect_uri: format!("{public_url}/auth/sso/callback"),
            codes: Arc::new(Mutex::new(HashMap::new())),
            identity: Arc::new(Mutex::new(None)),
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize_page))
            .route("/login", get(login))
            .route("/token", post(token))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            issuer,
            state,
            server,
        }
    }

    /// The identity the provider's sign-in page signs in: `subject` with `email`.
    pub(crate) fn sign_in_as(&self, subject: &str, email: &str) {
        *self.state.identity.lock() = Some((subject.into(), email.into()));
    }

    /// The provider's side of the browser's visit to `url`: `subject` (with `email`) signs
    /// in; the code to send back.
    pub(crate) fn authorize(&self, url: &str, subject: &str, email: &str) -> String {
        let url = Url::parse(url).unwrap();
        assert!(
            url.as_str()
                .starts_with(&format!("{}/authorize?", self.issuer)),
            "{url}"
        );
        let query = self
            .state
            .authorization(url.query().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        self.state.issue(&query, subject, email)
    }
}

async fn discovery(State(state): State<IdpState>) -> Response {
    let issuer = &state.issuer;
    axum::Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
    }))
    .into_response()
}

async fn jwks() -> Response {
    let key: Value = serde_json::from_str(RSA1_JWK).unwrap();
    axum::Json(json!({ "keys": [key] })).into_response()
}

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET /authorize?...`: the provider's sign-in page for the identity the test chose, with
/// a link that continues the same authorization request at `/login`.
async fn authorize_page(State(state): State<IdpState>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    if let Err(refusal) = state.authorization(&query) {
        return (StatusCode::BAD_REQUEST, refusal).into_response();
    }
    let Some((_, email)) = state.identity.lock().clone() else {
        return (
            StatusCode::CONFLICT,
            "no identity to sign in (Idp::sign_in_as)",
        )
            .into_response();
    };
    let email = escape(&email);
    let login = escape(&format!("/login?{query}"));
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <link rel=\"icon\" href=\"data:,\"><title>Test provider</title></head>\
         <body><main><h1 id=\"idp-title\">Sign in to the test provider as {email}</h1>\
         <p><a id=\"idp-continue\" href=\"{login}\">Continue as {email}</a></p></main></body></html>"
    ))
    .into_response()
}

/// `GET /login?...` (the sign-in page's link): a code for the chosen identity, and a 302
/// back to the client's `redirect_uri` with the code and the `state`.
async fn login(State(state): State<IdpState>, RawQuery(query): RawQuery) -> Response {
    let query = match state.authorization(&query.unwrap_or_default()) {
        Ok(query) => query,
        Err(refusal) => return (StatusCode::BAD_REQUEST, refusal).into_response(),
    };
    let Some((subject, email)) = state.identity.lock().clone() else {
        return (
            StatusCode::CONFLICT,
            "no identity to sign in (Idp::sign_in_as)",
        )
            .into_response();
    };
    let code = state.issue(&query, &subject, &email);
    let mut back = Url::parse(&query["redirect_uri"]).unwrap();
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &query["state"]);
    (StatusCode::FOUND, [(header::LOCATION, back.to_string())]).into_response()
}

async fn token(State(state): State<IdpState>, body: String) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let issued = form
        .get("code")
        .and_then(|code| state.codes.lock().remove(code));
    let Some(issued) = issued.filter(|_| form.contains_key("code_verifier")) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": "invalid_grant" })),
        )
            .into_response();
    };
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": state.issuer,
        "sub": issued.subject,
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 300,
        "nonce": issued.nonce,
        "email": issued.email,
        "email_verified": true,
        "name": "Ada Lovelace",
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    let key = EncodingKey::from_rsa_pem(RSA1.as_bytes()).unwrap();
    let id_token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    axum::Json(json!({
        "access_token": "access-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
    .into_response()
}
