//! The 25 instructions of lm-eval's `instructions_registry.INSTRUCTION_DICT`
//! (`lm_eval/tasks/ifeval/instructions.py`, v0.4.9): their arguments, read as
//! lm-eval reads them, and their `check_following`.

use std::collections::HashMap;

use regex::Regex;
use serde_json::{Map, Value as Json};

use super::text::{
    count_word_runs, py_islower, py_isupper, py_lower, py_split_whitespace, py_strip,
};
use super::{json, language, punkt, treebank};

/// Every instruction id, in the registry's order.
pub const INSTRUCTION_IDS: [&str; 25] = [
    "keywords:existence",
    "keywords:frequency",
    "keywords:forbidden_words",
    "keywords:letter_frequency",
    "language:response_language",
    "length_constraints:number_sentences",
    "length_constraints:number_paragraphs",
    "length_constraints:number_words",
    "length_constraints:nth_paragraph_first_word",
    "detectable_content:number_placeholders",
    "detectable_content:postscript",
    "detectable_format:number_bullet_lists",
    "detectable_format:constrained_response",
    "detectable_format:number_highlighted_sections",
    "detectable_format:multiple_sections",
    "detectable_format:json_format",
    "detectable_format:title",
    "combination:two_responses",
    "combination:repeat_prompt",
    "startend:end_checker",
    "change_case:capital_word_frequency",
    "change_case:english_capital",
    "change_case:english_lowercase",
    "punctuation:no_comma",
    "startend:quotation",
];

/// lm-eval's `_LANGUAGES` (`instructions_util.LANGUAGE_CODES`): the codes
/// `language:response_language` accepts.
pub const LANGUAGE_CODES: [&str; 30] = [
    "en", "es", "pt", "ar", "hi", "fr", "ru", "de", "ja", "it", "bn", "uk", "th", "ur", "ta", "te",
    "bg", "ko", "pl", "he", "fa", "vi", "ne", "sw", "kn", "mr", "gu", "pa", "ml", "fi",
];

/// `_COMPARISON_RELATION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    LessThan,
    AtLeast,
}

impl Relation {
    fn holds(self, count: usize, threshold: i64) -> bool {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        match self {
            Relation::LessThan => count < threshold,
            Relation::AtLeast => count >= threshold,
        }
    }
}

/// One instruction with its arguments.
#[derive(Debug, Clone)]
pub enum Instruction {
    KeywordsExistence {
        keywords: Vec<Regex>,
    },
    KeywordFrequency {
        keyword: Regex,
        frequency: i64,
        relation: Relation,
    },
    ForbiddenWords {
        words: Vec<Regex>,
    },
    LetterFrequency {
        letter: char,
        frequency: i64,
        relation: Relation,
    },
    ResponseLanguage {
        language: String,
    },
    NumberSentences {
        threshold: i64,
        relation: Relation,
    },
    NumberParagraphs {
        n: i64,
    },
    NumberWords {
        threshold: i64,
        relation: Relation,
    },
    NthParagraphFirstWord {
        n_paragraphs: i64,
        nth: i64,
        first_word: String,
    },
    NumberPlaceholders {
        n: i64,
    },
    Postscript {
        pattern: Regex,
    },
    NumberBulletLists {
        n: i64,
    },
    ConstrainedResponse,
    NumberHighlightedSections {
        n: i64,
    },
    MultipleSections {
        splitter: Regex,
        n: i64,
    },
    JsonFormat,
    Title,
    TwoResponses,
    RepeatPrompt {
        prompt: String,
    },
    EndChecker {
        end_phrase: String,
    },
    CapitalWordFrequency {
        frequency: i64,
        relation: Relation,
    },
    EnglishCapital,
    EnglishLowercase,
    NoComma,
    Quotation,
}

/// Python's truthiness of a JSON value: lm-eval drops falsy arguments
/// (`{k: v for k, v in kwargs.items() if v}`) before building an instruction.
fn truthy(value: &Json) -> bool {
    match value {
        Json::Null => false,
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Json::String(s) => !s.is_empty(),
        Json::Array(a) => !a.is_empty(),
        Json::Object(o) => !o.is_empty(),
    }
}

