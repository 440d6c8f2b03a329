//! The machine model: a change of load moves every sensor of a machine by its own gain and
//! must not be reported; one sensor leaving the others must be; what was learned must
//! survive a day-long stop and the new levels after a repair.

use detector::machine::Residual;
use detector::stats::SplitMix;
use detector::{MachineModel, MachineModelConfig};

const GAINS: [f64; 6] = [6.0, -4.0, 8.0, 3.0, 5.0, -6.0];
const LEVELS: [f64; 6] = [100.0, 50.0, 70.0, 20.0, 30.0, 80.0];
const NOISE: f64 = 0.2;
const ALARM: f32 = 0.6;

/// A machine whose load moves to a new level every 15 minutes (ramping over a minute), and
/// whose sensors read `level + offset + gain · load + noise` every second.
struct Machine {
    rng: SplitMix,
    t_s: i64,
    load: f64,
    from: f64,
    to: f64,
    offsets: [f64; 6],
    running: bool,
}

impl Machine {
    fn new(seed: u64) -> Self {
        Machine { rng: SplitMix::new(seed), t_s: 0, load: 0.6, from: 0.6, to: 0.6, offsets: [0.0; 6], running: true }
    }

    /// One second: the six readings.
    fn step(&mut self) -> [f64; 6] {
        if self.running {
            let phase = self.t_s % 900;
            if phase == 0 {
                self.from = self.load;
                self.to = self.rng.range(0.3, 1.0);
            }
            self.load = self.from + (self.to - self.from) * (phase as f64 / 60.0).min(1.0);
        } else {
            self.load = 0.0;
        }
        self.t_s += 1;
        std::array::from_fn(|i| LEVELS[i] + self.offsets[i] + GAINS[i] * self.load + NOISE * self.rng.normal())
    }

    fn ts_ms(&self) -> i64 {
        1_772_409_600_000 + self.t_s * 1000
    }
}

/// Feeds `seconds` of the machine to the model, altering each instant's readings with
/// `fault`; returns the residual scores.
fn run(
    model: &mut MachineModel,
    machine: &mut Machine,
    seconds: i64,
    mut fault: impl FnMut(i64, &mut [f64; 6]),
) -> Vec<(i64, Residual)> {
    let cfg = MachineModelConfig::default();
    let mut out = Vec::new();
    let mut scores = Vec::new();
    for _ in 0..seconds {
        let mut row = machine.step();
        fault(machine.t_s, &mut row);
        let ts = machine.ts_ms();
        for (i, v) in row.iter().enumerate() {
            model.observe(1000 + i as u32, ts, *v, &cfg, &mut out).expect("valid settings");
        }
        scores.extend(out.drain(..).map(|r| (machine.t_s, r)));
    }
    scores
}

fn alarms(scores: &[(i64, Residual)]) -> Vec<&(i64, Residual)> {
    scores.iter().filter(|(_, r)| r.score.score >= ALARM).collect()
}

#[test]
fn given_a_machine_whose_load_changes_then_the_model_learns_it_and_raises_almost_nothing() {
    let cfg = MachineModelConfig::default();
    let mut model = MachineModel::default();
    let mut machine = Machine::new(1);
    run(&mut model, &mut machine, 3 * 3600, |_, _| {});
    assert!(
        model.ready(&cfg),
        "the load direction is known after three hours of changes: eigenvalue {}",
        model.eigenvalue()
    );
    // The direction found is the gains' direction (up to sign).
    let v: Vec<f64> = model.loadings().iter().map(|l| f64::from(l.1)).collect();
    let g_norm = GAINS.iter().map(|g| g * g).sum::<f64>().sqrt();
    let v_norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let cos = GAINS.iter().zip(&v).map(|(g, x)| g * x).sum::<f64>() / (g_norm * v_norm);
    assert!(cos.abs() > 0.95, "direction {v:?} against gains {GAINS:?}: cos {cos}");

    // Six more hours: 24 changes of load, each of up to 2.8 σ·gain, none of them a fault.
    // Residuals that score nothing are not reported, so the share is taken of every
    // sensor's residual at every second.
    let scores = run(&mut model, &mut machine, 6 * 3600, |_, _| {});
    let judged = 6 * 3600 * GAINS.len();
    let raised = alarms(&scores);
    assert!(
        raised.len() * 1000 < judged,
        "{} of {} residuals over the alarm threshold, first {:?}",
        raised.len(),
        judged,
        raised.first()
    );
}

