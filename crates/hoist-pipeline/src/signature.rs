//! cosign's layout for a key signature and an attestation of an index, written and read:
//! - `sha256-<hex>.sig`: an OCI manifest whose one layer
//!   (`application/vnd.dev.cosign.simplesigning.v1+json`) is the simple-signing payload
//!   and whose annotation `dev.cosignproject.cosign/signature` is the base64 ECDSA-SHA256
//!   signature of those bytes;
//! - `sha256-<hex>.att`: an OCI manifest whose one layer
//!   (`application/vnd.dsse.envelope.v1+json`) is a DSSE envelope of an in-toto v1
//!   statement about the index, signed over DSSE's pre-authentication encoding.
//!
//! `cosign verify --key` and `cosign verify-attestation --key` read these; so does
//! `hoist verify`, through [`read_signature`] and [`read_attestation`].

use bytes::Bytes;
use hoist_domain::Digest;
use hoist_domain::signing::{self, PublicKey, SigningKey};
use hoist_registry::{Client, Manifest, OCI_MANIFEST, Repository};
use serde_json::{Value, json};

/// The layer media type of a cosign signature.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer media type of a cosign attestation.
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The annotation holding a layer's signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// DSSE's payload type for in-toto statements.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
/// The predicate type of hoist's publication attestation, documented in
/// docs/supply-chain.md.
pub const PUBLICATION_PREDICATE: &str =
    "https://github.com/hoist-dev/hoist/blob/main/docs/supply-chain.md#publication-v1";
/// The most bytes hoist reads of a signature payload or an attestation envelope.
const LAYER_LIMIT: usize = 4 << 20;
/// The most layers of a `.sig` or `.att` manifest hoist looks at.
const MAX_LAYERS: usize = 16;

/// Why an index's signature or attestation does not hold.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The registry could not be read (may pass on a retry).
    #[error("{0}")]
    Registry(#[from] hoist_registry::Error),
    /// There is none.
    #[error("{0}")]
    Missing(String),
    /// There is one, and it does not verify.
    #[error("{0}")]
    Invalid(String),
}

/// The tag of index `digest`'s signature.
pub fn signature_tag(digest: &Digest) -> String {
    format!("{}.sig", hoist_registry::fallback_tag(digest))
}

/// The tag of index `digest`'s attestation.
pub fn attestation_tag(digest: &Digest) -> String {
    format!("{}.att", hoist_registry::fallback_tag(digest))
}

/// A manifest hoist made, with the blobs it refers to.
#[derive(Debug, Clone)]
pub struct Made {
    pub manifest: Manifest,
    /// Its config, the same for every manifest hoist makes.
    pub config: Bytes,
    /// Its one layer.
    pub layer: Bytes,
}

impl Made {
    /// Pushes the blobs, then the manifest under `tag`.
    pub async fn push(
        &self,
        client: &Client,
        repository: &Repository,
        tag: &str,
    ) -> Result<Digest, hoist_registry::Error> {
        self.push_blobs(client, repository).await?;
        self.put_manifest(client, repository, tag).await
    }

    /// Pushes the blobs, side by side: the layer (new), and the config unless the
    /// repository has it (it almost always does).
    pub async fn push_blobs(
        &self,
        client: &Client,
        repository: &Repository,
    ) -> Result<(), hoist_registry::Error> {
        let config = async {
            let digest = hoist_registry::sha256_digest(&self.config);
            if client.blob_size(repository, &digest).await?.is_none() {
                client.push_blob(repository, self.config.clone()).await?;
            }
            Ok(())
        };
        futures_util::future::try_join(config, client.push_blob(repository, self.layer.clone()))
            .await?;
        Ok(())
    }

    /// Puts the manifest under `tag` (its blobs pushed already).
    pub async fn put_manifest(
        &self,
        client: &Client,
        repository: &Repository,
        tag: &str,
    ) -> Result<Digest, hoist_registry::Error> {
        client.put_manifest(repository, tag, &self.manifest).await
    }
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({
        "mediaType": media_type,
        "digest": hoist_registry::sha256_digest(bytes).as_str(),
        "size": bytes.len(),
    })
}

