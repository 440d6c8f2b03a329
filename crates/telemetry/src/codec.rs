//! Encoder and decoder of the batch format described in the crate documentation.

use crate::Reading;
use thiserror::Error;

/// The format version written by [`encode`] and the only one [`decode`] accepts.
pub const FORMAT_VERSION: u8 = 1;

/// Upper bound on readings per batch. A gateway sends one batch per second for its
/// line (a few thousand sensors); the bound keeps a hostile count from asking the
/// decoder for gigabytes.
pub const MAX_READINGS: usize = 100_000;

const FLAG_F64: u8 = 0b01;
const FLAG_SAME_TS: u8 = 0b10;
const KNOWN_FLAGS: u8 = FLAG_F64 | FLAG_SAME_TS;

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum EncodeError {
    #[error("a batch must hold at least one reading")]
    Empty,
    #[error("a batch holds at most {max} readings, got {got}")]
    TooMany { got: usize, max: usize },
    #[error("timestamps of one batch must lie within ±2^62 ms of each other")]
    TimestampSpan,
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("empty input: a batch starts with a version byte")]
    Empty,
    #[error("unsupported batch format version {0} (this build reads version {FORMAT_VERSION})")]
    UnsupportedVersion(u8),
    #[error("unknown flag bits {0:#04x} in the batch header")]
    UnknownFlags(u8),
    #[error("batch ends early while reading {0}")]
    Truncated(&'static str),
    #[error("malformed varint in {0}")]
    BadVarint(&'static str),
    #[error("batch declares {0} readings; a batch holds 1 to {MAX_READINGS}")]
    BadCount(u64),
    #[error("sensor id of reading {index} is outside 0..=4294967295")]
    SensorOutOfRange { index: usize },
    #[error("timestamp of reading {index} overflows")]
    TimestampOverflow { index: usize },
    #[error("{0} bytes left over after the last value")]
    TrailingBytes(usize),
}

/// Encodes readings (in the given order) into one batch.
pub fn encode(readings: &[Reading]) -> Result<Vec<u8>, EncodeError> {
    let first = readings.first().ok_or(EncodeError::Empty)?;
    if readings.len() > MAX_READINGS {
        return Err(EncodeError::TooMany { got: readings.len(), max: MAX_READINGS });
    }
    let f64_values = readings.iter().any(|r| !survives_f32(r.value));
    let same_ts = readings.iter().all(|r| r.ts_ms == first.ts_ms);
    let value_bytes = if f64_values { 8 } else { 4 };
    let mut out = Vec::with_capacity(16 + readings.len() * (value_bytes + if same_ts { 1 } else { 3 }));
    out.push(FORMAT_VERSION);
    out.push(if f64_values { FLAG_F64 } else { 0 } | if same_ts { FLAG_SAME_TS } else { 0 });
    put_varint(&mut out, readings.len() as u64);
    put_varint(&mut out, zigzag(first.ts_ms));
    let mut prev = 0i64;
    for r in readings {
        let id = i64::from(r.sensor);
        put_varint(&mut out, zigzag(id - prev));
        prev = id;
    }
    if !same_ts {
        let mut prev = first.ts_ms;
        for r in readings {
            let delta = r.ts_ms.checked_sub(prev).ok_or(EncodeError::TimestampSpan)?;
            if !(-(1i64 << 62)..(1i64 << 62)).contains(&delta) {
                return Err(EncodeError::TimestampSpan);
            }
            put_varint(&mut out, zigzag(delta));
            prev = r.ts_ms;
        }
    }
    for r in readings {
        if f64_values {
            out.extend_from_slice(&r.value.to_le_bytes());
        } else {
            out.extend_from_slice(&(r.value as f32).to_le_bytes());
        }
    }
    Ok(out)
}

/// Decodes one batch. Never panics and never allocates more than the input can hold.
pub fn decode(bytes: &[u8]) -> Result<Vec<Reading>, DecodeError> {
    let mut cur = Cursor { bytes, at: 0 };
    let (flags, count) = header(&mut cur)?;
    let value_bytes = if flags & FLAG_F64 != 0 { 8 } else { 4 };
    // Every reading needs at least one byte of sensor id and its value bytes.
    if cur.remaining() < count * (1 + value_bytes) {
        return Err(DecodeError::Truncated("readings"));
    }
    let base = unzigzag(cur.varint("base timestamp")?);
    let mut readings = Vec::with_capacity(count);
    let mut sensor = 0i64;
    for index in 0..count {
        sensor += unzigzag(cur.varint("sensor id")?);
        if !(0..=i64::from(u32::MAX)).contains(&sensor) {
            return Err(DecodeError::SensorOutOfRange { index });
        }
        readings.push(Reading { sensor: sensor as u32, ts_ms: base, value: 0.0 });
    }
    if flags & FLAG_SAME_TS == 0 {
        let mut ts = base;
        for (index, r) in readings.iter_mut().enumerate() {
            ts = ts.checked_add(unzigzag(cur.varint("timestamp")?)).ok_or(DecodeError::TimestampOverflow { index })?;
            r.ts_ms = ts;
        }
    }
    for r in readings.iter_mut() {
        r.value = if value_bytes == 8 {
            f64::from_le_bytes(cur.array("value")?)
        } else {
            f64::from(f32::from_le_bytes(cur.array("value")?))
        };
    }
    match cur.remaining() {
        0 => Ok(readings),
        n => Err(DecodeError::TrailingBytes(n)),
    }
}

/// How many readings a batch declares, from its header alone (what a reader needs to
/// size its work without decoding every reading). Checks the header as [`decode`] does;
/// the rest of the batch is not looked at.
pub fn count(bytes: &[u8]) -> Result<usize, DecodeError> {
    header(&mut Cursor { bytes, at: 0 }).map(|(_, count)| count)
}

/// A batch's header: its version (checked), flags (checked) and reading count (checked
/// against the limits), leaving the cursor on the base timestamp.
fn header(cur: &mut Cursor) -> Result<(u8, usize), DecodeError> {
    let version = cur.byte("version").map_err(|_| DecodeError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let flags = cur.byte("flags")?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(DecodeError::UnknownFlags(flags & !KNOWN_FLAGS));
    }
    let count = cur.varint("count")?;
    if count == 0 || count > MAX_READINGS as u64 {
        return Err(DecodeError::BadCount(count));
    }
    Ok((flags, count as usize))
}

pub(crate) fn survives_f32(v: f64) -> bool {
    let narrowed = v as f32;
    // NaN never compares equal; keep its exact bits in f64.
    f64::from(narrowed).to_bits() == v.to_bits()
}

pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) struct Cursor<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) at: usize,
}

