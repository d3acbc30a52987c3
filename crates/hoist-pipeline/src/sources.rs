//! Where a publication's platforms come from: the builds CI reported, each an image
//! manifest or an index. BuildKit's default output (docker/build-push-action with
//! provenance on) is an index holding the platform manifest and, after it, an attestation
//! manifest (`unknown/unknown`, annotated `vnd.docker.reference.type: attestation-manifest`
//! and `vnd.docker.reference.digest: <the platform manifest>`). Each platform keeps the
//! attestation manifests that name it, so the published index carries them byte-for-byte.

use std::collections::{BTreeMap, HashSet};

use hoist_domain::config::Repository;
use hoist_domain::{ImageRef, Platform};
use hoist_registry::{ChildRef, Contents, IndexPlatform, Repository as RegistryRepo};
use hoist_store::{BuildRow, PublishedAttestation};

use crate::PipelineError;
use crate::error::RegistryContext;
use crate::publish::{parse, refused};
use crate::worker::Pipeline;

/// Where one platform's image is, as CI reported it.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub platform: Platform,
    /// The platform manifest, `name@digest`.
    pub image: ImageRef,
    /// The annotations its descriptor had in the reported index.
    pub annotations: BTreeMap<String, String>,
    /// The attestation manifests the reported index holds about it, descriptors verbatim.
    pub attestations: Vec<ChildRef>,
    /// The build that reported it.
    pub build: BuildRow,
}

impl Source {
    /// The image of one of its attestation manifests, `name@digest`.
    pub fn attestation_image(&self, child: &ChildRef) -> Result<ImageRef, PipelineError> {
        parse(
            "attestation",
            &format!("{}@{}", self.image.name(), child.digest),
        )
    }
}

/// The children of a reported index: platform manifests, and the attestation manifests
/// of each. An attestation that names no platform manifest of the same index is refused:
/// carried along, it would attest something the index does not hold.
fn split_index(reported: &str, children: Vec<ChildRef>) -> Result<Vec<Attested>, PipelineError> {
    let mut platforms: Vec<Attested> = Vec::new();
    let mut attestations = Vec::new();
    for child in children {
        let attests = child
            .attests()
            .map_err(|e| refused(format!("{reported}: {e}")))?;
        match attests {
            Some(subject) => {
                // Listed for no platform, so no runtime picks it as an image.
                let unknown = child
                    .platform
                    .as_ref()
                    .is_none_or(|p| p.os == "unknown" && p.architecture == "unknown");
                let manifest = child.media_type == hoist_registry::OCI_MANIFEST
                    || child.media_type == hoist_registry::DOCKER_MANIFEST;
                if !unknown || !manifest {
                    return Err(refused(format!(
                        "{reported} lists attestation manifest {} as {} for {}: an \
                         attestation is an image manifest for unknown/unknown",
                        child.digest,
                        child.media_type,
                        child
                            .platform
                            .as_ref()
                            .map_or("no platform".to_owned(), IndexPlatform::short)
                    )));
                }
                attestations.push((subject, child));
            }
            None => platforms.push(Attested {
                child,
                attestations: Vec::new(),
            }),
        }
    }
    for (subject, attestation) in attestations {
        let Some(owner) = platforms.iter_mut().find(|p| p.child.digest == subject) else {
            return Err(refused(format!(
                "{reported} holds attestation manifest {} for {subject}, which is not a \
                 manifest of that index",
                attestation.digest
            )));
        };
        owner.attestations.push(attestation);
        if owner.attestations.len() > MAX_ATTESTATIONS {
            return Err(refused(format!(
                "{reported} holds more than {MAX_ATTESTATIONS} attestation manifests for {subject}"
            )));
        }
    }
    Ok(platforms)
}

/// A platform manifest of a reported index with the attestations about it.
struct Attested {
    child: ChildRef,
    attestations: Vec<ChildRef>,
}

