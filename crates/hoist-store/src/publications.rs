//! Publications: one per (target image, commit, release or none), with the state of each
//! step, so a publication resumes where it stopped.

use serde::Serialize;

use crate::{BuildRow, ReleaseRow, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicationRow {
    pub id: i64,
    pub image: String,
    pub repository: String,
    pub commit: String,
    pub release_id: Option<i64>,
    pub state: String,
    pub step: Option<String>,
    pub error: Option<String>,
    pub index_digest: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepRow {
    pub step: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
}

impl Store {
    /// The publication of `commit` to `image` for `release` (or none), created `waiting` if
    /// it does not exist yet.
    pub async fn ensure_publication(
        &self,
        image: &str,
        repository: &str,
        commit: &str,
        release_id: Option<i64>,
    ) -> Result<PublicationRow, StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query!(
            "INSERT OR IGNORE INTO publications (image, repository, commit_sha, release_id, state)
             VALUES (?, ?, ?, ?, 'waiting')",
            image,
            repository,
            commit,
            release_id
        )
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query_as!(
            PublicationRow,
            r#"SELECT id AS "id!", image, repository, commit_sha AS "commit", release_id, state, step, error,
                      index_digest, created_at, updated_at
               FROM publications
               WHERE image = ?1 AND commit_sha = ?2 AND ifnull(release_id, 0) = ifnull(?3, 0)"#,
            image,
            commit,
            release_id
        )
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn publication(&self, id: i64) -> Result<Option<PublicationRow>, StoreError> {
        let row = sqlx::query_as!(
            PublicationRow,
            r#"SELECT id AS "id!", image, repository, commit_sha AS "commit", release_id, state, step, error,
                      index_digest, created_at, updated_at
               FROM publications WHERE id = ?"#,
            id
        )
        .fetch_optional(&self.writer)
        .await?;
        Ok(row)
    }

    /// Publications of a repository's commit (any release).
    pub async fn publications_of_commit(
        &self,
        repository: &str,
        commit: &str,
    ) -> Result<Vec<PublicationRow>, StoreError> {
        let rows = sqlx::query_as!(
            PublicationRow,
            r#"SELECT id AS "id!", image, repository, commit_sha AS "commit", release_id, state, step, error,
                      index_digest, created_at, updated_at
               FROM publications WHERE repository = ? AND commit_sha = ? ORDER BY id"#,
            repository,
            commit
        )
        .fetch_all(&self.writer)
        .await?;
        Ok(rows)
    }

    /// Publications, newest first, optionally of one image and/or in one state.
    pub async fn list_publications(
        &self,
        image: Option<&str>,
        state: Option<&str>,
        before: i64,
        limit: i64,
    ) -> Result<Vec<PublicationRow>, StoreError> {
        let rows = sqlx::query_as!(
            PublicationRow,
            r#"SELECT id AS "id!", image, repository, commit_sha AS "commit", release_id, state, step, error,
                      index_digest, created_at, updated_at
               FROM publications
               WHERE (?1 IS NULL OR image = ?1) AND (?2 IS NULL OR state = ?2) AND id < ?3
               ORDER BY id DESC LIMIT ?4"#,
            image,
            state,
            before,
            limit
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows)
    }

    /// Sets a publication's state, current step, error and index digest.
    pub async fn set_publication(
        &self,
        id: i64,
        state: &str,
        step: Option<&str>,
        error: Option<&str>,
        index_digest: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            "UPDATE publications SET state = ?1, step = ?2, error = ?3,
                 index_digest = ifnull(?4, index_digest),
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE id = ?5",
            state,
            step,
            error,
            index_digest,
            id
        )
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Records that a step started (again, on a retry: its end and error are cleared).
    pub async fn step_started(&self, id: i64, step: &str) -> Result<(), StoreError> {
        sqlx::query!(
            "INSERT INTO publication_steps (publication_id, step) VALUES (?1, ?2)
             ON CONFLICT (publication_id, step) DO UPDATE SET
                 started_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), finished_at = NULL, error = NULL",
            id,
            step
        )
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Records how a step ended.
    pub async fn step_finished(
        &self,
        id: i64,
        step: &str,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            "UPDATE publication_steps SET finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), error = ?1
             WHERE publication_id = ?2 AND step = ?3",
            error,
            id,
            step
        )
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn publication_steps(&self, id: i64) -> Result<Vec<StepRow>, StoreError> {
        let rows = sqlx::query_as!(
            StepRow,
            "SELECT step, started_at, finished_at, error FROM publication_steps
             WHERE publication_id = ? ORDER BY started_at, step",
            id
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows)
    }

    pub async fn release(&self, id: i64) -> Result<Option<ReleaseRow>, StoreError> {
        let row = sqlx::query_as!(
            ReleaseRow,
            r#"SELECT id AS "id!", repository, github_id, tag_name AS "tag", target_commitish,
                      prerelease AS "prerelease: bool", state, last_action,
                      commit_sha AS "commit", commit_source, created_at, updated_at
               FROM releases WHERE id = ?"#,
            id
        )
        .fetch_optional(&self.writer)
        .await?;
        Ok(row)
    }

    /// Published releases of a repository whose tag resolved to `commit`.
    pub async fn published_releases_of_commit(
        &self,
        repository: &str,
        commit: &str,
    ) -> Result<Vec<ReleaseRow>, StoreError> {
        let rows = sqlx::query_as!(
            ReleaseRow,
            r#"SELECT id AS "id!", repository, github_id, tag_name AS "tag", target_commitish,
                      prerelease AS "prerelease: bool", state, last_action,
                      commit_sha AS "commit", commit_source, created_at, updated_at
               FROM releases WHERE repository = ? AND commit_sha = ? AND state = 'published' ORDER BY id"#,
            repository,
            commit
        )
        .fetch_all(&self.writer)
        .await?;
        Ok(rows)
    }

    /// Every build recorded for a commit.
    pub async fn builds_of_commit(
        &self,
        repository: &str,
        commit: &str,
    ) -> Result<Vec<BuildRow>, StoreError> {
        let rows = sqlx::query_as!(
            BuildRow,
            r#"SELECT id AS "id!", repository, commit_sha AS "commit", git_ref, platform, image, digest,
                      reported_by, created_at, updated_at
               FROM builds WHERE repository = ? AND commit_sha = ? ORDER BY id"#,
            repository,
            commit
        )
        .fetch_all(&self.writer)
        .await?;
        Ok(rows)
    }
}

impl Store {
    /// Marks `waiting` publications older than `after` as `stalled`, naming what they wait
    /// for; returns how many.
    pub async fn stall_waiting_publications(
        &self,
        after: std::time::Duration,
    ) -> Result<u64, StoreError> {
        let seconds = after.as_secs_f64();
        let done = sqlx::query!(
            "UPDATE publications SET state = 'stalled',
                 error = 'stalled: ' || ifnull(error, 'waiting for builds'),
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE state = 'waiting'
               AND created_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ? || ' seconds')",
            seconds
        )
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    /// Publications by state, for metrics.
    pub async fn publication_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows =
            sqlx::query!(r#"SELECT state, count(*) AS "n!: i64" FROM publications GROUP BY state"#)
                .fetch_all(&self.reader)
                .await?;
        Ok(rows.into_iter().map(|r| (r.state, r.n)).collect())
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
    /// Only failed or stalled publications are retried.
    NotRetryable {
        state: String,
    },
}

impl Store {
    /// Puts a failed or stalled publication back to `waiting` and queues the job that runs
    /// it, in one transaction.
    pub async fn retry_publication(&self, id: i64) -> Result<RetryOutcome, StoreError> {
        let mut tx = self.writer.begin().await?;
        let Some(row) = sqlx::query!(
            "SELECT state, repository, commit_sha, release_id FROM publications WHERE id = ?",
            id
        )
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(RetryOutcome::NotFound);
        };
        if row.state != "failed" && row.state != "stalled" {
            return Ok(RetryOutcome::NotRetryable { state: row.state });
        }
        sqlx::query!(
            "UPDATE publications SET state = 'waiting', error = NULL,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
            id
        )
        .execute(&mut *tx)
        .await?;
        let job = match row.release_id {
            Some(release_id) => hoist_domain::job::Job::Release {
                release_id,
                action: "published".to_owned(),
            },
            None => hoist_domain::job::Job::Builds {
                repository: row.repository,
                commit: row.commit_sha,
            },
        };
        let (kind, payload) = (job.kind(), job.to_payload());
        sqlx::query!(
            "INSERT INTO jobs (kind, payload) VALUES (?, ?)",
            kind,
            payload
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.notify_workers();
        let row = self
            .publication(id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("publication {id} vanished")))?;
        Ok(RetryOutcome::Queued(Box::new(row)))
    }
}

impl Store {
    /// The tag moves a publication made, in order.
    pub async fn tags_of_publication(
        &self,
        id: i64,
    ) -> Result<Vec<crate::TagEventRow>, StoreError> {
        let rows = sqlx::query_as!(
            crate::TagEventRow,
            r#"SELECT id AS "id!", image, tag, digest, previous_digest, kind, reason, publication_id,
                      release_tag, created_at
               FROM tag_events WHERE publication_id = ? ORDER BY id"#,
            id
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows)
    }
}
