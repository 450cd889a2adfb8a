//! Org branding over HTTP: an admin sets the display name and a colour white text can be
//! read on, uploads a raster logo that is served back as an image with `nosniff`; SVG, a
//! PDF named `.png` and an oversized file are refused with nothing stored; viewers may not
//! change it and outsiders do not see it; an app published by the org shows the org's name
//! and a logo readable without signing in.

use appforge_apps::{AppStore, NewApp, NewVersion};
use appforge_core::Owner;
use appforge_llm::AppFile;
use appforge_orgs::{Caller, NewOrg, Role};
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Db, Options, TestServer};

/// An org owned by a new user, with an admin, a viewer; answers (org, owner, admin, viewer).
async fn org(server: &TestServer) -> (Uuid, Uuid, Uuid, Uuid) {
    let orgs = server.state.orgs();
    let (owner, admin, viewer) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let slug = format!("brand-{}", &Uuid::new_v4().simple().to_string()[..12]);
    let org = orgs
        .create_org(&Caller::user(owner), NewOrg::new("Acme", slug))
        .await
        .unwrap()
        .id;
    for (user, role) in [(admin, Role::Admin), (viewer, Role::Viewer)] {
        orgs.add_member(&Caller::user(owner), org, user, role)
            .await
            .unwrap();
    }
    (org, owner, admin, viewer)
}

/// Sends `bytes` as the body of `method path`, as `user` (none: anonymous); answers the
/// status, headers and raw body.
async fn raw(
    server: &TestServer,
    method: &str,
    path: &str,
    user: Option<Uuid>,
    bytes: Vec<u8>,
) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(user) = user {
        builder = builder.header("authorization", format!("Bearer {}", server.token(user)));
    }
    let request = builder
        .header("content-type", "application/octet-stream")
        .body(Body::from(bytes))
        .unwrap();
    let response = server.send(request).await;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body.to_vec())
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

