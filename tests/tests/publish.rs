//! The whole flow through a running hoist: CI pushes one image per platform to a staging
//! registry and reports it, GitHub announces a release, and hoist publishes a multi-arch
//! index with its tags to the target registry. Checked with skopeo and the REST API.

use std::time::{Duration, Instant};

use hoist_tests::image::{Layout, noise, raw_manifest};
use hoist_tests::oidc::Issuer;
use hoist_tests::{
    FakeGitHub, Fault, Hoist, Proxy, Registry, Rule, deliver_webhook, free_port, http,
};
use serde_json::{Value, json};

const SECRET: &str = "publish-webhook-secret";
const CI_TOKEN: &str = "publish-ci-token-0123456789";
const API_TOKEN: &str = "publish-api-token-0123456789";
const READ_TOKEN: &str = "publish-read-token-0123456789";
const COMMIT: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
const OLDER_COMMIT: &str = "1111111111111111111111111111111111111111";

struct World {
    /// Kept so the staging registry lives as long as the test.
    _staging: Registry,
    /// Where hoist reads the staging registry: the registry itself, or a proxy in front.
    staging_host: String,
    proxy: Option<Proxy>,
    /// Where hoist publishes: the target registry itself, or a proxy in front of it.
    target_host: String,
    target_proxy: Option<Proxy>,
    /// Kept so the target registry lives as long as the test.
    _target: Registry,
    hoist: Hoist,
    amd64: String,
    arm64: String,
    /// CI's own two-platform index of the same images.
    index: String,
    _layout: Layout,
}

/// The GitHub Actions OIDC issuer every hoist of this file trusts: CI reports with its
/// tokens, so the refs they name are facts GitHub signed.
fn issuer() -> &'static Issuer {
    static ISSUER: std::sync::OnceLock<Issuer> = std::sync::OnceLock::new();
    ISSUER.get_or_init(Issuer::start)
}

fn oidc_token(commit: &str, git_ref: &str) -> String {
    issuer().token_for("Codertocat/Hello-World", commit, git_ref)
}

fn world() -> World {
    world_with(false, false)
}

fn world_with(staging_behind_proxy: bool, target_behind_proxy: bool) -> World {
    world_configured(staging_behind_proxy, target_behind_proxy, "", &[])
}

/// `extra` is appended to the `[github]` table of the config; `extra_env` joins hoist's
/// environment.
fn world_configured(
    staging_behind_proxy: bool,
    target_behind_proxy: bool,
    extra: &str,
    extra_env: &[(&str, &str)],
) -> World {
    let staging = Registry::start();
    let proxy = staging_behind_proxy.then(|| Proxy::start(staging.port()));
    let staging_host = proxy.as_ref().map_or_else(|| staging.host(), Proxy::host);
    let target = Registry::start();
    let target_proxy = target_behind_proxy.then(|| Proxy::start(target.port()));
    let target_host = target_proxy
        .as_ref()
        .map_or_else(|| target.host(), Proxy::host);
    let mut layout = Layout::new();
    let amd64 = layout.image("linux", "amd64", &[noise(4096, 1), noise(2048, 2)]);
    let arm64 = layout.image("linux", "arm64", &[noise(4096, 3), noise(2048, 4)]);
    layout.tag("amd64", &amd64);
    layout.tag("arm64", &arm64);
    let index = layout.index(&[(&amd64, "linux", "amd64"), (&arm64, "linux", "arm64")]);
    layout.tag("index", &index);
    layout.push("amd64", &format!("{}/ci/app:amd64", staging.host()), None);
    layout.push("arm64", &format!("{}/ci/app:arm64", staging.host()), None);
    layout.push("index", &format!("{}/ci/app:index", staging.host()), None);

    let listen = format!("127.0.0.1:{}", free_port());
    let config = format!(
        r#"
[server]
listen = "{listen}"
[github]
webhook_secret_env = "SECRET"
{oidc}
{extra}
[[ci_token]]
name = "ci"
token_env = "CI_TOKEN"
repositories = ["Codertocat/*"]
[[api_token]]
name = "ops"
token_env = "API_TOKEN"
role = "admin"
[[api_token]]
name = "reader"
token_env = "READ_TOKEN"
role = "read"
[[registry]]
host = "{staging}"
anonymous = true
insecure = true
[[registry]]
host = "{proxy}"
anonymous = true
insecure = true
[[registry]]
host = "{target_host}"
anonymous = true
insecure = true
[[repository]]
github = "Codertocat/Hello-World"
image = "{target_host}/codertocat/hello-world"
platforms = ["linux/amd64", "linux/arm64"]
sources = ["{staging}/ci/app", "{proxy}/ci/app"]
"#,
        oidc = issuer().config_lines(),
        staging = staging.host(),
        proxy = proxy
            .as_ref()
            .map_or_else(|| "proxy.invalid".to_owned(), Proxy::host),
    );
    let mut env = vec![
        ("SECRET", SECRET),
        ("CI_TOKEN", CI_TOKEN),
        ("API_TOKEN", API_TOKEN),
        ("READ_TOKEN", READ_TOKEN),
    ];
    env.extend_from_slice(extra_env);
    let hoist = Hoist::start(Some(&config), &env, &listen);
    World {
        amd64: amd64.digest,
        arm64: arm64.digest,
        index: index.digest,
        _staging: staging,
        staging_host,
        proxy,
        target_host,
        target_proxy,
        _target: target,
        hoist,
        _layout: layout,
    }
}

