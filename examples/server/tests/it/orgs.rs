//! Team workspaces over HTTP: every org route for every kind of caller (the exact status,
//! derived from the crate's permission table, and the audit entry of each privileged call),
//! the last-owner rule, invitations (expiry, reuse, revocation, seats, mail), key revocation
//! and org deletion taking effect at once, and the audit log's verify and export.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use appforge_core::ManualClock;
use appforge_orgs::{
    Actor, AuditEntry, AuditQuery, AuditRange, Caller, NewApiKey, NewOrg, OrgStore, Role,
};
use appforge_server::ClientAddr;
use appforge_server::routes::{Access, ORG_ROUTES, OrgRoute, ROUTES, SPACE_ROUTES};
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Db, Options, TestServer};

/// The client address every request of these tests comes from.
pub(crate) const CLIENT_IP: &str = "10.1.2.3";
pub(crate) const USER_AGENT: &str = "orgs-test/1.0";

/// Who calls a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Who {
    Owner,
    Admin,
    Member,
    Viewer,
    /// A signed-in user who does not belong to the org.
    NonMember,
    /// An API key of the org with this role.
    Key(Role),
    /// An admin API key of another org.
    OtherOrgKey,
}

pub(crate) const EVERYONE: [Who; 8] = [
    Who::Owner,
    Who::Admin,
    Who::Member,
    Who::Viewer,
    Who::NonMember,
    Who::Key(Role::Admin),
    Who::Key(Role::Viewer),
    Who::OtherOrgKey,
];

impl Who {
    /// The caller's role in the org, `None` outside it.
    pub(crate) fn role(self) -> Option<Role> {
        match self {
            Self::Owner => Some(Role::Owner),
            Self::Admin => Some(Role::Admin),
            Self::Member => Some(Role::Member),
            Self::Viewer => Some(Role::Viewer),
            Self::Key(role) => Some(role),
            Self::NonMember | Self::OtherOrgKey => None,
        }
    }

    fn is_key(self) -> bool {
        matches!(self, Self::Key(_) | Self::OtherOrgKey)
    }
}

/// The status of a successful call of each org route. A route under `/api/orgs` or
/// `/api/invitations` without an entry here fails the table test.
fn success(route: &OrgRoute) -> Option<StatusCode> {
    Some(match (route.method, route.path) {
        (
            "post",
            "/api/orgs"
            | "/api/orgs/{org}/invitations"
            | "/api/orgs/{org}/api-keys"
            | "/api/orgs/{org}/scim-token",
        ) => StatusCode::CREATED,
        (
            "delete",
            "/api/orgs/{org}" | "/api/orgs/{org}/members/{user}" | "/api/orgs/{org}/sso",
        )
        | ("post", "/api/orgs/{org}/leave") => StatusCode::NO_CONTENT,
        (
            "get",
            "/api/orgs"
            | "/api/orgs/{org}"
            | "/api/orgs/{org}/members"
            | "/api/orgs/{org}/invitations"
            | "/api/orgs/{org}/api-keys"
            | "/api/orgs/{org}/audit"
            | "/api/orgs/{org}/audit/verify"
            | "/api/orgs/{org}/audit/export"
            | "/api/orgs/{org}/billing"
            | "/api/orgs/{org}/sso",
        )
        | ("patch", "/api/orgs/{org}" | "/api/orgs/{org}/members/{user}")
        | ("post", "/api/orgs/{org}/billing/checkout" | "/api/orgs/{org}/billing/portal")
        | ("put", "/api/orgs/{org}/seats" | "/api/orgs/{org}/sso")
        | ("delete", "/api/orgs/{org}/invitations/{id}" | "/api/orgs/{org}/api-keys/{id}")
        | ("post", "/api/invitations/{token}/accept") => StatusCode::OK,
        ("get" | "put", "/api/orgs/{org}/branding" | "/api/orgs/{org}/branding/logo")
        | ("delete", "/api/orgs/{org}/branding/logo") => StatusCode::OK,
        _ => return None,
    })
}

/// The status `who` gets from `route`, from the route's access and the crate's permission
/// table (`Role::can`), plus the org's own rules: the fixture's only owner cannot leave, and
/// a member cannot accept an invitation to an org they are in.
fn expected(route: &OrgRoute, who: Who) -> StatusCode {
    let success = success(route)
        .unwrap_or_else(|| panic!("no success status for {} {}", route.method, route.path));
    match route.access {
        Access::SignedIn => success,
        Access::User => {
            if who.is_key() {
                StatusCode::FORBIDDEN
            } else {
                success
            }
        }
        Access::Invitation => match who {
            _ if who.is_key() => StatusCode::FORBIDDEN,
            Who::NonMember => success,
            _ => StatusCode::CONFLICT,
        },
        Access::Org(permission) | Access::OrgUser(permission) => match who.role() {
            None => StatusCode::NOT_FOUND,
            Some(role) if !role.can(permission) => StatusCode::FORBIDDEN,
            Some(_) if who.is_key() && matches!(route.access, Access::OrgUser(_)) => {
                StatusCode::FORBIDDEN
            }
            Some(Role::Owner) if route.audit == Some("member.leave") => StatusCode::CONFLICT,
            Some(_) => success,
        },
        other => panic!("no rule for {other:?}: add it to `expected`"),
    }
}

