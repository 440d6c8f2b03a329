//! The log's vocabulary: stream names, expected versions, new and recorded events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use telemetry::Reading;
use thiserror::Error;

/// Largest JSON payload of one domain event, in bytes.
pub const MAX_JSON_PAYLOAD_BYTES: usize = 256 * 1024;
/// Largest binary payload of one telemetry event, in bytes.
pub const MAX_BINARY_PAYLOAD_BYTES: usize = 2 * 1024 * 1024;
const MAX_STREAM_NAME_BYTES: usize = 200;
const MAX_TYPE_BYTES: usize = 100;
const MAX_KEY_BYTES: usize = 200;
const MAX_METADATA_FIELD_BYTES: usize = 200;

/// Input the log refuses, with what is wrong.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum InvalidInput {
    #[error(
        "stream name {0:?} is not `category-id` (category: a letter then letters/digits; id: letters, digits, `-_.:`)"
    )]
    StreamName(String),
    #[error("event type {0:?} must be 1..={MAX_TYPE_BYTES} ASCII letters and digits starting with a capital letter")]
    EventType(String),
    #[error("{what} is {len} bytes; the limit is {max}")]
    TooLarge { what: &'static str, len: usize, max: usize },
    #[error("an append needs at least one event")]
    NoEvents,
    #[error("idempotency key must be 1..={MAX_KEY_BYTES} printable ASCII characters")]
    IdempotencyKey,
    #[error("reading {index} of sensor {sensor} has a non-finite value")]
    NonFiniteValue { index: usize, sensor: u32 },
    #[error("reading {index} of sensor {sensor} at {ts_ms} ms is outside the accepted window {from_ms}..={to_ms} ms")]
    TimestampOutOfWindow { index: usize, sensor: u32, ts_ms: i64, from_ms: i64, to_ms: i64 },
    #[error("telemetry batch: {0}")]
    Batch(String),
    #[error("metadata field {0} is longer than {MAX_METADATA_FIELD_BYTES} bytes")]
    Metadata(&'static str),
}

/// A validated `category-id` stream name, e.g. `machine-P1-L03-M042`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamName(String);

impl StreamName {
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidInput> {
        let name = name.into();
        let valid = name.len() <= MAX_STREAM_NAME_BYTES
            && name.split_once('-').is_some_and(|(category, id)| {
                category.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && category.chars().all(|c| c.is_ascii_alphanumeric())
                    && !id.is_empty()
                    && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
            });
        if valid { Ok(StreamName(name)) } else { Err(InvalidInput::StreamName(name)) }
    }

    /// Builds `category-id` from its parts.
    pub fn of(category: &str, id: &str) -> Result<Self, InvalidInput> {
        StreamName::new(format!("{category}-{id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn category(&self) -> &str {
        self.0.split_once('-').map_or(&self.0, |(c, _)| c)
    }

    pub fn id(&self) -> &str {
        self.0.split_once('-').map_or("", |(_, id)| id)
    }
}

impl std::fmt::Display for StreamName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for StreamName {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        StreamName::new(s)
    }
}

impl From<StreamName> for String {
    fn from(s: StreamName) -> String {
        s.0
    }
}

/// What the appender believes the stream's current version is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// Append whatever the stream holds.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have exactly this version (versions start at 1).
    Exact(u64),
}

impl ExpectedVersion {
    pub(crate) fn admits(self, current: u64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current == 0,
            ExpectedVersion::Exact(v) => v == current,
        }
    }
}

/// Who and what caused an event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    /// The person or service that acted (e.g. `supervisor:alice`, `monitor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Where the event came from (e.g. `gateway:P1-L03`, `workstation:floor-2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Metadata {
    pub fn from_source(source: impl Into<String>) -> Self {
        Metadata { source: Some(source.into()), ..Metadata::default() }
    }

    pub fn by(actor: impl Into<String>) -> Self {
        Metadata { actor: Some(actor.into()), ..Metadata::default() }
    }

    fn validate(&self) -> Result<(), InvalidInput> {
        let fields = [
            ("correlation_id", &self.correlation_id),
            ("causation_id", &self.causation_id),
            ("actor", &self.actor),
            ("source", &self.source),
        ];
        for (name, value) in fields {
            if value.as_ref().is_some_and(|v| v.len() > MAX_METADATA_FIELD_BYTES) {
                return Err(InvalidInput::Metadata(name));
            }
        }
        Ok(())
    }
}

/// An event's body: JSON for domain events, a binary batch for telemetry.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Json(serde_json::Value),
    /// Encoded readings (see the `telemetry` crate); kept for the retention window only,
    /// in the partition of `occurred_at`.
    Telemetry {
        bytes: Vec<u8>,
        occurred_at: DateTime<Utc>,
    },
}

/// An event about to be appended.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_type: String,
    pub schema_version: i16,
    pub payload: Payload,
    pub metadata: Metadata,
}

