//! Prints the benchmark and the detection-quality evaluation as JSON:
//! `cargo run --release --example eval -- [bench|eval|ablation] [days] [machines]`.

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let what = args.get(1).map(String::as_str).unwrap_or("eval");
    let days: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(7.0);
    let machines: u32 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(25);
    let mut spec = detector::EvalSpec::default();
    spec.plant.duration_s = days * 86_400.0;
    spec.plant.machines = machines;
    spec.keep_faults = std::env::var_os("KEEP_FAULTS").is_some();
    let out = match what {
        "bench" => {
            let start = Instant::now();
            let r =
                detector::benchmark(&detector::BenchSpec::default(), detector::Config::default(), || start.elapsed());
            serde_json::to_string_pretty(&r.expect("default config is valid"))
        }
        "ablation" => serde_json::to_string_pretty(&detector::ablation(&spec).expect("valid spec")),
        _ => serde_json::to_string_pretty(&detector::evaluate(&spec).expect("valid spec")),
    };
    println!("{}", out.expect("reports serialize"));
}
