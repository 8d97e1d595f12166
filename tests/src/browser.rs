//! A real browser for end-to-end tests: Debian's headless Chromium driven
//! through its chromedriver (WebDriver) with `fantoccini`, over plain HTTP
//! on loopback, so nothing needs a network at test time. `scripts/tools`
//! installs both packages.
//!
//! Screenshots go to `tests/screenshots/` (git-ignored), or to
//! `$CONSOLE_SCREENSHOTS` when set.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::process::{Child, Command};

use crate::eventually;

/// A headless Chromium session; its chromedriver is killed on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless session.
    pub async fn start() -> Browser {
        let driver_path = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = {
            let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            socket.local_addr().expect("its address").port()
        };
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            // Its own process group, so the browsers it starts can be
            // stopped with it even when a test panics.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting {driver_path} failed ({e}); run scripts/tools (scripts/test does)")
            });
        let url = format!("http://127.0.0.1:{port}");
        let status = reqwest::Client::new();
        eventually(Duration::from_secs(20), || async {
            let answer = status.get(format!("{url}/status")).send().await.ok()?;
            answer.status().is_success().then_some(())
        })
        .await
        .expect("chromedriver answers");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,1700"],
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .expect("opening a chromium session");
        Browser { client, driver }
    }

    /// The element matching `css`, waiting up to `limit` for it to appear.
    pub async fn wait_for(&self, css: &str, limit: Duration) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(limit)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} within {limit:?}: {e}"))
    }

    /// Polls until the text of the first `css` element satisfies `ok`.
    pub async fn wait_for_text(
        &self,
        css: &str,
        limit: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> String {
        let found = eventually(limit, || async {
            let element = self.client.find(Locator::Css(css)).await.ok()?;
            let text = element.text().await.ok()?;
            ok(&text).then_some(text)
        })
        .await;
        match found {
            Some(text) => text,
            None => {
                self.screenshot("failure").await;
                let now = self.client.find(Locator::Css(css)).await;
                let text = match now {
                    Ok(e) => e.text().await.unwrap_or_default(),
                    Err(_) => "(absent)".into(),
                };
                panic!("{css} never showed the expected text; it shows: {text}")
            }
        }
    }

    /// Clicks the element `css` selects, once it is there.
    pub async fn click(&self, css: &str, limit: Duration) {
        let element = self.wait_for(css, limit).await;
        element.click().await.expect("clicking");
    }

    /// Saves a PNG of the page as `<name>.png`; answers its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = std::env::var_os("CONSOLE_SCREENSHOTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("screenshots"));
        std::fs::create_dir_all(&dir).expect("creating the screenshot folder");
        let png = self.client.screenshot().await.expect("taking a screenshot");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("writing the screenshot");
        path
    }

    /// Ends the session (and, on drop, chromedriver with its browsers).
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    /// Kills chromedriver's process group: chromedriver and the Chromium
    /// processes it started, which killing chromedriver alone would orphan.
    fn drop(&mut self) {
        if let Some(pid) = self.driver.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
    }
}
