//! The tag step and the jobs that move tags outside a publication: a withdrawn
//! version's floating tags going back, and an operator's force. Every decision here is
//! taken under the image's lock (`lock_image`: one worker of one replica at a time) from
//! the live releases, through one pure plan.

use std::time::SystemTime;

use hoist_domain::config::Repository;
use hoist_domain::tags::{
    ComputedTags, EventContext, GitRef, PlannedTag, PublicationPlan, RollbackTarget, Version,
    plan_deletion,
};
use hoist_domain::{CommitSha, PublicationEvent, ReleaseState};
use hoist_registry::{Manifest, Repository as RegistryRepo};
use hoist_store::{LiveVersion, MoveIntent, MoveOutcome, PublicationRow, TagMove};

use crate::PipelineError;
use crate::error::RegistryContext;
use crate::publish::{parse, refused};
use crate::worker::Pipeline;

/// What a publication writes its tags for: the release tag it was indexed under, or its
/// branch.
pub(crate) struct TagSubject<'a> {
    pub version_tag: Option<&'a str>,
    pub index: &'a Manifest,
    pub index_digest: &'a str,
}

impl Pipeline {
    /// Writes a publication's tags, under the image's lock: pinned first (refused before
    /// anything moves if one points elsewhere), then plain, then the floating tags that move
    /// forward; each PUT followed by its ledger event. Returns false when the publication
    /// moved on meanwhile (withdrawn or re-decided: the jobs queued with that do the rest).
    pub(crate) async fn write_tags(
        &self,
        repo: &Repository,
        publication: &PublicationRow,
        subject: TagSubject<'_>,
    ) -> Result<bool, PipelineError> {
        let id = publication.id;
        let image = repo.image.name();
        let target = RegistryRepo::of(&repo.image);
        let mut serialized = self.store.lock_image(&image).await?;
        // The same statement checks it still runs: an edit or a withdrawal that committed
        // before this is seen here, one after it sees the version recorded and rolls back.
        if !self.store.begin_tags(id, subject.version_tag).await? {
            tracing::info!("publication moved on before its tags; leaving them");
            return Ok(false);
        }
        // A branch publication shares its commit's release index, even one that succeeded
        // while this one copied.
        let mut shared = None;
        if publication.release_id.is_none()
            && let Some(digest) = self
                .store
                .release_index_of_commit(&image, publication.commit.as_str())
                .await?
            && digest != subject.index_digest
        {
            let index = self
                .registry
                .manifest(&target, &digest)
                .await
                .context(|| format!("reading the release index {digest}"))?;
            shared = Some((index, digest));
        }
        let subject = match &shared {
            Some((index, digest)) => TagSubject {
                version_tag: subject.version_tag,
                index,
                index_digest: digest,
            },
            None => subject,
        };
        // The release as it is now: its prerelease flag may have changed while copying.
        let release = match publication.release_id {
            Some(release_id) => self.store.release(release_id).await?,
            None => None,
        };
        let flagged_prerelease = release.as_ref().is_some_and(|r| r.prerelease);
        let git_ref = match subject.version_tag {
            Some(tag) => GitRef::Tag(tag.to_owned()),
            None => GitRef::Branch(repo.default_branch.clone()),
        };
        let commit: CommitSha = parse("commit", publication.commit.as_str())?;
        let computed = compute_tags(repo, git_ref, commit, created_at(publication))?;
        let live = self.store.live_versions(&image, Some(id)).await?;
        let mut plan = PublicationPlan::new(&computed, &versions(&live), flagged_prerelease);
        for held in &plan.held_back {
            tracing::info!(tag = held.tag.as_str(), reason = ?held.reason, "floating tag held back");
        }
        if publication.release_id.is_none() {
            let mut kept = Vec::new();
            for write in plan.writes {
                match self
                    .newer_branch_holder(repo, publication, write.tag.as_str())
                    .await?
                {
                    Some(holder) => tracing::info!(
                        tag = write.tag.as_str(),
                        %holder,
                        "branch tag held back: a newer commit of the branch holds it"
                    ),
                    None => kept.push(write),
                }
            }
            plan.writes = kept;
        }

        for write in &plan.writes {
            let tag = write.tag.as_str();
            let current = match self.store.tag_target(&image, tag).await? {
                Some((current, immutable)) => (immutable || write.immutable).then_some(current),
                // Not in the ledger: the registry may still hold it (a crash between a PUT
                // and its ledger event, or a tag pushed by hand), and it must not be lost.
                None if write.immutable => self
                    .registry
                    .manifest_head(&target, tag)
                    .await
                    .context(|| format!("looking for {image}:{tag}"))?
                    .and_then(|head| head.digest)
                    .map(|d| d.to_string()),
                None => None,
            };
            if let Some(current) = current
                && current != subject.index_digest
            {
                return Err(refused(format!(
                    "tag {tag} already points at {current}; it is immutable and will not be re-pointed to {}",
                    subject.index_digest
                )));
            }
        }
        let reason = match subject.version_tag {
            Some(tag) => format!("release {tag}"),
            None => format!("commit {}", publication.commit),
        };
        // A commit has one index: what its branch publication wrote moves to the release's.
        let mut writes = plan.writes.clone();
        if publication.release_id.is_some() {
            for tag in self
                .store
                .branch_tags_of_commit(&image, publication.commit.as_str(), subject.index_digest)
                .await?
            {
                if !writes.iter().any(|w| w.tag.as_str() == tag) {
                    writes.push(PlannedTag {
                        tag: parse("branch tag", &tag)?,
                        immutable: false,
                    });
                }
            }
        }
        for write in &writes {
            let tag = write.tag.as_str();
            serialized.confirm().await?;
            self.registry
                .put_manifest(&target, tag, subject.index)
                .await
                .context(|| format!("tagging {image}:{tag}"))?;
            serialized.confirm().await?;
            let outcome = self
                .store
                .move_tag(&TagMove {
                    image: &image,
                    tag,
                    digest: subject.index_digest,
                    immutable: write.immutable,
                    intent: MoveIntent::Publish,
                    reason: &reason,
                    publication_id: Some(id),
                    release_tag: subject.version_tag,
                })
                .await?;
            if let MoveOutcome::Refused { current } = outcome {
                return Err(refused(format!(
                    "tag {tag} already points at {current}; it is immutable"
                )));
            }
        }
        let moved = self
            .store
            .advance_publication(id, PublicationEvent::Succeed, None, None)
            .await?;
        if moved.applied() {
            tracing::info!(%image, index = %subject.index_digest, "publication succeeded");
        } else {
            tracing::info!(%image, "publication moved on while its tags were written");
        }
        Ok(moved.applied())
    }

