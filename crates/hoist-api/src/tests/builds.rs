//! `POST /v1/builds` and the read side.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use super::*;

const COMMIT: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
const DIGEST_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const DIGEST_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn report(platform: &str, digest: &str) -> Value {
    json!({
        "repository": "Codertocat/Hello-World",
        "commit": COMMIT,
        "ref": "refs/tags/v1.2.3",
        "platform": platform,
        "image": format!("ghcr.io/codertocat/ci-staging@{digest}"),
    })
}

fn post(token: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut request = Request::post("/v1/builds").header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.body(body.into()).unwrap()
}

#[tokio::test]
async fn a_build_is_recorded_then_unchanged_then_replaced() {
    let app = app().await;
    let first = app
        .send(post(
            Some(CI_TOKEN),
            report("linux/amd64", DIGEST_A).to_string(),
        ))
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert_eq!(first.body["status"], "recorded");
    assert_eq!(first.body["build"]["platform"], "linux/amd64");
    assert_eq!(first.body["build"]["reported_by"], "ci");
    assert_eq!(first.body["build"]["ref"], "refs/tags/v1.2.3");

    let again = app
        .send(post(
            Some(CI_TOKEN),
            report("linux/amd64", DIGEST_A).to_string(),
        ))
        .await;
    assert_eq!(again.body["status"], "unchanged");
    assert_eq!(again.body["build"], first.body["build"]);

    let replaced = app
        .send(post(
            Some(CI_TOKEN),
            report("linux/amd64", DIGEST_B).to_string(),
        ))
        .await;
    assert_eq!(replaced.body["status"], "replaced");
    assert_eq!(replaced.body["previous_digest"], DIGEST_A);

    let (_, builds) = app.recorded().await;
    assert_eq!(builds.len(), 1);
    assert_eq!(builds[0]["digest"], DIGEST_B);
}

