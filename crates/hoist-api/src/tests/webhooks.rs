//! `POST /webhooks/github` with real example payloads, signed here.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use hoist_domain::github::sign;
use serde_json::{Value, json};

use super::*;

const COMMIT: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";

fn delivery(event: &str, id: &str, body: &Value) -> Request<Body> {
    let bytes = body.to_string();
    Request::post("/webhooks/github")
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", id)
        .header("x-hub-signature-256", sign(SECRET, bytes.as_bytes()))
        .body(Body::from(bytes))
        .unwrap()
}

fn release(action: &str, tag: &str, target: &str) -> Value {
    let mut body = fixture("release.published");
    body["action"] = json!(action);
    body["release"]["tag_name"] = json!(tag);
    body["release"]["target_commitish"] = json!(target);
    if action == "unpublished" {
        body["release"]["draft"] = json!(true);
    }
    body
}

#[tokio::test]
async fn ping_answers_200_pong() {
    let app = app().await;
    let reply = app.send(delivery("ping", "p-1", &fixture("ping"))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["outcome"], "pong");
    let org = app
        .send(delivery("ping", "p-2", &fixture("ping.organization")))
        .await;
    assert_eq!(org.status, StatusCode::OK);
}

#[tokio::test]
async fn every_release_action_is_stored_and_published_is_acted_on() {
    let app = app().await;
    for (i, action) in ["created", "edited", "prereleased", "published", "released"]
        .iter()
        .enumerate()
    {
        let mut body = fixture(&format!("release.{action}"));
        body["release"]["target_commitish"] = json!(COMMIT);
        let reply = app
            .send(delivery("release", &format!("r-{i}"), &body))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::ACCEPTED,
            "{action}: {}",
            reply.body
        );
        assert_eq!(reply.body["outcome"], "accepted");
        assert_eq!(reply.body["release"]["state"], "published", "{action}");
    }
    let (releases, _) = app.recorded().await;
    assert_eq!(releases.len(), 1, "one release, updated by each action");
    assert_eq!(releases[0]["last_action"], "released");
    assert_eq!(releases[0]["commit"], COMMIT);
    assert_eq!(releases[0]["commit_source"], "target_commitish");

    let reply = app
        .send(delivery("release", "r-del", &fixture("release.deleted")))
        .await;
    assert_eq!(reply.body["release"]["state"], "deleted");
}

#[tokio::test]
async fn an_unpublished_release_is_withdrawn() {
    let app = app().await;
    app.send(delivery(
        "release",
        "r-1",
        &release("published", "v1.0.0", COMMIT),
    ))
    .await;
    let reply = app
        .send(delivery(
            "release",
            "r-2",
            &release("unpublished", "v1.0.0", COMMIT),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(reply.body["release"]["state"], "unpublished");
}

#[tokio::test]
async fn a_redelivery_is_answered_like_the_first_and_stores_nothing_new() {
    let app = app().await;
    let body = release("published", "v1.0.0", "master");
    let first = app.send(delivery("release", "same-id", &body)).await;
    let again = app.send(delivery("release", "same-id", &body)).await;
    assert_eq!(first.status, again.status);
    assert_eq!(first.body, again.body);
    assert!(first.headers.get("x-hoist-duplicate").is_none());
    assert_eq!(again.headers.get("x-hoist-duplicate").unwrap(), "true");
    // Even a different body under the same delivery id changes nothing.
    let other = app
        .send(delivery(
            "release",
            "same-id",
            &release("deleted", "v1.0.0", "master"),
        ))
        .await;
    assert_eq!(other.body, first.body);
    let (releases, _) = app.recorded().await;
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0]["state"], "published");
}

