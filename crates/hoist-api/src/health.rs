//! Probes: `/healthz` says the process is up, `/readyz` that it can do its work.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::error::ErrorBody;
use crate::{ApiError, AppState};

/// A database that cannot take a write within this is as good as down for a probe.
const READY_DEADLINE: Duration = Duration::from_secs(2);

/// Probes within this of the last write check get its answer: a probe storm costs the
/// single SQLite writer one write a second.
const READY_CACHE: Duration = Duration::from_secs(1);

/// A write check's outcome: when the database took the write, or why it did not.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    at: Instant,
    outcome: Result<String, &'static str>,
}

/// The process is up, and which build it runs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    status: &'static str,
    version: String,
    git_sha: String,
    built_at: String,
}

/// The database took a write.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Ready {
    status: &'static str,
    database: &'static str,
    /// When the database last took the probe's write.
    checked_at: String,
}

/// The process is up; version, git commit and build time.
#[utoipa::path(
    get,
    path = "/healthz",
    responses(
        (status = 200, description = "Up", body = Health),
        (status = 408, description = "The request took too long", body = ErrorBody),
    ),
)]
pub(crate) async fn healthz(State(state): State<AppState>) -> Json<Health> {
    let build = state.build();
    Json(Health {
        status: "ok",
        version: build.version.clone(),
        git_sha: build.git_sha.clone(),
        built_at: build.built_at.clone(),
    })
}

/// The database accepts writes and the process is not shutting down.
#[utoipa::path(
    get,
    path = "/readyz",
    responses(
        (status = 200, description = "Ready", body = Ready),
        (status = 408, description = "The request took too long", body = ErrorBody),
        (status = 503, description = "Not writable, or shutting down", body = ErrorBody),
    ),
)]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    if state.is_shutting_down() {
        return Err(ApiError::NotReady("shutting down"));
    }
    // Concurrent probes wait for one check instead of each writing.
    let mut last = state.readiness().lock().await;
    let fresh = last
        .as_ref()
        .filter(|c| c.at.elapsed() < READY_CACHE)
        .cloned();
    let checked = match fresh {
        Some(checked) => checked,
        None => {
            let checked = Checked {
                outcome: check_writable(&state).await,
                at: Instant::now(),
            };
            *last = Some(checked.clone());
            checked
        }
    };
    drop(last);
    match checked.outcome {
        Ok(checked_at) => Ok(Json(Ready {
            status: "ready",
            database: "writable",
            checked_at,
        })),
        Err(why) => Err(ApiError::NotReady(why)),
    }
}

async fn check_writable(state: &AppState) -> Result<String, &'static str> {
    match tokio::time::timeout(READY_DEADLINE, state.store().check_writable()).await {
        Ok(Ok(checked_at)) => Ok(checked_at),
        Ok(Err(e)) => {
            tracing::warn!(error = %crate::error::ErrorChain(&e), "readiness: database write failed");
            Err("database is not writable")
        }
        Err(_) => {
            tracing::warn!("readiness: database write took longer than {READY_DEADLINE:?}");
            Err("database is not writable")
        }
    }
}
