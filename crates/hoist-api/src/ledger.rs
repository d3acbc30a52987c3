//! The operator REST view of the tag ledger: images, current tags, the append-only history
//! of tag moves, and which tags point at a digest.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use hoist_domain::{Digest, ImageRef};
use hoist_store::{JsonPage, TagEventRow, TagRow as Tag};
use serde::{Deserialize, Serialize};

use crate::auth::Operator;
use crate::error::{ErrorBody, ReadErrors};
use crate::listing::{ApiQuery, Listing, Page};
use crate::{ApiError, AppState};

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Image)]
pub(crate) struct ImageSummary {
    /// `registry/path`, as the `image` parameter names it.
    image: String,
    /// The GitHub repository it is published for.
    github: String,
    platforms: Vec<String>,
    /// Tags it has in the ledger.
    tags: i64,
}

/// `?image=`: one configured image.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ImageQuery {
    /// A configured image, `registry/path` without tag or digest.
    #[param(
        pattern = r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?){0,6}:(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])|[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?){1,6}|localhost)/[a-z0-9]{1,24}(?:(?:[._]|__|-{1,3})[a-z0-9]{1,24}){0,3}(?:/[a-z0-9]{1,24}(?:(?:[._]|__|-{1,3})[a-z0-9]{1,24}){0,3}){0,5}$",
        max_length = 255
    )]
    image: String,
}

/// `{digest}` in a path.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct DigestPath {
    /// `sha256:<64 hex>` or `sha512:<128 hex>`.
    #[param(pattern = r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")]
    digest: String,
}

/// `{tag}` in a path.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct TagPath {
    /// A tag name as registries accept it.
    #[param(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    tag: String,
}

/// `GET /v1/tags` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TagsQuery {
    /// A configured image, `registry/path` without tag or digest.
    #[param(
        pattern = r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?){0,6}:(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])|[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?){1,6}|localhost)/[a-z0-9]{1,24}(?:(?:[._]|__|-{1,3})[a-z0-9]{1,24}){0,3}(?:/[a-z0-9]{1,24}(?:(?:[._]|__|-{1,3})[a-z0-9]{1,24}){0,3}){0,5}$",
        max_length = 255
    )]
    image: String,
    /// Items per page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The cursor the previous page returned in `next` (the last tag).
    #[param(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    next: Option<String>,
}

/// `GET /v1/tag-events` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TagEventsQuery {
    /// A configured image, `registry/path` without tag or digest.
    #[param(
        pattern = r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?){0,6}:(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])|[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?){1,6}|localhost)/[a-z0-9]{1,24}(?:(?:[._]|__|-{1,3})[a-z0-9]{1,24}){0,3}(?:/[a-z0-9]{1,24}(?:(?:[._]|__|-{1,3})[a-z0-9]{1,24}){0,3}){0,5}$",
        max_length = 255
    )]
    image: String,
    /// Only the moves of this tag.
    #[param(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    tag: Option<String>,
    /// Items per page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The cursor the previous page returned in `next`.
    #[param(pattern = r"^[0-9]{1,18}$")]
    next: Option<String>,
}

/// The body of `PUT /v1/tags/{tag}`. The handler reads it as JSON and names the field it
/// refuses; this is the shape it accepts.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code, reason = "the schema of a body the handler reads as JSON")]
pub(crate) struct ForceRequest {
    /// A digest the image holds.
    #[schema(pattern = r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")]
    digest: String,
    /// Why, for the ledger: at least one letter or digit.
    #[schema(pattern = "[A-Za-z0-9]")]
    reason: String,
}

/// The queued force.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ForceAnswer {
    /// The job that writes the tag.
    job: Option<i64>,
    image: String,
    tag: String,
    digest: String,
}