#[tokio::test]
async fn tag_pushes_resolve_a_waiting_release_in_either_order() {
    // Release first, then the tag push.
    let app1 = app().await;
    let waiting = app1
        .send(delivery(
            "release",
            "r-1",
            &release("published", "simple-tag", "master"),
        ))
        .await;
    assert!(
        waiting.body["reason"]
            .as_str()
            .unwrap()
            .starts_with("commit of simple-tag not yet confirmed by GitHub")
    );
    let pushed = app1
        .send(delivery("push", "p-1", &fixture("push.tag-created")))
        .await;
    assert_eq!(pushed.status, StatusCode::ACCEPTED);
    let (releases, _) = app1.recorded().await;
    assert_eq!(
        (
            releases[0]["commit"].as_str(),
            releases[0]["commit_source"].as_str()
        ),
        (Some(COMMIT), Some("push"))
    );

    // Tag push first, then the release.
    let app2 = app().await;
    app2.send(delivery("push", "p-1", &fixture("push.tag-created")))
        .await;
    let reply = app2
        .send(delivery(
            "release",
            "r-1",
            &release("published", "simple-tag", "master"),
        ))
        .await;
    assert_eq!(reply.body["release"]["commit"], COMMIT);
    assert_eq!(reply.body["release"]["commit_source"], "push");
}

#[tokio::test]
async fn an_annotated_tag_push_records_the_commit_not_the_tag_object() {
    let app = app().await;
    let mut push = fixture("push.tag-created");
    // For an annotated tag `after` is the tag object; head_commit.id is the commit.
    push["after"] = json!("1111111111111111111111111111111111111111");
    push["ref"] = json!("refs/tags/v2.0.0");
    let reply = app.send(delivery("push", "p-1", &push)).await;
    assert_eq!(
        reply.body["reason"],
        format!("tag v2.0.0 is commit {COMMIT}")
    );
}

#[tokio::test]
async fn branch_pushes_and_deleted_tags_are_recorded_as_such() {
    let app = app().await;
    let branch = app
        .send(delivery("push", "p-1", &fixture("push.branch")))
        .await;
    assert_eq!(branch.status, StatusCode::ACCEPTED);
    assert_eq!(branch.body["outcome"], "accepted");
    assert_eq!(
        branch.body["reason"],
        format!("branch master at {COMMIT} (1 new commit(s) in push order)")
    );
    // Another push naming the same commit (a new `before`: not a replay of the first).
    let mut later = fixture("push.branch");
    later["before"] = json!("1111111111111111111111111111111111111111");
    let again = app.send(delivery("push", "p-3", &later)).await;
    assert_eq!(
        again.body["reason"],
        format!("branch master at {COMMIT} (0 new commit(s) in push order)"),
        "a commit keeps the place of its first push"
    );
    let deleted = app
        .send(delivery("push", "p-2", &fixture("push.tag-deleted")))
        .await;
    assert_eq!(deleted.body["reason"], "tag simple-tag deleted");
}

#[tokio::test]
async fn an_unconfigured_repository_gets_202_and_an_audit_row_only() {
    let app = app().await;
    let mut body = release("published", "v1.0.0", COMMIT);
    body["repository"]["full_name"] = json!("someone/else");
    let reply = app.send(delivery("release", "r-1", &body)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(reply.body["outcome"], "ignored");
    assert_eq!(
        reply.body["reason"],
        "the repository is not configured in hoist"
    );
    // The audit row exists: the same delivery id is a duplicate now.
    let again = app.send(delivery("release", "r-1", &body)).await;
    assert_eq!(again.headers.get("x-hoist-duplicate").unwrap(), "true");
    assert!(app.recorded().await.0.is_empty());
}

#[tokio::test]
async fn other_event_types_get_202_and_are_not_stored() {
    let app = app().await;
    let reply = app
        .send(delivery("issues", "i-1", &fixture("issues.opened")))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(reply.body["reason"], "issues events are not handled");
    let again = app
        .send(delivery("issues", "i-1", &fixture("issues.opened")))
        .await;
    assert!(
        again.headers.get("x-hoist-duplicate").is_none(),
        "nothing was stored"
    );
}

#[tokio::test]
async fn form_encoded_deliveries_are_accepted() {
    let app = app().await;
    let payload = release("published", "v1.0.0", COMMIT).to_string();
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload)
        .finish();
    let request = Request::post("/webhooks/github")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-github-event", "release")
        .header("x-github-delivery", "f-1")
        .header("x-hub-signature-256", sign(SECRET, form.as_bytes()))
        .body(Body::from(form))
        .unwrap();
    let reply = app.send(request).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(reply.body["release"]["commit"], COMMIT);
}

