//! Who reported a build. Under a static `[[ci_token]]` a report's `ref` is a claim; under a
//! GitHub Actions OIDC token GitHub signed the run's repository, commit and ref, and those
//! claims bind the report (see DESIGN.md, "Trust model"). This module holds the claims hoist
//! reads from such a token, the rules that bind them to a report, and the workflow globs a
//! repository accepts (`[[repository]] ci_workflows`). Verifying the token's signature is
//! the API's job; what is here is pure.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use crate::RepoName;
use crate::build::BuildReport;
use crate::config::Repository;
use crate::repo::glob;

/// The claims of a GitHub Actions OIDC token that hoist checks or keeps, as GitHub documents
/// them ("About security hardening with OpenID Connect"). The registered claims (`iss`,
/// `aud`, `exp`, `nbf`) are checked with the signature; `iat` is checked here.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ActionsClaims {
    pub repository: String,
    pub sha: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    #[serde(deserialize_with = "text")]
    pub run_id: String,
    #[serde(deserialize_with = "text")]
    pub run_attempt: String,
    pub workflow_ref: String,
    pub job_workflow_ref: String,
    pub actor: String,
    pub event_name: String,
    #[serde(default)]
    pub runner_environment: Option<String>,
    pub iat: u64,
}

/// GitHub sends run ids as strings; a number is read the same.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        S(String),
        N(u64),
    }
    Ok(match Text::deserialize(d)? {
        Text::S(s) => s,
        Text::N(n) => n.to_string(),
    })
}

/// What a build keeps of the run that reported it, shown by `GET /v1/builds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiIdentity {
    pub run_id: String,
    pub run_attempt: String,
    pub workflow_ref: String,
    pub job_workflow_ref: String,
    pub actor: String,
    pub event_name: String,
    pub runner_environment: Option<String>,
}

impl From<&ActionsClaims> for CiIdentity {
    fn from(c: &ActionsClaims) -> Self {
        CiIdentity {
            run_id: c.run_id.clone(),
            run_attempt: c.run_attempt.clone(),
            workflow_ref: c.workflow_ref.clone(),
            job_workflow_ref: c.job_workflow_ref.clone(),
            actor: c.actor.clone(),
            event_name: c.event_name.clone(),
            runner_environment: c.runner_environment.clone(),
        }
    }
}

/// Who reported a build, and so whether its `ref` is a fact or a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// A static `[[ci_token]]`, by name: its `ref` names builds and decides nothing.
    Claim { token: String },
    /// A GitHub Actions OIDC token: GitHub signed the repository, commit and ref.
    Signed { identity: CiIdentity },
}

impl Provenance {
    /// The `reported_by` of the build row.
    pub fn reported_by(&self) -> String {
        match self {
            Provenance::Claim { token } => token.clone(),
            Provenance::Signed { identity } => format!("github-actions:{}", identity.actor),
        }
    }

    /// Whether GitHub signed the report's ref.
    pub fn is_signed(&self) -> bool {
        matches!(self, Provenance::Signed { .. })
    }
}

/// Events whose runs may report builds: each runs code of the repository's own refs, started
/// by a push, a release, or someone with write access. Everything else is refused, above
/// all `pull_request` and `pull_request_target` (code from forks), and the events a pull
/// request's author can set off on the default branch (`issue_comment`,
/// `pull_request_review*`, `workflow_run` after a fork's workflow).
pub const ACCEPTED_EVENTS: [&str; 7] = [
    "push",
    "release",
    "create",
    "workflow_dispatch",
    "repository_dispatch",
    "schedule",
    "merge_group",
];

/// Why a verified token may not stand behind a report (403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    #[error("the OIDC token is for repository {claimed}, not {reported}")]
    Repository { claimed: String, reported: String },
    #[error("the OIDC token is for commit {claimed}, not {reported}")]
    Commit { claimed: String, reported: String },
    #[error("the OIDC token is for ref {claimed}, not {reported}")]
    Ref { claimed: String, reported: String },
    #[error("the OIDC token's ref {0:?} is neither refs/tags/<name> nor refs/heads/<name>")]
    RefKind(String),
    #[error("runs of {0} events may not report builds: only runs of {accepted} events build the repository's own code", accepted = ACCEPTED_EVENTS.join(", "))]
    Event(String),
    #[error(
        "workflow {job_workflow_ref} is not one this repository accepts ({}); see [[repository]] ci_workflows",
        allowed.join(", ")
    )]
    Workflow {
        job_workflow_ref: String,
        allowed: Vec<String>,
    },
}

impl ActionsClaims {
    /// Whether the token names `repository` (GitHub names are case-insensitive).
    pub fn is_for(&self, repository: &RepoName) -> bool {
        self.repository.eq_ignore_ascii_case(repository.as_str())
    }

