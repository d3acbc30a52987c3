//! The durable job queue. A job is claimed with one `UPDATE ... RETURNING` on the single
//! writer, under a lease its worker renews while it runs; finishing, retrying or failing a
//! job is fenced by the claim (`attempts`), so a worker whose lease ran out and whose job
//! another took cannot record an outcome for it. At start [`Store::requeue_running_jobs`]
//! hands out again every job a previous process left running (one process owns a SQLite
//! file); the reconciler calls [`Store::requeue_expired_jobs`] for leases that ran out.
//!
//! A publication has at most one queued job (queueing another is a no-op) and one running:
//! a job is not claimed while another of its publication runs.

use std::time::Duration;

use hoist_domain::JobState;
use hoist_domain::job::Job;
use sqlx::SqliteConnection;

use crate::{Store, StoreError};

/// A job a worker holds until its lease ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    pub id: i64,
    pub kind: String,
    pub payload: String,
    /// How many times it has been claimed, this time included; also the claim's fence.
    pub attempts: i64,
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

tokio::task_local! {
    /// Whether [`enqueue`] made a job due in the work [`noting_queued`] runs.
    static QUEUED: std::cell::Cell<bool>;
}

/// Runs `work` (a writer's transaction) and says whether it queued a job, so the writer
/// wakes the workers after committing only then: an ingest that queued nothing costs the
/// workers nothing. Kept per task, so one store's work never wakes another's workers.
pub(crate) async fn noting_queued<T>(work: impl Future<Output = T>) -> (bool, T) {
    QUEUED
        .scope(std::cell::Cell::new(false), async {
            let out = work.await;
            (QUEUED.with(std::cell::Cell::get), out)
        })
        .await
}

