//! hoist in-process, for pipeline behaviour: the real router, the real store on a temp
//! SQLite file, the real pipeline and registry client, and two real registries (CI's
//! staging one, and the target behind a fault-injecting [`Proxy`]). Nothing runs in the
//! background: a test delivers events through the router, then steps the workers with
//! [`World::run_jobs`] until no job is due, and ends with [`World::finish`], which checks
//! that no job is left or failed, no publication is stranded, and every tag the ledger
//! holds is in the target registry at the digest it says (read back with skopeo).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use hoist_api::{AppState, BuildInfo, HttpOptions};
use hoist_domain::Backoff;
use hoist_domain::config::ConfigFile;
use hoist_domain::metrics::PipelineCounters;
use hoist_pipeline::{Pipeline, PipelineOptions};
use hoist_registry::{Client, RegistrySettings};
use hoist_store::{Store, StoreOptions};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::image::{Layout, noise, raw_manifest, sha256};
use crate::oidc::Issuer;
use crate::{Proxy, Registry, fixture};

pub const SECRET: &str = "in-process-webhook-secret";
pub const CI_TOKEN: &str = "in-process-ci-token-0123456789";
pub const API_TOKEN: &str = "in-process-api-token-0123456789";
/// The GitHub REST API token, for a [`crate::FakeGitHub`] the test starts.
pub const GH_API_TOKEN: &str = "in-process-github-api-token";
pub const REPOSITORY: &str = "Codertocat/Hello-World";

/// Two commits, each built for linux/amd64 and linux/arm64.
pub const COMMIT_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const COMMIT_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
pub const COMMIT_C: &str = "cccccccccccccccccccccccccccccccccccccccc";

/// The per-platform images CI pushed for one commit.
#[derive(Debug, Clone)]
pub struct Built {
    pub commit: &'static str,
    pub amd64: String,
    pub arm64: String,
}

/// An answer from the router.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

pub struct World {
    router: Router,
    pub store: Store,
    pub pipeline: Arc<Pipeline>,
    /// Faults for the target registry go here.
    pub target_proxy: Proxy,
    target_host: String,
    staging_host: String,
    /// One set of images per commit, by commit.
    pub builds: BTreeMap<&'static str, Built>,
    /// The GitHub Actions OIDC issuer hoist trusts; [`World::report`] uses its tokens.
    pub issuer: Issuer,
    deliveries: AtomicUsize,
    _target: Registry,
    _staging: Registry,
    _layout: Layout,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("target", &self.target_host)
            .finish_non_exhaustive()
    }
}

impl World {
    /// A hoist publishing `Codertocat/Hello-World` to the target registry with the
    /// default tag policy, and CI images for [`COMMIT_A`], [`COMMIT_B`] and [`COMMIT_C`] in
    /// staging.
    pub async fn new() -> World {
        World::with_repository("").await
    }

    /// The same, with `extra` appended to the `[[repository]]` table (`tags = [...]`).
    pub async fn with_repository(extra: &str) -> World {
        World::with_config("", extra).await
    }

    /// The same, with `github` appended to the `[github]` table (`api_url = ...`; the token
    /// env var `GH_TOKEN` holds [`GH_API_TOKEN`]) and `extra` to the `[[repository]]` table.
    pub async fn with_config(github: &str, extra: &str) -> World {
        World::with_lease(github, extra, Duration::from_secs(60)).await
    }

