//! The durable job queue, shared by every replica. A job is claimed with one
//! `UPDATE ... RETURNING` whose candidate is picked `FOR UPDATE SKIP LOCKED`, so replicas
//! claiming at once take different jobs and never wait on each other, under a lease naming
//! this process (`locked_by`) that its worker renews while it runs. Renewing, finishing,
//! retrying or failing a job is fenced by the claim: the attempt number *and* the owner, so
//! a worker whose lease ran out and whose job another replica took cannot record an outcome
//! for it.
//!
//! What differs from SQLite:
//! - Every replica's reconciler calls [`Postgres::requeue_expired_jobs`]; at start
//!   [`Postgres::requeue_running_jobs`] does the same, since other replicas' running jobs
//!   are alive (on SQLite one process owns the file and re-queues them all).
//! - A publication's one queued job and one running job are the database's to enforce
//!   (partial unique indexes `jobs_one_queued` and `jobs_one_running`): queueing uses
//!   `ON CONFLICT ... DO NOTHING`, a claim that loses a race for a publication finds
//!   nothing, and a job that would go back to the queue while its publication already has
//!   a queued job ends as `done` instead: that job is the same work (a publication's jobs
//!   are all `publish` of it) and stands for it, as in [`enqueue`].
//! - Queueing a job also sends `NOTIFY hoist_jobs` in the caller's transaction, so idle
//!   workers of every replica wake when it commits.

use std::time::Duration;

use hoist_domain::JobState;
use hoist_domain::job::Job;
use hoist_store::jobs::{note_queued, noting_queued, seconds};
use hoist_store::{ClaimedJob, StoreError};
use sqlx::PgConnection;

use crate::Postgres;

/// How many times a statement that re-queues jobs is run again when it raced a job being
/// queued for the same publication (a unique violation on `jobs_one_queued`): the second
/// run sees the queued job, which cannot be claimed meanwhile (its publication's job is
/// still running), and lets it stand for the re-queued one.
const REQUEUE_TRIES: u32 = 3;