impl Cursor<'_> {
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    pub(crate) fn byte(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        let b = *self.bytes.get(self.at).ok_or(DecodeError::Truncated(what))?;
        self.at += 1;
        Ok(b)
    }

    pub(crate) fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let slice = self.bytes.get(self.at..self.at + N).ok_or(DecodeError::Truncated(what))?;
        self.at += N;
        Ok(slice.try_into().expect("slice has exactly N bytes"))
    }

    pub(crate) fn varint(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte(what)?;
            let group = u64::from(b & 0x7f);
            if shift == 63 && group > 1 {
                return Err(DecodeError::BadVarint(what));
            }
            v |= group << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::BadVarint(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(sensor: u32, ts_ms: i64, value: f64) -> Reading {
        Reading::new(sensor, ts_ms, value)
    }

    #[track_caller]
    fn round_trip(readings: &[Reading]) -> Vec<u8> {
        let bytes = encode(readings).unwrap();
        let back = decode(&bytes).unwrap();
        assert_eq!(back.len(), readings.len());
        for (a, b) in readings.iter().zip(&back) {
            assert_eq!(a.sensor, b.sensor);
            assert_eq!(a.ts_ms, b.ts_ms);
            assert_eq!(a.value.to_bits(), b.value.to_bits(), "value {} changed", a.value);
        }
        bytes
    }

    #[test]
    fn the_count_is_read_from_the_header_and_checked_as_decoding_does() {
        let readings: Vec<_> = (0..300).map(|i| r(i, 1_790_000_000_000 + i64::from(i), f64::NAN)).collect();
        let bytes = encode(&readings).unwrap();
        assert_eq!(count(&bytes), Ok(300));
        // The header alone is enough; what follows is not looked at.
        assert_eq!(count(&bytes[..4]), Ok(300));
        assert_eq!(count(&[]), Err(DecodeError::Empty));
        assert_eq!(count(&[2, 0, 1]), Err(DecodeError::UnsupportedVersion(2)));
        assert_eq!(count(&[FORMAT_VERSION, 0x80, 1]), Err(DecodeError::UnknownFlags(0x80)));
        assert_eq!(count(&[FORMAT_VERSION, 0, 0]), Err(DecodeError::BadCount(0)));
        let mut too_many = vec![FORMAT_VERSION, 0];
        put_varint(&mut too_many, MAX_READINGS as u64 + 1);
        assert_eq!(count(&too_many), Err(DecodeError::BadCount(MAX_READINGS as u64 + 1)));
        assert_eq!(count(&[FORMAT_VERSION, 0, 0x80]), Err(DecodeError::Truncated("count")));
        assert_eq!(
            count(&[FORMAT_VERSION, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
            Err(DecodeError::BadVarint("count"))
        );
        assert_eq!(count(&[FORMAT_VERSION]), Err(DecodeError::Truncated("flags")));
    }

    #[test]
    fn gateway_batch_costs_five_bytes_per_reading() {
        let readings: Vec<_> =
            (0..1000).map(|i| r(20_000 + i, 1_790_000_000_000, f64::from(i as f32 * 0.25))).collect();
        let bytes = round_trip(&readings);
        assert!(bytes.len() <= 5 * 1000 + 16, "{} bytes", bytes.len());
    }

    #[test]
    fn mixed_timestamps_and_f64_values_round_trip() {
        let readings = vec![
            r(7, 1_000, 0.1),
            r(3, 900, -1e300),
            r(u32::MAX, i64::MAX / 4, f64::MIN_POSITIVE),
            r(0, -5_000, 0.0),
            r(0, -5_000, -0.0),
        ];
        let bytes = round_trip(&readings);
        assert_eq!(bytes[1] & FLAG_F64, FLAG_F64);
        assert_eq!(bytes[1] & FLAG_SAME_TS, 0);
    }

    #[test]
    fn non_finite_values_keep_their_bits() {
        // The codec is exact; rejecting non-finite values is the job of validation.
        round_trip(&[r(1, 0, f64::NAN), r(2, 0, f64::INFINITY), r(3, 0, f64::NEG_INFINITY)]);
    }

    #[test]
    fn encode_rejects_empty_oversized_and_wild_spans() {
        assert_eq!(encode(&[]), Err(EncodeError::Empty));
        let many = vec![r(1, 0, 1.0); MAX_READINGS + 1];
        assert!(matches!(encode(&many), Err(EncodeError::TooMany { .. })));
        assert_eq!(encode(&[r(1, i64::MIN, 1.0), r(1, i64::MAX, 1.0)]), Err(EncodeError::TimestampSpan));
    }

    #[test]
    fn decode_names_what_is_wrong() {
        let good = encode(&[r(1, 10, 1.5), r(2, 11, 2.5)]).unwrap();
        let check = |bytes: &[u8], want: DecodeError| assert_eq!(decode(bytes), Err(want));
        check(&[], DecodeError::Empty);
        check(&[2, 0, 1], DecodeError::UnsupportedVersion(2));
        check(&[1, 0x80, 1], DecodeError::UnknownFlags(0x80));
        check(&[1, 0, 0], DecodeError::BadCount(0));
        check(&[1, 0, 0x80], DecodeError::Truncated("count"));
        check(&[1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], DecodeError::BadVarint("count"));
        // A huge count with a tiny body must fail before allocating.
        check(&[1, 0, 0xa0, 0x8d, 0x06], DecodeError::Truncated("readings"));
        check(&[1, 0, 0xa1, 0x8d, 0x06], DecodeError::BadCount(100_001));
        for cut in 2..good.len() {
            assert!(decode(&good[..cut]).is_err(), "prefix of {cut} bytes decoded");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        check(&trailing, DecodeError::TrailingBytes(1));
    }

    #[test]
    fn decode_rejects_sensor_ids_beyond_u32() {
        // count 1, base ts 0, sensor delta -1 (zigzag 1), then a value.
        let bytes = [1, FLAG_SAME_TS, 1, 0, 1, 0, 0, 0, 0];
        assert_eq!(decode(&bytes), Err(DecodeError::SensorOutOfRange { index: 0 }));
    }

    #[test]
    fn decode_survives_arbitrary_bytes() {
        // A small deterministic generator: every outcome must be Ok or a typed error.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let good = encode(&[r(5, 1, 1.0), r(9, 2, 3.0), r(11, 4, 9.0)]).unwrap();
        for _ in 0..20_000 {
            let mut bytes = good.clone();
            let flips = 1 + next() % 4;
            for _ in 0..flips {
                let i = (next() as usize) % bytes.len();
                bytes[i] = next() as u8;
            }
            let len = (next() as usize) % (bytes.len() + 1);
            let _ = decode(&bytes[..len]);
        }
    }
}
