//! Single sign-on and SCIM over HTTP against an OpenID provider stand-in on 127.0.0.1 (no
//! test reaches the internet): a login provisions its user once with the org's default
//! role, a replayed state and an email outside the org's domains are refused, and SCIM
//! creates, finds and deactivates users (whose org access ends at once).

use appforge_orgs::{AuditQuery, AuditRange, Caller, NewOrg, OrgStore as _, Role};
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use url::Url;
use uuid::Uuid;

use crate::support::{Db, Options, TestServer};

/// The OpenID provider stand-in, shared with the browser tests.
#[path = "../support/idp.rs"]
mod idp;

use idp::{CLIENT_ID, CLIENT_SECRET, Idp};

/// A secrets key (32 bytes of 7, base64).
const SECRETS_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
const PUBLIC_URL: &str = "https://app.example.com";

/// A server with SSO on, an org (owned by `owner`) whose provider is the stand-in,
/// allowing `acme.com` only, new users joining as viewers.
struct Fx {
    server: TestServer,
    idp: Idp,
    org: Uuid,
    slug: String,
    owner: Uuid,
}

async fn fx(db: Db) -> Fx {
    let idp = Idp::start(PUBLIC_URL).await;
    let server = TestServer::start(
        db,
        Options {
            env: vec![
                ("APPFORGE_SECRETS_KEY", SECRETS_KEY.into()),
                ("APPFORGE_PUBLIC_URL", PUBLIC_URL.into()),
            ],
            ..Options::api_only()
        },
    )
    .await;
    let owner = Uuid::new_v4();
    let slug = format!("acme-{}", &Uuid::new_v4().simple().to_string()[..10]);
    let org = server
        .state
        .orgs()
        .create_org(&Caller::user(owner), NewOrg::new("Acme", slug.clone()))
        .await
        .unwrap()
        .id;
    let (status, answer) = send(
        &server,
        "PUT",
        &format!("/api/orgs/{org}/sso"),
        Some(&server.token(owner)),
        Some(json!({
            "issuer": idp.issuer,
            "clientId": CLIENT_ID,
            "clientSecret": CLIENT_SECRET,
            "allowedDomains": ["acme.com"],
            "defaultRole": "viewer",
            "enforceDomain": true,
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(!answer.to_string().contains(CLIENT_SECRET), "{answer}");
    Fx {
        server,
        idp,
        org,
        slug,
        owner,
    }
}

/// Sends a request (a JSON body as `application/scim+json` on `/scim`); the status and the
/// body (JSON, or the `Location` header as a string when there is no body).
async fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (status, headers, value) = send_full(server, method, path, token, body).await;
    match headers.get("location") {
        Some(location) if value.is_null() => {
            (status, Value::String(location.to_str().unwrap().to_owned()))
        }
        _ => (status, value),
    }
}

async fn send_full(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, http::HeaderMap, Value) {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let request = match body {
        Some(body) => {
            let media = if path.starts_with("/scim") {
                "application/scim+json"
            } else {
                "application/json"
            };
            builder
                .header("content-type", media)
                .body(Body::from(body.to_string()))
                .unwrap()
        }
        None => builder.body(Body::empty()).unwrap(),
    };
    let response = server.send(request).await;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, value)
}

impl Fx {
    /// Starts a login, has `subject` (`email`) sign in at the provider, and sends the
    /// browser back: the callback's status and body (the token on success).
    async fn login(&self, subject: &str, email: &str) -> (StatusCode, Value) {
        let (state, code) = self.authorized(subject, email).await;
        self.callback(&state, &code).await
    }

    /// Start and the provider's authorization: the state and code for the callback.
    async fn authorized(&self, subject: &str, email: &str) -> (String, String) {
        let (status, location) = send(
            &self.server,
            "GET",
            &format!("/auth/sso/start?org={}", self.slug),
            None,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::FOUND, "{location}");
        let url = location.as_str().unwrap();
        let state = Url::parse(url)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .into_owned();
        (state, self.idp.authorize(url, subject, email))
    }

    async fn callback(&self, state: &str, code: &str) -> (StatusCode, Value) {
        let (status, answer) = send(
            &self.server,
            "GET",
            &format!("/auth/sso/callback?state={state}&code={code}"),
            None,
            None,
        )
        .await;
        if status != StatusCode::SEE_OTHER {
            return (status, answer);
        }
        let location = answer.as_str().unwrap();
        let token = location
            .strip_prefix("/#token=")
            .unwrap_or_else(|| panic!("redirect to {location}"));
        (status, Value::String(token.to_owned()))
    }

    fn user_of(&self, token: &str) -> Uuid {
        let claims = self.server.state.jwt().verify(token).unwrap();
        assert_eq!(claims.sso_org, Some(self.org));
        claims.sub
    }

    async fn audit_actions(&self) -> Vec<String> {
        self.server
            .state
            .orgs()
            .store()
            .audit_page(self.org, &AuditQuery::new(AuditRange::all(), 1000))
            .await
            .unwrap()
            .into_iter()
            .map(|entry| entry.action)
            .collect()
    }

    async fn role_of(&self, user: Uuid) -> Option<Role> {
        self.server
            .state
            .orgs()
            .store()
            .member(self.org, user)
            .await
            .unwrap()
            .map(|m| m.role)
    }
}

/// start → the provider → callback: the token works on the org as a member with the
/// default role; a second login is the same user and provisions nothing more; members of
/// the org's domain need such a token; it renews through `/auth/refresh`.
pub(crate) async fn a_login_provisions_the_member_once(db: Db) {
    let fx = fx(db).await;
    let (status, token) = fx.login("ada-sub", "ada@acme.com").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{token}");
    let token = token.as_str().unwrap().to_owned();
    let user = fx.user_of(&token);
    assert_eq!(fx.role_of(user).await, Some(Role::Viewer));

    let (status, org) = send(
        &fx.server,
        "GET",
        &format!("/api/orgs/{}", fx.org),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{org}");
    assert_eq!(org["id"], json!(fx.org));
    // A viewer cannot read the SSO settings.
    let (status, _) = send(
        &fx.server,
        "GET",
        &format!("/api/orgs/{}/sso", fx.org),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let provisions = |actions: &[String]| actions.iter().filter(|a| *a == "sso.provision").count();
    assert_eq!(provisions(&fx.audit_actions().await), 1);
    let (status, again) = fx.login("ada-sub", "ada@acme.com").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(fx.user_of(again.as_str().unwrap()), user);
    assert_eq!(provisions(&fx.audit_actions().await), 1);

    // The org enforces its domain: a member of acme.com with another token is refused, on
    // the org's routes and its space; an outsider is still 404, an owner keeps access.
    let carol = Uuid::new_v4();
    fx.server
        .state
        .orgs()
        .add_member(&Caller::user(fx.owner), fx.org, carol, Role::Member)
        .await
        .unwrap();
    let acme = |user: Uuid, email: &str| {
        fx.server
            .state
            .jwt()
            .issue(user, Some(email), std::time::Duration::from_secs(600))
    };
    for path in [
        format!("/api/orgs/{}", fx.org),
        format!("/api/orgs/{}/apps", fx.org),
    ] {
        let (status, answer) = send(
            &fx.server,
            "GET",
            &path,
            Some(&acme(carol, "carol@acme.com")),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {answer}");
        assert_eq!(answer["error"], "sso_required");
        let (status, _) = send(
            &fx.server,
            "GET",
            &path,
            Some(&acme(carol, "carol@other.com")),
            None,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{path}: another domain is not enforced"
        );
        let (status, _) = send(
            &fx.server,
            "GET",
            &path,
            Some(&acme(Uuid::new_v4(), "dan@acme.com")),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        let (status, _) = send(
            &fx.server,
            "GET",
            &path,
            Some(&acme(fx.owner, "boss@acme.com")),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }

    let (status, renewed) = send(&fx.server, "POST", "/auth/refresh", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let renewed = renewed["token"].as_str().unwrap();
    assert_eq!(fx.user_of(renewed), user);
    // A token not from a single sign-on is not renewed here.
    let (status, answer) = send(
        &fx.server,
        "POST",
        "/auth/refresh",
        Some(&fx.server.token(fx.owner)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(answer["error"], "refresh_unavailable");
}

/// The settings are read without the secret; a callback's state works once; an email
/// outside the org's domains is refused and joins nothing.
pub(crate) async fn replays_and_foreign_domains_are_refused(db: Db) {
    let fx = fx(db).await;
    let (status, settings) = send(
        &fx.server,
        "GET",
        &format!("/api/orgs/{}/sso", fx.org),
        Some(&fx.server.token(fx.owner)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(settings["sso"]["issuer"], json!(fx.idp.issuer));
    assert_eq!(settings["sso"]["enforceDomain"], json!(true));
    assert!(!settings.to_string().contains(CLIENT_SECRET));

    let (state, code) = fx.authorized("ada-sub", "ada@acme.com").await;
    assert_eq!(fx.callback(&state, &code).await.0, StatusCode::SEE_OTHER);
    let (status, answer) = fx.callback(&state, &code).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["error"], "sso_refused");

    let (status, answer) = fx.login("eve-sub", "eve@evil.com").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["error"], "sso_refused");
    let eve = appforge_server::sso::user_id(&fx.idp.issuer, "eve-sub");
    assert_eq!(fx.role_of(eve).await, None);

    // The upkeep pass purges expired pending logins without an error.
    let report = appforge_server::maintenance::run(&fx.server.state).await;
    assert_eq!(report.errors, 0);
}

/// SCIM needs the org's token; creates a member with the default role, finds them by
/// `userName`; deactivation removes the membership: the user's next org request is 404
/// and they cannot sign in again.
pub(crate) async fn scim_provisions_and_deactivates(db: Db) {
    let fx = fx(db).await;
    let owner = fx.server.token(fx.owner);
    let (status, created) = send(
        &fx.server,
        "POST",
        &format!("/api/orgs/{}/scim-token", fx.org),
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let scim = created["token"].as_str().unwrap().to_owned();
    assert!(scim.starts_with("afs_"));

    let (status, answer) = send(&fx.server, "GET", "/scim/v2/Users", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer["status"], "401");
    let (status, _) = send(&fx.server, "GET", "/scim/v2/Users", Some(&owner), None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a user token is no SCIM token"
    );

    let (status, headers, bob) = send_full(
        &fx.server,
        "POST",
        "/scim/v2/Users",
        Some(&scim),
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "bob@acme.com",
            "externalId": "00u-bob",
            "emails": [{ "value": "bob@acme.com", "primary": true }],
            "active": true,
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{bob}");
    assert_eq!(headers["content-type"], "application/scim+json");
    let id: Uuid = bob["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(bob["meta"]["resourceType"], "User");
    assert_eq!(fx.role_of(id).await, Some(Role::Viewer));
    let (status, _) = send(
        &fx.server,
        "POST",
        "/scim/v2/Users",
        Some(&scim),
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "BOB@acme.com",
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let filter = "/scim/v2/Users?filter=userName%20eq%20%22bob%40acme.com%22";
    let (status, list) = send(&fx.server, "GET", filter, Some(&scim), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(list["totalResults"], 1);
    assert_eq!(list["Resources"][0]["id"], json!(id));
    let none = "/scim/v2/Users?filter=userName%20eq%20%22nobody%40acme.com%22";
    let (_, list) = send(&fx.server, "GET", none, Some(&scim), None).await;
    assert_eq!(list["totalResults"], 0);

    // Bob signs in: he is the SCIM user.
    let (status, token) = fx.login("bob-sub", "bob@acme.com").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{token}");
    let token = token.as_str().unwrap().to_owned();
    assert_eq!(fx.user_of(&token), id);
    let org_path = format!("/api/orgs/{}", fx.org);
    let (status, _) = send(&fx.server, "GET", &org_path, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);

    let (status, patched) = send(
        &fx.server,
        "PATCH",
        &format!("/scim/v2/Users/{id}"),
        Some(&scim),
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "replace", "path": "active", "value": false }],
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["active"], false);
    // The very next request with the still-unexpired token.
    let (status, _) = send(&fx.server, "GET", &org_path, Some(&token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, answer) = send(&fx.server, "POST", "/auth/refresh", Some(&token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let (status, answer) = fx.login("bob-sub", "bob@acme.com").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(answer["error"], "sso_deactivated");

    let (status, _) = send(
        &fx.server,
        "DELETE",
        &format!("/scim/v2/Users/{id}"),
        Some(&scim),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, answer) = send(
        &fx.server,
        "GET",
        &format!("/scim/v2/Users/{id}"),
        Some(&scim),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(answer["status"], "404");
}

/// Without `APPFORGE_SECRETS_KEY` the SSO and SCIM routes answer 503.
pub(crate) async fn without_a_secrets_key_sso_is_unavailable(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let owner = Uuid::new_v4();
    let org = server
        .state
        .orgs()
        .create_org(&Caller::user(owner), NewOrg::new("Acme", "acme-nokey"))
        .await
        .unwrap()
        .id;
    let token = server.token(owner);
    for (method, path) in [
        ("GET", format!("/api/orgs/{org}/sso")),
        ("POST", format!("/api/orgs/{org}/scim-token")),
        ("GET", "/auth/sso/start?org=acme-nokey".to_owned()),
        ("GET", "/scim/v2/Users".to_owned()),
        ("GET", "/scim/v2/ServiceProviderConfig".to_owned()),
        ("GET", "/scim/v2/ResourceTypes".to_owned()),
    ] {
        let (status, answer) = send(&server, method, &path, Some(&token), None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{method} {path}");
        assert_eq!(answer["error"], "sso_unavailable", "{method} {path}");
    }
}

/// The org's SCIM token, created by its owner.
async fn scim_token(fx: &Fx) -> String {
    let (status, created) = send(
        &fx.server,
        "POST",
        &format!("/api/orgs/{}/scim-token", fx.org),
        Some(&fx.server.token(fx.owner)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["token"].as_str().unwrap().to_owned()
}

/// Provisions an active `user_name` through SCIM: its id.
async fn provision(fx: &Fx, scim: &str, user_name: &str) -> Uuid {
    let (status, user) = send(
        &fx.server,
        "POST",
        "/scim/v2/Users",
        Some(scim),
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name,
            "externalId": format!("00u-{user_name}"),
            "emails": [{ "value": user_name, "primary": true }],
            "active": true,
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    user["id"].as_str().unwrap().parse().unwrap()
}

/// `ServiceProviderConfig` and `ResourceTypes` answer without a token (as Okta's and
/// Entra ID's clients read them): `PATCH` supported, the filter's `maxResults` the list's
/// page size, the SCIM token as the one (OAuth bearer) scheme, `User` the one resource.
pub(crate) async fn scim_discovery_answers_without_a_token(db: Db) {
    let fx = fx(db).await;
    let (status, headers, config) = send_full(
        &fx.server,
        "GET",
        "/scim/v2/ServiceProviderConfig",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{config}");
    assert_eq!(headers["content-type"], "application/scim+json");
    assert_eq!(
        config["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"])
    );
    assert_eq!(config["patch"]["supported"], true);
    assert_eq!(config["bulk"]["supported"], false);
    assert_eq!(config["filter"]["supported"], true);
    // The most users `GET /scim/v2/Users` answers in one page.
    assert_eq!(config["filter"]["maxResults"], 200);
    for unsupported in ["changePassword", "sort", "etag"] {
        assert_eq!(config[unsupported]["supported"], false, "{unsupported}");
    }
    let schemes = config["authenticationSchemes"].as_array().unwrap();
    assert_eq!(schemes.len(), 1, "{config}");
    assert_eq!(schemes[0]["type"], "oauthbearertoken");
    assert_eq!(schemes[0]["primary"], true);
    assert!(schemes[0]["name"].as_str().is_some_and(|n| !n.is_empty()));
    assert!(
        schemes[0]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );

    let (status, headers, types) =
        send_full(&fx.server, "GET", "/scim/v2/ResourceTypes", None, None).await;
    assert_eq!(status, StatusCode::OK, "{types}");
    assert_eq!(headers["content-type"], "application/scim+json");
    assert_eq!(
        types["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(types["totalResults"], 1);
    let user = &types["Resources"][0];
    assert_eq!(
        user["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:ResourceType"])
    );
    assert_eq!(user["id"], "User");
    assert_eq!(user["name"], "User");
    assert_eq!(user["endpoint"], "/Users");
    assert_eq!(user["schema"], "urn:ietf:params:scim:schemas:core:2.0:User");

    // The users themselves still need the token.
    let (status, _) = send(&fx.server, "GET", "/scim/v2/Users", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// `PUT` replaces a user (as Okta sends profile changes) and keeps its id and membership;
/// a `PUT` with `active: false` ends the membership at once, as `PATCH` does: the user's
/// next org request is 404. `active: true` restores it with the default role, and the old
/// `userName` can be provisioned again as another user.
pub(crate) async fn scim_put_replaces_and_deactivates(db: Db) {
    let fx = fx(db).await;
    let scim = scim_token(&fx).await;
    let id = provision(&fx, &scim, "ada@acme.com").await;
    let (status, token) = fx.login("ada-sub", "ada@acme.com").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{token}");
    let token = token.as_str().unwrap().to_owned();
    assert_eq!(fx.user_of(&token), id);
    let org_path = format!("/api/orgs/{}", fx.org);
    let (status, _) = send(&fx.server, "GET", &org_path, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);

    let user_path = format!("/scim/v2/Users/{id}");
    let renamed = |active: bool| {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": id,
            "userName": "ada.lovelace@acme.com",
            "name": { "givenName": "Ada", "familyName": "Lovelace" },
            "displayName": "Ada Lovelace",
            "emails": [{ "value": "ada.lovelace@acme.com", "primary": true, "type": "work" }],
            "active": active,
        })
    };
    let (status, headers, put) = send_full(
        &fx.server,
        "PUT",
        &user_path,
        Some(&scim),
        Some(renamed(true)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(headers["content-type"], "application/scim+json");
    assert_eq!(put["id"], json!(id));
    assert_eq!(put["userName"], "ada.lovelace@acme.com");
    assert_eq!(put["displayName"], "Ada Lovelace");
    assert_eq!(put["active"], true);
    // A replacement: the externalId the body leaves out is gone.
    assert!(put.get("externalId").is_none(), "{put}");
    let (status, read) = send(&fx.server, "GET", &user_path, Some(&scim), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, put);
    assert_eq!(fx.role_of(id).await, Some(Role::Viewer));
    let (status, _) = send(&fx.server, "GET", &org_path, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "a rename keeps the membership");

    let (status, put) = send(
        &fx.server,
        "PUT",
        &user_path,
        Some(&scim),
        Some(renamed(false)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["active"], false);
    // The very next request with the still-unexpired token.
    let (status, _) = send(&fx.server, "GET", &org_path, Some(&token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(fx.role_of(id).await, None);
    let (status, answer) = send(&fx.server, "POST", "/auth/refresh", Some(&token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");

    let (status, put) = send(
        &fx.server,
        "PUT",
        &user_path,
        Some(&scim),
        Some(renamed(true)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["active"], true);
    assert_eq!(fx.role_of(id).await, Some(Role::Viewer));

    let again = provision(&fx, &scim, "ada@acme.com").await;
    assert_ne!(
        again, id,
        "the renamed user keeps their id; the new one gets another"
    );
    let (_, read) = send(&fx.server, "GET", &user_path, Some(&scim), None).await;
    assert_eq!(read["userName"], "ada.lovelace@acme.com");
}

/// `PUT` refuses a `userName` another user of the org has (`409 uniqueness`, in any case)
/// and an empty one (`400 invalidValue`), leaving the user as it was; the user's own name
/// in another case is no conflict.
pub(crate) async fn scim_put_refuses_a_taken_user_name(db: Db) {
    let fx = fx(db).await;
    let scim = scim_token(&fx).await;
    provision(&fx, &scim, "ada@acme.com").await;
    let bob = provision(&fx, &scim, "bob@acme.com").await;
    let bob_path = format!("/scim/v2/Users/{bob}");
    let named = |user_name: &str| {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name,
            "active": true,
        })
    };

    let (status, answer) = send(
        &fx.server,
        "PUT",
        &bob_path,
        Some(&scim),
        Some(named("ADA@acme.com")),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["status"], "409");
    assert_eq!(answer["scimType"], "uniqueness");

    let (status, answer) = send(&fx.server, "PUT", &bob_path, Some(&scim), Some(named("  "))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["scimType"], "invalidValue");

    let (_, read) = send(&fx.server, "GET", &bob_path, Some(&scim), None).await;
    assert_eq!(read["userName"], "bob@acme.com");
    assert_eq!(read["externalId"], "00u-bob@acme.com");

    let (status, answer) = send(
        &fx.server,
        "PUT",
        &bob_path,
        Some(&scim),
        Some(named("Bob@acme.com")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["userName"], "Bob@acme.com");
}

/// `PUT` on an id the org does not have is 404 (a SCIM error); without the token, 401.
pub(crate) async fn scim_put_on_an_unknown_id_is_404(db: Db) {
    let fx = fx(db).await;
    let scim = scim_token(&fx).await;
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ghost@acme.com",
        "active": true,
    });
    for id in [Uuid::new_v4().to_string(), "not-an-id".to_owned()] {
        let path = format!("/scim/v2/Users/{id}");
        let (status, answer) =
            send(&fx.server, "PUT", &path, Some(&scim), Some(body.clone())).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}: {answer}");
        assert_eq!(answer["status"], "404");
    }
    let (_, list) = send(&fx.server, "GET", "/scim/v2/Users", Some(&scim), None).await;
    assert_eq!(list["totalResults"], 0, "a PUT creates no user");
    let path = format!("/scim/v2/Users/{}", Uuid::new_v4());
    let (status, _) = send(&fx.server, "PUT", &path, None, Some(body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
