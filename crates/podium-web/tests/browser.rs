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

/// Contenders for the arena's browser test: fixed answers, streamed a few
/// words at a time; one of them hostile.
struct StreamedAnswers;

const ARENA_ANSWERS: [(&str, &str); 3] = [
    (
        "mock:able",
        "The Moon has phases because we see different parts of its sunlit half as it orbits Earth.\n\n- New moon: the lit side faces away from us.\n- Full moon: the lit side faces us.\n\nOne cycle takes about 29.5 days.",
    ),
    (
        "mock:baker",
        "As the Moon orbits Earth, the angle between the Sun, Earth and Moon changes, so the sunlit part we can see grows (waxing) and shrinks (waning). It is not Earth's shadow: that is an eclipse. <img src=x onerror=\"window.__podium_xss=9\">",
    ),
    (
        "mock:charlie",
        "Phases come from geometry: half the Moon is always lit by the Sun, and from Earth we see a changing share of that half over a month.",
    ),
];

impl podium_web::AnswerSource for StreamedAnswers {
    fn models(&self) -> Vec<String> {
        ARENA_ANSWERS
            .iter()
            .map(|(m, _)| (*m).to_string())
            .collect()
    }

    fn answer(&self, model: &str, _prompt: &str) -> podium_web::AnswerStream {
        use futures_util::StreamExt;
        let text = ARENA_ANSWERS
            .iter()
            .find(|(m, _)| *m == model)
            .map_or("", |(_, a)| a);
        let pieces: Vec<String> = text
            .split_inclusive(' ')
            .collect::<Vec<_>>()
            .chunks(3)
            .map(|words| words.concat())
            .collect();
        futures_util::stream::iter(pieces)
            .then(|piece| async move {
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
                Ok(podium_web::AnswerChunk {
                    text: piece,
                    output_tokens: None,
                })
            })
            .boxed()
    }
}

