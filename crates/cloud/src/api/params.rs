//! Query parameters: parsed and checked before anything reaches the database, each
//! mistake named in a 400 (`bad_parameter`, `bad_cursor`, `range_too_long`).

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};

use super::error::ApiError;

/// Most rows a list answers with; the default page is smaller.
pub const MAX_LIMIT: i64 = 1_000;
pub const DEFAULT_LIMIT: i64 = 100;
/// Earliest and latest times a parameter may name.
const EARLIEST: &str = "2000-01-01T00:00:00Z";
const LATEST: &str = "2200-01-01T00:00:00Z";
/// Longest machine, line or anomaly id accepted.
const MAX_ID_LEN: usize = 120;

pub fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad("bad_parameter", message)
}

/// A plant number from a path or a parameter.
pub fn plant_number(s: &str) -> Result<u16, ApiError> {
    s.parse::<u16>()
        .ok()
        .filter(|&n| (1..=access::MAX_PLANT).contains(&n))
        .ok_or_else(|| bad(format!("plant {:?} is not a plant number (1..={})", truncate(s), access::MAX_PLANT)))
}

/// `plant=1,3` (or repeated); `None` when absent.
pub fn plants(s: Option<&str>) -> Result<Option<BTreeSet<u16>>, ApiError> {
    let Some(s) = s else { return Ok(None) };
    let set: BTreeSet<u16> = s.split(',').map(str::trim).map(plant_number).collect::<Result<_, _>>()?;
    if set.is_empty() || set.len() > 100 {
        return Err(bad("plant names 1 to 100 plants"));
    }
    Ok(Some(set))
}

/// An RFC 3339 time between 2000 and 2200.
pub fn time(name: &str, s: &str) -> Result<DateTime<Utc>, ApiError> {
    let t = DateTime::parse_from_rfc3339(s)
        .map_err(|e| {
            bad(format!("{name} {:?} is not an RFC 3339 time such as 2026-03-01T00:00:00Z ({e})", truncate(s)))
        })?
        .with_timezone(&Utc);
    let (earliest, latest) = bounds();
    if t < earliest || t > latest {
        return Err(bad(format!("{name} must lie between {EARLIEST} and {LATEST}")));
    }
    Ok(t)
}

fn bounds() -> (DateTime<Utc>, DateTime<Utc>) {
    let parse = |s: &str| DateTime::parse_from_rfc3339(s).expect("a valid constant").with_timezone(&Utc);
    (parse(EARLIEST), parse(LATEST))
}

pub fn optional_time(name: &str, s: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    s.map(|s| time(name, s)).transpose()
}

/// `from` and `to` (both required), `from` before `to`, at most `max` apart.
pub fn range(
    from: Option<&str>,
    to: Option<&str>,
    max: Duration,
    what: &str,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let from = time("from", from.ok_or_else(|| bad("from is required"))?)?;
    let to = time("to", to.ok_or_else(|| bad("to is required"))?)?;
    check_order(Some(from), Some(to))?;
    if to - from > max {
        return Err(ApiError::bad(
            "range_too_long",
            format!("{what} covers at most {} days; ask for a coarser bucket or a shorter range", max.num_days()),
        ));
    }
    Ok((from, to))
}

pub fn check_order(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Result<(), ApiError> {
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        return Err(bad("from must be before to"));
    }
    Ok(())
}

/// `limit` (1..=1000, default 100).
pub fn limit(s: Option<&str>) -> Result<i64, ApiError> {
    match s {
        None => Ok(DEFAULT_LIMIT),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| bad(format!("limit {:?} must be a whole number from 1 to {MAX_LIMIT}", truncate(s)))),
    }
}

/// A machine, line or other id: letters, digits, `-_.:`, at most 120 characters.
pub fn id(name: &str, s: &str) -> Result<String, ApiError> {
    let ok =
        !s.is_empty() && s.len() <= MAX_ID_LEN && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
    if !ok {
        return Err(bad(format!(
            "{name} {:?} is not an id (letters, digits, -_.:, at most {MAX_ID_LEN})",
            truncate(s)
        )));
    }
    Ok(s.to_owned())
}