    /// The commit holding `tag`, when it is later on the default branch than this
    /// publication's: a branch's tags never move back. Later means later in push order
    /// when pushes named both commits; whichever a push named beats one none did; else
    /// reported later.
    async fn newer_branch_holder(
        &self,
        repo: &Repository,
        publication: &PublicationRow,
        tag: &str,
    ) -> Result<Option<String>, PipelineError> {
        let Some(holder) = self.store.tag_holder(&repo.image.name(), tag).await? else {
            return Ok(None);
        };
        // The holder may be the release publication its commit's branch tags moved to.
        let (Some(holder_id), Some(holder_commit)) = (holder.publication_id, holder.commit) else {
            return Ok(None);
        };
        if holder_commit == publication.commit.as_str() {
            return Ok(None);
        }
        let (repository, branch) = (repo.github.as_str(), repo.default_branch.as_str());
        let ours = self
            .store
            .branch_position(repository, branch, publication.commit.as_str())
            .await?;
        let theirs = self
            .store
            .branch_position(repository, branch, &holder_commit)
            .await?;
        // A commit no push placed on the branch (confirmed by an OIDC report or the API:
        // on the branch, but not where) never displaces one a push placed: it may be an
        // old commit, re-run or re-reported. Without pushes for either, report order: the
        // branch publications of the two commits, created as their builds came in.
        let newer = match (ours, theirs) {
            (Some(ours), Some(theirs)) => theirs > ours,
            (None, Some(_)) => true,
            (Some(_), None) => false,
            _ => holder.branch_publication_id.unwrap_or(holder_id) > publication.id,
        };
        Ok(newer.then_some(holder_commit))
    }

    /// Version `tag` of release `release_id`, on `commit`, published as index `withdrawn`,
    /// no longer holds its floating tags: each still at that index goes back to the highest
    /// live version in its scope. A tag no live version is in scope for stays where it is.
    pub(crate) async fn roll_back(
        &self,
        release_id: i64,
        tag: &str,
        commit: &str,
        withdrawn: &str,
    ) -> Result<(), PipelineError> {
        let Some(release) = self.store.release(release_id).await? else {
            return Ok(());
        };
        let Some(repo) = self.repository(&release.repository) else {
            return Ok(());
        };
        let image = repo.image.name();
        let target = RegistryRepo::of(&repo.image);
        let mut serialized = self.store.lock_image(&image).await?;
        let sha: CommitSha = parse("commit", commit)?;
        let computed = compute_tags(repo, GitRef::Tag(tag.to_owned()), sha, SystemTime::now())?;
        let live = self.store.live_versions(&image, None).await?;
        let why = if release.state != ReleaseState::Published {
            format!("release {tag} {}", release.state)
        } else if release.tag != tag {
            format!("release {tag} renamed to {}", release.tag)
        } else if release.prerelease {
            format!("release {tag} marked prerelease")
        } else {
            format!("release {tag} moved to another commit")
        };
        for rollback in plan_deletion(&computed, &versions(&live)) {
            let RollbackTarget::Version(version) = &rollback.to else {
                tracing::info!(
                    tag = rollback.tag.as_str(),
                    "no version left in scope; tag left where it is"
                );
                continue;
            };
            let Some(holder) = live.iter().rev().find(|v| v.tag == version.raw()) else {
                continue;
            };
            let floating = rollback.tag.as_str();
            // Only tags still at the version's index are its to give back: a newer
            // release or an operator's force may hold them now. The registry is asked too,
            // for a PUT whose ledger event a crash kept from being written.
            let held = match self.store.tag_target(&image, floating).await? {
                Some((_, true)) => false,
                Some((digest, false)) if digest == withdrawn => true,
                _ => self
                    .registry
                    .manifest_head(&target, floating)
                    .await
                    .context(|| format!("looking for {image}:{floating}"))?
                    .and_then(|head| head.digest)
                    .is_some_and(|d| d.as_str() == withdrawn),
            };
            if !held || holder.digest == withdrawn {
                continue;
            }
            let manifest = self
                .registry
                .manifest(&target, &holder.digest)
                .await
                .context(|| format!("reading {} to roll back {floating}", holder.digest))?;
            serialized.confirm().await?;
            self.registry
                .put_manifest(&target, floating, &manifest)
                .await
                .context(|| format!("rolling {image}:{floating} back"))?;
            serialized.confirm().await?;
            self.store
                .move_tag(&TagMove {
                    image: &image,
                    tag: floating,
                    digest: &holder.digest,
                    immutable: false,
                    intent: MoveIntent::Rollback,
                    reason: &why,
                    publication_id: None,
                    release_tag: Some(version.raw()),
                })
                .await?;
        }
        Ok(())
    }

