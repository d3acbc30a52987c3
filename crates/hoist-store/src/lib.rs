//! hoist's store: the interface every part of hoist uses ([`Store`], over a [`Backend`]),
//! and its embedded default, SQLite ([`Sqlite`]). PostgreSQL is the crate
//! `hoist-store-postgres`, for several replicas on one database.
//!
//! Design: one trait, one implementation per database, each in its own crate with its own
//! migrations and `.sqlx/` offline data. sqlx checks a query at compile time against one
//! database per crate, so the two dialects cannot share a crate and stay checked; a shared
//! query layer (`sqlx::Any`) would give up those checks. The operations are listed once
//! ([`with_store_operations!`]); the trait and each crate's forwarding implementation are
//! generated from that list, so both databases offer exactly the same operations with the
//! same types, and one conformance suite ([`conformance`], with the `test-support`
//! feature) runs against both. The row types, outcomes and errors live here and are shared.
//!
//! SQL of the SQLite store lives in this crate, one module per table group:
//! deliveries (webhooks), releases, builds, publications, jobs, ledger. Each write that
//! follows from an event runs in one transaction with the jobs it queues; the store says
//! what happened as an outcome enum and the API chooses the HTTP status.
//!
//! SQLite is set up here and nowhere else: WAL, `synchronous=NORMAL`, foreign keys, a busy
//! timeout, one writer connection (SQLite allows one writer at a time; a pool of one makes
//! callers queue in the process instead of on the file lock) and a read-only pool for
//! queries. Migrations are embedded in the binary and applied when the store opens.

mod backend;
mod backup;
#[cfg(test)]
mod backup_tests;
#[doc(hidden)]
pub mod builds;
#[cfg(any(test, feature = "test-support"))]
pub mod conformance;
#[doc(hidden)]
pub mod contents;
#[doc(hidden)]
pub mod deliveries;
#[doc(hidden)]
pub mod jobs;
#[doc(hidden)]
pub mod ledger;
mod locks;
#[doc(hidden)]
pub mod publications;
#[doc(hidden)]
pub mod recovery;
#[doc(hidden)]
pub mod releases;
#[doc(hidden)]
pub mod retention;
pub mod schema;

#[doc(hidden)]
pub use async_trait::async_trait;
pub use backend::{Backend, Store};
pub use backup::{BackupError, BackupReport, backup};
pub use builds::{BuildOutcome, BuildRow};
pub use contents::{PublicationContents, PublishedAttestation, PublishedPlatform};
pub use deliveries::{Delivery, Recorded, ReleaseSummary, Target, WebhookAnswer, WebhookEffect};
pub use jobs::ClaimedJob;
pub use ledger::{JsonPage, MoveIntent, MoveOutcome, TagEventRow, TagHolder, TagMove, TagRow};
pub use locks::ImageLock;
#[doc(hidden)]
pub use locks::{ImageLocks, SharedLock};
pub use publications::{LiveVersion, Moved, PublicationRow, StepRow};
pub use recovery::RetryOutcome;
pub use releases::ReleaseRow;
pub use retention::Purged;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::{Migrate, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::Notify;

/// The schema, shared by the daemon and by tests (`#[sqlx::test(migrator = "hoist_store::MIGRATOR")]`).
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0:?} is not a usable database URL: {1}")]
    Url(String, String),
    #[error("cannot create the database folder {0}: {1}")]
    CreateDir(PathBuf, #[source] std::io::Error),
    #[error("cannot open the database: {0}")]
    Open(#[source] sqlx::Error),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("the database holds something it should not: {0}")]
    Corrupt(String),
    #[error("cannot plan from {0}: {1}")]
    NotReadable(PathBuf, &'static str),
    #[error("cannot read {0}: {1}")]
    NotCurrent(String, &'static str),
}

impl StoreError {
    /// Whether trying again later may succeed (a lock held too long, a pool exhausted).
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Query(e) | StoreError::Open(e) => is_transient(e),
            StoreError::Url(..)
            | StoreError::CreateDir(..)
            | StoreError::Migrate(_)
            | StoreError::Corrupt(_)
            | StoreError::NotReadable(..)
            | StoreError::NotCurrent(..) => false,
        }
    }
}

/// A stored identifier, parsed into its newtype; a value that does not parse is corruption.
#[doc(hidden)]
pub fn parsed<T: FromStr>(what: &str, text: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("stored {what} {text:?}: {e}")))
}

fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            match code.parse::<i32>() {
                // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with or without extended codes.
                Ok(c) if code.len() < 5 => matches!(c & 0xff, 5 | 6),
                // PostgreSQL's SQLSTATEs: a transaction rolled back by a serialization
                // failure or a deadlock (class 40), a lost connection (08), a lock not
                // available (55P03), the server shutting down (57P01..57P03), too many
                // connections or too little memory (53).
                _ => {
                    code.starts_with("40")
                        || code.starts_with("08")
                        || code.starts_with("53")
                        || matches!(&*code, "55P03" | "57P01" | "57P02" | "57P03")
                }
            }
        }),
        _ => false,
    }
}

