//! The durable job queue. A job is claimed with one `UPDATE ... RETURNING` on the single
//! writer, under a lease its worker renews while it runs; finishing, retrying or failing a
//! job is fenced by the claim (`attempts`), so a worker whose lease ran out and whose job
//! another took cannot record an outcome for it. At start [`Sqlite::requeue_running_jobs`]
//! hands out again every job a previous process left running (one process owns a SQLite
//! file); the reconciler calls [`Sqlite::requeue_expired_jobs`] for leases that ran out.
//!
//! A publication has at most one queued job (queueing another is a no-op) and one running:
//! a job is not claimed while another of its publication runs.

use std::time::Duration;

use hoist_domain::JobState;
use hoist_domain::job::Job;
use sqlx::SqliteConnection;

use crate::{Sqlite, StoreError};

/// A job a worker holds until its lease ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    pub id: i64,
    pub kind: String,
    pub payload: String,
    /// How many times it has been claimed, this time included; also the claim's fence.
    pub attempts: i64,
}

#[doc(hidden)]
pub fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

tokio::task_local! {
    /// Whether [`enqueue`] made a job due in the work [`noting_queued`] runs.
    static QUEUED: std::cell::Cell<bool>;
}

/// Runs `work` (a writer's transaction) and says whether it queued a job, so the writer
/// wakes the workers after committing only then: an ingest that queued nothing costs the
/// workers nothing. Kept per task, so one store's work never wakes another's workers.
#[doc(hidden)]
pub async fn noting_queued<T>(work: impl Future<Output = T>) -> (bool, T) {
    QUEUED
        .scope(std::cell::Cell::new(false), async {
            let out = work.await;
            (QUEUED.with(std::cell::Cell::get), out)
        })
        .await
}

/// Tells [`noting_queued`] that the work it runs queued a job.
#[doc(hidden)]
pub fn note_queued() {
    let _ = QUEUED.try_with(|queued| queued.set(true));
}

/// Queues `job` inside the caller's transaction, unless it is a publication's and that
/// publication already has a queued job (which will see everything this one would).
/// Returns the new job's id, or `None` when the publication's queued job stands for it.
pub(crate) async fn enqueue(
    conn: &mut SqliteConnection,
    job: &Job,
) -> Result<Option<i64>, StoreError> {
    note_queued();
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

impl Sqlite {
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
