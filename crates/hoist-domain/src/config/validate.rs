//! From `ConfigFile` to `Config`: every rule, every problem reported with its key path.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::entries::{registry, repository};
use super::file::ConfigFile;
use super::resolved::{
    ApiToken, CiToken, Config, Database, DatabaseKind, GITHUB_ACTIONS_ISSUER, GitHub, GitHubApi,
    Oidc, Publish, Registry, Repository, Role, Server, Signing,
};
use crate::signing::{PublicKey, SigningKey};
use crate::{ImageRef, RepoPattern};

/// Bearer tokens shorter than this are refused: they would be guessable.
const MIN_TOKEN_LEN: usize = 16;

/// Where `*_env` and `*_file` keys are looked up. The daemon uses [`ProcessEnv`]; tests pass
/// their own variables without touching the process environment.
pub trait SecretSource {
    fn var(&self, name: &str) -> Option<String>;

    fn read_file(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }

    /// False for a stand-in that returns no real secrets: what needs a real one (parsing
    /// the signing key) is skipped.
    fn reads_secrets(&self) -> bool {
        true
    }
}

/// The process environment and the file system, read once at start-up.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl SecretSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl SecretSource for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// One thing wrong with a config, at a key path such as `repository[1].platforms[0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in one config, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

#[derive(Default)]
pub(super) struct Collector(Vec<Problem>);

impl Collector {
    /// Whether a problem was already reported under `prefix`.
    pub(super) fn has_problem_under(&self, prefix: &str) -> bool {
        self.0.iter().any(|p| p.path.starts_with(prefix))
    }

    pub(super) fn push(&mut self, path: impl Into<String>, message: impl fmt::Display) {
        self.0.push(Problem {
            path: path.into(),
            message: message.to_string(),
        });
    }

    /// Parses with `parse`, recording the error at `path` on failure.
    pub(super) fn check<T, E: fmt::Display>(
        &mut self,
        path: &str,
        parsed: Result<T, E>,
    ) -> Option<T> {
        parsed.map_err(|e| self.push(path, e)).ok()
    }

    pub(super) fn duration(&mut self, path: &str, text: &str) -> Option<Duration> {
        match humantime::parse_duration(text) {
            Ok(d) if d.is_zero() => {
                self.push(path, format!("{text:?} must be longer than zero"));
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.push(
                    path,
                    format!("{text:?} is not a duration like \"30s\" or \"6h\": {e}"),
                );
                None
            }
        }
    }

    /// Resolves an `<key>_env` / `<key>_file` pair to its secret value.
    pub(super) fn secret(
        &mut self,
        source: &dyn SecretSource,
        base: &str,
        key: &str,
        env: Option<&str>,
        file: Option<&str>,
    ) -> Option<SecretString> {
        let (text, at) = match (env, file) {
            (Some(_), Some(_)) => {
                self.push(
                    format!("{base}.{key}_env"),
                    format!("set either {key}_env or {key}_file, not both"),
                );
                return None;
            }
            (None, None) => {
                self.push(base, format!("{key}_env or {key}_file is required"));
                return None;
            }
            (Some(var), None) => {
                let at = format!("{base}.{key}_env");
                match source.var(var) {
                    Some(value) => (value, at),
                    None => {
                        self.push(at, format!("environment variable {var:?} is not set"));
                        return None;
                    }
                }
            }
            (None, Some(path)) => {
                let at = format!("{base}.{key}_file");
                match source.read_file(Path::new(path)) {
                    Ok(value) => (value, at),
                    Err(e) => {
                        self.push(at, format!("cannot read {path:?}: {e}"));
                        return None;
                    }
                }
            }
        };
        // Files written by editors and `echo` end in a newline that is not part of the secret.
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            self.push(at, "the secret is empty");
            return None;
        }
        Some(SecretString::from(text.to_owned()))
    }

    pub(super) fn token(
        &mut self,
        source: &dyn SecretSource,
        base: &str,
        env: Option<&str>,
        file: Option<&str>,
    ) -> Option<SecretString> {
        let token = self.secret(source, base, "token", env, file)?;
        if token.expose_secret().chars().count() < MIN_TOKEN_LEN {
            let key = if env.is_some() {
                "token_env"
            } else {
                "token_file"
            };
            self.push(
                format!("{base}.{key}"),
                format!("the token is shorter than {MIN_TOKEN_LEN} characters"),
            );
            return None;
        }
        Some(token)
    }
}

