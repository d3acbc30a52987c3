//! hoist's signing key and what it signs, in formats other tools check:
//! - the key: ECDSA P-256, PKCS#8 PEM (`openssl genpkey -algorithm EC -pkeyopt
//!   ec_paramgen_curve:P-256`); its public half as SubjectPublicKeyInfo PEM, what
//!   `cosign verify --key` and `openssl dgst -verify` read;
//! - signatures: ECDSA-SHA256, ASN.1 DER, base64 where a format wants text;
//! - cosign's simple-signing payload (the `.sig` layer) and DSSE's pre-authentication
//!   encoding (the `.att` envelope).
//!
//! Pure: bytes in, bytes out. Pushing them is the pipeline's job.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _};

/// The DER prefix of a P-256 SubjectPublicKeyInfo: `id-ecPublicKey`, `prime256v1`, then a
/// BIT STRING holding the 65-byte uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Why a key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

/// The private key hoist signs with. Its `Debug` shows the public key only.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    public: PublicKey,
    rng: SystemRandom,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.public.id())
            .finish_non_exhaustive()
    }
}

/// A P-256 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The uncompressed point, `04 || x || y`.
    point: Vec<u8>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PublicKey").field(&self.id()).finish()
    }
}

/// The base64 body of the one PEM block labelled `label` in `text`.
fn pem_body(text: &str, label: &str) -> Result<Vec<u8>, KeyError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let Some(start) = text.find(&begin) else {
        let found = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("-----BEGIN "))
            .map(|l| l.trim_end_matches('-').to_owned());
        return Err(KeyError(match found {
            Some(other) => format!("a PEM {other:?} block, not {label:?}"),
            None => format!("no PEM block: expected -----BEGIN {label}-----"),
        }));
    };
    let rest = &text[start + begin.len()..];
    let stop = rest
        .find(&end)
        .ok_or_else(|| KeyError(format!("the PEM block has no -----END {label}----- line")))?;
    let body: String = rest[..stop].split_whitespace().collect();
    STANDARD
        .decode(body)
        .map_err(|e| KeyError(format!("the PEM block is not base64: {e}")))
}

fn pem(label: &str, der: &[u8]) -> String {
    let text = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

impl SigningKey {
    /// Reads an unencrypted PKCS#8 PEM ECDSA P-256 key, saying what is wrong otherwise.
    pub fn from_pem(text: &str) -> Result<SigningKey, KeyError> {
        if text.contains("-----BEGIN EC PRIVATE KEY-----") {
            return Err(KeyError(
                "a SEC1 \"EC PRIVATE KEY\"; hoist reads PKCS#8: convert it with \
                 `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.p8`"
                    .to_owned(),
            ));
        }
        if text.contains("ENCRYPTED") {
            return Err(KeyError(
                "an encrypted key; hoist reads an unencrypted PKCS#8 key (keep it in a secret \
                 file or environment variable instead)"
                    .to_owned(),
            ));
        }
        let der = pem_body(text, "PRIVATE KEY")?;
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &der, &rng)
            .map_err(|e| {
                KeyError(format!(
                    "not an ECDSA P-256 PKCS#8 key ({e}); make one with `openssl genpkey \
                     -algorithm EC -pkeyopt ec_paramgen_curve:P-256`"
                ))
            })?;
        let public = PublicKey {
            point: pair.public_key().as_ref().to_vec(),
        };
        Ok(SigningKey { pair, public, rng })
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The ECDSA-SHA256 signature of `message`, ASN.1 DER.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.pair
            .sign(&self.rng, message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| KeyError("the key failed to sign".to_owned()))
    }
}

impl PublicKey {
    /// Reads a SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`) P-256 key.
    pub fn from_pem(text: &str) -> Result<PublicKey, KeyError> {
        let der = pem_body(text, "PUBLIC KEY")?;
        match der.strip_prefix(&P256_SPKI_PREFIX[..]) {
            Some(point) if point.len() == 65 && point[0] == 4 => Ok(PublicKey {
                point: point.to_vec(),
            }),
            _ => Err(KeyError(
                "not an ECDSA P-256 public key (SubjectPublicKeyInfo)".to_owned(),
            )),
        }
    }

    /// The SubjectPublicKeyInfo DER.
    pub fn der(&self) -> Vec<u8> {
        [&P256_SPKI_PREFIX[..], &self.point].concat()
    }

    pub fn to_pem(&self) -> String {
        pem("PUBLIC KEY", &self.der())
    }

