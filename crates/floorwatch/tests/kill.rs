//! `floorwatch up` killed with SIGKILL at random instants — every other time its
//! PostgreSQL too — recovers on every first start; at the end nothing a gateway sent is
//! doubled or missing, every plant event up to the last one forwarded is in the cloud's
//! log exactly once (the cloud node and the forwarders die with `up`), and every read
//! model equals a fresh rebuild from its log.
//!
//! `FLOORWATCH_KILLS` sets how many kills (4 by default: a few minutes);
//! `FLOORWATCH_KILL_SEED` repeats a run's instants. It prints what it checked.
#![allow(clippy::unwrap_used)]

mod factory_run;

use std::time::Duration;

use factory_run::{FactoryRun, PLANTS, Rng, run_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_recovers_on_every_first_start_after_sigkill_and_loses_or_doubles_nothing() {
    let kills: u32 = std::env::var("FLOORWATCH_KILLS").ok().and_then(|k| k.parse().ok()).unwrap_or(4);
    let (mut rng, seed) = Rng::from_env();
    let mut run = FactoryRun::new("kill").unwrap();
    let mut report = vec![format!("kill test: {kills} kills, seed {seed} (FLOORWATCH_KILL_SEED repeats it)")];
    eprintln!("{}", report[0]);

    run.start().unwrap();
    let took = run.wait_all_fresh(Duration::from_secs(5), Duration::from_secs(300)).await.unwrap();
    report.push(format!("first start: every plant in real time after {:.1} s", took.as_secs_f64()));
    for k in 1..=kills {
        // A random instant: anywhere from the middle of starting to well into running.
        run_for(&mut run, Duration::from_millis(500 + rng.below(9_500))).await.unwrap();
        let with_postgres = k % 2 == 0;
        if with_postgres {
            run.kill_postgres().unwrap();
        }
        run.kill_up().unwrap();
        run.start().unwrap();
        let took = run
            .wait_all_fresh(Duration::from_secs(5), Duration::from_secs(600))
            .await
            .unwrap_or_else(|e| panic!("the first start after kill {k} did not recover: {e:#}"));
        report.push(format!(
            "kill {k} (floorwatch up{}): the first start recovered; every plant in real time after {:.1} s",
            if with_postgres { " and PostgreSQL" } else { "" },
            took.as_secs_f64()
        ));
    }
    run_for(&mut run, Duration::from_secs(3)).await.unwrap();
    run.stop().unwrap();

    run.start_database().unwrap();
    for plant in 1..=PLANTS {
        let r = run.readings(plant).await.unwrap();
        report.push(format!(
            "plant {plant}: {} readings from {} gateways, {} doubled, {} gateways with a gap",
            r.readings,
            r.gateways,
            r.doubled,
            r.gaps.len()
        ));
        assert_eq!(r.doubled, 0, "plant {plant}: readings stored twice");
        assert!(r.gaps.is_empty(), "plant {plant}: seconds missing after a kill: {:#?}", r.gaps);
        // The cloud node and every plant's forwarder run inside `up`: each kill killed them too.
        report.push(run.cloud_copy(plant).await.unwrap().exactly_once(plant));
    }
    report.extend(run.read_models_equal_rebuild().await.unwrap());
    run.stop_database().unwrap();
    report.push(format!("kills survived: floorwatch up {kills} ({} of them with PostgreSQL)", kills / 2));
    println!("{}", report.join("\n"));
}