/// The `image` query parameter, which must name a configured image.
fn configured_image(state: &AppState, text: &str) -> Result<String, ApiError> {
    let image: ImageRef = text
        .parse()
        .map_err(|e: hoist_domain::ImageRefError| ApiError::BadRequest(format!("image: {e}")))?;
    if image.tag().is_some() || image.digest().is_some() {
        return Err(ApiError::BadRequest(format!(
            "image: name {text:?} without a tag or digest"
        )));
    }
    let name = image.name();
    state
        .config()
        .repositories
        .iter()
        .find(|r| r.image.name().eq_ignore_ascii_case(&name))
        .map(|r| r.image.name())
        .ok_or_else(|| ApiError::NotFound(format!("image {name} is not configured")))
}

/// Configured images with their tag counts.
#[utoipa::path(
    get,
    path = "/v1/images",
    responses(
        (status = 200, description = "Every configured image", body = Listing<ImageSummary>),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 408, description = "The request took too long", body = ErrorBody),
        (status = 503, description = "Database busy", body = ErrorBody),
    ),
    security(("apiToken" = [])),
)]
pub(crate) async fn list_images(
    State(state): State<AppState>,
    operator: Operator,
) -> Result<Json<Listing<ImageSummary>>, ApiError> {
    tracing::debug!(operator = %operator.name, "listing images");
    let counts: HashMap<String, i64> = state.store().tag_counts().await?.into_iter().collect();
    let items: Vec<ImageSummary> = state
        .config()
        .repositories
        .iter()
        .map(|r| ImageSummary {
            image: r.image.name(),
            github: r.github.to_string(),
            platforms: r.platforms.iter().map(ToString::to_string).collect(),
            tags: counts.get(&r.image.name()).copied().unwrap_or(0),
        })
        .collect();
    Ok(Json(Listing { items, next: None }))
}

/// Where each tag of an image points now.
#[utoipa::path(
    get,
    path = "/v1/tags",
    params(TagsQuery),
    responses(
        (status = 200, description = "A page of tags, by name", body = Listing<Tag>),
        ReadErrors,
    ),
    security(("apiToken" = [])),
)]
pub(crate) async fn list_tags(
    State(state): State<AppState>,
    operator: Operator,
    ApiQuery(params): ApiQuery<TagsQuery>,
) -> Result<Response, ApiError> {
    let image = configured_image(&state, &params.image)?;
    tracing::debug!(operator = %operator.name, %image, "listing tags");
    let page = Page::parse(params.limit, params.next.as_deref())?;
    let after = page.after.clone().unwrap_or_default();
    let rows = state
        .store()
        .list_tags_json(&image, &after, page.limit)
        .await?;
    Ok(json_listing(rows, &page))
}

/// The append-only ledger of tag moves of an image, optionally one tag.
#[utoipa::path(
    get,
    path = "/v1/tag-events",
    params(TagEventsQuery),
    responses(
        (status = 200, description = "A page of tag moves, oldest first", body = Listing<TagEventRow>),
        ReadErrors,
    ),
    security(("apiToken" = [])),
)]
pub(crate) async fn list_tag_events(
    State(state): State<AppState>,
    operator: Operator,
    ApiQuery(params): ApiQuery<TagEventsQuery>,
) -> Result<Response, ApiError> {
    let image = configured_image(&state, &params.image)?;
    tracing::debug!(operator = %operator.name, %image, "listing tag events");
    let page = Page::parse(params.limit, params.next.as_deref())?;
    let tag = params.tag.as_deref();
    let rows = state
        .store()
        .list_tag_events_json(&image, tag, page.after_id()?, page.limit)
        .await?;
    Ok(json_listing(rows, &page))
}

/// A [`Listing`] whose items SQLite already rendered: the same shape, without decoding
/// and encoding every row again.
fn json_listing(rows: JsonPage, page: &Page) -> Response {
    let next = match rows.last {
        Some(last) if rows.count >= page.limit => serde_json::Value::String(last).to_string(),
        _ => "null".to_owned(),
    };
    let body = format!("{{\"items\":{},\"next\":{next}}}", rows.items);
    ([(CONTENT_TYPE, "application/json")], body).into_response()
}

