//! The client: one per process, shared by every task. It knows each registry's settings and
//! auth challenge, holds the token cache and the per-registry transfer limits, and sends
//! every request through one path that signs it in, retries what is retryable and maps
//! refusals to [`Error`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hoist_domain::metrics::RetryCounts;
use hoist_domain::{Backoff, ImageRef};
use reqwest::header::{HeaderMap, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::auth::{Challenge, Credentials, Scope, Token, TokenCache, parse_challenge};

use crate::retry::{jitter, parse_retry_after_header, parse_retry_after_text};
use crate::{Error, Result};

/// The whole-request deadline of everything but blob transfers (manifests, HEADs, upload
/// sessions, tokens), besides the 120 s read timeout: a peer that trickles bytes is cut.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(120);

/// The most of a token answer or an error body hoist reads.
pub const SMALL_BODY_LIMIT: usize = 64 << 10;

/// The longest any blob transfer may take, however large its descriptor says it is: a
/// peer cannot hold a transfer slot for longer by declaring a huge blob and trickling it.
pub const BLOB_DEADLINE_MAX: Duration = Duration::from_secs(2 * 3600);

/// A blob transfer's deadline: ten minutes, and one more second per 512 KiB, at most
/// [`BLOB_DEADLINE_MAX`].
pub fn blob_deadline(size: u64) -> Duration {
    Duration::from_secs(600 + size / (512 << 10)).min(BLOB_DEADLINE_MAX)
}

/// How to reach and use one registry host.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// `host[:port]` as image references name it.
    pub host: String,
    pub credentials: Credentials,
    /// Plain http instead of https.
    pub insecure: bool,
    /// Blob transfers to or from this registry at once.
    pub concurrency: usize,
    /// Upload blobs in PATCH chunks of this many bytes; `None` = one streaming PUT.
    pub chunk_size: Option<u64>,
    /// Token services (`host[:port]`) off the registry's origin that may receive its
    /// credentials.
    pub token_hosts: Vec<String>,
}

impl RegistrySettings {
    /// Anonymous https with the defaults: 4 transfers at once, streaming PUT uploads.
    pub fn new(host: &str) -> RegistrySettings {
        RegistrySettings {
            host: host.to_owned(),
            credentials: Credentials::Anonymous,
            insecure: false,
            concurrency: 4,
            chunk_size: None,
            token_hosts: hoist_domain::config::default_token_hosts(host),
        }
    }
}

impl From<&hoist_domain::config::Registry> for RegistrySettings {
    fn from(registry: &hoist_domain::config::Registry) -> Self {
        RegistrySettings {
            host: registry.host.clone(),
            credentials: (&registry.credentials).into(),
            insecure: registry.insecure,
            concurrency: usize::try_from(registry.concurrency.max(1)).unwrap_or(4),
            chunk_size: registry.chunk_size,
            token_hosts: registry.token_hosts.clone(),
        }
    }
}

/// A repository in a registry: the unit blobs, manifests and token scopes belong to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repository {
    pub host: String,
    pub path: String,
}

impl Repository {
    pub fn of(image: &ImageRef) -> Repository {
        Repository {
            host: image.registry().to_owned(),
            path: image.repository().to_owned(),
        }
    }
}

impl std::fmt::Display for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.host, self.path)
    }
}

/// The state kept per registry host.
#[derive(Debug)]
pub(crate) struct Host {
    pub settings: RegistrySettings,
    pub base_url: String,
    /// `base_url` parsed: its origin is the only one credentials are sent to.
    base: Option<Url>,
    challenge: Mutex<Option<Challenge>>,
    pub transfers: Arc<Semaphore>,
}

impl Host {
    /// Whether `url` is on this registry's origin (scheme, host and port).
    fn owns(&self, url: &Url) -> bool {
        self.base
            .as_ref()
            .is_some_and(|base| base.origin() == url.origin())
    }

    fn challenge(&self) -> Option<Challenge> {
        self.challenge
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The OCI distribution client. Cheap to clone; clones share tokens and limits.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    settings: Vec<RegistrySettings>,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    tokens: TokenCache,
    backoff: Backoff,
    retries: Arc<RetryCounts>,
}

/// What is sent when a request is made: the signed-in request and the token it carried.
struct Signed {
    request: RequestBuilder,
    token: Option<SecretString>,
}

impl Client {
    /// A client for the given registries; a host not listed is used anonymously over https
    /// with the default limits.
    pub fn new(settings: Vec<RegistrySettings>, backoff: Backoff) -> Result<Client> {
        Self::counting_retries(settings, backoff, Arc::default())
    }