impl Pipeline {
    /// The image CI reported for each platform of a commit. A per-platform report may name
    /// an image manifest or an index holding that platform (and its attestations); an index
    /// reported without a platform counts for each platform it holds. A per-platform report
    /// wins over an index; of two indexes, the later report wins.
    ///
    /// With `look_inside` false (the wait step, which only counts platforms), a
    /// per-platform report counts as its platform unread: a publication waiting for builds
    /// does not touch CI's registry until an index report needs reading.
    pub(crate) async fn sources(
        &self,
        repo: &Repository,
        commit: &str,
        look_inside: bool,
    ) -> Result<Vec<Source>, PipelineError> {
        let mut builds = self
            .store
            .builds_of_commit(repo.github.as_str(), commit)
            .await?;
        builds.sort_by_key(|b| {
            (
                b.platform.is_none(),
                std::cmp::Reverse(b.updated_at.clone()),
            )
        });
        let mut sources: Vec<Source> = Vec::new();
        let mut read = HashSet::new();
        for build in builds {
            // An index reported twice is read once, and none once every platform has its
            // build: an older index (gone from CI's registry since, say) cannot hold up a
            // publication the newer reports make whole.
            let complete = repo
                .platforms
                .iter()
                .all(|p| sources.iter().any(|s| &s.platform == p));
            if build.platform.is_none() && (complete || !read.insert(build.digest.clone())) {
                continue;
            }
            let image: ImageRef = parse("build image", &build.image)?;
            // Checked again here, before anything is read, not only at ingress: the config
            // may have changed since, and hoist's credential reads only what the
            // repository allows.
            if !repo.sources.iter().any(|p| p.matches(&image)) {
                let allowed: Vec<String> = repo.sources.iter().map(ToString::to_string).collect();
                return Err(refused(format!(
                    "{image} is not in a source this repository allows ({}); see \
                     [[repository]] sources",
                    allowed.join(", ")
                )));
            }
            if !look_inside && let Some(platform) = &build.platform {
                let platform: Platform = parse("platform", platform)?;
                if !sources.iter().any(|s| s.platform == platform) {
                    sources.push(Source {
                        platform,
                        image,
                        annotations: BTreeMap::new(),
                        attestations: Vec::new(),
                        build: build.clone(),
                    });
                }
                continue;
            }
            let from = RegistryRepo::of(&image);
            let manifest = self
                .registry
                .manifest(&from, build.digest.as_str())
                .await
                .context(|| format!("reading {}", build.image))?;
            let contents = manifest
                .contents()
                .context(|| format!("reading {}", build.image))?;
            let wanted: Option<Platform> = match &build.platform {
                Some(platform) => Some(parse("platform", platform)?),
                None => None,
            };
            let found = match (contents, wanted) {
                (Contents::Image { .. }, Some(platform)) => vec![(
                    platform,
                    Attested {
                        child: ChildRef {
                            media_type: manifest.media_type.clone(),
                            digest: manifest.digest.clone(),
                            size: manifest.bytes.len() as u64,
                            platform: None,
                            annotations: BTreeMap::new(),
                            descriptor: serde_json::Value::Null,
                        },
                        attestations: Vec::new(),
                    },
                )],
                (Contents::Image { .. }, None) => {
                    return Err(refused(format!(
                        "{} was reported without a platform, but it is not an index",
                        build.image
                    )));
                }
                (Contents::Index { children }, wanted) => {
                    let attested = split_index(&build.image, children)?;
                    let mut found: Vec<(Platform, Attested)> = attested
                        .into_iter()
                        .filter_map(|a| {
                            let platform = a.child.platform.as_ref().and_then(platform_of)?;
                            Some((platform, a))
                        })
                        .collect();
                    if let Some(wanted) = wanted {
                        found.retain(|(p, _)| p == &wanted);
                        if found.len() != 1 {
                            return Err(refused(format!(
                                "{} was reported as {wanted}, but that index holds {} \
                                 manifests for {wanted}; report an index with one, or the \
                                 platform manifest itself",
                                build.image,
                                found.len()
                            )));
                        }
                    }
                    found
                }
            };
            for (platform, attested) in found {
                if !repo.platforms.contains(&platform)
                    || sources.iter().any(|s| s.platform == platform)
                {
                    continue;
                }
                sources.push(Source {
                    image: parse(
                        "platform manifest",
                        &format!("{}@{}", image.name(), attested.child.digest),
                    )?,
                    platform,
                    annotations: attested.child.annotations,
                    attestations: attested.attestations,
                    build: build.clone(),
                });
            }
        }
        sources.sort_by(|a, b| a.platform.cmp(&b.platform));
        Ok(sources)
    }
}

