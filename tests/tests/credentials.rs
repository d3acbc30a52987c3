//! Registry credentials stay on the registry's origin (scheme, host and port). Each case
//! puts a recording proxy on another origin where a hostile or merely unusual registry
//! would send hoist (an upload `Location`, a blob redirect, a challenge from storage) and
//! checks that no request there carried an `Authorization` header.

use hoist_tests::image::{Layout, Written, noise, raw_manifest};
use hoist_tests::{Fault, Proxy, Registry, Rule, assert_copied, hoist_copy};

const CREDS: &str = "bot:registry-password";

/// A registry holding a one-platform image at `team/app:1.0`.
fn source_with_image() -> (Registry, Written) {
    let registry = Registry::start();
    let mut layout = Layout::new();
    let image = layout.image(
        "linux",
        "amd64",
        &[noise(300 << 10, 41), noise(20 << 10, 42)],
    );
    layout.tag("1.0", &image);
    layout.push("1.0", &format!("{}/team/app:1.0", registry.host()), None);
    (registry, image)
}

fn copy(source: &Proxy, target: &Proxy) -> std::process::Output {
    hoist_copy(&[
        "--src-creds",
        CREDS,
        "--dest-creds",
        CREDS,
        "--insecure-registry",
        &source.host(),
        "--insecure-registry",
        &target.host(),
        &format!("{}/team/app:1.0", source.host()),
        &format!("{}/team/app:1.0", target.host()),
    ])
}

/// The source registry behind a proxy that redirects every blob to "storage": another
/// proxy of the same registry, on another origin, with `query` after the path.
fn blobs_in_storage(src: &Registry, query: &'static str) -> (Proxy, Proxy) {
    let source = Proxy::start(src.port());
    let storage = Proxy::start(src.port());
    source.add(Rule {
        method: "GET",
        path_contains: "/blobs/sha256:",
        times: 100,
        fault: Fault::Redirect {
            host: storage.host(),
            query,
        },
    });
    (source, storage)
}

/// A rule answering GETs of `path` with a Bearer challenge whose realm is on `realm`.
fn bearer_challenge(path: &'static str, realm: &Proxy) -> Rule {
    Rule {
        method: "GET",
        path_contains: path,
        times: 100,
        fault: Fault::Challenge(format!(
            r#"Bearer realm="http://{}/token",service="x""#,
            realm.host()
        )),
    }
}