impl World {
    fn image(&self) -> String {
        format!("{}/codertocat/hello-world", self.target_host)
    }

    fn report(&self, commit: &str, tag: &str, platform: &str, digest: &str) {
        self.report_ref(commit, &format!("refs/tags/{tag}"), platform, digest);
    }

    fn report_ref(&self, commit: &str, git_ref: &str, platform: &str, digest: &str) {
        let body = json!({
            "repository": "Codertocat/Hello-World",
            "commit": commit,
            "ref": git_ref,
            "platform": platform,
            "image": format!("{}/ci/app@{digest}", self.staging_host),
        });
        let response = http()
            .post(self.hoist.url("/v1/builds"))
            .bearer_auth(oidc_token(commit, git_ref))
            .json(&body)
            .send()
            .expect("report");
        assert_eq!(
            response.status(),
            202,
            "{}",
            response.text().unwrap_or_default()
        );
    }

    fn release(&self, delivery: &str, github_id: u64, tag: &str) {
        self.release_action(delivery, "published", github_id, tag, false);
    }

    /// Delivers the example `release` payload with this action, id, tag and prerelease flag.
    fn release_action(
        &self,
        delivery: &str,
        action: &str,
        github_id: u64,
        tag: &str,
        prerelease: bool,
    ) {
        let mut body: Value =
            serde_json::from_slice(&hoist_tests::fixture("release.published")).expect("fixture");
        body["action"] = json!(action);
        body["release"]["tag_name"] = json!(tag);
        body["release"]["id"] = json!(github_id);
        body["release"]["prerelease"] = json!(prerelease);
        let bytes = body.to_string();
        let url = self.hoist.url("/webhooks/github");
        let response =
            deliver_webhook(&http(), &url, SECRET, "release", delivery, bytes.as_bytes())
                .expect("deliver");
        assert_eq!(response.status(), 202);
    }

    fn get(&self, path: &str) -> Value {
        let response = http()
            .get(self.hoist.url(path))
            .bearer_auth(API_TOKEN)
            .send()
            .expect("GET");
        assert_eq!(response.status(), 200, "{path}");
        response.json().expect("JSON")
    }

