//! An org's branding in the browser: with a display name, a primary colour and a PNG logo
//! set, a member who switches the header's space to the org sees the org's name and logo in
//! the header and its colour on the pages; the public page of an app the org published
//! shows the org's name, colour and a logo anyone can load, the app's title and its files.

use serde_json::{Value, json};

use crate::orgs::{User, call};
use crate::support::{Browser, in_chromium, start_server};

/// A 24 x 24 PNG in the org's colour.
const LOGO: &[u8] =
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x18\x00\x00\x00\x18\x08\x02\
\x00\x00\x00\x6f\x15\xaa\xaf\x00\x00\x00\x1fIDAT\x78\xda\x63\x90\x2a\x7e\x41\x15\xc4\x30\x6a\
\xd0\xa8\x41\xa3\x06\x8d\x1a\x34\x6a\xd0\xa8\x41\x03\x6f\x10\x00\xae\x82\x47\x6e\x6d\x96\xd3\
\x8c\x00\x00\x00\x00IEND\xae\x42\x60\x82";

const NAME: &str = "Acme Labs";
const COLOUR: &str = "#1a73e8";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(appforge_browser),
    ignore = "needs chromium and chromedriver (/usr/bin/chromedriver or CHROMEDRIVER)"
)]
async fn a_member_sees_the_org_branding_and_its_published_app_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let (base, stop) = start_server(&dir, &[]).await;
    let owner = User::new("owner@example.com");
    let member = User::new("member@example.com");
    let org = branded_org(&base, &owner, &member).await;
    let (preview, title) = published_app(&base, &owner, &org).await;
    in_chromium(&base, async |browser| {
        scenario(browser, &member, &org, &preview, &title).await;
    })
    .await;
    stop.cancel();
}

