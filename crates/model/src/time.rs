//! UTC calendar fields from [`Micros`], computed by `chrono` (proleptic
//! Gregorian, no time-zone database), for Hive partitions and alert
//! timestamps.
//!
//! An `i64` of microseconds reaches about ±292,000 years; chrono's calendar
//! reaches years -262143 to 262142 ([`CIVIL_MIN`]..=[`CIVIL_MAX`]).
//! [`civil`] says `None` outside that range. The outputs must always carry a
//! date, so [`civil_clamped`] and [`eve_timestamp`] write the nearest instant
//! chrono can represent instead: an earlier instant as [`CIVIL_MIN`]
//! (`-262143-01-01T00:00:00.000000`), a later one as [`CIVIL_MAX`]
//! (`262142-12-31T23:59:59.999999`). Such a time in a capture is garbage
//! anyway; the fallback only keeps every line and path well formed and
//! never panics.

use crate::Micros;
use chrono::{DateTime, Datelike, Timelike, Utc};

/// The first instant with calendar fields: `-262143-01-01T00:00:00Z`.
pub const CIVIL_MIN: Micros = DateTime::<Utc>::MIN_UTC.timestamp_micros();
/// The last instant with calendar fields: `262142-12-31T23:59:59.999999Z`.
pub const CIVIL_MAX: Micros = DateTime::<Utc>::MAX_UTC.timestamp_micros();

/// Calendar fields of a UTC instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub micros: u32,
}

impl Civil {
    fn of(t: DateTime<Utc>) -> Civil {
        Civil {
            year: i64::from(t.year()),
            month: t.month(),
            day: t.day(),
            hour: t.hour(),
            minute: t.minute(),
            second: t.second(),
            micros: t.timestamp_subsec_micros(),
        }
    }
}

/// Calendar fields of `t`, or `None` outside [`CIVIL_MIN`]..=[`CIVIL_MAX`].
pub fn civil(t: Micros) -> Option<Civil> {
    DateTime::from_timestamp_micros(t).map(Civil::of)
}

/// Calendar fields of `t`, or of the nearest instant chrono can represent
/// when `t` is outside [`CIVIL_MIN`]..=[`CIVIL_MAX`] (see the module notes).
pub fn civil_clamped(t: Micros) -> Civil {
    let dt = DateTime::from_timestamp_micros(t).unwrap_or(if t < CIVIL_MIN {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    });
    Civil::of(dt)
}