#[tokio::test]
async fn the_previous_secret_still_verifies_during_rotation() {
    let app = app().await;
    let bytes = fixture("ping").to_string();
    let request = Request::post("/webhooks/github")
        .header("content-type", "application/json")
        .header("x-github-event", "ping")
        .header("x-github-delivery", "rot-1")
        .header("x-hub-signature-256", sign(OLD_SECRET, bytes.as_bytes()))
        .body(Body::from(bytes))
        .unwrap();
    assert_eq!(app.send(request).await.status, StatusCode::OK);
}

/// Each row of the bad-input table: the answer, and nothing stored (the same delivery id
/// is then accepted as new).
#[tokio::test]
async fn bad_deliveries_are_refused_and_store_nothing() {
    let app = app().await;
    let good = release("published", "v9.9.9", COMMIT);
    let bytes = good.to_string();
    let signed = sign(SECRET, bytes.as_bytes());
    let base = |id: &str| {
        Request::post("/webhooks/github")
            .header("x-github-event", "release")
            .header("x-github-delivery", id)
    };
    let cases: Vec<(&str, Request<Body>, StatusCode, &str)> = vec![
        (
            "no signature",
            base("bad")
                .header("content-type", "application/json")
                .body(Body::from(bytes.clone()))
                .unwrap(),
            StatusCode::UNAUTHORIZED,
            "the X-Hub-Signature-256 header is missing",
        ),
        (
            "malformed signature",
            base("bad")
                .header("content-type", "application/json")
                .header("x-hub-signature-256", "sha1=abc")
                .body(Body::from(bytes.clone()))
                .unwrap(),
            StatusCode::UNAUTHORIZED,
            "the X-Hub-Signature-256 header is not sha256=<64 hex digits>",
        ),
        (
            "wrong secret",
            base("bad")
                .header("content-type", "application/json")
                .header("x-hub-signature-256", sign("wrong", bytes.as_bytes()))
                .body(Body::from(bytes.clone()))
                .unwrap(),
            StatusCode::UNAUTHORIZED,
            "the signature does not match the body",
        ),
        (
            "tampered body",
            base("bad")
                .header("content-type", "application/json")
                .header("x-hub-signature-256", &signed)
                .body(Body::from(bytes.replace("v9.9.9", "v9.9.8")))
                .unwrap(),
            StatusCode::UNAUTHORIZED,
            "the signature does not match the body",
        ),
        (
            "no event header",
            Request::post("/webhooks/github")
                .header("x-github-delivery", "bad")
                .header("content-type", "application/json")
                .header("x-hub-signature-256", &signed)
                .body(Body::from(bytes.clone()))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "the x-github-event header is missing",
        ),
        (
            "no delivery header",
            Request::post("/webhooks/github")
                .header("x-github-event", "release")
                .header("content-type", "application/json")
                .header("x-hub-signature-256", &signed)
                .body(Body::from(bytes.clone()))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "the x-github-delivery header is missing",
        ),
        (
            "unsupported content type",
            base("bad")
                .header("content-type", "text/plain")
                .header("x-hub-signature-256", &signed)
                .body(Body::from(bytes.clone()))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type text/plain is not supported: send application/json or application/x-www-form-urlencoded",
        ),
        (
            "form without payload",
            base("bad")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-hub-signature-256", sign(SECRET, b"other=1"))
                .body(Body::from("other=1"))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "the form body has no payload field",
        ),
        (
            "malformed JSON",
            base("bad")
                .header("content-type", "application/json")
                .header("x-hub-signature-256", sign(SECRET, b"{\"action\":"))
                .body(Body::from("{\"action\":"))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "release payload: malformed JSON: EOF while parsing a value at line 1 column 10",
        ),
    ];
    for (what, request, status, message) in cases {
        let reply = app.send(request).await;
        assert_eq!(reply.status, status, "{what}: {}", reply.body);
        assert_eq!(reply.body["error"]["message"], message, "{what}");
        assert!(
            !reply.body.to_string().contains("v9.9.9"),
            "{what}: the body was echoed"
        );
    }
    let accepted = app.send(delivery("release", "bad", &good)).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
    assert!(
        accepted.headers.get("x-hoist-duplicate").is_none(),
        "a refused delivery stored nothing"
    );
    assert_eq!(app.recorded().await.0.len(), 1);
}

