//! UTC civil dates from Unix time, without a date crate.
//!
//! Sinks need two things: the RFC 3339 timestamp of a record
//! (`2025-10-16T14:01:05.345Z`) and the UTC day it falls on (for daily file
//! rotation). Both come from the proleptic Gregorian "days from civil"
//! conversion: shift the year to start in March so the leap day is the last
//! day of the year, then count whole 400-year eras (146 097 days each).
//! UTC has no leap seconds in Unix time, so a day is always 86 400 s.

use super::json::{push_ascii, write_u64, DEC_PAIRS};

pub const NS_PER_SEC: u64 = 1_000_000_000;
pub const NS_PER_DAY: u64 = 86_400 * NS_PER_SEC;

/// Days since 1970-01-01 of the proleptic Gregorian date `y-m-d`.
/// `m` is 1..=12 and `d` 1..=31; out-of-range days roll over arithmetically.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // year of era, 0..=399
    let mp = i64::from((m + 9) % 12); // March = 0 … February = 11
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1; // day of (March-based) year
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // day of era
    era * 146_097 + doe - 719_468 // 719 468 = days from 0000-03-01 to 1970-01-01
}

/// Inverse of [`days_from_civil`]: `(year, month 1..=12, day 1..=31)`.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365
    let mp = (5 * doy + 2) / 153; // 0..=11
                                  // The ranges above make these narrowing casts lossless.
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Number of days in `month` of `year` (0 for an invalid month).
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

pub fn is_leap_year(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// UTC day number (days since the epoch) of a Unix-nanosecond timestamp.
#[inline]
pub fn day_of_ns(ts_ns: u64) -> i64 {
    // u64::MAX / NS_PER_DAY ≈ 213 503, far inside i64.
    (ts_ns / NS_PER_DAY) as i64
}

fn write_padded(out: &mut String, v: u64, width: usize) {
    let mut digits = 1;
    let mut x = v;
    while x >= 10 {
        x /= 10;
        digits += 1;
    }
    for _ in digits..width {
        out.push('0');
    }
    write_u64(out, v);
}

/// Append `YYYY-MM-DD` for a UTC day number. Years before 0 or after 9999
/// cannot come from a `u64` nanosecond clock; they are written unpadded.
pub fn write_date(out: &mut String, days: i64) {
    let (y, m, d) = civil_from_days(days);
    if y < 0 {
        out.push('-');
    }
    write_padded(out, y.unsigned_abs(), 4);
    out.push('-');
    write_padded(out, u64::from(m), 2);
    out.push('-');
    write_padded(out, u64::from(d), 2);
}

/// Append an RFC 3339 UTC timestamp with milliseconds (truncated, not
/// rounded, so a record never appears to come from the future):
/// `2025-10-16T14:01:05.345Z`.
pub fn write_rfc3339_millis(out: &mut String, ts_ns: u64) {
    write_date(out, day_of_ns(ts_ns));
    let in_day = ts_ns % NS_PER_DAY;
    let secs = in_day / NS_PER_SEC;
    out.push('T');
    write_padded(out, secs / 3600, 2);
    out.push(':');
    write_padded(out, secs / 60 % 60, 2);
    out.push(':');
    write_padded(out, secs % 60, 2);
    out.push('.');
    write_padded(out, in_day % NS_PER_SEC / 1_000_000, 3);
    out.push('Z');
}

/// [`write_rfc3339_millis`] for a stream of timestamps: the date part is
/// computed once per UTC day and the time of day is written from digit-pair
/// tables, so a record costs no calendar arithmetic.
#[derive(Debug, Clone, Default)]
pub struct TimestampWriter {
    /// `(day, "YYYY-MM-DDT")` of the last timestamp written.
    day: Option<(i64, String)>,
}

impl TimestampWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Append the same text as [`write_rfc3339_millis`]`(out, ts_ns)`.
    #[inline]
    pub fn write(&mut self, out: &mut String, ts_ns: u64) {
        let day = day_of_ns(ts_ns);
        let prefix = match &self.day {
            Some((d, p)) if *d == day => p,
            _ => {
                let mut p = String::with_capacity(12);
                write_date(&mut p, day);
                p.push('T');
                &self.day.insert((day, p)).1
            }
        };
        out.push_str(prefix);
        let in_day = ts_ns % NS_PER_DAY;
        let secs = in_day / NS_PER_SEC;
        let millis = (in_day % NS_PER_SEC / 1_000_000) as usize;
        let pair = |v: u64| {
            let i = v as usize * 2;
            [DEC_PAIRS[i], DEC_PAIRS[i + 1]]
        };
        let (h, m, sec) = (pair(secs / 3600), pair(secs / 60 % 60), pair(secs % 60));
        let buf = [
            h[0],
            h[1],
            b':',
            m[0],
            m[1],
            b':',
            sec[0],
            sec[1],
            b'.',
            b'0' + (millis / 100) as u8,
            b'0' + (millis / 10 % 10) as u8,
            b'0' + (millis % 10) as u8,
            b'Z',
        ];
        push_ascii(out, &buf);
    }
}

