//! Every read from a registry is bounded: a source proxy serves oversized manifests, token
//! answers and error bodies, and a blob longer than its descriptor. Each ends in a clear
//! error, nothing written on the target, and (for the 64 MiB answers) hoist's peak memory
//! stays under 48 MiB.

use hoist_tests::image::{Layout, Written, noise, sha256};
use hoist_tests::{Fault, Proxy, Registry, Rule, hoist_copy, hoist_copy_peak_rss, http};

const PEAK_RSS_LIMIT_KIB: u64 = 48 << 10;
const HUGE: usize = 64 << 20;

struct Setup {
    _src: Registry,
    dst: Registry,
    source: Proxy,
    image: Written,
    layer: String,
}

fn setup() -> Setup {
    let src = Registry::start();
    let mut layout = Layout::new();
    let layer = noise(200 << 10, 51);
    let layer_digest = sha256(&layer);
    let image = layout.image("linux", "amd64", &[layer]);
    layout.tag("1.0", &image);
    layout.push("1.0", &format!("{}/team/app:1.0", src.host()), None);
    let source = Proxy::start(src.port());
    Setup {
        _src: src,
        dst: Registry::start(),
        source,
        image,
        layer: layer_digest,
    }
}

impl Setup {
    fn args(&self) -> Vec<String> {
        vec![
            "--insecure-registry".into(),
            self.source.host(),
            "--insecure-registry".into(),
            self.dst.host(),
            format!("{}/team/app:1.0", self.source.host()),
            format!("{}/team/app:1.0", self.dst.host()),
        ]
    }

    /// Runs the copy, expects it to fail, and returns stderr and the peak RSS in KiB.
    fn failed_copy(&self) -> (String, u64) {
        let args = self.args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (output, peak) = hoist_copy_peak_rss(&args);
        eprintln!("hoist copy peak RSS: {peak} KiB");
        assert!(
            !output.status.success(),
            "the copy succeeded: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        (String::from_utf8_lossy(&output.stderr).into_owned(), peak)
    }

    fn assert_nothing_written(&self) {
        let status = |path: &str| {
            http()
                .head(format!("{}/v2/team/app/{path}", self.dst.url()))
                .header("accept", "application/vnd.oci.image.manifest.v1+json")
                .send()
                .expect("ask the target")
                .status()
                .as_u16()
        };
        assert_eq!(status("manifests/1.0"), 404);
        assert_eq!(status(&format!("manifests/{}", self.image.digest)), 404);
    }
}

fn huge(method: &'static str, path: &'static str, status: u16, declared: bool) -> Rule {
    Rule {
        method,
        path_contains: path,
        times: 100,
        fault: Fault::Huge {
            status,
            bytes: HUGE,
            declared,
        },
    }
}

#[test]
fn a_64_mib_manifest_is_refused_at_the_4_mib_limit_in_little_memory() {
    for declared in [false, true] {
        let s = setup();
        s.source.add(huge("GET", "/manifests/", 200, declared));
        let (stderr, peak) = s.failed_copy();
        assert!(
            stderr.contains("is larger than 4194304 bytes (4 MiB)")
                && stderr.contains("OCI distribution spec"),
            "{stderr}"
        );
        assert!(
            peak < PEAK_RSS_LIMIT_KIB,
            "peak RSS {peak} KiB with a 64 MiB manifest (Content-Length declared: {declared})"
        );
        s.assert_nothing_written();
    }
}

#[test]
fn a_64_mib_error_body_is_cut_to_its_start() {
    let s = setup();
    s.source.add(huge("GET", "/manifests/", 404, false));
    let (stderr, peak) = s.failed_copy();
    assert!(stderr.contains("404"), "{stderr}");
    assert!(stderr.len() < 4096, "{} bytes of stderr", stderr.len());
    assert!(peak < PEAK_RSS_LIMIT_KIB, "peak RSS {peak} KiB");
    s.assert_nothing_written();
}

#[test]
fn a_64_mib_token_answer_is_refused() {
    let s = setup();
    // The source asks for a token from its own origin, which answers with 64 MiB.
    s.source.add(Rule {
        method: "GET",
        path_contains: "/manifests/",
        times: 100,
        fault: Fault::Challenge(format!(
            r#"Bearer realm="http://{}/token",service="s""#,
            s.source.host()
        )),
    });
    s.source.add(huge("GET", "/token", 200, false));
    let (stderr, peak) = s.failed_copy();
    assert!(
        stderr.contains("token answer larger than 65536 bytes"),
        "{stderr}"
    );
    assert!(peak < PEAK_RSS_LIMIT_KIB, "peak RSS {peak} KiB");
    s.assert_nothing_written();
}

#[test]
fn a_blob_longer_than_its_descriptor_is_cut_and_never_finalized() {
    let s = setup();
    s.source.add(Rule {
        method: "GET",
        path_contains: "/blobs/sha256:",
        times: 1000,
        fault: Fault::Append(4096),
    });
    let args = s.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = hoist_copy(&args);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the upload was not finalized") && stderr.contains("bytes received"),
        "{stderr}"
    );
    s.assert_nothing_written();
    let status = http()
        .head(format!("{}/v2/team/app/blobs/{}", s.dst.url(), s.layer))
        .send()
        .expect("ask the target")
        .status()
        .as_u16();
    assert_eq!(status, 404, "the over-long layer was finalized");
}
