//! `floorwatch db start|stop|status`.

use anyhow::{Result, bail};
use pgcluster::Status;

use crate::cli::DbCommand;
use crate::databases::Server;

pub fn run(cmd: DbCommand, server: &Server) -> Result<()> {
    let Server::Private(cluster) = server else {
        bail!("--database-url names your own server; `floorwatch db` manages only the private cluster");
    };
    match cmd {
        DbCommand::Start => {
            let port = cluster.start()?;
            println!("PostgreSQL is running on 127.0.0.1:{port} (data in {})", cluster.dir().display());
            println!("superuser URL: {}", cluster.url("postgres")?);
        }
        DbCommand::Stop => {
            cluster.stop()?;
            println!("PostgreSQL in {} is stopped", cluster.dir().display());
        }
        DbCommand::Status => match cluster.status()? {
            Status::Missing => {
                println!("no cluster in {} (it is created by `floorwatch db start`)", cluster.dir().display())
            }
            Status::Stopped => println!("stopped (data in {})", cluster.dir().display()),
            Status::Running { port, pid } => {
                println!("running on 127.0.0.1:{port}, pid {pid} (data in {})", cluster.dir().display())
            }
        },
    }
    Ok(())
}