/// A one-layer OCI manifest in cosign's shape, on hoist's one constant config.
fn one_layer(layer_media_type: &str, layer: Bytes, annotations: Value) -> Made {
    // One config for every signature and attestation, so it is uploaded once per
    // repository; nothing reads it (cosign looks at the layer and its annotations).
    let config = Bytes::from_static(CONFIG);
    let mut layer_descriptor = descriptor(layer_media_type, &layer);
    layer_descriptor["annotations"] = annotations;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
        "layers": [layer_descriptor],
    });
    Made {
        manifest: Manifest::from_bytes(OCI_MANIFEST, Bytes::from(manifest.to_string())),
        config,
        layer,
    }
}

/// The config of every `.sig` and `.att` manifest hoist writes: an image config for no
/// platform, with no layers to run.
const CONFIG: &[u8] =
    br#"{"architecture":"","config":{},"os":"","rootfs":{"diff_ids":[],"type":"layers"}}"#;

/// The signature of index `digest` of repository `reference` (`registry/path`).
pub fn signature(
    key: &SigningKey,
    reference: &str,
    digest: &Digest,
    optional: &serde_json::Map<String, Value>,
) -> Result<Made, signing::KeyError> {
    let payload = signing::simple_signing_payload(reference, digest.as_str(), optional);
    let signed = key.sign(&payload)?;
    Ok(one_layer(
        SIMPLE_SIGNING,
        Bytes::from(payload),
        json!({ SIGNATURE_ANNOTATION: signing::base64(&signed) }),
    ))
}

/// The attestation of an in-toto `statement`, in a DSSE envelope signed by `key`.
pub fn attestation(key: &SigningKey, statement: &Value) -> Result<Made, signing::KeyError> {
    let payload = statement.to_string().into_bytes();
    let signed = key.sign(&signing::dsse_pae(IN_TOTO, &payload))?;
    let envelope = json!({
        "payloadType": IN_TOTO,
        "payload": signing::base64(&payload),
        "signatures": [{"keyid": "", "sig": signing::base64(&signed)}],
    });
    Ok(one_layer(
        DSSE_ENVELOPE,
        Bytes::from(envelope.to_string()),
        json!({
            SIGNATURE_ANNOTATION: "",
            "predicateType": statement["predicateType"],
        }),
    ))
}

