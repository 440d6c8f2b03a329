//! The connection state the badge shows (live / reconnecting / offline as of …) and the
//! back-off between attempts. Pure: every transition takes the time as an argument.

use serde::Serialize;

/// What the app's link to its plant is doing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Link {
    /// No plant is configured yet (first run).
    NotConfigured,
    /// The first connection attempt since start.
    Connecting { as_of_ms: Option<i64> },
    /// Subscribed and caught up; `since_ms` is when it became live.
    Live { since_ms: i64, position: i64 },
    /// Lost the connection a moment ago and retrying; the screen still shows data as of `as_of_ms`.
    Reconnecting { attempt: u32, retry_at_ms: i64, as_of_ms: Option<i64>, reason: String },
    /// Unreachable for a while: the cache is what the screen shows.
    Offline { attempt: u32, retry_at_ms: i64, as_of_ms: Option<i64>, reason: String },
}

/// Attempts after a loss that still count as "reconnecting" rather than "offline".
const RECONNECTING_ATTEMPTS: u32 = 3;

impl Link {
    /// The time the data on screen was last known to be current.
    pub fn as_of_ms(&self) -> Option<i64> {
        match self {
            Link::NotConfigured => None,
            Link::Connecting { as_of_ms } | Link::Reconnecting { as_of_ms, .. } | Link::Offline { as_of_ms, .. } => {
                *as_of_ms
            }
            Link::Live { .. } => None,
        }
    }

    pub fn is_live(&self) -> bool {
        matches!(self, Link::Live { .. })
    }

    /// After a failed attempt (or a lost connection) number `attempt` (from 1), retrying at `retry_at_ms`.
    pub fn failed(attempt: u32, retry_at_ms: i64, as_of_ms: Option<i64>, reason: String) -> Link {
        if attempt <= RECONNECTING_ATTEMPTS {
            Link::Reconnecting { attempt, retry_at_ms, as_of_ms, reason }
        } else {
            Link::Offline { attempt, retry_at_ms, as_of_ms, reason }
        }
    }
}

/// Exponential back-off with jitter: `base_ms × 2^(attempt−1)` capped at `max_ms`, then
/// scaled by a factor in [0.5, 1.0] so many clients do not retry in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base_ms: u64,
    pub max_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base_ms: 500, max_ms: 30_000 }
    }
}

impl Backoff {
    /// The wait before attempt `attempt` (1 is the first retry). `jitter` in [0, 1) comes
    /// from the caller so the schedule is reproducible in tests.
    pub fn delay_ms(&self, attempt: u32, jitter: f64) -> u64 {
        let exp = attempt.saturating_sub(1).min(30);
        let raw = self.base_ms.saturating_mul(1u64 << exp).min(self.max_ms);
        let j = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.0 };
        ((raw as f64) * (0.5 + 0.5 * j)).round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_and_is_capped() {
        let b = Backoff { base_ms: 500, max_ms: 30_000 };
        let full: Vec<u64> = (1..=9).map(|a| b.delay_ms(a, 1.0)).collect();
        assert_eq!(full, vec![500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
        assert_eq!(b.delay_ms(1, 0.0), 250);
        assert_eq!(b.delay_ms(u32::MAX, 1.0), 30_000);
        assert_eq!(b.delay_ms(2, f64::NAN), 500, "bad jitter is treated as none");
        assert_eq!(b.delay_ms(2, 7.0), 1000);
    }

    #[test]
    fn a_short_outage_is_reconnecting_and_a_long_one_offline() {
        let r = Link::failed(1, 10, Some(5), "gone".into());
        assert!(matches!(r, Link::Reconnecting { .. }));
        assert_eq!(r.as_of_ms(), Some(5));
        let o = Link::failed(4, 10, Some(5), "gone".into());
        assert!(matches!(o, Link::Offline { .. }));
        assert_eq!(o.as_of_ms(), Some(5));
        assert!(!o.is_live());
    }

    #[test]
    fn the_badge_serializes_with_its_state_name() {
        let json = serde_json::to_value(Link::Live { since_ms: 1, position: 2 }).unwrap();
        assert_eq!(json["state"], "live");
    }
}
