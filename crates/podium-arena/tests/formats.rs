//! Battle files: each layout read, each malformed case refused with its line
//! and field, limits, the JSONL round trip, and the Markdown style counts.

use podium_arena::formats::{
    approx_tokens, conversation_style, read_battles, read_csv, read_jsonl, style_counts,
    write_jsonl,
};
use podium_arena::{ArenaError, Battle, BattleFormat, Outcome, ReadLimits, StyleCounts};

fn jsonl(text: &str) -> Result<Vec<Battle>, ArenaError> {
    read_jsonl(text.as_bytes(), &ReadLimits::default())
}

fn csv(text: &str) -> Result<Vec<Battle>, ArenaError> {
    read_csv(text.as_bytes(), &ReadLimits::default())
}

/// Asserts that `result` is the row error at `line`, `field`, with a message
/// containing `message`.
fn check_row_error(result: Result<Vec<Battle>, ArenaError>, line: u64, field: &str, message: &str) {
    match result {
        Err(ArenaError::Row {
            line: got_line,
            field: got_field,
            message: got_message,
        }) => {
            assert_eq!(
                (got_line, got_field.as_str()),
                (line, field),
                "{got_message}"
            );
            assert!(
                got_message.contains(message),
                "`{got_message}` does not contain `{message}`"
            );
        }
        other => panic!("expected a row error at line {line}, field {field}; got {other:?}"),
    }
}

#[test]
fn fastchat_jsonl_with_every_field() {
    let text = r##"{"question_id": "q1", "model_a": "gpt-4", "model_b": "vicuna-13b", "winner": "model_a", "judge": "arena_user_12", "tstamp": 1682000000.5, "turn": 2, "anony": false, "language": "English", "category": "coding"}

{"model_a": "x", "model_b": "y", "winner": "tie (bothbad)", "judge": "gpt-4-judge", "judge_output": "[[A=B]]", "tstamp": null}
{"model_a":"x","model_b":"y","winner":"tie","conversation_a":[{"role":"user","content":"hi"},{"role":"assistant","content":"# Title\n- a\n- b"},{"role":"user","content":"more"},{"role":"assistant","content":[{"type":"text","text":"**bold**"}]}],"conversation_b":[{"role":"user","content":"hi"},{"role":"assistant","content":"ok"}]}
"##;
    let battles = jsonl(text).unwrap();
    assert_eq!(battles.len(), 3, "the blank line is skipped");

    let first = &battles[0];
    assert_eq!(
        (
            first.model_a.as_str(),
            first.model_b.as_str(),
            first.outcome
        ),
        ("gpt-4", "vicuna-13b", Outcome::A)
    );
    assert_eq!(
        first.judge, None,
        "FastChat's arena_user_ judge is a person"
    );
    assert_eq!(first.tstamp, 1682000000.5);
    assert_eq!(first.turns, 2);
    assert!(!first.anonymous);
    assert_eq!(first.language.as_deref(), Some("English"));
    assert_eq!(first.category.as_deref(), Some("coding"));
    assert_eq!(first.style, None);

    let second = &battles[1];
    assert_eq!(second.outcome, Outcome::BothBad);
    assert_eq!(second.judge.as_deref(), Some("gpt-4-judge"));
    assert_eq!(second.judge_output.as_deref(), Some("[[A=B]]"));
    assert_eq!((second.tstamp, second.turns), (0.0, 1), "defaults");
    assert!(second.anonymous, "anony defaults to true");

    let third = &battles[2];
    assert_eq!(third.outcome, Outcome::Tie);
    assert_eq!(
        third.turns, 2,
        "turns from the conversation's user messages"
    );
    let conversation: serde_json::Value =
        serde_json::from_str(third.conversation_a.as_deref().unwrap()).unwrap();
    assert_eq!(conversation.as_array().unwrap().len(), 4);
    let [a, b] = third.style.expect("style from both conversations");
    assert_eq!((a.headers, a.lists, a.bold), (1.0, 2.0, 1.0));
    assert_eq!((b.headers, b.lists, b.bold), (0.0, 0.0, 0.0));
    assert!(a.tokens > b.tokens);
}