    /// [`World::with_config`] with the workers' job lease set to `lease`.
    pub async fn with_lease(github: &str, extra: &str, lease: Duration) -> World {
        // The registries and skopeo are driven with blocking calls: off the runtime.
        let (staging, target, target_proxy, layout, builds) =
            tokio::task::spawn_blocking(start_registries)
                .await
                .expect("start the registries");
        let target_host = target_proxy.host();
        let staging_host = staging.host();

        let issuer = Issuer::start();
        let oidc = issuer.config_lines();
        let config = format!(
            r#"
[github]
webhook_secret_env = "SECRET"
{oidc}
{github}
[[ci_token]]
name = "ci"
token_env = "CI_TOKEN"
repositories = ["Codertocat/*"]
[[api_token]]
name = "ops"
token_env = "API_TOKEN"
role = "admin"
[[registry]]
host = "{staging_host}"
anonymous = true
insecure = true
[[registry]]
host = "{target_host}"
anonymous = true
insecure = true
[[repository]]
github = "{REPOSITORY}"
image = "{target_host}/codertocat/hello-world"
platforms = ["linux/amd64", "linux/arm64"]
sources = ["{staging_host}/ci/app"]
{extra}
"#
        );
        let env: HashMap<String, String> = [
            ("SECRET", SECRET),
            ("CI_TOKEN", CI_TOKEN),
            ("API_TOKEN", API_TOKEN),
            ("GH_TOKEN", GH_API_TOKEN),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let config = Arc::new(
            ConfigFile::parse(&config, "in-process")
                .expect("config parses")
                .validate(&env)
                .expect("config is valid"),
        );

        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&StoreOptions {
            url: format!("sqlite://{}/hoist.db", dir.path().display()),
            read_connections: 2,
            busy_timeout: Duration::from_secs(5),
        })
        .await
        .expect("open the store");
        let counters = Arc::new(PipelineCounters::default());
        // Registry retries are quick and few, so a registry that keeps failing fails the
        // job, and the queue's own backoff (none here: retries are due at once, the test
        // steps them) takes over.
        let registry = Client::counting_retries(
            config
                .registries
                .iter()
                .map(RegistrySettings::from)
                .collect(),
            Backoff {
                base: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
                max_server_delay: Duration::from_millis(5),
                max_attempts: 2,
            },
            counters.registry_retries.clone(),
        )
        .expect("registry client");
        let pipeline = Arc::new(Pipeline::new(
            store.clone(),
            config.clone(),
            registry,
            counters.clone(),
            PipelineOptions {
                lease,
                poll: Duration::from_secs(1),
                backoff: Backoff {
                    base: Duration::ZERO,
                    max_delay: Duration::ZERO,
                    max_server_delay: Duration::ZERO,
                    max_attempts: 10,
                },
            },
        ));
        let build = BuildInfo {
            version: "0.0.0-test".into(),
            git_sha: "0000000".into(),
            built_at: "2026-01-01T00:00:00Z".into(),
        };
        let state = AppState::new(
            config,
            store.clone(),
            counters,
            build,
            CancellationToken::new(),
        );
        let router = hoist_api::router(
            state,
            HttpOptions {
                request_timeout: Duration::from_secs(30),
            },
        );
        World {
            router,
            store,
            pipeline,
            target_proxy,
            target_host,
            staging_host,
            builds,
            issuer,
            deliveries: AtomicUsize::new(0),
            _target: target,
            _staging: staging,
            _layout: layout,
            _dir: dir,
        }
    }

    /// The target image, `host/codertocat/hello-world`.
    pub fn image(&self) -> String {
        format!("{}/codertocat/hello-world", self.target_host)
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router answers");
        let status = response.status();
        let bytes = to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply { status, body }
    }

    /// Delivers `body` as GitHub would: signed, with a fresh delivery id. Returns the
    /// answer after checking it is a 2xx.
    pub async fn deliver(&self, event: &str, body: &Value) -> Reply {
        let n = self.deliveries.fetch_add(1, Ordering::Relaxed);
        let bytes = body.to_string().into_bytes();
        let request = Request::post("/webhooks/github")
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", format!("delivery-{n}"))
            .header(
                "x-hub-signature-256",
                hoist_domain::github::sign(SECRET, &bytes),
            )
            .body(Body::from(bytes))
            .expect("request");
        let reply = self.send(request).await;
        assert!(
            reply.status.is_success(),
            "{event} delivery: {} {}",
            reply.status,
            reply.body
        );
        reply
    }

    /// A `release` delivery (the public example payload) for release `id` with this
    /// action, tag, target and GitHub prerelease flag.
    pub async fn release(
        &self,
        action: &str,
        id: u64,
        tag: &str,
        target: &str,
        prerelease: bool,
    ) -> Reply {
        let body = release_body(action, id, tag, target, prerelease);
        self.deliver("release", &body).await
    }

