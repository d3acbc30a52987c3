//! Getting publications unstuck: stalling the ones that wait too long, re-queueing the
//! ones left without a job, an operator's retry, and the counts `/metrics` reads.
//!
//! Differs from SQLite, where one writer serializes all of this: the reconciler runs on
//! every replica at once. Stalling is one `UPDATE` (a row another replica stalled first no
//! longer matches). Re-queueing runs under a lock of its own, so two replicas never both
//! queue for one publication, and locks the publications it queues for, skipping those
//! another transaction is moving right now (the next pass sees them); at most one queued
//! job per publication is the database's rule besides. An operator's retry takes the
//! repository's lock and then the publication's row lock before it decides.

use hoist_domain::job::Job;
use hoist_domain::{JobState, PublicationEvent, PublicationState, Step};
use hoist_store::publications::{RawPublication, publication_state};
use hoist_store::{PublicationRow, RetryOutcome, StoreError};

use crate::Postgres;
use crate::jobs::enqueue;
use crate::publications::apply_event;

impl Postgres {
    /// Marks as `stalled` the publications a worker found missing builds, and that no build
    /// has moved since, for longer than `after`; returns how many.
    pub async fn stall_waiting_publications(
        &self,
        after: std::time::Duration,
    ) -> Result<u64, StoreError> {
        let seconds = after.as_secs_f64();
        let (waiting, stalled) = (
            PublicationState::Waiting.as_str(),
            PublicationState::Stalled.as_str(),
        );
        let wait = Step::Wait.as_str();
        debug_assert_eq!(
            PublicationState::Waiting.next(PublicationEvent::Stall),
            Some(PublicationState::Stalled)
        );
        let done = sqlx::query!(
            "UPDATE publications SET state = $1,
                 error = 'stalled: ' || coalesce(error, 'waiting for builds'),
                 updated_at = hoist_now()
             WHERE state = $2 AND step = $4 AND error IS NOT NULL
               AND updated_at < hoist_at(-$3::float8)",
            stalled,
            waiting,
            seconds,
            wait
        )
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    /// Queues a job for every waiting or running publication that has none queued or
    /// running (a job that failed for good, a panic, a lost job), so no publication is
    /// stranded. A publication a worker found missing builds is parked, not stranded: a
    /// build wakes it. Returns how many were queued.
    pub async fn requeue_stranded_publications(&self) -> Result<u64, StoreError> {
        let (waiting, running) = (
            PublicationState::Waiting.as_str(),
            PublicationState::Running.as_str(),
        );
        let (queued, job_running) = (JobState::Queued.as_str(), JobState::Running.as_str());
        let wait = Step::Wait.as_str();
        let mut tx = self.writer.begin().await?;
        // One replica's reconciler at a time: the next one's look below starts after this
        // one committed, so it sees the jobs queued here.
        crate::lock(&mut tx, "reconciler", "stranded publications").await?;
        // The publications stay locked until the jobs are queued, so none comes to rest
        // meanwhile; one being moved right now is skipped (it is not stranded, or the next
        // pass sees it).
        let stranded = sqlx::query_scalar!(
            r#"SELECT p.id AS "id!" FROM publications p
               WHERE p.state IN ($1, $2)
                 AND NOT (p.state = $1 AND p.step = $5 AND p.error IS NOT NULL)
                 AND NOT EXISTS (SELECT 1 FROM jobs j
                                 WHERE j.publication_id = p.id AND j.state IN ($3, $4))
               ORDER BY p.id
               FOR NO KEY UPDATE OF p SKIP LOCKED"#,
            waiting,
            running,
            queued,
            job_running,
            wait
        )
        .fetch_all(&mut *tx)
        .await?;
        for &publication_id in &stranded {
            enqueue(&mut tx, &Job::Publish { publication_id }).await?;
        }
        tx.commit().await?;
        if !stranded.is_empty() {
            self.notify_workers();
        }
        Ok(stranded.len() as u64)
    }

    /// Publications by state, for metrics.
    pub async fn publication_counts(&self) -> Result<Vec<(PublicationState, i64)>, StoreError> {
        let rows =
            sqlx::query!(r#"SELECT state, count(*) AS "n!" FROM publications GROUP BY state"#)
                .fetch_all(&self.reader)
                .await?;
        rows.into_iter()
            .map(|r| Ok((publication_state(&r.state)?, r.n)))
            .collect()
    }

    /// Jobs by kind and state, for metrics.
    pub async fn job_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows =
            sqlx::query!(r#"SELECT kind, state, count(*) AS "n!" FROM jobs GROUP BY kind, state"#)
                .fetch_all(&self.reader)
                .await?;
        Ok(rows.into_iter().map(|r| (r.kind, r.state, r.n)).collect())
    }

    /// Moves a failed or stalled publication back to `waiting` (a running one whose
    /// worker is gone stays running) and queues the job that continues it, in one
    /// transaction, under the repository's lock and the publication's row lock.
    pub async fn retry_publication(&self, id: i64) -> Result<RetryOutcome, StoreError> {
        let mut tx = self.writer.begin().await?;
        // A publication's repository never changes: read it to take the repository's lock
        // (before the row's, as ingest does), then read the publication locked.
        let Some(repository) =
            sqlx::query_scalar!("SELECT repository FROM publications WHERE id = $1", id)
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(RetryOutcome::NotFound);
        };
        crate::lock(&mut tx, "repository", &repository).await?;
        let raw = sqlx::query_as!(
            RawPublication,
            r#"SELECT id AS "id!", image, repository, commit_sha AS "commit", release_id, state,
                      step, error, index_digest, version_tag, created_at, updated_at
               FROM publications WHERE id = $1 FOR NO KEY UPDATE"#,
            id
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = raw.map(PublicationRow::try_from).transpose()? else {
            return Ok(RetryOutcome::NotFound);
        };
        let Some(next) = row.state.next(PublicationEvent::Retry) else {
            return Ok(RetryOutcome::NotRetryable { state: row.state });
        };
        let job_running = JobState::Running.as_str();
        let live = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM jobs
               WHERE publication_id = $1 AND state = $2 AND lease_until > hoist_now()"#,
            id,
            job_running
        )
        .fetch_one(&mut *tx)
        .await?;
        if live > 0 {
            return Ok(RetryOutcome::Busy);
        }
        apply_event(&mut tx, id, PublicationEvent::Retry, None, None).await?;
        // A job whose lease ran out is taken back first, so the new one may run. Only such
        // a job: one a worker of another process claimed since the look above is live.
        let job_failed = JobState::Failed.as_str();
        sqlx::query!(
            "UPDATE jobs SET state = $1, last_error = 'its worker is gone; retried by an operator',
                 updated_at = hoist_now()
             WHERE publication_id = $2 AND state = $3
               AND (lease_until IS NULL OR lease_until <= hoist_now())",
            job_failed,
            id,
            job_running
        )
        .execute(&mut *tx)
        .await?;
        enqueue(&mut tx, &Job::Publish { publication_id: id }).await?;
        tx.commit().await?;
        self.notify_workers();
        debug_assert!(!next.is_at_rest());
        let row = self
            .publication(id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("publication {id} vanished")))?;
        Ok(RetryOutcome::Queued(Box::new(row)))
    }
}
