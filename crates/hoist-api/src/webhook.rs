//! `POST /webhooks/github`. The `GitHubDelivery` extractor verifies the signature over the
//! raw body before anything is parsed, then checks headers and content type; the handler
//! decides what the event means for the config and records it in one transaction.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hoist_domain::config::Config;
use hoist_domain::github::{WebhookEvent, find_signer};
use hoist_store::{Delivery, WebhookEffect};
use serde_json::json;

use crate::error::ErrorBody;
use crate::{ApiError, AppState};

/// A delivery whose signature matched, with its parsed event.
#[derive(Debug)]
pub struct GitHubDelivery {
    pub delivery_id: String,
    /// The digest of the verified body: the same body under another id is a replay.
    pub body_sha256: String,
    pub event_name: String,
    pub event: WebhookEvent,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::BadRequest(format!("the {name} header is missing")))
}

/// The JSON payload of a body sent as `application/json` or as a form with `payload=`.
fn json_payload(headers: &HeaderMap, body: &Bytes) -> Result<Vec<u8>, ApiError> {
    let content_type = crate::media_type(headers).unwrap_or_default();
    match content_type.as_str() {
        "application/json" => Ok(body.to_vec()),
        "application/x-www-form-urlencoded" => form_urlencoded::parse(body)
            .find(|(key, _)| key == "payload")
            .map(|(_, value)| value.into_owned().into_bytes())
            .ok_or_else(|| ApiError::BadRequest("the form body has no payload field".to_owned())),
        "" => Err(ApiError::UnsupportedMediaType(
            "Content-Type is missing: send application/json or application/x-www-form-urlencoded"
                .to_owned(),
        )),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {other} is not supported: send application/json or application/x-www-form-urlencoded"
        ))),
    }
}

impl FromRequest<AppState> for GitHubDelivery {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        // Bodies are buffered whole before the signature can be checked; bound how many.
        // A sender that trickles its body keeps its place only so long.
        let permit = state.webhook_body_permit().ok_or(ApiError::Busy)?;
        let (parts, body) = request.into_parts();
        let read = Bytes::from_request(Request::from_parts(parts.clone(), body), state);
        let body = tokio::time::timeout(state.config().server.webhook_body_timeout, read)
            .await
            .map_err(|_| ApiError::SlowBody)?
            .map_err(|rejection| match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
                _ => ApiError::BadRequest("the request body could not be read".to_owned()),
            })?;
        let signature = parts
            .headers
            .get("x-hub-signature-256")
            .map(HeaderValue::as_bytes);
        let signer = find_signer(state.config(), signature, &body)
            .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
        drop(permit);

        let event_name = header(&parts.headers, "x-github-event")?.to_owned();
        let delivery_id = header(&parts.headers, "x-github-delivery")?.to_owned();
        if delivery_id.len() > 200 {
            return Err(ApiError::BadRequest(
                "the X-GitHub-Delivery header is too long".to_owned(),
            ));
        }
        let payload = json_payload(&parts.headers, &body)?;
        let event = WebhookEvent::parse(&event_name, &payload)
            .map_err(|e| ApiError::BadRequest(format!("{event_name} payload: {e}")))?;
        // A repository's own secret signs for it alone; the global one for the others.
        let named = repository_of(&event).and_then(|r| r.parse().ok());
        signer
            .check_covers(state.config(), named.as_ref())
            .map_err(ApiError::Unauthorized)?;
        Ok(GitHubDelivery {
            body_sha256: hoist_domain::github::body_digest(&body),
            delivery_id,
            event_name,
            event,
        })
    }
}

