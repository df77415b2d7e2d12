//! NLTK's Punkt sentence tokenizer (`nltk.tokenize.punkt.PunktSentenceTokenizer`,
//! nltk 3.9.1) with NLTK's pretrained English parameters (`punkt_tab/english`,
//! shipped in `punkt_english/`): what `nltk.sent_tokenize` and lm-eval's
//! `count_sentences` compute.
//!
//! A port of the decision procedure, not of the trainer. One bound is added: the
//! text around a candidate boundary that Punkt re-tokenizes (the word before it,
//! which NLTK lets grow over runs of boundaries with no whitespace between them,
//! and the word after it) is cut to [`MAX_CONTEXT_BYTES`] on each side, so that a
//! long whitespace-free response costs linear, not quadratic, time. Natural text
//! never has a run that long; nltk would answer the same on it.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;

use super::text::{is_py_space, is_py_word_char, py_strip};

/// Longest word before and after a candidate sentence boundary that is looked at.
pub const MAX_CONTEXT_BYTES: usize = 1024;

const ORTHO_BEG_UC: u32 = 1 << 1;
const ORTHO_MID_UC: u32 = 1 << 2;
const ORTHO_UNK_UC: u32 = 1 << 3;
const ORTHO_BEG_LC: u32 = 1 << 4;
const ORTHO_MID_LC: u32 = 1 << 5;
const ORTHO_UNK_LC: u32 = 1 << 6;
const ORTHO_UC: u32 = ORTHO_BEG_UC | ORTHO_MID_UC | ORTHO_UNK_UC;
const ORTHO_LC: u32 = ORTHO_BEG_LC | ORTHO_MID_LC | ORTHO_UNK_LC;

/// The learned parameters (`PunktParameters`).
struct Params {
    abbrev_types: HashSet<String>,
    collocations: HashSet<(String, String)>,
    sent_starters: HashSet<String>,
    ortho_context: HashMap<String, u32>,
}

/// Lines of a punkt_tab file, as `nltk.tabdata` reads them (only the newline is removed).
fn lines(text: &'static str) -> impl Iterator<Item = &'static str> {
    text.split('\n').filter(|line| !line.is_empty())
}

static ENGLISH: LazyLock<Params> = LazyLock::new(|| Params {
    abbrev_types: lines(include_str!("punkt_english/abbrev_types.txt"))
        .map(str::to_string)
        .collect(),
    collocations: lines(include_str!("punkt_english/collocations.tab"))
        .filter_map(|line| line.split_once('\t'))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect(),
    sent_starters: lines(include_str!("punkt_english/sent_starters.txt"))
        .map(str::to_string)
        .collect(),
    ortho_context: lines(include_str!("punkt_english/ortho_context.tab"))
        .filter_map(|line| line.split_once('\t'))
        .filter_map(|(word, flags)| Some((word.to_string(), flags.parse().ok()?)))
        .collect(),
});

static NUMERIC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^-?[\.,]?\d[\d,\.-]*\.?$").expect("a valid constant regex"));

/// A token with its annotations (`PunktToken`).
struct Token<'a> {
    tok: &'a str,
    typ: String,
    period_final: bool,
    sentbreak: bool,
    abbr: bool,
    ellipsis: bool,
}

