//! `hoist copy` between registries in token mode (`auth: token`), the flow GHCR uses:
//! Basic credentials go to the token service, one fetch per scope however many blobs ask,
//! and a mount asks for pull on the source and pull,push on the target.

use std::collections::HashMap;

use hoist_tests::image::{Layout, Written, noise, raw_manifest};
use hoist_tests::{Registry, TokenIssuer, assert_copied, hoist_copy};

const CREDS: &str = "bot:token-secret";

/// A two-platform index with two layers per platform (one shared), pushed to `registry`.
fn pushed_index(registry: &Registry) -> Written {
    let mut layout = Layout::new();
    let base = noise(256 << 10, 30);
    let amd64 = layout.image("linux", "amd64", &[base.clone(), noise(32 << 10, 31)]);
    let arm64 = layout.image("linux", "arm64", &[base, noise(32 << 10, 32)]);
    let index = layout.index(&[(&amd64, "linux", "amd64"), (&arm64, "linux", "arm64")]);
    layout.tag("2.0", &index);
    layout.push(
        "2.0",
        &format!("{}/team/app:2.0", registry.host()),
        Some(CREDS),
    );
    index
}

#[test]
fn copies_between_token_registries_with_one_token_fetch_per_scope() {
    let issuer = TokenIssuer::start("bot", "token-secret");
    let (src, dst) = (
        Registry::start_token(&issuer),
        Registry::start_token(&issuer),
    );
    let index = pushed_index(&src);
    issuer.clear();

    let stdout = assert_copied(&hoist_copy(&[
        "--src-creds",
        CREDS,
        "--dest-creds",
        CREDS,
        "--insecure-registry",
        &src.host(),
        "--token-host",
        &format!("{}={}", src.host(), issuer.host()),
        "--insecure-registry",
        &dst.host(),
        "--token-host",
        &format!("{}={}", dst.host(), issuer.host()),
        &format!("{}/team/app:2.0", src.host()),
        &format!("{}/mirror/app:2.0", dst.host()),
    ]));
    assert!(stdout.contains("5 uploaded"), "{stdout}");
    let copied = raw_manifest(&format!("{}/mirror/app:2.0", dst.host()), Some(CREDS));
    assert_eq!(Some(copied), index.bytes_if_manifest);

    // Both registries share the issuer, so a scope repeats only across registries.
    let mut fetches: HashMap<String, usize> = HashMap::new();
    for request in issuer.requests() {
        assert!(request.granted, "{request:?}");
        *fetches.entry(request.scopes.join(" ")).or_default() += 1;
    }
    assert!(
        fetches.values().all(|n| *n <= 2),
        "a scope was fetched more than once per registry: {fetches:#?}"
    );
    assert!(
        fetches.contains_key("repository:mirror/app:pull,push"),
        "{fetches:#?}"
    );
}

#[test]
fn a_copy_to_another_repository_of_a_token_registry_mounts_with_both_scopes() {
    let issuer = TokenIssuer::start("bot", "token-secret");
    let registry = Registry::start_token(&issuer);
    let index = pushed_index(&registry);
    issuer.clear();

    let stdout = assert_copied(&hoist_copy(&[
        "--src-creds",
        CREDS,
        "--dest-creds",
        CREDS,
        "--insecure-registry",
        &registry.host(),
        "--token-host",
        &format!("{}={}", registry.host(), issuer.host()),
        &format!("{}/team/app:2.0", registry.host()),
        &format!("{}/other/app:2.0", registry.host()),
    ]));
    assert!(stdout.contains("5 mounted"), "{stdout}");
    let mount_scope = ["repository:other/app:pull,push", "repository:team/app:pull"];
    let mount_fetches = issuer
        .requests()
        .iter()
        .filter(|r| r.scopes == mount_scope)
        .count();
    assert_eq!(mount_fetches, 1, "{:#?}", issuer.requests());
    let copied = raw_manifest(&format!("{}/other/app:2.0", registry.host()), Some(CREDS));
    assert_eq!(Some(copied), index.bytes_if_manifest);
}

#[test]
fn wrong_credentials_for_the_token_service_are_named() {
    let issuer = TokenIssuer::start("bot", "token-secret");
    let (src, dst) = (
        Registry::start_token(&issuer),
        Registry::start_token(&issuer),
    );
    pushed_index(&src);

    let output = hoist_copy(&[
        "--src-creds",
        CREDS,
        "--dest-creds",
        "bot:wrong-secret",
        "--insecure-registry",
        &src.host(),
        "--token-host",
        &format!("{}={}", src.host(), issuer.host()),
        "--insecure-registry",
        &dst.host(),
        "--token-host",
        &format!("{}={}", dst.host(), issuer.host()),
        &format!("{}/team/app:2.0", src.host()),
        &format!("{}/team/app:2.0", dst.host()),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("authentication to {} failed", dst.host()))
            && stderr.contains("token service refused the username/password"),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong-secret"), "{stderr}");
}

/// The issuer is on another origin than the registries: without `token_hosts` the
/// credentials never reach it, and the error says which key would allow it.
#[test]
fn credentials_go_to_a_token_service_off_the_registry_only_when_listed() {
    let issuer = TokenIssuer::start("bot", "token-secret");
    let (src, dst) = (
        Registry::start_token(&issuer),
        Registry::start_token(&issuer),
    );
    pushed_index(&src);
    issuer.clear();

    let output = hoist_copy(&[
        "--src-creds",
        CREDS,
        "--insecure-registry",
        &src.host(),
        "--insecure-registry",
        &dst.host(),
        &format!("{}/team/app:2.0", src.host()),
        &format!("{}/team/app:2.0", dst.host()),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("the token realm is on {}", issuer.host()))
            && stderr.contains("token_hosts")
            && stderr.contains(&format!("--token-host {}={}", src.host(), issuer.host())),
        "{stderr}"
    );
    assert!(!stderr.contains("token-secret"), "{stderr}");
    assert!(
        issuer.requests().is_empty(),
        "the token service was asked: {:#?}",
        issuer.requests()
    );
}

/// With token auth too: copying the same index again writes nothing and moves no bytes.
#[test]
fn a_repeated_copy_between_token_registries_moves_nothing() {
    let issuer = TokenIssuer::start("bot", "token-secret");
    let (src, dst) = (
        Registry::start_token(&issuer),
        Registry::start_token(&issuer),
    );
    pushed_index(&src);
    let args = [
        "--src-creds",
        CREDS,
        "--dest-creds",
        CREDS,
        "--insecure-registry",
        &src.host(),
        "--token-host",
        &format!("{}={}", src.host(), issuer.host()),
        "--insecure-registry",
        &dst.host(),
        "--token-host",
        &format!("{}={}", dst.host(), issuer.host()),
        &format!("{}/team/app:2.0", src.host()),
        &format!("{}/mirror/app:2.0", dst.host()),
    ]
    .map(|s| s.to_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let first = assert_copied(&hoist_copy(&args));
    assert!(first.contains("5 uploaded"), "{first}");
    let again = assert_copied(&hoist_copy(&args));
    assert!(again.contains("0 manifests written"), "{again}");
    assert!(again.contains("0 uploaded (0 bytes), 0 mounted"), "{again}");
}