#[test]
fn given_a_learned_machine_when_one_sensor_shifts_then_its_residual_alarms_within_seconds() {
    let mut model = MachineModel::default();
    let mut machine = Machine::new(2);
    run(&mut model, &mut machine, 4 * 3600, |_, _| {});
    let start = machine.t_s;
    // Sensor 3 falls by 8 σ of its noise while the load keeps moving.
    let scores = run(&mut model, &mut machine, 1800, |t, row| {
        if t > start + 300 {
            row[3] -= 8.0 * NOISE;
        }
    });
    let first = alarms(&scores).into_iter().find(|(t, r)| r.sensor == 1003 && *t > start + 300);
    let (t, r) = first.expect("the shifted sensor's residual alarms");
    assert!(t - (start + 300) <= 10, "alarm {} s after the shift", t - (start + 300));
    assert!(r.score.value < r.score.expected, "observed below expected: {:?}", r.score);
    let others = alarms(&scores).into_iter().filter(|(t, r)| r.sensor != 1003 && *t > start + 300).count();
    assert!(others <= 5, "the other sensors stay quiet: {others} alarms");
}

#[test]
fn given_a_day_long_stop_and_new_levels_after_repair_then_changes_of_load_still_raise_almost_nothing() {
    let cfg = MachineModelConfig::default();
    let mut model = MachineModel::default();
    let mut machine = Machine::new(3);
    run(&mut model, &mut machine, 4 * 3600, |_, _| {});
    assert!(model.ready(&cfg));
    // Stopped for a day: the sensors read their idle levels, nothing moves.
    machine.running = false;
    run(&mut model, &mut machine, 24 * 3600, |_, _| {});
    assert!(model.ready(&cfg), "a stop does not make the model forget its direction");
    // Back from repair: every sensor sits at a new level (wear reset), the load restarts.
    machine.offsets = [-2.0, 1.0, -1.5, 0.5, -1.0, 1.5];
    machine.running = true;
    // The new levels are reported until the residual detectors take them for the new
    // normal (they adapt after half an hour), and not forever.
    let settling = run(&mut model, &mut machine, 2700, |_, _| {});
    assert!(!alarms(&settling).is_empty(), "levels moved by up to 10 σ are noticed");
    assert!(alarms(&settling).iter().all(|(t, _)| *t < machine.t_s - 300), "and accepted within 40 minutes");
    let scores = run(&mut model, &mut machine, 6 * 3600, |_, _| {});
    let raised = alarms(&scores);
    assert!(
        raised.len() * 1000 < scores.len(),
        "{} of {} residuals over the alarm threshold after the restart, first {:?}",
        raised.len(),
        scores.len(),
        raised.first()
    );
}

#[test]
fn the_model_round_trips_through_serde_and_continues_identically() {
    let mut a = MachineModel::default();
    let mut machine = Machine::new(4);
    run(&mut a, &mut machine, 3600, |_, _| {});
    let mut b: MachineModel = serde_json::from_str(&serde_json::to_string(&a).expect("serialize")).expect("restore");
    let mut twin = Machine::new(4);
    run(&mut MachineModel::default(), &mut twin, 3600, |_, _| {});
    let sa = run(&mut a, &mut machine, 600, |_, _| {});
    let sb = run(&mut b, &mut twin, 600, |_, _| {});
    assert_eq!(sa.len(), sb.len());
    for (x, y) in sa.iter().zip(&sb) {
        assert_eq!(x.1.sensor, y.1.sensor);
        assert!((x.1.score.score - y.1.score.score).abs() < 1e-4, "{x:?} vs {y:?}");
    }
}

#[test]
fn a_large_fault_on_one_sensor_does_not_leak_into_the_other_sensors_residuals() {
    let mut model = MachineModel::default();
    let mut machine = Machine::new(5);
    run(&mut model, &mut machine, 4 * 3600, |_, _| {});
    let start = machine.t_s;
    // The sensor with the largest gain reads 40 σ high for 40 minutes, long enough for its
    // residual detector to accept the new level: neither the fault nor its acceptance may
    // make the others' residuals move.
    let scores = run(&mut model, &mut machine, 2400, |t, row| {
        if t > start + 60 {
            row[2] += 40.0 * NOISE;
        }
    });
    assert!(alarms(&scores).iter().any(|(_, r)| r.sensor == 1002), "the faulty sensor alarms");
    let others: Vec<_> = alarms(&scores).into_iter().filter(|(_, r)| r.sensor != 1002).collect();
    assert!(others.len() <= 5, "{} alarms on the other sensors, first {:?}", others.len(), others.first());
}