/// Why an instruction or its arguments cannot be checked as lm-eval would: the
/// message names the instruction and the argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstructionError {
    #[error("`{id}` takes no argument `{key}` (its arguments: {allowed})")]
    UnknownArgument {
        id: String,
        key: String,
        allowed: String,
    },
    /// lm-eval draws a random value for a missing (or falsy) argument; Podium
    /// refuses, so that a score never depends on chance.
    #[error(
        "`{id}` needs `{key}` (lm-eval would draw a random value when it is missing, 0 or empty)"
    )]
    Missing { id: String, key: String },
    #[error("`{id}`: `{key}` must be {expected}, found {found}")]
    WrongType {
        id: String,
        key: String,
        expected: &'static str,
        found: String,
    },
    #[error("`{id}`: `{key}` is {n}; lm-eval would draw a random value for a negative one")]
    Negative { id: String, key: String, n: i64 },
    #[error("`{id}`: `{key}` must be `less than` or `at least`, found `{found}`")]
    Relation {
        id: String,
        key: String,
        found: String,
    },
    #[error("`{id}`: the pattern `{pattern}` does not compile: {error}")]
    Pattern {
        id: String,
        pattern: String,
        error: crate::filters::PythonRegexError,
    },
    #[error("`{id}`: kwargs must be an object, found {found}")]
    NotAnObject { id: String, found: String },
    #[error(
        "`{id}`: `letter` must be one character, found `{letter}` (lm-eval would draw a random letter)"
    )]
    Letter { id: String, letter: String },
    #[error("`{id}`: unknown language `{language}`; lm-eval knows {}", LANGUAGE_CODES.join(", "))]
    Language { id: String, language: String },
    #[error(
        "`{id}`: `nth_paragraph` is {nth}, outside 1..={n_paragraphs} (lm-eval would draw a random one)"
    )]
    NthParagraph {
        id: String,
        nth: i64,
        n_paragraphs: i64,
    },
    #[error("unknown instruction `{0}`; the instructions are: {ids}", ids = INSTRUCTION_IDS.join(", "))]
    Unknown(String),
    #[error("`instruction_id_list` has {ids} instructions but `kwargs` has {kwargs} entries")]
    Counts { ids: usize, kwargs: usize },
    #[error("`instruction_id_list` is empty: the doc has nothing to check")]
    Empty,
    #[error("instruction {index}: {error}")]
    At {
        index: usize,
        error: Box<InstructionError>,
    },
}

/// The arguments of one instruction after lm-eval's filtering.
struct Args<'a> {
    id: &'a str,
    values: HashMap<&'a str, &'a Json>,
}

impl<'a> Args<'a> {
    fn new(
        id: &'a str,
        kwargs: &'a Map<String, Json>,
        allowed: &[&str],
    ) -> Result<Args<'a>, InstructionError> {
        let mut values = HashMap::new();
        for (key, value) in kwargs {
            if !truthy(value) {
                continue;
            }
            if !allowed.contains(&key.as_str()) {
                // lm-eval's `build_description(**kwargs)` raises TypeError here.
                return Err(InstructionError::UnknownArgument {
                    id: id.to_string(),
                    key: key.clone(),
                    allowed: if allowed.is_empty() {
                        "none".to_string()
                    } else {
                        allowed.join(", ")
                    },
                });
            }
            values.insert(key.as_str(), value);
        }
        Ok(Args { id, values })
    }

    /// lm-eval draws a random value for a missing (or falsy) argument; Podium
    /// refuses, so that a score never depends on chance.
    fn value(&self, key: &str) -> Result<&'a Json, InstructionError> {
        self.values
            .get(key)
            .copied()
            .ok_or_else(|| InstructionError::Missing {
                id: self.id.to_string(),
                key: key.to_string(),
            })
    }

    fn wrong_type(&self, key: &str, expected: &'static str, found: &Json) -> InstructionError {
        InstructionError::WrongType {
            id: self.id.to_string(),
            key: key.to_string(),
            expected,
            found: found.to_string(),
        }
    }

    fn int(&self, key: &str) -> Result<i64, InstructionError> {
        let value = self.value(key)?;
        value
            .as_i64()
            .ok_or_else(|| self.wrong_type(key, "an integer", value))
    }

    /// An integer that lm-eval replaces by a random one when negative.
    fn count(&self, key: &str) -> Result<i64, InstructionError> {
        let n = self.int(key)?;
        if n < 0 {
            return Err(InstructionError::Negative {
                id: self.id.to_string(),
                key: key.to_string(),
                n,
            });
        }
        Ok(n)
    }

    fn string(&self, key: &str) -> Result<&'a str, InstructionError> {
        let value = self.value(key)?;
        value
            .as_str()
            .ok_or_else(|| self.wrong_type(key, "text", value))
    }

    fn strings(&self, key: &str) -> Result<Vec<&'a str>, InstructionError> {
        let value = self.value(key)?;
        let items = value
            .as_array()
            .ok_or_else(|| self.wrong_type(key, "a list of text", value))?;
        items
            .iter()
            .map(|item| {
                item.as_str()
                    .ok_or_else(|| self.wrong_type(key, "a list of text", item))
            })
            .collect()
    }

    fn relation(&self, key: &str) -> Result<Relation, InstructionError> {
        match self.string(key)? {
            "less than" => Ok(Relation::LessThan),
            "at least" => Ok(Relation::AtLeast),
            other => Err(InstructionError::Relation {
                id: self.id.to_string(),
                key: key.to_string(),
                found: other.to_string(),
            }),
        }
    }
}

