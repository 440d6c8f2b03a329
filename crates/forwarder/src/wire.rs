//! The forwarding wire format: one batch of a plant's events, binary.
//!
//! `postcard` (compact, versioned by the batch's first field) of [`WireBatch`]. A
//! telemetry batch travels as the plant stored it (the `telemetry` encoding, about 5
//! bytes a reading); a domain event as its JSON text. The sender and the cloud both use
//! this module, and only this module knows the format.
//!
//! [`WireBatch::decode`] checks everything a hostile sender could get wrong before the
//! cloud stores a byte: the format, the plant, the order of positions, stream names and
//! types, payload sizes, JSON that parses, telemetry that decodes to finite readings of
//! this plant's sensors only.

use chrono::{DateTime, Utc};
use eventlog::{ImportedEvent, InvalidInput, Metadata, NewEvent, Payload, RecordedEvent, StreamName};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The earliest instant PostgreSQL's `timestamptz` holds (4714-11-24 00:00 UTC BC), ms
/// since the epoch: a time before it is refused here, with the reason, rather than by the
/// database (the latest, in 294276, is past any time this side can name).
pub const EARLIEST_STORABLE_MS: i64 = -210_866_803_200_000;

/// Content type of a forwarded batch.
pub const CONTENT_TYPE: &str = "application/x-floorwatch-events";
/// Version of [`WireBatch`]; the first byte of every body.
pub const WIRE_VERSION: u8 = 1;

/// A plant's events that follow position `after` of its log, in order, with nothing
/// left out in between.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireBatch {
    pub version: u8,
    pub plant: u16,
    pub after: i64,
    pub events: Vec<WireEvent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireEvent {
    pub position: i64,
    pub recorded_at_ms: i64,
    pub stream: String,
    pub version: u64,
    pub event_type: String,
    pub schema_version: i16,
    pub metadata: WireMetadata,
    pub idempotency_key: Option<String>,
    pub body: WireBody,
}

/// An event's metadata on the wire: every field present (postcard has no optional
/// fields), as `eventlog::Metadata` holds them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WireMetadata {
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub actor: Option<String>,
    pub source: Option<String>,
}

impl From<&Metadata> for WireMetadata {
    fn from(m: &Metadata) -> Self {
        WireMetadata {
            correlation_id: m.correlation_id.clone(),
            causation_id: m.causation_id.clone(),
            actor: m.actor.clone(),
            source: m.source.clone(),
        }
    }
}

impl From<WireMetadata> for Metadata {
    fn from(m: WireMetadata) -> Self {
        Metadata { correlation_id: m.correlation_id, causation_id: m.causation_id, actor: m.actor, source: m.source }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WireBody {
    /// A domain event's JSON text.
    Json(String),
    /// A telemetry batch in the `telemetry` encoding, with the time of its earliest reading.
    Telemetry {
        occurred_at_ms: i64,
        #[serde(with = "byte_string")]
        bytes: Vec<u8>,
    },
}

/// A byte vector written and read as one block of bytes rather than element by element
/// (the same bytes on the wire: postcard writes both as a length and the bytes).
mod byte_string {
    use serde::Serializer;
    use serde::de::{Deserializer, SeqAccess, Visitor};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Bytes;
        impl<'de> Visitor<'de> for Bytes {
            type Value = Vec<u8>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }

            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }

            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(Bytes)
    }
}

/// Why a batch cannot be stored (permanent: the same bytes will never be accepted).
#[derive(Debug, Error, PartialEq)]
pub enum WireError {
    #[error("the body is not a forwarded batch: {0}")]
    Format(String),
    #[error("batch format version {0} is not {WIRE_VERSION}")]
    Version(u8),
    #[error("the batch is for plant {body}, not plant {expected}")]
    Plant { body: u16, expected: u16 },
    #[error("event at plant position {position}: {reason}")]
    Event { position: i64, reason: String },
}

impl WireEvent {
    /// The wire form of an event read from the plant's log.
    pub fn from_recorded(e: &RecordedEvent) -> WireEvent {
        let body = match &e.payload {
            Payload::Json(v) => WireBody::Json(v.to_string()),
            Payload::Telemetry { bytes, occurred_at } => {
                WireBody::Telemetry { occurred_at_ms: occurred_at.timestamp_millis(), bytes: bytes.clone() }
            }
        };
        WireEvent {
            position: e.position,
            recorded_at_ms: e.recorded_at.timestamp_millis(),
            stream: e.stream.as_str().to_owned(),
            version: e.version,
            event_type: e.event_type.clone(),
            schema_version: e.schema_version,
            metadata: WireMetadata::from(&e.metadata),
            idempotency_key: e.idempotency_key.clone(),
            body,
        }
    }

