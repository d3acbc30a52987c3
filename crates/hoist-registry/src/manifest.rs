//! Manifests: media types, reading and writing exact bytes, and what a manifest refers to.

use std::collections::BTreeMap;

use bytes::Bytes;
use hoist_domain::Digest;
use oci_spec::image::ImageManifest;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Deserialize as _;

use crate::auth::Scope;
use crate::client::{Client, Repository, expect};
use crate::{Error, Result};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Every manifest type the client reads, so a registry never converts one on the way out.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// The largest manifest hoist reads: 4 MiB, the size the OCI distribution spec requires
/// registries to accept at least.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// A manifest as the registry stores it: its exact bytes, and the digest of those bytes.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub media_type: String,
    pub digest: Digest,
    pub bytes: Bytes,
}

/// What a manifest points at.
#[derive(Debug, Clone)]
pub enum Contents {
    /// An image: its config and layers (blobs).
    Image { blobs: Vec<BlobRef> },
    /// An index: child manifests, with the platform each is for when it says so.
    Index { children: Vec<ChildRef> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    pub digest: Digest,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct ChildRef {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub platform: Option<crate::index::IndexPlatform>,
    pub annotations: BTreeMap<String, String>,
    /// The descriptor as the index wrote it, every field kept, for an index that lists
    /// the same child again.
    pub descriptor: serde_json::Value,
}

/// The annotation BuildKit puts on an attestation manifest's descriptor in an index.
pub const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// The platform manifest an attestation manifest is about, on the same descriptor.
pub const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
/// [`REFERENCE_TYPE`]'s value for an attestation.
pub const ATTESTATION_MANIFEST: &str = "attestation-manifest";

impl ChildRef {
    /// The platform manifest this child attests when it is a BuildKit attestation manifest
    /// (`vnd.docker.reference.type: attestation-manifest`), `None` for any other child.
    pub fn attests(&self) -> Result<Option<Digest>> {
        if self.annotations.get(REFERENCE_TYPE).map(String::as_str) != Some(ATTESTATION_MANIFEST) {
            return Ok(None);
        }
        let reference = self.annotations.get(REFERENCE_DIGEST).ok_or_else(|| {
            Error::Unsupported(format!(
                "attestation manifest {} has no {REFERENCE_DIGEST} annotation",
                self.digest
            ))
        })?;
        reference.parse().map(Some).map_err(|e| {
            Error::Unsupported(format!(
                "attestation manifest {}'s {REFERENCE_DIGEST} is not a digest: {e}",
                self.digest
            ))
        })
    }
}

/// The sha256 digest of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> Digest {
    Digest::sha256_of(bytes)
}

fn parse_digest(text: &str) -> Result<Digest> {
    text.parse()
        .map_err(|e| Error::Unsupported(format!("manifest refers to a bad digest: {e}")))
}

impl Manifest {
    /// Wraps bytes with their media type, computing the digest.
    pub fn from_bytes(media_type: &str, bytes: Bytes) -> Manifest {
        Manifest {
            media_type: media_type.to_owned(),
            digest: sha256_digest(&bytes),
            bytes,
        }
    }

    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_MANIFEST_LIST
    }

    /// The blobs or child manifests this manifest refers to. Descriptors that carry `urls`
    /// (foreign layers) live outside the registry and are not listed.
    pub fn contents(&self) -> Result<Contents> {
        let bad = |e: oci_spec::OciSpecError| {
            Error::Unsupported(format!("manifest {} is not valid: {e}", self.digest))
        };
        match self.media_type.as_str() {
            OCI_INDEX | DOCKER_MANIFEST_LIST => {
                #[derive(serde::Deserialize)]
                struct Index {
                    manifests: Vec<serde_json::Value>,
                }
                #[derive(serde::Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct Child {
                    media_type: String,
                    digest: String,
                    size: u64,
                    platform: Option<crate::index::IndexPlatform>,
                    #[serde(default)]
                    annotations: BTreeMap<String, String>,
                }
                let invalid = |e: serde_json::Error| {
                    Error::Unsupported(format!("index {} is not valid: {e}", self.digest))
                };
                let index: Index = serde_json::from_slice(&self.bytes).map_err(invalid)?;
                let children = index
                    .manifests
                    .into_iter()
                    .map(|descriptor| {
                        let d = Child::deserialize(&descriptor).map_err(invalid)?;
                        Ok(ChildRef {
                            media_type: d.media_type,
                            digest: parse_digest(&d.digest)?,
                            size: d.size,
                            platform: d.platform,
                            annotations: d.annotations,
                            descriptor,
                        })
                    })
                    .collect::<Result<_>>()?;
                Ok(Contents::Index { children })
            }
            OCI_MANIFEST | DOCKER_MANIFEST => {
                let manifest = ImageManifest::from_reader(&self.bytes[..]).map_err(bad)?;
                let blobs = std::iter::once(manifest.config())
                    .chain(manifest.layers())
                    .filter(|d| d.urls().as_ref().is_none_or(Vec::is_empty))
                    .map(|d| {
                        Ok(BlobRef {
                            digest: parse_digest(d.digest().as_ref())?,
                            size: d.size(),
                        })
                    })
                    .collect::<Result<_>>()?;
                Ok(Contents::Image { blobs })
            }
            other => Err(Error::Unsupported(format!(
                "manifest {} has media type {other:?}; hoist handles OCI and Docker v2 \
                 manifests and indexes",
                self.digest
            ))),
        }
    }

    /// The config blob of an image manifest.
    pub fn config(&self) -> Result<BlobRef> {
        match self.contents()? {
            Contents::Image { blobs } => blobs.into_iter().next().ok_or_else(|| {
                Error::Unsupported(format!("manifest {} has no config", self.digest))
            }),
            Contents::Index { .. } => Err(Error::Unsupported(format!(
                "{} is an index, not an image manifest",
                self.digest
            ))),
        }
    }
}

