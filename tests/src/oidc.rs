//! A GitHub Actions OIDC issuer for tests: RSA keys made with `openssl`, a JWKS and an
//! `/.well-known/openid-configuration` served on a loopback port, and tokens carrying
//! exactly the claims GitHub documents for a workflow run. No package provides GitHub's
//! issuer, so this is the test's own, kept to what GitHub publishes: RS256, a `kid` per key,
//! `jwks_uri` on the issuer's origin.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::require_tool;

/// The audience tests configure (`[github] oidc_audience`).
pub const AUDIENCE: &str = "hoist";

/// One RSA key: its id, PKCS#1 DER private key, public PEM, and JWK components.
#[derive(Debug, Clone)]
pub struct RsaKey {
    pub kid: String,
    der: Vec<u8>,
    pub public_pem: Vec<u8>,
    n: String,
}

impl RsaKey {
    fn jwk(&self) -> Value {
        json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid, "n": self.n, "e": "AQAB"})
    }
}

fn openssl(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    let tool = require_tool("openssl", "openssl");
    let mut child = std::process::Command::new(tool)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run openssl");
    if let Some(input) = input {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write to openssl");
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().expect("openssl output");
    assert!(out.status.success(), "openssl {args:?} failed");
    out.stdout
}

fn generate(kid: &str) -> RsaKey {
    let pem = openssl(&["genrsa", "-traditional", "2048"], None);
    let der = openssl(
        &["rsa", "-inform", "PEM", "-outform", "DER", "-traditional"],
        Some(&pem),
    );
    let public_pem = openssl(&["rsa", "-pubout"], Some(&pem));
    let modulus = String::from_utf8(openssl(&["rsa", "-noout", "-modulus"], Some(&pem)))
        .expect("modulus is text");
    let hex = modulus
        .trim()
        .strip_prefix("Modulus=")
        .expect("Modulus=<hex>");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    RsaKey {
        kid: kid.to_owned(),
        der,
        public_pem,
        n: URL_SAFE_NO_PAD.encode(bytes),
    }
}

/// Two keys per test process: generating RSA keys is slow, and every issuer may share them.
fn keys() -> &'static [RsaKey; 2] {
    static KEYS: OnceLock<[RsaKey; 2]> = OnceLock::new();
    KEYS.get_or_init(|| [generate("key-2026-a"), generate("key-2026-b")])
}

#[derive(Debug)]
struct State {
    /// Keys the JWKS lists.
    published: Vec<RsaKey>,
    /// The key new tokens are signed with.
    signing: RsaKey,
    jwks_fetches: usize,
    /// Answer 500 on every request.
    failing: bool,
    /// Name this `jwks_uri` in the discovery document instead of the issuer's own.
    jwks_uri: Option<String>,
    /// Wait this long before answering for the key set.
    jwks_delay: std::time::Duration,
}

/// An OIDC issuer on a loopback port, serving until the test process ends.
#[derive(Debug, Clone)]
pub struct Issuer {
    url: String,
    state: Arc<Mutex<State>>,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

impl Issuer {
    /// Serves the first key; the second is kept for [`Issuer::rotate`].
    pub fn start() -> Issuer {
        let first = keys()[0].clone();
        let state = Arc::new(Mutex::new(State {
            published: vec![first.clone()],
            signing: first,
            jwks_fetches: 0,
            failing: false,
            jwks_uri: None,
            jwks_delay: std::time::Duration::ZERO,
        }));
        // Its own URL is in what it serves, known once it listens.
        let base = Arc::new(OnceLock::<String>::new());
        let (shared, own) = (state.clone(), base.clone());
        let port = crate::serve_json("the OIDC issuer", move |path, _| {
            let base = own.get().map_or("", String::as_str);
            let delay = shared.lock().expect("issuer state").jwks_delay;
            if path == "/.well-known/jwks" && !delay.is_zero() {
                std::thread::sleep(delay);
            }
            let mut state = shared.lock().expect("issuer state");
            match path {
                _ if state.failing => ("500 Internal Server Error", "{}".to_owned()),
                "/.well-known/openid-configuration" => (
                    "200 OK",
                    json!({
                        "issuer": base,
                        "jwks_uri": state.jwks_uri.clone()
                            .unwrap_or_else(|| format!("{base}/.well-known/jwks")),
                        "subject_types_supported": ["public", "pairwise"],
                        "response_types_supported": ["id_token"],
                        "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "repository", "sha", "run_id", "run_attempt", "actor", "workflow_ref", "job_workflow_ref", "event_name", "runner_environment"],
                        "id_token_signing_alg_values_supported": ["RS256"],
                        "scopes_supported": ["openid"]
                    })
                    .to_string(),
                ),
                "/.well-known/jwks" => {
                    state.jwks_fetches += 1;
                    let keys: Vec<Value> = state.published.iter().map(RsaKey::jwk).collect();
                    ("200 OK", json!({ "keys": keys }).to_string())
                }
                _ => ("404 Not Found", "{}".to_owned()),
            }
        });
        let url = format!("http://127.0.0.1:{port}");
        let _ = base.set(url.clone());
        Issuer { url, state }
    }