/// A Python pattern as lm-eval passes it to `re` (keywords are patterns there).
fn python_regex(id: &str, pattern: &str, ignore_case: bool) -> Result<Regex, InstructionError> {
    let pattern = if ignore_case {
        format!("(?i){pattern}")
    } else {
        pattern.to_string()
    };
    crate::filters::compile_python_regex(&pattern).map_err(|error| InstructionError::Pattern {
        id: id.to_string(),
        pattern,
        error,
    })
}

impl Instruction {
    /// The instruction `id` with its `kwargs` (a JSON object) as lm-eval builds it.
    pub fn parse(id: &str, kwargs: &Json) -> Result<Instruction, InstructionError> {
        let empty = Map::new();
        let kwargs = match kwargs {
            Json::Object(map) => map,
            Json::Null => &empty,
            other => {
                return Err(InstructionError::NotAnObject {
                    id: id.to_string(),
                    found: other.to_string(),
                });
            }
        };
        let args = |allowed: &[&str]| Args::new(id, kwargs, allowed);
        Ok(match id {
            "keywords:existence" => {
                let a = args(&["keywords"])?;
                let keywords = a
                    .strings("keywords")?
                    .into_iter()
                    .map(|k| python_regex(id, k, true))
                    .collect::<Result<_, _>>()?;
                Instruction::KeywordsExistence { keywords }
            }
            "keywords:frequency" => {
                let a = args(&["keyword", "frequency", "relation"])?;
                Instruction::KeywordFrequency {
                    keyword: python_regex(id, py_strip(a.string("keyword")?), true)?,
                    frequency: a.count("frequency")?,
                    relation: a.relation("relation")?,
                }
            }
            "keywords:forbidden_words" => {
                let a = args(&["forbidden_words"])?;
                let words = a
                    .strings("forbidden_words")?
                    .into_iter()
                    .map(|w| python_regex(id, &format!(r"\b{w}\b"), true))
                    .collect::<Result<_, _>>()?;
                Instruction::ForbiddenWords { words }
            }
            "keywords:letter_frequency" => {
                let a = args(&["letter", "let_frequency", "let_relation"])?;
                let letter = a.string("letter")?;
                // lm-eval takes one character whose `lower()` is in a-z, and draws a
                // random letter for anything else. Two IFEval docs (19 and 22) ask to
                // count `#` and `!`: Podium counts that character itself, which is what
                // their prompts ask for and does not depend on chance.
                let mut chars = letter.chars();
                let letter = match (chars.next(), chars.next()) {
                    (Some(c), None) => {
                        let mut lower = c.to_lowercase();
                        match (lower.next(), lower.next()) {
                            (Some(l), None) => l,
                            _ => c,
                        }
                    }
                    _ => {
                        return Err(InstructionError::Letter {
                            id: id.to_string(),
                            letter: letter.to_string(),
                        });
                    }
                };
                Instruction::LetterFrequency {
                    letter,
                    frequency: a.count("let_frequency")?,
                    relation: a.relation("let_relation")?,
                }
            }
            "language:response_language" => {
                let a = args(&["language"])?;
                let language = a.string("language")?;
                if !LANGUAGE_CODES.contains(&language) {
                    return Err(InstructionError::Language {
                        id: id.to_string(),
                        language: language.to_string(),
                    });
                }
                Instruction::ResponseLanguage {
                    language: language.to_string(),
                }
            }
            "length_constraints:number_sentences" => {
                let a = args(&["num_sentences", "relation"])?;
                Instruction::NumberSentences {
                    threshold: a.count("num_sentences")?,
                    relation: a.relation("relation")?,
                }
            }
            "length_constraints:number_paragraphs" => {
                let a = args(&["num_paragraphs"])?;
                Instruction::NumberParagraphs {
                    n: a.count("num_paragraphs")?,
                }
            }
            "length_constraints:number_words" => {
                let a = args(&["num_words", "relation"])?;
                Instruction::NumberWords {
                    threshold: a.count("num_words")?,
                    relation: a.relation("relation")?,
                }
            }
            "length_constraints:nth_paragraph_first_word" => {
                let a = args(&["num_paragraphs", "nth_paragraph", "first_word"])?;
                let n_paragraphs = a.count("num_paragraphs")?;
                let nth = a.int("nth_paragraph")?;
                if nth <= 0 || nth > n_paragraphs {
                    return Err(InstructionError::NthParagraph {
                        id: id.to_string(),
                        nth,
                        n_paragraphs,
                    });
                }
                Instruction::NthParagraphFirstWord {
                    n_paragraphs,
                    nth,
                    first_word: py_lower(a.string("first_word")?),
                }
            }
            "detectable_content:number_placeholders" => {
                let a = args(&["num_placeholders"])?;
                Instruction::NumberPlaceholders {
                    n: a.count("num_placeholders")?,
                }
            }
            "detectable_content:postscript" => {
                let a = args(&["postscript_marker"])?;
                let marker = py_strip(a.string("postscript_marker")?);
                let pattern = match marker {
                    "P.P.S" => r"\s*p\.\s?p\.\s?s.*$".to_string(),
                    "P.S." => r"\s*p\.\s?s\..*$".to_string(),
                    other => format!(r"\s*{}.*$", py_lower(other)),
                };
                Instruction::Postscript {
                    pattern: python_regex(id, &format!("(?m){pattern}"), false)?,
                }
            }
            "detectable_format:number_bullet_lists" => {
                let a = args(&["num_bullets"])?;
                Instruction::NumberBulletLists {
                    n: a.count("num_bullets")?,
                }
            }
            "detectable_format:number_highlighted_sections" => {
                let a = args(&["num_highlights"])?;
                Instruction::NumberHighlightedSections {
                    n: a.count("num_highlights")?,
                }
            }
            "detectable_format:multiple_sections" => {
                let a = args(&["section_spliter", "num_sections"])?;
                let splitter = py_strip(a.string("section_spliter")?);
                Instruction::MultipleSections {
                    splitter: python_regex(id, &format!(r"\s?{splitter}\s?\d+\s?"), false)?,
                    n: a.count("num_sections")?,
                }
            }
            "combination:repeat_prompt" => {
                let a = args(&["prompt_to_repeat"])?;
                Instruction::RepeatPrompt {
                    prompt: py_lower(py_strip(a.string("prompt_to_repeat")?)),
                }
            }
            "startend:end_checker" => {
                let a = args(&["end_phrase"])?;
                Instruction::EndChecker {
                    end_phrase: py_lower(py_strip(a.string("end_phrase")?)),
                }
            }
            "change_case:capital_word_frequency" => {
                let a = args(&["capital_frequency", "capital_relation"])?;
                Instruction::CapitalWordFrequency {
                    frequency: a.int("capital_frequency")?,
                    relation: a.relation("capital_relation")?,
                }
            }
            "detectable_format:constrained_response"
            | "detectable_format:json_format"
            | "detectable_format:title"
            | "combination:two_responses"
            | "change_case:english_capital"
            | "change_case:english_lowercase"
            | "punctuation:no_comma"
            | "startend:quotation" => {
                args(&[])?;
                match id {
                    "detectable_format:constrained_response" => Instruction::ConstrainedResponse,
                    "detectable_format:json_format" => Instruction::JsonFormat,
                    "detectable_format:title" => Instruction::Title,
                    "combination:two_responses" => Instruction::TwoResponses,
                    "change_case:english_capital" => Instruction::EnglishCapital,
                    "change_case:english_lowercase" => Instruction::EnglishLowercase,
                    "punctuation:no_comma" => Instruction::NoComma,
                    _ => Instruction::Quotation,
                }
            }
            other => return Err(InstructionError::Unknown(other.to_string())),
        })
    }

