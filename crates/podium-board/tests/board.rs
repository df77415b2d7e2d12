//! The board from real stores: settings are never mixed, ranks tie where
//! intervals overlap, the average needs every column, the pick and the fronts
//! follow their definitions, and the board as of a date ignores later runs.

use podium_board::{
    Axis, BoardCatalog, BoardOptions, Leaderboard, PickRequest, Verdict, pareto_front, pick,
    rank_upper_bound,
};
use podium_store::{ModelRecord, RunKey, Store};
use serde_json::json;

const CATALOG: &str = r#"
[[model]]
spec = "mock:open-small"
display_name = "Open Small"
access = "open"
licence = "Apache-2.0"
price = { input_per_mtok = 0.1, output_per_mtok = 0.1 }

[[model]]
spec = "mock:open-big"
display_name = "Open Big"
access = "open"
licence = "Apache-2.0"
price = { input_per_mtok = 1.0, output_per_mtok = 1.0 }

[[model]]
spec = "mock:closed"
display_name = "Closed"
access = "closed"
licence = "proprietary"
price = { input_per_mtok = 2.0, output_per_mtok = 6.0 }
"#;

/// A task result of `correct` out of `n` on one proportion metric `key`,
/// with Wilson's interval as Podium stores it.
fn result(task: &str, hash: &str, key: &str, correct: usize, n: usize) -> String {
    let p = correct as f64 / n as f64;
    let se = (p * (1.0 - p) / (n as f64 - 1.0)).sqrt();
    let interval = podium_stats::wilson_interval(p, n).unwrap();
    json!({
        "name": task, "alias": null,
        "metrics": [{"key": key, "value": p, "stderr": se, "higher_is_better": true,
                     "n": n, "interval": [interval.0, interval.1],
                     "unit_range": true, "proportion": true}],
        "n_samples": n, "n_original": 1000, "n_shot": 0, "random_baseline": 0.25,
        "version": 1.0, "config": {"task": task, "tag": ["science"]}, "content_hash": hash,
    })
    .to_string()
}

struct Run<'a> {
    spec: &'a str,
    task: &'a str,
    hash: &'a str,
    key: &'a str,
    correct: usize,
    n: usize,
    limit: Option<u64>,
    shots: u32,
    seed: u64,
}

impl<'a> Run<'a> {
    fn new(spec: &'a str, task: &'a str, correct: usize, n: usize) -> Run<'a> {
        Run {
            spec,
            task,
            hash: "h1",
            key: "acc,none",
            correct,
            n,
            limit: None,
            shots: 0,
            seed: 1,
        }
    }

    fn store(&self, store: &mut Store) -> i64 {
        let model_id = store
            .upsert_model(&ModelRecord {
                spec: self.spec.into(),
                fingerprint: format!("fp-{}", self.spec),
                chat_template_hash: None,
            })
            .unwrap();
        let task_id = store.upsert_task(self.task, self.hash, "{}").unwrap();
        let key = RunKey {
            model_id,
            task_id,
            n_shots: self.shots,
            chat_template: false,
            seed: self.seed,
            limit: self.limit,
        };
        let (run_id, state) = store.find_or_create_run(&key, "{}", "0.1.0").unwrap();
        if state.existing {
            store.reopen_run(run_id).unwrap();
        }
        let json = result(self.task, self.hash, self.key, self.correct, self.n);
        store.finish_run(run_id, &json).unwrap();
        run_id
    }
}

fn catalog() -> BoardCatalog {
    BoardCatalog::with_user_toml(CATALOG).unwrap()
}

fn build(store: &Store, options: BoardOptions) -> Leaderboard {
    Leaderboard::build(store, &catalog(), options).unwrap()
}

