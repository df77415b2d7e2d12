//! Pre-tokenizers for BPE vocabularies: the rules that cut text into words before
//! merges run. A GGUF file stores only the pre-tokenizer's *name*
//! (`tokenizer.ggml.pre`), so this module keeps the name → rules table, following
//! llama.cpp's `llama-vocab.cpp` and the hand-written matchers of its `unicode.cpp`.

use crate::stl_regex::StlRegex;
use crate::unicode::{is_letter, is_mark, is_number, is_whitespace};

/// One pass of splitting. Passes run in order; each pass splits every piece the
/// previous pass produced, so a later pass never joins text across an earlier cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SplitPass {
    /// `\p{N}`: every number character becomes its own piece; the text between
    /// numbers stays as it is.
    EachNumber,
    /// GPT-2's pattern:
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    Gpt2,
    /// Llama 3's pattern: case-insensitive contractions, letters with one
    /// leading non-letter, numbers in runs of at most three, punctuation runs
    /// with trailing newlines, and newline-aware whitespace.
    Llama3,
    /// Qwen 2's pattern: Llama 3's with every number character on its own.
    Qwen2,
    /// Qwen 3.5's pattern: Qwen 2's with combining marks (`\p{M}`) counted as
    /// letters.
    Qwen35,
    /// `[^\n]+|[\n]+`: runs of newlines and runs of anything else (Gemma 4).
    Newlines,
    /// A regex llama.cpp runs through `std::regex`.
    Stl(StlRegex),
}

/// Everything a pre-tokenizer name decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PreTokenizerRules {
    pub(crate) passes: &'static [SplitPass],
    /// A word that is itself a token is emitted whole, skipping merges.
    pub(crate) ignore_merges: bool,
    /// Default for "add BOS" when the GGUF does not say.
    pub(crate) default_add_bos: bool,
    /// Words are spelled in GPT-2's byte alphabet before merging. Without it
    /// (Gemma 4) spaces become `▁` before splitting, words merge as raw UTF-8, and
    /// bytes outside every token fall back to `<0xNN>` tokens.
    pub(crate) byte_encode: bool,
    /// A word of newlines only that is itself a token is emitted whole (Gemma 4).
    pub(crate) whole_newline_words: bool,
}

