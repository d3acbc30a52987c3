//! hoist's PostgreSQL store: the operations of [`hoist_store::Backend`], for several hoist
//! replicas on one database. The design (one trait, one crate per database, each with its
//! own migrations and `.sqlx/` data) is explained in `hoist_store`'s crate documentation;
//! this crate implements the trait by forwarding to inherent methods of [`Postgres`] of the
//! same names ([`hoist_store::implement_backend!`]), one module per table group as in the
//! SQLite store, query for query.
//!
//! What several processes change, compared with SQLite's single writer:
//! - **Write transactions** that read and then decide (a delivery, a build report, a
//!   publication's move) first take a transaction-scoped advisory lock on what they decide
//!   about ([`lock`]): the repository for ingest, the image for tag decisions. Locks are
//!   always taken in that order (repository, then image), so two replicas never deadlock
//!   on them, and two never interleave tag writes of one image.
//! - **Uniqueness** (deliveries, builds, publications, ledger rows) is the database's:
//!   unique constraints and `ON CONFLICT`, never a check in the process.
//! - **Jobs** are claimed in one statement with `FOR UPDATE SKIP LOCKED`, under a lease
//!   naming this process ([`Postgres::replica`]); completing a job is fenced by both the
//!   owner and the claim's attempt number. Every replica's reconciler re-queues expired
//!   leases. Queueing a job sends `NOTIFY hoist_jobs`; every replica listens and wakes its
//!   idle workers, with the workers' poll as the fallback.
//! - **Time** is the database's (`hoist_now()`, `hoist_at()`), so leases and backoff need
//!   no agreement between the replicas' clocks.

mod builds;
#[cfg(any(test, feature = "test-support"))]
pub mod cluster;
#[cfg(test)]
mod conformance_tests;
#[cfg(test)]
mod connect_tests;
mod contents;
mod deliveries;
mod fixtures;
mod import;
#[cfg(test)]
mod import_tests;
mod jobs;
mod ledger;
mod publications;
#[cfg(test)]
mod race_tests;
mod recovery;
mod releases;
mod retention;

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hoist_domain::config::{check_postgres_url, redact_url};
use hoist_store::{AppliedMigration, ImageLocks, Store, StoreError};
use sqlx::migrate::{Migrate, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};
use tokio::sync::Notify;

/// The PostgreSQL schema (this crate's `migrations/`), applied by [`Postgres::open`] and
/// `hoist migrate`. sqlx holds an advisory lock while it runs, so replicas starting
/// together migrate once.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The channel `NOTIFY` wakes idle workers on.
const JOBS_CHANNEL: &str = "hoist_jobs";

/// Set on every session, so a replica that crashes or is cut off cannot hold what others
/// wait for (one that is paused while its host still answers keeps its session): a lock wait longer than 30 s fails (an error that may pass: the
/// request or job is retried), a transaction left idle for a minute is ended with its
/// locks, and the server probes a quiet client after a minute and drops one that stays
/// silent for another (which ends its session and releases its advisory locks).
const SESSION_SETTINGS: [(&str, &str); 5] = [
    ("lock_timeout", "30s"),
    ("idle_in_transaction_session_timeout", "60s"),
    ("tcp_keepalives_idle", "60"),
    ("tcp_keepalives_interval", "10"),
    ("tcp_keepalives_count", "6"),
];

/// How long a worker waits for another replica's tag decisions on the same image; they
/// may include registry retries, so longer than other lock waits.
const IMAGE_LOCK_TIMEOUT: &str = "300s";

/// How long opening an image lock's session may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens the connections image locks are held on ([`Postgres::lock_image`]): one per held
/// lock, outside the pool. Its `Debug` shows no connection options, which hold the
/// password.
#[derive(Clone)]
pub(crate) struct Connector(PgConnectOptions);

impl Connector {
    fn new(connect: &PgConnectOptions) -> Connector {
        // The server checks every 10 s that a session waiting for the lock still has its
        // client, so a waiter that gave up (its job cancelled) leaves the queue.
        Connector(connect.clone().options([
            ("lock_timeout", IMAGE_LOCK_TIMEOUT),
            ("client_connection_check_interval", "10s"),
        ]))
    }

