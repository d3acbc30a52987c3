//! `hoist config check`: the shipped example passes; a broken file lists every problem.

use std::path::Path;

use hoist_tests::HoistRun;

fn example() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config/hoist.example.toml")
        .canonicalize()
        .expect("config/hoist.example.toml exists")
        .display()
        .to_string()
}

#[test]
fn the_example_config_passes_with_its_secrets_set() {
    let dir = tempfile::tempdir().unwrap();
    let out = HoistRun::new(dir.path(), &["config", "check", &example()])
        .env("HOIST_WEBHOOK_SECRET", "s3cret,old-s3cret")
        .env("HOIST_CI_TOKEN", "ci-token-0123456789")
        .env("HOIST_API_TOKEN", "api-token-0123456789")
        .env("GHCR_TOKEN", "ghp_example")
        .output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("ok (1 repositories, 1 registries, 1 CI tokens, 1 API tokens)"),
        "{stdout}"
    );
}

#[test]
fn the_example_config_passes_without_secrets_when_asked_not_to_read_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = HoistRun::new(dir.path(), &["config", "check", "--no-secrets", &example()]).output();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok, secrets not read"));
}

#[test]
fn hoist_config_env_var_names_the_file_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let out = HoistRun::new(dir.path(), &["config", "check", "--no-secrets"])
        .env("HOIST_CONFIG", &example())
        .output();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_broken_config_lists_every_problem_and_exits_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.toml"),
        r#"
[server]
listen = "everywhere"
[github]
oidc_audience = "hoist"
oidc_issuer = "http://token.example"
[[registry]]
host = "ghcr.io"
username = "bot"
[[repository]]
github = "octo-org/app"
image = "ghcr.io/octo-org/app"
platforms = ["linux/amd65"]
ci_workflows = ["release.yml"]
[[repository]]
github = "octo-org/app"
image = "quay.io/octo-org/other"
platforms = ["linux/arm64"]
"#,
    )
    .unwrap();
    let out = HoistRun::new(dir.path(), &["config", "check", "broken.toml"]).output();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = [
        "broken.toml: 7 problem(s)",
        r#"server.listen: "everywhere" is not an address like 127.0.0.1:8080"#,
        r#"github.oidc_issuer: "http://token.example" must be https: plain http is accepted only on a loopback address"#,
        r#"repository[0].ci_workflows[0]: "release.yml" is not a workflow glob: write owner/name/.github/workflows/<file>@<ref>, with * for any text (e.g. octo-org/app/.github/workflows/release.yml@*)"#,
        "registry[0]: password_env or password_file is required with username",
        r#"repository[0].platforms[0]: "linux/amd65" is not a known architecture (did you mean amd64?)"#,
        r#"repository[1].image: no [[registry]] entry for host "quay.io" (add one; anonymous = true for a registry without auth)"#,
        r#"repository[1].github: "octo-org/app" is already used by repository[0].github"#,
    ];
    for line in expected {
        assert!(
            stderr.lines().any(|l| l == line),
            "missing {line:?} in:\n{stderr}"
        );
    }
    assert_eq!(stderr.lines().count(), expected.len(), "{stderr}");
}

#[test]
fn a_file_that_is_not_toml_of_the_right_shape_is_reported_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("typo.toml"),
        "[server]\nlisten = \"127.0.0.1:1\"\nport = 8080\n",
    )
    .unwrap();
    let out = HoistRun::new(dir.path(), &["config", "check", "typo.toml"]).output();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("typo.toml") && stderr.contains("port") && stderr.contains("line 3"),
        "{stderr}"
    );

    let missing = HoistRun::new(dir.path(), &["config", "check", "absent.toml"]).output();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read absent.toml"));
}
