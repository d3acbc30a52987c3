//! A tiny token issuer for `auth: token` registries, the flow GHCR uses: the registry
//! answers 401 with `WWW-Authenticate: Bearer realm=<issuer>`, the client asks the issuer
//! for a token with Basic credentials, and the issuer signs a JWT the registry checks
//! against a certificate it trusts.
//!
//! The key and self-signed certificate are made with the `openssl` CLI when the issuer
//! starts; each token is signed RS256 by `openssl dgst` and carries the certificate in its
//! `x5c` header, which the registry verifies against its `rootcertbundle`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

use crate::require_tool;

pub const SERVICE: &str = "hoist-test-registry";
pub const ISSUER: &str = "hoist-test-issuer";

/// A token request as the issuer saw it.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The `scope` parameters, in order.
    pub scopes: Vec<String>,
    /// Whether the request carried the right credentials (a token was issued).
    pub granted: bool,
}

#[derive(Debug)]
pub struct TokenIssuer {
    port: u16,
    dir: TempDir,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
}

impl TokenIssuer {
    /// Starts an issuer that grants any scope to `username`/`password` and refuses others.
    pub fn start(username: &str, password: &str) -> TokenIssuer {
        let openssl = require_tool("openssl", "openssl");
        let dir = tempfile::tempdir().expect("create the issuer's temp folder");
        let status = Command::new(&openssl)
            .current_dir(dir.path())
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "key.pem",
                "-out",
                "cert.pem",
                "-days",
                "2",
                "-subj",
                "/CN=hoist-test-token-issuer",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run openssl req");
        assert!(
            status.success(),
            "openssl could not make a test certificate"
        );
        let pem = std::fs::read_to_string(dir.path().join("cert.pem")).expect("read cert.pem");
        // The PEM body is the standard base64 of the DER certificate, which is what x5c holds.
        let cert_der_b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let expected_auth = format!(
            "Basic {}",
            base64(format!("{username}:{password}").as_bytes(), false)
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the issuer");
        let port = listener.local_addr().expect("issuer address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let shared = requests.clone();
        let key = dir.path().join("key.pem");
        let subject = username.to_owned();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                let Ok(reader) = stream.try_clone() else {
                    continue;
                };
                let mut reader = BufReader::new(reader);
                let mut first = String::new();
                let mut authorization = None;
                if reader.read_line(&mut first).is_err() {
                    continue;
                }
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("authorization")
                    {
                        authorization = Some(value.trim().to_owned());
                    }
                }
                let target = first.split(' ').nth(1).unwrap_or_default();
                let scopes = query_values(target, "scope");
                let granted = authorization.as_deref() == Some(expected_auth.as_str());
                shared.lock().expect("issuer state").push(TokenRequest {
                    scopes: scopes.clone(),
                    granted,
                });
                let answer = if granted {
                    let token = sign_token(&openssl, &key, &cert_der_b64, &subject, &scopes);
                    let body = format!(r#"{{"token":"{token}","expires_in":300}}"#);
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    let body = r#"{"details":"incorrect username or password"}"#;
                    format!(
                        "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        TokenIssuer {
            port,
            dir,
            requests,
        }
    }

    /// The token endpoint, the registry's `realm`.
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// `127.0.0.1:<port>`: the host registries' `token_hosts` must list to send it
    /// credentials, as it is not on their origin.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Forgets the requests seen so far.
    pub fn clear(&self) {
        self.requests.lock().expect("issuer state").clear();
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// Every token request so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().expect("issuer state").clone()
    }

    /// The registry's `auth:` section trusting this issuer.
    pub fn registry_auth(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            self.realm(),
            self.cert_path().display()
        )
    }
}

fn query_values(target: &str, key: &str) -> Vec<String> {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| percent_decode(v))
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => out.push(b),
                    Err(_) => out.extend_from_slice(&bytes[i..i + 3]),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JWT granting every requested `repository:<name>:<actions>` scope.
fn sign_token(
    openssl: &Path,
    key: &Path,
    cert_b64: &str,
    subject: &str,
    scopes: &[String],
) -> String {
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|scope| {
            let mut parts = scope.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({
                "type": kind,
                "name": name,
                "actions": actions.split(',').collect::<Vec<_>>(),
            }))
        })
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [cert_b64]});
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": subject,
        "aud": SERVICE,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("{now}-{}", scopes.join(" ").len()),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        base64(header.to_string().as_bytes(), true),
        base64(claims.to_string().as_bytes(), true)
    );
    let mut child = Command::new(openssl)
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run openssl dgst");
    child
        .stdin
        .take()
        .expect("openssl stdin")
        .write_all(signing_input.as_bytes())
        .expect("feed openssl");
    let output = child.wait_with_output().expect("openssl signature");
    assert!(output.status.success(), "openssl dgst -sign failed");
    format!("{signing_input}.{}", base64(&output.stdout, true))
}

/// Base64 (standard with padding, or URL-safe without), for JWTs and Basic credentials.
fn base64(bytes: &[u8], url: bool) -> String {
    let alphabet: &[u8; 64] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        let symbols = chunk.len() + 1;
        for i in 0..4 {
            if i < symbols {
                out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
            } else if !url {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_examples() {
        assert_eq!(base64(b"foobar", false), "Zm9vYmFy");
        assert_eq!(base64(b"fooba", false), "Zm9vYmE=");
        assert_eq!(base64(b"foob", false), "Zm9vYg==");
        assert_eq!(base64(&[0xfb, 0xff], true), "-_8");
    }

    #[test]
    fn scopes_are_read_from_the_query() {
        assert_eq!(
            query_values(
                "/token?service=s&scope=repository%3Aa%2Fb%3Apull%2Cpush&scope=repository:c:pull",
                "scope"
            ),
            ["repository:a/b:pull,push", "repository:c:pull"]
        );
    }
}
