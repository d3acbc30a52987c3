use axum::body::Body;
use axum::http::{Request, StatusCode, header};

use super::*;

#[tokio::test]
async fn healthz_reports_the_stamped_build() {
    let app = app().await;
    let Reply { status, body, .. } = app.send(get("/healthz")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], "9.9.9");
    assert_eq!(body["git_sha"], "abc1234");
    assert_eq!(body["built_at"], "2026-01-01T00:00:00Z");
}

#[tokio::test]
async fn readyz_writes_to_the_database_and_reports_draining() {
    let app = app().await;
    let Reply { status, body, .. } = app.send(get("/readyz")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["database"], "writable");
    let checked_at = body["checked_at"].as_str().unwrap();
    assert!(
        checked_at.ends_with('Z') && checked_at.len() == 24,
        "{checked_at}"
    );

    app.shutdown.cancel();
    let Reply { status, body, .. } = app.send(get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "not_ready");
    assert_eq!(body["error"]["message"], "shutting down");
}

#[tokio::test]
async fn readyz_fails_when_the_database_cannot_be_written() {
    let app = app().await;
    app.store.close().await;
    let Reply { status, body, .. } = app.send(get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["message"], "database is not writable");
}

#[tokio::test]
async fn unknown_paths_and_methods_get_the_error_envelope() {
    let app = app().await;
    let Reply { status, body, .. } = app.send(get("/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");

    let Reply { status, body, .. } = app
        .send(Request::delete("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_keeps_the_callers() {
    let app = app().await;
    let Reply { headers, .. } = app.send(get("/healthz")).await;
    let generated = headers.get("x-request-id").unwrap().to_str().unwrap();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");

    let request = Request::get("/nope")
        .header("x-request-id", "caller-42")
        .body(Body::empty())
        .unwrap();
    let Reply { headers, .. } = app.send(request).await;
    assert_eq!(headers.get("x-request-id").unwrap(), "caller-42");
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_before_it_is_read() {
    let app = app().await;
    let request = Request::post("/healthz")
        .header(header::CONTENT_LENGTH, (BODY_LIMIT + 1).to_string())
        .body(Body::from(vec![b'x'; BODY_LIMIT + 1]))
        .unwrap();
    let Reply { status, body, .. } = app.send(request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "body_too_large");
}

#[tokio::test]
async fn metrics_report_publications_jobs_and_tags_in_prometheus_text() {
    let app = app().await;
    hoist_store::test_support::mark_published(
        &app.store,
        "Codertocat/Hello-World",
        "ghcr.io/codertocat/hello-world",
        &"a".repeat(40),
    )
    .await
    .unwrap();
    let response = app.router.clone().oneshot(get("/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    for line in [
        "hoist_build_info{version=\"9.9.9\",git_sha=\"abc1234\"} 1",
        "hoist_publications{state=\"succeeded\"} 1",
        "hoist_publications{state=\"failed\"} 0",
        "hoist_job_queue_depth 0",
        "hoist_blobs_total{how=\"mounted\"} 0",
        "hoist_publication_step_duration_seconds_count{step=\"copy\"} 0",
        "hoist_publication_step_duration_seconds_bucket{step=\"tags\",le=\"+Inf\"} 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
}

/// A probe storm costs the writer one write a second: probes within a second of a check
/// share its answer.
#[tokio::test]
async fn readyz_checks_the_database_at_most_once_a_second() {
    let app = app().await;
    let probes = (0..20).map(|_| app.send(get("/readyz")));
    let answers: Vec<Reply> = futures_util::future::join_all(probes).await;
    let checked: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            r.body["checked_at"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(checked.len(), 1, "one write for twenty probes: {checked:?}");
    // A second later, a probe writes again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = app.send(get("/readyz")).await;
    let later_at = later.body["checked_at"].as_str().unwrap();
    assert!(
        checked.iter().all(|c| c.as_str() < later_at),
        "{later_at} after {checked:?}"
    );
}
