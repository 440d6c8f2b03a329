//! Prints one synthetic sensor's scores around its faults, for tuning.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let target: u32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let kind = args.get(2).cloned().unwrap_or_else(|| "drift".into());
    let spec = detector::synth::PlantSpec { duration_s: 7.0 * 86400.0, ..Default::default() };
    let mut plant = detector::synth::Plant::new(spec);
    let faults: Vec<_> = plant.faults().iter().filter(|f| f.kind.name() == kind).cloned().collect();
    let f = faults.get(target as usize).expect("fault").clone();
    println!("{:?}", f);
    let sensor = f.sensors[0] as usize;
    let det = detector::Detector::new(detector::Config::default()).expect("cfg");
    let mut st = detector::SensorState::default();
    let mut out = Vec::new();
    loop {
        let now = plant.now_ms();
        if now > f.end_ms + 600_000 {
            break;
        }
        plant.step(&mut out);
        if let Some(&(_, v)) = out.iter().find(|(s, _)| *s as usize == sensor) {
            let s = det.next(&mut st, now, v).expect("finite");
            if now >= f.start_ms - 120_000 && (now - f.start_ms) % 30_000 == 0
                || s.score > 0.5 && now >= f.start_ms - 3_600_000
            {
                let d = st.diagnostics();
                println!(
                    "t={:>6}s v={:.4} exp={:.4} sc={:.3} {:?} sigma={:.4} tails={:?} shift_sd={:.4} drift_sd={:.4} base={:.4} dbase={:.4}",
                    (now - f.start_ms) / 1000,
                    v,
                    s.expected,
                    s.score,
                    s.test,
                    d.noise_sigma,
                    d.tails,
                    d.shift_sd,
                    d.drift_sd,
                    d.baseline,
                    d.drift_baseline
                );
            }
        }
    }
}
