//! The ledger over REST: images, tags, tag events and digests, with auth and pagination.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use hoist_store::{MoveIntent, TagMove};
use serde_json::Value;

use super::*;

const IMAGE: &str = "ghcr.io/codertocat/hello-world";

fn digest(n: u32) -> String {
    format!("sha256:{n:064x}")
}

async fn publish(app: &TestApp, tag: &str, digest: &str, intent: MoveIntent) {
    let m = TagMove {
        image: IMAGE,
        tag,
        digest,
        immutable: false,
        intent,
        reason: "release v1.0.0",
        publication_id: None,
        release_tag: Some("v1.0.0"),
    };
    app.store.move_tag(&m).await.unwrap();
}

fn items(reply: &Reply) -> &Vec<Value> {
    reply.body["items"].as_array().unwrap()
}

#[tokio::test]
async fn images_list_every_configured_image_with_its_tag_count() {
    let app = app().await;
    publish(&app, "latest", &digest(1), MoveIntent::Publish).await;
    publish(&app, "1.0.0", &digest(1), MoveIntent::Publish).await;
    let reply = app.get_as("/v1/images", READ_TOKEN).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(items(&reply).len(), 1);
    assert_eq!(items(&reply)[0]["image"], IMAGE);
    assert_eq!(items(&reply)[0]["github"], "Codertocat/Hello-World");
    assert_eq!(items(&reply)[0]["tags"], 2);
}

#[tokio::test]
async fn tags_show_where_each_tag_points_and_page_by_name() {
    let app = app().await;
    for tag in ["1", "1.0", "1.0.0", "latest"] {
        publish(&app, tag, &digest(1), MoveIntent::Publish).await;
    }
    publish(&app, "latest", &digest(2), MoveIntent::Publish).await;
    let first = app
        .get_as(&format!("/v1/tags?image={IMAGE}&limit=3"), READ_TOKEN)
        .await;
    let names: Vec<&str> = items(&first)
        .iter()
        .map(|t| t["tag"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["1", "1.0", "1.0.0"]);
    assert_eq!(first.body["next"], "1.0.0");
    let rest = app
        .get_as(
            &format!("/v1/tags?image={IMAGE}&limit=3&next=1.0.0"),
            READ_TOKEN,
        )
        .await;
    assert_eq!(items(&rest).len(), 1);
    assert_eq!(items(&rest)[0]["tag"], "latest");
    assert_eq!(items(&rest)[0]["digest"], digest(2));
    assert_eq!(rest.body["next"], Value::Null);
}

#[tokio::test]
async fn tag_events_are_the_whole_history_optionally_for_one_tag() {
    let app = app().await;
    publish(&app, "latest", &digest(1), MoveIntent::Publish).await;
    publish(&app, "1", &digest(1), MoveIntent::Publish).await;
    publish(&app, "latest", &digest(2), MoveIntent::Publish).await;
    publish(&app, "latest", &digest(1), MoveIntent::Rollback).await;

    let all = app
        .get_as(&format!("/v1/tag-events?image={IMAGE}"), READ_TOKEN)
        .await;
    assert_eq!(items(&all).len(), 4);
    let latest = app
        .get_as(
            &format!("/v1/tag-events?image={IMAGE}&tag=latest"),
            READ_TOKEN,
        )
        .await;
    let kinds: Vec<&str> = items(&latest)
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["create", "move", "rollback"]);
    let last = &items(&latest)[2];
    assert_eq!(last["previous_digest"], digest(2));
    assert_eq!(last["digest"], digest(1));
    assert_eq!(last["release_tag"], "v1.0.0");

    let page = app
        .get_as(
            &format!("/v1/tag-events?image={IMAGE}&tag=latest&limit=2"),
            READ_TOKEN,
        )
        .await;
    let next = page.body["next"].as_str().unwrap().to_owned();
    let rest = app
        .get_as(
            &format!("/v1/tag-events?image={IMAGE}&tag=latest&limit=2&next={next}"),
            READ_TOKEN,
        )
        .await;
    assert_eq!(items(&rest).len(), 1);
    assert_eq!(items(&rest)[0]["kind"], "rollback");
}