    /// A new session, or an error that may pass (the job is retried) when the server
    /// does not answer within [`CONNECT_TIMEOUT`].
    pub(crate) async fn connect(&self) -> Result<PgConnection, sqlx::Error> {
        tokio::time::timeout(CONNECT_TIMEOUT, sqlx::Connection::connect_with(&self.0))
            .await
            .unwrap_or_else(|_| {
                Err(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the database did not answer a new connection in time",
                )))
            })
    }
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector")
    }
}

/// How to reach the database; `hoist_domain::config::Database` maps onto it.
#[derive(Clone)]
pub struct PgOptions {
    /// `postgres://user@host:port/db[?sslmode=...]`, without a password.
    pub url: String,
    /// From `password_env` / `password_file`; never in the URL.
    pub password: Option<String>,
    /// The pool's size: workers, API requests and the listener share it.
    pub max_connections: u32,
    /// How long a caller waits for a connection before the error is retryable.
    pub acquire_timeout: Duration,
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

/// The PostgreSQL store: one pool (`writer` and `reader` are the same pool, named as in
/// the SQLite store so the modules read alike), and this process's lease-owner id.
#[derive(Debug, Clone)]
pub struct Postgres {
    writer: PgPool,
    reader: PgPool,
    /// Who holds a lease: host, process and a random part, unique per open.
    me: Arc<str>,
    /// `user@host:port/db`, for logs.
    location: Arc<str>,
    /// Woken when jobs are queued, by this process or (through `LISTEN`) another.
    jobs_changed: Arc<Notify>,
    /// The `LISTEN` task, stopped by [`Postgres::close`].
    listener: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
    /// This process's image locks, taken before the database's.
    images: Arc<ImageLocks>,
    /// Connects the sessions that hold image locks.
    connector: Connector,
}

hoist_store::implement_backend!(Postgres);

pub use import::Imported;

/// `hoist import-sqlite`: migrates the PostgreSQL database `options` names and copies the
/// SQLite database at `sqlite_url` (this version's schema, hoist stopped) into it. The
/// PostgreSQL database must hold no data yet.
pub async fn import_sqlite(options: &PgOptions, sqlite_url: &str) -> Result<Imported, StoreError> {
    let source = hoist_store::Sqlite::open_read_only(sqlite_url).await?;
    let target = Postgres::open(options).await?;
    let imported = target.import_sqlite(&source).await;
    target.close().await;
    source.close().await;
    imported
}

/// Opens (and migrates) the database `options` names, as a [`Store`].
pub async fn open(options: &PgOptions) -> Result<Store, StoreError> {
    Ok(Store::from_backend(Postgres::open(options).await?))
}

/// Parses the URL, refusing one `hoist config check` would refuse (a password in it, a
/// query key other than the TLS settings), and sets the password given.
pub fn connect_options(options: &PgOptions) -> Result<PgConnectOptions, StoreError> {
    let url = &options.url;
    // The message shows the URL without a password, and a refused URL is never parsed (the
    // driver's own errors may quote it).
    let bad = |why: String| StoreError::Url(redact_url(url), why);
    check_postgres_url(url).map_err(bad)?;
    let parsed = PgConnectOptions::from_str(url)
        .map_err(|_| bad("is not a URL the PostgreSQL driver reads".to_owned()))?;
    let parsed = parsed.application_name("hoist").options(SESSION_SETTINGS);
    Ok(match &options.password {
        Some(password) => parsed.password(password),
        None => parsed,
    })
}

/// Serializes, until the transaction ends, every transaction that takes the same lock:
/// `scope` names what is decided about ("repository", "image"), `key` which one, compared
/// without regard to ASCII case (GitHub's repository names and image names are
/// case-insensitive, and a report may spell one differently from the configuration). Take
/// a repository's lock before an image's.
pub(crate) async fn lock(
    conn: &mut PgConnection,
    scope: &str,
    key: &str,
) -> Result<(), StoreError> {
    let name = format!("hoist:{scope}:{}", key.to_ascii_lowercase());
    sqlx::query!(
        r#"SELECT 1 AS "locked!" FROM (SELECT pg_advisory_xact_lock(hashtextextended($1, 0))) AS l"#,
        name
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(())
}

/// `user@host:port/db`: where the database is, without a password.
fn location(connect: &PgConnectOptions) -> String {
    format!(
        "{}@{}:{}/{}",
        connect.get_username(),
        connect.get_host(),
        connect.get_port(),
        connect.get_database().unwrap_or_default()
    )
}

/// Opens an existing database for reading only (for `hoist plan`): nothing is migrated,
/// every transaction is read-only, and a database whose schema is not this build's is
/// refused.
pub async fn open_read_only(options: &PgOptions) -> Result<Store, StoreError> {
    let connect = connect_options(options)?.options([("default_transaction_read_only", "on")]);
    let location = location(&connect);
    let connector = Connector::new(&connect);
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(options.acquire_timeout)
        .connect_with(connect)
        .await
        .map_err(StoreError::Open)?;
    let applied: Vec<i64> = match pool.acquire().await?.list_applied_migrations().await {
        Ok(applied) => applied.iter().map(|m| m.version).collect(),
        Err(_) => Vec::new(),
    };
    let known: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
    if applied != known {
        pool.close().await;
        return Err(StoreError::NotCurrent(
            location,
            "its schema is not this version's; run hoist migrate first",
        ));
    }
    Ok(Store::from_backend(Postgres {
        writer: pool.clone(),
        reader: pool,
        me: "read-only".into(),
        location: location.into(),
        jobs_changed: Arc::new(Notify::new()),
        listener: Arc::new(Mutex::new(None)),
        images: Arc::default(),
        connector,
    }))
}

impl Postgres {
    /// Connects, migrates, and starts listening for queued jobs.
    pub async fn open(options: &PgOptions) -> Result<Self, StoreError> {
        let connect = connect_options(options)?;
        let location = location(&connect);
        let connector = Connector::new(&connect);
        let migrating_options = connect.clone().options([("lock_timeout", "0")]);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(StoreError::Open)?;
        // On a session of its own that waits for sqlx's migration lock however long another
        // replica's migration takes, rather than giving up after the usual lock wait.
        let mut migrating: PgConnection = sqlx::Connection::connect_with(&migrating_options)
            .await
            .map_err(StoreError::Open)?;
        MIGRATOR.run(&mut migrating).await?;
        sqlx::Connection::close(migrating).await?;
        let random = sqlx::query_scalar!(r#"SELECT gen_random_uuid()::text AS "id!""#)
            .fetch_one(&pool)
            .await?;
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "host".to_owned());
        let me = format!("{host}/{}/{}", std::process::id(), &random[..8]);
        let jobs_changed = Arc::new(Notify::new());
        let listener = listen(&pool, jobs_changed.clone()).await?;
        Ok(Postgres {
            writer: pool.clone(),
            reader: pool,
            me: me.into(),
            location: location.into(),
            jobs_changed,
            listener: Arc::new(Mutex::new(Some(listener))),
            images: Arc::default(),
            connector,
        })
    }

    /// This process's lease-owner id (`jobs.locked_by`).
    pub fn replica(&self) -> &str {
        &self.me
    }

    pub fn kind(&self) -> &'static str {
        "postgres"
    }

    pub fn describe(&self) -> String {
        self.location.to_string()
    }

    /// Proves the database accepts writes right now (for `/readyz`).
    pub async fn check_writable(&self) -> Result<String, StoreError> {
        let beat = sqlx::query_scalar!(
            "INSERT INTO heartbeat (id, beat_at) VALUES (1, hoist_now())
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

    /// Stops listening, waits for in-flight queries and closes every connection.
    pub async fn close(&self) {
        let task = self.listener.lock().ok().and_then(|mut l| l.take());
        if let Some(task) = task {
            task.abort();
        }
        self.writer.close().await;
    }
}

/// Listens on [`JOBS_CHANNEL`] and wakes this process's idle workers on every notification.
/// A lost connection is re-established by the listener; while it is down the workers'
/// poll finds the jobs.
async fn listen(
    pool: &PgPool,
    jobs_changed: Arc<Notify>,
) -> Result<tokio::task::JoinHandle<()>, StoreError> {
    let mut listener = PgListener::connect_with(pool)
        .await
        .map_err(StoreError::Open)?;
    listener.listen(JOBS_CHANNEL).await?;
    Ok(tokio::spawn(async move {
        loop {
            match listener.recv().await {
                Ok(_) => jobs_changed.notify_waiters(),
                Err(e) => {
                    tracing::warn!(error = %e, "lost the job notifications; the poll stands in");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }))
}
