//! Referrers (OCI distribution 1.1): the manifests whose `subject` is a given manifest
//! (signatures, SBOMs, attestations pushed beside an image). Read from the referrers API
//! where the registry has one, else from the fallback tag `<alg>-<hex>`, an index of them
//! that the writer maintains. Registries without the API (distribution 2.8, GHCR today)
//! answer 404 there.

use bytes::Bytes;
use hoist_domain::Digest;
use reqwest::StatusCode;
use reqwest::header::ACCEPT;
use serde_json::{Value, json};

use crate::auth::Scope;
use crate::client::{Client, Repository, expect};
use crate::copy::MAX_INDEX_CHILDREN;
use crate::manifest::{ChildRef, Contents, MAX_MANIFEST_BYTES, Manifest, OCI_INDEX};
use crate::{Error, Result};

/// The manifests that refer to one manifest, and where hoist found them.
#[derive(Debug, Clone)]
pub struct Referrers {
    /// True when the registry answered its referrers API; false for the fallback tag.
    pub api: bool,
    pub descriptors: Vec<ChildRef>,
}

/// The fallback tag of `digest`'s referrers index.
pub fn fallback_tag(digest: &Digest) -> String {
    format!("{}-{}", digest.algorithm(), digest.hex())
}

/// How a referrers index lists `manifest`: its media type, digest, size, `artifactType`
/// (else its config's media type) and annotations.
pub fn referrer_descriptor(manifest: &Manifest) -> Result<Value> {
    let json: Value = serde_json::from_slice(&manifest.bytes).map_err(|e| {
        Error::Unsupported(format!("manifest {} is not valid: {e}", manifest.digest))
    })?;
    let artifact_type = json
        .get("artifactType")
        .or_else(|| json.pointer("/config/mediaType"))
        .cloned();
    let mut descriptor = json!({
        "mediaType": manifest.media_type,
        "digest": manifest.digest.as_str(),
        "size": manifest.bytes.len(),
    });
    if let Some(artifact_type) = artifact_type {
        descriptor["artifactType"] = artifact_type;
    }
    if let Some(annotations) = json.get("annotations").filter(|a| a.is_object()) {
        descriptor["annotations"] = annotations.clone();
    }
    Ok(descriptor)
}

fn children_of(index: &Manifest) -> Result<Vec<ChildRef>> {
    let children = match index.contents()? {
        Contents::Index { children } => children,
        Contents::Image { .. } => {
            return Err(Error::Unsupported(format!(
                "the referrers of a manifest are listed in {}, which is not an index",
                index.digest
            )));
        }
    };
    if children.len() > MAX_INDEX_CHILDREN {
        return Err(Error::Unsupported(format!(
            "{} lists more than {MAX_INDEX_CHILDREN} referrers; hoist carries at most \
             {MAX_INDEX_CHILDREN}",
            index.digest
        )));
    }
    Ok(children)
}

impl Client {
    /// The referrers of `digest` in `repository`: the API's answer, else the fallback
    /// tag's index, else none.
    pub async fn referrers(&self, repository: &Repository, digest: &Digest) -> Result<Referrers> {
        let url = self.url(repository, &format!("referrers/{digest}"));
        let response = self
            .send(repository, &Scope::pull(&repository.path), "GET", |http| {
                http.get(&url).header(ACCEPT, OCI_INDEX)
            })
            .await?;
        if response.status() != StatusCode::NOT_FOUND {
            let response = expect(response, "GET", &[StatusCode::OK]).await?;
            let bytes = crate::client::read_capped(response, MAX_MANIFEST_BYTES)
                .await
                .map_err(|source| {
                    Error::transport(format!("reading the referrers of {digest}"), source)
                })?
                .ok_or_else(|| {
                    Error::Unsupported(format!(
                        "the referrers of {digest} in {repository} are larger than \
                         {MAX_MANIFEST_BYTES} bytes"
                    ))
                })?;
            let index = Manifest::from_bytes(OCI_INDEX, bytes);
            return Ok(Referrers {
                api: true,
                descriptors: children_of(&index)?,
            });
        }
        let tag = fallback_tag(digest);
        if self.manifest_head(repository, &tag).await?.is_none() {
            return Ok(Referrers {
                api: false,
                descriptors: Vec::new(),
            });
        }
        let index = self.manifest(repository, &tag).await?;
        Ok(Referrers {
            api: false,
            descriptors: children_of(&index)?,
        })
    }

    /// Lists `descriptors` in `subject`'s fallback referrers index in `repository`, keeping
    /// every entry it has; writes only when something is new. The registry does not
    /// serialize writers of one tag: the caller must.
    pub async fn add_referrers(
        &self,
        repository: &Repository,
        subject: &Digest,
        descriptors: &[Value],
    ) -> Result<bool> {
        let tag = fallback_tag(subject);
        let mut listed: Vec<Value> = match self.manifest_head(repository, &tag).await? {
            Some(_) => {
                let index = self.manifest(repository, &tag).await?;
                children_of(&index)?
                    .into_iter()
                    .map(|c| c.descriptor)
                    .collect()
            }
            None => Vec::new(),
        };
        let before = listed.len();
        for descriptor in descriptors {
            let digest = &descriptor["digest"];
            if !listed.iter().any(|d| &d["digest"] == digest) {
                listed.push(descriptor.clone());
            }
        }
        if listed.len() == before {
            return Ok(false);
        }
        if listed.len() > MAX_INDEX_CHILDREN {
            return Err(Error::Unsupported(format!(
                "{subject} would have more than {MAX_INDEX_CHILDREN} referrers"
            )));
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": listed,
        });
        let manifest = Manifest::from_bytes(OCI_INDEX, Bytes::from(index.to_string()));
        self.put_manifest(repository, &tag, &manifest).await?;
        Ok(true)
    }
}