    /// Approximate size on the wire, for bounding a request.
    pub fn size_hint(&self) -> usize {
        let body = match &self.body {
            WireBody::Json(t) => t.len(),
            WireBody::Telemetry { bytes, .. } => bytes.len(),
        };
        64 + self.stream.len() + self.event_type.len() + body
    }

    /// [`WireEvent::size_hint`] of an event read from the log, without converting it (a
    /// JSON body is counted at the size its text will roughly have).
    pub fn size_hint_of(e: &RecordedEvent) -> usize {
        let body = match &e.payload {
            Payload::Json(v) => json_size(v),
            Payload::Telemetry { bytes, .. } => bytes.len(),
        };
        64 + e.stream.as_str().len() + e.event_type.len() + body
    }

    fn into_imported(self, plant: u16) -> Result<ImportedEvent, WireError> {
        let position = self.position;
        let bad = |reason: String| WireError::Event { position, reason };
        let invalid = |e: InvalidInput| WireError::Event { position, reason: e.to_string() };
        let time = |ms: i64, what: &str| {
            DateTime::<Utc>::from_timestamp_millis(ms)
                .filter(|_| ms >= EARLIEST_STORABLE_MS)
                .ok_or_else(|| bad(format!("{what} {ms} ms is not a time the log can store")))
        };
        let payload = match self.body {
            WireBody::Json(text) => {
                if text.len() > eventlog::MAX_JSON_PAYLOAD_BYTES {
                    return Err(bad(format!("JSON payload of {} bytes is too large", text.len())));
                }
                let value: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| bad(format!("JSON payload: {e}")))?;
                if holds_nul(&value) {
                    return Err(bad("JSON payload holds a NUL character".into()));
                }
                Payload::Json(value)
            }
            WireBody::Telemetry { occurred_at_ms, bytes } => {
                check_readings(plant, &bytes, occurred_at_ms).map_err(bad)?;
                Payload::Telemetry { bytes, occurred_at: time(occurred_at_ms, "occurred_at")? }
            }
        };
        let m = &self.metadata;
        if [&m.actor, &m.source, &m.correlation_id, &m.causation_id]
            .iter()
            .any(|f| f.as_ref().is_some_and(|t| t.contains('\0')))
        {
            return Err(bad("metadata holds a NUL character".into()));
        }
        let event = NewEvent {
            event_type: self.event_type,
            schema_version: self.schema_version,
            payload,
            metadata: self.metadata.into(),
        };
        Ok(ImportedEvent {
            origin_position: position,
            origin_recorded_at: time(self.recorded_at_ms, "recorded_at")?,
            stream: StreamName::new(self.stream).map_err(invalid)?,
            version: self.version,
            idempotency_key: self.idempotency_key,
            event,
        })
    }
}

/// The length of `v`'s JSON text, give or take escapes, without writing it.
fn json_size(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Null => 4,
        serde_json::Value::Bool(_) => 5,
        serde_json::Value::Number(_) => 24,
        serde_json::Value::String(s) => s.len() + 2,
        serde_json::Value::Array(a) => 2 + a.iter().map(|x| json_size(x) + 1).sum::<usize>(),
        serde_json::Value::Object(o) => 2 + o.iter().map(|(k, x)| k.len() + 4 + json_size(x)).sum::<usize>(),
    }
}

/// PostgreSQL's JSON cannot hold NUL; the plant's never does.
fn holds_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().any(holds_nul),
        serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

/// A telemetry batch must decode, hold only finite values of `plant`'s sensors, and start
/// at `occurred_at_ms` (its earliest reading, as the plant's log files it).
fn check_readings(plant: u16, bytes: &[u8], occurred_at_ms: i64) -> Result<(), String> {
    if bytes.len() > eventlog::MAX_BINARY_PAYLOAD_BYTES {
        return Err(format!("telemetry batch of {} bytes is too large", bytes.len()));
    }
    let readings = telemetry::decode(bytes).map_err(|e| format!("telemetry batch: {e}"))?;
    let stride = layout::PLANT_ID_STRIDE;
    let sensors = u32::from(plant) * stride..(u32::from(plant) + 1) * stride;
    let mut earliest = i64::MAX;
    for (i, r) in readings.iter().enumerate() {
        if !r.value.is_finite() {
            return Err(format!("reading {i} of sensor {} is not a finite number", r.sensor));
        }
        if !sensors.contains(&r.sensor) {
            return Err(format!("reading {i} is of sensor {}, not one of plant {plant}'s", r.sensor));
        }
        earliest = earliest.min(r.ts_ms);
    }
    if earliest != occurred_at_ms {
        return Err(format!("occurred_at {occurred_at_ms} ms is not the earliest reading's time {earliest} ms"));
    }
    Ok(())
}

