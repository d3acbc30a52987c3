//! `GET /v1/publications[?image=&state=]` and `GET /v1/publications/{id}`: what the
//! pipeline did, step by step.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use hoist_domain::PublicationState;
use hoist_store::{PublicationRow, RetryOutcome};
use serde_json::{Value, json};

use crate::auth::Operator;
use crate::builds::page;
use crate::listing::Listing;
use crate::{ApiError, AppState};

pub(crate) async fn list_publications(
    State(state): State<AppState>,
    operator: Operator,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Listing<PublicationRow>>, ApiError> {
    tracing::debug!(operator = %operator.name, "listing publications");
    let wanted_state = match params.get("state") {
        Some(text) => Some(PublicationState::parse(text).ok_or_else(|| {
            let known: Vec<&str> = PublicationState::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::BadRequest(format!(
                "state: {text:?} is not one of {}",
                known.join(", ")
            ))
        })?),
        None => None,
    };
    let page = page(&params)?;
    let before = match &page.after {
        None => i64::MAX,
        Some(_) => page.after_id()?,
    };
    let rows = state
        .store()
        .list_publications(
            params.get("image").map(String::as_str),
            wanted_state,
            before,
            page.limit,
        )
        .await?;
    Ok(Json(Listing::new(rows, &page, |p| p.id.to_string())))
}

pub(crate) async fn show_publication(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    tracing::debug!(operator = %operator.name, id, "showing a publication");
    let publication = state
        .store()
        .publication(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no publication {id}")))?;
    let steps = state.store().publication_steps(id).await?;
    let builds = state
        .store()
        .builds_of_commit(publication.repository.as_str(), publication.commit.as_str())
        .await?;
    let mut body = json!(publication);
    body["steps"] = json!(steps);
    body["builds"] = json!(builds);
    body["tags_written"] = json!(state.store().tags_of_publication(id).await?);
    Ok(Json(body))
}

pub(crate) async fn retry_publication(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<PublicationRow>), ApiError> {
    operator.require_admin("retrying a publication")?;
    match state.store().retry_publication(id).await? {
        RetryOutcome::Queued(publication) => {
            tracing::info!(operator = %operator.name, id, "publication retry queued");
            Ok((StatusCode::ACCEPTED, Json(*publication)))
        }
        RetryOutcome::NotFound => Err(ApiError::NotFound(format!("no publication {id}"))),
        RetryOutcome::NotRetryable { state } => Err(ApiError::Conflict(format!(
            "publication {id} is {state}; only failed, stalled or abandoned running publications are retried"
        ))),
        RetryOutcome::Busy => Err(ApiError::Conflict(format!(
            "publication {id} is running in a worker right now"
        ))),
    }
}
