//! Live previews in Chromium: the demo habit tracker runs in the generate page's preview frame
//! and answers a click; a modification's new version replaces the preview; the device widths
//! and the Preview / Code switch; a syntax error shows the overlay naming the file and line;
//! and the sandbox: the preview's script reads neither the product's storage nor its API.
//!
//! React comes from the npm tarballs in `APPFORGE_NPM_TARBALLS` (`.ci/run` packs them),
//! imported into the server's dependency cache: the server is offline.

use std::time::Duration;

use appforge_apps::{AppStore, NewApp, NewVersion};
use appforge_core::SecretString;
use appforge_llm::AppFile;
use appforge_server::JwtKeys;
use fantoccini::Locator;
use uuid::Uuid;

use crate::support::{Browser, SECRET, free_port, in_chromium, start_server_with_state};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(appforge_browser),
    ignore = "needs chromium and chromedriver (/usr/bin/chromedriver or CHROMEDRIVER)"
)]
async fn previews_run_sandboxed_in_chromium() {
    let Some(tarballs) = appforge_testing::npm_tarballs() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The server's default cache is `preview-cache` beside its database.
    let cache = appforge_preview::DepCache::new(dir.path().join("preview-cache"), 1 << 30).unwrap();
    for entry in std::fs::read_dir(&tarballs).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "tgz") {
            cache
                .import_tarball(&std::fs::read(path).unwrap(), Default::default())
                .unwrap();
        }
    }
    let (base, stop, state) = start_server_with_state(free_port(), &dir, &[]).await;
    let user = Uuid::new_v4();
    let token = JwtKeys::new(&SecretString::from(SECRET)).issue(
        user,
        Some("preview@example.com"),
        Duration::from_secs(3600),
    );
    let save = async |files: &[(&str, &str)]| {
        let files = files
            .iter()
            .map(|(path, content)| AppFile::new(*path, *content))
            .collect();
        state
            .apps()
            .create_app(user.into(), NewApp::new("Probe", NewVersion::files(files)))
            .await
            .unwrap()
            .app
            .id
    };
    let broken = save(&[("src/main.ts", "const ok = 1;\nlet x = ;\n")]).await;
    let probe = save(&[
        (
            "index.html",
            "<div id=\"root\"></div><script type=\"module\" src=\"/src/main.ts\"></script>",
        ),
        ("src/main.ts", PROBE),
    ])
    .await;
    in_chromium(&base, async |browser| {
        generate_and_click(browser, &token).await;
        overlay(browser, broken).await;
        sandbox(browser, probe, &token).await;
    })
    .await;
    stop.cancel();
}

/// Reads what a preview could reach and writes it into the page; then throws, for the
/// parent's runtime error list.
const PROBE: &str = r"
const out: Record<string, string> = {};
const show = () => { document.getElementById('root')!.textContent = JSON.stringify(out); };
try { out.storage = String(localStorage.getItem('appforge.token')); } catch { out.storage = 'denied'; }
try { out.parentStorage = String(window.parent.localStorage.getItem('appforge.token')); } catch { out.parentStorage = 'denied'; }
try { out.parentDocument = String(window.parent.document.title); } catch { out.parentDocument = 'denied'; }
try { out.cookie = document.cookie; } catch { out.cookie = 'denied'; }
fetch('/api/apps').then((r) => { out.api = 'status ' + r.status; show(); }, () => { out.api = 'blocked'; show(); });
show();
setTimeout(() => { throw new Error('boom from the preview'); }, 0);
";

/// Waits until the generate page's preview shows `version`, built.
async fn built(browser: &Browser, version: u32) {
    browser
        .until(
            &format!("the preview of version {version} is built"),
            &format!(
                "const f = document.querySelector('#job-preview iframe'); \
                 const s = document.querySelector('#job-preview .preview-status'); \
                 return !document.querySelector('#job-preview').hidden && !!f && !!s \
                 && f.getAttribute('data-version') === '{version}' \
                 && /^Version {version} \\(\\d+ modules\\)$/.test(s.textContent)"
            ),
        )
        .await;
}

/// Switches into the preview frame of `container`.
async fn enter(browser: &Browser, container: &str) {
    browser
        .find(&format!("{container} iframe.preview-frame"))
        .await
        .enter_frame()
        .await
        .unwrap();
}

/// The text of `css` inside the current frame, once it is there.
async fn text_in_frame(browser: &Browser, css: &str) -> String {
    browser
        .client
        .wait()
        .at_most(crate::support::WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} in the preview: {e}"))
        .text()
        .await
        .unwrap()
}

