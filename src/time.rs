//! Instants as unix seconds: parsing the command line's `T`, UTC dates, and the injected clock.
//!
//! The whole pipeline works in unix seconds (`i64`), the API's own unit; timestamps only
//! become Arrow microseconds at the Parquet boundary.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// Seconds in a UTC day, the width of one output partition.
pub const DAY: i64 = 86_400;

/// Where "now" comes from. Production passes [`system_clock`]; tests pass a fixed or
/// steerable one so that nothing deep in the logic reads the wall clock.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock, in unix seconds.
pub fn system_clock() -> Clock {
    Arc::new(|| Utc::now().timestamp())
}

/// Unix seconds as the microseconds of the Parquet timestamp columns (saturating).
pub fn micros_from_secs(secs: i64) -> i64 {
    secs.saturating_mul(1_000_000)
}

/// Parses a command-line instant: `2021-10-12` (midnight UTC), an RFC 3339 time, or unix seconds.
pub fn parse_instant(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<i64>().map_err(|e| format!("`{t}` is not a usable unix time: {e}"));
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp());
    }
    DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp())
        .map_err(|_| format!("`{t}` is not a date (2021-10-12), an RFC 3339 time or unix seconds"))
}

/// Parses `+08:00` / `-05:30` / `Z` into a fixed offset.
pub fn parse_offset(text: &str) -> Result<FixedOffset, String> {
    let t = text.trim();
    if t == "Z" || t == "UTC" || t == "+00:00" {
        return Ok(FixedOffset::east_opt(0).expect("zero offset"));
    }
    let bad = || format!("`{t}` is not a UTC offset like \"+08:00\"");
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)
}

/// Parses the vendor's older `"YYYY-MM-DD hh:mm:ss"` local-time form into unix seconds.
pub fn parse_local(text: &str, zone: FixedOffset) -> Option<i64> {
    let text = text.trim();
    let naive = match exact_local(text) {
        Some(naive) => naive,
        None => NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").ok()?,
    };
    zone.from_local_datetime(&naive).single().map(|d| d.timestamp())
}

/// The exact 19-byte form with every field in range, read without chrono's format parser,
/// which reads its format string again at every call: 0.9 % fewer instructions for a 100k
/// backfill, whose simulator sends most times as numbers (BENCHMARKS.md). Anything else (a leap second, unpadded or signed
/// fields) is `None` and goes to chrono, so both agree on every text (a property test).
fn exact_local(text: &str) -> Option<NaiveDateTime> {
    let b: &[u8; 19] = text.as_bytes().try_into().ok()?;
    if b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| {
        b[range].iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
    };
    let date = NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)?;
    date.and_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)
}

/// A zone other than `zone` in which local-time strings read as `times` (first, last;
/// read in `zone`) would all fall inside `window` (start, end; the end second included):
/// the nearest such whole hour, else half or quarter hour. `None` when no zone fits.
pub fn zone_that_fits(zone: FixedOffset, times: (i64, i64), window: (i64, i64)) -> Option<FixedOffset> {
    // Read in zone z' instead of z, a local time L gives L - z' = t + (z - z'): a shift d.
    let (lo, hi) = (window.0 - times.0, window.1 - times.1);
    let z = i64::from(zone.local_minus_utc());
    [3600, 1800, 900].into_iter().find_map(|step| {
        let mut shifts: Vec<i64> = (-28..=28).map(|k| k * step).filter(|d| *d != 0 && lo <= *d && *d <= hi).collect();
        shifts.sort_by_key(|d| d.abs());
        shifts.into_iter().find_map(|d| FixedOffset::east_opt(i32::try_from(z - d).ok()?))
    })
}

/// Formats unix seconds in the vendor's local-time form (the simulator speaks it too).
pub fn format_local(secs: i64, zone: FixedOffset) -> String {
    zone.timestamp_opt(secs, 0).single().map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()
}

/// The UTC date of an instant, `YYYY-MM-DD`: the partition key.
pub fn utc_date(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "invalid-date".to_string())
}

