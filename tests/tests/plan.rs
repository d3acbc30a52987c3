//! `hoist plan`: metadata-action lines on their own, and a configured repository's policy
//! against its ledger.

use std::time::Duration;

use hoist_store::{Store, StoreOptions};
use hoist_tests::HoistRun;
use serde_json::Value;

const SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";

fn plan(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["plan"];
    all.extend_from_slice(args);
    let out = HoistRun::new(dir, &all).output();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn metadata_action_lines_give_one_tag_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = plan(
        dir.path(),
        &[
            "--ref",
            "refs/tags/v1.2.3",
            "--sha",
            SHA,
            "--tags",
            "type=semver,pattern={{version}}",
            "--tags",
            "type=semver,pattern={{major}}.{{minor}}",
            "--tags",
            "type=semver,pattern={{major}}",
            "--tags",
            "type=sha",
            "--flavor",
            "latest=auto",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let mut tags: Vec<&str> = stdout.lines().collect();
    tags.sort_unstable();
    assert_eq!(tags, ["1", "1.2", "1.2.3", "latest", "sha-6113728"]);
}

#[test]
fn a_prerelease_gets_only_its_own_version_and_json_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, _) = plan(
        dir.path(),
        &[
            "--ref",
            "refs/tags/v2.0.0",
            "--sha",
            SHA,
            "--tags",
            "type=semver,pattern={{version}}",
            "--tags",
            "type=semver,pattern={{major}}",
            "--prerelease",
            "--json",
        ],
    );
    assert_eq!(code, 0);
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    let tags = plan["tags"].as_array().unwrap();
    let major = tags.iter().find(|t| t["tag"] == "2").unwrap();
    assert_eq!(major["action"], "held_back");
    assert_eq!(major["reason"], "the GitHub release is marked prerelease");
    let full = tags.iter().find(|t| t["tag"] == "2.0.0").unwrap();
    assert_eq!(
        (full["action"].as_str(), full["role"].as_str()),
        (Some("write"), Some("pinned"))
    );
}

#[test]
fn bad_lines_and_refs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = plan(
        dir.path(),
        &[
            "--ref",
            "refs/tags/v1",
            "--sha",
            SHA,
            "--tags",
            "type=semvr",
        ],
    );
    assert_eq!(code, 1);
    assert_eq!(stderr.trim(), "hoist plan: tags[0]: unknown type \"semvr\"");
    let (code, _, stderr) = plan(
        dir.path(),
        &["--ref", "main", "--sha", SHA, "--tags", "type=sha"],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("must be refs/tags/<name> or refs/heads/<name>"),
        "{stderr}"
    );
    let (code, _, stderr) = plan(
        dir.path(),
        &[
            "--ref",
            "refs/heads/main",
            "--sha",
            "abc",
            "--tags",
            "type=sha",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("--sha: \"abc\" is not a commit"),
        "{stderr}"
    );
}

/// A config whose secrets are not in the environment: planning reads none.
const PLAN_CONFIG: &str = r#"
[github]
webhook_secret_env = "PLAN_TEST_UNSET_WEBHOOK_SECRET"
[[api_token]]
name = "ops"
token_env = "PLAN_TEST_UNSET_API_TOKEN"
[[registry]]
host = "ghcr.io"
anonymous = true
[[repository]]
github = "octo-org/app"
image = "ghcr.io/octo-org/app"
platforms = ["linux/amd64"]
"#;

/// Planning only reads: no database is created or migrated for it.
#[test]
fn with_a_config_planning_needs_no_secret_and_never_creates_the_database() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hoist.toml"), PLAN_CONFIG).unwrap();
    let (code, _, stderr) = plan(
        dir.path(),
        &[
            "--config",
            "hoist.toml",
            "--image",
            "ghcr.io/octo-org/app",
            "--ref",
            "refs/tags/v1.0.0",
            "--sha",
            SHA,
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("it does not exist; run hoist migrate or hoist serve first"),
        "{stderr}"
    );
    assert!(!dir.path().join("data").exists(), "nothing was created");
}

/// With the ledger: releasing 1.4.9 after 2.0.0 moves `1` and `1.4`, not `latest`.
#[test]
fn with_a_config_the_ledger_decides_which_floating_tags_move() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hoist.toml"), PLAN_CONFIG).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::open(&StoreOptions {
            url: format!("sqlite://{}/data/hoist.db", dir.path().display()),
            read_connections: 1,
            busy_timeout: Duration::from_secs(5),
        })
        .await
        .unwrap();
        let seeded = [
            ("v2.0.0", "2", &["2.0.0", "2", "latest"][..]),
            ("v1.4.0", "1", &["1.4.0", "1.4", "1"][..]),
        ];
        for (release, n, tags) in seeded {
            let digest = format!("sha256:{:064x}", n.parse::<u32>().unwrap());
            hoist_store::test_support::seed_published_release(
                &store,
                "octo-org/app",
                "ghcr.io/octo-org/app",
                release,
                &n.repeat(40),
                &digest,
                tags,
            )
            .await
            .unwrap();
        }
        store.close().await;
    });

    let (code, stdout, stderr) = plan(
        dir.path(),
        &[
            "--config",
            "hoist.toml",
            "--image",
            "ghcr.io/octo-org/app",
            "--ref",
            "refs/tags/v1.4.9",
            "--sha",
            SHA,
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    for leftover in ["data/hoist.db-wal", "data/hoist.db-shm"] {
        assert!(
            !dir.path().join(leftover).exists(),
            "planning left {leftover} behind"
        );
    }
    let line = |tag: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(tag))
            .unwrap_or_else(|| panic!("no line for {tag}:\n{stdout}"))
            .to_owned()
    };
    let one = format!("sha256:{:064x}", 1);
    assert!(line("1.4.9").ends_with("new"), "{stdout}");
    assert!(
        line("1.4").ends_with(&format!("moves from {one} to this release")),
        "{stdout}"
    );
    assert!(
        line("1").ends_with(&format!("moves from {one} to this release")),
        "{stdout}"
    );
    assert!(
        line("latest").ends_with("held back: v2.0.0 is published and newer"),
        "{stdout}"
    );
    assert!(line("sha-6113728").ends_with("new"), "{stdout}");
}
