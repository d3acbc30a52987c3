//! Publications: one per (target image, commit, release or none). Their state moves only
//! through [`PublicationState::next`], applied inside one writer statement or transaction,
//! so a worker and an ingress request that race each see the other's move.

use hoist_domain::job::Job;
use hoist_domain::{
    CommitSha, Digest, JobState, PublicationEvent, PublicationState, ReleaseState, RepoName, Step,
};
use serde::Serialize;
use sqlx::SqliteConnection;

use crate::jobs::enqueue;
use crate::{Store, StoreError, parsed};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicationRow {
    pub id: i64,
    pub image: String,
    pub repository: RepoName,
    pub commit: CommitSha,
    pub release_id: Option<i64>,
    pub state: PublicationState,
    /// The step to run next, or the one that failed.
    pub step: Option<Step>,
    /// Why it waits, stalled or failed.
    pub error: Option<String>,
    pub index_digest: Option<Digest>,
    /// The release tag its tags were last decided for.
    pub version_tag: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A publication as SQLite returns it, before its states are parsed.
struct RawPublication {
    id: i64,
    image: String,
    repository: String,
    commit: String,
    release_id: Option<i64>,
    state: String,
    step: Option<String>,
    error: Option<String>,
    index_digest: Option<String>,
    version_tag: Option<String>,
    created_at: String,
    updated_at: String,
}

pub(crate) fn publication_state(text: &str) -> Result<PublicationState, StoreError> {
    PublicationState::parse(text)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown publication state {text:?}")))
}

impl TryFrom<RawPublication> for PublicationRow {
    type Error = StoreError;

    fn try_from(raw: RawPublication) -> Result<Self, StoreError> {
        let step = match raw.step.as_deref() {
            Some(text) => Some(
                Step::parse(text)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown step {text:?}")))?,
            ),
            None => None,
        };
        Ok(PublicationRow {
            id: raw.id,
            image: raw.image,
            repository: parsed("repository", &raw.repository)?,
            commit: parsed("commit", &raw.commit)?,
            release_id: raw.release_id,
            state: publication_state(&raw.state)?,
            step,
            error: raw.error,
            index_digest: raw
                .index_digest
                .as_deref()
                .map(|d| parsed("index digest", d))
                .transpose()?,
            version_tag: raw.version_tag,
            created_at: raw.created_at,
            updated_at: raw.updated_at,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepRow {
    pub step: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
}

/// A version that holds its place among the image's floating tags: its release is
/// published and not flagged prerelease, and its publication succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveVersion {
    pub publication_id: i64,
    pub tag: String,
    pub digest: String,
    pub commit: String,
    pub created_at: String,
}

/// What a state move did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    To(PublicationState),
    /// The event does not apply in the publication's state (it moved on meanwhile).
    NotApplicable(PublicationState),
}

impl Moved {
    pub fn applied(self) -> bool {
        matches!(self, Moved::To(_))
    }
}

pub(crate) async fn fetch_publication(
    conn: &mut SqliteConnection,
    id: i64,
) -> Result<Option<PublicationRow>, StoreError> {
    let raw = sqlx::query_as!(
        RawPublication,
        r#"SELECT id AS "id!", image, repository, commit_sha AS "commit", release_id, state, step,
                  error, index_digest, version_tag, created_at, updated_at
           FROM publications WHERE id = ?"#,
        id
    )
    .fetch_optional(conn)
    .await?;
    raw.map(PublicationRow::try_from).transpose()
}

/// Applies `event` to publication `id` if its state allows it, setting the detail (why it
/// waits or failed; `None` clears it) and the step with it.
pub(crate) async fn apply_event(
    conn: &mut SqliteConnection,
    id: i64,
    event: PublicationEvent,
    step: Option<Step>,
    detail: Option<&str>,
) -> Result<Moved, StoreError> {
    let current = sqlx::query_scalar!("SELECT state FROM publications WHERE id = ?", id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("publication {id} vanished")))?;
    let current = publication_state(&current)?;
    let Some(next) = current.next(event) else {
        return Ok(Moved::NotApplicable(current));
    };
    let (state, step) = (next.as_str(), step.map(Step::as_str));
    sqlx::query!(
        "UPDATE publications SET state = ?1, step = ifnull(?2, step), error = ?3,
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE id = ?4",
        state,
        step,
        detail,
        id
    )
    .execute(&mut *conn)
    .await?;
    Ok(Moved::To(next))
}

/// The publication of `commit` to `image` for `release` (or none), created `waiting` if it
/// does not exist yet; the flag says whether it was created now.
pub(crate) async fn ensure_publication(
    conn: &mut SqliteConnection,
    image: &str,
    repository: &str,
    commit: &str,
    release_id: Option<i64>,
) -> Result<(PublicationRow, bool), StoreError> {
    let waiting = PublicationState::Waiting.as_str();
    let created = sqlx::query!(
        "INSERT OR IGNORE INTO publications (image, repository, commit_sha, release_id, state)
         VALUES (?, ?, ?, ?, ?)",
        image,
        repository,
        commit,
        release_id,
        waiting
    )
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0;
    let id = sqlx::query_scalar!(
        r#"SELECT id AS "id!" FROM publications
           WHERE image = ?1 AND commit_sha = ?2 AND ifnull(release_id, 0) = ifnull(?3, 0)"#,
        image,
        commit,
        release_id
    )
    .fetch_one(&mut *conn)
    .await?;
    let row = fetch_publication(conn, id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("publication {id} vanished")))?;
    Ok((row, created))
}

impl Store {
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
               WHERE (?1 IS NULL OR image = ?1) AND (?2 IS NULL OR state = ?2) AND id < ?3
               ORDER BY id DESC LIMIT ?4"#,
            image,
            state,
            before,
            limit
        )
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(PublicationRow::try_from).collect()
    }

    /// Moves publication `id` by `event` if its state allows it.
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
            "UPDATE publications SET step = ?1, index_digest = ifnull(?2, index_digest),
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE id = ?3 AND state = ?4",
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
            "UPDATE publications SET step = ?1, version_tag = ?2,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE id = ?3 AND state = ?4
               AND (release_id IS NULL
                    OR EXISTS (SELECT 1 FROM releases r
                               WHERE r.id = publications.release_id AND r.state = ?5
                                 AND r.tag_name = ?2 AND r.commit_sha = publications.commit_sha))",
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
        step: Step,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let step = step.as_str();
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

    /// When `commit` was first published to `image`: the `created` of its index, so every
    /// publication of the commit (a re-run, a re-created release) builds the same bytes.
    pub async fn first_published_at(
        &self,
        image: &str,
        commit: &str,
    ) -> Result<String, StoreError> {
        let at = sqlx::query_scalar!(
            r#"SELECT min(created_at) AS "at!: String" FROM publications
               WHERE image = ? AND commit_sha = ?"#,
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
            r#"SELECT id AS "id!" FROM branch_commits WHERE repository = ? AND branch = ? AND commit_sha = ?"#,
            repository,
            branch,
            commit
        )
        .fetch_optional(&self.writer)
        .await?;
        Ok(position)
    }

    /// The index the publication of release `release_id` on `commit` put, if any.
    pub async fn index_of_release_commit(
        &self,
        release_id: i64,
        commit: &str,
    ) -> Result<Option<String>, StoreError> {
        let digest = sqlx::query_scalar!(
            "SELECT index_digest FROM publications WHERE release_id = ? AND commit_sha = ?",
            release_id,
            commit
        )
        .fetch_optional(&self.writer)
        .await?
        .flatten();
        Ok(digest)
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
               WHERE image = ? AND commit_sha = ? AND release_id IS NOT NULL AND state = ?
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
                      p.commit_sha AS "commit", p.created_at
               FROM publications p JOIN releases r ON r.id = p.release_id
               WHERE p.image = ?1 AND p.state = ?2 AND r.state = ?3 AND r.prerelease = 0
                 AND p.version_tag IS NOT NULL AND p.index_digest IS NOT NULL
                 AND p.id <> ifnull(?4, 0)
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
}

impl Store {
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

impl Store {
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