impl PreTokenizerRules {
    /// The rules for a `tokenizer.ggml.pre` name, or `None` when Podium does not
    /// know that name.
    pub(crate) fn for_name(name: &str) -> Option<PreTokenizerRules> {
        use SplitPass::{EachNumber, Gpt2, Llama3, Newlines, Qwen2, Qwen35, Stl};
        const GPT2: &[SplitPass] = &[Gpt2];
        const DIGITS_THEN_GPT2: &[SplitPass] = &[EachNumber, Gpt2];
        const LLAMA3: &[SplitPass] = &[Llama3];
        const QWEN2: &[SplitPass] = &[Qwen2];
        const QWEN35: &[SplitPass] = &[Qwen35];
        const DEEPSEEK_LLM: &[SplitPass] = &[
            Stl(StlRegex::CrOrLf),
            Stl(StlRegex::DeepseekLlmLetters),
            Stl(StlRegex::DeepseekLlmPunctuation),
            Stl(StlRegex::TrailingWhitespace),
            Stl(StlRegex::Cjk),
            Stl(StlRegex::Numbers),
        ];
        const DEEPSEEK_CODER: &[SplitPass] = &[
            Stl(StlRegex::CrOrLf),
            Stl(StlRegex::SpaceLetters),
            Stl(StlRegex::SpacePunctuation),
            Stl(StlRegex::Cjk),
            // `\p{N}`: the same cut as llama.cpp's std::regex, by hand.
            EachNumber,
        ];
        const FALCON: &[SplitPass] = &[
            Stl(StlRegex::FalconPunctuation),
            Gpt2,
            Stl(StlRegex::ThreeDigits),
        ];
        const DEFAULT: &[SplitPass] = &[
            Stl(StlRegex::DefaultPunctuation),
            Gpt2,
            Stl(StlRegex::Numbers),
            Stl(StlRegex::ThreeDigits),
        ];
        const NEWLINES: &[SplitPass] = &[Newlines];
        let rules = |passes, ignore_merges, default_add_bos| PreTokenizerRules {
            passes,
            ignore_merges,
            default_add_bos,
            byte_encode: true,
            whole_newline_words: false,
        };
        Some(match name {
            // llama.cpp's fallback for a GPT-2 style file that names no pre-tokenizer.
            "default" => rules(DEFAULT, false, false),
            "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es"
            | "jina-v2-de" | "a.x-4.0" | "mellum" | "modern-bert" | "jina-v1-en"
            | "jina-v2-code" | "roberta-bpe" | "mpt" | "olmo" | "jais" | "trillion"
            | "granite-docling" | "exaone4" => rules(GPT2, false, false),
            "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone"
            | "minerva-7b" | "mellum2" => rules(DIGITS_THEN_GPT2, false, false),
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral"
            | "midm-2.0" | "lfm2" | "jina-v5-nano" => rules(LLAMA3, true, true),
            "dbrx" | "smaug-bpe" => rules(LLAMA3, false, false),
            "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "megrez" | "stablelm2"
            | "hunyuan" | "solar-open" | "grok-2" => rules(QWEN2, false, false),
            "qwen35" => rules(QWEN35, false, false),
            "deepseek-llm" => rules(DEEPSEEK_LLM, false, false),
            "deepseek-coder" => rules(DEEPSEEK_CODER, false, false),
            "falcon" => rules(FALCON, false, false),
            // Gemma 4's SentencePiece-style BPE; llama.cpp always adds BOS for it.
            "gemma4" | "granite-embed-multi-311m" => PreTokenizerRules {
                passes: NEWLINES,
                ignore_merges: false,
                default_add_bos: true,
                byte_encode: false,
                whole_newline_words: true,
            },
            _ => return None,
        })
    }

    /// Cuts `text` into words, in order; the words concatenate back to `text`.
    pub(crate) fn split<'t>(&self, text: &'t str) -> Vec<&'t str> {
        let mut pieces = vec![text];
        let mut next = Vec::new();
        for pass in self.passes {
            next.clear();
            for piece in &pieces {
                match pass {
                    SplitPass::EachNumber => split_each_number(piece, &mut next),
                    SplitPass::Gpt2 => split_gpt2(piece, &mut next),
                    SplitPass::Llama3 => split_llama3(piece, &mut next),
                    SplitPass::Qwen2 => split_llama3_like::<1, false>(piece, &mut next),
                    SplitPass::Qwen35 => split_llama3_like::<1, true>(piece, &mut next),
                    SplitPass::Newlines => split_newline_runs(piece, &mut next),
                    SplitPass::Stl(regex) => regex.split(piece, &mut next),
                }
            }
            std::mem::swap(&mut pieces, &mut next);
        }
        pieces
    }
}

/// Splits off every number character as its own piece.
fn split_each_number<'t>(text: &'t str, out: &mut Vec<&'t str>) {
    let mut run_start = 0;
    for (offset, c) in text.char_indices() {
        if is_number(c) {
            if run_start < offset {
                out.push(&text[run_start..offset]);
            }
            let end = offset + c.len_utf8();
            out.push(&text[offset..end]);
            run_start = end;
        }
    }
    if run_start < text.len() {
        out.push(&text[run_start..]);
    }
}

/// Cuts runs of `\n` from runs of anything else.
fn split_newline_runs<'t>(text: &'t str, out: &mut Vec<&'t str>) {
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let newline = bytes[start] == b'\n';
        let len = bytes[start..]
            .iter()
            .position(|&b| (b == b'\n') != newline)
            .unwrap_or(bytes.len() - start);
        out.push(&text[start..start + len]);
        start += len;
    }
}

