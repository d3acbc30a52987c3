//! What the two ingress doors write: webhook deliveries (deduplicated, with the answer
//! given kept for redeliveries) and CI builds, each in one transaction with the jobs they
//! cause. Release -> commit resolution happens here too, from whichever fact arrives last.

use hoist_domain::RepoName;
use hoist_domain::build::BuildReport;
use hoist_domain::github::{PushEvent, ReleaseAction, ReleaseEvent, ReleaseState};
use hoist_domain::job::Job;
use serde::{Deserialize, Serialize};
use sqlx::SqliteConnection;

use crate::{Store, StoreError};

/// The headers of a verified delivery.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub delivery_id: &'a str,
    pub event: &'a str,
    pub action: Option<&'a str>,
    pub repository: Option<&'a str>,
}

/// What a delivery means for hoist, decided by the caller from the event and the config.
#[derive(Debug, Clone, Copy)]
pub enum WebhookEffect<'a> {
    Ping,
    /// Recorded for the audit trail, nothing else (e.g. an unconfigured repository).
    Ignore(&'a str),
    /// `repository` is the configured spelling of the event's repository.
    Release {
        repository: &'a RepoName,
        event: &'a ReleaseEvent,
        /// Ask GitHub's REST API for the commit when nothing else knows it yet.
        resolve_via_api: bool,
    },
    /// A push of `refs/tags/<tag>`.
    TagPush {
        repository: &'a RepoName,
        tag: &'a str,
        event: &'a PushEvent,
    },
}

/// The answer to a delivery, stored with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookAnswer {
    pub delivery: String,
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<ReleaseSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseSummary {
    pub id: i64,
    pub tag: String,
    pub state: String,
    pub commit: Option<String>,
    pub commit_source: Option<String>,
}