    /// Binds a validated report to these claims: the same repository, commit and ref (a
    /// report without `ref` takes the token's), from an accepted event and workflow.
    pub fn bind(
        &self,
        mut report: BuildReport,
        repo: &Repository,
    ) -> Result<BuildReport, BindError> {
        if !self.is_for(&report.repository) {
            return Err(BindError::Repository {
                claimed: self.repository.clone(),
                reported: report.repository.to_string(),
            });
        }
        if !self.sha.eq_ignore_ascii_case(report.commit.as_str()) {
            return Err(BindError::Commit {
                claimed: self.sha.clone(),
                reported: report.commit.to_string(),
            });
        }
        let kind_ok = ["refs/tags/", "refs/heads/"]
            .iter()
            .any(|p| self.git_ref.strip_prefix(p).is_some_and(|n| !n.is_empty()));
        if !kind_ok {
            return Err(BindError::RefKind(self.git_ref.clone()));
        }
        match &report.git_ref {
            Some(reported) if reported != &self.git_ref => {
                return Err(BindError::Ref {
                    claimed: self.git_ref.clone(),
                    reported: reported.clone(),
                });
            }
            Some(_) => {}
            None => report.git_ref = Some(self.git_ref.clone()),
        }
        if !ACCEPTED_EVENTS.contains(&self.event_name.as_str()) {
            return Err(BindError::Event(self.event_name.clone()));
        }
        let accepted = if repo.ci_workflows.is_empty() {
            WorkflowPattern::any_of(&repo.github).matches(&self.job_workflow_ref)
        } else {
            repo.ci_workflows
                .iter()
                .any(|p| p.matches(&self.job_workflow_ref))
        };
        if !accepted {
            let allowed = if repo.ci_workflows.is_empty() {
                vec![WorkflowPattern::any_of(&repo.github).to_string()]
            } else {
                repo.ci_workflows.iter().map(ToString::to_string).collect()
            };
            return Err(BindError::Workflow {
                job_workflow_ref: self.job_workflow_ref.clone(),
                allowed,
            });
        }
        Ok(report)
    }
}

/// A glob over an OIDC token's `job_workflow_ref`
/// (`octo-org/app/.github/workflows/release.yml@refs/tags/*`): `*` stands for any run of
/// characters. The `owner/name` part matches without case, as GitHub names do; the path
/// and ref match exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowPattern {
    repository: String,
    rest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a workflow glob: write owner/name/.github/workflows/<file>@<ref>, with * for \
     any text (e.g. octo-org/app/.github/workflows/release.yml@*)"
)]
pub struct WorkflowPatternError(pub String);

/// `owner/name` and the rest, split after the second `/`.
fn split_workflow_ref(text: &str) -> Option<(&str, &str)> {
    let first = text.find('/')?;
    let second = first + 1 + text[first + 1..].find('/')?;
    Some((&text[..second], &text[second + 1..]))
}

impl WorkflowPattern {
    /// Any workflow of `repository`, at any ref: the default.
    pub fn any_of(repository: &RepoName) -> WorkflowPattern {
        WorkflowPattern {
            repository: repository.as_str().to_ascii_lowercase(),
            rest: "*@*".to_owned(),
        }
    }

    /// The path and the ref match apart, split at the first `@`: a `*` never spans it. A
    /// ref may hold `@` (`refs/tags/pkg@1.2.3`); a file name that does
    /// (`release.yml@x.yml`) is read as `release.yml` at a ref starting `x.yml@`, which no
    /// pattern with a `refs/…` ref matches, since a workflow file name holds no `/`.
    pub fn matches(&self, job_workflow_ref: &str) -> bool {
        let Some((repository, rest)) = split_workflow_ref(job_workflow_ref) else {
            return false;
        };
        let (Some((path, at)), Some((want_path, want_at))) =
            (rest.split_once('@'), self.rest.split_once('@'))
        else {
            return false;
        };
        glob(&self.repository, &repository.to_ascii_lowercase())
            && glob(want_path, path)
            && glob(want_at, at)
    }
}

impl FromStr for WorkflowPattern {
    type Err = WorkflowPatternError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || WorkflowPatternError(text.to_owned());
        let (repository, rest) = split_workflow_ref(text).ok_or_else(bad)?;
        let (path, at) = rest.split_once('@').ok_or_else(bad)?;
        let repository_ok = repository.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.*".contains(c))
        });
        if !repository_ok
            || !(path.starts_with(".github/workflows/") || path == "*")
            || at.is_empty()
            || text.chars().any(char::is_whitespace)
        {
            return Err(bad());
        }
        Ok(WorkflowPattern {
            repository: repository.to_ascii_lowercase(),
            rest: rest.to_owned(),
        })
    }
}

impl fmt::Display for WorkflowPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.repository, self.rest)
    }
}

#[cfg(test)]
mod tests;
