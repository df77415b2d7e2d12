//! Separating a model's reasoning from its answer in streamed content:
//! `<think>…</think>` spans (and text before a lone `</think>`, which chat
//! templates produce when they open the tag in the prompt) are reasoning;
//! the rest is the answer that gets scored.

use std::ops::Range;

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

/// Byte ranges of the answer and of the reasoning within a content string,
/// in order. Tags are in neither; whitespace that follows a reasoning span is
/// left out of the answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ContentSplit {
    pub(crate) answer: Vec<Range<usize>>,
    pub(crate) reasoning: Vec<Range<usize>>,
}

impl ContentSplit {
    pub(crate) fn answer_text(&self, content: &str) -> String {
        self.answer.iter().map(|r| &content[r.clone()]).collect()
    }

    pub(crate) fn reasoning_text(&self, content: &str) -> String {
        let parts: Vec<&str> = self
            .reasoning
            .iter()
            .map(|r| content[r.clone()].trim())
            .filter(|part| !part.is_empty())
            .collect();
        parts.join("\n\n")
    }

    /// Whether any answer byte lies within `range`.
    pub(crate) fn has_answer_in(&self, range: &Range<usize>) -> bool {
        self.answer
            .iter()
            .any(|a| a.start < range.end && range.start < a.end)
    }
}

pub(crate) fn split_content(content: &str) -> ContentSplit {
    let mut split = ContentSplit::default();
    let mut pos = 0;
    let mut after_reasoning = false;
    if let Some(close) = content.find(CLOSE)
        && !content[..close].contains(OPEN)
    {
        push(&mut split.reasoning, 0..close);
        pos = close + CLOSE.len();
        after_reasoning = true;
    }
    while pos < content.len() {
        let answer_start = if after_reasoning {
            skip_whitespace(content, pos)
        } else {
            pos
        };
        let Some(open) = content[answer_start..].find(OPEN).map(|i| answer_start + i) else {
            push(&mut split.answer, answer_start..content.len());
            break;
        };
        push(&mut split.answer, answer_start..open);
        let inner_start = open + OPEN.len();
        match content[inner_start..].find(CLOSE) {
            Some(i) => {
                push(&mut split.reasoning, inner_start..inner_start + i);
                pos = inner_start + i + CLOSE.len();
                after_reasoning = true;
            }
            None => {
                push(&mut split.reasoning, inner_start..content.len());
                break;
            }
        }
    }
    split
}

fn push(ranges: &mut Vec<Range<usize>>, range: Range<usize>) {
    if !range.is_empty() {
        ranges.push(range);
    }
}

fn skip_whitespace(text: &str, from: usize) -> usize {
    text[from..]
        .char_indices()
        .find(|(_, c)| !c.is_whitespace())
        .map_or(text.len(), |(i, _)| from + i)
}

/// Cut `text` before the first occurrence of any non-empty stop string.
pub(crate) fn cut_at_stop(text: &mut String, stops: &[String]) {
    if let Some(cut) = podium_core::first_stop(text, stops) {
        text.truncate(cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(content: &str, answer: &str, reasoning: &str) {
        let split = split_content(content);
        assert_eq!(split.answer_text(content), answer, "answer of {content:?}");
        assert_eq!(
            split.reasoning_text(content),
            reasoning,
            "reasoning of {content:?}"
        );
    }

    #[test]
    fn think_spans() {
        check("The answer is 4.", "The answer is 4.", "");
        check(
            "<think>2+2=4</think>\n\nThe answer is 4.",
            "The answer is 4.",
            "2+2=4",
        );
        check("Hmm, 2+2=4</think>\n4", "4", "Hmm, 2+2=4");
        check("<think>still thinking", "", "still thinking");
        check("A <think>x</think> B <think>y</think>C", "A B C", "x\n\ny");
        check("", "", "");
    }

    #[test]
    fn answer_ranges_locate_answer_bytes() {
        let content = "<think>r</think>ans";
        let split = split_content(content);
        assert!(!split.has_answer_in(&(0..16)));
        assert!(split.has_answer_in(&(15..17)));
    }

    #[test]
    fn stops_cut_at_the_earliest() {
        let mut text = "one\n\nQuestion: two".to_string();
        cut_at_stop(
            &mut text,
            &["Question:".into(), "\n\n".into(), String::new()],
        );
        assert_eq!(text, "one");
    }
}
