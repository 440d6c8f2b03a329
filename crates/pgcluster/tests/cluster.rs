//! The private cluster starts, serves, stops and restarts for real.
#![allow(clippy::unwrap_used)]

use pgcluster::testdb::{TestDb, connect};
use pgcluster::{Cluster, Options, Status};

fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("floorwatch-pgcluster-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test]
async fn daemon_cluster_starts_stops_and_keeps_its_data() {
    let dir = scratch_dir("daemon");
    let cluster = Cluster::new(&dir, Options::for_tests()).unwrap();
    assert_eq!(cluster.status().unwrap(), Status::Missing);

    let port = cluster.start().unwrap();
    assert!(matches!(cluster.status().unwrap(), Status::Running { port: p, .. } if p == port));
    // Starting again is a no-op that reports the same port.
    assert_eq!(cluster.start().unwrap(), port);

    let client = connect(&cluster.url("postgres").unwrap()).await.unwrap();
    client.batch_execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)").await.unwrap();
    drop(client);

    cluster.stop().unwrap();
    assert_eq!(cluster.status().unwrap(), Status::Stopped);
    assert!(connect(&cluster.url("postgres").unwrap()).await.is_err(), "a stopped server accepts connections");

    cluster.start().unwrap();
    let client = connect(&cluster.url("postgres").unwrap()).await.unwrap();
    let v: i32 = client.query_one("SELECT v FROM kept", &[]).await.unwrap().get(0);
    assert_eq!(v, 42);
    cluster.stop().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn tcp_logins_need_the_password() {
    let db = TestDb::new().await.unwrap();
    let wrong = db.url.replacen("postgres:", "postgres:wrong", 1);
    let url_without_password = {
        let at = db.url.find('@').unwrap();
        format!("postgresql://postgres{}", &db.url[at..])
    };
    assert!(connect(&wrong).await.is_err());
    assert!(connect(&url_without_password).await.is_err());
    assert!(connect(&db.url).await.is_ok());
}

#[tokio::test]
async fn every_test_database_is_new_and_empty() {
    let a = TestDb::new().await.unwrap();
    let b = TestDb::new().await.unwrap();
    assert_ne!(a.name, b.name);
    let ca = a.connect().await.unwrap();
    ca.batch_execute("CREATE TABLE only_in_a (v int)").await.unwrap();
    let cb = b.connect().await.unwrap();
    let n: i64 =
        cb.query_one("SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'", &[]).await.unwrap().get(0);
    assert_eq!(n, 0);
}

/// The postmaster's pid as its pid file says.
fn postmaster_pid(cluster: &Cluster) -> i32 {
    match cluster.status().unwrap() {
        Status::Running { pid, .. } => pid as i32,
        other => panic!("the server is not running: {other:?}"),
    }
}

fn sigkill(pid: i32) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
}

/// Killing the server as a power cut would (SIGKILL of the postmaster, its backends
/// left to notice) leaves a stale `postmaster.pid` and a cluster that needs crash
/// recovery: one `start` must bring it back and return only when it accepts logins.
#[tokio::test]
async fn one_start_recovers_a_server_killed_with_sigkill() {
    let dir = scratch_dir("sigkill");
    let cluster = Cluster::new(&dir, Options::default()).unwrap();
    cluster.start().unwrap();
    let client = connect(&cluster.url("postgres").unwrap()).await.unwrap();
    // Unflushed work, so the restart has WAL to replay.
    client
        .batch_execute("CREATE TABLE kept (v int); INSERT INTO kept SELECT generate_series(1, 200000)")
        .await
        .unwrap();
    drop(client);

    for round in 0..3 {
        sigkill(postmaster_pid(&cluster));
        cluster.start().unwrap_or_else(|e| panic!("start after kill {round}: {e:#}"));
        let client = connect(&cluster.url("postgres").unwrap())
            .await
            .unwrap_or_else(|e| panic!("login right after the start that followed kill {round}: {e:#}"));
        let n: i64 = client.query_one("SELECT count(*) FROM kept", &[]).await.unwrap().get(0);
        assert_eq!(n, 200_000);
    }
    cluster.stop().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A backend killed with SIGKILL makes the postmaster (still alive) restart every
/// process and replay the WAL; a start meanwhile must wait for that, not report a
/// running server that refuses logins.
#[tokio::test]
async fn start_waits_for_the_recovery_of_a_running_server() {
    let dir = scratch_dir("backend-kill");
    let cluster = Cluster::new(&dir, Options::default()).unwrap();
    cluster.start().unwrap();
    let client = connect(&cluster.url("postgres").unwrap()).await.unwrap();
    client
        .batch_execute("CREATE TABLE kept (v int); INSERT INTO kept SELECT generate_series(1, 100000)")
        .await
        .unwrap();
    for round in 0..3 {
        let client = connect(&cluster.url("postgres").unwrap()).await.unwrap();
        let backend: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
        sigkill(backend);
        drop(client);
        cluster.start().unwrap_or_else(|e| panic!("start after backend kill {round}: {e:#}"));
        let client = connect(&cluster.url("postgres").unwrap())
            .await
            .unwrap_or_else(|e| panic!("login right after the start that followed backend kill {round}: {e:#}"));
        let n: i64 = client.query_one("SELECT count(*) FROM kept", &[]).await.unwrap().get(0);
        assert_eq!(n, 100_000);
    }
    cluster.stop().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
