//! The parts of `ping`, `release` and `push` payloads hoist acts on, and the release
//! lifecycle rules.

use serde::Deserialize;

use crate::state::{ReleaseAction, ReleaseState};
use crate::{CommitSha, RepoName};

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("malformed JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{field}: {message}")]
    Field {
        field: &'static str,
        message: String,
    },
}

/// A verified delivery, by `X-GitHub-Event`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEvent {
    Ping(PingEvent),
    Release(ReleaseEvent),
    Push(PushEvent),
    /// An event type hoist does not handle; answered 202 and not stored.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingEvent {
    /// Absent for organization hooks.
    pub repository: Option<RepoName>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseEvent {
    pub action: ReleaseAction,
    pub repository: RepoName,
    pub release_id: i64,
    pub tag_name: String,
    pub target_commitish: String,
    pub draft: bool,
    pub prerelease: bool,
    /// When GitHub last changed the release, as far as the payload says: the latest of its
    /// `updated_at`, `published_at` and `created_at`, normalized to RFC 3339 UTC.
    pub changed_at: Option<String>,
}

impl ReleaseEvent {
    /// The state after this delivery, given the state before it.
    pub fn state_after(&self, before: Option<ReleaseState>) -> ReleaseState {
        ReleaseState::next(before, &self.action, self.draft)
    }

    /// `target_commitish` when it names a commit rather than a branch.
    pub fn target_commit(&self) -> Option<CommitSha> {
        self.target_commitish.parse().ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEvent {
    pub repository: RepoName,
    pub git_ref: String,
    pub deleted: bool,
    /// The pushed commit. For an annotated tag this is still the commit (`after` is the
    /// tag object); null when the ref was deleted.
    pub head_commit: Option<CommitSha>,
    /// The commits the push brought, oldest first, as GitHub lists them (at most 2048).
    pub commits: Vec<CommitSha>,
    /// When GitHub took the push (`repository.pushed_at`, unix seconds).
    pub pushed_at: Option<i64>,
}

impl PushEvent {
    /// The tag name, for a push of `refs/tags/*`.
    pub fn tag(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/tags/")
    }

    /// The branch name, for a push of `refs/heads/*`.
    pub fn branch(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/heads/")
    }

    /// The commits the branch went through, oldest first, ending with its new head.
    pub fn branch_commits(&self) -> impl Iterator<Item = &CommitSha> {
        self.commits.iter().chain(self.head_commit.iter())
    }
}

#[derive(Deserialize)]
struct RepositoryField {
    full_name: String,
    /// Unix seconds in push payloads (an RFC 3339 string in others).
    #[serde(default)]
    pushed_at: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct PingPayload {
    repository: Option<RepositoryField>,
}

#[derive(Deserialize)]
struct ReleasePayload {
    action: String,
    release: ReleaseField,
    repository: RepositoryField,
}

#[derive(Deserialize)]
struct ReleaseField {
    id: i64,
    tag_name: String,
    #[serde(default)]
    target_commitish: String,
    draft: bool,
    prerelease: bool,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    published_at: Option<String>,
    #[serde(default)]
    updated_at: Option<String>,
}

#[derive(Deserialize)]
struct PushPayload {
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    deleted: bool,
    head_commit: Option<HeadCommit>,
    #[serde(default)]
    commits: Vec<HeadCommit>,
    repository: RepositoryField,
}

#[derive(Deserialize)]
struct HeadCommit {
    id: String,
}

fn repo(field: &'static str, full_name: &str) -> Result<RepoName, EventError> {
    full_name
        .parse()
        .map_err(|e: crate::RepoNameError| EventError::Field {
            field,
            message: e.to_string(),
        })
}

impl WebhookEvent {
    /// Parses a verified JSON payload for the `X-GitHub-Event` type `event`.
    pub fn parse(event: &str, body: &[u8]) -> Result<Self, EventError> {
        Ok(match event {
            "ping" => {
                let p: PingPayload = serde_json::from_slice(body)?;
                let repository = match p.repository {
                    Some(r) => Some(repo("repository.full_name", &r.full_name)?),
                    None => None,
                };
                WebhookEvent::Ping(PingEvent { repository })
            }
            "release" => {
                let p: ReleasePayload = serde_json::from_slice(body)?;
                if p.release.tag_name.is_empty() {
                    return Err(EventError::Field {
                        field: "release.tag_name",
                        message: "is empty".to_owned(),
                    });
                }
                let times = [
                    &p.release.updated_at,
                    &p.release.published_at,
                    &p.release.created_at,
                ];
                let changed_at = times
                    .into_iter()
                    .flatten()
                    .filter_map(|t| humantime::parse_rfc3339_weak(t).ok())
                    .max()
                    .map(|t| humantime::format_rfc3339_millis(t).to_string());
                WebhookEvent::Release(ReleaseEvent {
                    changed_at,
                    action: ReleaseAction::parse(&p.action),
                    repository: repo("repository.full_name", &p.repository.full_name)?,
                    release_id: p.release.id,
                    tag_name: p.release.tag_name,
                    target_commitish: p.release.target_commitish,
                    draft: p.release.draft,
                    prerelease: p.release.prerelease,
                })
            }
            "push" => {
                let p: PushPayload = serde_json::from_slice(body)?;
                let head_commit = match p.head_commit {
                    Some(c) => Some(c.id.parse().map_err(|e: crate::CommitShaError| {
                        EventError::Field {
                            field: "head_commit.id",
                            message: e.to_string(),
                        }
                    })?),
                    None => None,
                };
                let commits = p
                    .commits
                    .iter()
                    .map(|c| {
                        c.id.parse()
                            .map_err(|e: crate::CommitShaError| EventError::Field {
                                field: "commits[].id",
                                message: e.to_string(),
                            })
                    })
                    .collect::<Result<_, _>>()?;
                WebhookEvent::Push(PushEvent {
                    repository: repo("repository.full_name", &p.repository.full_name)?,
                    git_ref: p.git_ref,
                    deleted: p.deleted,
                    head_commit,
                    commits,
                    pushed_at: p
                        .repository
                        .pushed_at
                        .as_ref()
                        .and_then(serde_json::Value::as_i64),
                })
            }
            other => {
                // Still has to be JSON: a garbled body is a client error whatever the event.
                serde_json::from_slice::<serde::de::IgnoredAny>(body)?;
                WebhookEvent::Other(other.to_owned())
            }
        })
    }
}
