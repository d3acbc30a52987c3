//! Referrers of the platform manifests (signatures, SBOMs, attestations CI pushed with a
//! `subject`) go where the platform manifests go. They are read in CI's repository from
//! the referrers API, else its fallback tag; copied to the target; and, where the target
//! has no referrers API (distribution 2.8, GHCR), listed in the target's fallback tag
//! `sha256-<hex>`, which is rewritten under the image's lock so two publications never
//! lose each other's entries.

use hoist_domain::ImageRef;
use hoist_domain::config::Repository;
use hoist_registry::{Repository as RegistryRepo, referrer_descriptor};

use crate::PipelineError;
use crate::error::RegistryContext;
use crate::publish::{parse, refused};
use crate::sources::Source;
use crate::worker::Pipeline;

impl Pipeline {
    /// Copies the referrers of `source`'s platform manifest and lists them, with its
    /// attestations that name it as their subject, in the target's referrers.
    pub(crate) async fn carry_referrers(
        &self,
        repo: &Repository,
        source: &Source,
    ) -> Result<(), PipelineError> {
        let from = RegistryRepo::of(&source.image);
        let target = RegistryRepo::of(&repo.image);
        let Some(subject) = source.image.digest().cloned() else {
            return Ok(());
        };
        let found = self
            .registry
            .referrers(&from, &subject)
            .await
            .context(|| format!("reading the referrers of {}", source.image))?;
        let mut descriptors = Vec::new();
        let carried = source.attestations.iter().map(|a| a.digest.clone());
        let listed = found.descriptors.iter().map(|d| d.digest.clone());
        for digest in carried.chain(listed) {
            let manifest = self
                .registry
                .manifest(&from, digest.as_str())
                .await
                .context(|| format!("reading referrer {digest} of {}", source.image))?;
            let descriptor =
                referrer_descriptor(&manifest).context(|| format!("reading referrer {digest}"))?;
            let names = serde_json::from_slice::<serde_json::Value>(&manifest.bytes)
                .ok()
                .and_then(|m| m.pointer("/subject/digest").cloned());
            match names {
                Some(named) if named == subject.as_str() => {}
                // A BuildKit attestation in legacy mode names its manifest by annotation
                // only: carried in the index, not a referrer.
                None if source.attestations.iter().any(|a| a.digest == digest) => continue,
                _ => {
                    return Err(refused(format!(
                        "{} lists {digest} as a referrer of {subject}, but its subject is \
                         not {subject}",
                        source.image
                    )));
                }
            }
            let destination: ImageRef =
                parse("target", &format!("{}@{digest}", repo.image.name()))?;
            let from_image: ImageRef =
                parse("referrer", &format!("{}@{digest}", source.image.name()))?;
            self.registry
                .copy_image(&from_image, &destination)
                .await
                .context(|| format!("copying referrer {digest} of {}", source.image))?;
            if !descriptors
                .iter()
                .any(|d: &serde_json::Value| d["digest"] == digest.as_str())
            {
                descriptors.push(descriptor);
            }
        }
        if descriptors.is_empty() {
            return Ok(());
        }
        let mut held = self.store.lock_image(&repo.image.name()).await?;
        let at_target = self
            .registry
            .referrers(&target, &subject)
            .await
            .context(|| format!("reading the referrers of {subject} in {}", repo.image))?;
        if at_target.api {
            // The registry lists a manifest with a subject by itself.
            return Ok(());
        }
        held.confirm().await?;
        self.registry
            .add_referrers(&target, &subject, &descriptors)
            .await
            .context(|| format!("listing the referrers of {subject} in {}", repo.image))?;
        Ok(())
    }
}
