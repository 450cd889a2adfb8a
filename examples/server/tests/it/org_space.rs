//! An org's space over HTTP: every generation, chat, upload, job, app and quota route under
//! `/api/orgs/{org}` answers each kind of caller as the permission table says (and audits what
//! the table says it audits), an org's resources are nobody's personal ones, and its quota is
//! one pool for its members and keys.

use appforge_apps::{AppStore, NewApp, NewVersion};
use appforge_core::Owner;
use appforge_llm::AppFile;
use appforge_orgs::{NewApiKey, Role};
use appforge_server::routes::{Access, ORG_ROUTES, OrgRoute, SPACE_ROUTES};
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::orgs::{CLIENT_IP, EVERYONE, Fixture, USER_AGENT, Who, entries, in_space};
use crate::support::{Db, Options, TestServer};

/// The org-space routes of [`ORG_ROUTES`].
fn space_routes() -> Vec<&'static OrgRoute> {
    ORG_ROUTES.iter().filter(|r| in_space(r.path)).collect()
}

/// The status of a successful call of a space route.
fn success(route: &OrgRoute) -> StatusCode {
    let path = route.path.strip_prefix("/api/orgs/{org}").unwrap();
    match (route.method, path) {
        ("post", "/ai-builder/full-app" | "/ai-builder/modify" | "/ai-builder/plan-phases") => {
            StatusCode::ACCEPTED
        }
        ("post", "/uploads" | "/apps/{id}/restore") => StatusCode::CREATED,
        ("delete", "/uploads/{id}") => StatusCode::NO_CONTENT,
        _ => StatusCode::OK,
    }
}

/// The status `who` gets: the table's permission for members and keys of the org, `404` for
/// everyone outside it.
fn expected(route: &OrgRoute, who: Who) -> StatusCode {
    let Access::Org(permission) = route.access else {
        panic!(
            "{} {} is a space route without an org permission",
            route.method, route.path
        );
    };
    match who.role() {
        None => StatusCode::NOT_FOUND,
        Some(role) if !role.can(permission) => StatusCode::FORBIDDEN,
        Some(_) => success(route),
    }
}

/// An org (from [`Fixture`]) with an app, a deleted app, a finished generation and an upload.
struct Space {
    base: Fixture,
    app: Uuid,
    deleted_app: Uuid,
    job: String,
    upload: Uuid,
}

impl Space {
    async fn new(server: &TestServer) -> Self {
        let base = Fixture::new(server).await;
        let org = base.org;
        let owner = base.user("owner");
        let apps = server.state.apps();
        let new_app = |title: &str| {
            NewApp::new(
                title,
                NewVersion::files(vec![AppFile::new("index.html", "<h1>Hello</h1>")]),
            )
            .created_by(owner)
        };
        let app = apps
            .create_app(Owner::Org(org), new_app("Team app"))
            .await
            .unwrap()
            .app
            .id;
        let deleted_app = apps
            .create_app(Owner::Org(org), new_app("Old app"))
            .await
            .unwrap()
            .app
            .id;
        apps.delete_app(Owner::Org(org), deleted_app).await.unwrap();
        let (status, _, body) = call(
            server,
            "POST",
            &format!("/api/orgs/{org}/ai-builder/full-app"),
            &server.token(owner),
            Payload::Json(json!({ "prompt": "a todo list" })),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let job = body["jobId"].as_str().unwrap().to_owned();
        wait_for(server, org, owner, &job).await;
        let upload = server
            .state
            .uploads()
            .upload(org, &crate::uploads::png(4, 4, None), u64::MAX)
            .await
            .unwrap()
            .id;
        Self {
            base,
            app,
            deleted_app,
            job,
            upload,
        }
    }

    /// The concrete path and body of a call of `route`.
    fn call_of(&self, route: &OrgRoute) -> (String, Payload) {
        let rest = route.path.strip_prefix("/api/orgs/{org}").unwrap();
        let id = if rest.starts_with("/apps/{id}/undelete") {
            self.deleted_app.to_string()
        } else if rest.starts_with("/apps/") {
            self.app.to_string()
        } else if rest.starts_with("/jobs/") {
            self.job.clone()
        } else {
            self.upload.to_string()
        };
        let mut path = route
            .path
            .replace("{org}", &self.base.org.to_string())
            .replace("{id}", &id)
            .replace("{n}", "1");
        if rest == "/apps/{id}/diff" {
            path.push_str("?from=1&to=1");
        }
        let payload = match (route.method, rest) {
            ("post", "/ai-builder/full-app" | "/ai-builder/plan-phases") => {
                Payload::Json(json!({ "prompt": "a habit tracker" }))
            }
            ("post", "/ai-builder/modify") => {
                Payload::Json(json!({ "prompt": "add a footer", "appId": self.app }))
            }
            ("post", "/chat") => Payload::Json(json!({ "prompt": "what does it do?" })),
            ("post", "/uploads") => Payload::Png(crate::uploads::png(3, 3, None)),
            ("patch", "/apps/{id}") => Payload::Json(json!({ "title": "Renamed" })),
            ("post", "/apps/{id}/restore") => Payload::Json(json!({ "version": 1 })),
            _ => Payload::None,
        };
        (path, payload)
    }
}

/// A request body.
enum Payload {
    None,
    Json(Value),
    Png(Vec<u8>),
}

/// Sends a request as `token` from [`CLIENT_IP`]; answers the status, headers and body (JSON
/// when it parses, else the text).
async fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    token: &str,
    payload: Payload,
) -> (StatusCode, http::HeaderMap, Value) {
    call_with_id(server, method, path, token, payload, "org-space").await
}

