//! A publication's steps: wait for every platform's build -> copy each into the target
//! repository -> verify each is the platform it was reported as -> put the index -> write
//! the tags ([`crate::tags`]). Every step is safe to repeat, so a job continues a
//! publication by running it again: what is already there costs a HEAD. Before each step
//! the publication must still be running; ingress withdraws or re-decides it in the same
//! transaction as the release edit that asks for it, and the worker then stops.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Instant;

use hoist_domain::config::Repository;
use hoist_domain::metrics::PipelineCounters;
use hoist_domain::{ImageRef, Platform, PublicationEvent, ReleaseState, Step};
use hoist_registry::{
    IndexChild, IndexPlatform, Manifest, Repository as RegistryRepo, assemble_index,
    platform_from_config,
};
use hoist_store::{PublicationRow, PublishedPlatform};
use tracing::Instrument;

use crate::PipelineError;
use crate::error::RegistryContext;
use crate::tags::TagSubject;
use crate::worker::{JobFailure, Pipeline};

pub(crate) fn refused(message: String) -> PipelineError {
    PipelineError::Refused(message)
}

pub(crate) fn parse<T: FromStr>(what: &str, text: &str) -> Result<T, PipelineError>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e| refused(format!("{what}: {e}")))
}

impl Pipeline {
    /// Takes publication `id` as far as it goes now.
    pub(crate) async fn publish(&self, id: i64) -> Result<(), JobFailure> {
        let Some(publication) = self.store.publication(id).await? else {
            return Ok(());
        };
        if publication.state.is_at_rest() {
            return Ok(());
        }
        let Some(repo) = self.repository(&publication.repository) else {
            let why = format!(
                "repository {} is no longer configured",
                publication.repository
            );
            self.store
                .advance_publication(id, PublicationEvent::Fail, None, Some(&why))
                .await?;
            return Ok(());
        };
        let mut step = Step::Wait;
        // Every log line of the publication carries its id and image.
        let span = tracing::info_span!("publication", id, image = %repo.image);
        let result = self
            .publish_steps(repo, &publication, &mut step)
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
                    .advance_publication(id, PublicationEvent::Fail, Some(step), Some(&message))
                    .await?;
                tracing::error!(publication = id, %step, error = %message, "publication failed");
                Ok(())
            }
        }
    }

    /// Why a default-branch publication may not go on yet: no signed fact puts its commit
    /// on the branch. With `[github] api_url`, GitHub's API is asked (and its answer kept).
    async fn unconfirmed_on_branch(
        &self,
        repo: &Repository,
        publication: &PublicationRow,
    ) -> Result<Option<String>, PipelineError> {
        let (repository, branch, commit) = (
            repo.github.as_str(),
            repo.default_branch.as_str(),
            publication.commit.as_str(),
        );
        if self
            .store
            .branch_confirmed(repository, branch, commit)
            .await?
        {
            return Ok(None);
        }
        if let Some(api) = &self.config.github.api {
            // A refusal (a token without access, a commit GitHub does not know) parks the
            // publication like a "no": a signed push or OIDC report may still confirm it.
            return match crate::github::commit_on_branch(
                &self.github,
                api,
                repository,
                branch,
                commit,
            )
            .await
            {
                Ok(true) => {
                    self.store
                        .confirm_branch_from_api(repository, branch, commit)
                        .await?;
                    Ok(None)
                }
                Ok(false) => Ok(Some(format!(
                    "GitHub's API says commit {commit} is not on {branch}"
                ))),
                Err(error) if error.is_retryable() => Err(error),
                Err(error) => Ok(Some(format!(
                    "GitHub's API could not confirm commit {commit} is on {branch} ({error}); waiting for a signed push of {branch} or a build reported with an OIDC token from a run on {branch}"
                ))),
            };
        }
        Ok(Some(format!(
            "commit {commit} not yet confirmed on {branch} by GitHub: waiting for a signed push of {branch} or a build reported with an OIDC token from a run on {branch}"
        )))
    }

    async fn publish_steps(
        &self,
        repo: &Repository,
        publication: &PublicationRow,
        step: &mut Step,
    ) -> Result<(), PipelineError> {
        let id = publication.id;
        let target = RegistryRepo::of(&repo.image);
        // The release as it is now. Ingress withdraws a publication whose release no
        // longer stands on this commit; one that slipped through ends here.
        let release = match publication.release_id {
            Some(release_id) => self.store.release(release_id).await?,
            None => None,
        };
        if let Some(release) = &release
            && (release.state != ReleaseState::Published
                || release.commit.as_ref() != Some(&publication.commit))
        {
            self.store
                .advance_publication(id, PublicationEvent::Withdraw, None, None)
                .await?;
            return Ok(());
        }
        let version_tag = release.as_ref().map(|r| r.tag.as_str());

        // 1. Wait until every platform has a build (and, for the default branch, until
        //    GitHub confirms the commit is on it: CI's claim is not enough).
        *step = Step::Wait;
        let started = self.begin_step(id, *step).await?;
        if release.is_none()
            && let Some(why) = self.unconfirmed_on_branch(repo, publication).await?
        {
            return self.park(id, started, &why).await;
        }
        let sources = self
            .sources(repo, publication.commit.as_str(), false)
            .await?;
        let missing: Vec<String> = repo
            .platforms
            .iter()
            .filter(|p| !sources.iter().any(|s| &s.platform == *p))
            .map(ToString::to_string)
            .collect();
        if !missing.is_empty() {
            let why = format!("waiting for builds of {}", missing.join(", "));
            return self.park(id, started, &why).await;
        }
        self.end_step(id, *step, started).await?;
        let moved = self
            .store
            .advance_publication(id, PublicationEvent::Start, Some(Step::Copy), None)
            .await?;
        if !moved.applied() {
            return Ok(());
        }
        *step = Step::Copy;
        // Builds may be replaced until the publication runs, and not after: what is read
        // now is what it publishes.
        let sources = self
            .sources(repo, publication.commit.as_str(), true)
            .await?;
        // 2. Copy every platform image into the target repository, by digest.
        *step = Step::Copy;
        let started = self.begin_step(id, *step).await?;
        for source in &sources {
            let digest = source
                .image
                .digest()
                .map(ToString::to_string)
                .unwrap_or_default();
            let destination: ImageRef =
                parse("target", &format!("{}@{digest}", repo.image.name()))?;
            self.copy_counted(&source.image, &destination, &source.platform.to_string())
                .await?;
            // Its attestations after it: an OCI-artifact attestation names it as subject.
            for attestation in &source.attestations {
                let from = source.attestation_image(attestation)?;
                let destination: ImageRef = parse(
                    "target",
                    &format!("{}@{}", repo.image.name(), attestation.digest),
                )?;
                self.copy_counted(&from, &destination, "its attestation")
                    .await?;
            }
        }
        self.end_step(id, *step, started).await?;

        // 3. Verify each is the platform it was reported as, and describe it for the index.
        *step = Step::Verify;
        if !self.store.reach_step(id, *step, None).await? {
            return Ok(());
        }
        let started = self.begin_step(id, *step).await?;
        let (mut children, mut platforms) = (Vec::new(), Vec::new());
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
            let mut attestations = Vec::new();
            for attestation in &source.attestations {
                attestations.push(
                    self.attestation_facts(&target, attestation, &digest)
                        .await?,
                );
            }
            platforms.push(PublishedPlatform {
                platform: source.platform.to_string(),
                manifest: digest.clone(),
                image: source.build.image.clone(),
                build_id: source.build.id,
                attestations,
            });
            children.push(IndexChild {
                media_type: manifest.media_type.clone(),
                digest: manifest.digest.clone(),
                size: manifest.bytes.len() as u64,
                platform: actual,
                annotations: source.annotations.clone(),
                attestations: source
                    .attestations
                    .iter()
                    .map(|a| a.descriptor.clone())
                    .collect(),
            });
        }
        children.sort_by_key(|c| c.platform.short());
        // Referrers once every platform checked out: a refused build lists nothing.
        for source in &sources {
            self.carry_referrers(repo, source).await?;
        }
        self.store.record_platforms(id, &platforms).await?;
        self.end_step(id, *step, started).await?;

        // 4. The index, with its provenance. `created` is when the commit was first
        // published, so a re-run or a re-created release builds the same bytes and digest.
        *step = Step::Index;
        if !self.store.reach_step(id, *step, None).await? {
            return Ok(());
        }
        let started = self.begin_step(id, *step).await?;
        let (index, index_digest, shared) = self
            .index_for(repo, publication, &children, version_tag)
            .await?;
        let target = RegistryRepo::of(&repo.image);
        let put_index = async {
            if !shared {
                self.registry
                    .put_manifest(&target, &index_digest, &index)
                    .await
                    .context(|| format!("putting the index {index_digest}"))?;
            }
            Ok(())
        };
        // Signed and attested before any tag can name it.
        if let Some(signing) = &self.config.signing {
            let digest = parse("index digest", &index_digest)?;
            let facts = crate::sign::Facts {
                repo,
                publication,
                release: release.as_ref(),
                index: &digest,
                platforms: &platforms,
                sources: &sources,
            };
            // What may be there already: a signature this publication recorded (a re-run),
            // or the release's, for the index a branch publication shares with it. Else
            // nothing is: no need to look before signing.
            let recorded = self.store.publication_contents(id).await?;
            let look = shared || recorded.signature_digest.is_some();
            let (signature, attestation) =
                self.sign_index(signing, &facts, look, put_index).await?;
            self.store
                .record_signing(id, signature.as_str(), attestation.as_str())
                .await?;
        } else {
            put_index.await?;
        }
        if !self
            .store
            .reach_step(id, Step::Tags, Some(&index_digest))
            .await?
        {
            return Ok(());
        }
        self.end_step(id, *step, started).await?;

        // 5. The tags, under the image's lock.
        *step = Step::Tags;
        let started = self.begin_step(id, *step).await?;
        let subject = TagSubject {
            version_tag,
            index: &index,
            index_digest: &index_digest,
        };
        if self.write_tags(repo, publication, subject).await? {
            self.end_step(id, *step, started).await?;
        }
        Ok(())
    }

    /// The publication's index (to put, unless it is `shared`), with its digest. A commit
    /// has one index: a branch publication of a commit a release published shares that
    /// index, so the tags both write (`sha-…`) never flip between two.
    async fn index_for(
        &self,
        repo: &Repository,
        publication: &PublicationRow,
        children: &[IndexChild],
        version_tag: Option<&str>,
    ) -> Result<(Manifest, String, bool), PipelineError> {
        let target = RegistryRepo::of(&repo.image);
        let image = repo.image.name();
        if publication.release_id.is_none()
            && let Some(digest) = self
                .store
                .release_index_of_commit(&image, publication.commit.as_str())
                .await?
        {
            let index = self
                .registry
                .manifest(&target, &digest)
                .await
                .context(|| format!("reading the release index {digest}"))?;
            return Ok((index, digest, true));
        }
        let mut annotations = BTreeMap::new();
        annotations.insert(
            "org.opencontainers.image.source".to_owned(),
            format!("https://github.com/{}", repo.github),
        );
        annotations.insert(
            "org.opencontainers.image.revision".to_owned(),
            publication.commit.to_string(),
        );
        let created = self
            .store
            .first_published_at(&image, publication.commit.as_str())
            .await?;
        annotations.insert("org.opencontainers.image.created".to_owned(), created);
        if let Some(tag) = version_tag {
            annotations.insert(
                "org.opencontainers.image.version".to_owned(),
                tag.to_owned(),
            );
        }
        let index =
            assemble_index(children, &annotations).context(|| "assembling the index".to_owned())?;
        let index_digest = index.digest.to_string();
        Ok((index, index_digest, false))
    }

    /// Copies one image into the target by digest and counts what moved.
    async fn copy_counted(
        &self,
        source: &ImageRef,
        destination: &ImageRef,
        what: &str,
    ) -> Result<(), PipelineError> {
        let report = self
            .registry
            .copy_image(source, destination)
            .await
            .context(|| format!("copying {source} ({what})"))?;
        let counters = &self.counters;
        PipelineCounters::add(&counters.blobs_present, report.blobs_present);
        PipelineCounters::add(&counters.blobs_mounted, report.blobs_mounted);
        PipelineCounters::add(&counters.blobs_uploaded, report.blobs_uploaded);
        PipelineCounters::add(&counters.bytes_uploaded, report.bytes_uploaded);
        Ok(())
    }

    /// Leaves publication `id` waiting in the wait step (begun at `started`), saying why:
    /// what it waits for wakes it.
    async fn park(&self, id: i64, started: Instant, why: &str) -> Result<(), PipelineError> {
        self.store
            .advance_publication(
                id,
                PublicationEvent::BuildsMissing,
                Some(Step::Wait),
                Some(why),
            )
            .await?;
        self.end_step(id, Step::Wait, started).await?;
        tracing::info!(publication = id, %why, "publication waiting");
        Ok(())
    }

    async fn begin_step(&self, id: i64, step: Step) -> Result<Instant, PipelineError> {
        self.store.step_started(id, step).await?;
        Ok(Instant::now())
    }

    /// Records a step's end in the database and its duration in the metrics.
    async fn end_step(&self, id: i64, step: Step, started: Instant) -> Result<(), PipelineError> {
        self.counters.observe_step(step.as_str(), started.elapsed());
        self.store.step_finished(id, step, None).await?;
        Ok(())
    }
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
