//! `podium arena` end to end on temporary databases: import then ratings from
//! the store, a bad file refused with exit code 2 and the store untouched,
//! ratings from a file without a store, export round trip, filters and flags.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value as Json;

use podium_arena::formats::parse_battles;
use podium_arena::{Battle, BattleFormat};
use podium_store::Store;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `podium --db DB ARGS…` with no environment that could point it at a user's files.
fn podium(db: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_podium"))
        .env_remove("PODIUM_DB")
        .env_remove("PODIUM_TASKS_DIR")
        .env_remove("XDG_DATA_HOME")
        .env("PODIUM_THREADS", "2")
        .arg("--db")
        .arg(db)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("podium runs");
    let run = Run {
        code: output.status.code().expect("podium exits, not killed"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "podium panicked:\n{}",
        run.stderr
    );
    run
}

fn podium_ok(db: &Path, args: &[&str]) -> Run {
    let run = podium(db, args);
    assert_eq!(run.code, 0, "podium {args:?} failed:\n{}", run.stderr);
    run
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `strong` beats `middle` and `weak` every time, `middle` beats `weak`
/// every time, with a few ties so every rating is finite.
fn ladder_jsonl() -> String {
    let mut text = String::new();
    let mut t = 0;
    for (a, b, n_wins) in [
        ("strong", "middle", 8),
        ("middle", "weak", 8),
        ("strong", "weak", 8),
    ] {
        for i in 0..n_wins {
            t += 1;
            // Sides alternate, so position cannot explain the result.
            let (left, right, winner) = if i % 2 == 0 {
                (a, b, "model_a")
            } else {
                (b, a, "model_b")
            };
            text.push_str(&format!(
                "{{\"model_a\":\"{left}\",\"model_b\":\"{right}\",\"winner\":\"{winner}\",\"tstamp\":{t}}}\n"
            ));
        }
        t += 1;
        text.push_str(&format!(
            "{{\"model_a\":\"{a}\",\"model_b\":\"{b}\",\"winner\":\"tie\",\"tstamp\":{t}}}\n"
        ));
    }
    text
}

fn ratings_json(db: &Path, extra: &[&str]) -> Json {
    let mut args = vec!["arena", "ratings", "--format", "json", "--bootstrap", "20"];
    args.extend_from_slice(extra);
    serde_json::from_str(&podium_ok(db, &args).stdout).unwrap()
}

fn model_order(ratings: &Json) -> Vec<String> {
    ratings["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model"].as_str().unwrap().to_owned())
        .collect()
}

fn stored_battles(db: &Path) -> u64 {
    Store::open(db).unwrap().battle_count().unwrap()
}

#[test]
fn import_then_ratings_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("podium.db");
    let file = write(dir.path(), "ladder.jsonl", &ladder_jsonl());
    let out = podium_ok(&db, &["arena", "import", arg(&file)]);
    assert!(
        out.stdout.contains("imported 27 battles among 3 models"),
        "{}",
        out.stdout
    );
    assert_eq!(stored_battles(&db), 27);

    let ratings = ratings_json(&db, &[]);
    assert_eq!(model_order(&ratings), ["strong", "middle", "weak"]);
    assert_eq!(ratings["n_battles"], 27);
    let models = ratings["models"].as_array().unwrap();
    assert_eq!(models[0]["rank_ub"], 1);
    let mean = models
        .iter()
        .map(|m| m["rating"].as_f64().unwrap())
        .sum::<f64>()
        / 3.0;
    assert!((mean - 1000.0).abs() < 1e-6, "mean {mean}");
    for m in models {
        let (lower, rating, upper) = (
            m["lower"].as_f64().unwrap(),
            m["rating"].as_f64().unwrap(),
            m["upper"].as_f64().unwrap(),
        );
        assert!(lower <= rating && rating <= upper, "{m}");
        assert_eq!(m["battles"], 18);
    }

    let table = podium_ok(&db, &["arena", "ratings", "--bootstrap", "20"]).stdout;
    let header = table.lines().next().unwrap();
    for column in [
        "rank (UB)",
        "model",
        "rating",
        "95% interval",
        "Elo",
        "avg win rate",
        "battles",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let first_row = table.lines().nth(2).unwrap();
    assert!(first_row.trim_start().starts_with("1  strong"), "{table}");
    assert!(table.contains("27 battles, 3 models"), "{table}");

    let csv = podium_ok(
        &db,
        &["arena", "ratings", "--bootstrap", "20", "--format", "csv"],
    )
    .stdout;
    assert!(
        csv.starts_with("rank_ub,model,rating,lower,upper,elo,average_win_rate,battles"),
        "{csv}"
    );
    let markdown = podium_ok(
        &db,
        &[
            "arena",
            "ratings",
            "--bootstrap",
            "20",
            "--format",
            "markdown",
        ],
    )
    .stdout;
    assert!(markdown.starts_with("| rank (UB) |"), "{markdown}");
}

#[test]
fn a_bad_file_is_exit_2_and_the_store_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("podium.db");
    let good = write(dir.path(), "good.jsonl", &ladder_jsonl());
    podium_ok(&db, &["arena", "import", arg(&good)]);

    let bad_jsonl = write(
        dir.path(),
        "bad.jsonl",
        "{\"model_a\":\"x\",\"model_b\":\"y\",\"winner\":\"model_a\"}\n\
         {\"model_a\":\"x\",\"model_b\":\"y\",\"winner\":\"model_a\"}\n\
         {\"model_a\":\"x\",\"model_b\":\"y\",\"winner\":\"draw\"}\n",
    );
    let bad_csv = write(
        dir.path(),
        "bad.csv",
        "left,right,winner\nx,y,left\nx,x,tie\n",
    );
    let cases = [
        (&bad_jsonl, ":3: field `winner`: `draw` is not one of"),
        (&bad_csv, ":3: field `right`: model `x` battles itself"),
    ];
    for (file, expected) in cases {
        let run = podium(&db, &["arena", "import", arg(file)]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("{}{expected}", file.display())),
            "{}",
            run.stderr
        );
        assert_eq!(
            stored_battles(&db),
            27,
            "nothing of {} stored",
            file.display()
        );
    }

    let missing = dir.path().join("missing.jsonl");
    let run = podium(&db, &["arena", "import", arg(&missing)]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("cannot read"), "{}", run.stderr);

    let run = podium(&db, &["arena", "ratings", "--battles", arg(&bad_jsonl)]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("bad.jsonl:3: field `winner`"),
        "{}",
        run.stderr
    );
}

