//! A throwaway PostgreSQL 15 cluster for the bench scripts: starts one (durable, as an
//! operator would run it: fsync and synchronous commit on), creates a database, prints its
//! URL and then the server's process id, one line each, and runs until its standard input
//! closes; then it stops the server and removes its files. If it is killed instead, the
//! cluster's watchdog does the same.
//!
//!   coproc PG { pg-cluster; }; read -r url <&"${PG[0]}"; read -r pid <&"${PG[0]}"

use std::io::{BufRead, Write};

use hoist_store_postgres::cluster::Cluster;

fn main() -> anyhow::Result<()> {
    let cluster = Cluster::start_durable().map_err(anyhow::Error::msg)?;
    let url = cluster.create_database().map_err(anyhow::Error::msg)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{url}")?;
    writeln!(out, "{}", cluster.server_pid().unwrap_or(0))?;
    out.flush()?;
    drop(out);
    // Until the script closes our stdin (or exits): every line read is ignored.
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
    }
    drop(cluster);
    Ok(())
}
