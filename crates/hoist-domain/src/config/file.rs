//! The TOML file exactly as written. Every section has `deny_unknown_fields`, so a typo is
//! an error rather than a silently ignored key, and every default is written beside its field.

use serde::Deserialize;

/// The whole file. Every section may be left out; an empty file is a valid config that
/// listens on 127.0.0.1:8080 and keeps its database in `data/hoist.db`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfigFile {
    pub server: ServerSection,
    pub database: DatabaseSection,
    pub github: GithubSection,
    pub ci_token: Vec<CiTokenEntry>,
    pub api_token: Vec<ApiTokenEntry>,
    pub publish: PublishSection,
    pub retention: RetentionSection,
    pub registry: Vec<RegistryEntry>,
    pub repository: Vec<RepositoryEntry>,
    /// Present: hoist signs and attests every index it publishes.
    pub signing: Option<SigningSection>,
}

/// The key hoist signs every published index with (cosign's key-signature layout) and
/// attests it with (a DSSE in-toto publication statement).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SigningSection {
    /// Environment variable holding the key: ECDSA P-256, unencrypted PKCS#8 PEM.
    pub key_env: Option<String>,
    /// File holding it (set this or `key_env`).
    pub key_file: Option<String>,
    /// Files of earlier public keys (PEM), still served on `GET /v1/signing/keys` while
    /// consumers move to the new key. Default: none.
    pub previous_public_keys: Vec<String>,
}

/// How long records of what happened are kept. The ledger is kept forever.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSection {
    /// Webhook deliveries, the steps of finished publications and deleted-tag rows older
    /// than this many days are purged. Default `90`.
    pub days: u32,
}

