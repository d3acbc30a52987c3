//! GitHub Actions OIDC tokens on `POST /v1/builds` (`[github] oidc_audience`).
//!
//! A token is accepted only when it is RS256-signed by a key the issuer publishes, is for
//! hoist's audience and the configured issuer, and is within its `nbf`..`exp` window (and
//! not issued in the future), each with at most 60 s of leeway. The keys come from the
//! issuer's `/.well-known/openid-configuration` → `jwks_uri` (on the issuer's own origin),
//! are cached, and are fetched again when a token names an unknown `kid` (a rotation) — at
//! most once a minute, so a stream of forged `kid`s costs the issuer nothing. Every read from the
//! issuer is bounded in size and time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hoist_domain::ci::ActionsClaims;
use hoist_domain::config::Oidc;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

/// Leeway on every time claim.
const LEEWAY_SECONDS: u64 = 60;
/// An unknown `kid` fetches the keys again at most this often.
const REFETCH_EVERY: Duration = Duration::from_secs(60);
/// Largest discovery document or key set read.
const MAX_DOCUMENT: usize = 256 * 1024;
/// Longest token looked at; GitHub's are about 1.5 KiB.
const MAX_TOKEN: usize = 16 * 1024;
/// Keys kept from one key set.
const MAX_KEYS: usize = 32;

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The token is not one hoist accepts (401).
    #[error("{0}")]
    Invalid(String),
    /// The issuer's keys could not be read (503); the detail is for the log.
    #[error("{0}")]
    Unavailable(String),
}

fn invalid(message: impl Into<String>) -> OidcError {
    OidcError::Invalid(message.into())
}

/// Checks tokens against one issuer's keys; one per process, shared by every request.
pub struct OidcVerifier {
    config: Oidc,
    http: reqwest::Client,
    keys: RwLock<HashMap<String, DecodingKey>>,
    /// Held while a fetch runs (by the fetch's own task), so one runs at a time and a
    /// request that arrives meanwhile waits for its keys.
    fetches: Arc<Mutex<Fetches>>,
    /// What went wrong with the last fetch, if it failed.
    failure: std::sync::Mutex<Option<String>>,
}

/// How the key set was fetched so far: the first fetch is free, each later one (an
/// unknown `kid`) waits a minute after the one before.
#[derive(Debug, Default)]
struct Fetches {
    attempted: bool,
    last_refetch: Option<Instant>,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    kid: Option<String>,
}