/// What a delivery means under this config, or `None` for event types hoist ignores.
fn decide<'a>(config: &'a Config, event: &'a WebhookEvent) -> Option<WebhookEffect<'a>> {
    const UNCONFIGURED: &str = "the repository is not configured in hoist";
    Some(match event {
        WebhookEvent::Ping(_) => WebhookEffect::Ping,
        WebhookEvent::Release(release) => match config.repository(&release.repository) {
            Some(repo) => WebhookEffect::Release {
                resolve_via_api: config.github.api.is_some(),
                repository: &repo.github,
                target: hoist_store::Target::of(repo),
                event: release,
            },
            None => WebhookEffect::Ignore(UNCONFIGURED),
        },
        WebhookEvent::Push(push) => match (config.repository(&push.repository), push.tag()) {
            (None, _) => WebhookEffect::Ignore(UNCONFIGURED),
            (Some(repo), Some(tag)) => WebhookEffect::TagPush {
                repository: &repo.github,
                target: hoist_store::Target::of(repo),
                tag,
                event: push,
            },
            (Some(repo), None) => match push.branch() {
                Some(branch) => WebhookEffect::BranchPush {
                    repository: &repo.github,
                    target: hoist_store::Target::of(repo),
                    branch,
                    event: push,
                },
                None => WebhookEffect::Ignore("only pushes of tags and branches are recorded"),
            },
        },
        WebhookEvent::Other(_) => return None,
    })
}

fn repository_of(event: &WebhookEvent) -> Option<&str> {
    match event {
        WebhookEvent::Ping(ping) => ping.repository.as_ref().map(|r| r.as_str()),
        WebhookEvent::Release(release) => Some(release.repository.as_str()),
        WebhookEvent::Push(push) => Some(push.repository.as_str()),
        WebhookEvent::Other(_) => None,
    }
}

/// A GitHub webhook delivery (release, push, ping): verified, deduplicated on
/// `X-GitHub-Delivery`, recorded.
#[utoipa::path(
    post,
    path = "/webhooks/github",
    params(
        ("X-Hub-Signature-256" = String, Header, description = "sha256=<HMAC of the body with the webhook secret>"),
        ("X-GitHub-Event" = String, Header, description = "release, push, ping, ..."),
        ("X-GitHub-Delivery" = String, Header, description = "The delivery's id, at most 200 characters"),
    ),
    request_body(content = Object, description = "GitHub's payload", content_type = "application/json"),
    responses(
        (status = 200, description = "A ping: pong", body = hoist_store::WebhookAnswer),
        (status = 202, description = "Recorded, a duplicate, or ignored", body = hoist_store::WebhookAnswer),
        (status = 400, description = "A header or the payload is malformed", body = ErrorBody),
        (status = 401, description = "The signature does not match a secret for the repository", body = ErrorBody),
        (status = 408, description = "The request, or its body, took too long", body = ErrorBody),
        (status = 413, description = "Body over 25 MiB", body = ErrorBody),
        (status = 415, description = "Neither JSON nor a form", body = ErrorBody),
        (status = 503, description = "Too many bodies being read (Retry-After), or the database is busy", body = ErrorBody),
    ),
)]
pub(crate) async fn handle_github_webhook(
    State(state): State<AppState>,
    delivery: GitHubDelivery,
) -> Result<Response, ApiError> {
    let Some(effect) = decide(state.config(), &delivery.event) else {
        let body = json!({
            "delivery": delivery.delivery_id,
            "outcome": "ignored",
            "reason": format!("{} events are not handled", delivery.event_name),
        });
        return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
    };
    let action = match &delivery.event {
        WebhookEvent::Release(release) => Some(release.action.as_str()),
        _ => None,
    };
    let record = Delivery {
        delivery_id: &delivery.delivery_id,
        event: &delivery.event_name,
        action,
        repository: repository_of(&delivery.event),
        body_sha256: &delivery.body_sha256,
    };
    let recorded = state.store().record_webhook(&record, effect).await?;
    tracing::info!(
        delivery = %delivery.delivery_id,
        event = %delivery.event_name,
        outcome = %recorded.answer.outcome,
        duplicate = recorded.duplicate,
        "webhook recorded"
    );
    let status = StatusCode::from_u16(recorded.status).unwrap_or(StatusCode::ACCEPTED);
    let mut response = (status, Json(recorded.answer)).into_response();
    if recorded.duplicate {
        response
            .headers_mut()
            .insert("x-hoist-duplicate", HeaderValue::from_static("true"));
    }
    Ok(response)
}