/// How to open the store; `hoist_domain::config::Database` maps onto it.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: String,
    pub read_connections: u32,
    pub busy_timeout: Duration,
}

/// A migration as recorded in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    pub version: i64,
    pub description: String,
}

/// The SQLite store: the writer and the read pool over one database file.
#[derive(Debug, Clone)]
pub struct Sqlite {
    writer: SqlitePool,
    reader: SqlitePool,
    path: PathBuf,
    /// Woken when jobs are queued, so idle workers need not poll often.
    jobs_changed: Arc<Notify>,
    /// One lock per image for tag decisions: one process writes this database.
    images: Arc<ImageLocks>,
}

implement_backend!(Sqlite);

impl Store {
    /// Opens the SQLite database `options` names (creating the file and its folder if
    /// needed) and migrates it.
    pub async fn open(options: &StoreOptions) -> Result<Store, StoreError> {
        Ok(Store::from_backend(Sqlite::open(options).await?))
    }

    /// Opens an existing SQLite database for reading only (see [`Sqlite::open_read_only`]).
    pub async fn open_read_only(url: &str) -> Result<Store, StoreError> {
        Ok(Store::from_backend(Sqlite::open_read_only(url).await?))
    }
}

impl Sqlite {
    /// Opens (creating the file and its folder if needed) and migrates the database.
    pub async fn open(options: &StoreOptions) -> Result<Self, StoreError> {
        let base = connect_options(&options.url)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout);
        let path = base.get_filename().to_path_buf();
        create_parent(&path)?;

        migrate(base.clone()).await?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(base.clone())
            .await
            .map_err(StoreError::Open)?;

        let reader = SqlitePoolOptions::new()
            .max_connections(options.read_connections.max(1))
            .connect_with(base.read_only(true))
            .await
            .map_err(StoreError::Open)?;
        Ok(Sqlite {
            writer,
            reader,
            path,
            jobs_changed: Arc::new(Notify::new()),
            images: Arc::default(),
        })
    }

    /// Opens an existing database for reading only: nothing is created, migrated or
    /// written (for `hoist plan`). A database whose schema is not this build's is refused.
    pub async fn open_read_only(url: &str) -> Result<Self, StoreError> {
        let options = connect_options(url)?
            .read_only(true)
            .create_if_missing(false);
        let path = options.get_filename().to_path_buf();
        if !path.exists() {
            return Err(StoreError::NotReadable(
                path,
                "it does not exist; run hoist migrate or hoist serve first",
            ));
        }
        // With no write-ahead log beside it, nobody is writing: open it as immutable, so
        // not even SQLite's -wal and -shm files are created (they would belong to whoever
        // runs the plan). With one, hoist serve is running and owns them.
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        let options = options.immutable(!Path::new(&wal).exists());
        let reader = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(StoreError::Open)?;
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&reader)
                .await?;
        let known: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        if applied != known {
            reader.close().await;
            return Err(StoreError::NotReadable(
                path,
                "its schema is not this version's; run hoist migrate first",
            ));
        }
        Ok(Sqlite {
            writer: reader.clone(),
            reader,
            path,
            jobs_changed: Arc::new(Notify::new()),
            images: Arc::default(),
        })
    }

    /// The single writer connection. Multi-statement writes open a transaction on it.
    pub fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// The read-only pool; a write through it fails.
    pub fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn kind(&self) -> &'static str {
        "sqlite"
    }

    pub fn describe(&self) -> String {
        self.path.display().to_string()
    }

    /// Proves the database accepts writes right now (for `/readyz`); returns the time
    /// written.
    pub async fn check_writable(&self) -> Result<String, StoreError> {
        let beat = sqlx::query_scalar!(
            "INSERT INTO heartbeat (id, beat_at) VALUES (1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
             ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at
             RETURNING beat_at"
        )
        .fetch_one(&self.writer)
        .await?;
        Ok(beat)
    }

    /// The migrations recorded as applied, oldest first.
    pub async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>, StoreError> {
        let mut conn = self.writer.acquire().await?;
        let applied = conn.list_applied_migrations().await?;
        let mut out: Vec<AppliedMigration> = applied
            .into_iter()
            .map(|m| AppliedMigration {
                version: m.version,
                description: MIGRATOR
                    .iter()
                    .find(|known| known.version == m.version)
                    .map(|known| known.description.to_string())
                    .unwrap_or_default(),
            })
            .collect();
        out.sort_by_key(|m| m.version);
        Ok(out)
    }

    /// Waits for in-flight queries and closes every connection.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Applies the pending migrations on a connection of its own. Foreign keys are not
/// enforced while they run, as SQLite's documentation asks for a schema change that
/// rebuilds a table, and every key is checked once they are done.
async fn migrate(base: SqliteConnectOptions) -> Result<(), StoreError> {
    use sqlx::{ConnectOptions, Connection};
    let mut conn = base
        .create_if_missing(true)
        .foreign_keys(false)
        .connect()
        .await
        .map_err(StoreError::Open)?;
    MIGRATOR.run(&mut conn).await?;
    let broken = sqlx::query("PRAGMA foreign_key_check")
        .fetch_all(&mut conn)
        .await?
        .len();
    conn.close().await?;
    if broken > 0 {
        return Err(StoreError::Corrupt(format!(
            "{broken} row(s) refer to rows that do not exist after migrating"
        )));
    }
    Ok(())
}

