//! Supply chain, in-process: BuildKit-attested builds (docker/build-push-action's default,
//! in both of BuildKit's attestation modes) are published with every platform manifest
//! and attestation manifest byte-for-byte, checked with skopeo against the target registry.

use hoist_tests::app::{COMMIT_A, World};
use hoist_tests::image::{Attestations, Layout, Written, noise, raw_manifest, sha256};
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
