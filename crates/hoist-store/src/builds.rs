//! CI builds: one image per (repository, commit, platform), by digest, and what a new one
//! sets going: the commit's waiting or stalled publications look again, and a build of the
//! default branch gets the branch's publication.

use hoist_domain::build::BuildReport;
use hoist_domain::ci::{CiIdentity, Provenance};
use hoist_domain::job::Job;
use hoist_domain::{CommitSha, Digest, PublicationEvent, PublicationState, RepoName};
use serde::Serialize;
use sqlx::SqliteConnection;

use crate::jobs::enqueue;
use crate::publications::{apply_event, confirm_branch, ensure_publication, publication_state};
use crate::releases::{note_claim_conflicts, resolve_waiting_releases};
use crate::{Sqlite, StoreError, Target, parsed};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = Build)]
pub struct BuildRow {
    pub id: i64,
    #[schema(value_type = String)]
    pub repository: RepoName,
    #[schema(value_type = String)]
    pub commit: CommitSha,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub platform: Option<String>,
    pub image: String,
    #[schema(value_type = String)]
    pub digest: Digest,
    pub reported_by: String,
    /// `oidc` when GitHub signed the ref (an OIDC token), `claim` under a static CI token.
    #[schema(schema_with = crate::schema::ref_source)]
    pub ref_source: String,
    /// The GitHub Actions run that reported it, under an OIDC token.
    #[schema(schema_with = crate::schema::ci_identity_or_null)]
    pub ci_identity: Option<CiIdentity>,
    pub created_at: String,
    pub updated_at: String,
}