impl Pipeline {
    /// Reads attestation manifest `child` (about platform manifest `of`) where it was
    /// copied, checks it is what its descriptor says, and lists its predicate types.
    pub(crate) async fn attestation_facts(
        &self,
        target: &RegistryRepo,
        child: &ChildRef,
        of: &str,
    ) -> Result<PublishedAttestation, PipelineError> {
        let digest = child.digest.as_str();
        let manifest = self
            .registry
            .manifest(target, digest)
            .await
            .context(|| format!("reading attestation manifest {digest}"))?;
        if manifest.is_index() || manifest.bytes.len() as u64 != child.size {
            return Err(refused(format!(
                "attestation manifest {digest} of {of} is not the image manifest of {} bytes \
                 its descriptor says",
                child.size
            )));
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Descriptor {
            #[serde(default)]
            media_type: String,
            digest: String,
            #[serde(default)]
            annotations: BTreeMap<String, String>,
        }
        #[derive(serde::Deserialize)]
        struct Attestation {
            subject: Option<Descriptor>,
            #[serde(default)]
            layers: Vec<Descriptor>,
        }
        let parsed: Attestation = serde_json::from_slice(&manifest.bytes)
            .map_err(|e| refused(format!("attestation manifest {digest} is not valid: {e}")))?;
        if let Some(subject) = &parsed.subject
            && subject.digest != of
        {
            return Err(refused(format!(
                "attestation manifest {digest} is listed for {of} but its subject is {}",
                subject.digest
            )));
        }
        // Only in-toto statements: nothing a runtime could unpack and run.
        if let Some(layer) = parsed.layers.iter().find(|l| l.media_type != IN_TOTO_LAYER) {
            return Err(refused(format!(
                "attestation manifest {digest} of {of} has a {:?} layer; attestation layers \
                 are {IN_TOTO_LAYER}",
                layer.media_type
            )));
        }
        let predicate_types: Vec<String> = parsed
            .layers
            .iter()
            .filter_map(|l| l.annotations.get(PREDICATE_TYPE).cloned())
            .collect();
        if parsed.layers.len() > MAX_ATTESTATION_LAYERS
            || predicate_types.iter().any(|t| t.len() > MAX_PREDICATE_TYPE)
        {
            return Err(refused(format!(
                "attestation manifest {digest} of {of} has more than {MAX_ATTESTATION_LAYERS} \
                 layers or a predicate type longer than {MAX_PREDICATE_TYPE} bytes"
            )));
        }
        Ok(PublishedAttestation {
            digest: digest.to_owned(),
            predicate_types,
        })
    }
}

/// The layer annotation naming an in-toto statement's predicate type.
const PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
/// The media type of every layer of an attestation manifest.
const IN_TOTO_LAYER: &str = "application/vnd.in-toto+json";
/// At most this many statements per attestation manifest, each predicate type at most this
/// long: hoist's own attestation lists them and must stay small enough to read back.
const MAX_ATTESTATION_LAYERS: usize = 16;
/// At most this many attestation manifests per platform manifest (BuildKit writes one).
const MAX_ATTESTATIONS: usize = 16;
const MAX_PREDICATE_TYPE: usize = 512;

pub(crate) fn platform_of(p: &IndexPlatform) -> Option<Platform> {
    let text = match &p.variant {
        Some(variant) => format!("{}/{}/{variant}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    };
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(n: u8, annotations: &[(&str, String)]) -> ChildRef {
        ChildRef {
            media_type: hoist_registry::OCI_MANIFEST.to_owned(),
            digest: format!("sha256:{}", format!("{n:02x}").repeat(32))
                .parse()
                .expect("a digest"),
            size: 100,
            platform: None,
            annotations: annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            descriptor: serde_json::Value::Null,
        }
    }

    fn attestation(n: u8, of: &ChildRef) -> ChildRef {
        child(
            n,
            &[
                (
                    hoist_registry::REFERENCE_TYPE,
                    "attestation-manifest".into(),
                ),
                (hoist_registry::REFERENCE_DIGEST, of.digest.to_string()),
            ],
        )
    }

    #[test]
    fn attestations_pair_with_the_manifest_they_name() {
        let (amd64, arm64) = (child(1, &[]), child(2, &[]));
        let children = vec![
            amd64.clone(),
            arm64.clone(),
            attestation(3, &arm64),
            attestation(4, &amd64),
        ];
        let split = split_index("ci@x", children).expect("well formed");
        let pairs: Vec<(String, Vec<String>)> = split
            .iter()
            .map(|a| {
                (
                    a.child.digest.to_string(),
                    a.attestations
                        .iter()
                        .map(|c| c.digest.to_string())
                        .collect(),
                )
            })
            .collect();
        assert_eq!(pairs[0].0, amd64.digest.to_string());
        assert_eq!(pairs[0].1, vec![child(4, &[]).digest.to_string()]);
        assert_eq!(pairs[1].1, vec![child(3, &[]).digest.to_string()]);
    }

    #[test]
    fn an_attestation_of_a_manifest_elsewhere_is_refused() {
        let stranger = child(9, &[]);
        let error = split_index("ci@x", vec![child(1, &[]), attestation(3, &stranger)])
            .err()
            .expect("refused")
            .to_string();
        assert!(error.contains("not a manifest of that index"), "{error}");
        assert!(error.contains(stranger.digest.as_str()), "{error}");

        let mut runnable = attestation(6, &child(1, &[]));
        runnable.platform = Some(IndexPlatform {
            architecture: "arm".into(),
            os: "linux".into(),
            os_version: None,
            os_features: None,
            variant: Some("v7".into()),
        });
        let error = split_index("ci@x", vec![child(1, &[]), runnable])
            .err()
            .expect("refused")
            .to_string();
        assert!(error.contains("for linux/arm/v7"), "{error}");

        let no_digest = child(
            5,
            &[(
                hoist_registry::REFERENCE_TYPE,
                "attestation-manifest".into(),
            )],
        );
        let error = split_index("ci@x", vec![child(1, &[]), no_digest])
            .err()
            .expect("refused")
            .to_string();
        assert!(error.contains("vnd.docker.reference.digest"), "{error}");
    }
}
