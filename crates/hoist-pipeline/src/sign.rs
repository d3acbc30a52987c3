//! With `[signing]`: after the index is put and before any tag is written, hoist signs it
//! (cosign key signature) and attests where it came from (DSSE in-toto publication
//! statement). When something may be there already (a re-run of a publication that
//! recorded a signature, or a branch publication sharing a release's index), a signature
//! or attestation that verifies for this index under the current key is kept, so a re-run
//! writes nothing and a release's statement is not replaced by a branch's; a signing
//! failure fails the publication in its index step, before a tag moves. (A crash between
//! pushing and recording signs once more: harmless, the tag names the newer one.)

use hoist_domain::Digest;
use hoist_domain::config::{Repository, Signing};
use hoist_registry::Repository as RegistryRepo;
use hoist_store::{PublicationRow, PublishedPlatform, ReleaseRow};
use serde_json::{Value, json};

use crate::PipelineError;
use crate::error::RegistryContext;
use crate::publish::refused;
use crate::signature::{self, VerifyError};
use crate::sources::Source;
use crate::worker::Pipeline;

/// What one publication's statement is made of.
pub(crate) struct Facts<'a> {
    pub repo: &'a Repository,
    pub publication: &'a PublicationRow,
    pub release: Option<&'a ReleaseRow>,
    pub index: &'a Digest,
    pub platforms: &'a [PublishedPlatform],
    pub sources: &'a [Source],
}

/// hoist's version, as its statements and signatures name it.
const HOIST_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The in-toto v1 statement of a publication: its subject is the index; its predicate
/// names the repository, release, commit, every platform and build, and hoist.
pub(crate) fn statement(facts: &Facts<'_>) -> Value {
    let repo = facts.repo;
    let platforms: Vec<Value> = facts
        .platforms
        .iter()
        .map(|p| {
            let build = facts
                .sources
                .iter()
                .find(|s| s.build.id == p.build_id)
                .map(|s| &s.build);
            json!({
                "platform": p.platform,
                "manifest": p.manifest,
                "image": p.image,
                "attestations": p.attestations,
                "build": build.map(|b| json!({
                    "id": b.id,
                    "reported_by": b.reported_by,
                    "ref": b.git_ref,
                    "ref_source": b.ref_source,
                    "ci_identity": b.ci_identity,
                    "reported_at": b.updated_at,
                })),
            })
        })
        .collect();
    let release = facts.release.map(|r| {
        json!({
            "tag": r.tag,
            "id": r.github_id,
            "url": format!("https://github.com/{}/releases/tag/{}", r.repository, r.tag),
            "prerelease": r.prerelease,
        })
    });
    let commit_source = match facts.release {
        Some(r) => r.commit_source.clone(),
        None => Some("default_branch".to_owned()),
    };
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{
            "name": repo.image.name(),
            "digest": {facts.index.algorithm(): facts.index.hex()},
        }],
        "predicateType": signature::PUBLICATION_PREDICATE,
        "predicate": {
            "repository": repo.github.as_str(),
            "source": format!("https://github.com/{}", repo.github),
            "image": repo.image.name(),
            "release": release,
            "branch": facts.release.is_none().then(|| repo.default_branch.clone()),
            "commit": {"sha": facts.publication.commit.as_str(), "source": commit_source},
            "platforms": platforms,
            "publication": {
                "id": facts.publication.id,
                "created_at": facts.publication.created_at,
            },
            "builder": {"id": "hoist", "version": HOIST_VERSION},
        },
    })
}

impl Pipeline {
    /// Puts the index (`put_index`) and signs and attests it or, when `look`ing, keeps
    /// what already verifies there. Returns the digests of the signature and attestation
    /// manifests.
    pub(crate) async fn sign_index(
        &self,
        signing: &Signing,
        facts: &Facts<'_>,
        look: bool,
        put_index: impl Future<Output = Result<(), PipelineError>>,
    ) -> Result<(Digest, Digest), PipelineError> {
        let target = RegistryRepo::of(&facts.repo.image);
        let reference = facts.repo.image.name();
        let key = &signing.key;
        let index = facts.index;
        let failed = |what: &str, e: hoist_domain::signing::KeyError| {
            refused(format!("signing the index {index} ({what}): {e}"))
        };
        let (sig_tag, att_tag) = (
            signature::signature_tag(index),
            signature::attestation_tag(index),
        );
        let make_signature = || {
            let mut optional = serde_json::Map::new();
            if let Some(release) = facts.release {
                optional.insert("tag".into(), release.tag.clone().into());
            }
            optional.insert("commit".into(), facts.publication.commit.as_str().into());
            optional.insert("hoist".into(), HOIST_VERSION.into());
            signature::signature(key, &reference, index, &optional)
                .map_err(|e| failed("signature", e))
        };
        let make_attestation =
            || signature::attestation(key, &statement(facts)).map_err(|e| failed("attestation", e));
        let pushed = |tag: &str, what: &str| format!("pushing the {what} {tag}");

        let (signature_digest, attestation_digest) = if look {
            put_index.await?;
            // Any configured key: a release signed before a key rotation stays the
            // release's, not replaced by a branch publication sharing its index.
            let keys = signing.public_keys();
            let kept = |found: Result<(Digest, Value), VerifyError>, tag: &str| match found {
                Ok((digest, _)) => Ok(Some(digest)),
                Err(VerifyError::Registry(e)) => Err(e).context(|| format!("reading {tag}")),
                Err(VerifyError::Missing(_) | VerifyError::Invalid(_)) => Ok(None),
            };
            let signed = async {
                let found =
                    signature::read_signature(&self.registry, &target, &reference, index, &keys)
                        .await;
                if let Some(digest) = kept(found, &sig_tag)? {
                    return Ok(digest);
                }
                make_signature()?
                    .push(&self.registry, &target, &sig_tag)
                    .await
                    .context(|| pushed(&sig_tag, "signature"))
            };
            let attested = async {
                let found =
                    signature::read_attestation(&self.registry, &target, index, &keys).await;
                if let Some(digest) = kept(found, &att_tag)? {
                    return Ok(digest);
                }
                make_attestation()?
                    .push(&self.registry, &target, &att_tag)
                    .await
                    .context(|| pushed(&att_tag, "attestation"))
            };
            futures_util::future::try_join(signed, attested).await?
        } else {
            // Nothing to keep. The blobs go up beside the index (they name nothing); the
            // two manifests naming them only once the index is in.
            let (signed, attested) = (make_signature()?, make_attestation()?);
            futures_util::future::try_join3(
                put_index,
                async {
                    signed
                        .push_blobs(&self.registry, &target)
                        .await
                        .context(|| pushed(&sig_tag, "signature"))
                },
                async {
                    attested
                        .push_blobs(&self.registry, &target)
                        .await
                        .context(|| pushed(&att_tag, "attestation"))
                },
            )
            .await?;
            futures_util::future::try_join(
                async {
                    signed
                        .put_manifest(&self.registry, &target, &sig_tag)
                        .await
                        .context(|| pushed(&sig_tag, "signature"))
                },
                async {
                    attested
                        .put_manifest(&self.registry, &target, &att_tag)
                        .await
                        .context(|| pushed(&att_tag, "attestation"))
                },
            )
            .await?
        };
        tracing::info!(
            publication = facts.publication.id,
            %index,
            key = %key.public().id(),
            "index signed and attested"
        );
        Ok((signature_digest, attestation_digest))
    }
}