#[tokio::test]
async fn a_body_over_25_mib_is_refused_with_413() {
    let app = app().await;
    let huge = vec![b' '; BODY_LIMIT + 1];
    let request = Request::post("/webhooks/github")
        .header("content-type", "application/json")
        .header("x-github-event", "ping")
        .header("x-github-delivery", "big")
        .header("x-hub-signature-256", sign(SECRET, &huge))
        .body(Body::from(huge))
        .unwrap();
    let reply = app.send(request).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.body["error"]["code"], "body_too_large");
}

#[tokio::test]
async fn a_signed_body_replayed_under_a_new_delivery_id_changes_nothing() {
    let app = app().await;
    let published = release("published", "v1.0.0", COMMIT);
    app.send(delivery("release", "r-1", &published)).await;
    let mut unpublished = release("unpublished", "v1.0.0", COMMIT);
    unpublished["release"]["updated_at"] = json!("2019-05-16T00:00:00Z");
    app.send(delivery("release", "r-2", &unpublished)).await;

    // A captured copy of the first delivery, under an id GitHub never sent.
    let replay = app.send(delivery("release", "forged-9", &published)).await;
    assert_eq!(replay.status, StatusCode::ACCEPTED);
    assert_eq!(replay.headers["x-hoist-duplicate"], "true");
    assert_eq!(replay.body["outcome"], "ignored");
    assert_eq!(
        replay.body["reason"],
        "the same body was delivered before as r-1; a replay changes nothing"
    );
    let (releases, _) = app.recorded().await;
    assert_eq!(releases[0]["state"], "unpublished", "{releases:?}");
}

#[tokio::test]
async fn a_release_event_older_than_what_hoist_holds_changes_nothing() {
    let app = app().await;
    let mut newer = release("prereleased", "v1.0.0", COMMIT);
    newer["release"]["prerelease"] = json!(true);
    newer["release"]["updated_at"] = json!("2019-06-01T00:00:00Z");
    app.send(delivery("release", "r-1", &newer)).await;

    // Delivered late: GitHub made it before the change above.
    let mut older = release("released", "v1.0.0", COMMIT);
    older["release"]["updated_at"] = json!("2019-05-20T00:00:00Z");
    let late = app.send(delivery("release", "r-2", &older)).await;
    assert_eq!(late.status, StatusCode::ACCEPTED);
    assert_eq!(late.body["outcome"], "ignored");
    assert_eq!(
        late.body["reason"],
        "GitHub changed this release at 2019-05-20T00:00:00.000Z, before the change hoist holds \
         (2019-06-01T00:00:00.000Z): an older event changes nothing"
    );
    let (releases, _) = app.recorded().await;
    assert_eq!(releases[0]["prerelease"], true, "{releases:?}");
    assert_eq!(releases[0]["last_action"], "prereleased");
}

