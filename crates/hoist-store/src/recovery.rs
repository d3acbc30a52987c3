//! Getting publications unstuck: stalling the ones that wait too long, re-queueing the
//! ones left without a job, an operator's retry, and the counts `/metrics` reads.

use hoist_domain::job::Job;
use hoist_domain::{JobState, PublicationEvent, PublicationState, Step};

use crate::jobs::enqueue;
use crate::publications::{apply_event, fetch_publication, publication_state};
use crate::{PublicationRow, Sqlite, StoreError};

impl Sqlite {
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
            "UPDATE publications SET state = ?1,
                 error = 'stalled: ' || ifnull(error, 'waiting for builds'),
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE state = ?2 AND step = ?4 AND error IS NOT NULL
               AND updated_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ?3 || ' seconds')",
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
        let stranded = sqlx::query_scalar!(
            r#"SELECT p.id AS "id!" FROM publications p
               WHERE p.state IN (?1, ?2)
                 AND NOT (p.state = ?1 AND p.step = ?5 AND p.error IS NOT NULL)
                 AND NOT EXISTS (SELECT 1 FROM jobs j
                                 WHERE j.publication_id = p.id AND j.state IN (?3, ?4))
               ORDER BY p.id"#,
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
            sqlx::query!(r#"SELECT state, count(*) AS "n!: i64" FROM publications GROUP BY state"#)
                .fetch_all(&self.reader)
                .await?;
        rows.into_iter()
            .map(|r| Ok((publication_state(&r.state)?, r.n)))
            .collect()
    }

    /// Jobs by kind and state, for metrics.
    pub async fn job_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT kind, state, count(*) AS "n!: i64" FROM jobs GROUP BY kind, state"#
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(|r| (r.kind, r.state, r.n)).collect())
    }
}

/// What asking to retry a publication did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryOutcome {
    Queued(Box<PublicationRow>),
    NotFound,
    /// Failed, stalled, and running publications whose worker is gone are retried.
    NotRetryable {
        state: PublicationState,
    },
    /// A worker holds it right now.
    Busy,
}

impl Sqlite {
    /// Moves a failed or stalled publication back to `waiting` (a running one whose
    /// worker is gone stays running) and queues the job that continues it, in one
    /// transaction.
    pub async fn retry_publication(&self, id: i64) -> Result<RetryOutcome, StoreError> {
        let mut tx = self.writer.begin().await?;
        let Some(row) = fetch_publication(&mut tx, id).await? else {
            return Ok(RetryOutcome::NotFound);
        };
        let Some(next) = row.state.next(PublicationEvent::Retry) else {
            return Ok(RetryOutcome::NotRetryable { state: row.state });
        };
        let job_running = JobState::Running.as_str();
        let live = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!: i64" FROM jobs
               WHERE publication_id = ?1 AND state = ?2
                 AND lease_until > strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"#,
            id,
            job_running
        )
        .fetch_one(&mut *tx)
        .await?;
        if live > 0 {
            return Ok(RetryOutcome::Busy);
        }
        apply_event(&mut tx, id, PublicationEvent::Retry, None, None).await?;
        // A job whose lease ran out is taken back first, so the new one may run.
        let job_failed = JobState::Failed.as_str();
        sqlx::query!(
            "UPDATE jobs SET state = ?1, last_error = 'its worker is gone; retried by an operator',
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE publication_id = ?2 AND state = ?3",
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