impl WireBatch {
    pub fn new(plant: u16, after: i64, events: Vec<WireEvent>) -> Self {
        WireBatch { version: WIRE_VERSION, plant, after, events }
    }

    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("a batch of plain data serialises")
    }

    /// Reads and checks a body sent for `plant`; returns what follows which position.
    pub fn decode(bytes: &[u8], plant: u16) -> Result<(i64, Vec<ImportedEvent>), WireError> {
        match bytes.first() {
            None => return Err(WireError::Format("empty body".into())),
            Some(&v) if v != WIRE_VERSION => return Err(WireError::Version(v)),
            Some(_) => {}
        }
        let (batch, rest): (WireBatch, &[u8]) =
            postcard::take_from_bytes(bytes).map_err(|e| WireError::Format(e.to_string()))?;
        // A body is one batch: bytes after it mean it was framed or cut wrongly.
        if !rest.is_empty() {
            return Err(WireError::Format(format!("{} bytes after the batch", rest.len())));
        }
        if batch.plant != plant {
            return Err(WireError::Plant { body: batch.plant, expected: plant });
        }
        let after = batch.after;
        let events = batch.events.into_iter().map(|e| e.into_imported(plant)).collect::<Result<Vec<_>, WireError>>()?;
        eventlog::check_batch(plant, after, &events)
            .map_err(|e| WireError::Event { position: after, reason: e.to_string() })?;
        Ok((after, events))
    }
}

/// What the cloud answers to a batch or a position query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The plant position the cloud has stored through.
    pub acknowledged: i64,
    /// The cloud log's position of the newest event it stored from this plant.
    pub cloud_position: i64,
    /// Events of the batch stored now, and already stored before.
    #[serde(default)]
    pub stored: usize,
    #[serde(default)]
    pub already_stored: usize,
}