/// Event type of a telemetry batch.
pub const READINGS_RECORDED: &str = "ReadingsRecorded";

impl NewEvent {
    /// A domain event with a JSON body.
    pub fn json(
        event_type: &str,
        schema_version: i16,
        body: &impl Serialize,
        metadata: Metadata,
    ) -> Result<NewEvent, InvalidInput> {
        let value = serde_json::to_value(body).map_err(|e| InvalidInput::Batch(e.to_string()))?;
        let event =
            NewEvent { event_type: event_type.to_owned(), schema_version, payload: Payload::Json(value), metadata };
        event.validate()?;
        Ok(event)
    }

    /// A `ReadingsRecorded` event: every value finite, every timestamp within
    /// `window_ms` (from..=to, ms since the epoch). `occurred_at` is the earliest reading.
    pub fn readings(readings: &[Reading], window_ms: (i64, i64), metadata: Metadata) -> Result<NewEvent, InvalidInput> {
        let (from_ms, to_ms) = window_ms;
        for (index, r) in readings.iter().enumerate() {
            if !r.value.is_finite() {
                return Err(InvalidInput::NonFiniteValue { index, sensor: r.sensor });
            }
            if r.ts_ms < from_ms || r.ts_ms > to_ms {
                return Err(InvalidInput::TimestampOutOfWindow {
                    index,
                    sensor: r.sensor,
                    ts_ms: r.ts_ms,
                    from_ms,
                    to_ms,
                });
            }
        }
        let bytes = telemetry::encode(readings).map_err(|e| InvalidInput::Batch(e.to_string()))?;
        let earliest = readings.iter().map(|r| r.ts_ms).min().unwrap_or(from_ms);
        let occurred_at = DateTime::from_timestamp_millis(earliest)
            .ok_or_else(|| InvalidInput::Batch(format!("timestamp {earliest} ms is not representable")))?;
        let event = NewEvent {
            event_type: READINGS_RECORDED.to_owned(),
            schema_version: 1,
            payload: Payload::Telemetry { bytes, occurred_at },
            metadata,
        };
        event.validate()?;
        Ok(event)
    }

    pub(crate) fn validate(&self) -> Result<(), InvalidInput> {
        let t = &self.event_type;
        let type_ok = !t.is_empty()
            && t.len() <= MAX_TYPE_BYTES
            && t.starts_with(|c: char| c.is_ascii_uppercase())
            && t.chars().all(|c| c.is_ascii_alphanumeric());
        if !type_ok {
            return Err(InvalidInput::EventType(t.clone()));
        }
        match &self.payload {
            Payload::Json(v) => {
                let len = serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX);
                if len > MAX_JSON_PAYLOAD_BYTES {
                    return Err(InvalidInput::TooLarge { what: "JSON payload", len, max: MAX_JSON_PAYLOAD_BYTES });
                }
            }
            Payload::Telemetry { bytes, .. } => {
                if bytes.len() > MAX_BINARY_PAYLOAD_BYTES {
                    return Err(InvalidInput::TooLarge {
                        what: "binary payload",
                        len: bytes.len(),
                        max: MAX_BINARY_PAYLOAD_BYTES,
                    });
                }
            }
        }
        self.metadata.validate()
    }
}

/// One append: events for one stream, under an expectation, optionally idempotent.
#[derive(Debug, Clone, PartialEq)]
pub struct Append {
    pub stream: StreamName,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
    /// A second append with the same key stores nothing and returns the first result.
    pub idempotency_key: Option<String>,
}

impl Append {
    pub fn new(stream: StreamName, expected: ExpectedVersion, events: Vec<NewEvent>) -> Self {
        Append { stream, expected, events, idempotency_key: None }
    }

    pub fn idempotent(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    pub(crate) fn validate(&self) -> Result<(), InvalidInput> {
        if self.events.is_empty() {
            return Err(InvalidInput::NoEvents);
        }
        if let Some(key) = &self.idempotency_key
            && (key.is_empty() || key.len() > MAX_KEY_BYTES || !key.chars().all(|c| c.is_ascii_graphic()))
        {
            return Err(InvalidInput::IdempotencyKey);
        }
        self.events.iter().try_for_each(NewEvent::validate)
    }
}

/// What an append stored (or, for a repeated idempotency key, what the first one stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub stream: StreamName,
    pub first_position: i64,
    pub last_position: i64,
    pub first_version: u64,
    pub last_version: u64,
    /// True when the idempotency key had been seen and nothing was written.
    pub duplicate: bool,
}

/// An event read back from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub position: i64,
    pub stream: StreamName,
    pub version: u64,
    pub event_type: String,
    pub schema_version: i16,
    pub payload: Payload,
    pub metadata: Metadata,
    pub idempotency_key: Option<String>,
    pub recorded_at: DateTime<Utc>,
    /// Where an imported event came from (a cloud log's copy of a plant's event); `None`
    /// for an event appended to this log itself.
    pub origin: Option<Origin>,
}

