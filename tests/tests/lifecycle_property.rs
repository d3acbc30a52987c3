//! Random interleavings of release actions (published, renamed, flagged and unflagged as
//! prerelease, deleted, unpublished, re-published), build reports, tag pushes, registry
//! failures and workers dropped mid-step, in-process against real registries. Whatever the
//! order, once the queue drains: no job is left or failed, no publication is waiting or
//! running, every tag in the ledger is in the registry at that digest, and every live
//! release's version tag and floating tags are where the tag policy puts them.
//!
//! `HOIST_PROPERTY_SEEDS` (default 8) and `HOIST_PROPERTY_STEPS` (default 24) size it; a
//! failure prints its seed, and `HOIST_PROPERTY_SEED=<n>` replays one.

use std::collections::BTreeMap;
use std::time::Duration;

use hoist_tests::app::{COMMIT_A, COMMIT_B, COMMIT_C, World, release_body, release_edited};
use hoist_tests::{Fault, Rule};
use serde_json::Value;

const COMMITS: [&str; 3] = [COMMIT_A, COMMIT_B, COMMIT_C];
const TAGS: [&str; 6] = ["v1.0.0", "v1.1.0", "v1.2.0", "v2.0.0", "v2.1.0", "v3.0.0"];

/// xorshift64*: small, seedable, good enough to pick actions.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// What the script has told GitHub, release by release.
#[derive(Debug, Clone)]
struct Release {
    id: u64,
    tag: &'static str,
    target: &'static str,
    prerelease: bool,
    /// Deleted releases are gone for good; their tag is free again.
    deleted: bool,
    published: bool,
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread")]
async fn any_interleaving_of_edits_builds_and_faults_ends_with_the_tags_the_policy_gives() {
    let seeds: Vec<u64> = match std::env::var("HOIST_PROPERTY_SEED") {
        Ok(one) => vec![one.parse().expect("HOIST_PROPERTY_SEED is a number")],
        Err(_) => (1..=env_number("HOIST_PROPERTY_SEEDS", 8)).collect(),
    };
    let steps = env_number("HOIST_PROPERTY_STEPS", 24);
    let mut checked = 0;
    for seed in seeds {
        let (log, tags) = run(seed, steps).await;
        eprintln!("seed {seed}: {tags} tag(s) checked; {}", log.join("; "));
        checked += tags;
    }
    assert!(
        checked > 0,
        "no seed ended with a live release: the check saw nothing"
    );
}

/// Returns the script and how many tags the model checked.
async fn run(seed: u64, steps: u64) -> (Vec<String>, usize) {
    let w = World::new().await;
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut releases: Vec<Release> = Vec::new();
    let mut log = Vec::new();
    for _ in 0..steps {
        let action = step(&w, &mut rng, &mut releases).await;
        log.push(action);
    }
    settle(&w).await;
    let context = format!("seed {seed}: {}", log.join("; "));
    let checked = check(&w, &context).await;
    w.finish().await;
    (log, checked)
}

fn free_tag(rng: &mut Rng, releases: &[Release]) -> Option<&'static str> {
    let free: Vec<&'static str> = TAGS
        .iter()
        .copied()
        .filter(|t| !releases.iter().any(|r| !r.deleted && r.tag == *t))
        .collect();
    (!free.is_empty()).then(|| *rng.pick(&free))
}

