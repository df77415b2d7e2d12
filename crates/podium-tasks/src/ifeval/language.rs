//! Language identification for `language:response_language`,
//! `change_case:english_capital` and `change_case:english_lowercase`.
//!
//! lm-eval calls `langdetect.detect` (a port of Shuyo's language-detection, a
//! naive Bayes over character n-grams with random sampling, unseeded in lm-eval,
//! so its answer on short or mixed text can change from run to run). Podium uses
//! the `whatlang` crate (trigram profiles, deterministic). Both agree on ordinary
//! prose in one language; they can differ on very short or mixed-language texts,
//! and whatlang knows no Swahili (`sw`), so a response asked to be in Swahili
//! never passes. docs/CROSSCHECK.md counts the disagreements.

/// The ISO 639-1 code lm-eval's prompts use, for whatlang's languages.
fn iso_639_1(lang: whatlang::Lang) -> &'static str {
    use whatlang::Lang::*;
    match lang {
        Eng => "en",
        Spa => "es",
        Por => "pt",
        Ara => "ar",
        Hin => "hi",
        Fra => "fr",
        Rus => "ru",
        Deu => "de",
        Jpn => "ja",
        Ita => "it",
        Ben => "bn",
        Ukr => "uk",
        Tha => "th",
        Urd => "ur",
        Tam => "ta",
        Tel => "te",
        Bul => "bg",
        Kor => "ko",
        Pol => "pl",
        Heb => "he",
        Pes => "fa",
        Vie => "vi",
        Nep => "ne",
        Kan => "kn",
        Mar => "mr",
        Guj => "gu",
        Pan => "pa",
        Mal => "ml",
        Fin => "fi",
        Cmn => "zh-cn",
        Nld => "nl",
        Swe => "sv",
        Dan => "da",
        Nob => "no",
        Tur => "tr",
        Ces => "cs",
        Ron => "ro",
        Hun => "hu",
        Ind => "id",
        other => other.code(),
    }
}

/// What `langdetect.detect(text)` would answer: `None` where it raises (a text
/// with no letters: lm-eval then counts the instruction as followed).
pub fn detect(text: &str) -> Option<&'static str> {
    if !text.chars().any(char::is_alphabetic) {
        return None;
    }
    // whatlang finds no language in some texts with letters (e.g. symbols of a
    // script it has no profile for); langdetect always names one there, so this
    // is not `None`: it is a language no instruction asks for.
    Some(whatlang::detect_lang(text).map_or("unknown", iso_639_1))
}

/// lm-eval's `langdetect.detect(value) == language`, with its exception counted as a pass.
pub(super) fn is_language(text: &str, language: &str) -> bool {
    detect(text).is_none_or(|found| found == language)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_plain_prose() {
        let cases = [
            (
                "The quick brown fox jumps over the lazy dog near the river bank.",
                "en",
            ),
            (
                "El rápido zorro marrón salta sobre el perro perezoso cerca del río.",
                "es",
            ),
            (
                "Der schnelle braune Fuchs springt über den faulen Hund am Fluss.",
                "de",
            ),
            (
                "Быстрая коричневая лиса прыгает через ленивую собаку у реки.",
                "ru",
            ),
        ];
        for (text, code) in cases {
            assert_eq!(detect(text), Some(code), "{text:?}");
        }
        assert_eq!(detect("12345 !!! ..."), None);
        assert!(is_language("", "fr"));
        assert!(!is_language(
            "This is plainly written in English, not French.",
            "fr"
        ));
    }
}
