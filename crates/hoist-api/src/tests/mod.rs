//! Tests through the real router with a real SQLite store in a temp folder.

mod builds;
mod health;
mod ledger;
mod openapi;
mod webhooks;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use hoist_domain::config::ConfigFile;
use hoist_store::{Store, StoreOptions};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::*;

pub const SECRET: &str = "test-webhook-secret";
pub const OLD_SECRET: &str = "previous-webhook-secret";
pub const CI_TOKEN: &str = "ci-token-for-codertocat";
pub const OTHER_CI_TOKEN: &str = "ci-token-for-someone-else";
pub const READ_TOKEN: &str = "operator-read-token-1";
pub const ADMIN_TOKEN: &str = "operator-admin-token-1";

const CONFIG: &str = r#"
[github]
webhook_secret_env = "SECRETS"

[[ci_token]]
name = "ci"
token_env = "CI"
repositories = ["codertocat/*"]

[[ci_token]]
name = "other"
token_env = "OTHER"
repositories = ["someone/*"]

[[api_token]]
name = "ops"
token_env = "READ"

[[api_token]]
name = "admin"
token_env = "ADMIN"
role = "admin"

[[registry]]
host = "ghcr.io"
anonymous = true

[[repository]]
github = "Codertocat/Hello-World"
image = "ghcr.io/codertocat/hello-world"
platforms = ["linux/amd64", "linux/arm64"]
sources = ["ghcr.io/codertocat/ci-*"]
"#;

pub struct TestApp {
    pub router: Router,
    pub shutdown: CancellationToken,
    pub store: Store,
    _dir: tempfile::TempDir,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

pub async fn app() -> TestApp {
    app_with("", &[]).await
}

/// The test app with `extra` appended to its config and `extra_env` among its secrets.
pub async fn app_with(extra: &str, extra_env: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreOptions {
        url: format!("sqlite://{}/hoist.db", dir.path().display()),
        read_connections: 2,
        busy_timeout: Duration::from_secs(1),
    })
    .await
    .unwrap();
    let env: HashMap<String, String> = [
        ("SECRETS", format!("{SECRET},{OLD_SECRET}")),
        ("CI", CI_TOKEN.to_owned()),
        ("OTHER", OTHER_CI_TOKEN.to_owned()),
        ("READ", READ_TOKEN.to_owned()),
        ("ADMIN", ADMIN_TOKEN.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .chain(
        extra_env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
    .collect();
    let config = ConfigFile::parse(&format!("{CONFIG}{extra}"), "test")
        .unwrap()
        .validate(&env)
        .unwrap();
    let shutdown = CancellationToken::new();
    let build = BuildInfo {
        version: "9.9.9".into(),
        git_sha: "abc1234".into(),
        built_at: "2026-01-01T00:00:00Z".into(),
    };
    let counters = Arc::new(PipelineCounters::default());
    let state = AppState::new(
        Arc::new(config),
        store.clone(),
        counters,
        build,
        shutdown.clone(),
    );
    let router = router(
        state,
        HttpOptions {
            request_timeout: Duration::from_secs(5),
        },
    );
    TestApp {
        router,
        shutdown,
        store,
        _dir: dir,
    }
}

impl TestApp {
    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        // Every answer is JSON but /metrics, which is Prometheus text.
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            let text = String::from_utf8(bytes.to_vec()).expect("a UTF-8 body");
            assert!(
                text.starts_with("# HELP"),
                "neither JSON nor metrics: {text}"
            );
            Value::String(text)
        });
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get_as(&self, path: &str, token: &str) -> Reply {
        self.send(
            Request::get(path)
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    /// Every release and build recorded for the configured repository.
    pub async fn recorded(&self) -> (Vec<Value>, Vec<Value>) {
        let releases = self
            .get_as("/v1/releases?repository=Codertocat/Hello-World", READ_TOKEN)
            .await;
        let builds = self
            .get_as("/v1/builds?repository=Codertocat/Hello-World", READ_TOKEN)
            .await;
        assert_eq!(
            (releases.status, builds.status),
            (StatusCode::OK, StatusCode::OK)
        );
        let items = |v: &Value| v["items"].as_array().unwrap().clone();
        (items(&releases.body), items(&builds.body))
    }
}

pub fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

pub fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/github/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
}
