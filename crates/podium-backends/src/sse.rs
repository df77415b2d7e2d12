//! An incremental decoder for server-sent events (the `text/event-stream`
//! format that streamed completions use). Each event carries the instant its
//! last bytes arrived, taken by the caller before any parsing, so speed metrics
//! measure the network and not our JSON decoding.

use std::time::Instant;

/// One dispatched event: its `event:` name (if any) and its joined `data:` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub(crate) event: Option<String>,
    pub(crate) data: String,
    /// When the chunk that completed this event arrived.
    pub(crate) at: Instant,
}

/// The stream ended in the middle of an event (bytes after the last blank line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Truncated {
    /// The start of what was left, for the error message.
    pub(crate) partial: String,
}

#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    /// Bytes of an incomplete line.
    line: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
}

impl SseDecoder {
    pub(crate) fn new() -> SseDecoder {
        SseDecoder::default()
    }

    /// Feed one chunk of the body, received at `at`; complete events are appended to `out`.
    pub(crate) fn push(&mut self, chunk: &[u8], at: Instant, out: &mut Vec<SseEvent>) {
        let mut rest = chunk;
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&rest[..newline]);
            rest = &rest[newline + 1..];
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            self.take_line(&line, at, out);
        }
        self.line.extend_from_slice(rest);
    }

    /// The body ended: an unterminated final event means the stream was cut.
    pub(crate) fn finish(self) -> Result<(), Truncated> {
        let leftover_line = String::from_utf8_lossy(&self.line).trim().to_string();
        if leftover_line.is_empty() && self.data.is_none() && self.event.is_none() {
            return Ok(());
        }
        let mut partial = self.data.unwrap_or_default();
        partial.push_str(&leftover_line);
        Err(Truncated {
            partial: crate::http::truncate_for_message(&partial, 120),
        })
    }

    fn take_line(&mut self, line: &[u8], at: Instant, out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                out.push(SseEvent {
                    event: self.event.take(),
                    data,
                    at,
                });
            }
            self.event = None;
            return;
        }
        if line.first() == Some(&b':') {
            return; // A comment (servers send these as keep-alives).
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            // `id` and `retry` matter only to browsers that reconnect.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Decoded = (Vec<(Option<String>, String)>, Result<(), Truncated>);

    fn decode(chunks: &[&str]) -> Decoded {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        for chunk in chunks {
            decoder.push(chunk.as_bytes(), Instant::now(), &mut events);
        }
        let events = events.into_iter().map(|e| (e.event, e.data)).collect();
        (events, decoder.finish())
    }

    fn check(chunks: &[&str], expected: &[(Option<&str>, &str)]) {
        let (events, end) = decode(chunks);
        let expected: Vec<(Option<String>, String)> = expected
            .iter()
            .map(|(e, d)| (e.map(str::to_string), d.to_string()))
            .collect();
        assert_eq!(events, expected, "{chunks:?}");
        assert_eq!(end, Ok(()), "{chunks:?}");
    }

    #[test]
    fn events_split_anywhere_and_crlf() {
        check(&["data: {\"a\":1}\n\n"], &[(None, "{\"a\":1}")]);
        check(
            &["da", "ta: x\r", "\n\r\n", "data: y\n", "\n"],
            &[(None, "x"), (None, "y")],
        );
        check(
            &["event: message_start\ndata: {}\n\n: ping\n\nevent: ping\n\n"],
            &[(Some("message_start"), "{}")],
        );
        check(&["data: a\ndata: b\n\n"], &[(None, "a\nb")]);
        check(&["data:[DONE]\n\n"], &[(None, "[DONE]")]);
    }

    #[test]
    fn a_cut_event_is_reported() {
        let (events, end) = decode(&["data: {\"a\":1}\n\ndata: {\"b\""]);
        assert_eq!(events.len(), 1);
        assert_eq!(end.unwrap_err().partial, "data: {\"b\"");
        let (_, end) = decode(&["data: {\"a\":1}\n"]);
        assert!(end.is_err());
    }

    #[test]
    fn events_carry_the_arrival_of_their_last_chunk() {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        let first = Instant::now();
        decoder.push(b"data: x", first, &mut events);
        let second = first + std::time::Duration::from_millis(5);
        decoder.push(b"\n\n", second, &mut events);
        assert_eq!(events[0].at, second);
    }
}