/// One random thing happening; returns what, for the failure message.
async fn step(w: &World, rng: &mut Rng, releases: &mut Vec<Release>) -> String {
    let alive: Vec<usize> = (0..releases.len())
        .filter(|&i| !releases[i].deleted)
        .collect();
    match rng.below(11) {
        0 | 1 => {
            let Some(tag) = free_tag(rng, releases) else {
                return "no free tag".to_owned();
            };
            let target = if rng.below(2) == 0 {
                "master"
            } else {
                *rng.pick(&COMMITS)
            };
            let release = Release {
                id: 100 + releases.len() as u64,
                tag,
                target,
                prerelease: rng.below(4) == 0,
                deleted: false,
                published: true,
            };
            deliver(w, &release, "published").await;
            releases.push(release);
            format!("publish {tag} on {}", &target[..1])
        }
        2 if !alive.is_empty() => {
            let i = *rng.pick(&alive);
            let Some(tag) = free_tag(rng, releases) else {
                return "no free tag".to_owned();
            };
            let from = releases[i].tag;
            releases[i].tag = tag;
            let r = &releases[i];
            w.deliver(
                "release",
                &release_edited(r.id, from, tag, r.target, r.prerelease),
            )
            .await;
            format!("rename {from} to {tag}")
        }
        3 if !alive.is_empty() => {
            let i = *rng.pick(&alive);
            releases[i].prerelease = !releases[i].prerelease;
            let r = &releases[i];
            let action = if r.prerelease {
                "prereleased"
            } else {
                "released"
            };
            deliver(w, r, action).await;
            format!("{action} {}", r.tag)
        }
        // Deletions are final; at half the weight of the rest, most runs keep something live.
        4 if !alive.is_empty() && rng.below(2) == 0 => {
            let i = *rng.pick(&alive);
            releases[i].deleted = true;
            deliver(w, &releases[i], "deleted").await;
            format!("delete {}", releases[i].tag)
        }
        5 if !alive.is_empty() => {
            let i = *rng.pick(&alive);
            releases[i].published = !releases[i].published;
            let r = &releases[i];
            let action = if r.published {
                "published"
            } else {
                "unpublished"
            };
            deliver(w, r, action).await;
            format!("{action} {}", r.tag)
        }
        6 | 7 => {
            let commit = *rng.pick(&COMMITS);
            let git_ref = if alive.is_empty() || rng.below(3) == 0 {
                "refs/heads/dev".to_owned()
            } else {
                format!("refs/tags/{}", releases[*rng.pick(&alive)].tag)
            };
            for platform in ["amd64", "arm64"] {
                // A report the store refuses (a new digest after publishing) is fine here:
                // the images of a commit never change in this script.
                w.report(commit, &git_ref, platform).await;
            }
            format!("builds of {} for {git_ref}", &commit[..1])
        }
        8 if !alive.is_empty() => {
            let tag = releases[*rng.pick(&alive)].tag;
            let commit = *rng.pick(&COMMITS);
            w.push_tag(tag, commit).await;
            format!("push {tag} at {}", &commit[..1])
        }
        9 => {
            let times = 1 + rng.below(3);
            w.target_proxy.add(Rule {
                method: "POST",
                path_contains: "/blobs/uploads/",
                times,
                fault: Fault::Unavailable,
            });
            w.run_jobs().await;
            format!("{times} x 503 then run")
        }
        10 => {
            drop_a_worker(w).await;
            "worker dropped".to_owned()
        }
        _ => {
            w.run_jobs().await;
            "run".to_owned()
        }
    }
}

async fn deliver(w: &World, r: &Release, action: &str) {
    let body = release_body(action, r.id, r.tag, r.target, r.prerelease);
    w.deliver("release", &body).await;
}