impl ConfigFile {
    /// Checks every rule, reads every secret, and returns the config the daemon runs on, or
    /// all the problems found.
    pub fn validate(&self, source: &dyn SecretSource) -> Result<Config, Problems> {
        let mut c = Collector::default();

        let listen = c.check(
            "server.listen",
            self.server.listen.parse().map_err(|_| {
                format!(
                    "{:?} is not an address like 127.0.0.1:8080",
                    self.server.listen
                )
            }),
        );
        let request_timeout = c.duration("server.request_timeout", &self.server.request_timeout);
        let shutdown_timeout = c.duration("server.shutdown_timeout", &self.server.shutdown_timeout);
        let webhook_body_timeout = c.duration(
            "server.webhook_body_timeout",
            &self.server.webhook_body_timeout,
        );
        // Under a week, a push GitHub redelivers after an outage (it offers three days
        // back) could fall behind the purge horizon and be ignored.
        if !(7..=36500).contains(&self.retention.days) {
            c.push(
                "retention.days",
                format!("{} is out of range: 7 to 36500", self.retention.days),
            );
        }
        if !(1..=1024).contains(&self.server.webhook_bodies) {
            c.push(
                "server.webhook_bodies",
                format!("{} is out of range: 1 to 1024", self.server.webhook_bodies),
            );
        }

        let db = &self.database;
        let (db_kind, db_password) = self.database(&mut c, source);
        if !(1..=64).contains(&db.read_connections) {
            c.push("database.read_connections", "must be between 1 and 64");
        }
        let busy_timeout = c.duration("database.busy_timeout", &db.busy_timeout);

        let webhook_secrets = self.webhook_secrets(&mut c, source);
        let github_api = self.github_api(&mut c, source);
        let oidc = self.oidc(&mut c);
        let ci_tokens = self.ci_tokens(&mut c, source);
        let api_tokens = self.api_tokens(&mut c, source);
        check_tokens_distinct(&mut c, &ci_tokens, &api_tokens);

        if !(1..=64).contains(&self.publish.workers) {
            c.push("publish.workers", "must be between 1 and 64");
        }
        let wait_timeout = c.duration("publish.wait_timeout", &self.publish.wait_timeout);
        let lease = c
            .duration("publish.lease", &self.publish.lease)
            .and_then(|lease| {
                let allowed = Duration::from_secs(3)..=Duration::from_secs(3600);
                if allowed.contains(&lease) {
                    Some(lease)
                } else {
                    c.push("publish.lease", "must be between 3s and 1h");
                    None
                }
            });

        let registries: Vec<Option<Registry>> = self
            .registry
            .iter()
            .enumerate()
            .map(|(i, entry)| registry(&mut c, source, i, entry))
            .collect();
        check_unique(
            &mut c,
            "registry",
            "host",
            self.registry.iter().map(|r| r.host.to_ascii_lowercase()),
        );

        let repositories: Vec<Option<Repository>> = self
            .repository
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let secrets = rotating_secrets(
                    &mut c,
                    source,
                    &format!("repository[{i}]"),
                    entry.webhook_secret_env.as_deref(),
                    entry.webhook_secret_file.as_deref(),
                );
                let mut repo = repository(&mut c, i, entry, &self.registry)?;
                repo.webhook_secrets = secrets;
                Some(repo)
            })
            .collect();
        check_webhook_secrets_distinct(&mut c, &webhook_secrets, &repositories);
        check_unique(
            &mut c,
            "repository",
            "github",
            self.repository
                .iter()
                .map(|r| r.github.to_ascii_lowercase()),
        );
        check_unique(
            &mut c,
            "repository",
            "image",
            // Compared as registry/path, so a tag or the host's case does not hide a duplicate.
            self.repository
                .iter()
                .map(|r| match r.image.parse::<ImageRef>() {
                    Ok(image) => format!(
                        "{}/{}",
                        image.registry().to_ascii_lowercase(),
                        image.repository()
                    ),
                    Err(_) => r.image.clone(),
                }),
        );

        let signing = self.signing(&mut c, source);

        if !c.0.is_empty() {
            return Err(Problems(c.0));
        }
        // Every `None` above recorded a problem, so past this point all are `Some`.
        let complete = "validated config is complete";
        Ok(Config {
            server: Server {
                listen: listen.expect(complete),
                request_timeout: request_timeout.expect(complete),
                shutdown_timeout: shutdown_timeout.expect(complete),
                webhook_bodies: self.server.webhook_bodies,
                webhook_body_timeout: webhook_body_timeout.expect(complete),
            },
            database: Database {
                url: db.url.clone(),
                kind: db_kind.expect(complete),
                read_connections: db.read_connections,
                busy_timeout: busy_timeout.expect(complete),
                password: db_password,
                max_connections: db.max_connections,
            },
            github: GitHub {
                webhook_secrets,
                api: github_api,
                oidc,
            },
            ci_tokens: ci_tokens.into_iter().map(|t| t.expect(complete)).collect(),
            api_tokens: api_tokens.into_iter().map(|t| t.expect(complete)).collect(),
            publish: Publish {
                workers: self.publish.workers,
                wait_timeout: wait_timeout.expect(complete),
                lease: lease.expect(complete),
            },
            retention: Duration::from_secs(u64::from(self.retention.days) * 24 * 3600),
            registries: registries.into_iter().map(|r| r.expect(complete)).collect(),
            repositories: repositories
                .into_iter()
                .map(|r| r.expect(complete))
                .collect(),
            signing,
        })
    }

    /// `[signing]`: the key must be an ECDSA P-256 PKCS#8 key, each earlier public key a
    /// P-256 public key. Not read with a stand-in secret source (`--no-secrets`).
    fn signing(&self, c: &mut Collector, source: &dyn SecretSource) -> Option<Signing> {
        let section = self.signing.as_ref()?;
        if !source.reads_secrets() {
            return None;
        }
        let key = c
            .secret(
                source,
                "signing",
                "key",
                section.key_env.as_deref(),
                section.key_file.as_deref(),
            )
            .and_then(|pem| {
                let at = if section.key_env.is_some() {
                    "signing.key_env"
                } else {
                    "signing.key_file"
                };
                SigningKey::from_pem(pem.expose_secret())
                    .map_err(|e| c.push(at, e.to_string()))
                    .ok()
            });
        let mut previous = Vec::new();
        for (i, path) in section.previous_public_keys.iter().enumerate() {
            let at = format!("signing.previous_public_keys[{i}]");
            match source.read_file(Path::new(path)) {
                Ok(text) => match PublicKey::from_pem(&text) {
                    Ok(key) => previous.push(key),
                    Err(e) => c.push(at, format!("{path:?}: {e}")),
                },
                Err(e) => c.push(at, format!("cannot read {path:?}: {e}")),
            }
        }
        Some(Signing {
            key: std::sync::Arc::new(key?),
            previous,
        })
    }

    /// Which database the URL names, and PostgreSQL's password. A URL that holds a password,
    /// names no host or database, or sets an unknown `sslmode` is refused here, before
    /// anything connects.
    fn database(
        &self,
        c: &mut Collector,
        source: &dyn SecretSource,
    ) -> (Option<DatabaseKind>, Option<SecretString>) {
        let db = &self.database;
        let has_password = db.password_env.is_some() || db.password_file.is_some();
        if db.url.starts_with("sqlite:") {
            if has_password {
                c.push(
                    "database",
                    "password_env and password_file are for PostgreSQL; SQLite has no password",
                );
            }
            return (Some(DatabaseKind::Sqlite), None);
        }
        let shown = super::redact_url(&db.url);
        if !(db.url.starts_with("postgres://") || db.url.starts_with("postgresql://")) {
            c.push(
                "database.url",
                format!(
                    "{shown:?} is neither sqlite://path/to/file.db nor postgres://user@host:port/database"
                ),
            );
            return (None, None);
        }
        if let Err(problem) = super::check_postgres_url(&db.url) {
            c.push("database.url", format!("{shown:?} {problem}"));
        }
        if !(2..=500).contains(&db.max_connections) {
            c.push("database.max_connections", "must be between 2 and 500");
        }
        let password = (has_password && source.reads_secrets())
            .then(|| {
                c.secret(
                    source,
                    "database",
                    "password",
                    db.password_env.as_deref(),
                    db.password_file.as_deref(),
                )
            })
            .flatten();
        (Some(DatabaseKind::Postgres), password)
    }

    fn github_api(&self, c: &mut Collector, source: &dyn SecretSource) -> Option<GitHubApi> {
        let gh = &self.github;
        let has_token = gh.token_env.is_some() || gh.token_file.is_some();
        match (&gh.api_url, has_token) {
            (None, false) => None,
            (None, true) => {
                c.push("github.api_url", "is required with token_env or token_file");
                None
            }
            (Some(url), _) => {
                let url_ok = match check_https_base(url) {
                    Ok(()) => true,
                    Err(problem) => {
                        c.push("github.api_url", format!("{url:?} {problem}"));
                        false
                    }
                };
                let token = c.secret(
                    source,
                    "github",
                    "token",
                    gh.token_env.as_deref(),
                    gh.token_file.as_deref(),
                )?;
                url_ok.then(|| GitHubApi {
                    url: url.trim_end_matches('/').to_owned(),
                    token,
                })
            }
        }
    }

    fn oidc(&self, c: &mut Collector) -> Option<Oidc> {
        let gh = &self.github;
        let Some(audience) = &gh.oidc_audience else {
            if gh.oidc_issuer.is_some() {
                c.push(
                    "github.oidc_issuer",
                    "has no effect without oidc_audience, which turns OIDC on",
                );
            }
            return None;
        };
        let mut ok = true;
        if audience.trim().is_empty() || audience.trim() != audience {
            c.push(
                "github.oidc_audience",
                format!("{audience:?} is not an audience: write the aud your workflows request, e.g. \"hoist\""),
            );
            ok = false;
        }
        let issuer = gh
            .oidc_issuer
            .as_deref()
            .unwrap_or(GITHUB_ACTIONS_ISSUER)
            .trim_end_matches('/');
        if let Err(why) = check_https_base(issuer) {
            c.push("github.oidc_issuer", format!("{issuer:?} {why}"));
            ok = false;
        }
        ok.then(|| Oidc {
            issuer: issuer.to_owned(),
            audience: audience.clone(),
        })
    }

    fn webhook_secrets(&self, c: &mut Collector, source: &dyn SecretSource) -> Vec<SecretString> {
        let gh = &self.github;
        rotating_secrets(
            c,
            source,
            "github",
            gh.webhook_secret_env.as_deref(),
            gh.webhook_secret_file.as_deref(),
        )
    }

    fn ci_tokens(&self, c: &mut Collector, source: &dyn SecretSource) -> Vec<Option<CiToken>> {
        check_unique(
            c,
            "ci_token",
            "name",
            self.ci_token.iter().map(|t| t.name.clone()),
        );
        self.ci_token
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let base = format!("ci_token[{i}]");
                if entry.name.trim().is_empty() {
                    c.push(format!("{base}.name"), "must not be empty");
                }
                let token = c.token(
                    source,
                    &base,
                    entry.token_env.as_deref(),
                    entry.token_file.as_deref(),
                );
                if entry.repositories.is_empty() {
                    c.push(
                        format!("{base}.repositories"),
                        "must name at least one repository or glob (e.g. \"octo-org/*\")",
                    );
                }
                let patterns: Vec<Option<RepoPattern>> = entry
                    .repositories
                    .iter()
                    .enumerate()
                    .map(|(j, p)| c.check(&format!("{base}.repositories[{j}]"), p.parse()))
                    .collect();
                let repositories = patterns.into_iter().collect::<Option<Vec<_>>>()?;
                Some(CiToken {
                    name: entry.name.clone(),
                    token: token?,
                    repositories,
                })
            })
            .collect()
    }

    fn api_tokens(&self, c: &mut Collector, source: &dyn SecretSource) -> Vec<Option<ApiToken>> {
        check_unique(
            c,
            "api_token",
            "name",
            self.api_token.iter().map(|t| t.name.clone()),
        );
        self.api_token
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let base = format!("api_token[{i}]");
                if entry.name.trim().is_empty() {
                    c.push(format!("{base}.name"), "must not be empty");
                }
                let token = c.token(
                    source,
                    &base,
                    entry.token_env.as_deref(),
                    entry.token_file.as_deref(),
                );
                let role = match entry.role.as_str() {
                    "read" => Some(Role::Read),
                    "admin" => Some(Role::Admin),
                    other => {
                        c.push(
                            format!("{base}.role"),
                            format!("{other:?} is not a role: \"read\" or \"admin\""),
                        );
                        None
                    }
                };
                Some(ApiToken {
                    name: entry.name.clone(),
                    token: token?,
                    role: role?,
                })
            })
            .collect()
    }
}

