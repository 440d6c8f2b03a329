//! Prints what the machine model makes of one simulated machine, second by second:
//! `cargo run --release -p anomaly_eval --example probe -- [machine] [hours] [seed]`.

use detector::{MachineModel, MachineModelConfig};
use layout::{Layout, Scale};
use simulator::{Factory, FaultConfig, SimConfig, Step};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let machine_arg = args.get(1).cloned().unwrap_or_else(|| "P1-L01-M001".to_owned());
    let hours: i64 = args.get(2).map_or(Ok(2), |s| s.parse())?;
    let seed: u64 = args.get(3).map_or(Ok(1), |s| s.parse())?;
    let sensors: u32 = args.get(4).map_or(Ok(1000), |s| s.parse())?;
    let layout =
        Layout::default_with(&Scale { plants: Some(1), lines_per_plant: None, sensors_per_plant: Some(sensors) })?;
    let sim = if args.get(5).is_some_and(|a| a == "faults") {
        SimConfig { faults: FaultConfig::default().scaled(5.0), ..SimConfig::default() }
    } else {
        SimConfig { faults: FaultConfig::none(), ..SimConfig::default() }
    };
    let mut factory = Factory::new(&layout, &sim, seed, 1_772_409_600_000)?;
    let machine = layout.machine_index(&machine_arg).ok_or("no such machine")?;
    let cfg = MachineModelConfig::default();
    let mut model = MachineModel::default();
    let ids = layout.machines()[machine].sensor_ids.clone();
    let mut step = Step::default();
    let mut out = Vec::new();
    for s in 0..hours * 3600 {
        factory.step_into(&mut step);
        let st = factory.machine_state(machine).ok_or("machine")?;
        for e in step.events.iter().filter(|e| e.machine() == Some(machine_arg.as_str())) {
            println!("t={s} event {e:?}");
        }
        for r in step.batches.iter().flat_map(|b| &b.readings).filter(|r| ids.contains(&r.sensor)) {
            model.observe(r.sensor, r.ts_ms, r.value, &cfg, &mut out)?;
        }
        for r in out.drain(..) {
            if r.score.score >= 0.3 {
                let name = &layout.sensor(r.sensor).ok_or("sensor")?.sensor.name;
                println!(
                    "t={s} load={:.3} {name} {:?} score={:.2} obs={:.3} exp={:.3} band={:.3}",
                    st.load,
                    r.score.test,
                    r.score.score,
                    r.score.value,
                    r.score.expected,
                    r.score.upper - r.score.expected
                );
            }
        }
        if s % 600 == 0 {
            println!(
                "t={s} load={:.3} wear={:.3} status={:?} ready={} eig={:.1}",
                st.load,
                st.wear,
                st.status,
                model.ready(&cfg),
                model.eigenvalue()
            );
            for (id, v, noise, mean) in model.loadings() {
                println!("    {id} v={v:.4} noise={noise:.4} mean={mean:.3}");
            }
        }
    }
    Ok(())
}
