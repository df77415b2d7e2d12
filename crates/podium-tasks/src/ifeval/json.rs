//! Whether Python's `json.loads` accepts a text (CPython's C scanner, strict
//! mode). It differs from RFC 8259 parsers such as serde_json: `NaN`,
//! `Infinity` and `-Infinity` are values, numbers of any size are accepted,
//! lone surrogate escapes (`"\ud800"`) are accepted, and only space, tab, CR and
//! LF are whitespace. Nesting is followed with an explicit stack, so depth costs
//! no recursion (CPython raises `RecursionError` near 1000 levels, which
//! lm-eval's checker does not catch; Podium answers as if no limit existed).

/// Whether `json.loads(text)` returns without raising `ValueError`.
pub(super) fn python_json_loads_ok(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut parser = Parser { bytes, at: 0 };
    parser.skip_ws();
    if !parser.value() {
        return false;
    }
    parser.skip_ws();
    parser.at == bytes.len()
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// What an open container expects next.
#[derive(Clone, Copy, PartialEq)]
enum Open {
    Array,
    Object,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, literal: &[u8]) -> bool {
        if self.bytes[self.at..].starts_with(literal) {
            self.at += literal.len();
            true
        } else {
            false
        }
    }

    /// One value, containers included.
    fn value(&mut self) -> bool {
        let mut stack: Vec<Open> = Vec::new();
        loop {
            // A value starts here.
            match self.peek() {
                Some(b'[') => {
                    self.at += 1;
                    self.skip_ws();
                    if self.peek() == Some(b']') {
                        self.at += 1;
                    } else {
                        stack.push(Open::Array);
                        continue;
                    }
                }
                Some(b'{') => {
                    self.at += 1;
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        self.at += 1;
                    } else {
                        if !self.key() {
                            return false;
                        }
                        stack.push(Open::Object);
                        continue;
                    }
                }
                _ => {
                    if !self.scalar() {
                        return false;
                    }
                }
            }
            // A value ended: close containers or go on to the next element.
            loop {
                let Some(&open) = stack.last() else {
                    return true;
                };
                self.skip_ws();
                match (open, self.peek()) {
                    (Open::Array, Some(b']')) | (Open::Object, Some(b'}')) => {
                        self.at += 1;
                        stack.pop();
                    }
                    (Open::Array, Some(b',')) => {
                        self.at += 1;
                        self.skip_ws();
                        break;
                    }
                    (Open::Object, Some(b',')) => {
                        self.at += 1;
                        self.skip_ws();
                        if !self.key() {
                            return false;
                        }
                        break;
                    }
                    _ => return false,
                }
            }
        }
    }

    /// `"key"` then `:`, leaving the position at the value.
    fn key(&mut self) -> bool {
        if self.peek() != Some(b'"') || !self.string() {
            return false;
        }
        self.skip_ws();
        if self.peek() != Some(b':') {
            return false;
        }
        self.at += 1;
        self.skip_ws();
        true
    }

    fn scalar(&mut self) -> bool {
        match self.peek() {
            Some(b'"') => self.string(),
            Some(b'n') => self.eat(b"null"),
            Some(b't') => self.eat(b"true"),
            Some(b'f') => self.eat(b"false"),
            Some(b'N') => self.eat(b"NaN"),
            Some(b'I') => self.eat(b"Infinity"),
            Some(b'-') if self.bytes[self.at..].starts_with(b"-Infinity") => {
                self.at += 9;
                true
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => false,
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?`, where a fraction or
    /// exponent that does not complete is simply not part of the number.
    fn number(&mut self) -> bool {
        let digits = |p: &Parser<'_>, from: usize| {
            p.bytes[from..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
        };
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.at += digits(self, self.at),
            _ => return false,
        }
        if self.peek() == Some(b'.') {
            let n = digits(self, self.at + 1);
            if n > 0 {
                self.at += 1 + n;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            let mut at = self.at + 1;
            if matches!(self.bytes.get(at), Some(b'-' | b'+')) {
                at += 1;
            }
            let n = digits(self, at);
            if n > 0 {
                self.at = at + n;
            }
        }
        true
    }

    /// A string starting at `"`: no raw control characters, valid escapes.
    fn string(&mut self) -> bool {
        self.at += 1;
        loop {
            match self.peek() {
                None => return false,
                Some(b'"') => {
                    self.at += 1;
                    return true;
                }
                Some(0..=0x1f) => return false,
                Some(b'\\') => {
                    self.at += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.at += 1
                        }
                        Some(b'u') => {
                            let hex = self.bytes.get(self.at + 1..self.at + 5);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return false;
                            }
                            self.at += 5;
                        }
                        _ => return false,
                    }
                }
                Some(_) => self.at += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_python_accepts() {
        // (text, json.loads succeeds) per CPython 3.11.
        let cases = [
            ("{}", true),
            ("[]", true),
            (" {\"a\": [1, 2.5e-3, -0, true, null]} ", true),
            ("NaN", true),
            ("[-Infinity, Infinity]", true),
            ("1e400", true),
            ("\"\\ud800\"", true),
            ("\"tab\there\"", false),
            ("{\"a\" 1}", false),
            ("[1,]", false),
            ("{\"a\":1,}", false),
            ("01", false),
            ("1.", false),
            ("-", false),
            ("\u{feff}{}", false),
            ("{}\u{a0}", false),
            ("'a'", false),
            ("", false),
            ("\"\\x41\"", false),
            ("\"\\u12G4\"", false),
        ];
        for (text, ok) in cases {
            assert_eq!(python_json_loads_ok(text), ok, "{text:?}");
        }
    }

    #[test]
    fn deep_nesting_costs_no_recursion() {
        let text = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
        assert!(python_json_loads_ok(&text));
        assert!(!python_json_loads_ok(&"[".repeat(200_000)));
    }
}
