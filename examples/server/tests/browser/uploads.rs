//! A reference image pasted on the generate page: uploaded, shown as a thumbnail, sent with
//! the generation, and shown with the job, on the app's version the job produced, and in the
//! history.

use std::time::Duration;

use appforge_core::SecretString;
use appforge_server::JwtKeys;
use uuid::Uuid;

use crate::support::{Browser, SECRET, in_chromium, start_server};

/// A 1 x 1 PNG.
const PNG_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(appforge_browser),
    ignore = "needs chromium and chromedriver (/usr/bin/chromedriver or CHROMEDRIVER)"
)]
async fn a_pasted_image_goes_with_the_generation_and_shows_on_the_job_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let storage = format!("file://{}", dir.path().join("uploads").display());
    let (base, stop) = start_server(&dir, &[("APPFORGE_STORAGE_URL", storage)]).await;
    in_chromium(&base, async |browser| scenario(browser).await).await;
    stop.cancel();
    // The upload is in the storage directory, under its owner.
    let owners: Vec<_> = std::fs::read_dir(dir.path().join("uploads"))
        .unwrap()
        .collect();
    assert_eq!(owners.len(), 1);
}

async fn scenario(browser: &Browser) {
    let user = Uuid::new_v4();
    let token = JwtKeys::new(&SecretString::from(SECRET)).issue(
        user,
        Some("browser@example.com"),
        Duration::from_secs(3600),
    );
    browser.goto("/").await;
    browser.sign_in(&token).await;

    // Paste an image: it is uploaded and shown as a thumbnail with a remove button.
    let paste = format!(
        "const bytes = Uint8Array.from(atob('{PNG_BASE64}'), (c) => c.charCodeAt(0)); \
         const file = new File([bytes], 'mockup.png', {{ type: 'image/png' }}); \
         const data = new DataTransfer(); data.items.add(file); \
         document.dispatchEvent(new ClipboardEvent('paste', {{ clipboardData: data, bubbles: true }}));"
    );
    browser.client.execute(&paste, vec![]).await.unwrap();
    browser
        .until(
            "the pasted image is attached",
            "const img = document.querySelector('#attachments li img'); \
             return !!img && img.src.startsWith('data:image/png') \
             && !!document.querySelector('#attachments li button.remove');",
        )
        .await;
    browser.screenshot("uploads-01-attached").await;

    // Generate: the job shows the attachment's thumbnail, read back from the server.
    browser
        .find("#prompt")
        .await
        .send_keys("a landing page like this mock-up")
        .await
        .unwrap();
    browser.find("#generate").await.click().await.unwrap();
    browser
        .until(
            "the job completes",
            "return !!document.querySelector('#job-status .badge.completed');",
        )
        .await;
    browser
        .until(
            "the job shows the attachment",
            "const img = document.querySelector('#job-attachments li[data-upload] img'); \
             return !!img && img.complete && img.naturalWidth === 1;",
        )
        .await;
    assert_eq!(
        browser.count("#attachments li").await,
        0,
        "the form is cleared"
    );
    browser.screenshot("uploads-02-job").await;

    // The app the job saved shows the image on the version the job produced.
    browser
        .until(
            "the job links to its saved app",
            "const open = document.querySelector('#open-app'); \
             return !!open && !open.hidden && open.getAttribute('href').startsWith('/apps/');",
        )
        .await;
    let href = browser
        .find("#open-app")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    browser.goto(&href).await;
    browser
        .until(
            "the app's version shows the attachment",
            "const box = document.querySelector('#version-attachments'); \
             const img = document.querySelector('#version-thumbs li[data-upload] img'); \
             return !!box && !box.hidden && document.querySelector('#files-version').textContent === '1' \
             && !!img && img.complete && img.naturalWidth === 1;",
        )
        .await;
    browser
        .client
        .execute(
            "document.querySelector('#version-attachments').scrollIntoView();",
            vec![],
        )
        .await
        .unwrap();
    browser.screenshot("uploads-03-app-version").await;

    // The history shows it too.
    browser.goto("/jobs").await;
    browser
        .until(
            "the history shows the attachment",
            "return !!document.querySelector('#jobs .thumbs li[data-upload] img');",
        )
        .await;
    browser.screenshot("uploads-04-history").await;
    browser.assert_clean("uploads", &[]).await;
}