/// The layers of the manifest tagged `tag`, with the manifest's digest.
async fn layers(
    client: &Client,
    repository: &Repository,
    tag: &str,
) -> Result<(Digest, Vec<Value>), VerifyError> {
    let manifest = match client.manifest(repository, tag).await {
        Ok(manifest) => manifest,
        Err(hoist_registry::Error::Status { status: 404, .. }) => {
            return Err(VerifyError::Missing(format!("{repository} has no {tag}")));
        }
        Err(e) => return Err(e.into()),
    };
    let json: Value = serde_json::from_slice(&manifest.bytes)
        .map_err(|e| VerifyError::Invalid(format!("{tag} is not valid JSON: {e}")))?;
    let layers: Vec<Value> = json["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .take(MAX_LAYERS)
        .cloned()
        .collect();
    Ok((manifest.digest, layers))
}

/// The bytes of a layer, checked against its digest; `None`, saying why in `why`, when the
/// layer proves nothing: no valid digest, or gone (and hoist may write a signature over it).
async fn layer_bytes(
    client: &Client,
    repository: &Repository,
    layer: &Value,
    why: &mut String,
) -> Result<Option<Bytes>, hoist_registry::Error> {
    let Some(digest) = layer["digest"]
        .as_str()
        .and_then(|d| d.parse::<Digest>().ok())
    else {
        *why = "a layer without a valid digest".to_owned();
        return Ok(None);
    };
    match client.blob_bytes(repository, &digest, LAYER_LIMIT).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(hoist_registry::Error::Status { status: 404, .. }) => {
            *why = format!("layer {digest} is missing from {repository}");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// A signature of index `digest` that verifies under one of `keys`: the `.sig`
/// manifest's digest and the payload it signs.
pub async fn read_signature(
    client: &Client,
    repository: &Repository,
    reference: &str,
    digest: &Digest,
    keys: &[&PublicKey],
) -> Result<(Digest, Value), VerifyError> {
    let tag = signature_tag(digest);
    let (manifest, layers) = layers(client, repository, &tag).await?;
    let mut why = format!("{tag} holds no {SIMPLE_SIGNING} layer");
    for layer in layers.iter().filter(|l| l["mediaType"] == SIMPLE_SIGNING) {
        let Some(signed) = layer["annotations"][SIGNATURE_ANNOTATION]
            .as_str()
            .and_then(signing::from_base64)
        else {
            why = format!("{tag}'s layer has no {SIGNATURE_ANNOTATION} annotation");
            continue;
        };
        let Some(payload) = layer_bytes(client, repository, layer, &mut why).await? else {
            continue;
        };
        if !keys.iter().any(|k| k.verifies(&payload, &signed)) {
            why = format!("{tag}'s signature does not verify with the given key");
            continue;
        }
        let Ok(json) = serde_json::from_slice::<Value>(&payload) else {
            why = format!("{tag}'s payload is not JSON");
            continue;
        };
        let critical = &json["critical"];
        if critical["type"] != signing::COSIGN_SIGNATURE_TYPE
            || critical["image"]["docker-manifest-digest"] != digest.as_str()
            || critical["identity"]["docker-reference"] != reference
        {
            why = format!(
                "{tag} is signed, but for {} of {}, not {digest} of {reference}",
                critical["image"]["docker-manifest-digest"],
                critical["identity"]["docker-reference"]
            );
            continue;
        }
        return Ok((manifest, json));
    }
    Err(VerifyError::Invalid(why))
}

/// An attestation of index `digest` with hoist's predicate that verifies under one of
/// `keys`: the `.att` manifest's digest and the in-toto statement.
pub async fn read_attestation(
    client: &Client,
    repository: &Repository,
    digest: &Digest,
    keys: &[&PublicKey],
) -> Result<(Digest, Value), VerifyError> {
    let tag = attestation_tag(digest);
    let (manifest, layers) = layers(client, repository, &tag).await?;
    let mut why = format!("{tag} holds no {DSSE_ENVELOPE} layer");
    for layer in layers.iter().filter(|l| l["mediaType"] == DSSE_ENVELOPE) {
        let Some(bytes) = layer_bytes(client, repository, layer, &mut why).await? else {
            continue;
        };
        let Ok(envelope) = serde_json::from_slice::<Value>(&bytes) else {
            why = format!("{tag}'s envelope is not JSON");
            continue;
        };
        let Some(payload) = envelope["payload"].as_str().and_then(signing::from_base64) else {
            why = format!("{tag}'s envelope has no base64 payload");
            continue;
        };
        if envelope["payloadType"] != IN_TOTO {
            why = format!("{tag}'s envelope is not an in-toto statement");
            continue;
        }
        let pae = signing::dsse_pae(IN_TOTO, &payload);
        let verified = envelope["signatures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["sig"].as_str().and_then(signing::from_base64))
            .any(|sig| keys.iter().any(|k| k.verifies(&pae, &sig)));
        if !verified {
            why = format!("{tag}'s envelope does not verify with the given key");
            continue;
        }
        let Ok(statement) = serde_json::from_slice::<Value>(&payload) else {
            why = format!("{tag}'s statement is not JSON");
            continue;
        };
        let about_index = statement["subject"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["digest"][digest.algorithm()] == digest.hex());
        if statement["predicateType"] != PUBLICATION_PREDICATE || !about_index {
            why =
                format!("{tag} is signed, but is not hoist's publication statement about {digest}");
            continue;
        }
        return Ok((manifest, statement));
    }
    Err(VerifyError::Invalid(why))
}
