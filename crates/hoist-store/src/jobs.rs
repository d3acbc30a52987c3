//! The durable job queue. A job is claimed with one `UPDATE ... RETURNING` on the single
//! writer, under a lease. At start [`Store::requeue_running_jobs`] hands out again every job
//! a previous process left running (one process owns a SQLite file);
//! [`Store::requeue_expired_jobs`] does the same for expired leases only, for when several
//! processes share a queue.

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

impl Store {
    /// Deletes done and failed jobs last touched longer ago than `retention`.
    pub async fn purge_finished_jobs(&self, retention: Duration) -> Result<u64, StoreError> {
        let seconds = retention.as_secs_f64();
        let done = sqlx::query!(
            "DELETE FROM jobs WHERE state IN ('done', 'failed')
               AND updated_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ? || ' seconds')",
            seconds
        )
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hoist_domain::job::Job;

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
        Job::Release {
            release_id: n,
            action: "published".into(),
        }
    }

    #[tokio::test]
    async fn jobs_are_claimed_once_oldest_first_and_come_back_when_retried() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let first = store.enqueue_job(&job(1)).await.unwrap();
        let second = store.enqueue_job(&job(2)).await.unwrap();
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
            .retry_job(a.id, Duration::ZERO, "registry busy")
            .await
            .unwrap();
        let again = store.claim_job(lease).await.unwrap().unwrap();
        assert_eq!((again.id, again.attempts), (a.id, 2));
        store
            .retry_job(again.id, Duration::from_secs(3600), "later")
            .await
            .unwrap();
        assert_eq!(store.claim_job(lease).await.unwrap(), None, "not due yet");

        store.finish_job(b.id).await.unwrap();
        assert_eq!(store.pending_jobs().await.unwrap(), 1);
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

        store.fail_job(again.id, "gone for good").await.unwrap();
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
    async fn a_publication_waiting_past_the_timeout_stalls_and_a_retry_revives_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let commit = "a".repeat(40);
        let p = store
            .ensure_publication("ghcr.io/o/a", "o/a", &commit, None)
            .await
            .unwrap();
        store
            .set_publication(
                p.id,
                "waiting",
                Some("wait"),
                Some("waiting for builds of linux/arm64"),
                None,
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
        let stalled = store.publication(p.id).await.unwrap().unwrap();
        assert_eq!(stalled.state, "stalled");
        assert_eq!(
            stalled.error.as_deref(),
            Some("stalled: waiting for builds of linux/arm64")
        );

        assert!(matches!(
            store.retry_publication(p.id).await.unwrap(),
            crate::RetryOutcome::Queued(_)
        ));
        assert_eq!(
            store.publication(p.id).await.unwrap().unwrap().state,
            "waiting"
        );
        let job = store
            .claim_job(Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            Job::from_payload(&job.payload).unwrap(),
            Job::Builds {
                repository: "o/a".into(),
                commit
            }
        );
    }
}
