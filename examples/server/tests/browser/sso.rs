//! Single sign-on in the browser: an org's owner points its SSO at the OpenID provider
//! stand-in; signed out, a user types the org's slug into the header's "Sign in with SSO"
//! form, signs in on the provider's page and comes back to the pages signed in, with the
//! token the server issued kept by the pages and accepted by the API.

use serde_json::{Value, json};

use crate::orgs::{User, call};
use crate::support::{Browser, free_port, in_chromium, start_server_on};

/// The OpenID provider stand-in, shared with the API tests.
#[path = "../support/idp.rs"]
mod idp;

use idp::{CLIENT_ID, CLIENT_SECRET, Idp};

/// A secrets key (32 bytes of 7, base64).
const SECRETS_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(appforge_browser),
    ignore = "needs chromium and chromedriver (/usr/bin/chromedriver or CHROMEDRIVER)"
)]
async fn a_user_signs_in_with_sso_through_the_provider_page_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    // The callback comes back to the server itself: its public URL is its own address.
    let port = free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    let idp = Idp::start(&public_url).await;
    let (base, stop) = start_server_on(
        port,
        &dir,
        &[
            ("APPFORGE_SECRETS_KEY", SECRETS_KEY.to_owned()),
            ("APPFORGE_PUBLIC_URL", public_url),
        ],
    )
    .await;

    // The owner creates the org and configures its SSO (new users join as members).
    let owner = User::new("owner@example.com");
    let (status, org) = call(
        &base,
        &owner,
        "POST",
        "/api/orgs",
        json!({ "name": "Acme SSO" }),
    )
    .await;
    assert_eq!(status, 201, "{org}");
    let id = org["id"].as_str().unwrap().to_owned();
    let slug = org["slug"].as_str().unwrap().to_owned();
    let (status, answer) = call(
        &base,
        &owner,
        "PUT",
        &format!("/api/orgs/{id}/sso"),
        json!({
            "issuer": idp.issuer,
            "clientId": CLIENT_ID,
            "clientSecret": CLIENT_SECRET,
            "allowedDomains": ["acme.com"],
            "defaultRole": "member",
            "enforceDomain": true,
        }),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    idp.sign_in_as("ada-sub", "ada@acme.com");

    in_chromium(&base, async |browser| {
        scenario(browser, &base, &idp, &id, &slug).await;
    })
    .await;
    stop.cancel();
}

async fn scenario(browser: &Browser, base: &str, idp: &Idp, org: &str, slug: &str) {
    // Signed out, the header offers single sign-on next to the token field.
    browser.goto("/").await;
    browser.find("#sign-in").await;
    let label = browser
        .find("#sso-sign-in label[for='sso-org']")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(label, "Organization");
    browser
        .find("#sso-org")
        .await
        .send_keys(slug)
        .await
        .unwrap();
    browser.screenshot("sso-01-signed-out").await;
    let button = browser.find("#sso-sign-in button[type=submit]").await;
    assert_eq!(button.text().await.unwrap(), "Sign in with SSO");
    button.click().await.unwrap();

    // The provider's sign-in page, reached through /auth/sso/start.
    let title = browser.find("#idp-title").await.text().await.unwrap();
    assert_eq!(title, "Sign in to the test provider as ada@acme.com");
    let at = browser.client.current_url().await.unwrap();
    assert!(
        at.as_str()
            .starts_with(&format!("{}/authorize?", idp.issuer)),
        "{at}"
    );
    browser.screenshot("sso-02-provider").await;
    browser.find("#idp-continue").await.click().await.unwrap();

    // Back on the pages, signed in as the provider's user; the token left the address bar.
    let who = browser.find("#who").await.text().await.unwrap();
    assert!(who.starts_with("Signed in as ada@acme.com"), "{who}");
    let here = browser.client.current_url().await.unwrap();
    assert!(here.as_str().starts_with(base), "{here}");
    assert_eq!(here.path(), "/");
    assert_eq!(here.fragment(), None, "{here}");
    // The header's space menu lists the org the login joined.
    browser
        .find(&format!("#space-select[data-loaded] option[value='{org}']"))
        .await;
    browser.screenshot("sso-03-signed-in").await;
    browser.assert_clean("sso", &[]).await;

    // The stored token is the server's, for the org's member.
    let token = browser
        .client
        .execute("return localStorage.getItem('appforge.token')", vec![])
        .await
        .unwrap();
    let token = token.as_str().expect("a stored token");
    let answer = reqwest::Client::new()
        .get(format!("{base}/api/orgs"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let orgs: Value = answer.json().await.unwrap();
    let mine = orgs["orgs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == org)
        .unwrap_or_else(|| panic!("{org} in {orgs}"));
    assert_eq!(mine["role"], "member", "{mine}");
    // The org enforces its domain, and the token from its single sign-on reads it.
    let answer = reqwest::Client::new()
        .get(format!("{base}/api/orgs/{org}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}