/// `2026-11-24T21:56:57.123456+0000`, as Suricata's EVE `timestamp`; an
/// instant chrono cannot represent is written as the nearest one it can
/// ([`civil_clamped`]).
pub fn eve_timestamp(t: Micros) -> String {
    let c = civil_clamped(t);
    if (0..=9999).contains(&c.year) && c.micros < 1_000_000 {
        // Four alert fields each, tens of thousands of alerts on a busy
        // capture: the digits written directly, not through the formatter
        // (the same bytes as the format below, which a test holds).
        let mut b = *b"0000-00-00T00:00:00.000000+0000";
        let mut put = |at: usize, width: usize, mut v: u32| {
            for i in (at..at + width).rev() {
                b[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, c.year as u32);
        put(5, 2, c.month);
        put(8, 2, c.day);
        put(11, 2, c.hour);
        put(14, 2, c.minute);
        put(17, 2, c.second);
        put(20, 6, c.micros);
        return String::from_utf8_lossy(&b).into_owned();
    }
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+0000",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.micros
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calendar code this module had before chrono (Howard Hinnant's
    /// `civil_from_days`), kept as an independent reference: chrono must
    /// give the same fields wherever it can represent the instant.
    fn hinnant(t: Micros) -> Civil {
        let secs = t.div_euclid(1_000_000);
        let micros = t.rem_euclid(1_000_000) as u32;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        Civil {
            year: if m <= 2 { y + 1 } else { y },
            month: m,
            day: d,
            hour: (sod / 3600) as u32,
            minute: (sod % 3600 / 60) as u32,
            second: (sod % 60) as u32,
            micros,
        }
    }

    #[test]
    fn known_instants() {
        // Written by the code before chrono, for these inputs.
        for (t, text) in [
            (0, "1970-01-01T00:00:00.000000+0000"),
            (-1, "1969-12-31T23:59:59.999999+0000"),
            // Leap days: 2016 (divisible by 4) and 2000 (by 400).
            (1_456_749_296_789_000, "2016-02-29T12:34:56.789000+0000"),
            (951_782_400_000_000, "2000-02-29T00:00:00.000000+0000"),
            // The last instant of year 9999 and the first of 10000.
            (253_402_300_799_999_999, "9999-12-31T23:59:59.999999+0000"),
            (253_402_300_800_000_000, "10000-01-01T00:00:00.000000+0000"),
            // Year 1, and the last instant of year -1 (year 0 between).
            (-62_135_596_800_000_000, "0001-01-01T00:00:00.000000+0000"),
            (-62_167_219_200_000_001, "-001-12-31T23:59:59.999999+0000"),
            // chrono's last and first instants.
            (
                8_210_266_876_799_999_999,
                "262142-12-31T23:59:59.999999+0000",
            ),
            (
                -8_334_601_228_800_000_000,
                "-262143-01-01T00:00:00.000000+0000",
            ),
        ] {
            assert_eq!(eve_timestamp(t), text, "{t}");
            assert_eq!(civil(t), Some(hinnant(t)), "{t}");
        }
        let c = civil(1_795_996_800_000_000).unwrap(); // 2026-11-30T00:00:00Z
        assert_eq!((c.year, c.month, c.day, c.hour), (2026, 11, 30, 0));
        // 1900 is not a leap year: the day after Feb 28 is Mar 1.
        let c = civil(-2_203_891_200_000_000).unwrap(); // 1900-03-01T00:00:00Z
        assert_eq!((c.year, c.month, c.day), (1900, 3, 1));
    }

    #[test]
    fn eve_timestamp_digits_are_the_formatters() {
        // The direct digits against the format they replace, across years
        // 0..=9999 (where they are used) and a little beyond.
        let reference = |t: Micros| {
            let c = civil_clamped(t);
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+0000",
                c.year, c.month, c.day, c.hour, c.minute, c.second, c.micros
            )
        };
        let lo = -62_167_219_200_000_000i64 - 86_400_000_000; // 0000-01-01 less a day
        let hi = 253_402_300_800_000_000i64 + 86_400_000_000; // 10000-01-01 plus a day
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..300_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let t = match i % 3 {
                0 => lo + (x % (hi - lo) as u64) as i64,
                // Near now, every field moving.
                1 => 1_700_000_000_000_000 + (x % 400_000_000_000_000) as i64,
                _ => (i as i64 - 150_000) * 999_983,
            };
            assert_eq!(eve_timestamp(t), reference(t), "{t}");
        }
    }

    #[test]
    fn chrono_range_and_the_fallback_outside_it() {
        assert_eq!(CIVIL_MAX, 8_210_266_876_799_999_999);
        assert_eq!(CIVIL_MIN, -8_334_601_228_800_000_000);
        assert!(civil(CIVIL_MAX).is_some() && civil(CIVIL_MIN).is_some());
        assert_eq!(civil(CIVIL_MAX + 1), None);
        assert_eq!(civil(CIVIL_MIN - 1), None);
        assert_eq!(civil(i64::MAX), None);
        assert_eq!(civil(i64::MIN), None);
        // Outside, the nearest representable instant; never a panic.
        for t in [CIVIL_MAX + 1, i64::MAX - 1, i64::MAX] {
            assert_eq!(civil_clamped(t), hinnant(CIVIL_MAX), "{t}");
            assert_eq!(eve_timestamp(t), "262142-12-31T23:59:59.999999+0000");
        }
        for t in [CIVIL_MIN - 1, i64::MIN + 1, i64::MIN] {
            assert_eq!(civil_clamped(t), hinnant(CIVIL_MIN), "{t}");
            assert_eq!(eve_timestamp(t), "-262143-01-01T00:00:00.000000+0000");
        }
        assert_eq!(civil_clamped(0), hinnant(0));
    }

    #[test]
    fn chrono_agrees_with_the_old_calendar_across_its_range() {
        // Deterministic spread over chrono's whole range (splitmix64), and
        // every day boundary of 1969-2100 with the microsecond before it.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let span = (CIVIL_MAX as i128 - CIVIL_MIN as i128) as u128;
        for _ in 0..200_000 {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            let t = (CIVIL_MIN as i128 + ((u128::from(z) * span) >> 64) as i128) as i64;
            assert_eq!(civil(t), Some(hinnant(t)), "{t}");
        }
        for day in -365..47_848i64 {
            let t = day * 86_400_000_000;
            assert_eq!(civil(t), Some(hinnant(t)), "{t}");
            assert_eq!(civil(t - 1), Some(hinnant(t - 1)), "{}", t - 1);
        }
    }
}
