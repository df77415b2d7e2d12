//! An incremental decoder for server-sent events (the `text/event-stream`
//! format that streamed completions use). Each event carries the instant its
//! last bytes arrived, taken by the caller before any parsing, so speed metrics
//! measure the network and not our JSON decoding.
//!
//! The decoder reuses its buffers: lines are read in place from the received chunk
//! (copied only when a line spans two chunks), and each event is handed to a callback
//! by reference, so a stream costs no allocation per line or per event.
//!
//! A line, and an event's joined `data:` lines, may hold at most `max_event_bytes`
//! (the endpoint option of that name): a server sending an endless line or event
//! gets an [`EventTooLarge`] error, not all of our memory.

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

/// A line or an event was longer than the decoder's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EventTooLarge {
    pub(crate) max_event_bytes: usize,
}

impl std::fmt::Display for EventTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a server-sent event (or one of its lines) is larger than {} bytes (the endpoint option max_event_bytes)",
            self.max_event_bytes
        )
    }
}

#[derive(Debug)]
pub(crate) struct SseDecoder {
    /// The most bytes a line (without its `\n`) or an event's data may hold.
    max_event_bytes: usize,
    /// Bytes of a line that started in an earlier chunk.
    line: Vec<u8>,
    /// The event being assembled; handed out by reference, then cleared for reuse.
    current: SseEvent,
    /// Whether `current` has had a `data:` line.
    has_data: bool,
}

impl SseDecoder {
    pub(crate) fn new(max_event_bytes: usize) -> SseDecoder {
        SseDecoder {
            max_event_bytes,
            line: Vec::new(),
            current: SseEvent {
                event: None,
                data: String::new(),
                at: Instant::now(),
            },
            has_data: false,
        }
    }

