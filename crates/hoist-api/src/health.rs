//! Probes: `/healthz` says the process is up, `/readyz` that it can do its work.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

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

pub(crate) async fn healthz(State(state): State<AppState>) -> Json<Value> {
    let build = state.build();
    Json(json!({
        "status": "ok",
        "version": build.version,
        "git_sha": build.git_sha,
        "built_at": build.built_at,
    }))
}

pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
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
        Ok(checked_at) => Ok(Json(json!({
            "status": "ready",
            "database": "writable",
            "checked_at": checked_at,
        }))),
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
