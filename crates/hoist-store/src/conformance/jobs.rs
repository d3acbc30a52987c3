//! The job queue: claims, leases and their fence, one queued and one running job per
//! publication, what a restart re-queues, retention of finished jobs, and the reconciler's
//! stranded and stalled publications.

use std::time::Duration;

use hoist_domain::job::Job;
use hoist_domain::{PublicationEvent, PublicationState, Step};

use super::{count, execute, text};
use crate::{RetryOutcome, Store};

fn job(n: i64) -> Job {
    Job::ResolveRelease { release_id: n }
}

/// A new publication of `commit`, waiting for a worker: a build of the commit (as a branch
/// publication has) and its publication row, as the store creates them. Returns its id.
async fn publication(store: &Store, commit: &str) -> i64 {
    let digest = format!("sha256:{}", "d".repeat(64));
    let of_commit = format!("publications WHERE image = 'ghcr.io/o/a' AND commit_sha = '{commit}'");
    assert_eq!(count(store, &of_commit).await, 0, "a new publication");
    execute(
        store,
        &format!(
            "INSERT INTO builds (repository, commit_sha, platform, image, digest, reported_by)
             VALUES ('o/a', '{commit}', 'linux/amd64', 'ghcr.io/o/ci@{digest}', '{digest}', 'ci')"
        ),
    )
    .await;
    execute(
        store,
        &format!(
            "INSERT INTO publications (image, repository, commit_sha, state)
             VALUES ('ghcr.io/o/a', 'o/a', '{commit}', 'waiting')"
        ),
    )
    .await;
    text(store, &format!("SELECT CAST(id AS TEXT) FROM {of_commit}"))
        .await
        .and_then(|id| id.parse().ok())
        .expect("the publication's id")
}

pub async fn jobs_are_claimed_once_oldest_first_and_come_back_when_retried(store: &Store) {
    let first = store.enqueue_job(&job(1)).await.unwrap().unwrap();
    let second = store.enqueue_job(&job(2)).await.unwrap().unwrap();
    let lease = Duration::from_secs(60);
    let a = store.claim_job(lease).await.unwrap().unwrap();
    let b = store.claim_job(lease).await.unwrap().unwrap();
    assert_eq!((a.id, b.id), (first, second));
    assert_eq!(
        store.claim_job(lease).await.unwrap(),
        None,
        "nothing left to claim"
    );

    store
        .retry_job(&a, Duration::ZERO, "registry busy")
        .await
        .unwrap();
    let again = store.claim_job(lease).await.unwrap().unwrap();
    assert_eq!((again.id, again.attempts), (a.id, 2));
    // The first claim is gone: what its worker says no longer counts.
    store.finish_job(&a).await.unwrap();
    assert_eq!(store.pending_jobs().await.unwrap(), 2, "both still running");
    store
        .retry_job(&again, Duration::from_secs(3600), "later")
        .await
        .unwrap();
    assert_eq!(store.claim_job(lease).await.unwrap(), None, "not due yet");

    store.finish_job(&b).await.unwrap();
    assert_eq!(store.pending_jobs().await.unwrap(), 1);
}

pub async fn a_publication_has_one_queued_job_and_runs_one_job_at_a_time(store: &Store) {
    let id = publication(store, &"a".repeat(40)).await;
    let publish = Job::Publish { publication_id: id };
    assert!(store.enqueue_job(&publish).await.unwrap().is_some());
    assert_eq!(
        store.enqueue_job(&publish).await.unwrap(),
        None,
        "the queued job stands for the second"
    );
    let lease = Duration::from_secs(60);
    let running = store.claim_job(lease).await.unwrap().unwrap();
    assert!(store.enqueue_job(&publish).await.unwrap().is_some());
    assert_eq!(
        store.claim_job(lease).await.unwrap(),
        None,
        "not while the first runs"
    );
    assert!(store.extend_lease(&running, lease).await.unwrap());
    store.finish_job(&running).await.unwrap();
    let next = store.claim_job(lease).await.unwrap().unwrap();
    assert_eq!(Job::from_payload(&next.payload).unwrap(), publish);
}

