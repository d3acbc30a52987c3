//! The two ingress doors of a running hoist, over HTTP: signed GitHub deliveries (real
//! example payloads) and CI build reports, in either order.

use std::sync::OnceLock;
use std::time::Duration;

use hoist_tests::oidc::Issuer;
use hoist_tests::{Hoist, deliver_webhook, free_port, http};
use serde_json::{Value, json};

const SECRET: &str = "e2e-webhook-secret";
const CI_TOKEN: &str = "e2e-ci-token-0123456789";
const API_TOKEN: &str = "e2e-api-token-0123456789";
const COMMIT: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

/// The GitHub Actions OIDC issuer every hoist of this file trusts.
fn issuer() -> &'static Issuer {
    static ISSUER: OnceLock<Issuer> = OnceLock::new();
    ISSUER.get_or_init(Issuer::start)
}

fn start() -> Hoist {
    let listen = format!("127.0.0.1:{}", free_port());
    let oidc = issuer().config_lines();
    let config = format!(
        r#"
[server]
listen = "{listen}"
[github]
webhook_secret_env = "SECRET"
{oidc}
[[ci_token]]
name = "ci"
token_env = "CI_TOKEN"
repositories = ["Codertocat/*"]
[[api_token]]
name = "ops"
token_env = "API_TOKEN"
[[registry]]
host = "registry.example.test:5000"
anonymous = true
[[repository]]
github = "Codertocat/Hello-World"
image = "registry.example.test:5000/codertocat/hello-world"
platforms = ["linux/amd64", "linux/arm64"]
sources = ["registry.example.test:5000/ci/hello-world"]
"#
    );
    Hoist::start(
        Some(&config),
        &[
            ("SECRET", SECRET),
            ("CI_TOKEN", CI_TOKEN),
            ("API_TOKEN", API_TOKEN),
        ],
        &listen,
    )
}

fn fixture(name: &str) -> Value {
    serde_json::from_slice(&hoist_tests::fixture(name)).expect("fixture JSON")
}

fn deliver(hoist: &Hoist, event: &str, id: &str, body: &Value) -> (u16, Value) {
    let url = hoist.url("/webhooks/github");
    let bytes = body.to_string();
    let response =
        deliver_webhook(&http(), &url, SECRET, event, id, bytes.as_bytes()).expect("deliver");
    (
        response.status().as_u16(),
        response.json().expect("JSON answer"),
    )
}

fn report_build(hoist: &Hoist, platform: &str) -> (u16, Value) {
    let body = json!({
        "repository": "Codertocat/Hello-World",
        "commit": COMMIT,
        "ref": "refs/tags/v1.0.0",
        "platform": platform,
        "image": format!("registry.example.test:5000/ci/hello-world@{DIGEST}"),
    });
    // A run of the tag, with the OIDC token GitHub gave it: the hoist process fetches the
    // issuer's keys over HTTP and checks it.
    let token = issuer().token_for("Codertocat/Hello-World", COMMIT, "refs/tags/v1.0.0");
    let response = http()
        .post(hoist.url("/v1/builds"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .expect("report build");
    (
        response.status().as_u16(),
        response.json().expect("JSON answer"),
    )
}

fn releases(hoist: &Hoist) -> Vec<Value> {
    let response = http()
        .get(hoist.url("/v1/releases?repository=Codertocat/Hello-World"))
        .bearer_auth(API_TOKEN)
        .send()
        .expect("list releases");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().expect("JSON");
    body["items"].as_array().expect("items").clone()
}

fn release_v1(action: &str) -> Value {
    let mut body = fixture(&format!("release.{action}"));
    body["release"]["tag_name"] = json!("v1.0.0");
    body
}

#[test]
fn a_release_published_before_its_builds_is_resolved_by_an_oidc_signed_build_report() {
    let mut hoist = start();
    let (status, answer) = deliver(&hoist, "release", "d-1", &release_v1("published"));
    assert_eq!(status, 202, "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .expect("reason")
            .starts_with("commit of v1.0.0 not yet confirmed by GitHub")
    );

    let (status, answer) = report_build(&hoist, "linux/amd64");
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "recorded");
    let listed = releases(&hoist);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["commit"], COMMIT);
    assert_eq!(listed[0]["commit_source"], "oidc");

    // GitHub redelivers: same answer, nothing new.
    let (status, again) = deliver(&hoist, "release", "d-1", &release_v1("published"));
    assert_eq!((status, &again["delivery"]), (202, &json!("d-1")));
    assert_eq!(releases(&hoist).len(), 1);
    hoist.signal_and_wait("TERM", Duration::from_secs(5));
}

#[test]
fn builds_reported_before_the_release_resolve_it_on_arrival_and_survive_a_restart() {
    let hoist = start();
    report_build(&hoist, "linux/amd64");
    report_build(&hoist, "linux/arm64");
    let (_, answer) = deliver(&hoist, "release", "d-2", &release_v1("published"));
    assert_eq!(answer["release"]["commit_source"], "oidc");

    // Everything is in the database: a restarted hoist on the same folder still knows.
    let listen = hoist.url("").trim_start_matches("http://").to_owned();
    let config = std::fs::read_to_string(hoist.dir().join("hoist.toml")).expect("config");
    let dir = hoist.into_dir();
    let hoist = Hoist::start_in(
        dir,
        Some(&config),
        &[
            ("SECRET", SECRET),
            ("CI_TOKEN", CI_TOKEN),
            ("API_TOKEN", API_TOKEN),
        ],
        &listen,
    );
    let (status, again) = deliver(&hoist, "release", "d-2", &release_v1("published"));
    assert_eq!(status, 202);
    assert_eq!(
        again["release"]["commit"], COMMIT,
        "the first answer, kept across the restart"
    );
    assert_eq!(releases(&hoist).len(), 1);
}

#[test]
fn a_ping_and_a_wrongly_signed_delivery_over_http() {
    let hoist = start();
    let (status, answer) = deliver(&hoist, "ping", "p-1", &fixture("ping"));
    assert_eq!((status, answer["outcome"].as_str()), (200, Some("pong")));

    let url = hoist.url("/webhooks/github");
    let body = hoist_tests::fixture("release.published");
    let response =
        deliver_webhook(&http(), &url, "not-the-secret", "release", "forged", &body).expect("send");
    assert_eq!(response.status(), 401);
    let answer: Value = response.json().expect("JSON");
    assert_eq!(answer["error"]["code"], "unauthorized");
    assert!(releases(&hoist).is_empty());
}
