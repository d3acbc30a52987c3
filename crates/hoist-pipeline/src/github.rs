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

/// The most of an API answer hoist reads.
const ANSWER_LIMIT: usize = 8 << 20;

/// `text` as one URL path segment: every byte but letters, digits and `-._~`
/// percent-encoded (as GitHub's own clients do), so a tag like `v1#x` or `%2e%2e/` stays
/// one segment. `.` and `..`, which no git ref can be and URL parsers resolve as dot
/// segments even encoded, are refused.
fn segment(text: &str) -> Result<String, PipelineError> {
    if text.is_empty() || text == "." || text == ".." {
        return Err(github(format!("{text:?} is not a git ref name"), false));
    }
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    Ok(out)
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
        .map_err(|e| {
            github(
                format!("asking GitHub for {what}: {}", e.without_url()),
                true,
            )
        })?;
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
    let body = hoist_registry::read_capped(response, ANSWER_LIMIT)
        .await
        .map_err(|e| {
            github(
                format!("reading GitHub's answer for {what}: {}", e.without_url()),
                true,
            )
        })?
        .ok_or_else(|| {
            github(
                format!("GitHub's answer for {what} is larger than {ANSWER_LIMIT} bytes"),
                false,
            )
        })?;
    serde_json::from_slice(&body)
        .map_err(|e| github(format!("GitHub's answer for {what} is not JSON: {e}"), true))
}

/// The commit `tag` of `repository` points at (`commits/tags/{tag}`, so a branch of the
/// same name is never taken for it).
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
        &format!(
            "/repos/{repository}/commits/{}",
            segment(&format!("tags/{tag}"))?
        ),
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
        &format!(
            "/repos/{repository}/compare/{}...{}",
            segment(branch)?,
            segment(commit)?
        ),
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

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn ref_names_stay_one_path_segment() {
        assert_eq!(segment("v1.2.3").unwrap(), "v1.2.3");
        assert_eq!(segment("tags/v1#x").unwrap(), "tags%2Fv1%23x");
        assert_eq!(segment("%2e%2e/").unwrap(), "%252e%252e%2F");
        assert_eq!(segment("a?b c").unwrap(), "a%3Fb%20c");
        assert_eq!(segment("ü").unwrap(), "%C3%BC");
        for bad in ["", ".", ".."] {
            assert!(segment(bad).is_err(), "{bad:?}");
        }
    }
}
