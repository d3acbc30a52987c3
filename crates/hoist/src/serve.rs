//! `hoist serve` and `hoist migrate`.
//!
//! Long-running components run under one `JoinSet`. SIGTERM or SIGINT stops accepting,
//! lets in-flight work finish within `server.shutdown_timeout`, and exits 0; a component
//! that stops on its own is a failure and the process exits non-zero.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use hoist_api::{AppState, BuildInfo, HttpOptions};
use hoist_domain::Backoff;
use hoist_domain::config::{Config, DatabaseKind};
use hoist_domain::metrics::PipelineCounters;
use hoist_pipeline::{Pipeline, PipelineOptions};
use hoist_registry::{Client, RegistrySettings};
use hoist_store::{Store, StoreOptions};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

fn build_info() -> BuildInfo {
    BuildInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        git_sha: env!("HOIST_GIT_SHA").to_owned(),
        built_at: env!("HOIST_BUILD_TIME").to_owned(),
    }
}

pub(crate) fn store_options(config: &Config) -> StoreOptions {
    StoreOptions {
        url: config.database.url.clone(),
        read_connections: config.database.read_connections,
        busy_timeout: config.database.busy_timeout,
    }
}

pub(crate) fn postgres_options(config: &Config) -> hoist_store_postgres::PgOptions {
    let db = &config.database;
    hoist_store_postgres::PgOptions {
        url: db.url.clone(),
        password: db.password.as_ref().map(|p| p.expose_secret().to_owned()),
        max_connections: db.max_connections,
        acquire_timeout: db.busy_timeout,
    }
}

/// Opens and migrates the database the configuration names: SQLite or PostgreSQL.
pub(crate) async fn open_store(config: &Config) -> anyhow::Result<Store> {
    Ok(match config.database.kind {
        DatabaseKind::Sqlite => Store::open(&store_options(config)).await?,
        DatabaseKind::Postgres => hoist_store_postgres::open(&postgres_options(config)).await?,
    })
}

pub async fn migrate(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = crate::config_load::load(config_path.as_deref())?;
    let store = open_store(&config).await?;
    let applied = store.applied_migrations().await?;
    let latest = applied.last().map_or(0, |m| m.version);
    tracing::info!(
        database = %store.describe(),
        migrations = applied.len(),
        version = latest,
        "database schema is up to date"
    );
    store.close().await;
    Ok(())
}

pub async fn import_sqlite(config_path: Option<PathBuf>, source: &str) -> anyhow::Result<()> {
    let config = crate::config_load::load(config_path.as_deref())?;
    if config.database.kind != DatabaseKind::Postgres {
        anyhow::bail!(
            "import-sqlite copies into PostgreSQL, and database.url is {:?}: point it at the \
             new PostgreSQL database first",
            config.database.url
        );
    }
    let source = if source.starts_with("sqlite:") {
        source.to_owned()
    } else {
        format!("sqlite://{source}")
    };
    let imported = hoist_store_postgres::import_sqlite(&postgres_options(&config), &source)
        .await
        .with_context(|| format!("cannot import {source}"))?;
    for (table, rows) in &imported.tables {
        tracing::info!(table, rows, "copied");
    }
    tracing::info!(rows = imported.rows(), from = %source, "import done");
    Ok(())
}

pub async fn serve(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = crate::config_load::load(config_path.as_deref())?;
    let build = build_info();
    tracing::info!(version = %build.version, git_sha = %build.git_sha, "hoist starting");

    let store = open_store(&config).await?;
    tracing::info!(database = %store.describe(), kind = store.kind(), "database open and migrated");

    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");

    let shutdown = CancellationToken::new();
    if config.github.webhook_secrets.is_empty()
        && config
            .repositories
            .iter()
            .all(|r| r.webhook_secrets.is_empty())
    {
        tracing::warn!("no github.webhook_secret_env/_file: every webhook will be refused");
    }
    let http = HttpOptions {
        request_timeout: config.server.request_timeout,
    };
    let shutdown_timeout = config.server.shutdown_timeout;
    let config = Arc::new(config);
    let requeued = store.requeue_running_jobs().await?;
    if requeued > 0 {
        tracing::info!(
            jobs = requeued,
            "re-queued the jobs a previous run left unfinished"
        );
    }
    // Every configured repository's releases and branch builds brought in line with their
    // publications: nothing an earlier version (or an unconfigured repository) left is lost.
    for repo in &config.repositories {
        store
            .resync_repository(&hoist_store::Target::of(repo), repo.github.as_str())
            .await?;
    }
    let counters = Arc::new(PipelineCounters::default());
    let registry = Client::counting_retries(
        config
            .registries
            .iter()
            .map(RegistrySettings::from)
            .collect(),
        Backoff::default(),
        counters.registry_retries.clone(),
    )?;
    let pipeline = Arc::new(Pipeline::new(
        store.clone(),
        config.clone(),
        registry,
        counters.clone(),
        PipelineOptions {
            lease: config.publish.lease,
            ..PipelineOptions::default()
        },
    ));
    let workers = config.publish.workers;
    let state = AppState::new(config, store.clone(), counters, build, shutdown.clone());
    let app = hoist_api::router(state, http);

    let mut components = Components::new();
    let stop = shutdown.clone();
    components.spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .context("HTTP server failed");
        ("http server", served)
    });

    for _ in 0..workers {
        let (pipeline, stop) = (pipeline.clone(), shutdown.clone());
        components.spawn(async move {
            let ran = pipeline.run_worker(stop).await.map_err(anyhow::Error::from);
            ("publication worker", ran)
        });
    }
    let (reconciler, stop) = (pipeline.clone(), shutdown.clone());
    components.spawn(async move {
        let ran = reconciler
            .run_reconciler(stop)
            .await
            .map_err(anyhow::Error::from);
        ("reconciler", ran)
    });
    tracing::info!(workers, "publication workers started");

    let outcome = supervise(components, &shutdown, shutdown_signal(), shutdown_timeout).await;
    store.close().await;
    if outcome.is_ok() {
        tracing::info!("stopped");
    }
    outcome
}