/// A delivery as recorded: the HTTP status and body to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// True when this delivery id was seen before; nothing new was stored.
    pub duplicate: bool,
    pub status: u16,
    pub answer: WebhookAnswer,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildRow {
    pub id: i64,
    pub repository: String,
    pub commit: String,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub platform: Option<String>,
    pub image: String,
    pub digest: String,
    pub reported_by: String,
    pub created_at: String,
    pub updated_at: String,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseRow {
    pub id: i64,
    pub repository: String,
    pub github_id: i64,
    pub tag: String,
    pub target_commitish: String,
    pub prerelease: bool,
    pub state: String,
    pub last_action: String,
    pub commit: Option<String>,
    pub commit_source: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

async fn enqueue(conn: &mut SqliteConnection, job: &Job) -> Result<(), StoreError> {
    let kind = job.kind();
    let payload = job.to_payload();
    sqlx::query!(
        "INSERT INTO jobs (kind, payload) VALUES (?, ?)",
        kind,
        payload
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Gives every release of `repository` tagged `tag` that still lacks a commit this one,
/// and queues the published ones.
async fn resolve_waiting_releases(
    conn: &mut SqliteConnection,
    repository: &str,
    tag: &str,
    commit: &str,
    source: &str,
) -> Result<(), StoreError> {
    let resolved = sqlx::query!(
        r#"UPDATE releases
           SET commit_sha = ?1, commit_source = ?2, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
           WHERE repository = ?3 AND tag_name = ?4 AND commit_sha IS NULL
           RETURNING id AS "id!", state"#,
        commit,
        source,
        repository,
        tag
    )
    .fetch_all(&mut *conn)
    .await?;
    for release in resolved {
        if release.state == ReleaseState::Published.as_str() {
            let job = Job::Release {
                release_id: release.id,
                action: ReleaseAction::Published.as_str().to_owned(),
            };
            enqueue(conn, &job).await?;
        }
    }
    Ok(())
}

/// The commit a release's tag points at, from the first source that knows it, in the order
/// the design gives: a build reported for the tag, `target_commitish` when it is a commit,
/// a tag push.
async fn resolve_commit(
    conn: &mut SqliteConnection,
    repository: &str,
    event: &ReleaseEvent,
) -> Result<Option<(String, &'static str)>, StoreError> {
    let git_ref = format!("refs/tags/{}", event.tag_name);
    let from_build = sqlx::query_scalar!(
        "SELECT commit_sha FROM builds WHERE repository = ? AND git_ref = ?
         ORDER BY updated_at DESC, id DESC LIMIT 1",
        repository,
        git_ref
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(commit) = from_build {
        return Ok(Some((commit, "build")));
    }
    if let Some(commit) = event.target_commit() {
        return Ok(Some((commit.as_str().to_owned(), "target_commitish")));
    }
    let from_push = sqlx::query_scalar!(
        "SELECT commit_sha FROM git_tags WHERE repository = ? AND tag = ?",
        repository,
        event.tag_name
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(from_push.map(|commit| (commit, "push")))
}

async fn apply_release(
    conn: &mut SqliteConnection,
    repository: &str,
    event: &ReleaseEvent,
    resolve_via_api: bool,
) -> Result<(Option<String>, ReleaseSummary), StoreError> {
    let before = sqlx::query_scalar!(
        "SELECT state FROM releases WHERE repository = ? AND github_id = ?",
        repository,
        event.release_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .and_then(|state| ReleaseState::parse(&state));
    let after = event.state_after(before);
    let state = after.as_str();
    let action = event.action.as_str();
    let row = sqlx::query!(
        r#"INSERT INTO releases
               (repository, github_id, tag_name, target_commitish, prerelease, state, last_action)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
           ON CONFLICT (repository, github_id) DO UPDATE SET
               tag_name = excluded.tag_name,
               target_commitish = excluded.target_commitish,
               prerelease = excluded.prerelease,
               state = excluded.state,
               last_action = excluded.last_action,
               updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
           RETURNING id AS "id!", commit_sha, commit_source"#,
        repository,
        event.release_id,
        event.tag_name,
        event.target_commitish,
        event.prerelease,
        state,
        action
    )
    .fetch_one(&mut *conn)
    .await?;

    let (mut commit, mut source) = (row.commit_sha, row.commit_source);
    if commit.is_none()
        && let Some((found, from)) = resolve_commit(conn, repository, event).await?
    {
        sqlx::query!(
            "UPDATE releases SET commit_sha = ?, commit_source = ? WHERE id = ?",
            found,
            from,
            row.id
        )
        .execute(&mut *conn)
        .await?;
        commit = Some(found);
        source = Some(from.to_owned());
    }

    let withdrawal = matches!(
        event.action,
        ReleaseAction::Deleted | ReleaseAction::Unpublished
    );
    let reason = if event.is_actionable(before) {
        if withdrawal || commit.is_some() {
            let job = Job::Release {
                release_id: row.id,
                action: action.to_owned(),
            };
            enqueue(conn, &job).await?;
            None
        } else if resolve_via_api {
            enqueue(conn, &Job::ResolveRelease { release_id: row.id }).await?;
            Some(format!(
                "asking GitHub's API for the commit of tag {}",
                event.tag_name
            ))
        } else {
            Some(format!(
                "waiting for the commit of tag {}: report a build with ref refs/tags/{} or push the tag",
                event.tag_name, event.tag_name
            ))
        }
    } else if after == ReleaseState::Draft {
        Some("draft releases are not published".to_owned())
    } else {
        None
    };
    let summary = ReleaseSummary {
        id: row.id,
        tag: event.tag_name.clone(),
        state: state.to_owned(),
        commit,
        commit_source: source,
    };
    Ok((reason, summary))
}

async fn apply_tag_push(
    conn: &mut SqliteConnection,
    repository: &str,
    tag: &str,
    event: &PushEvent,
) -> Result<(&'static str, String), StoreError> {
    if event.deleted {
        sqlx::query!(
            "DELETE FROM git_tags WHERE repository = ? AND tag = ?",
            repository,
            tag
        )
        .execute(&mut *conn)
        .await?;
        return Ok(("accepted", format!("tag {tag} deleted")));
    }
    let Some(commit) = &event.head_commit else {
        return Ok(("ignored", "the push names no head_commit".to_owned()));
    };
    let commit = commit.as_str();
    sqlx::query!(
        "INSERT INTO git_tags (repository, tag, commit_sha) VALUES (?1, ?2, ?3)
         ON CONFLICT (repository, tag) DO UPDATE SET
             commit_sha = excluded.commit_sha,
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        repository,
        tag,
        commit
    )
    .execute(&mut *conn)
    .await?;
    resolve_waiting_releases(conn, repository, tag, commit, "push").await?;
    Ok(("accepted", format!("tag {tag} is commit {commit}")))
}

impl Store {
    /// Gives a release the commit GitHub's API named, if it still has none, and queues its
    /// publication when it is published. Returns whether it was resolved now.
    pub async fn resolve_release_from_api(
        &self,
        release_id: i64,
        commit: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        let resolved = sqlx::query!(
            r#"UPDATE releases SET commit_sha = ?1, commit_source = 'github_api',
                   updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
               WHERE id = ?2 AND commit_sha IS NULL
               RETURNING state"#,
            commit,
            release_id
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = resolved else {
            return Ok(false);
        };
        if row.state == ReleaseState::Published.as_str() {
            let job = Job::Release {
                release_id,
                action: ReleaseAction::Published.as_str().to_owned(),
            };
            enqueue(&mut tx, &job).await?;
        }
        tx.commit().await?;
        self.notify_workers();
        Ok(true)
    }

    /// Records a verified delivery and its effect in one transaction. A delivery id seen
    /// before changes nothing and gets the first answer back.
    pub async fn record_webhook(
        &self,
        delivery: &Delivery<'_>,
        effect: WebhookEffect<'_>,
    ) -> Result<Recorded, StoreError> {
        let mut tx = self.writer.begin().await?;
        let inserted = sqlx::query_scalar!(
            r#"INSERT INTO deliveries
                   (source, delivery_id, event, action, repository, outcome, status, response)
               VALUES ('github', ?1, ?2, ?3, ?4, 'pending', 0, '{}')
               ON CONFLICT (source, delivery_id) DO NOTHING
               RETURNING id AS "id!""#,
            delivery.delivery_id,
            delivery.event,
            delivery.action,
            delivery.repository
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = inserted else {
            let first = sqlx::query!(
                "SELECT status, response FROM deliveries WHERE source = 'github' AND delivery_id = ?",
                delivery.delivery_id
            )
            .fetch_one(&mut *tx)
            .await?;
            tx.rollback().await?;
            let answer = serde_json::from_str(&first.response)
                .map_err(|e| StoreError::Corrupt(format!("stored answer: {e}")))?;
            return Ok(Recorded {
                duplicate: true,
                status: u16::try_from(first.status).unwrap_or(202),
                answer,
            });
        };

        let mut answer = WebhookAnswer {
            delivery: delivery.delivery_id.to_owned(),
            outcome: "accepted".to_owned(),
            reason: None,
            release: None,
        };
        let mut status = 202u16;
        match effect {
            WebhookEffect::Ping => {
                status = 200;
                answer.outcome = "pong".to_owned();
            }
            WebhookEffect::Ignore(reason) => {
                answer.outcome = "ignored".to_owned();
                answer.reason = Some(reason.to_owned());
            }
            WebhookEffect::Release {
                repository,
                event,
                resolve_via_api,
            } => {
                let (reason, release) =
                    apply_release(&mut tx, repository.as_str(), event, resolve_via_api).await?;
                answer.reason = reason;
                answer.release = Some(release);
            }
            WebhookEffect::TagPush {
                repository,
                tag,
                event,
            } => {
                let (outcome, reason) =
                    apply_tag_push(&mut tx, repository.as_str(), tag, event).await?;
                answer.outcome = outcome.to_owned();
                answer.reason = Some(reason);
            }
        }
        let response =
            serde_json::to_string(&answer).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query!(
            "UPDATE deliveries SET outcome = ?, reason = ?, status = ?, response = ? WHERE id = ?",
            answer.outcome,
            answer.reason,
            status,
            response,
            id
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.notify_workers();
        Ok(Recorded {
            duplicate: false,
            status,
            answer,
        })
    }

    /// Records a CI build: new, the same again, a replacement while unpublished, or refused
    /// because its commit is already being published or was.
    pub async fn record_build(
        &self,
        report: &BuildReport,
        reported_by: &str,
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

        let mut tx = self.writer.begin().await?;
        let existing = fetch_build(&mut tx, repository, commit, platform.as_deref()).await?;
        let outcome = match existing {
            Some(existing) if existing.digest == digest && existing.image == image => {
                if existing.git_ref.is_none() && report.git_ref.is_some() {
                    sqlx::query!(
                        "UPDATE builds SET git_ref = ? WHERE id = ?",
                        report.git_ref,
                        existing.id
                    )
                    .execute(&mut *tx)
                    .await?;
                }
                BuildOutcome::Unchanged(existing)
            }
            Some(existing) => {
                let published = sqlx::query_scalar!(
                    r#"SELECT count(*) AS "n!: i64" FROM publications
                       WHERE repository = ? AND commit_sha = ? AND state IN ('running', 'succeeded')"#,
                    repository,
                    commit
                )
                .fetch_one(&mut *tx)
                .await?;
                if published > 0 {
                    tx.rollback().await?;
                    return Ok(BuildOutcome::AlreadyPublished { existing });
                }
                sqlx::query!(
                    "UPDATE builds SET image = ?, digest = ?, git_ref = ifnull(?, git_ref), reported_by = ?,
                         updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                     WHERE id = ?",
                    image,
                    digest,
                    report.git_ref,
                    reported_by,
                    existing.id
                )
                .execute(&mut *tx)
                .await?;
                let build = fetch_build(&mut tx, repository, commit, platform.as_deref())
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("the replaced build vanished".to_owned()))?;
                BuildOutcome::Replaced {
                    build,
                    previous_digest: existing.digest,
                }
            }
            None => {
                sqlx::query!(
                    "INSERT INTO builds (repository, commit_sha, git_ref, platform, image, digest, reported_by)
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                    repository,
                    commit,
                    report.git_ref,
                    platform,
                    image,
                    digest,
                    reported_by
                )
                .execute(&mut *tx)
                .await?;
                let build = fetch_build(&mut tx, repository, commit, platform.as_deref())
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("the new build vanished".to_owned()))?;
                BuildOutcome::Recorded(build)
            }
        };
        if let Some(tag) = report.tag() {
            resolve_waiting_releases(&mut tx, repository, tag, commit, "build").await?;
        }
        if !matches!(outcome, BuildOutcome::Unchanged(_)) {
            let job = Job::Builds {
                repository: repository.to_owned(),
                commit: commit.to_owned(),
            };
            enqueue(&mut tx, &job).await?;
        }
        tx.commit().await?;
        self.notify_workers();
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
            BuildRow,
            r#"SELECT id AS "id!", repository, commit_sha AS "commit", git_ref, platform, image, digest,
                      reported_by, created_at, updated_at
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
        Ok(rows)
    }

    /// Releases of a repository, oldest first, after release id `after`.
    pub async fn list_releases(
        &self,
        repository: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ReleaseRow>, StoreError> {
        let rows = sqlx::query_as!(
            ReleaseRow,
            r#"SELECT id AS "id!", repository, github_id, tag_name AS "tag", target_commitish,
                      prerelease AS "prerelease: bool", state, last_action,
                      commit_sha AS "commit", commit_source, created_at, updated_at
               FROM releases
               WHERE repository = ?1 AND id > ?2
               ORDER BY id LIMIT ?3"#,
            repository,
            after,
            limit
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows)
    }
}

async fn fetch_build(
    conn: &mut SqliteConnection,
    repository: &str,
    commit: &str,
    platform: Option<&str>,
) -> Result<Option<BuildRow>, StoreError> {
    let row = sqlx::query_as!(
        BuildRow,
        r#"SELECT id AS "id!", repository, commit_sha AS "commit", git_ref, platform, image, digest,
                  reported_by, created_at, updated_at
           FROM builds
           WHERE repository = ?1 AND commit_sha = ?2 AND ifnull(platform, '') = ifnull(?3, '')"#,
        repository,
        commit,
        platform
    )
    .fetch_optional(conn)
    .await?;
    Ok(row)
}
