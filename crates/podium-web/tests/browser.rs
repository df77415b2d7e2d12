//! The web board in a real headless Chromium (WebDriver): a seeded store with
//! hostile outputs is served on 127.0.0.1:0; the test sorts, filters, opens a
//! model page, a samples page and the side-by-side view, checks the DOM,
//! confirms that no hostile output ran, and saves screenshots under
//! `target/screenshots/` (look at them). Needs Chromium and chromedriver
//! (`.ci/run` installs them); without them it fails, saying how to install.

use fantoccini::Locator;
use podium_board::{BoardCatalog, BoardOptions};
use podium_store::Store;
use podium_testkit::browser::Browser;
use podium_testkit::seed::{self, HOSTILE_TASK, SeedSpec};

struct Server {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
    seeded: seed::Seeded,
}

async fn serve_seeded() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("podium.db");
    let mut store = Store::open(&db).unwrap();
    let seeded = seed::fill(
        &mut store,
        &SeedSpec {
            models: 8,
            tasks: 4,
            samples_per_run: 30,
            seed: 11,
            hostile: true,
        },
    )
    .unwrap();
    let catalog = BoardCatalog::with_user_toml(&seeded.catalog_toml).unwrap();
    let state = podium_web::AppState::new(store, catalog, BoardOptions::default());
    let listener = podium_web::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        podium_web::serve_listener(listener, state, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    Server {
        base,
        stop: Some(stop),
        task,
        _dir: dir,
        seeded,
    }
}

/// The text of every element matching `css`.
async fn texts(browser: &Browser, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for element in browser.client().find_all(Locator::Css(css)).await.unwrap() {
        out.push(element.text().await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_in_a_real_browser() {
    let mut server = serve_seeded().await;
    let base = server.base.clone();
    let browser = Browser::start().await.expect("a headless Chromium");

    // The board: one row per model, the charts below it.
    browser.goto(&format!("{base}/")).await.unwrap();
    let names = texts(&browser, "table.board tbody td.model > a").await;
    assert_eq!(names.len(), server.seeded.model_specs.len(), "{names:?}");
    assert!(
        !browser
            .client()
            .find_all(Locator::Css("svg"))
            .await
            .unwrap()
            .is_empty(),
        "the board shows its charts"
    );
    browser.assert_no_script_ran().await.unwrap();
    browser.screenshot("board").await.unwrap();

    // Sort by name: click the Model header, rows come in name order.
    browser
        .client()
        .find(Locator::XPath(
            "//table[contains(@class,'board')]//th//a[normalize-space(text())='Model' or starts-with(normalize-space(text()),'Model')]",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let url = browser.client().current_url().await.unwrap();
    assert!(url.as_str().contains("sort=name"), "{url}");
    let sorted = texts(&browser, "table.board tbody td.model > a").await;
    let mut expected = sorted.clone();
    expected.sort_by_key(|n| n.to_lowercase());
    let reversed: Vec<String> = expected.iter().rev().cloned().collect();
    assert!(sorted == expected || sorted == reversed, "{sorted:?}");

    // Filter to open models through the form.
    browser.goto(&format!("{base}/?access=open")).await.unwrap();
    let access = texts(&browser, "table.board tbody td .access").await;
    assert!(!access.is_empty());
    assert!(access.iter().all(|a| a == "open"), "{access:?}");
    browser.screenshot("board_open_only").await.unwrap();

    // A model page, reached by its link.
    browser.goto(&format!("{base}/")).await.unwrap();
    browser
        .click("table.board tbody td.model > a")
        .await
        .unwrap();
    let url = browser.client().current_url().await.unwrap();
    assert!(url.path().starts_with("/models/"), "{url}");
    let heading = browser.text("h1").await.unwrap();
    assert!(!heading.is_empty());
    browser.assert_no_script_ran().await.unwrap();
    browser.screenshot("model").await.unwrap();

    // The hostile model's samples on the hostile task: shown as text, never run.
    let hostile_spec = server.seeded.hostile_model.clone().unwrap();
    let hostile_id = server
        .seeded
        .model_specs
        .iter()
        .position(|s| *s == hostile_spec)
        .unwrap()
        + 1;
    browser
        .goto(&format!("{base}/models/{hostile_id}"))
        .await
        .unwrap();
    let run_link = browser
        .client()
        .find(Locator::XPath(&format!(
            "//tr[td[contains(., '{HOSTILE_TASK}')]]//a[contains(@href, '/samples')]"
        )))
        .await
        .unwrap();
    let samples_href = run_link.attr("href").await.unwrap().unwrap();
    browser
        .goto(&format!("{base}{samples_href}"))
        .await
        .unwrap();
    let body = browser.text("body").await.unwrap();
    assert!(
        body.contains("<script>"),
        "the hostile output shows as text"
    );
    assert!(
        body.contains("more characters"),
        "the 1 MB output is cut, saying so"
    );
    browser.assert_no_script_ran().await.unwrap();
    browser.screenshot("samples_hostile").await.unwrap();

    // Side by side: the same docs of two models' runs on one multiple-choice task.
    let task = &server.seeded.task_names[0];
    browser.goto(&format!("{base}/models/1")).await.unwrap();
    let first_run = browser
        .client()
        .find(Locator::XPath(&format!(
            "//tr[td[contains(., '{task}')]]//a[contains(@href, '/samples')]"
        )))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    browser.goto(&format!("{base}/models/2")).await.unwrap();
    let second_run = browser
        .client()
        .find(Locator::XPath(&format!(
            "//tr[td[contains(., '{task}')]]//a[contains(@href, '/samples')]"
        )))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let run_id = |href: &str| -> String {
        href.trim_start_matches("/runs/")
            .split('/')
            .next()
            .unwrap()
            .to_string()
    };
    browser
        .goto(&format!(
            "{base}{first_run}?vs={}&differ=1",
            run_id(&second_run)
        ))
        .await
        .unwrap();
    let page = browser.text("body").await.unwrap();
    assert!(!page.contains("Internal"), "{page}");
    browser.assert_no_script_ran().await.unwrap();
    browser.screenshot("side_by_side").await.unwrap();

    for (path, name) in [
        ("/charts", "charts"),
        ("/pick?min_score=30", "pick"),
        ("/history", "history"),
        ("/about", "about"),
    ] {
        browser.goto(&format!("{base}{path}")).await.unwrap();
        browser.assert_no_script_ran().await.unwrap();
        browser.screenshot(name).await.unwrap();
    }

    browser.close().await.unwrap();
    let _ = server.stop.take().unwrap().send(());
    server.task.await.unwrap();
}