#[test]
fn fastchat_conv_metadata_fills_the_style() {
    let text = r#"{"model_a":"x","model_b":"y","winner":"model_b","conv_metadata":{"sum_user_tokens":5,"sum_assistant_a_tokens":120,"sum_assistant_b_tokens":300,"context_a_tokens":5,"context_b_tokens":5,"turns":1,"header_count_a":{"h1":1,"h2":2,"h3":0,"h4":0,"h5":0,"h6":0},"list_count_a":{"ordered":3,"unordered":4},"bold_count_a":{"**":5,"__":1},"header_count_b":{"h1":0,"h2":0,"h3":0,"h4":0,"h5":0,"h6":0},"list_count_b":{"ordered":0,"unordered":0},"bold_count_b":2}}
{"model_a":"x","model_b":"y","winner":"model_b","conv_metadata":{"sum_assistant_a_tokens":120}}
"#;
    let battles = jsonl(text).unwrap();
    assert_eq!(
        battles[0].style,
        Some([
            StyleCounts {
                tokens: 120.0,
                headers: 3.0,
                lists: 7.0,
                bold: 6.0
            },
            StyleCounts {
                tokens: 300.0,
                headers: 0.0,
                lists: 0.0,
                bold: 2.0
            },
        ])
    );
    assert_eq!(battles[1].style, None, "incomplete metadata is no style");
}

#[test]
fn malformed_jsonl_rows_name_line_and_field() {
    let good = r#"{"model_a":"x","model_b":"y","winner":"model_a"}"#;
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{"model_a":"x","model_b":"y","winner":"draw"}"#,
            "winner",
            "`draw` is not one of",
        ),
        (r#"{"model_a":"x","model_b":"y"}"#, "winner", "missing"),
        (r#"{"model_b":"y","winner":"tie"}"#, "model_a", "missing"),
        (
            r#"{"model_a":"","model_b":"y","winner":"tie"}"#,
            "model_a",
            "empty",
        ),
        (
            r#"{"model_a":"x","model_b":"x","winner":"tie"}"#,
            "model_b",
            "battles itself",
        ),
        (
            r#"{"model_a":5,"model_b":"y","winner":"tie"}"#,
            "model_a",
            "expected a string",
        ),
        (
            r#"{"model_a":"x","model_b":"y","winner":"tie","tstamp":"noon"}"#,
            "tstamp",
            "expected a number",
        ),
        (
            r#"{"model_a":"x","model_b":"y","winner":"tie","turn":1.5}"#,
            "turn",
            "whole number",
        ),
        (
            r#"{"model_a":"x","model_b":"y","winner":"tie","anony":"yes"}"#,
            "anony",
            "expected a boolean",
        ),
        (
            r#"{"model_a":"x","model_b":"y","winner":"tie","conversation_a":{"role":"user"}}"#,
            "conversation_a",
            "list of messages",
        ),
        (
            r#"{"model_a":"x","model_b":"y","winner":"tie","conversation_b":[{"content":"hi"}]}"#,
            "conversation_b",
            "message 0",
        ),
        (
            r#"{"model_a":"x","model_b":"y","winner":"tie","conv_metadata":{"sum_assistant_a_tokens":-1,"header_count_a":0,"list_count_a":0,"bold_count_a":0,"sum_assistant_b_tokens":1,"header_count_b":0,"list_count_b":0,"bold_count_b":0}}"#,
            "conv_metadata.sum_assistant_a_tokens",
            "count",
        ),
        (
            r#"{"model_a":"x\u0007","model_b":"y","winner":"tie"}"#,
            "model_a",
            "control character",
        ),
        (
            r#"{"model_a":"x","model_b":"y","winner":"tie""#,
            "(line)",
            "not a FastChat battle",
        ),
        (
            r#"["x","y","tie"]"#,
            "(line)",
            "expected a JSON object, found an array",
        ),
    ];
    for (bad, field, message) in cases {
        let text = format!("{good}\n\n{bad}\n{good}\n");
        check_row_error(jsonl(&text), 3, field, message);
    }
}

