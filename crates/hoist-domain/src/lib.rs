//! hoist's pure core.
//!
//! Everything here is plain data and functions over it: identifiers that cross crate
//! boundaries (`Platform`, `ImageRef`, `RepoName`), the configuration schema with its
//! validation, GitHub event parsing, the tag policy and the retry backoff policy. No tokio,
//! no sqlx, no reqwest: the other crates decide *how* to act, this one decides *what* is
//! valid and what should happen.

pub mod backoff;
pub mod build;
pub mod ci;
mod commit;
pub mod config;
pub mod github;
pub mod image;
pub mod job;
pub mod metrics;
pub mod platform;
#[cfg(test)]
mod proptests;
pub mod repo;
pub mod signing;
mod source;
pub mod state;
pub mod tags;

pub use backoff::Backoff;
pub use commit::{CommitSha, CommitShaError};
pub use image::{Digest, DigestError, ImageRef, ImageRefError};
pub use platform::{Platform, PlatformError};
pub use repo::{RepoName, RepoNameError, RepoPattern};
pub use source::{SourcePattern, SourcePatternError};
pub use state::{JobState, PublicationEvent, PublicationState, ReleaseAction, ReleaseState, Step};
