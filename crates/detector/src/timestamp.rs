//! Liberal timestamp parsing shared by the CSV path and the Azure-compatible API.
//!
//! Accepted, all read as UTC unless they carry an offset:
//! * RFC 3339 / ISO 8601 with offset: `2024-03-01T12:00:00Z`, `2024-03-01T12:00:00.250+02:00`
//!   (a space instead of `T` is accepted too);
//! * ISO 8601 without offset: `2024-03-01T12:00:00`, `2024-03-01 12:00:00.5`,
//!   `2024-03-01 12:00`, and a bare date `2024-03-01` (midnight);
//! * integer epoch: seconds if |n| < 10^11, milliseconds if < 10^14, microseconds if
//!   < 10^17, nanoseconds otherwise; a decimal number is epoch seconds (`1700000000.25`).

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// Parses `text` to milliseconds since the Unix epoch, or `None` if it is none of the
/// accepted forms (or lies beyond what milliseconds in an i64 can hold).
pub fn parse_timestamp_ms(text: &str) -> Option<i64> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(n) = t.parse::<i64>() {
        let a = n.unsigned_abs();
        return Some(if a < 100_000_000_000 {
            n.checked_mul(1000)?
        } else if a < 100_000_000_000_000 {
            n
        } else if a < 100_000_000_000_000_000 {
            n / 1000
        } else {
            n / 1_000_000
        });
    }
    if t.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+')
        && let Ok(secs) = t.parse::<f64>()
    {
        let ms = (secs * 1000.0).round();
        return (ms.is_finite() && ms.abs() < 9.0e15).then_some(ms as i64);
    }
    let normalized = if t.len() > 10 && t.as_bytes()[10] == b' ' {
        let mut s = t.to_owned();
        s.replace_range(10..11, "T");
        s
    } else {
        t.to_owned()
    };
    if let Ok(dt) = DateTime::parse_from_rfc3339(&normalized) {
        return Some(dt.timestamp_millis());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(&normalized, fmt) {
            return Some(dt.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::parse_timestamp_ms;

    #[test]
    fn accepts_the_documented_forms() {
        let base = 1_700_000_000_000;
        for (text, want) in [
            ("2023-11-14T22:13:20Z", base),
            ("2023-11-14T22:13:20.000Z", base),
            ("2023-11-15T00:13:20+02:00", base),
            ("2023-11-14 22:13:20", base),
            ("2023-11-14T22:13:20", base),
            ("2023-11-14 22:13:20.5", base + 500),
            ("1700000000", base),
            ("1700000000000", base),
            ("1700000000000000", base),
            ("1700000000.25", base + 250),
            (" 1700000000 ", base),
            ("2023-11-14", base - (22 * 3600 + 13 * 60 + 20) * 1000),
        ] {
            assert_eq!(parse_timestamp_ms(text), Some(want), "{text}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for text in ["", "yesterday", "2023-13-40", "12:00", "1e400", "--5", "2023-11-14T25:00:00Z"] {
            assert_eq!(parse_timestamp_ms(text), None, "{text}");
        }
    }
}
