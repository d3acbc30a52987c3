//! Times whole publications through a running hoist, from the last event (the release
//! webhook) to every tag visible in the ledger:
//! (mount) two platforms CI pushed into the same registry, so every blob is mounted, by a
//! hoist without `[signing]` and one with it, run by run in turn, so the signature and
//! attestation's cost is read from one noisy machine at one time;
//! (copy) two platforms of one 200 MiB layer each, from a staging registry to another,
//! beside `hoist copy` of the same two images as an index to a new repository.
//! Each run publishes new content, or into a new repository, so nothing is already there.

use std::time::{Duration, Instant};

use clap::Parser;
use hoist_tests::image::{Layout, noise};
use hoist_tests::{Hoist, HoistRun, Registry, deliver_webhook, free_port, http};
use serde_json::{Value, json};

const SECRET: &str = "bench-publish-secret";
const CI_TOKEN: &str = "bench-publish-ci-token-0123";
const API_TOKEN: &str = "bench-publish-api-token-0123";

/// Whole-publication timings.
#[derive(Debug, Parser)]
struct Args {
    /// Mount-only publications to time.
    #[arg(long, default_value_t = 10)]
    mount_runs: usize,
    /// Cross-registry publications (and as many `hoist copy` runs) to time.
    #[arg(long, default_value_t = 3)]
    copy_runs: usize,
    /// Layer size of the cross-registry case, in MiB.
    #[arg(long, default_value_t = 200)]
    layer_mib: usize,
}

/// CI reports with GitHub Actions OIDC tokens from this issuer, so the tag it names is a
/// fact that resolves the release.
fn issuer() -> &'static hoist_tests::oidc::Issuer {
    static ISSUER: std::sync::OnceLock<hoist_tests::oidc::Issuer> = std::sync::OnceLock::new();
    ISSUER.get_or_init(hoist_tests::oidc::Issuer::start)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn config(listen: &str, registries: &[String], repositories: &[(String, String)]) -> String {
    let mut text = format!(
        "[server]\nlisten = \"{listen}\"\n[github]\nwebhook_secret_env = \"SECRET\"\n{oidc}\
         [[ci_token]]\nname = \"ci\"\ntoken_env = \"CI_TOKEN\"\nrepositories = [\"bench/*\"]\n\
         [[api_token]]\nname = \"ops\"\ntoken_env = \"API_TOKEN\"\n",
        oidc = issuer().config_lines()
    );
    for host in registries {
        text.push_str(&format!(
            "[[registry]]\nhost = \"{host}\"\nanonymous = true\ninsecure = true\n"
        ));
    }
    // CI pushes to `ci/app` on every registry of the bench.
    let sources: Vec<String> = registries
        .iter()
        .map(|h| format!("\"{h}/ci/app\""))
        .collect();
    let sources = sources.join(", ");
    for (github, image) in repositories {
        text.push_str(&format!(
            "[[repository]]\ngithub = \"{github}\"\nimage = \"{image}\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\nsources = [{sources}]\n"
        ));
    }
    text
}

