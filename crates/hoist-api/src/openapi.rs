//! `GET /openapi.json`: the OpenAPI 3.1 document, built from the endpoint table below. A test
//! sends a request to every documented endpoint, so the table cannot name a route the
//! router does not serve.

use axum::Json;
use serde_json::{Value, json};

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Public,
    /// `X-Hub-Signature-256` with the webhook secret.
    GitHubSignature,
    /// A `[[ci_token]]` bearer token.
    CiToken,
    /// An `[[api_token]]` bearer token, read or admin.
    Operator,
    /// An `[[api_token]]` bearer token with the admin role.
    Admin,
}

#[derive(Debug)]
pub(crate) struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub access: Access,
    /// Query parameters: (name, required, description).
    pub query: &'static [(&'static str, bool, &'static str)],
    /// Success status and the schema name of its body.
    pub success: (u16, &'static str),
}

const PAGE: [(&str, bool, &str); 2] = [
    ("limit", false, "Items per page, 1 to 500 (default 100)."),
    (
        "next",
        false,
        "The cursor the previous page returned in `next`.",
    ),
];

pub(crate) const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        method: "get",
        path: "/healthz",
        summary: "The process is up; version, git commit and build time.",
        access: Access::Public,
        query: &[],
        success: (200, "Health"),
    },
    Endpoint {
        method: "get",
        path: "/readyz",
        summary: "The database accepts writes and the process is not shutting down.",
        access: Access::Public,
        query: &[],
        success: (200, "Ready"),
    },
    Endpoint {
        method: "get",
        path: "/openapi.json",
        summary: "This document.",
        access: Access::Public,
        query: &[],
        success: (200, "OpenApi"),
    },
    Endpoint {
        method: "get",
        path: "/metrics",
        summary: "Prometheus metrics: publications by state, jobs, queue depth, tags per image.",
        access: Access::Public,
        query: &[],
        success: (200, "Metrics"),
    },
    Endpoint {
        method: "post",
        path: "/webhooks/github",
        summary: "A GitHub webhook delivery (release, push, ping); verified, deduplicated on X-GitHub-Delivery, recorded.",
        access: Access::GitHubSignature,
        query: &[],
        success: (202, "WebhookAnswer"),
    },
    Endpoint {
        method: "post",
        path: "/v1/builds",
        summary: "CI reports an image it pushed, by digest, for one platform (or an index).",
        access: Access::CiToken,
        query: &[],
        success: (202, "BuildAnswer"),
    },
    Endpoint {
        method: "get",
        path: "/v1/builds",
        summary: "Builds recorded for a repository, optionally one commit.",
        access: Access::Operator,
        query: &[
            ("repository", true, "GitHub owner/name."),
            ("commit", false, "40-hex commit."),
            PAGE[0],
            PAGE[1],
        ],
        success: (200, "BuildList"),
    },
    Endpoint {
        method: "get",
        path: "/v1/releases",
        summary: "Releases recorded for a repository, with their resolved commit and its source.",
        access: Access::Operator,
        query: &[("repository", true, "GitHub owner/name."), PAGE[0], PAGE[1]],
        success: (200, "ReleaseList"),
    },
    Endpoint {
        method: "get",
        path: "/v1/images",
        summary: "Configured images with their tag counts.",
        access: Access::Operator,
        query: &[],
        success: (200, "ImageList"),
    },
    Endpoint {
        method: "get",
        path: "/v1/tags",
        summary: "Where each tag of an image points now.",
        access: Access::Operator,
        query: &[
            ("image", true, "A configured image, registry/path."),
            PAGE[0],
            PAGE[1],
        ],
        success: (200, "TagList"),
    },
    Endpoint {
        method: "put",
        path: "/v1/tags/{tag}",
        summary: "Re-points a tag, immutable ones included, at a digest the image holds (admin token); recorded as force.",
        access: Access::Admin,
        query: &[("image", true, "A configured image, registry/path.")],
        success: (202, "ForceAnswer"),
    },
    Endpoint {
        method: "get",
        path: "/v1/tag-events",
        summary: "The append-only ledger of tag moves of an image, optionally one tag.",
        access: Access::Operator,
        query: &[
            ("image", true, "A configured image, registry/path."),
            ("tag", false, "One tag."),
            PAGE[0],
            PAGE[1],
        ],
        success: (200, "TagEventList"),
    },
    Endpoint {
        method: "get",
        path: "/v1/publications",
        summary: "Publications, newest first, optionally of one image or in one state.",
        access: Access::Operator,
        query: &[
            ("image", false, "A configured image, registry/path."),
            (
                "state",
                false,
                "waiting, running, succeeded, failed, stalled or withdrawn.",
            ),
            PAGE[0],
            PAGE[1],
        ],
        success: (200, "PublicationList"),
    },
    Endpoint {
        method: "get",
        path: "/v1/publications/{id}",
        summary: "One publication with its steps (start, end, error) and the builds it is made of.",
        access: Access::Operator,
        query: &[],
        success: (200, "PublicationDetail"),
    },
    Endpoint {
        method: "post",
        path: "/v1/publications/{id}/retry",
        summary: "Runs a failed or stalled publication again (admin token).",
        access: Access::Admin,
        query: &[],
        success: (202, "Publication"),
    },
    Endpoint {
        method: "get",
        path: "/v1/digests/{digest}",
        summary: "The tags of an image that point at a digest.",
        access: Access::Operator,
        query: &[("image", true, "A configured image, registry/path.")],
        success: (200, "TagList"),
    },
];

