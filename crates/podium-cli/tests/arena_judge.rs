//! `podium arena judge` end to end: mock contenders judged by a mock judge
//! (its verdicts drawn by hash, some unparseable, or always the first answer),
//! and by a real local model whose verdicts mostly do not parse. Every pair is
//! judged in both orders, stored as one battle with both raw outputs, or
//! counted as unparseable with its outputs kept.

use std::path::Path;
use std::process::{Command, Output};

use podium_store::{BattleFilter, BattleRow, JudgementRow, Store};

fn podium(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_podium"))
        .env_remove("PODIUM_DB")
        .env_remove("PODIUM_TASKS_DIR")
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The number right after `label` in the summary.
fn count_after(summary: &str, label: &str) -> usize {
    let at = summary
        .find(label)
        .unwrap_or_else(|| panic!("`{label}` in {summary}"));
    summary[at + label.len()..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a number after `{label}` in {summary}"))
}

/// Who won in one order, read from the mock judge's last `[[…]]` label, for
/// the model shown first (`Some(true)`), second (`Some(false)`), or a tie
/// (`None`); `Err` when the output holds no label.
fn first_shown_wins(output: &str) -> Result<Option<bool>, ()> {
    let label = output.rsplit("[[").next().filter(|_| output.contains("[["));
    match label.and_then(|l| l.split("]]").next()) {
        Some("A>>B" | "A>B") => Ok(Some(true)),
        Some("B>>A" | "B>A") => Ok(Some(false)),
        Some("A=B") => Ok(None),
        _ => Err(()),
    }
}

/// The outcome a pair should get, worked out here from the two raw outputs:
/// the same model preferred in both orders wins, anything else is a tie.
fn expected_winner(a_first: &str, b_first: &str) -> Option<&'static str> {
    let first = first_shown_wins(a_first).ok()?;
    // With the answers swapped, the first shown is model_b.
    let second = first_shown_wins(b_first)
        .ok()?
        .map(|b_shown_won| !b_shown_won);
    Some(match (first, second) {
        (Some(true), Some(true)) => "model_a",
        (Some(false), Some(false)) => "model_b",
        _ => "tie",
    })
}

#[test]
fn a_mock_judge_stores_every_pair_with_both_outputs() {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("podium.db");
    let judge = "mock:j?verdicts=hash";
    let args = [
        "arena", "judge", "--judge", judge, "-m", "mock:a", "-m", "mock:b", "-m", "mock:c",
    ];
    let output = podium(&db, &args);
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = stdout(&output);
    // The bundled set: 30 prompts × 3 pairs, each judged in both orders.
    assert!(
        summary.contains("judge mock:j?verdicts=hash: 30 prompts, 3 models (3 pairs per prompt)"),
        "{summary}"
    );
    assert!(
        summary.contains("next: podium arena ratings --judge 'mock:j?verdicts=hash'"),
        "{summary}"
    );
    let n_battles = count_after(&summary, "battles stored:");
    let n_unparseable_pairs = count_after(&summary, "unparseable:");
    let n_disagreements = count_after(&summary, "both orders said tie,");
    assert_eq!(n_battles + n_unparseable_pairs, 90, "{summary}");

    let store = Store::open(&db).unwrap();
    let battles: Vec<BattleRow> = store.battles(&BattleFilter::default()).unwrap();
    let judgements: Vec<JudgementRow> = store.judgements(Some(judge)).unwrap();
    assert_eq!(battles.len(), n_battles);
    assert_eq!(judgements.len(), 180);
    let unparseable: Vec<&JudgementRow> =
        judgements.iter().filter(|j| j.verdict.is_none()).collect();
    assert!(
        summary.contains(&format!(
            "({} of 180 judge answers held no verdict",
            unparseable.len()
        )),
        "{summary}"
    );
    // The hash-drawn verdicts cover every case: wins, ties, disagreements, no verdict.
    assert!(n_unparseable_pairs > 0 && n_disagreements > 0, "{summary}");
    assert!(battles.iter().any(|b| b.winner == "model_a"));
    assert!(battles.iter().any(|b| b.winner == "model_b"));
    for j in &unparseable {
        assert!(j.battle_id.is_none(), "{j:?}");
        assert!(j.output.ends_with("I cannot decide."), "{j:?}");
        assert!(j.reason.as_deref().unwrap().contains("no verdict"), "{j:?}");
    }

    let prompts = podium_arena::prompts::bundled();
    let models = ["mock:a", "mock:b", "mock:c"];
    for battle in &battles {
        assert_eq!(battle.judge.as_deref(), Some(judge));
        assert_eq!(battle.source, "judge");
        assert!(battle.anonymous);
        assert!(
            models.iter().position(|m| *m == battle.model_a)
                < models.iter().position(|m| *m == battle.model_b),
            "{battle:?}"
        );
        // Both raw outputs, as the judgements hold them.
        let transcript: serde_json::Value =
            serde_json::from_str(battle.judge_output.as_deref().unwrap()).unwrap();
        let a_first = transcript["a_first"].as_str().unwrap();
        let b_first = transcript["b_first"].as_str().unwrap();
        let mine: Vec<&JudgementRow> = judgements
            .iter()
            .filter(|j| j.battle_id == Some(battle.id))
            .collect();
        assert_eq!(mine.len(), 2, "{battle:?}");
        let by_order = |a_first: bool| mine.iter().find(|j| j.a_first == a_first).unwrap();
        assert_eq!(by_order(true).output, a_first);
        assert_eq!(by_order(false).output, b_first);
        assert_eq!(
            Some(battle.winner.as_str()),
            expected_winner(a_first, b_first),
            "{a_first:?} / {b_first:?}"
        );
        // The conversations: the prompt and each side's own answer.
        let prompt = prompts
            .iter()
            .find(|p| p.id == by_order(true).prompt_id)
            .unwrap();
        assert_eq!(battle.category, prompt.category);
        for conversation in [&battle.conversation_a, &battle.conversation_b] {
            let messages: serde_json::Value =
                serde_json::from_str(conversation.as_deref().unwrap()).unwrap();
            assert_eq!(messages[0]["role"], "user");
            assert_eq!(messages[0]["content"], prompt.prompt.as_str());
            assert_eq!(messages[1]["role"], "assistant");
            assert!(
                messages[1]["content"]
                    .as_str()
                    .unwrap()
                    .starts_with("Let me think step by step.")
            );
        }
        assert_ne!(battle.conversation_a, battle.conversation_b);
        // Style counts of both answers, for style control.
        let style: [podium_arena::StyleCounts; 2] =
            serde_json::from_str(battle.style_json.as_deref().unwrap()).unwrap();
        assert!(style.iter().all(|side| side.tokens > 0.0), "{style:?}");
    }

    // The same judging again: every pair is stored already, nothing is added.
    let again = podium(&db, &args);
    assert!(again.status.success(), "{}", stderr(&again));
    let summary = stdout(&again);
    assert!(summary.contains("battles stored: 0"), "{summary}");
    assert!(
        summary.contains("already judged: 90 pairs (stored before, skipped)"),
        "{summary}"
    );
    assert_eq!(store.battle_count().unwrap() as usize, n_battles);
    assert_eq!(store.judgements(None).unwrap().len(), 180);
    // A fourth model: only its pairs are new.
    let output = podium(
        &db,
        &[
            "arena", "judge", "--judge", judge, "-m", "mock:c", "-m", "mock:b", "-m", "mock:a",
            "-m", "mock:d", "--limit", "2",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = stdout(&output);
    assert!(summary.contains("already judged: 6 pairs"), "{summary}");
    assert_eq!(store.judgements(None).unwrap().len(), 180 + 2 * 3 * 2);
}

#[test]
fn a_judge_that_always_prefers_the_first_answer_gives_only_ties() {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("podium.db");
    let output = podium(
        &db,
        &[
            "arena",
            "judge",
            "--judge",
            "mock:first?verdicts=first",
            "-m",
            "mock:a",
            "-m",
            "mock:b",
            "--category",
            "math",
            "--limit",
            "3",
            "--max-tokens",
            "5",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = stdout(&output);
    assert!(
        summary.contains(
            "battles stored: 3 (0 won, 3 ties: 0 both orders said tie, 3 ties from disagreement"
        ),
        "{summary}"
    );
    assert!(summary.contains("unparseable: 0 pairs"), "{summary}");
    let store = Store::open(&db).unwrap();
    let battles = store.battles(&BattleFilter::default()).unwrap();
    assert_eq!(battles.len(), 3);
    for battle in &battles {
        assert_eq!(battle.winner, "tie");
        assert_eq!(battle.category.as_deref(), Some("math"));
        // --max-tokens caps each answer: the mock answers in words.
        let messages: serde_json::Value =
            serde_json::from_str(battle.conversation_a.as_deref().unwrap()).unwrap();
        let answer = messages[1]["content"].as_str().unwrap();
        assert!(answer.split_whitespace().count() <= 5, "{answer}");
    }
    let verdicts: Vec<Option<String>> = store
        .judgements(None)
        .unwrap()
        .into_iter()
        .map(|j| j.verdict)
        .collect();
    assert_eq!(verdicts, vec![Some("A>B".to_string()); 6]);
}

#[test]
fn a_custom_prompt_set_and_judging_prompt() {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("podium.db");
    let prompts = work.path().join("prompts.jsonl");
    std::fs::write(
        &prompts,
        "{\"id\": \"p1\", \"prompt\": \"Say hi.\"}\n{\"id\": \"p2\", \"category\": \"x\", \"prompt\": \"Say bye.\"}\n",
    )
    .unwrap();
    let template = work.path().join("judge.txt");
    std::fs::write(
        &template,
        "Q {question}\nA {answer_a}\nB {answer_b}\nVerdict?",
    )
    .unwrap();
    let output = podium(
        &db,
        &[
            "arena",
            "judge",
            "--judge",
            "mock:j?verdicts=hash",
            "-m",
            "mock:a",
            "-m",
            "mock:b",
            "--prompts",
            prompts.to_str().unwrap(),
            "--judge-prompt",
            template.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let store = Store::open(&db).unwrap();
    let judgements = store.judgements(None).unwrap();
    assert_eq!(judgements.len(), 4);
    let ids: Vec<&str> = judgements.iter().map(|j| j.prompt_id.as_str()).collect();
    assert_eq!(ids, ["p1", "p1", "p2", "p2"]);
    assert_eq!(judgements[0].category, None);
    assert_eq!(judgements[2].category.as_deref(), Some("x"));
}

#[test]
fn bad_input_is_exit_code_2_and_stores_nothing() {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("podium.db");
    let bad_prompts = work.path().join("bad.jsonl");
    std::fs::write(
        &bad_prompts,
        "{\"id\": \"p1\", \"prompt\": \"x\"}\n{\"id\": \"p2\"}\n",
    )
    .unwrap();
    let bad_template = work.path().join("judge.txt");
    std::fs::write(&bad_template, "{question} {answer_a}").unwrap();
    let base = ["arena", "judge", "--judge", "mock:j", "-m", "mock:a"];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (with(&[]), "two or more models"),
        (with(&["-m", "mock:a"]), "model `mock:a` is given twice"),
        (
            with(&["-m", "mock:b", "--category", "poetry"]),
            "no prompt has category `poetry` (the set's categories: advice, coding",
        ),
        (
            with(&["-m", "mock:b", "--prompts", bad_prompts.to_str().unwrap()]),
            "bad.jsonl: line 2: field `prompt`",
        ),
        (
            with(&[
                "-m",
                "mock:b",
                "--judge-prompt",
                bad_template.to_str().unwrap(),
            ]),
            "judge.txt: the judging prompt must hold `{answer_b}` exactly once",
        ),
        (with(&["-m", "nope:b"]), "nope"),
    ];
    for (args, message) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = podium(&db, &args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(message),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    if db.exists() {
        let store = Store::open(&db).unwrap();
        assert_eq!(store.battle_count().unwrap(), 0);
        assert!(store.judgements(None).unwrap().is_empty());
    }
}

#[test]
fn failed_requests_store_no_pair_and_a_rerun_judges_them() {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("podium.db");
    let run = |judge: &str| {
        podium(
            &db,
            &[
                "arena", "judge", "--judge", judge, "-m", "mock:a", "-m", "mock:b", "--limit", "10",
            ],
        )
    };
    // The mock judge fails about one request in two.
    let output = run("mock:j?verdicts=first&fail_every=2");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("mock failure"),
        "{}",
        stderr(&output)
    );
    let store = Store::open(&db).unwrap();
    let stored = store.battle_count().unwrap();
    assert!(stored < 10, "{stored}");
    assert_eq!(store.judgements(None).unwrap().len() as u64, 2 * stored);
    // The judge's name carries its options, so a judge that does not fail is
    // another judge: all ten pairs are judged again under its name.
    let output = run("mock:j?verdicts=first");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("battles stored: 10"),
        "{}",
        stdout(&output)
    );
}

/// A real (tiny) local model as the judge: it rarely states a verdict in the
/// asked form; what it says is stored and counted either way.
#[test]
fn a_local_model_as_judge_records_what_it_says() {
    let Some(model) = podium_testkit::models::test_model(podium_testkit::models::SMOLLM2) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("podium.db");
    let judge = format!("gguf:{}?threads=1", model.display());
    let output = podium(
        &db,
        &[
            "arena",
            "judge",
            "--judge",
            &judge,
            "-m",
            "mock:a",
            "-m",
            "mock:b",
            "--category",
            "math",
            "--limit",
            "2",
            "--max-tokens",
            "12",
            "--judge-max-tokens",
            "40",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = stdout(&output);
    let n_battles = count_after(&summary, "battles stored:");
    let n_unparseable_pairs = count_after(&summary, "unparseable:");
    assert_eq!(n_battles + n_unparseable_pairs, 2, "{summary}");

    let store = Store::open(&db).unwrap();
    let judgements = store.judgements(None).unwrap();
    assert_eq!(judgements.len(), 4);
    let n_unparseable = judgements.iter().filter(|j| j.verdict.is_none()).count();
    assert!(
        summary.contains(&format!(
            "({n_unparseable} of 4 judge answers held no verdict"
        )),
        "{summary}"
    );
    for j in &judgements {
        // The judge's name is its identity: options that change no output
        // (threads) are not part of it.
        assert_eq!(j.judge, format!("gguf:{}", model.display()));
        // The model said something, and it is kept with its verdict or the reason it has none.
        assert!(!j.output.trim().is_empty() || j.reason.is_some(), "{j:?}");
        assert_eq!(j.verdict.is_none(), j.reason.is_some(), "{j:?}");
    }
    assert_eq!(store.battle_count().unwrap() as usize, n_battles);
    eprintln!("local judge: {summary}");
    for j in &judgements {
        eprintln!("{:?} {:?}: {:?}", j.verdict, j.reason, j.output);
    }
}
