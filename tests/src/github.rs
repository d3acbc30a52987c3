//! GitHub webhook deliveries as GitHub sends them: a captured public payload from
//! `tests/fixtures/github/`, signed with the test's secret.

use std::path::Path;

/// The bytes of `tests/fixtures/github/{name}.json`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/github")
        .join(format!("{name}.json"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// POSTs `body` to `url` the way GitHub delivers `event`: JSON, with the delivery id and
/// the `X-Hub-Signature-256` of `body` under `secret`.
pub fn deliver_webhook(
    client: &reqwest::blocking::Client,
    url: &str,
    secret: &str,
    event: &str,
    delivery: &str,
    body: &[u8],
) -> reqwest::Result<reqwest::blocking::Response> {
    client
        .post(url)
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header(
            "x-hub-signature-256",
            hoist_domain::github::sign(secret, body),
        )
        .body(body.to_vec())
        .send()
}

/// A stand-in for the GitHub REST endpoints hoist calls,
/// `GET /repos/{owner}/{repo}/commits/{ref}` and `GET /repos/{owner}/{repo}/compare/{base}...{head}`:
/// it answers from the tags and branches it was given, wants
/// `Authorization: Bearer <token>` like GitHub, and counts what it was asked. No package
/// provides GitHub's API, so this is the test's own, kept to what GitHub documents.
#[derive(Debug)]
pub struct FakeGitHub {
    port: u16,
    state: std::sync::Arc<std::sync::Mutex<FakeState>>,
}

#[derive(Debug, Default)]
struct FakeState {
    commits: std::collections::HashMap<String, String>,
    /// Commits on each branch, oldest first.
    branches: std::collections::HashMap<String, Vec<String>>,
    requests: Vec<String>,
}

/// `%XX` escapes decoded, as GitHub decodes a path segment.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl FakeGitHub {
    /// Serves on a free loopback port; `token` is the only one it accepts.
    pub fn start(token: &str) -> FakeGitHub {
        let state = std::sync::Arc::new(std::sync::Mutex::new(FakeState::default()));
        let (shared, expected) = (state.clone(), format!("bearer {token}"));
        let port = crate::serve_json("the fake GitHub", move |path, authorization| {
            let authorized = authorization.is_some_and(|a| a.eq_ignore_ascii_case(&expected));
            let path = path.to_owned();
            let mut state = shared.lock().expect("fake GitHub state");
            state.requests.push(path.clone());
            // `commits/{ref}` with the ref `tags/NAME`, one encoded segment.
            let tag = path
                .rsplit_once("/commits/")
                .map(|(_, reference)| percent_decode(reference))
                .and_then(|reference| reference.strip_prefix("tags/").map(str::to_owned));
            let compare = path
                .rsplit_once("/compare/")
                .and_then(|(_, c)| c.split_once("..."))
                .map(|(base, head)| (percent_decode(base), percent_decode(head)));
            match (authorized, tag.and_then(|t| state.commits.get(&t).cloned())) {
                (false, _) => (
                    "401 Unauthorized",
                    r#"{"message":"Bad credentials"}"#.to_owned(),
                ),
                // Compare the branch (base) with a commit (head): `behind` when the
                // branch descends from it, `identical` at its head, else `diverged`.
                (true, _) if compare.is_some() => {
                    let (base, head) = compare.unwrap_or_default();
                    let on = state.branches.get(&base).cloned().unwrap_or_default();
                    let known = state.branches.values().any(|b| b.contains(&head));
                    match on.iter().position(|c| *c == head) {
                        Some(at) if at + 1 == on.len() => (
                            "200 OK",
                            r#"{"status":"identical","ahead_by":0}"#.to_owned(),
                        ),
                        Some(_) => ("200 OK", r#"{"status":"behind","ahead_by":0}"#.to_owned()),
                        None if known => {
                            ("200 OK", r#"{"status":"diverged","ahead_by":1}"#.to_owned())
                        }
                        // GitHub's answer for a commit it does not have.
                        None => ("404 Not Found", r#"{"message":"Not Found"}"#.to_owned()),
                    }
                }
                (true, Some(sha)) => (
                    "200 OK",
                    format!(r#"{{"sha":"{sha}","commit":{{"message":"release"}}}}"#),
                ),
                (true, None) => (
                    "422 Unprocessable Entity",
                    r#"{"message":"No commit found for SHA"}"#.to_owned(),
                ),
            }
        });
        FakeGitHub { port, state }
    }

    /// The API base URL, as `[github] api_url` takes it.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Makes `tag` resolve to `sha`.
    pub fn add_tag(&self, tag: &str, sha: &str) {
        self.state
            .lock()
            .expect("fake GitHub state")
            .commits
            .insert(tag.to_owned(), sha.to_owned());
    }

    /// Puts `commits` (oldest first) on `branch`.
    pub fn add_branch_commits(&self, branch: &str, commits: &[&str]) {
        self.state
            .lock()
            .expect("fake GitHub state")
            .branches
            .entry(branch.to_owned())
            .or_default()
            .extend(commits.iter().map(|c| (*c).to_owned()));
    }

    /// The paths asked so far.
    pub fn requests(&self) -> Vec<String> {
        self.state
            .lock()
            .expect("fake GitHub state")
            .requests
            .clone()
    }
}