    /// A `push` of tag `tag` at `commit`.
    pub async fn push_tag(&self, tag: &str, commit: &str) -> Reply {
        let mut body: Value =
            serde_json::from_slice(&fixture("push.tag-created")).expect("fixture");
        body["ref"] = json!(format!("refs/tags/{tag}"));
        body["head_commit"]["id"] = json!(commit);
        body["after"] = json!(commit);
        self.deliver("push", &body).await
    }

    /// The `push` GitHub sends when `tag` is deleted.
    pub async fn delete_tag(&self, tag: &str) -> Reply {
        let mut body: Value =
            serde_json::from_slice(&fixture("push.tag-deleted")).expect("fixture");
        body["ref"] = json!(format!("refs/tags/{tag}"));
        self.deliver("push", &body).await
    }

    /// A `push` of `branch` bringing `commits` (oldest first; the last is the new head).
    pub async fn push_branch(&self, branch: &str, commits: &[&str]) -> Reply {
        let mut body: Value = serde_json::from_slice(&fixture("push.branch")).expect("fixture");
        let head = *commits.last().expect("a push brings a commit");
        body["ref"] = json!(format!("refs/heads/{branch}"));
        body["after"] = json!(head);
        let template = body["commits"][0].clone();
        body["commits"] = commits
            .iter()
            .map(|c| {
                let mut commit = template.clone();
                commit["id"] = json!(c);
                commit
            })
            .collect();
        body["head_commit"]["id"] = json!(head);
        self.deliver("push", &body).await
    }

    /// A GitHub Actions run at `git_ref` reports `commit`'s image for `platform` (`amd64`
    /// or `arm64`) with its OIDC token, so GitHub signed the ref. With an empty `git_ref`, CI
    /// says no ref and reports with the static token instead.
    pub async fn report(&self, commit: &str, git_ref: &str, platform: &str) -> Reply {
        let bearer = if git_ref.is_empty() {
            CI_TOKEN.to_owned()
        } else {
            self.issuer.token_for(REPOSITORY, commit, git_ref)
        };
        self.report_as(&bearer, &self.report_body(commit, git_ref, platform))
            .await
    }

    /// The same report under the static `[[ci_token]]`: its ref is only a claim.
    pub async fn report_claimed(&self, commit: &str, git_ref: &str, platform: &str) -> Reply {
        self.report_as(CI_TOKEN, &self.report_body(commit, git_ref, platform))
            .await
    }

    /// POSTs `body` to `/v1/builds` with `Authorization: Bearer {bearer}`.
    pub async fn report_as(&self, bearer: &str, body: &Value) -> Reply {
        let request = Request::post("/v1/builds")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {bearer}"))
            .body(Body::from(body.to_string()))
            .expect("request");
        self.send(request).await
    }

    /// The body CI posts for `commit`'s image for `platform` built at `git_ref`.
    pub fn report_body(&self, commit: &str, git_ref: &str, platform: &str) -> Value {
        let built = &self.builds[commit];
        let digest = match platform {
            "amd64" => &built.amd64,
            "arm64" => &built.arm64,
            other => panic!("no image for {other}"),
        };
        let mut body = json!({
            "repository": REPOSITORY,
            "commit": commit,
            "platform": format!("linux/{platform}"),
            "image": format!("{}/ci/app@{digest}", self.staging_host),
        });
        if !git_ref.is_empty() {
            body["ref"] = json!(git_ref);
        }
        body
    }

    /// Pushes `manifest` (with all it refers to) from `layout` to CI's staging repository
    /// and returns it as CI would report it, `host/ci/app@digest`.
    pub fn stage(&self, layout: &mut Layout, manifest: &crate::image::Written) -> String {
        let tag = format!("staged-{}", &manifest.digest[7..19]);
        self.stage_as(layout, manifest, &tag)
    }

    /// The same, under `tag` in CI's repository.
    pub fn stage_as(
        &self,
        layout: &mut Layout,
        manifest: &crate::image::Written,
        tag: &str,
    ) -> String {
        layout.tag(tag, manifest);
        layout.push(tag, &format!("{}/ci/app:{tag}", self.staging_host), None);
        format!("{}/ci/app@{}", self.staging_host, manifest.digest)
    }

