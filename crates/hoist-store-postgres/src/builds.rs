//! CI builds: one image per (repository, commit, platform), by digest, and what a new one
//! sets going: the commit's waiting or stalled publications look again, and a build of the
//! default branch gets the branch's publication.
//!
//! Differs from SQLite: a build report is ingest, so its transaction first takes the
//! repository's lock ([`crate::lock`]) and every decision it makes (new, same, replaced,
//! refused) is made under it; a new build is inserted with `ON CONFLICT` on the
//! `builds_identity` index, so the database keeps one build per identity whatever
//! happens. Workers of other processes move the commit's publications meanwhile, so the
//! publications a report decides about (whether its commit is published; which ones it
//! wakes) are read locked (`FOR NO KEY UPDATE`, the lock an `UPDATE` takes).

use hoist_domain::build::BuildReport;
use hoist_domain::ci::Provenance;
use hoist_domain::job::Job;
use hoist_domain::{PublicationEvent, PublicationState};
use hoist_store::builds::RawBuild;
use hoist_store::publications::publication_state;
use hoist_store::{BuildOutcome, BuildRow, StoreError, Target};
use sqlx::PgConnection;

use crate::Postgres;
use crate::jobs::enqueue;
use crate::publications::{apply_event, confirm_branch, ensure_publication};
use crate::releases::{note_claim_conflicts, resolve_waiting_releases};

/// The builds of `commit` changed: a commit built on the default branch gets its branch
/// publication, and with `wake` its publications to `target` that wait (or stalled) look
/// again (a new branch publication always does). Call it under the repository's lock.
pub(crate) async fn builds_changed(
    conn: &mut PgConnection,
    target: &Target,
    repository: &str,
    commit: &str,
    reported_ref: Option<&str>,
    wake: bool,
) -> Result<(), StoreError> {
    let branch_ref = format!("refs/heads/{}", target.default_branch);
    let on_branch = reported_ref == Some(branch_ref.as_str())
        || sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM builds
               WHERE repository = $1 AND commit_sha = $2 AND git_ref = $3"#,
            repository,
            commit,
            branch_ref
        )
        .fetch_one(&mut *conn)
        .await?
            > 0;
    if on_branch {
        let (_, created) =
            ensure_publication(conn, &target.image, repository, commit, None).await?;
        if !wake && !created {
            return Ok(());
        }
    } else if !wake {
        return Ok(());
    }
    let image = target.image.as_str();
    // Locked as read: a worker of another process may be moving one of them right now,
    // and the state read here decides whether it gets a job.
    let publications = sqlx::query!(
        r#"SELECT id AS "id!", state FROM publications
           WHERE image = $1 AND commit_sha = $2 ORDER BY id FOR NO KEY UPDATE"#,
        image,
        commit
    )
    .fetch_all(&mut *conn)
    .await?;
    for publication in publications {
        let state = publication_state(&publication.state)?;
        if matches!(state, PublicationState::Waiting | PublicationState::Stalled) {
            apply_event(
                conn,
                publication.id,
                PublicationEvent::BuildArrived,
                None,
                None,
            )
            .await?;
            let job = Job::Publish {
                publication_id: publication.id,
            };
            enqueue(conn, &job).await?;
        }
    }
    Ok(())
}

impl Postgres {
    /// Records a CI build: new, the same again, a replacement while unpublished, or refused
    /// because its commit is already being published or was. Under an OIDC token the
    /// report's ref is a fact GitHub signed, recorded as such: a tag's commit, or a commit on
    /// a branch. Under a static token it is a claim that names builds and decides nothing.
    /// Runs under the repository's lock.
    pub async fn record_build(
        &self,
        target: &Target,
        report: &BuildReport,
        provenance: &Provenance,
    ) -> Result<BuildOutcome, StoreError> {
        self.waking_if_queued(self.apply_build(target, report, provenance))
            .await
    }

