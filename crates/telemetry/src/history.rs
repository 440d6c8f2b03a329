//! The compact encoding of one sensor's readings over a short span (a minute): the
//! `readings` column of the raw-history read model.
//!
//! A value is a sequence of chunks; a late reading arriving after its minute was
//! written is appended as another chunk, so writers never rewrite what is stored.
//!
//! ```text
//! chunk, version 1 (integers little-endian):
//! u8      version            = 1
//! u8      flags              bit 0: values are f64 (else f32)
//!                            bit 1: regular — every timestamp step equals `step`
//!                            bits 2-7: zero
//! varint  count              1 ..= 100,000
//! zigzag  first_ts_ms        ms since the Unix epoch
//! if regular:  varint step   (ms between consecutive readings)
//! else:        count-1 × varint  step from the previous reading (ms, ≥ 0)
//! count × f32|f64 value
//! ```
//!
//! A minute of 1 Hz readings costs 4 bytes a reading plus about 9 bytes.

use thiserror::Error;

use crate::codec::{Cursor, put_varint, survives_f32, unzigzag, zigzag};

const VERSION: u8 = 1;
const FLAG_F64: u8 = 0b01;
const FLAG_REGULAR: u8 = 0b10;
const MAX_CHUNK_READINGS: usize = 100_000;

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum HistoryError {
    #[error("a history chunk holds 1 to {MAX_CHUNK_READINGS} readings, got {0}")]
    Count(u64),
    #[error("unsupported history chunk version {0}")]
    Version(u8),
    #[error("unknown flag bits {0:#04x} in a history chunk")]
    Flags(u8),
    #[error("history chunk ends early while reading {0}")]
    Truncated(&'static str),
    #[error("malformed varint in a history chunk's {0}")]
    Varint(&'static str),
    #[error("timestamp overflows in a history chunk")]
    Overflow,
}

/// Encodes `(ts_ms, value)` pairs as one chunk, sorted by time (stable for equal times).
pub fn encode_chunk(points: &[(i64, f64)]) -> Result<Vec<u8>, HistoryError> {
    if points.is_empty() || points.len() > MAX_CHUNK_READINGS {
        return Err(HistoryError::Count(points.len() as u64));
    }
    let mut sorted = points.to_vec();
    sorted.sort_by_key(|p| p.0);
    let f64_values = sorted.iter().any(|p| !survives_f32(p.1));
    let steps: Vec<u64> = sorted.windows(2).map(|w| w[1].0.abs_diff(w[0].0)).collect();
    let regular = steps.windows(2).all(|w| w[0] == w[1]);
    let mut out = Vec::with_capacity(12 + sorted.len() * if f64_values { 8 } else { 4 });
    out.push(VERSION);
    out.push(if f64_values { FLAG_F64 } else { 0 } | if regular { FLAG_REGULAR } else { 0 });
    put_varint(&mut out, sorted.len() as u64);
    put_varint(&mut out, zigzag(sorted[0].0));
    if regular {
        put_varint(&mut out, steps.first().copied().unwrap_or(0));
    } else {
        for s in &steps {
            put_varint(&mut out, *s);
        }
    }
    for (_, v) in &sorted {
        if f64_values {
            out.extend_from_slice(&v.to_le_bytes());
        } else {
            out.extend_from_slice(&(*v as f32).to_le_bytes());
        }
    }
    Ok(out)
}

/// Decodes every chunk of a stored value, in time order.
pub fn decode(bytes: &[u8]) -> Result<Vec<(i64, f64)>, HistoryError> {
    let mut cur = Cursor { bytes, at: 0 };
    let mut points = Vec::new();
    let mut chunks = 0;
    while cur.remaining() > 0 {
        decode_chunk(&mut cur, &mut points)?;
        chunks += 1;
    }
    if chunks > 1 {
        points.sort_by_key(|p| p.0);
    }
    Ok(points)
}

fn decode_chunk(cur: &mut Cursor<'_>, points: &mut Vec<(i64, f64)>) -> Result<(), HistoryError> {
    let e = |d: crate::DecodeError| match d {
        crate::DecodeError::BadVarint(what) => HistoryError::Varint(what),
        crate::DecodeError::Truncated(what) => HistoryError::Truncated(what),
        _ => HistoryError::Truncated("chunk"),
    };
    let version = cur.byte("version").map_err(e)?;
    if version != VERSION {
        return Err(HistoryError::Version(version));
    }
    let flags = cur.byte("flags").map_err(e)?;
    if flags & !(FLAG_F64 | FLAG_REGULAR) != 0 {
        return Err(HistoryError::Flags(flags));
    }
    let count = cur.varint("count").map_err(e)?;
    if count == 0 || count > MAX_CHUNK_READINGS as u64 {
        return Err(HistoryError::Count(count));
    }
    let count = count as usize;
    let value_bytes = if flags & FLAG_F64 != 0 { 8 } else { 4 };
    if cur.remaining() < count * value_bytes {
        return Err(HistoryError::Truncated("values"));
    }
    let mut ts = unzigzag(cur.varint("first timestamp").map_err(e)?);
    let start = points.len();
    let regular_step = if flags & FLAG_REGULAR != 0 { Some(cur.varint("step").map_err(e)?) } else { None };
    for i in 0..count {
        if i > 0 {
            let step = match regular_step {
                Some(s) => s,
                None => cur.varint("step").map_err(e)?,
            };
            ts = i64::try_from(step).ok().and_then(|s| ts.checked_add(s)).ok_or(HistoryError::Overflow)?;
        }
        points.push((ts, 0.0));
    }
    for p in &mut points[start..] {
        p.1 = if value_bytes == 8 {
            f64::from_le_bytes(cur.array("value").map_err(e)?)
        } else {
            f64::from(f32::from_le_bytes(cur.array("value").map_err(e)?))
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_minute_costs_four_bytes_a_reading() {
        let minute: Vec<(i64, f64)> =
            (0..60).map(|i| (1_772_366_400_000 + i * 1000, f64::from(i as f32 * 0.5))).collect();
        let bytes = encode_chunk(&minute).unwrap();
        assert!(bytes.len() <= 60 * 4 + 12, "{} bytes", bytes.len());
        assert_eq!(decode(&bytes).unwrap(), minute);
    }

    #[test]
    fn irregular_unsorted_and_appended_chunks_decode_in_time_order() {
        let first = [(5_000, 1.5), (1_000, 0.25), (2_500, 1e300)];
        let late = [(3_000, -2.0)];
        let mut bytes = encode_chunk(&first).unwrap();
        bytes.extend(encode_chunk(&late).unwrap());
        assert_eq!(decode(&bytes).unwrap(), vec![(1_000, 0.25), (2_500, 1e300), (3_000, -2.0), (5_000, 1.5)]);
    }

    #[test]
    fn bad_chunks_are_typed_errors_never_panics() {
        assert_eq!(encode_chunk(&[]), Err(HistoryError::Count(0)));
        assert_eq!(decode(&[2]), Err(HistoryError::Version(2)));
        assert_eq!(decode(&[1, 0x80]), Err(HistoryError::Flags(0x80)));
        assert_eq!(decode(&[1, 0, 0]), Err(HistoryError::Count(0)));
        let good = encode_chunk(&[(0, 1.0), (7, 2.0), (9, 3.0)]).unwrap();
        for cut in 1..good.len() {
            assert!(decode(&good[..cut]).is_err(), "prefix {cut}");
        }
        let mut state = 7u64;
        for _ in 0..10_000 {
            let mut b = good.clone();
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let i = (state >> 33) as usize % b.len();
            b[i] = (state >> 13) as u8;
            let _ = decode(&b);
        }
    }
}