/// A build as the database returns it.
#[doc(hidden)]
#[derive(Debug)]
pub struct RawBuild {
    pub id: i64,
    pub repository: String,
    pub commit: String,
    pub git_ref: Option<String>,
    pub platform: Option<String>,
    pub image: String,
    pub digest: String,
    pub reported_by: String,
    pub ref_source: String,
    pub ci_identity: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl TryFrom<RawBuild> for BuildRow {
    type Error = StoreError;

    fn try_from(raw: RawBuild) -> Result<Self, StoreError> {
        Ok(BuildRow {
            id: raw.id,
            repository: parsed("repository", &raw.repository)?,
            commit: parsed("commit", &raw.commit)?,
            git_ref: raw.git_ref,
            platform: raw.platform,
            image: raw.image,
            digest: parsed("digest", &raw.digest)?,
            reported_by: raw.reported_by,
            ref_source: raw.ref_source,
            ci_identity: raw
                .ci_identity
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("a build's ci_identity: {e}")))?,
            created_at: raw.created_at,
            updated_at: raw.updated_at,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildOutcome {
    Recorded(BuildRow),
    /// The same report again.
    Unchanged(BuildRow),
    /// A new digest replaced one that was never published.
    Replaced {
        build: BuildRow,
        previous_digest: String,
    },
    /// A different digest for a build whose commit is already (being) published.
    AlreadyPublished {
        existing: BuildRow,
    },
}

/// The builds of `commit` changed: a commit built on the default branch gets its branch
/// publication, and with `wake` its publications to `target` that wait (or stalled) look
/// again (a new branch publication always does).
pub(crate) async fn builds_changed(
    conn: &mut SqliteConnection,
    target: &Target,
    repository: &str,
    commit: &str,
    reported_ref: Option<&str>,
    wake: bool,
) -> Result<(), StoreError> {
    let branch_ref = format!("refs/heads/{}", target.default_branch);
    let on_branch = reported_ref == Some(branch_ref.as_str())
        || sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!: i64" FROM builds
               WHERE repository = ? AND commit_sha = ? AND git_ref = ?"#,
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
    let publications = sqlx::query!(
        r#"SELECT id AS "id!", state FROM publications
           WHERE image = ? AND commit_sha = ? ORDER BY id"#,
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

impl Sqlite {
    /// Records a CI build: new, the same again, a replacement while unpublished, or refused
    /// because its commit is already being published or was. Under an OIDC token the
    /// report's ref is a fact GitHub signed, recorded as such: a tag's commit, or a commit on
    /// a branch. Under a static token it is a claim that names builds and decides nothing.
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
                        "UPDATE builds SET git_ref = ifnull(?1, git_ref),
                             ref_source = CASE WHEN ?2 = 'oidc' THEN 'oidc' ELSE ref_source END,
                             ci_identity = ifnull(?3, ci_identity)
                         WHERE id = ?4",
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
                    "UPDATE builds SET image = ?, digest = ?, git_ref = ifnull(?, git_ref), reported_by = ?,
                         ref_source = ?, ci_identity = ?,
                         updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                     WHERE id = ?",
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
                sqlx::query!(
                    "INSERT INTO builds (repository, commit_sha, git_ref, platform, image, digest, reported_by,
                                         ref_source, ci_identity)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                .execute(&mut *tx)
                .await?;
                let build = fetch_build(&mut tx, repository, commit, platform.as_deref(), &digest)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("the new build vanished".to_owned()))?;
                BuildOutcome::Recorded(build)
            }
        };
        match (provenance.is_signed(), report.tag(), report.branch()) {
            // GitHub signed it: the tag names this commit (unless a push said otherwise
            // first), or the commit is on the branch.
            (true, Some(tag), _) => {
                sqlx::query!(
                    "INSERT INTO git_tags (repository, tag, commit_sha, source) VALUES (?, ?, ?, 'oidc')
                     ON CONFLICT (repository, tag) DO NOTHING",
                    repository,
                    tag,
                    commit
                )
                .execute(&mut *tx)
                .await?;
                // What the tag is now: this fact, an earlier one, or deleted (no commit).
                let tagged = sqlx::query!(
                    "SELECT commit_sha, source FROM git_tags WHERE repository = ? AND tag = ?",
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
               WHERE repository = ?1 AND (?2 IS NULL OR commit_sha = ?2) AND id > ?3
               ORDER BY id LIMIT ?4"#,
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
               FROM builds WHERE repository = ? AND commit_sha = ? ORDER BY id"#,
            repository,
            commit
        )
        .fetch_all(&self.writer)
        .await?;
        rows.into_iter().map(BuildRow::try_from).collect()
    }
}

/// Whether a publication of `commit` is running or succeeded: its builds are fixed.
async fn commit_published(
    conn: &mut SqliteConnection,
    repository: &str,
    commit: &str,
) -> Result<bool, StoreError> {
    let (running, succeeded) = (
        PublicationState::Running.as_str(),
        PublicationState::Succeeded.as_str(),
    );
    let published = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!: i64" FROM publications
           WHERE repository = ? AND commit_sha = ? AND state IN (?, ?)"#,
        repository,
        commit,
        running,
        succeeded
    )
    .fetch_one(conn)
    .await?;
    Ok(published > 0)
}

/// The first build recorded for `commit`.
async fn first_build(
    conn: &mut SqliteConnection,
    repository: &str,
    commit: &str,
) -> Result<Option<BuildRow>, StoreError> {
    let row = sqlx::query_as!(
        RawBuild,
        r#"SELECT id AS "id!", repository, commit_sha AS "commit", git_ref, platform, image, digest,
                  reported_by, ref_source, ci_identity, created_at, updated_at
           FROM builds WHERE repository = ?1 AND commit_sha = ?2 ORDER BY id LIMIT 1"#,
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
    conn: &mut SqliteConnection,
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
           WHERE repository = ?1 AND commit_sha = ?2 AND ifnull(platform, digest) = ifnull(?3, ?4)"#,
        repository,
        commit,
        platform,
        digest
    )
    .fetch_optional(conn)
    .await?;
    row.map(BuildRow::try_from).transpose()
}
