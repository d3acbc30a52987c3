//! Test fixtures behind [`hoist_store::Backend::seed_published_release`] and
//! [`hoist_store::Backend::mark_published`]: the same rows as SQLite's (hoist-store's
//! `lib.rs`), for the shared conformance suite and other crates' tests. Not part of the
//! API; the tags are written through [`Postgres::move_tag`], as the pipeline writes them.

use hoist_domain::{PublicationState, ReleaseState};
use hoist_store::{MoveIntent, StoreError, TagMove};

use crate::Postgres;

impl Postgres {
    /// Records what publishing release `tag` of `repository` on `commit` leaves behind, as
    /// the pipeline would: the published release, its succeeded publication with index
    /// `digest`, and `tags` pointing at it in the ledger.
    pub async fn seed_published_release(
        &self,
        repository: &str,
        image: &str,
        tag: &str,
        commit: &str,
        digest: &str,
        tags: &[&str],
    ) -> Result<(), StoreError> {
        let github_id = sqlx::query_scalar!(r#"SELECT count(*) + 1 AS "n!" FROM releases"#)
            .fetch_one(&self.writer)
            .await?;
        let published = ReleaseState::Published.as_str();
        let succeeded = PublicationState::Succeeded.as_str();
        let release = sqlx::query_scalar!(
            r#"INSERT INTO releases
                   (repository, github_id, tag_name, target_commitish, prerelease, state,
                    last_action, commit_sha, commit_source)
               VALUES ($1, $2, $3, $4, 0, $5, $5, $4, 'target_commitish')
               RETURNING id"#,
            repository,
            github_id,
            tag,
            commit,
            published
        )
        .fetch_one(&self.writer)
        .await?;
        let publication = sqlx::query_scalar!(
            r#"INSERT INTO publications
                   (image, repository, commit_sha, release_id, state, index_digest, version_tag)
               VALUES ($1, $2, $3, $4, $7, $5, $6)
               RETURNING id"#,
            image,
            repository,
            commit,
            release,
            digest,
            tag,
            succeeded
        )
        .fetch_one(&self.writer)
        .await?;
        for name in tags {
            let m = TagMove {
                image,
                tag: name,
                digest,
                immutable: false,
                intent: MoveIntent::Publish,
                reason: "seeded",
                publication_id: Some(publication),
                release_tag: Some(tag),
            };
            self.move_tag(&m).await?;
        }
        Ok(())
    }

    /// Records a succeeded publication of `commit`, as the pipeline would.
    pub async fn mark_published(
        &self,
        repository: &str,
        image: &str,
        commit: &str,
    ) -> Result<(), StoreError> {
        let succeeded = PublicationState::Succeeded.as_str();
        sqlx::query!(
            "INSERT INTO publications (image, repository, commit_sha, state)
             VALUES ($1, $2, $3, $4)",
            image,
            repository,
            commit,
            succeeded
        )
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn fixture_execute(&self, sql: &str) -> Result<(), StoreError> {
        use sqlx::Executor;
        self.writer.execute(sql).await?;
        Ok(())
    }

    pub async fn fixture_query(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, StoreError> {
        use sqlx::Row;
        let rows = sqlx::query(sql).fetch_all(&self.writer).await?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| {
                        row.try_get::<Option<String>, _>(i)
                            .map_err(StoreError::from)
                    })
                    .collect()
            })
            .collect()
    }
}