#[test]
fn runs_of_different_settings_get_their_own_columns() {
    let mut store = Store::open_in_memory().unwrap();
    Run::new("mock:open-small", "arc_easy", 50, 100).store(&mut store);
    Run {
        limit: Some(10),
        ..Run::new("mock:open-big", "arc_easy", 9, 10)
    }
    .store(&mut store);
    Run {
        hash: "h2",
        ..Run::new("mock:closed", "arc_easy", 90, 100)
    }
    .store(&mut store);
    Run {
        shots: 5,
        ..Run::new("mock:closed", "arc_easy", 95, 100)
    }
    .store(&mut store);
    let board = build(&store, BoardOptions::default());
    let ids: Vec<&str> = board.columns.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(board.columns.len(), 4, "{ids:?}");
    // Every column holds exactly one model: nothing is ranked against a run
    // of another setting, so everyone is first in their own column.
    for (i, column) in board.columns.iter().enumerate() {
        let cells: Vec<_> = board
            .models
            .iter()
            .filter_map(|m| m.cells[i].as_ref())
            .collect();
        assert_eq!(cells.len(), 1, "{}", column.id);
        assert_eq!(cells[0].rank, 1);
    }
    assert!(ids.iter().any(|id| id.contains("limit10")), "{ids:?}");
    assert!(ids.iter().any(|id| id.contains("5shot")), "{ids:?}");
    // Unique column ids.
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len());
    // A model lacking any averaged column has no average.
    assert!(board.models.iter().all(|m| m.average.is_none()));
}

#[test]
fn ranks_tie_where_intervals_overlap() {
    let ranks = rank_upper_bound(
        &[Some((0.6, 0.8)), Some((0.5, 0.7)), Some((0.1, 0.3)), None],
        true,
    );
    assert_eq!(ranks, vec![Some(1), Some(1), Some(3), None]);
    // Lower is better (perplexity): the interval entirely below wins.
    let ranks = rank_upper_bound(&[Some((10.0, 12.0)), Some((3.0, 4.0))], false);
    assert_eq!(ranks, vec![Some(2), Some(1)]);

    let mut store = Store::open_in_memory().unwrap();
    Run::new("mock:open-small", "arc_easy", 60, 100).store(&mut store);
    Run::new("mock:open-big", "arc_easy", 64, 100).store(&mut store);
    Run::new("mock:closed", "arc_easy", 95, 100).store(&mut store);
    let board = build(&store, BoardOptions::default());
    let rank = |spec: &str| {
        let m = board.models.iter().find(|m| m.spec == spec).unwrap();
        (
            m.cells[0].as_ref().unwrap().rank,
            m.average.as_ref().unwrap().rank,
        )
    };
    assert_eq!(rank("mock:closed"), (1, 1));
    assert_eq!(rank("mock:open-big"), (2, 2));
    assert_eq!(rank("mock:open-small"), (2, 2));
    // Sorted by rank, then score.
    assert_eq!(board.models[1].spec, "mock:open-big");
}

