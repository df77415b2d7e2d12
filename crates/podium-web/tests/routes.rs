//! The web server through its router: status codes, headers, escaping,
//! sorting and filtering, the JSON API and the CSV export.

mod common;

use axum::http::StatusCode;
use common::{HOSTILE_ATTR, HOSTILE_SCRIPT, get, request, state};
use podium_web::CONTENT_SECURITY_POLICY;

/// The position of `needle` in `haystack`, failing with the page when absent.
fn at(haystack: &str, needle: &str) -> usize {
    haystack
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in the page"))
}

#[tokio::test]
async fn every_page_answers_with_the_security_headers() {
    let (state, seeded) = state();
    let pages = [
        "/".to_string(),
        "/charts".into(),
        "/pick".into(),
        format!("/models/{}", seeded.models[0]),
        format!("/runs/{}/samples", seeded.gsm_runs[1]),
        "/history".into(),
        "/about".into(),
    ];
    for page in pages {
        let reply = get(&state, &page).await;
        assert_eq!(reply.status, StatusCode::OK, "{page}: {}", reply.body);
        assert_eq!(
            reply.headers["content-security-policy"], CONTENT_SECURITY_POLICY,
            "{page}"
        );
        assert_eq!(reply.headers["x-content-type-options"], "nosniff", "{page}");
        assert!(
            reply.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        // CSP forbids inline script and style: the pages carry none.
        assert!(
            !reply.body.contains("style="),
            "{page} has a style attribute"
        );
        assert!(!reply.body.contains("<style"), "{page} has a style element");
        assert!(
            !reply.body.contains("<script>"),
            "{page} has an inline script"
        );
        assert!(!reply.body.contains("<img"), "{page} has a raw img tag");
    }
    let css = get(&state, "/static/style.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    let js = get(&state, "/static/board.js").await;
    assert!(
        js.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
}

#[tokio::test]
async fn the_board_shows_every_model_with_scores_intervals_and_unknowns() {
    let (state, seeded) = state();
    let page = get(&state, "/").await.body;
    // Beta (closed) leads on the average; Gamma has no gsm8k so no average.
    assert!(at(&page, "Beta Closed") < at(&page, "Alpha Open"));
    assert!(page.contains("no average (missing: gsm8k)"), "{page}");
    // Points with one decimal and the half-width; the exact interval in a title.
    assert!(
        page.contains(">90.0</a> <span class=\"ci\">± 5.5</span>"),
        "{page}"
    );
    assert!(page.contains("95%: 83.0–94.0 · n 100 · rank"), "{page}");
    // minijinja escapes `/` in text as `&#x2f;`; browsers read it as `/`.
    assert!(page.contains(&format!("href=\"&#x2f;models&#x2f;{}\"", seeded.models[0])));
    // Unknown facts are shown as unknown, never guessed.
    assert!(page.contains("<td>unknown</td>") || page.contains(">unknown<"));
    assert!(
        page.contains("$0.125"),
        "Alpha's blended price (3·0.1+0.2)/4 = 0.125"
    );
    assert!(page.contains("50.0"), "Alpha's median output speed");
    assert!(page.contains("0.20 s"), "Alpha's median TTFT");
    // Headers link to their definitions.
    for anchor in [
        "rank-ub",
        "average",
        "ttft",
        "output-speed",
        "blended-price",
        "score",
    ] {
        assert!(page.contains(&format!("about#{anchor}\"")), "{anchor}");
    }
    let about = get(&state, "/about").await.body;
    for anchor in [
        "rank-ub",
        "average",
        "ttft",
        "output-speed",
        "blended-price",
        "score",
        "normalized",
        "interval",
        "cost",
        "access",
        "licence",
        "parameters",
        "provider",
        "last-run",
    ] {
        assert!(about.contains(&format!("id=\"{anchor}\"")), "{anchor}");
    }
    assert!(about.contains("SE_avg = sqrt(Σ SE_i²) / k"));
    // Both charts are on the board page.
    assert_eq!(page.matches("<svg xmlns").count(), 2);
}

#[tokio::test]
async fn the_board_sorts_filters_and_pins_on_the_server() {
    let (state, seeded) = state();
    let by_name = get(&state, "/?sort=name&dir=asc").await.body;
    assert!(at(&by_name, "Alpha Open") < at(&by_name, "Beta Closed"));
    assert!(at(&by_name, "Beta Closed") < at(&by_name, "Gamma"));
    let by_name_desc = get(&state, "/?sort=name&dir=desc").await.body;
    assert!(at(&by_name_desc, "Gamma") < at(&by_name_desc, "Alpha Open"));
    // Price: cheapest first, unknown (Gamma) last.
    let by_price = get(&state, "/?sort=price").await.body;
    assert!(at(&by_price, "Alpha Open") < at(&by_price, "Beta Closed"));
    assert!(at(&by_price, "Beta Closed") < at(&by_price, "Gamma"));
    // A column, highest first by default.
    let by_arc = get(&state, "/?sort=arc_easy").await.body;
    assert!(at(&by_arc, "Beta Closed") < at(&by_arc, "Alpha Open"));
    assert!(at(&by_arc, "Alpha Open") < at(&by_arc, "Gamma"));

    let open = get(&state, "/?access=open").await.body;
    assert!(open.contains("Alpha Open") && !open.contains("Beta Closed</a>"));
    let closed = get(&state, "/?access=closed").await.body;
    assert!(!closed.contains("Alpha Open</a>") && closed.contains("Beta Closed"));
    let big = get(&state, "/?min_params=5").await.body;
    assert!(big.contains("Alpha Open</a>") && !big.contains("Gamma &lt;img"));
    assert!(
        !big.contains("Beta Closed</a>"),
        "unknown size is not known to pass"
    );
    let text = get(&state, "/?q=mock:c").await.body;
    assert!(text.contains("Gamma") && !text.contains("Alpha Open</a>"));
    let licence = get(&state, "/?licence=MIT").await.body;
    assert!(licence.contains("Gamma") && !licence.contains("Alpha Open</a>"));
    let provider = get(&state, "/?provider=bcorp").await.body;
    assert!(provider.contains("Beta Closed</a>") && !provider.contains("Alpha Open</a>"));
    let category = get(&state, "/?category=math").await.body;
    assert!(category.contains(">gsm8k ") || category.contains(">gsm8k<"));
    assert!(
        !category.contains(">arc_easy"),
        "arc_easy is not a math column"
    );

    // The average over arc_easy alone gives Gamma an average.
    let avg = get(&state, "/?avg=arc_easy").await.body;
    assert!(!avg.contains("no average"), "{avg}");
    // A pinned model comes first and is highlighted.
    let gamma = seeded.models[2];
    let pinned = get(&state, &format!("/?pin={gamma}")).await.body;
    assert!(at(&pinned, "class=\"pinned\"") < at(&pinned, "Beta Closed"));
    assert!(at(&pinned, "Gamma") < at(&pinned, "Beta Closed"));
    // An as_of before every run shows an empty board.
    let past = get(&state, "/?as_of=2000-01-01").await.body;
    assert!(past.contains("No model matches"));
}

#[tokio::test]
async fn bad_parameters_are_400_and_unknown_ids_404() {
    let (state, seeded) = state();
    for (uri, needle) in [
        ("/?sort=bogus", "cannot sort by `bogus`"),
        ("/?dir=sideways", "`dir`"),
        ("/?access=maybe", "`access`"),
        ("/?min_params=lots", "`min_params`"),
        ("/?avg=nope", "no column `nope`"),
        ("/?category=poetry", "no column has category `poetry`"),
        ("/?as_of=yesterday", "`as_of`"),
        ("/?pin=x", "`pin`"),
        ("/charts?col=nope", "no column `nope`"),
        ("/pick?min_score=high", "`min_score`"),
        ("/pick?col=nope", "no column `nope`"),
        ("/models/abc", "`model id`"),
    ] {
        let reply = get(&state, uri).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(reply.body.contains(needle), "{uri}: {}", reply.body);
        assert_eq!(
            reply.headers["content-security-policy"],
            CONTENT_SECURITY_POLICY
        );
    }
    let samples = format!("/runs/{}/samples", seeded.gsm_runs[0]);
    for (query, needle) in [
        ("?page=abc", "`page`"),
        ("?page=0", "`page`"),
        ("?per_page=101", "`per_page`"),
        ("?outcome=meh", "`outcome`"),
        ("?differ=1", "`vs=`"),
    ] {
        let reply = get(&state, &format!("{samples}{query}")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(reply.body.contains(needle), "{query}: {}", reply.body);
    }
    // Side by side with a run of another task is refused.
    let other_task = get(&state, &format!("{samples}?vs={}", seeded.arc_runs[0])).await;
    assert_eq!(other_task.status, StatusCode::BAD_REQUEST);
    assert!(other_task.body.contains("same task"), "{}", other_task.body);

    for uri in [
        "/models/999",
        "/runs/999/samples",
        "/nowhere",
        "/api/v1/models/999",
    ] {
        let reply = get(&state, uri).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
    }
    let missing = get(&state, "/api/v1/nothing").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("openapi")
    );
    let api = get(&state, "/api/v1/board?sort=bogus").await;
    assert_eq!(api.status, StatusCode::BAD_REQUEST);
    assert!(
        api.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bogus")
    );
}

#[tokio::test]
async fn the_server_is_read_only() {
    let (state, _) = state();
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let reply = request(&state, method, "/").await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(reply.headers["allow"], "GET, HEAD");
    }
    let head = request(&state, "HEAD", "/").await;
    assert_eq!(head.status, StatusCode::OK);
}

#[tokio::test]
async fn hostile_outputs_are_escaped_and_long_ones_cut_with_a_note() {
    let (state, seeded) = state();
    let page = get(
        &state,
        &format!("/runs/{}/samples?per_page=100", seeded.gsm_runs[1]),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    let body = &page.body;
    assert!(!body.contains(HOSTILE_SCRIPT));
    assert!(!body.contains(HOSTILE_ATTR));
    assert!(!body.contains("<img"));
    assert!(
        body.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "escaped form shown"
    );
    assert!(body.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    // Direction overrides and zero-width characters are shown by their code.
    assert!(!body.contains('\u{202E}') && !body.contains('\u{200B}'));
    assert!(body.contains("[U+202E]evil[U+200B]"));
    // The 1 MB output is cut for display, with the rest counted.
    assert!(body.len() < 200_000, "page is {} bytes", body.len());
    assert!(
        body.contains("… (997000 more characters)"),
        "explicit truncation note"
    );
    // The failed sample and its error.
    assert!(body.contains("backend error: &lt;script&gt;"));
    assert!(body.contains("status-failed"));
    // The extracted answer and per-sample metrics.
    assert!(body.contains("Extracted answer (strict-match)"));
    assert!(body.contains("exact_match,strict-match"));

    // The hostile catalogue name is escaped on the board, in charts and titles.
    for uri in [
        "/",
        "/charts",
        "/pick",
        &format!("/models/{}", seeded.models[2]),
    ] {
        let reply = get(&state, uri).await;
        assert!(!reply.body.contains("<img"), "{uri}");
        assert!(
            reply
                .body
                .contains("Gamma &lt;img src=x onerror=alert(2)&gt;"),
            "{uri}"
        );
    }
    // Secrets in a manifest are not shown.
    let model = get(&state, &format!("/models/{}", seeded.models[0]))
        .await
        .body;
    assert!(!model.contains("sk-SECRET"));
    assert!(!model.contains("api_key"));
}

#[tokio::test]
async fn samples_filter_paginate_and_compare_side_by_side() {
    let (state, seeded) = state();
    let (a, b) = (seeded.gsm_runs[0], seeded.gsm_runs[1]);
    let api = |q: String| {
        let state = state.clone();
        async move { get(&state, &q).await.json() }
    };
    let all = api(format!("/api/v1/runs/{a}/samples")).await;
    assert_eq!(all["total"], 5);
    let page = api(format!("/api/v1/runs/{a}/samples?per_page=2&page=2")).await;
    assert_eq!(page["samples"].as_array().unwrap().len(), 2);
    assert_eq!(page["samples"][0]["doc_id"], 2);
    let correct = api(format!("/api/v1/runs/{a}/samples?outcome=correct")).await;
    let docs: Vec<u64> = correct["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["doc_id"].as_u64().unwrap())
        .collect();
    assert_eq!(docs, vec![0, 2]);
    let failed = api(format!("/api/v1/runs/{a}/samples?outcome=failed")).await;
    assert_eq!(failed["total"], 1);
    let text = api(format!("/api/v1/runs/{a}/samples?q=no+idea")).await;
    assert_eq!(text["total"], 1);
    assert_eq!(text["samples"][0]["doc_id"], 3);

    // a: ok, wrong, ok, wrong, failed; b: ok, ok, wrong, ok, failed.
    let differ = api(format!("/api/v1/runs/{a}/samples?vs={b}&differ=1")).await;
    let docs: Vec<u64> = differ["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["doc_id"].as_u64().unwrap())
        .collect();
    assert_eq!(docs, vec![1, 2, 3]);
    assert_eq!(differ["samples"][0]["vs"]["doc_id"], 1);
    let both = api(format!("/api/v1/runs/{a}/samples?vs={b}")).await;
    assert_eq!(both["total"], 5);

    let page = get(&state, &format!("/runs/{a}/samples?vs={b}&differ=1")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("class=\"pairs\""));
    assert!(
        page.body
            .contains("only the documents whose outcome differs")
    );
    // Each sample page offers the other models' runs of its column.
    let plain = get(&state, &format!("/runs/{a}/samples")).await.body;
    assert!(plain.contains(&format!("?vs={b}&amp;differ=1")), "{plain}");
    // Pagination links keep the filters.
    let first = get(
        &state,
        &format!("/runs/{a}/samples?per_page=2&outcome=wrong"),
    )
    .await
    .body;
    assert!(first.contains("page=2"), "{first}");
    assert!(first.contains("outcome=wrong"));
}

#[tokio::test]
async fn the_json_api_has_the_board_and_openapi_lists_every_route() {
    let (state, seeded) = state();
    let board = get(&state, "/api/v1/board").await;
    assert_eq!(board.status, StatusCode::OK);
    assert!(
        board.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let board = board.json();
    assert_eq!(board["columns"].as_array().unwrap().len(), 2);
    assert_eq!(board["models"].as_array().unwrap().len(), 3);
    assert_eq!(board["models"][0]["name"], "Beta Closed");
    assert!(board["models"][0]["average"]["ci95"].is_array());
    assert!(board["models"][2]["average"].is_null());
    let filtered = get(&state, "/api/v1/board?access=open&category=ai2_arc")
        .await
        .json();
    assert_eq!(filtered["models"].as_array().unwrap().len(), 2);
    assert_eq!(filtered["columns"].as_array().unwrap().len(), 1);
    assert_eq!(filtered["models"][0]["cells"].as_array().unwrap().len(), 1);

    let model = get(&state, &format!("/api/v1/models/{}", seeded.models[0]))
        .await
        .json();
    assert_eq!(model["spec"], "mock:a");
    assert_eq!(model["runs"].as_array().unwrap().len(), 2);
    assert_eq!(model["bench"][0]["load"], "concurrency 1");
    assert!(!model.to_string().contains("sk-SECRET"));

    let pick = get(&state, "/api/v1/pick?min_score=40&max_price=1")
        .await
        .json();
    assert_eq!(pick["qualified"][0]["name"], "Alpha Open");
    assert!(pick["excluded"].as_array().unwrap().len() >= 2);

    let history = get(&state, "/api/v1/history").await.json();
    assert!(
        history["categories"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "average")
    );

    let charts = get(&state, "/api/v1/charts").await.json();
    assert_eq!(charts["price"]["points"].as_array().unwrap().len(), 2);
    assert!(charts["price"]["front"].is_array());
    assert_eq!(charts["price"]["not_plotted"][0]["reason"], "no average");

    let openapi = get(&state, "/api/v1/openapi.json").await;
    assert_eq!(openapi.status, StatusCode::OK);
    let openapi = openapi.json();
    assert_eq!(openapi["openapi"], "3.1.0");
    let paths = openapi["paths"].as_object().unwrap();
    for route in [
        "/api/v1/board",
        "/api/v1/models/{id}",
        "/api/v1/runs/{id}/samples",
        "/api/v1/pick",
        "/api/v1/history",
        "/api/v1/charts",
        "/api/v1/openapi.json",
        "/board.csv",
    ] {
        assert!(paths.contains_key(route), "{route}");
    }
}

#[tokio::test]
async fn the_csv_export_follows_the_board_view() {
    let (state, _) = state();
    let reply = get(&state, "/board.csv?sort=name").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let mut reader = csv::Reader::from_reader(reply.body.as_bytes());
    let header = reader.headers().unwrap().clone();
    assert_eq!(&header[0], "rank");
    assert!(header.iter().any(|h| h == "arc_easy_ci_low"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(&rows[0][2], "Alpha Open");
    let average = header.iter().position(|h| h == "average").unwrap();
    assert_eq!(
        &rows[2][average], "",
        "Gamma has no average: an empty cell, not 0"
    );
}

#[tokio::test]
async fn charts_plot_known_points_and_list_the_rest() {
    let (state, _) = state();
    let page = get(&state, "/charts?col=arc_easy").await.body;
    // Gamma has an arc_easy score but no price and no speed.
    assert!(page.contains("Not plotted: <a"), "{page}");
    assert!(page.contains("(price unknown)"));
    assert!(page.contains("(output speed not measured)"));
    assert!(page.contains("class=\"front\""));
    assert!(page.contains("<circle") && page.contains("<rect"));
    assert!(page.contains("open weights") && page.contains("closed"));
}

#[tokio::test]
async fn pick_explains_verdicts_and_exclusions() {
    let (state, _) = state();
    let page = get(&state, "/pick?min_score=45&max_price=2").await.body;
    assert!(page.contains("may be below") || page.contains("clearly above the bar"));
    assert!(page.contains("no score on this column") || page.contains("price unknown"));
    assert!(page.contains("name=\"min_score\""));
}

#[tokio::test]
async fn the_board_is_cached_until_the_data_changes() {
    let (state, _) = state();
    get(&state, "/").await;
    get(&state, "/").await;
    get(&state, "/api/v1/board").await;
    assert_eq!(state.cached_boards(), 1, "one board for one set of options");
    get(&state, "/?avg=arc_easy").await;
    assert_eq!(state.cached_boards(), 2);
}

/// A client that accepts gzip gets the board's JSON and page gzipped: the same bytes.
#[tokio::test]
async fn the_board_is_gzipped_for_clients_that_accept_it() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let (state, _) = state();
    for uri in ["/api/v1/board", "/"] {
        let plain = get(&state, uri).await;
        assert!(plain.headers.get("content-encoding").is_none());
        assert_eq!(plain.headers["vary"], "accept-encoding");
        for (accept, gzipped) in [
            ("gzip", true),
            ("br, gzip;q=0.5", true),
            ("gzip;q=0", false),
            ("identity", false),
        ] {
            for _ in 0..2 {
                let response = podium_web::app(state.clone())
                    .oneshot(
                        axum::http::Request::get(uri)
                            .header("accept-encoding", accept)
                            .body(axum::body::Body::empty())
                            .unwrap(),
                    )
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                let encoding = response.headers().get("content-encoding").cloned();
                let bytes = response.into_body().collect().await.unwrap().to_bytes();
                let text = if gzipped {
                    assert_eq!(encoding.unwrap(), "gzip", "{accept}");
                    let mut text = String::new();
                    std::io::Read::read_to_string(
                        &mut flate2::read::GzDecoder::new(&bytes[..]),
                        &mut text,
                    )
                    .unwrap();
                    text
                } else {
                    assert!(encoding.is_none(), "{accept}");
                    String::from_utf8(bytes.to_vec()).unwrap()
                };
                assert_eq!(text, plain.body, "{uri} {accept}");
            }
        }
    }
}

/// The board's JSON and page are serialized once per data version and query
/// string; a write by another connection (an eval) shows at the next request.
#[tokio::test]
async fn board_bodies_are_cached_until_the_data_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("podium.db");
    let mut store = podium_store::Store::open(&path).unwrap();
    let seeded = common::seed(&mut store);
    let catalog = podium_board::BoardCatalog::with_user_toml(common::CATALOG).unwrap();
    let state = podium_web::AppState::new(store, catalog, podium_board::BoardOptions::default());
    for uri in ["/api/v1/board", "/", "/?sort=name"] {
        let first = get(&state, uri).await;
        let again = get(&state, uri).await;
        assert_eq!(first.status, StatusCode::OK);
        assert_eq!(first.body, again.body, "{uri}");
        assert_eq!(
            first.headers.get("content-type"),
            again.headers.get("content-type")
        );
    }
    let json = get(&state, "/api/v1/board").await;
    assert_eq!(json.headers["content-type"], "application/json");
    let before = json.json();
    // Another process writes: a model's speed appears.
    let spec = before["models"][0]["spec"].as_str().unwrap().to_string();
    let writer = podium_store::Store::open(&path).unwrap();
    writer
        .put_bench_result(
            &spec,
            "concurrency 1",
            "{}",
            r#"{"output_speed": {"p50": 123.5}, "ttft_s": {"p50": 0.25}}"#,
        )
        .unwrap();
    let after = get(&state, "/api/v1/board").await.json();
    assert_ne!(before, after);
    assert_eq!(after["models"][0]["speed"]["output_speed"], 123.5);
    drop(seeded);
}

#[tokio::test]
async fn a_store_failure_is_a_generic_500_without_internals() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("podium.db");
    let mut store = podium_store::Store::open(&path).unwrap();
    let seeded = common::seed(&mut store);
    // Break the database under the server: the samples table disappears.
    let connection = rusqlite::Connection::open(&path).unwrap();
    connection.execute_batch("DROP TABLE samples").unwrap();
    drop(connection);
    let catalog = podium_board::BoardCatalog::with_user_toml(common::CATALOG).unwrap();
    let state = podium_web::AppState::new(store, catalog, podium_board::BoardOptions::default());
    for uri in [
        format!("/runs/{}/samples", seeded.gsm_runs[0]),
        format!("/api/v1/runs/{}/samples", seeded.gsm_runs[0]),
    ] {
        let reply = get(&state, &uri).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{uri}");
        assert!(!reply.body.contains("samples"), "{uri}: {}", reply.body);
        assert!(!reply.body.to_lowercase().contains("sql"), "{uri}");
        assert!(reply.body.contains("the details are in its log"));
    }
}

#[tokio::test]
async fn the_board_page_shows_a_page_of_rows_and_refuses_pages_past_the_end() {
    let (state, _) = state();
    let one = get(&state, "/?rows=1").await;
    assert_eq!(one.status, StatusCode::OK);
    assert!(one.body.contains("Models 1–1 of"), "{}", one.body);
    assert!(one.body.contains("rel=\"next\""), "{}", one.body);
    let second = get(&state, "/?rows=1&page=2").await;
    assert!(second.body.contains("Models 2–2 of"), "{}", second.body);
    assert!(second.body.contains("rel=\"prev\""));
    for bad in ["/?rows=0", "/?rows=1&page=99", "/?page=0", "/?rows=x"] {
        assert_eq!(
            get(&state, bad).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
}