/// An issuer or API base is an https URL without query or fragment; plain http only on a
/// loopback address, where a test's own stand-in runs.
fn check_https_base(issuer: &str) -> Result<(), &'static str> {
    let (secure, rest) = if let Some(rest) = issuer.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = issuer.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err("is not an https URL");
    };
    let host_port = rest.split('/').next().unwrap_or("");
    if host_port.is_empty() || issuer.contains(['?', '#', ' ']) || host_port.contains('@') {
        return Err("is not an https URL without query, fragment or user");
    }
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.rsplit_once(':').map_or(host_port, |(h, _)| h),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !secure && !loopback {
        return Err("must be https: plain http is accepted only on a loopback address");
    }
    Ok(())
}

/// A `webhook_secret_env`/`_file` pair of table `table`: none, or a comma-separated list
/// (several at once while rotating).
fn rotating_secrets(
    c: &mut Collector,
    source: &dyn SecretSource,
    table: &str,
    env: Option<&str>,
    file: Option<&str>,
) -> Vec<SecretString> {
    if env.is_none() && file.is_none() {
        return Vec::new();
    }
    let Some(joined) = c.secret(source, table, "webhook_secret", env, file) else {
        return Vec::new();
    };
    let secrets: Vec<SecretString> = joined
        .expose_secret()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| SecretString::from(s.to_owned()))
        .collect();
    if secrets.is_empty() {
        let key = if env.is_some() { "env" } else { "file" };
        c.push(
            format!("{table}.webhook_secret_{key}"),
            "holds no secret, only commas or blanks",
        );
    }
    secrets
}

