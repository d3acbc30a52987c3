//! What each job does: publish a release or a commit's builds, or roll a withdrawn
//! release's floating tags back.
//!
//! A publication: wait for every platform's build -> copy each to the target repository ->
//! verify each is the platform it was reported as -> put the index -> put the tags
//! (immutable first, floating last), each followed by its ledger event.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::{Instant, SystemTime};

use hoist_domain::config::Repository;
use hoist_domain::job::Job;
use hoist_domain::metrics::PipelineCounters;
use hoist_domain::tags::{
    ComputedTags, EventContext, GitRef, RollbackTarget, TagRole, Version, plan_deletion,
    plan_release,
};
use hoist_domain::{CommitSha, ImageRef, Platform};
use hoist_registry::{
    Contents, IndexChild, IndexPlatform, Repository as RegistryRepo, assemble_index,
    platform_from_config,
};
use hoist_store::{MoveIntent, MoveOutcome, PublicationRow, ReleaseRow, TagMove};
use tracing::Instrument;

use crate::PipelineError;
use crate::error::RegistryContext;
use crate::worker::{JobFailure, Pipeline};

fn refused(message: String) -> PipelineError {
    PipelineError::Refused(message)
}

fn parse<T: FromStr>(what: &str, text: &str) -> Result<T, PipelineError>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e| refused(format!("{what}: {e}")))
}

/// Where one platform's image is, as CI reported it.
struct Source {
    platform: Platform,
    image: ImageRef,
}

impl Pipeline {
    pub(crate) async fn handle(&self, job: &Job) -> Result<(), JobFailure> {
        match job {
            Job::Release { release_id, action } => {
                let Some(release) = self.store.release(*release_id).await? else {
                    return Ok(());
                };
                let Some(repo) = self.repository(&release.repository) else {
                    return Ok(());
                };
                match action.as_str() {
                    "deleted" | "unpublished" => {
                        self.roll_back(repo, &release).await.map_err(Into::into)
                    }
                    _ => {
                        let Some(commit) = release.commit.clone() else {
                            return Ok(());
                        };
                        if release.state != "published" {
                            return Ok(());
                        }
                        let publication = self
                            .store
                            .ensure_publication(
                                &repo.image.name(),
                                repo.github.as_str(),
                                &commit,
                                Some(release.id),
                            )
                            .await?;
                        self.publish(repo, publication, Some(&release)).await
                    }
                }
            }
            Job::Builds { repository, commit } => {
                let Some(repo) = self.repository(repository) else {
                    return Ok(());
                };
                let releases = self
                    .store
                    .published_releases_of_commit(repository, commit)
                    .await?;
                for release in &releases {
                    let publication = self
                        .store
                        .ensure_publication(
                            &repo.image.name(),
                            repository,
                            commit,
                            Some(release.id),
                        )
                        .await?;
                    if matches!(publication.state.as_str(), "waiting" | "stalled") {
                        self.publish(repo, publication, Some(release)).await?;
                    }
                }
                // A commit built on the default branch is published without a release too,
                // with the tags the policy gives a branch (sha, edge, ...).
                let default_ref = format!("refs/heads/{}", repo.default_branch);
                let on_default_branch = self
                    .store
                    .builds_of_commit(repository, commit)
                    .await?
                    .iter()
                    .any(|b| b.git_ref.as_deref() == Some(default_ref.as_str()));
                if on_default_branch {
                    let publication = self
                        .store
                        .ensure_publication(&repo.image.name(), repository, commit, None)
                        .await?;
                    if matches!(publication.state.as_str(), "waiting" | "stalled") {
                        self.publish(repo, publication, None).await?;
                    }
                }
                Ok(())
            }
            Job::ResolveRelease { release_id } => {
                let Some(release) = self.store.release(*release_id).await? else {
                    return Ok(());
                };
                let Some(api) = &self.config.github.api else {
                    return Ok(());
                };
                if release.commit.is_some() {
                    return Ok(());
                }
                let commit = crate::github::commit_of_tag(
                    &self.github,
                    api,
                    &release.repository,
                    &release.tag,
                )
                .await?;
                self.store
                    .resolve_release_from_api(release.id, commit.as_str())
                    .await?;
                Ok(())
            }
            Job::ForceTag {
                image,
                tag,
                digest,
                operator,
                reason,
            } => self
                .force_tag(image, tag, digest, operator, reason)
                .await
                .map_err(Into::into),
        }
    }

    fn repository(&self, github: &str) -> Option<&Repository> {
        let name = github.parse().ok()?;
        self.config.repository(&name)
    }