/// The copy, which must fail: its stderr.
fn failed_copy(source: &Proxy, target: &Proxy) -> String {
    let output = copy(source, target);
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Requests the proxy saw that carried credentials.
fn with_credentials(proxy: &Proxy) -> Vec<String> {
    proxy
        .seen()
        .iter()
        .filter(|r| r.authorization.is_some())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[test]
fn an_upload_location_on_another_origin_gets_the_bytes_but_no_credential() {
    let (src, image) = source_with_image();
    let dst = Registry::start();
    let source = Proxy::start(src.port());
    let target = Proxy::start(dst.port());
    target.require_credentials();
    // Storage on another origin, in front of the same registry.
    let storage = Proxy::start(dst.port());
    target.send_locations_to(&storage.host());

    assert_copied(&copy(&source, &target));
    assert_eq!(
        Some(raw_manifest(&format!("{}/team/app:1.0", dst.host()), None)),
        image.bytes_if_manifest
    );
    let uploads = storage.seen();
    assert!(
        uploads
            .iter()
            .any(|r| r.method == "PUT" && r.body_bytes > 0),
        "the upload went to the Location: {uploads:#?}"
    );
    assert!(
        with_credentials(&storage).is_empty(),
        "credentials reached another origin: {:?}",
        with_credentials(&storage)
    );
    let asked = target.seen();
    assert!(
        asked
            .iter()
            .filter(|r| r.status != 401)
            .all(|r| r.authorization.is_some()),
        "the registry itself is signed in to: {asked:#?}"
    );
}

#[test]
fn a_blob_redirected_to_another_origin_is_fetched_without_credentials() {
    let (src, image) = source_with_image();
    let dst = Registry::start();
    let (source, storage) = blobs_in_storage(&src, "");
    source.require_credentials();
    let target = Proxy::start(dst.port());

    assert_copied(&copy(&source, &target));
    assert_eq!(
        Some(raw_manifest(&format!("{}/team/app:1.0", dst.host()), None)),
        image.bytes_if_manifest
    );
    let fetched = storage
        .seen()
        .iter()
        .filter(|r| r.method == "GET" && r.status == 200)
        .count();
    assert_eq!(fetched, 3, "config and two layers from storage");
    assert!(
        with_credentials(&storage).is_empty(),
        "{:?}",
        with_credentials(&storage)
    );
}

#[test]
fn a_challenge_from_a_redirect_target_is_ignored_and_named() {
    let (src, _image) = source_with_image();
    let dst = Registry::start();
    let (source, storage) = blobs_in_storage(&src, "");
    source.require_credentials();
    // Storage asks for a token from a realm of its own choosing.
    storage.add(bearer_challenge("/blobs/", &storage));
    let target = Proxy::start(dst.port());

    let stderr = failed_copy(&source, &target);
    assert!(
        stderr.contains(&format!("http://{} answered 401", storage.host()))
            && stderr.contains("ignores that challenge"),
        "{stderr}"
    );
    assert!(!stderr.contains("registry-password"), "{stderr}");
    assert!(
        storage.seen().iter().all(|r| !r.path.contains("/token")),
        "hoist asked the storage's realm for a token: {:#?}",
        storage.seen()
    );
    assert!(with_credentials(&storage).is_empty());
    assert_eq!(
        hoist_tests::http()
            .get(format!("{}/v2/team/app/manifests/1.0", dst.url()))
            .send()
            .expect("ask the target")
            .status()
            .as_u16(),
        404,
        "no tag written"
    );
}

#[test]
fn a_bearer_realm_on_another_origin_never_gets_the_password() {
    let (src, _image) = source_with_image();
    let dst = Registry::start();
    let source = Proxy::start(src.port());
    let elsewhere = Proxy::start(src.port());
    source.add(bearer_challenge("/manifests/", &elsewhere));
    let target = Proxy::start(dst.port());

    let stderr = failed_copy(&source, &target);
    assert!(
        stderr.contains(&format!(
            "the token realm is on {}, not {}",
            elsewhere.host(),
            source.host()
        )) && stderr.contains("token_hosts"),
        "{stderr}"
    );
    assert!(elsewhere.seen().is_empty(), "{:#?}", elsewhere.seen());
}

/// Presigned storage URLs carry their credential in the query string: it shows in no error
/// and no log line, whether storage refuses (a status) or drops the connection.
#[test]
fn a_presigned_query_string_never_shows_in_errors_or_logs() {
    const SIGNATURE: &str = "X-Amz-Signature=0123456789abcdef";
    for (fault, says) in [
        (
            Fault::Huge {
                status: 403,
                bytes: 64,
                declared: true,
            },
            "403",
        ),
        (Fault::CutAfter(10), "reading blob"),
    ] {
        let (src, _image) = source_with_image();
        let dst = Registry::start();
        let (source, storage) = blobs_in_storage(
            &src,
            "?X-Amz-Credential=AKIA&X-Amz-Signature=0123456789abcdef",
        );
        storage.add(Rule {
            method: "GET",
            path_contains: "/blobs/",
            times: 100,
            fault,
        });
        let target = Proxy::start(dst.port());
        let dir = tempfile::tempdir().expect("a working folder");
        let output = hoist_tests::HoistRun::new(
            dir.path(),
            &[
                "copy",
                "--insecure-registry",
                &source.host(),
                "--insecure-registry",
                &target.host(),
                &format!("{}/team/app:1.0", source.host()),
                &format!("{}/team/app:1.0", target.host()),
            ],
        )
        .env("RUST_LOG", "debug")
        .output();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{stderr}");
        assert!(
            storage.seen().iter().any(|r| r.path.contains(SIGNATURE)),
            "the redirect was followed"
        );
        assert!(
            !stderr.contains(SIGNATURE) && !stderr.contains("X-Amz-Credential"),
            "{stderr}"
        );
    }
}