/// An org with one member of each role, two spare members to act on, an open invitation,
/// keys of each tested role and a spare key, and a key of another org.
pub(crate) struct Fixture {
    pub(crate) org: Uuid,
    users: HashMap<&'static str, Uuid>,
    invitation: Uuid,
    invitation_token: String,
    keys: HashMap<Role, (Uuid, String)>,
    spare_key: Uuid,
    other_org_key: (Uuid, String),
}

impl Fixture {
    pub(crate) async fn new(server: &TestServer) -> Self {
        let orgs = server.state.orgs();
        let owner = Uuid::new_v4();
        let by_owner = Caller::user(owner);
        let slug = format!("org-{}", &Uuid::new_v4().simple().to_string()[..12]);
        let org = orgs
            .create_org(&by_owner, NewOrg::new("Acme", slug))
            .await
            .unwrap()
            .id;
        let mut users = HashMap::from([("owner", owner), ("outsider", Uuid::new_v4())]);
        for (name, role) in [
            ("admin", Role::Admin),
            ("member", Role::Member),
            ("viewer", Role::Viewer),
            ("target", Role::Viewer),
            ("removable", Role::Viewer),
        ] {
            let user = Uuid::new_v4();
            orgs.add_member(&by_owner, org, user, role).await.unwrap();
            users.insert(name, user);
        }
        let invitation = orgs
            .invite(&by_owner, org, "invitee@example.com", Role::Viewer)
            .await
            .unwrap();
        let mut keys = HashMap::new();
        for role in [Role::Admin, Role::Viewer] {
            let key = orgs
                .create_api_key(&by_owner, org, NewApiKey::new(format!("{role} key"), role))
                .await
                .unwrap();
            keys.insert(role, (key.key.id, key.token.expose().to_owned()));
        }
        let spare_key = orgs
            .create_api_key(&by_owner, org, NewApiKey::new("spare", Role::Viewer))
            .await
            .unwrap()
            .key
            .id;
        let other_owner = Caller::user(Uuid::new_v4());
        let other_slug = format!("other-{}", &Uuid::new_v4().simple().to_string()[..12]);
        let other = orgs
            .create_org(&other_owner, NewOrg::new("Other", other_slug))
            .await
            .unwrap();
        let other_key = orgs
            .create_api_key(
                &other_owner,
                other.id,
                NewApiKey::new("theirs", Role::Admin),
            )
            .await
            .unwrap();
        // A logo, for the logo routes to read and remove.
        let logo = appforge_orgs::Logo::new("image/png", crate::uploads::png(2, 2, None)).unwrap();
        orgs.set_logo(&by_owner, org, &logo).await.unwrap();
        // The org's Stripe customer, for its billing portal (with Stripe configured).
        crate::org_billing::link_customer(server, org).await;
        Self {
            org,
            users,
            invitation: invitation.invitation.id,
            invitation_token: invitation.token.expose().to_owned(),
            keys,
            spare_key,
            other_org_key: (other_key.key.id, other_key.token.expose().to_owned()),
        }
    }

    pub(crate) fn user(&self, name: &str) -> Uuid {
        self.users[name]
    }

    /// The bearer token of `who`, and the audit actor it is recorded as.
    pub(crate) fn credentials(&self, server: &TestServer, who: Who) -> (String, Actor) {
        let user = |name: &str| {
            let id = self.user(name);
            (server.token(id), Actor::User(id))
        };
        match who {
            Who::Owner => user("owner"),
            Who::Admin => user("admin"),
            Who::Member => user("member"),
            Who::Viewer => user("viewer"),
            Who::NonMember => user("outsider"),
            Who::Key(role) => {
                let (id, token) = &self.keys[&role];
                (token.clone(), Actor::ApiKey(*id))
            }
            Who::OtherOrgKey => (
                self.other_org_key.1.clone(),
                Actor::ApiKey(self.other_org_key.0),
            ),
        }
    }