impl<'a> Token<'a> {
    fn new(tok: &'a str) -> Token<'a> {
        let lower = tok.to_lowercase();
        let typ = if NUMERIC.is_match(&lower) {
            "##number##".to_string()
        } else {
            lower
        };
        Token {
            tok,
            typ,
            period_final: tok.ends_with('.'),
            sentbreak: false,
            abbr: false,
            ellipsis: false,
        }
    }

    fn type_no_period(&self) -> &str {
        if self.typ.chars().count() > 1 && self.typ.ends_with('.') {
            &self.typ[..self.typ.len() - 1]
        } else {
            &self.typ
        }
    }

    fn type_no_sentperiod(&self) -> &str {
        if self.sentbreak {
            self.type_no_period()
        } else {
            &self.typ
        }
    }

    fn first_upper(&self) -> bool {
        self.tok.chars().next().is_some_and(char::is_uppercase)
    }

    fn first_lower(&self) -> bool {
        self.tok.chars().next().is_some_and(char::is_lowercase)
    }

    /// `\.\.+$`
    fn is_ellipsis(&self) -> bool {
        self.tok.len() >= 2 && self.tok.bytes().all(|b| b == b'.')
    }

    /// `[^\W\d]\.$`: one letter (or `_`) and a period.
    fn is_initial(&self) -> bool {
        let mut chars = self.tok.chars();
        matches!(
            (chars.next(), chars.next(), chars.next()),
            (Some(c), Some('.'), None) if is_py_word_char(c) && !super::text::is_py_digit(c)
        )
    }
}

/// `PunktLanguageVars._re_non_word_chars`: characters that cannot appear within words.
fn is_non_word(c: char) -> bool {
    matches!(
        c,
        ')' | '"' | ';' | '}' | ']' | '*' | ':' | '@' | '\'' | '(' | '{' | '[' | '?' | '!'
    )
}

/// Characters that cannot start a word token (`_re_word_start` excludes them).
fn is_not_word_start(c: char) -> bool {
    matches!(
        c,
        '(' | '"'
            | '`'
            | '{'
            | '['
            | ':'
            | ';'
            | '&'
            | '#'
            | '*'
            | '@'
            | ')'
            | '}'
            | ']'
            | '-'
            | ','
    )
}

/// Length of `_re_multi_char_punct` (`-{2,}|\.{2,}|(?:\.\s){2,}\.`) matched at the
/// start of `s`, if it matches.
fn multi_char_punct(s: &str) -> Option<usize> {
    for mark in ['-', '.'] {
        let run = s.chars().take_while(|&c| c == mark).count();
        if run >= 2 {
            return Some(run);
        }
    }
    // `(?:\.\s){2,}\.`: greedy repetitions, backing off one if no period follows.
    let mut ends = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some((_, '.')) = chars.peek().copied() {
        chars.next();
        match chars.peek().copied() {
            Some((_, c)) if is_py_space(c) => {
                chars.next();
                ends.push(chars.peek().map_or(s.len(), |&(i, _)| i));
            }
            _ => break,
        }
    }
    // After k repetitions the text continues at ends[k - 1]; a period there completes it.
    for k in (2..=ends.len()).rev() {
        let at = ends[k - 1];
        if s[at..].starts_with('.') {
            return Some(at + 1);
        }
    }
    None
}

/// Whether a word token ends before `rest` (the lookahead of `_word_tokenize_fmt`).
fn word_ends_before(rest: &str) -> bool {
    let mut chars = rest.chars();
    match chars.next() {
        None => true,
        Some(c) if is_py_space(c) || is_non_word(c) => true,
        Some(',') => {
            let after = &rest[1..];
            match after.chars().next() {
                None => true,
                Some(c) => is_py_space(c) || is_non_word(c) || multi_char_punct(after).is_some(),
            }
        }
        Some(_) => multi_char_punct(rest).is_some(),
    }
}

/// `PunktLanguageVars.word_tokenize` of one line.
fn word_tokenize(line: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(c) = line[i..].chars().next() {
        if let Some(len) = multi_char_punct(&line[i..]) {
            tokens.push(&line[i..i + len]);
            i += len;
            continue;
        }
        if is_py_space(c) {
            i += c.len_utf8();
            continue;
        }
        let mut end = i + c.len_utf8();
        if !is_not_word_start(c) {
            // `\S+?` up to the first position where a word may end.
            while !word_ends_before(&line[end..]) {
                match line[end..].chars().next() {
                    Some(next) => end += next.len_utf8(),
                    None => break,
                }
            }
        }
        tokens.push(&line[i..end]);
        i = end;
    }
    tokens
}

/// `_tokenize_words`: tokens of every non-blank line.
fn tokenize_words(text: &str) -> Vec<Token<'_>> {
    text.split('\n')
        .filter(|line| !py_strip(line).is_empty())
        .flat_map(word_tokenize)
        .map(Token::new)
        .collect()
}

fn first_pass(token: &mut Token<'_>, params: &Params) {
    let tok = token.tok;
    if matches!(tok, "." | "?" | "!") {
        token.sentbreak = true;
    } else if token.is_ellipsis() {
        token.ellipsis = true;
    } else if token.period_final && !tok.ends_with("..") {
        let stem = tok[..tok.len() - 1].to_lowercase();
        let last_part = stem.rsplit('-').next().unwrap_or(&stem);
        if params.abbrev_types.contains(&stem) || params.abbrev_types.contains(last_part) {
            token.abbr = true;
        } else {
            token.sentbreak = true;
        }
    }
}

/// `_ortho_heuristic`: `Some(true)` sentence starter, `Some(false)` not, `None` unknown.
fn ortho_heuristic(token: &Token<'_>, params: &Params) -> Option<bool> {
    if matches!(token.tok, ";" | ":" | "," | "." | "!" | "?") {
        return Some(false);
    }
    let ortho = params
        .ortho_context
        .get(token.type_no_sentperiod())
        .copied()
        .unwrap_or(0);
    if token.first_upper() && ortho & ORTHO_LC != 0 && ortho & ORTHO_MID_UC == 0 {
        return Some(true);
    }
    if token.first_lower() && (ortho & ORTHO_UC != 0 || ortho & ORTHO_BEG_LC == 0) {
        return Some(false);
    }
    None
}