pub(crate) async fn an_admin_brands_the_org_and_members_see_it(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let (org, _owner, admin, viewer) = org(&server).await;
    let branding = format!("/api/orgs/{org}/branding");
    let logo = format!("{branding}/logo");

    // A colour white text cannot be read on is refused, naming the ratio.
    let (status, _, refused) = server
        .call(
            "PUT",
            &branding,
            Some(admin),
            Some(json!({ "displayName": "Acme Labs", "primaryColor": "#777777" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused.to_string().contains("4.48"), "{refused}");
    let (status, _, set) = server
        .call(
            "PUT",
            &branding,
            Some(admin),
            Some(json!({ "displayName": "Acme Labs", "primaryColor": "#767676" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(set["displayName"], "Acme Labs");
    assert_eq!(set["primaryColor"], "#767676");

    // A viewer reads it but may not change it; an outsider does not see the org.
    let (status, _, read) = server.call("GET", &branding, Some(viewer), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["displayName"], "Acme Labs");
    let (status, _, _) = server
        .call(
            "PUT",
            &branding,
            Some(viewer),
            Some(json!({ "displayName": "Mine" })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = raw(
        &server,
        "PUT",
        &logo,
        Some(viewer),
        crate::uploads::png(8, 8, None),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let outsider = Uuid::new_v4();
    let (status, _, _) = server.call("GET", &branding, Some(outsider), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = raw(&server, "GET", &logo, Some(outsider), Vec::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // SVG, a PDF named as a PNG and an oversized file are refused; nothing is stored.
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec();
    let pdf = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n".to_vec();
    let mut big = crate::uploads::png(8, 8, None);
    big.resize(300 * 1024, 0);
    for (name, bytes, want) in [
        ("svg", svg, StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ("pdf", pdf, StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ("300 KB", big, StatusCode::PAYLOAD_TOO_LARGE),
    ] {
        let (status, _, body) = raw(&server, "PUT", &logo, Some(admin), bytes).await;
        assert_eq!(status, want, "{name}: {}", String::from_utf8_lossy(&body));
        let (status, _, _) = raw(&server, "GET", &logo, Some(viewer), Vec::new()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{name} stored nothing");
    }

    // A PNG is stored re-encoded and served as an image with nosniff.
    let (status, _, body) = raw(
        &server,
        "PUT",
        &logo,
        Some(admin),
        crate::uploads::png(8, 8, None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let stored = json_of(&body);
    assert_eq!(stored["logo"]["mediaType"], "image/png");
    assert_eq!(stored["logo"]["url"], logo.as_str());
    let (status, headers, image) = raw(&server, "GET", &logo, Some(viewer), Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline")
    );
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("private")
    );
    let decoded = appforge_uploads::ImagePolicy::default()
        .validate(&image)
        .unwrap();
    assert_eq!(
        (decoded.media_type.as_str(), decoded.width),
        ("image/png", 8)
    );

    // The audit log names both changes.
    let actions: Vec<String> = crate::orgs::entries(&server, org)
        .await
        .into_iter()
        .map(|e| e.action)
        .collect();
    for action in ["branding.update", "branding.logo"] {
        assert_eq!(
            actions.iter().filter(|a| *a == action).count(),
            1,
            "{action}: {actions:?}"
        );
    }

    // Removed, it is gone.
    let (status, _, body) = raw(&server, "DELETE", &logo, Some(admin), Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(json_of(&body)["logo"].is_null());
    let (status, _, _) = raw(&server, "GET", &logo, Some(viewer), Vec::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

pub(crate) async fn an_org_app_page_shows_the_org_name_and_public_logo(db: Db) {
    let server = TestServer::start(db, Options::api_only()).await;
    let (org, owner, admin, _viewer) = org(&server).await;
    let apps = server.state.apps();
    let new_app = NewApp::new(
        "Team page",
        NewVersion::files(vec![AppFile::new("index.html", "<h1>Hello</h1>")]),
    )
    .created_by(owner);
    let app = apps.create_app(Owner::Org(org), new_app).await.unwrap().app;
    let published = apps.publish(Owner::Org(org), app.id, None).await.unwrap();
    let slug = published.preview_slug.unwrap();

    // Without branding: the org's own name, no logo.
    let (status, _, page) = server.call("GET", &format!("/p/{slug}"), None, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["org"]["name"], "Acme");
    assert!(page["org"]["logoUrl"].is_null());
    let (status, _, _) = raw(&server, "GET", &format!("/p/{slug}/logo"), None, Vec::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    server
        .call(
            "PUT",
            &format!("/api/orgs/{org}/branding"),
            Some(admin),
            Some(json!({ "displayName": "Acme Labs", "primaryColor": "#1a73e8" })),
        )
        .await;
    let (status, _, _) = raw(
        &server,
        "PUT",
        &format!("/api/orgs/{org}/branding/logo"),
        Some(admin),
        crate::uploads::png(8, 8, None),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (_, _, page) = server.call("GET", &format!("/p/{slug}"), None, None).await;
    assert_eq!(page["org"]["name"], "Acme Labs");
    assert_eq!(page["org"]["primaryColor"], "#1a73e8");
    let logo_url = page["org"]["logoUrl"].as_str().unwrap().to_owned();
    assert_eq!(logo_url, format!("/p/{slug}/logo"));
    let (status, headers, image) = raw(&server, "GET", &logo_url, None, Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(
        appforge_uploads::MediaType::sniff(&image),
        Some(appforge_uploads::MediaType::Png)
    );
    // The org's own logo route still needs a member.
    let (status, _, _) = raw(
        &server,
        "GET",
        &format!("/api/orgs/{org}/branding/logo"),
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Unpublished, the public logo is gone too.
    apps.unpublish(Owner::Org(org), app.id).await.unwrap();
    let (status, _, _) = raw(&server, "GET", &logo_url, None, Vec::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}
