//! hoist behind the shipped `deploy/Caddyfile`: Caddy terminates TLS with its internal CA,
//! and GitHub's signed webhooks reach hoist over https and are recorded.

use hoist_tests::{Caddy, Hoist, deliver_webhook, fixture, free_port};
use serde_json::Value;

const WEBHOOK_SECRET: &str = "webhook-secret-over-tls-4e1d";
const API_TOKEN: &str = "api-token-over-tls-9c2b7a";

fn config(listen: &str) -> String {
    format!(
        r#"
[server]
listen = "{listen}"

[github]
webhook_secret_env = "HOIST_WEBHOOK_SECRET"

[[api_token]]
name = "ops"
token_env = "HOIST_API_TOKEN"
role = "read"

[[registry]]
host = "ghcr.io"
anonymous = true

[[repository]]
github = "Codertocat/Hello-World"
image = "ghcr.io/codertocat/hello-world"
platforms = ["linux/amd64"]
"#
    )
}

fn hoist_behind_caddy() -> (Hoist, Caddy) {
    let listen = format!("127.0.0.1:{}", free_port());
    let env = [
        ("HOIST_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("HOIST_API_TOKEN", API_TOKEN),
    ];
    let hoist = Hoist::start(Some(&config(&listen)), &env, &listen);
    let caddy = Caddy::start(&listen);
    (hoist, caddy)
}

/// Delivers the fixture `name` as GitHub would, over https through Caddy; returns the
/// status and the JSON answer.
fn deliver_over_tls(
    caddy: &Caddy,
    secret: &str,
    event: &str,
    delivery: &str,
    name: &str,
) -> (u16, Value) {
    let response = deliver_webhook(
        &caddy.client(),
        &caddy.url("/webhooks/github"),
        secret,
        event,
        delivery,
        &fixture(name),
    )
    .unwrap_or_else(|e| panic!("{e:?}\ncaddy:\n{}", caddy.log()));
    let status = response.status().as_u16();
    (status, response.json().expect("JSON answer"))
}

#[test]
fn a_signed_ping_over_https_through_caddy_is_answered_pong() {
    let (hoist, caddy) = hoist_behind_caddy();
    let (status, body) = deliver_over_tls(&caddy, WEBHOOK_SECRET, "ping", "tls-ping-1", "ping");
    assert_eq!(status, 200, "{body}\nhoist:\n{}", hoist.log());
    assert_eq!(body["outcome"], "pong", "{body}");
}

#[test]
fn a_signed_release_over_https_is_accepted_and_listed_for_operators() {
    let (hoist, caddy) = hoist_behind_caddy();
    let (status, body) = deliver_over_tls(
        &caddy,
        WEBHOOK_SECRET,
        "release",
        "tls-release-1",
        "release.published",
    );
    assert_eq!(status, 202, "{body}\nhoist:\n{}", hoist.log());
    assert_eq!(body["outcome"], "accepted", "{body}");

    let listed = caddy
        .client()
        .get(caddy.url("/v1/releases?repository=Codertocat/Hello-World"))
        .bearer_auth(API_TOKEN)
        .send()
        .expect("list releases over https");
    assert_eq!(listed.status().as_u16(), 200);
    let listed: Value = listed.json().unwrap();
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(items[0]["tag"], "0.0.1");
    assert_eq!(items[0]["state"], "published");
}

#[test]
fn a_webhook_with_a_bad_signature_is_refused_through_the_proxy_too() {
    let (_hoist, caddy) = hoist_behind_caddy();
    let (status, body) = deliver_over_tls(&caddy, "not-the-secret", "ping", "tls-forged-1", "ping");
    assert_eq!(status, 401, "{body}");
}

#[test]
fn caddy_keeps_probes_and_metrics_off_the_public_side() {
    let (hoist, caddy) = hoist_behind_caddy();
    for path in ["/metrics", "/readyz", "/healthz", "/", "/v1"] {
        let response = caddy.client().get(caddy.url(path)).send().unwrap();
        assert_eq!(response.status().as_u16(), 404, "{path}");
        // Caddy's own answer, not hoist's JSON error envelope.
        assert_eq!(response.text().unwrap(), "not found", "{path}");
    }
    // hoist itself answers them on the private side.
    let ready = hoist_tests::http()
        .get(hoist.url("/readyz"))
        .send()
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let openapi = caddy
        .client()
        .get(caddy.url("/openapi.json"))
        .send()
        .unwrap();
    assert_eq!(openapi.status().as_u16(), 200);
}
