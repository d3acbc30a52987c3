//! `hoist healthcheck`: a readiness probe for images that have no curl. A plain HTTP/1.1
//! GET over a std socket keeps it independent of the async runtime and of TLS.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};

pub fn run(config: Option<&Path>, url: Option<&str>, timeout_secs: u64) -> ExitCode {
    match probe(config, url, Duration::from_secs(timeout_secs.max(1))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hoist healthcheck: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn probe(config: Option<&Path>, url: Option<&str>, timeout: Duration) -> anyhow::Result<()> {
    let url = match url {
        Some(url) => url.to_owned(),
        None => {
            let listen = crate::config_load::listen_address(config)?;
            format!("http://{}/readyz", local_target(&listen)?)
        }
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("{url:?}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let addr = authority
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {authority}"))?
        .next()
        .ok_or_else(|| anyhow!("{authority} resolves to no address"))?;

    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("cannot connect to {authority}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: hoist-healthcheck\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 64];
    let n = stream
        .read(&mut head)
        .with_context(|| format!("no answer from {url}"))?;
    let status_line = String::from_utf8_lossy(&head[..n]);
    let status = status_line.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        bail!(
            "{url} answered {:?}",
            status_line.lines().next().unwrap_or("")
        );
    }
    Ok(())
}

/// The address to probe for a listen address: a wildcard bind is reached over loopback.
fn local_target(listen: &str) -> anyhow::Result<String> {
    let addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("server.listen {listen:?} is not an address"))?;
    Ok(match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => format!("127.0.0.1:{}", a.port()),
        SocketAddr::V6(a) if a.ip().is_unspecified() => format!("[::1]:{}", a.port()),
        other => other.to_string(),
    })
}
