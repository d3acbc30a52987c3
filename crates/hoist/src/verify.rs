//! `hoist verify IMAGE[:TAG|@DIGEST] --key PUB.pem`: checks hoist's signature and
//! publication attestation of the index the reference names, and prints in one line where
//! it came from. Any failure is an error (exit 1) that says why: a deploy pipeline runs it
//! as a gate.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, bail};
use hoist_domain::signing::PublicKey;
use hoist_domain::{Backoff, Digest, ImageRef};
use hoist_pipeline::signature::{read_attestation, read_signature};
use hoist_registry::{Client, Contents, Credentials, Repository};
use serde_json::Value;

use crate::copy::{configured_registries, entry_for};

/// What the command line says about the check.
#[derive(Debug)]
pub struct VerifyArgs {
    pub image: String,
    pub key: PathBuf,
    pub credentials: Option<String>,
    pub insecure_registries: Vec<String>,
    /// The release the image must come from: a signed index of another release (a tag
    /// someone pointed at an older one) is refused.
    pub release: Option<String>,
}

/// Every PEM public key in `text` (a file of one, or all of `GET /v1/signing/keys`).
fn public_keys(text: &str) -> anyhow::Result<Vec<PublicKey>> {
    const END: &str = "-----END PUBLIC KEY-----";
    let keys = text
        .split_inclusive(END)
        .filter(|block| block.contains(END))
        .map(PublicKey::from_pem)
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        // Let the parser say what the file holds instead.
        PublicKey::from_pem(text)?;
    }
    Ok(keys)
}

pub async fn run(config: Option<&std::path::Path>, args: VerifyArgs) -> anyhow::Result<String> {
    let image: ImageRef = args.image.parse()?;
    let text = std::fs::read_to_string(&args.key)
        .with_context(|| format!("reading the key {}", args.key.display()))?;
    let keys = public_keys(&text).with_context(|| format!("{}", args.key.display()))?;
    let mut settings = configured_registries(config)?;
    let entry = entry_for(&mut settings, image.registry());
    if let Some(text) = &args.credentials {
        entry.credentials =
            Credentials::from_user_pass(text).context("--creds must be USER:PASS")?;
    }
    for host in &args.insecure_registries {
        entry_for(&mut settings, host).insecure = true;
    }
    let client = Client::new(settings, Backoff::default())?;
    let repository = Repository::of(&image);
    let reference = match (image.digest(), image.tag()) {
        (Some(digest), _) => digest.to_string(),
        (None, Some(tag)) => tag.to_owned(),
        (None, None) => "latest".to_owned(),
    };
    let index = client
        .manifest(&repository, &reference)
        .await
        .with_context(|| format!("reading {image}"))?;
    let digest = index.digest.clone();
    let key_refs: Vec<&PublicKey> = keys.iter().collect();
    let name = image.name();
    read_signature(&client, &repository, &name, &digest, &key_refs)
        .await
        .with_context(|| format!("{name}@{digest} is not signed by the given key"))?;
    let (_, statement) = read_attestation(&client, &repository, &digest, &key_refs)
        .await
        .with_context(|| format!("{name}@{digest} has no valid publication attestation"))?;
    let predicate = &statement["predicate"];
    if predicate["image"] != name.as_str() {
        bail!(
            "{name}@{digest}'s attestation is for {}, not this image",
            predicate["image"]
        );
    }
    if let Some(wanted) = &args.release
        && predicate["release"]["tag"] != wanted.as_str()
    {
        bail!(
            "{name}@{digest} was published for {}, not release {wanted}",
            match predicate["release"]["tag"].as_str() {
                Some(tag) => format!("release {tag}"),
                None => "the default branch".to_owned(),
            }
        );
    }
    // The attestation must describe what the index holds, platform by platform.
    let listed = match index.contents()? {
        Contents::Index { children } => children
            .iter()
            .filter(|c| matches!(c.attests(), Ok(None)))
            .map(|c| c.digest.to_string())
            .collect::<BTreeSet<_>>(),
        Contents::Image { .. } => bail!("{name}@{digest} is not an index hoist published"),
    };
    let platforms = predicate["platforms"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let attested: BTreeSet<String> = platforms
        .iter()
        .filter_map(|p| p["manifest"].as_str().map(str::to_owned))
        .collect();
    if listed != attested {
        bail!("{name}@{digest} lists manifests {listed:?}, but its attestation names {attested:?}");
    }
    Ok(summary(&image, &digest, predicate, &platforms))
}

/// One line: the image and index, the release or branch, the commit, each platform and the
/// CI run that built it.
fn summary(image: &ImageRef, digest: &Digest, predicate: &Value, platforms: &[Value]) -> String {
    let text = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    let origin = match predicate["release"].as_object() {
        Some(release) => format!(
            "release {} ({})",
            text(&release["tag"]),
            text(&release["url"])
        ),
        None => format!("branch {}", text(&predicate["branch"])),
    };
    let builds: Vec<String> = platforms
        .iter()
        .map(|p| {
            let identity = &p["build"]["ci_identity"];
            let run = if identity.is_object() {
                format!(
                    "run {} of {}",
                    text(&identity["run_id"]),
                    text(&identity["job_workflow_ref"])
                )
            } else {
                format!("reported by {}", text(&p["build"]["reported_by"]))
            };
            format!("{} {} ({run})", text(&p["platform"]), text(&p["manifest"]))
        })
        .collect();
    format!(
        "verified {}@{digest}: {} {origin}, commit {} ({}); {}; published by hoist {} as publication {}",
        image.name(),
        text(&predicate["repository"]),
        text(&predicate["commit"]["sha"]),
        text(&predicate["commit"]["source"]),
        builds.join(", "),
        text(&predicate["builder"]["version"]),
        predicate["publication"]["id"],
    )
}