/// Queues `job` inside the caller's transaction, unless it is a publication's and that
/// publication already has a queued job (which will see everything this one would).
/// Returns the new job's id, or `None` when the publication's queued job stands for it.
pub(crate) async fn enqueue(
    conn: &mut SqliteConnection,
    job: &Job,
) -> Result<Option<i64>, StoreError> {
    let _ = QUEUED.try_with(|queued| queued.set(true));
    let kind = job.kind();
    let payload = job.to_payload();
    let publication = job.publication_id();
    let queued = JobState::Queued.as_str();
    let id = sqlx::query_scalar!(
        r#"INSERT INTO jobs (kind, payload, publication_id, state)
           SELECT ?1, ?2, ?3, ?4
           WHERE ?3 IS NULL
              OR NOT EXISTS (SELECT 1 FROM jobs WHERE publication_id = ?3 AND state = ?4)
           RETURNING id AS "id!""#,
        kind,
        payload,
        publication,
        queued
    )
    .fetch_optional(&mut *conn)
    .await?;
    if id.is_none() {
        // The queued job now stands for a new fact too: it is due now, not after the
        // backoff of whatever failed before.
        sqlx::query!(
            "UPDATE jobs SET run_after = min(run_after, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
             WHERE publication_id = ?1 AND state = ?2",
            publication,
            queued
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(id)
}

impl Store {
    /// Queues a job and wakes the workers.
    pub async fn enqueue_job(&self, job: &Job) -> Result<Option<i64>, StoreError> {
        let mut conn = self.writer.acquire().await?;
        let id = enqueue(&mut conn, job).await?;
        self.jobs_changed.notify_waiters();
        Ok(id)
    }

    /// Wakes idle workers; call after a transaction that queued jobs has committed.
    pub fn notify_workers(&self) {
        self.jobs_changed.notify_waiters();
    }

    /// Runs a writer's `work` and wakes the workers if it succeeded having queued a job.
    pub(crate) async fn waking_if_queued<T>(
        &self,
        work: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let (queued, out) = noting_queued(work).await;
        if queued && out.is_ok() {
            self.notify_workers();
        }
        out
    }

    /// Resolves when a job may have been queued. Create it *before* looking for work, so a
    /// job queued in between is not missed.
    pub fn jobs_changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.jobs_changed.notified()
    }

    /// Takes the oldest due job, if any, leasing it for `lease`. A publication's job waits
    /// while another job of the same publication runs.
    pub async fn claim_job(&self, lease: Duration) -> Result<Option<ClaimedJob>, StoreError> {
        let lease = seconds(lease);
        let (queued, running) = (JobState::Queued.as_str(), JobState::Running.as_str());
        let job = sqlx::query_as!(
            ClaimedJob,
            r#"UPDATE jobs SET state = ?2, attempts = attempts + 1,
                   lease_until = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || ?1 || ' seconds'),
                   updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
               WHERE id = (SELECT id FROM jobs AS j
                           WHERE j.state = ?3 AND j.run_after <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                             AND (j.publication_id IS NULL
                                  OR NOT EXISTS (SELECT 1 FROM jobs AS r
                                                 WHERE r.publication_id = j.publication_id
                                                   AND r.state = ?2))
                           ORDER BY j.run_after, j.id LIMIT 1)
               RETURNING id AS "id!", kind, payload, attempts"#,
            lease,
            running,
            queued
        )
        .fetch_optional(&self.writer)
        .await?;
        Ok(job)
    }

    /// Renews the lease of a job its worker still runs; false when the claim is lost.
    pub async fn extend_lease(
        &self,
        job: &ClaimedJob,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let lease = seconds(lease);
        let running = JobState::Running.as_str();
        let done = sqlx::query!(
            "UPDATE jobs SET lease_until = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || ?1 || ' seconds')
             WHERE id = ?2 AND state = ?3 AND attempts = ?4",
            lease,
            job.id,
            running,
            job.attempts
        )
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The job is done; it stays in the table for the API until purged.
    pub async fn finish_job(&self, job: &ClaimedJob) -> Result<(), StoreError> {
        self.end_claim(job, JobState::Done, None, Duration::ZERO)
            .await
    }

    /// Puts the job back, due after `delay`, remembering why it failed.
    pub async fn retry_job(
        &self,
        job: &ClaimedJob,
        delay: Duration,
        error: &str,
    ) -> Result<(), StoreError> {
        self.end_claim(job, JobState::Queued, Some(error), delay)
            .await
    }

    /// The job failed for good.
    pub async fn fail_job(&self, job: &ClaimedJob, error: &str) -> Result<(), StoreError> {
        self.end_claim(job, JobState::Failed, Some(error), Duration::ZERO)
            .await
    }

    /// Ends a claim, if it is still this worker's.
    async fn end_claim(
        &self,
        job: &ClaimedJob,
        state: JobState,
        error: Option<&str>,
        delay: Duration,
    ) -> Result<(), StoreError> {
        let (state, running) = (state.as_str(), JobState::Running.as_str());
        let delay = seconds(delay);
        let done = sqlx::query!(
            "UPDATE jobs SET state = ?1, lease_until = NULL, last_error = ?2,
                 run_after = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || ?3 || ' seconds'),
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE id = ?4 AND state = ?5 AND attempts = ?6",
            state,
            error,
            delay,
            job.id,
            running,
            job.attempts
        )
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            tracing::warn!(
                job = job.id,
                "the job's lease was lost before it ended; outcome not recorded"
            );
        }
        Ok(())
    }

    /// Re-queues the jobs whose worker stopped before finishing (their lease ran out).
    pub async fn requeue_expired_jobs(&self) -> Result<u64, StoreError> {
        let (queued, running) = (JobState::Queued.as_str(), JobState::Running.as_str());
        let done = sqlx::query!(
            "UPDATE jobs SET state = ?1, lease_until = NULL,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE state = ?2 AND lease_until < strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            queued,
            running
        )
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    /// Jobs queued or running: the queue depth.
    pub async fn pending_jobs(&self) -> Result<i64, StoreError> {
        let (queued, running) = (JobState::Queued.as_str(), JobState::Running.as_str());
        let n = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!: i64" FROM jobs WHERE state IN (?1, ?2)"#,
            queued,
            running
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(n)
    }

    /// At start-up: every job marked running belongs to a process that is gone (one hoist
    /// process owns a SQLite database), so all of them go back to the queue at once rather
    /// than waiting out their leases.
    pub async fn requeue_running_jobs(&self) -> Result<u64, StoreError> {
        let (queued, running) = (JobState::Queued.as_str(), JobState::Running.as_str());
        let done = sqlx::query!(
            "UPDATE jobs SET state = ?1, lease_until = NULL,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE state = ?2",
            queued,
            running
        )
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    /// Deletes done and failed jobs last touched longer ago than `retention`.
    pub async fn purge_finished_jobs(&self, retention: Duration) -> Result<u64, StoreError> {
        let seconds = retention.as_secs_f64();
        let (done_state, failed) = (JobState::Done.as_str(), JobState::Failed.as_str());
        let done = sqlx::query!(
            "DELETE FROM jobs WHERE state IN (?1, ?2)
               AND updated_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ?3 || ' seconds')",
            done_state,
            failed,
            seconds
        )
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    /// Jobs that are not done, for tests and operators: (kind, state, last error).
    pub async fn unfinished_jobs(
        &self,
    ) -> Result<Vec<(String, String, Option<String>)>, StoreError> {
        let done_state = JobState::Done.as_str();
        let rows = sqlx::query!(
            "SELECT kind, state, last_error FROM jobs WHERE state <> ? ORDER BY id",
            done_state
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.kind, r.state, r.last_error))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hoist_domain::job::Job;
    use hoist_domain::{PublicationEvent, PublicationState, Step};

    use crate::{Store, StoreOptions};

    async fn store(dir: &tempfile::TempDir) -> Store {
        Store::open(&StoreOptions {
            url: format!("sqlite://{}/hoist.db", dir.path().display()),
            read_connections: 1,
            busy_timeout: Duration::from_secs(5),
        })
        .await
        .unwrap()
    }

    fn job(n: i64) -> Job {
        Job::ResolveRelease { release_id: n }
    }

    async fn publication(store: &Store, commit: &str) -> i64 {
        let mut conn = store.writer().acquire().await.unwrap();
        // A build of the commit, as a branch publication has.
        let digest = format!("sha256:{}", "d".repeat(64));
        sqlx::query(
            "INSERT INTO builds (repository, commit_sha, platform, image, digest, reported_by)
             VALUES ('o/a', ?, 'linux/amd64', ?, ?, 'ci')",
        )
        .bind(commit)
        .bind(format!("ghcr.io/o/ci@{digest}"))
        .bind(&digest)
        .execute(&mut *conn)
        .await
        .unwrap();
        let (row, created) =
            crate::publications::ensure_publication(&mut conn, "ghcr.io/o/a", "o/a", commit, None)
                .await
                .unwrap();
        assert!(created);
        row.id
    }

    #[tokio::test]
    async fn jobs_are_claimed_once_oldest_first_and_come_back_when_retried() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
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

    #[tokio::test]
    async fn a_publication_has_one_queued_job_and_runs_one_job_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let id = publication(&store, &"a".repeat(40)).await;
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

    #[tokio::test]
    async fn a_restart_requeues_running_jobs_and_old_finished_jobs_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
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
        assert_eq!(store.requeue_running_jobs().await.unwrap(), 1);
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

    #[tokio::test]
    async fn a_waiting_or_running_publication_without_a_live_job_is_queued_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let waiting = publication(&store, &"a".repeat(40)).await;
        let running = publication(&store, &"b".repeat(40)).await;
        let done = publication(&store, &"c".repeat(40)).await;
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

    #[tokio::test]
    async fn a_publication_waiting_past_the_timeout_stalls_and_a_retry_revives_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let id = publication(&store, &"a".repeat(40)).await;
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
            crate::RetryOutcome::Queued(_)
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
}
