//! The OpenAPI document describes exactly what the router serves.

use axum::body::Body;
use axum::http::{Request, StatusCode};

use super::*;
use crate::openapi::ENDPOINTS;

#[tokio::test]
async fn every_documented_endpoint_is_served() {
    let app = app().await;
    for endpoint in ENDPOINTS {
        let path = endpoint
            .path
            .replace("{digest}", &format!("sha256:{}", "0".repeat(64)))
            .replace("{id}", "1")
            .replace("{tag}", "latest");
        let request = Request::builder()
            .method(endpoint.method.to_uppercase().as_str())
            .uri(&path)
            .body(Body::empty())
            .unwrap();
        let reply = app.send(request).await;
        let fell_through = reply.status == StatusCode::NOT_FOUND
            && reply.body["error"]["message"] == "no such endpoint"
            || reply.status == StatusCode::METHOD_NOT_ALLOWED;
        assert!(
            !fell_through,
            "{} {} is documented but not routed",
            endpoint.method, endpoint.path
        );
    }
}

#[tokio::test]
async fn openapi_json_is_served_and_references_only_defined_schemas() {
    let app = app().await;
    let reply = app.send(get("/openapi.json")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc = &reply.body;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], "9.9.9");
    assert_eq!(
        doc["paths"].as_object().unwrap().len(),
        ENDPOINTS
            .iter()
            .map(|e| e.path)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    let text = doc.to_string();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{name} is referenced but not defined"
        );
    }
    assert!(doc["paths"]["/v1/builds"]["post"]["security"].is_array());
    assert!(doc["paths"]["/v1/builds"]["post"]["responses"]["422"].is_object());
}
