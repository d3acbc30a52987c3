//! `hoist backup PATH`: a consistent copy of the database, taken while the daemon runs.
//!
//! Restore (docs/deploy.md): stop hoist, replace the database file with the copy and delete
//! the old `-wal` and `-shm` files beside it, start hoist (migrations run at start).

use std::path::{Path, PathBuf};

use anyhow::Context;

pub async fn backup(config_path: Option<PathBuf>, destination: &Path) -> anyhow::Result<()> {
    // Only the database settings matter: a backup needs none of the secrets.
    let config = crate::config_load::load_without_secrets(config_path.as_deref())?;
    if config.database.kind == hoist_domain::config::DatabaseKind::Postgres {
        anyhow::bail!(
            "hoist backup copies a SQLite database; on PostgreSQL use its own tools, e.g. \
             pg_dump --format=custom --file=hoist.dump \"$URL\" (docs/deploy.md)"
        );
    }
    let options = crate::serve::store_options(&config);
    let report = hoist_store::backup(&options, destination)
        .await
        .context("backup failed")?;
    tracing::info!(
        database = %report.source.display(),
        backup = %report.destination.display(),
        bytes = report.bytes,
        "backup written and its integrity checked"
    );
    Ok(())
}
