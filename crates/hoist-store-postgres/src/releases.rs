//! GitHub releases as last reported, the commit each resolves to (and which fact said so),
//! and the rule that keeps a release's publications in line with it: whenever a release
//! row changes, [`sync_release`] runs in the same transaction and withdraws, revives,
//! re-decides or creates its publications, queueing the jobs that act on them.
//!
//! Differs from SQLite: every transaction here that reads and then decides holds the
//! repository's lock ([`crate::lock`], scope `repository`). The crate-internal helpers
//! ([`sync_release`], [`resolve_waiting_releases`], [`note_claim_conflicts`],
//! [`apply_release`]) expect their caller to hold it; [`Postgres::resync_repository`] and
//! [`Postgres::resolve_release_from_api`] take it themselves. The `prerelease` flag is a
//! BIGINT 0/1 column, read as `prerelease = 1`; CI claimants are listed with `string_agg`
//! in name order (SQLite's `group_concat` lists them in scan order).

use hoist_domain::github::ReleaseEvent;
use hoist_domain::job::Job;
use hoist_domain::{CommitSha, PublicationEvent, PublicationState, ReleaseState};
use hoist_store::publications::publication_state;
use hoist_store::releases::{AppliedRelease, Before, RawRelease, release_state, summary};
use hoist_store::{ReleaseRow, StoreError, Target};
use sqlx::PgConnection;

use crate::Postgres;
use crate::jobs::enqueue;
use crate::publications::{apply_event, ensure_publication};

async fn fetch_release(conn: &mut PgConnection, id: i64) -> Result<Option<ReleaseRow>, StoreError> {
    let raw = sqlx::query_as!(
        RawRelease,
        r#"SELECT id, repository, github_id, tag_name AS "tag", target_commitish,
                  (prerelease = 1) AS "prerelease!", state, last_action,
                  commit_sha AS "commit", commit_source, claim_conflict, created_at, updated_at
           FROM releases WHERE id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await?;
    raw.map(ReleaseRow::try_from).transpose()
}

/// Brings the publications of release `release_id` to `target` in line with the release
/// as it is now. A flag turned on or off, or a tag renamed, re-decides the tags of a
/// publication on the same commit, even one still copying. The caller holds the
/// repository's lock.
pub(crate) async fn sync_release(
    conn: &mut PgConnection,
    release_id: i64,
    target: &Target,
    before: Before<'_>,
) -> Result<(), StoreError> {
    let release = fetch_release(conn, release_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("release {release_id} vanished")))?;
    sync_release_row(conn, &release, target, before).await
}

/// [`sync_release`] for a release row the caller just read.
async fn sync_release_row(
    conn: &mut PgConnection,
    release: &ReleaseRow,
    target: &Target,
    before: Before<'_>,
) -> Result<(), StoreError> {
    let release_id = release.id;
    let live = release.state == ReleaseState::Published;
    let flag_on = before.prerelease == Some(false) && release.prerelease;
    let flag_off = before.prerelease == Some(true) && !release.prerelease;
    let tag_changed = before.tag.is_some_and(|tag| tag != release.tag);
    let image = target.image.as_str();
    let publications = if before.fresh {
        Vec::new()
    } else {
        sqlx::query!(
            "SELECT id, commit_sha, state, version_tag, index_digest FROM publications
             WHERE release_id = $1 AND image = $2 ORDER BY id
             FOR NO KEY UPDATE",
            release_id,
            image
        )
        .fetch_all(&mut *conn)
        .await?
    };
    for publication in publications {
        let state = publication_state(&publication.state)?;
        let kept = live
            && release.commit.as_ref().map(CommitSha::as_str)
                == Some(publication.commit_sha.as_str());
        let renamed = publication
            .version_tag
            .as_deref()
            .is_some_and(|tag| tag != release.tag);
        // The floating tags its version held go back, unless it keeps them: withdrawn,
        // renamed, or flagged prerelease.
        let rollback = !kept || renamed || flag_on;
        let event = if !kept {
            PublicationEvent::Withdraw
        } else if state == PublicationState::Withdrawn {
            PublicationEvent::Revive
        } else if renamed || tag_changed || flag_on || flag_off {
            PublicationEvent::Redecide
        } else {
            continue;
        };
        let moved = apply_event(conn, publication.id, event, None, None).await?;
        // A failed publication may have moved floating tags before it failed.
        if rollback
            && (moved.applied() || state == PublicationState::Failed)
            && let (Some(tag), Some(index)) = (publication.version_tag, publication.index_digest)
        {
            let job = Job::Rollback {
                release_id,
                tag,
                commit: publication.commit_sha,
                index,
            };
            enqueue(conn, &job).await?;
        }
        if kept && moved.applied() {
            enqueue(
                conn,
                &Job::Publish {
                    publication_id: publication.id,
                },
            )
            .await?;
        }
    }
    if let (true, Some(commit)) = (live, &release.commit) {
        let (publication, _) = ensure_publication(
            conn,
            &target.image,
            release.repository.as_str(),
            commit.as_str(),
            Some(release_id),
        )
        .await?;
        // One parked for builds (a worker found some missing, or none existed when it was
        // created) stays parked: a build wakes it.
        let parked =
            publication.step == Some(hoist_domain::Step::Wait) && publication.error.is_some();
        if publication.state == PublicationState::Waiting && !parked {
            enqueue(
                conn,
                &Job::Publish {
                    publication_id: publication.id,
                },
            )
            .await?;
        }
    }
    Ok(())
}