/// The plant stamp of an imported event: the plant, the event's position in the plant's
/// log, and when the plant recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub plant: u16,
    pub position: i64,
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// The JSON body of a domain event, deserialised.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        match &self.payload {
            Payload::Json(v) => T::deserialize(v),
            Payload::Telemetry { .. } => Err(serde::de::Error::custom("a telemetry batch has no JSON body")),
        }
    }

    /// The readings of a telemetry batch (empty for a domain event).
    pub fn readings(&self) -> Result<Vec<Reading>, telemetry::DecodeError> {
        match &self.payload {
            Payload::Telemetry { bytes, .. } => telemetry::decode(bytes),
            Payload::Json(_) => Ok(Vec::new()),
        }
    }

    /// How many readings a telemetry batch holds, from its header (0 for a domain event;
    /// 1 for a batch whose header cannot be read, which its reader will find and report).
    pub fn reading_count(&self) -> usize {
        match &self.payload {
            Payload::Telemetry { bytes, .. } => telemetry::count(bytes).unwrap_or(1),
            Payload::Json(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_are_category_dash_id() {
        for good in ["machine-P1-L03-M042", "anomaly-7f3a.1", "readings-P1-L03", "a-b", "x1-y:z_w"] {
            let s = StreamName::new(good).unwrap();
            assert_eq!(s.as_str(), good);
        }
        assert_eq!(StreamName::new("machine-P1-L03").unwrap().category(), "machine");
        assert_eq!(StreamName::new("machine-P1-L03").unwrap().id(), "P1-L03");
        let too_long = format!("a-{}", "b".repeat(300));
        for bad in
            ["", "machine", "machine-", "-id", "1abc-x", "ma chine-x", "m-x y", "m-x'; DROP TABLE", "ß-x", &too_long]
        {
            assert!(StreamName::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn expected_versions_admit_only_what_they_say() {
        assert!(ExpectedVersion::Any.admits(0) && ExpectedVersion::Any.admits(9));
        assert!(ExpectedVersion::NoStream.admits(0) && !ExpectedVersion::NoStream.admits(1));
        assert!(ExpectedVersion::Exact(3).admits(3) && !ExpectedVersion::Exact(3).admits(2));
    }

    #[test]
    fn readings_must_be_finite_and_in_window() {
        let m = Metadata::default();
        let ok = [Reading::new(1, 100, 1.0), Reading::new(2, 150, 2.0)];
        let e = NewEvent::readings(&ok, (0, 200), m.clone()).unwrap();
        assert!(matches!(&e.payload, Payload::Telemetry { occurred_at, .. } if occurred_at.timestamp_millis() == 100));
        let nan = [Reading::new(1, 100, f64::NAN)];
        assert_eq!(
            NewEvent::readings(&nan, (0, 200), m.clone()),
            Err(InvalidInput::NonFiniteValue { index: 0, sensor: 1 })
        );
        let late = [Reading::new(1, 100, 1.0), Reading::new(4, 900, 1.0)];
        assert!(matches!(
            NewEvent::readings(&late, (0, 200), m.clone()),
            Err(InvalidInput::TimestampOutOfWindow { index: 1, sensor: 4, .. })
        ));
        assert!(matches!(NewEvent::readings(&[], (0, 200), m), Err(InvalidInput::Batch(_))));
    }

    #[test]
    fn oversized_and_malformed_events_are_refused() {
        let big = "x".repeat(MAX_JSON_PAYLOAD_BYTES + 1);
        assert!(matches!(
            NewEvent::json("NoteAdded", 1, &big, Metadata::default()),
            Err(InvalidInput::TooLarge { .. })
        ));
        for bad_type in ["", "lowercase", "Has Space", "Semi;colon"] {
            assert!(NewEvent::json(bad_type, 1, &1, Metadata::default()).is_err(), "{bad_type:?}");
        }
        let long_actor = Metadata::by("a".repeat(201));
        assert_eq!(NewEvent::json("NoteAdded", 1, &1, long_actor), Err(InvalidInput::Metadata("actor")));
        let stream = StreamName::new("note-1").unwrap();
        assert_eq!(Append::new(stream.clone(), ExpectedVersion::Any, vec![]).validate(), Err(InvalidInput::NoEvents));
        let event = NewEvent::json("NoteAdded", 1, &1, Metadata::default()).unwrap();
        for key in ["", "has space", &"k".repeat(201)] {
            let append = Append::new(stream.clone(), ExpectedVersion::Any, vec![event.clone()]).idempotent(key);
            assert_eq!(append.validate(), Err(InvalidInput::IdempotencyKey));
        }
    }
}