/// The daemon's long-running parts; each returns its name with how it ended.
type Components = JoinSet<(&'static str, anyhow::Result<()>)>;

/// Runs until `signal` fires (then drains, `Ok`) or a component ends first (then `Err`).
/// Either way `shutdown` is cancelled and the remaining components get `deadline` to finish
/// before they are aborted.
async fn supervise(
    mut components: Components,
    shutdown: &CancellationToken,
    signal: impl Future<Output = anyhow::Result<&'static str>>,
    deadline: Duration,
) -> anyhow::Result<()> {
    let outcome = tokio::select! {
        signal = signal => {
            tracing::info!(signal = signal?, "shutting down: no new requests, draining in-flight work");
            Ok(())
        }
        Some(joined) = components.join_next() => {
            let (name, result) = joined.context("a component panicked")?;
            Err(match result {
                Ok(()) => anyhow!("{name} stopped unexpectedly"),
                Err(e) => e.context(format!("{name} stopped")),
            })
        }
    };
    shutdown.cancel();

    let drained = tokio::time::timeout(deadline, async {
        while let Some(joined) = components.join_next().await {
            match joined {
                Ok((name, Err(e))) => {
                    tracing::warn!(
                        component = name,
                        error = format!("{e:#}"),
                        "failed while draining"
                    );
                }
                Ok((_, Ok(()))) => {}
                Err(e) => tracing::warn!(error = %e, "a component panicked while draining"),
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            ?deadline,
            "drain deadline passed; abandoning in-flight work"
        );
        components.shutdown().await;
    }
    outcome
}

/// Resolves with the name of the first SIGTERM or SIGINT.
async fn shutdown_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

#[cfg(test)]
mod tests {
    use std::future::pending;

    use super::*;

    fn until_cancelled(
        token: &CancellationToken,
    ) -> impl Future<Output = (&'static str, anyhow::Result<()>)> + use<> {
        let token = token.clone();
        async move {
            token.cancelled().await;
            ("worker", Ok(()))
        }
    }

    #[tokio::test]
    async fn a_signal_drains_every_component_and_succeeds() {
        let shutdown = CancellationToken::new();
        let mut components = Components::new();
        components.spawn(until_cancelled(&shutdown));
        components.spawn(until_cancelled(&shutdown));
        let outcome = supervise(
            components,
            &shutdown,
            async { Ok("SIGTERM") },
            Duration::from_secs(5),
        )
        .await;
        assert!(outcome.is_ok());
        assert!(shutdown.is_cancelled());
    }

    #[tokio::test]
    async fn a_component_that_fails_stops_the_others_and_fails_the_process() {
        let shutdown = CancellationToken::new();
        let mut components = Components::new();
        components.spawn(until_cancelled(&shutdown));
        components.spawn(async { ("http server", Err(anyhow!("address in use"))) });
        let err = supervise(components, &shutdown, pending(), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(format!("{err:#}"), "http server stopped: address in use");
        assert!(shutdown.is_cancelled());
    }

    #[tokio::test]
    async fn a_component_that_returns_early_is_a_failure_too() {
        let shutdown = CancellationToken::new();
        let mut components = Components::new();
        components.spawn(async { ("worker", Ok(())) });
        let err = supervise(components, &shutdown, pending(), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "worker stopped unexpectedly");
    }

    #[tokio::test]
    async fn a_panicking_component_fails_the_process() {
        let shutdown = CancellationToken::new();
        let mut components = Components::new();
        components.spawn(async { panic!("boom") });
        let err = supervise(components, &shutdown, pending(), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("panicked"), "{err:#}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_component_that_ignores_shutdown_is_abandoned_at_the_deadline() {
        let shutdown = CancellationToken::new();
        let mut components = Components::new();
        components.spawn(async {
            pending::<()>().await;
            ("stuck", Ok(()))
        });
        let started = tokio::time::Instant::now();
        let outcome = supervise(
            components,
            &shutdown,
            async { Ok("SIGINT") },
            Duration::from_secs(10),
        )
        .await;
        assert!(outcome.is_ok());
        assert_eq!(started.elapsed().as_secs(), 10);
    }
}
