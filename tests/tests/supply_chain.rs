//! Supply chain, in-process: BuildKit-attested builds (docker/build-push-action's default,
//! in both of BuildKit's attestation modes) are published with every platform manifest
//! and attestation manifest byte-for-byte, checked with skopeo against the target registry;
//! with `[signing]`, every index is signed and attested in cosign's layout, checked with
//! the openssl CLI and with `hoist verify`.

use hoist_tests::app::{COMMIT_A, World};
use hoist_tests::image::{Attestations, Layout, Written, noise, raw_manifest, sha256};
use hoist_tests::{Fault, HoistRun, KeyPair, Rule};
use serde_json::Value;

const TAG_REF: &str = "refs/tags/v1.2.3";

/// CI's per-platform images of one commit, each inside BuildKit's attested index.
struct Attested {
    layout: Layout,
    amd64: Written,
    arm64: Written,
    amd64_index: Written,
    arm64_index: Written,
}

fn attested_builds(mode: Attestations) -> Attested {
    let layout = Layout::new();
    let amd64 = layout.image("linux", "amd64", &[noise(4096, 101)]);
    let arm64 = layout.image("linux", "arm64", &[noise(4096, 102)]);
    let amd64_index = layout.attested(&amd64, "linux", "amd64", mode);
    let arm64_index = layout.attested(&arm64, "linux", "arm64", mode);
    Attested {
        layout,
        amd64,
        arm64,
        amd64_index,
        arm64_index,
    }
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("JSON")
}

/// The manifests an index lists, as JSON.
fn listed(index: &Written) -> Vec<Value> {
    json(index.bytes_if_manifest.as_ref().expect("a manifest"))["manifests"]
        .as_array()
        .expect("manifests")
        .clone()
}

/// The published index under `v1.2.3`, read back with skopeo: each child is in the target
/// with the exact bytes CI pushed, platform manifests first (by platform), then their
/// attestations, each attestation descriptor as BuildKit wrote it.
fn assert_published_intact(w: &World, builds: &Attested) -> Value {
    let raw = raw_manifest(&format!("{}:1.2.3", w.image()), None);
    let index = json(&raw);
    let manifests = index["manifests"].as_array().expect("manifests");
    let amd64_listing = listed(&builds.amd64_index);
    let arm64_listing = listed(&builds.arm64_index);
    assert_eq!(manifests.len(), 4, "{index:#}");
    assert_eq!(manifests[0]["digest"], builds.amd64.digest.as_str());
    assert_eq!(manifests[1]["digest"], builds.arm64.digest.as_str());
    assert_eq!(
        manifests[2], amd64_listing[1],
        "the attestation as BuildKit listed it"
    );
    assert_eq!(
        manifests[3], arm64_listing[1],
        "the attestation as BuildKit listed it"
    );
    for child in manifests {
        let digest = child["digest"].as_str().expect("digest");
        let bytes = raw_manifest(&format!("{}@{digest}", w.image()), None);
        assert_eq!(
            sha256(&bytes),
            digest,
            "{digest} is in the target, unchanged"
        );
        let source = std::fs::read(builds.layout.blob_path(digest)).expect("CI's bytes");
        assert_eq!(bytes, source, "{digest}: the bytes CI pushed");
    }
    index
}

/// The platforms `GET /v1/publications/{id}` shows for the one publication.
async fn shown_platforms(w: &World) -> Value {
    let id = w.publications().await[0]["id"].as_i64().expect("an id");
    w.get(&format!("/v1/publications/{id}")).await["platforms"].clone()
}