/// Reads the `mediaType` a manifest declares in its JSON, for registries that answer with
/// a generic content type.
fn declared_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Probe>(bytes).ok()?.media_type
}

/// Where a manifest sits: what HEAD says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    pub digest: Option<Digest>,
    pub media_type: Option<String>,
    pub size: Option<u64>,
}

impl Client {
    /// GETs a manifest by tag or digest with the full Accept list, keeping its exact bytes.
    /// By digest, the bytes are checked against it.
    pub async fn manifest(&self, repository: &Repository, reference: &str) -> Result<Manifest> {
        let url = self.url(repository, &format!("manifests/{reference}"));
        let response = self
            .send(repository, &Scope::pull(&repository.path), "GET", |http| {
                http.get(&url).header(ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        let response = expect(response, "GET", &[StatusCode::OK]).await?;
        let header_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned());
        let too_large = || {
            Error::Unsupported(format!(
                "manifest {reference} of {repository} is larger than {MAX_MANIFEST_BYTES} bytes \
                 (4 MiB), the most hoist reads: the size the OCI distribution spec requires \
                 registries to accept"
            ))
        };
        let bytes = crate::client::read_capped(response, MAX_MANIFEST_BYTES)
            .await
            .map_err(|source| {
                Error::transport(
                    format!("reading manifest {reference} of {repository}"),
                    source,
                )
            })?
            .ok_or_else(too_large)?;
        let media_type = match header_type {
            Some(t) if t != "application/json" && t != "application/octet-stream" => t,
            _ => declared_media_type(&bytes).unwrap_or_default(),
        };
        let manifest = Manifest::from_bytes(&media_type, bytes);
        if reference.contains(':') && manifest.digest.as_str() != reference {
            return Err(Error::ManifestDigestMismatch {
                repository: repository.to_string(),
                reference: reference.to_owned(),
                actual: manifest.digest,
            });
        }
        Ok(manifest)
    }

    /// HEADs a manifest; `None` when the registry does not have it.
    pub async fn manifest_head(
        &self,
        repository: &Repository,
        reference: &str,
    ) -> Result<Option<ManifestHead>> {
        let url = self.url(repository, &format!("manifests/{reference}"));
        let response = self
            .send(repository, &Scope::pull(&repository.path), "HEAD", |http| {
                http.head(&url).header(ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = expect(response, "HEAD", &[StatusCode::OK]).await?;
        let headers = response.headers();
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        Ok(Some(ManifestHead {
            digest: text("docker-content-digest").and_then(|d| d.parse().ok()),
            media_type: text("content-type").map(str::to_owned),
            size: text("content-length").and_then(|l| l.parse().ok()),
        }))
    }

    /// PUTs a manifest's exact bytes under `reference` (its digest, or a tag). Returns the
    /// digest, checked against the one the registry reports.
    pub async fn put_manifest(
        &self,
        repository: &Repository,
        reference: &str,
        manifest: &Manifest,
    ) -> Result<Digest> {
        let url = self.url(repository, &format!("manifests/{reference}"));
        let response = self
            .send(repository, &Scope::push(&repository.path), "PUT", |http| {
                http.put(&url)
                    .header(CONTENT_TYPE, &manifest.media_type)
                    .body(manifest.bytes.clone())
            })
            .await?;
        let response = expect(response, "PUT", &[StatusCode::CREATED, StatusCode::OK]).await?;
        let reported = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|d| d.parse::<Digest>().ok());
        if let Some(reported) = reported
            && reported != manifest.digest
        {
            return Err(Error::Protocol {
                host: repository.host.clone(),
                message: format!(
                    "stored manifest {} as {reported}: the registry changed its bytes",
                    manifest.digest
                ),
            });
        }
        Ok(manifest.digest.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_the_sha256_of_the_exact_bytes() {
        let m = Manifest::from_bytes(OCI_MANIFEST, Bytes::from_static(b"{}"));
        assert_eq!(
            m.digest.as_str(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn lists_config_and_layers_but_not_foreign_layers() {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
            "config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{}","size":10}},
            "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{}","size":20}},
                      {{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{}","size":30,"urls":["https://example.com/l"]}}]}}"#,
            d('a'),
            d('b'),
            d('c')
        );
        let m = Manifest::from_bytes(DOCKER_MANIFEST, Bytes::from(json));
        let Contents::Image { blobs } = m.contents().unwrap() else {
            panic!("an image")
        };
        let digests: Vec<_> = blobs
            .iter()
            .map(|b| (b.digest.to_string(), b.size))
            .collect();
        assert_eq!(digests, vec![(d('a'), 10), (d('b'), 20)]);
        assert_eq!(m.config().unwrap().size, 10);
    }

    #[test]
    fn unknown_media_types_are_named() {
        let m = Manifest::from_bytes(
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            Bytes::from_static(b"{}"),
        );
        let err = m.contents().unwrap_err().to_string();
        assert!(err.contains("manifest.v1+prettyjws"), "{err}");
    }
}
