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