    /// Runs a publication from wherever it is; every step is safe to repeat.
    async fn publish(
        &self,
        repo: &Repository,
        publication: PublicationRow,
        release: Option<&ReleaseRow>,
    ) -> Result<(), JobFailure> {
        let id = publication.id;
        let mut step = "wait";
        // Every log line of the publication carries its id and image.
        let span = tracing::info_span!("publication", id, image = %repo.image);
        let result = self
            .publish_steps(repo, &publication, release, &mut step)
            .instrument(span)
            .await;
        match result {
            Ok(()) => Ok(()),
            Err(error) if error.is_retryable() => {
                self.store
                    .step_finished(id, step, Some(&error.to_string()))
                    .await?;
                Err(JobFailure {
                    error,
                    publication: Some((id, step)),
                })
            }
            Err(error) => {
                let message = error.to_string();
                self.store.step_finished(id, step, Some(&message)).await?;
                self.store
                    .set_publication(id, "failed", Some(step), Some(&message), None)
                    .await?;
                tracing::error!(publication = id, step, error = %message, "publication failed");
                Ok(())
            }
        }
    }

    async fn publish_steps(
        &self,
        repo: &Repository,
        publication: &PublicationRow,
        release: Option<&ReleaseRow>,
        step: &mut &'static str,
    ) -> Result<(), PipelineError> {
        let id = publication.id;
        let target = RegistryRepo::of(&repo.image);

        // 1. Wait until every platform has a build.
        *step = "wait";
        let started = self.begin_step(id, step).await?;
        let sources = self.sources(repo, &publication.commit).await?;
        let missing: Vec<String> = repo
            .platforms
            .iter()
            .filter(|p| !sources.iter().any(|s| &s.platform == *p))
            .map(ToString::to_string)
            .collect();
        if !missing.is_empty() {
            let why = format!("waiting for builds of {}", missing.join(", "));
            self.store
                .set_publication(id, "waiting", Some("wait"), Some(&why), None)
                .await?;
            self.end_step(id, step, started).await?;
            tracing::info!(publication = id, %why, "publication waiting");
            return Ok(());
        }
        self.end_step(id, step, started).await?;
        self.store
            .set_publication(id, "running", Some("copy"), None, None)
            .await?;

        // 2. Copy every platform image into the target repository, by digest.
        *step = "copy";
        let started = self.begin_step(id, step).await?;
        for source in &sources {
            let digest = source
                .image
                .digest()
                .map(ToString::to_string)
                .unwrap_or_default();
            let destination: ImageRef =
                parse("target", &format!("{}@{digest}", repo.image.name()))?;
            let report = self
                .registry
                .copy_image(&source.image, &destination)
                .await
                .context(|| format!("copying {} ({})", source.image, source.platform))?;
            let counters = &self.counters;
            PipelineCounters::add(&counters.blobs_present, report.blobs_present);
            PipelineCounters::add(&counters.blobs_mounted, report.blobs_mounted);
            PipelineCounters::add(&counters.blobs_uploaded, report.blobs_uploaded);
            PipelineCounters::add(&counters.bytes_uploaded, report.bytes_uploaded);
        }
        self.end_step(id, step, started).await?;

        // 3. Verify each is the platform it was reported as, and describe it for the index.
        *step = "verify";
        let started = self.begin_step(id, step).await?;
        let mut children = Vec::new();
        for source in &sources {
            let digest = source
                .image
                .digest()
                .map(ToString::to_string)
                .unwrap_or_default();
            let manifest = self
                .registry
                .manifest(&target, &digest)
                .await
                .context(|| format!("reading {digest} from {}", repo.image))?;
            let config = manifest
                .config()
                .context(|| format!("reading the config of {digest}"))?;
            let bytes = self
                .registry
                .blob_bytes(&target, &config.digest, 1 << 20)
                .await
                .context(|| format!("reading the config of {digest}"))?;
            let actual = platform_from_config(&bytes)
                .context(|| format!("reading the config of {digest}"))?;
            check_platform(&source.platform, &actual, &digest)?;
            children.push(IndexChild {
                media_type: manifest.media_type.clone(),
                digest: manifest.digest.clone(),
                size: manifest.bytes.len() as u64,
                platform: actual,
            });
        }
        children.sort_by_key(|c| c.platform.short());
        self.end_step(id, step, started).await?;

        // 4. The index, with its provenance. `created` is the publication's own time, so a
        // re-run builds the same bytes and the same digest.
        *step = "index";
        let started = self.begin_step(id, step).await?;
        let mut annotations = BTreeMap::new();
        annotations.insert(
            "org.opencontainers.image.source".to_owned(),
            format!("https://github.com/{}", repo.github),
        );
        annotations.insert(
            "org.opencontainers.image.revision".to_owned(),
            publication.commit.clone(),
        );
        annotations.insert(
            "org.opencontainers.image.created".to_owned(),
            publication.created_at.clone(),
        );
        if let Some(release) = release {
            annotations.insert(
                "org.opencontainers.image.version".to_owned(),
                release.tag.clone(),
            );
        }
        let index = assemble_index(&children, &annotations)
            .context(|| "assembling the index".to_owned())?;
        let index_digest = index.digest.to_string();
        self.registry
            .put_manifest(&target, &index_digest, &index)
            .await
            .context(|| format!("putting the index {index_digest}"))?;
        self.store
            .set_publication(id, "running", Some("tags"), None, Some(&index_digest))
            .await?;
        self.end_step(id, step, started).await?;

        // 5. Tags: immutable first, floating last; each PUT, then its ledger event.
        *step = "tags";
        let started = self.begin_step(id, step).await?;
        let lock = self.image_lock(&repo.image.name());
        let _serialized = lock.lock().await;
        let image = repo.image.name();
        let commit: CommitSha = parse("commit", &publication.commit)?;
        let git_ref = match release {
            Some(release) => GitRef::Tag(release.tag.clone()),
            None => GitRef::Branch(repo.default_branch.clone()),
        };
        let computed = compute_tags(repo, git_ref, commit)?;
        let published = self.published_versions(repo).await?;
        let plan = plan_release(&computed, &published);
        let prerelease = release.is_some_and(|r| r.prerelease);
        let reason = match release {
            Some(r) => format!("release {}", r.tag),
            None => format!("commit {}", publication.commit),
        };
        let release_tag = release.map(|r| r.tag.as_str());

        // Refuse before writing anything if an immutable tag points elsewhere.
        for tag in computed.tags().iter().filter(|t| t.role == TagRole::Pinned) {
            if let Some(current) = self.store.tag_digest(&image, tag.name.as_str()).await?
                && current != index_digest
            {
                return Err(refused(format!(
                    "tag {} already points at {current}; it is immutable and will not be re-pointed to {index_digest}",
                    tag.name.as_str()
                )));
            }
        }
        let mut ordered: Vec<(&str, bool)> = Vec::new();
        for tag in computed.tags() {
            match tag.role {
                TagRole::Pinned => ordered.insert(0, (tag.name.as_str(), true)),
                TagRole::Plain => ordered.push((tag.name.as_str(), false)),
                TagRole::Floating(_) => {}
            }
        }
        if !prerelease {
            for floating in &plan.moves {
                ordered.push((floating.tag.as_str(), false));
            }
        }
        for (tag, immutable) in ordered {
            self.registry
                .put_manifest(&target, tag, &index)
                .await
                .context(|| format!("tagging {image}:{tag}"))?;
            let outcome = self
                .store
                .move_tag(&TagMove {
                    image: &image,
                    tag,
                    digest: &index_digest,
                    immutable,
                    intent: MoveIntent::Publish,
                    reason: &reason,
                    publication_id: Some(id),
                    release_tag,
                })
                .await?;
            if let MoveOutcome::Refused { current } = outcome {
                return Err(refused(format!(
                    "tag {tag} already points at {current}; it is immutable"
                )));
            }
        }
        self.end_step(id, step, started).await?;
        self.store
            .set_publication(id, "succeeded", None, None, Some(&index_digest))
            .await?;
        tracing::info!(publication = id, %image, index = %index_digest, "publication succeeded");
        Ok(())
    }