#[test]
fn jsonl_limits() {
    let good = r#"{"model_a":"x","model_b":"y","winner":"model_a"}"#;
    let limits = ReadLimits {
        max_line_bytes: 60,
        max_battles: 2,
        max_name_bytes: 8,
        max_total_bytes: 1000,
    };
    let long_line = format!(
        r#"{{"model_a":"x","model_b":"y","winner":"model_a","pad":"{}"}}"#,
        "p".repeat(100)
    );
    let text = format!("{good}\n{long_line}\n");
    check_row_error(
        read_jsonl(text.as_bytes(), &limits),
        2,
        "(line)",
        "longer than 60 bytes",
    );
    // The last line without a newline is measured too.
    check_row_error(
        read_jsonl(long_line.as_bytes(), &limits),
        1,
        "(line)",
        "longer than 60 bytes",
    );

    let text = format!("{good}\n{good}\n{good}\n");
    check_row_error(
        read_jsonl(text.as_bytes(), &limits),
        3,
        "(file)",
        "more than 2 battles",
    );

    let text = r#"{"model_a":"abcdefghi","model_b":"y","winner":"tie"}"#;
    check_row_error(
        read_jsonl(text.as_bytes(), &limits),
        1,
        "model_a",
        "longer than 8 bytes",
    );

    let limits = ReadLimits {
        max_total_bytes: 60,
        ..limits
    };
    let text = format!("{good}\n{good}\n");
    check_row_error(
        read_jsonl(text.as_bytes(), &limits),
        2,
        "(file)",
        "longer than 60 bytes",
    );
}

#[test]
fn llmfao_csv() {
    let text = "id,prompt,model_x,model_y,worker,winner,left,right\n\
                0,8,97,98,58,tie,Airoboros L2 70B,Weaver 12k\n\
                0,8,97,98,14,right,Airoboros L2 70B,Weaver 12k\n\
                1,9,3,4,15,left,GPT 4,\"command, nightly\"\n";
    let battles = csv(text).unwrap();
    let summary: Vec<(&str, &str, Outcome)> = battles
        .iter()
        .map(|b| (b.model_a.as_str(), b.model_b.as_str(), b.outcome))
        .collect();
    assert_eq!(
        summary,
        [
            ("Airoboros L2 70B", "Weaver 12k", Outcome::Tie),
            ("Airoboros L2 70B", "Weaver 12k", Outcome::B),
            ("GPT 4", "command, nightly", Outcome::A),
        ]
    );
    assert_eq!(battles[0].judge, None, "LLMFAO's workers are people");
}

#[test]
fn the_bundled_llmfao_file_reads_whole() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/llmfao.csv");
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let battles = read_battles(file, BattleFormat::Csv, &ReadLimits::default()).unwrap();
    // SOURCE.md says 8,930 judgements; its own outcome counts sum to 8,931, the rows there are.
    assert_eq!(battles.len(), 8931);
    let count = |o: Outcome| battles.iter().filter(|b| b.outcome == o).count();
    assert_eq!(
        (count(Outcome::A), count(Outcome::B), count(Outcome::Tie)),
        (2911, 2549, 3471)
    );
    let mut models: Vec<&str> = battles
        .iter()
        .flat_map(|b| [b.model_a.as_str(), b.model_b.as_str()])
        .collect();
    models.sort_unstable();
    models.dedup();
    assert_eq!(models.len(), 59);
}

#[test]
fn plain_csv_with_optional_columns() {
    let text = "model_a,model_b,winner,category,tstamp,judge\r\n\
                a,b,model_a,coding,10.5,\r\n\
                b,a,tie (bothbad),,,gpt-judge\r\n";
    let battles = csv(text).unwrap();
    assert_eq!(battles[0].outcome, Outcome::A);
    assert_eq!(battles[0].category.as_deref(), Some("coding"));
    assert_eq!(battles[0].tstamp, 10.5);
    assert_eq!(battles[0].judge, None);
    assert_eq!(battles[1].outcome, Outcome::BothBad);
    assert_eq!(
        (battles[1].category.as_deref(), battles[1].tstamp),
        (None, 0.0)
    );
    assert_eq!(battles[1].judge.as_deref(), Some("gpt-judge"));

    let minimal = csv("model_a,model_b,winner\nx,y,model_b\n").unwrap();
    assert_eq!(minimal, vec![Battle::new("x", "y", Outcome::B)]);
}

