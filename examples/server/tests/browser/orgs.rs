//! Organizations in the browser: an owner creates an org and invites a viewer, the viewer
//! accepts through the invitation page and switches the header's space to the org, where the
//! Generate button is gone (and the API refuses a generation); the owner's audit page shows
//! what happened.

use std::time::Duration;

use appforge_core::SecretString;
use appforge_server::JwtKeys;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Browser, SECRET, in_chromium, start_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(appforge_browser),
    ignore = "needs chromium and chromedriver (/usr/bin/chromedriver or CHROMEDRIVER)"
)]
async fn an_invited_viewer_joins_an_org_and_cannot_generate_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let (base, stop) = start_server(&dir, &[]).await;
    in_chromium(&base, async |browser| scenario(browser, &base).await).await;
    stop.cancel();
}

/// A user with a token for the pages and the API.
pub(crate) struct User {
    pub(crate) id: Uuid,
    pub(crate) token: String,
}

impl User {
    /// A new user with `email`, signed by the server's secret for an hour.
    pub(crate) fn new(email: &str) -> Self {
        let id = Uuid::new_v4();
        let token = JwtKeys::new(&SecretString::from(SECRET)).issue(
            id,
            Some(email),
            Duration::from_secs(3600),
        );
        Self { id, token }
    }
}

