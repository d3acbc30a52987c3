//! OpenAPI schemas of the domain types the rows hold, for `#[schema(schema_with = ...)]`:
//! the enums list the spellings the API shows, taken from the domain's own tables.

use hoist_domain::{PublicationState, ReleaseState, Step};
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{Object, RefOr, Schema};

fn one_of_strings(values: Vec<Value>, nullable: bool) -> Object {
    let kind = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    let mut values = values;
    if nullable {
        values.push(Value::Null);
    }
    ObjectBuilder::new()
        .schema_type(kind)
        .enum_values(Some(values))
        .build()
}

pub fn publication_state() -> Object {
    one_of_strings(
        PublicationState::ALL
            .iter()
            .map(|s| Value::from(s.as_str()))
            .collect(),
        false,
    )
}

pub fn step_or_null() -> Object {
    one_of_strings(
        Step::ALL.iter().map(|s| Value::from(s.as_str())).collect(),
        true,
    )
}

pub fn release_state() -> Object {
    one_of_strings(
        ReleaseState::ALL
            .iter()
            .map(|s| Value::from(s.as_str()))
            .collect(),
        false,
    )
}

pub fn ref_source() -> Object {
    one_of_strings(vec!["claim".into(), "oidc".into()], false)
}

pub fn tag_event_kind() -> Object {
    one_of_strings(
        ["create", "move", "rollback", "force"]
            .into_iter()
            .map(Value::from)
            .collect(),
        false,
    )
}

/// The run of a build reported under an OIDC token, or null.
pub fn ci_identity_or_null() -> RefOr<Schema> {
    let text = || ObjectBuilder::new().schema_type(Type::String);
    let mut identity =
        ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::Object, Type::Null]));
    for field in [
        "run_id",
        "run_attempt",
        "workflow_ref",
        "job_workflow_ref",
        "actor",
        "event_name",
    ] {
        identity = identity.property(field, text()).required(field);
    }
    identity = identity.property(
        "runner_environment",
        ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null])),
    );
    RefOr::T(Schema::Object(identity.build()))
}
