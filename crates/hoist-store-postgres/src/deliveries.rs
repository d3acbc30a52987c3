//! Webhook deliveries: verified, deduplicated on `X-GitHub-Delivery`, the answer given
//! kept for redeliveries, and their effect (a release, a tag push) recorded in the same
//! transaction as the delivery.
//!
//! Differs from SQLite, where the one writer serializes deliveries: two replicas may
//! receive the same delivery at once, so the delivery row is inserted first, with
//! `ON CONFLICT DO NOTHING`, and that insert is the dedupe point. The loser's insert waits
//! for the winner's transaction; once the winner commits it inserts nothing, and the loser
//! answers with the winner's answer without applying anything. The row's answer is filled
//! in at the end of the same transaction, so nobody ever sees it unanswered. A delivery
//! that acts on a repository takes that repository's lock before its row is inserted, so
//! the replay check (the same body under another id) and the effect are decided alone.

use hoist_domain::github::PushEvent;
use hoist_store::deliveries::{first_answer, push_older_than};
use hoist_store::{Delivery, Recorded, StoreError, Target, WebhookAnswer, WebhookEffect};
use sqlx::PgConnection;

use crate::Postgres;
use crate::builds::builds_changed;
use crate::releases::{apply_release, resolve_waiting_releases};

async fn apply_tag_push(
    conn: &mut PgConnection,
    target: &Target,
    repository: &str,
    tag: &str,
    event: &PushEvent,
) -> Result<(&'static str, String), StoreError> {
    if event.deleted {
        sqlx::query!(
            "INSERT INTO git_tags (repository, tag, commit_sha, source) VALUES ($1, $2, NULL, 'push')
             ON CONFLICT (repository, tag) DO UPDATE SET
                 commit_sha = NULL, source = 'push', updated_at = hoist_now()",
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
        "INSERT INTO git_tags (repository, tag, commit_sha, source) VALUES ($1, $2, $3, 'push')
         ON CONFLICT (repository, tag) DO UPDATE SET
             commit_sha = excluded.commit_sha,
             source = 'push',
             updated_at = hoist_now()",
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
    conn: &mut PgConnection,
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
            "INSERT INTO branch_commits (repository, branch, commit_sha) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
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

/// The repository whose state the effect decides about (and whose lock it takes); `None`
/// for a ping or an ignored delivery, which write their delivery row alone.
fn acting_on<'a>(effect: &WebhookEffect<'a>) -> Option<&'a str> {
    match effect {
        WebhookEffect::Ping | WebhookEffect::Ignore(_) => None,
        WebhookEffect::Release { repository, .. }
        | WebhookEffect::BranchPush { repository, .. }
        | WebhookEffect::TagPush { repository, .. } => Some(repository.as_str()),
    }
}

impl Postgres {
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
        // Repository before the delivery row, always: a duplicate waits on the lock (same
        // repository) or on the row (otherwise), never both ways round.
        if let Some(repository) = acting_on(&effect) {
            crate::lock(&mut tx, "repository", repository).await?;
        }
        // The dedupe point: of two transactions inserting one delivery id, the second
        // waits for the first and, once that commits, inserts nothing. The answer is
        // written at the end of this transaction, before anyone can see the row.
        let inserted = sqlx::query_scalar!(
            "INSERT INTO deliveries
                 (source, delivery_id, event, action, repository, outcome, status, response,
                  body_sha256)
             VALUES ('github', $1, $2, $3, $4, 'accepted', 202, '', $5)
             ON CONFLICT (source, delivery_id) DO NOTHING
             RETURNING id",
            delivery.delivery_id,
            delivery.event,
            delivery.action,
            delivery.repository,
            delivery.body_sha256
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row_id) = inserted else {
            // Answered before, or meanwhile by another replica (committed by now): that
            // one applied, this one is its redelivery.
            tx.rollback().await?;
            let first = sqlx::query!(
                "SELECT status, response FROM deliveries
                 WHERE source = 'github' AND delivery_id = $1",
                delivery.delivery_id
            )
            .fetch_one(&self.writer)
            .await?;
            return first_answer(first.status, &first.response);
        };
        // The same body applied before under another id, and what retention forgot.
        let seen = sqlx::query!(
            r#"SELECT
                   (SELECT delivery_id FROM deliveries
                    WHERE source = 'github' AND body_sha256 = $1 AND id <> $2
                    ORDER BY id LIMIT 1)
                       AS "replay_of?",
                   (SELECT deliveries_before FROM purge_horizon WHERE id = 1)
                       AS "horizon?"
            "#,
            delivery.body_sha256,
            row_id
        )
        .fetch_one(&mut *tx)
        .await?;

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
        sqlx::query!(
            "UPDATE deliveries SET outcome = $1, reason = $2, status = $3, response = $4
             WHERE id = $5",
            answer.outcome,
            answer.reason,
            i64::from(status),
            response,
            row_id
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Recorded {
            duplicate,
            status,
            answer,
        })
    }
}
