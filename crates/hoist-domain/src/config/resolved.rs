//! The validated configuration the daemon runs on: parsed addresses, durations, references
//! and platforms, and secrets already read into `SecretString`.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;

use crate::ci::WorkflowPattern;
use crate::tags::TagPolicy;
use crate::{ImageRef, Platform, RepoName, RepoPattern, SourcePattern};

#[derive(Debug, Clone)]
pub struct Config {
    pub server: Server,
    pub database: Database,
    pub github: GitHub,
    pub ci_tokens: Vec<CiToken>,
    pub api_tokens: Vec<ApiToken>,
    pub publish: Publish,
    /// Records older than this are purged (see `[retention] days`).
    pub retention: Duration,
    pub registries: Vec<Registry>,
    pub repositories: Vec<Repository>,
    /// With `[signing]`: the key that signs, and the public keys served.
    pub signing: Option<Signing>,
}

/// hoist's signing key and the earlier public keys it still serves.
#[derive(Debug, Clone)]
pub struct Signing {
    pub key: std::sync::Arc<crate::signing::SigningKey>,
    pub previous: Vec<crate::signing::PublicKey>,
}

impl Signing {
    /// Every public key to serve: the signing key's first.
    pub fn public_keys(&self) -> Vec<&crate::signing::PublicKey> {
        std::iter::once(self.key.public())
            .chain(self.previous.iter())
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct Server {
    pub listen: SocketAddr,
    pub request_timeout: Duration,
    pub shutdown_timeout: Duration,
    /// Unauthenticated webhook bodies buffered at once, at least 1.
    pub webhook_bodies: u32,
    /// How long one of them may take to arrive.
    pub webhook_body_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Database {
    pub url: String,
    pub kind: DatabaseKind,
    pub read_connections: u32,
    pub busy_timeout: Duration,
    /// PostgreSQL's password, when one is configured.
    pub password: Option<SecretString>,
    /// PostgreSQL's pool size per process.
    pub max_connections: u32,
}

/// Which database `database.url` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    /// The embedded default: one hoist process on one file.
    Sqlite,
    /// Several hoist replicas on one database.
    Postgres,
}

#[derive(Debug, Clone, Default)]
pub struct GitHub {
    /// Every secret currently accepted on webhook signatures (more than one while rotating).
    pub webhook_secrets: Vec<SecretString>,
    /// The REST API and its token, when both are configured.
    pub api: Option<GitHubApi>,
    /// GitHub Actions OIDC on `POST /v1/builds`, when `oidc_audience` is set.
    pub oidc: Option<Oidc>,
}

/// Where OIDC tokens come from and whom they must be for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oidc {
    /// The `iss` tokens must carry, without a trailing slash; its
    /// `/.well-known/openid-configuration` names the keys.
    pub issuer: String,
    /// The `aud` tokens must carry.
    pub audience: String,
}

/// GitHub Actions' issuer.
pub const GITHUB_ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";

#[derive(Debug, Clone)]
pub struct GitHubApi {
    /// Without a trailing slash.
    pub url: String,
    pub token: SecretString,
}

#[derive(Debug, Clone)]
pub struct CiToken {
    pub name: String,
    pub token: SecretString,
    pub repositories: Vec<RepoPattern>,
}

impl CiToken {
    pub fn allows(&self, repo: &RepoName) -> bool {
        self.repositories
            .iter()
            .any(|pattern| pattern.matches(repo))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Read,
    Admin,
}

#[derive(Debug, Clone)]
pub struct ApiToken {
    pub name: String,
    pub token: SecretString,
    pub role: Role,
}

#[derive(Debug, Clone)]
pub struct Publish {
    pub workers: u32,
    pub wait_timeout: Duration,
    pub lease: Duration,
}

#[derive(Debug, Clone)]
pub enum Credentials {
    Anonymous,
    Basic {
        username: String,
        password: SecretString,
    },
}

#[derive(Debug, Clone)]
pub struct Registry {
    pub host: String,
    pub credentials: Credentials,
    pub insecure: bool,
    /// Blob transfers at once, at least 1.
    pub concurrency: u32,
    /// PATCH chunk size in bytes for blob uploads; `None` uploads in one streaming PUT.
    pub chunk_size: Option<u64>,
    /// Token services (`host[:port]`) off the registry's origin that may receive its
    /// credentials.
    pub token_hosts: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Repository {
    pub github: RepoName,
    pub image: ImageRef,
    pub platforms: Vec<Platform>,
    pub tags: Vec<String>,
    pub flavor: Vec<String>,
    pub default_branch: String,
    /// Where CI's images may come from; at least `image` itself.
    pub sources: Vec<SourcePattern>,
    /// This repository's own webhook secrets; empty when the global ones cover it.
    pub webhook_secrets: Vec<SecretString>,
    /// Workflows that may report builds with an OIDC token; empty: any of this repository.
    pub ci_workflows: Vec<WorkflowPattern>,
    /// `tags` and `flavor`, parsed.
    pub tag_policy: TagPolicy,
}

impl Config {
    /// The registry entry for an image's host, if there is one.
    pub fn registry_for(&self, image: &ImageRef) -> Option<&Registry> {
        self.registries
            .iter()
            .find(|r| r.host.eq_ignore_ascii_case(image.registry()))
    }

    /// The configured repository for a GitHub `owner/name`, if there is one.
    pub fn repository(&self, github: &RepoName) -> Option<&Repository> {
        self.repositories.iter().find(|r| &r.github == github)
    }
}

impl Config {
    /// The CI token equal to `presented`, compared in constant time against every token.
    pub fn ci_token(&self, presented: &str) -> Option<&CiToken> {
        find_token(presented, self.ci_tokens.iter().map(|t| (&t.token, t)))
    }

    /// The operator token equal to `presented`, compared in constant time against every token.
    pub fn api_token(&self, presented: &str) -> Option<&ApiToken> {
        find_token(presented, self.api_tokens.iter().map(|t| (&t.token, t)))
    }
}

/// Compares SHA-256 digests rather than the tokens themselves, so neither the length nor
/// the first differing byte shows in the timing; every candidate is compared.
fn find_token<'a, T>(
    presented: &str,
    candidates: impl Iterator<Item = (&'a SecretString, &'a T)>,
) -> Option<&'a T> {
    use secrecy::ExposeSecret;
    use sha2::{Digest, Sha256};
    let presented = Sha256::digest(presented.as_bytes());
    let mut found = None;
    for (token, item) in candidates {
        let expected = Sha256::digest(token.expose_secret().as_bytes());
        let difference = presented
            .iter()
            .zip(expected.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if std::hint::black_box(difference) == 0 {
            found = Some(item);
        }
    }
    found
}
