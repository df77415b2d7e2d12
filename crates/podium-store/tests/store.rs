//! Behaviour of the store through its public API: migrations, resume, sample
//! upserts, the board's latest results and the response cache. Every test runs
//! against both engines: `NAME::sqlite` on an SQLite file, `NAME::postgres` on a
//! fresh database of a throwaway PostgreSQL server (podium-testkit).

mod common;

use std::thread::sleep;
use std::time::Duration;

use common::Db;

use podium_store::{
    ModelRecord, RunKey, RunState, RunStatus, SCHEMA_VERSION, SampleRecord, SampleStatus,
    SampleWrite, Store, StoreError, TokenTotals,
};

fn model(spec: &str, fingerprint: &str) -> ModelRecord {
    ModelRecord {
        spec: spec.to_owned(),
        fingerprint: fingerprint.to_owned(),
        chat_template_hash: None,
    }
}

fn sample(doc_id: u64, status: SampleStatus) -> SampleRecord {
    SampleRecord {
        doc_id,
        prompt_hash: format!("prompt-{doc_id}"),
        requests_json: r#"[{"kind":"loglikelihood"}]"#.to_owned(),
        responses_json: "[]".to_owned(),
        metrics_json: match status {
            SampleStatus::Ok => r#"{"acc":1.0}"#.to_owned(),
            SampleStatus::Failed => "{}".to_owned(),
        },
        n_input_tokens: Some(12),
        n_output_tokens: None,
        timing_json: r#"{"e2e_s":0.5}"#.to_owned(),
        status,
        error: match status {
            SampleStatus::Ok => None,
            SampleStatus::Failed => Some("connection reset".to_owned()),
        },
    }
}

/// A model, a task and the key of a run over them, in `store`.
fn run_key(store: &Store, seed: u64, limit: Option<u64>) -> RunKey {
    let model_id = store
        .upsert_model(&model("openai:tiny", "http://h/v1#tiny"))
        .unwrap();
    let task_id = store.upsert_task("hellaswag", "sha256:abc", "{}").unwrap();
    RunKey {
        model_id,
        task_id,
        n_shots: 0,
        chat_template: false,
        seed,
        limit,
    }
}

