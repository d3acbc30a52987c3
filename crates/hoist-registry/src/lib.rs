//! hoist's OCI distribution client: auth, blobs, mounts, manifests, indexes, retries.
//!
//! Rules of this layer:
//! - It speaks HTTP to registries and nothing else: no database, no knowledge of releases
//!   or tag policy. What to copy and which tags to move is decided by its callers.
//! - Manifests travel as exact bytes; a digest is always the sha256 of the bytes stored.
//! - Blob bytes stream through in constant memory and are verified as they pass; an upload
//!   whose bytes do not match is never finalized.
//! - Nothing is written that points at something missing: blobs before manifests, children
//!   before indexes, tags last.
//! - Every request goes through one path ([`Client`]) that signs it in, retries what
//!   [`Error::is_retryable`] says may succeed later, and honours the registry's waits.

mod auth;
mod blob;
mod client;
mod copy;
mod error;
mod index;
mod manifest;
mod referrers;
mod retry;
mod verify;

pub use auth::{Challenge, Credentials, Scope, parse_challenge};
pub use blob::BlobOutcome;
pub use client::{Client, RegistrySettings, Repository, read_capped};
pub use copy::CopyReport;
pub use error::{Error, Result};
pub use index::{IndexChild, IndexPlatform, assemble_index, platform_from_config};
pub use manifest::{
    ATTESTATION_MANIFEST, BlobRef, ChildRef, Contents, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST,
    MANIFEST_ACCEPT, Manifest, ManifestHead, OCI_INDEX, OCI_MANIFEST, REFERENCE_DIGEST,
    REFERENCE_TYPE, sha256_digest,
};
pub use referrers::{Referrers, fallback_tag, referrer_descriptor};
pub use retry::{parse_go_duration, parse_retry_after_header, parse_retry_after_text};
pub use verify::ByteStream;