/// A state enum's spellings, for a schema's `enum`.
fn states<T: std::fmt::Display>(all: &[T]) -> Value {
    all.iter().map(ToString::to_string).collect()
}

/// The same, for a field that may be null.
fn states_or_null<T: std::fmt::Display>(all: &[T]) -> Value {
    let mut values = states(all);
    if let Value::Array(items) = &mut values {
        items.push(Value::Null);
    }
    values
}

fn string() -> Value {
    json!({ "type": "string" })
}

fn nullable(kind: &str) -> Value {
    json!({ "type": [kind, "null"] })
}

fn object(properties: Value) -> Value {
    let required: Vec<String> = properties
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    json!({ "type": "object", "properties": properties, "required": required })
}

fn list_of(item: &str) -> Value {
    object(json!({
        "items": { "type": "array", "items": { "$ref": format!("#/components/schemas/{item}") } },
        "next": nullable("string"),
    }))
}

fn schemas() -> Value {
    let build = object(json!({
        "id": { "type": "integer" }, "repository": string(), "commit": string(), "ref": nullable("string"),
        "platform": nullable("string"), "image": string(), "digest": string(), "reported_by": string(),
        "ref_source": { "enum": ["claim", "oidc"] },
        "ci_identity": { "oneOf": [{ "type": "null" }, object(json!({
            "run_id": string(), "run_attempt": string(), "workflow_ref": string(), "job_workflow_ref": string(),
            "actor": string(), "event_name": string(), "runner_environment": nullable("string"),
        }))] },
        "created_at": string(), "updated_at": string(),
    }));
    let release = object(json!({
        "id": { "type": "integer" }, "repository": string(), "github_id": { "type": "integer" }, "tag": string(),
        "target_commitish": string(), "prerelease": { "type": "boolean" }, "state": { "enum": states(hoist_domain::ReleaseState::ALL) },
        "last_action": string(), "commit": nullable("string"), "commit_source": nullable("string"),
        "detail": nullable("string"), "claim_conflict": nullable("string"),
        "created_at": string(), "updated_at": string(),
    }));
    let tag = object(json!({
        "tag": string(), "digest": string(), "updated_at": string(), "publication_id": nullable("integer"), "event_id": { "type": "integer" },
    }));
    let tag_event = object(json!({
        "id": { "type": "integer" }, "image": string(), "tag": string(), "digest": string(), "previous_digest": nullable("string"),
        "kind": { "enum": ["create", "move", "rollback", "force"] }, "reason": string(), "publication_id": nullable("integer"),
        "release_tag": nullable("string"), "created_at": string(),
    }));
    json!({
        "Error": object(json!({ "error": object(json!({ "code": string(), "message": string() })) })),
        "Health": object(json!({ "status": string(), "version": string(), "git_sha": string(), "built_at": string() })),
        "Ready": object(json!({ "status": string(), "database": string(), "checked_at": string() })),
        "OpenApi": { "type": "object" },
        "Metrics": { "type": "string", "description": "Prometheus text exposition format." },
        "ForceRequest": {
            "type": "object",
            "properties": { "digest": string(), "reason": string() },
            "required": ["digest", "reason"],
        },
        "ForceAnswer": object(json!({ "job": { "type": "integer" }, "image": string(), "tag": string(), "digest": string() })),
        "WebhookAnswer": {
            "type": "object",
            "properties": { "delivery": string(), "outcome": { "enum": ["pong", "accepted", "ignored"] }, "reason": string(), "release": { "type": "object" } },
            "required": ["delivery", "outcome"],
        },
        "BuildRequest": {
            "type": "object",
            "properties": { "repository": string(), "commit": string(), "ref": string(), "platform": string(), "image": string() },
            "required": ["repository", "commit", "image"],
            "additionalProperties": false,
        },
        "BuildAnswer": object(json!({ "status": { "enum": ["recorded", "unchanged", "replaced"] }, "build": { "$ref": "#/components/schemas/Build" } })),
        "Build": build,
        "BuildList": list_of("Build"),
        "Release": release,
        "ReleaseList": list_of("Release"),
        "Image": object(json!({ "image": string(), "github": string(), "platforms": { "type": "array", "items": string() }, "tags": { "type": "integer" } })),
        "ImageList": list_of("Image"),
        "Tag": tag,
        "TagList": list_of("Tag"),
        "TagEvent": tag_event,
        "TagEventList": list_of("TagEvent"),
        "Publication": object(json!({
            "id": { "type": "integer" }, "image": string(), "repository": string(), "commit": string(),
            "release_id": nullable("integer"), "state": { "enum": states(hoist_domain::PublicationState::ALL) },
            "step": { "enum": states_or_null(hoist_domain::Step::ALL) }, "error": nullable("string"),
            "index_digest": nullable("string"), "version_tag": nullable("string"),
            "created_at": string(), "updated_at": string(),
        })),
        "PublicationList": list_of("Publication"),
        "PublicationDetail": { "allOf": [{ "$ref": "#/components/schemas/Publication" }, object(json!({
            "steps": { "type": "array", "items": object(json!({ "step": string(), "started_at": string(), "finished_at": nullable("string"), "error": nullable("string") })) },
            "builds": { "type": "array", "items": { "$ref": "#/components/schemas/Build" } },
            "tags_written": { "type": "array", "items": { "$ref": "#/components/schemas/TagEvent" } },
        }))] },
    })
}

