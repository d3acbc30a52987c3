//! Asking GitHub's REST API which commit a release's tag names, for releases nothing else
//! resolved (`GET /repos/{owner}/{repo}/commits/{ref}`).

use std::time::Duration;

use hoist_domain::CommitSha;
use hoist_domain::config::GitHubApi;
use secrecy::ExposeSecret;

use crate::PipelineError;

/// One client for the process; GitHub wants a User-Agent on every request.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("hoist/", env!("CARGO_PKG_VERSION")))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

fn github(message: String, retryable: bool) -> PipelineError {
    PipelineError::GitHub { message, retryable }
}

/// The commit `tag` of `repository` points at.
pub(crate) async fn commit_of_tag(
    http: &reqwest::Client,
    api: &GitHubApi,
    repository: &str,
    tag: &str,
) -> Result<CommitSha, PipelineError> {
    let url = format!("{}/repos/{repository}/commits/{tag}", api.url);
    let response = http
        .get(&url)
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
        .bearer_auth(api.token.expose_secret())
        .send()
        .await
        .map_err(|e| {
            github(
                format!("asking GitHub for the commit of {repository}@{tag}: {e}"),
                true,
            )
        })?;
    let status = response.status();
    if !status.is_success() {
        // Rate limits and server trouble pass; a tag GitHub does not know, or a token it
        // refuses, will not.
        let retryable = status.is_server_error()
            || status.as_u16() == 429
            || status.as_u16() == 403
                && response
                    .headers()
                    .get("x-ratelimit-remaining")
                    .is_some_and(|v| v == "0");
        return Err(github(
            format!("GitHub answered {status} for the commit of {repository}@{tag}"),
            retryable,
        ));
    }
    let body: serde_json::Value = response.json().await.map_err(|e| {
        github(
            format!("GitHub's answer for {repository}@{tag} is not JSON: {e}"),
            true,
        )
    })?;
    body["sha"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .map_err(|e| {
            github(
                format!("GitHub's answer for {repository}@{tag} has no usable sha: {e}"),
                false,
            )
        })
}