async fn call_with_id(
    server: &TestServer,
    method: &str,
    path: &str,
    token: &str,
    payload: Payload,
    request_id: &str,
) -> (StatusCode, http::HeaderMap, Value) {
    let builder = Request::builder()
        .method(method.to_uppercase().as_str())
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("user-agent", USER_AGENT)
        .header("x-request-id", request_id)
        .extension(appforge_server::ClientAddr(std::net::SocketAddr::new(
            CLIENT_IP.parse().unwrap(),
            40_000,
        )));
    let request = match payload {
        Payload::None => builder.body(Body::empty()).unwrap(),
        Payload::Json(body) => builder
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
        Payload::Png(bytes) => builder
            .header("content-type", "image/png")
            .body(Body::from(bytes))
            .unwrap(),
    };
    let response = server.send(request).await;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, headers, value)
}

/// Waits for the org's job to complete, through its event stream.
async fn wait_for(server: &TestServer, org: Uuid, user: Uuid, job: &str) {
    let request = Request::builder()
        .uri(format!("/api/orgs/{org}/jobs/{job}/events"))
        .header("authorization", format!("Bearer {}", server.token(user)))
        .body(Body::empty())
        .unwrap();
    let response = server.send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let frames = crate::support::SseReader::from_response(response)
        .rest()
        .await;
    assert_eq!(frames.last().unwrap().0, "completed", "{frames:?}");
}