#[test]
fn ratings_from_a_file_leave_the_store_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("never-created.db");
    let file = write(dir.path(), "ladder.jsonl", &ladder_jsonl());
    let ratings = ratings_json(&db, &["--battles", arg(&file)]);
    assert_eq!(model_order(&ratings), ["strong", "middle", "weak"]);
    assert!(!db.exists(), "the store was not opened");

    // The LLMFAO crowd judgements: GPT 4 is ahead in every published ranking.
    let llmfao = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../podium-arena/tests/data/llmfao.csv"
    );
    let ratings = ratings_json(&db, &["--battles", llmfao]);
    assert_eq!(ratings["models"].as_array().unwrap().len(), 59);
    assert_eq!(model_order(&ratings)[0], "GPT 4");
    assert!(!db.exists());
}

#[test]
fn anchor_ci_and_empty_selections() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("podium.db");
    let file = write(dir.path(), "ladder.jsonl", &ladder_jsonl());
    let file = arg(&file);

    let ratings = ratings_json(&db, &["--battles", file, "--anchor", "middle=1114"]);
    let middle = ratings["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == "middle")
        .unwrap();
    assert!((middle["rating"].as_f64().unwrap() - 1114.0).abs() < 1e-6);

    let sandwich = ratings_json(&db, &["--battles", file, "--ci", "sandwich"]);
    assert_eq!(sandwich["ci"], "sandwich");
    assert_eq!(model_order(&sandwich), ["strong", "middle", "weak"]);

    let cases: [(&[&str], &str); 5] = [
        (&["--anchor", "nobody=1000"], "nobody"),
        (&["--anchor", "middle"], "MODEL=RATING"),
        (&["--category", "coding"], "no battles to rate"),
        (&["--style-control"], "--style-control needs style counts"),
        (&["--judge", "j", "--people"], "cannot be used with"),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["arena", "ratings", "--battles", file];
        args.extend_from_slice(extra);
        let run = podium(&db, &args);
        assert_eq!(run.code, 2, "{extra:?}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{extra:?}: {}", run.stderr);
    }
    assert!(!db.exists());

    let run = podium(&db, &["arena", "ratings"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("podium arena import"), "{}", run.stderr);
}

#[test]
fn filters_select_judges_people_categories_and_anonymous_votes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("podium.db");
    let mut text = ladder_jsonl();
    // Each selection below holds a win and a tie, so its ratings are finite.
    for (winner, judge, category, anony) in [
        (
            "model_a",
            "\"judge\":\"gpt-judge\"",
            "\"category\":\"coding\"",
            true,
        ),
        (
            "tie",
            "\"judge\":\"gpt-judge\"",
            "\"category\":\"math\"",
            true,
        ),
        (
            "tie",
            "\"judge\":\"arena_user_7\"",
            "\"category\":\"coding\"",
            true,
        ),
        (
            "model_b",
            "\"judge\":null",
            "\"category\":\"coding\"",
            false,
        ),
    ] {
        text.push_str(&format!(
            "{{\"model_a\":\"weak\",\"model_b\":\"strong\",\"winner\":\"{winner}\",{judge},{category},\"anony\":{anony},\"tstamp\":100}}\n"
        ));
    }
    let file = write(dir.path(), "mixed.jsonl", &text);
    podium_ok(&db, &["arena", "import", arg(&file), "--source", "mixed"]);
    for (source, battles_from) in [("store", None), ("file", Some(arg(&file)))] {
        let count = |extra: &[&str]| {
            let mut args: Vec<&str> = battles_from
                .map(|f| vec!["--battles", f])
                .unwrap_or_default();
            args.extend_from_slice(extra);
            ratings_json(&db, &args)["n_battles"].as_u64().unwrap()
        };
        assert_eq!(count(&[]), 27 + 3, "{source}: all anonymous votes");
        assert_eq!(count(&["--include-non-anonymous"]), 27 + 4, "{source}");
        assert_eq!(count(&["--judge", "gpt-judge"]), 2, "{source}");
        assert_eq!(
            count(&["--people"]),
            27 + 1,
            "{source}: arena_user_ is a person"
        );
        assert_eq!(
            count(&["--people", "--include-non-anonymous"]),
            27 + 2,
            "{source}"
        );
        assert_eq!(
            count(&["--category", "coding", "--include-non-anonymous"]),
            3,
            "{source}"
        );
    }
}

