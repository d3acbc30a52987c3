//! Publications: one per (target image, commit, release or none). Their state moves only
//! through [`PublicationState::next`], each applied in one statement or under the
//! publication's row lock, so a worker and an ingress request that race each see the
//! other's move.
//!
//! Differs from SQLite: workers of several processes move publications at once, so
//! [`apply_event`] reads the state it moves from with `FOR NO KEY UPDATE` (the row lock an
//! `UPDATE` takes; it lets ledger and job rows that reference the publication be written
//! meanwhile). The moves SQLite makes in one statement (`reach_step`, `begin_tags`,
//! `step_started`, `step_finished`) are one statement here too. Creating a publication is
//! `ON CONFLICT DO NOTHING` on the `publications_identity` index.

use hoist_domain::{PublicationEvent, PublicationState, ReleaseState, Step};
use hoist_store::publications::{NO_BUILDS_YET, RawPublication, publication_state};
use hoist_store::{LiveVersion, Moved, PublicationRow, StepRow, StoreError, TagEventRow};
use sqlx::PgConnection;

use crate::Postgres;

pub(crate) async fn fetch_publication(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<PublicationRow>, StoreError> {
    let raw = sqlx::query_as!(
        RawPublication,
        r#"SELECT id AS "id!", image, repository, commit_sha AS "commit", release_id, state, step,
                  error, index_digest, version_tag, created_at, updated_at
           FROM publications WHERE id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await?;
    raw.map(PublicationRow::try_from).transpose()
}

/// Applies `event` to publication `id` if its state allows it, setting the detail (why it
/// waits or failed; `None` clears it) and the step with it. The row stays locked until
/// the caller's transaction ends.
pub(crate) async fn apply_event(
    conn: &mut PgConnection,
    id: i64,
    event: PublicationEvent,
    step: Option<Step>,
    detail: Option<&str>,
) -> Result<Moved, StoreError> {
    let current = sqlx::query_scalar!(
        "SELECT state FROM publications WHERE id = $1 FOR NO KEY UPDATE",
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::Corrupt(format!("publication {id} vanished")))?;
    let current = publication_state(&current)?;
    let Some(next) = current.next(event) else {
        return Ok(Moved::NotApplicable(current));
    };
    let (state, step) = (next.as_str(), step.map(Step::as_str));
    sqlx::query!(
        "UPDATE publications SET state = $1, step = coalesce($2, step), error = $3,
             updated_at = hoist_now()
         WHERE id = $4",
        state,
        step,
        detail,
        id
    )
    .execute(&mut *conn)
    .await?;
    Ok(Moved::To(next))
}

/// Records that `source` (`oidc` or `github_api`) puts `commit` on `branch`, without a
/// place in push order.
pub(crate) async fn confirm_branch(
    conn: &mut PgConnection,
    repository: &str,
    branch: &str,
    commit: &str,
    source: &str,
) -> Result<(), StoreError> {
    sqlx::query!(
        "INSERT INTO branch_confirmations (repository, branch, commit_sha, source)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
        repository,
        branch,
        commit,
        source
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The publication of `commit` to `image` for `release_id` (or the default branch), and
/// whether it was created now. A concurrent creation of the same publication is waited
/// for and then found.
pub(crate) async fn ensure_publication(
    conn: &mut PgConnection,
    image: &str,
    repository: &str,
    commit: &str,
    release_id: Option<i64>,
) -> Result<(PublicationRow, bool), StoreError> {
    let (waiting, wait) = (PublicationState::Waiting.as_str(), Step::Wait.as_str());
    // With no build of the commit yet there is nothing for a worker to do: the publication
    // starts parked in the wait step, as a worker would leave it, and a build wakes it.
    let inserted = sqlx::query_as!(
        RawPublication,
        r#"INSERT INTO publications (image, repository, commit_sha, release_id, state, step, error)
           SELECT $1::text, $2::text, $3::text, $4::bigint, $5::text,
                  CASE WHEN b.built THEN NULL ELSE $6::text END,
                  CASE WHEN b.built THEN NULL ELSE $7::text END
           FROM (SELECT EXISTS (SELECT 1 FROM builds WHERE repository = $2 AND commit_sha = $3)
                        AS built) AS b
           ON CONFLICT (image, commit_sha, coalesce(release_id, 0)) DO NOTHING
           RETURNING id AS "id!", image AS "image!", repository AS "repository!",
                     commit_sha AS "commit!", release_id, state AS "state!", step, error,
                     index_digest, version_tag, created_at AS "created_at!",
                     updated_at AS "updated_at!"
        "#,
        image,
        repository,
        commit,
        release_id,
        waiting,
        wait,
        NO_BUILDS_YET
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(raw) = inserted {
        return Ok((PublicationRow::try_from(raw)?, true));
    }
    let raw = sqlx::query_as!(
        RawPublication,
        r#"SELECT id AS "id!", image, repository, commit_sha AS "commit", release_id, state, step,
                  error, index_digest, version_tag, created_at, updated_at
           FROM publications
           WHERE image = $1 AND commit_sha = $2 AND coalesce(release_id, 0) = coalesce($3::bigint, 0)"#,
        image,
        commit,
        release_id
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok((PublicationRow::try_from(raw)?, false))
}

impl Postgres {
    pub async fn publication(&self, id: i64) -> Result<Option<PublicationRow>, StoreError> {
        let mut conn = self.writer.acquire().await?;
        fetch_publication(&mut conn, id).await
    }

    /// Publications, newest first, optionally of one image and/or in one state.
    pub async fn list_publications(
        &self,
        image: Option<&str>,
        state: Option<PublicationState>,
        before: i64,
        limit: i64,
    ) -> Result<Vec<PublicationRow>, StoreError> {
        let state = state.map(PublicationState::as_str);
        let rows = sqlx::query_as!(
            RawPublication,
            r#"SELECT id AS "id!", image, repository, commit_sha AS "commit", release_id, state, step,
                      error, index_digest, version_tag, created_at, updated_at
               FROM publications
               WHERE ($1::text IS NULL OR image = $1) AND ($2::text IS NULL OR state = $2)
                 AND id < $3
               ORDER BY id DESC LIMIT $4"#,
            image,
            state,
            before,
            limit
        )
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(PublicationRow::try_from).collect()
    }

    /// Moves publication `id` by `event` if its state allows it, under its row lock.
    pub async fn advance_publication(
        &self,
        id: i64,
        event: PublicationEvent,
        step: Option<Step>,
        detail: Option<&str>,
    ) -> Result<Moved, StoreError> {
        let mut tx = self.writer.begin().await?;
        let moved = apply_event(&mut tx, id, event, step, detail).await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// Records the step a running publication reached and, once put, its index. False
    /// when the publication is no longer running (withdrawn or re-decided meanwhile).
    pub async fn reach_step(
        &self,
        id: i64,
        step: Step,
        index_digest: Option<&str>,
    ) -> Result<bool, StoreError> {
        let (step, running) = (step.as_str(), PublicationState::Running.as_str());
        let done = sqlx::query!(
            "UPDATE publications SET step = $1, index_digest = coalesce($2, index_digest),
                 updated_at = hoist_now()
             WHERE id = $3 AND state = $4",
            step,
            index_digest,
            id,
            running
        )
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// At the tag step, under the image's lock: records the release tag the tags are
    /// decided for, in the same statement that checks the publication is still running.
    /// Ingress withdraws a publication in one transaction too, so either it sees this tag
    /// (and queues the rollback of its floating tags) or this sees the withdrawal.
    pub async fn begin_tags(&self, id: i64, version_tag: Option<&str>) -> Result<bool, StoreError> {
        let (tags, running) = (Step::Tags.as_str(), PublicationState::Running.as_str());
        let published = ReleaseState::Published.as_str();
        // A release publication also needs its release still published on this commit
        // under the tag it was indexed for.
        let done = sqlx::query!(
            "UPDATE publications SET step = $1, version_tag = $2,
                 updated_at = hoist_now()
             WHERE id = $3 AND state = $4
               AND (release_id IS NULL
                    OR EXISTS (SELECT 1 FROM releases r
                               WHERE r.id = publications.release_id AND r.state = $5
                                 AND r.tag_name = $2 AND r.commit_sha = publications.commit_sha))",
            tags,
            version_tag,
            id,
            running,
            published
        )
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records that a step started (again, on a retry: its end and error are cleared).
    pub async fn step_started(&self, id: i64, step: Step) -> Result<(), StoreError> {
        let step = step.as_str();
        sqlx::query!(
            "INSERT INTO publication_steps (publication_id, step) VALUES ($1, $2)
             ON CONFLICT (publication_id, step) DO UPDATE SET
                 started_at = hoist_now(), finished_at = NULL, error = NULL",
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
        step: Step,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let step = step.as_str();
        sqlx::query!(
            "UPDATE publication_steps SET finished_at = hoist_now(), error = $1
             WHERE publication_id = $2 AND step = $3",
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
             WHERE publication_id = $1 ORDER BY started_at, step",
            id
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows)
    }

    /// When `commit` was first published to `image`: the `created` of its index, so every
    /// publication of the commit (a re-run, a re-created release) builds the same bytes.
    pub async fn first_published_at(
        &self,
        image: &str,
        commit: &str,
    ) -> Result<String, StoreError> {
        let at = sqlx::query_scalar!(
            r#"SELECT min(created_at) AS "at!" FROM publications
               WHERE image = $1 AND commit_sha = $2"#,
            image,
            commit
        )
        .fetch_one(&self.writer)
        .await?;
        Ok(at)
    }

    /// Where `commit` stands on `branch` in push order (higher is later), if a push named it.
    pub async fn branch_position(
        &self,
        repository: &str,
        branch: &str,
        commit: &str,
    ) -> Result<Option<i64>, StoreError> {
        let position = sqlx::query_scalar!(
            r#"SELECT id AS "id!" FROM branch_commits
               WHERE repository = $1 AND branch = $2 AND commit_sha = $3"#,
            repository,
            branch,
            commit
        )
        .fetch_optional(&self.writer)
        .await?;
        Ok(position)
    }

    /// Whether a signed fact puts `commit` on `branch`: a push webhook of the branch, an
    /// OIDC-signed report of a run on it, or GitHub's API.
    pub async fn branch_confirmed(
        &self,
        repository: &str,
        branch: &str,
        commit: &str,
    ) -> Result<bool, StoreError> {
        let confirmed = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM branch_commits
                              WHERE repository = $1 AND branch = $2 AND commit_sha = $3)
                   OR EXISTS (SELECT 1 FROM branch_confirmations
                              WHERE repository = $1 AND branch = $2 AND commit_sha = $3)
                   AS "confirmed!""#,
            repository,
            branch,
            commit
        )
        .fetch_one(&self.writer)
        .await?;
        Ok(confirmed)
    }

    /// Records that GitHub's API puts `commit` on `branch`.
    pub async fn confirm_branch_from_api(
        &self,
        repository: &str,
        branch: &str,
        commit: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.writer.acquire().await?;
        confirm_branch(&mut conn, repository, branch, commit, "github_api").await
    }

    /// The index a release's succeeded publication put for `commit` on `image`: the
    /// commit's index, which its branch publication shares.
    pub async fn release_index_of_commit(
        &self,
        image: &str,
        commit: &str,
    ) -> Result<Option<String>, StoreError> {
        let succeeded = PublicationState::Succeeded.as_str();
        let digest = sqlx::query_scalar!(
            r#"SELECT index_digest AS "digest!" FROM publications
               WHERE image = $1 AND commit_sha = $2 AND release_id IS NOT NULL AND state = $3
                 AND index_digest IS NOT NULL
               ORDER BY id LIMIT 1"#,
            image,
            commit,
            succeeded
        )
        .fetch_optional(&self.writer)
        .await?;
        Ok(digest)
    }

    /// The image's live versions other than publication `except`, in publication order.
    pub async fn live_versions(
        &self,
        image: &str,
        except: Option<i64>,
    ) -> Result<Vec<LiveVersion>, StoreError> {
        let succeeded = PublicationState::Succeeded.as_str();
        let published = ReleaseState::Published.as_str();
        let rows = sqlx::query_as!(
            LiveVersion,
            r#"SELECT p.id AS "publication_id!", p.version_tag AS "tag!", p.index_digest AS "digest!",
                      p.commit_sha AS "commit!", p.created_at AS "created_at!"
               FROM publications p JOIN releases r ON r.id = p.release_id
               WHERE p.image = $1 AND p.state = $2 AND r.state = $3 AND r.prerelease = 0
                 AND p.version_tag IS NOT NULL AND p.index_digest IS NOT NULL
                 AND p.id <> coalesce($4::bigint, 0)
               ORDER BY p.id"#,
            image,
            succeeded,
            published,
            except
        )
        .fetch_all(&self.writer)
        .await?;
        Ok(rows)
    }

    /// The tag moves a publication made, in order.
    pub async fn tags_of_publication(&self, id: i64) -> Result<Vec<TagEventRow>, StoreError> {
        let rows = sqlx::query_as!(
            TagEventRow,
            r#"SELECT id AS "id!", image, tag, digest, previous_digest, kind, reason, publication_id,
                      release_tag, created_at
               FROM tag_events WHERE publication_id = $1 ORDER BY id"#,
            id
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows)
    }
}
