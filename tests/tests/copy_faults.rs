//! `hoist copy` through a proxy that misbehaves like real registries do. Each case ends
//! either copied correctly or in a clear error, and never with a tag pointing at something
//! missing.

use std::process::Output;

use hoist_tests::image::{Layout, Written, noise, raw_manifest, sha256};
use hoist_tests::{Fault, HoistRun, Proxy, Registry, Rule, http};

struct Setup {
    /// Kept running for the proxy in front of it.
    _src: Registry,
    dst: Registry,
    src_proxy: Proxy,
    dst_proxy: Proxy,
    image: Written,
    big_layer: String,
}

/// An image with a 2 MiB and a 100 KiB layer in `src`, both registries behind proxies.
fn setup() -> Setup {
    let (src, dst) = (Registry::start(), Registry::start());
    let (src_proxy, dst_proxy) = (Proxy::start(src.port()), Proxy::start(dst.port()));
    let mut layout = Layout::new();
    let big = noise(2 << 20, 21);
    let big_layer = sha256(&big);
    let image = layout.image("linux", "amd64", &[big, noise(100 << 10, 22)]);
    layout.tag("1.0", &image);
    layout.push("1.0", &format!("{}/team/app:1.0", src.host()), None);
    Setup {
        _src: src,
        dst,
        src_proxy,
        dst_proxy,
        image,
        big_layer,
    }
}

impl Setup {
    fn copy(&self) -> Output {
        let dir = tempfile::tempdir().expect("a working folder");
        HoistRun::new(
            dir.path(),
            &[
                "copy",
                "--insecure-registry",
                &self.src_proxy.host(),
                "--insecure-registry",
                &self.dst_proxy.host(),
                &format!("{}/team/app:1.0", self.src_proxy.host()),
                &format!("{}/team/app:1.0", self.dst_proxy.host()),
            ],
        )
        .env("RUST_LOG", "warn")
        .output()
    }

    fn assert_copied(&self, output: &Output) {
        assert!(
            output.status.success(),
            "hoist copy failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let copied = raw_manifest(&format!("{}/team/app:1.0", self.dst.host()), None);
        assert_eq!(Some(copied), self.image.bytes_if_manifest);
        let unused = [self.src_proxy.unused_rules(), self.dst_proxy.unused_rules()].concat();
        assert!(unused.is_empty(), "faults never triggered: {unused:#?}");
    }

    fn target_status(&self, path: &str) -> u16 {
        http()
            .head(format!("{}/v2/team/app/{path}", self.dst.url()))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .expect("ask the target registry")
            .status()
            .as_u16()
    }
}

fn rule(method: &'static str, path_contains: &'static str, times: usize, fault: Fault) -> Rule {
    Rule {
        method,
        path_contains,
        times,
        fault,
    }
}

#[test]
fn rate_limits_and_server_errors_are_waited_out() {
    let s = setup();
    s.dst_proxy.add(rule(
        "HEAD",
        "/blobs/",
        1,
        Fault::TooManyRequests { retry_after: "1" },
    ));
    s.dst_proxy.add(rule(
        "POST",
        "/blobs/uploads/",
        2,
        Fault::GhcrTooManyRequests,
    ));
    s.src_proxy
        .add(rule("GET", "/manifests/", 3, Fault::Unavailable));
    s.dst_proxy
        .add(rule("PUT", "/manifests/", 2, Fault::Unavailable));
    let started = std::time::Instant::now();
    let output = s.copy();
    s.assert_copied(&output);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
}

#[test]
fn a_refused_streaming_upload_restarts_in_a_new_session() {
    let s = setup();
    s.dst_proxy.add(rule(
        "PUT",
        "/blobs/uploads/",
        1,
        Fault::TooManyRequests { retry_after: "0" },
    ));
    let output = s.copy();
    s.assert_copied(&output);
    let sessions = s
        .dst_proxy
        .seen()
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("/blobs/uploads/"))
        .count();
    assert_eq!(sessions, 4, "3 blobs and one restarted session");
}

#[test]
fn a_connection_cut_mid_blob_restarts_the_copy_of_that_blob() {
    let s = setup();
    s.src_proxy
        .add(rule("GET", "/blobs/sha256:", 1, Fault::CutAfter(300_000)));
    let output = s.copy();
    s.assert_copied(&output);
}

#[test]
fn bytes_corrupted_once_in_transit_are_fetched_again() {
    let s = setup();
    s.src_proxy
        .add(rule("GET", "/blobs/sha256:", 1, Fault::Corrupt));
    let output = s.copy();
    s.assert_copied(&output);
}

#[test]
fn a_source_serving_corrupted_bytes_fails_clearly_and_writes_no_tag() {
    let s = setup();
    s.src_proxy
        .add(rule("GET", "/blobs/sha256:", 1000, Fault::Corrupt));
    let output = s.copy();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the upload was not finalized") && stderr.contains("have digest sha256:"),
        "{stderr}"
    );
    assert_eq!(s.target_status("manifests/1.0"), 404, "no tag written");
    assert_eq!(
        s.target_status(&format!("manifests/{}", s.image.digest)),
        404
    );
    assert_eq!(s.target_status(&format!("blobs/{}", s.big_layer)), 404);
}