/// The claim conflict recorded on release `id`.
async fn fetch_claim_conflict(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<String>, StoreError> {
    let conflict = sqlx::query_scalar!("SELECT claim_conflict FROM releases WHERE id = $1", id)
        .fetch_one(conn)
        .await?;
    Ok(conflict)
}

/// Gives every release of `repository` tagged `tag` that still lacks a commit this one,
/// and brings their publications in line. The caller holds the repository's lock.
pub(crate) async fn resolve_waiting_releases(
    conn: &mut PgConnection,
    target: &Target,
    repository: &str,
    tag: &str,
    commit: &str,
    source: &str,
) -> Result<(), StoreError> {
    let resolved = sqlx::query_scalar!(
        "UPDATE releases
         SET commit_sha = $1, commit_source = $2, updated_at = hoist_now()
         WHERE repository = $3 AND tag_name = $4 AND commit_sha IS NULL
         RETURNING id",
        commit,
        source,
        repository,
        tag
    )
    .fetch_all(&mut *conn)
    .await?;
    if !resolved.is_empty() {
        note_claim_conflicts(conn, repository, tag).await?;
    }
    for release_id in resolved {
        sync_release(conn, release_id, target, Before::default()).await?;
    }
    Ok(())
}

/// Records, on each resolved release of `repository` tagged `tag`, the CI claims that
/// contradict its signed commit: builds a static token reported for `refs/tags/{tag}` on
/// another commit. Those builds are not used (a publication takes the builds of its own
/// commit); the conflict shows on the release, in `/metrics`, and once in the log. The
/// caller holds the repository's lock.
pub(crate) async fn note_claim_conflicts(
    conn: &mut PgConnection,
    repository: &str,
    tag: &str,
) -> Result<bool, StoreError> {
    let git_ref = format!("refs/tags/{tag}");
    // Almost always neither a claim for the tag nor a conflict recorded: one look.
    let anything = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM builds
                          WHERE repository = $1 AND git_ref = $2 AND ref_source = 'claim')
               OR EXISTS (SELECT 1 FROM releases
                          WHERE repository = $1 AND tag_name = $3 AND claim_conflict IS NOT NULL)
               AS "anything!""#,
        repository,
        git_ref,
        tag
    )
    .fetch_one(&mut *conn)
    .await?;
    if !anything {
        return Ok(false);
    }
    let mut changed = false;
    let releases = sqlx::query!(
        r#"SELECT id, commit_sha AS "commit!", commit_source, claim_conflict FROM releases
           WHERE repository = $1 AND tag_name = $2 AND commit_sha IS NOT NULL"#,
        repository,
        tag
    )
    .fetch_all(&mut *conn)
    .await?;
    for release in releases {
        let claims = sqlx::query!(
            r#"SELECT commit_sha,
                      string_agg(DISTINCT reported_by COLLATE "C", ',' ORDER BY reported_by COLLATE "C") AS "by!"
               FROM builds
               WHERE repository = $1 AND git_ref = $2 AND ref_source = 'claim'
                 AND commit_sha <> $3
               GROUP BY commit_sha ORDER BY commit_sha COLLATE "C""#,
            repository,
            git_ref,
            release.commit
        )
        .fetch_all(&mut *conn)
        .await?;
        let conflict = (!claims.is_empty()).then(|| {
            let claimed: Vec<String> = claims
                .iter()
                .map(|c| format!("{} (by {})", c.commit_sha, c.by))
                .collect();
            format!(
                "CI claimed {git_ref} is {}, but GitHub says {} ({}): those builds are not used",
                claimed.join(", "),
                release.commit,
                release.commit_source.as_deref().unwrap_or("a signed fact")
            )
        });
        if conflict == release.claim_conflict {
            continue;
        }
        changed = true;
        sqlx::query!(
            "UPDATE releases SET claim_conflict = $1 WHERE id = $2",
            conflict,
            release.id
        )
        .execute(&mut *conn)
        .await?;
        if let Some(conflict) = &conflict {
            tracing::warn!(release = release.id, %repository, %tag, %conflict, "a CI claim contradicts GitHub");
        }
    }
    Ok(changed)
}