async fn generate_and_click(browser: &Browser, token: &str) {
    browser.goto("/").await;
    browser.sign_in(token).await;
    browser
        .find("#prompt")
        .await
        .send_keys("a habit tracker with streaks")
        .await
        .unwrap();
    browser.find("#generate").await.click().await.unwrap();
    built(browser, 1).await;
    // The code is one click away; the preview is what shows first.
    assert!(
        browser
            .find("#workspace")
            .await
            .attr("hidden")
            .await
            .unwrap()
            .is_some()
    );

    // In the frame: the app renders, and adding a habit changes the page.
    enter(browser, "#job-preview").await;
    assert_eq!(text_in_frame(browser, "h1").await, "Streaks");
    browser
        .find("#habit-name")
        .await
        .send_keys("Read 10 pages")
        .await
        .unwrap();
    browser
        .find("button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let card = text_in_frame(browser, "section[aria-label=Habits] h2").await;
    assert!(card.contains("Read 10 pages"), "{card}");
    browser.client.enter_parent_frame().await.unwrap();
    browser.screenshot("preview-01-habit-tracker").await;

    // Device widths: the phone's frame is 375 px wide.
    browser
        .find("#job-preview [data-width=phone]")
        .await
        .click()
        .await
        .unwrap();
    browser
        .until(
            "the frame is phone-sized",
            "return document.querySelector('#job-preview iframe').getBoundingClientRect().width === 375",
        )
        .await;
    browser.screenshot("preview-02-phone").await;
    browser
        .find("#job-preview [data-width=desktop]")
        .await
        .click()
        .await
        .unwrap();

    // Code: the files; Preview: back to the app.
    browser
        .find("#job-preview [data-view=code]")
        .await
        .click()
        .await
        .unwrap();
    assert!(
        browser
            .find("#workspace")
            .await
            .attr("hidden")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        browser
            .find("#job-preview .preview")
            .await
            .attr("hidden")
            .await
            .unwrap()
            .is_some()
    );
    browser
        .find("#job-preview [data-view=preview]")
        .await
        .click()
        .await
        .unwrap();

    // A todo list, then a modification of it: the preview follows the new version.
    browser.goto("/").await;
    browser
        .find("#prompt")
        .await
        .send_keys("a todo list")
        .await
        .unwrap();
    browser.find("#generate").await.click().await.unwrap();
    built(browser, 1).await;
    browser
        .find("#modify-prompt")
        .await
        .send_keys("add a dark mode toggle")
        .await
        .unwrap();
    browser.find("#modify").await.click().await.unwrap();
    built(browser, 2).await;
    enter(browser, "#job-preview").await;
    let dark = browser
        .client
        .wait()
        .at_most(crate::support::WAIT)
        .for_element(Locator::XPath("//button[contains(translate(., 'DARK', 'dark'), 'dark') or contains(@aria-label, 'dark')]"))
        .await;
    assert!(dark.is_ok(), "version 2 has the dark mode toggle");
    browser.client.enter_parent_frame().await.unwrap();
    browser.screenshot("preview-03-modified").await;
    browser.assert_clean("generate page previews", &[]).await;
}

async fn overlay(browser: &Browser, app: Uuid) {
    browser.goto(&format!("/apps/{app}")).await;
    browser
        .until(
            "the build error is listed under the frame",
            "const e = document.querySelector('#app-preview .preview-errors li.build'); \
             return !!e && e.textContent.includes('src/main.ts:2:9')",
        )
        .await;
    enter(browser, "#app-preview").await;
    let overlay = text_in_frame(browser, "body").await;
    assert!(overlay.contains("src/main.ts:2:9"), "{overlay}");
    assert!(overlay.contains("let x = ;"), "{overlay}");
    browser.client.enter_parent_frame().await.unwrap();
    browser.screenshot("preview-04-overlay").await;
}

async fn sandbox(browser: &Browser, app: Uuid, token: &str) {
    browser.goto(&format!("/apps/{app}")).await;
    enter(browser, "#app-preview").await;
    browser
        .until(
            "the probe has its answers",
            "const root = document.getElementById('root'); return !!root && root.textContent.includes('\"api\"')",
        )
        .await;
    let seen = text_in_frame(browser, "#root").await;
    browser.client.enter_parent_frame().await.unwrap();
    let probe: serde_json::Value = serde_json::from_str(&seen).unwrap_or_else(|_| panic!("{seen}"));
    assert!(
        !seen.contains(token),
        "the token reached the preview: {seen}"
    );
    // Its own storage is an empty stand-in; the product's storage and page are another origin's.
    assert_eq!(probe["storage"], "null", "{probe}");
    assert_eq!(probe["parentStorage"], "denied", "{probe}");
    assert_eq!(probe["parentDocument"], "denied", "{probe}");
    // No network: the API cannot be called, with or without a token.
    assert_eq!(probe["api"], "blocked", "{probe}");
    // The product still has its token: the preview changed nothing there.
    let kept = browser
        .client
        .execute("return localStorage.getItem('appforge.token')", vec![])
        .await
        .unwrap();
    assert_eq!(kept, serde_json::Value::String(token.to_owned()));
    // The preview's uncaught error is listed under the frame.
    browser
        .until(
            "the runtime error is reported to the page",
            "return [...document.querySelectorAll('#app-preview .preview-errors li.runtime')] \
             .some((li) => li.textContent.includes('boom from the preview'))",
        )
        .await;
    browser.screenshot("preview-05-sandbox").await;
    // The blocked fetch is the one error the log may hold (the CSP refusing it).
    browser.errors(&[]).await;
}
