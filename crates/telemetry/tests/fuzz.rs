//! Hostile input for the two binary encodings, generated: whatever bytes arrive, decoding
//! answers with readings or a typed error and never panics, never loops and never asks for
//! more memory than the input can fill; whatever readings are encoded (NaN, ±inf, 1e300,
//! subnormals, the extreme sensor ids, timestamps far apart) come back bit for bit.
//!
//! `PROPTEST_CASES=100000 cargo test -p telemetry --test fuzz` runs them longer.

use proptest::prelude::*;
use telemetry::{DecodeError, EncodeError, MAX_READINGS, Reading, decode, encode, history};

/// Values a sensor, a faulty gateway or an attacker may send, mixed with ordinary ones.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -1e4f64..1e4,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(1e300),
        1 => Just(-1e300),
        1 => Just(f64::MIN_POSITIVE / 8.0),
        1 => Just(-0.0),
        2 => any::<u64>().prop_map(f64::from_bits),
    ]
}

fn timestamp() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => 1_700_000_000_000i64..1_900_000_000_000,
        1 => -(1i64 << 61)..(1i64 << 61),
        1 => Just(0i64),
    ]
}

fn reading() -> impl Strategy<Value = Reading> {
    (prop_oneof![any::<u32>(), Just(0u32), Just(u32::MAX), 0u32..20_000], timestamp(), value())
        .prop_map(|(s, t, v)| Reading::new(s, t, v))
}

fn same_bits(a: &[Reading], b: &[Reading]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.sensor == y.sensor && x.ts_ms == y.ts_ms && x.value.to_bits() == y.value.to_bits())
}

proptest! {
    #[test]
    fn any_readings_come_back_bit_for_bit(readings in prop::collection::vec(reading(), 1..300)) {
        let bytes = encode(&readings).expect("timestamps within ±2^61 always encode");
        let back = decode(&bytes).expect("what was encoded decodes");
        prop_assert!(same_bits(&readings, &back));
    }

    #[test]
    fn arbitrary_bytes_are_refused_or_decoded_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(readings) = decode(&bytes) {
            // Every reading costs at least two bytes (a sensor id byte and a value).
            prop_assert!(!readings.is_empty() && readings.len() * 2 <= bytes.len());
        }
    }

    #[test]
    fn a_damaged_batch_is_refused_or_decoded_never_a_panic(
        readings in prop::collection::vec(reading(), 1..100),
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        tail in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut bytes = encode(&readings).unwrap();
        for (at, b) in &damage {
            let i = at.index(bytes.len());
            bytes[i] = *b;
        }
        let _ = decode(&bytes);
        let _ = decode(&bytes[..cut.index(bytes.len())]);
        bytes.extend(&tail);
        let _ = decode(&bytes);
    }

    #[test]
    fn a_declared_count_past_the_limit_is_refused_before_allocating(
        count in prop_oneof![1u64..=MAX_READINGS as u64 + 10, any::<u64>()],
        f64_values in any::<bool>(),
    ) {
        let mut bytes = vec![telemetry::FORMAT_VERSION, u8::from(f64_values)];
        let mut v = count;
        while v >= 0x80 { bytes.push((v as u8) | 0x80); v >>= 7; }
        bytes.push(v as u8);
        bytes.extend([0u8; 8]);
        let answer = decode(&bytes);
        if count == 0 || count > MAX_READINGS as u64 {
            prop_assert_eq!(answer, Err(DecodeError::BadCount(count)));
        } else {
            prop_assert!(!matches!(answer, Err(DecodeError::BadCount(_))), "count {}: {:?}", count, answer);
        }
    }

    #[test]
    fn any_history_points_come_back_in_time_order(
        chunks in prop::collection::vec(prop::collection::vec((timestamp(), value()), 1..120), 1..4),
    ) {
        let mut bytes = Vec::new();
        let mut all = Vec::new();
        for chunk in &chunks {
            bytes.extend(history::encode_chunk(chunk).expect("a chunk of 1 to 100,000 points encodes"));
            all.extend(chunk.iter().copied());
        }
        let back = history::decode(&bytes).expect("what was encoded decodes");
        prop_assert_eq!(back.len(), all.len());
        prop_assert!(back.windows(2).all(|w| w[0].0 <= w[1].0), "not in time order");
        let mut want: Vec<(i64, u64)> = all.iter().map(|p| (p.0, p.1.to_bits())).collect();
        let mut got: Vec<(i64, u64)> = back.iter().map(|p| (p.0, p.1.to_bits())).collect();
        want.sort_unstable();
        got.sort_unstable();
        prop_assert_eq!(want, got);
    }

    #[test]
    fn arbitrary_history_bytes_are_refused_or_decoded_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(points) = history::decode(&bytes) {
            prop_assert!(points.len() * 4 <= bytes.len());
        }
    }
}

#[test]
fn the_limits_hold_at_and_past_the_edge() {
    let full: Vec<Reading> = (0..MAX_READINGS as u32).map(|i| Reading::new(i, 1_800_000_000_000, 1.0)).collect();
    assert_eq!(decode(&encode(&full).unwrap()).unwrap().len(), MAX_READINGS);
    let over: Vec<Reading> = (0..=MAX_READINGS as u32).map(|i| Reading::new(i, 1_800_000_000_000, 1.0)).collect();
    assert_eq!(encode(&over), Err(EncodeError::TooMany { got: MAX_READINGS + 1, max: MAX_READINGS }));
    assert_eq!(encode(&[]), Err(EncodeError::Empty));
    let far = [Reading::new(1, i64::MIN, 0.0), Reading::new(2, i64::MAX, 0.0)];
    assert_eq!(encode(&far), Err(EncodeError::TimestampSpan));
    let points: Vec<(i64, f64)> = (0..100_000).map(|i| (i, 0.5)).collect();
    assert_eq!(history::decode(&history::encode_chunk(&points).unwrap()).unwrap().len(), 100_000);
    let points: Vec<(i64, f64)> = (0..100_001).map(|i| (i, 0.5)).collect();
    assert!(history::encode_chunk(&points).is_err());
    assert!(history::encode_chunk(&[]).is_err());
}
