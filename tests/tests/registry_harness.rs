//! The registry harness starts a real registry that speaks the distribution API, and
//! removes every trace of it when dropped.

use std::net::TcpStream;

use hoist_tests::{Registry, http};
use sha2::{Digest, Sha256};

/// A blob pushed with a monolithic upload (POST then PUT ?digest=) reads back byte for byte.
#[test]
fn registry_accepts_and_serves_a_blob_then_vanishes_on_drop() {
    let registry = Registry::start();
    let client = http();

    let v2 = client
        .get(format!("{}/v2/", registry.url()))
        .send()
        .unwrap();
    assert_eq!(v2.status(), 200);
    assert_eq!(
        v2.headers().get("docker-distribution-api-version").unwrap(),
        "registry/2.0"
    );

    let blob = b"hoist harness blob";
    let digest = format!("sha256:{}", sha256_hex(blob));
    let started = client
        .post(format!(
            "{}/v2/harness/check/blobs/uploads/",
            registry.url()
        ))
        .send()
        .unwrap();
    assert_eq!(started.status(), 202);
    let location = started
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let location = if location.starts_with("http") {
        location
    } else {
        format!("{}{location}", registry.url())
    };
    let separator = if location.contains('?') { '&' } else { '?' };
    let put = client
        .put(format!("{location}{separator}digest={digest}"))
        .header("content-type", "application/octet-stream")
        .body(blob.to_vec())
        .send()
        .unwrap();
    assert_eq!(put.status(), 201, "{}", put.text().unwrap_or_default());

    let fetched = client
        .get(format!(
            "{}/v2/harness/check/blobs/{digest}",
            registry.url()
        ))
        .send()
        .unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().unwrap().as_ref(), blob);
    assert!(
        registry
            .root()
            .join("docker/registry/v2/blobs/sha256")
            .is_dir()
    );

    let port = registry.port();
    let dir = registry.dir().to_path_buf();
    drop(registry);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "registry still listening"
    );
    assert!(!dir.exists(), "registry temp folder left behind");
}

#[test]
fn two_registries_run_side_by_side_with_separate_storage() {
    let a = Registry::start();
    let b = Registry::start();
    assert_ne!(a.port(), b.port());
    assert_ne!(a.root(), b.root());
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
#[should_panic(
    expected = "install the Debian package `no-such-package` (apt-get install no-such-package)"
)]
fn a_missing_tool_fails_the_test_naming_the_package_to_install() {
    hoist_tests::require_tool("hoist-no-such-tool", "no-such-package");
}