    /// Feed one chunk of the body, received at `at`, calling `on_event` for each event
    /// it completes. `on_event` returns `Ok(true)` to stop: the rest of the chunk is
    /// then left unread and `push` returns `Ok(true)`. A line or an event larger
    /// than the limit is an error (the decoder must not be fed after one).
    pub(crate) fn push<E: From<EventTooLarge>>(
        &mut self,
        chunk: &[u8],
        at: Instant,
        on_event: &mut impl FnMut(&SseEvent) -> Result<bool, E>,
    ) -> Result<bool, E> {
        let mut rest = chunk;
        while let Some(newline) = memchr::memchr(b'\n', rest) {
            if self.line.len() + newline > self.max_event_bytes {
                return Err(self.too_large().into());
            }
            let stop = if self.line.is_empty() {
                self.take_line(&rest[..newline], at, on_event)?
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&rest[..newline]);
                let stop = self.take_line(&line, at, on_event)?;
                line.clear();
                self.line = line; // keeps its capacity
                stop
            };
            rest = &rest[newline + 1..];
            if stop {
                return Ok(true);
            }
        }
        if self.line.len() + rest.len() > self.max_event_bytes {
            return Err(self.too_large().into());
        }
        self.line.extend_from_slice(rest);
        Ok(false)
    }

    fn too_large(&self) -> EventTooLarge {
        EventTooLarge {
            max_event_bytes: self.max_event_bytes,
        }
    }

    /// The body ended: an unterminated final event means the stream was cut.
    pub(crate) fn finish(self) -> Result<(), Truncated> {
        let leftover_line = String::from_utf8_lossy(&self.line).trim().to_string();
        if leftover_line.is_empty() && !self.has_data && self.current.event.is_none() {
            return Ok(());
        }
        let mut partial = if self.has_data {
            self.current.data
        } else {
            String::new()
        };
        partial.push_str(&leftover_line);
        Err(Truncated {
            partial: crate::secrets::excerpt(&partial, 120),
        })
    }

    fn take_line<E: From<EventTooLarge>>(
        &mut self,
        line: &[u8],
        at: Instant,
        on_event: &mut impl FnMut(&SseEvent) -> Result<bool, E>,
    ) -> Result<bool, E> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            let mut stop = false;
            if self.has_data {
                self.current.at = at;
                stop = on_event(&self.current)?;
                self.current.data.clear();
                self.has_data = false;
            }
            self.current.event = None;
            return Ok(stop);
        }
        if line.first() == Some(&b':') {
            return Ok(false); // A comment (servers send these as keep-alives).
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"event" => {
                // Invalid UTF-8 grows when replaced (one byte to three): check after.
                let name = String::from_utf8_lossy(value);
                if name.len() > self.max_event_bytes {
                    return Err(self.too_large().into());
                }
                self.current.event = Some(name.into_owned());
            }
            b"data" => {
                let text = String::from_utf8_lossy(value);
                if self.current.data.len() + 1 + text.len() > self.max_event_bytes {
                    return Err(self.too_large().into());
                }
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(&text);
                self.has_data = true;
            }
            // `id` and `retry` matter only to browsers that reconnect.
            _ => {}
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Decoded = (Vec<(Option<String>, String)>, Result<(), Truncated>);

    fn collect(decoder: &mut SseDecoder, chunk: &[u8], at: Instant, into: &mut Vec<SseEvent>) {
        let stopped = decoder.push(chunk, at, &mut |event: &SseEvent| {
            into.push(event.clone());
            Ok::<bool, EventTooLarge>(false)
        });
        assert_eq!(stopped, Ok(false));
    }

    fn decode(chunks: &[&str]) -> Decoded {
        let mut decoder = SseDecoder::new(1024);
        let mut events = Vec::new();
        for chunk in chunks {
            collect(&mut decoder, chunk.as_bytes(), Instant::now(), &mut events);
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
        // An empty data line still makes an event; a line with no colon is a field name.
        check(&["data\n\ndata:\n\n"], &[(None, ""), (None, "")]);
        // Invalid UTF-8 is replaced, not dropped.
        check(&["data: a\u{fffd}b\n\n"], &[(None, "a\u{fffd}b")]);
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let body = "event: e1\ndata: {\"x\": \"é\"}\r\n\r\n: keep-alive\n\ndata: one\ndata: two\n\ndata: [DONE]\n\n";
        let whole = decode(&[body]);
        for split in 0..=body.len() {
            let (a, b) = body.as_bytes().split_at(split);
            let mut decoder = SseDecoder::new(1024);
            let mut events = Vec::new();
            collect(&mut decoder, a, Instant::now(), &mut events);
            collect(&mut decoder, b, Instant::now(), &mut events);
            let events: Vec<_> = events.into_iter().map(|e| (e.event, e.data)).collect();
            assert_eq!((events, decoder.finish()), whole, "split at {split}");
        }
        assert_eq!(whole.0.len(), 3);
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
    fn stopping_leaves_the_rest_unread() {
        let mut decoder = SseDecoder::new(1024);
        let mut seen = Vec::new();
        let stopped = decoder.push(
            b"data: 1\n\ndata: 2\n\ndata: 3\n\n",
            Instant::now(),
            &mut |event: &SseEvent| {
                seen.push(event.data.clone());
                Ok::<bool, EventTooLarge>(event.data == "2")
            },
        );
        assert_eq!(stopped, Ok(true));
        assert_eq!(seen, ["1", "2"]);
    }

    #[test]
    fn events_carry_the_arrival_of_their_last_chunk() {
        let mut decoder = SseDecoder::new(1024);
        let mut events = Vec::new();
        let first = Instant::now();
        collect(&mut decoder, b"data: x", first, &mut events);
        let second = first + std::time::Duration::from_millis(5);
        collect(&mut decoder, b"\n\n", second, &mut events);
        assert_eq!(events[0].at, second);
    }

    /// Regression (issue 9): an endless line or event was buffered without a bound
    /// (4.4 GB against a hostile endpoint); now it is an error at the limit.
    #[test]
    fn an_endless_line_or_event_is_refused_at_the_limit() {
        let feed = |chunks: &[&[u8]]| {
            let mut decoder = SseDecoder::new(64);
            let mut n_events = 0;
            for chunk in chunks {
                let pushed = decoder.push(chunk, Instant::now(), &mut |_: &SseEvent| {
                    n_events += 1;
                    Ok::<bool, EventTooLarge>(false)
                });
                if let Err(err) = pushed {
                    return (n_events, Err(err));
                }
            }
            (n_events, Ok(()))
        };
        let limit = Err(EventTooLarge {
            max_event_bytes: 64,
        });
        let long = [b'x'; 40];
        // A line that never ends, fed in pieces: refused once it passes 64 bytes.
        assert_eq!(
            feed(&[b"data: ok\n\n", b"data: ", &long, &long, &long]),
            (1, limit)
        );
        // The same line whole in one chunk, ended or not.
        let line = [b"data: ".as_slice(), &long, &long, b"\n\n"].concat();
        assert_eq!(feed(&[&line]), (0, limit));
        // Many short data lines of one event that never ends.
        let short = b"data: 0123456789\n".repeat(6);
        assert_eq!(feed(&[&short]), (0, limit));
        // At the limit is fine.
        let fits = [b"data: ".as_slice(), &[b'y'; 58], b"\n\n"].concat();
        assert_eq!(feed(&[&fits]), (1, Ok(())));
    }
}
