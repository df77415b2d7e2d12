//! `Store::copy_into`: a whole store SQLite → PostgreSQL → SQLite, every table,
//! the same counts, checksums and reads at each step; a non-empty target refused.

mod common;

use common::Db;
use podium_store::{BattleFilter, BattleRow, JudgedPair, JudgementRow, NewJobs, Store, StoreError};
use podium_testkit::seed::{SeedSpec, fill};

/// A store with something in every table (hostile outputs included).
fn filled(db: &Db) -> Store {
    let mut store = db.open();
    fill(
        &mut store,
        &SeedSpec {
            models: 3,
            tasks: 2,
            samples_per_run: 12,
            seed: 7,
            hostile: true,
        },
    )
    .unwrap();
    store.cache_put("key-1", r#"{"text":"cached"}"#).unwrap();
    let battle = BattleRow {
        id: 0,
        model_a: "m1".into(),
        model_b: "m2".into(),
        winner: "tie (bothbad)".into(),
        category: Some("math".into()),
        judge: Some("j".into()),
        language: None,
        tstamp: 1_700_000_000.25,
        turns: 1,
        anonymous: true,
        conversation_a: Some(r#"[{"role":"user","content":"hi"}]"#.into()),
        conversation_b: None,
        style_json: None,
        judge_output: Some("A=B".into()),
        source: "judge".into(),
    };
    let judgement = JudgementRow {
        id: 0,
        battle_id: None,
        judge: "j".into(),
        prompt_id: "p".into(),
        prompt_hash: "h".into(),
        category: Some("math".into()),
        model_a: "m1".into(),
        model_b: "m2".into(),
        a_first: true,
        output: "A=B".into(),
        verdict: Some("A=B".into()),
        reason: None,
    };
    store
        .insert_judged_pairs(&[JudgedPair {
            battle: Some(battle),
            judgements: vec![judgement],
        }])
        .unwrap();
    // Two jobs of the first run, one of them claimed (a lease in flight).
    let run = store.list_runs().unwrap()[0].run_id;
    store
        .enqueue_jobs(&NewJobs {
            run_id: run,
            model_spec: "m1",
            task_name: "t",
            spec_json: r#"{"model":"m1"}"#,
            doc_ids: &[1000, 1001, 1002],
            docs_per_job: 2,
        })
        .unwrap();
    store
        .claim_job("w1", None, &[], std::time::Duration::from_secs(60))
        .unwrap()
        .unwrap();
    store
}

fn reads(store: &Store) -> String {
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        store.board_runs(None).unwrap(),
        store.list_runs().unwrap(),
        store.latest_bench_results().unwrap(),
        store.battles(&BattleFilter::default()).unwrap(),
        store.judgements(None).unwrap(),
        store.cache_get("key-1").unwrap(),
        store
            .jobs(&[])
            .unwrap()
            .into_iter()
            .map(|mut job| {
                job.lease_left_s = None;
                job
            })
            .collect::<Vec<_>>(),
    )
}

#[test]
fn a_store_round_trips_sqlite_postgres_sqlite() {
    let Some(postgres) = Db::postgres() else {
        return;
    };
    let first = Db::sqlite();
    let back = Db::sqlite();
    let source = filled(&first);
    let mut middle = postgres.open();
    let copied = source.copy_into(&mut middle).unwrap();
    assert!(copied.iter().all(|table| table.rows > 0), "{copied:?}");
    let mut last = back.open();
    let copied_back = middle.copy_into(&mut last).unwrap();
    assert_eq!(copied_back, copied);
    assert_eq!(source.table_checksums().unwrap(), copied);
    assert_eq!(last.table_checksums().unwrap(), copied);
    assert_eq!(reads(&middle), reads(&source));
    assert_eq!(reads(&last), reads(&source));
    for run in source.list_runs().unwrap() {
        assert_eq!(
            middle.samples(run.run_id).unwrap(),
            source.samples(run.run_id).unwrap()
        );
    }
    // New rows after a copy get new ids (PostgreSQL's identities follow the copied ids).
    let model = podium_store::ModelRecord {
        spec: "new".into(),
        fingerprint: "f".into(),
        chat_template_hash: None,
    };
    assert_eq!(
        middle.upsert_model(&model).unwrap(),
        last.upsert_model(&model).unwrap()
    );

    // A target that holds anything is refused, and left as it was.
    let before = middle.table_checksums().unwrap();
    match source.copy_into(&mut middle) {
        Err(error @ StoreError::TargetNotEmpty { .. }) => {
            assert!(error.to_string().contains("models"), "{error}");
        }
        other => panic!(
            "expected TargetNotEmpty, got {other:?}",
            other = other.map(|_| ())
        ),
    }
    assert_eq!(middle.table_checksums().unwrap(), before);
}