fn start(config: &str) -> Hoist {
    let listen = config
        .lines()
        .find_map(|l| l.strip_prefix("listen = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("listen")
        .to_owned();
    Hoist::start(
        Some(config),
        &[
            ("SECRET", SECRET),
            ("CI_TOKEN", CI_TOKEN),
            ("API_TOKEN", API_TOKEN),
            ("RUST_LOG", "warn"),
        ],
        &listen,
    )
}

fn commit(n: usize) -> String {
    format!("{n:040x}")
}

fn report(hoist: &Hoist, github: &str, commit: &str, tag: &str, platform: &str, image: &str) {
    let body = json!({"repository": github, "commit": commit, "ref": format!("refs/tags/{tag}"), "platform": platform, "image": image});
    let response = http()
        .post(hoist.url("/v1/builds"))
        .bearer_auth(issuer().token_for(github, commit, &format!("refs/tags/{tag}")))
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

/// Sends the release webhook and waits until all `expected` tags of `image` are in the
/// ledger; returns the time from sending to seeing them.
fn release_and_wait(
    hoist: &Hoist,
    github: &str,
    id: u64,
    tag: &str,
    image: &str,
    expected: &[String],
) -> Duration {
    let mut body: Value =
        serde_json::from_slice(&hoist_tests::fixture("release.published")).expect("fixture");
    body["repository"]["full_name"] = json!(github);
    body["release"]["id"] = json!(id);
    body["release"]["tag_name"] = json!(tag);
    let bytes = body.to_string();
    let client = http();
    let started = Instant::now();
    let response = deliver_webhook(
        &client,
        &hoist.url("/webhooks/github"),
        SECRET,
        "release",
        &format!("d-{id}"),
        bytes.as_bytes(),
    )
    .expect("deliver");
    assert_eq!(response.status(), 202);
    let url = hoist.url(&format!("/v1/tags?image={image}&limit=500"));
    loop {
        let listed: Value = client
            .get(&url)
            .bearer_auth(API_TOKEN)
            .send()
            .expect("tags")
            .json()
            .expect("JSON");
        let have: Vec<&str> = listed["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|t| t["tag"].as_str())
            .collect();
        if expected.iter().all(|t| have.contains(&t.as_str())) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "tags never appeared:\n{}",
            hoist.log()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// One mount-only publication of fresh images (seeded by `seed`) by `hoist` from CI's
/// `host/ci/app` to `host/{path}`, reported for `github`; its time from release to tags.
fn mount_run(
    hoist: &Hoist,
    host: &str,
    github: &str,
    path: &str,
    run: usize,
    seed: u64,
) -> Duration {
    let mut layout = Layout::new();
    let amd64 = layout.image("linux", "amd64", &[noise(1 << 20, seed)]);
    let arm64 = layout.image("linux", "arm64", &[noise(1 << 20, seed + 1)]);
    layout.tag("amd64", &amd64);
    layout.tag("arm64", &arm64);
    layout.push("amd64", &format!("{host}/ci/app:{seed}-amd64"), None);
    layout.push("arm64", &format!("{host}/ci/app:{seed}-arm64"), None);
    let sha = commit(run + 1);
    let tag = format!("v1.0.{run}");
    for (platform, image) in [("linux/amd64", &amd64), ("linux/arm64", &arm64)] {
        let reported = format!("{host}/ci/app@{}", image.digest);
        report(hoist, github, &sha, &tag, platform, &reported);
    }
    let expected = vec![format!("1.0.{run}"), format!("sha-{}", &sha[..7])];
    release_and_wait(
        hoist,
        github,
        run as u64 + 1,
        &tag,
        &format!("{host}/{path}"),
        &expected,
    )
}

/// Whether `hoist`'s newest publication of `image` recorded a signature.
fn last_publication_signed(hoist: &Hoist, image: &str) -> bool {
    let client = http();
    let listed: Value = client
        .get(hoist.url(&format!("/v1/publications?image={image}&limit=1")))
        .bearer_auth(API_TOKEN)
        .send()
        .expect("publications")
        .json()
        .expect("JSON");
    let id = listed["items"][0]["id"].as_i64().expect("a publication");
    let shown: Value = client
        .get(hoist.url(&format!("/v1/publications/{id}")))
        .bearer_auth(API_TOKEN)
        .send()
        .expect("publication")
        .json()
        .expect("JSON");
    shown["signature_digest"].is_string() && shown["attestation_digest"].is_string()
}

fn main() {
    let args = Args::parse();

    // (mount): one registry; CI pushes to ci/app, one hoist publishes to bench/final,
    // another, signing, to bench/signed.
    let registry = Registry::start();
    let host = registry.host();
    let listen = format!("127.0.0.1:{}", free_port());
    let hoist = start(&config(
        &listen,
        std::slice::from_ref(&host),
        &[("bench/app".to_owned(), format!("{host}/bench/final"))],
    ));
    let keys = hoist_tests::KeyPair::generate();
    let signed_listen = format!("127.0.0.1:{}", free_port());
    let signing_hoist = start(&format!(
        "{}[signing]\nkey_file = {:?}\n",
        config(
            &signed_listen,
            std::slice::from_ref(&host),
            &[("bench/signing".to_owned(), format!("{host}/bench/signed"))],
        ),
        keys.private().display().to_string()
    ));
    let (mut mount_times, mut signed_times) = (Vec::new(), Vec::new());
    for run in 0..args.mount_runs {
        let seed = 1000 + run as u64 * 4;
        mount_times.push(mount_run(
            &hoist,
            &host,
            "bench/app",
            "bench/final",
            run,
            seed,
        ));
        signed_times.push(mount_run(
            &signing_hoist,
            &host,
            "bench/signing",
            "bench/signed",
            run,
            seed + 2,
        ));
    }
    assert!(
        last_publication_signed(&signing_hoist, &format!("{host}/bench/signed")),
        "the signing hoist signed nothing:\n{}",
        signing_hoist.log()
    );
    drop(hoist);
    drop(signing_hoist);

    // (copy): staging -> target, a new target repository per run, beside hoist copy.
    let staging = Registry::start();
    let target = Registry::start();
    let mut layout = Layout::new();
    let size = args.layer_mib << 20;
    let amd64 = layout.image("linux", "amd64", &[noise(size, 7)]);
    let arm64 = layout.image("linux", "arm64", &[noise(size, 8)]);
    let index = layout.index(&[(&amd64, "linux", "amd64"), (&arm64, "linux", "arm64")]);
    layout.tag("index", &index);
    layout.push("index", &format!("{}/ci/app:index", staging.host()), None);
    let repositories: Vec<(String, String)> = (0..args.copy_runs)
        .map(|run| {
            (
                format!("bench/copy{run}"),
                format!("{}/bench/publish{run}", target.host()),
            )
        })
        .collect();
    let listen = format!("127.0.0.1:{}", free_port());
    let hoist = start(&config(
        &listen,
        &[staging.host(), target.host()],
        &repositories,
    ));
    let (mut publish_times, mut copy_times) = (Vec::new(), Vec::new());
    let dir = tempfile::tempdir().expect("temp dir");
    for (run, (github, image)) in repositories.iter().enumerate() {
        let sha = commit(100 + run);
        report(
            &hoist,
            github,
            &sha,
            "v2.0.0",
            "linux/amd64",
            &format!("{}/ci/app@{}", staging.host(), amd64.digest),
        );
        report(
            &hoist,
            github,
            &sha,
            "v2.0.0",
            "linux/arm64",
            &format!("{}/ci/app@{}", staging.host(), arm64.digest),
        );
        publish_times.push(release_and_wait(
            &hoist,
            github,
            100 + run as u64,
            "v2.0.0",
            image,
            &["2.0.0".to_owned()],
        ));

        let started = Instant::now();
        let out = HoistRun::new(
            dir.path(),
            &[
                "copy",
                "--insecure-registry",
                &staging.host(),
                "--insecure-registry",
                &target.host(),
                &format!("{}/ci/app:index", staging.host()),
                &format!("{}/bench/copy{run}:index", target.host()),
            ],
        )
        .output();
        copy_times.push(started.elapsed());
        assert!(
            out.status.success(),
            "hoist copy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Each signed run against the unsigned run just before it: the pairs share the
    // machine's load of the moment.
    let mut differences: Vec<f64> = signed_times
        .iter()
        .zip(&mount_times)
        .map(|(s, m)| (s.as_secs_f64() - m.as_secs_f64()) * 1000.0)
        .collect();
    differences.sort_by(f64::total_cmp);
    let signing_cost = differences[differences.len() / 2];
    let mount = median(mount_times);
    let signed = median(signed_times);
    let publish = median(publish_times);
    let copy = median(copy_times);
    let ratio = publish.as_secs_f64() / copy.as_secs_f64();
    println!("{:<52} {:>10} {:>14}", "", "measured", "target");
    println!(
        "{:<52} {:>10} {:>14}",
        format!("(mount) last event -> tags, median of {}", args.mount_runs),
        format!("{} ms", mount.as_millis()),
        "< 500 ms"
    );
    println!(
        "{:<52} {:>10} {:>14}",
        format!(
            "(mount, signed) the same with [signing], median of {}",
            args.mount_runs
        ),
        format!("{} ms", signed.as_millis()),
        ""
    );
    println!(
        "{:<52} {:>10} {:>14}",
        "(mount) signing adds (median of paired differences)",
        format!("{signing_cost:.0} ms"),
        "<= 20 ms"
    );
    println!(
        "{:<52} {:>10} {:>14}",
        format!(
            "(copy) 2 x {} MiB publication, median of {}",
            args.layer_mib, args.copy_runs
        ),
        format!("{:.2} s", publish.as_secs_f64()),
        ""
    );
    println!(
        "{:<52} {:>10} {:>14}",
        "(copy) hoist copy of the same index, median",
        format!("{:.2} s", copy.as_secs_f64()),
        ""
    );
    println!(
        "{:<52} {:>10} {:>14}",
        "(copy) publication / hoist copy",
        format!("{ratio:.2}x"),
        "<= 1.2x"
    );
}
