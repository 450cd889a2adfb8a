//! A chromedriver, a Chromium session with helpers, and the server under test.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use appforge_server::{Config, server};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

pub(crate) const SECRET: &str = "browser-test-secret-of-sufficient-length-0123";
pub(crate) const ADMIN: &str = "browser-admin-token";
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// A chromedriver child on a free port, killed on drop.
pub(crate) struct Driver {
    _child: Child,
    url: String,
}

impl Driver {
    pub(crate) async fn start() -> Self {
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

pub(crate) fn free_port() -> u16 {
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

pub(crate) struct Browser {
    pub(crate) client: Client,
    base: String,
    artifacts: PathBuf,
}

impl Browser {
    pub(crate) async fn open(driver: &Driver, base: String) -> Self {
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

    pub(crate) async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    /// Signs in with `token` through the header's sign-in box.
    pub(crate) async fn sign_in(&self, token: &str) {
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

    pub(crate) async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    pub(crate) async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    /// Waits until `script` (a function body returning a boolean) holds.
    pub(crate) async fn until(&self, what: &str, script: &str) {
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

    pub(crate) async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.artifacts.join(format!("{name}.png")), png).unwrap();
    }

    /// The log's errors since the last call, except those containing every `expected` text
    /// (the failed request a step expects, as Chromium logs it).
    pub(crate) async fn errors(&self, expected: &[&str]) -> Vec<String> {
        let log = self.client.issue_cmd(BrowserLog).await.unwrap();
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .filter(|message| expected.is_empty() || !expected.iter().all(|e| message.contains(e)))
            .collect()
    }

    pub(crate) async fn assert_clean(&self, page: &str, expected: &[&str]) {
        let errors = self.errors(expected).await;
        assert!(errors.is_empty(), "{page}: console errors {errors:#?}");
    }
}

/// The server on a free port over a fresh SQLite file, with the offline provider paced so
/// that files arrive one after another.
pub(crate) async fn start_server(
    dir: &tempfile::TempDir,
    extra: &[(&'static str, String)],
) -> (String, tokio_util::sync::CancellationToken) {
    start_server_on(free_port(), dir, extra).await
}

/// [`start_server`] on `port`, for settings that name the server's own address
/// (`APPFORGE_PUBLIC_URL`).
pub(crate) async fn start_server_on(
    port: u16,
    dir: &tempfile::TempDir,
    extra: &[(&'static str, String)],
) -> (String, tokio_util::sync::CancellationToken) {
    let (base, stop, _) = start_server_with_state(port, dir, extra).await;
    (base, stop)
}

/// [`start_server_on`], also handing back the server's state (to save an app straight into
/// its library).
pub(crate) async fn start_server_with_state(
    port: u16,
    dir: &tempfile::TempDir,
    extra: &[(&'static str, String)],
) -> (
    String,
    tokio_util::sync::CancellationToken,
    appforge_server::AppState,
) {
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("app.db").display());
    let mut env = vec![
        ("DATABASE_URL", url),
        ("APPFORGE_ADDR", format!("127.0.0.1:{port}")),
        ("APPFORGE_JWT_SECRET", SECRET.to_owned()),
        ("APPFORGE_ADMIN_TOKEN", ADMIN.to_owned()),
        ("APPFORGE_WORKERS", "2".to_owned()),
        ("APPFORGE_DEMO_PACE_MS", "3".to_owned()),
        // Previews resolve from the cache beside the database, never from a registry.
        ("APPFORGE_PREVIEW_OFFLINE", "true".to_owned()),
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
    let serving = state.clone();
    tokio::spawn(async move {
        server::serve(serving, listener, async move { signal.cancelled().await })
            .await
            .unwrap();
    });
    (format!("http://127.0.0.1:{port}"), stop, state)
}

/// Runs `steps` in a fresh Chromium session, which ends even when a step fails, so that no
/// Chromium outlives the test.
pub(crate) async fn in_chromium(base: &str, steps: impl AsyncFnOnce(&Browser)) {
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
