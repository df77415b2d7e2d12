//! RFC 3339 UTC timestamps in the store's one fixed-width form,
//! `YYYY-MM-DDTHH:MM:SS.ffffffZ`, written and read with `chrono`. Being
//! fixed-width, they sort as text in time order; the store relies on that to
//! pick the latest run, and `--as-of` compares against them.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, NaiveDateTime, Utc};

/// The one layout the store writes.
const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// Formats `time` as RFC 3339 in UTC with microseconds, e.g.
/// `2023-11-14T22:13:20.000000Z`. Times before 1970 (a broken clock) clamp
/// to the epoch rather than fail, because a timestamp is never worth losing a sample.
pub fn rfc3339_utc(time: SystemTime) -> String {
    let time = if time < UNIX_EPOCH { UNIX_EPOCH } else { time };
    DateTime::<Utc>::from(time).format(FORMAT).to_string()
}

/// Seconds since the epoch of a timestamp written by [`rfc3339_utc`]
/// (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, years from 1970); None for any other text.
pub fn parse_rfc3339_utc(text: &str) -> Option<f64> {
    // The exact width and layout first: chrono's `%.f` accepts any number of
    // digits, and the store's text order needs exactly six.
    let b = text.as_bytes();
    if b.len() != 27 || b[19] != b'.' || b[26] != b'Z' || !b[20..26].iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let time = NaiveDateTime::parse_from_str(text, FORMAT).ok()?.and_utc();
    if time.timestamp() < 0 {
        return None;
    }
    Some(time.timestamp_micros() as f64 / 1e6)
}

pub(crate) fn now_rfc3339() -> String {
    rfc3339_utc(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn check(seconds: u64, micros: u32, expected: &str) {
        let time = UNIX_EPOCH + Duration::new(seconds, micros * 1000);
        assert_eq!(rfc3339_utc(time), expected);
        let parsed = parse_rfc3339_utc(expected).unwrap();
        assert!((parsed - (seconds as f64 + f64::from(micros) / 1e6)).abs() < 1e-6);
    }

    #[test]
    fn parsing_round_trips_and_rejects_other_text() {
        for days in (0..80_000).step_by(37) {
            let seconds = days * 86_400 + 45_296;
            let text = rfc3339_utc(UNIX_EPOCH + Duration::from_secs(seconds));
            assert_eq!(parse_rfc3339_utc(&text), Some(seconds as f64), "{text}");
        }
        for bad in [
            "",
            "2024-12-31T23:59:59Z",
            "2024-13-01T00:00:00.000000Z",
            "2024-12-31 23:59:59.000000Z",
            "2024-12-3lT23:59:59.000000Z",
            "2024-12-31T23:59:59.000000+",
        ] {
            assert_eq!(parse_rfc3339_utc(bad), None, "{bad}");
        }
    }

    #[test]
    fn known_instants() {
        check(0, 0, "1970-01-01T00:00:00.000000Z");
        // 2000-02-29 is a leap day in a century year divisible by 400: 11 016 days.
        check(951_782_400, 0, "2000-02-29T00:00:00.000000Z");
        check(1_700_000_000, 123_456, "2023-11-14T22:13:20.123456Z");
        // Last second of 2024 (a leap year): 2025-01-01 is day 20 089.
        check(20_089 * 86_400 - 1, 999_999, "2024-12-31T23:59:59.999999Z");
        // 2100 is not a leap year: day 47 540 is 2100-02-28 and the next is 2100-03-01.
        check(47_540 * 86_400 + 86_399, 0, "2100-02-28T23:59:59.000000Z");
        check(47_541 * 86_400, 0, "2100-03-01T00:00:00.000000Z");
    }

    #[test]
    fn before_epoch_clamps() {
        let time = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(rfc3339_utc(time), "1970-01-01T00:00:00.000000Z");
    }
}
