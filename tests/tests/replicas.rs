//! Two hoist processes on one PostgreSQL database, as two replicas behind a load balancer:
//! CI's reports and GitHub's deliveries for releases of several images are spread over
//! both, one replica is SIGKILLed while it copies a publication and restarted, and in the
//! end every tag is right, both replicas show the same ledger, equal to what the registry
//! serves (read with skopeo), no tag event is written twice, and no job or publication is
//! left behind. The database is a throwaway cluster (`hoist_store_postgres::cluster`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hoist_store_postgres::cluster::Cluster;
use hoist_tests::image::{Layout, noise, raw_manifest, sha256};
use hoist_tests::oidc::Issuer;
use hoist_tests::{Fault, Hoist, Proxy, Registry, Rule, deliver_webhook, free_port, http};
use serde_json::{Value, json};

const SECRET: &str = "replicas-webhook-secret";
const API_TOKEN: &str = "replicas-api-token-0123456789";
/// Images, one GitHub repository each, with two releases each.
const IMAGES: usize = 3;
/// The lease: short, so the job of the replica killed comes back soon, and long enough
/// that renewals on a busy machine keep it.
const LEASE: &str = "5s";

fn repository(n: usize) -> String {
    format!("Codertocat/app-{n}")
}

/// Release v1.`minor`.0 of image `n` is this commit: its `sha-` tag starts with `minor`.
fn commit(n: usize, minor: u32) -> String {
    format!("{minor:x}{n:x}{:038x}", 0)
}

struct Replicas {
    issuer: Issuer,
    staging: Proxy,
    _staging_registry: Registry,
    /// Where hoist publishes: a proxy that slows every manifest PUT, so the tag steps of
    /// two replicas overlap in time unless something serializes them.
    target: Proxy,
    _target_registry: Registry,
    replicas: Vec<Hoist>,
    configs: Vec<String>,
    database: String,
    /// `[publish] workers` of every replica.
    workers: u32,
    _layout: Layout,
    amd64: String,
    arm64: String,
}

impl Replicas {
    fn env() -> [(&'static str, &'static str); 2] {
        [("SECRET", SECRET), ("API_TOKEN", API_TOKEN)]
    }

    fn config(&self, listen: &str) -> String {
        let mut config = format!(
            r#"
[server]
listen = "{listen}"
[database]
url = "{database}"
[publish]
lease = "{LEASE}"
workers = {workers}
[github]
webhook_secret_env = "SECRET"
{oidc}
[[api_token]]
name = "ops"
token_env = "API_TOKEN"
role = "admin"
[[registry]]
host = "{staging}"
anonymous = true
insecure = true
[[registry]]
host = "{target}"
anonymous = true
insecure = true
"#,
            database = self.database,
            workers = self.workers,
            oidc = self.issuer.config_lines(),
            staging = self.staging.host(),
            target = self.target.host(),
        );
        for n in 0..IMAGES {
            config.push_str(&format!(
                "[[repository]]\ngithub = \"{}\"\nimage = \"{}\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\nsources = [\"{}/ci/app\"]\n",
                repository(n),
                self.image(n),
                self.staging.host()
            ));
        }
        config
    }

    /// Starts one more replica on the database.
    fn start_replica(&mut self) {
        let listen = format!("127.0.0.1:{}", free_port());
        let config = self.config(&listen);
        self.replicas
            .push(Hoist::start(Some(&config), &Self::env(), &listen));
        self.configs.push(config);
    }

    fn image(&self, n: usize) -> String {
        format!("{}/codertocat/app-{n}", self.target.host())
    }