    fn tags(&self) -> Vec<(String, String)> {
        let body = self.get(&format!("/v1/tags?image={}", self.image()));
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|t| {
                (
                    t["tag"].as_str().unwrap_or("").to_owned(),
                    t["digest"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    /// Waits until no publication is waiting or running and the queue is empty enough
    /// that `done` holds.
    fn wait_for(&self, what: &str, done: impl Fn(&World) -> bool) {
        let start = Instant::now();
        while !done(self) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{what} did not happen:\n{}",
                self.hoist.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn tag_names(tags: &[(String, String)]) -> Vec<&str> {
    tags.iter().map(|(t, _)| t.as_str()).collect()
}

#[test]
fn a_release_publishes_a_two_platform_index_with_semver_latest_and_sha_tags() {
    let w = world();
    w.report(COMMIT, "v1.2.3", "linux/amd64", &w.amd64);
    w.release("rel-1", 1, "v1.2.3");
    // Only one platform so far: the publication waits and says for what.
    w.wait_for("a publication waiting for its builds", |w| {
        let list = w.get("/v1/publications?state=waiting");
        list["items"].as_array().is_some_and(|i| i.len() == 1)
            && !list["items"][0]["error"].is_null()
    });
    let waiting = w.get("/v1/publications?state=waiting");
    assert_eq!(
        waiting["items"][0]["error"],
        "waiting for builds of linux/arm64"
    );
    assert!(w.tags().is_empty());

    w.report(COMMIT, "v1.2.3", "linux/arm64", &w.arm64);
    w.wait_for("the tags", |w| w.tags().len() == 5);
    let tags = w.tags();
    assert_eq!(
        tag_names(&tags),
        ["1", "1.2", "1.2.3", "latest", "sha-6113728"]
    );
    let index_digest = tags[0].1.clone();
    assert!(tags.iter().all(|(_, d)| *d == index_digest), "{tags:?}");

    // An independent client sees the index, with both platforms and the provenance.
    let raw = raw_manifest(&format!("{}:1.2.3", w.image()), None);
    let index: Value = serde_json::from_slice(&raw).expect("index JSON");
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap_or(""),
                m["platform"]["architecture"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    let digests: Vec<&str> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| m["digest"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(digests, [w.amd64.as_str(), w.arm64.as_str()]);
    assert_eq!(
        index["annotations"]["org.opencontainers.image.revision"],
        COMMIT
    );
    assert_eq!(
        index["annotations"]["org.opencontainers.image.version"],
        "v1.2.3"
    );
    assert_eq!(
        index["annotations"]["org.opencontainers.image.source"],
        "https://github.com/Codertocat/Hello-World"
    );
    let sha = hoist_tests::image::sha256(&raw);
    assert_eq!(
        sha, index_digest,
        "the ledger names the digest the registry serves"
    );

    // The ledger has one create per tag, made by this publication.
    let events = w.get(&format!("/v1/tag-events?image={}", w.image()));
    let events = events["items"].as_array().expect("items");
    assert_eq!(events.len(), 5);
    assert!(
        events
            .iter()
            .all(|e| e["kind"] == "create" && e["release_tag"] == "v1.2.3")
    );
    let publication = w.get("/v1/publications?state=succeeded");
    let id = publication["items"][0]["id"].as_i64().expect("id");
    let detail = w.get(&format!("/v1/publications/{id}"));
    let steps: Vec<&str> = detail["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["step"].as_str().unwrap_or(""))
        .collect();
    for step in ["wait", "copy", "verify", "index", "tags"] {
        assert!(steps.contains(&step), "{steps:?}");
    }
    let written: Vec<&str> = detail["tags_written"]
        .as_array()
        .expect("tags_written")
        .iter()
        .map(|t| t["tag"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        written,
        ["1.2.3", "sha-6113728", "1.2", "1", "latest"],
        "immutable first, floating last"
    );
    let metrics = http()
        .get(w.hoist.url("/metrics"))
        .send()
        .expect("metrics")
        .text()
        .expect("text");
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no {series} in:\n{metrics}"))
    };
    assert!(
        value("hoist_blobs_total{how=\"uploaded\"}") >= 6.0,
        "two configs and four layers crossed registries"
    );
    assert!(value("hoist_bytes_uploaded_total") > 12_000.0);
    assert_eq!(value("hoist_publications{state=\"succeeded\"}"), 1.0);
    assert!(value("hoist_publication_step_duration_seconds_count{step=\"tags\"}") >= 1.0);

    // An older release afterwards: its own tags, and `1.1`, but `1` and `latest` stay.
    w.report(OLDER_COMMIT, "v1.1.9", "linux/amd64", &w.amd64);
    w.report(OLDER_COMMIT, "v1.1.9", "linux/arm64", &w.arm64);
    w.release("rel-2", 2, "v1.1.9");
    w.wait_for("the older release's tags", |w| w.tags().len() == 8);
    let after = w.tags();
    let digest_of = |tag: &str| {
        after
            .iter()
            .find(|(t, _)| t == tag)
            .map(|(_, d)| d.clone())
            .unwrap_or_default()
    };
    assert_eq!(digest_of("latest"), index_digest);
    assert_eq!(digest_of("1"), index_digest);
    assert_ne!(digest_of("1.1.9"), index_digest);
    assert_eq!(digest_of("1.1"), digest_of("1.1.9"));
    assert_eq!(digest_of("sha-1111111"), digest_of("1.1.9"));

    // An operator forces the immutable 1.2.3 onto the amd64 image alone.
    let response = http()
        .put(w.hoist.url(&format!("/v1/tags/1.2.3?image={}", w.image())))
        .bearer_auth(API_TOKEN)
        .json(&json!({ "digest": w.amd64, "reason": "arm64 build withdrawn" }))
        .send()
        .expect("force");
    assert_eq!(response.status(), 202);
    w.wait_for("the forced tag", |w| {
        w.tags().iter().any(|(t, d)| t == "1.2.3" && *d == w.amd64)
    });
    let raw = raw_manifest(&format!("{}:1.2.3", w.image()), None);
    assert_eq!(hoist_tests::image::sha256(&raw), w.amd64);
    let history = w.get(&format!("/v1/tag-events?image={}&tag=1.2.3", w.image()));
    let kinds: Vec<&str> = history["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["create", "force"]);
    assert_eq!(
        history["items"][1]["reason"],
        "forced by ops: arm64 build withdrawn"
    );
}

#[test]
fn a_build_reported_as_the_wrong_platform_fails_the_publication_clearly() {
    let w = world();
    w.report(COMMIT, "v2.0.0", "linux/amd64", &w.amd64);
    // CI says arm64, but it pushed the amd64 image again.
    w.report(COMMIT, "v2.0.0", "linux/arm64", &w.amd64);
    w.release("rel-1", 1, "v2.0.0");
    w.wait_for("a failed publication", |w| {
        w.get("/v1/publications?state=failed")["items"]
            .as_array()
            .is_some_and(|i| !i.is_empty())
    });
    let failed = &w.get("/v1/publications?state=failed")["items"][0];
    assert_eq!(failed["step"], "verify");
    let error = failed["error"].as_str().expect("error");
    assert!(
        error.starts_with("the build reported as linux/arm64 is linux/amd64"),
        "{error}"
    );
    assert!(w.tags().is_empty(), "no tag points at a mislabeled build");

    // CI reports the right image; the failed publication stays failed until an operator
    // retries it, and then it completes.
    w.report(COMMIT, "v2.0.0", "linux/arm64", &w.arm64);
    let id = failed["id"].as_i64().expect("id");
    let response = http()
        .post(w.hoist.url(&format!("/v1/publications/{id}/retry")))
        .bearer_auth(API_TOKEN)
        .send()
        .expect("retry");
    assert_eq!(response.status(), 202);
    w.wait_for("the retried publication", |w| w.tags().len() == 5);
    let detail = w.get(&format!("/v1/publications/{id}"));
    assert_eq!(detail["state"], "succeeded");
}

/// A prerelease gets only its own tags; promoting it moves the floating tags; deleting it
/// rolls `latest` back to the highest remaining release.
#[test]
fn prerelease_then_released_then_deleted_moves_floating_tags_forward_and_back() {
    let w = world();
    let deliver = |delivery: &str, action: &str, id: u64, tag: &str, prerelease: bool| {
        w.release_action(delivery, action, id, tag, prerelease);
    };
    w.report(OLDER_COMMIT, "v1.2.3", "linux/amd64", &w.amd64);
    w.report(OLDER_COMMIT, "v1.2.3", "linux/arm64", &w.arm64);
    deliver("d-1", "published", 1, "v1.2.3", false);
    w.wait_for("v1.2.3's tags", |w| w.tags().len() == 5);
    let v1 = w
        .tags()
        .iter()
        .find(|(t, _)| t == "latest")
        .map(|(_, d)| d.clone())
        .expect("latest");

    w.report(COMMIT, "v2.0.0", "linux/amd64", &w.amd64);
    w.report(COMMIT, "v2.0.0", "linux/arm64", &w.arm64);
    deliver("d-2", "published", 2, "v2.0.0", true);
    w.wait_for("the prerelease's own tags", |w| w.tags().len() == 7);
    let names = tag_names(&w.tags()).join(" ");
    assert_eq!(names, "1 1.2 1.2.3 2.0.0 latest sha-1111111 sha-6113728");
    let latest = |w: &World| {
        w.tags()
            .iter()
            .find(|(t, _)| t == "latest")
            .map(|(_, d)| d.clone())
            .unwrap_or_default()
    };
    assert_eq!(latest(&w), v1, "a prerelease does not move latest");

    deliver("d-3", "released", 2, "v2.0.0", false);
    w.wait_for("the floating tags of the promoted release", |w| {
        w.tags().len() == 9
    });
    let v2 = w
        .tags()
        .iter()
        .find(|(t, _)| t == "2.0.0")
        .map(|(_, d)| d.clone())
        .expect("2.0.0");
    assert_eq!(latest(&w), v2);

    deliver("d-4", "deleted", 2, "v2.0.0", false);
    w.wait_for("latest rolled back", |w| latest(w) == v1);
    let events = w.get(&format!("/v1/tag-events?image={}&tag=latest", w.image()));
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["create", "move", "rollback"]);
    // The registry agrees with the ledger.
    let raw = raw_manifest(&format!("{}:latest", w.image()), None);
    assert_eq!(hoist_tests::image::sha256(&raw), v1);
}

/// kill -9 in the middle of copying, then a restart: the publication completes, with
/// exactly one ledger event per tag and every tag pointing at what the registry has.
#[test]
fn hoist_killed_mid_copy_completes_the_publication_after_a_restart() {
    let mut w = world_with(true, false);
    let proxy = w.proxy.as_ref().expect("proxy");
    // The first blob reads hang long enough to kill hoist while it copies.
    proxy.add(Rule {
        method: "GET",
        path_contains: "/blobs/",
        times: 2,
        fault: Fault::Delay(Duration::from_secs(3)),
    });
    w.report(COMMIT, "v1.2.3", "linux/amd64", &w.amd64);
    w.report(COMMIT, "v1.2.3", "linux/arm64", &w.arm64);
    w.release("rel-1", 1, "v1.2.3");
    w.wait_for("the copy to start", |w| {
        w.proxy
            .as_ref()
            .is_some_and(|p| p.seen().iter().any(|s| s.path.contains("/blobs/")))
            || w.get("/v1/publications?state=running")["items"]
                .as_array()
                .is_some_and(|i| !i.is_empty())
    });
    assert!(w.tags().is_empty(), "killed before any tag");

    w.hoist.crash_and_restart(&[
        ("SECRET", SECRET),
        ("CI_TOKEN", CI_TOKEN),
        ("API_TOKEN", API_TOKEN),
        ("READ_TOKEN", READ_TOKEN),
    ]);

    w.wait_for("the tags after the restart", |w| w.tags().len() == 5);
    let events = w.get(&format!("/v1/tag-events?image={}", w.image()));
    assert_eq!(
        events["items"].as_array().expect("items").len(),
        5,
        "one event per tag"
    );
    for (tag, digest) in w.tags() {
        let raw = raw_manifest(&format!("{}:{tag}", w.image()), None);
        assert_eq!(hoist_tests::image::sha256(&raw), digest, "{tag}");
    }
    assert!(
        w.hoist
            .log()
            .contains("re-queued the jobs a previous run left unfinished"),
        "{}",
        w.hoist.log()
    );
}

/// Builds of the default branch are published without a release, with the branch's tags
/// only: here the default policy's `sha-<7>`.
#[test]
fn default_branch_builds_publish_the_sha_tag_without_a_release() {
    let w = world();
    w.report_ref(COMMIT, "refs/heads/main", "linux/amd64", &w.amd64);
    w.report_ref(COMMIT, "refs/heads/main", "linux/arm64", &w.arm64);
    w.wait_for("the sha tag", |w| !w.tags().is_empty());
    let tags = w.tags();
    assert_eq!(tag_names(&tags), ["sha-6113728"]);
    let raw = raw_manifest(&format!("{}:sha-6113728", w.image()), None);
    let index: Value = serde_json::from_slice(&raw).expect("index");
    assert_eq!(
        index["annotations"]["org.opencontainers.image.revision"],
        COMMIT
    );
    assert!(
        index["annotations"]
            .get("org.opencontainers.image.version")
            .is_none()
    );
    // A build of another branch publishes nothing.
    w.report_ref(OLDER_COMMIT, "refs/heads/feature", "linux/amd64", &w.amd64);
    w.report_ref(OLDER_COMMIT, "refs/heads/feature", "linux/arm64", &w.arm64);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(tag_names(&w.tags()), ["sha-6113728"]);
}

/// The target registry answers 503 to everything for a while: the publication backs off,
/// retries, and completes once the registry is back, with one ledger event per tag.
#[test]
fn a_target_registry_that_is_down_for_a_while_still_gets_the_publication() {
    let w = world_with(false, true);
    let proxy = w.target_proxy.as_ref().expect("proxy");
    for method in ["HEAD", "GET", "PUT", "POST"] {
        proxy.add(Rule {
            method,
            path_contains: "/v2/",
            times: 12,
            fault: Fault::Unavailable,
        });
    }
    w.report(COMMIT, "v1.2.3", "linux/amd64", &w.amd64);
    w.report(COMMIT, "v1.2.3", "linux/arm64", &w.arm64);
    w.release("rel-1", 1, "v1.2.3");
    w.wait_for("the tags once the registry is back", |w| {
        w.tags().len() == 5
    });
    assert!(
        proxy.seen().iter().any(|s| s.status == 503),
        "the registry was down"
    );
    let events = w.get(&format!("/v1/tag-events?image={}", w.image()));
    assert_eq!(events["items"].as_array().expect("items").len(), 5);
    let metrics = http()
        .get(w.hoist.url("/metrics"))
        .send()
        .expect("metrics")
        .text()
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("hoist_registry_retries_total{reason=\"503\"} ")),
        "{metrics}"
    );
    assert!(
        w.hoist.log().contains("job failed; will retry"),
        "the job backed off:\n{}",
        w.hoist.log()
    );
}

/// A release on a branch that no build, tag push or `target_commitish` resolves: hoist asks
/// GitHub's API for the tag's commit and publishes; a tag GitHub does not know stays
/// unresolved, clearly.
#[test]
fn a_release_nothing_else_resolves_is_resolved_through_the_github_api() {
    let github = FakeGitHub::start("gh-api-token-0123");
    github.add_tag("v3.0.0", COMMIT);
    let extra = format!("api_url = \"{}\"\ntoken_env = \"GH_TOKEN\"", github.url());
    let w = world_configured(false, false, &extra, &[("GH_TOKEN", "gh-api-token-0123")]);
    // Builds of a feature branch: they say nothing about any tag.
    w.report_ref(COMMIT, "refs/heads/feature", "linux/amd64", &w.amd64);
    w.report_ref(COMMIT, "refs/heads/feature", "linux/arm64", &w.arm64);
    w.release("rel-1", 1, "v3.0.0");
    w.wait_for("the tags", |w| w.tags().len() == 5);
    let releases = w.get("/v1/releases?repository=Codertocat/Hello-World");
    assert_eq!(releases["items"][0]["commit"], COMMIT);
    assert_eq!(releases["items"][0]["commit_source"], "github_api");
    assert_eq!(
        github.requests(),
        ["/repos/Codertocat/Hello-World/commits/tags%2Fv3.0.0"]
    );

    w.release("rel-2", 2, "v9.9.9");
    w.wait_for("GitHub asked about v9.9.9", |_| {
        github.requests().len() == 2
    });
    std::thread::sleep(Duration::from_millis(500));
    let releases = w.get("/v1/releases?repository=Codertocat/Hello-World");
    assert_eq!(releases["items"][1]["commit"], Value::Null);
    assert!(w.hoist.log().contains("GitHub answered 422 Unprocessable Entity for the commit of Codertocat/Hello-World@v9.9.9"), "{}", w.hoist.log());
}

/// CI may report one index for all platforms (no `platform` in the report): each of its
/// platforms counts, and hoist's index names the same platform manifests.
#[test]
fn an_index_reported_by_ci_counts_for_each_of_its_platforms() {
    let w = world();
    let body = json!({
        "repository": "Codertocat/Hello-World",
        "commit": COMMIT,
        "ref": "refs/tags/v1.2.3",
        "image": format!("{}/ci/app@{}", w.staging_host, w.index),
    });
    let response = http()
        .post(w.hoist.url("/v1/builds"))
        .bearer_auth(oidc_token(COMMIT, "refs/tags/v1.2.3"))
        .json(&body)
        .send()
        .expect("report");
    assert_eq!(response.status(), 202);
    w.release("rel-1", 1, "v1.2.3");
    w.wait_for("the tags", |w| w.tags().len() == 5);
    let raw = raw_manifest(&format!("{}:1.2.3", w.image()), None);
    let index: Value = serde_json::from_slice(&raw).expect("index");
    let digests: Vec<&str> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| m["digest"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(digests, [w.amd64.as_str(), w.arm64.as_str()]);
}

impl World {
    /// The usual order for a tag-triggered workflow: the release, then one platform's
    /// build; the publication waits for the other.
    fn release_then_amd64(&self) {
        self.release("rel-1", 1, "v1.2.3");
        self.report(COMMIT, "v1.2.3", "linux/amd64", &self.amd64);
        self.wait_for("a publication waiting for arm64", |w| {
            let list = w.get("/v1/publications?state=waiting");
            list["items"][0]["error"] == "waiting for builds of linux/arm64"
        });
    }

    /// The publication ended `succeeded` with one ledger event per tag.
    fn assert_published_once(&self) {
        let publications = self.get("/v1/publications");
        let items = publications["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "{publications}");
        assert_eq!(items[0]["state"], "succeeded", "{publications}");
        let events = self.get(&format!("/v1/tag-events?image={}", self.image()));
        assert_eq!(
            events["items"].as_array().expect("items").len(),
            5,
            "one event per tag: {events}"
        );
        for (tag, digest) in self.tags() {
            let raw = raw_manifest(&format!("{}:{tag}", self.image()), None);
            assert_eq!(hoist_tests::image::sha256(&raw), digest, "{tag}");
        }
    }
}

/// The last build arrives while the target refuses uploads for longer than the registry
/// client retries, so the job itself is retried, and the publication still ends.
#[test]
fn builds_last_and_a_target_down_long_enough_to_retry_the_job_still_succeed() {
    let w = world_with(false, true);
    w.release_then_amd64();
    let proxy = w.target_proxy.as_ref().expect("proxy");
    proxy.add(Rule {
        method: "POST",
        path_contains: "/blobs/uploads/",
        // More than every parallel upload's retries together (concurrency 4 x 6 attempts).
        times: 30,
        fault: Fault::Unavailable,
    });
    w.report(COMMIT, "v1.2.3", "linux/arm64", &w.arm64);
    w.wait_for("the tags once the registry is back", |w| {
        w.tags().len() == 5
    });
    assert!(
        w.hoist.log().contains("job failed; will retry"),
        "the job itself was retried:\n{}",
        w.hoist.log()
    );
    w.assert_published_once();
}

/// hoist is killed while the last build's blobs upload; after a restart the publication
/// that was running goes on and ends.
#[test]
fn builds_last_and_hoist_killed_mid_upload_completes_after_a_restart() {
    let mut w = world_with(false, true);
    w.release_then_amd64();
    w.target_proxy.as_ref().expect("proxy").add(Rule {
        method: "POST",
        path_contains: "/blobs/uploads/",
        times: 2,
        fault: Fault::Delay(Duration::from_secs(3)),
    });
    w.report(COMMIT, "v1.2.3", "linux/arm64", &w.arm64);
    w.wait_for("the upload to start", |w| {
        w.target_proxy
            .as_ref()
            .is_some_and(|p| p.seen().iter().any(|s| s.path.contains("/blobs/uploads/")))
    });
    w.hoist.crash_and_restart(&[
        ("SECRET", SECRET),
        ("CI_TOKEN", CI_TOKEN),
        ("API_TOKEN", API_TOKEN),
        ("READ_TOKEN", READ_TOKEN),
    ]);
    w.wait_for("the tags after the restart", |w| w.tags().len() == 5);
    w.assert_published_once();
}

/// The outside checkers against a live hoist that holds a publication: schemathesis fuzzes
/// every operation of /openapi.json with `--checks all` under a read and an admin token,
/// and promtool checks a scrape of /metrics.
#[test]
fn the_api_passes_schemathesis_and_its_metrics_pass_promtool() {
    let schemathesis = hoist_tests::require_command(
        "schemathesis",
        "run scripts/test, which installs schemathesis 4.32.5 from PyPI into target/test-tools",
    );
    let promtool = hoist_tests::require_tool("promtool", "prometheus");
    let w = world();
    w.report(COMMIT, "v1.2.3", "linux/amd64", &w.amd64);
    w.report(COMMIT, "v1.2.3", "linux/arm64", &w.arm64);
    w.release("rel-1", 1, "v1.2.3");
    w.wait_for("the tags", |w| w.tags().len() == 5);

    for token in [READ_TOKEN, API_TOKEN] {
        let dir = tempfile::tempdir().expect("a working folder");
        let output = std::process::Command::new(&schemathesis)
            .current_dir(dir.path())
            .args([
                "run",
                &w.hoist.url("/openapi.json"),
                "--checks",
                "all",
                "--header",
                &format!("Authorization: Bearer {token}"),
                "--max-examples",
                "40",
                "--generation-deterministic",
                "--no-color",
            ])
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
            .expect("run schemathesis");
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "schemathesis found failures:\n{report}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(report.contains("Tested: 16"), "{report}");
    }
    // The fuzzing changed nothing that was published.
    assert_eq!(w.tags().len(), 5);

    let scrape = http().get(w.hoist.url("/metrics")).send().expect("scrape");
    assert_eq!(
        scrape.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = scrape.text().expect("metrics text");
    let mut check = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run promtool");
    std::io::Write::write_all(
        &mut check.stdin.take().expect("promtool's stdin"),
        text.as_bytes(),
    )
    .expect("feed promtool");
    let checked = check.wait_with_output().expect("promtool's verdict");
    assert!(
        checked.status.success(),
        "promtool check metrics:\n{}{}\n{text}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}