/// The tags of an image that point at a digest.
#[utoipa::path(
    get,
    path = "/v1/digests/{digest}",
    params(DigestPath, ImageQuery),
    responses(
        (status = 200, description = "The tags at the digest", body = Listing<Tag>),
        ReadErrors,
    ),
    security(("apiToken" = [])),
)]
pub(crate) async fn tags_at_digest(
    State(state): State<AppState>,
    operator: Operator,
    Path(DigestPath { digest }): Path<DigestPath>,
    ApiQuery(params): ApiQuery<ImageQuery>,
) -> Result<Json<Listing<Tag>>, ApiError> {
    let image = configured_image(&state, &params.image)?;
    let digest: Digest = digest
        .parse()
        .map_err(|e: hoist_domain::DigestError| ApiError::BadRequest(e.to_string()))?;
    tracing::debug!(operator = %operator.name, %image, %digest, "tags at digest");
    let rows = state
        .store()
        .tags_at_digest(&image, digest.as_str())
        .await?;
    Ok(Json(Listing {
        items: rows,
        next: None,
    }))
}

/// `PUT /v1/tags/{tag}?image=` with `{"digest": "...", "reason": "..."}`: an admin re-points
/// a tag, immutable ones included. The registry write happens in a job (this crate never
/// talks to registries); the ledger records it as `force`.
/// Re-points a tag, immutable ones included, at a digest the image holds (admin token);
/// recorded as `force`.
#[utoipa::path(
    put,
    path = "/v1/tags/{tag}",
    params(TagPath, ImageQuery),
    request_body(content = ForceRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued: a worker writes the tag", body = ForceAnswer),
        (status = 400, description = "A parameter or the JSON is malformed", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "The image is not configured", body = ErrorBody),
        (status = 408, description = "The request took too long", body = ErrorBody),
        (status = 413, description = "Body over 25 MiB", body = ErrorBody),
        (status = 422, description = "A field is invalid", body = ErrorBody),
        (status = 503, description = "Database busy", body = ErrorBody),
    ),
    security(("apiToken" = [])),
)]
pub(crate) async fn force_tag(
    State(state): State<AppState>,
    operator: Operator,
    Path(TagPath { tag }): Path<TagPath>,
    ApiQuery(params): ApiQuery<ImageQuery>,
    body: axum::body::Bytes,
) -> Result<(axum::http::StatusCode, Json<ForceAnswer>), ApiError> {
    operator.require_admin("forcing a tag")?;
    let image = configured_image(&state, &params.image)?;
    let tag: hoist_domain::tags::TagName =
        tag.parse().map_err(|e: hoist_domain::tags::TagNameError| {
            ApiError::Unprocessable(format!("tag: {e}"))
        })?;
    let request: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    let digest: Digest = request["digest"]
        .as_str()
        .ok_or_else(|| ApiError::Unprocessable("digest: is required".to_owned()))?
        .parse()
        .map_err(|e: hoist_domain::DigestError| ApiError::Unprocessable(format!("digest: {e}")))?;
    let reason = request["reason"]
        .as_str()
        .filter(|r| r.chars().any(|c| c.is_ascii_alphanumeric()))
        .ok_or_else(|| ApiError::Unprocessable("reason: say why the tag is forced".to_owned()))?;
    let job = hoist_domain::job::Job::ForceTag {
        image: image.clone(),
        tag: tag.as_str().to_owned(),
        digest: digest.to_string(),
        operator: operator.name.clone(),
        reason: reason.to_owned(),
    };
    let id = state.store().enqueue_job(&job).await?;
    tracing::warn!(operator = %operator.name, %image, tag = tag.as_str(), %digest, "tag force queued");
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(ForceAnswer {
            job: id,
            tag: tag.as_str().to_owned(),
            digest: digest.to_string(),
            image,
        }),
    ))
}
