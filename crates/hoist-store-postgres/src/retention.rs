//! Retention: what `[retention] days` purges, and what is kept forever, as on SQLite
//! (`hoist_store::retention` explains what and why): webhook deliveries, the steps of
//! finished publications and the rows of deleted tags (those no sooner than
//! [`TOMBSTONES_AT_LEAST`]) are purged; the ledger, releases, builds and publications are
//! kept. Before any delivery is deleted the newest purged `received_at` becomes the purge
//! horizon.
//!
//! What differs from SQLite: PostgreSQL has no `DELETE ... LIMIT` nor `rowid`, so each
//! batch deletes the keys a limited subselect names. Replicas purging at once are harmless:
//! the horizon only grows (`greatest`), and a delete finding its rows gone ends early.

use std::time::Duration;

use hoist_store::retention::{BATCH, TOMBSTONES_AT_LEAST};
use hoist_store::{Purged, StoreError};
use sqlx::postgres::PgQueryResult;

use crate::Postgres;

impl Postgres {
    /// Deletes what is older than `retention`, in batches.
    pub async fn purge_expired(&self, retention: Duration) -> Result<Purged, StoreError> {
        // One cutoff for every statement: the horizon is then exactly the newest delivery
        // the deletes remove.
        let cutoff = self.cutoff(retention).await?;
        // Deleted tags stay at least as long as a workflow run can be re-run (30 days):
        // their rows keep an old run's OIDC report from naming the commit again.
        let tags_cutoff = self.cutoff(retention.max(TOMBSTONES_AT_LEAST)).await?;
        // The horizon first: should the deletes below not all happen, it only makes hoist
        // more careful, never less. In whole unix seconds, as SQLite's strftime('%s').
        sqlx::query!(
            "INSERT INTO purge_horizon (id, deliveries_before)
             SELECT 1, floor(extract(epoch FROM max(received_at)::timestamptz))::bigint
             FROM deliveries
             WHERE received_at < $1
             HAVING max(received_at) IS NOT NULL
             ON CONFLICT (id) DO UPDATE SET
                 deliveries_before = greatest(purge_horizon.deliveries_before,
                                              excluded.deliveries_before)",
            cutoff
        )
        .execute(&self.writer)
        .await?;
        let deliveries = in_batches(|| async {
            sqlx::query!(
                "DELETE FROM deliveries WHERE id IN (
                     SELECT id FROM deliveries
                     WHERE received_at < $1
                     ORDER BY received_at LIMIT $2)",
                cutoff,
                BATCH
            )
            .execute(&self.writer)
            .await
        })
        .await?;
        let steps = in_batches(|| async {
            sqlx::query!(
                "DELETE FROM publication_steps WHERE (publication_id, step) IN (
                     SELECT s.publication_id, s.step FROM publication_steps s
                     JOIN publications p ON p.id = s.publication_id
                     WHERE p.state IN ('succeeded', 'failed', 'withdrawn')
                       AND p.updated_at < $1
                     LIMIT $2)",
                cutoff,
                BATCH
            )
            .execute(&self.writer)
            .await
        })
        .await?;
        let deleted_tags = in_batches(|| async {
            sqlx::query!(
                "DELETE FROM git_tags WHERE (repository, tag) IN (
                     SELECT repository, tag FROM git_tags
                     WHERE commit_sha IS NULL
                       AND updated_at < $1
                     LIMIT $2)",
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

    /// `now - age` as the database writes timestamps.
    async fn cutoff(&self, age: Duration) -> Result<String, StoreError> {
        let seconds = age.as_secs_f64();
        Ok(
            sqlx::query_scalar!(r#"SELECT hoist_at(-$1::float8) AS "cutoff!""#, seconds)
                .fetch_one(&self.writer)
                .await?,
        )
    }
}

/// Runs one batch delete until a batch comes back short; the rows deleted in all.
async fn in_batches<F, Fut>(mut batch: F) -> Result<u64, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<PgQueryResult, sqlx::Error>>,
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