#[test]
fn a_machine_that_never_changes_load_still_reports_a_sensor_that_jumps_alone() {
    let cfg = MachineModelConfig::default();
    let mut model = MachineModel::default();
    let mut machine = Machine::new(6);
    machine.running = false;
    run(&mut model, &mut machine, 2 * 3600, |_, _| {});
    assert!(!model.ready(&cfg), "no change of load, no direction");
    let start = machine.t_s;
    let scores = run(&mut model, &mut machine, 600, |t, row| {
        if t > start + 60 {
            row[1] += 10.0 * NOISE;
        }
    });
    let first = alarms(&scores).into_iter().find(|(_, r)| r.sensor == 1001).expect("the lone shift is reported");
    assert!(first.0 - (start + 60) <= 10, "{} s after the shift", first.0 - (start + 60));
    assert!(alarms(&scores).iter().filter(|(_, r)| r.sensor != 1001).count() <= 2);
}

/// A machine like a curing oven: sensors whose responses to load differ a hundredfold in
/// units of their noise (a damper's position against a chamber humidity), a load that
/// moves to a new target at random (a tenth of the time towards idle) and follows it with
/// a one-minute lag, and sensors that report at a random share of the instants only.
struct Plant {
    rng: SplitMix,
    t_s: i64,
    load: f64,
    target: f64,
    next_change_s: i64,
    gains: Vec<f64>,
    shares: Vec<f64>,
    /// Each sensor's departure from its healthy reading, and how much it grows a second
    /// (a fault of one sensor, set by a test).
    offsets: Vec<f64>,
    ramps: Vec<f64>,
}

impl Plant {
    fn new(seed: u64, gains: &[f64], shares: &[f64]) -> Self {
        Plant {
            rng: SplitMix::new(seed),
            t_s: 0,
            load: 0.75,
            target: 0.75,
            next_change_s: 0,
            gains: gains.to_vec(),
            shares: shares.to_vec(),
            offsets: vec![0.0; gains.len()],
            ramps: vec![0.0; gains.len()],
        }
    }

    /// One second: the readings of the sensors that report (unit noise, level 100).
    fn step(&mut self) -> Vec<Option<f64>> {
        if self.t_s >= self.next_change_s {
            self.target = if self.rng.uniform() < 0.1 { self.rng.range(0.02, 0.15) } else { self.rng.range(0.55, 1.0) };
            self.next_change_s = self.t_s + (-self.rng.uniform().max(1e-9).ln() * 1200.0) as i64 + 1;
        }
        self.load += (self.target - self.load) * (1.0 - (-1.0f64 / 60.0).exp());
        self.t_s += 1;
        let load = self.load;
        for (o, r) in self.offsets.iter_mut().zip(&self.ramps) {
            *o += r;
        }
        (0..self.gains.len())
            .map(|i| {
                let value = 100.0 + self.offsets[i] + self.gains[i] * (load - 0.75) + self.rng.normal();
                (self.rng.uniform() < self.shares[i]).then_some(value)
            })
            .collect()
    }

    /// Feeds `seconds` to the model; returns the residual scores, and calls `each_hour`
    /// with the model at the end of every hour.
    fn run(
        &mut self,
        model: &mut MachineModel,
        seconds: i64,
        mut each_hour: impl FnMut(&MachineModel),
    ) -> Vec<(i64, Residual)> {
        let cfg = MachineModelConfig::default();
        let (mut out, mut scores) = (Vec::new(), Vec::new());
        for _ in 0..seconds {
            let row = self.step();
            let ts = 1_772_409_600_000 + self.t_s * 1000;
            for (i, v) in row.iter().enumerate() {
                if let Some(v) = v {
                    model.observe(1000 + i as u32, ts, *v, &cfg, &mut out).expect("valid settings");
                }
            }
            model.flush(&cfg, &mut out).expect("valid settings");
            scores.extend(out.drain(..).map(|r| (self.t_s, r)));
            if self.t_s % 3600 == 0 {
                each_hour(model);
            }
        }
        scores
    }
}

/// Sensor `i`'s share of the learned direction relative to sensor `j`'s, against what the
/// gains say in the units of the noise scales the model learned.
fn loading_ratio(model: &MachineModel, gains: &[f64], i: usize, j: usize) -> (f64, f64) {
    let l = model.loadings();
    let find = |k: usize| l.iter().find(|x| x.0 == 1000 + k as u32).map(|x| (f64::from(x.1), f64::from(x.2)));
    let ((vi, si), (vj, sj)) = (find(i).expect("modelled"), find(j).expect("modelled"));
    (vi / vj, (gains[i] / si) / (gains[j] / sj))
}