/// Whether `e` is a unique violation (SQLSTATE 23505): here, two jobs of one publication
/// queued or running at once, which the partial unique indexes refuse.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Wakes the idle workers of every replica (this one's too, through its `LISTEN`) once
/// the caller's transaction commits; outside a transaction, now.
async fn wake_replicas(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query!(
        r#"SELECT 1 AS "sent!" FROM (SELECT pg_notify($1, '')) AS n"#,
        crate::JOBS_CHANNEL
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(())
}

/// Queues `job` inside the caller's transaction, unless it is a publication's and that
/// publication already has a queued job (which will see everything this one would).
/// Returns the new job's id, or `None` when the publication's queued job stands for it.
pub(crate) async fn enqueue(conn: &mut PgConnection, job: &Job) -> Result<Option<i64>, StoreError> {
    note_queued();
    let kind = job.kind();
    let payload = job.to_payload();
    let publication = job.publication_id();
    let queued = JobState::Queued.as_str();
    loop {
        // The partial unique index `jobs_one_queued` is the check: a concurrent transaction
        // queueing for the same publication makes this one wait for its outcome.
        let id = sqlx::query_scalar!(
            r#"INSERT INTO jobs (kind, payload, publication_id, state)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (publication_id) WHERE state = 'queued' DO NOTHING
               RETURNING id"#,
            kind,
            payload,
            publication,
            queued
        )
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(id) = id {
            wake_replicas(conn).await?;
            return Ok(Some(id));
        }
        // The queued job now stands for a new fact too: it is due now, not after the
        // backoff of whatever failed before. The update also locks it until the caller
        // commits, so no replica claims it before it can see that fact; the workers are
        // woken even if it was due already, since one may have skipped it while locked.
        let stands = sqlx::query_scalar!(
            "UPDATE jobs SET run_after = least(run_after, hoist_now())
             WHERE publication_id = $1 AND state = $2
             RETURNING id",
            publication,
            queued
        )
        .fetch_optional(&mut *conn)
        .await?;
        if stands.is_some() {
            wake_replicas(conn).await?;
            return Ok(None);
        }
        // Another replica claimed the queued job in between: it may not see this
        // transaction's facts, so queue one that will.
    }
}

impl Postgres {
    /// Queues a job and wakes the workers.
    pub async fn enqueue_job(&self, job: &Job) -> Result<Option<i64>, StoreError> {
        let mut conn = self.writer.acquire().await?;
        let id = enqueue(&mut conn, job).await?;
        self.jobs_changed.notify_waiters();
        Ok(id)
    }

    /// Wakes idle workers of this process; call after a transaction that queued jobs has
    /// committed (the other replicas' are woken by the `NOTIFY` it sent).
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

    /// Resolves when a job may have been queued, by this replica or another. Create it
    /// *before* looking for work, so a job queued in between is not missed.
    pub fn jobs_changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.jobs_changed.notified()
    }

    /// Takes the oldest due job, if any, leasing it to this replica for `lease`. A
    /// publication's job waits while another job of the same publication runs. Jobs other
    /// replicas are claiming right now are skipped, not waited for; a claim that loses a
    /// race for a publication (the unique index on its running job) finds nothing.
    pub async fn claim_job(&self, lease: Duration) -> Result<Option<ClaimedJob>, StoreError> {
        let lease = seconds(lease);
        let (queued, running) = (JobState::Queued.as_str(), JobState::Running.as_str());
        let job = sqlx::query_as!(
            ClaimedJob,
            r#"UPDATE jobs SET state = $2, attempts = attempts + 1, locked_by = $4,
                   lease_until = hoist_at($1), updated_at = hoist_now()
               WHERE id IN (SELECT j.id FROM jobs AS j
                            WHERE j.state = $3 AND j.run_after <= hoist_now()
                              AND (j.publication_id IS NULL
                                   OR NOT EXISTS (SELECT 1 FROM jobs AS r
                                                  WHERE r.publication_id = j.publication_id
                                                    AND r.state = $2))
                            ORDER BY j.run_after, j.id LIMIT 1
                            FOR UPDATE SKIP LOCKED)
               RETURNING id, kind, payload, attempts"#,
            lease,
            running,
            queued,
            &*self.me
        )
        .fetch_optional(&self.writer)
        .await;
        match job {
            Ok(job) => Ok(job),
            Err(e) if is_unique_violation(&e) => {
                tracing::debug!(
                    "another replica claimed a job of the same publication; nothing claimed"
                );
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Renews the lease of a job this replica's worker still runs; false when the claim
    /// is lost.
    pub async fn extend_lease(
        &self,
        job: &ClaimedJob,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let lease = seconds(lease);
        let running = JobState::Running.as_str();
        let done = sqlx::query!(
            "UPDATE jobs SET lease_until = hoist_at($1)
             WHERE id = $2 AND state = $3 AND attempts = $4 AND locked_by = $5",
            lease,
            job.id,
            running,
            job.attempts,
            &*self.me
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

    /// Puts the job back, due after `delay`, remembering why it failed. If its publication
    /// has a queued job already, that one stands for it and this one ends as done.
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

    /// Ends a claim, if it is still this worker's (same attempt, same replica).
    async fn end_claim(
        &self,
        job: &ClaimedJob,
        state: JobState,
        error: Option<&str>,
        delay: Duration,
    ) -> Result<(), StoreError> {
        let (state, running) = (state.as_str(), JobState::Running.as_str());
        let (queued, done_state) = (JobState::Queued.as_str(), JobState::Done.as_str());
        let delay = seconds(delay);
        let mut tries = 1;
        let ended = loop {
            // Back to the queue, unless the publication has a queued job: then it ends as
            // done and the queued one, the same work, stands for it.
            let ended = sqlx::query_scalar!(
                r#"UPDATE jobs SET
                       state = CASE WHEN $1::text = $8::text
                                     AND EXISTS (SELECT 1 FROM jobs AS q
                                                 WHERE q.publication_id = jobs.publication_id
                                                   AND q.state = $8)
                                    THEN $9 ELSE $1 END,
                       locked_by = NULL, lease_until = NULL, last_error = $2,
                       run_after = hoist_at($3), updated_at = hoist_now()
                   WHERE id = $4 AND state = $5 AND attempts = $6 AND locked_by = $7
                   RETURNING state"#,
                state,
                error,
                delay,
                job.id,
                running,
                job.attempts,
                &*self.me,
                queued,
                done_state
            )
            .fetch_optional(&self.writer)
            .await;
            match ended {
                Err(e) if is_unique_violation(&e) && tries < REQUEUE_TRIES => tries += 1,
                ended => break ended?,
            }
        };
        match ended {
            None => tracing::warn!(
                job = job.id,
                "the job's lease was lost before it ended; outcome not recorded"
            ),
            Some(ended) if ended != state => tracing::debug!(
                job = job.id,
                "its publication's queued job stands for the retry; ended as {ended}"
            ),
            Some(_) => {}
        }
        Ok(())
    }

    /// Re-queues the jobs whose worker, on any replica, stopped before finishing (their
    /// lease ran out); the attempt was counted when it was claimed. Jobs another replica's
    /// rescuer is re-queueing right now are skipped, not waited for. A job whose
    /// publication has a queued job already ends as done: the queued one stands for it.
    pub async fn requeue_expired_jobs(&self) -> Result<u64, StoreError> {
        let (queued, running) = (JobState::Queued.as_str(), JobState::Running.as_str());
        let done_state = JobState::Done.as_str();
        let mut tries = 1;
        loop {
            let done = sqlx::query!(
                "UPDATE jobs SET
                     state = CASE WHEN EXISTS (SELECT 1 FROM jobs AS q
                                               WHERE q.publication_id = jobs.publication_id
                                                 AND q.state = $1)
                                  THEN $3 ELSE $1 END,
                     locked_by = NULL, lease_until = NULL, updated_at = hoist_now()
                 WHERE id IN (SELECT id FROM jobs
                              WHERE state = $2 AND lease_until < hoist_now()
                              FOR UPDATE SKIP LOCKED)",
                queued,
                running,
                done_state
            )
            .execute(&self.writer)
            .await;
            match done {
                Err(e) if is_unique_violation(&e) && tries < REQUEUE_TRIES => tries += 1,
                done => return Ok(done?.rows_affected()),
            }
        }
    }

    /// Jobs queued or running: the queue depth.
    pub async fn pending_jobs(&self) -> Result<i64, StoreError> {
        let (queued, running) = (JobState::Queued.as_str(), JobState::Running.as_str());
        let n = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM jobs WHERE state IN ($1, $2)"#,
            queued,
            running
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(n)
    }

    /// At start-up. Unlike SQLite, where one process owns the database and every running
    /// job is stale, the other replicas' running jobs are alive: only the jobs whose lease
    /// ran out go back to the queue, as [`Postgres::requeue_expired_jobs`] does. A previous
    /// run of this process left its jobs to expire (its id is new on every open).
    pub async fn requeue_running_jobs(&self) -> Result<u64, StoreError> {
        self.requeue_expired_jobs().await
    }

    /// Deletes done and failed jobs last touched longer ago than `retention`.
    pub async fn purge_finished_jobs(&self, retention: Duration) -> Result<u64, StoreError> {
        let seconds = retention.as_secs_f64();
        let (done_state, failed) = (JobState::Done.as_str(), JobState::Failed.as_str());
        let done = sqlx::query!(
            "DELETE FROM jobs WHERE state IN ($1, $2) AND updated_at < hoist_at(-$3::float8)",
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
            "SELECT kind, state, last_error FROM jobs WHERE state <> $1 ORDER BY id",
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
