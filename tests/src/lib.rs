//! The end-to-end test harness: real processes on loopback ports, each with its own
//! temporary folder, stopped when dropped.
//!
//! - [`app`]: hoist in-process (router, store, pipeline) against real registries, with the
//!   workers stepped by the test, for pipeline behaviour.
//! - [`Registry`]: the CNCF distribution registry (Debian package `docker-registry`).
//! - [`Hoist`]: the `hoist` binary of this workspace, started with a config.
//! - [`image`]: test images as OCI layouts, pushed and inspected with `skopeo`.
//! - [`Proxy`]: a recording, fault-injecting HTTP proxy in front of a registry.
//! - [`TokenIssuer`]: a JWT token service for registries in `auth: token` mode.
//! - [`oidc::Issuer`]: a GitHub Actions OIDC issuer (keys, JWKS, tokens with GitHub's claims).
//! - [`Caddy`]: Caddy (Debian package `caddy`) running `deploy/Caddyfile` in front of hoist.
//! - [`KeyPair`]: ECDSA P-256 keys made and signatures checked with the `openssl` CLI.
//!
//! A missing tool fails the test with a message saying what to install; nothing is skipped.

pub mod app;
mod caddy;
mod github;
mod hoist;
pub mod image;
mod keys;
pub mod oidc;
pub mod proxy;
mod registry;
pub mod token;

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use caddy::{Caddy, shipped_caddyfile};
pub use github::{FakeGitHub, deliver_webhook, fixture};
pub use hoist::{Hoist, HoistRun, assert_copied, hoist_bin, hoist_copy, hoist_copy_peak_rss};
pub use keys::KeyPair;
pub use proxy::{Fault, Proxy, Rule};
pub use registry::Registry;
pub use token::TokenIssuer;

/// Serves HTTP/1.1 on a free loopback port from a thread, one request per connection, for
/// the test's stand-ins of services no package provides: `answer` gets the request path and
/// its `Authorization` header and returns the status line and a JSON body. Returns the port.
pub(crate) fn serve_json(
    what: &str,
    answer: impl Fn(&str, Option<&str>) -> (&'static str, String) + Send + 'static,
) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind {what}: {e}"));
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
            let mut first = String::new();
            if reader.read_line(&mut first).is_err() {
                continue;
            }
            let mut authorization = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("authorization")
                {
                    authorization = Some(value.trim().to_owned());
                }
            }
            let path = first.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = answer(path, authorization.as_deref());
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    listener.local_addr().expect("local address").port()
}

/// The path of a command, or a panic naming the Debian package that provides it.
pub fn require_tool(command: &str, package: &str) -> PathBuf {
    require_command(
        command,
        &format!(
            "install the Debian package `{package}` (apt-get install {package}), or run \
             scripts/test which installs it"
        ),
    )
}

/// The path of a command on PATH, or a panic saying `how` to get it.
pub fn require_command(command: &str, how: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(command))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("`{command}` is not installed: {how}"))
}

/// Polls `ready` every 20 ms until it returns true or `timeout` passes.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < timeout,
            "{what} did not happen within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A blocking HTTP client with short timeouts, for probing test processes.
pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("build an HTTP client")
}
