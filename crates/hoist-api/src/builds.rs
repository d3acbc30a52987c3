//! `POST /v1/builds` (CI reports a pushed image) and the read side, `GET /v1/builds` and
//! `GET /v1/releases`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hoist_domain::RepoName;
use hoist_domain::build::{self, BuildReportError};
use hoist_domain::ci::{CiIdentity, Provenance};
use hoist_store::{BuildOutcome, BuildRow, ReleaseRow};
use serde::{Deserialize, Serialize};

use crate::auth::{CiCaller, Operator};
use crate::error::{ErrorBody, ReadErrors};
use crate::listing::{ApiQuery, Listing, Page};
use crate::{ApiError, AppState};

/// A build report, as `POST /v1/builds` takes it. The handler reads the body as JSON and
/// `hoist_domain::build::validate` judges each field, with its own messages; this is the
/// shape it accepts.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code, reason = "the schema of a body read by hoist_domain::build")]
pub(crate) struct BuildRequest {
    /// GitHub `owner/name`.
    repository: String,
    /// The 40-hex commit built.
    commit: String,
    /// `refs/tags/...` or `refs/heads/...`; with an OIDC token, the token's when left out.
    #[schema(rename = "ref")]
    git_ref: Option<String>,
    /// `os/arch[/variant]`; left out when `image` is an index.
    platform: Option<String>,
    /// `registry/path@sha256:...`, in one of the repository's `sources`.
    image: String,
}

/// The answer to a build report.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct BuildAnswer {
    /// `recorded`, `unchanged` (the same digest again) or `replaced` (a new digest).
    status: &'static str,
    build: BuildRow,
    /// The digest a `replaced` build had before.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_digest: Option<String>,
}

/// `GET /v1/builds` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct BuildsQuery {
    /// GitHub owner/name of a configured repository.
    #[param(pattern = r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$")]
    repository: String,
    /// Only the builds of this commit (40 hex).
    #[param(pattern = r"^[0-9a-fA-F]{40}$")]
    commit: Option<String>,
    /// Items per page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The cursor the previous page returned in `next`.
    #[param(pattern = r"^[0-9]{1,18}$")]
    next: Option<String>,
}

/// `GET /v1/releases` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReleasesQuery {
    /// GitHub owner/name of a configured repository.
    #[param(pattern = r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$")]
    repository: String,
    /// Items per page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The cursor the previous page returned in `next`.
    #[param(pattern = r"^[0-9]{1,18}$")]
    next: Option<String>,
}

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

/// CI reports an image it pushed, by digest, for one platform (or an index).
#[utoipa::path(
    post,
    path = "/v1/builds",
    request_body(content = BuildRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Recorded, unchanged or replaced", body = BuildAnswer),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The token may not report this (repository, run, source)", body = ErrorBody),
        (status = 404, description = "The repository is not configured", body = ErrorBody),
        (status = 408, description = "The request took too long", body = ErrorBody),
        (status = 409, description = "The commit is already published with another digest", body = ErrorBody),
        (status = 413, description = "Body over 25 MiB", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "A field is invalid", body = ErrorBody),
        (status = 503, description = "Database busy, or the OIDC issuer's keys unavailable", body = ErrorBody),
    ),
    security(("ciToken" = [])),
)]
pub(crate) async fn handle_build_report(
    State(state): State<AppState>,
    caller: CiCaller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<BuildAnswer>), ApiError> {
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
    Ok((
        StatusCode::ACCEPTED,
        Json(BuildAnswer {
            status,
            build,
            previous_digest: previous.map(|d| d.to_string()),
        }),
    ))
}

fn configured_repository(state: &AppState, text: &str) -> Result<RepoName, ApiError> {
    let name: RepoName = text.parse().map_err(|e: hoist_domain::RepoNameError| {
        ApiError::BadRequest(format!("repository: {e}"))
    })?;
    state
        .config()
        .repository(&name)
        .map(|r| r.github.clone())
        .ok_or_else(|| ApiError::NotFound(format!("repository {name} is not configured")))
}

/// Builds recorded for a repository, optionally one commit.
#[utoipa::path(
    get,
    path = "/v1/builds",
    params(BuildsQuery),
    responses(
        (status = 200, description = "A page of builds", body = Listing<BuildRow>),
        ReadErrors,
    ),
    security(("apiToken" = [])),
)]
pub(crate) async fn list_builds(
    State(state): State<AppState>,
    operator: Operator,
    ApiQuery(params): ApiQuery<BuildsQuery>,
) -> Result<Json<Listing<BuildRow>>, ApiError> {
    let repository = configured_repository(&state, &params.repository)?;
    tracing::debug!(operator = %operator.name, role = ?operator.role, %repository, "listing builds");
    let commit = match &params.commit {
        Some(text) => Some(
            text.parse::<hoist_domain::CommitSha>()
                .map_err(|e| ApiError::BadRequest(format!("commit: {e}")))?,
        ),
        None => None,
    };
    let page = Page::parse(params.limit, params.next.as_deref())?;
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

/// Releases recorded for a repository, with their resolved commit and its source.
#[utoipa::path(
    get,
    path = "/v1/releases",
    params(ReleasesQuery),
    responses(
        (status = 200, description = "A page of releases", body = Listing<ReleaseRow>),
        ReadErrors,
    ),
    security(("apiToken" = [])),
)]
pub(crate) async fn list_releases(
    State(state): State<AppState>,
    operator: Operator,
    ApiQuery(params): ApiQuery<ReleasesQuery>,
) -> Result<Json<Listing<ReleaseRow>>, ApiError> {
    let repository = configured_repository(&state, &params.repository)?;
    tracing::debug!(operator = %operator.name, role = ?operator.role, %repository, "listing releases");
    let page = Page::parse(params.limit, params.next.as_deref())?;
    let rows = state
        .store()
        .list_releases(repository.as_str(), page.after_id()?, page.limit)
        .await?;
    Ok(Json(Listing::new(rows, &page, |r| r.id.to_string())))
}