    /// The issuer URL, as `[github] oidc_issuer` takes it and tokens carry in `iss`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The `[github]` lines that make hoist accept this issuer's tokens.
    pub fn config_lines(&self) -> String {
        format!(
            "oidc_audience = \"{AUDIENCE}\"\noidc_issuer = \"{}\"\n",
            self.url
        )
    }

    /// How many times the key set was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.state.lock().expect("issuer state").jwks_fetches
    }

    /// Publishes the second key beside the first and signs new tokens with it.
    pub fn rotate(&self) {
        let mut state = self.state.lock().expect("issuer state");
        let next = keys()[1].clone();
        state.published.push(next.clone());
        state.signing = next;
    }

    /// Answers 500 to everything while `failing`.
    pub fn set_failing(&self, failing: bool) {
        self.state.lock().expect("issuer state").failing = failing;
    }

    /// Answers for the key set only after `delay` (a slow issuer).
    pub fn set_jwks_delay(&self, delay: std::time::Duration) {
        self.state.lock().expect("issuer state").jwks_delay = delay;
    }

    /// Names `uri` as the key set in the discovery document.
    pub fn set_jwks_uri(&self, uri: &str) {
        self.state.lock().expect("issuer state").jwks_uri = Some(uri.to_owned());
    }

    /// The key that signs new tokens.
    pub fn signing_key(&self) -> RsaKey {
        self.state.lock().expect("issuer state").signing.clone()
    }

    /// A key the issuer does not publish (yet): the second one before [`Issuer::rotate`].
    pub fn unpublished_key(&self) -> RsaKey {
        keys()[1].clone()
    }

    /// The claims GitHub puts in a token for a `push` run of `repository` at `sha` on
    /// `git_ref`, from the release workflow, valid from a minute ago for ten minutes.
    pub fn claims(&self, repository: &str, sha: &str, git_ref: &str) -> Value {
        let (owner, _) = repository.split_once('/').expect("owner/name");
        let ref_type = if git_ref.starts_with("refs/tags/") {
            "tag"
        } else {
            "branch"
        };
        let workflow = format!("{repository}/.github/workflows/release.yml@{git_ref}");
        let now = now();
        json!({
            "jti": format!("jti-{sha}-{now}"),
            "sub": format!("repo:{repository}:ref:{git_ref}"),
            "aud": AUDIENCE,
            "ref": git_ref,
            "sha": sha,
            "repository": repository,
            "repository_owner": owner,
            "repository_owner_id": "65",
            "repository_id": "74",
            "repository_visibility": "private",
            "actor": "octocat",
            "actor_id": "12",
            "run_id": "5012345678",
            "run_number": "10",
            "run_attempt": "1",
            "runner_environment": "github-hosted",
            "workflow": "release",
            "head_ref": "",
            "base_ref": "",
            "event_name": "push",
            "ref_type": ref_type,
            "ref_protected": "false",
            "workflow_ref": workflow,
            "workflow_sha": sha,
            "job_workflow_ref": workflow,
            "job_workflow_sha": sha,
            "iss": self.url,
            "nbf": now - 60,
            "exp": now + 600,
            "iat": now - 60
        })
    }

    /// `claims` signed RS256 with the current key.
    pub fn token(&self, claims: &Value) -> String {
        sign_rs256(&self.signing_key(), claims)
    }

    /// A token for a run of `repository` at `sha` on `git_ref`.
    pub fn token_for(&self, repository: &str, sha: &str, git_ref: &str) -> String {
        self.token(&self.claims(repository, sha, git_ref))
    }
}

/// `claims` signed RS256 with `key`, naming its `kid`.
pub fn sign_rs256(key: &RsaKey, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(&key.der)).expect("sign")
}

/// `claims` "signed" HS256 with `secret` (an attack: the public key as an HMAC secret).
pub fn sign_hs256(kid: &str, secret: &[u8], claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).expect("sign")
}

/// An unsigned token, `alg: none`.
pub fn unsigned(kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "none", "typ": "JWT", "kid": kid});
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}
