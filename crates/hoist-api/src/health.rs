//! Probes: `/healthz` says the process is up, `/readyz` that it can do its work.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::{ApiError, AppState};

/// A database that cannot take a write within this is as good as down for a probe.
const READY_DEADLINE: Duration = Duration::from_secs(2);

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
    match tokio::time::timeout(READY_DEADLINE, state.store().check_writable()).await {
        Ok(Ok(checked_at)) => Ok(Json(json!({
            "status": "ready",
            "database": "writable",
            "checked_at": checked_at,
        }))),
        Ok(Err(e)) => {
            tracing::warn!(error = %crate::error::ErrorChain(&e), "readiness: database write failed");
            Err(ApiError::NotReady("database is not writable"))
        }
        Err(_) => {
            tracing::warn!("readiness: database write took longer than {READY_DEADLINE:?}");
            Err(ApiError::NotReady("database is not writable"))
        }
    }
}
