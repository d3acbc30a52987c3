//! The OpenAPI document describes exactly what the router serves.

use axum::body::Body;
use axum::http::{Request, StatusCode};

use super::*;

#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = app().await;
    let doc = serde_json::to_value(crate::openapi::document("9.9.9")).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            if !["get", "post", "put", "delete"].contains(&method.as_str()) {
                continue;
            }
            operations += 1;
            let uri = path
                .replace("{digest}", &format!("sha256:{}", "0".repeat(64)))
                .replace("{id}", "1")
                .replace("{tag}", "latest");
            let request = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&uri)
                .body(Body::empty())
                .unwrap();
            let reply = app.send(request).await;
            let fell_through = reply.status == StatusCode::NOT_FOUND
                && reply.body["error"]["message"] == "no such endpoint"
                || reply.status == StatusCode::METHOD_NOT_ALLOWED;
            assert!(
                !fell_through,
                "{method} {path} is documented but not routed"
            );
        }
    }
    assert_eq!(operations, 17);
}

#[tokio::test]
async fn openapi_json_is_served_and_references_only_defined_schemas() {
    let app = app().await;
    let reply = app.send(get("/openapi.json")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc = &reply.body;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], "9.9.9");
    let text = doc.to_string();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{name} is referenced but not defined"
        );
    }
    let post = &doc["paths"]["/v1/builds"]["post"];
    assert!(post["security"].is_array());
    assert!(post["responses"]["422"].is_object());
    // Parameters carry the domain's grammars.
    let digest = &doc["paths"]["/v1/digests/{digest}"]["get"]["parameters"][0];
    assert_eq!(digest["in"], "path");
    assert_eq!(digest["schema"]["pattern"], hoist_domain::Digest::PATTERN);
    let id = &doc["paths"]["/v1/publications/{id}"]["get"]["parameters"][0];
    assert_eq!(id["schema"]["type"], "integer");
    let metrics = &doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"];
    assert!(
        metrics
            .get("text/plain; version=0.0.4; charset=utf-8")
            .is_some(),
        "{metrics}"
    );
    assert!(doc["components"]["securitySchemes"]["apiToken"].is_object());
}

/// The patterns in the document are the domain's grammars, which its property tests
/// check against the parsers.
#[test]
fn parameter_patterns_are_the_domain_s() {
    use hoist_domain::tags::TagName;
    use hoist_domain::{CommitSha, Digest, ImageRef, RepoName};
    let doc = serde_json::to_value(crate::openapi::document("1")).unwrap();
    let expected = [
        ("repository", RepoName::PATTERN),
        ("commit", CommitSha::PATTERN),
        ("image", ImageRef::NAME_PATTERN),
        ("digest", Digest::PATTERN),
    ];
    let mut seen = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                let pattern = &p["schema"]["pattern"];
                if let Some((_, want)) = expected.iter().find(|(n, _)| *n == name)
                    && pattern.is_string()
                {
                    assert_eq!(pattern, want, "{method} {path} {name}");
                    seen += 1;
                }
                if name == "tag" {
                    assert_eq!(pattern, TagName::PATTERN, "{method} {path}");
                    seen += 1;
                }
            }
        }
    }
    assert!(seen >= 8, "{seen} patterned parameters");
    let force = &doc["components"]["schemas"]["ForceRequest"]["properties"]["digest"];
    assert_eq!(force["pattern"], Digest::PATTERN);
}
