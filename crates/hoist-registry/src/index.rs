//! Assembling a multi-platform index from platform manifests, the way `docker buildx
//! imagetools create` does: a Docker manifest list when every child is a Docker v2
//! manifest, an OCI index otherwise, annotations only on an OCI index.

use std::collections::BTreeMap;

use bytes::Bytes;
use hoist_domain::Digest;
use serde::{Deserialize, Serialize};

use crate::manifest::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Manifest, OCI_INDEX};
use crate::{Error, Result};

/// The platform of an index descriptor, with the spec's JSON names (`os.version`,
/// `os.features`). oci-spec 0.10 writes and reads `os_version` there, so it is not used for
/// this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexPlatform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl IndexPlatform {
    /// `os/arch[/variant]`, comparable with [`hoist_domain::Platform`]'s display form.
    pub fn short(&self) -> String {
        match &self.variant {
            Some(variant) => format!("{}/{}/{variant}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// One platform manifest as an index lists it, with the attestation manifests about it.
#[derive(Debug, Clone)]
pub struct IndexChild {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub platform: IndexPlatform,
    /// The annotations the source index gave this manifest's descriptor (OCI index only).
    pub annotations: BTreeMap<String, String>,
    /// The descriptors of its attestation manifests as the source index wrote them,
    /// listed verbatim after every platform manifest, as BuildKit and `docker buildx
    /// imagetools create` do.
    pub attestations: Vec<serde_json::Value>,
}

fn invalid(what: impl std::fmt::Display) -> Error {
    Error::Unsupported(format!("cannot build the index: {what}"))
}

/// Builds the index's exact bytes. Keys are written in a fixed (sorted) order, so the same
/// children and annotations always give the same digest.
pub fn assemble_index(
    children: &[IndexChild],
    annotations: &BTreeMap<String, String>,
) -> Result<Manifest> {
    if children.is_empty() {
        return Err(invalid("no platform manifests"));
    }
    let docker = children
        .iter()
        .all(|c| c.media_type == DOCKER_MANIFEST && c.attestations.is_empty());
    let media_type = if docker {
        DOCKER_MANIFEST_LIST
    } else {
        OCI_INDEX
    };
    let manifests: Vec<serde_json::Value> = children
        .iter()
        .map(|child| {
            let mut descriptor = serde_json::json!({
                "mediaType": child.media_type,
                "digest": child.digest.as_str(),
                "size": child.size,
                "platform": child.platform,
            });
            if !docker && !child.annotations.is_empty() {
                descriptor["annotations"] = serde_json::json!(child.annotations);
            }
            descriptor
        })
        .chain(children.iter().flat_map(|c| c.attestations.iter().cloned()))
        .collect();
    let mut index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": manifests,
    });
    if !docker && !annotations.is_empty() {
        index["annotations"] = serde_json::json!(annotations);
    }
    // serde_json's maps are sorted: the same content always gives the same bytes.
    let bytes = serde_json::to_vec(&index).map_err(invalid)?;
    Ok(Manifest::from_bytes(media_type, Bytes::from(bytes)))
}

/// The platform an image config declares: `os`, `architecture`, `variant`, `os.version`,
/// `os.features`.
pub fn platform_from_config(config: &[u8]) -> Result<IndexPlatform> {
    serde_json::from_slice(config)
        .map_err(|e| invalid(format!("image config without os/architecture: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{OCI_MANIFEST, sha256_digest};

    fn child(media_type: &str, seed: &[u8], config: &str) -> IndexChild {
        IndexChild {
            media_type: media_type.to_owned(),
            digest: sha256_digest(seed),
            size: 500,
            platform: platform_from_config(config.as_bytes()).unwrap(),
            annotations: BTreeMap::new(),
            attestations: Vec::new(),
        }
    }

    fn annotations() -> BTreeMap<String, String> {
        [
            ("org.opencontainers.image.version", "1.2.3"),
            ("org.opencontainers.image.revision", "abc"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into()
    }

    #[test]
    fn docker_children_make_a_manifest_list_without_annotations() {
        let children = [
            child(
                DOCKER_MANIFEST,
                b"a",
                r#"{"os":"linux","architecture":"amd64"}"#,
            ),
            child(
                DOCKER_MANIFEST,
                b"b",
                r#"{"os":"linux","architecture":"arm","variant":"v7"}"#,
            ),
        ];
        let index = assemble_index(&children, &annotations()).unwrap();
        assert_eq!(index.media_type, DOCKER_MANIFEST_LIST);
        let json: serde_json::Value = serde_json::from_slice(&index.bytes).unwrap();
        assert_eq!(json["mediaType"], DOCKER_MANIFEST_LIST);
        assert!(json.get("annotations").is_none());
        assert_eq!(json["manifests"][1]["platform"]["variant"], "v7");
        assert_eq!(json["manifests"][0]["mediaType"], DOCKER_MANIFEST);
    }

    #[test]
    fn any_oci_child_makes_an_oci_index_with_annotations_and_a_stable_digest() {
        let children = [
            child(
                OCI_MANIFEST,
                b"a",
                r#"{"os":"windows","architecture":"amd64","os.version":"10.0.17763.1"}"#,
            ),
            child(
                DOCKER_MANIFEST,
                b"b",
                r#"{"os":"linux","architecture":"arm64"}"#,
            ),
        ];
        let first = assemble_index(&children, &annotations()).unwrap();
        let second = assemble_index(&children, &annotations()).unwrap();
        assert_eq!(first.media_type, OCI_INDEX);
        assert_eq!(first.digest, second.digest);
        let json: serde_json::Value = serde_json::from_slice(&first.bytes).unwrap();
        assert_eq!(
            json["annotations"]["org.opencontainers.image.version"],
            "1.2.3"
        );
        assert_eq!(
            json["manifests"][0]["platform"]["os.version"],
            "10.0.17763.1"
        );
        assert_eq!(json["schemaVersion"], 2);
    }

    #[test]
    fn attestations_follow_every_platform_verbatim_and_make_an_oci_index() {
        let mut amd64 = child(
            DOCKER_MANIFEST,
            b"a",
            r#"{"os":"linux","architecture":"amd64"}"#,
        );
        let mut arm64 = child(
            DOCKER_MANIFEST,
            b"b",
            r#"{"os":"linux","architecture":"arm64"}"#,
        );
        let attestation = |of: &IndexChild, seed: &[u8]| {
            serde_json::json!({
                "mediaType": OCI_MANIFEST,
                "digest": sha256_digest(seed).as_str(),
                "size": 800,
                "platform": {"os": "unknown", "architecture": "unknown"},
                "annotations": {
                    "vnd.docker.reference.type": "attestation-manifest",
                    "vnd.docker.reference.digest": of.digest.as_str(),
                },
            })
        };
        amd64.attestations.push(attestation(&amd64, b"att-a"));
        arm64.attestations.push(attestation(&arm64, b"att-b"));
        arm64
            .annotations
            .insert("org.example".to_owned(), "kept".to_owned());
        let index = assemble_index(&[amd64.clone(), arm64.clone()], &annotations()).unwrap();
        assert_eq!(index.media_type, OCI_INDEX);
        let json: serde_json::Value = serde_json::from_slice(&index.bytes).unwrap();
        let listed = json["manifests"].as_array().unwrap();
        assert_eq!(listed.len(), 4);
        assert_eq!(listed[0]["digest"], amd64.digest.as_str());
        assert_eq!(listed[1]["annotations"]["org.example"], "kept");
        assert_eq!(listed[2], amd64.attestations[0]);
        assert_eq!(listed[3], arm64.attestations[0]);
    }

    #[test]
    fn an_empty_index_is_refused() {
        assert!(assemble_index(&[], &BTreeMap::new()).is_err());
    }
}
