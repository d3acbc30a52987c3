//! Two stores on one database, as two hoist replicas: what each does must be fenced,
//! deduplicated and serialized by the database. On SQLite both stores are one process's
//! file (one writer at a time); on PostgreSQL they are two pools with their own lease
//! owners, racing for real.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hoist_domain::job::Job;

use super::{count, execute, rows};
use crate::{MoveIntent, MoveOutcome, Store, TagMove};

const LEASE: Duration = Duration::from_secs(600);
const IMAGE: &str = "ghcr.io/octo-org/app";

fn job(n: i64) -> Job {
    Job::ResolveRelease { release_id: n }
}

/// A worker that stops heartbeating: its lease runs out. The database's clock decides
/// expiry, so the lease is moved into the past rather than waited out.
async fn expire_leases(store: &Store) {
    execute(
        store,
        "UPDATE jobs SET lease_until = '2000-01-01T00:00:00.000Z' WHERE state = 'running'",
    )
    .await;
}

pub async fn a_late_completion_after_the_lease_moved_is_refused_by_the_fence(a: &Store, b: &Store) {
    let id = a.enqueue_job(&job(1)).await.unwrap().unwrap();
    let first = a.claim_job(LEASE).await.unwrap().expect("a claims the job");
    assert_eq!((first.id, first.attempts), (id, 1));
    assert_eq!(b.claim_job(LEASE).await.unwrap(), None, "claimed once");

    expire_leases(a).await;
    assert_eq!(b.requeue_expired_jobs().await.unwrap(), 1, "b's rescuer");
    let second = b.claim_job(LEASE).await.unwrap().expect("b takes it over");
    assert_eq!((second.id, second.attempts), (id, 2), "the attempt counts");

    // a wakes up late: its heartbeat and its outcome are refused.
    assert!(!a.extend_lease(&first, LEASE).await.unwrap());
    a.finish_job(&first).await.unwrap();
    a.fail_job(&first, "late").await.unwrap();
    let state = rows(
        a,
        &format!("SELECT state, last_error FROM jobs WHERE id = {id}"),
    )
    .await;
    assert_eq!(state, [[Some("running".to_owned()), None]], "still b's");

    if a.kind() == "postgres" {
        // The claim is fenced by its owner too: a replica holding the very claim another
        // replica made (same id and attempt) cannot end it.
        assert!(!a.extend_lease(&second, LEASE).await.unwrap());
        a.finish_job(&second).await.unwrap();
        assert_eq!(
            rows(a, &format!("SELECT state FROM jobs WHERE id = {id}")).await,
            [[Some("running".to_owned())]]
        );
        assert_eq!(
            a.requeue_running_jobs().await.unwrap(),
            0,
            "a replica's start-up leaves the others' live leases alone"
        );
    }

    assert!(b.extend_lease(&second, LEASE).await.unwrap());
    b.finish_job(&second).await.unwrap();
    assert!(a.unfinished_jobs().await.unwrap().is_empty());
}

pub async fn two_replicas_claim_every_job_exactly_once(a: &Store, b: &Store) {
    const JOBS: i64 = 40;
    for n in 0..JOBS {
        a.enqueue_job(&job(n)).await.unwrap().unwrap();
    }
    let worker = |store: Store| async move {
        let mut mine = Vec::new();
        while let Some(claimed) = store.claim_job(LEASE).await.unwrap() {
            mine.push(claimed.id);
            store.finish_job(&claimed).await.unwrap();
        }
        mine
    };
    let (ours, theirs) = tokio::join!(
        tokio::spawn(worker(a.clone())),
        tokio::spawn(worker(b.clone()))
    );
    let (ours, theirs) = (ours.unwrap(), theirs.unwrap());
    let all: BTreeSet<i64> = ours.iter().chain(&theirs).copied().collect();
    assert_eq!(all.len(), ours.len() + theirs.len(), "no job ran twice");
    assert_eq!(all.len() as i64, JOBS, "every job ran");
    assert!(a.unfinished_jobs().await.unwrap().is_empty());
    assert_eq!(
        count(a, "jobs WHERE attempts <> 1").await,
        0,
        "each claimed once"
    );
}