/// `method base+path` as `user` with a JSON body: the status and the JSON answer.
pub(crate) async fn call(
    base: &str,
    user: &User,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let http = reqwest::Client::new();
    let method = http::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(&user.token);
    if !body.is_null() {
        request = request.json(&body);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

async fn scenario(browser: &Browser, base: &str) {
    let owner = User::new("owner@example.com");
    let viewer = User::new("viewer@example.com");

    // The owner creates an org on /orgs.
    browser.goto("/orgs").await;
    browser.sign_in(&owner.token).await;
    browser.find("#who").await;
    browser
        .find("#org-name")
        .await
        .send_keys("Browser Team")
        .await
        .unwrap();
    browser.find("#create").await.click().await.unwrap();
    let row = browser.find("#orgs tr[data-org]").await;
    let org = row.attr("data-org").await.unwrap().unwrap();
    assert_eq!(
        row.find(fantoccini::Locator::Css(".role"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "owner"
    );
    let created = browser.find("#create-notice").await.text().await.unwrap();
    assert!(created.contains("Browser Team"), "{created}");
    browser.screenshot("orgs-01-created").await;

    // Its members page (the space switches to the org): one member, one seat of five used.
    browser
        .find(&format!("#orgs tr[data-org='{org}'] button.members"))
        .await
        .click()
        .await
        .unwrap();
    browser.find("#org-page:not([hidden]) #members tr").await;
    assert_eq!(
        browser.client.current_url().await.unwrap().path(),
        "/orgs/members"
    );
    let title = browser.find("#org-title").await.text().await.unwrap();
    assert!(title.contains("Browser Team"), "{title}");
    assert_eq!(
        browser.find("#seats").await.text().await.unwrap(),
        "1 used of 5 seats"
    );
    let space = browser.find("#space-select[data-loaded]").await;
    assert_eq!(
        space.prop("value").await.unwrap().as_deref(),
        Some(org.as_str())
    );

    // Invite the viewer: the accept link is shown once and the invitation is listed as open.
    browser
        .find("#invite-email")
        .await
        .send_keys("viewer@example.com")
        .await
        .unwrap();
    browser
        .find("#invite-role")
        .await
        .select_by_value("viewer")
        .await
        .unwrap();
    browser.find("#invite").await.click().await.unwrap();
    let link = browser
        .find("#invite-result:not([hidden]) #accept-url")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    let accept_path = link.strip_prefix(base).unwrap_or(&link).to_owned();
    assert!(accept_path.starts_with("/invitations/afi_"), "{link}");
    browser
        .until(
            "the open invitation is listed and holds a seat",
            "return document.querySelectorAll('#invitations tr').length === 1 \
             && document.querySelector('#seats').textContent === '2 used of 5 seats'",
        )
        .await;
    let invited = browser.find("#invitations tr").await.text().await.unwrap();
    assert!(
        invited.contains("viewer@example.com") && invited.contains("viewer"),
        "{invited}"
    );
    browser.screenshot("orgs-02-invited").await;
    browser.assert_clean("members", &[]).await;

    // The viewer opens the link, signs in and accepts.
    browser.find("#sign-out").await.click().await.unwrap();
    browser.goto(&accept_path).await;
    browser.find("#signed-out:not([hidden])").await;
    browser.sign_in(&viewer.token).await;
    browser
        .find("#accept:not([disabled])")
        .await
        .click()
        .await
        .unwrap();
    browser.find("#accepted:not([hidden])").await;
    assert_eq!(
        browser.find("#joined-org").await.text().await.unwrap(),
        "Browser Team"
    );
    assert_eq!(
        browser.find("#joined-role").await.text().await.unwrap(),
        "viewer"
    );
    browser.screenshot("orgs-03-accepted").await;

    // The viewer switches the header's space to the org on the generate page: no Generate
    // button, and the page says why.
    browser.goto("/").await;
    browser.find("#generate").await;
    assert!(
        browser
            .find("#generate")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    let option = format!("#space-select[data-loaded] option[value='{org}']");
    browser.find(&option).await;
    browser
        .find("#space-select")
        .await
        .select_by_value(&org)
        .await
        .unwrap();
    let notice = browser.find("#viewer-notice:not([hidden])").await;
    let why = notice.text().await.unwrap();
    assert!(
        why.contains("viewer") && why.contains("Browser Team"),
        "{why}"
    );
    assert!(
        !browser
            .find("#generate")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    assert_eq!(
        browser
            .find("#space-select[data-loaded]")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some(org.as_str())
    );
    browser.screenshot("orgs-04-viewer-generate").await;
    browser.assert_clean("viewer in the org", &[]).await;

    // The API agrees: the viewer reads the org's jobs but may not generate there (403), and
    // another org's routes do not exist for them (404). These are the org space's routes;
    // a server without them yet skips this part and says so.
    if serves_the_org_space() {
        api_refuses_the_viewer(base, &owner, &viewer, &org).await;
    } else {
        eprintln!(
            "skipped: the server has no org space routes yet (POST /api/orgs/{{org}}/ai-builder/full-app)"
        );
    }

    // Back to Personal: the viewer generates there as before.
    browser
        .find("#space-select[data-loaded]")
        .await
        .select_by_value("")
        .await
        .unwrap();
    browser
        .until(
            "the generate page is back in Personal",
            "const select = document.querySelector('#space-select[data-loaded]'); \
             return !!select && select.value === '' \
             && document.querySelector('#viewer-notice').hidden \
             && !document.querySelector('#generate').hidden",
        )
        .await;
    assert!(
        browser
            .find("#generate")
            .await
            .is_displayed()
            .await
            .unwrap()
    );

    // The owner's audit page shows the org's creation, the invitation and its acceptance.
    browser.find("#sign-out").await.click().await.unwrap();
    browser.sign_in(&owner.token).await;
    browser.goto("/orgs/audit").await;
    browser.find("#org-page:not([hidden]) #entries tr").await;
    let actions = audit_actions(browser).await;
    for action in ["org.create", "invitation.create", "invitation.accept"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
    let accepted = browser
        .find("#entries tr[data-action='invitation.accept']")
        .await
        .text()
        .await
        .unwrap();
    assert!(accepted.contains(&viewer.id.to_string()), "{accepted}");
    browser.screenshot("orgs-05-audit").await;

    // Filtered to the invitation family, then the chain verified.
    browser
        .find("#audit-action")
        .await
        .send_keys("invitation.")
        .await
        .unwrap();
    browser.find("#audit-apply").await.click().await.unwrap();
    browser
        .until(
            "only invitation entries are listed",
            "const rows = [...document.querySelectorAll('#entries tr')]; \
             return rows.length === 2 && rows.every(r => r.dataset.action.startsWith('invitation.'))",
        )
        .await;
    browser.find("#verify").await.click().await.unwrap();
    let verified = browser
        .find("#verify-result:not([hidden])")
        .await
        .text()
        .await
        .unwrap();
    assert!(verified.contains("intact"), "{verified}");
    let owner_id = owner.id.to_string();
    let actors = browser.find("#entries").await.text().await.unwrap();
    assert!(actors.contains(&owner_id), "{actors}");
    browser.screenshot("orgs-06-audit-verified").await;
    browser.assert_clean("audit", &[]).await;
}

/// The actions of the audit rows shown.
async fn audit_actions(browser: &Browser) -> Vec<String> {
    let value = browser
        .client
        .execute(
            "return [...document.querySelectorAll('#entries tr')].map(r => r.dataset.action)",
            vec![],
        )
        .await
        .unwrap();
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Whether the server serves an org's space (`/api/orgs/{org}/ai-builder/full-app` and the
/// other generation, job and app routes under the org).
fn serves_the_org_space() -> bool {
    appforge_server::routes::ROUTES
        .iter()
        .any(|(method, path)| *method == "post" && *path == "/api/orgs/{org}/ai-builder/full-app")
}

/// The viewer reads the org's jobs, is refused a generation in it (403), and finds another
/// org's generation route absent (404).
async fn api_refuses_the_viewer(base: &str, owner: &User, viewer: &User, org: &str) {
    let (status, body) = call(
        base,
        viewer,
        "GET",
        &format!("/api/orgs/{org}/jobs"),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let generate = json!({ "prompt": "a todo list" });
    let (status, body) = call(
        base,
        viewer,
        "POST",
        &format!("/api/orgs/{org}/ai-builder/full-app"),
        generate.clone(),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "forbidden", "{body}");
    let (status, other) = call(
        base,
        owner,
        "POST",
        "/api/orgs",
        json!({ "name": "Other Team" }),
    )
    .await;
    assert_eq!(status, 201, "{other}");
    let other = other["id"].as_str().unwrap();
    let (status, body) = call(
        base,
        viewer,
        "POST",
        &format!("/api/orgs/{other}/ai-builder/full-app"),
        generate,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "not_found", "{body}");
}