/// `_second_pass_annotation` of `tokens[i]` given `next`.
fn second_pass(token: &mut Token<'_>, next: &Token<'_>, params: &Params) {
    if !token.period_final {
        return;
    }
    let typ = token.type_no_period().to_string();
    let next_typ = next.type_no_sentperiod();
    let is_initial = token.is_initial();
    if params
        .collocations
        .contains(&(typ.clone(), next_typ.to_string()))
    {
        token.sentbreak = false;
        token.abbr = true;
        return;
    }
    if (token.abbr || token.ellipsis) && !is_initial {
        if ortho_heuristic(next, params) == Some(true) {
            token.sentbreak = true;
            return;
        }
        if next.first_upper() && params.sent_starters.contains(next_typ) {
            token.sentbreak = true;
            return;
        }
    }
    if is_initial || typ == "##number##" {
        let heuristic = ortho_heuristic(next, params);
        if heuristic == Some(false) {
            token.sentbreak = false;
            token.abbr = true;
            return;
        }
        let next_ortho = params.ortho_context.get(next_typ).copied().unwrap_or(0);
        if heuristic.is_none() && is_initial && next.first_upper() && next_ortho & ORTHO_LC == 0 {
            token.sentbreak = false;
            token.abbr = true;
        }
    }
}

/// `text_contains_sentbreak`: some token but the last is a sentence break.
fn text_contains_sentbreak(text: &str, params: &Params) -> bool {
    let mut tokens = tokenize_words(text);
    for token in &mut tokens {
        first_pass(token, params);
    }
    for i in 0..tokens.len().saturating_sub(1) {
        let (head, tail) = tokens.split_at_mut(i + 1);
        second_pass(&mut head[i], &tail[0], params);
        if head[i].sentbreak {
            return true;
        }
    }
    false
}

/// A candidate boundary (`period_context_re`): the sentence-end character at
/// `start`, what follows it, and where the next token starts if whitespace follows.
struct EndContext {
    start: usize,
    end: usize,
    after_end: usize,
    next_tok: Option<usize>,
}

fn end_contexts(text: &str) -> Vec<EndContext> {
    let mut found = Vec::new();
    for (start, c) in text.char_indices() {
        if !matches!(c, '.' | '?' | '!') {
            continue;
        }
        let end = start + 1;
        let rest = &text[end..];
        match rest.chars().next() {
            Some(n) if is_non_word(n) => found.push(EndContext {
                start,
                end,
                after_end: end + n.len_utf8(),
                next_tok: None,
            }),
            Some(n) if is_py_space(n) => {
                let ws = rest.len() - rest.trim_start_matches(is_py_space).len();
                let after_ws = end + ws;
                let token_len = text[after_ws..]
                    .find(is_py_space)
                    .unwrap_or(text.len() - after_ws);
                if token_len > 0 {
                    found.push(EndContext {
                        start,
                        end,
                        after_end: after_ws + token_len,
                        next_tok: Some(after_ws),
                    });
                }
            }
            _ => {}
        }
    }
    found
}

