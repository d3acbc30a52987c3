//! Trust (DESIGN.md, "Trust model"), in-process: GitHub Actions OIDC tokens from a local
//! issuer bind a CI report to the run GitHub signed; a static CI token's ref is a claim that
//! decides nothing; and what GitHub signed (a release's `target_commitish`, a push, an OIDC
//! token, the REST API) is what publishes. Every refusal stores nothing.

use axum::http::StatusCode;
use hoist_tests::FakeGitHub;
use std::time::Duration;

use hoist_tests::app::{COMMIT_A, COMMIT_B, COMMIT_C, GH_API_TOKEN, REPOSITORY, World};
use hoist_tests::oidc::{self, AUDIENCE};
use serde_json::{Value, json};

fn tag_ref(tag: &str) -> String {
    format!("refs/tags/{tag}")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

async fn builds(w: &World) -> Vec<Value> {
    let listing = w.get(&format!("/v1/builds?repository={REPOSITORY}")).await;
    listing["items"].as_array().cloned().unwrap_or_default()
}

async fn releases(w: &World) -> Vec<Value> {
    let listing = w
        .get(&format!("/v1/releases?repository={REPOSITORY}"))
        .await;
    listing["items"].as_array().cloned().unwrap_or_default()
}

/// Sends one report and checks it is refused with `status` and a message containing `says`.
async fn refused(w: &World, case: &str, token: &str, body: &Value, status: StatusCode, says: &str) {
    let reply = w.report_as(token, body).await;
    assert_eq!(reply.status, status, "{case}: {}", reply.body);
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{case}: {message:?} lacks {says:?}");
    assert!(!message.contains(token), "{case}: the token is echoed back");
}

#[tokio::test(flavor = "multi_thread")]
async fn oidc_tokens_that_do_not_bind_the_report_are_refused_and_nothing_is_stored() {
    let w = World::with_repository(
        r#"ci_workflows = ["Codertocat/Hello-World/.github/workflows/release.yml@refs/tags/*"]"#,
    )
    .await;
    let v1 = tag_ref("v1.0.0");
    let body = w.report_body(COMMIT_A, &v1, "amd64");
    let claims = w.issuer.claims(REPOSITORY, COMMIT_A, &v1);
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = claims.clone();
        change(&mut c);
        c
    };
    let key = w.issuer.signing_key();
    let unauthorized = StatusCode::UNAUTHORIZED;
    let forbidden = StatusCode::FORBIDDEN;
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "another repository",
            w.issuer
                .token(&with(&|c| c["repository"] = json!("Codertocat/Other"))),
            forbidden,
            "the OIDC token is for repository Codertocat/Other",
        ),
        (
            "another sha",
            w.issuer.token(&with(&|c| c["sha"] = json!(COMMIT_B))),
            forbidden,
            "the OIDC token is for commit",
        ),
        (
            "another ref",
            w.issuer
                .token(&with(&|c| c["ref"] = json!("refs/tags/v9.9.9"))),
            forbidden,
            "the OIDC token is for ref refs/tags/v9.9.9, not refs/tags/v1.0.0",
        ),
        (
            "wrong aud",
            w.issuer.token(&with(&|c| c["aud"] = json!("someone-else"))),
            unauthorized,
            "is not for audience \"hoist\" (aud)",
        ),
        (
            "wrong iss",
            w.issuer.token(&with(&|c| {
                c["iss"] = json!("https://token.actions.githubusercontent.com")
            })),
            unauthorized,
            "(iss)",
        ),
        (
            "expired",
            w.issuer.token(&with(&|c| {
                c["iat"] = json!(now() - 1200);
                c["nbf"] = json!(now() - 1200);
                c["exp"] = json!(now() - 120);
            })),
            unauthorized,
            "has expired (exp)",
        ),
        (
            "not yet valid",
            w.issuer.token(&with(&|c| c["nbf"] = json!(now() + 300))),
            unauthorized,
            "is not valid yet (nbf)",
        ),
        (
            "issued in the future",
            w.issuer.token(&with(&|c| c["iat"] = json!(now() + 300))),
            unauthorized,
            "issued in the future (iat)",
        ),
        (
            "no exp",
            w.issuer.token(&with(&|c| {
                c.as_object_mut().expect("object").remove("exp");
            })),
            unauthorized,
            "has no exp claim",
        ),
        (
            "unknown key",
            oidc::sign_rs256(&w.issuer.unpublished_key(), &claims),
            unauthorized,
            "which http://127.0.0.1",
        ),
        (
            "unknown kid",
            {
                let mut renamed = key.clone();
                renamed.kid = "no-such-kid".to_owned();
                oidc::sign_rs256(&renamed, &claims)
            },
            unauthorized,
            "signed by key \"no-such-kid\"",
        ),
        (
            "alg none",
            oidc::unsigned(&key.kid, &claims),
            unauthorized,
            "signed with \"none\"; only RS256 is accepted",
        ),
        (
            "HS256 keyed with the public key",
            oidc::sign_hs256(&key.kid, &key.public_pem, &claims),
            unauthorized,
            "signed with \"HS256\"; only RS256 is accepted",
        ),
        (
            "tampered claims",
            {
                let genuine = w.issuer.token(&claims);
                let forged = w.issuer.token(&with(&|c| c["sha"] = json!(COMMIT_B)));
                let parts: Vec<&str> = genuine.split('.').collect();
                let forged_payload = forged.split('.').nth(1).expect("payload");
                format!("{}.{forged_payload}.{}", parts[0], parts[2])
            },
            unauthorized,
            "signature does not verify",
        ),
        (
            "a pull_request run",
            w.issuer
                .token(&with(&|c| c["event_name"] = json!("pull_request"))),
            forbidden,
            "runs of pull_request events may not report builds",
        ),
        (
            "a pull_request_target run",
            w.issuer
                .token(&with(&|c| c["event_name"] = json!("pull_request_target"))),
            forbidden,
            "runs of pull_request_target events",
        ),
        (
            "a workflow outside ci_workflows",
            w.issuer.token(&with(&|c| {
                c["job_workflow_ref"] =
                    json!("Codertocat/Hello-World/.github/workflows/nightly.yml@refs/heads/main")
            })),
            forbidden,
            "is not one this repository accepts (codertocat/hello-world/.github/workflows/release.yml@refs/tags/*)",
        ),
    ];
    for (case, token, status, says) in &cases {
        refused(&w, case, token, &body, *status, says).await;
    }
    // The forged and unknown kids fetched the keys at most once more.
    assert!(w.issuer.jwks_fetches() <= 2, "{}", w.issuer.jwks_fetches());
    assert!(builds(&w).await.is_empty(), "nothing is stored");

    // The genuine token passes; the audience was what the issuer signed.
    assert_eq!(claims["aud"], AUDIENCE);
    let reply = w.report_as(&w.issuer.token(&claims), &body).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_rotation_is_picked_up_and_forged_kids_cost_the_issuer_nothing() {
    let w = World::new().await;
    let v1 = tag_ref("v1.0.0");
    let reply = w.report(COMMIT_A, &v1, "amd64").await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(w.issuer.jwks_fetches(), 1);
    w.issuer.rotate();
    let reply = w.report(COMMIT_A, &v1, "arm64").await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(
        w.issuer.jwks_fetches(),
        2,
        "the new kid fetched the keys again"
    );
    // Within the minute, unknown kids are refused without asking the issuer.
    let claims = w.issuer.claims(REPOSITORY, COMMIT_A, &v1);
    for i in 0..20 {
        let mut forged = w.issuer.unpublished_key();
        forged.kid = format!("forged-{i}");
        let reply = w
            .report_as(
                &oidc::sign_rs256(&forged, &claims),
                &w.report_body(COMMIT_A, &v1, "amd64"),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    }
    assert_eq!(w.issuer.jwks_fetches(), 2);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_issuer_is_a_503_that_stores_nothing_and_keys_on_another_origin_are_refused()
{
    let w = World::new().await;
    let v1 = tag_ref("v1.0.0");
    w.issuer.set_failing(true);
    let reply = w.report(COMMIT_A, &v1, "amd64").await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(reply.body["error"]["code"], "issuer_unavailable");
    assert!(builds(&w).await.is_empty());

    let w = World::new().await;
    w.issuer.set_jwks_uri("http://127.0.0.2:9/.well-known/jwks");
    let reply = w.report(COMMIT_A, &v1, "amd64").await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(
        w.issuer.jwks_fetches(),
        0,
        "the foreign key set is never asked"
    );
    assert!(builds(&w).await.is_empty());
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oidc_signed_tag_resolves_a_release_whose_target_is_a_branch_and_the_run_is_kept() {
    let w = World::new().await;
    w.release("published", 1, "v4.0.0", "master", false).await;
    assert_eq!(
        releases(&w).await[0]["detail"],
        "commit of v4.0.0 not yet confirmed by GitHub"
    );
    // One report names the ref, the other leaves it to the token.
    w.report(COMMIT_A, &tag_ref("v4.0.0"), "amd64").await;
    let token = w.issuer.token_for(REPOSITORY, COMMIT_A, &tag_ref("v4.0.0"));
    let mut body = w.report_body(COMMIT_A, "", "arm64");
    body.as_object_mut().expect("object").remove("ref");
    let reply = w.report_as(&token, &body).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(reply.body["build"]["ref"], tag_ref("v4.0.0"));
    w.run_jobs().await;

    let release = &releases(&w).await[0];
    assert_eq!(release["commit"], COMMIT_A);
    assert_eq!(release["commit_source"], "oidc");
    assert_eq!(release["detail"], Value::Null);
    let tags = w.tags().await;
    assert_eq!(tags["4.0.0"], w.index_of(COMMIT_A).await, "{tags:?}");
    for build in builds(&w).await {
        assert_eq!(build["ref_source"], "oidc");
        assert_eq!(build["reported_by"], "github-actions:octocat");
        let identity = &build["ci_identity"];
        assert_eq!(identity["run_id"], "5012345678");
        assert_eq!(identity["run_attempt"], "1");
        assert_eq!(identity["actor"], "octocat");
        assert_eq!(identity["event_name"], "push");
        assert_eq!(identity["runner_environment"], "github-hosted");
        assert_eq!(
            identity["job_workflow_ref"],
            format!("{REPOSITORY}/.github/workflows/release.yml@refs/tags/v4.0.0")
        );
        assert_eq!(identity["workflow_ref"], identity["job_workflow_ref"]);
    }
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_static_token_s_tag_claim_never_decides_what_a_release_publishes() {
    // GitHub's release names commit B; the static token claims the tag is commit A.
    let w = World::new().await;
    w.release("published", 1, "v3.0.0", COMMIT_B, false).await;
    w.report_claimed_both(COMMIT_A, &tag_ref("v3.0.0")).await;
    w.report_both(COMMIT_B, "").await;
    w.run_jobs().await;
    let tags = w.tags().await;
    assert_eq!(tags["3.0.0"], w.index_of(COMMIT_B).await, "{tags:?}");
    let commits: Vec<String> = w
        .publications()
        .await
        .iter()
        .map(|p| p["commit"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(commits, [COMMIT_B], "commit A is never published");
    let release = &releases(&w).await[0];
    let conflict = release["claim_conflict"].as_str().unwrap_or_default();
    assert!(
        conflict.contains(&format!(
            "CI claimed refs/tags/v3.0.0 is {COMMIT_A} (by ci)"
        )) && conflict.contains(&format!("GitHub says {COMMIT_B} (target_commitish)")),
        "{release}"
    );
    let metrics = w.metrics().await;
    assert!(
        metrics.contains("\nhoist_release_claim_conflicts 1\n"),
        "{metrics}"
    );
    w.finish().await;

    // Without a commit in the release, the claim leaves it waiting for GitHub.
    let w = World::new().await;
    w.release("published", 1, "v3.0.0", "master", false).await;
    w.report_claimed_both(COMMIT_A, &tag_ref("v3.0.0")).await;
    w.run_jobs().await;
    assert!(w.publications().await.is_empty());
    assert_eq!(
        releases(&w).await[0]["detail"],
        "commit of v3.0.0 not yet confirmed by GitHub"
    );
    assert!(w.tags().await.is_empty());
    // The signed push of the tag decides, and the claim shows as a conflict.
    w.push_tag("v3.0.0", COMMIT_B).await;
    w.report_both(COMMIT_B, "").await;
    w.run_jobs().await;
    assert_eq!(w.tags().await["3.0.0"], w.index_of(COMMIT_B).await);
    assert!(
        releases(&w).await[0]["claim_conflict"]
            .as_str()
            .is_some_and(|c| c.contains("(push)"))
    );
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_static_token_s_branch_claim_publishes_only_once_github_confirms_the_commit() {
    let w = World::new().await;
    w.report_claimed_both(COMMIT_A, "refs/heads/main").await;
    w.run_jobs().await;
    assert!(
        w.tags().await.is_empty(),
        "no sha- or branch tag on a claim"
    );
    let publication = &w.publications().await[0];
    assert_eq!(publication["state"], "waiting");
    assert_eq!(
        publication["error"],
        format!(
            "commit {COMMIT_A} not yet confirmed on main by GitHub: waiting for a signed push of main or a build reported with an OIDC token from a run on main"
        )
    );
    // A signed push of main that names the commit confirms it.
    w.push_branch("main", &[COMMIT_A]).await;
    w.run_jobs().await;
    let tags = w.tags().await;
    assert_eq!(tags["sha-aaaaaaa"], w.index_of(COMMIT_A).await, "{tags:?}");
    w.finish().await;

    // So does an OIDC-signed report from a run on main.
    let w = World::new().await;
    w.report_claimed_both(COMMIT_A, "refs/heads/main").await;
    w.run_jobs().await;
    assert!(w.tags().await.is_empty());
    let reply = w.report(COMMIT_A, "refs/heads/main", "amd64").await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    w.run_jobs().await;
    assert_eq!(w.tags().await["sha-aaaaaaa"], w.index_of(COMMIT_A).await);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_api_a_branch_claim_is_checked_against_github() {
    let github = FakeGitHub::start(GH_API_TOKEN);
    github.add_branch_commits("main", &[COMMIT_A, COMMIT_B]);
    let api = format!("api_url = \"{}\"\ntoken_env = \"GH_TOKEN\"", github.url());
    let w = World::with_config(&api, "").await;
    // On main (behind its head): published, and the answer is kept.
    w.report_claimed_both(COMMIT_A, "refs/heads/main").await;
    w.run_jobs().await;
    assert_eq!(w.tags().await["sha-aaaaaaa"], w.index_of(COMMIT_A).await);
    assert!(
        w.store
            .branch_confirmed(REPOSITORY, "main", COMMIT_A)
            .await
            .expect("store")
    );
    assert!(
        github
            .requests()
            .iter()
            .any(|p| p.ends_with(&format!("/compare/main...{COMMIT_A}"))),
        "{:?}",
        github.requests()
    );
    w.finish().await;

    // Not on main (only on a feature branch), or a commit GitHub does not know (404): the
    // publications wait, saying why, for a signed push or an OIDC report.
    let github = FakeGitHub::start(GH_API_TOKEN);
    github.add_branch_commits("feature", &[COMMIT_B]);
    let api = format!("api_url = \"{}\"\ntoken_env = \"GH_TOKEN\"", github.url());
    let w = World::with_config(&api, "").await;
    for commit in [COMMIT_B, COMMIT_C] {
        w.report_claimed_both(commit, "refs/heads/main").await;
    }
    w.run_jobs().await;
    assert!(w.tags().await.is_empty());
    let errors: Vec<String> = w
        .publications()
        .await
        .iter()
        .map(|p| p["error"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        errors.contains(&format!(
            "GitHub's API says commit {COMMIT_B} is not on main"
        )),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.starts_with(&format!(
            "GitHub's API could not confirm commit {COMMIT_C} is on main (GitHub answered 404 Not Found"
        ))),
        "{errors:?}"
    );
    // Reporting the same builds again asks GitHub nothing more.
    let asked = github.requests().len();
    w.report_claimed(COMMIT_B, "refs/heads/main", "amd64").await;
    w.run_jobs().await;
    assert_eq!(github.requests().len(), asked);
    // A signed push of main still confirms the one GitHub's API did not know.
    w.push_branch("main", &[COMMIT_C]).await;
    w.run_jobs().await;
    assert_eq!(w.tags().await["sha-ccccccc"], w.index_of(COMMIT_C).await);
    w.finish_with_parked(1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_confirmed_without_a_place_in_push_order_never_takes_edge_back() {
    // GitHub's API confirms any ancestor of main; an OIDC re-run keeps its old commit.
    // Neither says where on the branch the commit is, so neither moves edge off a commit
    // a push placed.
    let github = FakeGitHub::start(GH_API_TOKEN);
    github.add_branch_commits("main", &[COMMIT_A, COMMIT_B]);
    let api = format!("api_url = \"{}\"\ntoken_env = \"GH_TOKEN\"", github.url());
    let w = World::with_config(&api, r#"tags = ["type=sha", "type=edge"]"#).await;
    w.push_branch("main", &[COMMIT_B]).await;
    w.report_both(COMMIT_B, "refs/heads/main").await;
    w.run_jobs().await;
    let b = w.index_of(COMMIT_B).await;
    assert_eq!(w.tags().await["edge"], b);
    // Later: claims for the older A, which only the API confirms ...
    w.report_claimed_both(COMMIT_A, "refs/heads/main").await;
    w.run_jobs().await;
    let tags = w.tags().await;
    assert_eq!(tags["sha-aaaaaaa"], w.index_of(COMMIT_A).await, "{tags:?}");
    assert!(
        github
            .requests()
            .iter()
            .any(|p| p.ends_with(&format!("/compare/main...{COMMIT_A}"))),
        "confirmed by the API: {:?}",
        github.requests()
    );
    assert_eq!(tags["edge"], b, "edge stays on the commit the push placed");
    // ... and an OIDC-signed run on main of C, which no push named.
    w.report_both(COMMIT_C, "refs/heads/main").await;
    w.run_jobs().await;
    let tags = w.tags().await;
    assert_eq!(tags["sha-ccccccc"], w.index_of(COMMIT_C).await, "{tags:?}");
    assert_eq!(tags["edge"], b);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_oidc_report_of_a_deleted_tag_does_not_bring_its_commit_back() {
    let w = World::new().await;
    w.push_tag("v1.0.0", COMMIT_A).await;
    w.delete_tag("v1.0.0").await;
    // A re-run of the old tag's workflow: GitHub signs its old sha and ref again.
    w.report_both(COMMIT_A, &tag_ref("v1.0.0")).await;
    w.release("published", 1, "v1.0.0", "master", false).await;
    w.run_jobs().await;
    assert_eq!(releases(&w).await[0]["commit"], Value::Null);
    assert!(w.tags().await.is_empty());
    // The tag pushed again, at B, decides.
    w.push_tag("v1.0.0", COMMIT_B).await;
    w.report_both(COMMIT_B, "").await;
    w.run_jobs().await;
    let release = &releases(&w).await[0];
    assert_eq!(
        (&release["commit"], &release["commit_source"]),
        (&json!(COMMIT_B), &json!("push"))
    );
    assert_eq!(w.tags().await["1.0.0"], w.index_of(COMMIT_B).await);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oidc_tag_report_for_a_published_commit_is_refused_but_still_names_the_tag() {
    let w = World::new().await;
    w.report_both(COMMIT_A, "refs/heads/main").await;
    w.run_jobs().await;
    assert!(w.tags().await.contains_key("sha-aaaaaaa"));
    // The tag's run rebuilt the image: another digest for a published commit.
    let token = w.issuer.token_for(REPOSITORY, COMMIT_A, &tag_ref("v2.0.0"));
    let mut body = w.report_body(COMMIT_A, &tag_ref("v2.0.0"), "amd64");
    body["image"] = w.report_body(COMMIT_B, "", "amd64")["image"].clone();
    let reply = w.report_as(&token, &body).await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("(the ref GitHub signed for this run is recorded)")),
        "{}",
        reply.body
    );
    w.release("published", 1, "v2.0.0", "master", false).await;
    w.run_jobs().await;
    assert_eq!(releases(&w).await[0]["commit_source"], "oidc");
    // Published from the builds already there (the release takes over the commit's tags).
    let tags = w.tags().await;
    assert_eq!(tags["2.0.0"], tags["sha-aaaaaaa"], "{tags:?}");
    let amd64 = builds(&w)
        .await
        .into_iter()
        .find(|b| b["platform"] == "linux/amd64")
        .expect("the amd64 build");
    assert_eq!(
        amd64["digest"],
        json!(w.builds[COMMIT_A].amd64),
        "not replaced"
    );
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_hangs_up_while_keys_are_fetched_does_not_leave_hoist_without_keys() {
    let w = World::new().await;
    w.issuer.set_jwks_delay(Duration::from_millis(400));
    let v1 = tag_ref("v1.0.0");
    let body = w.report_body(COMMIT_A, &v1, "amd64");
    // Two clients hang up before the keys come: the first started the fetch, the second
    // would have been the once-a-minute refetch.
    for _ in 0..2 {
        let token = w.issuer.token_for(REPOSITORY, COMMIT_A, &v1);
        let gave_up =
            tokio::time::timeout(Duration::from_millis(50), w.report_as(&token, &body)).await;
        assert!(gave_up.is_err(), "the client hung up first");
    }
    let reply = w
        .report_as(&w.issuer.token_for(REPOSITORY, COMMIT_A, &v1), &body)
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(w.issuer.jwks_fetches(), 1, "one fetch, finished for all");
    w.finish().await;
}

/// A tag name is one path segment of the API URL however it is spelled: `#` and `%2e%2e/`
/// are sent encoded, so the question asked is about that tag, not another path.
#[tokio::test(flavor = "multi_thread")]
async fn the_api_is_asked_about_the_tag_as_named_whatever_its_characters() {
    let tag = "v2.0.0#%2e%2e/x";
    let github = FakeGitHub::start(GH_API_TOKEN);
    github.add_tag(tag, COMMIT_A);
    let api = format!("api_url = \"{}\"\ntoken_env = \"GH_TOKEN\"", github.url());
    let w = World::with_config(&api, "").await;
    w.release("published", 1, tag, "master", false).await;
    w.run_jobs().await;
    let release = &releases(&w).await[0];
    assert_eq!(release["commit"], COMMIT_A, "{release}");
    assert_eq!(release["commit_source"], "github_api");
    assert_eq!(
        github.requests(),
        [format!(
            "/repos/{REPOSITORY}/commits/tags%2Fv2.0.0%23%252e%252e%2Fx"
        )]
    );
    // No builds yet: its publication waits for them, without a job.
    w.finish_with_parked(1).await;
}
