//! Test images written as OCI image layouts, pushed and inspected with `skopeo`, the
//! independent client the tests judge hoist by.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::require_tool;

/// A blob or manifest as written: digest, size and media type.
#[derive(Debug, Clone)]
pub struct Written {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    pub bytes_if_manifest: Option<Vec<u8>>,
}

/// An OCI image layout in a temp folder.
#[derive(Debug)]
pub struct Layout {
    dir: TempDir,
    refs: Vec<(String, Written)>,
}

/// Deterministic pseudo-random bytes (xorshift), so a test's blobs are distinct and
/// incompressible without a random source.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn sha256(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

impl Layout {
    pub fn new() -> Layout {
        let dir = tempfile::tempdir().expect("create a layout folder");
        std::fs::create_dir_all(dir.path().join("blobs/sha256")).expect("create blobs/");
        std::fs::write(
            dir.path().join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .expect("write oci-layout");
        Layout {
            dir,
            refs: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a blob and describes it.
    pub fn blob(&self, media_type: &str, bytes: &[u8]) -> Written {
        let digest = sha256(bytes);
        let file = self.blob_path(&digest);
        std::fs::write(&file, bytes).expect("write a blob");
        Written {
            digest,
            size: bytes.len() as u64,
            media_type: media_type.to_owned(),
            bytes_if_manifest: None,
        }
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        self.dir.path().join("blobs/sha256").join(hex)
    }

    /// Writes an OCI image manifest with a config for `os/arch` and the given layers.
    pub fn image(&self, os: &str, arch: &str, layers: &[Vec<u8>]) -> Written {
        let layers: Vec<Written> = layers
            .iter()
            .map(|l| self.blob("application/vnd.oci.image.layer.v1.tar", l))
            .collect();
        let diff_ids: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
        let config = serde_json::json!({
            "architecture": arch,
            "os": os,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "config": {},
        });
        let config = self.blob(
            "application/vnd.oci.image.config.v1+json",
            &serde_json::to_vec(&config).expect("config JSON"),
        );
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptor(&config),
            "layers": layers.iter().map(descriptor).collect::<Vec<_>>(),
        });
        self.manifest("application/vnd.oci.image.manifest.v1+json", &manifest)
    }

    /// Writes an OCI index over image manifests, each with its platform.
    pub fn index(&self, children: &[(&Written, &str, &str)]) -> Written {
        let manifests: Vec<serde_json::Value> = children
            .iter()
            .map(|(child, os, arch)| {
                let mut d = descriptor(child);
                d["platform"] = serde_json::json!({"os": os, "architecture": arch});
                d
            })
            .collect();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
            "annotations": {"org.opencontainers.image.source": "https://example.com/hoist-test"},
        });
        self.manifest("application/vnd.oci.image.index.v1+json", &index)
    }

    /// What BuildKit pushes for one platform with provenance on (docker/build-push-action's
    /// default): an index holding `image` (for `os/arch`) and, after it, an attestation
    /// manifest whose layer is a real in-toto SLSA provenance statement about `image`.
    pub fn attested(&self, image: &Written, os: &str, arch: &str, mode: Attestations) -> Written {
        let attestation = self.attestation(image, mode);
        let mut platform = descriptor(image);
        platform["platform"] = serde_json::json!({"os": os, "architecture": arch});
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [platform, attestation_descriptor(&attestation, image)],
        });
        self.manifest("application/vnd.oci.image.index.v1+json", &index)
    }

    /// An index over several attested platforms, as one multi-platform BuildKit build
    /// pushes it: the platform manifests first, then each one's attestation.
    pub fn attested_multi(&self, images: &[(&Written, &str, &str)], mode: Attestations) -> Written {
        let mut manifests = Vec::new();
        let mut attestations = Vec::new();
        for (image, os, arch) in images {
            let mut platform = descriptor(image);
            platform["platform"] = serde_json::json!({"os": os, "architecture": arch});
            manifests.push(platform);
            let attestation = self.attestation(image, mode);
            attestations.push(attestation_descriptor(&attestation, image));
        }
        manifests.extend(attestations);
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        self.manifest("application/vnd.oci.image.index.v1+json", &index)
    }

    /// An SPDX SBOM artifact whose `subject` is `image` (what `oras attach` or `cosign
    /// attach sbom` push), and the referrers index listing it as the spec's fallback tag
    /// holds it.
    pub fn sbom_referrer(&self, image: &Written, seed: u64) -> (Written, Written) {
        let sbom = serde_json::json!({
            "spdxVersion": "SPDX-2.3",
            "name": format!("sbom-{seed}"),
            "packages": [{"name": "busybox", "versionInfo": "1.36.1"}],
        });
        let layer = self.blob(
            "application/spdx+json",
            &serde_json::to_vec(&sbom).expect("SBOM JSON"),
        );
        let empty = self.blob("application/vnd.oci.empty.v1+json", b"{}");
        let annotations =
            serde_json::json!({"org.opencontainers.image.created": "2026-01-01T00:00:00Z"});
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/spdx+json",
            "config": descriptor(&empty),
            "layers": [descriptor(&layer)],
            "subject": descriptor(image),
            "annotations": annotations,
        });
        let referrer = self.manifest("application/vnd.oci.image.manifest.v1+json", &manifest);
        let mut listed = descriptor(&referrer);
        listed["artifactType"] = "application/spdx+json".into();
        listed["annotations"] = annotations;
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [listed],
        });
        let index = self.manifest("application/vnd.oci.image.index.v1+json", &index);
        (referrer, index)
    }

    /// An attestation manifest about `image` in BuildKit's `mode`.
    pub fn attestation(&self, image: &Written, mode: Attestations) -> Written {
        let hex = image.digest.trim_start_matches("sha256:");
        let statement = serde_json::json!({
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://slsa.dev/provenance/v0.2",
            "subject": [{"name": "pkg:docker/ci/app", "digest": {"sha256": hex}}],
            "predicate": {
                "builder": {"id": "https://github.com/Codertocat/Hello-World/actions/runs/1"},
                "buildType": "https://mobyproject.org/buildkit@v1",
                "invocation": {"configSource": {"entryPoint": "Dockerfile"}},
                "metadata": {"buildInvocationID": format!("build-{}", &hex[..12])},
            },
        });
        let layer = self.blob(
            "application/vnd.in-toto+json",
            &serde_json::to_vec(&statement).expect("statement JSON"),
        );
        let mut layer_descriptor = descriptor(&layer);
        layer_descriptor["annotations"] =
            serde_json::json!({"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"});
        let manifest = match mode {
            Attestations::Legacy => {
                let config = serde_json::json!({
                    "architecture": "unknown",
                    "os": "unknown",
                    "config": {},
                    "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
                });
                let config = self.blob(
                    "application/vnd.oci.image.config.v1+json",
                    &serde_json::to_vec(&config).expect("config JSON"),
                );
                serde_json::json!({
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": descriptor(&config),
                    "layers": [layer_descriptor],
                })
            }
            Attestations::Artifact => {
                let empty = self.blob("application/vnd.oci.empty.v1+json", b"{}");
                serde_json::json!({
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "artifactType": "application/vnd.docker.attestation.manifest.v1+json",
                    "config": descriptor(&empty),
                    "layers": [layer_descriptor],
                    "subject": descriptor(image),
                })
            }
        };
        self.manifest("application/vnd.oci.image.manifest.v1+json", &manifest)
    }

    /// Writes a manifest or index given as JSON (its `mediaType` says which).
    pub fn write_manifest(&self, json: &serde_json::Value) -> Written {
        let media_type = json["mediaType"].as_str().expect("a mediaType").to_owned();
        self.manifest(&media_type, json)
    }

    fn manifest(&self, media_type: &str, json: &serde_json::Value) -> Written {
        let bytes = serde_json::to_vec_pretty(json).expect("manifest JSON");
        let mut written = self.blob(media_type, &bytes);
        written.bytes_if_manifest = Some(bytes);
        written
    }

    /// Names `manifest` as `tag` in the layout's index.json.
    pub fn tag(&mut self, tag: &str, manifest: &Written) {
        self.refs.push((tag.to_owned(), manifest.clone()));
        let manifests: Vec<serde_json::Value> = self
            .refs
            .iter()
            .map(|(tag, m)| {
                let mut d = descriptor(m);
                d["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
                d
            })
            .collect();
        let index = serde_json::json!({"schemaVersion": 2, "manifests": manifests});
        std::fs::write(
            self.dir.path().join("index.json"),
            serde_json::to_vec(&index).expect("index JSON"),
        )
        .expect("write index.json");
    }

    /// Pushes the manifest tagged `tag` (an index with all its platforms) to `target` over
    /// plain http with skopeo, keeping every digest.
    pub fn push(&self, tag: &str, target: &str, creds: Option<&str>) {
        let source = format!("oci:{}:{tag}", self.dir.path().display());
        let mut args = vec![
            "copy".to_owned(),
            "--all".to_owned(),
            "--preserve-digests".to_owned(),
            "--dest-tls-verify=false".to_owned(),
        ];
        if let Some(creds) = creds {
            args.push(format!("--dest-creds={creds}"));
        }
        args.push(source);
        args.push(format!("docker://{target}"));
        skopeo(&args);
    }
}

