//! The operator REST view of the tag ledger: images, current tags, the append-only history
//! of tag moves, and which tags point at a digest.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use hoist_domain::{Digest, ImageRef};
use hoist_store::{JsonPage, TagRow};
use serde::Serialize;

use crate::auth::Operator;
use crate::builds::page;
use crate::listing::{Listing, Page};
use crate::{ApiError, AppState};

#[derive(Debug, Serialize)]
pub(crate) struct ImageSummary {
    image: String,
    github: String,
    platforms: Vec<String>,
    tags: i64,
}

/// The `image` query parameter, which must name a configured image.
fn configured_image(
    state: &AppState,
    params: &HashMap<String, String>,
) -> Result<String, ApiError> {
    let text = params
        .get("image")
        .ok_or_else(|| ApiError::BadRequest("the image query parameter is required".to_owned()))?;
    let image: ImageRef = text
        .parse()
        .map_err(|e: hoist_domain::ImageRefError| ApiError::BadRequest(format!("image: {e}")))?;
    let name = image.name();
    state
        .config()
        .repositories
        .iter()
        .find(|r| r.image.name().eq_ignore_ascii_case(&name))
        .map(|r| r.image.name())
        .ok_or_else(|| ApiError::NotFound(format!("image {name} is not configured")))
}

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

pub(crate) async fn list_tags(
    State(state): State<AppState>,
    operator: Operator,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let image = configured_image(&state, &params)?;
    tracing::debug!(operator = %operator.name, %image, "listing tags");
    let page = page(&params)?;
    let after = page.after.clone().unwrap_or_default();
    let rows = state
        .store()
        .list_tags_json(&image, &after, page.limit)
        .await?;
    Ok(json_listing(rows, &page))
}

pub(crate) async fn list_tag_events(
    State(state): State<AppState>,
    operator: Operator,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let image = configured_image(&state, &params)?;
    tracing::debug!(operator = %operator.name, %image, "listing tag events");
    let page = page(&params)?;
    let tag = params.get("tag").map(String::as_str);
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

pub(crate) async fn tags_at_digest(
    State(state): State<AppState>,
    operator: Operator,
    Path(digest): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Listing<TagRow>>, ApiError> {
    let image = configured_image(&state, &params)?;
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
pub(crate) async fn force_tag(
    State(state): State<AppState>,
    operator: Operator,
    Path(tag): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Result<(axum::http::StatusCode, Json<serde_json::Value>), ApiError> {
    operator.require_admin("forcing a tag")?;
    let image = configured_image(&state, &params)?;
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
        .filter(|r| !r.trim().is_empty())
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
        Json(
            serde_json::json!({ "job": id, "image": image, "tag": tag.as_str(), "digest": digest.to_string() }),
        ),
    ))
}