/// The character classes the hand-written matchers test. `End` stands for "past
/// the end of the piece", which none of the classes match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Number,
    Whitespace,
    Other,
    End,
}

/// A piece as a list of characters with their byte offsets, so the matchers can
/// look ahead by character index the way llama.cpp does.
struct Cursor<'t> {
    text: &'t str,
    chars: Vec<(usize, char)>,
    /// Character index where the next word starts.
    word_start: usize,
}

impl<'t> Cursor<'t> {
    fn new(text: &'t str) -> Self {
        Cursor {
            text,
            chars: text.char_indices().collect(),
            word_start: 0,
        }
    }

    fn len(&self) -> usize {
        self.chars.len()
    }

    fn char_at(&self, idx: usize) -> Option<char> {
        self.chars.get(idx).map(|&(_, c)| c)
    }

    fn class_at(&self, idx: usize) -> Class {
        match self.char_at(idx) {
            None => Class::End,
            Some(c) if is_letter(c) => Class::Letter,
            Some(c) if is_number(c) => Class::Number,
            Some(c) if is_whitespace(c) => Class::Whitespace,
            Some(_) => Class::Other,
        }
    }

    fn is_mark_at(&self, idx: usize) -> bool {
        self.char_at(idx).is_some_and(is_mark)
    }

    fn is_whitespace_at(&self, idx: usize) -> bool {
        self.char_at(idx).is_some_and(is_whitespace)
    }

    fn byte_offset(&self, idx: usize) -> usize {
        self.chars
            .get(idx)
            .map_or(self.text.len(), |&(offset, _)| offset)
    }

    /// Ends the current word at character index `end`; returns its length in
    /// characters (zero-length words are not emitted). Inlined: it runs once per
    /// word, and out of line it costs Llama 3 style splits several percent.
    #[inline]
    fn emit(&mut self, end: usize, out: &mut Vec<&'t str>) -> usize {
        let len = end - self.word_start;
        if len > 0 {
            out.push(&self.text[self.byte_offset(self.word_start)..self.byte_offset(end)]);
        }
        self.word_start = end;
        len
    }

    /// Length of an English contraction (`'s`, `'RE`, ...) at `pos`, if any.
    fn contraction_len(&self, pos: usize, case_insensitive: bool) -> Option<usize> {
        if self.char_at(pos) != Some('\'') || pos + 1 >= self.len() {
            return None;
        }
        let fold = |c: Option<char>| match c {
            Some(c) if case_insensitive => Some(c.to_ascii_lowercase()),
            other => other,
        };
        let next = fold(self.char_at(pos + 1));
        if matches!(next, Some('s' | 't' | 'm' | 'd')) {
            return Some(2);
        }
        if pos + 2 < self.len() {
            let next_next = fold(self.char_at(pos + 2));
            if matches!(
                (next, next_next),
                (Some('r'), Some('e')) | (Some('v'), Some('e')) | (Some('l'), Some('l'))
            ) {
                return Some(3);
            }
        }
        None
    }

    /// Number of whitespace characters from `pos` on.
    fn whitespace_run(&self, pos: usize) -> usize {
        let mut n = 0;
        while self.is_whitespace_at(pos + n) {
            n += 1;
        }
        n
    }
}

/// GPT-2's pattern, matched by hand like llama.cpp does (the regex needs a
/// look-ahead that the `regex` crate does not have).
fn split_gpt2<'t>(text: &'t str, out: &mut Vec<&'t str>) {
    let mut cur = Cursor::new(text);
    let mut pos = 0;
    while pos < cur.len() {
        if let Some(len) = cur.contraction_len(pos, false) {
            pos += cur.emit(pos + len, out);
            continue;
        }
        let c = cur.char_at(pos);
        let leading_space = usize::from(c == Some(' '));
        let class = cur.class_at(pos + leading_space);
        // ` ?\p{L}+`, ` ?\p{N}+` and ` ?[^\s\p{L}\p{N}]+`: one optional space,
        // then a run of one class.
        if matches!(class, Class::Letter | Class::Number | Class::Other) {
            pos += leading_space;
            while cur.class_at(pos) == class {
                pos += 1;
            }
            cur.emit(pos, out);
            continue;
        }
        let n_spaces = cur.whitespace_run(pos);
        // `\s+(?!\S)`: a run of spaces followed by text leaves its last space to
        // start the next word.
        if n_spaces > 1 && pos + n_spaces < cur.len() {
            pos += n_spaces - 1;
            cur.emit(pos, out);
            continue;
        }
        if n_spaces > 0 {
            pos += n_spaces;
            cur.emit(pos, out);
            continue;
        }
        pos += 1;
        cur.emit(pos, out);
    }
}