#[test]
fn malformed_csv_rows_name_line_and_field() {
    let header = "model_a,model_b,winner,tstamp";
    let cases: &[(&str, &str, &str)] = &[
        (
            "x,y,left,1",
            "winner",
            "`left` is not one of model_a, model_b",
        ),
        ("x,y,model_a,soon", "tstamp", "`soon` is not a time"),
        ("x,x,tie,1", "model_b", "battles itself"),
        (",y,tie,1", "model_a", "empty"),
        ("x,y,tie", "(line)", "3 fields where the header has 4"),
    ];
    for (bad, field, message) in cases {
        let text = format!("{header}\nx,y,tie,1\n{bad}\nx,y,tie,1\n");
        check_row_error(csv(&text), 3, field, message);
    }
    check_row_error(
        csv("left,right,winner\nx,y,model_a\n"),
        2,
        "winner",
        "`model_a` is not one of left, right, tie",
    );
    check_row_error(
        csv("a,b,winner\nx,y,tie\n"),
        1,
        "(header)",
        "expected columns",
    );
    check_row_error(
        csv("model_a,model_b\nx,y\n"),
        1,
        "winner",
        "no `winner` column",
    );
    check_row_error(csv(""), 1, "(header)", "empty");
    // A quoted field may span lines: the row is named by the line it starts on.
    check_row_error(
        csv("model_a,model_b,winner,prompt\nx,z,tie,\"a\nb\"\np,r,nope,\"c\nd\"\n"),
        4,
        "winner",
        "`nope`",
    );
    check_row_error(
        read_csv(
            &b"model_a,model_b,winner\nx\xff,y,tie\n"[..],
            &ReadLimits::default(),
        ),
        2,
        "(line)",
        "not UTF-8",
    );
}

#[test]
fn csv_limits() {
    let limits = ReadLimits {
        max_line_bytes: 30,
        max_battles: 2,
        max_name_bytes: 8,
        max_total_bytes: 1000,
    };
    let long = format!(
        "model_a,model_b,winner\nx,y,tie\n{},y,tie\nx,y,nope\n",
        "x".repeat(40)
    );
    check_row_error(
        read_csv(long.as_bytes(), &limits),
        3,
        "(line)",
        "longer than 30 bytes",
    );
    // An earlier bad row in the same buffer is reported first.
    let long = format!(
        "model_a,model_b,winner\nx,y,nope\n{},y,tie\n",
        "x".repeat(40)
    );
    check_row_error(read_csv(long.as_bytes(), &limits), 2, "winner", "`nope`");
    let many = "model_a,model_b,winner\nx,y,tie\nx,y,tie\nx,y,tie\n";
    check_row_error(
        read_csv(many.as_bytes(), &limits),
        4,
        "(file)",
        "more than 2 battles",
    );
    check_row_error(
        read_csv(
            "model_a,model_b,winner\nabcdefghi,y,tie\n".as_bytes(),
            &limits,
        ),
        2,
        "model_a",
        "longer than 8 bytes",
    );
    let limits = ReadLimits {
        max_total_bytes: 40,
        max_battles: 10,
        ..limits
    };
    check_row_error(
        read_csv(many.as_bytes(), &limits),
        4,
        "(file)",
        "longer than 40 bytes",
    );
}

#[test]
fn detect_by_extension_then_content() {
    let cases = [
        ("battles.jsonl", "model_a,model_b", BattleFormat::Jsonl),
        ("battles.JSON", "", BattleFormat::Jsonl),
        ("battles.csv", "{", BattleFormat::Csv),
        ("battles.txt", "  \n{\"model_a\"", BattleFormat::Jsonl),
        ("battles", "\u{feff}{\"model_a\"", BattleFormat::Jsonl),
        ("battles.txt", "left,right,winner", BattleFormat::Csv),
    ];
    for (name, head, expected) in cases {
        assert_eq!(
            BattleFormat::detect(name, head.as_bytes()),
            expected,
            "{name}"
        );
    }
}