    /// `check_following(value)`.
    pub fn check(&self, value: &str) -> bool {
        match self {
            Instruction::KeywordsExistence { keywords } => {
                keywords.iter().all(|k| k.is_match(value))
            }
            Instruction::KeywordFrequency {
                keyword,
                frequency,
                relation,
            } => relation.holds(keyword.find_iter(value).count(), *frequency),
            Instruction::ForbiddenWords { words } => !words.iter().any(|w| w.is_match(value)),
            Instruction::LetterFrequency {
                letter,
                frequency,
                relation,
            } => {
                let count = py_lower(value).chars().filter(|c| c == letter).count();
                relation.holds(count, *frequency)
            }
            Instruction::ResponseLanguage { language } => language::is_language(value, language),
            Instruction::NumberSentences {
                threshold,
                relation,
            } => relation.holds(punkt::sentences(value).len(), *threshold),
            Instruction::NumberParagraphs { n } => number_paragraphs(value, *n),
            Instruction::NumberWords {
                threshold,
                relation,
            } => relation.holds(count_word_runs(value), *threshold),
            Instruction::NthParagraphFirstWord {
                n_paragraphs,
                nth,
                first_word,
            } => nth_paragraph_first_word(value, *n_paragraphs, *nth, first_word),
            Instruction::NumberPlaceholders { n } => {
                count_at_least(regex_count(&patterns().placeholder, value), *n)
            }
            Instruction::Postscript { pattern } => pattern.is_match(&py_lower(value)),
            Instruction::NumberBulletLists { n } => {
                let p = patterns();
                let count = regex_count(&p.star_bullet, value) + regex_count(&p.dash_bullet, value);
                i64::try_from(count).is_ok_and(|c| c == *n)
            }
            Instruction::ConstrainedResponse => {
                let value = py_strip(value);
                [
                    "My answer is yes.",
                    "My answer is no.",
                    "My answer is maybe.",
                ]
                .iter()
                .any(|option| value.contains(option))
            }
            Instruction::NumberHighlightedSections { n } => {
                let p = patterns();
                let single = p
                    .highlight
                    .find_iter(value)
                    .filter(|m| !py_strip(m.as_str().trim_matches('*')).is_empty())
                    .count();
                let double = p
                    .double_highlight
                    .find_iter(value)
                    .filter(|m| {
                        let inner = m.as_str();
                        let inner = inner.strip_prefix("**").unwrap_or(inner);
                        let inner = inner.strip_suffix("**").unwrap_or(inner);
                        !py_strip(inner).is_empty()
                    })
                    .count();
                count_at_least(single + double, *n)
            }
            Instruction::MultipleSections { splitter, n } => {
                count_at_least(splitter.find_iter(value).count(), *n)
            }
            Instruction::JsonFormat => {
                let mut v = py_strip(value);
                for prefix in ["```json", "```Json", "```JSON", "```"] {
                    v = v.strip_prefix(prefix).unwrap_or(v);
                }
                v = v.strip_suffix("```").unwrap_or(v);
                json::python_json_loads_ok(py_strip(v))
            }
            Instruction::Title => patterns().title.find_iter(value).any(|m| {
                let title = m.as_str().trim_start_matches('<').trim_end_matches('>');
                !py_strip(title).is_empty()
            }),
            Instruction::TwoResponses => two_responses(value),
            Instruction::RepeatPrompt { prompt } => {
                py_lower(py_strip(value)).starts_with(prompt.as_str())
            }
            Instruction::EndChecker { end_phrase } => {
                py_lower(py_strip(value).trim_matches('"')).ends_with(end_phrase.as_str())
            }
            Instruction::CapitalWordFrequency {
                frequency,
                relation,
            } => {
                let count = treebank::word_tokenize(value)
                    .iter()
                    .filter(|word| py_isupper(word))
                    .count();
                relation.holds(count, *frequency)
            }
            Instruction::EnglishCapital => py_isupper(value) && language::is_language(value, "en"),
            Instruction::EnglishLowercase => {
                py_islower(value) && language::is_language(value, "en")
            }
            Instruction::NoComma => !value.contains(','),
            Instruction::Quotation => {
                let v = py_strip(value);
                v.chars().count() > 1 && v.starts_with('"') && v.ends_with('"')
            }
        }
    }
}