#[tokio::test]
async fn a_repository_with_its_own_secret_is_signed_for_by_it_alone() {
    const OWN: &str = "other-repository-secret";
    let extra = r#"
[[repository]]
github = "Codertocat/Other"
image = "ghcr.io/codertocat/other"
platforms = ["linux/amd64"]
webhook_secret_env = "OTHER_SECRET"
"#;
    let app = app_with(extra, &[("OTHER_SECRET", OWN)]).await;
    let signed = |secret: &str, id: &str, body: &Value| {
        let bytes = body.to_string();
        Request::post("/webhooks/github")
            .header("content-type", "application/json")
            .header("x-github-event", "release")
            .header("x-github-delivery", id)
            .header("x-hub-signature-256", sign(secret, bytes.as_bytes()))
            .body(Body::from(bytes))
            .unwrap()
    };
    let mut other = release("published", "v1.0.0", COMMIT);
    other["repository"]["full_name"] = json!("Codertocat/Other");
    let hello = release("published", "v1.0.0", COMMIT);

    // The global secret no longer speaks for Other.
    let forged = app.send(signed(SECRET, "d-1", &other)).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{}", forged.body);
    assert_eq!(
        forged.body["error"]["message"],
        "Codertocat/Other has a webhook secret of its own ([[repository]] webhook_secret_env); the global one does not cover it"
    );
    // Other's secret speaks for Other only.
    let crossed = app.send(signed(OWN, "d-2", &hello)).await;
    assert_eq!(crossed.status, StatusCode::UNAUTHORIZED, "{}", crossed.body);
    assert!(
        crossed.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("covers only that repository")),
        "{}",
        crossed.body
    );
    let (releases, _) = app.recorded().await;
    assert!(releases.is_empty(), "nothing stored: {releases:?}");

    let own = app.send(signed(OWN, "d-3", &other)).await;
    assert_eq!(own.status, StatusCode::ACCEPTED, "{}", own.body);
    let global = app.send(signed(SECRET, "d-4", &hello)).await;
    assert_eq!(global.status, StatusCode::ACCEPTED, "{}", global.body);
}

/// Bodies are buffered before their signature can be checked, so only `webhook_bodies` of
/// them at once: one more gets 503 with `Retry-After`, and stores nothing; once the slow
/// one is gone the next delivery is taken.
#[tokio::test]
async fn unauthenticated_bodies_are_buffered_only_so_many_at_once() {
    let app = app_with(
        "\n[server]\nwebhook_bodies = 1\nwebhook_body_timeout = \"1s\"\n",
        &[],
    )
    .await;
    // A sender that never finishes its body holds the only permit.
    let never_ends = futures_util::stream::pending::<Result<axum::body::Bytes, std::io::Error>>();
    let slow = Request::post("/webhooks/github")
        .header("content-type", "application/json")
        .header("x-github-event", "ping")
        .header("x-github-delivery", "slow-1")
        .header("x-hub-signature-256", "sha256=00")
        .body(Body::from_stream(never_ends))
        .unwrap();
    let slow = tokio::spawn(app.router.clone().oneshot(slow));
    // Until the slow request has taken the permit, deliveries still go through.
    let mut busy = None;
    for attempt in 0..1000 {
        let id = format!("p-busy-{attempt}");
        let reply = app.send(delivery("ping", &id, &fixture("ping"))).await;
        if reply.status == StatusCode::SERVICE_UNAVAILABLE {
            busy = Some((id, reply));
            break;
        }
        tokio::task::yield_now().await;
    }
    let (busy_id, busy) = busy.expect("a delivery refused while the slow body holds the permit");
    assert_eq!(busy.body["error"]["code"], "busy");
    assert_eq!(busy.headers["retry-after"], "1");
    // The slow sender loses its place after webhook_body_timeout, with 408.
    let answer = slow
        .await
        .expect("the slow request ends")
        .expect("an answer");
    assert_eq!(answer.status(), StatusCode::REQUEST_TIMEOUT);
    let body = to_bytes(answer.into_body(), usize::MAX).await.unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "body_timeout");
    let reply = app
        .send(delivery("ping", "p-after", &fixture("ping")))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // The refused delivery was not recorded: sent again, it is new, not a duplicate.
    let again = app.send(delivery("ping", &busy_id, &fixture("ping"))).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.headers.get("x-hoist-duplicate").is_none());
}