/// The commit a release's tag points at, from the first signed fact that knows it:
/// `target_commitish` when it is a commit, then the tag itself (its push webhook, or an
/// OIDC-signed report of a run for it). A CI claim never decides it.
async fn resolve_commit(
    conn: &mut PgConnection,
    repository: &str,
    event: &ReleaseEvent,
) -> Result<Option<(String, String)>, StoreError> {
    if let Some(commit) = event.target_commit() {
        return Ok(Some((
            commit.as_str().to_owned(),
            "target_commitish".to_owned(),
        )));
    }
    let tagged = sqlx::query!(
        r#"SELECT commit_sha AS "commit_sha!", source FROM git_tags
           WHERE repository = $1 AND tag = $2 AND commit_sha IS NOT NULL"#,
        repository,
        event.tag_name
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(tagged.map(|t| (t.commit_sha, t.source)))
}

/// Records a release delivery: the row, a fresh resolution when the tag was renamed (or
/// the target that resolved it changed), and the publications brought in line. An event
/// older, in GitHub's own time, than the last one applied changes nothing. The caller
/// holds the repository's lock.
pub(crate) async fn apply_release(
    conn: &mut PgConnection,
    target: &Target,
    repository: &str,
    event: &ReleaseEvent,
    resolve_via_api: bool,
) -> Result<AppliedRelease, StoreError> {
    let before = sqlx::query!(
        r#"SELECT id, state, tag_name, target_commitish,
                  (prerelease = 1) AS "prerelease!", commit_sha, commit_source, changed_at
           FROM releases WHERE repository = $1 AND github_id = $2"#,
        repository,
        event.release_id
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(before) = &before
        && let (Some(held), Some(incoming)) = (&before.changed_at, &event.changed_at)
        && incoming < held
    {
        let release = fetch_release(conn, before.id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("release {} vanished", before.id)))?;
        return Ok(AppliedRelease {
            reason: Some(format!(
                "GitHub changed this release at {incoming}, before the change hoist holds ({held}): an older event changes nothing"
            )),
            summary: summary(release),
            stale: true,
        });
    }
    let before_state = match &before {
        Some(b) => Some(release_state(&b.state)?),
        None => None,
    };
    let after = event.state_after(before_state);
    let (state, action) = (after.as_str(), event.action.as_str());
    // A renamed tag names another commit, maybe; so may a new target when the target was
    // what resolved it. Either way the old resolution no longer holds.
    let stale = before.as_ref().is_some_and(|b| {
        b.tag_name != event.tag_name
            || (b.target_commitish != event.target_commitish
                && b.commit_source.as_deref() == Some("target_commitish"))
    });
    // Resolved before the row is written, so one statement writes it: the commit it has
    // (unless that no longer holds), else the first signed fact that names one.
    let keeps_commit = before
        .as_ref()
        .is_some_and(|b| b.commit_sha.is_some() && !stale);
    let found = if keeps_commit {
        None
    } else {
        resolve_commit(conn, repository, event).await?
    };
    let (found_commit, found_source) = match &found {
        Some((commit, source)) => (Some(commit.as_str()), Some(source.as_str())),
        None => (None, None),
    };
    let raw = sqlx::query_as!(
        RawRelease,
        r#"INSERT INTO releases AS r
               (repository, github_id, tag_name, target_commitish, prerelease, state, last_action,
                changed_at, commit_sha, commit_source)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $10, $11)
           ON CONFLICT (repository, github_id) DO UPDATE SET
               tag_name = excluded.tag_name,
               target_commitish = excluded.target_commitish,
               prerelease = excluded.prerelease,
               state = excluded.state,
               last_action = excluded.last_action,
               changed_at = coalesce(excluded.changed_at, r.changed_at),
               commit_sha = CASE WHEN $9 OR r.commit_sha IS NULL THEN $10 ELSE r.commit_sha END,
               commit_source = CASE WHEN $9 OR r.commit_sha IS NULL THEN $11
                                    ELSE r.commit_source END,
               updated_at = hoist_now()
           RETURNING id, repository, github_id, tag_name AS "tag", target_commitish,
                     (prerelease = 1) AS "prerelease!", state, last_action,
                     commit_sha AS "commit?", commit_source, claim_conflict, created_at, updated_at
        "#,
        repository,
        event.release_id,
        event.tag_name,
        event.target_commitish,
        i64::from(event.prerelease),
        state,
        action,
        event.changed_at,
        stale,
        found_commit,
        found_source
    )
    .fetch_one(&mut *conn)
    .await?;
    let mut release = ReleaseRow::try_from(raw)?;
    let id = release.id;
    if found.is_some() && note_claim_conflicts(conn, repository, &event.tag_name).await? {
        release.claim_conflict = fetch_claim_conflict(conn, id).await?;
    }
    let changed = Before {
        prerelease: before.as_ref().map(|b| b.prerelease),
        tag: before.as_ref().map(|b| b.tag_name.as_str()),
        fresh: before.is_none(),
    };
    sync_release_row(conn, &release, target, changed).await?;
    let reason = match (release.state, &release.commit) {
        (ReleaseState::Published, None) if resolve_via_api => {
            enqueue(conn, &Job::ResolveRelease { release_id: id }).await?;
            Some(format!(
                "asking GitHub's API for the commit of tag {}",
                event.tag_name
            ))
        }
        (ReleaseState::Published, None) => Some(format!(
            "commit of {} not yet confirmed by GitHub: push the tag, report a build with a GitHub Actions OIDC token from a run of refs/tags/{}, or set [github] api_url",
            event.tag_name, event.tag_name
        )),
        (ReleaseState::Draft, _) => Some("draft releases are not published".to_owned()),
        _ => None,
    };
    Ok(AppliedRelease {
        reason,
        summary: summary(release),
        stale: false,
    })
}

