//! Work distribution through the store: jobs, leases, fenced writes, the
//! reaper, and the limits shared by all workers. Every test runs on both
//! engines (`NAME::sqlite`, `NAME::postgres`).

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::thread::sleep;
use std::time::Duration;

use common::Db;

use podium_store::{
    JobState, ModelRecord, NewJobs, RunJobs, RunKey, SampleRecord, SampleStatus, SampleWrite,
    Store, StoreError,
};

fn sample(doc_id: u64, status: SampleStatus) -> SampleRecord {
    SampleRecord {
        doc_id,
        prompt_hash: format!("prompt-{doc_id}"),
        requests_json: "[]".to_owned(),
        responses_json: "[]".to_owned(),
        metrics_json: r#"{"acc":1.0}"#.to_owned(),
        n_input_tokens: Some(3),
        n_output_tokens: None,
        timing_json: "null".to_owned(),
        status,
        error: (status == SampleStatus::Failed).then(|| "reset\0by peer".to_owned()),
    }
}

/// A run of `mock:a` on task `t`.
fn new_run(store: &mut Store) -> i64 {
    let model_id = store
        .upsert_model(&ModelRecord {
            spec: "mock:a".into(),
            fingerprint: "f".into(),
            chat_template_hash: None,
        })
        .unwrap();
    let task_id = store.upsert_task("t", "h", "{}").unwrap();
    let key = RunKey {
        model_id,
        task_id,
        n_shots: 0,
        chat_template: false,
        seed: 1,
        limit: None,
    };
    store.find_or_create_run(&key, "{}", "test").unwrap().0
}

fn enqueue(store: &mut Store, run_id: i64, docs: &[u64], per_job: usize) -> podium_store::Enqueued {
    store
        .enqueue_jobs(&NewJobs {
            run_id,
            model_spec: "mock:a",
            task_name: "t",
            spec_json: r#"{"model":"mock:a"}"#,
            doc_ids: docs,
            docs_per_job: per_job,
        })
        .unwrap()
}

const LEASE: Duration = Duration::from_secs(60);

