//! Caddy (Debian package `caddy`) running the shipped `deploy/Caddyfile` in front of a
//! process on loopback, with certificates from its internal CA.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::{free_port, require_tool, wait_until};

/// A running Caddy whose data (CA, certificates) lives in its own temp folder. Stopped when
/// dropped.
#[derive(Debug)]
pub struct Caddy {
    child: Child,
    https_port: u16,
    dir: TempDir,
}

/// The shipped `deploy/Caddyfile`.
pub fn shipped_caddyfile() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/Caddyfile")
}

impl Caddy {
    /// Starts Caddy on free loopback ports, serving `https://127.0.0.1:PORT` with a
    /// certificate from its internal CA and proxying to `upstream` (`host:port`). Returns
    /// once a TLS request through it answers.
    pub fn start(upstream: &str) -> Caddy {
        let binary = require_tool("caddy", "caddy");
        let dir = tempfile::tempdir().expect("create Caddy's temp folder");
        let https_port = free_port();
        let log = File::create(dir.path().join("caddy.log")).expect("create caddy.log");
        let child = Command::new(binary)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(shipped_caddyfile())
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            // Caddy keeps its CA and certificates under XDG_DATA_HOME (else under HOME).
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("HOIST_DOMAIN", "127.0.0.1")
            .env("HOIST_UPSTREAM", upstream)
            .env("CADDY_LOCAL_CERTS", "local_certs")
            .env("CADDY_HTTP_PORT", free_port().to_string())
            .env("CADDY_HTTPS_PORT", https_port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("start caddy");
        let mut caddy = Caddy {
            child,
            https_port,
            dir,
        };
        let root = caddy.root_certificate();
        wait_until(
            "Caddy serving TLS with its internal CA",
            Duration::from_secs(30),
            || {
                if let Ok(Some(status)) = caddy.child.try_wait() {
                    panic!("caddy exited with {status}:\n{}", caddy.log());
                }
                root.is_file()
                    && caddy
                        .client()
                        // A public path: the probes are not exposed.
                        .get(caddy.url("/openapi.json"))
                        .send()
                        .is_ok_and(|r| r.status().is_success())
            },
        );
        caddy
    }

    /// `https://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.https_port)
    }

    /// The root certificate of Caddy's internal CA.
    pub fn root_certificate(&self) -> PathBuf {
        self.dir
            .path()
            .join("data/caddy/pki/authorities/local/root.crt")
    }

    /// An https-only client that trusts Caddy's internal CA and nothing else.
    pub fn client(&self) -> reqwest::blocking::Client {
        let pem = std::fs::read(self.root_certificate()).unwrap_or_default();
        let mut builder = reqwest::blocking::Client::builder()
            .https_only(true)
            .tls_built_in_root_certs(false)
            .timeout(Duration::from_secs(10));
        if let Ok(root) = reqwest::Certificate::from_pem(&pem) {
            builder = builder.add_root_certificate(root);
        }
        builder.build().expect("build an HTTPS client")
    }

    /// What Caddy has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("caddy.log")).unwrap_or_default()
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