/// Parse a strict `YYYY-MM-DD` into a day number; `None` if malformed or
/// not a real date (e.g. `2023-02-29`).
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = &b[r];
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            part.iter()
                .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0')),
        )
    };
    let y = i64::from(num(0..4)?);
    let m = num(5..7)?;
    let d = num(8..10)?;
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        let cases: &[((i64, u32, u32), i64)] = &[
            ((1970, 1, 1), 0),
            ((1969, 12, 31), -1),
            ((2000, 1, 1), 10_957),
            ((2000, 2, 29), 11_016), // leap: divisible by 400
            ((2000, 3, 1), 11_017),
            ((1900, 3, 1), -25_508), // 1900 is not a leap year
            ((1900, 2, 28), -25_509),
            ((2024, 2, 29), 19_782),
            ((2024, 3, 1), 19_783),
            ((2025, 10, 16), 20_377),
            ((2038, 1, 19), 24_855),
            ((2100, 3, 1), 47_541), // 2100 not leap: Feb 28 is the day before
            ((2100, 2, 28), 47_540),
            ((1600, 1, 1), -135_140),
        ];
        for &((y, m, d), days) in cases {
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
        }
    }

    #[test]
    fn round_trip_every_day_over_1000_years() {
        let start = days_from_civil(1600, 1, 1);
        let end = days_from_civil(2600, 1, 1);
        let mut prev = civil_from_days(start - 1);
        for z in start..end {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
            assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
            // consecutive days advance by exactly one calendar day
            if d > 1 {
                assert_eq!((y, m, d - 1), prev);
            } else if m > 1 {
                assert_eq!((y, m - 1, days_in_month(y, m - 1)), prev);
            } else {
                assert_eq!((y - 1, 12, 31), prev);
            }
            prev = (y, m, d);
        }
    }

    #[test]
    fn rfc3339() {
        let mut out = String::new();
        // 2025-10-16T14:01:05.345Z
        let ts = (20_377 * 86_400 + 14 * 3600 + 60 + 5) * NS_PER_SEC + 345_999_999;
        write_rfc3339_millis(&mut out, ts);
        assert_eq!(out, "2025-10-16T14:01:05.345Z");
        out.clear();
        write_rfc3339_millis(&mut out, 0);
        assert_eq!(out, "1970-01-01T00:00:00.000Z");
        out.clear();
        write_rfc3339_millis(&mut out, 951_868_799_999_000_000); // leap day last ms
        assert_eq!(out, "2000-02-29T23:59:59.999Z");
        out.clear();
        write_rfc3339_millis(&mut out, u64::MAX);
        assert_eq!(out, "2554-07-21T23:34:33.709Z");
    }

    #[test]
    fn dates_parse_strictly() {
        assert_eq!(parse_date("2024-02-29"), Some(19_782));
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("2023-13-01"), None);
        assert_eq!(parse_date("2023-00-01"), None);
        assert_eq!(parse_date("2023-01-00"), None);
        assert_eq!(parse_date("2023-1-01"), None);
        assert_eq!(parse_date("2023-01-0a"), None);
        assert_eq!(parse_date("+023-01-01"), None);
        assert_eq!(parse_date(""), None);
        let mut out = String::new();
        write_date(&mut out, 19_782);
        assert_eq!(out, "2024-02-29");
    }

    #[test]
    fn timestamp_writer_matches_write_rfc3339_millis() {
        let mut w = TimestampWriter::new();
        let day = NS_PER_DAY;
        let mut samples = vec![
            0,
            1,
            999_999,
            1_000_000,
            day - 1,
            day,
            day + 1,
            u64::MAX,
            u64::MAX - day,
        ];
        // Walk across day boundaries back and forth so the cache is exercised.
        let mut x: u64 = 1_760_623_265_345_678_901;
        for k in 0..2_000u64 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            samples.push(1_760_000_000_000_000_000 + (x % (40 * day)));
            samples.push(k * (day / 7));
        }
        for ts in samples {
            let (mut a, mut b) = (String::new(), String::new());
            w.write(&mut a, ts);
            write_rfc3339_millis(&mut b, ts);
            assert_eq!(a, b, "{ts}");
        }
    }
}
