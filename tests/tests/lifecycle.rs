//! Publications as a state machine, in-process: every publication ends, every release edit
//! is honoured. Each test is a script of deliveries and build reports, with the workers
//! stepped explicitly, against real registries; each ends with `World::finish`.

use std::time::Duration;

use hoist_tests::app::{COMMIT_A, COMMIT_B, COMMIT_C, REPOSITORY, World, release_edited};
use hoist_tests::{Fault, Rule};

fn tag_ref(tag: &str) -> String {
    format!("refs/tags/{tag}")
}

/// The tags that point at `digest`, sorted.
fn tags_at(tags: &std::collections::BTreeMap<String, String>, digest: &str) -> Vec<String> {
    tags.iter()
        .filter(|(_, d)| *d == digest)
        .map(|(t, _)| t.clone())
        .collect()
}

/// Blob uploads to the target answer 503 more times than the registry client retries, so
/// the job itself fails and is retried from the queue.
fn uploads_unavailable(world: &World, times: usize) {
    world.target_proxy.add(Rule {
        method: "POST",
        path_contains: "/blobs/uploads/",
        times,
        fault: Fault::Unavailable,
    });
}

/// The usual order for a tag-triggered workflow: the release first, then each platform's
/// build as its CI job ends. The publication waits for the last one, which starts it.
async fn release_then_first_build(w: &World) {
    w.release("published", 1, "v1.2.3", "master", false).await;
    let reply = w.report(COMMIT_A, &tag_ref("v1.2.3"), "amd64").await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    w.run_jobs().await;
    assert_eq!(
        w.publication_states().await,
        [("v1.2.3 on a".into(), "waiting".into())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_down_long_enough_to_retry_the_job_still_gets_the_publication_builds_last() {
    let w = World::new().await;
    release_then_first_build(&w).await;
    uploads_unavailable(&w, 3);
    let reply = w.report(COMMIT_A, &tag_ref("v1.2.3"), "arm64").await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    w.run_jobs().await;

    let index = w.index_of(COMMIT_A).await;
    let tags = w.tags().await;
    assert_eq!(
        tags_at(&tags, &index),
        ["1", "1.2", "1.2.3", "latest", "sha-aaaaaaa"]
    );
    assert_eq!(
        w.publication_states().await,
        [("v1.2.3 on a".into(), "succeeded".into())]
    );
    assert_eq!(w.events().await.len(), 5, "one ledger event per tag");
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_down_long_enough_to_retry_the_job_still_gets_the_publication_builds_first() {
    let w = World::new().await;
    w.report_both(COMMIT_A, &tag_ref("v1.2.3")).await;
    uploads_unavailable(&w, 3);
    w.release("published", 1, "v1.2.3", "master", false).await;
    w.run_jobs().await;

    assert_eq!(
        w.publication_states().await,
        [("v1.2.3 on a".into(), "succeeded".into())]
    );
    assert_eq!(w.tags().await.len(), 5);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_dropped_mid_upload_is_taken_up_again_after_a_restart() {
    let w = World::new().await;
    release_then_first_build(&w).await;
    w.target_proxy.add(Rule {
        method: "POST",
        path_contains: "/blobs/uploads/",
        times: 1,
        fault: Fault::Delay(Duration::from_secs(30)),
    });
    let reply = w.report(COMMIT_A, &tag_ref("v1.2.3"), "arm64").await;
    assert_eq!(reply.status, 202, "{}", reply.body);

    // The worker is dropped while its first upload hangs: a crash, as far as the store
    // can tell.
    let worker = w.step_until_first_upload();
    worker.abort();
    let _ = worker.await;
    assert_eq!(
        w.publication_states().await,
        [("v1.2.3 on a".into(), "running".into())]
    );
    let id = w.publications().await[0]["id"].as_i64().expect("id");
    let busy = w.post(&format!("/v1/publications/{id}/retry")).await;
    assert_eq!(busy.status, 409, "its lease is still live: {}", busy.body);
    assert!(!w.step().await, "nothing else to run while the lease holds");

    // What `hoist serve` does at start: the dead process's jobs go back to the queue.
    assert_eq!(w.store.requeue_running_jobs().await.expect("requeue"), 1);
    w.run_jobs().await;
    assert_eq!(
        w.publication_states().await,
        [("v1.2.3 on a".into(), "succeeded".into())]
    );
    assert_eq!(w.events().await.len(), 5, "one ledger event per tag");
    w.finish().await;
}

/// The database stops taking writes while a job uploads (its lease cannot be renewed):
/// the worker stops the job itself once the lease runs out, long before the upload would
/// have finished, so no other worker can be running it beside this one; once the database
/// is back the job is taken up again and the publication ends right.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_that_cannot_renew_its_lease_stops_its_job_when_the_lease_runs_out() {
    let w = World::with_lease("", "", Duration::from_secs(3)).await;
    release_then_first_build(&w).await;
    w.target_proxy.add(Rule {
        method: "POST",
        path_contains: "/blobs/uploads/",
        times: 1,
        fault: Fault::Delay(Duration::from_secs(60)),
    });
    let reply = w.report(COMMIT_A, &tag_ref("v1.2.3"), "arm64").await;
    assert_eq!(reply.status, 202, "{}", reply.body);

    let worker = w.step_until_first_upload();
    let held = w.hold_the_database();
    // Renewals wait out SQLite's busy timeout (5 s) and fail: the job stops within a
    // renewal or two of its lease, not when the upload ends a minute later.
    let ran = tokio::time::timeout(Duration::from_secs(30), worker)
        .await
        .expect("the worker stopped the job it could no longer hold")
        .expect("the worker did not panic");
    assert!(ran, "it had claimed a job");
    drop(held);
    assert_eq!(
        w.publication_states().await,
        [("v1.2.3 on a".into(), "running".into())],
        "stopped, not failed: the job is still the queue's"
    );

    // The lease has run out: the reconciler puts the job back, and it completes.
    w.reconcile().await;
    w.run_jobs().await;
    assert_eq!(
        w.publication_states().await,
        [("v1.2.3 on a".into(), "succeeded".into())]
    );
    assert_eq!(w.events().await.len(), 5, "one ledger event per tag");
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renamed_release_drops_its_old_commit_and_publishes_the_new_tag_where_it_points() {
    let w = World::new().await;
    w.report_both(COMMIT_C, &tag_ref("v1.0.0")).await;
    w.release("published", 1, "v1.0.0", "master", false).await;
    w.report_both(COMMIT_A, &tag_ref("v1.2.3")).await;
    w.release("published", 2, "v1.2.3", "master", false).await;
    w.run_jobs().await;
    let (index_a, index_c) = (w.index_of(COMMIT_A).await, w.index_of(COMMIT_C).await);
    assert_eq!(w.tags().await["latest"], index_a);

    // The tag is renamed on GitHub: v1.2.3's commit says nothing about v1.2.4.
    w.deliver(
        "release",
        &release_edited(2, "v1.2.3", "v1.2.4", "master", false),
    )
    .await;
    let releases = w
        .get("/v1/releases?repository=Codertocat/Hello-World")
        .await;
    let renamed = &releases["items"][1];
    assert_eq!(renamed["tag"], "v1.2.4");
    assert_eq!(renamed["commit"], serde_json::Value::Null, "{renamed}");
    w.run_jobs().await;
    let tags = w.tags().await;
    assert_eq!(tags["1.2.3"], index_a, "a pinned tag stays");
    assert_eq!(tags["latest"], index_c, "v1.2.3 no longer holds latest");
    assert_eq!(tags["1"], index_c);
    assert!(
        !tags.contains_key("1.2.4"),
        "nothing says where v1.2.4 is yet"
    );

    // Where v1.2.4 is, CI says with its builds.
    w.report_both(COMMIT_B, &tag_ref("v1.2.4")).await;
    w.run_jobs().await;
    let index_b = w.index_of(COMMIT_B).await;
    let tags = w.tags().await;
    assert_eq!(
        tags_at(&tags, &index_b),
        ["1", "1.2", "1.2.4", "latest", "sha-bbbbbbb"]
    );
    assert_eq!(tags["1.2.3"], index_a);
    assert_eq!(
        w.publication_states().await,
        [
            ("v1.0.0 on c".into(), "succeeded".into()),
            ("v1.2.4 on a".into(), "withdrawn".into()),
            ("v1.2.4 on b".into(), "succeeded".into()),
        ]
    );
    let events = w.events().await;
    assert!(
        !events
            .iter()
            .any(|(tag, kind, _)| tag == "1.2.3" && kind != "create"),
        "1.2.3 was never re-pointed: {events:?}"
    );
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renamed_release_is_resolved_afresh_by_a_later_tag_push() {
    let w = World::new().await;
    w.report_both(COMMIT_A, &tag_ref("v1.2.3")).await;
    w.release("published", 1, "v1.2.3", "master", false).await;
    w.run_jobs().await;
    w.deliver(
        "release",
        &release_edited(1, "v1.2.3", "v2.0.0", "master", false),
    )
    .await;
    w.report_both(COMMIT_B, "refs/heads/release-2").await;
    w.push_tag("v2.0.0", COMMIT_B).await;
    w.run_jobs().await;

    let index_b = w.index_of(COMMIT_B).await;
    let tags = w.tags().await;
    assert_eq!(tags["2.0.0"], index_b);
    assert_eq!(tags["latest"], index_b);
    assert_eq!(tags["1.2.3"], w.index_of(COMMIT_A).await);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_deleted_while_its_publication_copies_gets_no_floating_tag() {
    let w = World::new().await;
    w.report_both(COMMIT_C, &tag_ref("v1.0.0")).await;
    w.release("published", 1, "v1.0.0", "master", false).await;
    w.run_jobs().await;
    let index_c = w.index_of(COMMIT_C).await;

    w.target_proxy.add(Rule {
        method: "POST",
        path_contains: "/blobs/uploads/",
        times: 1,
        fault: Fault::Delay(Duration::from_secs(2)),
    });
    w.report_both(COMMIT_A, &tag_ref("v2.0.0")).await;
    w.release("published", 2, "v2.0.0", "master", false).await;
    let worker = w.step_until_first_upload();
    // Deleted on GitHub while its images are still being copied.
    w.release("deleted", 2, "v2.0.0", "master", false).await;
    assert!(worker.await.expect("the worker"));
    w.run_jobs().await;

    let tags = w.tags().await;
    assert_eq!(tags["latest"], index_c);
    assert!(
        !tags.contains_key("2") && !tags.contains_key("2.0"),
        "{tags:?}"
    );
    assert_eq!(
        w.publication_states().await,
        [
            ("v1.0.0 on c".into(), "succeeded".into()),
            ("v2.0.0 on a".into(), "withdrawn".into()),
        ]
    );
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_github_flags_prerelease_competes_for_no_floating_tag() {
    let w = World::new().await;
    w.report_both(COMMIT_A, &tag_ref("v5.0.0")).await;
    w.release("published", 1, "v5.0.0", "master", true).await;
    w.report_both(COMMIT_B, &tag_ref("v1.2.3")).await;
    w.release("published", 2, "v1.2.3", "master", false).await;
    w.run_jobs().await;
    let (index_a, index_b) = (w.index_of(COMMIT_A).await, w.index_of(COMMIT_B).await);
    let tags = w.tags().await;
    assert_eq!(tags_at(&tags, &index_a), ["5.0.0", "sha-aaaaaaa"]);
    assert_eq!(tags["latest"], index_b, "v5.0.0 is a prerelease on GitHub");

    // Promoted: it takes latest and its own floating tags.
    w.release("released", 1, "v5.0.0", "master", false).await;
    w.run_jobs().await;
    let tags = w.tags().await;
    assert_eq!(
        tags_at(&tags, &index_a),
        ["5", "5.0", "5.0.0", "latest", "sha-aaaaaaa"]
    );

    // Flagged prerelease again: latest goes back.
    w.deliver(
        "release",
        &release_edited(1, "v5.0.0", "v5.0.0", "master", true),
    )
    .await;
    w.run_jobs().await;
    assert_eq!(w.tags().await["latest"], index_b);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_recreated_with_a_once_deleted_tag_counts_as_published_again() {
    let w = World::new().await;
    w.report_both(COMMIT_C, &tag_ref("v1.0.0")).await;
    w.release("published", 1, "v1.0.0", "master", false).await;
    w.report_both(COMMIT_A, &tag_ref("v2.0.0")).await;
    w.release("published", 2, "v2.0.0", "master", false).await;
    w.run_jobs().await;
    let (index_a, index_c) = (w.index_of(COMMIT_A).await, w.index_of(COMMIT_C).await);
    w.release("deleted", 2, "v2.0.0", "master", false).await;
    w.run_jobs().await;
    assert_eq!(w.tags().await["latest"], index_c);

    // GitHub gives the re-created release a new id; same tag, same commit, same index.
    w.release("published", 3, "v2.0.0", "master", false).await;
    w.run_jobs().await;
    assert_eq!(w.tags().await["latest"], index_a);

    // A lower release afterwards leaves latest on v2.0.0.
    w.report_both(COMMIT_B, &tag_ref("v1.5.0")).await;
    w.release("published", 4, "v1.5.0", "master", false).await;
    w.run_jobs().await;
    let tags = w.tags().await;
    assert_eq!(tags["latest"], index_a, "{tags:?}");
    assert_eq!(tags["1"], w.index_of(COMMIT_B).await);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_build_reported_again_with_the_default_branch_publishes_the_branch() {
    let w = World::new().await;
    w.report_both(COMMIT_A, "").await;
    w.run_jobs().await;
    assert!(
        w.publications().await.is_empty(),
        "no ref: nothing to publish"
    );

    // The same images again, now with the default branch: the commit is a branch build.
    w.report_both(COMMIT_A, "refs/heads/main").await;
    w.run_jobs().await;
    let tags = w.tags().await;
    assert_eq!(tags.keys().collect::<Vec<_>>(), ["sha-aaaaaaa"], "{tags:?}");
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_publication_is_retried_and_a_retried_succeeded_one_is_refused() {
    let w = World::new().await;
    w.report_both(COMMIT_A, &tag_ref("v1.2.3")).await;
    w.release("published", 1, "v1.2.3", "master", false).await;
    // The target refuses uploads for longer than the queue retries: the job runs out of
    // attempts and the publication fails, naming the step.
    uploads_unavailable(&w, 40);
    w.run_jobs().await;
    let publication = &w.publications().await[0];
    assert_eq!(publication["state"], "failed", "{publication}");
    assert_eq!(publication["step"], "copy");
    let id = publication["id"].as_i64().expect("id");

    w.target_proxy.clear_rules();
    let retried = w.post(&format!("/v1/publications/{id}/retry")).await;
    assert_eq!(retried.status, 202, "{}", retried.body);
    w.run_jobs().await;
    assert_eq!(
        w.publication_states().await,
        [("v1.2.3 on a".into(), "succeeded".into())]
    );
    let again = w.post(&format!("/v1/publications/{id}/retry")).await;
    assert_eq!(again.status, 409, "{}", again.body);
    w.finish_with_failed_jobs(1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn branch_tags_follow_push_order_not_the_order_ci_reports_in() {
    let w = World::with_repository(r#"tags = ["type=edge", "type=sha"]"#).await;
    w.push_branch("main", &[COMMIT_A, COMMIT_B]).await;
    // B's CI finishes first; A's arrives late.
    w.report_both(COMMIT_B, "refs/heads/main").await;
    w.run_jobs().await;
    w.report_both(COMMIT_A, "refs/heads/main").await;
    w.run_jobs().await;

    let tags = w.tags().await;
    let (index_a, index_b) = (w.index_of(COMMIT_A).await, w.index_of(COMMIT_B).await);
    assert_eq!(tags["edge"], index_b, "A is older on main: {tags:?}");
    assert_eq!(tags["sha-aaaaaaa"], index_a);
    assert_eq!(tags["sha-bbbbbbb"], index_b);

    // C is pushed after both: it takes edge whenever it is reported.
    w.push_branch("main", &[COMMIT_C]).await;
    w.report_both(COMMIT_C, "refs/heads/main").await;
    w.run_jobs().await;
    assert_eq!(w.tags().await["edge"], w.index_of(COMMIT_C).await);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_pushes_branch_tags_follow_the_order_ci_reported_in() {
    let w = World::with_repository(r#"tags = ["type=edge", "type=sha"]"#).await;
    w.report_both(COMMIT_A, "refs/heads/main").await;
    w.report_both(COMMIT_B, "refs/heads/main").await;
    w.run_jobs().await;
    assert_eq!(w.tags().await["edge"], w.index_of(COMMIT_B).await);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_released_and_built_on_the_default_branch_has_one_index() {
    let w = World::new().await;
    w.release("published", 1, "v1.0.0", COMMIT_A, false).await;
    w.report_both(COMMIT_A, "refs/heads/main").await;
    w.run_jobs().await;

    let tags = w.tags().await;
    let digests: std::collections::BTreeSet<&String> = tags.values().collect();
    assert_eq!(digests.len(), 1, "one index for the commit: {tags:?}");
    assert_eq!(
        tags.keys().collect::<Vec<_>>(),
        ["1", "1.0", "1.0.0", "latest", "sha-aaaaaaa"]
    );
    let events = w.events().await;
    assert!(
        !events
            .iter()
            .any(|(tag, kind, _)| tag == "sha-aaaaaaa" && kind == "move"),
        "sha-aaaaaaa never flipped: {events:?}"
    );
    assert_eq!(
        w.publication_states().await,
        [
            ("v1.0.0 on a".into(), "succeeded".into()),
            ("branch on a".into(), "succeeded".into()),
        ]
    );
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_built_on_the_default_branch_then_released_ends_with_one_index() {
    let w = World::with_repository(
        r#"tags = ["type=semver,pattern={{version}}", "type=edge", "type=sha"]"#,
    )
    .await;
    w.report_both(COMMIT_A, "refs/heads/main").await;
    w.run_jobs().await;
    w.release("published", 1, "v1.0.0", COMMIT_A, false).await;
    w.run_jobs().await;

    let tags = w.tags().await;
    let digests: std::collections::BTreeSet<&String> = tags.values().collect();
    assert_eq!(
        digests.len(),
        1,
        "the branch's tags moved to the release's index: {tags:?}"
    );
    assert_eq!(
        tags.keys().collect::<Vec<_>>(),
        ["1.0.0", "edge", "latest", "sha-aaaaaaa"]
    );

    // An older commit of the branch, reported late, leaves edge on the released one.
    w.push_branch("main", &[COMMIT_C, COMMIT_A]).await;
    w.report_both(COMMIT_C, "refs/heads/main").await;
    w.run_jobs().await;
    let tags = w.tags().await;
    assert_eq!(tags["edge"], tags["1.0.0"], "{tags:?}");
    assert_eq!(tags["sha-ccccccc"], w.index_of(COMMIT_C).await);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_renamed_while_it_copies_publishes_only_its_new_name() {
    let w = World::new().await;
    w.report_both(COMMIT_A, "").await;
    w.target_proxy.add(Rule {
        method: "POST",
        path_contains: "/blobs/uploads/",
        times: 1,
        fault: Fault::Delay(Duration::from_secs(2)),
    });
    // Its target is the commit itself, so the new name resolves to the same commit at once.
    w.release("published", 1, "v1.0.0", COMMIT_A, false).await;
    let worker = w.step_until_first_upload();
    w.deliver(
        "release",
        &release_edited(1, "v1.0.0", "v1.0.1", COMMIT_A, false),
    )
    .await;
    assert!(worker.await.expect("the worker"));
    w.run_jobs().await;

    let tags = w.tags().await;
    assert_eq!(
        tags.keys().collect::<Vec<_>>(),
        ["1", "1.0", "1.0.1", "latest", "sha-aaaaaaa"],
        "never 1.0.0: {tags:?}"
    );
    assert_eq!(
        w.publication_states().await,
        [("v1.0.1 on a".into(), "succeeded".into())]
    );
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_withdrawn_release_gives_back_only_the_floating_tags_it_still_holds() {
    let w = World::new().await;
    w.report_both(COMMIT_C, &tag_ref("v1.0.0")).await;
    w.release("published", 1, "v1.0.0", "master", false).await;
    w.report_both(COMMIT_A, &tag_ref("v1.1.0")).await;
    w.release("published", 2, "v1.1.0", "master", false).await;
    w.run_jobs().await;
    let (index_a, index_c) = (w.index_of(COMMIT_A).await, w.index_of(COMMIT_C).await);
    // An operator pins latest to v1.0.0's index by hand.
    let forced = w.force("latest", &index_c).await;
    assert_eq!(forced.status, 202, "{}", forced.body);
    w.run_jobs().await;

    w.release("deleted", 2, "v1.1.0", "master", false).await;
    w.run_jobs().await;
    let tags = w.tags().await;
    assert_eq!(tags["latest"], index_c, "the operator's latest stands");
    assert_eq!(tags["1"], index_c, "1 goes back to v1.0.0");
    assert_eq!(tags["1.1"], index_a, "nothing else is in 1.1's scope");
    let events = w.events().await;
    let latest: Vec<_> = events.iter().filter(|(t, _, _)| t == "latest").collect();
    assert_eq!(
        latest.len(),
        3,
        "create, move, force; no rollback: {latest:?}"
    );
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_renamed_to_a_lower_version_on_its_commit_gives_back_what_it_held() {
    let w = World::new().await;
    w.report_both(COMMIT_C, &tag_ref("v2.1.0")).await;
    w.release("published", 1, "v2.1.0", "master", false).await;
    w.report_both(COMMIT_A, "").await;
    w.release("published", 2, "v2.2.0", COMMIT_A, false).await;
    w.run_jobs().await;
    let tags = w.tags().await;
    let (old_index, index_c) = (tags["2.2.0"].clone(), tags["2.1.0"].clone());
    assert_eq!(tags["latest"], old_index);

    // The rollback's first manifest PUT fails, so the re-run of the renamed publication
    // (a new index: its version annotation changed) goes first.
    w.target_proxy.add(Rule {
        method: "PUT",
        path_contains: "/manifests/",
        times: 2,
        fault: Fault::Unavailable,
    });
    w.deliver(
        "release",
        &release_edited(2, "v2.2.0", "v1.9.0", COMMIT_A, false),
    )
    .await;
    w.run_jobs().await;
    let tags = w.tags().await;
    let new_index = tags["1.9.0"].clone();
    assert_ne!(new_index, old_index);
    assert_eq!(
        tags["latest"], index_c,
        "v2.1.0 is the highest left: {tags:?}"
    );
    assert_eq!(tags["2"], index_c);
    assert_eq!(tags["2.2"], old_index, "nothing else is in 2.2's scope");
    assert_eq!(tags["2.2.0"], old_index, "pinned");
    assert_eq!(tags["1"], new_index);
    assert_eq!(tags["1.9"], new_index);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_deleted_before_its_builds_arrive_publishes_nothing() {
    let w = World::new().await;
    w.release("published", 1, "v2.0.0", "master", false).await;
    w.release("deleted", 1, "v2.0.0", "master", false).await;
    w.report_both(COMMIT_A, &tag_ref("v2.0.0")).await;
    w.run_jobs().await;
    assert!(w.tags().await.is_empty());
    assert!(
        w.publications().await.is_empty(),
        "a deleted release gets no publication"
    );
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_flagged_prerelease_whose_builds_come_last_still_holds_no_floating_tag() {
    let w = World::new().await;
    w.release("published", 1, "v5.0.0", "master", true).await;
    w.release("published", 2, "v1.2.3", "master", false).await;
    w.report_both(COMMIT_A, &tag_ref("v5.0.0")).await;
    w.run_jobs().await;
    w.report_both(COMMIT_B, &tag_ref("v1.2.3")).await;
    w.run_jobs().await;
    let tags = w.tags().await;
    assert_eq!(tags["latest"], w.index_of(COMMIT_B).await, "{tags:?}");
    assert_eq!(
        tags_at(&tags, &w.index_of(COMMIT_A).await),
        ["5.0.0", "sha-aaaaaaa"]
    );
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_from_outside_the_sources_is_not_copied_even_if_it_was_recorded() {
    let w = World::new().await;
    // Recorded under an earlier config that allowed it: the copy step checks again.
    let target = hoist_store::Target {
        image: w.image(),
        default_branch: "main".to_owned(),
    };
    let digests = w.builds[COMMIT_A].clone();
    let claims: hoist_domain::ci::ActionsClaims =
        serde_json::from_value(w.issuer.claims(REPOSITORY, COMMIT_A, &tag_ref("v1.0.0")))
            .expect("claims");
    let signed = hoist_domain::ci::Provenance::Signed {
        identity: (&claims).into(),
    };
    for (platform, digest) in [
        ("linux/amd64", &digests.amd64),
        ("linux/arm64", &digests.arm64),
    ] {
        let report = hoist_domain::build::BuildReport {
            repository: "Codertocat/Hello-World".parse().expect("repository"),
            commit: COMMIT_A.parse().expect("commit"),
            git_ref: Some(tag_ref("v1.0.0")),
            platform: Some(platform.parse().expect("platform")),
            image: format!(
                "{}/private/svc@{digest}",
                w.image().split('/').next().expect("host")
            )
            .parse()
            .expect("image"),
        };
        w.store
            .record_build(&target, &report, &signed)
            .await
            .expect("recorded");
    }
    w.release("published", 1, "v1.0.0", "master", false).await;
    w.run_jobs().await;
    let publication = &w.publications().await[0];
    assert_eq!(publication["state"], "failed", "{publication}");
    // Refused where its builds are first looked at, before anything is read.
    assert_eq!(publication["step"], "wait");
    assert!(
        publication["error"]
            .as_str()
            .is_some_and(|e| e.contains("is not in a source this repository allows")),
        "{publication}"
    );
    assert!(w.tags().await.is_empty());
    assert!(
        !w.target_proxy
            .seen()
            .iter()
            .any(|s| s.path.contains("/private/svc/")),
        "hoist never read the other repository"
    );
    w.finish().await;
}
