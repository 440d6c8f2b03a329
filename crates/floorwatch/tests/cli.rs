//! The `floorwatch` command as a user runs it: help texts, the offline tools on good
//! and bad files, the simulator's files, configuration errors, and people's credentials
//! (against a real PostgreSQL).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn floorwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_floorwatch")).args(args).output().unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("floorwatch-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn every_command_explains_its_options() {
    let top = floorwatch(&["--help"]);
    assert!(top.status.success());
    for command in [
        "up", "plant", "cloud", "forward", "simulate", "rebuild", "detect", "train", "predict", "eval", "db", "log",
        "user", "bench",
    ] {
        assert!(text(&top).contains(command), "top-level help lacks {command}");
    }
    let simulate = text(&floorwatch(&["simulate", "--help"]));
    for option in [
        "--plants",
        "--sensors-per-plant",
        "--target",
        "--output",
        "--speed",
        "--start",
        "--duration",
        "--backfill",
        "--seed",
        "--fault-rate-scale",
    ] {
        assert!(simulate.contains(option), "simulate --help lacks {option}");
    }
    for sub in [
        &["bench", "ingest", "--help"][..],
        &["eval", "anomalies", "--help"],
        &["up", "--help"],
        &["plant", "--help"],
        &["cloud", "--help"],
        &["cloud", "token", "create", "--help"],
        &["cloud", "train", "--help"],
        &["forward", "--help"],
        &["bench", "api", "--help"],
        &["bench", "forward", "--help"],
    ] {
        let o = floorwatch(sub);
        assert!(o.status.success(), "{sub:?}: {}", text(&o));
    }
}

#[test]
fn up_tells_which_data_directory_its_arguments_use_without_starting_anything() {
    let dir = scratch("data-dir");
    let given = |args: &[&str], env: Option<&Path>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_floorwatch"));
        c.args(args).env_remove("FLOORWATCH_DATA_DIR");
        if let Some(e) = env {
            c.env("FLOORWATCH_DATA_DIR", e);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        PathBuf::from(String::from_utf8_lossy(&o.stdout).trim_end())
    };
    let explicit = dir.join("explicit");
    let explicit_arg = explicit.to_str().unwrap();
    assert_eq!(given(&["up", "--print-data-dir", "--data-dir", explicit_arg], None), explicit);
    assert_eq!(given(&["--data-dir", explicit_arg, "up", "--plants", "2", "--print-data-dir"], None), explicit);
    let from_env = dir.join("from-env");
    assert_eq!(given(&["up", "--print-data-dir"], Some(&from_env)), from_env);
    assert_eq!(given(&["up", "--print-data-dir", "--data-dir", explicit_arg], Some(&from_env)), explicit);
    assert!(!explicit.exists() && !from_env.exists(), "nothing is created");
}