/// Runs the next job with uploads hanging, drops it after a moment, and restarts the way
/// `hoist serve` does.
async fn drop_a_worker(w: &World) {
    w.target_proxy.add(Rule {
        method: "POST",
        path_contains: "/blobs/uploads/",
        times: 1,
        fault: Fault::Delay(Duration::from_secs(3)),
    });
    let pipeline = w.pipeline.clone();
    let worker = tokio::spawn(async move { pipeline.step().await });
    if tokio::time::timeout(Duration::from_millis(300), async {
        while !worker.is_finished() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .is_err()
    {
        worker.abort();
    }
    let _ = worker.await;
    w.store.requeue_running_jobs().await.expect("requeue");
}

/// Every commit a live release resolves to gets its builds, faults stop, and the queue
/// drains: what an operator would see once CI and the registry have caught up.
async fn settle(w: &World) {
    w.target_proxy.clear_rules();
    w.run_jobs().await;
    for release in w
        .get("/v1/releases?repository=Codertocat/Hello-World&limit=500")
        .await["items"]
        .as_array()
        .expect("items")
    {
        if let Some(commit) = release["commit"].as_str() {
            for platform in ["amd64", "arm64"] {
                w.report(commit, "refs/heads/dev", platform).await;
            }
        }
    }
    w.store.requeue_running_jobs().await.expect("requeue");
    w.reconcile().await;
    w.run_jobs().await;
}

/// (major, minor, patch) of a stable `vX.Y.Z`.
fn version(tag: &str) -> (u64, u64, u64) {
    let parts: Vec<u64> = tag
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse().expect("a number"))
        .collect();
    (parts[0], parts[1], parts[2])
}

/// Checks every live release's tags against the model; returns how many it checked.
async fn check(w: &World, context: &str) -> usize {
    let releases = w
        .get("/v1/releases?repository=Codertocat/Hello-World&limit=500")
        .await;
    let publications = w.publications().await;
    let tags = w.tags().await;
    // Live: published, not flagged prerelease, and its publication on its commit succeeded.
    if std::env::var_os("HOIST_PROPERTY_DEBUG").is_some() {
        eprintln!("releases: {releases}\npublications: {publications:?}\ntags: {tags:?}");
    }
    let mut live: Vec<((u64, u64, u64), String)> = Vec::new();
    for r in releases["items"].as_array().expect("items") {
        if r["state"] != "published" || r["prerelease"] == true || r["commit"].is_null() {
            continue;
        }
        let publication = publications.iter().find(|p| {
            p["release_id"] == r["id"] && p["commit"] == r["commit"] && p["state"] == "succeeded"
        });
        let Some(publication) = publication else {
            // Its publication failed for a reason the script can cause (an immutable tag
            // of the same name already elsewhere): it says so, and holds nothing.
            let failed = publications.iter().find(|p| p["release_id"] == r["id"]);
            assert!(
                failed.is_some_and(|p| p["state"] == "failed"
                    && p["error"].as_str().is_some_and(|e| e.contains("immutable"))),
                "{context}\n{} has no succeeded publication: {failed:?}",
                r["tag"]
            );
            eprintln!(
                "  {} failed: {}",
                r["tag"],
                failed.map_or(&Value::Null, |p| &p["error"])
            );
            continue;
        };
        let tag = r["tag"].as_str().expect("tag");
        let digest = publication["index_digest"]
            .as_str()
            .expect("index")
            .to_owned();
        let v = version(tag);
        assert_eq!(
            tags.get(&format!("{}.{}.{}", v.0, v.1, v.2)),
            Some(&digest),
            "{context}\n{tag}'s own tag: {tags:?}"
        );
        live.push((v, digest));
    }
    let mut expected: BTreeMap<String, &String> = BTreeMap::new();
    for (v, _) in &live {
        for (name, in_scope) in [
            (
                "latest".to_owned(),
                Box::new(|_: &(u64, u64, u64)| true) as Box<dyn Fn(&_) -> bool>,
            ),
            (
                format!("{}", v.0),
                Box::new(move |o: &(u64, u64, u64)| o.0 == v.0),
            ),
            (
                format!("{}.{}", v.0, v.1),
                Box::new(move |o: &(u64, u64, u64)| o.0 == v.0 && o.1 == v.1),
            ),
        ] {
            let highest = live
                .iter()
                .filter(|(o, _)| in_scope(o))
                .max_by_key(|(o, _)| *o)
                .map(|(_, d)| d)
                .expect("v itself is in scope");
            expected.insert(name, highest);
        }
    }
    let checked = live.len() + expected.len();
    for (name, digest) in expected {
        assert_eq!(
            tags.get(&name),
            Some(digest),
            "{context}\nfloating {name}: {tags:?}\nlive: {live:?}"
        );
    }
    checked
}