    /// As [`Client::new`], recording every retry (by status, or `connection`) in `retries`.
    pub fn counting_retries(
        settings: Vec<RegistrySettings>,
        backoff: Backoff,
        retries: Arc<RetryCounts>,
    ) -> Result<Client> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("hoist/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(120))
            .pool_idle_timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::custom(follow_redirect))
            .build()
            .map_err(|source| Error::transport("building the HTTP client".to_owned(), source))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                settings,
                hosts: Mutex::default(),
                tokens: TokenCache::default(),
                backoff,
                retries,
            }),
        })
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(crate) fn host(&self, name: &str) -> Arc<Host> {
        let mut hosts = self
            .inner
            .hosts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        hosts
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| {
                let settings = self
                    .inner
                    .settings
                    .iter()
                    .find(|s| s.host.eq_ignore_ascii_case(name))
                    .cloned()
                    .unwrap_or_else(|| RegistrySettings::new(name));
                let scheme = if settings.insecure { "http" } else { "https" };
                let base_url = format!("{scheme}://{}", settings.host);
                Arc::new(Host {
                    base: Url::parse(&base_url).ok(),
                    base_url,
                    transfers: Arc::new(Semaphore::new(settings.concurrency.max(1))),
                    settings,
                    challenge: Mutex::default(),
                })
            })
            .clone()
    }

    /// `base/v2/<repository>/<rest>`.
    pub(crate) fn url(&self, repository: &Repository, rest: &str) -> String {
        format!(
            "{}/v2/{}/{rest}",
            self.host(&repository.host).base_url,
            repository.path
        )
    }

    /// Signs a request in the way the host last asked for.
    async fn sign(
        &self,
        host: &Host,
        scope: &Scope,
        request: RequestBuilder,
        refused: Option<&SecretString>,
    ) -> Result<Signed> {
        let (http, built) = request.build_split();
        let mut built = built.map_err(|source| Error::transport("building a request", source))?;
        if built.timeout().is_none() {
            *built.timeout_mut() = Some(REQUEST_DEADLINE);
        }
        if !host.owns(built.url()) {
            let name = &host.settings.host;
            if !host.settings.insecure && built.url().scheme() != "https" {
                return Err(Error::Protocol {
                    host: name.clone(),
                    message: format!(
                        "refused to send to plain-http {}: {name} is an https registry",
                        shown_origin(built.url())
                    ),
                });
            }
            // An upload Location on another origin (storage behind the registry): it gets
            // the request, never the registry's credential.
            tracing::debug!(registry = %name, to = %shown_origin(built.url()), "sending without credentials to another origin");
            return Ok(Signed {
                request: RequestBuilder::from_parts(http, built),
                token: None,
            });
        }
        let request = RequestBuilder::from_parts(http, built);
        match host.challenge() {
            None => Ok(Signed {
                request,
                token: None,
            }),
            Some(Challenge::Basic) => Ok(Signed {
                request: host.settings.credentials.apply_basic(request),
                token: None,
            }),
            Some(Challenge::Bearer { realm, service }) => {
                let token = self
                    .inner
                    .tokens
                    .token(
                        &host.settings.host,
                        &host.settings.credentials,
                        scope,
                        refused,
                        || self.fetch_token(host, &realm, service.as_deref(), scope),
                    )
                    .await?;
                Ok(Signed {
                    request: request.bearer_auth(token.expose_secret()),
                    token: Some(token),
                })
            }
        }
    }

    async fn fetch_token(
        &self,
        host: &Host,
        realm: &str,
        service: Option<&str>,
        scope: &Scope,
    ) -> Result<Token> {
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(service) = service {
            query.push(("service", service));
        }
        for item in scope.items() {
            query.push(("scope", item));
        }
        let name = &host.settings.host;
        check_realm(host, realm)?;
        tracing::debug!(registry = %name, scope = ?scope.items(), "fetching a registry token");
        let response = self
            .with_retries(&format!("token for {name}"), || {
                let request = self
                    .inner
                    .http
                    .get(realm)
                    .query(&query)
                    .timeout(REQUEST_DEADLINE);
                host.settings.credentials.apply_basic(request).send()
            })
            .await?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let what = match host.settings.credentials {
                Credentials::Anonymous => "anonymous access refused; give credentials",
                Credentials::Basic { .. } => "the token service refused the username/password",
            };
            return Err(Error::Auth {
                host: name.clone(),
                message: format!("{what} ({status})"),
            });
        }
        let response = expect(response, "GET", &[StatusCode::OK]).await?;
        #[derive(serde::Deserialize)]
        struct Answer {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let body = read_capped(response, SMALL_BODY_LIMIT)
            .await
            .map_err(|source| Error::transport(format!("reading the token for {name}"), source))?
            .ok_or_else(|| Error::Protocol {
                host: name.clone(),
                message: format!("token answer larger than {SMALL_BODY_LIMIT} bytes"),
            })?;
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| Error::Protocol {
            host: name.clone(),
            message: format!("unreadable token answer: {e}"),
        })?;
        let value = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Protocol {
                host: name.clone(),
                message: "token answer without a token".to_owned(),
            })?;
        Ok(Token::new(value, answer.expires_in, Instant::now()))
    }

    /// Retries a request that carries no auth (token fetches) on retryable failures.
    async fn with_retries<F, Fut>(&self, what: &str, send: F) -> Result<Response>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = reqwest::Result<Response>>,
    {
        let mut failed = 0;
        loop {
            let outcome = match send().await {
                Ok(response) if is_retryable_status(response.status()) => {
                    Err(status_error(response, "GET").await)
                }
                Ok(response) => return Ok(response),
                Err(source) => Err(Error::transport(what.to_owned(), source)),
            };
            failed += 1;
            self.pause_or_fail(outcome, failed).await?;
        }
    }

    /// Sleeps before the next attempt, or gives back the error when it is final.
    pub(crate) async fn pause_or_fail(&self, outcome: Result<Response>, failed: u32) -> Result<()> {
        let error = match outcome {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        if !error.is_retryable() {
            return Err(error);
        }
        match self
            .inner
            .backoff
            .delay(failed, jitter(), error.retry_after())
        {
            Some(delay) => {
                let reason = error
                    .status()
                    .map_or_else(|| "connection".to_owned(), |s| s.to_string());
                self.inner.retries.record(&reason);
                tracing::info!(error = %error, attempt = failed, ?delay, "retrying");
                tokio::time::sleep(delay).await;
                Ok(())
            }
            None => Err(error),
        }
    }

    /// Sends a request that can be rebuilt (no streaming body): signs it in, answers
    /// challenges, retries retryable failures with backoff. Returns the first response that
    /// is neither a challenge nor retryable; the caller judges its status.
    pub(crate) async fn send<F>(
        &self,
        repository: &Repository,
        scope: &Scope,
        method: &str,
        build: F,
    ) -> Result<Response>
    where
        F: Fn(&reqwest::Client) -> RequestBuilder,
    {
        let host = self.host(&repository.host);
        let mut failed = 0;
        let mut challenges = 0;
        let mut refused: Option<SecretString> = None;
        loop {
            let Signed { request, token } = self
                .sign(&host, scope, build(&self.inner.http), refused.as_ref())
                .await?;
            let outcome = match request.send().await {
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
                    challenges += 1;
                    refused = self.answer_challenge(&host, &response, token, challenges)?;
                    continue;
                }
                Ok(response) if is_retryable_status(response.status()) => {
                    Err(status_error(response, method).await)
                }
                Ok(response) => return Ok(response),
                Err(source) => Err(Error::transport(format!("{method} {repository}"), source)),
            };
            failed += 1;
            self.pause_or_fail(outcome, failed).await?;
        }
    }

    /// Sends a request whose body cannot be replayed (a streamed upload) once, signed in.
    /// A 401 here (a token expiring mid-upload) is a retryable error: the caller starts a
    /// new upload session, which fetches a fresh token.
    pub(crate) async fn send_once(
        &self,
        repository: &Repository,
        scope: &Scope,
        method: &str,
        request: RequestBuilder,
    ) -> Result<Response> {
        let host = self.host(&repository.host);
        let signed = self.sign(&host, scope, request, None).await?;
        let token = signed.token.clone();
        let response = signed
            .request
            .send()
            .await
            .map_err(|source| Error::transport(format!("{method} {repository}"), source))?;
        if response.status() == StatusCode::UNAUTHORIZED && !host.owns(response.url()) {
            return Err(foreign_refusal(&host.settings.host, response.url()));
        }
        if response.status() == StatusCode::UNAUTHORIZED {
            // Forget the token so the next session fetches another one.
            if let Some(token) = token {
                let _ = self
                    .inner
                    .tokens
                    .token(
                        &host.settings.host,
                        &host.settings.credentials,
                        scope,
                        Some(&token),
                        || async {
                            Err(Error::TokenExpired {
                                host: host.settings.host.clone(),
                            })
                        },
                    )
                    .await;
            }
            return Err(Error::TokenExpired {
                host: host.settings.host.clone(),
            });
        }
        Ok(response)
    }

    /// Learns the challenge from a 401. Returns the token to treat as refused, or the
    /// final authentication error when signing in again cannot help.
    fn answer_challenge(
        &self,
        host: &Host,
        response: &Response,
        token: Option<SecretString>,
        challenges: u32,
    ) -> Result<Option<SecretString>> {
        let name = &host.settings.host;
        if !host.owns(response.url()) {
            return Err(foreign_refusal(name, response.url()));
        }
        let header = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let challenge = parse_challenge(header).ok_or_else(|| Error::Auth {
            host: name.clone(),
            message: format!("401 with an unusable WWW-Authenticate {header:?}"),
        })?;
        let anonymous = matches!(host.settings.credentials, Credentials::Anonymous);
        let known = host.challenge();
        let first_time = known.as_ref() != Some(&challenge);
        *host
            .challenge
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(challenge.clone());
        match challenge {
            Challenge::Basic if anonymous => Err(Error::Auth {
                host: name.clone(),
                message: "the registry asks for a username and password; none were given"
                    .to_owned(),
            }),
            Challenge::Basic if first_time && challenges <= 2 => Ok(None),
            Challenge::Basic => Err(Error::Auth {
                host: name.clone(),
                message: "the registry refused the username/password (401)".to_owned(),
            }),
            // A fresh token was refused, or a second refresh did not help: the credentials
            // do not grant this access.
            Challenge::Bearer { .. } if challenges <= 2 => Ok(token),
            Challenge::Bearer { .. } => Err(Error::Auth {
                host: name.clone(),
                message: "the registry refused the token it issued: the credentials lack \
                          access to this repository"
                    .to_owned(),
            }),
        }
    }
}

