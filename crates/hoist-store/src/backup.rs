//! Online backups: a consistent copy of the database while hoist keeps writing.
//!
//! `VACUUM INTO` reads the database inside one read transaction, so under WAL the copy is
//! the snapshot at the moment it started: every transaction committed before it is in the
//! copy, none that commits during it is, and writers are never blocked. It runs on a
//! connection of its own, opened read-only and without migrating, so a backup can neither
//! change the live database nor wait behind the daemon's writer.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};

use crate::{StoreError, StoreOptions};

/// What `backup` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The live database that was copied.
    pub source: PathBuf,
    /// The new file.
    pub destination: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} already exists; a backup never overwrites a file (choose a new name)")]
    DestinationExists(PathBuf),
    #[error("cannot create {0}: {1}")]
    Destination(PathBuf, #[source] std::io::Error),
    #[error("there is no database at {0}")]
    NoDatabase(PathBuf),
    #[error("the copy at {0} failed its integrity check: {1}")]
    Integrity(PathBuf, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Copies the database named by `options` to `destination`, a path that must not exist
/// yet, and checks the copy's integrity. Safe while hoist runs.
pub async fn backup(
    options: &StoreOptions,
    destination: &Path,
) -> Result<BackupReport, BackupError> {
    let source = read_only(&options.url)?.busy_timeout(options.busy_timeout);
    let source_path = source.get_filename().to_path_buf();
    if !source_path.is_file() {
        return Err(BackupError::NoDatabase(source_path));
    }
    // Claim the name first: `create_new` fails if anything is there, so two backups (or a
    // backup and anything else) cannot race for one file. SQLite writes into the empty file.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(destination)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                BackupError::DestinationExists(destination.to_path_buf())
            }
            _ => BackupError::Destination(destination.to_path_buf(), e),
        })?;
    match copy_and_check(source, destination).await {
        Ok(bytes) => Ok(BackupReport {
            source: source_path,
            destination: destination.to_path_buf(),
            bytes,
        }),
        Err(e) => {
            // The file is ours (created above); a half-written copy must not look like a
            // backup.
            let _ = std::fs::remove_file(destination);
            Err(e)
        }
    }
}

async fn copy_and_check(
    source: SqliteConnectOptions,
    destination: &Path,
) -> Result<u64, BackupError> {
    let into = destination.to_str().ok_or_else(|| {
        BackupError::Destination(
            destination.to_path_buf(),
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not valid UTF-8"),
        )
    })?;
    let mut conn = source.connect().await.map_err(StoreError::Open)?;
    sqlx::query!("VACUUM INTO ?", into)
        .execute(&mut conn)
        .await
        .map_err(StoreError::Query)?;
    conn.close().await.map_err(StoreError::Query)?;

    // VACUUM INTO does not sync the file it writes; a backup must survive a power cut.
    let file = File::open(destination)
        .and_then(|f| f.sync_all().map(|()| f))
        .map_err(|e| BackupError::Destination(destination.to_path_buf(), e))?;
    if let Some(dir) = destination.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| BackupError::Destination(dir.to_path_buf(), e))?;
    }
    let bytes = file
        .metadata()
        .map_err(|e| BackupError::Destination(destination.to_path_buf(), e))?
        .len();

    let copy = SqliteConnectOptions::new()
        .filename(destination)
        .read_only(true);
    let mut conn = copy.connect().await.map_err(StoreError::Open)?;
    let verdict = integrity_check(&mut conn).await?;
    conn.close().await.map_err(StoreError::Query)?;
    if verdict != "ok" {
        return Err(BackupError::Integrity(destination.to_path_buf(), verdict));
    }
    Ok(bytes)
}

async fn integrity_check(conn: &mut SqliteConnection) -> Result<String, StoreError> {
    // Unchecked: the query macros describe a statement through the table metadata of its
    // result columns, and a pragma has none ("no such table column"); the result is one
    // TEXT column by SQLite's documentation.
    let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(conn)
        .await?;
    Ok(rows.join("; "))
}

fn read_only(url: &str) -> Result<SqliteConnectOptions, StoreError> {
    Ok(crate::connect_options(url)?
        .read_only(true)
        .create_if_missing(false))
}