impl OidcVerifier {
    pub fn new(config: Oidc) -> OidcVerifier {
        let http = reqwest::Client::builder()
            .user_agent(concat!("hoist/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        OidcVerifier {
            config,
            http,
            keys: RwLock::new(HashMap::new()),
            fetches: Arc::new(Mutex::new(Fetches::default())),
            failure: std::sync::Mutex::new(None),
        }
    }

    /// The verified claims of `token`.
    pub async fn verify(self: &Arc<Self>, token: &str) -> Result<ActionsClaims, OidcError> {
        if token.len() > MAX_TOKEN {
            return Err(invalid("the token is longer than any GitHub issues"));
        }
        let header = jose_header(token)?;
        if header.alg != "RS256" {
            return Err(invalid(format!(
                "the token is signed with {:?}; only RS256 is accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| invalid("the token names no signing key (kid)"))?;
        let key = self.key(&kid).await?.ok_or_else(|| {
            invalid(format!(
                "the token is signed by key {kid:?}, which {} does not publish",
                self.config.issuer
            ))
        })?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_audience(&[&self.config.audience]);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud"]);
        let data = jsonwebtoken::decode::<ActionsClaims>(token, &key, &validation)
            .map_err(|e| self.describe(&e))?;
        let now = jsonwebtoken::get_current_timestamp();
        if data.claims.iat > now + LEEWAY_SECONDS {
            return Err(invalid("the token was issued in the future (iat)"));
        }
        Ok(data.claims)
    }

    fn describe(&self, error: &jsonwebtoken::errors::Error) -> OidcError {
        let message = match error.kind() {
            ErrorKind::ExpiredSignature => "the token has expired (exp)".to_owned(),
            ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
            ErrorKind::InvalidAudience => format!(
                "the token is not for audience {:?} (aud)",
                self.config.audience
            ),
            ErrorKind::InvalidIssuer => {
                format!("the token is not from {} (iss)", self.config.issuer)
            }
            ErrorKind::InvalidSignature => "the token's signature does not verify".to_owned(),
            ErrorKind::InvalidAlgorithm => "only RS256 is accepted".to_owned(),
            ErrorKind::MissingRequiredClaim(claim) => format!("the token has no {claim} claim"),
            ErrorKind::Json(e) => {
                format!("the token's claims are not those of a GitHub Actions run: {e}")
            }
            _ => "the token is malformed".to_owned(),
        };
        invalid(message)
    }

    /// The key named `kid`, fetching the key set the first time, and again when `kid` is
    /// unknown and the last refetch is over a minute old.
    async fn key(self: &Arc<Self>, kid: &str) -> Result<Option<DecodingKey>, OidcError> {
        if let Some(key) = self.keys.read().await.get(kid) {
            return Ok(Some(key.clone()));
        }
        let mut fetches = Arc::clone(&self.fetches).lock_owned().await;
        // Another request may have fetched them while this one waited.
        if let Some(key) = self.keys.read().await.get(kid) {
            return Ok(Some(key.clone()));
        }
        if fetches.attempted
            && fetches
                .last_refetch
                .is_some_and(|at| at.elapsed() < REFETCH_EVERY)
        {
            return match self.last_failure() {
                Some(why) => Err(OidcError::Unavailable(why)),
                None => Ok(None),
            };
        }
        if fetches.attempted {
            fetches.last_refetch = Some(Instant::now());
        }
        fetches.attempted = true;
        // The fetch runs on its own task, holding the lock, and keeps what it found even if
        // this request is dropped half-way (a client that hangs up): the rate limit above
        // then cannot leave hoist without keys for a minute.
        let this = Arc::clone(self);
        let fetch = tokio::spawn(async move {
            this.fetch_and_keep().await;
            drop(fetches);
        });
        if let Err(e) = fetch.await {
            // The fetch itself failed (a panic): say so rather than "unknown key".
            *self
                .failure
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) =
                Some(format!("fetching the keys failed: {e}"));
        }
        if let Some(key) = self.keys.read().await.get(kid) {
            return Ok(Some(key.clone()));
        }
        match self.last_failure() {
            Some(why) => Err(OidcError::Unavailable(why)),
            None => Ok(None),
        }
    }

    fn last_failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    async fn fetch_and_keep(&self) {
        let result = self.fetch_keys().await;
        let failure = match result {
            Ok(keys) => {
                tracing::info!(issuer = %self.config.issuer, keys = keys.len(), "fetched OIDC signing keys");
                *self.keys.write().await = keys;
                None
            }
            Err(why) => {
                tracing::warn!(issuer = %self.config.issuer, error = %why, "could not fetch OIDC signing keys");
                Some(why)
            }
        };
        *self
            .failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = failure;
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, DecodingKey>, String> {
        let issuer = &self.config.issuer;
        let discovery_url = format!("{issuer}/.well-known/openid-configuration");
        let discovery: serde_json::Value = self.get_json(&discovery_url).await?;
        if discovery["issuer"]
            .as_str()
            .map(|s| s.trim_end_matches('/'))
            != Some(issuer)
        {
            return Err(format!("{discovery_url} names another issuer"));
        }
        let jwks_uri = discovery["jwks_uri"]
            .as_str()
            .ok_or_else(|| format!("{discovery_url} has no jwks_uri"))?;
        if origin(jwks_uri) != origin(issuer) {
            return Err(format!(
                "{discovery_url} names keys on another origin ({jwks_uri})"
            ));
        }
        let set: serde_json::Value = self.get_json(jwks_uri).await?;
        let entries = set["keys"]
            .as_array()
            .ok_or_else(|| format!("{jwks_uri} is not a key set"))?;
        let mut keys = HashMap::new();
        for entry in entries {
            let usable = entry["kty"] == "RSA"
                && entry.get("alg").is_none_or(|a| a == "RS256")
                && entry.get("use").is_none_or(|u| u == "sig");
            let (Some(kid), Some(n), Some(e)) = (
                entry["kid"].as_str(),
                entry["n"].as_str(),
                entry["e"].as_str(),
            ) else {
                continue;
            };
            if !usable {
                continue;
            }
            if let Ok(key) = DecodingKey::from_rsa_components(n, e) {
                keys.insert(kid.to_owned(), key);
            }
            if keys.len() == MAX_KEYS {
                break;
            }
        }
        Ok(keys)
    }

    /// GETs a JSON document of at most [`MAX_DOCUMENT`] bytes.
    async fn get_json(&self, address: &str) -> Result<serde_json::Value, String> {
        // Errors and logs name the address without its query.
        let url = address.split(['?', '#']).next().unwrap_or_default();
        let mut response = self
            .http
            .get(address)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {url}: {}", e.without_url()))?;
        if !response.status().is_success() {
            return Err(format!("GET {url} answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("GET {url}: {}", e.without_url()))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT {
                return Err(format!(
                    "GET {url}: the answer is over {MAX_DOCUMENT} bytes"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON: {e}"))
    }
}

/// Scheme, host and port of a URL, lowercased.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    Some(format!("{scheme}://{authority}").to_ascii_lowercase())
}

/// The token's header, read before anything is trusted, to pick the key.
fn jose_header(token: &str) -> Result<JoseHeader, OidcError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("the token is not a JWT (header.payload.signature)"));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| invalid("the token's header is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| invalid("the token's header is not a JOSE header"))
}

/// Whether a bearer token is shaped like a JWT (a static token never is: it has no dots).
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.matches('.').count() == 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read_before_anything_is_trusted() {
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(br#"{"sub":"x"}"#)
        );
        assert_eq!(jose_header(&none).unwrap().alg, "none");
        assert!(looks_like_jwt(&none));
        assert!(!looks_like_jwt("static-token-0123456789"));
        assert!(jose_header("a.b").is_err());
        assert!(jose_header("a.b.c.d").is_err());
        assert!(jose_header("!!.b.c").is_err());
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert_eq!(
            origin("https://Token.Actions.GitHubUserContent.com/.well-known/jwks"),
            origin("https://token.actions.githubusercontent.com")
        );
        assert_ne!(
            origin("https://evil.example/.well-known/jwks"),
            origin("https://token.actions.githubusercontent.com")
        );
        assert_ne!(
            origin("http://127.0.0.1:9/jwks"),
            origin("http://127.0.0.1:8/")
        );
    }
}