    /// The concrete path and body of a call of `route` on this fixture.
    fn call_of(&self, route: &OrgRoute) -> (String, Option<Value>) {
        let id = match route.path {
            p if p.starts_with("/api/orgs/{org}/invitations") => self.invitation,
            _ => self.spare_key,
        };
        let user = if route.method == "patch" {
            self.user("target")
        } else {
            self.user("removable")
        };
        let path = route
            .path
            .replace("{org}", &self.org.to_string())
            .replace("{user}", &user.to_string())
            .replace("{id}", &id.to_string())
            .replace("{token}", &self.invitation_token);
        let unique = &Uuid::new_v4().simple().to_string()[..10];
        let body = match (route.method, route.path) {
            ("post", "/api/orgs") => Some(json!({ "name": format!("Team {unique}") })),
            ("patch", "/api/orgs/{org}") => Some(json!({ "name": "Acme Renamed" })),
            ("patch", "/api/orgs/{org}/members/{user}") => Some(json!({ "role": "member" })),
            ("post", "/api/orgs/{org}/invitations") => Some(json!({
                "email": format!("new-{unique}@example.com"),
                "role": "viewer",
            })),
            ("post", "/api/orgs/{org}/api-keys") => Some(json!({ "name": "CI", "role": "viewer" })),
            ("post", "/api/orgs/{org}/billing/checkout") => {
                Some(json!({ "plan": "team", "interval": "monthly" }))
            }
            ("put", "/api/orgs/{org}/branding") => {
                Some(json!({ "displayName": "Acme Labs", "primaryColor": "#1a73e8" }))
            }
            // An array of numbers is sent as raw bytes (`send`).
            ("put", "/api/orgs/{org}/branding/logo") => {
                Some(json!(crate::uploads::png(4, 4, None)))
            }
            ("put", "/api/orgs/{org}/seats") => Some(json!({ "seats": 20 })),
            // Validated only: nothing is fetched from the issuer.
            ("put", "/api/orgs/{org}/sso") => Some(json!({
                "issuer": "https://login.example.com/realms/acme",
                "clientId": "appforge",
                "clientSecret": "s3cret",
                "allowedDomains": ["example.com"],
                "defaultRole": "member",
                "enforceDomain": false,
            })),
            _ => None,
        };
        let path = if route.path.ends_with("/audit/export") {
            format!("{path}?format=csv")
        } else {
            path
        };
        (path, body)
    }
}

/// Sends a request as `token` from [`CLIENT_IP`] with a request id; answers the status, the
/// headers and the body (JSON when it parses, else a string).
async fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    request_id: &str,
) -> (StatusCode, http::HeaderMap, Value) {
    let mut builder = Request::builder()
        .method(method.to_uppercase().as_str())
        .uri(path)
        .header("user-agent", USER_AGENT)
        .header("x-request-id", request_id)
        .extension(ClientAddr(SocketAddr::new(
            CLIENT_IP.parse().unwrap(),
            40_000,
        )));
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let request = match body {
        // Raw bytes: an image body.
        Some(Value::Array(bytes)) => builder
            .header("content-type", "application/octet-stream")
            .body(Body::from(
                bytes
                    .iter()
                    .map(|b| u8::try_from(b.as_u64().unwrap()).unwrap())
                    .collect::<Vec<u8>>(),
            ))
            .unwrap(),
        Some(body) => builder
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    };
    let response = server.send(request).await;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, headers, value)
}

/// Every audit entry of `org`.
pub(crate) async fn entries(server: &TestServer, org: Uuid) -> Vec<AuditEntry> {
    server
        .state
        .orgs()
        .store()
        .audit_page(org, &AuditQuery::new(AuditRange::all(), 1000))
        .await
        .unwrap()
}

/// Whether `path` is a route of an org's space (`org_space` tests those).
pub(crate) fn in_space(path: &str) -> bool {
    path.strip_prefix("/api/orgs/{org}")
        .is_some_and(|rest| SPACE_ROUTES.iter().any(|s| s.path == rest))
}

