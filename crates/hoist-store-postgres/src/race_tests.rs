//! Races between replicas that only PostgreSQL has (SQLite has one writer), made
//! deterministic by holding one side's transaction open on a connection of the test's own
//! and letting the other run into it.

use std::time::Duration;

use hoist_store::{Store, Target};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::PgOptions;
use crate::cluster::Cluster;

const REPOSITORY: &str = "Codertocat/Hello-World";
const IMAGE: &str = "ghcr.io/codertocat/hello-world";
const COMMIT: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
const INDEX: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

async fn open() -> (Store, String) {
    let url = Cluster::shared()
        .create_database()
        .expect("a test database");
    let store = crate::open(&PgOptions {
        url: url.clone(),
        password: None,
        max_connections: 4,
        acquire_timeout: Duration::from_secs(30),
    })
    .await
    .expect("open");
    (store, url)
}

/// Waits until some session of the database waits for a lock another holds.
async fn until_a_session_waits_for_a_lock(conn: &mut PgConnection) {
    for _ in 0..500 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut *conn)
        .await
        .expect("pg_stat_activity");
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no session came to wait for the lock within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_racing_the_tags_step_still_rolls_back_what_it_writes() {
    let (store, url) = open().await;
    // A release withdrawn on GitHub, whose publication is copying: GitHub's deletion is
    // stored, and the replica that runs the sync is about to look at the publication.
    store
        .fixture_execute(&format!(
            "INSERT INTO releases (id, repository, github_id, tag_name, target_commitish,
                                   prerelease, state, last_action, commit_sha)
             VALUES (1, '{REPOSITORY}', 1, 'v1.0.0', '{COMMIT}', 0, 'deleted', 'deleted',
                     '{COMMIT}');
             INSERT INTO publications (id, image, repository, commit_sha, release_id, state,
                                       step, index_digest)
             VALUES (1, '{IMAGE}', '{REPOSITORY}', '{COMMIT}', 1, 'running', 'copy',
                     '{INDEX}')"
        ))
        .await
        .unwrap();
    // Another replica's worker enters the tags step of that publication, as begin_tags
    // does, and has not committed yet: it decided before the deletion was seen.
    let mut worker = PgConnection::connect(&url).await.unwrap();
    let mut tags = worker.begin().await.unwrap();
    sqlx::query("UPDATE publications SET step = 'tags', version_tag = 'v1.0.0' WHERE id = 1")
        .execute(&mut *tags)
        .await
        .unwrap();
    let target = Target {
        image: IMAGE.to_owned(),
        default_branch: "main".to_owned(),
    };
    let sync = tokio::spawn({
        let store = store.clone();
        async move { store.resync_repository(&target, REPOSITORY).await }
    });
    let mut watcher = PgConnection::connect(&url).await.unwrap();
    until_a_session_waits_for_a_lock(&mut watcher).await;
    tags.commit().await.unwrap();
    sync.await.unwrap().unwrap();

    let publication = store.publication(1).await.unwrap().unwrap();
    assert_eq!(publication.state.as_str(), "withdrawn");
    let jobs = store
        .fixture_query("SELECT kind, payload FROM jobs ORDER BY id")
        .await
        .unwrap();
    let kinds: Vec<&str> = jobs.iter().filter_map(|j| j[0].as_deref()).collect();
    assert_eq!(
        kinds,
        ["rollback"],
        "the tags the worker goes on to write for v1.0.0 are rolled back: {jobs:?}"
    );
    store.close().await;
}
