//! `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};

use crate::RepoName;
use crate::config::Config;
use sha2::{Digest as _, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("webhooks are not accepted: no webhook secret is configured")]
    NoSecret,
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    #[error("the X-Hub-Signature-256 header is not sha256=<64 hex digits>")]
    Malformed,
    #[error("the signature does not match the body")]
    Mismatch,
}

/// Checks `header` against the body under every accepted secret (more than one while a
/// secret is rotated). The comparison is constant-time, and every secret is tried so the
/// timing does not tell which one matched.
pub fn verify_signature(
    secrets: &[SecretString],
    header: Option<&[u8]>,
    body: &[u8],
) -> Result<(), SignatureError> {
    if secrets.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let header = header.ok_or(SignatureError::Missing)?;
    let hex = header
        .strip_prefix(b"sha256=")
        .ok_or(SignatureError::Malformed)?;
    let expected = decode_hex(hex).ok_or(SignatureError::Malformed)?;
    let mut matched = false;
    for secret in secrets {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(body);
        matched |= mac.verify_slice(&expected).is_ok();
    }
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The header value GitHub would send for `body` under `secret` (tests and the load
/// generator sign with it).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn decode_hex(hex: &[u8]) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        out[i] = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

/// The sha256 of a delivery's body, hex: two deliveries with the same body are one event
/// however their delivery ids differ (the id is not covered by the signature).
pub fn body_digest(body: &[u8]) -> String {
    Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whose secret signed a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    /// The `[github]` secret: it covers every repository without a secret of its own.
    Global,
    /// A `[[repository]]`'s own secret: it covers that repository only.
    Repository(RepoName),
}

/// Which configured secret signed `body`: a repository's own, else the global one.
pub fn find_signer(
    config: &Config,
    header: Option<&[u8]>,
    body: &[u8],
) -> Result<Signer, SignatureError> {
    let mut any = false;
    let keyrings = config
        .repositories
        .iter()
        .map(|r| (Signer::Repository(r.github.clone()), &r.webhook_secrets))
        .chain([(Signer::Global, &config.github.webhook_secrets)]);
    for (signer, secrets) in keyrings {
        if secrets.is_empty() {
            continue;
        }
        any = true;
        match verify_signature(secrets, header, body) {
            Ok(()) => return Ok(signer),
            Err(SignatureError::Mismatch) => {}
            Err(other) => return Err(other),
        }
    }
    Err(if any {
        SignatureError::Mismatch
    } else {
        SignatureError::NoSecret
    })
}

impl Signer {
    /// Refuses a delivery about `repository` signed with a secret that does not cover it.
    pub fn check_covers(
        &self,
        config: &Config,
        repository: Option<&RepoName>,
    ) -> Result<(), String> {
        match (self, repository) {
            (Signer::Repository(own), Some(named)) if own == named => Ok(()),
            (Signer::Repository(own), named) => Err(format!(
                "signed with the webhook secret of {own}, which covers only that repository, not {}",
                named.map_or(
                    "an event without a repository".to_owned(),
                    ToString::to_string
                )
            )),
            (Signer::Global, Some(named))
                if config
                    .repository(named)
                    .is_some_and(|r| !r.webhook_secrets.is_empty()) =>
            {
                Err(format!(
                    "{named} has a webhook secret of its own ([[repository]] webhook_secret_env); the global one does not cover it"
                ))
            }
            (Signer::Global, _) => Ok(()),
        }
    }
}