/// A 401 from another origin (a redirect target, an upload Location): it never got a
/// credential, and its challenge must not redefine the registry's.
fn foreign_refusal(name: &str, url: &Url) -> Error {
    Error::Auth {
        host: name.to_owned(),
        message: format!(
            "{} answered 401 to a request {name} sent there; hoist sends {name}'s credentials \
             only to {name} itself and ignores that challenge",
            shown_origin(url)
        ),
    }
}

/// Where a token realm may be, and whether it may have the registry's credentials: https
/// (plain http only for an `insecure` registry), and for a username/password the
/// registry's own origin or a host in `token_hosts`.
fn check_realm(host: &Host, realm: &str) -> Result<()> {
    let name = &host.settings.host;
    let refuse = |message: String| {
        Err(Error::Auth {
            host: name.clone(),
            message,
        })
    };
    let Ok(url) = Url::parse(realm) else {
        return refuse("the token realm in its challenge is not a URL".to_owned());
    };
    let scheme_ok = match url.scheme() {
        "https" => true,
        "http" => host.settings.insecure,
        _ => false,
    };
    if !scheme_ok {
        return refuse(format!(
            "the token realm {} is not https; only a registry marked `insecure` may name a \
             plain-http token service",
            shown_origin(&url)
        ));
    }
    let sends_credentials = matches!(host.settings.credentials, Credentials::Basic { .. });
    if sends_credentials
        && !host.owns(&url)
        && !token_host_allowed(&host.settings.token_hosts, &url)
    {
        let realm_host = host_and_port(&url);
        return refuse(format!(
            "the token realm is on {realm_host}, not {name}: hoist sends {name}'s credentials \
             only to {name} itself or to a host in `token_hosts` of its [[registry]] entry \
             (add \"{realm_host}\" there, or pass `hoist copy --token-host \
             {name}={realm_host}`, to allow it)"
        ));
    }
    Ok(())
}

