//! Markdown code fences in a model's text: judges' verdict parsers read the
//! judge's own words and skip what it quotes inside ```` ``` ```` or `~~~`
//! blocks (CommonMark's fences).

/// The lines of `text` that are not fence markers, each with whether it
/// stands inside a fenced code block. One pass, no allocation.
pub fn lines_outside_fences(text: &str) -> impl Iterator<Item = (&str, bool)> {
    // The open fence's character and length: a fence closes on a line of at
    // least as many of the same character and nothing else.
    let mut fence: Option<(u8, usize)> = None;
    text.lines().filter_map(move |line| {
        let trimmed = line.trim();
        if let Some((ch, len)) = fence_marker(trimmed) {
            match fence {
                None => {
                    fence = Some((ch, len));
                    return None;
                }
                Some((open_ch, open_len))
                    if ch == open_ch && len >= open_len && trimmed.len() == len =>
                {
                    fence = None;
                    return None;
                }
                Some(_) => {}
            }
        }
        Some((line, fence.is_some()))
    })
}

/// The fence a line opens or closes: its character and how many (3 or more
/// backticks or tildes at the start).
fn fence_marker(trimmed: &str) -> Option<(u8, usize)> {
    let first = *trimmed.as_bytes().first()?;
    if first != b'`' && first != b'~' {
        return None;
    }
    let len = trimmed.bytes().take_while(|&b| b == first).count();
    (len >= 3).then_some((first, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fenced_lines_are_marked_and_markers_dropped() {
        let text = "a\n```rust\nb\n~~~\nc\n````\nd\n~~~~\ne\n~~~~\nf";
        let lines: Vec<(&str, bool)> = lines_outside_fences(text).collect();
        // `~~~` inside a backtick fence is text; a longer closing fence closes.
        assert_eq!(
            lines,
            [
                ("a", false),
                ("b", true),
                ("~~~", true),
                ("c", true),
                ("d", false),
                ("e", true),
                ("f", false)
            ]
        );
    }
}
