//! Registry authentication: `WWW-Authenticate` challenges, Basic credentials, and the Bearer
//! token flow with one token fetch per (registry, credential, scope) at a time.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

/// How the client signs in to one registry.
#[derive(Clone, Default)]
pub enum Credentials {
    #[default]
    Anonymous,
    Basic {
        username: String,
        password: SecretString,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"[redacted]")
                .finish(),
        }
    }
}

impl From<&hoist_domain::config::Credentials> for Credentials {
    fn from(credentials: &hoist_domain::config::Credentials) -> Self {
        match credentials {
            hoist_domain::config::Credentials::Anonymous => Credentials::Anonymous,
            hoist_domain::config::Credentials::Basic { username, password } => Credentials::Basic {
                username: username.clone(),
                password: password.clone(),
            },
        }
    }
}

impl Credentials {
    /// `USER:PASS` as `skopeo --creds` takes it.
    pub fn from_user_pass(text: &str) -> Option<Credentials> {
        let (username, password) = text.split_once(':')?;
        (!username.is_empty()).then(|| Credentials::Basic {
            username: username.to_owned(),
            password: SecretString::from(password.to_owned()),
        })
    }

    pub(crate) fn username(&self) -> &str {
        match self {
            Credentials::Anonymous => "",
            Credentials::Basic { username, .. } => username,
        }
    }

    /// Adds Basic authentication to a request, if there are credentials.
    pub(crate) fn apply_basic(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Credentials::Anonymous => request,
            Credentials::Basic { username, password } => {
                request.basic_auth(username, Some(password.expose_secret()))
            }
        }
    }
}

/// What a registry asked for in its `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parses `Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="..."` or
/// `Basic realm="..."`. Unknown schemes give `None`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(params);
    let realm = params.get("realm")?.clone();
    Some(Challenge::Bearer {
        realm,
        service: params.get("service").cloned(),
    })
}

/// `key="value", key=value` pairs; quoted values may hold commas and `\"` escapes.
fn parse_params(text: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return params;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        params.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
}

/// The access a request needs, as token scopes: `repository:octo/app:pull,push`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope(Vec<String>);

impl Scope {
    pub fn pull(repository: &str) -> Scope {
        Scope(vec![format!("repository:{repository}:pull")])
    }

    pub fn push(repository: &str) -> Scope {
        Scope(vec![format!("repository:{repository}:pull,push")])
    }

    /// A cross-repository mount: push on the target, pull on the source.
    pub fn mount(target: &str, source: &str) -> Scope {
        Scope(vec![
            format!("repository:{target}:pull,push"),
            format!("repository:{source}:pull"),
        ])
    }

    pub fn items(&self) -> &[String] {
        &self.0
    }
}

/// A bearer token and when to stop using it.
#[derive(Clone)]
pub(crate) struct Token {
    pub value: SecretString,
    pub fresh_until: Instant,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("value", &"[redacted]")
            .field("fresh_until", &self.fresh_until)
            .finish()
    }
}