#[test]
fn the_average_and_its_interval_follow_metrics_md() {
    let mut store = Store::open_in_memory().unwrap();
    Run::new("mock:closed", "arc_easy", 70, 100).store(&mut store);
    Run::new("mock:closed", "hellaswag", 40, 50).store(&mut store);
    Run::new("mock:open-small", "arc_easy", 40, 100).store(&mut store);
    let board = build(&store, BoardOptions::default());
    let closed = board
        .models
        .iter()
        .find(|m| m.spec == "mock:closed")
        .unwrap();
    let normalized = |p: f64| (p - 0.25) / 0.75 * 100.0;
    let se = |p: f64, n: f64| (p * (1.0 - p) / (n - 1.0)).sqrt() * 100.0 / 0.75;
    let average = closed.average.as_ref().unwrap();
    let expected = (normalized(0.7) + normalized(0.8)) / 2.0;
    assert!((average.value - expected).abs() < 1e-9);
    let expected_se = (se(0.7, 100.0).powi(2) + se(0.8, 50.0).powi(2)).sqrt() / 2.0;
    assert!((average.stderr.unwrap() - expected_se).abs() < 1e-9);
    let (lo, hi) = average.ci95.unwrap();
    assert!((hi - lo - 2.0 * 1.96 * expected_se).abs() < 1e-6);
    // The open model lacks hellaswag: no average, and it sorts last.
    let open = board.models.last().unwrap();
    assert_eq!(open.spec, "mock:open-small");
    assert!(open.average.is_none());

    // Choosing the columns of the average.
    let board = build(
        &store,
        BoardOptions {
            average_over: Some(vec!["arc_easy".into()]),
            ..Default::default()
        },
    );
    let open = board
        .models
        .iter()
        .find(|m| m.spec == "mock:open-small")
        .unwrap();
    assert!((open.average.as_ref().unwrap().value - normalized(0.4)).abs() < 1e-9);
    let err = Leaderboard::build(
        &store,
        &catalog(),
        BoardOptions {
            average_over: Some(vec!["nope".into()]),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("no column `nope`"), "{err}");
}

#[test]
fn the_pick_and_the_fronts() {
    let mut store = Store::open_in_memory().unwrap();
    Run::new("mock:open-small", "arc_easy", 55, 100).store(&mut store);
    Run::new("mock:open-big", "arc_easy", 80, 100).store(&mut store);
    Run::new("mock:closed", "arc_easy", 79, 100).store(&mut store);
    Run::new("mock:unpriced", "arc_easy", 90, 100).store(&mut store);
    let board = build(&store, BoardOptions::default());
    let id = |spec: &str| board.models.iter().find(|m| m.spec == spec).unwrap().id;

    // Closed is dearer and no better than open-big: off the price front.
    // The unpriced model has no price, so it is not on the price front.
    let front = pareto_front(&board, None, Axis::Price);
    assert_eq!(front, vec![id("mock:open-small"), id("mock:open-big")]);
    // No speeds were measured: no speed front.
    assert!(pareto_front(&board, None, Axis::Speed).is_empty());

    // Bar: 70 points of arc_easy accuracy. open-big (80, interval ~71–87)
    // is clearly above; closed (79) too; open-small (55) is out; the
    // unpriced model qualifies but comes after the priced ones.
    let chosen = pick(
        &board,
        &PickRequest {
            column: Some("arc_easy".into()),
            min_score: Some(70.0),
            ..Default::default()
        },
    )
    .unwrap();
    let names: Vec<&str> = chosen.qualified.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, vec!["Open Big", "Closed", "mock:unpriced"]);
    assert_eq!(chosen.qualified[0].verdict, Verdict::ClearlyAbove);
    assert_eq!(chosen.excluded.len(), 1);
    assert!(
        chosen.excluded[0].reason.contains("below 70"),
        "{:?}",
        chosen.excluded
    );

    // A bar inside open-big's interval: it may be below.
    let chosen = pick(
        &board,
        &PickRequest {
            column: Some("arc_easy".into()),
            min_score: Some(78.0),
            max_price: Some(5.0),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(chosen.qualified[0].name, "Open Big");
    assert_eq!(chosen.qualified[0].verdict, Verdict::MayBeBelow);
    assert!(
        chosen
            .excluded
            .iter()
            .any(|e| e.name == "mock:unpriced" && e.reason == "price unknown")
    );
    // A speed bar without measured speeds excludes everyone, saying why.
    let chosen = pick(
        &board,
        &PickRequest {
            min_speed: Some(10.0),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(chosen.qualified.is_empty());
    assert!(
        chosen
            .excluded
            .iter()
            .all(|e| e.reason.contains("podium bench") || e.reason.contains("no score"))
    );
}

#[test]
fn the_board_as_of_a_date_ignores_later_runs() {
    let mut store = Store::open_in_memory().unwrap();
    Run::new("mock:closed", "arc_easy", 50, 100).store(&mut store);
    let first = store.finish_times().unwrap().pop().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    // The same setting run again later, with another seed: a new run.
    Run {
        seed: 2,
        ..Run::new("mock:closed", "arc_easy", 90, 100)
    }
    .store(&mut store);
    Run::new("mock:open-big", "arc_easy", 70, 100).store(&mut store);
    let now = build(&store, BoardOptions::default());
    assert_eq!(now.models.len(), 2);
    let latest = |board: &Leaderboard| {
        let closed = board
            .models
            .iter()
            .find(|m| m.spec == "mock:closed")
            .unwrap();
        closed.cells[0].as_ref().unwrap().value
    };
    assert_eq!(latest(&now), 0.9);
    let then = build(
        &store,
        BoardOptions {
            as_of: Some(first.clone()),
            ..Default::default()
        },
    );
    assert_eq!(then.models.len(), 1);
    assert_eq!(latest(&then), 0.5);
    let history = podium_board::history(&store, &catalog(), &BoardOptions::default()).unwrap();
    assert!(!history.times.is_empty());
    let last = history.times.last().unwrap().clone();
    let gap = history
        .points
        .iter()
        .find(|p| p.at == last && p.category == "average")
        .unwrap();
    // Closed 90% vs open 70%: the gap in normalized points.
    let normalized = |p: f64| (p - 0.25) / 0.75 * 100.0;
    assert!((gap.gap.unwrap() - (normalized(0.9) - normalized(0.7))).abs() < 1e-9);
    assert!(history.categories.contains(&"science".to_string()));
}

#[test]
fn bundled_tasks_rank_by_their_documented_metric() {
    let with_metrics = |name: &str, keys: &[&str], config: serde_json::Value| {
        let metrics: Vec<_> = keys
            .iter()
            .map(|k| json!({"key": k, "value": 0.5, "stderr": 0.1, "higher_is_better": true}))
            .collect();
        serde_json::from_value::<podium_tasks::results::TaskResult>(json!({
            "name": name, "alias": null, "metrics": metrics, "n_samples": 10,
            "n_original": 10, "n_shot": 0, "random_baseline": 0.25, "version": 1,
            "config": config, "content_hash": "h",
        }))
        .unwrap()
    };
    let chosen = |name: &str, keys: &[&str], config| {
        podium_board::metric_choice::board_metric(&with_metrics(name, keys, config))
            .unwrap()
            .key
            .clone()
    };
    let mc = ["acc,none", "acc_norm,none"];
    assert_eq!(chosen("hellaswag", &mc, json!({})), "acc_norm,none");
    assert_eq!(
        chosen("lite_arc_challenge", &mc, json!({})),
        "acc_norm,none"
    );
    assert_eq!(chosen("mmlu_anatomy", &mc, json!({})), "acc,none");
    let gsm = ["exact_match,flexible-extract", "exact_match,strict-match"];
    assert_eq!(
        chosen("lite_gsm8k", &gsm, json!({})),
        "exact_match,strict-match"
    );
    assert_eq!(chosen("my_task", &mc, json!({})), "acc,none");
    assert_eq!(
        chosen(
            "my_task",
            &mc,
            json!({"metadata": {"board_metric": "acc_norm,none"}})
        ),
        "acc_norm,none"
    );
}

/// Samples with (input, output) token counts for run `run_id`.
fn put_tokens(store: &mut Store, run_id: i64, counts: &[Option<(u64, u64)>]) {
    for (doc_id, counts) in counts.iter().enumerate() {
        store
            .put_sample(
                run_id,
                &podium_store::SampleRecord {
                    doc_id: doc_id as u64,
                    prompt_hash: format!("p{doc_id}"),
                    requests_json: "{}".into(),
                    responses_json: "{}".into(),
                    metrics_json: "{}".into(),
                    n_input_tokens: counts.map(|c| c.0),
                    n_output_tokens: counts.map(|c| c.1),
                    timing_json: "{}".into(),
                    status: podium_store::SampleStatus::Ok,
                    error: None,
                },
            )
            .unwrap();
    }
}

#[test]
fn costs_use_catalogue_prices_token_counts_and_machine_hours() {
    let mut store = Store::open_in_memory().unwrap();
    // gpt-4o-mini: $0.15 in, $0.60 out per 1M tokens.
    let priced = Run::new("openai:gpt-4o-mini", "arc_easy", 1, 2).store(&mut store);
    put_tokens(&mut store, priced, &[Some((1000, 100)), Some((3000, 300))]);
    let partial = Run::new("openai:gpt-4o", "arc_easy", 1, 2).store(&mut store);
    put_tokens(&mut store, partial, &[Some((1000, 100)), None]);
    let local = Run::new("local:smollm2-135m-instruct", "arc_easy", 1, 2).store(&mut store);
    put_tokens(&mut store, local, &[Some((1000, 100))]);
    Run::new("mock:unpriced", "arc_easy", 1, 2).store(&mut store);

    let board = build(&store, BoardOptions::default());
    let cost = |spec: &str| {
        board
            .models
            .iter()
            .find(|m| m.spec == spec)
            .unwrap()
            .cost
            .clone()
    };
    // (4000 × 0.15 + 400 × 0.60) / 1e6 = 0.00084; per 1,000 samples 0.42.
    let mini = cost("openai:gpt-4o-mini").unwrap();
    assert!((mini.usd - 0.00084).abs() < 1e-12 && !mini.lower_bound);
    assert!((mini.per_1k_samples.unwrap() - 0.42).abs() < 1e-9);
    assert!(cost("openai:gpt-4o").unwrap().lower_bound);
    let smol = cost("local:smollm2-135m-instruct").unwrap();
    assert_eq!((smol.usd, smol.from_machine_hours), (0.0, false));
    assert_eq!(cost("mock:unpriced"), None);

    // With a machine price, a local run costs its hours worked × the price.
    let board = build(
        &store,
        BoardOptions {
            machine_price: Some(1.2),
            ..Default::default()
        },
    );
    let smol = board
        .models
        .iter()
        .find(|m| m.spec == "local:smollm2-135m-instruct")
        .unwrap()
        .cost
        .clone()
        .unwrap();
    let worked_ms = store.run(local).unwrap().unwrap().active_ms.unwrap_or(0) as f64;
    assert!(smol.from_machine_hours);
    assert!(
        (smol.usd - worked_ms / 3.6e6 * 1.2).abs() < 1e-12,
        "{smol:?}"
    );
}

#[test]
fn a_group_gets_one_column_and_counts_once_in_the_average() {
    let mut store = Store::open_in_memory().unwrap();
    // Two subjects of 100 and 50 docs, and one other task.
    Run::new("mock:closed", "sub_a", 60, 100).store(&mut store);
    Run::new("mock:closed", "sub_b", 40, 50).store(&mut store);
    Run::new("mock:closed", "other", 70, 100).store(&mut store);
    // A model lacking one subject has no group cell.
    Run::new("mock:open-big", "sub_a", 50, 100).store(&mut store);
    Run::new("mock:open-big", "other", 50, 100).store(&mut store);
    let board = build(
        &store,
        BoardOptions {
            groups: vec![podium_board::GroupSpec {
                name: "subjects".into(),
                members: vec!["sub_a".into(), "sub_b".into()],
            }],
            ..Default::default()
        },
    );
    let ids: Vec<&str> = board.columns.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["other", "sub_a", "sub_b", "subjects"]);
    let group = board.column("subjects").unwrap();
    assert_eq!(board.columns[group].members, ["sub_a", "sub_b"]);
    let closed = board
        .models
        .iter()
        .find(|m| m.spec == "mock:closed")
        .unwrap();
    let cell = closed.cells[group].as_ref().unwrap();
    // Size-weighted: (60 + 40) / 150; Wilson's interval over all 150 docs.
    assert!((cell.value - 100.0 / 150.0).abs() < 1e-12);
    assert_eq!(cell.n, 150);
    assert_eq!(cell.ci95, podium_stats::wilson_interval(100.0 / 150.0, 150));
    assert_eq!(cell.member_runs.len(), 2);
    let open = board
        .models
        .iter()
        .find(|m| m.spec == "mock:open-big")
        .unwrap();
    assert!(open.cells[group].is_none());
    // The default average: `other` and the group, not the subjects.
    let averaged: Vec<&str> = board
        .average_columns
        .iter()
        .map(|&i| board.columns[i].id.as_str())
        .collect();
    assert_eq!(averaged, ["other", "subjects"]);
    let normalized = |p: f64| (p - 0.25) / 0.75 * 100.0;
    let average = closed.average.as_ref().unwrap().value;
    assert!((average - (normalized(0.7) + normalized(100.0 / 150.0)) / 2.0).abs() < 1e-9);
}