    /// Re-points a tag at a digest the image's repository already holds, as an operator
    /// asked, recorded as `force` in the ledger.
    pub(crate) async fn force_tag(
        &self,
        image: &str,
        tag: &str,
        digest: &str,
        operator: &str,
        reason: &str,
    ) -> Result<(), PipelineError> {
        let Some(repo) = self
            .config
            .repositories
            .iter()
            .find(|r| r.image.name() == image)
        else {
            return Err(refused(format!("{image} is not a configured image")));
        };
        let target = RegistryRepo::of(&repo.image);
        let mut serialized = self.store.lock_image(image).await?;
        let manifest =
            self.registry
                .manifest(&target, digest)
                .await
                .map_err(|e| match e.status() {
                    Some(404) => refused(format!(
                        "{image} has no manifest {digest}; a tag can only be forced to one it holds"
                    )),
                    _ => PipelineError::Registry {
                        context: format!("reading {digest} from {image}"),
                        source: Box::new(e),
                    },
                })?;
        serialized.confirm().await?;
        self.registry
            .put_manifest(&target, tag, &manifest)
            .await
            .context(|| format!("tagging {image}:{tag}"))?;
        let why = format!("forced by {operator}: {reason}");
        serialized.confirm().await?;
        self.store
            .move_tag(&TagMove {
                image,
                tag,
                digest,
                immutable: false,
                intent: MoveIntent::Force,
                reason: &why,
                publication_id: None,
                release_tag: None,
            })
            .await?;
        tracing::warn!(%image, tag, digest, operator, "tag forced");
        Ok(())
    }
}

/// The live versions that parse as versions, in publication order.
fn versions(live: &[LiveVersion]) -> Vec<Version> {
    live.iter().filter_map(|v| v.tag.parse().ok()).collect()
}

/// When the publication was created: `{{date}}` renders it, so a re-run writes the same
/// tags.
fn created_at(publication: &PublicationRow) -> SystemTime {
    humantime::parse_rfc3339_weak(&publication.created_at).unwrap_or_else(|_| SystemTime::now())
}

/// The tags the repository's policy gives an event at this ref and commit.
pub(crate) fn compute_tags(
    repo: &Repository,
    git_ref: GitRef,
    commit: CommitSha,
    time: SystemTime,
) -> Result<ComputedTags, PipelineError> {
    let event = EventContext {
        git_ref,
        commit,
        default_branch: repo.default_branch.clone(),
        time,
    };
    repo.tag_policy
        .compute(&event)
        .map_err(|e| refused(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use hoist_domain::tags::{EventContext, GitRef, TagPolicy};
    use hoist_domain::{PublicationState, Step};

    use super::*;

    #[test]
    fn date_tags_render_the_publication_s_creation_not_the_clock() {
        let publication = PublicationRow {
            id: 1,
            image: "ghcr.io/o/a".into(),
            repository: "o/a".parse().unwrap(),
            commit: "a".repeat(40).parse().unwrap(),
            release_id: Some(1),
            state: PublicationState::Running,
            step: Some(Step::Tags),
            error: None,
            index_digest: None,
            version_tag: Some("v1.0.0".into()),
            created_at: "2020-01-02T03:04:05.678Z".into(),
            updated_at: "2026-12-01T00:00:00.000Z".into(),
        };
        let at = created_at(&publication);
        assert_eq!(at, UNIX_EPOCH + Duration::from_millis(1_577_934_245_678));
        let policy = TagPolicy::parse(
            &["type=raw,value=build-{{date 'YYYYMMDD-HHmmss'}}".to_owned()],
            &["latest=false".to_owned()],
        )
        .unwrap();
        let tags = policy
            .compute(&EventContext {
                git_ref: GitRef::Tag("v1.0.0".into()),
                commit: publication.commit.clone(),
                default_branch: "main".into(),
                time: at,
            })
            .unwrap();
        let names: Vec<&str> = tags.names().map(|t| t.as_str()).collect();
        assert_eq!(names, ["build-20200102-030405"]);
    }
}