#[test]
fn a_sensor_that_reports_at_half_the_instants_gets_its_full_share_of_the_direction() {
    // Temperatures, currents, flows, two humidities (falling with load, reported at half
    // the instants) and a damper that moves hundreds of noise units with the load.
    let gains = [40.0, 40.0, 40.0, 64.0, 64.0, 50.0, -20.0, -20.0, 330.0];
    let shares = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 1.0];
    let cfg = MachineModelConfig::default();
    let mut model = MachineModel::default();
    let mut plant = Plant::new(21, &gains, &shares);
    plant.run(&mut model, 4 * 3600, |_| {});
    assert!(model.ready(&cfg));
    // Scales are learned from noise, which is 1 for every sensor here; the humidity's share
    // relative to the damper must be the ratio of their gains at every hour, whatever the
    // size of the latest changes of load.
    let mut worst = 0.0f64;
    let scores = plant.run(&mut model, 20 * 3600, |m| {
        for humidity in [6, 7] {
            let (got, expected) = loading_ratio(m, &gains, humidity, 8);
            worst = worst.max((got / expected - 1.0).abs());
        }
    });
    assert!(worst < 0.08, "the humidity's share of the direction is off by up to {:.0} %", 100.0 * worst);
    let raised: Vec<_> = alarms(&scores).into_iter().filter(|(_, r)| r.sensor == 1006 || r.sensor == 1007).collect();
    assert!(raised.len() <= 2, "{} alarms on the humidities, first {:?}", raised.len(), raised.first());
}

#[test]
fn a_change_of_load_while_the_noise_scales_are_learned_does_not_skew_the_direction() {
    // A spindle speed moving 800 noise units with the load, a valve 330, and smaller
    // sensors; the load changes within the first minute, while every scale is learned.
    let gains = [800.0, 330.0, 24.0, 24.0, 72.0, 72.0, 50.0, 27.0];
    let shares = [1.0; 8];
    let cfg = MachineModelConfig::default();
    let mut model = MachineModel::default();
    let mut plant = Plant::new(5, &gains, &shares);
    plant.load = 0.3;
    let scores = plant.run(&mut model, 6 * 3600, |_| {});
    assert!(model.ready(&cfg));
    let (got, expected) = loading_ratio(&model, &gains, 0, 1);
    assert!((got / expected - 1.0).abs() < 0.02, "speed against valve: {got:.3}, expected {expected:.3}");
    let raised = alarms(&scores);
    assert!(raised.len() <= 2, "{} alarms on a healthy machine, first {:?}", raised.len(), raised.first());
}

#[test]
fn a_sensor_drifting_for_hours_does_not_teach_the_machine_a_new_share_of_the_direction() {
    // A CNC: a spindle speed and a valve far above the rest, three temperatures, a
    // vibration, two currents.
    let gains = [800.0, 330.0, 48.0, 48.0, 48.0, 16.0, 72.0, 72.0];
    let cfg = MachineModelConfig::default();
    let mut model = MachineModel::default();
    let mut plant = Plant::new(8, &gains, &[1.0; 8]);
    plant.run(&mut model, 4 * 3600, |_| {});
    assert!(model.ready(&cfg));
    let (before, expected) = loading_ratio(&model, &gains, 3, 0);
    assert!((before / expected - 1.0).abs() < 0.05, "learned {before:.4}, expected {expected:.4}");
    // A temperature drifts away by 70 noise units over two hours (a sensor losing its
    // calibration), then is recalibrated.
    plant.ramps[3] = 70.0 / 7200.0;
    plant.run(&mut model, 2 * 3600, |_| {});
    plant.ramps[3] = 0.0;
    plant.offsets[3] = 0.0;
    let (after, _) = loading_ratio(&model, &gains, 3, 0);
    assert!((after / expected - 1.0).abs() < 0.1, "after the drift: learned {after:.4}, expected {expected:.4}");
    // Its residual detector relearns the recalibrated level, and from then on changes of
    // load raise nothing on it.
    plant.run(&mut model, 3600, |_| {});
    let scores = plant.run(&mut model, 6 * 3600, |_| {});
    let raised: Vec<_> = alarms(&scores).into_iter().filter(|(_, r)| r.sensor == 1003).collect();
    assert!(raised.len() <= 1, "{} alarms on the recalibrated sensor, first {:?}", raised.len(), raised.first());
}
