//! The durable job queue. A job is claimed with one `UPDATE ... RETURNING` on the single
//! writer, under a lease; a worker that dies leaves its lease to expire, and
//! [`Store::requeue_expired_jobs`] (run at start) hands the job out again.

use std::time::Duration;

use hoist_domain::job::Job;

use crate::{Store, StoreError};

/// A job a worker holds until its lease ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    pub id: i64,
    pub kind: String,
    pub payload: String,
    /// How many times it has been claimed, this time included.
    pub attempts: i64,
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Store {
    /// Queues a job and wakes the workers.
    pub async fn enqueue_job(&self, job: &Job) -> Result<i64, StoreError> {
        let kind = job.kind();
        let payload = job.to_payload();
        let id = sqlx::query_scalar!(
            r#"INSERT INTO jobs (kind, payload) VALUES (?, ?) RETURNING id AS "id!""#,
            kind,
            payload
        )
        .fetch_one(&self.writer)
        .await?;
        self.jobs_changed.notify_waiters();
        Ok(id)
    }

    /// Wakes idle workers; call after a transaction that queued jobs has committed.
    pub fn notify_workers(&self) {
        self.jobs_changed.notify_waiters();
    }

    /// Resolves when a job may have been queued. Create it *before* looking for work, so a
    /// job queued in between is not missed.
    pub fn jobs_changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.jobs_changed.notified()
    }

    /// Takes the oldest due job, if any, leasing it for `lease`.
    pub async fn claim_job(&self, lease: Duration) -> Result<Option<ClaimedJob>, StoreError> {
        let lease = seconds(lease);
        let job = sqlx::query_as!(
            ClaimedJob,
            r#"UPDATE jobs SET state = 'running', attempts = attempts + 1,
                   lease_until = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || ?1 || ' seconds'),
                   updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
               WHERE id = (SELECT id FROM jobs
                           WHERE state = 'queued' AND run_after <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                           ORDER BY run_after, id LIMIT 1)
               RETURNING id AS "id!", kind, payload, attempts"#,
            lease
        )
        .fetch_optional(&self.writer)
        .await?;
        Ok(job)
    }

    /// The job is done; it stays in the table for the API until purged.
    pub async fn finish_job(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query!(
            "UPDATE jobs SET state = 'done', lease_until = NULL, last_error = NULL,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
            id
        )
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Puts the job back, due after `delay`, remembering why it failed.
    pub async fn retry_job(&self, id: i64, delay: Duration, error: &str) -> Result<(), StoreError> {
        let delay = seconds(delay);
        sqlx::query!(
            "UPDATE jobs SET state = 'queued', lease_until = NULL, last_error = ?1,
                 run_after = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || ?2 || ' seconds'),
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE id = ?3",
            error,
            delay,
            id
        )
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The job failed for good.
    pub async fn fail_job(&self, id: i64, error: &str) -> Result<(), StoreError> {
        sqlx::query!(
            "UPDATE jobs SET state = 'failed', lease_until = NULL, last_error = ?,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
            error,
            id
        )
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Re-queues the jobs whose worker stopped before finishing (their lease ran out).
    pub async fn requeue_expired_jobs(&self) -> Result<u64, StoreError> {
        let done = sqlx::query!(
            "UPDATE jobs SET state = 'queued', lease_until = NULL,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE state = 'running' AND lease_until < strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
        )
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    /// Jobs queued or running: the queue depth.
    pub async fn pending_jobs(&self) -> Result<i64, StoreError> {
        let n = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!: i64" FROM jobs WHERE state IN ('queued', 'running')"#
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(n)
    }
}

impl Store {
    /// At start-up: every job marked running belongs to a process that is gone (one hoist
    /// process owns a SQLite database), so all of them go back to the queue at once rather
    /// than waiting out their leases.
    pub async fn requeue_running_jobs(&self) -> Result<u64, StoreError> {
        let done = sqlx::query!(
            "UPDATE jobs SET state = 'queued', lease_until = NULL,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE state = 'running'"
        )
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }
}
