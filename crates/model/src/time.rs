//! UTC calendar fields from [`Micros`] (Howard Hinnant's `civil_from_days`),
//! for Hive partitions and alert timestamps; no time-zone database needed.

use crate::Micros;

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

pub fn civil(t: Micros) -> Civil {
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

/// `2026-11-24T21:56:57.123456+0000`, as Suricata's EVE `timestamp`.
pub fn eve_timestamp(t: Micros) -> String {
    let c = civil(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+0000",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.micros
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(eve_timestamp(0), "1970-01-01T00:00:00.000000+0000");
        // 2016-02-29T12:34:56.789Z, a leap day.
        assert_eq!(
            eve_timestamp(1_456_749_296_789_000),
            "2016-02-29T12:34:56.789000+0000"
        );
        assert_eq!(eve_timestamp(-1), "1969-12-31T23:59:59.999999+0000");
        let c = civil(1_795_996_800_000_000); // 2026-11-30T00:00:00Z
        assert_eq!((c.year, c.month, c.day, c.hour), (2026, 11, 30, 0));
    }
}
