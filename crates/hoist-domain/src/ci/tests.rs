use std::collections::HashMap;

use serde_json::json;

use super::*;
use crate::build::validate;
use crate::config::{Config, ConfigFile};

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";

fn config(workflows: &str) -> Config {
    let text = format!(
        r#"
[[registry]]
host = "ghcr.io"
anonymous = true
[[repository]]
github = "Octo-Org/App"
image = "ghcr.io/octo-org/app"
platforms = ["linux/amd64"]
{workflows}
"#
    );
    ConfigFile::parse(&text, "t")
        .unwrap()
        .validate(&HashMap::new())
        .unwrap()
}

/// Claims as GitHub documents them for a tag push run of the release workflow.
fn claims() -> ActionsClaims {
    serde_json::from_value(json!({
        "jti": "example-id",
        "sub": "repo:octo-org/app:ref:refs/tags/v1.2.3",
        "aud": "hoist",
        "ref": "refs/tags/v1.2.3",
        "sha": SHA,
        "repository": "octo-org/app",
        "repository_owner": "octo-org",
        "actor_id": "12",
        "repository_visibility": "private",
        "repository_id": "74",
        "repository_owner_id": "65",
        "run_id": "example-run-id",
        "run_number": "10",
        "run_attempt": "2",
        "runner_environment": "github-hosted",
        "actor": "octocat",
        "workflow": "release",
        "head_ref": "",
        "base_ref": "",
        "event_name": "push",
        "ref_type": "tag",
        "workflow_ref": "octo-org/app/.github/workflows/release.yml@refs/tags/v1.2.3",
        "job_workflow_ref": "octo-org/app/.github/workflows/release.yml@refs/tags/v1.2.3",
        "iss": "https://token.actions.githubusercontent.com",
        "nbf": 1632492967,
        "exp": 1632493867,
        "iat": 1632493567
    }))
    .unwrap()
}

fn report(git_ref: Option<&str>) -> BuildReport {
    let mut body = json!({
        "repository": "octo-org/app",
        "commit": SHA,
        "platform": "linux/amd64",
        "image": format!("ghcr.io/octo-org/app@{DIGEST}"),
    });
    if let Some(r) = git_ref {
        body["ref"] = json!(r);
    }
    validate(&body, &config("")).unwrap()
}

fn bind(
    claims: &ActionsClaims,
    report: BuildReport,
    workflows: &str,
) -> Result<BuildReport, BindError> {
    let config = config(workflows);
    claims.bind(report, &config.repositories[0])
}

#[test]
fn github_s_documented_claims_parse_and_bind_a_matching_report() {
    let c = claims();
    assert_eq!(c.run_attempt, "2");
    let bound = bind(&c, report(Some("refs/tags/v1.2.3")), "").unwrap();
    assert_eq!(bound.tag(), Some("v1.2.3"));
    // A report without ref takes the token's.
    let bound = bind(&c, report(None), "").unwrap();
    assert_eq!(bound.git_ref.as_deref(), Some("refs/tags/v1.2.3"));
    let identity = CiIdentity::from(&c);
    assert_eq!(identity.job_workflow_ref, c.job_workflow_ref);
    assert_eq!(
        identity.runner_environment.as_deref(),
        Some("github-hosted")
    );
    let numbers: ActionsClaims = serde_json::from_value(json!({
        "repository": "o/a", "sha": SHA, "ref": "refs/heads/main", "run_id": 7,
        "run_attempt": 1, "workflow_ref": "w", "job_workflow_ref": "j", "actor": "a",
        "event_name": "push", "iat": 1
    }))
    .unwrap();
    assert_eq!(
        (numbers.run_id.as_str(), numbers.run_attempt.as_str()),
        ("7", "1")
    );
}

#[test]
fn claims_that_differ_from_the_report_are_refused_by_name() {
    let mut other = claims();
    other.repository = "octo-org/other".to_owned();
    assert!(matches!(
        bind(&other, report(None), ""),
        Err(BindError::Repository { .. })
    ));
    let mut upper = claims();
    upper.repository = "OCTO-ORG/APP".to_owned();
    bind(&upper, report(None), "").expect("GitHub names are case-insensitive");

    let mut sha = claims();
    sha.sha = "f".repeat(40);
    assert!(matches!(
        bind(&sha, report(None), ""),
        Err(BindError::Commit { .. })
    ));

    let err = bind(&claims(), report(Some("refs/heads/main")), "").unwrap_err();
    assert_eq!(
        err.to_string(),
        "the OIDC token is for ref refs/tags/v1.2.3, not refs/heads/main"
    );

    let mut pull = claims();
    pull.git_ref = "refs/pull/7/merge".to_owned();
    assert!(matches!(
        bind(&pull, report(None), ""),
        Err(BindError::RefKind(_))
    ));
}