#[test]
fn bad_arguments_are_refused_with_a_reason() {
    for (args, expect) in [
        (&["simulate", "--speed", "fast"][..], "not realtime, max or a factor"),
        (&["simulate", "--duration", "a while"], "not a duration"),
        (&["simulate", "--start", "yesterday"], "RFC 3339"),
        (&["simulate", "--target", "one=http://x"], "not a plant number"),
        (&["up", "--plants", "0"], "0"),
        (&["cloud", "token", "create", "--role", "root"], "not a role"),
        (&["cloud", "token", "create", "--role", "viewer", "--plant", "0"], "0"),
        (&["forward", "--plant", "x"], "invalid value"),
        (&["simulate", "--speed", "max"], "needs --duration"),
        (&["eval", "maintenance", "--from", "/nonexistent", "--due-probability", "1.5"], "between 0 and 1"),
        (&["eval", "maintenance", "--from", "/nonexistent", "--due-probability", "NaN"], "between 0 and 1"),
        (&["eval", "maintenance", "--from", "/nonexistent", "--due-hold-hours=-3"], "between 0 and the horizon"),
        (&["eval", "maintenance", "--from", "/nonexistent", "--due-hold-hours", "1e300"], "between 0 and the horizon"),
        (
            &["eval", "maintenance", "--from", "/x", "--due-probability", "0.3", "--due-on-lower-bound"],
            "cannot be used",
        ),
        (
            &["train", "--factory", "/nonexistent", "--model", "/tmp/m.json", "--due-probability", "0"],
            "between 0 and 1",
        ),
    ] {
        let o = floorwatch(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(text(&o).contains(expect), "{args:?}: {}", text(&o));
    }
}

#[test]
fn detect_scores_a_csv_and_names_what_is_wrong_with_a_bad_one() {
    let dir = scratch("detect");
    let input = dir.join("in.csv");
    let mut csv = String::from("timestamp,value\n");
    for i in 0..600 {
        let v = if i == 500 { 900.0 } else { 20.0 + ((i * 37) % 11) as f64 * 0.1 };
        csv.push_str(&format!("{},{v}\n", 1_772_366_400 + i));
    }
    std::fs::write(&input, csv).unwrap();
    let output = dir.join("out.csv");
    let o = floorwatch(&["detect", "--input", input.to_str().unwrap(), "--output", output.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let out = std::fs::read_to_string(&output).unwrap();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("timestamp,value,anomaly_score"));
    let scores: Vec<f64> = lines.map(|l| l.rsplit(',').next().unwrap().parse().unwrap()).collect();
    assert_eq!(scores.len(), 600);
    assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)));
    assert!(scores[500] > 0.6, "the spike scored {}", scores[500]);

    for (body, expect) in [("", "empty"), ("timestamp,value\n1,abc\n", "line 2"), ("when,what\n1,2\n", "header")] {
        std::fs::write(&input, body).unwrap();
        let o = floorwatch(&["detect", "--input", input.to_str().unwrap(), "--output", output.to_str().unwrap()]);
        assert!(!o.status.success(), "{body:?} accepted");
        assert!(text(&o).to_lowercase().contains(expect), "{body:?}: {}", text(&o));
    }
    let missing = floorwatch(&["detect", "--input", "/nonexistent.csv", "--output", output.to_str().unwrap()]);
    assert!(text(&missing).contains("/nonexistent.csv"));
}