/// `host` matches on the scheme's default port, `host:port` on that port.
fn token_host_allowed(allowed: &[String], url: &Url) -> bool {
    let Some(realm_host) = url.host_str() else {
        return false;
    };
    allowed.iter().any(|entry| {
        let (entry_host, entry_port) = match entry.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().ok()),
            None => (entry.as_str(), None),
        };
        entry_host.eq_ignore_ascii_case(realm_host)
            && match entry_port {
                Some(port) => url.port_or_known_default() == Some(port),
                None => url.port().is_none(),
            }
    })
}

fn host_and_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// `scheme://host[:port]`: where a URL points, without its path or query.
pub(crate) fn shown_origin(url: &Url) -> String {
    format!("{}://{}", url.scheme(), host_and_port(url))
}

/// Follows up to ten redirects, never from https down to plain http. reqwest drops the
/// Authorization header itself when a redirect leaves the host and port.
fn follow_redirect(attempt: reqwest::redirect::Attempt<'_>) -> reqwest::redirect::Action {
    let downgrade = attempt.url().scheme() == "http"
        && attempt.previous().iter().any(|u| u.scheme() == "https");
    if downgrade {
        let to = shown_origin(attempt.url());
        attempt.error(format!("refused a redirect from https to plain-http {to}"))
    } else if attempt.previous().len() > 10 {
        attempt.error("more than 10 redirects")
    } else {
        attempt.follow()
    }
}

pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// Turns a response into an error carrying the registry's error code and message and any
/// wait it asked for.
pub(crate) async fn status_error(response: Response, method: &str) -> Error {
    let status = response.status().as_u16();
    let url = redact_query(response.url());
    let header_hint = retry_after_header(response.headers());
    let body = read_truncated(response, SMALL_BODY_LIMIT).await;
    let text_hint = parse_retry_after_text(&body);
    let (code, message) = registry_error(&body);
    Error::Status {
        method: method.to_owned(),
        url,
        status,
        code,
        message,
        retry_after: header_hint.or(text_hint),
    }
}

/// The response itself when its status is one of `ok`, else the error it describes.
pub(crate) async fn expect(
    response: Response,
    method: &str,
    ok: &[StatusCode],
) -> Result<Response> {
    if ok.contains(&response.status()) {
        Ok(response)
    } else {
        Err(status_error(response, method).await)
    }
}

/// The body if it is at most `limit` bytes, `None` (and nothing more read) if longer.
pub async fn read_capped(
    mut response: Response,
    limit: usize,
) -> reqwest::Result<Option<bytes::Bytes>> {
    let declared = response.content_length().unwrap_or(0);
    if declared > limit as u64 {
        return Ok(None);
    }
    let mut body = bytes::BytesMut::with_capacity(usize::try_from(declared).unwrap_or(0));
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

/// At most the first `limit` bytes of an error body, as text; a body that fails to arrive
/// is empty.
async fn read_truncated(mut response: Response, limit: usize) -> String {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

fn retry_after_header(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after_header)
}

/// Upload URLs carry session state (`_state=` in distribution); keep logs short and clean.
fn redact_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

/// `{"errors":[{"code":"...","message":"..."}]}` -> (code, message); other bodies are
/// kept as text, cut short.
fn registry_error(body: &str) -> (Option<String>, String) {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        code: Option<String>,
        message: Option<String>,
    }
    if let Ok(parsed) = serde_json::from_str::<Errors>(body)
        && let Some(first) = parsed.errors.into_iter().next()
    {
        return (first.code, first.message.unwrap_or_default());
    }
    let text: String = body.trim().chars().take(300).collect();
    (None, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(settings: RegistrySettings) -> Client {
        Client::new(vec![settings], Backoff::default()).expect("a client")
    }

    fn with_password(host: &str) -> RegistrySettings {
        RegistrySettings {
            credentials: Credentials::from_user_pass("bot:pw").expect("credentials"),
            ..RegistrySettings::new(host)
        }
    }

    fn realm_error(client: &Client, host: &str, realm: &str) -> Option<String> {
        check_realm(&client.host(host), realm)
            .err()
            .map(|e| e.to_string())
    }

    #[test]
    fn a_password_goes_only_to_a_realm_on_the_origin_or_in_token_hosts() {
        let ghcr = client(with_password("ghcr.io"));
        assert_eq!(realm_error(&ghcr, "ghcr.io", "https://ghcr.io/token"), None);
        assert_eq!(
            realm_error(&ghcr, "ghcr.io", "https://GHCR.io:443/token?x=1"),
            None
        );
        let foreign =
            realm_error(&ghcr, "ghcr.io", "https://evil.example/token?secret=1").expect("refused");
        assert!(
            foreign.contains("the token realm is on evil.example, not ghcr.io")
                && foreign.contains("token_hosts")
                && !foreign.contains("secret=1"),
            "{foreign}"
        );
        let other_port = realm_error(&ghcr, "ghcr.io", "https://ghcr.io:8443/token");
        assert!(other_port.is_some_and(|e| e.contains("ghcr.io:8443")));

        let listed = client(RegistrySettings {
            token_hosts: vec!["auth.example".into(), "tokens.example:8443".into()],
            ..with_password("registry.example")
        });
        for (realm, allowed) in [
            ("https://auth.example/token", true),
            ("https://auth.example:8443/token", false),
            ("https://tokens.example:8443/t", true),
            ("https://tokens.example/t", false),
            ("https://sub.auth.example/token", false),
        ] {
            assert_eq!(
                realm_error(&listed, "registry.example", realm).is_none(),
                allowed,
                "{realm}"
            );
        }
    }

    #[test]
    fn docker_hub_sends_credentials_to_its_own_token_service() {
        let hub = client(with_password("docker.io"));
        assert_eq!(
            realm_error(&hub, "docker.io", "https://auth.docker.io/token"),
            None
        );
        let unlisted = client(with_password("index.docker.io"));
        assert!(
            realm_error(&unlisted, "index.docker.io", "https://auth.docker.io/token").is_none()
        );
        let other = client(with_password("quay.io"));
        assert!(realm_error(&other, "quay.io", "https://auth.docker.io/token").is_some());
    }

    #[test]
    fn realms_are_https_unless_the_registry_is_insecure() {
        let secure = client(with_password("r.example"));
        let plain = realm_error(&secure, "r.example", "http://r.example/token").expect("refused");
        assert!(
            plain.contains("not https") && plain.contains("insecure"),
            "{plain}"
        );
        assert!(realm_error(&secure, "r.example", "ftp://r.example/token").is_some());
        assert!(realm_error(&secure, "r.example", "not a url").is_some());
        let local = client(RegistrySettings {
            insecure: true,
            ..with_password("127.0.0.1:5000")
        });
        assert_eq!(
            realm_error(&local, "127.0.0.1:5000", "http://127.0.0.1:5000/token"),
            None
        );
        // Anonymous: nothing to leak, so a realm elsewhere is fine, but still https.
        let anonymous = client(RegistrySettings::new("public.example"));
        assert_eq!(
            realm_error(&anonymous, "public.example", "https://auth.elsewhere/token"),
            None
        );
        assert!(realm_error(&anonymous, "public.example", "http://auth.elsewhere/t").is_some());
    }

    #[tokio::test]
    async fn a_request_to_another_origin_is_sent_unsigned_and_plain_http_is_refused() {
        let client = client(with_password("r.example"));
        let host = client.host("r.example");
        *host.challenge.lock().unwrap() = Some(Challenge::Basic);
        let scope = Scope::pull("a/b");
        let sign = |request: RequestBuilder| async {
            client
                .sign(&host, &scope, request, None)
                .await
                .map(|signed| signed.request.build().expect("a request"))
        };
        let get = |url: &str| client.http().get(url);
        let signed = sign(get("https://r.example/v2/a/b/blobs/x")).await.unwrap();
        assert!(signed.headers().contains_key("authorization"));
        assert_eq!(
            signed.timeout(),
            Some(&REQUEST_DEADLINE),
            "a whole-request deadline"
        );
        let blob = sign(get("https://r.example/v2/a/b/blobs/x").timeout(blob_deadline(1 << 30)))
            .await
            .unwrap();
        assert_eq!(blob.timeout(), Some(&Duration::from_secs(600 + 2048)));
        // A blob that says it is a terabyte gets no more than the cap.
        assert_eq!(blob_deadline(1 << 40), BLOB_DEADLINE_MAX);
        let storage = sign(get("https://storage.example/upload?sig=1"))
            .await
            .unwrap();
        assert!(!storage.headers().contains_key("authorization"));
        let downgrade = sign(get("http://r.example/v2/a/b/blobs/uploads/1"))
            .await
            .expect_err("refused")
            .to_string();
        assert!(
            downgrade.contains("plain-http http://r.example"),
            "{downgrade}"
        );
    }
}
