//! Tag policy: which tags a publication writes, in docker/metadata-action's syntax, and
//! hoist's forward-only rule for the floating ones.
//!
//! Three steps, all pure:
//! 1. [`TagPolicy::parse`] reads a repository's `tags` and `flavor` lines. Anything it does not
//!    understand is an error naming the line, so a policy that loads is one hoist can apply.
//! 2. [`TagPolicy::compute`] turns an event (ref, commit, default branch, time) into the tags
//!    the action would produce for it, in the action's order, each with its [`TagRole`].
//! 3. [`plan_release`] and [`plan_deletion`] decide, from the versions already published, which
//!    floating tags (`latest`, `1`, `1.2`, ...) move and which are held back; the pipeline
//!    then acts on that plain data.
//!
//! Where hoist departs from the action on purpose, the item that does it says why.

mod compute;
mod csv;
mod date;
mod floating;
mod name;
mod plan;
mod policy;
mod template;
mod version;

pub use compute::{ComputedTag, ComputedTags, EventContext, GitRef, TagRole};
pub use csv::CsvError;
pub use floating::{
    FloatingMove, HeldBack, HoldReason, ReleasePlan, Rollback, RollbackTarget, Scope,
    plan_deletion, plan_release,
};
pub use name::{TagName, TagNameError};
pub use plan::{PlannedTag, PublicationPlan};
pub use policy::TagPolicy;
pub use version::{Identifier, Version, VersionError};

use std::fmt;

/// Which input line an error is about: `tags[2]` or `flavor[0]`, counted from 0 as the
/// configuration's arrays are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineRef {
    Tags(usize),
    Flavor(usize),
}

impl fmt::Display for LineRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineRef::Tags(index) => write!(f, "tags[{index}]"),
            LineRef::Flavor(index) => write!(f, "flavor[{index}]"),
        }
    }
}

/// A policy line hoist cannot parse or apply. Parse errors are config errors; the two
/// evaluation errors (`EnableNotBoolean`, `InvalidTag`) depend on the event and surface when
/// tags are computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagPolicyError {
    #[error("{line}: empty line")]
    EmptyLine { line: LineRef },
    #[error("{line}: {source}")]
    Csv { line: LineRef, source: CsvError },
    #[error("{line}: unknown type {name:?}")]
    UnknownType { line: LineRef, name: String },
    #[error("{line}: type={name} is not supported: {why}")]
    UnsupportedType {
        line: LineRef,
        name: String,
        why: &'static str,
    },
    #[error("{line}: unknown attribute {key:?} for type={kind}")]
    UnknownAttribute {
        line: LineRef,
        kind: &'static str,
        key: String,
    },
    #[error("{line}: type={kind} needs a {key}= attribute")]
    MissingAttribute {
        line: LineRef,
        kind: &'static str,
        key: &'static str,
    },
    #[error("{line}: {key}={value:?} is invalid, expected {expected}")]
    InvalidValue {
        line: LineRef,
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{line}: {key}=: {reason}")]
    Template {
        line: LineRef,
        key: &'static str,
        reason: String,
    },
    #[error("{line}: {key}= is not a regular expression hoist can run: {reason}")]
    Regex {
        line: LineRef,
        key: &'static str,
        reason: String,
    },
    #[error("{line}: unknown flavor {key:?} (expected latest, prefix, suffix or onlatest)")]
    UnknownFlavor { line: LineRef, key: String },
    #[error("{line}: {field:?} is not key=value")]
    FlavorWithoutValue { line: LineRef, field: String },
    #[error("{line}: onlatest= must follow a prefix= or suffix= on the same line")]
    OnLatestWithoutTarget { line: LineRef },
    #[error("{line}: enable= evaluated to {value:?}, expected true or false")]
    EnableNotBoolean { line: LineRef, value: String },
    #[error("{line}: produced {tag:?}: {source}")]
    InvalidTag {
        line: LineRef,
        tag: String,
        source: TagNameError,
    },
    #[error("flavor: the latest tag would be {tag:?}: {source}")]
    InvalidLatestTag { tag: String, source: TagNameError },
}
