//! A small HTTP/1.1 proxy in front of a real registry that records every request and can
//! misbehave on cue: rate limits, server errors, a connection cut mid-blob, corrupted bytes.
//!
//! Every exchange is one connection (`Connection: close` both ways), which keeps the proxy
//! a plain byte pump with a parsed head on each side.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Bytes in the request body.
    pub body_bytes: u64,
    /// The status sent back (a fault's, or the registry's).
    pub status: u16,
    /// The request's `Authorization` header.
    pub authorization: Option<String>,
}

/// What to do instead of forwarding faithfully.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer 429 with `Retry-After: <seconds>`.
    TooManyRequests { retry_after: &'static str },
    /// Answer 429 the way GHCR does: the wait only inside the error message.
    GhcrTooManyRequests,
    /// Answer 503.
    Unavailable,
    /// Forward, but close the connection after this many bytes of the response body.
    CutAfter(usize),
    /// Forward, but flip one byte in the middle of the response body.
    Corrupt,
    /// Forward after waiting this long (a slow network, or time to crash something).
    Delay(std::time::Duration),
    /// Answer `307 Temporary Redirect` to the same path on `host`, with `query` after it
    /// (blob storage elsewhere, presigned).
    Redirect { host: String, query: &'static str },
    /// Answer 401 with this `WWW-Authenticate` header.
    Challenge(String),
    /// Answer `status` with a JSON-looking body of `bytes` bytes, its length declared in
    /// `Content-Length` or (when `declared` is false) only by closing the connection.
    Huge {
        status: u16,
        bytes: usize,
        declared: bool,
    },
    /// Forward, with this many bytes more at the end of the body than the registry sent.
    Append(usize),
}

/// A fault applied to the next `times` requests whose method is `method` and whose path
/// contains `path_contains`.
#[derive(Debug, Clone)]
pub struct Rule {
    pub method: &'static str,
    pub path_contains: &'static str,
    pub times: usize,
    pub fault: Fault,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    seen: Vec<Seen>,
    /// Answer `401 Basic` to any request without an `Authorization` header.
    require_credentials: bool,
    /// Point upload `Location`s at this host instead of the proxy's own.
    locations_to: Option<String>,
    /// With the referrers API on: each manifest PUT with a `subject`, by repository and
    /// subject digest, as the referrers index lists it.
    referrers: Option<std::collections::BTreeMap<(String, String), Vec<serde_json::Value>>>,
    port: u16,
}

/// The proxy; it stops accepting when dropped (its threads end with their connections).
#[derive(Debug)]
pub struct Proxy {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl Proxy {
    /// Starts a proxy to `127.0.0.1:<upstream_port>`.
    pub fn start(upstream_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state = Arc::new(Mutex::new(State {
            port,
            ..State::default()
        }));
        let shared = state.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(client) = stream else { break };
                if Arc::strong_count(&shared) == 1 {
                    break;
                }
                let state = shared.clone();
                thread::spawn(move || {
                    let _ = exchange(client, upstream_port, &state);
                });
            }
        });
        Proxy { port, state }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Adds a fault rule.
    pub fn add(&self, rule: Rule) {
        self.state.lock().expect("proxy state").rules.push(rule);
    }

    /// Everything seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().expect("proxy state").seen.clone()
    }

    /// Makes the proxy ask for credentials (`401 Basic`) when a request carries none, like
    /// a registry in htpasswd mode; what it forwards it forwards without them.
    pub fn require_credentials(&self) {
        self.state.lock().expect("proxy state").require_credentials = true;
    }

    /// Rewrites the `Location` of every answer to point at `host` instead of this proxy:
    /// a registry that sends uploads to storage on another origin.
    pub fn send_locations_to(&self, host: &str) {
        self.state.lock().expect("proxy state").locations_to = Some(host.to_owned());
    }

    /// Gives the registry behind the proxy the OCI 1.1 referrers API, as distribution 3
    /// has it (Debian's 2.8 answers 404): every manifest PUT through the proxy with a
    /// `subject` is listed by `GET /v2/<name>/referrers/<subject digest>` once the
    /// registry stored it; any other digest has an empty list.
    pub fn serve_referrers(&self) {
        self.state.lock().expect("proxy state").referrers = Some(Default::default());
    }

    /// Forgets what was seen.
    pub fn clear(&self) {
        self.state.lock().expect("proxy state").seen.clear();
    }

    /// Forgets every rule not used up yet: the registry behaves again.
    pub fn clear_rules(&self) {
        self.state.lock().expect("proxy state").rules.clear();
    }

    /// Rules whose faults were not all used.
    pub fn unused_rules(&self) -> Vec<Rule> {
        self.state
            .lock()
            .expect("proxy state")
            .rules
            .iter()
            .filter(|r| r.times > 0)
            .cloned()
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Wake the accept loop so it notices it is alone and ends.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

struct Head {
    first_line: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn read(reader: &mut impl BufRead) -> std::io::Result<Option<Head>> {
        let mut first_line = String::new();
        if reader.read_line(&mut first_line)? == 0 {
            return Ok(None);
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        Ok(Some(Head {
            first_line: first_line.trim_end().to_owned(),
            headers,
        }))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn content_length(&self) -> Option<u64> {
        self.header("content-length").and_then(|v| v.parse().ok())
    }

    /// The head as bytes, with `Connection: close`.
    fn encode(&self) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.first_line);
        for (name, value) in &self.headers {
            if !name.eq_ignore_ascii_case("connection") && !name.eq_ignore_ascii_case("keep-alive")
            {
                out.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        out.push_str("Connection: close\r\n\r\n");
        out.into_bytes()
    }
}

/// Lists a stored manifest under its subject, with what the referrers API shows of it.
fn index_referrer(state: &Mutex<State>, path: &str, bytes: &[u8]) {
    let Ok(manifest) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return;
    };
    let (Some(subject), Some(name)) = (
        manifest.pointer("/subject/digest").and_then(|d| d.as_str()),
        path.strip_prefix("/v2/")
            .and_then(|rest| rest.split_once("/manifests/"))
            .map(|(name, _)| name),
    ) else {
        return;
    };
    let digest = crate::image::sha256(bytes);
    let mut descriptor = serde_json::json!({
        "mediaType": manifest["mediaType"],
        "digest": digest,
        "size": bytes.len(),
        "artifactType": manifest
            .get("artifactType")
            .unwrap_or(&manifest["config"]["mediaType"]),
    });
    if let Some(annotations) = manifest.get("annotations") {
        descriptor["annotations"] = annotations.clone();
    }
    let mut state = state.lock().expect("proxy state");
    let Some(referrers) = state.referrers.as_mut() else {
        return;
    };
    let listed = referrers
        .entry((name.to_owned(), subject.to_owned()))
        .or_default();
    if !listed.iter().any(|d| d["digest"] == digest.as_str()) {
        listed.push(descriptor);
    }
}

fn take_fault(state: &Mutex<State>, method: &str, path: &str) -> Option<Fault> {
    let mut state = state.lock().expect("proxy state");
    let rule = state
        .rules
        .iter_mut()
        .find(|r| r.times > 0 && r.method == method && path.contains(r.path_contains))?;
    rule.times -= 1;
    Some(rule.fault.clone())
}

fn exchange(client: TcpStream, upstream_port: u16, state: &Mutex<State>) -> std::io::Result<()> {
    let mut from_client = BufReader::new(client.try_clone()?);
    let mut to_client = client;
    let Some(request) = Head::read(&mut from_client)? else {
        return Ok(());
    };
    let mut parts = request.first_line.split(' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let body_len = request.content_length().unwrap_or(0);
    let authorization = request.header("authorization").map(str::to_owned);
    let (require_credentials, locations_to, own_port) = {
        let state = state.lock().expect("proxy state");
        (
            state.require_credentials,
            state.locations_to.clone(),
            state.port,
        )
    };
    let fault = if require_credentials && authorization.is_none() {
        Some(Fault::Challenge(r#"Basic realm="proxy""#.to_owned()))
    } else {
        take_fault(state, &method, &path)
    };
    let record = |status: u16, body_bytes: u64| {
        state.lock().expect("proxy state").seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            body_bytes,
            status,
            authorization: authorization.clone(),
        });
    };

    let canned = match &fault {
        Some(Fault::TooManyRequests { retry_after }) => Some((
            429,
            format!("Retry-After: {retry_after}\r\n"),
            r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#.to_owned(),
        )),
        Some(Fault::GhcrTooManyRequests) => Some((
            429,
            String::new(),
            r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"retry-after: 10.5ms, allowed: 2000/minute"}]}"#.to_owned(),
        )),
        Some(Fault::Unavailable) => Some((503, String::new(), "upstream busy".to_owned())),
        Some(Fault::Redirect { host, query }) => Some((
            307,
            format!("Location: http://{host}{path}{query}\r\n"),
            String::new(),
        )),
        Some(Fault::Challenge(challenge)) => Some((
            401,
            format!("WWW-Authenticate: {challenge}\r\n"),
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#
                .to_owned(),
        )),
        _ => None,
    };
    if let Some((status, extra, body)) = canned {
        // Drain the request body first so the client sees the answer, not a reset.
        std::io::copy(&mut (&mut from_client).take(body_len), &mut std::io::sink())?;
        record(status, body_len);
        let answer = format!(
            "HTTP/1.1 {status} Fault\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        to_client.write_all(answer.as_bytes())?;
        return Ok(());
    }

    if let Some(Fault::Huge {
        status,
        bytes,
        declared,
    }) = &fault
    {
        std::io::copy(&mut (&mut from_client).take(body_len), &mut std::io::sink())?;
        record(*status, body_len);
        let length = if *declared {
            format!("Content-Length: {bytes}\r\n")
        } else {
            String::new()
        };
        write!(
            to_client,
            "HTTP/1.1 {status} Huge\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n{length}Connection: close\r\n\r\n{{"
        )?;
        let block = vec![b' '; 64 << 10];
        let mut left = bytes.saturating_sub(1);
        while left > 0 {
            let n = left.min(block.len());
            to_client.write_all(&block[..n])?;
            left -= n;
        }
        return Ok(());
    }
    if let Some(Fault::Delay(wait)) = &fault {
        thread::sleep(*wait);
    }
    let serving_referrers = state.lock().expect("proxy state").referrers.is_some();
    if serving_referrers
        && method == "GET"
        && let Some((name, digest)) = path
            .strip_prefix("/v2/")
            .and_then(|rest| rest.split_once("/referrers/"))
    {
        let digest = digest.split('?').next().unwrap_or_default().to_owned();
        let listed = state
            .lock()
            .expect("proxy state")
            .referrers
            .as_ref()
            .and_then(|r| r.get(&(name.to_owned(), digest)).cloned())
            .unwrap_or_default();
        let body = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": listed,
        })
        .to_string();
        record(200, 0);
        write!(
            to_client,
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.index.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        return Ok(());
    }
    let upstream = TcpStream::connect(("127.0.0.1", upstream_port))?;
    let mut to_upstream = upstream.try_clone()?;
    to_upstream.write_all(&request.encode())?;
    // A manifest PUT is held whole, to index its subject once the registry took it.
    let manifest_put = serving_referrers && method == "PUT" && path.contains("/manifests/");
    let mut held = Vec::new();
    let sent = if manifest_put {
        (&mut from_client).take(body_len).read_to_end(&mut held)?;
        to_upstream.write_all(&held)?;
        held.len() as u64
    } else {
        std::io::copy(&mut (&mut from_client).take(body_len), &mut to_upstream)?
    };
    let mut from_upstream = BufReader::new(upstream);
    let Some(mut response) = Head::read(&mut from_upstream)? else {
        return Ok(());
    };
    if let Some(to) = &locations_to {
        let own = format!("127.0.0.1:{own_port}");
        for (name, value) in &mut response.headers {
            if name.eq_ignore_ascii_case("location") {
                *value = value.replace(&own, to);
            }
        }
    }
    let status: u16 = response
        .first_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    record(status, sent);
    if manifest_put && status == 201 {
        index_referrer(state, &path, &held);
    }
    let upstream_len = response.content_length();
    if let Some(Fault::Append(extra)) = &fault {
        for (name, value) in &mut response.headers {
            if name.eq_ignore_ascii_case("content-length")
                && let Ok(len) = value.parse::<usize>()
            {
                *value = (len + extra).to_string();
            }
        }
    }
    to_client.write_all(&response.encode())?;
    let has_body = method != "HEAD" && status != 204 && status != 304;
    if !has_body {
        return Ok(());
    }
    let mut body = Vec::new();
    match upstream_len {
        Some(len) => (&mut from_upstream).take(len).read_to_end(&mut body)?,
        None => from_upstream.read_to_end(&mut body)?,
    };
    match fault {
        Some(Fault::CutAfter(n)) => {
            to_client.write_all(&body[..n.min(body.len())])?;
            to_client.flush()?;
            to_client.shutdown(Shutdown::Both)?;
        }
        Some(Fault::Append(extra)) => {
            to_client.write_all(&body)?;
            to_client.write_all(&vec![b'x'; extra])?;
        }
        Some(Fault::Corrupt) if !body.is_empty() => {
            let middle = body.len() / 2;
            body[middle] ^= 0xff;
            to_client.write_all(&body)?;
        }
        _ => to_client.write_all(&body)?,
    }
    Ok(())
}
