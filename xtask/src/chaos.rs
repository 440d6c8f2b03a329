//! `cargo xtask chaos [--short] [--kills N] [--seed S] [--fuzz-cases N]`: the factory under
//! faults. A fifth of the kills go to the whole `floorwatch up` (every plant, the cloud
//! node and the forwarders inside it, the simulator), every other time with its
//! PostgreSQL (`tests/kill.rs`); the rest to the factory deployed one process per part,
//! where a plant node, a forwarder, the cloud node, the simulator or PostgreSQL is killed
//! at a time (`tests/chaos.rs`). Each test checks its invariants (every acknowledged
//! reading in its plant's log exactly once and equal to an uninterrupted simulation's,
//! nothing acknowledged in the dead letters, no anomaly episode doubled or lost against
//! an uninterrupted monitor, every plant event up to the last forwarded one in the
//! cloud's log exactly once, every plant's and the cloud's read model equal to a fresh
//! rebuild) and prints the kills it survived per kind; then every fuzzer of the decoders
//! runs with many more cases than the test suite does. Exits non-zero when an invariant
//! or a fuzzer fails.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{POSTGRES, cargo, ensure, sh};

const USAGE: &str = "\
usage: cargo xtask chaos [--short] [--kills N] [--seed S] [--fuzz-cases N]

  --short         a few minutes: 8 kills and the fuzzers' everyday case counts
  --kills N       kills in all (default 100, at least 2): a fifth of floorwatch up
                  (10-30 s each with its recovery on a 2-core machine), the rest of
                  one part at a time of the factory run as separate processes (a
                  plant node, a forwarder, the cloud node, the simulator, PostgreSQL;
                  5-20 s each)
  --seed S        repeat the kill instants of an earlier run (it prints its seed)
  --fuzz-cases N  cases per fuzz property (default 4096)
";

/// The fuzzers: (package, test target).
const FUZZERS: &[(&str, &str)] = &[
    ("telemetry", "fuzz"),
    ("plant", "fuzz_ingest"),
    ("cloud", "fuzz_forwarded"),
    ("detector", "fuzz_azure"),
    ("detector", "fuzz_csv"),
    ("maintenance", "fuzz_csv"),
];

pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut kills: u32 = 100;
    let mut cases: Option<u32> = Some(4096);
    let mut seed: Option<String> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--short" => {
                kills = 8;
                cases = None;
            }
            "--kills" => {
                let n = it.next().context("--kills needs a number")?;
                kills = n.parse().ok().filter(|k| *k >= 2).with_context(|| format!("--kills {n}: at least 2"))?;
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

    let up_kills = (kills / 5).max(1);
    let part_kills = kills - up_kills;
    eprintln!(
        "xtask: chaos: {up_kills} kill(s) of floorwatch up, {part_kills} of the factory's parts, then the fuzzers"
    );
    for (test, n) in [("kill", up_kills), ("chaos", part_kills)] {
        let mut run = cargo();
        run.args(["test", "-p", "floorwatch", "--test", test, "--", "--nocapture"])
            .env("FLOORWATCH_KILLS", n.to_string());
        if let Some(seed) = &seed {
            run.env("FLOORWATCH_KILL_SEED", seed);
        }
        sh(&mut run).context("the factory broke an invariant under kills (its report is above)")?;
    }

    for (package, target) in FUZZERS {
        let mut fuzz: Command = cargo();
        fuzz.args(["test", "-p", package, "--test", target]);
        if let Some(cases) = cases {
            fuzz.env("PROPTEST_CASES", cases.to_string());
        }
        sh(&mut fuzz).with_context(|| format!("the fuzzer {package}/{target} found a failing input (shown above)"))?;
    }
    eprintln!(
        "xtask: chaos passed: {kills} kill(s) survived with every invariant holding ({up_kills} of floorwatch up, {part_kills} of its parts: per kind above); {} fuzzers at {} cases each",
        FUZZERS.len(),
        cases.map_or("their usual".to_owned(), |c| c.to_string())
    );
    Ok(())
}