impl Default for Layout {
    fn default() -> Self {
        Layout::new()
    }
}

/// BuildKit's two ways of writing an attestation manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attestations {
    /// A real image config for `unknown/unknown` (BuildKit before 0.31).
    Legacy,
    /// An OCI artifact: `artifactType`, the empty config, `subject` = the platform
    /// manifest (BuildKit 0.31 and later).
    Artifact,
}

/// How BuildKit lists an attestation manifest in an index.
fn attestation_descriptor(attestation: &Written, of: &Written) -> serde_json::Value {
    let mut d = descriptor(attestation);
    d["platform"] = serde_json::json!({"os": "unknown", "architecture": "unknown"});
    d["annotations"] = serde_json::json!({
        "vnd.docker.reference.type": "attestation-manifest",
        "vnd.docker.reference.digest": of.digest,
    });
    d
}

fn descriptor(w: &Written) -> serde_json::Value {
    serde_json::json!({"mediaType": w.media_type, "digest": w.digest, "size": w.size})
}

/// Runs skopeo with `args`, panicking with its stderr when it fails; returns stdout.
pub fn skopeo(args: &[String]) -> Vec<u8> {
    let binary = require_tool("skopeo", "skopeo");
    static POLICY: OnceLock<PathBuf> = OnceLock::new();
    // One file shared by every test process (the content never changes), written beside
    // and renamed into place so no process reads half of it.
    let policy = POLICY.get_or_init(|| {
        let path = std::env::temp_dir().join("hoist-tests-skopeo-policy.json");
        let partial = path.with_extension(format!("{}.partial", std::process::id()));
        std::fs::write(
            &partial,
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .expect("write a skopeo policy");
        std::fs::rename(&partial, &path).expect("move the skopeo policy into place");
        path
    });
    let output = Command::new(binary)
        .arg("--policy")
        .arg(policy)
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        output.status.success(),
        "skopeo {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The exact manifest bytes skopeo reads for `image` (`host/path:tag` or `@digest`).
pub fn raw_manifest(image: &str, creds: Option<&str>) -> Vec<u8> {
    let mut args = vec![
        "inspect".to_owned(),
        "--raw".to_owned(),
        "--tls-verify=false".to_owned(),
    ];
    if let Some(creds) = creds {
        args.push(format!("--creds={creds}"));
    }
    args.push(format!("docker://{image}"));
    skopeo(&args)
}