async fn publish_per_platform_reports(mode: Attestations) {
    let w = World::new().await;
    let mut builds = attested_builds(mode);
    let amd64 = w.stage(&mut builds.layout, &builds.amd64_index);
    let arm64 = w.stage(&mut builds.layout, &builds.arm64_index);
    w.release("published", 1, "v1.2.3", "master", false).await;
    for (platform, image) in [("linux/amd64", &amd64), ("linux/arm64", &arm64)] {
        let reply = w
            .report_image(COMMIT_A, TAG_REF, Some(platform), image)
            .await;
        assert_eq!(reply.status, 202, "{}", reply.body);
    }
    w.run_jobs().await;
    assert_eq!(
        w.publication_states().await,
        [("v1.2.3 on a".into(), "succeeded".into())],
        "{:#}",
        w.publications().await[0]
    );
    assert_published_intact(&w, &builds);

    let platforms = shown_platforms(&w).await;
    let amd64_attestation = listed(&builds.amd64_index)[1]["digest"].clone();
    assert_eq!(platforms[0]["platform"], "linux/amd64");
    assert_eq!(platforms[0]["manifest"], builds.amd64.digest.as_str());
    assert_eq!(platforms[0]["image"], amd64.as_str());
    assert_eq!(platforms[0]["attestations"][0]["digest"], amd64_attestation);
    assert_eq!(
        platforms[0]["attestations"][0]["predicate_types"],
        serde_json::json!(["https://slsa.dev/provenance/v0.2"])
    );
    assert_eq!(platforms[1]["platform"], "linux/arm64");
    // An OCI-artifact attestation names its manifest as subject: the target, which has no
    // referrers API, lists it in the manifest's fallback tag too.
    let hex = builds.amd64.digest.trim_start_matches("sha256:");
    let fallback = format!("{}:sha256-{hex}", w.image());
    if mode == Attestations::Artifact {
        let listing = json(&raw_manifest(&fallback, None));
        assert_eq!(listing["manifests"][0]["digest"], amd64_attestation);
        assert_eq!(
            listing["manifests"][0]["artifactType"],
            "application/vnd.docker.attestation.manifest.v1+json"
        );
    }
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn build_push_action_defaults_publish_with_legacy_attestations_intact() {
    publish_per_platform_reports(Attestations::Legacy).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn build_push_action_defaults_publish_with_artifact_attestations_intact() {
    publish_per_platform_reports(Attestations::Artifact).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_attested_index_per_ci_job_reported_without_platform_counts_for_each() {
    let w = World::new().await;
    let mut builds = attested_builds(Attestations::Artifact);
    let amd64 = w.stage(&mut builds.layout, &builds.amd64_index);
    let arm64 = w.stage(&mut builds.layout, &builds.arm64_index);
    for image in [&amd64, &arm64] {
        let reply = w.report_image(COMMIT_A, TAG_REF, None, image).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
    }
    w.release("published", 1, "v1.2.3", "master", false).await;
    w.run_jobs().await;
    assert_eq!(
        w.publication_states().await,
        [("v1.2.3 on a".into(), "succeeded".into())]
    );
    assert_published_intact(&w, &builds);
    let platforms = shown_platforms(&w).await;
    assert_eq!(platforms[1]["image"], arm64.as_str());

    // Another index for the published commit would change what a re-run publishes.
    let both = builds.layout.attested_multi(
        &[
            (&builds.amd64, "linux", "amd64"),
            (&builds.arm64, "linux", "arm64"),
        ],
        Attestations::Legacy,
    );
    let late = w.stage(&mut builds.layout, &both);
    let reply = w.report_image(COMMIT_A, TAG_REF, None, &late).await;
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("already published")),
        "{}",
        reply.body
    );
    // So would a platform reported on its own where an index brought it.
    let alone = w.stage(&mut builds.layout, &builds.amd64);
    let reply = w
        .report_image(COMMIT_A, TAG_REF, Some("linux/amd64"), &alone)
        .await;
    assert_eq!(reply.status, 409, "{}", reply.body);
    let id = w.publications().await[0]["id"].as_i64().expect("an id");
    let shown = w.get(&format!("/v1/publications/{id}")).await;
    assert_eq!(
        shown["builds"].as_array().map(Vec::len),
        Some(2),
        "nothing recorded"
    );
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_index_report_does_not_hold_up_platforms_reported_one_by_one() {
    let w = World::new().await;
    let mut builds = attested_builds(Attestations::Legacy);
    // First, an index whose attestation names a manifest it does not hold.
    let mut index = json(
        builds
            .amd64_index
            .bytes_if_manifest
            .as_ref()
            .expect("bytes"),
    );
    index["manifests"][1]["annotations"]["vnd.docker.reference.digest"] =
        builds.arm64.digest.as_str().into();
    let broken = builds.layout.write_manifest(&index);
    let broken = w.stage(&mut builds.layout, &broken);
    let reply = w.report_image(COMMIT_A, TAG_REF, None, &broken).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    // Then every platform on its own.
    let amd64 = w.stage(&mut builds.layout, &builds.amd64_index);
    let arm64 = w.stage(&mut builds.layout, &builds.arm64_index);
    for (platform, image) in [("linux/amd64", &amd64), ("linux/arm64", &arm64)] {
        let reply = w
            .report_image(COMMIT_A, TAG_REF, Some(platform), image)
            .await;
        assert_eq!(reply.status, 202, "{}", reply.body);
    }
    w.release("published", 1, "v1.2.3", "master", false).await;
    w.run_jobs().await;
    assert_eq!(
        w.publication_states().await,
        [("v1.2.3 on a".into(), "succeeded".into())],
        "{:#}",
        w.publications().await[0]
    );
    assert_published_intact(&w, &builds);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_multi_platform_attested_index_pairs_each_attestation_with_its_platform() {
    let w = World::new().await;
    let mut builds = attested_builds(Attestations::Legacy);
    let both = builds.layout.attested_multi(
        &[
            (&builds.arm64, "linux", "arm64"),
            (&builds.amd64, "linux", "amd64"),
        ],
        Attestations::Legacy,
    );
    let image = w.stage(&mut builds.layout, &both);
    let reply = w.report_image(COMMIT_A, TAG_REF, None, &image).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    w.release("published", 1, "v1.2.3", "master", false).await;
    w.run_jobs().await;

    let raw = raw_manifest(&format!("{}:1.2.3", w.image()), None);
    let published = json(&raw)["manifests"]
        .as_array()
        .expect("manifests")
        .clone();
    let source = listed(&both);
    // CI listed arm64 first; the published index lists platforms in order, and each
    // attestation still names its own platform manifest.
    assert_eq!(published[0]["digest"], builds.amd64.digest.as_str());
    assert_eq!(published[2], source[3], "amd64's attestation");
    assert_eq!(published[3], source[2], "arm64's attestation");
    assert_eq!(
        published[2]["annotations"]["vnd.docker.reference.digest"],
        builds.amd64.digest.as_str()
    );
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attestation_of_a_manifest_outside_its_index_fails_the_publication_untagged() {
    let w = World::new().await;
    let mut builds = attested_builds(Attestations::Artifact);
    // amd64's index, but its attestation is about the arm64 manifest, which that index
    // does not hold.
    let stray = builds
        .layout
        .attestation(&builds.arm64, Attestations::Legacy);
    let mut index = json(
        builds
            .amd64_index
            .bytes_if_manifest
            .as_ref()
            .expect("bytes"),
    );
    index["manifests"][1]["digest"] = stray.digest.as_str().into();
    index["manifests"][1]["size"] = stray.size.into();
    index["manifests"][1]["annotations"]["vnd.docker.reference.digest"] =
        builds.arm64.digest.as_str().into();
    let forged = builds.layout.write_manifest(&index);
    let amd64 = w.stage(&mut builds.layout, &forged);
    let arm64 = w.stage(&mut builds.layout, &builds.arm64_index);
    w.release("published", 1, "v1.2.3", "master", false).await;
    w.report_image(COMMIT_A, TAG_REF, Some("linux/amd64"), &amd64)
        .await;
    w.report_image(COMMIT_A, TAG_REF, Some("linux/arm64"), &arm64)
        .await;
    w.run_jobs().await;

    let publication = &w.publications().await[0];
    assert_eq!(publication["state"], "failed", "{publication:#}");
    let error = publication["error"].as_str().expect("an error");
    assert!(
        error.contains("not a manifest of that index") && error.contains(&builds.arm64.digest),
        "{error}"
    );
    assert!(w.tags().await.is_empty(), "no tag moved");
    w.finish().await;
}

/// A world whose hoist signs with a fresh openssl-made key.
async fn signing_world(keys: &KeyPair) -> World {
    World::with_repository(&format!(
        "[signing]\nkey_file = {:?}\n",
        keys.private().display().to_string()
    ))
    .await
}

/// Both platforms of [`COMMIT_A`] reported for v1.2.3, the release published, the
/// workers run.
async fn release_v123_built_both(w: &World) {
    w.report_both(COMMIT_A, TAG_REF).await;
    w.release("published", 1, "v1.2.3", "master", false).await;
    w.run_jobs().await;
}

/// The target answers the next `times` PUTs whose path contains `path` with 403.
fn refuse_puts(w: &World, path: &'static str, times: usize) {
    w.target_proxy.add(Rule {
        method: "PUT",
        path_contains: path,
        times,
        fault: Fault::Huge {
            status: 403,
            bytes: 64,
            declared: true,
        },
    });
}

/// `GET /v1/signing/keys`, which needs no token.
async fn signing_keys(w: &World) -> hoist_tests::app::Reply {
    w.send(
        axum::http::Request::get("/v1/signing/keys")
            .body(axum::body::Body::empty())
            .expect("request"),
    )
    .await
}

/// `tag`'s manifest in the target and its one layer's bytes.
async fn layer_of(w: &World, tag: &str) -> (Vec<u8>, Value, Vec<u8>) {
    let raw = raw_manifest(&format!("{}:{tag}", w.image()), None);
    let manifest = json(&raw);
    let layer = manifest["layers"][0].clone();
    let bytes = w
        .target_blob(layer["digest"].as_str().expect("a layer digest"))
        .await;
    (raw, layer, bytes)
}

fn base64(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

/// DSSE's pre-authentication encoding, written here from the spec (not hoist's code), for
/// openssl to check the envelope's signature against.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_published_index_is_signed_and_attested_as_openssl_verifies() {
    let keys = KeyPair::generate();
    let w = signing_world(&keys).await;
    release_v123_built_both(&w).await;
    let index = w.index_of(COMMIT_A).await;
    let hex = index.trim_start_matches("sha256:");

    // The cosign signature: the payload's bytes, signed, as openssl checks ECDSA-SHA256.
    let (sig_raw, layer, payload) = layer_of(&w, &format!("sha256-{hex}.sig")).await;
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let signature = base64(
        layer["annotations"]["dev.cosignproject.cosign/signature"]
            .as_str()
            .expect("the signature annotation"),
    );
    assert!(
        keys.openssl_verifies(&payload, &signature),
        "openssl verifies the payload"
    );
    let mut tampered = payload.clone();
    tampered[10] ^= 1;
    assert!(
        !keys.openssl_verifies(&tampered, &signature),
        "a tampered payload fails"
    );
    let simple = json(&payload);
    assert_eq!(
        simple["critical"]["identity"]["docker-reference"],
        w.image()
    );
    assert_eq!(simple["critical"]["image"]["docker-manifest-digest"], index);
    assert_eq!(
        simple["critical"]["type"],
        "cosign container image signature"
    );
    assert_eq!(simple["optional"]["tag"], "v1.2.3");
    assert_eq!(simple["optional"]["commit"], COMMIT_A);

    // The attestation: a DSSE envelope, signed over its pre-authentication encoding.
    let (att_raw, layer, envelope) = layer_of(&w, &format!("sha256-{hex}.att")).await;
    assert_eq!(layer["mediaType"], "application/vnd.dsse.envelope.v1+json");
    let envelope = json(&envelope);
    assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
    let statement_bytes = base64(envelope["payload"].as_str().expect("a payload"));
    let signed = pae("application/vnd.in-toto+json", &statement_bytes);
    let signature = base64(envelope["signatures"][0]["sig"].as_str().expect("a sig"));
    assert!(
        keys.openssl_verifies(&signed, &signature),
        "openssl verifies the PAE"
    );
    let mut tampered = statement_bytes.clone();
    tampered[5] ^= 1;
    assert!(
        !keys.openssl_verifies(&pae("application/vnd.in-toto+json", &tampered), &signature),
        "a tampered statement fails"
    );
    let statement = json(&statement_bytes);
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["subject"][0]["digest"]["sha256"], hex);
    assert_eq!(
        layer["annotations"]["predicateType"],
        statement["predicateType"]
    );
    let predicate = &statement["predicate"];
    assert_eq!(predicate["repository"], "Codertocat/Hello-World");
    assert_eq!(predicate["release"]["tag"], "v1.2.3");
    assert_eq!(predicate["release"]["id"], 1);
    assert_eq!(predicate["commit"]["sha"], COMMIT_A);
    assert_eq!(predicate["commit"]["source"], "oidc");
    let built = &w.builds[COMMIT_A];
    assert_eq!(predicate["platforms"][0]["platform"], "linux/amd64");
    assert_eq!(predicate["platforms"][0]["manifest"], built.amd64.as_str());
    assert_eq!(predicate["platforms"][1]["manifest"], built.arm64.as_str());
    let identity = &predicate["platforms"][0]["build"]["ci_identity"];
    assert!(
        identity["run_id"].is_string(),
        "the OIDC run: {predicate:#}"
    );
    assert!(predicate["publication"]["id"].is_i64());
    assert!(predicate["builder"]["version"].is_string());

    // The API names both manifests and serves the public key openssl made.
    let id = w.publications().await[0]["id"].as_i64().expect("an id");
    let shown = w.get(&format!("/v1/publications/{id}")).await;
    assert_eq!(shown["signature_digest"], sha256(&sig_raw).as_str());
    assert_eq!(shown["attestation_digest"], sha256(&att_raw).as_str());
    let reply = signing_keys(&w).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.as_str(), Some(keys.public_pem().as_str()));

    // Signed before any tag named the index.
    let puts: Vec<String> = w
        .target_proxy
        .seen()
        .iter()
        .filter(|s| s.method == "PUT" && s.path.contains("/manifests/"))
        .map(|s| s.path.rsplit('/').next().unwrap_or_default().to_owned())
        .collect();
    let position = |tag: &str| puts.iter().position(|p| p == tag);
    let att = position(&format!("sha256-{hex}.att")).expect("the attestation PUT");
    let first_tag = position("1.2.3").expect("the version tag PUT");
    assert!(att < first_tag, "{puts:?}");
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_publication_keeps_the_signature_that_verifies() {
    let keys = KeyPair::generate();
    let w = signing_world(&keys).await;
    // The version tag is refused once: the publication fails after signing.
    refuse_puts(&w, "/manifests/1.2.3", 1);
    release_v123_built_both(&w).await;
    let publication = &w.publications().await[0];
    assert_eq!(publication["state"], "failed", "{publication:#}");
    let id = publication["id"].as_i64().expect("an id");
    let retried = w.post(&format!("/v1/publications/{id}/retry")).await;
    assert_eq!(retried.status, 202, "{}", retried.body);
    w.run_jobs().await;
    assert_eq!(w.publications().await[0]["state"], "succeeded");

    let signing_puts = |suffix: &str| {
        w.target_proxy
            .seen()
            .iter()
            .filter(|s| s.method == "PUT" && s.path.ends_with(suffix))
            .count()
    };
    assert_eq!(
        signing_puts(".sig"),
        1,
        "the signature is kept, not made again"
    );
    assert_eq!(
        signing_puts(".att"),
        1,
        "the attestation is kept, not made again"
    );
    let shown = w.get(&format!("/v1/publications/{id}")).await;
    assert!(shown["signature_digest"].is_string(), "{shown:#}");
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signing_failure_fails_the_publication_before_any_tag_moves() {
    let keys = KeyPair::generate();
    let w = signing_world(&keys).await;
    refuse_puts(&w, ".sig", 100);
    release_v123_built_both(&w).await;
    let publication = &w.publications().await[0];
    assert_eq!(publication["state"], "failed", "{publication:#}");
    assert_eq!(publication["step"], "index");
    let error = publication["error"].as_str().expect("an error");
    assert!(error.contains("pushing the signature sha256-"), "{error}");
    assert!(w.tags().await.is_empty(), "no tag moved");
    assert!(
        !w.target_proxy
            .seen()
            .iter()
            .any(|s| s.method == "PUT" && s.path.ends_with("/manifests/1.2.3")),
        "no tag was written"
    );
    w.finish().await;
}

/// `hoist verify` against the target registry, with `key` and `extra` arguments.
fn hoist_verify_with(
    w: &World,
    reference: &str,
    key: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    let dir = tempfile::tempdir().expect("a folder");
    let host = w.image().split('/').next().expect("host").to_owned();
    let mut args = vec![
        "verify",
        reference,
        "--key",
        key.to_str().expect("a UTF-8 path"),
        "--insecure-registry",
        &host,
    ];
    args.extend_from_slice(extra);
    HoistRun::new(dir.path(), &args).output()
}

fn hoist_verify(w: &World, reference: &str, key: &std::path::Path) -> std::process::Output {
    hoist_verify_with(w, reference, key, &[])
}

#[tokio::test(flavor = "multi_thread")]
async fn hoist_verify_passes_a_published_image_and_fails_a_repointed_tag_or_the_wrong_key() {
    let keys = KeyPair::generate();
    let w = signing_world(&keys).await;
    release_v123_built_both(&w).await;
    let index = w.index_of(COMMIT_A).await;

    let good = hoist_verify(&w, &format!("{}:1.2.3", w.image()), &keys.public());
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    for expected in [
        index.as_str(),
        "release v1.2.3",
        COMMIT_A,
        "linux/amd64",
        "linux/arm64",
        "run ",
    ] {
        assert!(stdout.contains(expected), "{expected} in {stdout}");
    }
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let pinned = hoist_verify_with(
        &w,
        &format!("{}:1.2.3", w.image()),
        &keys.public(),
        &["--release", "v1.2.3"],
    );
    assert!(pinned.status.success(), "{pinned:?}");
    // A signed index is still not the release a deploy asks for.
    let other_release = hoist_verify_with(
        &w,
        &format!("{}:1.2.3", w.image()),
        &keys.public(),
        &["--release", "v2.0.0"],
    );
    assert_eq!(other_release.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&other_release.stderr);
    assert!(
        stderr.contains("was published for release v1.2.3, not release v2.0.0"),
        "{stderr}"
    );

    let other = KeyPair::generate();
    let wrong = hoist_verify(&w, &format!("{}@{index}", w.image()), &other.public());
    assert_eq!(wrong.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.contains("does not verify with the given key"),
        "{stderr}"
    );

    // Someone with a registry token points 1.2.3 at another image.
    let amd64 = &w.builds[COMMIT_A].amd64;
    hoist_tests::image::skopeo(&[
        "copy".into(),
        "--src-tls-verify=false".into(),
        "--dest-tls-verify=false".into(),
        format!("docker://{}@{amd64}", w.image()),
        format!("docker://{}:1.2.3", w.image()),
    ]);
    let repointed = hoist_verify(&w, &format!("{}:1.2.3", w.image()), &keys.public());
    assert_eq!(repointed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&repointed.stderr);
    assert!(
        stderr.contains(&format!("{}@{amd64} is not signed", w.image())),
        "{stderr}"
    );
}

#[test]
fn a_bad_signing_key_is_named_by_config_check_and_refuses_to_serve() {
    let dir = tempfile::tempdir().expect("a folder");
    let rsa = dir.path().join("rsa.pem");
    let made = std::process::Command::new(hoist_tests::require_tool("openssl", "openssl"))
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&rsa)
        .output()
        .expect("openssl");
    assert!(made.status.success(), "{made:?}");
    let config = dir.path().join("hoist.toml");
    std::fs::write(
        &config,
        format!("[signing]\nkey_file = {:?}\n", rsa.display().to_string()),
    )
    .expect("write the config");
    let config = config.to_str().expect("a UTF-8 path");
    let check = HoistRun::new(dir.path(), &["config", "check", config]).output();
    assert_eq!(check.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        stderr.contains("signing.key_file: not an ECDSA P-256 PKCS#8 key"),
        "{stderr}"
    );
    // An earlier public key that is not one is named too.
    std::fs::write(
        dir.path().join("hoist.toml"),
        format!(
            "[signing]\nkey_file = {:?}\nprevious_public_keys = [{:?}]\n",
            rsa.display().to_string(),
            rsa.display().to_string()
        ),
    )
    .expect("write the config");
    let check = HoistRun::new(dir.path(), &["config", "check", config]).output();
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        stderr.contains("signing.previous_public_keys[0]")
            && stderr.contains("\"PRIVATE KEY\" block"),
        "{stderr}"
    );
    let serve = HoistRun::new(dir.path(), &["--config", config, "serve"]).output();
    assert!(!serve.status.success());
    let stderr = String::from_utf8_lossy(&serve.stderr);
    assert!(stderr.contains("signing.key_file"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn referrers_of_the_platform_manifests_are_copied_and_listed_in_the_target_fallback_tag() {
    let w = World::new().await;
    let mut layout = Layout::new();
    let amd64 = layout.image("linux", "amd64", &[noise(4096, 201)]);
    let arm64 = layout.image("linux", "arm64", &[noise(4096, 202)]);
    let fallback =
        |image: &Written| format!("sha256-{}", image.digest.trim_start_matches("sha256:"));
    // CI attached an SBOM to amd64; its registry has no referrers API, so the writer
    // keeps the fallback tag.
    let (sbom, ci_listing) = layout.sbom_referrer(&amd64, 1);
    w.stage_raw(&layout, &amd64, &amd64.digest).await;
    w.stage_raw(&layout, &ci_listing, &fallback(&amd64)).await;
    // The target already lists another referrer of amd64, written by someone else.
    let (other, target_listing) = layout.sbom_referrer(&amd64, 2);
    w.push_raw_to_target(&layout, &amd64, &amd64.digest).await;
    w.push_raw_to_target(&layout, &target_listing, &fallback(&amd64))
        .await;
    let amd64_image = w.stage(&mut layout, &amd64);
    let arm64_image = w.stage(&mut layout, &arm64);
    w.release("published", 1, "v1.2.3", "master", false).await;
    for (platform, image) in [("linux/amd64", &amd64_image), ("linux/arm64", &arm64_image)] {
        let reply = w
            .report_image(COMMIT_A, TAG_REF, Some(platform), image)
            .await;
        assert_eq!(reply.status, 202, "{}", reply.body);
    }
    w.run_jobs().await;
    assert_eq!(w.publications().await[0]["state"], "succeeded");

    let copied = raw_manifest(&format!("{}@{}", w.image(), sbom.digest), None);
    assert_eq!(
        Some(&copied),
        sbom.bytes_if_manifest.as_ref(),
        "the SBOM, byte for byte"
    );
    let listing = json(&raw_manifest(
        &format!("{}:{}", w.image(), fallback(&amd64)),
        None,
    ));
    let listed: Vec<&str> = listing["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .filter_map(|d| d["digest"].as_str())
        .collect();
    assert_eq!(
        listed,
        [other.digest.as_str(), sbom.digest.as_str()],
        "kept and added"
    );
    assert_eq!(listing["manifests"][1], listed_in(&ci_listing));
    w.finish().await;
}

/// The one descriptor a referrers index lists.
fn listed_in(index: &Written) -> Value {
    listed(index)[0].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_signing_keys_are_served_signing_key_first_then_those_kept_for_rotation() {
    let (keys, old) = (KeyPair::generate(), KeyPair::generate());
    let w = World::with_repository(&format!(
        "[signing]\nkey_file = {:?}\nprevious_public_keys = [{:?}]\n",
        keys.private().display().to_string(),
        old.public().display().to_string()
    ))
    .await;
    let reply = signing_keys(&w).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body.as_str(),
        Some(format!("{}{}", keys.public_pem(), old.public_pem()).as_str())
    );

    let unsigned = World::new().await;
    let reply = signing_keys(&unsigned).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.body["error"]["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_with_the_referrers_api_lists_carried_referrers_itself_and_gets_no_fallback_tag() {
    let w = World::new().await;
    w.target_proxy.serve_referrers();
    let mut layout = Layout::new();
    let amd64 = layout.image("linux", "amd64", &[noise(4096, 301)]);
    let arm64 = layout.image("linux", "arm64", &[noise(4096, 302)]);
    let hex = amd64.digest.trim_start_matches("sha256:").to_owned();
    let (sbom, ci_listing) = layout.sbom_referrer(&amd64, 3);
    w.stage_raw(&layout, &amd64, &amd64.digest).await;
    w.stage_raw(&layout, &ci_listing, &format!("sha256-{hex}"))
        .await;
    let amd64_image = w.stage(&mut layout, &amd64);
    let arm64_image = w.stage(&mut layout, &arm64);
    w.release("published", 1, "v1.2.3", "master", false).await;
    for (platform, image) in [("linux/amd64", &amd64_image), ("linux/arm64", &arm64_image)] {
        let reply = w
            .report_image(COMMIT_A, TAG_REF, Some(platform), image)
            .await;
        assert_eq!(reply.status, 202, "{}", reply.body);
    }
    w.run_jobs().await;
    assert_eq!(w.publications().await[0]["state"], "succeeded");

    let base = format!(
        "http://{}/v2/codertocat/hello-world",
        w.image().split('/').next().expect("host")
    );
    let listed: Value = reqwest::get(format!("{base}/referrers/{}", amd64.digest))
        .await
        .expect("GET referrers")
        .json()
        .await
        .expect("an index");
    assert_eq!(
        listed["manifests"][0]["digest"],
        sbom.digest.as_str(),
        "{listed:#}"
    );
    assert_eq!(
        listed["manifests"][0]["artifactType"],
        "application/spdx+json"
    );
    let fallback = reqwest::get(format!("{base}/manifests/sha256-{hex}"))
        .await
        .expect("GET the fallback tag");
    assert_eq!(
        fallback.status(),
        404,
        "no fallback tag where the API lists referrers"
    );
    w.finish().await;
}
