//! The configuration schema: the TOML file as written (`ConfigFile`) and the validated,
//! resolved form the daemon runs on (`Config`).
//!
//! Validation collects every problem with its key path instead of stopping at the first, so
//! `hoist config check` can show them all at once. Secrets are never in the file: a `*_env`
//! key names an environment variable and a `*_file` key a file, both read once here into a
//! `SecretString` whose `Debug` is redacted.

mod entries;
mod file;
mod postgres_url;
mod resolved;
mod validate;

#[cfg(test)]
mod tests;

pub use entries::default_token_hosts;
pub use file::{
    ApiTokenEntry, CiTokenEntry, ConfigFile, DatabaseSection, GithubSection, PublishSection,
    RegistryEntry, RepositoryEntry, RetentionSection, ServerSection, SigningSection,
};
pub use postgres_url::{check_postgres_url, redact_url};
pub use resolved::{
    ApiToken, CiToken, Config, Credentials, Database, DatabaseKind, GITHUB_ACTIONS_ISSUER, GitHub,
    GitHubApi, Oidc, Publish, Registry, Repository, Role, Server, Signing,
};
pub use validate::{Problem, Problems, ProcessEnv, SecretSource, UncheckedSecrets};

use std::path::Path;

/// The config could not be read or is not valid TOML of the right shape.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
}

impl ConfigFile {
    /// Parses a config file's text. `origin` names it in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<Self, LoadError> {
        toml::from_str(text).map_err(|source| LoadError::Parse {
            path: origin.to_owned(),
            source: Box::new(source),
        })
    }

    /// Reads and parses the file at `path`.
    pub fn read(path: &Path) -> Result<Self, LoadError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: origin.clone(),
            source,
        })?;
        Self::parse(&text, &origin)
    }
}
