//! A real CNCF distribution registry (`docker-registry`) per test.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::{free_port, http, require_tool, wait_until};

/// A running registry with its own storage root, listening on a loopback port. Stopped and
/// its files removed when dropped.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Registry {
    /// Starts a registry without authentication and waits until `/v2/` answers.
    pub fn start() -> Registry {
        let dir = tempfile::tempdir().expect("create the registry's temp folder");
        Self::start_in(dir, "")
    }

    /// Starts a registry that accepts only `username`/`password` (HTTP Basic, htpasswd
    /// file hashed with bcrypt by `htpasswd` from apache2-utils).
    pub fn start_htpasswd(username: &str, password: &str) -> Registry {
        let htpasswd = require_tool("htpasswd", "apache2-utils");
        let dir = tempfile::tempdir().expect("create the registry's temp folder");
        let file = dir.path().join("htpasswd");
        let output = Command::new(htpasswd)
            .args(["-Bbn", username, password])
            .output()
            .expect("run htpasswd");
        assert!(output.status.success(), "htpasswd failed");
        std::fs::write(&file, output.stdout).expect("write the htpasswd file");
        let auth = format!(
            "auth:\n  htpasswd:\n    realm: hoist-test\n    path: {}\n",
            file.display()
        );
        Self::start_in(dir, &auth)
    }

    /// Starts a registry in token mode (`auth: token`) trusting `issuer`, the way GHCR
    /// authenticates.
    pub fn start_token(issuer: &crate::TokenIssuer) -> Registry {
        let dir = tempfile::tempdir().expect("create the registry's temp folder");
        Self::start_in(dir, &issuer.registry_auth())
    }

    /// Starts a registry in `dir` with `auth` (a YAML `auth:` section, or empty).
    pub fn start_in(dir: TempDir, auth: &str) -> Registry {
        let binary = require_tool("docker-registry", "docker-registry");
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\n\
                 log:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n\
                 health:\n  storagedriver:\n    enabled: false\n{auth}",
                root = dir.path().join("storage").display(),
            ),
        )
        .expect("write the registry config");
        let log = File::create(dir.path().join("registry.log")).expect("create the registry log");
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let mut registry = Registry { child, port, dir };
        let url = format!("{}/v2/", registry.url());
        let client = http();
        wait_until(
            "the registry answering /v2/",
            Duration::from_secs(20),
            || {
                if let Ok(Some(status)) = registry.child.try_wait() {
                    panic!("docker-registry exited with {status}:\n{}", registry.log());
                }
                // 401 is the answer of a registry that wants credentials: it is up.
                client
                    .get(&url)
                    .send()
                    .is_ok_and(|r| r.status().is_success() || r.status() == 401)
            },
        );
        registry
    }

    /// `127.0.0.1:PORT`, the host part of image references in this registry.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The registry's storage root.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The temp folder holding config, storage and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the registry has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