pub async fn a_restart_requeues_running_jobs_and_old_finished_jobs_are_purged(store: &Store) {
    store.enqueue_job(&job(1)).await.unwrap();
    let claimed = store
        .claim_job(Duration::from_secs(600))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.requeue_expired_jobs().await.unwrap(),
        0,
        "its lease has not run out"
    );
    match store.kind() {
        // One hoist process owns a SQLite file: at start-up every job marked running was
        // left by a process that is gone, live lease or not.
        "sqlite" => assert_eq!(store.requeue_running_jobs().await.unwrap(), 1),
        // Replicas share a PostgreSQL database: a running job with a live lease is another
        // replica's, so a start-up re-queues only the leases that ran out.
        "postgres" => {
            assert_eq!(
                store.requeue_running_jobs().await.unwrap(),
                0,
                "a live lease is another replica's"
            );
            execute(
                store,
                "UPDATE jobs SET lease_until = '2000-01-01T00:00:00.000Z' WHERE state = 'running'",
            )
            .await;
            assert_eq!(store.requeue_running_jobs().await.unwrap(), 1);
        }
        other => panic!("a store of unknown kind {other:?}"),
    }
    let again = store
        .claim_job(Duration::from_secs(600))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.id, claimed.id);

    store.fail_job(&again, "gone for good").await.unwrap();
    assert_eq!(
        store
            .purge_finished_jobs(Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        store
            .purge_finished_jobs(Duration::from_millis(1))
            .await
            .unwrap(),
        1
    );
}

pub async fn a_waiting_or_running_publication_without_a_live_job_is_queued_again(store: &Store) {
    let waiting = publication(store, &"a".repeat(40)).await;
    let running = publication(store, &"b".repeat(40)).await;
    let done = publication(store, &"c".repeat(40)).await;
    for id in [running, done] {
        store
            .advance_publication(id, PublicationEvent::Start, Some(Step::Copy), None)
            .await
            .unwrap();
    }
    store
        .advance_publication(done, PublicationEvent::Fail, None, Some("refused"))
        .await
        .unwrap();
    assert_eq!(store.requeue_stranded_publications().await.unwrap(), 2);
    assert_eq!(
        store.requeue_stranded_publications().await.unwrap(),
        0,
        "each has a queued job now"
    );
    let mut queued = Vec::new();
    while let Some(job) = store.claim_job(Duration::from_secs(60)).await.unwrap() {
        queued.push(Job::from_payload(&job.payload).unwrap());
    }
    assert_eq!(
        queued,
        [
            Job::Publish {
                publication_id: waiting
            },
            Job::Publish {
                publication_id: running
            }
        ]
    );
    assert_eq!(
        store.requeue_stranded_publications().await.unwrap(),
        0,
        "a running job counts as live"
    );
}

pub async fn a_publication_waiting_past_the_timeout_stalls_and_a_retry_revives_it(store: &Store) {
    let id = publication(store, &"a".repeat(40)).await;
    store
        .advance_publication(
            id,
            PublicationEvent::BuildsMissing,
            Some(Step::Wait),
            Some("waiting for builds of linux/arm64"),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .stall_waiting_publications(Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        store
            .stall_waiting_publications(Duration::from_millis(1))
            .await
            .unwrap(),
        1
    );
    let stalled = store.publication(id).await.unwrap().unwrap();
    assert_eq!(stalled.state, PublicationState::Stalled);
    assert_eq!(
        stalled.error.as_deref(),
        Some("stalled: waiting for builds of linux/arm64")
    );

    assert!(matches!(
        store.retry_publication(id).await.unwrap(),
        RetryOutcome::Queued(_)
    ));
    assert_eq!(
        store.publication(id).await.unwrap().unwrap().state,
        PublicationState::Waiting
    );
    let job = store
        .claim_job(Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        Job::from_payload(&job.payload).unwrap(),
        Job::Publish { publication_id: id }
    );
}