    /// Pushes `manifest` from `layout` to CI's repository under `reference` with plain
    /// distribution API calls (for manifests skopeo 1.9 will not copy as they are, such as
    /// referrers indexes of OCI artifacts).
    pub async fn stage_raw(
        &self,
        layout: &Layout,
        manifest: &crate::image::Written,
        reference: &str,
    ) {
        put_raw(
            &format!("{}/ci/app", self.staging_host),
            layout,
            manifest,
            reference,
        )
        .await;
    }

    /// The same to the target image, as someone else writing to the target would.
    pub async fn push_raw_to_target(
        &self,
        layout: &Layout,
        manifest: &crate::image::Written,
        reference: &str,
    ) {
        put_raw(&self.image(), layout, manifest, reference).await;
    }

    /// CI reports `image` for `commit` at `git_ref` under an OIDC token, for `platform`
    /// (`linux/amd64`) or, with `None`, as an index counting for each platform it holds.
    pub async fn report_image(
        &self,
        commit: &str,
        git_ref: &str,
        platform: Option<&str>,
        image: &str,
    ) -> Reply {
        let mut body = json!({
            "repository": REPOSITORY,
            "commit": commit,
            "ref": git_ref,
            "image": image,
        });
        if let Some(platform) = platform {
            body["platform"] = json!(platform);
        }
        let bearer = self.issuer.token_for(REPOSITORY, commit, git_ref);
        self.report_as(&bearer, &body).await
    }

    /// Both platforms of `commit`, reported for `git_ref`.
    pub async fn report_both(&self, commit: &str, git_ref: &str) {
        for platform in ["amd64", "arm64"] {
            let reply = self.report(commit, git_ref, platform).await;
            assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
        }
    }

    /// Both platforms of `commit`, reported under the static token for `git_ref` (a claim).
    pub async fn report_claimed_both(&self, commit: &str, git_ref: &str) {
        for platform in ["amd64", "arm64"] {
            let reply = self.report_claimed(commit, git_ref, platform).await;
            assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
        }
    }

    /// Runs the workers' next due job; false when none is due.
    pub async fn step(&self) -> bool {
        self.pipeline.step().await.expect("the queue answers")
    }

    /// Starts the next due job in the background and returns once it is uploading its
    /// first blob to the target (hold uploads with a `Fault::Delay` rule first): the moment
    /// to drop the worker or to change the world under it.
    pub fn step_until_first_upload(&self) -> tokio::task::JoinHandle<bool> {
        let pipeline = self.pipeline.clone();
        let worker = tokio::spawn(async move { pipeline.step().await.expect("the queue answers") });
        crate::wait_until("the first upload", Duration::from_secs(20), || {
            self.target_proxy
                .seen()
                .iter()
                .any(|s| s.path.contains("/blobs/uploads/"))
        });
        worker
    }

    /// Steps the workers until no job is due. Returns how many jobs ran.
    pub async fn run_jobs(&self) -> usize {
        let mut ran = 0;
        while self.step().await {
            ran += 1;
            assert!(
                ran < 500,
                "the queue does not drain: a job keeps coming back"
            );
        }
        ran
    }

