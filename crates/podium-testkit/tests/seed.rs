//! The seeded store: deterministic, consistent with itself, and a board
//! built from it has the columns and rows the spec asked for.

use podium_board::{BoardCatalog, BoardOptions, Leaderboard};
use podium_store::Store;
use podium_tasks::results::TaskResult;
use podium_testkit::seed::{self, HOSTILE_OUTPUTS, HOSTILE_TASK, HUGE_OUTPUT_BYTES, SeedSpec};

fn small(seed: u64) -> SeedSpec {
    SeedSpec {
        models: 5,
        tasks: 3,
        samples_per_run: 10,
        seed,
        hostile: false,
    }
}

fn seeded(spec: &SeedSpec) -> (Store, seed::Seeded) {
    let mut store = Store::open_in_memory().unwrap();
    let seeded = seed::fill(&mut store, spec).unwrap();
    (store, seeded)
}

/// Everything the store holds, through its public API, as one string.
fn dump(store: &Store) -> String {
    let mut out = String::new();
    for run in store.list_runs().unwrap() {
        out.push_str(&format!("{run:?}\n{:?}\n", store.run(run.run_id).unwrap()));
        for sample in store.samples(run.run_id).unwrap() {
            out.push_str(&format!("{sample:?}\n"));
        }
    }
    out.push_str(&format!("{:?}\n", store.board_runs(None).unwrap()));
    out.push_str(&format!("{:?}\n", store.latest_bench_results().unwrap()));
    out
}

#[test]
fn a_small_seed_builds_a_board_with_the_expected_columns_and_rows() {
    let (store, seeded) = seeded(&small(1));
    assert_eq!(seeded.model_specs.len(), 5);
    assert_eq!(seeded.task_names, ["task_000", "task_001", "task_002"]);
    assert_eq!((seeded.n_runs, seeded.n_samples), (15, 150));
    assert!(seeded.first_finished_at < seeded.last_finished_at);

    let catalog = BoardCatalog::with_user_toml(&seeded.catalog_toml).unwrap();
    let board = Leaderboard::build(&store, &catalog, BoardOptions::default()).unwrap();
    assert!(board.skipped.is_empty(), "{:?}", board.skipped);
    let ids: Vec<&str> = board.columns.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, seeded.task_names);
    for column in &board.columns {
        assert_eq!(column.random_baseline, Some(0.25));
        assert_eq!(column.n_docs_in_split, 10);
        assert_eq!(column.categories.len(), 1, "{column:?}");
    }
    // Even tasks rank by accuracy, odd ones by length-normalized accuracy.
    assert_eq!(board.columns[0].setting.metric, "acc,none");
    assert_eq!(board.columns[1].setting.metric, "acc_norm,none");
    assert_eq!(board.average_columns, [0, 1, 2]);

    assert_eq!(board.models.len(), 5);
    let mut specs: Vec<&str> = board.models.iter().map(|m| m.spec.as_str()).collect();
    specs.sort();
    let mut expected: Vec<&str> = seeded.model_specs.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(specs, expected);
    for row in &board.models {
        assert!(
            row.cells
                .iter()
                .all(|c| c.as_ref().is_some_and(|c| c.n == 10))
        );
        assert!(row.average.is_some(), "{row:?}");
        assert!(row.info.display_name.is_some() && row.info.access.is_some());
        assert_eq!(row.name, row.info.display_name.clone().unwrap());
        assert_eq!(
            row.speed.is_some(),
            seeded.benched_models.contains(&row.spec),
            "{}",
            row.spec
        );
    }
    assert_eq!(seeded.benched_models.len(), 4);
    // Model 3 is a local GGUF file, the others endpoints; open and closed both appear.
    assert!(seeded.model_specs[3].starts_with("gguf:/"));
    assert!(seeded.model_specs[0].starts_with("openai-compatible:http://127.0.0.1:8000/v1#model-"));
    let open = board
        .models
        .iter()
        .filter(|m| podium_board::access_label(m.info.access) == "open");
    assert!((1..5).contains(&open.count()));

    // History has several points: the runs finish over several days.
    assert!(store.finish_times().unwrap().len() > 5);
}