fn operation(endpoint: &Endpoint) -> Value {
    let error = json!({ "description": "Error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    let (status, schema) = endpoint.success;
    let mut responses = json!({
        status.to_string(): { "description": "Success", "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } },
    });
    let mut errors = vec!["500"];
    match endpoint.access {
        Access::Public => {}
        Access::GitHubSignature => errors.extend(["400", "401", "413", "415"]),
        Access::CiToken => errors.extend(["400", "401", "403", "409", "413", "415", "422", "503"]),
        Access::Operator => errors.extend(["400", "401", "404"]),
        Access::Admin => errors.extend(["401", "403", "404", "409"]),
    }
    for code in errors {
        responses[code] = error.clone();
    }
    let mut parameters: Vec<Value> = endpoint
        .query
        .iter()
        .map(|(name, required, description)| {
            json!({ "name": name, "in": "query", "required": required, "description": description, "schema": string() })
        })
        .collect();
    for name in ["digest", "id", "tag"] {
        if endpoint.path.contains(&format!("{{{name}}}")) {
            parameters
                .push(json!({ "name": name, "in": "path", "required": true, "schema": string() }));
        }
    }
    let mut op =
        json!({ "summary": endpoint.summary, "parameters": parameters, "responses": responses });
    match endpoint.access {
        Access::CiToken => op["security"] = json!([{ "ciToken": [] }]),
        Access::Operator | Access::Admin => op["security"] = json!([{ "apiToken": [] }]),
        Access::GitHubSignature => {
            if let Some(p) = op["parameters"].as_array_mut() {
                for name in ["X-Hub-Signature-256", "X-GitHub-Event", "X-GitHub-Delivery"] {
                    p.push(json!({ "name": name, "in": "header", "required": true, "schema": string() }));
                }
            }
        }
        Access::Public => {}
    }
    if endpoint.path == "/v1/tags/{tag}" {
        op["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ForceRequest" } } } });
    }
    if endpoint.path == "/v1/builds" && endpoint.method == "post" {
        op["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/BuildRequest" } } } });
    }
    op
}

/// The whole document.
pub(crate) fn document(version: &str) -> Value {
    let mut paths = json!({});
    for endpoint in ENDPOINTS {
        paths[endpoint.path][endpoint.method] = operation(endpoint);
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "hoist", "version": version, "description": "Publishes container images to OCI registries from GitHub releases and CI builds." },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "ciToken": { "type": "http", "scheme": "bearer", "description": "A GitHub Actions OIDC token for [github] oidc_audience (its repository, sha and ref bind the report), or a static [[ci_token]] from the config (its ref is a claim)." },
                "apiToken": { "type": "http", "scheme": "bearer", "description": "An [[api_token]] from the config." },
            },
        },
    })
}

pub(crate) async fn serve_openapi(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
) -> Json<Value> {
    Json(document(&state.build().version))
}