fn count_at_least(count: usize, n: i64) -> bool {
    Relation::AtLeast.holds(count, n)
}

fn regex_count(regex: &Regex, value: &str) -> usize {
    regex.find_iter(value).count()
}

struct Patterns {
    placeholder: Regex,
    star_bullet: Regex,
    dash_bullet: Regex,
    highlight: Regex,
    double_highlight: Regex,
    paragraph_divider: Regex,
    title: Regex,
}

fn patterns() -> &'static Patterns {
    static PATTERNS: std::sync::LazyLock<Patterns> = std::sync::LazyLock::new(|| {
        let re = |p: &str| Regex::new(p).expect("a valid constant regex");
        Patterns {
            placeholder: re(r"\[.*?\]"),
            star_bullet: re(r"(?m)^\s*\*[^*].*$"),
            dash_bullet: re(r"(?m)^\s*-.*$"),
            highlight: re(r"\*[^\n*]*\*"),
            double_highlight: re(r"\*\*[^\n*]*\*\*"),
            paragraph_divider: re(r"\s?\*\*\*\s?"),
            title: re(r"<<[^\n]+>>"),
        }
    });
    &PATTERNS
}

/// `ParagraphChecker.check_following`.
fn number_paragraphs(value: &str, n: i64) -> bool {
    let paragraphs: Vec<&str> = patterns().paragraph_divider.split(value).collect();
    let last = paragraphs.len() - 1;
    let mut count = paragraphs.len();
    for (index, paragraph) in paragraphs.iter().enumerate() {
        if py_strip(paragraph).is_empty() {
            if index == 0 || index == last {
                count -= 1;
            } else {
                return false;
            }
        }
    }
    i64::try_from(count).is_ok_and(|c| c == n)
}