#[tokio::test]
async fn a_new_digest_after_publication_is_refused_with_409() {
    let app = app().await;
    app.send(post(
        Some(CI_TOKEN),
        report("linux/arm64", DIGEST_A).to_string(),
    ))
    .await;
    hoist_store::test_support::mark_published(
        &app.store,
        "Codertocat/Hello-World",
        "ghcr.io/codertocat/hello-world",
        COMMIT,
    )
    .await
    .unwrap();
    let reply = app
        .send(post(
            Some(CI_TOKEN),
            report("linux/arm64", DIGEST_B).to_string(),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(
        reply.body["error"]["message"],
        format!(
            "Codertocat/Hello-World at {COMMIT} for linux/arm64 was already published as {DIGEST_A}; a new digest cannot replace it"
        )
    );
    let (_, builds) = app.recorded().await;
    assert_eq!(builds[0]["digest"], DIGEST_A);
}

#[tokio::test]
async fn an_index_is_reported_without_a_platform() {
    let app = app().await;
    let mut body = report("linux/amd64", DIGEST_A);
    body.as_object_mut().unwrap().remove("platform");
    let reply = app.send(post(Some(CI_TOKEN), body.to_string())).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(reply.body["build"]["platform"], Value::Null);
}

/// Each refusal, and nothing stored by any of them.
#[tokio::test]
async fn bad_reports_are_refused_naming_the_problem_and_store_nothing() {
    let app = app().await;
    let good = report("linux/amd64", DIGEST_A).to_string();
    let with = |change: &dyn Fn(&mut Value)| {
        let mut body = report("linux/amd64", DIGEST_A);
        change(&mut body);
        body.to_string()
    };
    let cases: Vec<(&str, Request<Body>, StatusCode, String)> = vec![
        ("no token", post(None, good.clone()), StatusCode::UNAUTHORIZED, "missing Authorization: Bearer <token>".into()),
        ("unknown token", post(Some("not-a-token-at-all"), good.clone()), StatusCode::UNAUTHORIZED, "unknown CI token".into()),
        ("basic auth", Request::post("/v1/builds").header("authorization", "Basic Y2k6Y2k=").body(Body::from(good.clone())).unwrap(), StatusCode::UNAUTHORIZED, "the Authorization header is not Bearer <token>".into()),
        ("operator token", post(Some(READ_TOKEN), good.clone()), StatusCode::UNAUTHORIZED, "unknown CI token".into()),
        ("token for other repositories", post(Some(OTHER_CI_TOKEN), good.clone()), StatusCode::FORBIDDEN, "CI token \"other\" may not report builds for Codertocat/Hello-World".into()),
        ("malformed JSON", post(Some(CI_TOKEN), "{\"repository\":"), StatusCode::BAD_REQUEST, "malformed JSON: EOF while parsing a value at line 1 column 14".into()),
        ("form body", Request::post("/v1/builds").header("authorization", format!("Bearer {CI_TOKEN}")).header("content-type", "application/x-www-form-urlencoded").body(Body::from(good.clone())).unwrap(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type application/x-www-form-urlencoded is not supported: send application/json".into()),
        ("bad commit", post(Some(CI_TOKEN), with(&|b| b["commit"] = json!("HEAD"))), StatusCode::UNPROCESSABLE_ENTITY, "commit: \"HEAD\" is not a commit: expected 40 hex digits".into()),
        ("unknown platform", post(Some(CI_TOKEN), with(&|b| b["platform"] = json!("linux/riscv64"))), StatusCode::UNPROCESSABLE_ENTITY, "platform: linux/riscv64 is not one of Codertocat/Hello-World's platforms (linux/amd64, linux/arm64)".into()),
        ("image by tag", post(Some(CI_TOKEN), with(&|b| b["image"] = json!("ghcr.io/codertocat/ci-staging:latest"))), StatusCode::UNPROCESSABLE_ENTITY, "image: \"ghcr.io/codertocat/ci-staging:latest\" must be pinned by digest (…@sha256:…): a tag could change under us".into()),
        ("unconfigured repository", post(Some(CI_TOKEN), with(&|b| b["repository"] = json!("codertocat/other"))), StatusCode::UNPROCESSABLE_ENTITY, "repository: codertocat/other is not a configured repository".into()),
    ];
    for (what, request, status, message) in cases {
        let reply = app.send(request).await;
        assert_eq!(reply.status, status, "{what}: {}", reply.body);
        assert_eq!(reply.body["error"]["message"], message.as_str(), "{what}");
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(
                reply.headers.get("www-authenticate").unwrap(),
                "Bearer",
                "{what}"
            );
        }
    }
    let (releases, builds) = app.recorded().await;
    assert!(releases.is_empty() && builds.is_empty(), "{builds:?}");
}

#[tokio::test]
async fn listings_need_an_operator_token_and_a_configured_repository() {
    let app = app().await;
    let anonymous = app
        .send(get("/v1/builds?repository=Codertocat/Hello-World"))
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let ci = app
        .get_as("/v1/releases?repository=Codertocat/Hello-World", CI_TOKEN)
        .await;
    assert_eq!(
        ci.status,
        StatusCode::UNAUTHORIZED,
        "a CI token is not an operator token"
    );
    let unknown = app
        .get_as("/v1/builds?repository=someone/else", READ_TOKEN)
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let missing = app.get_as("/v1/builds", READ_TOKEN).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        missing.body["error"]["message"],
        "the repository query parameter is required"
    );
    let bad_limit = app
        .get_as(
            "/v1/builds?repository=Codertocat/Hello-World&limit=501",
            READ_TOKEN,
        )
        .await;
    assert_eq!(
        bad_limit.body["error"]["message"],
        "limit: \"501\" is not a number from 1 to 500"
    );
}

#[tokio::test]
async fn listings_page_with_a_cursor_and_filter_by_commit() {
    let app = app().await;
    app.send(post(
        Some(CI_TOKEN),
        report("linux/amd64", DIGEST_A).to_string(),
    ))
    .await;
    app.send(post(
        Some(CI_TOKEN),
        report("linux/arm64", DIGEST_A).to_string(),
    ))
    .await;
    let mut other = report("linux/amd64", DIGEST_B);
    other["commit"] = json!("0".repeat(40));
    app.send(post(Some(CI_TOKEN), other.to_string())).await;

    let first = app
        .get_as(
            "/v1/builds?repository=codertocat/hello-world&limit=2",
            READ_TOKEN,
        )
        .await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2);
    let next = first.body["next"].as_str().unwrap().to_owned();
    let second = app
        .get_as(
            &format!("/v1/builds?repository=codertocat/hello-world&limit=2&next={next}"),
            READ_TOKEN,
        )
        .await;
    assert_eq!(second.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(second.body["next"], Value::Null);

    let by_commit = app
        .get_as(
            &format!("/v1/builds?repository=Codertocat/Hello-World&commit={COMMIT}"),
            READ_TOKEN,
        )
        .await;
    assert_eq!(by_commit.body["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn an_image_outside_the_repository_s_sources_is_refused_and_nothing_is_stored() {
    let app = app().await;
    // Same registry, same credential, but another repository: hoist must not read it.
    for image in [
        format!("ghcr.io/private/svc@{DIGEST_A}"),
        format!("ghcr.io/codertocat/hello-world-private@{DIGEST_A}"),
        format!("ghcr.io/codertocat/ci@{DIGEST_A}"),
    ] {
        let mut body = report("linux/amd64", DIGEST_A);
        body["image"] = json!(image);
        let reply = app.send(post(Some(CI_TOKEN), body.to_string())).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{image}: {}",
            reply.body
        );
        assert_eq!(reply.body["error"]["code"], "source_not_allowed");
        assert_eq!(
            reply.body["error"]["message"],
            format!(
                "image: {image} is not in a source this repository allows (ghcr.io/codertocat/ci-*)"
            )
        );
    }
    let (_, builds) = app.recorded().await;
    assert!(builds.is_empty(), "{builds:?}");
}
