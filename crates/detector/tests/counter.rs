//! A machine's counter judged by its operating point: a counter that stops while its
//! machine runs is stuck, one that pauses because its machine idles is not.

use detector::stats::SplitMix;
use detector::{Config, Detector, Enabled, EpisodeConfig, EpisodeEvent, EpisodeTracker, SensorState, Test};

const GAINS: [f64; 6] = [6.0, -4.0, 8.0, 3.0, 5.0, -6.0];
const LEVELS: [f64; 6] = [100.0, 50.0, 70.0, 20.0, 30.0, 80.0];
const NOISE: f64 = 0.2;
const COUNTER: u32 = 2000;
/// Parts per second at load 0.75 (two a minute).
const PARTS_PER_S: f64 = 2.0 / 60.0;

/// A machine whose load moves every 15 minutes (ramping over a minute), idle at 0.05 one
/// time in four, and whose counter counts parts at a rate proportional to the load.
struct Machine {
    rng: SplitMix,
    t_s: i64,
    load: f64,
    from: f64,
    to: f64,
    count: f64,
}

impl Machine {
    fn new(seed: u64) -> Self {
        Machine { rng: SplitMix::new(seed), t_s: 0, load: 0.8, from: 0.8, to: 0.8, count: 0.0 }
    }

    fn step(&mut self) -> ([f64; 6], f64) {
        let phase = self.t_s % 900;
        if phase == 0 {
            self.from = self.load;
            self.to = if self.rng.range(0.0, 1.0) < 0.25 { 0.05 } else { self.rng.range(0.55, 1.0) };
        }
        self.load = self.from + (self.to - self.from) * (phase as f64 / 60.0).min(1.0);
        self.t_s += 1;
        self.count += PARTS_PER_S * self.load / 0.75;
        let row = std::array::from_fn(|i| LEVELS[i] + GAINS[i] * self.load + NOISE * self.rng.normal());
        (row, self.count.floor())
    }

    fn ts_ms(&self) -> i64 {
        1_772_409_600_000 + self.t_s * 1000
    }
}

/// The counter's own detector, as the plant runs it: only the stuck and dropout tests.
fn counter_detector() -> Detector {
    let enabled = Enabled {
        spike: false,
        level_shift: false,
        drift: false,
        variance: false,
        chatter: false,
        ..Enabled::default()
    };
    Detector::new(Config { enabled, ..Config::default() }).expect("valid settings")
}

/// Runs the machine for `seconds`, the counter frozen while `stopped(t_s, load)`; returns
/// the times (s) at which an episode named the counter, and the highest level the
/// counter's own detector gave.
fn run(seconds: i64, watch: bool, mut stopped: impl FnMut(i64, f64) -> bool) -> (Vec<i64>, f32) {
    let own = counter_detector();
    let raw = Detector::new(Config::beside_machine_model()).expect("valid settings");
    let mut tracker = EpisodeTracker::new("M1", EpisodeConfig::default()).expect("valid settings");
    if watch {
        tracker.watch_counter(COUNTER);
    } else {
        tracker.leave_out_of_model(COUNTER);
    }
    let mut machine = Machine::new(11);
    let mut states = vec![SensorState::default(); 6];
    let mut counter_state = SensorState::default();
    let mut frozen: Option<f64> = None;
    let mut named = Vec::new();
    let mut own_peak = 0.0f32;
    for _ in 0..seconds {
        let (row, count) = machine.step();
        let ts = machine.ts_ms();
        let mut events = Vec::new();
        for (i, v) in row.iter().enumerate() {
            let s = raw.next(&mut states[i], ts, *v).expect("finite");
            events.extend(tracker.observe(1000 + i as u32, &s));
        }
        let value = if stopped(machine.t_s, machine.load) { *frozen.get_or_insert(count) } else { count };
        if !stopped(machine.t_s, machine.load) {
            frozen = None;
        }
        let s = own.next(&mut counter_state, ts, value).expect("finite");
        if s.test == Test::Stuck {
            own_peak = own_peak.max(s.level);
        }
        events.extend(tracker.observe(COUNTER, &s));
        for e in events {
            if let EpisodeEvent::Detected(ep) | EpisodeEvent::Updated(ep) = e
                && ep.sensors.iter().any(|x| x.sensor == COUNTER)
                && named.last().is_none_or(|t| machine.t_s - t > 600)
            {
                named.push(machine.t_s);
            }
        }
    }
    (named, own_peak)
}

const HOUR: i64 = 3600;

#[test]
fn a_counter_pausing_while_its_machine_idles_raises_nothing() {
    let (named, _) = run(12 * HOUR, true, |_, _| false);
    assert!(named.is_empty(), "the counter was named at {named:?} s");
}

#[test]
fn a_counter_that_stops_for_nine_minutes_while_its_machine_runs_is_named_at_once() {
    // Stopped for 9 minutes from the first instant after 8 h at which the machine runs at
    // 0.6 or more (it may go idle or change load meanwhile).
    let stop = |begun: &mut Option<i64>, t: i64, load: f64| {
        if begun.is_none() && t >= 8 * HOUR && load >= 0.6 {
            *begun = Some(t);
        }
        begun.is_some_and(|b| t < b + 540)
    };
    let mut begun = None;
    let (named, own_peak) = run(10 * HOUR, true, |t, load| stop(&mut begun, t, load));
    let start = begun.expect("the machine runs after 8 h");
    assert!(
        named.iter().any(|t| (start..start + 540).contains(t)),
        "the counter stopped at {start} s was named at {named:?} s (own detector's peak {own_peak})"
    );
    assert_eq!(named.len(), 1, "{named:?}");
    // Judged alone, against the long pauses it makes while its machine idles, the same stop
    // is nothing: that is why the operating point must judge it.
    let mut begun = None;
    let (alone, _) = run(10 * HOUR, false, |t, load| stop(&mut begun, t, load));
    assert!(alone.is_empty(), "judged alone the counter was named at {alone:?} s");
}