/// The maintenance model the cloud publishes to the plants (its registry's active one),
/// fetched back over the forwarding link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedModel {
    pub version: String,
    /// Its evaluation metrics, as the cloud's registry holds them.
    pub metrics: serde_json::Value,
    /// The model document (`maintenance::Model::to_json`).
    pub model: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemetry::Reading;

    fn telemetry_event(position: i64, readings: &[Reading]) -> WireEvent {
        WireEvent {
            position,
            recorded_at_ms: 1_772_366_400_000,
            stream: "readings-P1-L01".into(),
            version: position as u64,
            event_type: "ReadingsRecorded".into(),
            schema_version: 1,
            metadata: WireMetadata::from(&Metadata::from_source("gateway:P1-L01")),
            idempotency_key: Some(format!("P1-L01:{position}")),
            body: WireBody::Telemetry {
                occurred_at_ms: readings.iter().map(|r| r.ts_ms).min().unwrap_or(0),
                bytes: telemetry::encode(readings).expect("encodes"),
            },
        }
    }

    fn json_event(position: i64, text: &str) -> WireEvent {
        WireEvent {
            body: WireBody::Json(text.into()),
            stream: "anomaly-P1.1".into(),
            event_type: "AnomalyNoteAdded".into(),
            ..telemetry_event(position, &[Reading::new(1_000_000, 1, 1.0)])
        }
    }

    const T: i64 = 1_772_366_400_000;

    #[test]
    fn a_batch_round_trips_with_telemetry_still_binary() {
        let readings = [Reading::new(1_000_001, T, 1.5), Reading::new(1_000_002, T, -2.0)];
        let batch = WireBatch::new(1, 7, vec![telemetry_event(8, &readings), json_event(9, r#"{"a":[1,2]}"#)]);
        let bytes = batch.encode();
        let telemetry_bytes = telemetry::encode(&readings).expect("encodes");
        assert!(bytes.windows(telemetry_bytes.len()).any(|w| w == telemetry_bytes), "the batch travels as it is");
        let (after, events) = WireBatch::decode(&bytes, 1).expect("valid");
        assert_eq!(after, 7);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].origin_position, 8);
        assert!(matches!(&events[0].event.payload, Payload::Telemetry { bytes, .. } if *bytes == telemetry_bytes));
        assert_eq!(events[1].event.payload, Payload::Json(serde_json::json!({ "a": [1, 2] })));
    }

    #[test]
    fn telemetry_travels_as_one_block_with_the_same_bytes_as_before() {
        // The body as versions that wrote the bytes element by element sent it.
        #[derive(Serialize)]
        #[allow(dead_code)]
        enum Before {
            Json(String),
            Telemetry { occurred_at_ms: i64, bytes: Vec<u8> },
        }
        let bytes = vec![0u8, 1, 127, 128, 255, 7];
        let now =
            postcard::to_allocvec(&WireBody::Telemetry { occurred_at_ms: -5, bytes: bytes.clone() }).expect("encodes");
        let before =
            postcard::to_allocvec(&Before::Telemetry { occurred_at_ms: -5, bytes: bytes.clone() }).expect("encodes");
        assert_eq!(now, before);
        let read: WireBody = postcard::from_bytes(&before).expect("decodes");
        assert_eq!(read, WireBody::Telemetry { occurred_at_ms: -5, bytes });
        // A length beyond the body is refused, not allocated.
        let mut short = before.clone();
        short.truncate(short.len() - 2);
        assert!(postcard::from_bytes::<WireBody>(&short).is_err());
    }

    #[test]
    fn hostile_batches_are_refused_with_the_reason() {
        let ok = |events: Vec<WireEvent>| WireBatch::new(1, 0, events).encode();
        let refuse = |bytes: Vec<u8>| WireBatch::decode(&bytes, 1).expect_err("refused");
        assert!(matches!(refuse(vec![]), WireError::Format(_)));
        assert!(matches!(refuse(vec![9, 1, 2]), WireError::Version(9)));
        assert!(matches!(refuse(vec![1, 0xff, 0xff, 0xff]), WireError::Format(_)));
        let mut trailing = ok(vec![json_event(1, "{}")]);
        trailing.push(0);
        assert_eq!(refuse(trailing), WireError::Format("1 bytes after the batch".into()));
        assert_eq!(
            WireBatch::decode(&ok(vec![json_event(1, "{}")]), 2),
            Err(WireError::Plant { body: 1, expected: 2 })
        );
        // Another plant's sensor, NaN, ±inf, a lying occurred_at, garbage telemetry.
        for readings in [
            vec![Reading::new(2_000_001, T, 1.0)],
            vec![Reading::new(1_000_001, T, f64::NAN)],
            vec![Reading::new(1_000_001, T, f64::INFINITY)],
            vec![Reading::new(1_000_001, T, f64::NEG_INFINITY)],
        ] {
            assert!(matches!(refuse(ok(vec![telemetry_event(1, &readings)])), WireError::Event { position: 1, .. }));
        }
        let mut lying = telemetry_event(1, &[Reading::new(1_000_001, T, 1e300)]);
        if let WireBody::Telemetry { occurred_at_ms, .. } = &mut lying.body {
            *occurred_at_ms -= 1;
        }
        assert!(matches!(refuse(ok(vec![lying])), WireError::Event { .. }));
        let garbage =
            WireEvent { body: WireBody::Telemetry { occurred_at_ms: T, bytes: vec![1, 0, 0] }, ..json_event(1, "{}") };
        assert!(matches!(refuse(ok(vec![garbage])), WireError::Event { .. }));
        // Bad JSON, NUL in a stream name, a bad type, out of order, a huge payload.
        assert!(matches!(refuse(ok(vec![json_event(1, "{not json")])), WireError::Event { .. }));
        assert!(matches!(refuse(ok(vec![json_event(1, r#"{"a":"x\u0000y"}"#)])), WireError::Event { .. }));
        let nul_actor = WireEvent { metadata: WireMetadata::from(&Metadata::by("a\0b")), ..json_event(1, "{}") };
        assert!(matches!(refuse(ok(vec![nul_actor])), WireError::Event { .. }));
        let nul = WireEvent { stream: "anomaly-a\0b".into(), ..json_event(1, "{}") };
        assert!(matches!(refuse(ok(vec![nul])), WireError::Event { .. }));
        let bad_type = WireEvent { event_type: "drop table".into(), ..json_event(1, "{}") };
        assert!(matches!(refuse(ok(vec![bad_type])), WireError::Event { .. }));
        assert!(matches!(refuse(ok(vec![json_event(2, "{}"), json_event(2, "{}")])), WireError::Event { .. }));
        assert!(matches!(refuse(ok(vec![json_event(0, "{}")])), WireError::Event { .. }));
        let huge = format!("\"{}\"", "x".repeat(eventlog::MAX_JSON_PAYLOAD_BYTES + 1));
        assert!(matches!(refuse(ok(vec![json_event(1, &huge)])), WireError::Event { .. }));
        let bad_time = WireEvent { recorded_at_ms: i64::MAX, ..json_event(1, "{}") };
        assert!(matches!(refuse(ok(vec![bad_time])), WireError::Event { .. }));
        let earliest = WireEvent { recorded_at_ms: EARLIEST_STORABLE_MS, ..json_event(1, "{}") };
        assert!(WireBatch::decode(&ok(vec![earliest]), 1).is_ok());
        let too_early = WireEvent { recorded_at_ms: EARLIEST_STORABLE_MS - 1, ..json_event(1, "{}") };
        assert!(matches!(refuse(ok(vec![too_early])), WireError::Event { .. }));
    }
}