#[test]
fn export_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("podium.db");
    let text = r##"{"model_a":"a","model_b":"b","winner":"model_b","tstamp":1.5,"turn":2,"anony":false,"language":"English","category":"coding","judge":"j","judge_output":"[[B>A]]","conversation_a":[{"role":"user","content":"q"},{"role":"assistant","content":"# H\n- x\n**b**"}],"conversation_b":[{"role":"user","content":"q"},{"role":"assistant","content":"plain"}]}
{"model_a":"b","model_b":"c","winner":"tie (bothbad)","tstamp":2,"conv_metadata":{"sum_assistant_a_tokens":10,"header_count_a":{"h1":1},"list_count_a":{"ordered":2,"unordered":0},"bold_count_a":{"**":0,"__":0},"sum_assistant_b_tokens":20,"header_count_b":0,"list_count_b":1,"bold_count_b":3}}
"##;
    let original = parse_battles(text, BattleFormat::Jsonl).unwrap();
    let file = write(dir.path(), "in.jsonl", text);
    podium_ok(&db, &["arena", "import", arg(&file)]);
    let out = dir.path().join("out.jsonl");
    let run = podium_ok(&db, &["arena", "export", arg(&out)]);
    assert!(run.stderr.contains("exported 2 battles"), "{}", run.stderr);
    let exported: Vec<Battle> =
        parse_battles(&std::fs::read_to_string(&out).unwrap(), BattleFormat::Jsonl).unwrap();
    assert_eq!(exported, original);

    // The export imports again as the same battles.
    let db2 = dir.path().join("second.db");
    podium_ok(&db2, &["arena", "import", arg(&out)]);
    let stdout = podium_ok(&db2, &["arena", "export", "-"]).stdout;
    assert_eq!(
        parse_battles(&stdout, BattleFormat::Jsonl).unwrap(),
        original
    );
}

#[test]
fn help_shows_an_example_for_each_command() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("podium.db");
    for (command, example) in [
        ("import", "podium arena import"),
        ("export", "podium arena export"),
        ("ratings", "podium arena ratings --battles"),
    ] {
        let run = podium_ok(&db, &["arena", command, "--help"]);
        assert!(run.stdout.contains(example), "{command}: {}", run.stdout);
    }
}