/// `ParagraphFirstWordCheck.check_following`.
fn nth_paragraph_first_word(value: &str, n_paragraphs: i64, nth: i64, first_word: &str) -> bool {
    let paragraphs: Vec<&str> = value.split("\n\n").collect();
    let count = paragraphs
        .iter()
        .filter(|p| !py_strip(p).is_empty())
        .count();
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    if nth > count {
        return false;
    }
    // 1 <= nth <= count <= paragraphs.len(), checked at parse and just above.
    let Some(paragraph) = usize::try_from(nth - 1)
        .ok()
        .and_then(|i| paragraphs.get(i))
    else {
        return false;
    };
    let paragraph = py_strip(paragraph);
    let Some(word) = py_split_whitespace(paragraph).next() else {
        return false;
    };
    let word = word.trim_start_matches('\'').trim_start_matches('"');
    let mut found = String::new();
    for letter in word.chars() {
        if matches!(letter, '.' | ',' | '?' | '!' | '\'' | '"') {
            break;
        }
        found.extend(letter.to_lowercase());
    }
    count == n_paragraphs && found == first_word
}

/// `TwoResponsesChecker.check_following`.
fn two_responses(value: &str) -> bool {
    let responses: Vec<&str> = value.split("******").collect();
    let last = responses.len() - 1;
    let mut valid = Vec::new();
    for (index, response) in responses.iter().enumerate() {
        if py_strip(response).is_empty() {
            if index != 0 && index != last {
                return false;
            }
        } else {
            valid.push(*response);
        }
    }
    valid.len() == 2 && py_strip(valid[0]) != py_strip(valid[1])
}
