//! `cargo xtask chaos [--short] [--kills N] [--seed S] [--fuzz-cases N]`: the factory under
//! faults. Runs `floorwatch up` (every plant, the cloud node and the forwarders inside it,
//! the simulator) and kills it with SIGKILL at random instants, every other time its
//! PostgreSQL too, then checks the invariants the kill test states (every acknowledged
//! reading in its plant's log exactly once, every plant event up to the last forwarded
//! one in the cloud's log exactly once, every read model equal to a fresh rebuild); then
//! runs every fuzzer of the decoders with many more cases than the test suite does.
//! Exits non-zero when an invariant or a fuzzer fails.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{POSTGRES, cargo, ensure, sh};

const USAGE: &str = "\
usage: cargo xtask chaos [--short] [--kills N] [--seed S] [--fuzz-cases N]

  --short         a few minutes: 4 kills and the fuzzers' everyday case counts
  --kills N       kills of floorwatch up (default 100; a kill and its recovery take
                  10-30 s on a 2-core machine)
  --seed S        repeat the kill instants of an earlier run (it prints its seed)
  --fuzz-cases N  cases per fuzz property (default 4096)
";

/// The fuzzers: (package, test target).
const FUZZERS: &[(&str, &str)] =
    &[("telemetry", "fuzz"), ("detector", "fuzz_azure"), ("detector", "fuzz_csv"), ("maintenance", "fuzz_csv")];

pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut kills: u32 = 100;
    let mut cases: Option<u32> = Some(4096);
    let mut seed: Option<String> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--short" => {
                kills = 4;
                cases = None;
            }
            "--kills" => {
                let n = it.next().context("--kills needs a number")?;
                kills = n.parse().ok().filter(|k| *k >= 1).with_context(|| format!("--kills {n}: at least 1"))?;
            }
            "--seed" => seed = Some(it.next().context("--seed needs a number")?.clone()),
            "--fuzz-cases" => {
                let n = it.next().context("--fuzz-cases needs a number")?;
                cases =
                    Some(n.parse().ok().filter(|c| *c >= 1).with_context(|| format!("--fuzz-cases {n}: at least 1"))?);
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    ensure(&[POSTGRES])?;

    eprintln!("xtask: chaos: {kills} kill(s) of floorwatch up, then the fuzzers");
    let mut kill = cargo();
    kill.args(["test", "-p", "floorwatch", "--test", "kill", "--", "--nocapture"])
        .env("FLOORWATCH_KILLS", kills.to_string());
    if let Some(seed) = &seed {
        kill.env("FLOORWATCH_KILL_SEED", seed);
    }
    sh(&mut kill).context("the factory broke an invariant under kills (its report is above)")?;

    for (package, target) in FUZZERS {
        let mut fuzz: Command = cargo();
        fuzz.args(["test", "-p", package, "--test", target]);
        if let Some(cases) = cases {
            fuzz.env("PROPTEST_CASES", cases.to_string());
        }
        sh(&mut fuzz).with_context(|| format!("the fuzzer {package}/{target} found a failing input (shown above)"))?;
    }
    eprintln!(
        "xtask: chaos passed: {kills} kill(s) survived with every invariant holding; {} fuzzers at {} cases each",
        FUZZERS.len(),
        cases.map_or("their usual".to_owned(), |c| c.to_string())
    );
    Ok(())
}