both_engines! {
    fn file_database_is_wal_and_migrations_are_idempotent(db: &Db) {
        // (The SQLite file is nested, which also checks that open creates parent
        // directories.)
        let journal = if db.is_postgres() { "postgresql" } else { "wal" };
        {
            let store = db.open();
            assert_eq!(store.journal_mode().unwrap(), journal);
            assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
            store.upsert_model(&model("m", "f")).unwrap();
        }
        for _ in 0..2 {
            let store = db.open();
            assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
            assert_eq!(store.journal_mode().unwrap(), journal);
            // The row written before reopening survives, with the same id.
            assert_eq!(store.upsert_model(&model("m", "f")).unwrap(), 1);
        }
    }

    fn newer_schema_is_refused(db: &Db) {
        drop(db.open());
        db.raw_sql(
            &format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1),
            &format!("UPDATE podium_schema SET version = {}", SCHEMA_VERSION + 1),
        );
        match Store::open_url(db.url()) {
            Err(StoreError::SchemaTooNew { found, supported }) => {
                assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            }
            Err(other) => panic!("expected SchemaTooNew, got {other}"),
            Ok(_) => panic!("expected SchemaTooNew, got a store"),
        }
    }

    fn upserts_return_stable_ids(db: &Db) {
        let store = db.open();
        let with_template = ModelRecord {
            chat_template_hash: Some("tmpl-1".to_owned()),
            ..model("local:qwen.gguf", "sha256:q")
        };
        let first = store.upsert_model(&with_template).unwrap();
        // Same identity without a template hash: same id (the SQL keeps the known hash).
        assert_eq!(
            store
                .upsert_model(&model("local:qwen.gguf", "sha256:q"))
                .unwrap(),
            first
        );
        // A different file under the same spec is a different model.
        assert_ne!(
            store
                .upsert_model(&model("local:qwen.gguf", "sha256:other"))
                .unwrap(),
            first
        );

        let task = store.upsert_task("arc_easy", "h1", r#"{"a":1}"#).unwrap();
        assert_eq!(
            store.upsert_task("arc_easy", "h1", r#"{"a":1}"#).unwrap(),
            task
        );
        assert_ne!(
            store.upsert_task("arc_easy", "h2", r#"{"a":2}"#).unwrap(),
            task
        );
    }

    fn invalid_json_is_rejected(db: &Db) {
        let store = db.open();
        let error = store.upsert_task("t", "h", "{not json").unwrap_err();
        assert!(error.is_constraint_violation(), "{error:?}");
    }

    fn resume_after_reopening_the_file(db: &Db) {
        let run_id = {
            let mut store = db.open();
            let key = run_key(&store, 1234, Some(10));
            let (run_id, state) = store.find_or_create_run(&key, "{}", "0.1.0").unwrap();
            assert_eq!(
                state,
                RunState {
                    existing: false,
                    finished: false
                }
            );
            for doc_id in [0, 1, 2] {
                store
                    .put_sample(run_id, &sample(doc_id, SampleStatus::Ok))
                    .unwrap();
            }
            // A failed document is stored but is not "completed".
            store
                .put_sample(run_id, &sample(3, SampleStatus::Failed))
                .unwrap();
            run_id
        };

        let mut store = db.open();
        let key = run_key(&store, 1234, Some(10));
        let (resumed_id, state) = store.find_or_create_run(&key, "{}", "0.1.0").unwrap();
        assert_eq!(resumed_id, run_id);
        assert_eq!(
            state,
            RunState {
                existing: true,
                finished: false
            }
        );
        assert_eq!(
            store.completed_doc_ids(run_id).unwrap(),
            [0, 1, 2].into_iter().collect()
        );
        assert_eq!(store.list_runs().unwrap().len(), 1);
    }

    fn run_identity_includes_every_key_field(db: &Db) {
        let mut store = db.open();
        let base = run_key(&store, 1, None);
        let (base_id, _) = store.find_or_create_run(&base, "{}", "0.1.0").unwrap();
        let variants = [
            RunKey { n_shots: 5, ..base },
            RunKey {
                chat_template: true,
                ..base
            },
            RunKey { seed: 2, ..base },
            RunKey {
                limit: Some(100),
                ..base
            },
            // The largest seed must round-trip through SQLite's signed integers.
            RunKey {
                seed: u64::MAX,
                ..base
            },
        ];
        for variant in variants {
            let (id, state) = store.find_or_create_run(&variant, "{}", "0.1.0").unwrap();
            assert_ne!(id, base_id, "{variant:?}");
            assert!(!state.existing);
            // And each variant is found again by its own key (limit NULL vs 100 included).
            let (again, state) = store.find_or_create_run(&variant, "{}", "0.1.0").unwrap();
            assert_eq!((again, state.existing), (id, true));
        }
        let (again, _) = store.find_or_create_run(&base, "{}", "0.1.0").unwrap();
        assert_eq!(again, base_id);
        let seeds: Vec<u64> = store.list_runs().unwrap().iter().map(|r| r.seed).collect();
        assert!(seeds.contains(&u64::MAX));
    }

    fn failed_run_resumes_and_finished_run_is_reported_finished(db: &Db) {
        let mut store = db.open();
        let key = run_key(&store, 7, None);
        let (run_id, _) = store.find_or_create_run(&key, "{}", "0.1.0").unwrap();
        store.fail_run(run_id, "backend went away").unwrap();
        assert_eq!(store.list_runs().unwrap()[0].status, RunStatus::Failed);

        let (again, state) = store.find_or_create_run(&key, "{}", "0.1.0").unwrap();
        assert_eq!(
            (again, state.existing, state.finished),
            (run_id, true, false)
        );
        assert_eq!(store.list_runs().unwrap()[0].status, RunStatus::Running);

        store.finish_run(run_id, r#"{"acc":0.5}"#).unwrap();
        let (again, state) = store.find_or_create_run(&key, "{}", "0.1.0").unwrap();
        assert_eq!(
            (again, state.existing, state.finished),
            (run_id, true, true)
        );

        store.reopen_run(run_id).unwrap();
        let summary = &store.list_runs().unwrap()[0];
        assert_eq!(summary.status, RunStatus::Running);
        assert_eq!(summary.finished_at, None);
        assert!(store.latest_results().unwrap().is_empty());
    }

    fn unknown_run_is_an_error(db: &Db) {
        let mut store = db.open();
        assert!(matches!(
            store.put_sample(99, &sample(0, SampleStatus::Ok)),
            Err(StoreError::RunNotFound(99))
        ));
        assert!(matches!(
            store.finish_run(99, "{}"),
            Err(StoreError::RunNotFound(99))
        ));
        assert!(matches!(
            store.fail_run(99, "x"),
            Err(StoreError::RunNotFound(99))
        ));
        assert!(matches!(
            store.reopen_run(99),
            Err(StoreError::RunNotFound(99))
        ));
    }

    fn ok_sample_replaces_failed_one_without_double_counting(db: &Db) {
        let mut store = db.open();
        let key = run_key(&store, 1, None);
        let (run_id, _) = store.find_or_create_run(&key, "{}", "0.1.0").unwrap();

        assert_eq!(
            store
                .put_sample(run_id, &sample(5, SampleStatus::Failed))
                .unwrap(),
            SampleWrite::Inserted
        );
        assert!(store.completed_doc_ids(run_id).unwrap().is_empty());
        assert_eq!(
            store
                .put_sample(run_id, &sample(5, SampleStatus::Ok))
                .unwrap(),
            SampleWrite::Replaced
        );
        // A later failed retry must not destroy the good result.
        assert_eq!(
            store
                .put_sample(run_id, &sample(5, SampleStatus::Failed))
                .unwrap(),
            SampleWrite::KeptExisting
        );

        let samples = store.samples(run_id).unwrap();
        assert_eq!(samples, vec![sample(5, SampleStatus::Ok)]);
        let summary = &store.list_runs().unwrap()[0];
        assert_eq!((summary.n_samples, summary.n_failed), (1, 0));
        assert_eq!(
            store.completed_doc_ids(run_id).unwrap(),
            [5].into_iter().collect()
        );
    }

    fn samples_come_back_in_doc_order_with_counts(db: &Db) {
        let mut store = db.open();
        let key = run_key(&store, 1, None);
        let (run_id, _) = store.find_or_create_run(&key, "{}", "0.1.0").unwrap();
        for (doc_id, status) in [
            (10, SampleStatus::Ok),
            (2, SampleStatus::Failed),
            (7, SampleStatus::Ok),
        ] {
            store.put_sample(run_id, &sample(doc_id, status)).unwrap();
        }
        let doc_ids: Vec<u64> = store
            .samples(run_id)
            .unwrap()
            .iter()
            .map(|s| s.doc_id)
            .collect();
        assert_eq!(doc_ids, [2, 7, 10]);
        let summary = &store.list_runs().unwrap()[0];
        assert_eq!((summary.n_samples, summary.n_failed), (3, 1));
        assert_eq!(summary.model_spec, "openai:tiny");
        assert_eq!(summary.task_name, "hellaswag");
    }

    fn token_totals_sum_successful_samples_and_count_the_uncounted(db: &Db) {
        let mut store = db.open();
        let key = run_key(&store, 1, None);
        let (run_id, _) = store.find_or_create_run(&key, "{}", "0.1.0").unwrap();
        let counted = |doc_id, n_in, n_out| SampleRecord {
            n_input_tokens: Some(n_in),
            n_output_tokens: Some(n_out),
            ..sample(doc_id, SampleStatus::Ok)
        };
        store.put_sample(run_id, &counted(0, 100, 10)).unwrap();
        store.put_sample(run_id, &counted(1, 50, 5)).unwrap();
        // A failed sample's tokens are not part of the run's cost; one without counts is.
        store
            .put_sample(
                run_id,
                &SampleRecord {
                    n_input_tokens: Some(999),
                    ..sample(2, SampleStatus::Failed)
                },
            )
            .unwrap();
        store
            .put_sample(
                run_id,
                &SampleRecord {
                    n_input_tokens: None,
                    ..sample(3, SampleStatus::Ok)
                },
            )
            .unwrap();
        let totals = store.run_token_totals(run_id).unwrap();
        assert_eq!(
            totals,
            TokenTotals {
                samples: 3,
                counted: 2,
                input_tokens: 150,
                output_tokens: 15
            }
        );
        // The board's query for many runs at once: the same totals; a run without
        // successful samples (or no such run) is absent.
        let key2 = run_key(&store, 2, None);
        let (empty_run, _) = store.find_or_create_run(&key2, "{}", "0.1.0").unwrap();
        let by_run = store
            .token_totals_by_run(&[run_id, empty_run, 9_999])
            .unwrap();
        assert_eq!(by_run.len(), 1);
        assert_eq!(by_run[&run_id], totals);
        assert!(store.token_totals_by_run(&[]).unwrap().is_empty());
    }

    fn latest_results_pick_the_newest_finished_run(db: &Db) {
        let mut store = db.open();
        let older_key = run_key(&store, 1, None);
        let newer_key = RunKey {
            seed: 2,
            ..older_key
        };
        let unfinished_key = RunKey {
            seed: 3,
            ..older_key
        };
        let (older, _) = store.find_or_create_run(&older_key, "{}", "0.1.0").unwrap();
        let (newer, _) = store.find_or_create_run(&newer_key, "{}", "0.1.0").unwrap();
        store
            .find_or_create_run(&unfinished_key, "{}", "0.1.0")
            .unwrap();

        // Finish the later-created run first: recency is by finish time, not by id.
        store.finish_run(newer, r#"{"acc":0.2}"#).unwrap();
        sleep(Duration::from_millis(5));
        store.finish_run(older, r#"{"acc":0.3}"#).unwrap();

        // Another model's result forms its own row.
        let other_model = store
            .upsert_model(&model("openai:big", "http://h/v1#big"))
            .unwrap();
        let other_key = RunKey {
            model_id: other_model,
            ..older_key
        };
        let (other, _) = store.find_or_create_run(&other_key, "{}", "0.1.0").unwrap();
        store.finish_run(other, r#"{"acc":0.9}"#).unwrap();

        let latest = store.latest_results().unwrap();
        let cells: Vec<(&str, &str, i64, &str)> = latest
            .iter()
            .map(|r| {
                (
                    r.model_spec.as_str(),
                    r.task_name.as_str(),
                    r.run_id,
                    r.results_json.as_str(),
                )
            })
            .collect();
        assert_eq!(
            cells,
            [
                ("openai:big", "hellaswag", other, r#"{"acc":0.9}"#),
                ("openai:tiny", "hellaswag", older, r#"{"acc":0.3}"#),
            ]
        );
        assert!(latest[1].finished_at.ends_with('Z'));
    }

    fn cache_round_trip(db: &Db) {
        let store = db.open();
        // Any key: the backends compute it (`podium_core::cache_key`).
        let key = "9d7b3e1317eddc08d2386c330c12b73003bdfe5b03811c414c987d105775eae9";
        assert_eq!(store.cache_get(key).unwrap(), None);
        store.cache_put(key, r#"{"text":"a"}"#).unwrap();
        assert_eq!(
            store.cache_get(key).unwrap().as_deref(),
            Some(r#"{"text":"a"}"#)
        );
        store.cache_put(key, r#"{"text":"b"}"#).unwrap();
        assert_eq!(
            store.cache_get(key).unwrap().as_deref(),
            Some(r#"{"text":"b"}"#)
        );
    }

    fn concurrent_connections_resume_the_same_run(db: &Db) {
        // Separate connections stand in for separate `podium` processes: the
        // IMMEDIATE transaction in find_or_create_run plus the busy timeout must make
        // them agree on one run instead of racing to create two.
        let key = run_key(&db.open(), 42, None);
        let run_ids: Vec<i64> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|worker| {
                    scope.spawn(move || {
                        let mut store = db.open();
                        let (run_id, _) = store.find_or_create_run(&key, "{}", "0.1.0").unwrap();
                        store
                            .put_sample(run_id, &sample(worker, SampleStatus::Ok))
                            .unwrap();
                        run_id
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(
            run_ids.windows(2).all(|pair| pair[0] == pair[1]),
            "{run_ids:?}"
        );
        let reader = db.open();
        assert_eq!(reader.list_runs().unwrap().len(), 1);
        assert_eq!(
            reader.completed_doc_ids(run_ids[0]).unwrap(),
            (0..8).collect()
        );
    }

    fn bench_results_keep_the_latest_per_model_and_load(db: &Db) {
        let store = db.open();
        store
            .put_bench_result("m", "concurrency 1", "{}", r#"{"v": 1}"#)
            .unwrap();
        store
            .put_bench_result("m", "concurrency 8", "{}", r#"{"v": 2}"#)
            .unwrap();
        store
            .put_bench_result("m", "concurrency 1", "{}", r#"{"v": 3}"#)
            .unwrap();
        let latest = store.latest_bench_results().unwrap();
        let got: Vec<(&str, &str)> = latest
            .iter()
            .map(|r| (r.load.as_str(), r.summary_json.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("concurrency 1", r#"{"v": 3}"#),
                ("concurrency 8", r#"{"v": 2}"#)
            ]
        );
        assert!(store.put_bench_result("m", "x", "not json", "{}").is_err());
    }

    /// The time a run was worked on leaves out the pauses between its sessions: a
    /// failed session counts to its failure, a killed one (no end recorded) to its last
    /// stored sample, and each resume starts a new session.
    fn time_worked_leaves_out_pauses_between_sessions(db: &Db) {
        let mut store = db.open();
        let key = run_key(&store, 11, None);
        // Long beside what the sessions do (a few statements each), so a loaded machine's
        // scheduling delays cannot make them look as long as a pause.
        let pause = Duration::from_millis(1000);
        let (run_id, _) = store.find_or_create_run(&key, "{}", "0.1.0").unwrap();
        store
            .put_sample(run_id, &sample(0, SampleStatus::Ok))
            .unwrap();
        store.fail_run(run_id, "backend went away").unwrap();
        sleep(pause);
        // Resumed, stores a sample, then is killed (nothing records its end).
        store.find_or_create_run(&key, "{}", "0.1.0").unwrap();
        store
            .put_sample(run_id, &sample(1, SampleStatus::Ok))
            .unwrap();
        sleep(pause);
        // Resumed again and finished.
        store.find_or_create_run(&key, "{}", "0.1.0").unwrap();
        store
            .put_sample(run_id, &sample(2, SampleStatus::Ok))
            .unwrap();
        store.finish_run(run_id, r#"{"acc":1.0}"#).unwrap();

        let latest = &store.latest_results().unwrap()[0];
        let start = podium_store::parse_rfc3339_utc(&latest.started_at).unwrap();
        let end = podium_store::parse_rfc3339_utc(&latest.finished_at).unwrap();
        let worked = latest.active_ms.unwrap() as f64 / 1000.0;
        assert!(end - start >= 2.0 * pause.as_secs_f64(), "{start} .. {end}");
        // The three sessions did almost nothing: both pauses are left out.
        assert!(
            worked >= 0.0 && worked < pause.as_secs_f64(),
            "{worked} s of {} s",
            end - start
        );
    }

    /// Regression (issue 9): a server's `u64::MAX` token count reached `put_sample` and
    /// aborted the evaluation with an opaque conversion error; it is now refused by
    /// name, and nothing of the sample is written.
    fn absurd_token_counts_are_refused_by_name_before_writing(db: &Db) {
        let mut store = db.open();
        let key = run_key(&store, 1, None);
        let (run_id, _) = store.find_or_create_run(&key, "{}", "0.1.0").unwrap();
        for (n_in, n_out) in [
            (Some(u64::MAX), None),
            (Some(1), Some(podium_store::MAX_STORED_TOKEN_COUNT + 1)),
        ] {
            let record = SampleRecord {
                n_input_tokens: n_in,
                n_output_tokens: n_out,
                ..sample(7, SampleStatus::Ok)
            };
            let err = store.put_sample(run_id, &record).unwrap_err();
            assert!(
                matches!(err, StoreError::TokenCount { doc_id: 7, .. }),
                "{err}"
            );
            assert!(err.to_string().contains("doc 7: n_"), "{err}");
        }
        assert!(store.samples(run_id).unwrap().is_empty());
        let at_limit = SampleRecord {
            n_input_tokens: Some(podium_store::MAX_STORED_TOKEN_COUNT),
            ..sample(7, SampleStatus::Ok)
        };
        store.put_sample(run_id, &at_limit).unwrap();
    }

    /// Regression (issue 9): counts near 2^63 stored by an older Podium made `SUM`
    /// fail with "integer overflow", and with it `podium board` for the whole
    /// database. The totals now saturate, whatever the rows hold.
    fn token_totals_saturate_on_any_stored_counts(db: &Db) {
        let mut store = db.open();
        let key = run_key(&store, 1, None);
        let (run_id, _) = store.find_or_create_run(&key, "{}", "0.1.0").unwrap();
        for doc_id in 0..3 {
            store
                .put_sample(run_id, &sample(doc_id, SampleStatus::Ok))
                .unwrap();
        }
        // What an older Podium stored for a hostile server's counts, and worse.
        // (PostgreSQL's typed columns cannot hold SQLite's text in an integer column.)
        db.raw_sql(
            "UPDATE samples SET n_input_tokens = 9000000000000000000,
                                n_output_tokens = 9223372036854775807 WHERE doc_id < 2;
             UPDATE samples SET n_input_tokens = -5, n_output_tokens = 'lots' WHERE doc_id = 2;",
            "UPDATE samples SET n_input_tokens = 9000000000000000000,
                                n_output_tokens = 9223372036854775807 WHERE doc_id < 2;
             UPDATE samples SET n_input_tokens = -5, n_output_tokens = NULL WHERE doc_id = 2;",
        );
        let totals = store.run_token_totals(run_id).unwrap();
        assert_eq!(totals.samples, 3);
        // Summed in floating point: 9e18 + 9e18 − 5, rounded.
        assert_eq!(totals.input_tokens, 18_000_000_000_000_000_000);
        assert_eq!(totals.output_tokens, u64::MAX);
        // The board's query for many runs at once reads the same.
        let by_run = store.token_totals_by_run(&[run_id]).unwrap();
        assert_eq!(by_run.get(&run_id), Some(&totals));
    }

    fn imported_runs_keep_their_times_and_a_duplicate_identity_writes_nothing(db: &Db) {
        use podium_store::ImportedRun;
        let mut store = db.open();
        let key = run_key(&store, 1, None);
        let imported = |key: RunKey, finished_at: &str| ImportedRun {
            key,
            manifest_json: "{}".into(),
            podium_version: "0.1.0".into(),
            started_at: "2026-01-01T00:00:00.000000Z".into(),
            finished_at: finished_at.into(),
            active_ms: Some(1500),
            results_json: r#"{"name":"hellaswag"}"#.into(),
            samples: vec![sample(0, SampleStatus::Ok), sample(1, SampleStatus::Failed)],
        };
        let ids = store
            .import_finished_runs(&[
                imported(key, "2026-01-02T00:00:00.000000Z"),
                imported(RunKey { seed: 2, ..key }, "2026-01-03T00:00:00.000000Z"),
            ])
            .unwrap();
        assert_eq!(ids.len(), 2);
        assert_eq!(store.samples(ids[0]).unwrap().len(), 2);
        assert_eq!(
            store.finish_times().unwrap(),
            ["2026-01-02T00:00:00.000000Z", "2026-01-03T00:00:00.000000Z"]
        );
        let run = store.run(ids[1]).unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Finished);
        assert_eq!(run.active_ms, Some(1500));

        // The third run is new but the fourth repeats the first's identity: the
        // transaction writes neither.
        let error = store
            .import_finished_runs(&[
                imported(RunKey { seed: 3, ..key }, "2026-01-04T00:00:00.000000Z"),
                imported(key, "2026-01-05T00:00:00.000000Z"),
            ])
            .unwrap_err();
        assert!(error.is_constraint_violation(), "{error:?}");
        assert_eq!(store.list_runs().unwrap().len(), 2);

        let mut too_many = imported(RunKey { seed: 4, ..key }, "2026-01-06T00:00:00.000000Z");
        too_many.samples[0].n_input_tokens = Some(u64::MAX);
        let error = store.import_finished_runs(&[too_many]).unwrap_err();
        assert!(matches!(error, StoreError::TokenCount { .. }), "{error:?}");

        store
            .put_bench_result_at(
                "openai:tiny",
                "concurrency 1",
                "{}",
                "{}",
                "2026-01-07T00:00:00.000000Z",
            )
            .unwrap();
        assert_eq!(
            store.latest_bench_results().unwrap()[0].created_at,
            "2026-01-07T00:00:00.000000Z"
        );
    }

    /// Several processes opening a fresh database at once all end up on one
    /// schema: on PostgreSQL the migration waits on an advisory lock, on SQLite
    /// on the write lock.
    fn concurrent_first_opens_migrate_once(db: &Db) {
        let versions: Vec<i64> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..6)
                .map(|_| scope.spawn(|| db.open().schema_version().unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(versions, vec![SCHEMA_VERSION; 6]);
        let store = db.open();
        assert_eq!(store.upsert_model(&model("m", "f")).unwrap(), 1);
    }

    /// Connections writing the same documents of one run at once, some failing:
    /// one row per (run, doc) whatever the interleaving, and a document that was
    /// ever stored ok is ok at the end (a failed retry never replaces it).
    fn concurrent_writers_keep_one_row_per_doc_and_never_lose_an_ok(db: &Db) {
        let key = run_key(&db.open(), 5, None);
        let n_docs = 30u64;
        std::thread::scope(|scope| {
            for writer in 0..4u64 {
                scope.spawn(move || {
                    let mut store = db.open();
                    let (run_id, _) = store.find_or_create_run(&key, "{}", "0.1.0").unwrap();
                    for doc_id in 0..n_docs {
                        // Writer 0 stores every doc ok; the others fail on most.
                        let status = if writer == 0 || (doc_id + writer) % 3 == 0 {
                            SampleStatus::Ok
                        } else {
                            SampleStatus::Failed
                        };
                        store.put_sample(run_id, &sample(doc_id, status)).unwrap();
                    }
                });
            }
        });
        let store = db.open();
        let runs = store.list_runs().unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!((runs[0].n_samples, runs[0].n_failed), (n_docs, 0));
        let samples = store.samples(runs[0].run_id).unwrap();
        assert_eq!(samples, (0..n_docs).map(|d| sample(d, SampleStatus::Ok)).collect::<Vec<_>>());
    }

    /// A failed sample is retried by the next session and replaced by its ok result.
    fn failed_samples_are_retried_on_resume(db: &Db) {
        let key = run_key(&db.open(), 9, None);
        let run_id = {
            let mut first = db.open();
            let (run_id, _) = first.find_or_create_run(&key, "{}", "0.1.0").unwrap();
            first.put_sample(run_id, &sample(0, SampleStatus::Ok)).unwrap();
            first.put_sample(run_id, &sample(1, SampleStatus::Failed)).unwrap();
            first.fail_run(run_id, "killed").unwrap();
            run_id
        };
        let mut second = db.open();
        let (resumed, state) = second.find_or_create_run(&key, "{}", "0.1.0").unwrap();
        assert_eq!((resumed, state.existing, state.finished), (run_id, true, false));
        let to_do: Vec<u64> = (0..2)
            .filter(|d| !second.completed_doc_ids(run_id).unwrap().contains(d))
            .collect();
        assert_eq!(to_do, [1]);
        assert_eq!(
            second.put_sample(run_id, &sample(1, SampleStatus::Ok)).unwrap(),
            SampleWrite::Replaced
        );
        let summary = &second.list_runs().unwrap()[0];
        assert_eq!((summary.n_samples, summary.n_failed), (2, 0));
    }

    /// What one connection caches, another (another worker) reads.
    fn the_response_cache_is_shared_between_connections(db: &Db) {
        let (writer, reader) = (db.open(), db.open());
        assert_eq!(reader.cache_get("k").unwrap(), None);
        writer.cache_put("k", r#"{"text":"a"}"#).unwrap();
        assert_eq!(reader.cache_get("k").unwrap().as_deref(), Some(r#"{"text":"a"}"#));
        reader.cache_put("k", r#"{"text":"b"}"#).unwrap();
        assert_eq!(writer.cache_get("k").unwrap().as_deref(), Some(r#"{"text":"b"}"#));
    }

    /// The data version moves when another connection commits, so the board's
    /// cache is rebuilt.
    fn the_data_version_moves_when_another_connection_writes(db: &Db) {
        let (reader, writer) = (db.open(), db.open());
        let before = reader.data_version().unwrap();
        assert_eq!(reader.data_version().unwrap(), before);
        writer.upsert_model(&model("m", "f")).unwrap();
        assert_ne!(reader.data_version().unwrap(), before);
    }
}