impl Token {
    /// A token answer lives `expires_in` seconds (60 when not said); it is dropped a little
    /// early so it does not expire mid-request.
    pub fn new(value: String, expires_in: Option<u64>, now: Instant) -> Token {
        let lifetime = Duration::from_secs(expires_in.unwrap_or(60).max(10));
        Token {
            value: SecretString::from(value),
            fresh_until: now + lifetime.mul_f64(0.9),
        }
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Token>>>;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TokenKey {
    host: String,
    username: String,
    scope: Scope,
}

/// Tokens per (registry, credential, scope). Each key has its own async lock, held while a
/// token is fetched, so a hundred tasks asking at once cause one fetch, not a hundred.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    slots: Mutex<HashMap<TokenKey, Slot>>,
}

impl TokenCache {
    /// The cached token for the key, or the one `fetch` gets. `refused` is a token the
    /// registry just answered 401 to: if it is still the cached one it is replaced, but if
    /// another task already replaced it, that newer token is used without a fetch.
    pub async fn token<F, Fut>(
        &self,
        host: &str,
        credentials: &Credentials,
        scope: &Scope,
        refused: Option<&SecretString>,
        fetch: F,
    ) -> crate::Result<SecretString>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = crate::Result<Token>>,
    {
        let key = TokenKey {
            host: host.to_owned(),
            username: credentials.username().to_owned(),
            scope: scope.clone(),
        };
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default()
            .clone();
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref() {
            let was_refused =
                refused.is_some_and(|r| r.expose_secret() == token.value.expose_secret());
            if !was_refused && Instant::now() < token.fresh_until {
                return Ok(token.value.clone());
            }
        }
        let token = fetch().await?;
        let value = token.value.clone();
        *cached = Some(token);
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let ghcr = r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:octo/app:pull""#;
        assert_eq!(
            parse_challenge(ghcr),
            Some(Challenge::Bearer {
                realm: "https://ghcr.io/token".into(),
                service: Some("ghcr.io".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"bearer realm=http://127.0.0.1:1/t"#),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/t".into(),
                service: None
            })
        );
        let with_commas =
            r#"Bearer realm="https://r/t", scope="repository:a:pull,push", service="s\"x""#;
        assert_eq!(
            parse_challenge(with_commas),
            Some(Challenge::Bearer {
                realm: "https://r/t".into(),
                service: Some("s\"x".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]

        /// Whatever a registry sends in `WWW-Authenticate`, parsing ends without a panic,
        /// and a Bearer challenge it accepts keeps the realm it was given.
        #[test]
        fn challenges_never_panic(
            header in r#"(Bearer|Basic|bearer|Negotiate|)[ ,]{0,2}[a-z =",\\/:.é]{0,60}"#,
            realm in "[a-zA-Z0-9:/._-]{1,30}",
            junk in r"\PC{0,40}",
        ) {
            let _ = parse_challenge(&header);
            let _ = parse_challenge(&junk);
            let built = format!(r#"Bearer realm="{realm}",{junk}"#);
            if let Some(Challenge::Bearer { realm: parsed, .. }) = parse_challenge(&built) {
                proptest::prop_assert!(parsed == realm || junk.contains("realm"), "{built}");
            }
        }
    }

    #[test]
    fn debug_never_shows_a_password() {
        let credentials = Credentials::from_user_pass("bot:hunter2:with-colon").unwrap();
        let shown = format!("{credentials:?}");
        assert!(
            shown.contains("bot") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(Credentials::from_user_pass(":x").is_none());
        assert!(Credentials::from_user_pass("nopassword").is_none());
    }

    #[test]
    fn mount_scopes_ask_pull_on_source_and_push_on_target() {
        assert_eq!(
            Scope::mount("octo/app", "octo/base").items(),
            ["repository:octo/app:pull,push", "repository:octo/base:pull"]
        );
    }

    #[tokio::test]
    async fn concurrent_askers_share_one_fetch_and_a_refusal_refetches_once() {
        let cache = Arc::new(TokenCache::default());
        let fetches = Arc::new(AtomicUsize::new(0));
        let scope = Scope::pull("a/b");
        let ask = |refused: Option<SecretString>| {
            let (cache, fetches, scope) = (cache.clone(), fetches.clone(), scope.clone());
            async move {
                cache
                    .token(
                        "r",
                        &Credentials::Anonymous,
                        &scope,
                        refused.as_ref(),
                        || async {
                            let n = fetches.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok(Token::new(format!("t{n}"), Some(300), Instant::now()))
                        },
                    )
                    .await
                    .unwrap()
            }
        };
        let tokens = futures_util::future::join_all((0..50).map(|_| tokio::spawn(ask(None)))).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        let first = tokens[0].as_ref().unwrap().clone();
        assert!(
            tokens
                .iter()
                .all(|t| t.as_ref().unwrap().expose_secret() == "t0")
        );

        let refreshed =
            futures_util::future::join_all((0..10).map(|_| tokio::spawn(ask(Some(first.clone())))))
                .await;
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            2,
            "one refetch for ten refusals"
        );
        assert!(
            refreshed
                .iter()
                .all(|t| t.as_ref().unwrap().expose_secret() == "t1")
        );
    }
}