/// The largest char boundary of `s` at or below `at`.
fn floor_boundary(s: &str, mut at: usize) -> usize {
    while at > 0 && !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// `_match_potential_end_contexts` then `_slices_from_text`: sentence spans before realignment.
fn slices_from_text(text: &str, params: &Params) -> Vec<(usize, usize)> {
    let contexts = end_contexts(text);
    // (context index, the word slice before it) of the candidates nltk examines.
    let mut decisions: Vec<(usize, (usize, usize))> = Vec::new();
    let mut previous_slice = (0usize, 0usize);
    let mut previous: Option<usize> = None;
    for (index, context) in contexts.iter().enumerate() {
        let before = &text.as_bytes()[previous_slice.1..context.start];
        // `_get_last_whitespace_index`: ASCII whitespace only; 0 when none (or at 0).
        let last_space = before
            .iter()
            .rposition(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c'))
            .unwrap_or(0);
        let word_start = if last_space > 0 {
            last_space + previous_slice.1 + 1
        } else {
            previous_slice.0
        };
        if let Some(prev) = previous
            && previous_slice.1 <= word_start
        {
            decisions.push((prev, previous_slice));
        }
        previous = Some(index);
        previous_slice = (word_start, context.start);
    }
    if let Some(prev) = previous {
        decisions.push((prev, previous_slice));
    }

    let mut slices = Vec::new();
    let mut last_break = 0;
    for (index, (word_start, word_end)) in decisions {
        let context = &contexts[index];
        let word_start = if word_end - word_start > MAX_CONTEXT_BYTES {
            let cut = floor_boundary(text, word_end - MAX_CONTEXT_BYTES);
            if cut < word_start { word_start } else { cut }
        } else {
            word_start
        };
        let after_end = match context.next_tok {
            Some(next) if context.after_end - next > MAX_CONTEXT_BYTES => {
                floor_boundary(text, next + MAX_CONTEXT_BYTES)
            }
            _ => context.after_end,
        };
        let mut decision_text =
            String::with_capacity(word_end - word_start + after_end - context.start);
        decision_text.push_str(&text[word_start..word_end]);
        decision_text.push_str(&text[context.start..after_end]);
        if text_contains_sentbreak(&decision_text, params) {
            slices.push((last_break, context.end));
            last_break = context.next_tok.unwrap_or(context.end);
        }
    }
    slices.push((last_break, text.trim_end_matches(is_py_space).len()));
    slices
}

/// `re_boundary_realignment` (`["\')\]}]+?(?:\s+|(?=--)|$)`, multiline) at the start
/// of `s`: (length of the closing punctuation, length of the whole match).
fn boundary_realignment(s: &str) -> Option<(usize, usize)> {
    let closers = s
        .bytes()
        .take_while(|b| matches!(b, b'"' | b'\'' | b')' | b']' | b'}'))
        .count();
    for k in 1..=closers {
        let rest = &s[k..];
        let ws = rest.len() - rest.trim_start_matches(is_py_space).len();
        if ws > 0 {
            return Some((k, k + ws));
        }
        if rest.starts_with("--") || rest.is_empty() || rest.starts_with('\n') {
            return Some((k, k));
        }
    }
    None
}

/// `_realign_boundaries`: closing quotes and brackets after a boundary join the
/// sentence before it.
fn realign_boundaries(text: &str, slices: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut realign = 0;
    for (i, &(start, stop)) in slices.iter().enumerate() {
        let start = start + realign;
        let non_empty = start < stop;
        let Some(&(next_start, next_stop)) = slices.get(i + 1) else {
            if non_empty {
                out.push((start, stop));
            }
            continue;
        };
        let next_text = if next_start < next_stop {
            &text[next_start..next_stop]
        } else {
            ""
        };
        match boundary_realignment(next_text) {
            Some((closers, whole)) => {
                out.push((start, next_start + closers));
                realign = whole;
            }
            None => {
                realign = 0;
                if non_empty {
                    out.push((start, stop));
                }
            }
        }
    }
    out
}

/// `PunktSentenceTokenizer.tokenize` with the English parameters: the sentences of `text`.
pub fn sentences(text: &str) -> Vec<&str> {
    let params = &*ENGLISH;
    let slices = slices_from_text(text, params);
    realign_boundaries(text, &slices)
        .into_iter()
        .map(|(start, stop)| &text[start..stop])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sentences as `nltk.sent_tokenize` (nltk 3.9.1, punkt_tab english) splits them.
    #[test]
    fn splits_like_nltk() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("   ", &[]),
            ("Hello world", &["Hello world"]),
            (
                "Hello Mr. Smith. How are you? I am fine... Thanks! e.g. this U.S. one.",
                &[
                    "Hello Mr. Smith.",
                    "How are you?",
                    "I am fine...",
                    "Thanks!",
                    "e.g.",
                    "this U.S. one.",
                ],
            ),
            (
                "He said \"Stop.\" Then he left. (It was late.) OK.",
                &[
                    "He said \"Stop.\"",
                    "Then he left.",
                    "(It was late.)",
                    "OK.",
                ],
            ),
            (
                "It costs 5.5 dollars. Really.",
                &["It costs 5.5 dollars.", "Really."],
            ),
            (
                "Line one\n\nLine two. Three",
                &["Line one\n\nLine two.", "Three"],
            ),
            (
                "J. K. Rowling wrote it. Yes.",
                &["J. K. Rowling wrote it.", "Yes."],
            ),
            ("Wait... what?! No.", &["Wait...", "what?!", "No."]),
        ];
        for (text, expected) in cases {
            assert_eq!(sentences(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn punkt_word_tokens() {
        let cases: &[(&str, &[&str])] = &[
            ("Hello, world.", &["Hello", ",", "world."]),
            (
                "a,b -- c... d. . . e",
                &["a,b", "--", "c", "...", "d", ". . .", "e"],
            ),
            ("(Hi) \"x\"", &["(", "Hi", ")", "\"", "x", "\""]),
        ];
        for (line, expected) in cases {
            assert_eq!(word_tokenize(line), *expected, "{line:?}");
        }
    }

    #[test]
    fn long_runs_without_whitespace_stay_linear() {
        // 200 KB of `x."` repeated: every `.` is a candidate, with no whitespace
        // anywhere; nltk's context would grow with each one.
        let text = "x.\"".repeat(70_000);
        let found = sentences(&text);
        assert!(!found.is_empty());
        assert!(found.iter().all(|s| !s.is_empty()));
    }
}
