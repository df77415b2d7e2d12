//! RFC 3339 UTC timestamps, written without a date crate.
//!
//! The format has fixed width (`YYYY-MM-DDTHH:MM:SS.ffffffZ`), so timestamps sort
//! as text in time order; the store relies on that to pick the latest run.

use std::time::{SystemTime, UNIX_EPOCH};

/// Formats `time` as RFC 3339 in UTC with microseconds, e.g.
/// `2023-11-14T22:13:20.000000Z`. Times before 1970 (a broken clock) clamp
/// to the epoch rather than fail, because a timestamp is never worth losing a sample.
pub fn rfc3339_utc(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let total_seconds = since_epoch.as_secs();
    let days = total_seconds / 86_400;
    let seconds_of_day = total_seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        seconds_of_day / 3600,
        seconds_of_day / 60 % 60,
        seconds_of_day % 60,
        since_epoch.subsec_micros()
    )
}

/// Seconds since the epoch of a timestamp written by [`rfc3339_utc`]
/// (`YYYY-MM-DDTHH:MM:SS.ffffffZ`); None for any other text.
pub fn parse_rfc3339_utc(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    if b.len() != 27
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[26] != b'Z'
    {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u64> {
        let digits = text.get(range)?;
        digits
            .bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| digits.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let micros = number(20..26)?;
    if year < 1970
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3600 + minute * 60 + second) as f64 + micros as f64 / 1e6)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the inverse of
/// [`civil_from_days`], same eras).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year % 400;
    let month_from_march = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

pub(crate) fn now_rfc3339() -> String {
    rfc3339_utc(SystemTime::now())
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day),
/// following Howard Hinnant's `civil_from_days` with eras of 400 years
/// (146 097 days) counted from 0000-03-01 so leap days fall at the end of a year.
fn civil_from_days(days_since_epoch: u64) -> (u64, u64, u64) {
    // 719 468 days separate 0000-03-01 from 1970-01-01.
    let days = days_since_epoch + 719_468;
    let era = days / 146_097;
    let day_of_era = days % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March: 0 = March … 11 = February.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
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