/// Every org route, called by every kind of caller on a fresh fixture, answers the status
/// the permission table gives; each successful privileged call leaves exactly one audit
/// entry naming its action, actor, IP, user agent and request id, and a refused call none.
pub(crate) async fn every_org_route_answers_each_caller_as_the_permission_table_says(db: Db) {
    // With a Stripe stand-in: the org's billing routes succeed for an owner.
    let (stripe, _subscription) = crate::org_billing::stripe_stand_in().await;
    let mut options = crate::org_billing::with_stripe(&stripe);
    // SSO on: its settings routes answer (32 bytes of 7, base64).
    options.env.push((
        "APPFORGE_SECRETS_KEY",
        "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=".into(),
    ));
    let server = TestServer::start(db, options).await;
    for (method, path) in ROUTES.iter() {
        if (path.starts_with("/api/orgs") || path.starts_with("/api/invitations"))
            && !in_space(path)
        {
            let route = ORG_ROUTES
                .iter()
                .find(|r| r.method == *method && r.path == *path)
                .unwrap_or_else(|| panic!("{method} {path} has no entry in ORG_ROUTES"));
            assert!(success(route).is_some(), "{method} {path} has no case here");
        }
    }
    let mut failures = Vec::new();
    for (n, route) in ORG_ROUTES
        .iter()
        .enumerate()
        .filter(|(_, r)| !in_space(r.path))
    {
        for who in EVERYONE {
            let fixture = Fixture::new(&server).await;
            let (token, actor) = fixture.credentials(&server, who);
            let (path, body) = fixture.call_of(route);
            let before = entries(&server, fixture.org).await.len();
            let request_id = format!("case-{n}-{}", Uuid::new_v4().simple());
            let (status, _, answer) = send(
                &server,
                route.method,
                &path,
                Some(&token),
                body,
                &request_id,
            )
            .await;
            let want = expected(route, who);
            if status != want {
                failures.push(format!(
                    "{} {} as {who:?}: {status}, expected {want}: {answer}",
                    route.method, route.path
                ));
                continue;
            }
            // The org whose log records the call: a new org records its own creation.
            let org = match (route.method, route.path) {
                ("post", "/api/orgs") if status.is_success() => {
                    answer["id"].as_str().unwrap().parse().unwrap()
                }
                _ => fixture.org,
            };
            let after = entries(&server, org).await;
            let base = if org == fixture.org { before } else { 0 };
            match route.audit.filter(|_| status.is_success()) {
                Some(action) => {
                    let last = after.last().expect("an audit entry");
                    let ok = after.len() == base + 1
                        && last.action == action
                        && last.actor == actor
                        && last.ip.as_deref() == Some(CLIENT_IP)
                        && last.user_agent.as_deref() == Some(USER_AGENT)
                        && last.request_id.as_deref() == Some(request_id.as_str());
                    if !ok {
                        failures.push(format!(
                            "{} {} as {who:?}: expected one {action} entry, got {} new: {last:?}",
                            route.method,
                            route.path,
                            after.len() - base
                        ));
                    }
                }
                None => {
                    if after.len() != base {
                        failures.push(format!(
                            "{} {} as {who:?} ({status}) left {} audit entries",
                            route.method,
                            route.path,
                            after.len() - base
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    server.stop().await;
}

async fn create_org(server: &TestServer, owner: Uuid, name: &str) -> Uuid {
    let (status, _, body) = server
        .call(
            "POST",
            "/api/orgs",
            Some(owner),
            Some(json!({ "name": name })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["role"], "owner");
    body["id"].as_str().unwrap().parse().unwrap()
}

async fn invite(server: &TestServer, by: Uuid, org: Uuid, email: &str, role: &str) -> Value {
    let (status, _, body) = server
        .call(
            "POST",
            &format!("/api/orgs/{org}/invitations"),
            Some(by),
            Some(json!({ "email": email, "role": role })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn accept(server: &TestServer, user: Uuid, token: &str) -> (StatusCode, Value) {
    let (status, _, body) = server
        .call(
            "POST",
            &format!("/api/invitations/{token}/accept"),
            Some(user),
            None,
        )
        .await;
    (status, body)
}

/// An org always keeps an owner: the only owner cannot demote, remove or withdraw
/// themselves, an admin cannot touch an owner; with a second owner the first may leave.
pub(crate) async fn the_last_owner_stays(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let (owner, admin) = (Uuid::new_v4(), Uuid::new_v4());
    let org = create_org(&server, owner, "Keepers").await;
    let invitation = invite(&server, owner, org, "admin@example.com", "admin").await;
    assert_eq!(
        accept(&server, admin, invitation["token"].as_str().unwrap())
            .await
            .0,
        StatusCode::OK
    );
    let member = |user: Uuid| format!("/api/orgs/{org}/members/{user}");

    let (status, _, body) = server
        .call(
            "PATCH",
            &member(owner),
            Some(owner),
            Some(json!({ "role": "admin" })),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("last_owner"))
    );
    let (status, _, _) = server
        .call("DELETE", &member(owner), Some(owner), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let leave = format!("/api/orgs/{org}/leave");
    let (status, _, _) = server.call("POST", &leave, Some(owner), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _, body) = server
        .call(
            "PATCH",
            &member(owner),
            Some(admin),
            Some(json!({ "role": "viewer" })),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("role_too_high"))
    );
    let (status, _, _) = server
        .call("DELETE", &member(owner), Some(admin), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _, _) = server
        .call(
            "PATCH",
            &member(admin),
            Some(owner),
            Some(json!({ "role": "owner" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = server.call("POST", &leave, Some(owner), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = server
        .call("GET", &format!("/api/orgs/{org}"), Some(owner), None)
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a former member is an outsider"
    );
    let (status, _, _) = server.call("POST", &leave, Some(admin), None).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "the new owner is now the last one"
    );
    server.stop().await;
}

/// An invitation expires after `APPFORGE_INVITATION_TTL_HOURS`, is used once, and a revoked
/// one cannot be accepted; open invitations hold seats (`APPFORGE_ORG_SEATS`) until revoked.
pub(crate) async fn invitations_expire_are_used_once_and_revoke(db: Db) {
    let clock = ManualClock::at(chrono::Utc::now());
    let options = Options {
        clock: Some(clock.shared()),
        env: vec![
            ("APPFORGE_INVITATION_TTL_HOURS", "24".to_owned()),
            ("APPFORGE_ORG_SEATS", "3".to_owned()),
            ("APPFORGE_PUBLIC_URL", "https://app.example.com/".to_owned()),
        ],
        ..Options::api_only()
    };
    let server = TestServer::start(db, options).await;
    let owner = Uuid::new_v4();
    let org = create_org(&server, owner, "Inviters").await;

    // Expiry: a day later the token is no longer good.
    let late = invite(&server, owner, org, "late@example.com", "member").await;
    assert!(
        !late["mailed"].as_bool().unwrap(),
        "no SMTP settings, no mail"
    );
    let token = late["token"].as_str().unwrap();
    assert!(token.starts_with("afi_"));
    assert_eq!(
        late["acceptUrl"],
        format!("https://app.example.com/invitations/{token}")
    );
    let created: chrono::DateTime<chrono::Utc> = late["invitation"]["createdAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let expires: chrono::DateTime<chrono::Utc> = late["invitation"]["expiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(expires - created, chrono::TimeDelta::hours(24));
    clock.advance(Duration::from_secs(24 * 3600 + 1));
    assert_eq!(
        accept(&server, Uuid::new_v4(), token).await.0,
        StatusCode::NOT_FOUND
    );

    // Reuse: the second user to present a token is refused.
    clock.advance(Duration::from_secs(1));
    let once = invite(&server, owner, org, "once@example.com", "viewer").await;
    let token = once["token"].as_str().unwrap();
    let (status, body) = accept(&server, Uuid::new_v4(), token).await;
    assert_eq!(
        (status, body["role"].as_str()),
        (StatusCode::OK, Some("viewer"))
    );
    assert_eq!(
        accept(&server, Uuid::new_v4(), token).await.0,
        StatusCode::NOT_FOUND
    );

    // Seats: owner and viewer are members, one open invitation takes the last seat.
    clock.advance(Duration::from_secs(1));
    let open = invite(&server, owner, org, "open@example.com", "member").await;
    let (status, _, body) = server
        .call(
            "POST",
            &format!("/api/orgs/{org}/invitations"),
            Some(owner),
            Some(json!({ "email": "fourth@example.com", "role": "member" })),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("no_seat"))
    );
    let (_, _, members) = server
        .call(
            "GET",
            &format!("/api/orgs/{org}/members"),
            Some(owner),
            None,
        )
        .await;
    assert_eq!(members["seats"], json!({ "used": 3, "total": 3 }));

    // Revocation: the token stops working and the seat frees.
    let id = open["invitation"]["id"].as_str().unwrap();
    let (status, _, body) = server
        .call(
            "DELETE",
            &format!("/api/orgs/{org}/invitations/{id}"),
            Some(owner),
            None,
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("revoked"))
    );
    let token = open["token"].as_str().unwrap();
    assert_eq!(
        accept(&server, Uuid::new_v4(), token).await.0,
        StatusCode::NOT_FOUND
    );
    clock.advance(Duration::from_secs(1));
    invite(&server, owner, org, "fourth@example.com", "member").await;

    let (_, _, list) = server
        .call(
            "GET",
            &format!("/api/orgs/{org}/invitations"),
            Some(owner),
            None,
        )
        .await;
    let statuses: Vec<&str> = list["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["open", "revoked", "accepted", "expired"]);
    assert!(
        !list.to_string().contains("afi_"),
        "tokens are never listed"
    );
    server.stop().await;
}

/// A key acts as its org on org routes only, and is refused from the request after its
/// revocation; deleting an org ends its members' and keys' access at once.
pub(crate) async fn revoked_keys_and_deleted_orgs_lose_access_at_once(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let (owner, member) = (Uuid::new_v4(), Uuid::new_v4());
    let org = create_org(&server, owner, "Shared").await;
    let invitation = invite(&server, owner, org, "m@example.com", "member").await;
    accept(&server, member, invitation["token"].as_str().unwrap()).await;

    let (status, _, body) = server
        .call(
            "POST",
            &format!("/api/orgs/{org}/api-keys"),
            Some(owner),
            Some(json!({ "name": "CI", "role": "admin" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let key = body["token"].as_str().unwrap().to_owned();
    let key_id = body["key"]["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with(&format!("afk_{}_", body["key"]["prefix"].as_str().unwrap())));
    let members = format!("/api/orgs/{org}/members");
    let (status, _, _) = send(&server, "get", &members, Some(&key), None, "k1").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = send(&server, "get", "/api/jobs", Some(&key), None, "k2").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "keys act on org routes only: {body}"
    );
    let (_, _, keys) = server
        .call(
            "GET",
            &format!("/api/orgs/{org}/api-keys"),
            Some(owner),
            None,
        )
        .await;
    assert!(keys["keys"][0]["lastUsedAt"].is_string(), "{keys}");
    assert!(!keys.to_string().contains(&key), "keys are never listed");

    let (status, _, _) = server
        .call(
            "DELETE",
            &format!("/api/orgs/{org}/api-keys/{key_id}"),
            Some(owner),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(&server, "get", &members, Some(&key), None, "k3").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "revoked on the next request"
    );

    // A second key, then the org goes: members and keys lose it at once.
    let (_, _, body) = server
        .call(
            "POST",
            &format!("/api/orgs/{org}/api-keys"),
            Some(owner),
            Some(json!({ "name": "CD", "role": "viewer" })),
        )
        .await;
    let key = body["token"].as_str().unwrap().to_owned();
    let (status, _, _) = server.call("GET", &members, Some(member), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = server
        .call("DELETE", &format!("/api/orgs/{org}"), Some(member), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only an owner deletes");
    let (status, _, _) = server
        .call("DELETE", &format!("/api/orgs/{org}"), Some(owner), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for user in [owner, member] {
        let (status, _, _) = server.call("GET", &members, Some(user), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, _, mine) = server.call("GET", "/api/orgs", Some(user), None).await;
        assert_eq!(mine["orgs"], json!([]));
    }
    let (status, _, _) = send(&server, "get", &members, Some(&key), None, "k4").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The log outlives the org (until retention): its deletion is its last entry.
    let log = entries(&server, org).await;
    assert_eq!(log.last().unwrap().action, "org.delete");
    server.stop().await;
}

/// The audit log through the API: filters, `verify` (and a row edited in the database named
/// by it), and exports as JSON lines and CSV.
pub(crate) async fn the_audit_log_filters_verifies_and_exports(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let owner = Uuid::new_v4();
    let org = create_org(&server, owner, "Audited").await;
    for n in 0..3 {
        invite(&server, owner, org, &format!("u{n}@example.com"), "viewer").await;
    }
    let audit = format!("/api/orgs/{org}/audit");
    let (status, _, page) = server
        .call(
            "GET",
            &format!("{audit}?action=invitation."),
            Some(owner),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["entries"].as_array().unwrap().len(), 3);
    let (_, _, page) = server
        .call("GET", &format!("{audit}?limit=2"), Some(owner), None)
        .await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    assert_eq!(page["next"], 2);
    let (_, _, rest) = server
        .call(
            "GET",
            &format!("{audit}?after=2&actor={owner}"),
            Some(owner),
            None,
        )
        .await;
    assert_eq!(rest["entries"][0]["seq"], 3);
    let (status, _, _) = server
        .call("GET", &format!("{audit}?limit=0"), Some(owner), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (_, _, verdict) = server
        .call("GET", &format!("{audit}/verify"), Some(owner), None)
        .await;
    assert_eq!(verdict, json!({ "ok": true, "checked": 4 }));

    let token = server.token(owner);
    let (status, headers, body) = send(
        &server,
        "get",
        &format!("{audit}/export?format=csv"),
        Some(&token),
        None,
        "export-1",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    let csv = body.as_str().unwrap();
    assert!(csv.starts_with("seq,id,time,actor_kind"), "{csv}");
    // The header, the four entries, and the export's own entry recorded before it streamed.
    assert_eq!(csv.lines().count(), 6, "{csv}");
    let (status, headers, body) = send(
        &server,
        "get",
        &format!("{audit}/export"),
        Some(&token),
        None,
        "export-2",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/x-ndjson");
    let text = body
        .as_str()
        .map_or_else(|| body.to_string(), str::to_owned);
    let actions: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        actions,
        [
            "org.create",
            "invitation.create",
            "invitation.create",
            "invitation.create",
            "audit.export",
            "audit.export"
        ]
    );

    // An entry edited in the database is named by verify.
    let sql = "UPDATE org_audit_log SET action = 'org.rename' WHERE seq = 2";
    match server.state.db() {
        appforge_server::Database::Sqlite(pool) => {
            sqlx::query(sql).execute(pool).await.unwrap();
        }
        appforge_server::Database::Postgres(pool) => {
            sqlx::query(sql).execute(pool).await.unwrap();
        }
    }
    let (_, _, verdict) = server
        .call("GET", &format!("{audit}/verify"), Some(owner), None)
        .await;
    assert_eq!(verdict["ok"], false);
    assert_eq!(verdict["broken"]["seq"], 2);
    assert_eq!(verdict["broken"]["problem"], "altered");
    server.stop().await;
}

/// With SMTP settings an invitation is mailed to the invitee with its link (here to an SMTP
/// listener in the test); the answer says so.
pub(crate) async fn invitations_are_mailed_with_smtp_settings(db: Db) {
    let (addr, mut inbox) = smtp::listen().await;
    let options = Options {
        env: vec![
            ("APPFORGE_SMTP_URL", format!("smtp://{addr}")),
            (
                "APPFORGE_SMTP_FROM",
                "AppForge <no-reply@example.com>".to_owned(),
            ),
            ("APPFORGE_PUBLIC_URL", "https://app.example.com".to_owned()),
        ],
        ..Options::api_only()
    };
    let server = TestServer::start(db, options).await;
    let owner = Uuid::new_v4();
    let org = create_org(&server, owner, "Mailers").await;
    let invitation = invite(&server, owner, org, "Grace@Example.com", "admin").await;
    assert_eq!(invitation["mailed"], true);
    let mail = tokio::time::timeout(Duration::from_secs(30), inbox.recv())
        .await
        .expect("a mail arrives")
        .expect("the listener is up");
    assert_eq!(mail.from, "no-reply@example.com");
    assert_eq!(mail.to, ["grace@example.com"]);
    let url = invitation["acceptUrl"].as_str().unwrap();
    // Quoted-printable may wrap long lines with a soft break (`=` at the end of a line).
    let text = mail.data.replace("=\r\n", "");
    assert!(text.contains(url), "{text}");
    assert!(text.contains("Subject: Join Mailers on AppForge"), "{text}");
    server.stop().await;
}

/// A tiny SMTP server: enough of RFC 5321 for one client to deliver messages.
mod smtp {
    use std::net::SocketAddr;

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    /// One delivered message.
    #[derive(Debug)]
    pub(super) struct Mail {
        pub(super) from: String,
        pub(super) to: Vec<String>,
        pub(super) data: String,
    }

    fn address(line: &str) -> String {
        let start = line.find('<').map_or(0, |i| i + 1);
        let end = line.rfind('>').unwrap_or(line.len());
        line[start..end].to_owned()
    }

    /// Listens on a free local port; each delivered message arrives on the channel.
    pub(super) async fn listen() -> (SocketAddr, mpsc::UnboundedReceiver<Mail>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    write.write_all(b"220 test ESMTP\r\n").await.ok();
                    let (mut from, mut to) = (String::new(), Vec::new());
                    while let Ok(Some(line)) = lines.next_line().await {
                        let upper = line.to_ascii_uppercase();
                        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO")
                        {
                            b"250-test\r\n250 8BITMIME\r\n"
                        } else if upper.starts_with("MAIL FROM") {
                            from = address(&line);
                            b"250 ok\r\n"
                        } else if upper.starts_with("RCPT TO") {
                            to.push(address(&line));
                            b"250 ok\r\n"
                        } else if upper == "DATA" {
                            write.write_all(b"354 go ahead\r\n").await.ok();
                            let mut data = String::new();
                            while let Ok(Some(line)) = lines.next_line().await {
                                if line == "." {
                                    break;
                                }
                                data.push_str(&line);
                                data.push_str("\r\n");
                            }
                            let mail = Mail {
                                from: std::mem::take(&mut from),
                                to: std::mem::take(&mut to),
                                data,
                            };
                            tx.send(mail).ok();
                            b"250 queued\r\n"
                        } else if upper == "QUIT" {
                            write.write_all(b"221 bye\r\n").await.ok();
                            break;
                        } else {
                            b"250 ok\r\n"
                        };
                        write.write_all(reply).await.ok();
                    }
                });
            }
        });
        (addr, rx)
    }
}

/// What the org permission check adds to a request: two routes behind the same user token,
/// one answering at once and one calling `Orgs::admit` first (a member's lookup, from the
/// membership cache on PostgreSQL once its feed listens), and a
/// third authenticated by an org API key (its lookup and last-used write); then the whole
/// server's `POST .../ai-builder/full-app` in the member's personal space and in the org's
/// space (the org route layer's check included), both on the Team plan without its burst limit. Called in turn in one
/// run; prints the p50 and p90 of each. On PostgreSQL when `DATABASE_URL` is set.
#[tokio::test]
#[ignore = "a measurement, not a check: cargo test ... -- --ignored --nocapture measure_the_org_check"]
#[allow(clippy::print_stdout, reason = "a measurement prints its figures")]
async fn measure_the_org_check() {
    use appforge_orgs::Permission;
    use appforge_server::AuthPrincipal;
    use axum::extract::State;
    use tower::ServiceExt;

    const ROUNDS: usize = 2000;
    let db = if std::env::var_os("DATABASE_URL").is_some() {
        Db::postgres().await
    } else {
        Db::sqlite().await
    };
    let backend = match &db {
        Db::Sqlite(_) => "sqlite",
        Db::Postgres(_) => "postgres",
    };
    let server = TestServer::start(db, Options::api_only()).await;
    let fixture = Fixture::new(&server).await;
    let org = fixture.org;
    let router =
        axum::Router::new()
            .route(
                "/without",
                axum::routing::get(|_: AuthPrincipal| async { StatusCode::OK }),
            )
            .route(
                "/with",
                axum::routing::get(
                    move |principal: AuthPrincipal,
                          State(state): State<appforge_server::AppState>| async move {
                        let caller = Caller::new(principal.principal());
                        match state.orgs().admit(&caller, org, Permission::Generate).await {
                            Ok(_) => StatusCode::OK,
                            Err(_) => StatusCode::FORBIDDEN,
                        }
                    },
                ),
            )
            .with_state(server.state.clone());
    let member = server.token(fixture.user("member"));
    let key = fixture.keys[&Role::Admin].1.clone();
    // Generations on the Team plan without its burst limit (so that the rounds are not
    // refused), in the member's space and in the org's.
    let mut plan = appforge_quota::Plan::team();
    plan.id = "measure".into();
    plan.burst = None;
    server.state.quota().save_plan(plan).await.unwrap();
    for subject in [fixture.user("member"), org] {
        server
            .state
            .quota()
            .set_plan(subject, &"measure".into())
            .await
            .unwrap();
    }
    let personal = "/api/ai-builder/full-app".to_owned();
    let in_org = format!("/api/orgs/{org}/ai-builder/full-app");
    let cases: [(&str, &str, &str, bool); 5] = [
        ("user token, no org check", "/without", &member, false),
        ("user token + authorize", "/with", &member, false),
        ("org API key + authorize", "/with", &key, false),
        ("full-app, personal space", &personal, &member, true),
        ("full-app, org space", &in_org, &member, true),
    ];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    for round in 0..ROUNDS + 100 {
        for (i, (_, path, token, generate)) in cases.iter().enumerate() {
            let builder = Request::builder()
                .uri(*path)
                .header("authorization", format!("Bearer {token}"));
            let request = if *generate {
                builder
                    .method("POST")
                    .header("content-type", "application/json")
                    .body(Body::from(r#"{"prompt":"a todo list"}"#))
                    .unwrap()
            } else {
                builder.body(Body::empty()).unwrap()
            };
            let started = std::time::Instant::now();
            let response = if *generate {
                server.send(request).await
            } else {
                router.clone().oneshot(request).await.unwrap()
            };
            let took = started.elapsed();
            assert!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
            // The first rounds warm the pool and caches.
            if round >= 100 {
                samples[i].push(took);
            }
        }
    }
    let quantile = |v: &mut Vec<Duration>, q: f64| {
        v.sort();
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let at = ((v.len() - 1) as f64 * q).round() as usize;
        v[at]
    };
    let mut report = Vec::new();
    for ((name, ..), v) in cases.iter().zip(samples.iter_mut()) {
        let (p50, p90) = (quantile(v, 0.5), quantile(v, 0.9));
        report.push((*name, p50, p90));
    }
    println!("{backend}, {ROUNDS} rounds:");
    for (name, p50, p90) in &report {
        println!("  {name:<28} p50 {p50:>10.1?}  p90 {p90:>10.1?}");
    }
    println!(
        "  the check adds (p50): {:.1?} for a member, {:.1?} for a key; {:.1?} on a generation request",
        report[1].1.saturating_sub(report[0].1),
        report[2].1.saturating_sub(report[0].1),
        report[4].1.saturating_sub(report[3].1)
    );
    server.stop().await;
}