/// A readable UTC rendering for logs and messages.
pub fn show(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| secs.to_string())
}

/// Midnight UTC at or before `secs`.
pub fn floor_day(secs: i64) -> i64 {
    secs.div_euclid(DAY) * DAY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_means_midnight_utc() {
        assert_eq!(parse_instant("2021-10-12"), Ok(1_633_996_800));
    }

    #[test]
    fn rfc3339_and_unix_seconds_are_accepted() {
        assert_eq!(parse_instant("2021-10-12T08:00:00+08:00"), Ok(1_633_996_800));
        assert_eq!(parse_instant("1633996800"), Ok(1_633_996_800));
        assert!(parse_instant("yesterday").unwrap_err().contains("yesterday"));
    }

    #[test]
    fn local_times_use_the_configured_offset() {
        let cn = parse_offset("+08:00").unwrap();
        assert_eq!(parse_local("2021-10-12 08:00:00", cn), Some(1_633_996_800));
        assert_eq!(format_local(1_633_996_800, cn), "2021-10-12 08:00:00");
        assert!(parse_offset("8").is_err());
        assert_eq!(parse_offset("-05:30").unwrap().local_minus_utc(), -(5 * 3600 + 1800));
    }

    /// `parse_local` as it was, through chrono alone: what the fast reading must agree with.
    fn by_chrono(t: &str, zone: FixedOffset) -> Option<i64> {
        let naive = NaiveDateTime::parse_from_str(t.trim(), "%Y-%m-%d %H:%M:%S").ok()?;
        zone.from_local_datetime(&naive).single().map(|d| d.timestamp())
    }

    #[test]
    fn the_fast_reading_of_local_times_agrees_with_chrono_on_edges() {
        let cn = parse_offset("+08:00").unwrap();
        for t in [
            "2024-02-29 23:59:59",
            "2023-02-29 00:00:00",
            "2021-10-12 24:00:00",
            "2021-10-12 23:59:60",
            "2021-13-01 00:00:00",
            "0000-01-01 00:00:00",
            "2021-1-12 08:00:00",
            "2021-10-12T08:00:00",
            " 2021-10-12 08:00:00 ",
            "2021-10-12 08:00:0a",
            "+2021-10-12 08:00:0",
            "2021-10-12 08:00:00.5",
        ] {
            assert_eq!(parse_local(t, cn), by_chrono(t, cn), "{t:?}");
        }
        assert_eq!(exact_local("2021-10-12 23:59:60"), None, "a leap second is left to chrono");
    }

    proptest::proptest! {
        #[test]
        fn local_times_read_fast_read_as_chrono_reads_them(
            t in "[0-9+ -]{0,2}[0-9]{1,4}-[0-9]{1,2}-[0-9]{1,2}[ T][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}[ .0-9]{0,2}"
        ) {
            let cn = parse_offset("+08:00").unwrap();
            proptest::prop_assert_eq!(parse_local(&t, cn), by_chrono(&t, cn));
        }
    }

    #[test]
    fn the_zone_that_local_times_fit_is_found() {
        let cn = parse_offset("+08:00").unwrap();
        // Times written in UTC, read as +08:00: eight hours early for a window of 10:00-11:00.
        let (start, end) = (1_633_996_800 + 10 * 3600, 1_633_996_800 + 11 * 3600);
        let times = (start - 8 * 3600 + 60, end - 8 * 3600 - 60);
        assert_eq!(zone_that_fits(cn, times, (start, end)), Some(parse_offset("+00:00").unwrap()));
        assert_eq!(zone_that_fits(cn, (start, end + 5 * 3600), (start, end)), None, "a spread wider than the window");
    }

    #[test]
    fn partition_dates_are_utc() {
        assert_eq!(utc_date(1_633_996_800 - 1), "2021-10-11");
        assert_eq!(floor_day(1_633_996_800 + 5), 1_633_996_800);
        assert_eq!(floor_day(-1), -DAY);
    }
}