#[test]
fn a_runs_results_agree_with_its_samples() {
    let (store, _) = seeded(&small(7));
    for run in store.board_runs(None).unwrap() {
        let result: TaskResult = serde_json::from_str(&run.results_json).unwrap();
        let samples = store.samples(run.run_id).unwrap();
        for metric in &result.metrics {
            let values: Vec<f64> = samples
                .iter()
                .map(|s| {
                    let scores: serde_json::Value = serde_json::from_str(&s.metrics_json).unwrap();
                    scores["metrics"][&metric.key].as_f64().unwrap()
                })
                .collect();
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            assert!(
                (metric.value - mean).abs() < 1e-12,
                "{}: {metric:?}",
                run.task_name
            );
            let (lo, hi) = metric.interval.unwrap();
            assert!(lo <= metric.value && metric.value <= hi);
            assert_eq!(metric.n, 10);
        }
        // Each loglikelihood response's best choice is the gold one exactly when acc is 1.
        for sample in &samples {
            let request: serde_json::Value = serde_json::from_str(&sample.requests_json).unwrap();
            let response: serde_json::Value = serde_json::from_str(&sample.responses_json).unwrap();
            let metrics: serde_json::Value = serde_json::from_str(&sample.metrics_json).unwrap();
            assert_eq!(request["request"]["type"], "loglikelihood");
            assert_eq!(request["target"]["type"], "choices");
            assert_eq!(request["target"]["choices"].as_array().unwrap().len(), 4);
            let gold = request["target"]["golds"][0].as_u64().unwrap() as usize;
            let logprobs: Vec<f64> = response["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["logprob"].as_f64().unwrap())
                .collect();
            let best = (0..4)
                .max_by(|&a, &b| logprobs[a].total_cmp(&logprobs[b]))
                .unwrap();
            assert_eq!(
                metrics["metrics"]["acc,none"].as_f64().unwrap() == 1.0,
                best == gold
            );
        }
    }
}

#[test]
fn the_same_seed_writes_the_same_store_and_another_seed_another() {
    let (first, first_seeded) = seeded(&small(42));
    let (second, second_seeded) = seeded(&small(42));
    assert_eq!(first_seeded, second_seeded);
    assert_eq!(dump(&first), dump(&second));
    let (third, third_seeded) = seeded(&small(43));
    assert_ne!(dump(&first), dump(&third));
    assert_ne!(first_seeded.catalog_toml, third_seeded.catalog_toml);
}

#[test]
fn a_hostile_seed_stores_hostile_outputs_verbatim() {
    let spec = SeedSpec {
        hostile: true,
        ..small(3)
    };
    let (store, seeded) = seeded(&spec);
    assert_eq!(seeded.task_names.last().unwrap(), HOSTILE_TASK);
    let hostile_model = seeded.hostile_model.clone().unwrap();
    let catalog = BoardCatalog::with_user_toml(&seeded.catalog_toml).unwrap();
    let board = Leaderboard::build(&store, &catalog, BoardOptions::default()).unwrap();
    assert_eq!(board.columns.len(), 4);
    assert!(board.models.iter().any(|m| m.name.contains("<script>")));

    let run = store
        .board_runs(None)
        .unwrap()
        .into_iter()
        .find(|r| r.task_name == HOSTILE_TASK && r.model_spec == hostile_model)
        .unwrap();
    let samples = store.samples(run.run_id).unwrap();
    assert_eq!(samples.len(), HOSTILE_OUTPUTS.len() + 1);
    let text = |i: usize| -> String {
        let response: serde_json::Value = serde_json::from_str(&samples[i].responses_json).unwrap();
        assert_eq!(response["type"], "generate");
        response["results"][0]["text"].as_str().unwrap().to_string()
    };
    for (i, hostile) in HOSTILE_OUTPUTS.iter().enumerate() {
        assert_eq!(text(i), *hostile);
    }
    let huge = text(HOSTILE_OUTPUTS.len());
    assert_eq!(huge.len(), HUGE_OUTPUT_BYTES);
    assert!(huge.ends_with("</script>"));
    // Another model answers the same task plainly.
    let plain = store
        .board_runs(None)
        .unwrap()
        .into_iter()
        .find(|r| r.task_name == HOSTILE_TASK && r.model_spec != hostile_model)
        .unwrap();
    assert!(
        store
            .samples(plain.run_id)
            .unwrap()
            .iter()
            .all(|s| !s.responses_json.contains('<'))
    );
}

#[test]
fn an_empty_spec_is_refused() {
    let mut store = Store::open_in_memory().unwrap();
    let error = seed::fill(
        &mut store,
        &SeedSpec {
            models: 0,
            ..SeedSpec::default()
        },
    )
    .unwrap_err();
    assert!(error.to_string().contains("at least one model"), "{error}");
}
