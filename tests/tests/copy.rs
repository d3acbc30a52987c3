//! `hoist copy` against real registries, judged by skopeo: digests survive, blobs are
//! mounted within a registry, a repeated copy moves nothing, and bad credentials are named.

use hoist_tests::image::{Layout, Written, noise, raw_manifest};
use hoist_tests::{HoistRun, Proxy, Registry, assert_copied, hoist_copy};

/// A three-layer image (1 MiB, 300 KiB, 10 bytes) tagged `1.0`.
fn multi_layer_image(layout: &mut Layout) -> Written {
    let image = layout.image(
        "linux",
        "amd64",
        &[noise(1 << 20, 1), noise(300 << 10, 2), noise(10, 3)],
    );
    layout.tag("1.0", &image);
    image
}

/// An index over linux/amd64 and linux/arm64 images that share a base layer.
fn two_platform_index(layout: &mut Layout) -> (Written, Vec<Written>) {
    let base = noise(512 << 10, 10);
    let amd64 = layout.image("linux", "amd64", &[base.clone(), noise(64 << 10, 11)]);
    let arm64 = layout.image("linux", "arm64", &[base, noise(64 << 10, 12)]);
    let index = layout.index(&[(&amd64, "linux", "amd64"), (&arm64, "linux", "arm64")]);
    layout.tag("2.0", &index);
    (index, vec![amd64, arm64])
}

#[test]
fn copies_a_multi_layer_image_between_registries_keeping_its_digest() {
    let (src, dst) = (Registry::start(), Registry::start());
    let mut layout = Layout::new();
    let image = multi_layer_image(&mut layout);
    layout.push("1.0", &format!("{}/team/app:1.0", src.host()), None);

    let stdout = assert_copied(&hoist_copy(&[
        "--insecure-registry",
        &src.host(),
        "--insecure-registry",
        &dst.host(),
        &format!("{}/team/app:1.0", src.host()),
        &format!("{}/mirror/app:1.0", dst.host()),
    ]));
    assert!(stdout.contains("4 uploaded"), "{stdout}");
    assert!(stdout.contains(&image.digest), "{stdout}");

    let copied = raw_manifest(&format!("{}/mirror/app:1.0", dst.host()), None);
    assert_eq!(Some(copied), image.bytes_if_manifest);
}

#[test]
fn copies_a_two_platform_index_with_every_platform() {
    let (src, dst) = (Registry::start(), Registry::start());
    let mut layout = Layout::new();
    let (index, platforms) = two_platform_index(&mut layout);
    layout.push("2.0", &format!("{}/team/app:2.0", src.host()), None);

    let stdout = assert_copied(&hoist_copy(&[
        "--insecure-registry",
        &src.host(),
        "--insecure-registry",
        &dst.host(),
        &format!("{}/team/app:2.0", src.host()),
        &format!("{}/team/app", dst.host()),
    ]));
    // The shared base layer is one blob: 2 configs + 3 layers, 3 manifests.
    assert!(stdout.contains("3 manifests written"), "{stdout}");

    let copied = raw_manifest(&format!("{}/team/app:2.0", dst.host()), None);
    assert_eq!(
        Some(copied),
        index.bytes_if_manifest,
        "tag taken from the source"
    );
    for platform in platforms {
        let child = raw_manifest(
            &format!("{}/team/app@{}", dst.host(), platform.digest),
            None,
        );
        assert_eq!(Some(child), platform.bytes_if_manifest);
    }
}