#[tokio::test]
async fn a_digest_lists_the_tags_pointing_at_it() {
    let app = app().await;
    publish(&app, "1.0.0", &digest(1), MoveIntent::Publish).await;
    publish(&app, "latest", &digest(1), MoveIntent::Publish).await;
    publish(&app, "edge", &digest(2), MoveIntent::Publish).await;
    let reply = app
        .get_as(
            &format!("/v1/digests/{}?image={IMAGE}", digest(1)),
            READ_TOKEN,
        )
        .await;
    let names: Vec<&str> = items(&reply)
        .iter()
        .map(|t| t["tag"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["1.0.0", "latest"]);
    let bad = app
        .get_as(
            &format!("/v1/digests/sha256:nope?image={IMAGE}"),
            READ_TOKEN,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn ledger_endpoints_need_a_token_and_a_configured_image() {
    let app = app().await;
    for path in [
        "/v1/images".to_owned(),
        format!("/v1/tags?image={IMAGE}"),
        format!("/v1/tag-events?image={IMAGE}"),
        format!("/v1/digests/{}?image={IMAGE}", digest(1)),
    ] {
        let anonymous = app.send(get(&path)).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(anonymous.body["error"]["code"], "unauthorized");
        let wrong = app.get_as(&path, "not-a-real-token").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let unknown = app
        .get_as("/v1/tags?image=ghcr.io/someone/else", READ_TOKEN)
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        unknown.body["error"]["message"],
        "image ghcr.io/someone/else is not configured"
    );
    let malformed = app
        .get_as("/v1/tag-events?image=not-an-image", READ_TOKEN)
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    let missing = app.get_as("/v1/tags", READ_TOKEN).await;
    assert_eq!(
        missing.body["error"]["message"],
        "the image query parameter is required"
    );
}

#[tokio::test]
async fn retrying_a_publication_needs_an_admin_token_and_a_failed_publication() {
    let app = app().await;
    let request = |token: &str| {
        Request::post("/v1/publications/1/retry")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    let read = app.send(request(READ_TOKEN)).await;
    assert_eq!(read.status, StatusCode::FORBIDDEN);
    assert_eq!(
        read.body["error"]["message"],
        "retrying a publication needs an admin token; \"ops\" has the read role"
    );
    let missing = app.send(request(ADMIN_TOKEN)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    hoist_store::test_support::mark_published(
        &app.store,
        "Codertocat/Hello-World",
        IMAGE,
        &"a".repeat(40),
    )
    .await
    .unwrap();
    let done = app.send(request(ADMIN_TOKEN)).await;
    assert_eq!(done.status, StatusCode::CONFLICT);
    assert_eq!(
        done.body["error"]["message"],
        "publication 1 is succeeded; only failed, stalled or abandoned running publications are retried"
    );
}

#[tokio::test]
async fn forcing_a_tag_needs_an_admin_a_reason_and_a_digest_then_queues_a_job() {
    let app = app().await;
    let put = |token: &str, tag: &str, body: &str| {
        Request::put(format!("/v1/tags/{tag}?image={IMAGE}"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap()
    };
    let good = format!(
        r#"{{"digest":"{}","reason":"bad build shipped"}}"#,
        digest(7)
    );
    let read = app.send(put(READ_TOKEN, "1.2.3", &good)).await;
    assert_eq!(read.status, StatusCode::FORBIDDEN);
    let no_reason = app
        .send(put(
            ADMIN_TOKEN,
            "1.2.3",
            &format!(r#"{{"digest":"{}"}}"#, digest(7)),
        ))
        .await;
    assert_eq!(no_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        no_reason.body["error"]["message"],
        "reason: say why the tag is forced"
    );
    let bad_digest = app
        .send(put(
            ADMIN_TOKEN,
            "1.2.3",
            r#"{"digest":"sha256:1","reason":"x"}"#,
        ))
        .await;
    assert_eq!(bad_digest.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad_tag = app.send(put(ADMIN_TOKEN, "-bad", &good)).await;
    assert_eq!(bad_tag.status, StatusCode::UNPROCESSABLE_ENTITY);

    let queued = app.send(put(ADMIN_TOKEN, "1.2.3", &good)).await;
    assert_eq!(queued.status, StatusCode::ACCEPTED, "{}", queued.body);
    assert_eq!(queued.body["tag"], "1.2.3");
    assert_eq!(app.store.pending_jobs().await.unwrap(), 1);
}
