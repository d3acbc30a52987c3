//! `hoist copy SRC DST`: one image or a whole index between registries, like
//! `skopeo copy --all`.

use std::path::Path;

use anyhow::{Context, bail};
use hoist_domain::config::ConfigFile;
use hoist_domain::image::is_valid_host;
use hoist_domain::{Backoff, ImageRef};
use hoist_registry::{Client, Credentials, RegistrySettings};

/// What the command line says about the copy.
#[derive(Debug)]
pub struct CopyArgs {
    pub source: String,
    pub target: String,
    pub source_credentials: Option<String>,
    pub target_credentials: Option<String>,
    pub insecure_registries: Vec<String>,
    /// `REGISTRY=HOST`: a token service off the registry's origin its credentials may go to.
    pub token_hosts: Vec<String>,
}

pub async fn run(config: Option<&Path>, args: CopyArgs) -> anyhow::Result<()> {
    let source: ImageRef = args.source.parse()?;
    let target: ImageRef = args.target.parse()?;
    let mut settings = configured_registries(config)?;
    for (image, credentials, flag) in [
        (&source, &args.source_credentials, "--src-creds"),
        (&target, &args.target_credentials, "--dest-creds"),
    ] {
        let entry = entry_for(&mut settings, image.registry());
        if let Some(text) = credentials {
            entry.credentials = Credentials::from_user_pass(text)
                .with_context(|| format!("{flag} must be USER:PASS"))?;
        }
    }
    for host in &args.insecure_registries {
        entry_for(&mut settings, host).insecure = true;
    }
    for pair in &args.token_hosts {
        let (registry, host) = pair
            .split_once('=')
            .filter(|(r, h)| is_valid_host(r) && is_valid_host(h))
            .with_context(|| format!("--token-host must be REGISTRY=HOST[:PORT], not {pair:?}"))?;
        entry_for(&mut settings, registry)
            .token_hosts
            .push(host.to_owned());
    }
    let client = Client::new(settings, Backoff::default())?;
    let started = std::time::Instant::now();
    let report = client
        .copy_image(&source, &target)
        .await
        .with_context(|| format!("copying {source} to {target}"))?;
    let shown_target = match &report.tag {
        Some(tag) => format!("{}:{tag}@{}", target.name(), report.digest),
        None => format!("{}@{}", target.name(), report.digest),
    };
    #[expect(clippy::print_stdout, reason = "the command's output")]
    {
        println!(
            "copied {source} to {shown_target} in {:.2?}: {} manifests written, {} present; \
             blobs: {} uploaded ({} bytes), {} mounted, {} present",
            started.elapsed(),
            report.manifests_written,
            report.manifests_present,
            report.blobs_uploaded,
            report.bytes_uploaded,
            report.blobs_mounted,
            report.blobs_present,
        );
    }
    Ok(())
}

/// The `[[registry]]` entries of the config, when one is given. Only the registry entries
/// are validated here: `hoist copy` needs no database, webhook secret or API token.
pub(crate) fn configured_registries(
    config: Option<&Path>,
) -> anyhow::Result<Vec<RegistrySettings>> {
    let Some(path) = config else {
        return Ok(Vec::new());
    };
    let file = ConfigFile::read(path)?;
    let registries_only = ConfigFile {
        registry: file.registry,
        ..ConfigFile::default()
    };
    match registries_only.validate(&hoist_domain::config::ProcessEnv) {
        Ok(config) => Ok(config
            .registries
            .iter()
            .map(RegistrySettings::from)
            .collect()),
        Err(problems) => bail!("{} has problems:\n{problems}", path.display()),
    }
}

pub(crate) fn entry_for<'a>(
    settings: &'a mut Vec<RegistrySettings>,
    host: &str,
) -> &'a mut RegistrySettings {
    let index = match settings
        .iter()
        .position(|s| s.host.eq_ignore_ascii_case(host))
    {
        Some(index) => index,
        None => {
            settings.push(RegistrySettings::new(host));
            settings.len() - 1
        }
    };
    &mut settings[index]
}