    /// `sha256:<hex>` of the SubjectPublicKeyInfo DER, to name a key in logs and lists.
    pub fn id(&self) -> String {
        crate::Digest::sha256_of(&self.der()).to_string()
    }

    /// Whether `signature` (ASN.1 DER) is this key's ECDSA-SHA256 signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(message, signature)
            .is_ok()
    }
}

/// Base64 (standard alphabet, padded), as cosign and DSSE write signatures and payloads.
pub fn base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The inverse of [`base64`].
pub fn from_base64(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

/// DSSE's pre-authentication encoding: what a DSSE signature signs.
pub fn dsse_pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// cosign's simple-signing payload for `digest` of `reference` (the repository, without
/// tag), with `optional` facts beside it. Keys are written sorted, so the same facts give
/// the same bytes.
pub fn simple_signing_payload(
    reference: &str,
    digest: &str,
    optional: &serde_json::Map<String, serde_json::Value>,
) -> Vec<u8> {
    let payload = serde_json::json!({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": COSIGN_SIGNATURE_TYPE,
        },
        "optional": optional,
    });
    payload.to_string().into_bytes()
}

/// `critical.type` of a cosign simple-signing payload.
pub const COSIGN_SIGNATURE_TYPE: &str = "cosign container image signature";

#[cfg(test)]
mod tests {
    use super::*;

    /// A P-256 key made once with `openssl genpkey -algorithm EC -pkeyopt
    /// ec_paramgen_curve:P-256` for these tests only.
    const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgKtZRulFwZ6S6zzrB
eUUhGX9wBb7Qx/VMz8ACrMSpIuChRANCAASHbRwBbaOIiaS2X9of4gSMn9KYUuMW
hOu4Q/fjmXmWsaBh/jITbDU7xSLMyNjomDvDpTvyuSZY1FHaKlxJBquO
-----END PRIVATE KEY-----
";

    #[test]
    fn a_signature_verifies_with_the_public_key_and_only_over_its_message() {
        let key = SigningKey::from_pem(KEY).expect("a P-256 key");
        let signature = key.sign(b"payload").expect("signs");
        let public = PublicKey::from_pem(&key.public().to_pem()).expect("round trip");
        assert_eq!(&public, key.public());
        assert!(public.verifies(b"payload", &signature));
        assert!(!public.verifies(b"payloaD", &signature));
        assert!(public.id().starts_with("sha256:"));
        assert!(
            !format!("{key:?}").contains("MIGH"),
            "no private key in Debug"
        );
    }

    #[test]
    fn keys_hoist_cannot_use_are_named() {
        let sec1 = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n";
        let error = SigningKey::from_pem(sec1).unwrap_err().to_string();
        assert!(error.contains("openssl pkcs8 -topk8"), "{error}");
        let error = SigningKey::from_pem("not a key").unwrap_err().to_string();
        assert!(error.contains("no PEM block"), "{error}");
        let wrong = KEY.replace("MIGHAgEA", "MIGHAgEB");
        let error = SigningKey::from_pem(&wrong).unwrap_err().to_string();
        assert!(error.contains("not an ECDSA P-256 PKCS#8 key"), "{error}");
        let error = SigningKey::from_pem(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAA==\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("encrypted"), "{error}");
        let error = PublicKey::from_pem(KEY).unwrap_err().to_string();
        assert!(error.contains("\"PRIVATE KEY\" block"), "{error}");
    }

    #[test]
    fn pae_is_dsse_v1() {
        assert_eq!(
            dsse_pae("application/vnd.in-toto+json", b"{}"),
            b"DSSEv1 28 application/vnd.in-toto+json 2 {}".to_vec()
        );
    }

    #[test]
    fn the_simple_signing_payload_has_cosign_s_critical_fields() {
        let mut optional = serde_json::Map::new();
        optional.insert("tag".into(), "v1".into());
        let payload = simple_signing_payload("ghcr.io/o/a", "sha256:ab", &optional);
        let json: serde_json::Value = serde_json::from_slice(&payload).expect("JSON");
        assert_eq!(
            json["critical"]["identity"]["docker-reference"],
            "ghcr.io/o/a"
        );
        assert_eq!(
            json["critical"]["image"]["docker-manifest-digest"],
            "sha256:ab"
        );
        assert_eq!(json["critical"]["type"], COSIGN_SIGNATURE_TYPE);
        assert_eq!(json["optional"]["tag"], "v1");
    }
}
