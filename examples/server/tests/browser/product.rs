//! The product on the offline provider: generate, modify, plan, history, the library, the
//! quota prompt, a phone-sized window, pricing and billing without Stripe, and the dashboard.

use std::time::Duration;

use appforge_core::SecretString;
use appforge_server::JwtKeys;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{ADMIN, Browser, SECRET, in_chromium, start_server};

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
    // The saved version shows as a live preview first; the code is behind the switch.
    browser
        .find("#job-preview [data-view=code]")
        .await
        .click()
        .await
        .unwrap();
    let code = browser.find("#code-text").await.text().await.unwrap();
    assert!(!code.trim().is_empty(), "the selected file's code is shown");
    let tokens = browser.find("#tokens").await.text().await.unwrap();
    assert!(tokens.contains('/') && tokens != "–", "{tokens}");
    assert!(browser.count("#dependencies li").await > 0);
    // The setup is the downloaded folder's own (its README's commands), and the project files
    // the download adds are named.
    let setup = browser.find("#setup").await.text().await.unwrap();
    assert_eq!(setup, "1. npm install\n2. npm run dev\n3. npm run build");
    let scaffolded = browser.find("#scaffolded").await.text().await.unwrap();
    assert!(
        scaffolded.contains("package.json, tsconfig.json, vite.config.ts"),
        "{scaffolded}"
    );
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