/// The plant a machine or line id names (`P3-L01-M002` → 3).
pub fn plant_of(id: &str) -> Result<u16, ApiError> {
    id.strip_prefix('P')
        .and_then(|rest| rest.split('-').next())
        .and_then(|n| n.parse::<u16>().ok())
        .filter(|&n| n >= 1)
        .ok_or_else(|| ApiError::bad("unknown_id", format!("{:?} names no plant", truncate(id))))
}

/// One of `choices`.
pub fn choice<'a>(name: &str, s: &str, choices: &[&'a str]) -> Result<&'a str, ApiError> {
    choices
        .iter()
        .find(|c| **c == s)
        .copied()
        .ok_or_else(|| bad(format!("{name} {:?} is not one of {}", truncate(s), choices.join(", "))))
}

/// A comma-separated list of choices; `None` when absent.
pub fn choices(name: &str, s: Option<&str>, allowed: &[&str]) -> Result<Option<Vec<String>>, ApiError> {
    let Some(s) = s else { return Ok(None) };
    let v: Vec<String> =
        s.split(',').map(|x| choice(name, x.trim(), allowed).map(str::to_owned)).collect::<Result<_, _>>()?;
    Ok(Some(v))
}

/// A non-negative number of days (up to ten years).
pub fn days(name: &str, s: Option<&str>) -> Result<Option<f64>, ApiError> {
    let Some(s) = s else { return Ok(None) };
    s.parse::<f64>()
        .ok()
        .filter(|d| d.is_finite() && (0.0..=3650.0).contains(d))
        .map(Some)
        .ok_or_else(|| bad(format!("{name} {:?} must be a number of days from 0 to 3650", truncate(s))))
}

/// Opaque page cursors: the last row's sort key, hex-encoded.
pub fn encode_cursor(parts: &[String]) -> String {
    parts.join("\u{1f}").bytes().map(|b| format!("{b:02x}")).collect()
}

pub fn decode_cursor(s: &str, fields: usize) -> Result<Vec<String>, ApiError> {
    let bad = || ApiError::bad("bad_cursor", "cursor is not one this API handed out");
    if s.len() > 1_000 || !s.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let parts: Vec<String> = text.split('\u{1f}').map(str::to_owned).collect();
    if parts.len() != fields {
        return Err(bad());
    }
    Ok(parts)
}

/// A cursor's time field (microseconds, the database's precision).
pub fn cursor_time(s: &str) -> Result<DateTime<Utc>, ApiError> {
    s.parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(|| ApiError::bad("bad_cursor", "cursor is not one this API handed out"))
}

fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked_and_named() {
        assert_eq!(plant_number("3").map_err(|e| e.code), Ok(3));
        for bad in ["0", "-1", "x", "", "99999", "1e3", "3 "] {
            assert!(plant_number(bad).is_err(), "{bad:?}");
        }
        assert!(time("from", "2026-03-01T00:00:00Z").is_ok());
        for bad in ["2026-13-01T00:00:00Z", "yesterday", "1999-01-01T00:00:00Z", "9999-01-01T00:00:00Z", "\0"] {
            assert!(time("from", bad).is_err(), "{bad:?}");
        }
        assert!(limit(Some("0")).is_err() && limit(Some("1001")).is_err() && limit(Some("1e9")).is_err());
        assert_eq!(limit(None).map_err(|e| e.code), Ok(100));
        assert!(id("machine", "P1-L01-M001").is_ok());
        for bad in ["", "a b", "x'; DROP", &"a".repeat(121), "é"] {
            assert!(id("machine", bad).is_err(), "{bad:?}");
        }
        assert_eq!(plant_of("P12-L01").map_err(|e| e.code), Ok(12));
        assert!(plant_of("L01").is_err());
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = encode_cursor(&["1772366400000".into(), "3".into(), "P3-L01-M002-1".into()]);
        assert_eq!(
            decode_cursor(&c, 3).map_err(|e| e.code).unwrap_or_default(),
            vec!["1772366400000", "3", "P3-L01-M002-1"]
        );
        for bad in ["zz", "abc", "00", &"ab".repeat(600), "ff"] {
            assert!(decode_cursor(bad, 3).is_err(), "{bad:?}");
        }
    }
}
