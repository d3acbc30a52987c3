//! Finding, reading and validating the configuration: `--config`, then `HOIST_CONFIG`, then
//! the built-in defaults.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use hoist_domain::config::{Config, ConfigFile, ProcessEnv, SecretSource, UncheckedSecrets};

/// Reads and validates the config, or fails with every problem listed.
pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
    load_with(path, &ProcessEnv)
}

/// Reads and validates the config without reading the secrets it names (for commands that
/// need none, like `hoist backup`).
pub fn load_without_secrets(path: Option<&Path>) -> anyhow::Result<Config> {
    load_with(path, &UncheckedSecrets)
}

fn load_with(path: Option<&Path>, secrets: &dyn SecretSource) -> anyhow::Result<Config> {
    let (file, origin) = read(path)?;
    match file.validate(secrets) {
        Ok(config) => Ok(config),
        Err(problems) => {
            let count = problems.0.len();
            bail!("{origin} has {count} problem(s):\n{problems}");
        }
    }
}

fn read(path: Option<&Path>) -> anyhow::Result<(ConfigFile, String)> {
    Ok(match path {
        Some(path) => (ConfigFile::read(path)?, path.display().to_string()),
        None => (ConfigFile::default(), "the built-in defaults".to_owned()),
    })
}

/// `hoist config check`: prints every problem, one per line, and exits 1 if there are any.
pub fn check(path: Option<&Path>, no_secrets: bool) -> ExitCode {
    let (file, origin) = match read(path) {
        Ok(read) => read,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let secrets: &dyn SecretSource = if no_secrets {
        &UncheckedSecrets
    } else {
        &ProcessEnv
    };
    match file.validate(secrets) {
        Ok(config) => {
            {
                let unchecked = if no_secrets { ", secrets not read" } else { "" };
                println!(
                    "{origin}: ok{unchecked} ({} repositories, {} registries, {} CI tokens, {} API tokens)",
                    config.repositories.len(),
                    config.registries.len(),
                    config.ci_tokens.len(),
                    config.api_tokens.len(),
                );
            }
            ExitCode::SUCCESS
        }
        Err(problems) => {
            eprintln!("{origin}: {} problem(s)", problems.0.len());
            for problem in &problems.0 {
                eprintln!("{problem}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Just the listen address, without reading secrets (for `hoist healthcheck`).
pub fn listen_address(path: Option<&Path>) -> anyhow::Result<String> {
    let (file, _) = read(path)?;
    Ok(file.server.listen)
}