    async fn begin_step(&self, id: i64, step: &str) -> Result<Instant, PipelineError> {
        self.store.step_started(id, step).await?;
        Ok(Instant::now())
    }

    /// Records a step's end in the database and its duration in the metrics.
    async fn end_step(&self, id: i64, step: &str, started: Instant) -> Result<(), PipelineError> {
        self.counters.observe_step(step, started.elapsed());
        self.store.step_finished(id, step, None).await?;
        Ok(())
    }

    /// The image CI reported for each platform of a commit; an index report counts for each
    /// of its platforms.
    async fn sources(&self, repo: &Repository, commit: &str) -> Result<Vec<Source>, PipelineError> {
        let mut sources = Vec::new();
        for build in self
            .store
            .builds_of_commit(repo.github.as_str(), commit)
            .await?
        {
            let image: ImageRef = parse("build image", &build.image)?;
            match &build.platform {
                Some(platform) => sources.push(Source {
                    platform: parse("platform", platform)?,
                    image,
                }),
                None => {
                    let from = RegistryRepo::of(&image);
                    let manifest = self
                        .registry
                        .manifest(&from, &build.digest)
                        .await
                        .context(|| format!("reading the index {}", build.image))?;
                    let contents = manifest
                        .contents()
                        .context(|| format!("reading the index {}", build.image))?;
                    let Contents::Index { children } = contents else {
                        return Err(refused(format!(
                            "{} was reported without a platform, but it is not an index",
                            build.image
                        )));
                    };
                    for child in children {
                        let Some(platform) = child.platform.as_ref().and_then(platform_of) else {
                            continue;
                        };
                        if repo.platforms.contains(&platform)
                            && !sources.iter().any(|s: &Source| s.platform == platform)
                        {
                            let child_ref = parse(
                                "index child",
                                &format!("{}@{}", image.name(), child.digest),
                            )?;
                            sources.push(Source {
                                platform,
                                image: child_ref,
                            });
                        }
                    }
                }
            }
        }
        // A per-platform report wins over the same platform found in an index.
        sources.sort_by(|a, b| a.platform.cmp(&b.platform));
        sources.dedup_by(|a, b| a.platform == b.platform);
        Ok(sources)
    }