#[test]
fn only_runs_of_the_repository_s_own_events_may_report() {
    for event in ACCEPTED_EVENTS {
        let mut c = claims();
        c.event_name = event.to_owned();
        bind(&c, report(None), "").unwrap_or_else(|e| panic!("{event}: {e}"));
    }
    for event in [
        "pull_request",
        "pull_request_target",
        "pull_request_review",
        "pull_request_review_comment",
        "issue_comment",
        "workflow_run",
        "discussion_comment",
    ] {
        let mut c = claims();
        c.event_name = event.to_owned();
        assert_eq!(
            bind(&c, report(None), "").unwrap_err(),
            BindError::Event(event.to_owned())
        );
    }
}

#[test]
fn workflows_outside_ci_workflows_are_refused() {
    // Default: any workflow of the repository itself, not a reusable one of another.
    let mut foreign = claims();
    foreign.job_workflow_ref = "evil/repo/.github/workflows/x.yml@refs/heads/main".to_owned();
    let err = bind(&foreign, report(None), "").unwrap_err();
    assert!(err.to_string().contains("octo-org/app/*"), "{err}");

    let listed = r#"ci_workflows = ["octo-org/app/.github/workflows/release.yml@refs/tags/*", "octo-org/shared/.github/workflows/build.yml@refs/heads/main"]"#;
    bind(&claims(), report(None), listed).expect("listed");
    let mut shared = claims();
    shared.job_workflow_ref =
        "Octo-Org/Shared/.github/workflows/build.yml@refs/heads/main".to_owned();
    bind(&shared, report(None), listed).expect("the owner/name part matches without case");
    let mut other_file = claims();
    other_file.job_workflow_ref =
        "octo-org/app/.github/workflows/Release.yml@refs/tags/v1.2.3".to_owned();
    assert!(matches!(
        bind(&other_file, report(None), listed),
        Err(BindError::Workflow { .. })
    ));
    // A file whose name holds an @, run on a branch, is not the listed file at a tag.
    let mut sneaky = claims();
    sneaky.job_workflow_ref =
        "octo-org/app/.github/workflows/release.yml@x.yml@refs/heads/feature".to_owned();
    assert!(matches!(
        bind(&sneaky, report(None), listed),
        Err(BindError::Workflow { .. })
    ));
    let wide = r#"ci_workflows = ["octo-org/app/.github/workflows/*@refs/tags/*"]"#;
    assert!(matches!(
        bind(&sneaky, report(None), wide),
        Err(BindError::Workflow { .. })
    ));
    // A tag that holds an @ (a monorepo's pkg@1.2.3) is a ref like any other.
    let mut monorepo = claims();
    monorepo.git_ref = "refs/tags/app@1.2.3".to_owned();
    monorepo.job_workflow_ref =
        "octo-org/app/.github/workflows/release.yml@refs/tags/app@1.2.3".to_owned();
    bind(&monorepo, report(None), listed).expect("listed, at a tag");
    bind(&monorepo, report(None), "").expect("the default: any workflow of the repository");
    let mut branch = claims();
    branch.job_workflow_ref =
        "octo-org/app/.github/workflows/release.yml@refs/heads/dev".to_owned();
    assert!(matches!(
        bind(&branch, report(None), listed),
        Err(BindError::Workflow { .. })
    ));
}

#[test]
fn workflow_globs_are_checked_when_parsed() {
    for good in [
        "octo-org/app/.github/workflows/release.yml@*",
        "octo-org/*/.github/workflows/*.yml@refs/heads/main",
        "octo-org/app/*@*",
    ] {
        good.parse::<WorkflowPattern>()
            .unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    for bad in [
        "",
        "octo-org/app",
        "octo-org/app/.github/workflows/release.yml",
        "octo-org/app/release.yml@main",
        "octo-org//.github/workflows/x.yml@*",
        "octo org/app/.github/workflows/x.yml@*",
        "octo-org/app/.github/workflows/x.yml@",
    ] {
        assert!(bad.parse::<WorkflowPattern>().is_err(), "{bad:?}");
    }
}
