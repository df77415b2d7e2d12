//! The browser harness against pages served from a thread of this test: it
//! loads a page, reads the DOM, follows a link, takes a screenshot, and tells
//! a page that ran hostile script from one that showed it as text. Needs
//! Chromium and chromedriver (`.ci/run` installs them); without them it fails.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use podium_testkit::browser::Browser;

const HOME: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Podium self-test</title>
<style>body { font-family: sans-serif; margin: 2em; } h1 { color: #1a5fb4; }
td, th { border: 1px solid #999; padding: 4px 8px; }</style></head>
<body>
<h1 id="title">Podium browser self-test</h1>
<table><tr><th>model</th><th>score</th></tr>
<tr><td>model-0001</td><td>71.3</td></tr>
<tr><td class="hostile">&lt;script&gt;window.__podium_xss = 1; alert(1)&lt;/script&gt;</td><td>12.0</td></tr>
</table>
<p><a id="next" href="/next">Second page</a></p>
</body></html>"#;

const NEXT: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Second</title></head>
<body><h1 id="title">Second page</h1></body></html>"#;

/// What an unescaped hostile output does.
const UNESCAPED: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Broken</title></head>
<body><h1 id="title">Broken page</h1>
<p><img src=x onerror="window.__podium_xss=2"></p>
<script>window.__podium_xss = window.__podium_xss || 1; alert("hostile 1")</script>
</body></html>"#;

/// Serves the three pages on 127.0.0.1 from a thread; returns the base URL.
fn serve() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            // Read the headers to the blank line; the bodies are not needed.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request_line.split_whitespace().nth(1).unwrap_or("/");
            let (status, body) = match path {
                "/" => ("200 OK", HOME),
                "/next" => ("200 OK", NEXT),
                "/unescaped" => ("200 OK", UNESCAPED),
                _ => ("404 Not Found", "not found"),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{address}")
}

#[tokio::test]
async fn loads_reads_clicks_and_screenshots_a_page() {
    let base = serve();
    let browser = Browser::start().await.unwrap_or_else(|e| panic!("{e}"));
    browser.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(
        browser.text("#title").await.unwrap(),
        "Podium browser self-test"
    );
    // Escaped hostile text shows as text and runs nothing.
    assert_eq!(
        browser.text("td.hostile").await.unwrap(),
        "<script>window.__podium_xss = 1; alert(1)</script>"
    );
    browser.assert_no_script_ran().await.unwrap();

    let path = browser.screenshot("testkit_selftest").await.unwrap();
    let png = std::fs::read(&path).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{}", path.display());
    assert!(
        png.len() > 2000,
        "{} is {} bytes",
        path.display(),
        png.len()
    );

    browser.click("#next").await.unwrap();
    assert_eq!(browser.text("#title").await.unwrap(), "Second page");
    let url = browser.client().current_url().await.unwrap();
    assert_eq!(url.path(), "/next");
    browser.close().await.unwrap();
}

#[tokio::test]
async fn tells_a_page_that_ran_hostile_script() {
    let base = serve();
    let browser = Browser::start().await.unwrap_or_else(|e| panic!("{e}"));
    // With the alert open, navigation may report it; the check below must see it either way.
    let _ = browser.goto(&format!("{base}/unescaped")).await;
    let effects = browser.script_effects().await.unwrap();
    assert_eq!(effects.dialog.as_deref(), Some("hostile 1"), "{effects:?}");
    assert!(effects.xss_global.is_some(), "{effects:?}");
    let error = browser.assert_no_script_ran().await.unwrap_err();
    assert!(error.to_string().contains("__podium_xss"), "{error}");
    browser.close().await.unwrap();
}