/// Every route of an org's space, called by every kind of caller, answers what the permission
/// table gives; a successful audited call leaves one entry naming its action, actor, target and
/// request, and any other call none. Reads share one org; each write gets a fresh one.
pub(crate) async fn every_org_space_route_answers_each_caller_as_the_permission_table_says(db: Db) {
    let server = TestServer::start(db, Options::default()).await;
    let routes = space_routes();
    assert_eq!(
        routes.len(),
        SPACE_ROUTES.len(),
        "every space route has its org twin"
    );
    let mut failures = Vec::new();
    let shared = Space::new(&server).await;
    for (n, route) in routes.iter().enumerate() {
        for who in EVERYONE {
            let fresh;
            let space = if route.method == "get" {
                &shared
            } else {
                fresh = Space::new(&server).await;
                &fresh
            };
            let (token, actor) = space.base.credentials(&server, who);
            let (path, payload) = space.call_of(route);
            let before = entries(&server, space.base.org).await.len();
            let request_id = format!("space-{n}-{}", Uuid::new_v4().simple());
            let (status, _, answer) =
                call_with_id(&server, route.method, &path, &token, payload, &request_id).await;
            let want = expected(route, who);
            if status != want {
                failures.push(format!(
                    "{} {} as {who:?}: {status}, expected {want}: {answer}",
                    route.method, route.path
                ));
                continue;
            }
            let after = entries(&server, space.base.org).await;
            match route.audit.filter(|_| status.is_success()) {
                Some(action) => {
                    let last = after.last().expect("an audit entry");
                    let target = path
                        .split('/')
                        .nth(5)
                        .map(|t| t.split('?').next().unwrap().to_owned());
                    let ok = after.len() == before + 1
                        && last.action == action
                        && last.actor == actor
                        && last.target == target
                        && last.ip.as_deref() == Some(CLIENT_IP)
                        && last.request_id.as_deref() == Some(request_id.as_str());
                    if !ok {
                        failures.push(format!(
                            "{} {} as {who:?}: expected one {action} entry on {target:?}, got {} new: {last:?}",
                            route.method,
                            route.path,
                            after.len() - before
                        ));
                    }
                }
                None if after.len() != before => failures.push(format!(
                    "{} {} as {who:?} ({status}) left {} audit entries",
                    route.method,
                    route.path,
                    after.len() - before
                )),
                None => {}
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    server.stop().await;
}

/// A generation in an org is the org's: its job and app are not in the submitter's personal
/// space nor in another org, its members (and keys) see them, and it counts against the org's
/// pooled quota, not the member's own. A key acts in its org and has no personal space.
pub(crate) async fn an_orgs_resources_and_quota_are_the_orgs(db: Db) {
    let server = TestServer::start(db, Options::default()).await;
    let space = Space::new(&server).await;
    let org = space.base.org;
    let owner = server.token(space.base.user("owner"));
    let member = server.token(space.base.user("member"));
    let outsider = server.token(space.base.user("outsider"));
    let job = &space.job;

    // The job and the app it saved are the org's.
    let (status, _, body) = call(
        &server,
        "GET",
        &format!("/api/orgs/{org}/jobs/{job}"),
        &member,
        Payload::None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (token, path) in [
        (&owner, format!("/api/jobs/{job}")),
        (&owner, format!("/api/apps/{}", space.app)),
        (&outsider, format!("/api/jobs/{job}")),
        (&owner, format!("/api/uploads/{}", space.upload)),
    ] {
        let (status, _, body) = call(&server, "GET", &path, token, Payload::None).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{path} in a personal space: {body}"
        );
    }
    let (_, _, listed) = call(&server, "GET", "/api/apps", &owner, Payload::None).await;
    assert_eq!(
        listed["items"],
        json!([]),
        "the owner's personal library is empty"
    );
    let (_, _, listed) = call(
        &server,
        "GET",
        &format!("/api/orgs/{org}/apps"),
        &member,
        Payload::None,
    )
    .await;
    let titles: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles.len(), 2, "the generated app and Team app: {listed}");
    assert!(titles.contains(&"Team app"), "{titles:?}");

    // One pooled quota: the generation counts for the org, not for its submitter.
    let (_, _, pooled) = call(
        &server,
        "GET",
        &format!("/api/orgs/{org}/quota"),
        &member,
        Payload::None,
    )
    .await;
    assert_eq!(pooled["daily"]["used"], 1, "{pooled}");
    let (_, _, own) = call(&server, "GET", "/api/quota", &owner, Payload::None).await;
    assert_eq!(own["daily"]["used"], 0, "{own}");

    // A key of the org generates in it, counted in the same pool; it has no personal space.
    let key = server
        .state
        .orgs()
        .create_api_key(
            &appforge_orgs::Caller::user(space.base.user("owner")),
            org,
            NewApiKey::new("ci", Role::Member),
        )
        .await
        .unwrap();
    let key = key.token.expose().to_owned();
    let (status, _, body) = call(
        &server,
        "POST",
        &format!("/api/orgs/{org}/ai-builder/plan-phases"),
        &key,
        Payload::Json(json!({ "prompt": "a plan for a wiki" })),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let submitted = body["jobId"].as_str().unwrap().to_owned();
    wait_for(&server, org, space.base.user("member"), &submitted).await;
    let (_, _, pooled) = call(
        &server,
        "GET",
        &format!("/api/orgs/{org}/quota"),
        &owner,
        Payload::None,
    )
    .await;
    assert_eq!(pooled["daily"]["used"], 2, "{pooled}");
    let (status, _, _) = call(&server, "GET", "/api/jobs", &key, Payload::None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a key has no personal space"
    );

    // Uploads are pooled: the member's upload in the org counts for the org, with the one the
    // fixture made, and not for the member.
    let before = server.state.uploads().usage(org).await.unwrap();
    let (status, _, body) = call(
        &server,
        "POST",
        &format!("/api/orgs/{org}/uploads"),
        &member,
        Payload::Png(crate::uploads::png(5, 5, None)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["url"],
        format!("/api/orgs/{org}/uploads/{}", body["id"].as_str().unwrap())
    );
    let size = body["sizeBytes"].as_u64().unwrap();
    assert_eq!(
        server.state.uploads().usage(org).await.unwrap(),
        before + size
    );
    assert_eq!(
        server
            .state
            .uploads()
            .usage(space.base.user("member"))
            .await
            .unwrap(),
        0
    );

    // A viewer is told which permission it lacks.
    let viewer = server.token(space.base.user("viewer"));
    let (status, _, body) = call(
        &server,
        "POST",
        &format!("/api/orgs/{org}/ai-builder/full-app"),
        &viewer,
        Payload::Json(json!({ "prompt": "a blog" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["details"]["permission"], "generate", "{body}");
    server.stop().await;
}

/// An operator's cancel and retry of an org's job are in the org's audit log (as the system,
/// naming the job), and a paid retry is charged to the org's pool, not to the submitter.
pub(crate) async fn operator_actions_on_an_orgs_job_are_in_its_audit_log(db: Db) {
    use crate::pages::{ADMIN, admin_call, with_admin};

    let server = TestServer::start(db, with_admin(Options::api_only())).await;
    let base = Fixture::new(&server).await;
    let org = base.org;
    let member = base.user("member");
    let (status, _, body) = call(
        &server,
        "POST",
        &format!("/api/orgs/{org}/ai-builder/full-app"),
        &server.token(member),
        Payload::Json(json!({ "prompt": "a todo list" })),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let job = body["jobId"].as_str().unwrap().to_owned();

    let (status, body) = admin_call(
        &server,
        "POST",
        &format!("/api/admin/jobs/{job}/cancel"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = admin_call(
        &server,
        "POST",
        &format!("/api/admin/jobs/{job}/retry"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let log = entries(&server, org).await;
    let operator: Vec<(&str, Option<&str>)> = log
        .iter()
        .filter(|e| e.action.starts_with("admin."))
        .map(|e| (e.action.as_str(), e.target.as_deref()))
        .collect();
    assert_eq!(
        operator,
        [
            ("admin.job_cancel", Some(job.as_str())),
            ("admin.job_retry", Some(job.as_str())),
        ]
    );
    assert!(
        log.iter()
            .filter(|e| e.action.starts_with("admin."))
            .all(|e| e.actor == appforge_orgs::Actor::System)
    );
    // The cancelled attempt never started (refunded); the retry is the org's one generation.
    server
        .state
        .flush_settlements(std::time::Duration::from_secs(5))
        .await;
    let org_used = server.state.quota().status(org).await.unwrap().daily.used;
    let member_used = server
        .state
        .quota()
        .status(member)
        .await
        .unwrap()
        .daily
        .used;
    assert_eq!((org_used, member_used), (1, 0));
    server.stop().await;
}

/// An org's daily cap per member, set by an admin on the org (`PATCH memberDailyCap`, refused
/// to a member, audited): a member past it is refused with `429 member_cap_reached` while
/// another member and the org's API keys go on drawing on the org's pool; removing the cap
/// lets the member generate again.
pub(crate) async fn an_orgs_cap_per_member_holds_back_that_member_only(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let fixture = Fixture::new(&server).await;
    let org = fixture.org;
    server
        .state
        .quota()
        .set_plan(org, &appforge_quota::PlanId::team())
        .await
        .unwrap();
    let admin = fixture.credentials(&server, Who::Admin).0;
    let member = fixture.credentials(&server, Who::Member).0;
    let key = fixture.credentials(&server, Who::Key(Role::Admin)).0;
    let settings = format!("/api/orgs/{org}");
    let set_cap = |token: String, cap: Value| {
        let (server, settings) = (&server, settings.clone());
        async move {
            call(
                server,
                "PATCH",
                &settings,
                &token,
                Payload::Json(json!({ "memberDailyCap": cap })),
            )
            .await
        }
    };
    let generate = |token: String| {
        let server = &server;
        async move {
            let path = format!("/api/orgs/{org}/ai-builder/full-app");
            let (status, headers, body) = call(
                server,
                "POST",
                &path,
                &token,
                Payload::Json(json!({ "prompt": "a todo list" })),
            )
            .await;
            (status, headers, body)
        }
    };

    let (status, _, body) = set_cap(member.clone(), json!(1)).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a member sets no cap: {body}"
    );
    let (status, _, body) = set_cap(admin.clone(), json!(0)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a cap of 0: {body}");
    let (status, _, body) = set_cap(admin.clone(), json!(1)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["memberDailyCap"], 1, "{body}");

    let (status, _, body) = generate(member.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, headers, body) = generate(member.clone()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "member_cap_reached", "{body}");
    assert_eq!(body["details"]["daily"]["limit"], 1, "{body}");
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    for (who, token) in [("another member", admin.clone()), ("an org key", key)] {
        let (status, _, body) = generate(token).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{who}: {body}");
    }
    let (_, _, pooled) = call(
        &server,
        "GET",
        &format!("/api/orgs/{org}/quota"),
        &admin,
        Payload::None,
    )
    .await;
    assert_eq!(
        pooled["daily"]["used"], 3,
        "the refused one is not the org's: {pooled}"
    );
    let (_, _, mine) = call(
        &server,
        "GET",
        &format!("/api/orgs/{org}/quota"),
        &member,
        Payload::None,
    )
    .await;
    assert_eq!(
        (
            &mine["memberCap"]["limit"],
            &mine["memberCap"]["used"],
            &mine["memberCap"]["remaining"]
        ),
        (&json!(1), &json!(1), &json!(0)),
        "the member's own count: {mine}"
    );

    let (status, _, body) = set_cap(admin.clone(), Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["memberDailyCap"], Value::Null, "{body}");
    let (status, _, body) = generate(member).await;
    assert_eq!(status, StatusCode::ACCEPTED, "without the cap: {body}");

    let changes: Vec<_> = entries(&server, org)
        .await
        .into_iter()
        .filter(|e| e.action == "org.member_cap")
        .collect();
    assert_eq!(changes.len(), 2, "the cap set and removed: {changes:?}");
    server.stop().await;
}