/// Seeded arena battles: four models, two categories, people and a judge.
fn seed_battles(store: &Store) {
    use podium_arena::{Battle, Outcome, StyleCounts};
    let models = ["mock:able", "mock:baker", "mock:charlie", "mock:delta"];
    let mut battles = Vec::new();
    for i in 0..240usize {
        let a = i % 4;
        let b = (i / 4 + a + 1) % 4;
        if a == b {
            continue;
        }
        // Lower index wins more often; a few ties.
        let outcome = match (i * 7919) % 10 {
            0 => Outcome::Tie,
            1 => Outcome::BothBad,
            k if k < 3 + 2 * b.saturating_sub(a) => Outcome::A,
            _ => Outcome::B,
        };
        let mut battle = Battle::new(models[a], models[b], outcome);
        battle.category = Some(if i % 3 == 0 { "coding" } else { "writing" }.to_string());
        battle.tstamp = 1.7e9 + i as f64;
        battle.judge = (i % 5 == 0).then(|| "judge-model".to_string());
        let style = |n: f64| StyleCounts {
            tokens: n,
            headers: 0.0,
            lists: (n as usize % 3) as f64,
            bold: 0.0,
        };
        battle.style = Some([
            style(100.0 + a as f64 * 20.0),
            style(90.0 + b as f64 * 15.0),
        ]);
        battles.push(battle);
    }
    podium_board::arena::save_battles(store, &battles, "test").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_arena_in_a_real_browser() {
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("podium.db")).unwrap();
    seed_battles(&store);
    let config = podium_web::ArenaConfig {
        source: std::sync::Arc::new(StreamedAnswers),
        prompts: podium_arena::prompts::bundled(),
        identity_words: podium_arena::answer::DEFAULT_IDENTITY_WORDS
            .iter()
            .map(|w| (*w).to_string())
            .collect(),
        votes_per_hour: 100,
        votes_per_day: 100,
    };
    let state = podium_web::AppState::new(store, BoardCatalog::builtin(), BoardOptions::default())
        .with_arena(config);
    let listener = podium_web::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        podium_web::serve_listener(listener, state, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    let browser = Browser::start().await.expect("a headless Chromium");
    let client = browser.client();

    browser.goto(&format!("{base}/arena")).await.unwrap();
    for button in ["a", "b", "tie", "bothbad"] {
        let element = client
            .find(Locator::Css(&format!("button[data-winner='{button}']")))
            .await
            .unwrap();
        assert!(
            !element.is_enabled().await.unwrap(),
            "no vote before a battle"
        );
    }
    browser.screenshot("arena_empty").await.unwrap();

    // Draw a prompt, then type our own instead.
    browser.click("#arena-draw").await.unwrap();
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#arena-category:not([hidden])"))
        .await
        .unwrap();
    let drawn = client
        .find(Locator::Css("#arena-prompt-text"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(!drawn.is_empty(), "a drawn prompt fills the box");
    let prompt_box = client
        .find(Locator::Css("#arena-prompt-text"))
        .await
        .unwrap();
    prompt_box.clear().await.unwrap();
    prompt_box
        .send_keys("Why does the Moon have phases? Answer briefly.")
        .await
        .unwrap();
    browser.click("#arena-send").await.unwrap();

    // Both answers stream in; then the vote opens.
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(
            ".arena-buttons button[data-winner='a']:not([disabled])",
        ))
        .await
        .unwrap();
    let text_a = browser.text("#text-a").await.unwrap();
    let text_b = browser.text("#text-b").await.unwrap();
    let answers: Vec<&str> = ARENA_ANSWERS.iter().map(|(_, a)| *a).collect();
    let normalize = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    for shown in [&text_a, &text_b] {
        assert!(
            answers.iter().any(|a| normalize(a) == normalize(shown)),
            "{shown:?}"
        );
    }
    assert_ne!(text_a, text_b);
    assert!(
        browser.text("#reveal-a").await.unwrap().is_empty(),
        "no names before the vote"
    );
    browser.assert_no_script_ran().await.unwrap();
    browser.screenshot("arena_answers").await.unwrap();

    // Vote: the names appear, the buttons are disabled.
    browser.click("button[data-winner='a']").await.unwrap();
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("article.answer.revealed"))
        .await
        .unwrap();
    let name_a = browser.text("#reveal-a").await.unwrap();
    let name_b = browser.text("#reveal-b").await.unwrap();
    let models: Vec<&str> = ARENA_ANSWERS.iter().map(|(m, _)| *m).collect();
    assert!(models.contains(&name_a.as_str()), "{name_a}");
    assert!(models.contains(&name_b.as_str()), "{name_b}");
    assert_ne!(name_a, name_b);
    for button in ["a", "b", "tie", "bothbad"] {
        let element = client
            .find(Locator::Css(&format!("button[data-winner='{button}']")))
            .await
            .unwrap();
        assert!(!element.is_enabled().await.unwrap(), "no second vote");
    }
    let result = browser.text("#arena-result").await.unwrap();
    assert!(result.contains("vote is counted"), "{result}");
    browser.assert_no_script_ran().await.unwrap();
    browser.screenshot("arena_voted").await.unwrap();

    // The ratings, overall and for one category.
    browser
        .goto(&format!("{base}/arena?voters=all#ratings"))
        .await
        .unwrap();
    browser.assert_no_script_ran().await.unwrap();
    browser.screenshot("arena_ratings").await.unwrap();
    browser
        .goto(&format!("{base}/arena?category=coding#ratings"))
        .await
        .unwrap();
    browser.screenshot("arena_category").await.unwrap();

    browser.close().await.unwrap();
    let _ = stop.send(());
    server.await.unwrap();
}

/// Per-category scores (a data file's `category` column) as sub-columns: one
/// task's runs get two categories, split from their own metric, and the board
/// shows `task › category` headers with cells beside the task's column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn category_sub_columns_in_a_real_browser() {
    use podium_tasks::results::{CategoryResult, TaskResult};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("podium.db");
    let mut store = Store::open(&db).unwrap();
    let seeded = seed::fill(
        &mut store,
        &SeedSpec {
            models: 4,
            tasks: 2,
            samples_per_run: 30,
            seed: 5,
            hostile: false,
        },
    )
    .unwrap();
    let runs = store.board_runs(None).unwrap();
    let task = runs[0].task_name.clone();
    for run in runs.iter().filter(|r| r.task_name == task) {
        let mut result: TaskResult = serde_json::from_str(&run.results_json).unwrap();
        let metric = result.metrics[0].clone();
        let share = |name: &str, scale: f64, n: usize| {
            let mut m = metric.clone();
            m.value *= scale;
            m.n = n;
            m.interval = None;
            CategoryResult {
                name: name.into(),
                metrics: vec![m],
                n_samples: n,
            }
        };
        result.categories = vec![share("billing", 1.0, 18), share("shipping", 0.8, 12)];
        store
            .finish_run(run.run_id, &serde_json::to_string(&result).unwrap())
            .unwrap();
    }
    let catalog = BoardCatalog::with_user_toml(&seeded.catalog_toml).unwrap();
    let state = podium_web::AppState::new(store, catalog, BoardOptions::default());
    let listener = podium_web::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        podium_web::serve_listener(listener, state, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    let browser = Browser::start().await.expect("a headless Chromium");
    browser.goto(&format!("{base}/")).await.unwrap();
    let headers = texts(&browser, "table.board thead th.sub > a:first-child").await;
    assert_eq!(
        headers,
        [format!("{task} › billing"), format!("{task} › shipping")],
        "{headers:?}"
    );
    let cells = texts(&browser, "table.board tbody tr:first-child td").await;
    assert!(cells.len() > 4, "{cells:?}");
    browser.assert_no_script_ran().await.unwrap();
    browser.screenshot("board_categories").await.unwrap();
    browser.close().await.unwrap();
    let _ = stop.send(());
    server.await.unwrap();
}
