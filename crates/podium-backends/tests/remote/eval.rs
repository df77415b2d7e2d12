//! A whole evaluation through podium-eval into a SQLite file, against the fake
//! server: the API key must appear nowhere in the database, the errors, the
//! logs or the results; the store's response cache serves a second run.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;

use podium_eval::{EvalOptions, NoProgress, StoreCache, evaluate};
use podium_store::Store;
use podium_tasks::{Registry, Task};

use crate::fake_server::{FakeServer, Reply, completion_chunks};
use crate::set_fake_key;

const KEY_ENV: &str = "PODIUM_TEST_LEAK_KEY";
const KEY: &str = "sk-leaktest-Zq8fT3vK9pW2mX7r";

const TASK_YAML: &str = r#"task: tiny_qa
dataset_path: json
dataset_kwargs:
  data_files:
    test: data.jsonl
test_split: test
output_type: generate_until
doc_to_text: "Q: {{question}}\nA:"
doc_to_target: "{{answer}}"
generation_kwargs:
  until:
    - "\n"
  max_gen_toks: 8
  do_sample: false
metric_list:
  - metric: exact_match
"#;

/// Log lines written by `tracing`, kept for inspection.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every file of the SQLite database (the WAL holds recent writes).
fn database_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("podium.db")
        {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

// A current-thread runtime, so the log subscriber set for this thread sees
// the request tasks too.
#[tokio::test]
async fn the_api_key_never_reaches_the_store_errors_or_logs() {
    set_fake_key(KEY_ENV, KEY);
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // Echo the key back in errors, as real servers do for bad keys: the
    // backend must scrub it before it goes anywhere.
    let server = FakeServer::start(|seen, _| {
        let authorized = seen
            .headers
            .lines()
            .any(|line| line.eq_ignore_ascii_case(&format!("authorization: Bearer {KEY}")));
        if !authorized {
            return Reply::json(401, &json!({"error": {"message": "no key sent"}}));
        }
        if seen.prompt().contains("fail") {
            Reply::json(
                500,
                &json!({"error": {"message": format!("Incorrect API key provided: {KEY}")}}),
            )
        } else {
            Reply::sse(0, 0, completion_chunks(&[" 4".into()], Some((5, 1))))
        }
    })
    .await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tiny.yaml"), TASK_YAML).unwrap();
    std::fs::write(
        dir.path().join("data.jsonl"),
        "{\"question\": \"2+2?\", \"answer\": \"4\"}\n\
         {\"question\": \"fail please\", \"answer\": \"4\"}\n\
         {\"question\": \"3+1?\", \"answer\": \"4\"}\n",
    )
    .unwrap();
    let mut registry = Registry::discover(&[dir.path().to_path_buf()]);
    let selections = registry.resolve(&["tiny_qa".to_string()]).unwrap();
    let task = Task::load(registry.task_config("tiny_qa").unwrap().clone()).unwrap();

    let db = dir.path().join("podium.db");
    let spec = format!(
        "openai-compatible:{}/v1#fake-model?api_key_env={KEY_ENV}&retries=1&backoff_ms=1",
        server.url
    );
    let run = |store_for_cache: Store| {
        let cache = Arc::new(StoreCache::new(store_for_cache));
        podium_backends::open_with_cache(&spec, Some(cache)).unwrap()
    };
    let mut store = Store::open(&db).unwrap();
    let backend = run(Store::open(&db).unwrap());
    let report = evaluate(
        &mut store,
        backend.as_ref(),
        std::slice::from_ref(&task),
        &selections,
        &EvalOptions::default(),
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(report.n_failed(), 1);
    let first_error = report.tasks[0].first_error.clone().unwrap();
    assert!(
        first_error.contains("Incorrect API key provided: ***"),
        "{first_error}"
    );
    let n_requests = server.seen().len();
    assert_eq!(
        n_requests,
        2 + 2,
        "two good docs, one failing doc tried twice"
    );

    // A second evaluation with a fresh store file but the same cache answers the
    // good docs from the cache (only the failed one goes out again).
    let db2 = dir.path().join("podium.db.second");
    let mut store2 = Store::open(&db2).unwrap();
    let backend2 = run(Store::open(&db).unwrap());
    let report2 = evaluate(
        &mut store2,
        backend2.as_ref(),
        std::slice::from_ref(&task),
        &selections,
        &EvalOptions::default(),
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(report2.n_failed(), 1);
    assert_eq!(server.seen().len(), n_requests + 2);
    drop((store, store2, backend, backend2));

    let log_text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        log_text.contains("retrying"),
        "the retry was logged: {log_text}"
    );
    let texts = [
        ("error", first_error),
        ("logs", log_text),
        ("results", report.results_json.to_string()),
        ("spec", backend_spec(&spec)),
        (
            "debug",
            format!("{:?}", podium_backends::open(&spec).unwrap().identity()),
        ),
    ];
    for (what, text) in &texts {
        assert!(
            !text.contains(KEY),
            "the key leaked into the {what}: {text}"
        );
    }
    let bytes = database_bytes(dir.path());
    assert!(bytes.len() > 1000, "the database files were read");
    assert!(contains(&bytes, "fake-model"), "the database holds the run");
    assert!(!contains(&bytes, KEY), "the key leaked into the database");
    assert!(
        !contains(&bytes, &KEY[3..15]),
        "part of the key leaked into the database"
    );
}

fn backend_spec(spec: &str) -> String {
    podium_backends::open(spec).unwrap().identity().spec
}
