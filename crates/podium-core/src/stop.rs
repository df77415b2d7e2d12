//! Stop strings, in one place for every engine that generates text (the local
//! backend, serve-model's streaming, answers from a server that ignored them).
//! Empty stop strings are ignored everywhere.

/// Byte offset of the earliest occurrence of any non-empty stop string.
pub fn first_stop<S: AsRef<str>>(text: &str, stops: &[S]) -> Option<usize> {
    stops
        .iter()
        .map(AsRef::as_ref)
        .filter(|stop| !stop.is_empty())
        .filter_map(|stop| text.find(stop))
        .min()
}

/// How much of `text` (which holds no stop string) can be shown while more
/// text may follow: everything but the longest tail that is the start of a
/// stop string and could still grow into one.
pub fn shown_len<S: AsRef<str>>(text: &str, stops: &[S]) -> usize {
    let mut shown = text.len();
    for stop in stops.iter().map(AsRef::as_ref).filter(|s| !s.is_empty()) {
        if let Some((i, _)) = text[..shown]
            .char_indices()
            .find(|&(i, _)| stop.starts_with(&text[i..shown]))
        {
            shown = i;
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_cut_and_hold_back() {
        assert_eq!(first_stop("a\n\nb</s>", &["</s>", "\n\n"]), Some(1));
        assert_eq!(first_stop("abc", &["", "x"]), None);
        assert_eq!(shown_len("hello\n", &["\n\n"]), 5);
        assert_eq!(shown_len("hello", &["\n\n"]), 5);
        assert_eq!(shown_len("say Q", &["Question:"]), 4);
        assert_eq!(shown_len("say Qu", &["Question:", "u"]), 4);
        assert_eq!(shown_len("é", &["éa"]), 0);
        assert_eq!(shown_len("abc", &[""]), 3);
    }
}