    /// CI reports both platforms of release v1.`minor`.0 of image `n`, to `replica`.
    fn report(&self, replica: usize, n: usize, minor: u32) {
        let (commit, git_ref) = (commit(n, minor), format!("refs/tags/v1.{minor}.0"));
        for (platform, digest) in [("linux/amd64", &self.amd64), ("linux/arm64", &self.arm64)] {
            let body = json!({
                "repository": repository(n),
                "commit": commit,
                "ref": git_ref,
                "platform": platform,
                "image": format!("{}/ci/app@{digest}", self.staging.host()),
            });
            let response = http()
                .post(self.replicas[replica].url("/v1/builds"))
                .bearer_auth(self.issuer.token_for(&repository(n), &commit, &git_ref))
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
    }

    /// GitHub announces release v1.`minor`.0 of image `n`, to `replica`.
    fn release(&self, replica: usize, n: usize, minor: u32) {
        let mut body: Value =
            serde_json::from_slice(&hoist_tests::fixture("release.published")).expect("fixture");
        body["repository"]["full_name"] = json!(repository(n));
        body["repository"]["name"] = json!(format!("app-{n}"));
        body["release"]["tag_name"] = json!(format!("v1.{minor}.0"));
        body["release"]["id"] = json!(100 * n as u64 + u64::from(minor));
        let bytes = body.to_string();
        let url = self.replicas[replica].url("/webhooks/github");
        let delivery = format!("release-{n}-{minor}");
        let response = deliver_webhook(
            &http(),
            &url,
            SECRET,
            "release",
            &delivery,
            bytes.as_bytes(),
        )
        .expect("deliver");
        assert_eq!(
            response.status(),
            202,
            "{}",
            response.text().unwrap_or_default()
        );
    }

    fn get(&self, replica: usize, path: &str) -> Value {
        let response = http()
            .get(self.replicas[replica].url(path))
            .bearer_auth(API_TOKEN)
            .send()
            .expect("GET");
        assert_eq!(response.status(), 200, "{path}");
        response.json().expect("JSON")
    }

    /// Every current tag of image `n` (tag → digest), as `replica` shows it.
    fn tags(&self, replica: usize, n: usize) -> BTreeMap<String, String> {
        let page = self.get(replica, &format!("/v1/tags?image={}", self.image(n)));
        page["items"]
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

    /// One text value from the database, through psql.
    fn query(&self, sql: &str) -> String {
        Cluster::shared()
            .query(&self.database, sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    fn logs(&self) -> String {
        self.replicas
            .iter()
            .map(Hoist::log)
            .collect::<Vec<_>>()
            .join("\n----\n")
    }

    /// Waits until the two releases of every image are published and no job is left.
    fn wait_until_all_published(&self) {
        self.wait_for(
            "every publication to succeed",
            Duration::from_secs(180),
            |r| {
                r.query("SELECT count(*) FROM publications WHERE state = 'succeeded'")
                    == (2 * IMAGES).to_string()
                    && r.query("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')")
                        == "0"
            },
        );
    }

    fn wait_for(&self, what: &str, timeout: Duration, done: impl Fn(&Replicas) -> bool) {
        let start = Instant::now();
        while !done(self) {
            assert!(
                start.elapsed() < timeout,
                "{what} did not happen:\npublications:\n{}\njobs:\n{}\n{}",
                self.query("SELECT id, image, state, step, error FROM publications ORDER BY id"),
                self.query(
                    "SELECT id, kind, state, attempts, locked_by, last_error FROM jobs ORDER BY id"
                ),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn replicas() -> Replicas {
    let database = Cluster::shared().create_database().expect("a database");
    let staging_registry = Registry::start();
    let staging = Proxy::start(staging_registry.port());
    let target_registry = Registry::start();
    let target = Proxy::start(target_registry.port());
    target.add(Rule {
        method: "PUT",
        path_contains: "/manifests/",
        times: 10_000,
        fault: Fault::Delay(Duration::from_millis(150)),
    });
    let mut layout = Layout::new();
    let amd64 = layout.image("linux", "amd64", &[noise(4096, 1), noise(2048, 2)]);
    let arm64 = layout.image("linux", "arm64", &[noise(4096, 3), noise(2048, 4)]);
    layout.tag("amd64", &amd64);
    layout.tag("arm64", &arm64);
    layout.push(
        "amd64",
        &format!("{}/ci/app:amd64", staging_registry.host()),
        None,
    );
    layout.push(
        "arm64",
        &format!("{}/ci/app:arm64", staging_registry.host()),
        None,
    );
    Replicas {
        issuer: Issuer::start(),
        staging,
        _staging_registry: staging_registry,
        target,
        _target_registry: target_registry,
        replicas: Vec::new(),
        configs: Vec::new(),
        database,
        workers: 2,
        _layout: layout,
        amd64: amd64.digest,
        arm64: arm64.digest,
    }
}

#[test]
fn two_replicas_publish_every_release_right_through_a_sigkill_mid_publication() {
    let mut r = replicas();
    // The first blob reads hang, so the first replica is surely copying when it is killed.
    r.staging.add(Rule {
        method: "GET",
        path_contains: "/blobs/",
        times: 2,
        fault: Fault::Delay(Duration::from_secs(4)),
    });
    r.start_replica();
    r.report(0, 0, 2);
    r.release(0, 0, 2);
    r.wait_for("the first replica copying", Duration::from_secs(30), |r| {
        r.staging.seen().iter().any(|s| s.path.contains("/blobs/"))
    });
    r.start_replica();
    // The rest, spread over both: a release's reports and its delivery reach different
    // replicas, and v1.2.0 and v1.3.0 of one image are decided on different ones.
    let mut turn = 1;
    for n in 0..IMAGES {
        for minor in [3, 2] {
            if (n, minor) == (0, 2) {
                continue;
            }
            r.report(turn % 2, n, minor);
            r.release((turn + 1) % 2, n, minor);
            turn += 1;
        }
    }
    let running = r.get(1, "/v1/publications?state=running");
    assert!(
        running["items"].as_array().is_some_and(|i| !i.is_empty()),
        "killed mid-publication: {running}"
    );
    r.replicas[0].crash_and_restart(&Replicas::env());

    r.wait_until_all_published();
    assert_eq!(
        r.query("SELECT count(*) FROM publications WHERE state <> 'succeeded'"),
        "0",
        "none stranded, failed or stalled"
    );
    // The killed replica's job came back once its lease ran out: through a reconciler, or
    // the restarted replica's start-up.
    assert!(
        r.logs().contains("re-queued jobs whose lease ran out")
            || r.logs()
                .contains("re-queued the jobs a previous run left unfinished"),
        "the killed replica's job came back when its lease ran out:\n{}",
        r.logs()
    );

    for n in 0..IMAGES {
        let tags = r.tags(0, n);
        assert_eq!(tags, r.tags(1, n), "both replicas show image {n} alike");
        let names: Vec<&str> = tags.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "1",
                "1.2",
                "1.2.0",
                "1.3",
                "1.3.0",
                "latest",
                "sha-2000000",
                "sha-3000000"
            ]
            .map(|t| if t.starts_with("sha-") {
                format!("sha-{}{n:x}00000", &t[4..5])
            } else {
                t.to_owned()
            }),
            "image {n}"
        );
        // What the registry serves under every tag is what the ledger says.
        for (tag, digest) in &tags {
            let raw = raw_manifest(&format!("{}:{tag}", r.image(n)), None);
            assert_eq!(&sha256(&raw), digest, "image {n} tag {tag}");
        }
        // The floating tags are the newer release's, whichever replica decided last.
        let newer = &tags["1.3.0"];
        let older = &tags["1.2.0"];
        assert_ne!(newer, older);
        for tag in ["1", "latest", "1.3"] {
            assert_eq!(&tags[tag], newer, "image {n} tag {tag}");
        }
        assert_eq!(&tags["1.2"], older, "image {n}");
        // Each tag's events form one chain, none written twice.
        let events = r.get(0, &format!("/v1/tag-events?image={}", r.image(n)));
        let mut chains: BTreeMap<String, Vec<(Value, String)>> = BTreeMap::new();
        for event in events["items"].as_array().expect("items") {
            chains
                .entry(event["tag"].as_str().unwrap_or("").to_owned())
                .or_default()
                .push((
                    event["previous_digest"].clone(),
                    event["digest"].as_str().unwrap_or("").to_owned(),
                ));
        }
        assert_eq!(chains.len(), tags.len(), "image {n}: {events}");
        for (tag, chain) in &chains {
            let mut previous = Value::Null;
            for (from, to) in chain {
                assert_eq!(from, &previous, "image {n} tag {tag}: {chain:?}");
                assert_ne!(
                    from.as_str(),
                    Some(to.as_str()),
                    "image {n} tag {tag} moved nowhere"
                );
                previous = json!(to);
            }
            assert_eq!(
                previous.as_str(),
                Some(tags[tag].as_str()),
                "image {n} tag {tag}"
            );
            assert!(
                chain.len() <= 2,
                "image {n} tag {tag} moved more than forward once: {chain:?}"
            );
        }
    }
}

/// The tag steps of two releases of one image run at once on two replicas: with one worker
/// each, replica A takes v1.2.0 of every image and replica B v1.3.0, in the same order,
/// so each pair overlaps (the manifest PUTs are slowed). The newer release must end with
/// the floating tags whichever replica finishes last: the image's lock is the database's,
/// not a process's.
#[test]
fn two_replicas_tagging_one_image_at_once_leave_the_floating_tags_on_the_newest_release() {
    let mut r = replicas();
    r.workers = 1;
    r.start_replica();
    r.start_replica();
    for n in 0..IMAGES {
        r.report(0, n, 2);
        r.report(1, n, 3);
    }
    for n in 0..IMAGES {
        r.release(0, n, 2);
        r.release(1, n, 3);
    }
    r.wait_until_all_published();
    for n in 0..IMAGES {
        let tags = r.tags(0, n);
        let newer = &tags["1.3.0"];
        for tag in ["1", "latest", "1.3"] {
            assert_eq!(&tags[tag], newer, "image {n} tag {tag}: {tags:?}");
        }
        assert_eq!(&tags["1.2"], &tags["1.2.0"], "image {n}");
        for (tag, digest) in &tags {
            let raw = raw_manifest(&format!("{}:{tag}", r.image(n)), None);
            assert_eq!(&sha256(&raw), digest, "image {n} tag {tag}");
        }
    }
    // Both replicas published: the releases were decided on both.
    for (i, replica) in r.replicas.iter().enumerate() {
        assert!(
            replica.log().contains("publication succeeded"),
            "replica {i} published nothing:\n{}",
            replica.log()
        );
    }
}