#[test]
fn a_copy_within_one_registry_mounts_every_blob() {
    let registry = Registry::start();
    let proxy = Proxy::start(registry.port());
    let mut layout = Layout::new();
    let (index, _) = two_platform_index(&mut layout);
    layout.push("2.0", &format!("{}/team/app:2.0", registry.host()), None);

    let stdout = assert_copied(&hoist_copy(&[
        "--insecure-registry",
        &proxy.host(),
        &format!("{}/team/app:2.0", proxy.host()),
        &format!("{}/other/app:2.0", proxy.host()),
    ]));
    assert!(stdout.contains("5 mounted"), "{stdout}");

    let seen = proxy.seen();
    let mounts: Vec<_> = seen
        .iter()
        .filter(|s| s.method == "POST" && s.path.contains("mount="))
        .collect();
    assert_eq!(mounts.len(), 5, "{seen:#?}");
    assert!(mounts.iter().all(|s| s.status == 201), "{mounts:#?}");
    let blob_reads = seen
        .iter()
        .filter(|s| s.method == "GET" && s.path.contains("/blobs/"));
    assert_eq!(blob_reads.count(), 0, "no blob bytes read: {seen:#?}");
    let uploaded: u64 = seen
        .iter()
        .filter(|s| s.path.contains("/blobs/uploads/"))
        .map(|s| s.body_bytes)
        .sum();
    assert_eq!(uploaded, 0);
    let copied = raw_manifest(&format!("{}/other/app:2.0", registry.host()), None);
    assert_eq!(Some(copied), index.bytes_if_manifest);
}