both_engines! {
    fn enqueue_splits_pending_docs_and_never_queues_one_twice(db: &Db) {
        let mut store = db.open();
        let run = new_run(&mut store);
        store.put_sample(run, &sample(0, SampleStatus::Ok)).unwrap();
        let docs: Vec<u64> = (0..10).collect();
        let first = enqueue(&mut store, run, &docs, 4);
        assert_eq!((first.n_jobs, first.n_docs, first.n_stored, first.n_in_jobs), (3, 9, 1, 0));
        // Queuing the same run again adds nothing: every doc is stored or queued.
        let again = enqueue(&mut store, run, &docs, 4);
        assert_eq!((again.n_jobs, again.n_docs, again.n_stored, again.n_in_jobs), (0, 0, 1, 9));
        let jobs = store.jobs(&[]).unwrap();
        let queued: Vec<u64> = jobs.iter().flat_map(|j| j.doc_ids.clone()).collect();
        assert_eq!(queued, (1..10).collect::<Vec<_>>());
        assert!(jobs.iter().all(|j| j.state == JobState::Queued && j.claims == 0));
        assert_eq!(
            store.enqueue_jobs(&NewJobs { run_id: 999, ..NewJobs {
                run_id: run, model_spec: "m", task_name: "t", spec_json: "{}", doc_ids: &[1],
                docs_per_job: 1,
            }}).unwrap_err().to_string(),
            "run 999 does not exist"
        );
    }

    fn claims_take_each_job_once_and_fence_writes(db: &Db) {
        let mut store = db.open();
        let run = new_run(&mut store);
        enqueue(&mut store, run, &[0, 1, 2, 3], 2);
        let (lease_a, job_a) = store.claim_job("w1", None, &[], LEASE).unwrap().unwrap();
        let (lease_b, job_b) = store.claim_job("w2", Some("mock:*"), &[], LEASE).unwrap().unwrap();
        assert_ne!(job_a.id, job_b.id);
        assert_eq!(job_a.doc_ids, vec![0, 1]);
        assert_eq!(job_a.worker.as_deref(), Some("w1"));
        assert!(job_a.lease_left_s.unwrap() > 50.0);
        assert!(store.claim_job("w3", None, &[], LEASE).unwrap().is_none());

        assert_eq!(store.put_job_sample(&lease_a, &sample(0, SampleStatus::Ok)).unwrap(), SampleWrite::Inserted);
        assert!(store.renew_lease(&lease_a, LEASE, 1).unwrap());
        // A cancelled job's worker can write no more and cannot renew.
        assert_eq!(store.cancel_jobs(&[lease_b.job_id]).unwrap(), 1);
        match store.put_job_sample(&lease_b, &sample(2, SampleStatus::Ok)) {
            Err(StoreError::LeaseLost { job_id }) => assert_eq!(job_id, lease_b.job_id),
            other => panic!("expected LeaseLost, got {other:?}"),
        }
        assert!(!store.renew_lease(&lease_b, LEASE, 0).unwrap());
        assert!(!store.completed_doc_ids(run).unwrap().contains(&2));

        store.put_job_sample(&lease_a, &sample(1, SampleStatus::Failed)).unwrap();
        let status = store.finish_job(&lease_a, 2, 1, Some("reset")).unwrap();
        assert_eq!(status, RunJobs { open: 0, failed: 1 });
        // After the end, the lease writes nothing either.
        assert!(matches!(
            store.put_job_sample(&lease_a, &sample(1, SampleStatus::Ok)),
            Err(StoreError::LeaseLost { .. })
        ));
        let failed = store.jobs(&[JobState::Failed]).unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!((failed[0].n_stored, failed[0].n_failed), (2, 1));
        // The NUL of the error text is stored as U+FFFD on both engines.
        let stored = store.samples(run).unwrap();
        assert_eq!(stored[1].error.as_deref(), Some("reset\u{FFFD}by peer"));

        // Retry requeues the failed job (and, by id, the cancelled one).
        assert_eq!(store.retry_jobs(&[]).unwrap(), 1);
        assert_eq!(store.retry_jobs(&[lease_b.job_id]).unwrap(), 1);
        let (again, job) = store.claim_job("w3", None, &[], LEASE).unwrap().unwrap();
        assert_eq!(job.id, lease_a.job_id);
        assert_eq!(job.claims, 2);
        assert!(again.token > lease_a.token);
        store.put_job_sample(&again, &sample(1, SampleStatus::Ok)).unwrap();
        assert_eq!(store.finish_job(&again, 2, 0, None).unwrap(), RunJobs { open: 1, failed: 0 });
        let attempts = store.sample_attempts(run).unwrap();
        assert_eq!(attempts, vec![(0, 1), (1, 2)]);
    }

    fn model_patterns_and_skipped_runs_filter_claims(db: &Db) {
        let mut store = db.open();
        let run = new_run(&mut store);
        enqueue(&mut store, run, &[0], 1);
        assert!(store.claim_job("w", Some("local:*"), &[], LEASE).unwrap().is_none());
        assert!(store.claim_job("w", Some("mock_a"), &[], LEASE).unwrap().is_none(), "_ is literal");
        assert!(store.claim_job("w", None, &[run], LEASE).unwrap().is_none());
        let (lease, _) = store.claim_job("w", Some("mock:?"), &[], LEASE).unwrap().unwrap();
        assert!(store.release_job(&lease, "cannot open mock:a here").unwrap());
        let queued = store.jobs(&[JobState::Queued]).unwrap();
        assert_eq!(queued[0].error.as_deref(), Some("cannot open mock:a here"));
    }

    fn a_lapsed_lease_is_reaped_and_its_holder_fenced_out(db: &Db) {
        let mut store = db.open();
        let run = new_run(&mut store);
        enqueue(&mut store, run, &[0, 1], 2);
        let (old, _) = store.claim_job("dying", None, &[], Duration::from_millis(200)).unwrap().unwrap();
        store.put_job_sample(&old, &sample(0, SampleStatus::Ok)).unwrap();
        assert!(store.claim_job("other", None, &[], LEASE).unwrap().is_none());
        sleep(Duration::from_millis(400));
        let (new, job) = store.claim_job("other", None, &[], LEASE).unwrap().unwrap();
        assert_eq!((job.id, job.claims, job.worker.as_deref()), (old.job_id, 2, Some("other")));
        assert!(!store.renew_lease(&old, LEASE, 1).unwrap());
        assert!(matches!(
            store.put_job_sample(&old, &sample(1, SampleStatus::Ok)),
            Err(StoreError::LeaseLost { .. })
        ));
        // The new holder skips what is stored and writes the rest once.
        assert_eq!(store.completed_doc_ids(run).unwrap(), HashSet::from([0]));
        store.put_job_sample(&new, &sample(1, SampleStatus::Ok)).unwrap();
        assert_eq!(store.finish_job(&new, 2, 0, None).unwrap(), RunJobs { open: 0, failed: 0 });
        assert_eq!(store.sample_attempts(run).unwrap(), vec![(0, 1), (1, 1)]);
        assert_eq!(store.runs_with_all_jobs_done().unwrap().len(), 1);
        store.finish_run(run, "{}").unwrap();
        assert!(store.runs_with_all_jobs_done().unwrap().is_empty());
    }

    fn concurrent_workers_claim_disjoint_jobs(db: &Db) {
        let mut store = db.open();
        let run = new_run(&mut store);
        let docs: Vec<u64> = (0..40).collect();
        enqueue(&mut store, run, &docs, 1);
        let barrier = Arc::new(Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|w| {
                let url = db.url().to_owned();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let mut store = Store::open_url(&url).unwrap();
                    barrier.wait();
                    let mut mine = Vec::new();
                    while let Some((lease, job)) =
                        store.claim_job(&format!("w{w}"), None, &[], LEASE).unwrap()
                    {
                        for &doc in &job.doc_ids {
                            store.put_job_sample(&lease, &sample(doc, SampleStatus::Ok)).unwrap();
                        }
                        store.finish_job(&lease, job.n_docs, 0, None).unwrap();
                        mine.push(job.id);
                    }
                    mine
                })
            })
            .collect();
        let mut all: Vec<i64> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        all.sort_unstable();
        assert_eq!(all.len(), 40);
        all.dedup();
        assert_eq!(all.len(), 40, "a job was claimed twice");
        assert!(store.sample_attempts(run).unwrap().iter().all(|&(_, n)| n == 1));
        assert_eq!(store.run_jobs(run).unwrap(), RunJobs { open: 0, failed: 0 });
    }

    fn pacing_spaces_starts_across_connections(db: &Db) {
        let a = db.open();
        let b = db.open();
        let first = a.pace("rpm http://x", 0.5).unwrap();
        assert_eq!(first, Duration::ZERO);
        let second = b.pace("rpm http://x", 0.5).unwrap();
        let third = a.pace("rpm http://x", 0.5).unwrap();
        assert!(second > Duration::from_millis(400) && second <= Duration::from_millis(500), "{second:?}");
        assert!(third > Duration::from_millis(900) && third <= Duration::from_millis(1000), "{third:?}");
        // Another key has its own clock.
        assert_eq!(b.pace("rpm http://y", 0.5).unwrap(), Duration::ZERO);
        // Giving back time moves the clock earlier, never before now.
        a.pace_adjust("rpm http://x", -100.0).unwrap();
        assert_eq!(a.pace("rpm http://x", 0.5).unwrap(), Duration::ZERO);
    }

    fn slots_cap_holders_across_connections(db: &Db) {
        let a = db.open();
        let b = db.open();
        let hold = Duration::from_secs(60);
        let s0 = a.acquire_slot("c http://x", 2, "a#1", hold).unwrap().unwrap();
        let s1 = b.acquire_slot("c http://x", 2, "b#1", hold).unwrap().unwrap();
        assert_ne!(s0, s1);
        assert_eq!(a.acquire_slot("c http://x", 2, "a#2", hold).unwrap(), None);
        // Releasing under another holder's name frees nothing.
        b.release_slot("c http://x", s0, "b#1").unwrap();
        assert_eq!(b.acquire_slot("c http://x", 2, "b#2", hold).unwrap(), None);
        a.release_slot("c http://x", s0, "a#1").unwrap();
        assert_eq!(b.acquire_slot("c http://x", 2, "b#2", hold).unwrap(), Some(s0));
        // A hold that lapsed (its worker died) is taken over.
        let c = db.open();
        let lapsing = c.acquire_slot("c http://z", 1, "dead", Duration::from_millis(100)).unwrap();
        assert_eq!(lapsing, Some(0));
        sleep(Duration::from_millis(300));
        assert_eq!(a.acquire_slot("c http://z", 1, "alive", hold).unwrap(), Some(0));
    }
}
