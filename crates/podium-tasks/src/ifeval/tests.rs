use serde_json::json;

use super::*;

#[test]
fn loose_variants_follow_lm_eval() {
    let variants = loose_variants("Sure!\n**Answer** here\nBye");
    assert_eq!(
        variants,
        [
            "Sure!\n**Answer** here\nBye",
            "Sure!\nAnswer here\nBye",
            "Answer here\nBye",
            "Sure!\nAnswer here",
            "Answer here",
            "**Answer** here\nBye",
            "Sure!\n**Answer** here",
            "**Answer** here",
        ]
    );
    assert_eq!(loose_variants("one line")[2..5], ["", "", ""]);
}

#[test]
fn verdicts_and_doc_metrics() {
    let ids = vec![
        "punctuation:no_comma".to_string(),
        "startend:quotation".to_string(),
    ];
    let instructions = Instructions::parse(&ids, &[json!({}), json!({})]).unwrap();
    // Strict fails the quotation (a first line precedes it); loose, without
    // the first line, passes it.
    let verdicts = instructions.verdicts("Here you go\n\"no commas here\"");
    assert_eq!(
        verdicts
            .iter()
            .map(|v| (v.strict, v.loose))
            .collect::<Vec<_>>(),
        [(true, true), (false, true)]
    );
    assert_eq!(
        doc_metrics(&verdicts),
        [(0.0, 1.0), (1.0, 2.0), (1.0, 1.0), (2.0, 2.0)]
    );
    // An empty or blank response follows nothing, not even `no_comma`.
    let blank = instructions.verdicts(" \n ");
    assert!(blank.iter().all(|v| !v.strict && !v.loose));
}

#[test]
fn parse_errors_name_the_instruction() {
    let cases = [
        (
            vec!["keywords:nonsense"],
            vec![json!({})],
            "unknown instruction `keywords:nonsense`",
        ),
        (
            vec!["length_constraints:number_words"],
            vec![json!({"relation": "at least"})],
            "needs `num_words`",
        ),
        (
            vec!["length_constraints:number_words"],
            vec![json!({"num_words": 0, "relation": "at least"})],
            "needs `num_words`",
        ),
        (
            vec!["length_constraints:number_words"],
            vec![json!({"num_words": 5, "relation": "at most"})],
            "`less than` or `at least`",
        ),
        (
            vec!["punctuation:no_comma"],
            vec![json!({"extra": 1})],
            "takes no argument `extra`",
        ),
        (
            vec!["language:response_language"],
            vec![json!({"language": "xx"})],
            "unknown language `xx`",
        ),
        (
            vec!["keywords:letter_frequency"],
            vec![json!({"letter": "ab", "let_frequency": 2, "let_relation": "at least"})],
            "one character",
        ),
        (
            vec!["length_constraints:nth_paragraph_first_word"],
            vec![json!({"num_paragraphs": 2, "nth_paragraph": 3, "first_word": "x"})],
            "outside 1..=2",
        ),
        (
            vec!["punctuation:no_comma", "startend:quotation"],
            vec![json!({})],
            "has 2 instructions but `kwargs` has 1",
        ),
        (vec![], vec![], "empty"),
    ];
    for (ids, kwargs, expected) in cases {
        let ids: Vec<String> = ids.into_iter().map(String::from).collect();
        let err = Instructions::parse(&ids, &kwargs).unwrap_err().to_string();
        assert!(err.contains(expected), "{ids:?}: {err}");
    }
    // Falsy arguments are dropped, as lm-eval does: `null` for an argument-free one.
    let ids = vec!["punctuation:no_comma".to_string()];
    assert!(Instructions::parse(&ids, &[json!({"x": null, "y": 0, "z": ""})]).is_ok());
}