#[test]
fn train_and_predict_on_run_to_failure_data() {
    let dir = scratch("rul");
    let mut csv = String::from("unit,cycle,s1,s2,flat\n");
    for unit in 1..=30 {
        let life = 80 + (unit * 7) % 50;
        for cycle in 1..=life {
            let wear = cycle as f64 / life as f64;
            csv.push_str(&format!("{unit},{cycle},{:.4},{:.4},1\n", 10.0 + 5.0 * wear * wear, 3.0 - wear));
        }
    }
    let train = dir.join("train.csv");
    std::fs::write(&train, &csv).unwrap();
    let model = dir.join("model.json");
    let o = floorwatch(&[
        "train",
        "--input",
        train.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--rul-cap",
        "60",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // Validation against the capped truth and, for the interval, the true remaining life.
    assert!(text(&o).contains("against the true remaining life"), "{}", text(&o));
    let partial: String = csv
        .lines()
        .enumerate()
        .filter(|(i, l)| *i == 0 || l.split(',').nth(1).unwrap().parse::<u32>().unwrap() <= 40)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let partial_file = dir.join("partial.csv");
    std::fs::write(&partial_file, partial).unwrap();
    let o = floorwatch(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--input",
        partial_file.to_str().unwrap(),
        "--output",
        "-",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.starts_with("unit,predicted_rul,lower,upper\n"));
    assert_eq!(out.lines().count(), 31);

    std::fs::write(&partial_file, "unit,cycle,s1\n1,1,2\n").unwrap();
    let o = floorwatch(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--input",
        partial_file.to_str().unwrap(),
        "--output",
        "-",
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("s2"), "{}", text(&o));
}

fn read_dir_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn the_same_seed_writes_the_same_files() {
    let dir = scratch("sim");
    let run = |name: &str, seed: &str| {
        let out = dir.join(name);
        let o = floorwatch(&[
            "simulate",
            "--plants",
            "1",
            "--sensors-per-plant",
            "50",
            "--start",
            "2026-03-01T00:00:00Z",
            "--duration",
            "10m",
            "--backfill",
            "1d",
            "--seed",
            seed,
            "--output",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        read_dir_bytes(&out)
    };
    let a = run("a", "9");
    let b = run("b", "9");
    let c = run("c", "10");
    assert!(a.iter().any(|(n, _)| n == "ground-truth.jsonl"));
    assert_eq!(a, b, "the same seed gave different files");
    assert_ne!(a, c, "another seed gave the same files");
}

#[test]
fn a_bad_configuration_file_is_named_with_its_problem() {
    let dir = scratch("config");
    let file = dir.join("floorwatch.toml");
    std::fs::write(&file, "[log]\ntelemetry_retention_days = 0\n").unwrap();
    let o = floorwatch(&["--config", file.to_str().unwrap(), "db", "status"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("floorwatch.toml"), "{}", text(&o));
}

/// `floorwatch user add | list | revoke` against a real server: the token is printed once
/// (only on standard output, so it can be piped), kept hashed, and refused once revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_gets_a_token_once_is_listed_without_it_and_is_refused_once_revoked() {
    let test = pgcluster::testdb::TestDb::new().await.unwrap();
    let admin = test.url_of("postgres").unwrap();
    let user = |args: &[&str]| {
        let mut all = vec!["--database-url", admin.as_str(), "user"];
        all.extend_from_slice(args);
        floorwatch(&all)
    };
    let added = user(&["add", "Ana Lima", "--role", "supervisor", "--plant", "3"]);
    assert!(added.status.success(), "{}", text(&added));
    let token = String::from_utf8(added.stdout.clone()).unwrap().trim().to_owned();
    assert!(token.starts_with("fwt_") && !token.contains(char::is_whitespace), "{token:?}");
    assert!(String::from_utf8_lossy(&added.stderr).contains("Ana Lima"), "{}", text(&added));

    let refused = user(&["add", "Mo", "--role", "boss", "--plant", "3"]);
    assert!(!refused.status.success() && text(&refused).contains("boss"), "{}", text(&refused));
    let refused = user(&["add", "Mo", "--role", "viewer", "--plant", "0"]);
    assert!(!refused.status.success(), "{}", text(&refused));

    let db = eventlog::Database::new(&test.url_of("floorwatch_p3").unwrap(), 2).unwrap();
    let client = db.client().await.unwrap();
    let credential = access::authenticate(&client, &token).await.unwrap().expect("the printed token signs in");
    assert_eq!((credential.label.as_str(), credential.role), ("Ana Lima", access::Role::Supervisor));
    assert!(credential.scope.covers(3) && !credential.scope.covers(1), "{:?}", credential.scope);
    let stored: String =
        client.query_one("SELECT string_agg(t::text, ' ') FROM access.credentials t", &[]).await.unwrap().get(0);
    let secret = token.rsplit('_').next().unwrap();
    assert!(!stored.contains(secret), "the token is stored hashed, never as given");

    let listed = user(&["list", "--plant", "3"]);
    assert!(listed.status.success(), "{}", text(&listed));
    let listing = text(&listed);
    assert!(
        listing.contains("Ana Lima") && listing.contains(&credential.id) && listing.contains("supervisor"),
        "{listing}"
    );
    assert!(!listing.contains(secret), "a listing never shows a token");

    let revoked = user(&["revoke", &credential.id, "--plant", "3"]);
    assert!(revoked.status.success(), "{}", text(&revoked));
    let again = user(&["revoke", &credential.id, "--plant", "3"]);
    assert!(!again.status.success() && text(&again).contains("already revoked"), "{}", text(&again));
    let after = access::authenticate(&client, &token).await.unwrap().expect("still known");
    assert!(after.revoked_at.is_some(), "the credential is revoked");
    assert!(
        after.authorize(access::Permission::ReadPlantData, Some(3)).is_err(),
        "a revoked credential may do nothing"
    );
}