/// A webhook secret shared by two keyrings would let either sign for the other: each
/// repository's own secret must be its own.
fn check_webhook_secrets_distinct(
    c: &mut Collector,
    global: &[SecretString],
    repos: &[Option<Repository>],
) {
    let mut seen: Vec<(&str, String)> = global
        .iter()
        .map(|s| (s.expose_secret(), "github".to_owned()))
        .collect();
    for (i, repo) in repos.iter().enumerate() {
        let Some(repo) = repo else { continue };
        for secret in &repo.webhook_secrets {
            let here = format!("repository[{i}]");
            if let Some((_, other)) = seen.iter().find(|(s, _)| *s == secret.expose_secret()) {
                c.push(
                    format!("{here}.webhook_secret_env"),
                    format!(
                        "is also a webhook secret of {other}; a repository's secret must be its own"
                    ),
                );
            }
            seen.push((secret.expose_secret(), here));
        }
    }
}

/// The same token under two names would make its role or repositories ambiguous.
fn check_tokens_distinct(c: &mut Collector, ci: &[Option<CiToken>], api: &[Option<ApiToken>]) {
    let all = ci
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.as_ref().map(|t| (format!("ci_token[{i}]"), &t.token)))
        .chain(
            api.iter()
                .enumerate()
                .filter_map(|(i, t)| t.as_ref().map(|t| (format!("api_token[{i}]"), &t.token))),
        );
    let mut seen: HashMap<&str, String> = HashMap::new();
    for (path, token) in all {
        match seen.get(token.expose_secret()) {
            Some(first) => c.push(path, format!("uses the same token as {first}")),
            None => {
                seen.insert(token.expose_secret(), path);
            }
        }
    }
}

