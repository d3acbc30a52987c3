//! Webhook deliveries: verified, deduplicated on `X-GitHub-Delivery`, the answer given
//! kept for redeliveries, and their effect (a release, a tag push) recorded in the same
//! transaction as the delivery.

use hoist_domain::RepoName;
use hoist_domain::github::{PushEvent, ReleaseEvent};
use serde::{Deserialize, Serialize};
use sqlx::SqliteConnection;

use crate::builds::builds_changed;
use crate::releases::{apply_release, resolve_waiting_releases};
use crate::{Sqlite, StoreError};

/// Where a configured repository publishes, as ingress tells the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The image name, without tag or digest.
    pub image: String,
    pub default_branch: String,
}

impl Target {
    /// Where a configured repository publishes.
    pub fn of(repo: &hoist_domain::config::Repository) -> Target {
        Target {
            image: repo.image.name(),
            default_branch: repo.default_branch.clone(),
        }
    }
}

/// The headers of a verified delivery.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub delivery_id: &'a str,
    pub event: &'a str,
    pub action: Option<&'a str>,
    pub repository: Option<&'a str>,
    /// `hoist_domain::github::body_digest` of the verified body.
    pub body_sha256: &'a str,
}

/// What a delivery means for hoist, decided by the caller from the event and the config.
#[derive(Debug, Clone)]
pub enum WebhookEffect<'a> {
    Ping,
    /// Recorded for the audit trail, nothing else (e.g. an unconfigured repository).
    Ignore(&'a str),
    /// `repository` is the configured spelling of the event's repository, `target` where
    /// it publishes.
    Release {
        repository: &'a RepoName,
        target: Target,
        event: &'a ReleaseEvent,
        /// Ask GitHub's REST API for the commit when nothing else knows it yet.
        resolve_via_api: bool,
    },
    /// A push of `refs/heads/<branch>`: the order of its commits.
    BranchPush {
        repository: &'a RepoName,
        target: Target,
        branch: &'a str,
        event: &'a PushEvent,
    },
    /// A push of `refs/tags/<tag>`.
    TagPush {
        repository: &'a RepoName,
        target: Target,
        tag: &'a str,
        event: &'a PushEvent,
    },
}

/// The answer to a delivery, stored with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookAnswer {
    pub delivery: String,
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<ReleaseSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// True when this delivery id, or this very body, was seen before: nothing changed.
    pub duplicate: bool,
    pub status: u16,
    pub answer: WebhookAnswer,
}

