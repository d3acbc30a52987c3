//! The container image's runtime layout, without a container engine: bubblewrap runs the
//! binary the way the Dockerfile and the compose/Kubernetes manifests do — UID/GID 10001,
//! read-only root filesystem, writable only the data volume at /var/lib/hoist and a tmpfs
//! /tmp, its own network namespace, the shipped deploy/hoist.container.toml through
//! HOIST_CONFIG — and drives it with the image's HEALTHCHECK command and `hoist backup`.

use std::path::Path;
use std::process::Command;

use hoist_tests::{hoist_bin, require_tool};

/// What the container does, as a script run inside the sandbox: serve, wait for the
/// HEALTHCHECK command to pass, take a backup into the volume, stop with SIGTERM.
const SCRIPT: &str = r#"
set -eu
touch /probe-root 2>/dev/null && { echo "the root filesystem is writable"; exit 1; }
touch /var/lib/probe 2>/dev/null && { echo "/var/lib is writable"; exit 1; }
"$HOIST" serve &
pid=$!
tries=0
until "$HOIST" healthcheck 2>/dev/null; do
    tries=$((tries + 1))
    [ "$tries" -lt 400 ] || { echo "never healthy"; exit 1; }
    sleep 0.05
done
echo "uid=$(id -u) gid=$(id -g) healthy"
"$HOIST" backup /var/lib/hoist/backup.db
kill -TERM "$pid"
wait "$pid"
echo "stopped"
"#;

#[test]
fn the_image_layout_serves_passes_its_healthcheck_and_backs_up_with_only_the_volume_writable() {
    let bwrap = require_tool("bwrap", "bubblewrap");
    let config = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/hoist.container.toml")
        .canonicalize()
        .expect("deploy/hoist.container.toml exists");
    let volume = tempfile::tempdir().unwrap();

    let out = Command::new(bwrap)
        .args(["--ro-bind", "/", "/"])
        // /var/lib/hoist must exist to be mounted on: an empty, read-only /var/lib holds it.
        .args(["--tmpfs", "/var/lib"])
        .arg("--bind")
        .arg(volume.path())
        .arg("/var/lib/hoist")
        .args(["--remount-ro", "/var/lib"])
        .args(["--tmpfs", "/tmp", "--dev", "/dev", "--proc", "/proc"])
        // The binary and config where the image has them, not at their host paths (which
        // may be under the /tmp the sandbox hides).
        .args(["--tmpfs", "/usr/local"])
        .arg("--ro-bind")
        .arg(hoist_bin())
        .arg("/usr/local/bin/hoist")
        .arg("--ro-bind")
        .arg(&config)
        .arg("/usr/local/etc/hoist.toml")
        .args(["--remount-ro", "/usr/local"])
        // Its own loopback, so the config's fixed port 8080 clashes with nothing.
        .args(["--unshare-net", "--unshare-pid", "--unshare-user"])
        .args([
            "--uid",
            "10001",
            "--gid",
            "10001",
            "--die-with-parent",
            "--chdir",
            "/",
        ])
        .arg("--clearenv")
        .args(["--setenv", "PATH", "/usr/bin:/bin"])
        .args(["--setenv", "HOIST", "/usr/local/bin/hoist"])
        .args(["--setenv", "HOIST_CONFIG", "/usr/local/etc/hoist.toml"])
        .args([
            "--setenv",
            "HOIST_WEBHOOK_SECRET",
            "webhook-secret-in-the-box",
        ])
        .args(["--setenv", "HOIST_CI_TOKEN", "ci-token-in-the-box-0123"])
        .args(["--setenv", "HOIST_API_TOKEN", "api-token-in-the-box-0123"])
        .args(["--setenv", "GHCR_TOKEN", "registry-password-in-the-box"])
        .args(["--", "/bin/sh", "-c", SCRIPT])
        .output()
        .expect("run bwrap");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("uid=10001 gid=10001 healthy"), "{stdout}");
    assert!(stdout.contains("stopped"), "{stdout}");
    assert!(
        stderr.contains("database=/var/lib/hoist/hoist.db"),
        "{stderr}"
    );

    let mut written: Vec<String> = std::fs::read_dir(volume.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    // After a clean stop SQLite has folded its WAL back into the file.
    assert_eq!(written, ["backup.db", "hoist.db"], "{stderr}");
}
