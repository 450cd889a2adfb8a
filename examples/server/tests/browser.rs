//! The web interface in headless Chromium, driven over WebDriver by `chromedriver`: sign in,
//! generate on the offline provider and watch the files appear, re-open the job from the
//! history, run into the Free plan's limit, and open the queue dashboard with the admin token.
//!
//! Each page is saved as a screenshot in `target/browser-artifacts/`, and the browser's log
//! must hold no errors beyond the HTTP answers a step expects (a 429, a 503).
//!
//! Needs `chromium` and `chromedriver` (`apt-get install chromium chromium-driver`); the build
//! script enables it when `/usr/bin/chromedriver` exists or `CHROMEDRIVER` names one.
#![cfg_attr(not(appforge_browser), allow(dead_code, unused_imports))]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use appforge_core::SecretString;
use appforge_server::{Config, JwtKeys, server};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use uuid::Uuid;

const SECRET: &str = "browser-test-secret-of-sufficient-length-0123";
const ADMIN: &str = "browser-admin-token";
const WAIT: Duration = Duration::from_secs(30);

/// A chromedriver child on a free port, killed on drop.
struct Driver {
    _child: Child,
    url: String,
}

impl Driver {
    async fn start() -> Self {
        let binary =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let port = free_port();
        let child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        let url = format!("http://127.0.0.1:{port}");
        // Ready once /status answers; chromedriver starts in well under a second.
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(r) = http.get(format!("{url}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver never became ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { _child: child, url }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `POST /session/{id}/se/log {"type": "browser"}`: the browser's console and network log.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _url: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": "browser" }).to_string()),
        )
    }
}

struct Browser {
    client: Client,
    base: String,
    artifacts: PathBuf,
}

impl Browser {
    async fn open(driver: &Driver, base: String) -> Self {
        let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,1000",
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .expect("a Chromium session");
        let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
            PathBuf::from,
        );
        let artifacts = target.join("browser-artifacts");
        std::fs::create_dir_all(&artifacts).unwrap();
        Self {
            client,
            base,
            artifacts,
        }
    }

    async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    /// Signs in with `token` through the header's sign-in box.
    async fn sign_in(&self, token: &str) {
        self.find("#token-input")
            .await
            .send_keys(token)
            .await
            .unwrap();
        self.find("#sign-in button[type=submit]")
            .await
            .click()
            .await
            .unwrap();
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    /// Waits until `script` (a function body returning a boolean) holds.
    async fn until(&self, what: &str, script: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let value = self.client.execute(script, vec![]).await.unwrap();
            if value == Value::Bool(true) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.artifacts.join(format!("{name}.png")), png).unwrap();
    }

    /// The log's errors since the last call, except those containing every `expected` text
    /// (the failed request a step expects, as Chromium logs it).
    async fn errors(&self, expected: &[&str]) -> Vec<String> {
        let log = self.client.issue_cmd(BrowserLog).await.unwrap();
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .filter(|message| expected.is_empty() || !expected.iter().all(|e| message.contains(e)))
            .collect()
    }

    async fn assert_clean(&self, page: &str, expected: &[&str]) {
        let errors = self.errors(expected).await;
        assert!(errors.is_empty(), "{page}: console errors {errors:#?}");
    }
}