async fn apply_tag_push(
    conn: &mut SqliteConnection,
    target: &Target,
    repository: &str,
    tag: &str,
    event: &PushEvent,
) -> Result<(&'static str, String), StoreError> {
    if event.deleted {
        sqlx::query!(
            "INSERT INTO git_tags (repository, tag, commit_sha, source) VALUES (?1, ?2, NULL, 'push')
             ON CONFLICT (repository, tag) DO UPDATE SET
                 commit_sha = NULL, source = 'push',
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
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
        "INSERT INTO git_tags (repository, tag, commit_sha, source) VALUES (?1, ?2, ?3, 'push')
         ON CONFLICT (repository, tag) DO UPDATE SET
             commit_sha = excluded.commit_sha,
             source = 'push',
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        repository,
        tag,
        commit
    )
    .execute(&mut *conn)
    .await?;
    resolve_waiting_releases(conn, target, repository, tag, commit, "push").await?;
    Ok(("accepted", format!("tag {tag} is commit {commit}")))
}

async fn apply_branch_push(
    conn: &mut SqliteConnection,
    target: &Target,
    repository: &str,
    branch: &str,
    event: &PushEvent,
) -> Result<(&'static str, String), StoreError> {
    if event.deleted {
        return Ok(("ignored", format!("branch {branch} deleted")));
    }
    let mut recorded = 0u64;
    for commit in event.branch_commits() {
        let commit = commit.as_str();
        recorded += sqlx::query!(
            "INSERT OR IGNORE INTO branch_commits (repository, branch, commit_sha) VALUES (?, ?, ?)",
            repository,
            branch,
            commit
        )
        .execute(&mut *conn)
        .await?
        .rows_affected();
        // Signed now: a build claimed for the default branch on this commit may publish.
        if branch == target.default_branch {
            builds_changed(conn, target, repository, commit, None, true).await?;
        }
    }
    let head = event
        .head_commit
        .as_ref()
        .map_or("no head commit", |c| c.as_str());
    Ok((
        "accepted",
        format!("branch {branch} at {head} ({recorded} new commit(s) in push order)"),
    ))
}

/// The answer a delivery id got the first time, for its redelivery.
#[doc(hidden)]
pub fn first_answer(status: i64, response: &str) -> Result<Recorded, StoreError> {
    let answer = serde_json::from_str(response)
        .map_err(|e| StoreError::Corrupt(format!("stored answer: {e}")))?;
    Ok(Recorded {
        duplicate: true,
        status: u16::try_from(status).unwrap_or(202),
        answer,
    })
}

/// Leeway for the clocks of GitHub (`pushed_at`) and hoist (`received_at`) to disagree.
#[doc(hidden)]
pub const CLOCK_SKEW_SECONDS: i64 = 24 * 3600;

/// Whether the effect is a push GitHub took before `horizon` (unix seconds, the newest
/// purged delivery) give or take the clock skew: its first delivery may be purged, so a
/// replay of it could not be recognized. A push without `pushed_at` cannot be placed.
#[doc(hidden)]
pub fn push_older_than(effect: &WebhookEffect<'_>, horizon: i64) -> bool {
    let event = match effect {
        WebhookEffect::BranchPush { event, .. } | WebhookEffect::TagPush { event, .. } => event,
        WebhookEffect::Ping | WebhookEffect::Ignore(_) | WebhookEffect::Release { .. } => {
            return false;
        }
    };
    event
        .pushed_at
        .is_none_or(|at| at <= horizon.saturating_add(CLOCK_SKEW_SECONDS))
}

impl Sqlite {
    /// Records a verified delivery and its effect in one transaction. A delivery id seen
    /// before changes nothing and gets the first answer back.
    pub async fn record_webhook(
        &self,
        delivery: &Delivery<'_>,
        effect: WebhookEffect<'_>,
    ) -> Result<Recorded, StoreError> {
        self.waking_if_queued(self.apply_webhook(delivery, effect))
            .await
    }

    async fn apply_webhook(
        &self,
        delivery: &Delivery<'_>,
        effect: WebhookEffect<'_>,
    ) -> Result<Recorded, StoreError> {
        let mut tx = self.writer.begin().await?;
        // One look for both: the delivery id answered before, and the same body applied
        // before under another id. The delivery row is written last, with its answer.
        let seen = sqlx::query!(
            r#"SELECT
                   (SELECT status FROM deliveries WHERE source = 'github' AND delivery_id = ?1)
                       AS "status: i64",
                   (SELECT response FROM deliveries WHERE source = 'github' AND delivery_id = ?1)
                       AS "response: String",
                   (SELECT delivery_id FROM deliveries
                    WHERE source = 'github' AND body_sha256 = ?2 ORDER BY id LIMIT 1)
                       AS "replay_of: String",
                   (SELECT deliveries_before FROM purge_horizon WHERE id = 1)
                       AS "horizon: i64"
            "#,
            delivery.delivery_id,
            delivery.body_sha256
        )
        .fetch_one(&mut *tx)
        .await?;
        if let (Some(status), Some(response)) = (seen.status, &seen.response) {
            tx.rollback().await?;
            return first_answer(status, response);
        }

        let mut answer = WebhookAnswer {
            delivery: delivery.delivery_id.to_owned(),
            outcome: "accepted".to_owned(),
            reason: None,
            release: None,
        };
        let mut status = 202u16;
        // The signature covers the body, not the delivery id: the same signed body under a
        // new id is a replay (or a copy) of an event already applied, and changes nothing.
        let acts = !matches!(effect, WebhookEffect::Ping | WebhookEffect::Ignore(_));
        let replay_of = seen.replay_of.filter(|_| acts);
        let forgotten = seen.horizon.filter(|h| push_older_than(&effect, *h));
        let effect = match (replay_of, forgotten) {
            (Some(first), _) => {
                answer.outcome = "ignored".to_owned();
                answer.reason = Some(format!(
                    "the same body was delivered before as {first}; a replay changes nothing"
                ));
                None
            }
            (None, Some(_)) => {
                answer.outcome = "ignored".to_owned();
                answer.reason = Some(
                    "the push is older than the deliveries hoist still remembers ([retention] \
                     days): a replay could not be told apart, so it changes nothing"
                        .to_owned(),
                );
                None
            }
            (None, None) => Some(effect),
        };
        let duplicate = effect.is_none();
        match effect {
            None => {}
            Some(effect) => match effect {
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
                    target,
                    event,
                    resolve_via_api,
                } => {
                    let applied = apply_release(
                        &mut tx,
                        &target,
                        repository.as_str(),
                        event,
                        resolve_via_api,
                    )
                    .await?;
                    if applied.stale {
                        answer.outcome = "ignored".to_owned();
                    }
                    answer.reason = applied.reason;
                    answer.release = Some(applied.summary);
                }
                WebhookEffect::BranchPush {
                    repository,
                    target,
                    branch,
                    event,
                } => {
                    let (outcome, reason) =
                        apply_branch_push(&mut tx, &target, repository.as_str(), branch, event)
                            .await?;
                    answer.outcome = outcome.to_owned();
                    answer.reason = Some(reason);
                }
                WebhookEffect::TagPush {
                    repository,
                    target,
                    tag,
                    event,
                } => {
                    let (outcome, reason) =
                        apply_tag_push(&mut tx, &target, repository.as_str(), tag, event).await?;
                    answer.outcome = outcome.to_owned();
                    answer.reason = Some(reason);
                }
            },
        }
        let response =
            serde_json::to_string(&answer).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let stored = sqlx::query!(
            "INSERT INTO deliveries
                 (source, delivery_id, event, action, repository, outcome, reason, status, response,
                  body_sha256)
             VALUES ('github', ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (source, delivery_id) DO NOTHING",
            delivery.delivery_id,
            delivery.event,
            delivery.action,
            delivery.repository,
            answer.outcome,
            answer.reason,
            status,
            response,
            delivery.body_sha256
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if stored == 0 {
            // Recorded meanwhile by another writer (the database keeps delivery ids unique):
            // that one applied, this one is its redelivery.
            tx.rollback().await?;
            let first = sqlx::query!(
                "SELECT status, response FROM deliveries WHERE source = 'github' AND delivery_id = ?",
                delivery.delivery_id
            )
            .fetch_one(&self.writer)
            .await?;
            return first_answer(first.status, &first.response);
        }
        tx.commit().await?;
        Ok(Recorded {
            duplicate,
            status,
            answer,
        })
    }
}