fn full_battle() -> Battle {
    Battle {
        model_a: "model \"α\"".into(),
        model_b: "b".into(),
        outcome: Outcome::BothBad,
        category: Some("math".into()),
        judge: Some("judge-1".into()),
        language: Some("German".into()),
        tstamp: 1_717_000_000.123_456,
        turns: 3,
        anonymous: false,
        conversation_a: Some(
            r###"[{"role":"user","content":"q"},{"role":"assistant","content":"## A\n1. x"}]"###
                .into(),
        ),
        conversation_b: Some("not a list".into()),
        style: Some([
            StyleCounts {
                tokens: 12.0,
                headers: 1.0,
                lists: 1.0,
                bold: 0.0,
            },
            StyleCounts {
                tokens: 3.5,
                headers: 0.0,
                lists: 0.0,
                bold: 2.0,
            },
        ]),
        judge_output: Some("line 1\nline 2 [[A=B]]".into()),
    }
}

#[test]
fn jsonl_round_trip_keeps_every_field() {
    let battles = vec![
        full_battle(),
        Battle::new("x", "y", Outcome::A),
        Battle {
            tstamp: 5.0,
            ..Battle::new("y", "x", Outcome::Tie)
        },
    ];
    let mut out = Vec::new();
    write_jsonl(&mut out, &battles).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(
        text.contains(r#""header_count_a":1"#),
        "counts as integers: {text}"
    );
    assert!(text.contains(r#""sum_assistant_b_tokens":3.5"#), "{text}");
    assert_eq!(jsonl(&text).unwrap(), battles);
}

#[test]
fn style_counts_as_fastchat_counts() {
    let check = |text: &str, headers: f64, lists: f64, bold: f64| {
        let got = style_counts(text);
        assert_eq!(
            (got.headers, got.lists, got.bold),
            (headers, lists, bold),
            "{text:?}"
        );
    };
    check("", 0.0, 0.0, 0.0);
    check(
        "# One\n## Two\n###### Six\n####### Seven\n#NoSpace\n  # indented",
        3.0,
        0.0,
        0.0,
    );
    check("#\n", 1.0, 0.0, 0.0);
    check("#", 0.0, 0.0, 0.0);
    check(
        "- a\n* b\n+ c\n  - nested\n1. one\n10. ten\n-no\n1.no\n---",
        0.0,
        6.0,
        0.0,
    );
    // As the regex finds them: `** and **` between two spans is a span too.
    check(
        "**bold** and __also__ and **not\nbold** and ****",
        0.0,
        0.0,
        3.0,
    );
    check("**not\nbold**", 0.0, 0.0, 0.0);
    check("**a**b**c**", 0.0, 0.0, 2.0);
    check("* **item** text", 0.0, 1.0, 1.0);
    check(
        "```\n# not a header\n- not a list\n**not bold**\n```\n# header",
        1.0,
        0.0,
        0.0,
    );
    check("```py\nx = `a`\n```\n- item", 0.0, 1.0, 0.0);
}

#[test]
fn conversation_style_joins_the_assistant_turns() {
    let conversation = serde_json::json!([
        {"role": "user", "content": "# not counted"},
        {"role": "assistant", "content": "# A"},
        {"role": "assistant", "content": [{"type": "text", "text": "- b"}, {"type": "image"}]},
    ]);
    let style = conversation_style(&conversation);
    assert_eq!((style.headers, style.lists), (1.0, 1.0));
}

#[test]
fn approx_tokens_counts() {
    let cases = [
        ("", 0),
        ("hello world", 2),
        ("internationalization", 4),
        ("1234567", 3),
        ("a, b.", 4),
        ("line\n\nnext", 3),
        ("日本語", 1),
    ];
    for (text, expected) in cases {
        assert_eq!(approx_tokens(text), expected, "{text:?}");
    }
}
