//! `POST /v1/builds` (CI reports a pushed image) and the read side, `GET /v1/builds` and
//! `GET /v1/releases`.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use hoist_domain::RepoName;
use hoist_domain::build::{self, BuildReportError};
use hoist_domain::ci::{CiIdentity, Provenance};
use hoist_store::{BuildOutcome, BuildRow, ReleaseRow};
use serde_json::{Value, json};

use crate::auth::{CiCaller, Operator};
use crate::listing::{Listing, Page};
use crate::{ApiError, AppState};

impl From<BuildReportError> for ApiError {
    fn from(e: BuildReportError) -> Self {
        match e {
            BuildReportError::Json(_) => ApiError::BadRequest(e.to_string()),
            BuildReportError::Field { .. } => ApiError::Unprocessable(e.to_string()),
            BuildReportError::SourceNotAllowed { .. } => ApiError::SourceNotAllowed(e.to_string()),
        }
    }
}

fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = crate::media_type(headers);
    match content_type.as_deref() {
        None | Some("application/json") => Ok(()),
        Some(other) => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {other} is not supported: send application/json"
        ))),
    }
}

pub(crate) async fn handle_build_report(
    State(state): State<AppState>,
    caller: CiCaller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_json(&headers)?;
    let value = build::parse_json(&body)?;
    let repository = build::reported_repository(&value).map_err(ApiError::from)?;
    // Who may report for the repository is settled before the rest is judged.
    match &caller {
        CiCaller::Token(token) if !token.allows(&repository) => {
            return Err(ApiError::Forbidden(format!(
                "CI token {:?} may not report builds for {repository}",
                token.name
            )));
        }
        CiCaller::Actions(claims) if !claims.is_for(&repository) => {
            return Err(ApiError::Forbidden(format!(
                "the OIDC token is for repository {}, not {repository}",
                claims.repository
            )));
        }
        _ => {}
    }
    let report = build::validate(&value, state.config())?;
    let repo = state
        .config()
        .repository(&report.repository)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "repository {} is not configured",
                report.repository
            ))
        })?;
    let (report, provenance) = match &caller {
        CiCaller::Token(token) => (
            report,
            Provenance::Claim {
                token: token.name.clone(),
            },
        ),
        CiCaller::Actions(claims) => {
            let report = claims
                .bind(report, repo)
                .map_err(|e| ApiError::Forbidden(e.to_string()))?;
            (
                report,
                Provenance::Signed {
                    identity: CiIdentity::from(claims.as_ref()),
                },
            )
        }
    };
    let outcome = state
        .store()
        .record_build(&hoist_store::Target::of(repo), &report, &provenance)
        .await?;
    let (status, build, previous) = match outcome {
        BuildOutcome::Recorded(build) => ("recorded", build, None),
        BuildOutcome::Unchanged(build) => ("unchanged", build, None),
        BuildOutcome::Replaced {
            build,
            previous_digest,
        } => ("replaced", build, Some(previous_digest)),
        BuildOutcome::AlreadyPublished { existing } => {
            let kept = if provenance.is_signed() {
                " (the ref GitHub signed for this run is recorded)"
            } else {
                ""
            };
            return Err(ApiError::Conflict(format!(
                "{} at {} for {} was already published as {}; a new digest cannot replace it{kept}",
                existing.repository,
                existing.commit,
                existing
                    .platform
                    .as_deref()
                    .unwrap_or("all platforms of its index"),
                existing.digest
            )));
        }
    };
    tracing::info!(
        reported_by = %provenance.reported_by(),
        signed = provenance.is_signed(),
        build = build.id,
        status,
        "build reported"
    );
    let mut body = json!({ "status": status, "build": build });
    if let Some(previous) = previous {
        body["previous_digest"] = json!(previous);
    }
    Ok((StatusCode::ACCEPTED, Json(body)))
}

fn configured_repository(
    state: &AppState,
    params: &HashMap<String, String>,
) -> Result<RepoName, ApiError> {
    let text = params.get("repository").ok_or_else(|| {
        ApiError::BadRequest("the repository query parameter is required".to_owned())
    })?;
    let name: RepoName = text.parse().map_err(|e: hoist_domain::RepoNameError| {
        ApiError::BadRequest(format!("repository: {e}"))
    })?;
    state
        .config()
        .repository(&name)
        .map(|r| r.github.clone())
        .ok_or_else(|| ApiError::NotFound(format!("repository {name} is not configured")))
}

pub(crate) fn page(params: &HashMap<String, String>) -> Result<Page, ApiError> {
    Page::parse(
        params.get("limit").map(String::as_str),
        params.get("next").map(String::as_str),
    )
}

pub(crate) async fn list_builds(
    State(state): State<AppState>,
    operator: Operator,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Listing<BuildRow>>, ApiError> {
    let repository = configured_repository(&state, &params)?;
    tracing::debug!(operator = %operator.name, role = ?operator.role, %repository, "listing builds");
    let commit = match params.get("commit") {
        Some(text) => Some(
            text.parse::<hoist_domain::CommitSha>()
                .map_err(|e| ApiError::BadRequest(format!("commit: {e}")))?,
        ),
        None => None,
    };
    let page = page(&params)?;
    let rows = state
        .store()
        .list_builds(
            repository.as_str(),
            commit.as_ref().map(|c| c.as_str()),
            page.after_id()?,
            page.limit,
        )
        .await?;
    Ok(Json(Listing::new(rows, &page, |b| b.id.to_string())))
}

pub(crate) async fn list_releases(
    State(state): State<AppState>,
    operator: Operator,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Listing<ReleaseRow>>, ApiError> {
    let repository = configured_repository(&state, &params)?;
    tracing::debug!(operator = %operator.name, role = ?operator.role, %repository, "listing releases");
    let page = page(&params)?;
    let rows = state
        .store()
        .list_releases(repository.as_str(), page.after_id()?, page.limit)
        .await?;
    Ok(Json(Listing::new(rows, &page, |r| r.id.to_string())))
}