/// An org of `owner` with `member` as a member, branded with [`NAME`], [`COLOUR`] and
/// [`LOGO`]; answers its id.
async fn branded_org(base: &str, owner: &User, member: &User) -> String {
    let (status, org) = call(base, owner, "POST", "/api/orgs", json!({ "name": "Acme" })).await;
    assert_eq!(status, 201, "{org}");
    let org = org["id"].as_str().unwrap().to_owned();
    let (status, invited) = call(
        base,
        owner,
        "POST",
        &format!("/api/orgs/{org}/invitations"),
        json!({ "email": "member@example.com", "role": "member" }),
    )
    .await;
    assert_eq!(status, 201, "{invited}");
    let token = invited["token"].as_str().unwrap();
    let (status, joined) = call(
        base,
        member,
        "POST",
        &format!("/api/invitations/{token}/accept"),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{joined}");

    let (status, branding) = call(
        base,
        owner,
        "PUT",
        &format!("/api/orgs/{org}/branding"),
        json!({ "displayName": NAME, "primaryColor": COLOUR }),
    )
    .await;
    assert_eq!(status, 200, "{branding}");
    let answer = reqwest::Client::new()
        .put(format!("{base}/api/orgs/{org}/branding/logo"))
        .bearer_auth(&owner.token)
        .header("content-type", "image/png")
        .body(LOGO)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{:?}", answer.text().await);
    org
}

/// An app generated in the org's space on the offline provider and published; answers its
/// public path (`/p/{slug}`) and its title.
async fn published_app(base: &str, owner: &User, org: &str) -> (String, String) {
    let (status, job) = call(
        base,
        owner,
        "POST",
        &format!("/api/orgs/{org}/ai-builder/full-app"),
        json!({ "prompt": "a landing page for the team" }),
    )
    .await;
    assert_eq!(status, 202, "{job}");
    let job = job["jobId"].as_str().unwrap();
    // The job's event stream ends with the job.
    let events = reqwest::Client::new()
        .get(format!("{base}/api/orgs/{org}/jobs/{job}/events"))
        .bearer_auth(&owner.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(events.contains("event: completed"), "{events}");
    let (status, apps) = call(
        base,
        owner,
        "GET",
        &format!("/api/orgs/{org}/apps"),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{apps}");
    let app = apps["items"][0]["id"].as_str().unwrap();
    let (status, published) = call(
        base,
        owner,
        "POST",
        &format!("/api/orgs/{org}/apps/{app}/publish"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{published}");
    let preview = published["previewPath"].as_str().unwrap().to_owned();
    assert!(preview.starts_with("/p/"), "{preview}");
    let title = published["title"].as_str().unwrap().to_owned();
    assert!(!title.is_empty(), "{published}");
    (preview, title)
}

async fn scenario(browser: &Browser, member: &User, org: &str, preview: &str, title: &str) {
    // In Personal the header is appforge's own.
    browser.goto("/").await;
    browser.sign_in(&member.token).await;
    browser.find("#who").await;
    let option = format!("#space-select[data-loaded] option[value='{org}']");
    browser.find(&option).await;
    assert_eq!(
        browser.find(".top .brand").await.text().await.unwrap(),
        "appforge"
    );

    // In the org's space: the org's display name and logo, and its colour as the accent.
    browser
        .find("#space-select")
        .await
        .select_by_value(org)
        .await
        .unwrap();
    let brand = format!(".top .brand[data-org='{org}']");
    let name = browser
        .find(&format!("{brand} .brand-name"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(name, NAME);
    browser
        .until(
            "the header's logo has loaded",
            &format!(
                "const img = document.querySelector(\"{brand} img.brand-logo\"); \
                 return !!img && img.complete && img.naturalWidth > 0;"
            ),
        )
        .await;
    let logo = browser.find(&format!("{brand} img.brand-logo")).await;
    let natural = browser
        .client
        .execute(
            "return arguments[0].naturalWidth",
            vec![serde_json::to_value(&logo).unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(natural, 24, "the stored logo's width");
    let accent = browser
        .client
        .execute(
            "return getComputedStyle(document.documentElement).getPropertyValue('--accent').trim()",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(accent, COLOUR);
    browser.screenshot("branded").await;
    browser.assert_clean("branded header", &[]).await;

    // The app's public page, opened by anyone: the org's name, its logo loaded from the
    // public address, its colour as the page's accent, the app's title and its files.
    browser.goto(preview).await;
    browser.find("#public-app[data-loaded]").await;
    assert_eq!(
        browser.find("#public-org-name").await.text().await.unwrap(),
        NAME
    );
    browser
        .until(
            "the public logo has loaded",
            "const img = document.querySelector('#public-logo'); \
             return !!img && img.complete && img.naturalWidth > 0;",
        )
        .await;
    let logo = browser.find("#public-logo").await;
    assert_eq!(
        logo.attr("src").await.unwrap().as_deref(),
        Some(format!("{preview}/logo").as_str())
    );
    assert_eq!(logo.attr("alt").await.unwrap().as_deref(), Some(NAME));
    let accent = browser
        .client
        .execute(
            "return document.querySelector('#public-app').style.getPropertyValue('--accent')",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(accent, COLOUR, "the org's colour on the page itself");
    assert_eq!(
        browser.find("#public-title").await.text().await.unwrap(),
        title
    );
    assert!(
        browser.count("#public-files li.public-file pre").await >= 1,
        "the files are listed"
    );
    browser.screenshot("branded-public-app").await;
    // The page links the favicon like the others, so Chromium asks for nothing missing.
    browser.assert_clean("public app", &[]).await;

    // Nothing published at an address: the page answers 404 and says so.
    browser.goto("/p/not-published").await;
    let missing = browser.find("#public-missing:not([hidden]) h1").await;
    assert_eq!(missing.text().await.unwrap(), "This app is not published");
    assert!(
        browser
            .find("#public-app")
            .await
            .attr("hidden")
            .await
            .unwrap()
            .is_some()
    );
    browser
        .assert_clean("unpublished app", &["/p/not-published", "404"])
        .await;
}
