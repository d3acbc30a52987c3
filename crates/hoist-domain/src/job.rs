//! The kinds of work the durable queue carries. Ingestion enqueues them in the same
//! transaction as the facts they follow from; the publication workers consume them with an
//! exhaustive `match`, so a new kind cannot be forgotten.
//!
//! A job names *what* to bring up to date, never *what happened*: the worker reads the
//! publication's or the release's current state and acts on that, so a job that runs late,
//! twice, or after a later event still does the right thing.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// Take a publication as far as it can go from the step it reached: wait for builds,
    /// copy, verify, put the index, write the tags.
    Publish { publication_id: i64 },
    /// A release stopped holding version `tag` of its image on `commit` (withdrawn,
    /// renamed, re-targeted or flagged prerelease): the floating tags that version held
    /// move back to the highest live version in their scope.
    Rollback {
        release_id: i64,
        tag: String,
        commit: String,
        /// The index that version was published as: only tags still there are its to give
        /// back (the publication may have put another index since, under a new name).
        index: String,
    },
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
            Job::Publish { .. } => "publish",
            Job::Rollback { .. } => "rollback",
            Job::ForceTag { .. } => "force_tag",
            Job::ResolveRelease { .. } => "resolve_release",
        }
    }

    /// The publication the job works on, for the `jobs.publication_id` column: the queue
    /// runs one job of a publication at a time and the reconciler finds publications
    /// without one.
    pub fn publication_id(&self) -> Option<i64> {
        match self {
            Job::Publish { publication_id } => Some(*publication_id),
            Job::Rollback { .. } | Job::ResolveRelease { .. } | Job::ForceTag { .. } => None,
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
            Job::Publish { publication_id: 7 },
            Job::Rollback {
                release_id: 3,
                tag: "v1.2.3".into(),
                commit: "a".repeat(40),
                index: format!("sha256:{}", "1".repeat(64)),
            },
            Job::ResolveRelease { release_id: 3 },
        ];
        for job in jobs {
            let payload = job.to_payload();
            assert!(
                payload.contains(&format!("\"kind\":\"{}\"", job.kind())),
                "{payload}"
            );
            assert_eq!(Job::from_payload(&payload).unwrap(), job);
        }
        assert_eq!(Job::Publish { publication_id: 7 }.publication_id(), Some(7));
    }
}