    async fn published_versions(&self, repo: &Repository) -> Result<Vec<Version>, PipelineError> {
        let tags = self
            .store
            .published_release_tags(&repo.image.name(), repo.github.as_str())
            .await?;
        Ok(tags.iter().filter_map(|t| t.parse().ok()).collect())
    }

    /// Re-points a tag at a digest the image's repository already holds, as an operator
    /// asked, recorded as `force` in the ledger.
    async fn force_tag(
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
        let lock = self.image_lock(image);
        let _serialized = lock.lock().await;
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
        self.registry
            .put_manifest(&target, tag, &manifest)
            .await
            .context(|| format!("tagging {image}:{tag}"))?;
        let why = format!("forced by {operator}: {reason}");
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

    /// Moves the floating tags a withdrawn release held back to the highest remaining
    /// version in their scope.
    async fn roll_back(
        &self,
        repo: &Repository,
        release: &ReleaseRow,
    ) -> Result<(), PipelineError> {
        let image = repo.image.name();
        let target = RegistryRepo::of(&repo.image);
        let lock = self.image_lock(&image);
        let _serialized = lock.lock().await;
        let commit: CommitSha = match &release.commit {
            Some(c) => parse("commit", c)?,
            None => return Ok(()),
        };
        let computed = compute_tags(repo, GitRef::Tag(release.tag.clone()), commit)?;
        let remaining = self.published_versions(repo).await?;
        for rollback in plan_deletion(&computed, &remaining) {
            let RollbackTarget::Version(version) = &rollback.to else {
                tracing::info!(
                    tag = rollback.tag.as_str(),
                    "no version left in scope; tag left where it is"
                );
                continue;
            };
            let Some(digest) = self.store.digest_of_release(&image, version.raw()).await? else {
                continue;
            };
            let manifest =
                self.registry.manifest(&target, &digest).await.context(|| {
                    format!("reading {digest} to roll back {}", rollback.tag.as_str())
                })?;
            self.registry
                .put_manifest(&target, rollback.tag.as_str(), &manifest)
                .await
                .context(|| format!("rolling {image}:{} back", rollback.tag.as_str()))?;
            let reason = format!("release {} {}", release.tag, release.state);
            self.store
                .move_tag(&TagMove {
                    image: &image,
                    tag: rollback.tag.as_str(),
                    digest: &digest,
                    immutable: false,
                    intent: MoveIntent::Rollback,
                    reason: &reason,
                    publication_id: None,
                    release_tag: Some(version.raw()),
                })
                .await?;
        }
        Ok(())
    }
}

/// The tags the repository's policy gives an event at this ref and commit.
fn compute_tags(
    repo: &Repository,
    git_ref: GitRef,
    commit: CommitSha,
) -> Result<ComputedTags, PipelineError> {
    let event = EventContext {
        git_ref,
        commit,
        default_branch: repo.default_branch.clone(),
        time: SystemTime::now(),
    };
    repo.tag_policy
        .compute(&event)
        .map_err(|e| refused(e.to_string()))
}

fn platform_of(p: &IndexPlatform) -> Option<Platform> {
    let text = match &p.variant {
        Some(variant) => format!("{}/{}/{variant}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    };
    text.parse().ok()
}

/// A build reported as one platform must be that platform.
fn check_platform(
    expected: &Platform,
    actual: &IndexPlatform,
    digest: &str,
) -> Result<(), PipelineError> {
    let variant_matches = match expected.variant() {
        Some(v) => actual.variant.as_deref() == Some(v),
        None => true,
    };
    if expected.os() != actual.os
        || expected.architecture() != actual.architecture
        || !variant_matches
    {
        return Err(refused(format!(
            "the build reported as {expected} is {} ({digest}'s config says so)",
            actual.short()
        )));
    }
    Ok(())
}
