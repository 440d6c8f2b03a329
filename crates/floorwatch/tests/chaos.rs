//! The factory deployed one process per part — `floorwatch cloud`, a `floorwatch plant`
//! and a `floorwatch forward` per plant, `floorwatch simulate` — with one part at a time
//! killed by SIGKILL at random instants (a plant node, a forwarder, the cloud node, the
//! simulator, or PostgreSQL's postmaster) and started again. After every kill the whole
//! factory must recover: every plant's readings in real time again, and the cloud holding
//! every plant's log up to where it stood. At the end it checks, per plant:
//!
//! * every reading is in the plant's log exactly once, every gateway without a gap;
//! * nothing in the dead letters that was acknowledged as accepted: no refused reading
//!   (sensor, instant) is also in the log, no upload refused whole is stored;
//! * the readings are the ones an uninterrupted simulator of the same seed sends. The
//!   simulator (its faults scaled up so that minutes hold a few) is deterministic in its
//!   seed and simulated time, and every start of it begins at the same simulated instant
//!   (the plants keep one copy of a re-sent upload), so over the simulated range every
//!   gateway reached, each simulated (sensor, instant) must be stored with exactly the
//!   uninterrupted simulation's value or be in the dead letters (refused by validation),
//!   and nothing else may be stored;
//! * no anomaly episode doubled or lost against a monitor that was never killed. The
//!   monitor is deterministic given the log (its sweeps and time-outs run on plant time),
//!   but the log's order of the gateways' uploads is not: it depends on when each arrived,
//!   so a second factory run would be compared with a different log. The reference is
//!   therefore a fresh monitor (the node's configuration) reading this run's log in one
//!   go: every episode event (by its idempotency key, episode id and sequence) it makes
//!   from events up to where the live monitor had read (its checkpoint's `read_through`)
//!   must be in the log, and every
//!   episode event in the log must be one it makes, once;
//! * every plant event up to the last one forwarded is in the cloud's log exactly once;
//! * every read model equals a fresh rebuild from its log.
//!
//! The kill of the whole `floorwatch up` process is `tests/kill.rs`. `FLOORWATCH_KILLS`
//! sets how many kills (6 by default: a few minutes); `FLOORWATCH_KILL_SEED` repeats a
//! run's kinds and instants. It prints what it checked and the kills survived per kind.
#![allow(clippy::unwrap_used)]

mod factory_run;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use factory_run::deployment::{Deployment, FAULT_RATE_SCALE, Part};
use factory_run::{FactoryRun, PLANTS, Rng};
use simulator::FaultConfig;

/// What can be killed: every part, and PostgreSQL.
#[derive(Debug, Clone, Copy)]
enum Victim {
    Part(Part),
    Postgres,
}

fn victims() -> Vec<Victim> {
    let mut v: Vec<Victim> = Part::all().into_iter().map(Victim::Part).collect();
    v.push(Victim::Postgres);
    v
}

