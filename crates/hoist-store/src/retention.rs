//! Retention: what `[retention] days` purges, and what is kept forever.
//!
//! Purged once older than the retention: webhook deliveries (their answers and bodies'
//! digests), the steps of finished publications (`succeeded`, `failed`, `withdrawn`) and
//! the rows of deleted tags. Kept forever: the ledger (`tag_events`, `tags`), releases,
//! builds and publications themselves.
//!
//! A purged delivery can no longer be recognized when its body is replayed, so before any
//! is deleted the newest purged `received_at` becomes the purge horizon: a push GitHub took
//! before it changes nothing (see `deliveries::push_older_than`). Releases need no horizon:
//! their rows stay, and an event older in GitHub's time than the row changes nothing.

use std::time::Duration;

use crate::{Store, StoreError};

/// Rows deleted per statement, so the single writer is never held for long.
const BATCH: i64 = 5000;

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

impl Store {
    /// Deletes what is older than `retention`, in batches.
    pub async fn purge_expired(&self, retention: Duration) -> Result<Purged, StoreError> {
        let seconds = retention.as_secs_f64();
        // The horizon first: should the deletes below not all happen, it only makes hoist
        // more careful, never less.
        sqlx::query!(
            "INSERT INTO purge_horizon (id, deliveries_before)
             SELECT 1, CAST(strftime('%s', MAX(received_at)) AS INTEGER) FROM deliveries
             WHERE received_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ?1 || ' seconds')
             HAVING MAX(received_at) IS NOT NULL
             ON CONFLICT (id) DO UPDATE SET
                 deliveries_before = MAX(deliveries_before, excluded.deliveries_before)",
            seconds
        )
        .execute(&self.writer)
        .await?;
        let mut purged = Purged::default();
        loop {
            let done = sqlx::query!(
                "DELETE FROM deliveries WHERE id IN (
                     SELECT id FROM deliveries
                     WHERE received_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ?1 || ' seconds')
                     ORDER BY received_at LIMIT ?2)",
                seconds,
                BATCH
            )
            .execute(&self.writer)
            .await?
            .rows_affected();
            purged.deliveries += done;
            if done < BATCH as u64 {
                break;
            }
        }
        loop {
            let done = sqlx::query!(
                "DELETE FROM publication_steps WHERE rowid IN (
                     SELECT s.rowid FROM publication_steps s
                     JOIN publications p ON p.id = s.publication_id
                     WHERE p.state IN ('succeeded', 'failed', 'withdrawn')
                       AND p.updated_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ?1 || ' seconds')
                     LIMIT ?2)",
                seconds,
                BATCH
            )
            .execute(&self.writer)
            .await?
            .rows_affected();
            purged.steps += done;
            if done < BATCH as u64 {
                break;
            }
        }
        loop {
            let done = sqlx::query!(
                "DELETE FROM git_tags WHERE rowid IN (
                     SELECT rowid FROM git_tags
                     WHERE commit_sha IS NULL
                       AND updated_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ?1 || ' seconds')
                     LIMIT ?2)",
                seconds,
                BATCH
            )
            .execute(&self.writer)
            .await?
            .rows_affected();
            purged.deleted_tags += done;
            if done < BATCH as u64 {
                break;
            }
        }
        Ok(purged)
    }
}
