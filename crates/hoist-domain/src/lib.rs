//! hoist's pure core.
//!
//! Everything here is plain data and functions over it: identifiers that cross crate
//! boundaries (`Platform`, `ImageRef`, `RepoName`), the configuration schema with its
//! validation, and the retry backoff policy. No tokio, no sqlx, no reqwest: the other crates
//! decide *how* to act, this one decides *what* is valid and what should happen.

pub mod backoff;
pub mod config;
pub mod image;
pub mod platform;
pub mod repo;

pub use backoff::Backoff;
pub use image::{Digest, DigestError, ImageRef, ImageRefError};
pub use platform::{Platform, PlatformError};
pub use repo::{RepoName, RepoNameError, RepoPattern};