    async fn apply_build(
        &self,
        target: &Target,
        report: &BuildReport,
        provenance: &Provenance,
    ) -> Result<BuildOutcome, StoreError> {
        let repository = report.repository.as_str();
        let commit = report.commit.as_str();
        let platform = report.platform.as_ref().map(ToString::to_string);
        let image = report.image.to_string();
        let digest = report
            .image
            .digest()
            .map(|d| d.as_str().to_owned())
            .ok_or_else(|| StoreError::Corrupt("a build image without digest".to_owned()))?;
        let reported_by = provenance.reported_by();
        let (ref_source, identity) =
            match provenance {
                Provenance::Claim { .. } => ("claim", None),
                Provenance::Signed { identity } => (
                    "oidc",
                    Some(serde_json::to_string(identity).map_err(|e| {
                        StoreError::Corrupt(format!("serializing a CI identity: {e}"))
                    })?),
                ),
            };

        let mut tx = self.writer.begin().await?;
        crate::lock(&mut tx, "repository", repository).await?;
        let existing =
            fetch_build(&mut tx, repository, commit, platform.as_deref(), &digest).await?;
        // Whether the report tells anything new: a ref added to the same image counts, as
        // it may name a branch build; so does GitHub signing what was only claimed.
        let mut changed = true;
        let outcome = match existing {
            Some(existing) if existing.digest.as_str() == digest && existing.image == image => {
                let signs = provenance.is_signed() && existing.ref_source == "claim";
                if signs || (existing.git_ref.is_none() && report.git_ref.is_some()) {
                    sqlx::query!(
                        "UPDATE builds SET git_ref = coalesce($1, git_ref),
                             ref_source = CASE WHEN $2::text = 'oidc' THEN 'oidc' ELSE ref_source END,
                             ci_identity = coalesce($3, ci_identity)
                         WHERE id = $4",
                        report.git_ref,
                        ref_source,
                        identity,
                        existing.id
                    )
                    .execute(&mut *tx)
                    .await?;
                } else {
                    changed = false;
                }
                BuildOutcome::Unchanged(existing)
            }
            Some(existing) => {
                let published = commit_published(&mut tx, repository, commit).await?;
                if published && !provenance.is_signed() {
                    tx.rollback().await?;
                    return Ok(BuildOutcome::AlreadyPublished { existing });
                }
                if published {
                    // The build is refused, but what GitHub signed about the run still
                    // holds: its tag or branch names this commit.
                    changed = false;
                    BuildOutcome::AlreadyPublished { existing }
                } else {
                    sqlx::query!(
                        "UPDATE builds SET image = $1, digest = $2, git_ref = coalesce($3, git_ref),
                             reported_by = $4, ref_source = $5, ci_identity = $6,
                             updated_at = hoist_now()
                         WHERE id = $7",
                        image,
                        digest,
                        report.git_ref,
                        reported_by,
                        ref_source,
                        identity,
                        existing.id
                    )
                    .execute(&mut *tx)
                    .await?;
                    let build =
                        fetch_build(&mut tx, repository, commit, platform.as_deref(), &digest)
                            .await?
                            .ok_or_else(|| {
                                StoreError::Corrupt("the replaced build vanished".to_owned())
                            })?;
                    BuildOutcome::Replaced {
                        build,
                        previous_digest: existing.digest.to_string(),
                    }
                }
            }
            // A new build (an index, or a platform an index brought) for a commit already
            // (being) published would change what it publishes on a re-run: refused like a
            // replacement.
            None if commit_published(&mut tx, repository, commit).await? => {
                let existing =
                    first_build(&mut tx, repository, commit)
                        .await?
                        .ok_or_else(|| {
                            StoreError::Corrupt(format!(
                                "commit {commit} is published without builds"
                            ))
                        })?;
                if !provenance.is_signed() {
                    tx.rollback().await?;
                    return Ok(BuildOutcome::AlreadyPublished { existing });
                }
                changed = false;
                BuildOutcome::AlreadyPublished { existing }
            }
            None => {
                // The identity is the database's (`builds_identity`); under the
                // repository's lock nobody else can have taken it since `fetch_build`.
                let inserted = sqlx::query_as!(
                    RawBuild,
                    r#"INSERT INTO builds (repository, commit_sha, git_ref, platform, image, digest,
                                           reported_by, ref_source, ci_identity)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                       ON CONFLICT (repository, commit_sha, coalesce(platform, digest)) DO NOTHING
                       RETURNING id AS "id!", repository AS "repository!", commit_sha AS "commit!",
                                 git_ref, platform, image AS "image!", digest AS "digest!",
                                 reported_by AS "reported_by!", ref_source AS "ref_source!",
                                 ci_identity, created_at AS "created_at!",
                                 updated_at AS "updated_at!""#,
                    repository,
                    commit,
                    report.git_ref,
                    platform,
                    image,
                    digest,
                    reported_by,
                    ref_source,
                    identity
                )
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "a build of commit {commit} with this identity was recorded without \
                         the repository's lock"
                    ))
                })?;
                BuildOutcome::Recorded(BuildRow::try_from(inserted)?)
            }
        };
        match (provenance.is_signed(), report.tag(), report.branch()) {
            // GitHub signed it: the tag names this commit (unless a push said otherwise
            // first), or the commit is on the branch.
            (true, Some(tag), _) => {
                sqlx::query!(
                    "INSERT INTO git_tags (repository, tag, commit_sha, source)
                     VALUES ($1, $2, $3, 'oidc')
                     ON CONFLICT (repository, tag) DO NOTHING",
                    repository,
                    tag,
                    commit
                )
                .execute(&mut *tx)
                .await?;
                // What the tag is now: this fact, an earlier one, or deleted (no commit).
                let tagged = sqlx::query!(
                    "SELECT commit_sha, source FROM git_tags WHERE repository = $1 AND tag = $2",
                    repository,
                    tag
                )
                .fetch_one(&mut *tx)
                .await?;
                if let Some(tagged_commit) = &tagged.commit_sha {
                    resolve_waiting_releases(
                        &mut tx,
                        target,
                        repository,
                        tag,
                        tagged_commit,
                        &tagged.source,
                    )
                    .await?;
                }
            }
            (true, None, Some(branch)) => {
                confirm_branch(&mut tx, repository, branch, commit, "oidc").await?;
            }
            // A claim: it may contradict what GitHub signed for the tag.
            (false, Some(tag), _) => {
                note_claim_conflicts(&mut tx, repository, tag).await?;
            }
            _ => {}
        }
        // Only news wakes the commit's publications (a claim sent again changes nothing and
        // asks GitHub nothing); the same images reported for the default branch still get
        // the branch publication.
        let branch_ref = format!("refs/heads/{}", target.default_branch);
        let for_branch = report.git_ref.as_deref() == Some(branch_ref.as_str());
        // A signed report records facts even when its build is refused: they may wake the
        // commit's branch publication.
        if changed
            || provenance.is_signed()
            || (for_branch && !matches!(outcome, BuildOutcome::AlreadyPublished { .. }))
        {
            builds_changed(
                &mut tx,
                target,
                repository,
                commit,
                report.git_ref.as_deref(),
                changed || provenance.is_signed(),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// Builds of a repository (optionally one commit), oldest first, after build id `after`.
    pub async fn list_builds(
        &self,
        repository: &str,
        commit: Option<&str>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<BuildRow>, StoreError> {
        let rows = sqlx::query_as!(
            RawBuild,
            r#"SELECT id AS "id!", repository, commit_sha AS "commit", git_ref, platform, image, digest,
                      reported_by, ref_source, ci_identity, created_at, updated_at
               FROM builds
               WHERE repository = $1 AND ($2::text IS NULL OR commit_sha = $2) AND id > $3
               ORDER BY id LIMIT $4"#,
            repository,
            commit,
            after,
            limit
        )
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(BuildRow::try_from).collect()
    }

    /// Every build recorded for a commit.
    pub async fn builds_of_commit(
        &self,
        repository: &str,
        commit: &str,
    ) -> Result<Vec<BuildRow>, StoreError> {
        let rows = sqlx::query_as!(
            RawBuild,
            r#"SELECT id AS "id!", repository, commit_sha AS "commit", git_ref, platform, image, digest,
                      reported_by, ref_source, ci_identity, created_at, updated_at
               FROM builds WHERE repository = $1 AND commit_sha = $2 ORDER BY id"#,
            repository,
            commit
        )
        .fetch_all(&self.writer)
        .await?;
        rows.into_iter().map(BuildRow::try_from).collect()
    }
}

/// Whether a publication of `commit` is running or succeeded: its builds are fixed. The
/// commit's publications stay locked until the caller's transaction ends, so a worker of
/// another process cannot start one between this answer and the build written after it
/// (a worker reads the builds it publishes once its publication runs).
async fn commit_published(
    conn: &mut PgConnection,
    repository: &str,
    commit: &str,
) -> Result<bool, StoreError> {
    let states = sqlx::query_scalar!(
        "SELECT state FROM publications WHERE repository = $1 AND commit_sha = $2
         ORDER BY id FOR NO KEY UPDATE",
        repository,
        commit
    )
    .fetch_all(conn)
    .await?;
    for state in states {
        if matches!(
            publication_state(&state)?,
            PublicationState::Running | PublicationState::Succeeded
        ) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The first build recorded for `commit`.
async fn first_build(
    conn: &mut PgConnection,
    repository: &str,
    commit: &str,
) -> Result<Option<BuildRow>, StoreError> {
    let row = sqlx::query_as!(
        RawBuild,
        r#"SELECT id AS "id!", repository, commit_sha AS "commit", git_ref, platform, image, digest,
                  reported_by, ref_source, ci_identity, created_at, updated_at
           FROM builds WHERE repository = $1 AND commit_sha = $2 ORDER BY id LIMIT 1"#,
        repository,
        commit
    )
    .fetch_optional(conn)
    .await?;
    row.map(BuildRow::try_from).transpose()
}

/// The build a report would replace: the same platform of the commit or, for an index
/// reported without a platform, the same index.
async fn fetch_build(
    conn: &mut PgConnection,
    repository: &str,
    commit: &str,
    platform: Option<&str>,
    digest: &str,
) -> Result<Option<BuildRow>, StoreError> {
    let row = sqlx::query_as!(
        RawBuild,
        r#"SELECT id AS "id!", repository, commit_sha AS "commit", git_ref, platform, image, digest,
                  reported_by, ref_source, ci_identity, created_at, updated_at
           FROM builds
           WHERE repository = $1 AND commit_sha = $2
             AND coalesce(platform, digest) = coalesce($3::text, $4::text)"#,
        repository,
        commit,
        platform,
        digest
    )
    .fetch_optional(conn)
    .await?;
    row.map(BuildRow::try_from).transpose()
}