/// Parses a `sqlite:` URL; sqlx would take any other string as a file name.
fn connect_options(url: &str) -> Result<SqliteConnectOptions, StoreError> {
    if !url.starts_with("sqlite:") {
        let why =
            "expected sqlite://path/to/file.db (PostgreSQL: postgres://user@host/db)".to_owned();
        return Err(StoreError::Url(url.to_owned(), why));
    }
    SqliteConnectOptions::from_str(url).map_err(|e| StoreError::Url(url.to_owned(), e.to_string()))
}

fn create_parent(path: &Path) -> Result<(), StoreError> {
    let memory = path.as_os_str().is_empty() || path.to_string_lossy().starts_with(":memory:");
    match path.parent() {
        Some(dir) if !memory && !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::CreateDir(dir.to_path_buf(), e))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;

/// Helpers for other crates' tests to put the store in states that later issues' code
/// produces (e.g. a publication that already ran). Not part of the API.
#[cfg(feature = "test-support")]
pub mod test_support {
    use crate::{Store, StoreError};

    /// Records what publishing release `tag` of `repository` on `commit` leaves behind, as
    /// the pipeline would: the published release, its succeeded publication with index
    /// `digest`, and `tags` pointing at it in the ledger.
    pub async fn seed_published_release(
        store: &Store,
        repository: &str,
        image: &str,
        tag: &str,
        commit: &str,
        digest: &str,
        tags: &[&str],
    ) -> Result<(), StoreError> {
        store
            .seed_published_release(repository, image, tag, commit, digest, tags)
            .await
    }

    /// Records a succeeded publication of `commit`, as the pipeline would.
    pub async fn mark_published(
        store: &Store,
        repository: &str,
        image: &str,
        commit: &str,
    ) -> Result<(), StoreError> {
        store.mark_published(repository, image, commit).await
    }
}

/// Test fixtures behind [`Backend::seed_published_release`] and
/// [`Backend::mark_published`].
impl Sqlite {
    /// Records what publishing release `tag` of `repository` on `commit` leaves behind, as
    /// the pipeline would: the published release, its succeeded publication with index
    /// `digest`, and `tags` pointing at it in the ledger.
    pub async fn seed_published_release(
        &self,
        repository: &str,
        image: &str,
        tag: &str,
        commit: &str,
        digest: &str,
        tags: &[&str],
    ) -> Result<(), StoreError> {
        let github_id = sqlx::query_scalar!(r#"SELECT count(*) + 1 AS "n!: i64" FROM releases"#)
            .fetch_one(self.writer())
            .await?;
        let published = hoist_domain::ReleaseState::Published.as_str();
        let succeeded = hoist_domain::PublicationState::Succeeded.as_str();
        let release = sqlx::query_scalar!(
            r#"INSERT INTO releases
                   (repository, github_id, tag_name, target_commitish, prerelease, state,
                    last_action, commit_sha, commit_source)
               VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5, ?4, 'target_commitish')
               RETURNING id AS "id!""#,
            repository,
            github_id,
            tag,
            commit,
            published
        )
        .fetch_one(self.writer())
        .await?;
        let publication = sqlx::query_scalar!(
            r#"INSERT INTO publications
                   (image, repository, commit_sha, release_id, state, index_digest, version_tag)
               VALUES (?1, ?2, ?3, ?4, ?7, ?5, ?6)
               RETURNING id AS "id!""#,
            image,
            repository,
            commit,
            release,
            digest,
            tag,
            succeeded
        )
        .fetch_one(self.writer())
        .await?;
        for name in tags {
            let m = TagMove {
                image,
                tag: name,
                digest,
                immutable: false,
                intent: MoveIntent::Publish,
                reason: "seeded",
                publication_id: Some(publication),
                release_tag: Some(tag),
            };
            self.move_tag(&m).await?;
        }
        Ok(())
    }

    pub async fn fixture_execute(&self, sql: &str) -> Result<(), StoreError> {
        use sqlx::Executor;
        self.writer().execute(sql).await?;
        Ok(())
    }

    pub async fn fixture_query(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, StoreError> {
        use sqlx::Row;
        let rows = sqlx::query(sql).fetch_all(self.writer()).await?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| {
                        row.try_get::<Option<String>, _>(i)
                            .map_err(StoreError::from)
                    })
                    .collect()
            })
            .collect()
    }

    /// Records a succeeded publication of `commit`, as the pipeline would.
    pub async fn mark_published(
        &self,
        repository: &str,
        image: &str,
        commit: &str,
    ) -> Result<(), StoreError> {
        let succeeded = hoist_domain::PublicationState::Succeeded.as_str();
        sqlx::query!(
            "INSERT INTO publications (image, repository, commit_sha, state) VALUES (?, ?, ?, ?)",
            image,
            repository,
            commit,
            succeeded
        )
        .execute(self.writer())
        .await?;
        Ok(())
    }
}
