//! A headless Chromium driven over WebDriver (chromedriver + fantoccini), for
//! tests of the web pages: load a page, read and click the DOM, take
//! screenshots, and check that hostile text shown on a page ran no script.
//!
//! Everything stays on this machine: chromedriver listens on a free port of
//! 127.0.0.1 and the pages are served by the test itself. A missing
//! chromedriver is an error that says how to install it, so a test that needs
//! a browser fails instead of passing without one.

use std::ffi::OsString;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::error::{CmdError, NewSessionError};
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value as Json, json};

pub use fantoccini::Locator;

use crate::seed::XSS_GLOBAL;

/// The environment variable naming the chromedriver binary to run.
pub const CHROMEDRIVER_ENV: &str = "PODIUM_CHROMEDRIVER";

/// How to install what the browser tests need (Debian, as `.ci/run` does).
pub const INSTALL_HINT: &str = "install it with `apt-get update && apt-get install -y chromium chromium-driver` \
     (or set PODIUM_CHROMEDRIVER to a chromedriver binary)";

/// How long chromedriver may take to answer on its port.
const DRIVER_START_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error("chromedriver not found (tried {tried}); {hint}", hint = INSTALL_HINT)]
    DriverMissing { tried: String },
    #[error("cannot start chromedriver {path}")]
    DriverSpawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "chromedriver {path} did not answer on port {port} within {seconds} s; its log:\n{log}"
    )]
    DriverNotReady {
        path: PathBuf,
        port: u16,
        seconds: u64,
        log: String,
    },
    #[error("chromedriver could not start a headless Chromium session: {source} ({hint}); its log:\n{log}", hint = INSTALL_HINT)]
    Session {
        #[source]
        source: Box<NewSessionError>,
        log: String,
    },
    #[error("WebDriver command failed: {0}")]
    Command(#[source] Box<CmdError>),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("hostile text ran script: {0}")]
    ScriptRan(String),
}

impl From<CmdError> for BrowserError {
    fn from(error: CmdError) -> Self {
        BrowserError::Command(Box::new(error))
    }
}

/// A headless Chromium session. Dropping it ends chromedriver and the
/// browsers it started; [`Browser::close`] also ends the session cleanly.
pub struct Browser {
    client: Option<Client>,
    driver: Child,
    /// Chromium's profile and chromedriver's log, removed on drop.
    scratch: tempfile::TempDir,
}

/// What script a page ran that it should not have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptEffects {
    /// The text of a JavaScript dialog (`alert`, `confirm`, `prompt`) left open.
    pub dialog: Option<String>,
    /// The value of `window.__podium_xss` ([`XSS_GLOBAL`]) as JSON, when set.
    pub xss_global: Option<String>,
}

impl ScriptEffects {
    pub fn none(&self) -> bool {
        self.dialog.is_none() && self.xss_global.is_none()
    }
}