impl Postgres {
    /// Brings every release of `repository` and every default-branch build in line with
    /// its publications, queueing what is missing. Idempotent; `hoist serve` runs it at
    /// start, so work an older version queued in another shape (or a repository newly
    /// configured) is not lost. Under the repository's lock: replicas starting together
    /// resync one at a time, and never beside a delivery or a build report.
    pub async fn resync_repository(
        &self,
        target: &Target,
        repository: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        crate::lock(&mut tx, "repository", repository).await?;
        let releases = sqlx::query_scalar!(
            "SELECT id FROM releases WHERE repository = $1 ORDER BY id",
            repository
        )
        .fetch_all(&mut *tx)
        .await?;
        for release_id in releases {
            sync_release(&mut tx, release_id, target, Before::default()).await?;
        }
        let branch_ref = format!("refs/heads/{}", target.default_branch);
        let commits = sqlx::query_scalar!(
            r#"SELECT DISTINCT commit_sha AS "commit_sha!" FROM builds
               WHERE repository = $1 AND git_ref = $2"#,
            repository,
            branch_ref
        )
        .fetch_all(&mut *tx)
        .await?;
        for commit in commits {
            let (publication, created) =
                ensure_publication(&mut tx, &target.image, repository, &commit, None).await?;
            if created {
                enqueue(
                    &mut tx,
                    &Job::Publish {
                        publication_id: publication.id,
                    },
                )
                .await?;
            }
        }
        tx.commit().await?;
        self.notify_workers();
        Ok(())
    }

    /// Gives a release the commit GitHub's API named, if it still has none, and brings its
    /// publications in line. Returns whether it was resolved now. Under the lock of the
    /// release's repository (a release never changes repository, so it is read first).
    pub async fn resolve_release_from_api(
        &self,
        target: &Target,
        release_id: i64,
        commit: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        let repository =
            sqlx::query_scalar!("SELECT repository FROM releases WHERE id = $1", release_id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(repository) = &repository {
            crate::lock(&mut tx, "repository", repository).await?;
        }
        let resolved = sqlx::query!(
            "UPDATE releases SET commit_sha = $1, commit_source = 'github_api',
                 updated_at = hoist_now()
             WHERE id = $2 AND commit_sha IS NULL",
            commit,
            release_id
        )
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if resolved {
            let release = fetch_release(&mut tx, release_id)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("release {release_id} vanished")))?;
            note_claim_conflicts(&mut tx, release.repository.as_str(), &release.tag).await?;
            sync_release(&mut tx, release_id, target, Before::default()).await?;
        }
        tx.commit().await?;
        self.notify_workers();
        Ok(resolved)
    }

    /// Releases on which a CI claim contradicts GitHub, for `/metrics`.
    pub async fn claim_conflicts(&self) -> Result<i64, StoreError> {
        let n = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM releases WHERE claim_conflict IS NOT NULL"#
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(n)
    }

    pub async fn release(&self, id: i64) -> Result<Option<ReleaseRow>, StoreError> {
        let mut conn = self.writer.acquire().await?;
        fetch_release(&mut conn, id).await
    }

    /// Releases of a repository, oldest first, after release id `after`.
    pub async fn list_releases(
        &self,
        repository: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ReleaseRow>, StoreError> {
        let rows = sqlx::query_as!(
            RawRelease,
            r#"SELECT id, repository, github_id, tag_name AS "tag", target_commitish,
                      (prerelease = 1) AS "prerelease!", state, last_action,
                      commit_sha AS "commit", commit_source, claim_conflict, created_at, updated_at
               FROM releases
               WHERE repository = $1 AND id > $2
               ORDER BY id LIMIT $3"#,
            repository,
            after,
            limit
        )
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(ReleaseRow::try_from).collect()
    }
}
