//! `GET /v1/publications[?image=&state=]` and `GET /v1/publications/{id}`: what the
//! pipeline did, step by step.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hoist_domain::PublicationState;
use hoist_store::{
    BuildRow, PublicationContents, PublicationRow, RetryOutcome, StepRow, TagEventRow,
};
use serde::{Deserialize, Serialize};

use crate::auth::Operator;
use crate::error::{ErrorBody, ReadErrors};
use crate::listing::{ApiQuery, Listing, Page};
use crate::{ApiError, AppState};

/// `GET /v1/publications` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PublicationsQuery {
    /// Only this image's, `registry/path`.
    image: Option<String>,
    /// Only those in this state.
    #[param(schema_with = hoist_store::schema::publication_state)]
    state: Option<String>,
    /// Items per page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The cursor the previous page returned in `next`.
    #[param(pattern = r"^[0-9]{1,18}$")]
    next: Option<String>,
}

/// `{id}` in a path.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct IdPath {
    /// A publication id.
    #[param(minimum = 1)]
    id: i64,
}

/// One publication with its steps, the builds it is made of and the tags it wrote.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PublicationDetail {
    #[serde(flatten)]
    publication: PublicationRow,
    steps: Vec<StepRow>,
    builds: Vec<BuildRow>,
    tags_written: Vec<TagEventRow>,
    /// What its index lists per platform (manifest, attestations) and what hoist signed.
    #[serde(flatten)]
    contents: PublicationContents,
}

/// Publications, newest first, optionally of one image or in one state.
#[utoipa::path(
    get,
    path = "/v1/publications",
    params(PublicationsQuery),
    responses(
        (status = 200, description = "A page of publications", body = Listing<PublicationRow>),
        (status = 400, description = "A parameter is malformed", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 408, description = "The request took too long", body = ErrorBody),
        (status = 503, description = "Database busy", body = ErrorBody),
    ),
    security(("apiToken" = [])),
)]
pub(crate) async fn list_publications(
    State(state): State<AppState>,
    operator: Operator,
    ApiQuery(params): ApiQuery<PublicationsQuery>,
) -> Result<Json<Listing<PublicationRow>>, ApiError> {
    tracing::debug!(operator = %operator.name, "listing publications");
    let wanted_state = match &params.state {
        Some(text) => Some(PublicationState::parse(text).ok_or_else(|| {
            let known: Vec<&str> = PublicationState::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::BadRequest(format!(
                "state: {text:?} is not one of {}",
                known.join(", ")
            ))
        })?),
        None => None,
    };
    let page = Page::parse(params.limit, params.next.as_deref())?;
    let before = match &page.after {
        None => i64::MAX,
        Some(_) => page.after_id()?,
    };
    let rows = state
        .store()
        .list_publications(params.image.as_deref(), wanted_state, before, page.limit)
        .await?;
    Ok(Json(Listing::new(rows, &page, |p| p.id.to_string())))
}

/// One publication with its steps (start, end, error) and the builds it is made of.
#[utoipa::path(
    get,
    path = "/v1/publications/{id}",
    params(IdPath),
    responses(
        (status = 200, description = "The publication", body = PublicationDetail),
        ReadErrors,
    ),
    security(("apiToken" = [])),
)]
pub(crate) async fn show_publication(
    State(state): State<AppState>,
    operator: Operator,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<Json<PublicationDetail>, ApiError> {
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
    let tags_written = state.store().tags_of_publication(id).await?;
    let contents = state.store().publication_contents(id).await?;
    Ok(Json(PublicationDetail {
        publication,
        steps,
        builds,
        tags_written,
        contents,
    }))
}

/// Runs a failed or stalled publication again (admin token).
#[utoipa::path(
    post,
    path = "/v1/publications/{id}/retry",
    params(IdPath),
    responses(
        (status = 202, description = "Queued again", body = PublicationRow),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No such publication", body = ErrorBody),
        (status = 408, description = "The request took too long", body = ErrorBody),
        (status = 409, description = "Not failed or stalled, or running right now", body = ErrorBody),
        (status = 503, description = "Database busy", body = ErrorBody),
    ),
    security(("apiToken" = [])),
)]
pub(crate) async fn retry_publication(
    State(state): State<AppState>,
    operator: Operator,
    Path(IdPath { id }): Path<IdPath>,
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