impl Browser {
    /// Starts chromedriver on a free port of 127.0.0.1 and a headless Chromium
    /// session through it.
    pub async fn start() -> Result<Browser, BrowserError> {
        let driver_path = find_chromedriver()?;
        let scratch = tempfile::Builder::new()
            .prefix("podium-browser-")
            .tempdir()?;
        let log_path = scratch.path().join("chromedriver.log");
        let port = free_port()?;
        let log = fs::File::create(&log_path)?;
        let mut command = Command::new(&driver_path);
        command
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // Its own process group, so that drop can end the browsers it started too.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let driver = command
            .spawn()
            .map_err(|source| BrowserError::DriverSpawn {
                path: driver_path.clone(),
                source,
            })?;
        let mut browser = Browser {
            client: None,
            driver,
            scratch,
        };
        browser.wait_for_driver(&driver_path, port)?;

        let mut capabilities = serde_json::Map::new();
        let mut chrome_options = json!({
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--window-size=1400,1000",
                "--hide-scrollbars",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--metrics-recording-only",
                "--force-device-scale-factor=1",
                format!("--user-data-dir={}", browser.scratch.path().join("profile").display()),
            ],
        });
        if Path::new("/usr/bin/chromium").exists() {
            chrome_options["binary"] = json!("/usr/bin/chromium");
        }
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), chrome_options);
        // Leave dialogs open instead of dismissing them, so that
        // `script_effects` can see that one was raised.
        capabilities.insert("unhandledPromptBehavior".into(), json!("ignore"));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .map_err(|source| BrowserError::Session {
                source: Box::new(source),
                log: browser.driver_log(),
            })?;
        browser.client = Some(client);
        Ok(browser)
    }

    /// The WebDriver client, for anything the helpers here do not cover.
    pub fn client(&self) -> &Client {
        self.client
            .as_ref()
            .expect("the client is set by Browser::start and taken only by close")
    }

    pub async fn goto(&self, url: &str) -> Result<(), BrowserError> {
        Ok(self.client().goto(url).await?)
    }

    /// The text content of the first element matching the CSS `selector`.
    pub async fn text(&self, selector: &str) -> Result<String, BrowserError> {
        let element = self.client().find(Locator::Css(selector)).await?;
        Ok(element.text().await?)
    }

    /// Clicks the first element matching the CSS `selector`.
    pub async fn click(&self, selector: &str) -> Result<(), BrowserError> {
        let element = self.client().find(Locator::Css(selector)).await?;
        Ok(element.click().await?)
    }

    /// Saves a PNG of the viewport as `target/screenshots/NAME.png` under the
    /// workspace root and returns its path.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf, BrowserError> {
        let png = self.client().screenshot().await?;
        let dir = screenshot_dir();
        fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        fs::write(&path, png)?;
        Ok(path)
    }

    /// Whether the current page raised a JavaScript dialog or set
    /// `window.__podium_xss`: what the hostile outputs of
    /// [`crate::seed::HOSTILE_OUTPUTS`] do when a page fails to escape them.
    /// An open dialog is dismissed after it is read.
    pub async fn script_effects(&self) -> Result<ScriptEffects, BrowserError> {
        let client = self.client();
        let dialog = match client.get_alert_text().await {
            Ok(text) => {
                client.dismiss_alert().await?;
                Some(text)
            }
            Err(error) if error.is_no_such_alert() => None,
            Err(error) => return Err(error.into()),
        };
        // Dismissing one dialog can let the page's script go on to raise another.
        while client.get_alert_text().await.is_ok() {
            client.dismiss_alert().await?;
        }
        let global = client
            .execute(
                &format!("return window.{XSS_GLOBAL} === undefined ? null : JSON.stringify(window.{XSS_GLOBAL});"),
                Vec::new(),
            )
            .await?;
        Ok(ScriptEffects {
            dialog,
            xss_global: match global {
                Json::Null => None,
                Json::String(text) => Some(text),
                other => Some(other.to_string()),
            },
        })
    }

    /// An error unless [`Browser::script_effects`] finds nothing.
    pub async fn assert_no_script_ran(&self) -> Result<(), BrowserError> {
        let effects = self.script_effects().await?;
        if effects.none() {
            return Ok(());
        }
        let url = self
            .client()
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        Err(BrowserError::ScriptRan(format!(
            "on {url}: dialog {:?}, window.{XSS_GLOBAL} = {:?}",
            effects.dialog, effects.xss_global
        )))
    }

    /// Ends the session (Chromium quits and removes its profile) and chromedriver.
    pub async fn close(mut self) -> Result<(), BrowserError> {
        if let Some(client) = self.client.take() {
            client.close().await?;
        }
        Ok(())
    }

    fn wait_for_driver(&mut self, path: &Path, port: u16) -> Result<(), BrowserError> {
        let started = Instant::now();
        while started.elapsed() < DRIVER_START_TIMEOUT {
            if let Ok(Some(_)) = self.driver.try_wait() {
                break;
            }
            if driver_is_ready(port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(BrowserError::DriverNotReady {
            path: path.to_owned(),
            port,
            seconds: DRIVER_START_TIMEOUT.as_secs(),
            log: self.driver_log(),
        })
    }

    /// The last few kilobytes of chromedriver's log.
    fn driver_log(&self) -> String {
        let text =
            fs::read_to_string(self.scratch.path().join("chromedriver.log")).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        text[start..].to_string()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Chromium is chromedriver's child, in the group started for it: end
        // the whole group, or a killed chromedriver would leave it running.
        // Through killpg(2), not the `kill` command: procps's `kill -KILL -PID`
        // reads `-PID` as an option, and for some PIDs signalled process group
        // -1, that is every process the user may signal.
        #[cfg(unix)]
        if let Ok(group @ 2..) = i32::try_from(self.driver.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(group),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `<workspace>/target/screenshots`, where [`Browser::screenshot`] writes.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots")
}

/// `PODIUM_CHROMEDRIVER`, else `chromedriver` on `PATH`, else `/usr/bin/chromedriver`.
fn find_chromedriver() -> Result<PathBuf, BrowserError> {
    chromedriver_from(
        std::env::var_os(CHROMEDRIVER_ENV),
        std::env::var_os("PATH"),
        Path::new("/usr/bin/chromedriver"),
    )
}

fn chromedriver_from(
    env: Option<OsString>,
    path_var: Option<OsString>,
    fallback: &Path,
) -> Result<PathBuf, BrowserError> {
    if let Some(path) = env {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        return Err(BrowserError::DriverMissing {
            tried: format!("{CHROMEDRIVER_ENV}={}", path.display()),
        });
    }
    let on_path = path_var.and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromedriver"))
            .find(|candidate| candidate.is_file())
    });
    if let Some(path) = on_path {
        return Ok(path);
    }
    if fallback.is_file() {
        return Ok(fallback.to_owned());
    }
    Err(BrowserError::DriverMissing {
        tried: format!(
            "${CHROMEDRIVER_ENV}, `chromedriver` on PATH, {}",
            fallback.display()
        ),
    })
}

fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Whether chromedriver answers `GET /status` with `"ready": true`.
fn driver_is_ready(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.contains("\"ready\":true") || response.contains("\"ready\": true")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_chromedriver_is_an_error_that_says_how_to_install_it() {
        let empty = tempfile::tempdir().unwrap();
        let error = chromedriver_from(
            None,
            Some(empty.path().as_os_str().to_owned()),
            &empty.path().join("chromedriver"),
        )
        .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("chromedriver not found"), "{message}");
        assert!(
            message.contains("apt-get install -y chromium chromium-driver"),
            "{message}"
        );

        let error = chromedriver_from(
            Some(empty.path().join("nowhere").into_os_string()),
            None,
            Path::new("/usr/bin/chromedriver"),
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("PODIUM_CHROMEDRIVER="),
            "{error}"
        );
    }

    #[test]
    fn chromedriver_is_found_on_path_before_the_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let driver = dir.path().join("chromedriver");
        fs::write(&driver, "").unwrap();
        let found = chromedriver_from(
            None,
            Some(dir.path().as_os_str().to_owned()),
            Path::new("/nonexistent/chromedriver"),
        )
        .unwrap();
        assert_eq!(found, driver);
    }
}