/// Prints a line of the report as it is known (a failure shows how far the run got) and
/// keeps it for the summary.
fn note(report: &mut Vec<String>, line: String) {
    eprintln!("{line}");
    report.push(line);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployed_factory_survives_kills_of_each_part_and_loses_or_doubles_nothing() {
    let kills: u32 = std::env::var("FLOORWATCH_KILLS").ok().and_then(|k| k.parse().ok()).unwrap_or(6);
    let (mut rng, seed) = Rng::from_env();
    let began = Instant::now();
    let mut report =
        vec![format!("chaos test: {kills} kills of the parts, seed {seed} (FLOORWATCH_KILL_SEED repeats it)")];
    eprintln!("{}", report[0]);
    let run = FactoryRun::new("chaos").unwrap();
    let mut d = Deployment::start(run, seed % 1_000_000).unwrap();
    let took = d.wait_recovered(Duration::from_secs(5), Duration::from_secs(300)).await.unwrap();
    note(&mut report, format!("first start: every plant in real time and forwarded after {:.1} s", took.as_secs_f64()));

    let victims = victims();
    let mut survived: BTreeMap<&'static str, u32> = BTreeMap::new();
    for k in 1..=kills {
        // A random instant: anywhere from the middle of a recovery to well into running.
        d.run_for(Duration::from_millis(500 + rng.below(9_500))).await.unwrap();
        let victim = victims[rng.below(victims.len() as u64) as usize];
        let down = Duration::from_millis(rng.below(3_000));
        let kind = match victim {
            Victim::Part(part) => {
                d.kill(part).unwrap();
                d.run_for(down).await.unwrap();
                d.restart(part).unwrap();
                part.kind()
            }
            Victim::Postgres => {
                d.kill_postgres_and_restart(down).unwrap();
                "PostgreSQL"
            }
        };
        let took = d
            .wait_recovered(Duration::from_secs(5), Duration::from_secs(600))
            .await
            .unwrap_or_else(|e| panic!("the factory did not recover from kill {k} ({victim:?}): {e:#}"));
        *survived.entry(kind).or_default() += 1;
        note(
            &mut report,
            format!(
                "kill {k} ({victim:?}, down {:.1} s): recovered; every plant in real time and forwarded after {:.1} s",
                down.as_secs_f64(),
                took.as_secs_f64()
            ),
        );
    }
    d.run_for(Duration::from_secs(3)).await.unwrap();
    d.stop().unwrap();

    let run = &d.run;
    run.start_database().unwrap();
    let mut episode_events = 0;
    for plant in 1..=PLANTS {
        let r = run.readings(plant).await.unwrap();
        note(
            &mut report,
            format!(
                "plant {plant}: {} readings from {} gateways, {} doubled, {} gateways with a gap",
                r.readings,
                r.gateways,
                r.doubled,
                r.gaps.len()
            ),
        );
        assert_eq!(r.doubled, 0, "plant {plant}: readings stored twice");
        assert!(r.gaps.is_empty(), "plant {plant}: seconds missing after a kill: {:#?}", r.gaps);

        let log = run.plant_log(plant).await.unwrap();
        let dl = run.dead_letters(plant, &log).await.unwrap();
        note(
            &mut report,
            format!(
                "plant {plant}: {} dead letters, {} of readings or uploads the log stored",
                dl.total,
                dl.of_stored.len()
            ),
        );
        assert!(dl.of_stored.is_empty(), "plant {plant}: accepted readings in the dead letters: {:#?}", dl.of_stored);

        let faults = FaultConfig::default().scaled(FAULT_RATE_SCALE);
        let s = run.simulation(plant, &log, &dl, d.seed, d.sim_start_ms, faults).unwrap();
        note(
            &mut report,
            format!(
                "plant {plant}: through {} every simulated reading is stored with the uninterrupted simulation's value ({}) or refused ({}); {} differ, {} missing, {} foreign",
                chrono::DateTime::from_timestamp_millis(s.through_ms).unwrap_or_default().format("%H:%M:%S"),
                s.equal,
                s.refused,
                s.differing.len(),
                s.missing.len(),
                s.foreign.len()
            ),
        );
        assert!(s.equal > 0, "plant {plant}: nothing to compare with the simulation");
        assert!(
            s.differing.is_empty(),
            "plant {plant}: values differ from the simulation: {:?}",
            &s.differing[..s.differing.len().min(20)]
        );
        assert!(
            s.missing.is_empty(),
            "plant {plant}: simulated readings neither stored nor refused: {:?}",
            &s.missing[..s.missing.len().min(20)]
        );
        assert!(s.foreign.is_empty(), "plant {plant}: readings the simulation never made: {:?}", s.foreign);

        let a = run.anomalies(plant).await.unwrap();
        episode_events += a.compared_events;
        note(
            &mut report,
            format!(
                "plant {plant}: {} anomaly episodes in the log, {} from an uninterrupted monitor; {} of its {} episode events compared (through position {}): {} lost, {} doubled or foreign",
                a.live_episodes,
                a.reference_episodes,
                a.compared_events,
                a.reference_events,
                a.through_position,
                a.lost.len(),
                a.doubled_or_foreign.len()
            ),
        );
        assert!(a.through_position > 0, "plant {plant}: the monitor never read the log");
        assert!(a.lost.is_empty(), "plant {plant}: episode events lost: {:?}", a.lost);
        assert!(
            a.doubled_or_foreign.is_empty(),
            "plant {plant}: episode events doubled or foreign: {:?}",
            a.doubled_or_foreign
        );

        report.push(run.cloud_copy(plant).await.unwrap().exactly_once(plant));
    }
    assert!(
        episode_events > 0,
        "no anomaly episode in the whole factory: the comparison with the monitor compared nothing"
    );
    for line in run.read_models_equal_rebuild().await.unwrap() {
        note(&mut report, line);
    }
    run.stop_database().unwrap();
    let after_database: Vec<String> =
        d.restarted_after_database.iter().map(|(kind, n)| format!("{kind} {n}")).collect();
    note(
        &mut report,
        format!(
            "kills survived: {} (parts that exited on their own while PostgreSQL was down, started again: {})",
            survived.iter().map(|(kind, n)| format!("{kind} {n}")).collect::<Vec<_>>().join(", "),
            if after_database.is_empty() { "none".to_owned() } else { after_database.join(", ") }
        ),
    );
    note(&mut report, format!("took {:.0} s", began.elapsed().as_secs_f64()));
    println!("{}", report.join("\n"));
}
