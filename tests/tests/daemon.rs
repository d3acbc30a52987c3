//! `hoist serve` as an operator runs it: defaults, probes, signals, logs and bad configs.

use std::time::Duration;

use hoist_tests::{Hoist, HoistRun, free_port, http};
use serde_json::Value;

const CI_TOKEN: &str = "ci-token-value-7f3a9c2e1b";
const API_TOKEN: &str = "api-token-value-5d8e0a4c6f";
const WEBHOOK_SECRET: &str = "webhook-secret-value-2b9d";
const REGISTRY_PASSWORD: &str = "registry-password-value-8c1f";

fn config(listen: &str) -> String {
    format!(
        r#"
[server]
listen = "{listen}"
shutdown_timeout = "3s"

[github]
webhook_secret_env = "HOIST_WEBHOOK_SECRET"

[[ci_token]]
name = "ci"
token_env = "HOIST_CI_TOKEN"
repositories = ["octo-org/*"]

[[api_token]]
name = "ops"
token_env = "HOIST_API_TOKEN"
role = "admin"

[[registry]]
host = "ghcr.io"
username = "octo-bot"
password_env = "GHCR_TOKEN"

[[repository]]
github = "octo-org/app"
image = "ghcr.io/octo-org/app"
platforms = ["linux/amd64", "linux/arm64"]
"#
    )
}

fn secrets_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("HOIST_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("HOIST_CI_TOKEN", CI_TOKEN),
        ("HOIST_API_TOKEN", API_TOKEN),
        ("GHCR_TOKEN", REGISTRY_PASSWORD),
    ]
}

fn get_json(url: &str) -> (u16, Value) {
    let response = http().get(url).send().expect("request");
    let status = response.status().as_u16();
    (status, response.json().expect("JSON body"))
}

/// The README's quick start: no config at all listens on 127.0.0.1:8080 and keeps its
/// database in data/hoist.db under the working folder.
#[test]
fn serve_on_built_in_defaults_creates_and_migrates_data_hoist_db() {
    let mut hoist = Hoist::start(None, &[], "127.0.0.1:8080");
    let db = hoist.dir().join("data/hoist.db");
    assert!(db.is_file(), "data/hoist.db was not created");

    let (status, body) = get_json(&hoist.url("/readyz"));
    assert_eq!(status, 200, "{body}");
    let (status, body) = get_json(&hoist.url("/healthz"));
    assert_eq!(status, 200);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    let sha = body["git_sha"].as_str().unwrap();
    assert!(
        !sha.is_empty() && sha != "unknown",
        "git sha stamped: {sha}"
    );
    assert!(body["built_at"].as_str().unwrap().ends_with('Z'));

    let (status, _) = hoist.signal_and_wait("TERM", Duration::from_secs(5));
    assert!(status.success(), "{status}");
}

#[test]
fn sigterm_and_sigint_stop_it_with_exit_zero_in_under_five_seconds() {
    for signal in ["TERM", "INT"] {
        let listen = format!("127.0.0.1:{}", free_port());
        let mut hoist = Hoist::start(Some(&config(&listen)), &secrets_env(), &listen);
        assert_eq!(get_json(&hoist.url("/readyz")).0, 200);
        let (status, took) = hoist.signal_and_wait(signal, Duration::from_secs(5));
        assert_eq!(
            status.code(),
            Some(0),
            "SIG{signal}: {status}\n{}",
            hoist.log()
        );
        assert!(took < Duration::from_secs(5), "SIG{signal} took {took:?}");
        assert!(
            hoist.log().contains(&format!("SIG{signal}")),
            "{}",
            hoist.log()
        );
        assert!(
            std::net::TcpStream::connect(&listen).is_err(),
            "still listening after SIG{signal}"
        );
    }
}