    /// Takes SQLite's write lock from another process (the `sqlite3` shell) and holds it
    /// until the returned guard is dropped: every write of hoist's waits out its busy
    /// timeout and fails meanwhile, as with a database that is gone.
    pub fn hold_the_database(&self) -> HeldDatabase {
        crate::require_tool("sqlite3", "sqlite3");
        let mut shell = std::process::Command::new("sqlite3")
            .arg(self._dir.path().join("hoist.db"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run sqlite3");
        let stdin = shell.stdin.as_mut().expect("sqlite3's stdin");
        stdin
            .write_all(b"BEGIN IMMEDIATE;\nSELECT 'held';\n")
            .expect("write to sqlite3");
        let mut line = String::new();
        std::io::BufReader::new(shell.stdout.as_mut().expect("sqlite3's stdout"))
            .read_line(&mut line)
            .expect("read from sqlite3");
        assert_eq!(line.trim(), "held", "sqlite3 took the write lock");
        HeldDatabase(shell)
    }

    /// One reconciler pass.
    pub async fn reconcile(&self) {
        self.pipeline.reconcile().await.expect("reconcile");
    }

    /// An operator's GET, as JSON.
    pub async fn get(&self, path: &str) -> Value {
        let request = Request::get(path)
            .header("authorization", format!("Bearer {API_TOKEN}"))
            .body(Body::empty())
            .expect("request");
        let reply = self.send(request).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        reply.body
    }

    /// `GET /metrics`, as text.
    pub async fn metrics(&self) -> String {
        let request = Request::get("/metrics")
            .body(Body::empty())
            .expect("request");
        let reply = self.send(request).await;
        assert_eq!(reply.status, StatusCode::OK);
        reply.body.as_str().expect("metrics are text").to_owned()
    }

    /// An operator's POST with no body.
    pub async fn post(&self, path: &str) -> Reply {
        let request = Request::post(path)
            .header("authorization", format!("Bearer {API_TOKEN}"))
            .body(Body::empty())
            .expect("request");
        self.send(request).await
    }

    /// An operator forces `tag` to `digest` (admin), as `PUT /v1/tags/{tag}` does.
    pub async fn force(&self, tag: &str, digest: &str) -> Reply {
        let body = json!({ "digest": digest, "reason": "operator's call" });
        let request = Request::put(format!("/v1/tags/{tag}?image={}", self.image()))
            .header("authorization", format!("Bearer {API_TOKEN}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        self.send(request).await
    }

    /// Where each tag points, by the ledger's current view.
    pub async fn tags(&self) -> BTreeMap<String, String> {
        let body = self
            .get(&format!("/v1/tags?image={}&limit=500", self.image()))
            .await;
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|t| {
                (
                    t["tag"].as_str().expect("tag").to_owned(),
                    t["digest"].as_str().expect("digest").to_owned(),
                )
            })
            .collect()
    }

    /// The ledger, oldest first: (tag, kind, digest).
    pub async fn events(&self) -> Vec<(String, String, String)> {
        let body = self
            .get(&format!("/v1/tag-events?image={}&limit=500", self.image()))
            .await;
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|e| {
                let field = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
                (field("tag"), field("kind"), field("digest"))
            })
            .collect()
    }

    /// The publications, oldest first, as the API shows them.
    pub async fn publications(&self) -> Vec<Value> {
        let body = self.get("/v1/publications?limit=500").await;
        let mut items = body["items"].as_array().expect("items").clone();
        items.reverse();
        items
    }

    /// Each publication's (release tag or commit, state), oldest first.
    pub async fn publication_states(&self) -> Vec<(String, String)> {
        let releases = self
            .get(&format!("/v1/releases?repository={REPOSITORY}&limit=500"))
            .await;
        let tag_of = |id: i64| {
            releases["items"]
                .as_array()
                .expect("items")
                .iter()
                .find(|r| r["id"] == id)
                .and_then(|r| r["tag"].as_str())
                .unwrap_or("?")
                .to_owned()
        };
        self.publications()
            .await
            .iter()
            .map(|p| {
                let what = match p["release_id"].as_i64() {
                    Some(id) => format!(
                        "{} on {}",
                        tag_of(id),
                        &p["commit"].as_str().unwrap_or("")[..1]
                    ),
                    None => format!("branch on {}", &p["commit"].as_str().unwrap_or("")[..1]),
                };
                (what, p["state"].as_str().unwrap_or_default().to_owned())
            })
            .collect()
    }

    /// The digest of the index published for `commit` (the one its tags point at).
    pub async fn index_of(&self, commit: &str) -> String {
        self.publications()
            .await
            .iter()
            .filter(|p| p["commit"] == commit)
            .find_map(|p| p["index_digest"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("no index published for {commit}"))
    }

    /// A blob of the target image, straight from the registry (checked against its digest).
    pub async fn target_blob(&self, digest: &str) -> Vec<u8> {
        let url = format!(
            "http://{}/v2/codertocat/hello-world/blobs/{digest}",
            self.target_host
        );
        let response = reqwest::get(&url).await.expect("GET the blob");
        assert_eq!(response.status(), 200, "{url}");
        let bytes = response.bytes().await.expect("the blob").to_vec();
        assert_eq!(sha256(&bytes), digest, "the registry's bytes");
        bytes
    }

    /// Reads `tag` back from the target registry with skopeo: the sha256 of its manifest.
    pub fn registry_digest(&self, tag: &str) -> String {
        let raw = raw_manifest(&format!("{}:{tag}", self.image()), None);
        sha256(&raw)
    }

    /// The end of every scenario: nothing queued, running or failed in the queue, no
    /// publication left waiting or running, and every tag of the ledger in the registry at
    /// the digest the ledger says.
    pub async fn finish(&self) {
        self.finish_with_failed_jobs(0).await;
    }

    /// [`World::finish`] for a scenario where `failed` jobs ran out of attempts on purpose.
    pub async fn finish_with_failed_jobs(&self, failed: usize) {
        self.finish_with(failed, 0).await;
    }

    /// [`World::finish`], but `parked` publications may be left waiting in the wait step
    /// with the reason they wait (a signed fact that has not come), no job of theirs queued.
    pub async fn finish_with_parked(&self, parked: usize) {
        let waiting: Vec<Value> = self
            .publications()
            .await
            .into_iter()
            .filter(|p| p["state"] == "waiting")
            .collect();
        assert_eq!(waiting.len(), parked, "waiting publications: {waiting:?}");
        for p in &waiting {
            assert_eq!(p["step"], "wait", "{p}");
            assert!(p["error"].is_string(), "a parked publication says why: {p}");
        }
        self.finish_with(0, parked).await;
    }

    async fn finish_with(&self, failed: usize, parked: usize) {
        let unfinished = self.store.unfinished_jobs().await.expect("jobs");
        let pending: Vec<_> = unfinished
            .iter()
            .filter(|(_, state, _)| state != "failed")
            .collect();
        assert!(pending.is_empty(), "jobs left: {pending:?}");
        assert_eq!(unfinished.len(), failed, "failed jobs: {unfinished:?}");
        let stranded: Vec<_> = self
            .publications()
            .await
            .into_iter()
            .filter(|p| matches!(p["state"].as_str(), Some("waiting" | "running")))
            .collect();
        assert_eq!(
            stranded.len(),
            parked,
            "publications not at rest: {stranded:?}"
        );
        for (tag, digest) in self.tags().await {
            assert_eq!(
                self.registry_digest(&tag),
                digest,
                "the registry's {tag} is not what the ledger says"
            );
        }
    }
}

/// PUTs `manifest` under `reference` in `repository` (`host/path`), after every blob and
/// child manifest it names (read from `layout`).
fn put_raw<'a>(
    repository: &'a str,
    layout: &'a Layout,
    manifest: &'a crate::image::Written,
    reference: &'a str,
) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
    Box::pin(async move {
        let http = reqwest::Client::new();
        let (host, path) = repository.split_once('/').expect("host/path");
        let bytes = manifest.bytes_if_manifest.clone().expect("a manifest");
        let json: Value = serde_json::from_slice(&bytes).expect("manifest JSON");
        let blobs = json["config"].as_object().into_iter().chain(
            json["layers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_object),
        );
        for blob in blobs {
            let digest = blob["digest"].as_str().expect("a digest");
            let data = std::fs::read(layout.blob_path(digest)).expect("the blob");
            let started = http
                .post(format!("http://{host}/v2/{path}/blobs/uploads/"))
                .send()
                .await
                .expect("start an upload");
            assert_eq!(started.status(), 202, "upload session");
            let location = started.headers()["location"]
                .to_str()
                .expect("Location")
                .to_owned();
            let location = if location.starts_with("http") {
                location
            } else {
                format!("http://{host}{location}")
            };
            let separator = if location.contains('?') { '&' } else { '?' };
            let put = http
                .put(format!("{location}{separator}digest={digest}"))
                .body(data)
                .send()
                .await
                .expect("upload the blob");
            assert_eq!(put.status(), 201, "blob {digest}");
        }
        for child in json["manifests"].as_array().into_iter().flatten() {
            let digest = child["digest"].as_str().expect("a digest").to_owned();
            let child_bytes = std::fs::read(layout.blob_path(&digest)).expect("the child");
            let written = crate::image::Written {
                digest: digest.clone(),
                size: child_bytes.len() as u64,
                media_type: child["mediaType"].as_str().unwrap_or_default().to_owned(),
                bytes_if_manifest: Some(child_bytes),
            };
            put_raw(repository, layout, &written, &digest).await;
        }
        let put = http
            .put(format!("http://{host}/v2/{path}/manifests/{reference}"))
            .header("content-type", &manifest.media_type)
            .body(bytes)
            .send()
            .await
            .expect("put the manifest");
        assert_eq!(put.status(), 201, "manifest {reference}");
    })
}

/// The staging and target registries (the target behind a proxy), and CI's images of the
/// three commits pushed to staging.
fn start_registries() -> (
    Registry,
    Registry,
    Proxy,
    Layout,
    BTreeMap<&'static str, Built>,
) {
    let staging = Registry::start();
    let target = Registry::start();
    let target_proxy = Proxy::start(target.port());
    let staging_host = staging.host();
    let mut layout = Layout::new();
    let mut builds = BTreeMap::new();
    for (n, commit) in [COMMIT_A, COMMIT_B, COMMIT_C].into_iter().enumerate() {
        let seed = 10 * n as u64;
        let amd64 = layout.image("linux", "amd64", &[noise(2048, seed + 1)]);
        let arm64 = layout.image("linux", "arm64", &[noise(2048, seed + 2)]);
        for (name, image) in [("amd64", &amd64), ("arm64", &arm64)] {
            let tag = format!("{n}-{name}");
            layout.tag(&tag, image);
            layout.push(&tag, &format!("{staging_host}/ci/app:{tag}"), None);
        }
        builds.insert(
            commit,
            Built {
                commit,
                amd64: amd64.digest,
                arm64: arm64.digest,
            },
        );
    }
    (staging, target, target_proxy, layout, builds)
}

/// A later `updated_at` at each call, as GitHub stamps every change of a release, so each
/// delivery is a new event in GitHub's time (and no body is a replay of another).
fn next_change_time() -> String {
    static SECONDS: AtomicUsize = AtomicUsize::new(0);
    let n = SECONDS.fetch_add(1, Ordering::Relaxed);
    format!(
        "2026-01-{:02}T{:02}:{:02}:{:02}Z",
        1 + n / 86_400,
        n / 3600 % 24,
        n / 60 % 60,
        n % 60
    )
}

/// The public example `release` payload with this action, id, tag, target and flag.
pub fn release_body(action: &str, id: u64, tag: &str, target: &str, prerelease: bool) -> Value {
    let mut body: Value = serde_json::from_slice(&fixture("release.published")).expect("fixture");
    body["release"]["updated_at"] = json!(next_change_time());
    body["action"] = json!(action);
    body["release"]["id"] = json!(id);
    body["release"]["tag_name"] = json!(tag);
    body["release"]["target_commitish"] = json!(target);
    body["release"]["prerelease"] = json!(prerelease);
    body["release"]["draft"] = json!(false);
    body
}

/// The public example `release.edited` payload for release `id`, now at `tag` and
/// `target`, with the `changes` GitHub sends for a renamed tag.
pub fn release_edited(id: u64, from_tag: &str, tag: &str, target: &str, prerelease: bool) -> Value {
    let mut body: Value = serde_json::from_slice(&fixture("release.edited")).expect("fixture");
    body["release"]["updated_at"] = json!(next_change_time());
    body["release"]["id"] = json!(id);
    body["release"]["tag_name"] = json!(tag);
    body["release"]["target_commitish"] = json!(target);
    body["release"]["prerelease"] = json!(prerelease);
    if from_tag != tag {
        body["changes"] = json!({ "tag_name": { "from": from_tag } });
    }
    body
}

/// SQLite's write lock held by a `sqlite3` shell ([`World::hold_the_database`]); dropping
/// it rolls back and ends the shell.
#[derive(Debug)]
pub struct HeldDatabase(std::process::Child);

impl Drop for HeldDatabase {
    fn drop(&mut self) {
        if let Some(stdin) = self.0.stdin.as_mut() {
            let _ = stdin.write_all(b"ROLLBACK;\n.quit\n");
        }
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}
