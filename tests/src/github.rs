//! GitHub webhook deliveries as GitHub sends them: a captured public payload from
//! `tests/fixtures/github/`, signed with the test's secret.

use std::path::Path;

/// The bytes of `tests/fixtures/github/{name}.json`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/github")
        .join(format!("{name}.json"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// POSTs `body` to `url` the way GitHub delivers `event`: JSON, with the delivery id and
/// the `X-Hub-Signature-256` of `body` under `secret`.
pub fn deliver_webhook(
    client: &reqwest::blocking::Client,
    url: &str,
    secret: &str,
    event: &str,
    delivery: &str,
    body: &[u8],
) -> reqwest::Result<reqwest::blocking::Response> {
    client
        .post(url)
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header(
            "x-hub-signature-256",
            hoist_domain::github::sign(secret, body),
        )
        .body(body.to_vec())
        .send()
}
