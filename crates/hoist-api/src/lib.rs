//! hoist's HTTP surface.
//!
//! Depends on the domain and the store: a request can verify, persist and enqueue, and
//! nothing more. The one peer it reaches is the OIDC issuer, for the keys that verify CI's
//! tokens ([`oidc`]). Handlers extract, call one store function, and map the result; every error
//! leaves as the JSON envelope `{"error":{"code":"...","message":"..."}}`.

mod auth;
mod builds;
mod error;
mod health;
mod layers;
mod ledger;
mod listing;
mod metrics;
pub mod oidc;
mod openapi;
mod publications;
mod signing;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use hoist_domain::config::Config;
use hoist_domain::metrics::PipelineCounters;
use hoist_store::Store;
use tokio_util::sync::CancellationToken;

pub use error::ApiError;

/// The media type of a request's `Content-Type`, lowercased, without parameters.
pub(crate) fn media_type(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers
        .get(axum::http::header::CONTENT_TYPE)?
        .to_str()
        .ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Largest request body accepted: GitHub's own cap on webhook payloads.
pub const BODY_LIMIT: usize = 25 * 1024 * 1024;

/// What the running binary is, stamped at build time.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildInfo {
    pub version: String,
    pub git_sha: String,
    pub built_at: String,
}

/// Everything a handler may reach, built once in `main`.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Arc<Config>,
    store: Store,
    counters: Arc<PipelineCounters>,
    build: BuildInfo,
    shutdown: CancellationToken,
    /// Checks GitHub Actions OIDC tokens, when `[github] oidc_audience` is set.
    oidc: Option<Arc<oidc::OidcVerifier>>,
    /// Permits to buffer a webhook body before its signature is checked.
    webhook_bodies: Arc<tokio::sync::Semaphore>,
    /// The last `/readyz` write check, reused for a second.
    readiness: tokio::sync::Mutex<Option<health::Checked>>,
}

impl AppState {
    /// `shutdown` is cancelled when the process starts draining; `/readyz` then answers 503
    /// so load balancers stop sending new work.
    pub fn new(
        config: Arc<Config>,
        store: Store,
        counters: Arc<PipelineCounters>,
        build: BuildInfo,
        shutdown: CancellationToken,
    ) -> Self {
        let oidc = config
            .github
            .oidc
            .clone()
            .map(|c| Arc::new(oidc::OidcVerifier::new(c)));
        let webhook_bodies = Arc::new(tokio::sync::Semaphore::new(
            usize::try_from(config.server.webhook_bodies.max(1)).unwrap_or(16),
        ));
        AppState {
            inner: Arc::new(Inner {
                oidc,
                webhook_bodies,
                readiness: tokio::sync::Mutex::default(),
                config,
                store,
                counters,
                build,
                shutdown,
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// What the workers counted (bytes, blobs, step durations, job outcomes).
    pub fn counters(&self) -> &PipelineCounters {
        &self.inner.counters
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn build(&self) -> &BuildInfo {
        &self.inner.build
    }

    pub(crate) fn oidc(&self) -> Option<&Arc<oidc::OidcVerifier>> {
        self.inner.oidc.as_ref()
    }

    /// A permit to buffer one unauthenticated webhook body, if one is free.
    pub(crate) fn webhook_body_permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.inner.webhook_bodies.clone().try_acquire_owned().ok()
    }

    pub(crate) fn readiness(&self) -> &tokio::sync::Mutex<Option<health::Checked>> {
        &self.inner.readiness
    }

    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }
}

/// Settings of the HTTP layer that come from the config.
#[derive(Debug, Clone, Copy)]
pub struct HttpOptions {
    pub request_timeout: Duration,
}

/// The whole HTTP application with its middleware.
pub fn router(state: AppState, options: HttpOptions) -> Router {
    let routes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(openapi::serve_openapi))
        .route("/metrics", get(metrics::metrics))
        .route("/webhooks/github", post(webhook::handle_github_webhook))
        .route(
            "/v1/builds",
            post(builds::handle_build_report).get(builds::list_builds),
        )
        .route("/v1/releases", get(builds::list_releases))
        .route("/v1/images", get(ledger::list_images))
        .route("/v1/tags", get(ledger::list_tags))
        .route("/v1/tags/{tag}", axum::routing::put(ledger::force_tag))
        .route("/v1/tag-events", get(ledger::list_tag_events))
        .route("/v1/digests/{digest}", get(ledger::tags_at_digest))
        .route("/v1/signing/keys", get(signing::signing_keys))
        .route("/v1/publications", get(publications::list_publications))
        .route("/v1/publications/{id}", get(publications::show_publication))
        .route(
            "/v1/publications/{id}/retry",
            post(publications::retry_publication),
        )
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state);
    layers::apply(routes, options)
}

#[cfg(test)]
mod tests;