/// Llama 3's pattern, matched by hand like llama.cpp does. (`split_llama3_like::<3,
/// false>` cuts the same, but measured 10-17% slower on Llama 3's vocabulary, so the
/// hot Llama 3 path keeps its own copy.)
fn split_llama3<'t>(text: &'t str, out: &mut Vec<&'t str>) {
    let mut cur = Cursor::new(text);
    let mut pos = 0;
    while pos < cur.len() {
        if let Some(len) = cur.contraction_len(pos, true) {
            pos += cur.emit(pos + len, out);
            continue;
        }
        let c = cur.char_at(pos);
        let class = cur.class_at(pos);
        // `[^\r\n\p{L}\p{N}]?\p{L}+`
        if !matches!(c, Some('\r' | '\n'))
            && class != Class::Number
            && (class == Class::Letter || cur.class_at(pos + 1) == Class::Letter)
        {
            pos += 1;
            while cur.class_at(pos) == Class::Letter {
                pos += 1;
            }
            cur.emit(pos, out);
            continue;
        }
        // `\p{N}{1,3}`
        if class == Class::Number {
            let mut run_start = pos;
            while cur.class_at(pos) == Class::Number {
                pos += 1;
                if pos - run_start >= 3 {
                    cur.emit(pos, out);
                    run_start = pos;
                }
            }
            cur.emit(pos, out);
            continue;
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        let leading_space = usize::from(c == Some(' '));
        if cur.class_at(pos + leading_space) == Class::Other {
            pos += leading_space;
            while cur.class_at(pos) == Class::Other {
                pos += 1;
            }
            while matches!(cur.char_at(pos), Some('\r' | '\n')) {
                pos += 1;
            }
            cur.emit(pos, out);
            continue;
        }
        let n_spaces = cur.whitespace_run(pos);
        // `\s*[\r\n]+`: whitespace up to and including the last newline.
        let last_newline_end = (0..n_spaces)
            .rev()
            .find(|&k| matches!(cur.char_at(pos + k), Some('\r' | '\n')))
            .map(|k| pos + k + 1);
        if let Some(end) = last_newline_end {
            pos = end;
            cur.emit(pos, out);
            continue;
        }
        if n_spaces > 1 && pos + n_spaces < cur.len() {
            pos += n_spaces - 1;
            cur.emit(pos, out);
            continue;
        }
        if n_spaces > 0 {
            pos += n_spaces;
            cur.emit(pos, out);
            continue;
        }
        pos += 1;
        cur.emit(pos, out);
    }
}