impl Default for RetentionSection {
    fn default() -> Self {
        RetentionSection { days: 90 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Address the HTTP server binds. Default `127.0.0.1:8080`.
    pub listen: String,
    /// Longest time one request may take before it is answered 408. Default `30s`.
    pub request_timeout: String,
    /// How long SIGTERM waits for in-flight work before the process exits anyway. Default `10s`.
    pub shutdown_timeout: String,
    /// Webhook bodies read at once before their signature is checked (each up to 25 MiB);
    /// one more is answered 503 with `Retry-After`. Default `16`.
    pub webhook_bodies: u32,
    /// How long a webhook body may take to arrive once it holds one of those places
    /// (`408` after). Default `10s`.
    pub webhook_body_timeout: String,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: "127.0.0.1:8080".to_owned(),
            request_timeout: "30s".to_owned(),
            shutdown_timeout: "10s".to_owned(),
            webhook_bodies: 16,
            webhook_body_timeout: "10s".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSection {
    /// `sqlite://path/to/file.db` (a relative path is relative to the working directory and
    /// its folder is created), or `postgres://user@host:port/database` for several replicas
    /// on PostgreSQL (TLS through `sslmode` in the URL). Default `sqlite://data/hoist.db`.
    pub url: String,
    /// SQLite: connections in the read-only pool. Default `4`.
    pub read_connections: u32,
    /// SQLite: how long a connection waits on a lock before failing; PostgreSQL: how long
    /// a caller waits for a free connection. Default `5s`.
    pub busy_timeout: String,
    /// PostgreSQL: the password, named by environment variable or file, never in the URL.
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    /// PostgreSQL: connections each hoist process keeps open. Default `10`.
    pub max_connections: u32,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        DatabaseSection {
            url: "sqlite://data/hoist.db".to_owned(),
            read_connections: 4,
            busy_timeout: "5s".to_owned(),
            password_env: None,
            password_file: None,
            max_connections: 10,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GithubSection {
    /// Environment variable holding the webhook secret; a comma-separated list accepts
    /// several at once while rotating. Default: none (webhooks are refused).
    pub webhook_secret_env: Option<String>,
    /// File holding the webhook secret(s), as for `webhook_secret_env`. Default: none.
    pub webhook_secret_file: Option<String>,
    /// GitHub's REST API, asked for a release's commit when no build, `target_commitish`
    /// or tag push has told it (`https://api.github.com`, or a GHES `/api/v3` URL).
    /// Default: none (such releases wait for one of those facts).
    pub api_url: Option<String>,
    /// Environment variable holding the token for `api_url` (contents: read). Default: none.
    pub token_env: Option<String>,
    /// File holding the token for `api_url`. Default: none.
    pub token_file: Option<String>,
    /// Accept GitHub Actions OIDC tokens on `POST /v1/builds` whose `aud` is this. Default:
    /// none (only static `[[ci_token]]`s are accepted).
    pub oidc_audience: Option<String>,
    /// The OIDC issuer whose keys sign those tokens. Default
    /// `https://token.actions.githubusercontent.com`; `http://` only on a loopback address.
    pub oidc_issuer: Option<String>,
}

/// A bearer token CI uses on `POST /v1/builds`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CiTokenEntry {
    /// Name shown in logs and audit rows. Required.
    pub name: String,
    pub token_env: Option<String>,
    pub token_file: Option<String>,
    /// GitHub repositories (globs such as `octo-org/*`) this token may report builds for.
    pub repositories: Vec<String>,
}

/// A bearer token operators use on the REST API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiTokenEntry {
    pub name: String,
    pub token_env: Option<String>,
    pub token_file: Option<String>,
    /// `"read"` or `"admin"`. Default `"read"`.
    #[serde(default = "default_role")]
    pub role: String,
}

fn default_role() -> String {
    "read".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublishSection {
    /// Publications run at once. Default `2`.
    pub workers: u32,
    /// How long a publication waits for missing platforms before it is `stalled`. Default `6h`.
    pub wait_timeout: String,
    /// How long a claimed job is its worker's without a renewal (renewed every third of
    /// it): after a crash, another worker, of this process or another replica, takes the
    /// job once this has passed. Default `5m`; 3s to 1h.
    pub lease: String,
}

impl Default for PublishSection {
    fn default() -> Self {
        PublishSection {
            workers: 2,
            wait_timeout: "6h".to_owned(),
            lease: "5m".to_owned(),
        }
    }
}

/// How hoist authenticates to one registry host.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryEntry {
    /// `host[:port]` as it appears in image references. Required.
    pub host: String,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    /// Talk to this registry without credentials. Default `false`.
    #[serde(default)]
    pub anonymous: bool,
    /// Plain http instead of https (local registries only). Default `false`.
    #[serde(default)]
    pub insecure: bool,
    /// Blob transfers to or from this registry at once. Default `4`.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Upload blobs in PATCH chunks of at most this many bytes instead of one streaming PUT
    /// (GHCR caps a chunk at 4 MiB: `chunk_size = 4194304`). Default: none (one PUT).
    #[serde(default)]
    pub chunk_size: Option<u64>,
    /// Hosts (`host[:port]`) besides the registry's own origin whose token service may
    /// receive this registry's username and password. Default: `["auth.docker.io"]` for
    /// Docker Hub, none otherwise.
    pub token_hosts: Option<Vec<String>>,
}

fn default_concurrency() -> u32 {
    4
}

/// One GitHub repository and the image hoist publishes for it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryEntry {
    /// GitHub `owner/name` as webhooks and CI events name it. Required.
    pub github: String,
    /// Target image without tag, e.g. `ghcr.io/octo-org/app`. Required.
    pub image: String,
    /// Platforms every publication must contain. Required, at least one.
    pub platforms: Vec<String>,
    /// docker/metadata-action `tags` lines. Default: `{{version}}`, `{{major}}.{{minor}}`,
    /// `{{major}}` semver tags and a `sha` tag.
    #[serde(default = "default_tags")]
    pub tags: Vec<String>,
    /// docker/metadata-action `flavor` lines. Default `["latest=auto"]`.
    #[serde(default = "default_flavor")]
    pub flavor: Vec<String>,
    /// The branch whose builds are published without a release (with the policy's `sha`,
    /// `edge` and branch tags), and that `{{is_default_branch}}` names. Default `"main"`.
    #[serde(default = "default_branch")]
    pub default_branch: String,
    /// Where CI's images may come from: repositories (`ghcr.io/octo-org/ci`), or a `*` glob
    /// in the last segment (`ghcr.io/octo-org/ci-*`). Default: `image` itself.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Environment variable holding this repository's own webhook secret(s), comma-separated
    /// while rotating. With one, only it signs this repository's deliveries and the global
    /// `[github]` secret no longer does. Default: none (the global secret covers it).
    pub webhook_secret_env: Option<String>,
    /// File holding this repository's webhook secret(s), as for `webhook_secret_env`.
    pub webhook_secret_file: Option<String>,
    /// Which workflows may report builds with an OIDC token: globs over the token's
    /// `job_workflow_ref` (`octo-org/app/.github/workflows/release.yml@*`). Default: any
    /// workflow of this repository.
    #[serde(default)]
    pub ci_workflows: Vec<String>,
}

fn default_branch() -> String {
    "main".to_owned()
}

fn default_tags() -> Vec<String> {
    [
        "type=semver,pattern={{version}}",
        "type=semver,pattern={{major}}.{{minor}}",
        "type=semver,pattern={{major}}",
        "type=sha",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn default_flavor() -> Vec<String> {
    vec!["latest=auto".to_owned()]
}
