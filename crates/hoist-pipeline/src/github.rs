//! Asking GitHub's REST API what no webhook told: which commit a release's tag names, for
//! releases nothing else resolved (`GET /repos/{owner}/{repo}/commits/{ref}`), and whether a
//! commit is on a branch (`GET /repos/{owner}/{repo}/compare/{branch}...{sha}`).

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

/// GETs `path` of the API as JSON; `what` names the question in errors.
async fn get_json(
    http: &reqwest::Client,
    api: &GitHubApi,
    path: &str,
    what: &str,
) -> Result<serde_json::Value, PipelineError> {
    let url = format!("{}{path}", api.url);
    let response = http
        .get(&url)
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
        .bearer_auth(api.token.expose_secret())
        .send()
        .await
        .map_err(|e| github(format!("asking GitHub for {what}: {e}"), true))?;
    let status = response.status();
    if !status.is_success() {
        // Rate limits and server trouble pass; a ref GitHub does not know, or a token it
        // refuses, will not.
        let retryable = status.is_server_error()
            || status.as_u16() == 429
            || status.as_u16() == 403
                && response
                    .headers()
                    .get("x-ratelimit-remaining")
                    .is_some_and(|v| v == "0");
        return Err(github(
            format!("GitHub answered {status} for {what}"),
            retryable,
        ));
    }
    response
        .json()
        .await
        .map_err(|e| github(format!("GitHub's answer for {what} is not JSON: {e}"), true))
}

/// The commit `tag` of `repository` points at.
pub(crate) async fn commit_of_tag(
    http: &reqwest::Client,
    api: &GitHubApi,
    repository: &str,
    tag: &str,
) -> Result<CommitSha, PipelineError> {
    let what = format!("the commit of {repository}@{tag}");
    let body = get_json(
        http,
        api,
        &format!("/repos/{repository}/commits/{tag}"),
        &what,
    )
    .await?;
    body["sha"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .map_err(|e| {
            github(
                format!("GitHub's answer for {what} has no usable sha: {e}"),
                false,
            )
        })
}

/// Whether `commit` is on `branch`: the branch's head is the commit or descends from it
/// (GitHub's compare of the branch with the commit says `identical` or `behind`).
pub(crate) async fn commit_on_branch(
    http: &reqwest::Client,
    api: &GitHubApi,
    repository: &str,
    branch: &str,
    commit: &str,
) -> Result<bool, PipelineError> {
    let what = format!("whether {commit} is on {repository}'s {branch}");
    let body = get_json(
        http,
        api,
        &format!("/repos/{repository}/compare/{branch}...{commit}"),
        &what,
    )
    .await?;
    match body["status"].as_str() {
        Some("identical" | "behind") => Ok(true),
        Some("ahead" | "diverged") => Ok(false),
        _ => Err(github(
            format!("GitHub's answer for {what} has no usable status"),
            false,
        )),
    }
}