/// Records a problem on every entry whose `key` repeats an earlier entry's.
pub(super) fn check_unique(
    c: &mut Collector,
    table: &str,
    key: &str,
    values: impl Iterator<Item = String>,
) {
    let mut first: HashMap<String, usize> = HashMap::new();
    for (i, value) in values.enumerate() {
        match first.get(&value) {
            Some(j) => {
                let at = |n: usize| match key {
                    "" => format!("{table}[{n}]"),
                    key => format!("{table}[{n}].{key}"),
                };
                c.push(at(i), format!("{value:?} is already used by {}", at(*j)));
            }
            None => {
                first.insert(value, i);
            }
        }
    }
}

/// Stands in for every secret without reading it, so a config can be checked where its
/// secrets are not available (`hoist config check --no-secrets`, e.g. in a pull request).
/// Each stand-in is distinct per name, so two tokens naming the same variable still clash.
#[derive(Debug, Clone, Copy, Default)]
pub struct UncheckedSecrets;

impl SecretSource for UncheckedSecrets {
    fn var(&self, name: &str) -> Option<String> {
        Some(format!("unchecked secret from ${name}"))
    }

    fn read_file(&self, path: &Path) -> std::io::Result<String> {
        Ok(format!("unchecked secret from {}", path.display()))
    }

    fn reads_secrets(&self) -> bool {
        false
    }
}