#[test]
fn healthcheck_exits_zero_against_a_ready_hoist_and_non_zero_against_a_stopped_one() {
    let listen = format!("127.0.0.1:{}", free_port());
    let text = config(&listen);
    let mut hoist = Hoist::start(Some(&text), &secrets_env(), &listen);

    // Reads the listen address from the same config; needs none of its secrets.
    let check = HoistRun::new(hoist.dir(), &["--config", "hoist.toml", "healthcheck"]).output();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    let explicit = HoistRun::new(
        hoist.dir(),
        &["healthcheck", "--url", &hoist.url("/readyz")],
    )
    .output();
    assert!(explicit.status.success());

    hoist.signal_and_wait("TERM", Duration::from_secs(5));
    let check = HoistRun::new(hoist.dir(), &["--config", "hoist.toml", "healthcheck"]).output();
    assert_eq!(check.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");

    let not_ready = HoistRun::new(
        hoist.dir(),
        &["healthcheck", "--url", &format!("http://{listen}/nope")],
    )
    .output();
    assert_eq!(not_ready.status.code(), Some(1));
}

#[test]
fn serve_refuses_to_start_on_a_broken_config_and_lists_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let broken =
        config("127.0.0.1:1").replace("linux/arm64", "linux/amd65") + "\n[publish]\nworkers = 0\n";
    std::fs::write(dir.path().join("hoist.toml"), broken).unwrap();
    let out = HoistRun::new(dir.path(), &["--config", "hoist.toml", "serve"])
        .env("HOIST_CI_TOKEN", CI_TOKEN)
        .output();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "hoist.toml has 5 problem(s)",
        "github.webhook_secret_env: environment variable \\\"HOIST_WEBHOOK_SECRET\\\" is not set",
        "api_token[0].token_env: environment variable \\\"HOIST_API_TOKEN\\\" is not set",
        "registry[0].password_env: environment variable \\\"GHCR_TOKEN\\\" is not set",
        "publish.workers: must be between 1 and 64",
        "repository[0].platforms[1]: \\\"linux/amd65\\\" is not a known architecture (did you mean amd64?)",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(
        !dir.path().join("data").exists(),
        "nothing is created from a broken config"
    );
}

#[test]
fn serve_fails_clearly_when_its_port_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hoist.toml"),
        format!("[server]\nlisten = \"{listen}\"\n"),
    )
    .unwrap();
    let out = HoistRun::new(dir.path(), &["--config", "hoist.toml", "serve"]).output();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {listen}")),
        "{stderr}"
    );
}

#[test]
fn secrets_never_reach_the_logs_even_at_trace_level() {
    let listen = format!("127.0.0.1:{}", free_port());
    let mut env = secrets_env();
    env.push(("RUST_LOG", "trace"));
    let mut hoist = Hoist::start(Some(&config(&listen)), &env, &listen);
    let client = http();
    client
        .get(hoist.url("/readyz"))
        .bearer_auth(API_TOKEN)
        .send()
        .unwrap();
    client
        .get(hoist.url("/nope"))
        .bearer_auth(CI_TOKEN)
        .send()
        .unwrap();
    hoist.signal_and_wait("TERM", Duration::from_secs(5));

    let log = hoist.log();
    assert!(
        log.lines().count() > 10,
        "trace logging produced output:\n{log}"
    );
    for secret in [CI_TOKEN, API_TOKEN, WEBHOOK_SECRET, REGISTRY_PASSWORD] {
        assert!(!log.contains(secret), "{secret:?} leaked into the log");
    }
}

#[test]
fn json_log_format_writes_one_json_object_per_line() {
    let listen = format!("127.0.0.1:{}", free_port());
    let mut env = secrets_env();
    env.push(("HOIST_LOG_FORMAT", "json"));
    let mut hoist = Hoist::start(Some(&config(&listen)), &env, &listen);
    http()
        .get(hoist.url("/healthz"))
        .header("x-request-id", "req-77")
        .send()
        .unwrap();
    hoist.signal_and_wait("TERM", Duration::from_secs(5));

    let log = hoist.log();
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert!(lines.iter().any(|l| l["message"] == "listening"), "{log}");
    let request = lines
        .iter()
        .find(|l| l["span"]["request_id"] == "req-77")
        .unwrap_or_else(|| panic!("no request line with its id:\n{log}"));
    assert_eq!(request["status"], 200);
}

#[test]
fn migrate_creates_the_schema_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hoist.toml"),
        "[database]\nurl = \"sqlite://state/ledger.db\"\n",
    )
    .unwrap();
    let shipped = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"))
        .expect("the migrations folder")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count();
    for _ in 0..2 {
        let out = HoistRun::new(dir.path(), &["--config", "hoist.toml", "migrate"]).output();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("database schema is up to date"), "{stderr}");
        assert!(
            stderr.contains(&format!("migrations={shipped}")),
            "{shipped} migrations: {stderr}"
        );
    }
    assert!(dir.path().join("state/ledger.db").is_file());
}

#[test]
fn version_names_the_commit_and_build_time() {
    let dir = tempfile::tempdir().unwrap();
    let out = HoistRun::new(dir.path(), &["--version"]).output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(&format!("hoist {} (", env!("CARGO_PKG_VERSION"))),
        "{stdout}"
    );
    assert!(stdout.contains(", built 20"), "{stdout}");
}