/// Llama 3's pattern with numbers in runs of at most `MAX_DIGITS` (Qwen 2: 1), and with
/// `MARKS` combining marks counted as letters (Qwen 3.5's `[\p{L}\p{M}]+`).
fn split_llama3_like<'t, const MAX_DIGITS: usize, const MARKS: bool>(
    text: &'t str,
    out: &mut Vec<&'t str>,
) {
    let mut cur = Cursor::new(text);
    let letterish = |cur: &Cursor<'_>, idx: usize| {
        cur.class_at(idx) == Class::Letter || (MARKS && cur.is_mark_at(idx))
    };
    let other = |cur: &Cursor<'_>, idx: usize| {
        cur.class_at(idx) == Class::Other && !(MARKS && cur.is_mark_at(idx))
    };
    let mut pos = 0;
    while pos < cur.len() {
        if let Some(len) = cur.contraction_len(pos, true) {
            pos += cur.emit(pos + len, out);
            continue;
        }
        let c = cur.char_at(pos);
        let class = cur.class_at(pos);
        // `[^\r\n\p{L}\p{N}]?\p{L}+`
        if !matches!(c, Some('\r' | '\n'))
            && class != Class::Number
            && (class == Class::Letter
                || (MARKS && cur.is_mark_at(pos))
                || letterish(&cur, pos + 1))
        {
            pos += 1;
            while letterish(&cur, pos) {
                pos += 1;
            }
            cur.emit(pos, out);
            continue;
        }
        // `\p{N}{1,MAX_DIGITS}`
        if class == Class::Number {
            let mut run_start = pos;
            while cur.class_at(pos) == Class::Number {
                pos += 1;
                if pos - run_start >= MAX_DIGITS {
                    cur.emit(pos, out);
                    run_start = pos;
                }
            }
            cur.emit(pos, out);
            continue;
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        let leading_space = usize::from(c == Some(' '));
        if other(&cur, pos + leading_space) {
            pos += leading_space;
            while other(&cur, pos) {
                pos += 1;
            }
            while matches!(cur.char_at(pos), Some('\r' | '\n')) {
                pos += 1;
            }
            cur.emit(pos, out);
            continue;
        }
        let n_spaces = cur.whitespace_run(pos);
        // `\s*[\r\n]+`: whitespace up to and including the last newline.
        let last_newline_end = (0..n_spaces)
            .rev()
            .find(|&k| matches!(cur.char_at(pos + k), Some('\r' | '\n')))
            .map(|k| pos + k + 1);
        if let Some(end) = last_newline_end {
            pos = end;
            cur.emit(pos, out);
            continue;
        }
        if n_spaces > 1 && pos + n_spaces < cur.len() {
            pos += n_spaces - 1;
            cur.emit(pos, out);
            continue;
        }
        if n_spaces > 0 {
            pos += n_spaces;
            cur.emit(pos, out);
            continue;
        }
        pos += 1;
        cur.emit(pos, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, text: &str, expected: &[&str]) {
        let rules = PreTokenizerRules::for_name(name).expect("known pre-tokenizer");
        assert_eq!(rules.split(text), expected, "{name} on {text:?}");
    }

    #[test]
    fn smollm_splits_digits_one_by_one() {
        check(
            "smollm",
            "In 1492, x",
            &["In", " ", "1", "4", "9", "2", ",", " x"],
        );
        check("smollm", "3.14", &["3", ".", "1", "4"]);
    }

    #[test]
    fn gpt2_keeps_the_last_space_for_the_next_word() {
        check("gpt-2", "a   b", &["a", "  ", " b"]);
        check("gpt-2", "trailing  ", &["trailing", "  "]);
        check("gpt-2", "\ttabs", &["\t", "tabs"]);
        check("gpt-2", "x\n\n y", &["x", "\n\n", " y"]);
    }

    #[test]
    fn gpt2_contractions_are_lower_case_only() {
        check("gpt-2", "it's WE'RE", &["it", "'s", " WE", "'", "RE"]);
        check("gpt-2", "don't", &["don", "'t"]);
    }

    #[test]
    fn gpt2_groups_punctuation_with_one_leading_space() {
        check("gpt-2", "x == y!!", &["x", " ==", " y", "!!"]);
        check("gpt-2", "🙂 ok", &["🙂", " ok"]);
    }

    #[test]
    fn llama3_groups_digits_by_three_and_keeps_newlines_together() {
        check("llama3", "1234567", &["123", "456", "7"]);
        check(
            "llama3",
            "Hello WORLD's\n\n  x",
            &["Hello", " WORLD", "'s", "\n\n", " ", " x"],
        );
    }

    #[test]
    fn unknown_names_have_no_rules() {
        assert_eq!(PreTokenizerRules::for_name("no-such-pre"), None);
    }
}