/// The server on a free port over a fresh SQLite file, with the offline provider paced so
/// that files arrive one after another.
async fn start_server(
    dir: &tempfile::TempDir,
    extra: &[(&'static str, String)],
) -> (String, tokio_util::sync::CancellationToken) {
    let port = free_port();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("app.db").display());
    let mut env = vec![
        ("DATABASE_URL", url),
        ("APPFORGE_ADDR", format!("127.0.0.1:{port}")),
        ("APPFORGE_JWT_SECRET", SECRET.to_owned()),
        ("APPFORGE_ADMIN_TOKEN", ADMIN.to_owned()),
        ("APPFORGE_WORKERS", "2".to_owned()),
        ("APPFORGE_DEMO_PACE_MS", "3".to_owned()),
    ];
    env.extend(extra.iter().cloned());
    let config =
        Config::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
    let (state, _) = server::assemble(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let signal = stop.clone();
    tokio::spawn(async move {
        server::serve(state, listener, async move { signal.cancelled().await })
            .await
            .unwrap();
    });
    (format!("http://127.0.0.1:{port}"), stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(appforge_browser),
    ignore = "needs chromium and chromedriver (/usr/bin/chromedriver or CHROMEDRIVER)"
)]
async fn the_pages_work_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let (base, stop) = start_server(&dir, &[]).await;
    in_chromium(&base, async |browser| scenario(browser, &base).await).await;
    stop.cancel();
}

/// Runs `steps` in a fresh Chromium session, which ends even when a step fails, so that no
/// Chromium outlives the test.
async fn in_chromium(base: &str, steps: impl AsyncFnOnce(&Browser)) {
    use futures::FutureExt;

    let driver = Driver::start().await;
    let browser = Browser::open(&driver, base.to_owned()).await;
    let outcome = std::panic::AssertUnwindSafe(steps(&browser))
        .catch_unwind()
        .await;
    browser.client.close().await.unwrap();
    drop(driver);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn scenario(browser: &Browser, base: &str) {
    let user = Uuid::new_v4();
    let token = JwtKeys::new(&SecretString::from(SECRET)).issue(
        user,
        Some("browser@example.com"),
        Duration::from_secs(3600),
    );

    // Sign in: the page says which user it acts for.
    browser.goto("/").await;
    browser.find("#sign-in").await;
    browser.screenshot("01-generate-signed-out").await;
    browser.sign_in(&token).await;
    let who = browser.find("#who").await.text().await.unwrap();
    assert!(
        who.contains("browser@example.com") && who.contains(&user.to_string()),
        "{who}"
    );

    // Generate: files appear in the tree, then the job completes with its result.
    browser
        .find("#prompt")
        .await
        .send_keys("a todo list with filters")
        .await
        .unwrap();
    browser.find("#generate").await.click().await.unwrap();
    browser.find("#file-tree li").await;
    browser
        .until(
            "the job completes",
            "return !!document.querySelector('#job-status .badge.completed') \
             && !document.querySelector('#app-result').hidden",
        )
        .await;
    let job_url = browser.client.current_url().await.unwrap();
    let job_path = job_url.path().to_owned();
    assert!(job_path.starts_with("/jobs/"), "{job_path}");
    let files = browser.count("#file-tree li").await;
    assert!(files > 1, "{files} files");
    assert_eq!(
        browser.count("#file-tree button[data-state=done]").await,
        files,
        "every file is complete"
    );
    let code = browser.find("#code-text").await.text().await.unwrap();
    assert!(!code.trim().is_empty(), "the selected file's code is shown");
    let tokens = browser.find("#tokens").await.text().await.unwrap();
    assert!(tokens.contains('/') && tokens != "–", "{tokens}");
    assert!(browser.count("#dependencies li").await > 0);
    browser.screenshot("02-generate-completed").await;
    browser.assert_clean("generate", &[]).await;

    // Modify the finished app, then plan it in phases.
    browser
        .find("#modify-prompt")
        .await
        .send_keys("add a dark mode toggle")
        .await
        .unwrap();
    browser.find("#modify").await.click().await.unwrap();
    browser
        .until(
            "the modification completes with the changed app",
            &format!(
                "return location.pathname !== {job_path:?} \
             && !!document.querySelector('#job-status .badge.completed') \
             && !document.querySelector('#app-result').hidden \
             && document.querySelectorAll('#file-tree li').length > 1"
            ),
        )
        .await;
    let modify_path = browser
        .client
        .current_url()
        .await
        .unwrap()
        .path()
        .to_owned();
    assert_ne!(modify_path, job_path);
    browser.screenshot("03-modify-completed").await;
    browser.find("#plan").await.click().await.unwrap();
    browser.find("#phases li").await;
    assert!(
        browser
            .find("#workspace")
            .await
            .attr("hidden")
            .await
            .unwrap()
            .is_some()
    );
    browser.screenshot("04-plan-in-phases").await;
    browser.assert_clean("modify and plan", &[]).await;

    // History: the job is listed and re-opens on its page.
    browser.goto("/jobs").await;
    browser.find("#jobs tr").await;
    browser.screenshot("05-history").await;
    browser
        .find("#status-filter")
        .await
        .select_by_value("failed")
        .await
        .unwrap();
    browser.find("#empty:not([hidden])").await;
    browser
        .find("#status-filter")
        .await
        .select_by_value("completed")
        .await
        .unwrap();
    browser
        .find("#kind-filter")
        .await
        .select_by_value("full_app")
        .await
        .unwrap();
    browser
        .until(
            "only the full-app job is listed",
            "return document.querySelectorAll('#jobs tr').length === 1",
        )
        .await;
    browser.find("a.job-link").await.click().await.unwrap();
    browser
        .until(
            "the re-opened job shows its files",
            "return !!document.querySelector('#job-status .badge.completed') \
             && document.querySelectorAll('#file-tree li').length > 1",
        )
        .await;
    assert_eq!(browser.client.current_url().await.unwrap().path(), job_path);
    browser.screenshot("06-job-reopened").await;
    browser.assert_clean("history", &[]).await;

    // The library: the generation and its modification are one app with two versions.
    browser.goto("/apps").await;
    browser.find("#apps a.app-link").await;
    assert_eq!(browser.count("#apps tr").await, 1, "one app in the library");
    browser.screenshot("06a-library").await;
    browser
        .find("#apps a.app-link")
        .await
        .click()
        .await
        .unwrap();
    browser
        .until(
            "the app page lists both versions and shows the current files",
            "return document.querySelectorAll('#versions tr').length === 2 \
             && document.querySelector('#app-version').textContent === 'v2' \
             && document.querySelector('#files-version').textContent === '2' \
             && document.querySelectorAll('#file-tree li').length > 1",
        )
        .await;
    let app_path = browser
        .client
        .current_url()
        .await
        .unwrap()
        .path()
        .to_owned();
    assert!(app_path.starts_with("/apps/"), "{app_path}");
    // Compare v1 with v2: the modification's changes, line by line.
    browser
        .find("#diff-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    browser
        .until(
            "the diff shows changed lines",
            "return document.querySelectorAll('#diff .diff-file').length > 0 \
             && !!document.querySelector('#diff .diff span.add, #diff .diff span.del')",
        )
        .await;
    let summary = browser.find("#diff-summary").await.text().await.unwrap();
    assert!(summary.starts_with("From v1 to v2"), "{summary}");
    browser.screenshot("06b-app-versions-and-diff").await;
    // View version 1, then restore it as version 3.
    browser
        .find("#versions button[data-view='1']")
        .await
        .click()
        .await
        .unwrap();
    browser
        .until(
            "version 1's files are shown",
            "return document.querySelector('#files-version').textContent === '1'",
        )
        .await;
    browser
        .find("#versions button[data-restore='1']")
        .await
        .click()
        .await
        .unwrap();
    browser
        .until(
            "the restore is version 3",
            "return document.querySelectorAll('#versions tr').length === 3 \
             && document.querySelector('#app-version').textContent === 'v3'",
        )
        .await;
    // Publish: the preview address answers anyone, with the published version.
    browser.find("#publish").await.click().await.unwrap();
    let preview = browser.find("#preview-link:not([hidden])").await;
    let href = preview.attr("href").await.unwrap().unwrap_or_default();
    assert!(href.starts_with("/p/"), "{href}");
    let public: Value = reqwest::get(format!("{base}{href}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(public["version"], 3);
    browser.screenshot("06c-app-published").await;
    browser.assert_clean("library and app", &[]).await;

    // The zip download answers an archive for the signed-in user.
    let http = reqwest::Client::new();
    let zip = http
        .get(format!("{base}/api{job_path}/zip"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(zip.status(), 200);
    assert_eq!(zip.headers()["content-type"], "application/zip");

    // Exhaust the Free plan (5 a day; three used above): the page shows the upgrade prompt
    // with the reset time.
    for _ in 0..2 {
        let answer = http
            .post(format!("{base}/api/ai-builder/full-app"))
            .bearer_auth(&token)
            .json(&json!({ "prompt": "another app" }))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202);
    }
    browser.goto("/").await;
    browser
        .find("#prompt")
        .await
        .send_keys("one app too many")
        .await
        .unwrap();
    browser.find("#generate").await.click().await.unwrap();
    let prompt = browser.find("#quota-prompt:not([hidden])").await;
    let text = prompt.text().await.unwrap();
    assert!(text.contains("resets at"), "{text}");
    assert!(text.contains("5 of 5"), "{text}");
    let resets = browser
        .find("#quota-detail")
        .await
        .attr("data-resets-at")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(resets.ends_with('Z'), "a reset time: {resets:?}");
    browser.screenshot("07-quota-upgrade-prompt").await;
    browser
        .assert_clean("quota", &["/api/ai-builder/full-app", "429"])
        .await;

    // A phone-sized window: nothing overflows sideways.
    browser.client.set_window_size(375, 812).await.unwrap();
    browser.goto(&job_path).await;
    browser.find("#job-status .badge.completed").await;
    browser
        .until(
            "the page fits 375 px",
            "return document.documentElement.scrollWidth <= window.innerWidth",
        )
        .await;
    browser.screenshot("08-job-phone").await;
    browser.client.set_window_size(1280, 1000).await.unwrap();

    // Pricing marks the current plan; billing says that Stripe is not configured.
    browser.goto("/pricing").await;
    let current = browser.find("#plans tr[aria-current=true]").await;
    assert_eq!(
        current.attr("data-plan").await.unwrap().as_deref(),
        Some("free")
    );
    browser
        .find("#plans button[data-plan=pro]")
        .await
        .click()
        .await
        .unwrap();
    let notice = browser
        .find("#pricing-notice:not([hidden])")
        .await
        .text()
        .await
        .unwrap();
    assert!(notice.contains("not configured"), "{notice}");
    browser.screenshot("09-pricing").await;
    browser
        .assert_clean("pricing", &["/api/stripe/checkout", "503"])
        .await;
    browser.goto("/account/billing").await;
    let notice = browser
        .find("#billing-notice:not([hidden])")
        .await
        .text()
        .await
        .unwrap();
    assert!(notice.contains("not configured"), "{notice}");
    browser.screenshot("10-billing").await;
    browser
        .assert_clean("billing", &["/api/billing/subscription", "503"])
        .await;

    // The dashboard with the admin token: numbers, chart, workers, and the metrics report
    // of today with the five generations (and the refused sixth).
    browser.goto("/admin/queues").await;
    browser
        .find("#admin-token")
        .await
        .send_keys(ADMIN)
        .await
        .unwrap();
    browser
        .find("#admin-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    browser.find("#dashboard:not([hidden])").await;
    browser.find("#chart svg rect.completed").await;
    browser
        .until(
            "all five jobs are counted",
            "return document.querySelector('#card-completed .value').textContent === '5'",
        )
        .await;
    assert!(browser.count("#workers tr").await >= 1);
    // The recorder writes in the background: show the report again until it has them all.
    browser
        .until(
            "the metrics count the five generations",
            "const box = document.querySelector('#metrics');
             const value = (id) => { const n = document.querySelector(id + ' .value'); return n && n.textContent; };
             if (value('#metrics-requested') === '5' && value('#metrics-outcomes') === '5 / 0 / 0') return true;
             if (box.hasAttribute('data-loaded')) document.querySelector('#metrics-form button[type=submit]').click();
             return false;",
        )
        .await;
    assert_eq!(browser.count("#metrics-unavailable").await, 0);
    let active = browser
        .find("#metrics-active .value")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(active, "1 / 1 / 1", "one user today");
    let tokens = browser
        .find("#metrics-tokens .value")
        .await
        .text()
        .await
        .unwrap();
    assert!(!tokens.starts_with("0 /"), "tokens were used: {tokens}");
    let rate = browser
        .find("#metrics-failure-rate .value")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(rate, "0 %");
    browser.find("#metrics-chart svg rect.completed").await;
    browser
        .client
        .execute(
            "document.querySelector('#metrics-heading').scrollIntoView()",
            vec![],
        )
        .await
        .unwrap();
    browser.screenshot("12-admin-metrics").await;
    let live = browser.find("#live").await.text().await.unwrap();
    assert!(live.starts_with("Live"), "{live}");
    browser.screenshot("11-admin-dashboard").await;
    browser.assert_clean("dashboard", &[]).await;
}

const WEBHOOK_SECRET: &str = "whsec_browser_7c1e8b6d3f0a5c4f2d9a";
/// The user and price the billing crate's recorded fixtures carry.
const STRIPE_USER: &str = "7d6f0b4e-3a52-4c1e-9f0a-2b8e5d1c9a41";
const PRO_MONTHLY: &str = "price_1RqA2bKfT7xYw2QeP7oMonthly";

fn fixture(kind: &str, name: &str) -> String {
    let path = format!(
        "{}/../../crates/appforge-billing/tests/fixtures/{kind}/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A Stripe stand-in: the subscription (Pro, cancelling at the period's end) and a customer
/// portal session whose page is the stand-in's own, so the browser never leaves this machine.
async fn stripe_stand_in() -> wiremock::MockServer {
    use wiremock::matchers::{method, path, path_regex};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let stripe = MockServer::start().await;
    let mut subscription: Value =
        serde_json::from_str(&fixture("api", "subscription-active-pro")).unwrap();
    subscription["cancel_at_period_end"] = json!(true);
    // The recorded object's period is in the past; a live one runs around now.
    let now = chrono::Utc::now().timestamp();
    for item in subscription["items"]["data"].as_array_mut().unwrap() {
        item["current_period_start"] = json!(now - 10 * 86_400);
        item["current_period_end"] = json!(now + 20 * 86_400);
    }
    Mock::given(method("GET"))
        .and(path_regex("^/v1/subscriptions/.+"))
        .respond_with(ResponseTemplate::new(200).set_body_json(subscription))
        .mount(&stripe)
        .await;
    let mut portal: Value =
        serde_json::from_str(&fixture("api", "billing-portal-session")).unwrap();
    portal["url"] = json!(format!("{}/portal/session", stripe.uri()));
    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(portal))
        .mount(&stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/portal/session"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            "<!doctype html><title>Customer portal</title><h1>Customer portal</h1>",
            "text/html",
        ))
        .mount(&stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/favicon.ico"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&stripe)
        .await;
    stripe
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(appforge_browser),
    ignore = "needs chromium and chromedriver (/usr/bin/chromedriver or CHROMEDRIVER)"
)]
async fn the_billing_pages_show_a_stripe_subscription_in_chromium() {
    let stripe = stripe_stand_in().await;
    let dir = tempfile::tempdir().unwrap();
    let (base, stop) = start_server(
        &dir,
        &[
            ("STRIPE_SECRET_KEY", "sk_test_51Pz9QeKfT7xYw2Qe".to_owned()),
            ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
            ("STRIPE_API_BASE", stripe.uri()),
            ("STRIPE_PRICE_PRO", PRO_MONTHLY.to_owned()),
        ],
    )
    .await;
    // Stripe's deliveries: the checkout, the subscription, then a renewal payment that failed
    // just now (its grace period runs from the event's time).
    let http = reqwest::Client::new();
    for name in [
        "01-checkout.session.completed",
        "03-customer.subscription.updated-pro",
        "05-invoice.payment_failed",
    ] {
        let mut event: Value = serde_json::from_str(&fixture("events", name)).unwrap();
        if name.ends_with("payment_failed") {
            event["created"] = json!(chrono::Utc::now().timestamp());
        }
        let body = event.to_string();
        let signature = appforge_billing::sign_payload(
            &SecretString::from(WEBHOOK_SECRET),
            chrono::Utc::now().timestamp(),
            body.as_bytes(),
        );
        let answer = http
            .post(format!("{base}/api/stripe/webhook"))
            .header("stripe-signature", signature)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{name}");
    }
    let user: Uuid = STRIPE_USER.parse().unwrap();
    let token = JwtKeys::new(&SecretString::from(SECRET)).issue(
        user,
        Some("subscriber@example.com"),
        Duration::from_secs(3600),
    );
    let portal_page = format!("{}/portal/session", stripe.uri());
    in_chromium(&base, async |browser| {
        browser.goto("/account/billing").await;
        browser.sign_in(&token).await;
        // Plan, status, period end and renewal, with the past-due warning.
        browser
            .until(
                "the subscription is shown",
                "return document.querySelectorAll('#subscription dt').length >= 4",
            )
            .await;
        let details = browser.find("#subscription").await.text().await.unwrap();
        for expected in [
            "pro",
            "Current period ends",
            "Cancels at the end of the period",
        ] {
            assert!(details.contains(expected), "{expected:?} in {details}");
        }
        let warning = browser
            .find("#past-due:not([hidden])")
            .await
            .text()
            .await
            .unwrap();
        assert!(warning.contains("last payment failed"), "{warning}");
        browser.screenshot("20-billing-past-due").await;
        browser.assert_clean("billing with Stripe", &[]).await;

        // Pricing marks the Pro plan as the current one.
        browser.goto("/pricing").await;
        let current = browser.find("#plans tr[aria-current=true]").await;
        assert_eq!(
            current.attr("data-plan").await.unwrap().as_deref(),
            Some("pro")
        );
        browser.screenshot("21-pricing-pro").await;
        browser.assert_clean("pricing on Pro", &[]).await;

        // The portal button opens the customer portal session Stripe answered.
        browser.goto("/account/billing").await;
        browser.find("#subscription dt").await;
        browser.find("#portal").await.click().await.unwrap();
        browser
            .until(
                "the customer portal opens",
                &format!("return location.href === {portal_page:?}"),
            )
            .await;
    })
    .await;
    stop.cancel();
}