#[test]
fn a_repeated_copy_only_asks_what_the_target_has() {
    let (src, dst) = (Registry::start(), Registry::start());
    let (src_proxy, dst_proxy) = (Proxy::start(src.port()), Proxy::start(dst.port()));
    let mut layout = Layout::new();
    two_platform_index(&mut layout);
    layout.push("2.0", &format!("{}/team/app:2.0", src.host()), None);
    let args = [
        "--insecure-registry",
        &src_proxy.host(),
        "--insecure-registry",
        &dst_proxy.host(),
        &format!("{}/team/app:2.0", src_proxy.host()),
        &format!("{}/team/app:2.0", dst_proxy.host()),
    ]
    .map(|s| s.to_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_copied(&hoist_copy(&args));
    src_proxy.clear();
    dst_proxy.clear();

    let stdout = assert_copied(&hoist_copy(&args));
    assert!(stdout.contains("0 manifests written"), "{stdout}");
    let target_requests = dst_proxy.seen();
    assert!(
        target_requests.iter().all(|s| s.method == "HEAD"),
        "{target_requests:#?}"
    );
    let source_requests = src_proxy.seen();
    assert!(
        source_requests
            .iter()
            .all(|s| s.method == "GET" && s.path.contains("/manifests/")),
        "only the root manifest is read again: {source_requests:#?}"
    );
    assert_eq!(source_requests.len(), 1, "{source_requests:#?}");
}

#[test]
fn copies_between_password_protected_registries() {
    let src = Registry::start_htpasswd("reader", "source-secret");
    let dst = Registry::start_htpasswd("bot", "target-secret");
    let mut layout = Layout::new();
    let (index, _) = two_platform_index(&mut layout);
    layout.push(
        "2.0",
        &format!("{}/team/app:2.0", src.host()),
        Some("reader:source-secret"),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hoist.toml"),
        format!(
            "[[registry]]\nhost = \"{}\"\nusername = \"bot\"\npassword_env = \"TARGET_PASSWORD\"\ninsecure = true\n",
            dst.host()
        ),
    )
    .unwrap();
    let source = format!("{}/team/app:2.0", src.host());
    let target = format!("{}/team/app:2.0", dst.host());
    let output = HoistRun::new(
        dir.path(),
        &[
            "--config",
            "hoist.toml",
            "copy",
            "--src-creds",
            "reader:source-secret",
            "--insecure-registry",
            &src.host(),
            &source,
            &target,
        ],
    )
    .env("TARGET_PASSWORD", "target-secret")
    .output();
    assert_copied(&output);
    let copied = raw_manifest(&target, Some("bot:target-secret"));
    assert_eq!(Some(copied), index.bytes_if_manifest);

    let refused = HoistRun::new(
        dir.path(),
        &[
            "--config",
            "hoist.toml",
            "copy",
            "--src-creds",
            "reader:source-secret",
            "--insecure-registry",
            &src.host(),
            &source,
            &target,
        ],
    )
    .env("TARGET_PASSWORD", "not-the-password")
    .output();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!("authentication to {} failed", dst.host()))
            && stderr.contains("refused the username/password"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-password"), "{stderr}");
}

#[test]
fn a_registry_that_wants_credentials_says_so_when_none_are_given() {
    let src = Registry::start_htpasswd("reader", "source-secret");
    let dst = Registry::start();
    let output = hoist_copy(&[
        "--insecure-registry",
        &src.host(),
        "--insecure-registry",
        &dst.host(),
        &format!("{}/team/app:1.0", src.host()),
        &format!("{}/team/app:1.0", dst.host()),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("asks for a username and password; none were given"),
        "{stderr}"
    );
}

#[test]
fn a_registry_configured_for_chunks_gets_patches_of_at_most_chunk_size() {
    let (src, dst) = (Registry::start(), Registry::start());
    let proxy = Proxy::start(dst.port());
    let mut layout = Layout::new();
    let image = multi_layer_image(&mut layout);
    layout.push("1.0", &format!("{}/team/app:1.0", src.host()), None);
    let dir = tempfile::tempdir().expect("a working folder");
    std::fs::write(
        dir.path().join("hoist.toml"),
        format!(
            "[[registry]]\nhost = \"{}\"\nanonymous = true\ninsecure = true\nchunk_size = 65536\n",
            proxy.host()
        ),
    )
    .expect("write hoist.toml");
    let output = HoistRun::new(
        dir.path(),
        &[
            "--config",
            "hoist.toml",
            "copy",
            "--insecure-registry",
            &src.host(),
            &format!("{}/team/app:1.0", src.host()),
            &format!("{}/team/app:1.0", proxy.host()),
        ],
    )
    .output();
    assert_copied(&output);

    let patches: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == "PATCH")
        .collect();
    assert!(
        patches
            .iter()
            .all(|p| p.body_bytes <= 65536 && p.status == 202)
    );
    let patched: u64 = patches.iter().map(|p| p.body_bytes).sum();
    assert_eq!(patched, (1 << 20) + (300 << 10) + 10 + config_size(&image));
    assert!(patches.len() >= 16 + 5, "{} patches", patches.len());
    let copied = raw_manifest(&format!("{}/team/app:1.0", dst.host()), None);
    assert_eq!(Some(copied), image.bytes_if_manifest);
}

fn config_size(manifest: &Written) -> u64 {
    let json: serde_json::Value =
        serde_json::from_slice(manifest.bytes_if_manifest.as_deref().expect("a manifest"))
            .expect("manifest JSON");
    json["config"]["size"].as_u64().expect("config size")
}

/// With htpasswd auth too: a copy to another repository of the same registry mounts every
/// blob, and copying again only asks what the target has.
#[test]
fn password_protected_registries_mount_within_a_registry_and_repeat_with_heads_only() {
    let registry = Registry::start_htpasswd("bot", "bot-secret");
    let proxy = Proxy::start(registry.port());
    let mut layout = Layout::new();
    let (index, _) = two_platform_index(&mut layout);
    layout.push(
        "2.0",
        &format!("{}/team/app:2.0", registry.host()),
        Some("bot:bot-secret"),
    );
    let source = format!("{}/team/app:2.0", proxy.host());
    let target = format!("{}/other/app:2.0", proxy.host());
    let args = [
        "--src-creds",
        "bot:bot-secret",
        "--dest-creds",
        "bot:bot-secret",
        "--insecure-registry",
        &proxy.host(),
        &source,
        &target,
    ];
    let stdout = assert_copied(&hoist_copy(&args));
    assert!(stdout.contains("5 mounted"), "{stdout}");
    let mounts = proxy
        .seen()
        .iter()
        .filter(|s| s.method == "POST" && s.path.contains("mount=") && s.status == 201)
        .count();
    assert_eq!(mounts, 5);
    let copied = raw_manifest(
        &format!("{}/other/app:2.0", registry.host()),
        Some("bot:bot-secret"),
    );
    assert_eq!(Some(copied), index.bytes_if_manifest);

    proxy.clear();
    let stdout = assert_copied(&hoist_copy(&args));
    assert!(stdout.contains("0 manifests written"), "{stdout}");
    let target_requests: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.path.contains("/other/app/"))
        .collect();
    assert!(!target_requests.is_empty());
    assert!(
        target_requests.iter().all(|s| s.method == "HEAD"),
        "{target_requests:#?}"
    );
}