pub async fn tag_moves_of_one_image_from_two_replicas_never_interleave(a: &Store, b: &Store) {
    // Both replicas move the same tags back and forth at once; the ledger must still be a
    // chain in which every event names the digest the one before it wrote.
    let mover = |store: Store, offset: u32| async move {
        for n in 0..30u32 {
            let digest = format!("sha256:{:064x}", (n + offset) % 4);
            let tag = ["latest", "1", "1.2"][(n % 3) as usize];
            let m = TagMove {
                image: IMAGE,
                tag,
                digest: &digest,
                immutable: false,
                intent: MoveIntent::Publish,
                reason: "release v1.2.3",
                publication_id: None,
                release_tag: Some("v1.2.3"),
            };
            let outcome = store.move_tag(&m).await.unwrap();
            assert!(matches!(
                outcome,
                MoveOutcome::Moved(_) | MoveOutcome::Unchanged
            ));
        }
    };
    let (x, y) = tokio::join!(
        tokio::spawn(mover(a.clone(), 0)),
        tokio::spawn(mover(b.clone(), 1))
    );
    x.unwrap();
    y.unwrap();

    let events = rows(
        a,
        &format!(
            "SELECT tag, digest, previous_digest, CAST(id AS TEXT) AS event_id FROM tag_events
             WHERE image = '{IMAGE}' ORDER BY tag_events.id"
        ),
    )
    .await;
    let mut replayed: BTreeMap<String, (String, String)> = BTreeMap::new();
    for e in &events {
        let (tag, digest, previous) = (e[0].clone().unwrap(), e[1].clone().unwrap(), e[2].clone());
        let before = replayed.insert(tag.clone(), (digest.clone(), e[3].clone().unwrap()));
        assert_eq!(
            before.map(|b| b.0),
            previous,
            "event {:?} of {tag} names the digest it replaced",
            e[3]
        );
        assert_ne!(
            previous.as_deref(),
            Some(digest.as_str()),
            "no event moves nowhere"
        );
    }
    for store in [a, b] {
        let view: BTreeMap<String, (String, String)> = store
            .list_tags(IMAGE, "", 100)
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.tag, (t.digest, t.event_id.to_string())))
            .collect();
        assert_eq!(
            view, replayed,
            "the view is the events replayed, from either replica"
        );
    }
}

pub async fn reconcilers_on_two_replicas_queue_one_job_per_publication(a: &Store, b: &Store) {
    for n in 0..10 {
        execute(
            a,
            &format!(
                "INSERT INTO publications (image, repository, commit_sha, state)
                 VALUES ('{IMAGE}', 'octo-org/app', '{n:040x}', 'waiting')"
            ),
        )
        .await;
    }
    let (x, y) = tokio::join!(
        tokio::spawn({
            let a = a.clone();
            async move { a.requeue_stranded_publications().await.unwrap() }
        }),
        tokio::spawn({
            let b = b.clone();
            async move { b.requeue_stranded_publications().await.unwrap() }
        })
    );
    assert_eq!(
        x.unwrap() + y.unwrap(),
        10,
        "one queued job each, whoever queued it"
    );
    assert_eq!(count(a, "jobs").await, 10);
    assert_eq!(
        count(
            a,
            "(SELECT publication_id FROM jobs GROUP BY publication_id HAVING count(*) > 1) AS twice"
        )
        .await,
        0
    );
    assert_eq!(b.requeue_stranded_publications().await.unwrap(), 0);
}

pub async fn a_job_queued_on_one_replica_wakes_the_idle_workers_of_the_other(a: &Store, b: &Store) {
    let woken = b.jobs_changed();
    tokio::pin!(woken);
    // Registered before the job is queued, as a worker does before it looks for work.
    woken.as_mut().enable();
    a.enqueue_job(&job(1)).await.unwrap().unwrap();
    tokio::time::timeout(Duration::from_secs(10), woken)
        .await
        .expect("b's workers are woken without waiting for their poll");
    let claimed = b.claim_job(LEASE).await.unwrap().expect("and find the job");
    b.finish_job(&claimed).await.unwrap();
}

pub async fn an_image_lock_on_one_replica_keeps_the_other_waiting_until_let_go(
    a: &Store,
    b: &Store,
) {
    let held = a.lock_image("ghcr.io/acme/app").await.unwrap();
    // The same image spelled otherwise: image names are compared without regard to case.
    let waiting = b.lock_image("ghcr.io/Acme/App");
    tokio::pin!(waiting);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut waiting)
            .await
            .is_err(),
        "b took the lock of an image a decides about"
    );
    // Another image is not held up, on either replica.
    drop(b.lock_image("ghcr.io/acme/other").await.unwrap());
    drop(a.lock_image("ghcr.io/acme/other").await.unwrap());
    drop(held);
    let taken = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("b goes on once a lets go")
        .unwrap();
    // And the other way round: now a waits for b.
    let again = a.lock_image("ghcr.io/acme/app");
    tokio::pin!(again);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut again)
            .await
            .is_err(),
        "a took the lock b holds"
    );
    drop(taken);
    let again = tokio::time::timeout(Duration::from_secs(30), again)
        .await
        .expect("a goes on once b lets go")
        .unwrap();
    drop(again);
}
