//! Retention: what `[retention] days` purges, and what is kept forever.
//!
//! Purged once older than the retention: webhook deliveries (their answers and bodies'
//! digests), the steps of finished publications (`succeeded`, `failed`, `withdrawn`) and
//! the rows of deleted tags (those no sooner than 30 days). Kept forever: the ledger (`tag_events`, `tags`), releases,
//! builds and publications themselves.
//!
//! A purged delivery can no longer be recognized when its body is replayed, so before any
//! is deleted the newest purged `received_at` becomes the purge horizon: a push GitHub took
//! before it changes nothing (see `deliveries::push_older_than`). Releases need no horizon:
//! their rows stay, and an event older in GitHub's time than the row changes nothing.

use std::time::Duration;

use sqlx::sqlite::SqliteQueryResult;

use crate::{Sqlite, StoreError};

/// Rows deleted per statement, so the single writer is never held for long.
#[doc(hidden)]
pub const BATCH: i64 = 5000;

/// Deleted-tag rows are kept at least this long, whatever the retention.
#[doc(hidden)]
pub const TOMBSTONES_AT_LEAST: Duration = Duration::from_secs(30 * 24 * 3600);

/// What one purge deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub deliveries: u64,
    pub steps: u64,
    pub deleted_tags: u64,
}

impl Purged {
    pub fn total(&self) -> u64 {
        self.deliveries + self.steps + self.deleted_tags
    }
}

impl Sqlite {
    /// Deletes what is older than `retention`, in batches.
    pub async fn purge_expired(&self, retention: Duration) -> Result<Purged, StoreError> {
        // One cutoff for every statement: the horizon is then exactly the newest delivery
        // the deletes remove.
        let cutoff = self.cutoff(retention).await?;
        // Deleted tags stay at least as long as a workflow run can be re-run (30 days):
        // their rows keep an old run's OIDC report from naming the commit again.
        let tags_cutoff = self.cutoff(retention.max(TOMBSTONES_AT_LEAST)).await?;
        // The horizon first: should the deletes below not all happen, it only makes hoist
        // more careful, never less.
        sqlx::query!(
            "INSERT INTO purge_horizon (id, deliveries_before)
             SELECT 1, CAST(strftime('%s', MAX(received_at)) AS INTEGER) FROM deliveries
             WHERE received_at < ?1
             HAVING MAX(received_at) IS NOT NULL
             ON CONFLICT (id) DO UPDATE SET
                 deliveries_before = MAX(deliveries_before, excluded.deliveries_before)",
            cutoff
        )
        .execute(&self.writer)
        .await?;
        let deliveries = in_batches(|| async {
            sqlx::query!(
                "DELETE FROM deliveries WHERE id IN (
                     SELECT id FROM deliveries
                     WHERE received_at < ?1
                     ORDER BY received_at LIMIT ?2)",
                cutoff,
                BATCH
            )
            .execute(&self.writer)
            .await
        })
        .await?;
        let steps = in_batches(|| async {
            sqlx::query!(
                "DELETE FROM publication_steps WHERE rowid IN (
                     SELECT s.rowid FROM publication_steps s
                     JOIN publications p ON p.id = s.publication_id
                     WHERE p.state IN ('succeeded', 'failed', 'withdrawn')
                       AND p.updated_at < ?1
                     LIMIT ?2)",
                cutoff,
                BATCH
            )
            .execute(&self.writer)
            .await
        })
        .await?;
        let deleted_tags = in_batches(|| async {
            sqlx::query!(
                "DELETE FROM git_tags WHERE rowid IN (
                     SELECT rowid FROM git_tags
                     WHERE commit_sha IS NULL
                       AND updated_at < ?1
                     LIMIT ?2)",
                tags_cutoff,
                BATCH
            )
            .execute(&self.writer)
            .await
        })
        .await?;
        let purged = Purged {
            deliveries,
            steps,
            deleted_tags,
        };
        Ok(purged)
    }
}

impl Sqlite {
    /// `now - age` as the database writes timestamps.
    async fn cutoff(&self, age: Duration) -> Result<String, StoreError> {
        let seconds = age.as_secs_f64();
        Ok(sqlx::query_scalar!(
            r#"SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ?1 || ' seconds') AS "cutoff!: String""#,
            seconds
        )
        .fetch_one(&self.writer)
        .await?)
    }
}

/// Runs one batch delete until a batch comes back short; the rows deleted in all.
async fn in_batches<F, Fut>(mut batch: F) -> Result<u64, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<SqliteQueryResult, sqlx::Error>>,
{
    let mut total = 0;
    loop {
        let done = batch().await?.rows_affected();
        total += done;
        if done < BATCH as u64 {
            return Ok(total);
        }
    }
}
