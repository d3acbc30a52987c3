//! The kinds of work the durable queue carries. Ingestion enqueues them in the same
//! transaction as the facts they follow from; the publication workers consume them with an
//! exhaustive `match`, so a new kind cannot be forgotten.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// A release was published, promoted, unpublished or deleted and its commit is known
    /// (or, for a withdrawal, not needed): plan its publication or roll its tags back.
    Release { release_id: i64, action: String },
    /// The builds recorded for a commit changed: a waiting publication may now be complete.
    Builds { repository: String, commit: String },
    /// A published release's commit is known to no build, `target_commitish` or tag push:
    /// ask GitHub's REST API.
    ResolveRelease { release_id: i64 },
    /// An operator re-points a tag (even an immutable one) at a digest already in the
    /// image's repository.
    ForceTag {
        image: String,
        tag: String,
        digest: String,
        operator: String,
        reason: String,
    },
}

impl Job {
    /// The `jobs.kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Job::Release { .. } => "release",
            Job::Builds { .. } => "builds",
            Job::ForceTag { .. } => "force_tag",
            Job::ResolveRelease { .. } => "resolve_release",
        }
    }

    /// The whole job as JSON, for the `jobs.payload` column.
    pub fn to_payload(&self) -> String {
        serde_json::to_string(self).expect("a job serializes")
    }

    pub fn from_payload(payload: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_round_trip_through_their_payload() {
        let jobs = [
            Job::Release {
                release_id: 7,
                action: "published".into(),
            },
            Job::Builds {
                repository: "o/a".into(),
                commit: "a".repeat(40),
            },
        ];
        for job in jobs {
            let payload = job.to_payload();
            assert!(
                payload.contains(&format!("\"kind\":\"{}\"", job.kind())),
                "{payload}"
            );
            assert_eq!(Job::from_payload(&payload).unwrap(), job);
        }
    }
}
